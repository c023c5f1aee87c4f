/* tests/fuzz/fuzz_proxy_header.c: the PROXY protocol header parser (common/proxy_header.c)
 * under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut; the rest is what a proxy (or anyone) sent.
 * It is parsed whole, and as a reader would in two reads: the first piece alone (from a
 * copy of exactly its size, so a read past it is an ASan error), then, if that needs more,
 * everything. The verdicts must be the same; a DONE header must lie within the bytes given
 * and within PROXY_HEADER_MAX, and NEED_MORE is only allowed below that size. Aborts
 * otherwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "common/proxy_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum proxy_result
parse_copy(const uint8_t *d, size_t n, struct buf *out)
{
	uint8_t *copy = malloc(n ? n : 1);
	struct proxy_header h;
	const char *error = NULL;
	enum proxy_result r;
	uint8_t tag;

	if (copy == NULL)
		abort();
	memcpy(copy, d, n);
	r = proxy_header_parse(copy, n, &h, &error);
	free(copy);
	tag = (uint8_t)r;
	if (r == PROXY_NEED_MORE) {
		if (n >= PROXY_HEADER_MAX)
			abort();
		return r;
	}
	buf_append(out, &tag, 1);
	if (r == PROXY_ERROR) {
		if (error == NULL)
			abort();
		buf_append_str(out, error);
		return r;
	}
	if (h.len == 0 || h.len > n || h.len > PROXY_HEADER_MAX || (h.version != 1 && h.version != 2) ||
	    (h.version == 1 && h.len > PROXY_V1_MAX))
		abort();
	buf_append(out, &h.len, sizeof(h.len));
	buf_append(out, &h.version, sizeof(h.version));
	buf_append(out, &h.family, sizeof(h.family));
	if (h.family != PROXY_AF_NONE) {
		buf_append(out, h.src, sizeof(h.src));
		buf_append(out, h.dst, sizeof(h.dst));
		buf_append(out, &h.src_port, sizeof(h.src_port));
		buf_append(out, &h.dst_port, sizeof(h.dst_port));
	}
	return r;
}

static void
run(const uint8_t *d, size_t n, size_t cut, struct buf *out)
{
	if (cut < n && parse_copy(d, cut, out) != PROXY_NEED_MORE)
		return;		/* decided on the first piece: the whole must say the same */
	parse_copy(d, n, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_whole_and_cut(data, size, 1, run);
	return 0;
}
