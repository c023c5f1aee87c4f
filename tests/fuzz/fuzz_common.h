/* tests/fuzz/fuzz_common.h: helpers the libFuzzer targets share. */
#ifndef POPGATE_FUZZ_COMMON_H
#define POPGATE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
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

/* What a target's run makes of the input: data[0..size) fed as if it arrived in two reads cut
 * at `cut` (cut == size: one read), rendered into out. */
typedef void fuzz_run_fn(const uint8_t *data, size_t size, size_t cut, struct buf *out);

/* The usual entry: byte 0 of the input picks where the rest is cut; the rest runs whole and
 * cut there, each rendering bounded by scale * size + 4096 bytes, and the two must be the
 * same (a rendering that overflows its bound aborts too). */
static inline void
fuzz_whole_and_cut(const uint8_t *data, size_t size, size_t scale, fuzz_run_fn *run)
{
	struct buf whole = { 0 }, two = { 0 };
	size_t cut;

	if (size == 0)
		return;
	cut = data[0] % size;
	data++;
	size--;
	buf_set_max(&whole, scale * size + 4096);
	buf_set_max(&two, scale * size + 4096);
	run(data, size, size, &whole);
	run(data, size, cut, &two);
	if (whole.failed || two.failed)
		abort();
	fuzz_same_or_abort(&whole, &two);
	buf_free(&whole);
	buf_free(&two);
}

#endif
