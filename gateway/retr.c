/* gateway/retr.c: RETR and TOP (RFC 1939 §7), streamed from the upstream.
 *
 * RETR n  -> UID FETCH uid BODY.PEEK[]; the literal goes through the dot-stuffer to the
 *            client as it arrives (upstream.c pauses reading while the client is full).
 * TOP n m -> UID FETCH uid BODY.PEEK[HEADER], then BODY.PEEK[TEXT]<off.len> in growing
 *            windows until m lines are out or the body ends, so TOP n 0 of a 100 MB message
 *            moves a few kilobytes.
 * Data is ours only by UID and item (imap/imap_fetch.c), never by arrival order: a FETCH
 * for another UID, an unsolicited FETCH (another client's flag change), a window of an
 * earlier command (another origin) are skipped. A literal whose UID comes after it is
 * taken, and its FETCH line's end decides: another UID then means a cut if bytes went out,
 * a skip if none did. An item answered on the line as a quoted string is served as a
 * literal would be; NIL is -ERR [SYS/TEMP] (a window's NIL or "" ends the body).
 * "+OK" is written when our data starts: a message expunged by another client gives no
 * data and an ordinary -ERR. Once "+OK" is out, a failure can only cut the connection: a
 * false terminating "." would make the client store a truncated message.
 * BODY.PEEK never sets \Seen; QUIT does when configured. */
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "../imap/imap_fetch.h"
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
	const struct gw_xfer *x = &s->xfer;
	/* NIL or an unreadable FETCH for the message is not "no such message". */
	bool expunged = (r->status == IMAP_STATUS_OK && !x->got_nil && !x->unreadable) ||
	    imap_code_is(r, "EXPUNGEISSUED", NULL);

	if (s->xfer.reply_started) {
		gw_session_close(s, "upstream failed mid-message");
		return;
	}
	gw_log(expunged ? LOG_LVL_INFO : LOG_LVL_WARN, s, "message uid=%u not available upstream "
	    "(%s)", s->snap.uid[s->xfer.idx], expunged ? "expunged" : x->got_nil ? "FETCH gave NIL" :
	    x->unreadable ? "unreadable FETCH" : "FETCH refused");
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

	if (x->top_lines > 0 && !x->window_seen && x->window_early) {
		/* The window came before the header and was not taken: ask for it again. */
		x->window_early = x->window_done = false;
		if (top_send_window(s) < 0)
			gw_upstream_fail(s, "cannot send FETCH");
		return;
	}
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

/* Which of our items a FETCH attribute would be, or IMAP_SECTION_OTHER. Matched by item
 * and, for a TOP body window, by the current window's origin: a window of an earlier
 * command has another origin. The body comes after the header (Dovecot answers
 * pipelined FETCHes in order). */
static enum imap_section_part
xfer_wanted(const struct gw_session *s, const struct imap_section *sec)
{
	const struct gw_xfer *x = &s->xfer;

	if (sec->binary)
		return IMAP_SECTION_OTHER;	/* we ask BODY.PEEK, never BINARY.PEEK */
	if (!x->is_top)
		return sec->part == IMAP_SECTION_ALL && !sec->has_origin && !x->got_literal ?
		    IMAP_SECTION_ALL : IMAP_SECTION_OTHER;
	if (sec->part == IMAP_SECTION_HEADER && !sec->has_origin && !x->got_literal)
		return IMAP_SECTION_HEADER;
	if (sec->part == IMAP_SECTION_TEXT && sec->has_origin && sec->origin == x->window_off &&
	    x->got_literal && !x->window_seen && x->top_lines > 0)
		return IMAP_SECTION_TEXT;
	return IMAP_SECTION_OTHER;
}

static void
xfer_start_reply(struct gw_session *s)
{
	struct gw_xfer *x = &s->xfer;

	if (x->reply_started)
		return;
	if (x->is_top)
		pop3_reply_ok(gw_client_out(s), "Top of message %zu follows.", x->idx + 1);
	else
		pop3_reply_ok(gw_client_out(s), "%llu octets", (unsigned long long)s->snap.size[x->idx]);
	x->reply_started = true;
}

