/* imap/imap_parse.c: incremental IMAP response reader (RFC 3501 §7, RFC 9051 §7).
 * See imap_parse.h for the events. States:
 *   LINE     collecting the current segment of a response line into p->line
 *   LITERAL  handing out literal bytes straight from `in` (never copied)
 *   LIT_END  the literal is complete: report it, then back to LINE for the rest of the line
 * Pure: no I/O. */
#include <string.h>

#include "imap_parse.h"

enum { ST_LINE, ST_LITERAL, ST_LIT_END };

#define LITERAL_DIGITS_MAX 20

void
imap_parser_init(struct imap_parser *p, size_t line_max)
{
	memset(p, 0, sizeof(*p));
	buf_set_max(&p->line, line_max ? line_max : IMAP_LINE_MAX_DEFAULT);
}

void
imap_parser_free(struct imap_parser *p)
{
	buf_free(&p->line);
	p->state = ST_LINE;
	p->literal_left = 0;
	p->line_done = false;
	p->seg_start = 0;
}

static bool
word_is(const uint8_t *p, size_t len, const char *w)
{
	size_t n = strlen(w);

	if (len < n || (len > n && p[n] != ' '))
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 'a' + 'A');
		if (c != (uint8_t)w[i])
			return false;
	}
	return true;
}

/* Status responses carry resp-text, where "{5}" is just text (RFC 3501 §7.1). */
static bool
is_status_response(const uint8_t *line, size_t len)
{
	const uint8_t *sp;
	size_t rest;

	if (len >= 1 && line[0] == '+')
		return true;
	if ((sp = memchr(line, ' ', len)) == NULL)
		return false;
	sp++;
	rest = len - (size_t)(sp - line);
	if (line[0] == '*')
		return word_is(sp, rest, "OK") || word_is(sp, rest, "NO") || word_is(sp, rest, "BAD") ||
		    word_is(sp, rest, "BYE") || word_is(sp, rest, "PREAUTH");
	return word_is(sp, rest, "OK") || word_is(sp, rest, "NO") || word_is(sp, rest, "BAD");
}

/* Looks for "{n}", "{n+}" or "~{n}" at the end of the segment [from, len).
 * Returns 1 with *size_r, 0 if none, -1 if a marker is malformed. */
static int
literal_marker(const uint8_t *line, size_t from, size_t len, uint64_t *size_r)
{
	size_t end, open;
	uint64_t v = 0;

	if (len == from || line[len - 1] != '}')
		return 0;
	end = len - 1;
	if (end > from && line[end - 1] == '+')
		end--;
	open = end;
	while (open > from && line[open - 1] >= '0' && line[open - 1] <= '9')
		open--;
	if (open == from || line[open - 1] != '{') {
		/* An atom may end in "}" but never holds "{": "{12a}" is a broken marker, and
		 * reading on would take the literal's bytes for responses. */
		for (size_t i = end; i > from && line[i - 1] != ' '; i--)
			if (line[i - 1] == '{')
				return -1;
		return 0;		/* "}" ending text, not a marker */
	}
	if (open == end || end - open > LITERAL_DIGITS_MAX)
		return -1;
	for (size_t i = open; i < end; i++) {
		uint64_t d = (uint64_t)(line[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*size_r = v;
	return 1;
}

static enum imap_parse_result
parse_error(struct imap_parser *p, struct imap_event *ev, const char *why)
{
	ev->error = why;
	buf_reset(&p->line);
	p->seg_start = 0;
	p->state = ST_LINE;
	return IMAP_PARSE_ERROR;
}

enum imap_parse_result
imap_parse_next(struct imap_parser *p, struct buf *in, struct imap_event *ev_r)
{
	memset(ev_r, 0, sizeof(*ev_r));
	if (p->line_done) {		/* the LINE handed out last time is over */
		buf_reset(&p->line);
		p->seg_start = 0;
		p->line_done = false;
	}
	for (;;) {
		switch (p->state) {
		case ST_LITERAL: {
			size_t n = buf_len(in);

			if (p->literal_left == 0) {
				p->state = ST_LIT_END;
				continue;
			}
			if (n == 0)
				return IMAP_PARSE_MORE;
			if (n > p->literal_left)
				n = (size_t)p->literal_left;
			ev_r->data = buf_data(in);
			ev_r->data_len = n;
			buf_consume(in, n);	/* bytes stay in place until the next append */
			p->literal_left -= n;
			return IMAP_PARSE_LITERAL_DATA;
		}
		case ST_LIT_END:
			p->state = ST_LINE;
			p->seg_start = buf_len(&p->line);
			return IMAP_PARSE_LITERAL_END;
		case ST_LINE: {
			const uint8_t *data = buf_data(in);
			const uint8_t *lf = memchr(data, '\n', buf_len(in));
			size_t take = lf ? (size_t)(lf - data) : buf_len(in);
			size_t len;
			uint64_t size = 0;
			int m;

			if (buf_append(&p->line, data, take) < 0)
				return parse_error(p, ev_r, "response line too long");
			buf_consume(in, take + (lf ? 1 : 0));
			if (lf == NULL)
				return IMAP_PARSE_MORE;
			len = buf_len(&p->line);
			if (len > p->seg_start && buf_data(&p->line)[len - 1] == '\r')
				buf_truncate(&p->line, --len);
			ev_r->line = buf_data(&p->line);
			ev_r->line_len = len;
			m = is_status_response(ev_r->line, len) ? 0 :
			    literal_marker(ev_r->line, p->seg_start, len, &size);
			if (m < 0)
				return parse_error(p, ev_r, "malformed literal size");
			if (m == 0) {
				p->line_done = true;
				return IMAP_PARSE_LINE;
			}
			if (p->literal_max != 0 && size > p->literal_max)
				return parse_error(p, ev_r, "literal too large");
			ev_r->literal_size = size;
			p->literal_left = size;
			p->state = ST_LITERAL;
			return IMAP_PARSE_LITERAL;
		}
		}
	}
}
