/* tests/fuzz/fuzz_dotstuff.c: the streaming dot-stuffer (pop3/pop3_dotstuff.c) under
 * libFuzzer.
 *
 * Input: byte 0 picks where the rest (a message) is cut in two. The message is stuffed
 * whole, in the two pieces, and byte by byte; the three outputs must be identical, and
 * equal to a byte-at-a-time model of the rules. The output must also be a well-formed
 * multi-line body on its own terms (RFC 1939 §3), whatever the model says: no NUL, every
 * LF after a CR, every line that starts with "." stuffed except the final ".", which comes
 * once and last, and un-stuffing it gives back the message's lines. Aborts otherwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_dotstuff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
stuff(const uint8_t *data, size_t size, size_t step, size_t cut, struct buf *out)
{
	struct pop3_dotstuff d;

	pop3_dotstuff_init(&d);
	if (step > 0) {
		for (size_t i = 0; i < size; i += step)
			if (pop3_dotstuff(&d, data + i, size - i < step ? size - i : step, out) != 0)
				abort();
	} else {
		if (pop3_dotstuff(&d, data, cut, out) != 0 ||
		    pop3_dotstuff(&d, data + cut, size - cut, out) != 0)
			abort();
	}
	if (pop3_dotstuff_finish(&d, out) != 0)
		abort();
}

/* The rules one byte at a time: NUL dropped, LF after no CR gets one, "." leading a line
 * doubled, an unterminated last line ended, then the terminator. */
static void
model(const uint8_t *in, size_t len, struct buf *out)
{
	bool at_start = true, prev_cr = false;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (c == '\0')
			continue;
		if (c == '\n') {
			buf_append(out, prev_cr ? "\n" : "\r\n", prev_cr ? 1 : 2);
			at_start = true;
			prev_cr = false;
			continue;
		}
		if (at_start && c == '.')
			buf_append(out, ".", 1);
		buf_append(out, &c, 1);
		at_start = false;
		prev_cr = c == '\r';
	}
	if (!at_start)
		buf_append(out, prev_cr ? "\n" : "\r\n", prev_cr ? 1 : 2);
	buf_append(out, ".\r\n", 3);
}

static bool
same(const struct buf *a, const struct buf *b)
{
	return buf_len(a) == buf_len(b) && memcmp(buf_data(a), buf_data(b), buf_len(a)) == 0;
}

/* The output read as a client reads it; the message's lines are rebuilt in `lines`. */
static void
check_wire(const uint8_t *in, size_t len, const struct buf *out, struct buf *lines)
{
	const uint8_t *o = buf_data(out), *end = o + buf_len(out);
	size_t nonnul = 0;

	for (size_t i = 0; i < len; i++)
		nonnul += in[i] != '\0';
	/* Each input byte gives at most two (LF -> CR LF, "." -> ".."), plus CR LF . CR LF. */
	if (buf_len(out) > 2 * nonnul + 5 || memchr(o, '\0', buf_len(out)) != NULL)
		abort();
	for (;;) {
		const uint8_t *lf = memchr(o, '\n', (size_t)(end - o));
		size_t n;

		if (lf == NULL || lf == o || lf[-1] != '\r')
			abort();		/* every line ends in CR LF, nothing after the last */
		n = (size_t)(lf - 1 - o);	/* line without CR LF */
		if (n == 1 && o[0] == '.') {
			if (lf + 1 != end)
				abort();	/* the terminator comes once, last */
			break;
		}
		if (n > 0 && o[0] == '.') {
			if (n < 2 || o[1] != '.')
				abort();	/* a leading dot is always doubled */
			o++;			/* un-stuff, as the client does */
			n--;
		}
		buf_append(lines, o, n);
		buf_append(lines, "\r\n", 2);
		o = lf + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = { 0 }, two = { 0 }, bytes = { 0 }, ref = { 0 }, lines = { 0 };
	size_t cut, room;

	if (size == 0)
		return 0;
	cut = data[0] % size;			/* 0 .. size - 1 bytes of the message */
	data++;
	size--;
	room = 2 * size + 16;
	buf_set_max(&whole, room);
	buf_set_max(&two, room);
	buf_set_max(&bytes, room);
	buf_set_max(&ref, room);
	buf_set_max(&lines, room);
	stuff(data, size, 0, size, &whole);
	stuff(data, size, 0, cut, &two);
	stuff(data, size, 1, 0, &bytes);
	model(data, size, &ref);
	if (!same(&whole, &two) || !same(&whole, &bytes) || !same(&whole, &ref))
		abort();
	check_wire(data, size, &whole, &lines);
	/* The un-stuffed lines are the message without NULs, lines ended by CR LF: the same
	 * as the output with the terminator taken off and every ".." start made "." again. */
	{
		struct buf norm = { 0 };
		bool at_start = true, prev_cr = false;

		buf_set_max(&norm, room);
		for (size_t i = 0; i < size; i++) {
			uint8_t c = data[i];

			if (c == '\0')
				continue;
			if (c == '\n' && !prev_cr)
				buf_append(&norm, "\r", 1);
			buf_append(&norm, &c, 1);
			at_start = c == '\n';
			prev_cr = c == '\r';
		}
		if (!at_start)
			buf_append(&norm, prev_cr ? "\n" : "\r\n", prev_cr ? 1 : 2);
		/* A lone CR inside a line stays in it; a line of only the last "\r" was ended
		 * above. The rebuilt lines must match byte for byte. */
		if (!same(&norm, &lines))
			abort();
		buf_free(&norm);
	}
	buf_free(&whole);
	buf_free(&two);
	buf_free(&bytes);
	buf_free(&ref);
	buf_free(&lines);
	return 0;
}
