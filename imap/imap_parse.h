/* imap/imap_parse.h: incremental IMAP response reader (RFC 3501 §7, RFC 9051 §7).
 *
 * Bytes from the server go into a buffer; imap_parse_next() pulls one event at a time.
 * A response line is collected (literals elided) up to the parser's line limit and handed
 * out whole as IMAP_PARSE_LINE. A literal "{n}" that ends a line of a data response is not
 * collected: the parser reports IMAP_PARSE_LITERAL with the line so far and the size, then
 * the literal's bytes as IMAP_PARSE_LITERAL_DATA chunks pointing into `in` (whatever pieces
 * the reads delivered: never buffered whole), then IMAP_PARSE_LITERAL_END, then goes on
 * with the rest of the line. The final IMAP_PARSE_LINE carries the whole line with each
 * literal's bytes replaced by nothing (the "{n}" marker stays), so a FETCH response reads
 * "* 1 FETCH (UID 7 BODY[] {1200}\r\n)" -> line "* 1 FETCH (UID 7 BODY[] {1200})".
 *
 * "{n}" at the end of a status response ("* OK ...", "A1 NO ...", "* BYE", "+ ...") is text,
 * not a literal (RFC 3501 resp-text).
 *
 * Pure: no I/O. It consumes from `in` as it goes. Pointers in an event stay valid until the
 * next call or the next append to `in`. */
#ifndef POPGATE_IMAP_PARSE_H
#define POPGATE_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

#define IMAP_LINE_MAX_DEFAULT (64 * 1024)

enum imap_parse_result {
	IMAP_PARSE_MORE,		/* need more bytes */
	IMAP_PARSE_LINE,		/* ev.line/ev.line_len: one complete response, no CRLF */
	IMAP_PARSE_LITERAL,		/* ev.line: the line so far, ev.literal_size: bytes to come */
	IMAP_PARSE_LITERAL_DATA,	/* ev.data/ev.data_len: next piece of the literal */
	IMAP_PARSE_LITERAL_END,		/* the literal is complete */
	IMAP_PARSE_ERROR,		/* line over the limit or a bad literal marker: the stream
					   is unreadable; ev.error says why */
};

struct imap_event {
	const uint8_t *line;
	size_t line_len;
	uint64_t literal_size;
	const uint8_t *data;
	size_t data_len;
	const char *error;
};

struct imap_parser {
	struct buf line;	/* the response line being collected (ceiling = line max) */
	uint64_t literal_left;	/* bytes of the current literal still to hand out */
	int state;		/* internal */
	uint64_t literal_max;	/* larger literals are an error (0 = no limit) */
	size_t seg_start;	/* where the line's text after the last literal begins */
	bool line_done;		/* the last event handed out the whole line: reset next call */
};

/* line_max: bound on one response line, literals excluded (0 = IMAP_LINE_MAX_DEFAULT). */
void imap_parser_init(struct imap_parser *p, size_t line_max);
void imap_parser_free(struct imap_parser *p);

enum imap_parse_result imap_parse_next(struct imap_parser *p, struct buf *in, struct imap_event *ev_r);

#endif
