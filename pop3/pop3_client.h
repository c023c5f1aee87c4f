/* pop3/pop3_client.h: reading a POP3 server's replies, the client side (RFC 1939 §3, RFC 2449
 * §8 response codes): what popgate needs to talk to an old POP3 server (the live UIDL
 * migration) and nothing else.
 *
 * A pull parser over the server's bytes, like imap_parse.h: the caller says, before each
 * reply, whether a "+OK" to it opens a multi-line answer (UIDL, LIST, TOP, CAPA) or not; the
 * parser hands out the status line, then each line of a multi-line answer with its dot-
 * stuffing removed, then the end. "-ERR" never opens one. Lines are bounded: a status line
 * over `line_max` is an error (the stream is not a POP3 server's); a line of a multi-line
 * answer over it (a message's header line, which nothing bounds) is handed out truncated.
 * CRLF and a bare LF both end a line. Pure: no I/O, no allocation beyond the buffer's; the
 * event's pointers live until the next call or the next append to `in`. */
#ifndef POPGATE_POP3_CLIENT_H
#define POPGATE_POP3_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/slice.h"

#define POP3C_LINE_MAX 1024	/* RFC 1939 §3: 512 octets a reply line; some servers send more */

enum pop3c_result {
	POP3C_MORE,		/* need more bytes */
	POP3C_STATUS,		/* ev.ok, ev.code ("[SYS/TEMP]" without brackets, or empty), ev.text */
	POP3C_LINE,		/* ev.text: a line of the multi-line answer, un-stuffed, no CRLF */
	POP3C_END,		/* the multi-line answer's "." */
	POP3C_ERROR,		/* ev.error: not a reply (no +OK/-ERR, a line too long, a reply
				   nobody waits for) */
};

struct pop3c_event {
	bool ok;
	bool truncated;		/* POP3C_LINE: the line was longer than line_max; these are
				   its first line_max octets (the rest is dropped) */
	struct slice code;
	struct slice text;
	const char *error;
};

struct pop3c_parser {
	size_t line_max;	/* 0: POP3C_LINE_MAX */
	int state;		/* internal */
	unsigned expected;	/* replies asked for, not read yet (pipelining, RFC 2449 §6.6) */
	uint32_t multi_bits;	/* for each of them, lowest first: may a +OK open a multi-line
				   answer */
};

void pop3c_init(struct pop3c_parser *p, size_t line_max);
/* A command went out: its reply comes after the ones expected before it. multi: a "+OK" to
 * it opens a multi-line answer. Returns false when 32 replies are already expected. */
bool pop3c_expect(struct pop3c_parser *p, bool multi);
/* The greeting is a reply nobody asked for: expect it first (pop3c_expect(p, false)). */
enum pop3c_result pop3c_next(struct pop3c_parser *p, struct buf *in, struct pop3c_event *ev_r);

/* "n uidl" (UIDL, RFC 1939 §7) or "n size" (LIST): false unless n is 1..2^32-1 and the value
 * is there (a UIDL 1..70 octets of 0x21..0x7E; a size a decimal). */
bool pop3c_uidl_line(const struct slice *line, uint32_t *msgno_r, struct slice *uidl_r);
bool pop3c_list_line(const struct slice *line, uint32_t *msgno_r, uint64_t *size_r);

#endif
