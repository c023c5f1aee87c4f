/* common/slice.h: a borrowed run of bytes (a command's argument, a response's field): it
 * points into a buffer it does not own and lives as long as that buffer's bytes stay where
 * they are (common/buf.h says when). Not NUL-terminated. */
#ifndef POPGATE_SLICE_H
#define POPGATE_SLICE_H

#include <stddef.h>
#include <stdint.h>

struct slice {
	const uint8_t *p;
	size_t len;
};

#endif
