/* pop3/pop3_client.c: a POP3 server's replies, read by a client; see pop3_client.h. */
#include <string.h>

#include "pop3_client.h"

enum { ST_STATUS, ST_MULTI, ST_SKIP };

void
pop3c_init(struct pop3c_parser *p, size_t line_max)
{
	memset(p, 0, sizeof(*p));
	p->line_max = line_max ? line_max : POP3C_LINE_MAX;
}

bool
pop3c_expect(struct pop3c_parser *p, bool multi)
{
	if (p->expected >= 32)
		return false;
	if (multi)
		p->multi_bits |= (uint32_t)1 << p->expected;
	p->expected++;
	return true;
}

/* The next line, without its CRLF (or LF): true with *line_r and the bytes to consume. */
static int
next_line(const struct pop3c_parser *p, const struct buf *in, struct slice *line_r,
    size_t *consume_r)
{
	const uint8_t *d = buf_data(in);
	size_t n = buf_len(in), len;
	const uint8_t *lf = memchr(d, '\n', n < p->line_max + 2 ? n : p->line_max + 2);

	if (lf == NULL)
		return n >= p->line_max + 2 ? -1 : 0;
	len = (size_t)(lf - d);
	*consume_r = len + 1;
	if (len > 0 && d[len - 1] == '\r')
		len--;
	if (len > p->line_max)
		return -1;
	line_r->p = d;
	line_r->len = len;
	return 1;
}

static enum pop3c_result
fail(struct pop3c_event *ev, const char *why)
{
	ev->error = why;
	return POP3C_ERROR;
}

static void
status_fields(struct pop3c_event *ev, const struct slice *line, size_t skip)
{
	const uint8_t *t = line->p + skip;
	size_t len = line->len - skip;

	if (len > 0 && t[0] == ' ') {
		t++;
		len--;
	}
	ev->code.p = t;
	ev->code.len = 0;
	if (len > 0 && t[0] == '[') {	/* RFC 2449 §8: "[" code "]" */
		const uint8_t *close = memchr(t, ']', len);

		if (close != NULL) {
			ev->code.p = t + 1;
			ev->code.len = (size_t)(close - t) - 1;
			len -= (size_t)(close - t) + 1;
			t = close + 1;
			if (len > 0 && t[0] == ' ') {
				t++;
				len--;
			}
		}
	}
	ev->text.p = t;
	ev->text.len = len;
}

enum pop3c_result
pop3c_next(struct pop3c_parser *p, struct buf *in, struct pop3c_event *ev_r)
{
	struct slice line;
	size_t consume = 0;
	int r;

	memset(ev_r, 0, sizeof(*ev_r));
	if (p->state == ST_SKIP) {
		/* The rest of an over-long line of a multi-line answer: dropped. */
		const uint8_t *lf = memchr(buf_data(in), '\n', buf_len(in));

		if (lf == NULL) {
			buf_consume(in, buf_len(in));
			return POP3C_MORE;
		}
		buf_consume(in, (size_t)(lf - buf_data(in)) + 1);
		p->state = ST_MULTI;
	}
	if ((r = next_line(p, in, &line, &consume)) == 0)
		return POP3C_MORE;
	if (r < 0 && p->state == ST_MULTI) {
		/* A line of a multi-line answer over line_max (a header line of a message, which
		 * the server does not bound): its first line_max octets, the rest dropped. */
		line.p = buf_data(in);
		line.len = p->line_max;
		consume = p->line_max;
		p->state = ST_SKIP;
		ev_r->truncated = true;
	} else if (r < 0) {
		return fail(ev_r, "reply line too long");
	}
	/* The event points into the buffer: consumed (moved past, never moved) first. */
	buf_consume(in, consume);
	if (p->state == ST_MULTI || ev_r->truncated) {
		if (line.len == 1 && line.p[0] == '.') {
			p->state = ST_STATUS;
			return POP3C_END;
		}
		if (line.len > 0 && line.p[0] == '.') {	/* RFC 1939 §3: byte-stuffed */
			line.p++;
			line.len--;
		}
		ev_r->text = line;
		return POP3C_LINE;
	}
	if (p->expected == 0)
		return fail(ev_r, "a reply nobody asked for");
	if (line.len >= 3 && memcmp(line.p, "+OK", 3) == 0 && (line.len == 3 || line.p[3] == ' '))
		ev_r->ok = true;
	else if (!(line.len >= 4 && memcmp(line.p, "-ERR", 4) == 0 &&
	    (line.len == 4 || line.p[4] == ' ')))
		return fail(ev_r, "not a +OK or -ERR reply");
	status_fields(ev_r, &line, ev_r->ok ? 3 : 4);
	if (ev_r->ok && (p->multi_bits & 1))
		p->state = ST_MULTI;
	p->multi_bits >>= 1;
	p->expected--;
	return POP3C_STATUS;
}

/* "n " then the rest: the message number and the value after one space. */
static bool
numbered(const struct slice *line, uint32_t *msgno_r, struct slice *rest_r)
{
	uint64_t n = 0;
	size_t i = 0;

	while (i < line->len && line->p[i] >= '0' && line->p[i] <= '9' && i < 10)
		n = n * 10 + (uint64_t)(line->p[i++] - '0');
	if (i == 0 || n == 0 || n > UINT32_MAX || i >= line->len || line->p[i] != ' ')
		return false;
	*msgno_r = (uint32_t)n;
	rest_r->p = line->p + i + 1;
	rest_r->len = line->len - i - 1;
	return true;
}

bool
pop3c_uidl_line(const struct slice *line, uint32_t *msgno_r, struct slice *uidl_r)
{
	if (!numbered(line, msgno_r, uidl_r) || uidl_r->len < 1 || uidl_r->len > 70)
		return false;
	for (size_t i = 0; i < uidl_r->len; i++)
		if (uidl_r->p[i] < 0x21 || uidl_r->p[i] > 0x7e)
			return false;
	return true;
}

bool
pop3c_list_line(const struct slice *line, uint32_t *msgno_r, uint64_t *size_r)
{
	struct slice v;
	uint64_t n = 0;

	if (!numbered(line, msgno_r, &v) || v.len == 0 || v.len > 19)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	*size_r = n;
	return true;
}
