/* pop3/pop3_dotstuff.h: dot-stuffing for POP3 multi-line replies (RFC 1939 §3), streaming.
 *
 * Bytes of a message go in, in pieces of any size; the same bytes come out whatever the
 * cut, with every line that starts with "." given one more ".", bare LF written as CR LF,
 * and NUL bytes dropped (Outlook hangs on them; DESIGN.md). pop3_dotstuff_finish() ends the
 * last line with CR LF if the message did not, then writes ".\r\n".
 * Pure: no I/O, no allocation; the caller owns the output buffer. */
#ifndef POPGATE_POP3_DOTSTUFF_H
#define POPGATE_POP3_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

struct pop3_dotstuff {
	bool at_line_start;	/* next byte starts a line */
	bool after_cr;		/* last byte written was a CR not yet followed by LF */
};

void pop3_dotstuff_init(struct pop3_dotstuff *d);
/* Returns 0, or -1 when `out` refused the bytes (its `failed` is set). */
int pop3_dotstuff(struct pop3_dotstuff *d, const uint8_t *data, size_t len, struct buf *out);
int pop3_dotstuff_finish(struct pop3_dotstuff *d, struct buf *out);

#endif
