/* gateway/retr.c: RETR and TOP (RFC 1939 §7), streamed from the upstream.
 *
 * RETR n  -> UID FETCH uid BODY.PEEK[]; the literal goes through the dot-stuffer to the
 *            client as it arrives (upstream.c pauses reading while the client is full).
 * TOP n m -> UID FETCH uid BODY.PEEK[HEADER], then BODY.PEEK[TEXT]<off.len> in growing
 *            windows until m lines are out or the body ends, so TOP n 0 of a 100 MB message
 *            moves a few kilobytes.
 * "+OK" is written when the literal starts: a message expunged by another client gives
 * no literal and an ordinary -ERR. Once "+OK" is out, a failure can only cut the
 * connection: a false terminating "." would make the client store a truncated message.
 * BODY.PEEK never sets \Seen; QUIT does when configured. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/log.h"
#include "../imap/imap_resp.h"
#include "../pop3/pop3_reply.h"
#include "session.h"

#define TOP_WINDOW_FIRST 4096
#define TOP_WINDOW_MAX (1024 * 1024)

/* A literal far larger than RFC822.SIZE is a broken upstream, not a message. */
static bool
literal_size_sane(uint64_t literal, uint64_t size)
{
	return literal <= size * 2 + 65536;
}

static int
send_fetch(struct gw_session *s, int kind, imap_done_fn *done, const char *item)
{
	struct buf *out;

	if ((out = gw_upstream_cmd(s, kind, done, s->xfer_gen)) == NULL)
		return -1;
	buf_printf(out, "UID FETCH %u %s\r\n", s->snap.uid[s->xfer.idx], item);
	gw_upstream_send_end(s);
	return 0;
}

static bool
xfer_current(const struct gw_session *s, const struct imap_cmd *cmd, const struct imap_resp *r)
{
	return r != NULL && (s->op == GW_OP_RETR || s->op == GW_OP_TOP) && cmd->arg == s->xfer_gen;
}

static void
xfer_finish(struct gw_session *s)
{
	pop3_dotstuff_finish(&s->xfer.dot, gw_client_out(s));
	if (!s->xfer.is_top) {
		s->snap.flags[s->xfer.idx] |= GW_MSG_RETRIEVED;
		s->n_retr++;
	}
	gw_session_op_done(s);
}

/* No literal came for the message, or the server refused the FETCH. An OK without data
 * or NO [EXPUNGEISSUED] (RFC 5530) means another client expunged it: an ordinary -ERR.
 * Anything else is the server's trouble: [SYS/TEMP], the message may come next time. */
static void
xfer_no_message(struct gw_session *s, const struct imap_resp *r)
{
	bool expunged = r->status == IMAP_STATUS_OK || imap_code_is(r, "EXPUNGEISSUED", NULL);

	if (s->xfer.reply_started) {
		gw_session_close(s, "upstream failed mid-message");
		return;
	}
	gw_log(expunged ? LOG_LVL_INFO : LOG_LVL_WARN, s, "message uid=%u not available upstream "
	    "(%s)", s->snap.uid[s->xfer.idx], expunged ? "expunged" : "FETCH refused");
	if (expunged)
		pop3_reply_err(gw_client_out(s), NULL, "Message %zu no longer exists.", s->xfer.idx + 1);
	else
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "The mail server could not "
		    "deliver message %zu now, try again later.", s->xfer.idx + 1);
	gw_session_op_done(s);
}

static bool
xfer_upstream_ready(struct gw_session *s)
{
	if (s->up.state == GW_UP_READY && gw_io_open(&s->up.io))
		return true;
	/* Lost while the client was idle (BYE, a cut): this message cannot come, but the
	 * session goes on, so the client can still QUIT and be told nothing was deleted. */
	pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "Lost the connection to the mail server.");
	return false;
}

static void
xfer_begin(struct gw_session *s, size_t idx, bool is_top, enum gw_op op)
{
	memset(&s->xfer, 0, sizeof(s->xfer));
	s->xfer.idx = idx;
	s->xfer.is_top = is_top;
	pop3_dotstuff_init(&s->xfer.dot);
	s->xfer_gen++;
	s->op = op;
}

static void
retr_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	if (!xfer_current(s, cmd, r))
		return;
	if (!s->xfer.got_literal || r->status != IMAP_STATUS_OK) {
		xfer_no_message(s, r);
		return;
	}
	xfer_finish(s);
}

void
gw_retr_start(struct gw_session *s, size_t idx)
{
	if (!xfer_upstream_ready(s))
		return;
	xfer_begin(s, idx, false, GW_OP_RETR);
	if (send_fetch(s, GW_UPCMD_FETCH_BODY, retr_done, "BODY.PEEK[]") < 0)
		gw_upstream_fail(s, "cannot send FETCH");
}

static void top_window_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r);
static int top_send_window(struct gw_session *s);

/* Both the header and the current window are answered: finish, or ask for more body. */
static void
top_maybe_finish(struct gw_session *s)
{
	struct gw_xfer *x = &s->xfer;

	/* No window asked (TOP n 0), no literal (NIL or ""), a short window, or enough
	 * lines: the body is done. */
	if (x->top_lines == 0 || !x->window_seen || x->top.done ||
	    x->literal_size < x->window_len) {
		xfer_finish(s);
		return;
	}
	x->window_off += x->literal_size;
	x->window_len = x->window_len * 4 > TOP_WINDOW_MAX ? TOP_WINDOW_MAX : x->window_len * 4;
	x->window_seen = x->window_done = false;
	if (top_send_window(s) < 0)
		gw_upstream_fail(s, "cannot send FETCH");
}

