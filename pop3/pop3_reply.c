/* pop3/pop3_reply.c: POP3 status lines and lines of multi-line replies (RFC 1939 §3) with
 * RFC 2449 §8 / RFC 3206 response codes; see pop3_reply.h.
 *
 * Every line is formatted into a stack buffer first, so that no format argument (a user
 * name, an upstream's text) can put CR, LF or NUL on the wire and end the reply early or
 * forge a second one; then it is cut to RFC 2449 §4's 512 octets and appended. Errors are
 * not returned: the buffer keeps `failed` and the flush reports it. Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pop3_reply.h"

#define REPLY_LINE_MAX 512	/* RFC 2449 §4: a response line, CRLF included */

static void
reply_line(struct buf *out, const char *prefix, size_t prefix_len, bool stuff,
    const char *fmt, va_list ap)
{
	char text[REPLY_LINE_MAX];
	size_t len, room;
	int n;

	n = vsnprintf(text, sizeof(text), fmt, ap);
	len = n < 0 ? 0 : (size_t)n;
	if (len > sizeof(text) - 1)
		len = sizeof(text) - 1;		/* vsnprintf truncated it */
	/* Room for the text once the prefix, a stuffed dot and CRLF are counted. */
	room = REPLY_LINE_MAX - 2 - prefix_len - (stuff ? 1 : 0);
	if (len > room)
		len = room;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0')
			text[i] = ' ';
	buf_append(out, prefix, prefix_len);
	/* RFC 1939 §3: in a multi-line reply a line starting with "." is byte-stuffed. */
	if (stuff && len > 0 && text[0] == '.')
		buf_append(out, ".", 1);
	buf_append(out, text, len);
	buf_append(out, "\r\n", 2);
}

void
pop3_reply_ok(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(out, "+OK ", 4, false, fmt, ap);
	va_end(ap);
}

void
pop3_reply_err(struct buf *out, const char *code, const char *fmt, ...)
{
	char prefix[48];
	size_t plen = 0;
	va_list ap;
	int n;

	if (code != NULL)
		n = snprintf(prefix, sizeof(prefix), "-ERR [%s] ", code);
	else
		n = snprintf(prefix, sizeof(prefix), "-ERR ");
	if (n > 0)
		plen = (size_t)n < sizeof(prefix) ? (size_t)n : sizeof(prefix) - 1;
	va_start(ap, fmt);
	reply_line(out, prefix, plen, false, fmt, ap);
	va_end(ap);
}

void
pop3_reply_line(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(out, "", 0, true, fmt, ap);
	va_end(ap);
}

void
pop3_reply_end(struct buf *out)
{
	buf_append(out, ".\r\n", 3);
}