/* Our data for `part` begins: `size` bytes will follow. `pending`: its FETCH named no UID
 * before it, so the line's end may still undo it (xfer_untake()). */
static void
xfer_take(struct gw_session *s, enum imap_section_part part, uint64_t size, bool pending)
{
	struct gw_xfer *x = &s->xfer;

	if (pending && part == IMAP_SECTION_TEXT && !x->pending_window) {
		x->pending_window = true;
		x->pending_body_phase = x->body_phase;
	} else if (pending && part != IMAP_SECTION_TEXT) {
		x->pending_header = true;
	}
	if (part == IMAP_SECTION_TEXT) {
		x->window_seen = true;
		x->body_phase = true;
	}
	x->got_literal = true;
	x->literal_size = size;
}

/* The items taken from a FETCH line before its UID was known turned out not to be ours,
 * and nothing of them reached the client: as if they had been skipped. A line may have
 * carried two (a header and a window): both are undone. */
static void
xfer_untake(struct gw_session *s)
{
	struct gw_xfer *x = &s->xfer;

	if (x->pending_window) {
		x->window_seen = false;
		x->body_phase = x->pending_body_phase;
	}
	if (x->pending_header)
		x->got_literal = false;
	x->literal_size = 0;
}

/* The line that left the UID pending is settled, one way or the other. */
static void
xfer_settled(struct gw_xfer *x)
{
	x->uid_pending = x->pending_streamed = false;
	x->pending_header = x->pending_window = false;
}

static void
xfer_feed(struct gw_session *s, const uint8_t *p, size_t n)
{
	struct gw_xfer *x = &s->xfer;

	if (x->is_top && x->body_phase)
		n = pop3_top_take(&x->top, p, n);
	s->bytes_retr += n;
	pop3_dotstuff(&x->dot, p, n, gw_client_out(s));
}

/* Which FETCH a literal answers is read from its UID and item, never from the order of
 * arrival: Dovecot runs pipelined FETCHes together and may send a later command's data
 * before an earlier command's tagged OK, other clients' flag changes arrive as unsolicited
 * FETCHes, and a proxy may answer for another message. */
void
gw_xfer_literal(struct gw_session *s, const struct imap_event *ev)
{
	struct gw_xfer *x = &s->xfer;
	struct imap_fetch_head h;
	enum imap_fetch_head_result res;
	enum imap_section_part part;

	x->skipping = true;
	if (s->op != GW_OP_RETR && s->op != GW_OP_TOP)
		return;
	res = imap_fetch_head(ev->line, ev->line_len, &h);
	if (res == IMAP_FETCH_HEAD_INVALID)
		x->unreadable = true;		/* if no data of ours comes: [SYS/TEMP] */
	if (res != IMAP_FETCH_HEAD_ITEM)
		return;
	if (h.has_uid && h.uid != s->snap.uid[x->idx])
		return;				/* another message's data */
	if ((part = xfer_wanted(s, &h.section)) == IMAP_SECTION_OTHER) {
		/* Our body window, answered before the header (a proxy that reorders): asked
		 * again once the header is out (top_maybe_finish()), never taken as "no body". */
		if (x->is_top && h.section.part == IMAP_SECTION_TEXT && h.section.has_origin &&
		    h.section.origin == x->window_off && !x->got_literal && x->top_lines > 0)
			x->window_early = true;
		return;
	}
	if (!literal_size_sane(ev->literal_size, s->snap.size[x->idx])) {
		gw_upstream_fail(s, "literal of %llu bytes for a message of %llu",
		    (unsigned long long)ev->literal_size, (unsigned long long)s->snap.size[x->idx]);
		return;
	}
	x->skipping = false;
	if (h.has_uid) {
		/* Our UID: this item is ours, and so is one taken earlier on the same line. */
		if (x->uid_pending)
			xfer_settled(x);
		xfer_take(s, part, ev->literal_size, false);
		xfer_start_reply(s);
		return;
	}
	/* UID after the literal ("* 1 FETCH (BODY[] {5}\r\n... UID 7)"): taken, but "+OK" waits
	 * for its first byte, and the line's end decides (gw_xfer_fetch_line()). What was
	 * streamed stays counted until then, across every item of the line. */
	x->uid_pending = true;
	xfer_take(s, part, ev->literal_size, true);
}