static int
top_send_window(struct gw_session *s)
{
	char item[64];

	snprintf(item, sizeof(item), "BODY.PEEK[TEXT]<%llu.%llu>",
	    (unsigned long long)s->xfer.window_off, (unsigned long long)s->xfer.window_len);
	return send_fetch(s, GW_UPCMD_FETCH_TEXT, top_window_done, item);
}

static void
top_window_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	struct gw_xfer *x = &s->xfer;

	if (!xfer_current(s, cmd, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		xfer_no_message(s, r);
		return;
	}
	x->window_done = true;
	if (x->header_done)
		top_maybe_finish(s);
}

static void
top_header_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	struct gw_xfer *x = &s->xfer;

	if (!xfer_current(s, cmd, r))
		return;
	if (!x->got_literal || r->status != IMAP_STATUS_OK) {
		/* The pipelined window's answer is dropped: its generation is over. */
		s->xfer_gen++;
		xfer_no_message(s, r);
		return;
	}
	x->header_done = true;
	if (x->top_lines == 0 || x->window_done)
		top_maybe_finish(s);
}

void
gw_top_start(struct gw_session *s, size_t idx, uint32_t lines)
{
	struct gw_xfer *x = &s->xfer;

	if (!xfer_upstream_ready(s))
		return;
	xfer_begin(s, idx, true, GW_OP_TOP);
	x->top_lines = lines;
	pop3_top_init(&x->top, lines);
	if (send_fetch(s, GW_UPCMD_FETCH_HEADER, top_header_done, "BODY.PEEK[HEADER]") < 0) {
		gw_upstream_fail(s, "cannot send FETCH");
		return;
	}
	if (lines == 0)
		return;
	/* Pipelined with the header: most TOPs then cost one round trip. */
	x->window_len = TOP_WINDOW_FIRST;
	while (x->window_len < (uint64_t)lines * 80 && x->window_len < TOP_WINDOW_MAX)
		x->window_len *= 4;
	if (top_send_window(s) < 0)
		gw_upstream_fail(s, "cannot send FETCH");
}

/* The FETCH item a literal belongs to: the word before its "{n}" marker. */
static struct imap_slice
literal_item(const struct imap_event *ev)
{
	size_t end = ev->line_len, start;

	while (end > 0 && ev->line[end - 1] != '{')
		end--;
	if (end > 0)
		end--;
	if (end > 0 && ev->line[end - 1] == '~')	/* RFC 3516 literal8 */
		end--;
	while (end > 0 && ev->line[end - 1] == ' ')
		end--;
	start = end;
	while (start > 0 && ev->line[start - 1] != ' ' && ev->line[start - 1] != '(')
		start--;
	return (struct imap_slice){ ev->line + start, end - start };
}

static bool
item_is(const struct imap_slice *item, const char *prefix)
{
	size_t n = strlen(prefix);

	return item->len >= n && strncasecmp((const char *)item->p, prefix, n) == 0;
}

/* Which of our pending FETCHes a literal answers is read from its item, not from the
 * queue: Dovecot runs pipelined FETCHes together and may send a later command's data
 * before an earlier command's tagged OK. */
void
gw_xfer_literal(struct gw_session *s, const struct imap_event *ev)
{
	struct gw_xfer *x = &s->xfer;
	struct imap_slice item = literal_item(ev);
	uint64_t off;

	x->skipping = true;
	if (s->op != GW_OP_RETR && s->op != GW_OP_TOP)
		return;
	if (!x->is_top) {
		if (!item_is(&item, "BODY[]") || x->got_literal)
			return;
	} else if (item_is(&item, "BODY[HEADER]")) {
		if (x->got_literal)
			return;
	} else if (item_is(&item, "BODY[TEXT]<")) {
		struct imap_slice o = { item.p + 11, item.len - 11 };

		if (o.len < 2 || o.p[o.len - 1] != '>' || !x->got_literal || x->window_seen)
			return;
		o.len--;
		if (!imap_slice_to_u64(&o, &off) || off != x->window_off)
			return;
	} else {
		return;
	}
	if (!literal_size_sane(ev->literal_size, s->snap.size[x->idx])) {
		gw_upstream_fail(s, "literal of %llu bytes for a message of %llu",
		    (unsigned long long)ev->literal_size, (unsigned long long)s->snap.size[x->idx]);
		return;
	}
	x->skipping = false;
	if (x->got_literal) {			/* a TOP body window */
		x->window_seen = true;
		x->body_phase = true;
	}
	x->got_literal = true;
	x->literal_size = ev->literal_size;
	if (!x->reply_started) {
		if (x->is_top)
			pop3_reply_ok(gw_client_out(s), "Top of message %zu follows.", x->idx + 1);
		else
			pop3_reply_ok(gw_client_out(s), "%llu octets",
			    (unsigned long long)s->snap.size[x->idx]);
		x->reply_started = true;
	}
}

void
gw_xfer_data(struct gw_session *s, const uint8_t *p, size_t n)
{
	struct gw_xfer *x = &s->xfer;

	if (x->skipping || (s->op != GW_OP_RETR && s->op != GW_OP_TOP))
		return;
	if (x->is_top && x->body_phase)
		n = pop3_top_take(&x->top, p, n);
	s->bytes_retr += n;
	pop3_dotstuff(&x->dot, p, n, gw_client_out(s));
}

void
gw_xfer_literal_end(struct gw_session *s)
{
	s->xfer.skipping = false;
}
