/* tests/fuzz/fuzz_pop3_client.c: a POP3 server's replies as popgate's client reads them
 * (pop3/pop3_client.c) under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut in two, byte 1 which of the 8 expected replies
 * may be multi-line; the rest is the server's byte stream. It is read whole, in the two
 * pieces, and byte by byte; the three renderings must be the same, every event's slices must
 * lie in the bytes consumed, and a step must consume or wait. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "pop3/pop3_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
rec(struct buf *out, const struct slice *s)
{
	uint32_t len = (uint32_t)s->len;

	buf_append(out, &len, sizeof(len));
	buf_append(out, s->p, s->len);
}

static void
check(const struct slice *s, const uint8_t *base, size_t len)
{
	if (s->len > 0 && (s->p < base || s->p + s->len > base + len))
		abort();
}

/* Feeds `n` more bytes and records the events; false once the stream is unreadable. */
static bool
feed(struct pop3c_parser *p, struct buf *in, const uint8_t *d, size_t n, struct buf *out)
{
	buf_append(in, d, n);
	for (;;) {
		const uint8_t *base = buf_data(in);
		size_t before = buf_len(in);
		struct pop3c_event ev;
		enum pop3c_result r = pop3c_next(p, in, &ev);
		uint8_t tag = (uint8_t)r;

		buf_append(out, &tag, 1);
		if (r == POP3C_MORE)
			return true;
		if (r == POP3C_ERROR)
			return false;
		if (buf_len(in) >= before)
			abort();		/* an event that consumed nothing */
		check(&ev.code, base, before);
		check(&ev.text, base, before);
		if (r == POP3C_STATUS) {
			buf_append(out, &ev.ok, 1);
			rec(out, &ev.code);
		}
		rec(out, &ev.text);
	}
}

static void without_more(const struct buf *in, struct buf *out);

static void
run(const uint8_t *d, size_t n, size_t cut, uint8_t multi, int how, struct buf *out)
{
	struct pop3c_parser p;
	struct buf in = { 0 };
	bool go = true;

	pop3c_init(&p, 64);
	for (int i = 0; i < 8; i++)
		pop3c_expect(&p, (multi >> i) & 1);
	if (how == 0) {
		go = feed(&p, &in, d, n, out);
	} else if (how == 1) {
		go = feed(&p, &in, d, cut, out);
		if (go)
			go = feed(&p, &in, d + cut, n - cut, out);
	} else {
		for (size_t i = 0; i < n && go; i++)
			go = feed(&p, &in, d + i, 1, out);
	}
	buf_free(&in);
}

/* Drops the MORE tags (byte 0 entries that stand alone) from a rendering: they depend on how
 * the stream was cut. The records are tag [ok code] text, so MORE is recognised by walking. */
static void
without_more(const struct buf *in, struct buf *out)
{
	const uint8_t *b = buf_data(in);
	size_t i = 0, n = buf_len(in);

	while (i < n) {
		uint8_t tag = b[i++];
		uint32_t len;

		if (tag == POP3C_MORE)
			continue;
		buf_append(out, &tag, 1);
		if (tag == POP3C_ERROR)
			continue;
		if (tag == POP3C_STATUS) {
			buf_append(out, b + i, 1);
			i++;
			memcpy(&len, b + i, 4);
			buf_append(out, b + i, 4 + len);
			i += 4 + len;
		}
		memcpy(&len, b + i, 4);
		buf_append(out, b + i, 4 + len);
		i += 4 + len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf r[3] = { { 0 } }, f[3] = { { 0 } };
	size_t cut;

	if (size < 2)
		return 0;
	cut = size > 2 ? data[0] % (size - 2 + 1) : 0;
	for (int how = 0; how < 3; how++) {
		run(data + 2, size - 2, cut, data[1], how, &r[how]);
		without_more(&r[how], &f[how]);
	}
	fuzz_same_or_abort(&f[0], &f[1]);
	fuzz_same_or_abort(&f[0], &f[2]);
	for (int i = 0; i < 3; i++) {
		buf_free(&r[i]);
		buf_free(&f[i]);
	}
	return 0;
}
