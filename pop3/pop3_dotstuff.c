/* pop3/pop3_dotstuff.c: dot-stuffing for POP3 multi-line replies (RFC 1939 §3), streaming.
 * Any split of the input gives the same bytes out; finishing ends an unterminated last
 * line and writes ".\r\n". Bare LF becomes CR LF and NUL is dropped (Outlook hangs on NUL).
 * Pure: no I/O, no allocation; the caller owns the output buffer. Runs of ordinary bytes
 * are copied with one append each: this is the RETR hot path. */
#include <string.h>

#include "pop3_dotstuff.h"

void
pop3_dotstuff_init(struct pop3_dotstuff *d)
{
	d->at_line_start = true;
	d->after_cr = false;
}

int
pop3_dotstuff(struct pop3_dotstuff *d, const uint8_t *data, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		size_t run = i;

		if (d->at_line_start && data[i] == '.')
			buf_append(out, ".", 1);	/* the stuffed dot; the original follows */
		/* Copy up to the next LF, stopping early at NUL. */
		while (run < len && data[run] != '\n' && data[run] != '\0')
			run++;
		if (run > i) {
			buf_append(out, data + i, run - i);
			d->after_cr = data[run - 1] == '\r';
			/* Only bytes written end the line start: "\0." must still be stuffed. */
			d->at_line_start = false;
		}
		if (run == len)
			break;
		if (data[run] == '\0') {
			i = run + 1;		/* dropped; the line goes on */
			continue;
		}
		/* LF: make it CR LF if the CR is missing. */
		if (d->after_cr)
			buf_append(out, "\n", 1);
		else
			buf_append(out, "\r\n", 2);
		d->after_cr = false;
		d->at_line_start = true;
		i = run + 1;
	}
	return out->failed ? -1 : 0;
}

int
pop3_dotstuff_finish(struct pop3_dotstuff *d, struct buf *out)
{
	if (!d->at_line_start)
		buf_append(out, d->after_cr ? "\n" : "\r\n", d->after_cr ? 1 : 2);
	buf_append(out, ".\r\n", 3);
	pop3_dotstuff_init(d);
	return out->failed ? -1 : 0;
}
