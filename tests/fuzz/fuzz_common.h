/* tests/fuzz/fuzz_common.h: helpers the libFuzzer targets share. */
#ifndef POPGATE_FUZZ_COMMON_H
#define POPGATE_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* The targets feed one input whole, in two pieces and byte by byte, render what the parser
 * made of each run into a buffer, and demand the same rendering: a parser whose result
 * depends on how reads cut the stream aborts here. */
static inline void
fuzz_same_or_abort(const struct buf *a, const struct buf *b)
{
	if (buf_len(a) != buf_len(b) || memcmp(buf_data(a), buf_data(b), buf_len(a)) != 0)
		abort();
}

#endif
