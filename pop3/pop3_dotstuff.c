/* pop3/pop3_dotstuff.c: dot-stuffing for POP3 multi-line replies (RFC 1939 §3), streaming.
 *
 * Any split of the input gives the same bytes out; finishing ends an unterminated last line
 * and writes ".\r\n". A line that starts with "." gets one more; a bare LF becomes CR LF (a
 * CR already before the LF, even in the previous chunk, is kept); a lone CR not followed by
 * LF passes through as it is; NUL bytes are dropped (Outlook hangs on them; DESIGN.md).
 *
 * This is the RETR hot path (20 MB messages in 16-64 KB chunks), so nothing goes byte by
 * byte: one memchr finds the NULs of a chunk, one memchr per line finds its LF, and bytes
 * that need no change are appended as one run: a CRLF message without dot lines or NULs
 * costs one append per chunk. Pure: no I/O, no allocation; the caller owns `out`. */
#include <string.h>

#include "pop3_dotstuff.h"

void
pop3_dotstuff_init(struct pop3_dotstuff *d)
{
	d->at_line_start = true;
	d->after_cr = false;
}

/* A piece of the input with no NUL in it (n > 0). `run` is where the bytes not yet appended
 * start: they are appended only when something must be inserted before the next byte. */
static void
stuff_segment(struct pop3_dotstuff *d, const uint8_t *seg, size_t n, struct buf *out)
{
	const uint8_t *end = seg + n, *p = seg, *run = seg, *lf;
	bool cr_before;

	while (p < end) {
		if (d->at_line_start) {
			d->at_line_start = false;	/* *p is the line's first byte out */
			if (*p == '.') {
				buf_append(out, run, (size_t)(p - run));
				buf_append(out, ".", 1);	/* the original follows in the run */
				run = p;
			}
		}
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		/* The byte before this LF on the wire: in this segment, or the last one written
		 * before it (a previous chunk, or before a dropped NUL). */
		cr_before = lf > seg ? lf[-1] == '\r' : d->after_cr;
		if (!cr_before) {
			buf_append(out, run, (size_t)(lf - run));
			buf_append(out, "\r\n", 2);
			run = lf + 1;
		}
		p = lf + 1;
		d->at_line_start = true;
	}
	buf_append(out, run, (size_t)(end - run));
	d->after_cr = end[-1] == '\r';
}

int
pop3_dotstuff(struct pop3_dotstuff *d, const uint8_t *data, size_t len, struct buf *out)
{
	const uint8_t *p = data, *end = data + len, *nul;

	while (p < end) {
		/* NUL is dropped as if it were not there: the bytes around it join up, so "\0."
		 * at a line start is stuffed and "\r\0\n" is one CR LF. */
		nul = memchr(p, '\0', (size_t)(end - p));
		if (nul == NULL) {
			stuff_segment(d, p, (size_t)(end - p), out);
			break;
		}
		if (nul > p)
			stuff_segment(d, p, (size_t)(nul - p), out);
		p = nul + 1;
	}
	return out->failed ? -1 : 0;
}

int
pop3_dotstuff_finish(struct pop3_dotstuff *d, struct buf *out)
{
	/* An empty message is just the terminator: there is no line to end. */
	if (!d->at_line_start)
		buf_append(out, d->after_cr ? "\n" : "\r\n", d->after_cr ? 1 : 2);
	buf_append(out, ".\r\n", 3);
	pop3_dotstuff_init(d);
	return out->failed ? -1 : 0;
}