void
gw_xfer_data(struct gw_session *s, const uint8_t *p, size_t n)
{
	struct gw_xfer *x = &s->xfer;

	if (x->skipping || (s->op != GW_OP_RETR && s->op != GW_OP_TOP))
		return;
	if (x->uid_pending) {
		x->pending_streamed = true;
		xfer_start_reply(s);
	}
	xfer_feed(s, p, n);
}

void
gw_xfer_literal_end(struct gw_session *s)
{
	s->xfer.skipping = false;
}

/* `part` answered on the FETCH line itself: a quoted string is served exactly as a literal
 * would be; NIL means the server has no such data for a message it lists. */
static void
xfer_line_value(struct gw_session *s, const struct imap_slice *text, enum imap_section_part part)
{
	struct gw_xfer *x = &s->xfer;
	struct imap_section want = { part, false, part == IMAP_SECTION_TEXT, x->window_off };
	struct imap_fetch_att att;
	struct imap_slice rest, piece;
	uint64_t size = 0;

	if (!imap_fetch_find_section(text, &want, &att))
		return;
	if (att.kind == IMAP_VALUE_NIL) {
		if (part != IMAP_SECTION_TEXT)
			x->got_nil = true;
		/* A window: NIL or "" past the end, the body is over (top_maybe_finish()). */
		return;
	}
	if (att.kind != IMAP_VALUE_QUOTED)
		return;			/* a literal: taken (or not) when it came */
	rest = att.value;
	while (imap_quoted_next(&rest, &piece))
		size += piece.len;
	xfer_take(s, part, size, false);
	xfer_start_reply(s);
	rest = att.value;
	while (imap_quoted_next(&rest, &piece))
		xfer_feed(s, piece.p, piece.len);
}

/* A complete untagged FETCH while a RETR/TOP runs (upstream.c). It settles a literal whose
 * UID came after it, and serves items answered on the line (quoted string, NIL). */
void
gw_xfer_fetch_line(struct gw_session *s, const struct imap_resp *r)
{
	struct gw_xfer *x = &s->xfer;
	uint32_t uid;
	bool ours;

	if (s->op != GW_OP_RETR && s->op != GW_OP_TOP)
		return;
	ours = imap_fetch_uid(&r->text, &uid) && uid == s->snap.uid[x->idx];
	if (x->uid_pending) {
		bool streamed = x->pending_streamed;

		if (!ours && !streamed)
			xfer_untake(s);
		xfer_settled(x);
		if (!ours && streamed) {
			/* Another message's bytes went out as ours: only a cut is honest now,
			 * never a terminating ".". */
			gw_upstream_fail(s, "FETCH data streamed for uid %u belonged to %s",
			    s->snap.uid[x->idx], imap_fetch_uid(&r->text, &uid) ? "another UID" :
			    "no UID");
			return;
		}
		if (ours)
			xfer_start_reply(s);	/* a literal of 0 bytes */
	}
	if (!ours)
		return;
	if (!x->is_top) {
		if (!x->got_literal)
			xfer_line_value(s, &r->text, IMAP_SECTION_ALL);
		return;
	}
	if (!x->got_literal)
		xfer_line_value(s, &r->text, IMAP_SECTION_HEADER);
	if (x->top_lines > 0 && !x->window_seen) {
		if (x->got_literal) {
			xfer_line_value(s, &r->text, IMAP_SECTION_TEXT);
		} else {
			struct imap_section want = { IMAP_SECTION_TEXT, false, true, x->window_off };
			struct imap_fetch_att att;

			if (imap_fetch_find_section(&r->text, &want, &att))
				x->window_early = true;	/* before the header: asked again */
		}
	}
}
