/* pop3/pop3_reply.c: POP3 status and listing lines; see pop3_reply.h. */
#include <stdarg.h>
#include <stdio.h>

#include "pop3_reply.h"

#define REPLY_TEXT_MAX 512	/* RFC 2449 §4: responses up to 512 octets, CRLF included */

/* Formats into a bounded line, replacing CR, LF and NUL so no argument can end the line
 * early or start another reply. */
static void
reply_line(struct buf *out, const char *prefix, const char *fmt, va_list ap)
{
	char text[REPLY_TEXT_MAX];
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	size_t len;

	if (n < 0)
		n = 0;
	len = (size_t)n < sizeof(text) - 3 ? (size_t)n : sizeof(text) - 3;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0')
			text[i] = ' ';
	buf_append_str(out, prefix);
	buf_append(out, text, len);
	buf_append(out, "\r\n", 2);
}

void
pop3_reply_ok(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(out, "+OK ", fmt, ap);
	va_end(ap);
}

void
pop3_reply_err(struct buf *out, const char *code, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	if (code != NULL)
		snprintf(prefix, sizeof(prefix), "-ERR [%s] ", code);
	else
		snprintf(prefix, sizeof(prefix), "-ERR ");
	va_start(ap, fmt);
	reply_line(out, prefix, fmt, ap);
	va_end(ap);
}

void
pop3_reply_line(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_line(out, "", fmt, ap);
	va_end(ap);
}

void
pop3_reply_end(struct buf *out)
{
	buf_append(out, ".\r\n", 3);
}
