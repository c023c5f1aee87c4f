/* gateway/retr.c: RETR and TOP (RFC 1939 §7), streamed from the upstream.
 *
 * RETR n  -> UID FETCH uid BODY.PEEK[]; the literal goes through the dot-stuffer to the
 *            client as it arrives; above the client's high watermark the connection pauses
 *            (the owner resumes it when the client drains).
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
#include "../pop3/pop3_reply.h"
#include "retr.h"

#define TOP_WINDOW_FIRST 4096
#define TOP_WINDOW_MAX (1024 * 1024)

#define XFER(op_) ((struct gw_xfer *)((char *)(op_) - offsetof(struct gw_xfer, op)))

static void top_window_done(struct gw_imapc_op *op, const struct imap_resp *r);

/* A literal far larger than RFC822.SIZE is a broken upstream, not a message. */
static bool
literal_size_sane(uint64_t literal, uint64_t size)
{
	return literal <= size * 2 + 65536;
}

void
gw_xfer_abort(struct gw_xfer *x)
{
	if (x->up == NULL)
		return;
	gw_imapc_op_end(x->up, &x->op);	/* its FETCHes still in flight are dropped */
	x->up = NULL;
}

static void
xfer_end(struct gw_xfer *x, enum gw_xfer_end end, const char *why)
{
	gw_xfer_abort(x);
	x->p.done(x->p.ctx, end, why);
}

static bool
send_fetch(struct gw_xfer *x, const char *what, gw_imapc_done_fn *done, const char *item)
{
	struct buf *out;

	if ((out = gw_imapc_cmd(x->up, &x->op, what, done)) == NULL)
		return false;
	buf_printf(out, "UID FETCH %u %s\r\n", x->p.uid, item);
	gw_imapc_send(x->up);
	x->inflight++;
	return true;
}

/* One of our FETCHes is answered: true when the op goes on with it. A refused op that was
 * waiting for its last FETCH ends now. */
static bool
fetch_answered(struct gw_xfer *x)
{
	x->inflight--;
	if (!x->draining)
		return true;
	if (x->inflight == 0)
		xfer_end(x, GW_XFER_REFUSED, NULL);
	return false;
}

static void
xfer_finish(struct gw_xfer *x)
{
	pop3_dotstuff_finish(&x->dot, x->p.out);
	xfer_end(x, GW_XFER_SENT, NULL);
}

/* No literal came for the message, or the server refused the FETCH. An OK without data
 * or NO [EXPUNGEISSUED] (RFC 5530) means another client expunged it: an ordinary -ERR.
 * Anything else is the server's trouble: [SYS/TEMP], the message may come next time. */
static void
xfer_no_message(struct gw_xfer *x, const struct imap_resp *r)
{
	/* NIL or an unreadable FETCH for the message is not "no such message". */
	bool expunged = (r->status == IMAP_STATUS_OK && !x->got_nil && !x->unreadable) ||
	    imap_code_is(r, "EXPUNGEISSUED", NULL);

	if (x->reply_started) {
		xfer_end(x, GW_XFER_CLOSE, "upstream failed mid-message");
		return;
	}
	log_msg(expunged ? LOG_LVL_INFO : LOG_LVL_WARN, "%s message uid=%u not available "
	    "upstream (%s)", x->up->log_id, x->p.uid, expunged ? "expunged" : x->got_nil ?
	    "FETCH gave NIL" : x->unreadable ? "unreadable FETCH" : "FETCH refused");
	if (expunged)
		pop3_reply_err(x->p.out, NULL, "Message %zu no longer exists.", x->p.msgno);
	else
		pop3_reply_err(x->p.out, POP3_CODE_SYS_TEMP, "The mail server could not "
		    "deliver message %zu now, try again later.", x->p.msgno);
	if (x->inflight > 0) {
		x->draining = true;	/* TOP: the other FETCH is still coming */
		return;
	}
	xfer_end(x, GW_XFER_REFUSED, NULL);
}

static void
retr_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_xfer *x = XFER(op);

	if (!fetch_answered(x))
		return;
	if (!x->got_literal || r->status != IMAP_STATUS_OK) {
		xfer_no_message(x, r);
		return;
	}
	xfer_finish(x);
}

static bool
top_send_window(struct gw_xfer *x)
{
	char item[64];

	snprintf(item, sizeof(item), "BODY.PEEK[TEXT]<%llu.%llu>",
	    (unsigned long long)x->window_off, (unsigned long long)x->window_len);
	return send_fetch(x, "fetching a body part", top_window_done, item);
}

/* Both the header and the current window are answered: finish, or ask for more body. */
static void
top_maybe_finish(struct gw_xfer *x)
{
	if (x->p.lines > 0 && !x->window_seen && x->window_early) {
		/* The window came before the header and was not taken: ask for it again. */
		x->window_early = x->window_done = false;
		if (!top_send_window(x))
			gw_imapc_fail(x->up, "cannot send FETCH");
		return;
	}
	/* No window asked (TOP n 0), no literal (NIL or ""), a short window, or enough
	 * lines: the body is done. */
	if (x->p.lines == 0 || !x->window_seen || x->top.done ||
	    x->literal_size < x->window_len) {
		xfer_finish(x);
		return;
	}
	x->window_off += x->literal_size;
	x->window_len = x->window_len * 4 > TOP_WINDOW_MAX ? TOP_WINDOW_MAX : x->window_len * 4;
	x->window_seen = x->window_done = false;
	if (!top_send_window(x))
		gw_imapc_fail(x->up, "cannot send FETCH");
}

static void
top_window_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_xfer *x = XFER(op);

	if (!fetch_answered(x))
		return;
	if (r->status != IMAP_STATUS_OK) {
		xfer_no_message(x, r);
		return;
	}
	x->window_done = true;
	if (x->header_done)
		top_maybe_finish(x);
}

static void
top_header_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_xfer *x = XFER(op);

	if (!fetch_answered(x))
		return;
	if (!x->got_literal || r->status != IMAP_STATUS_OK) {
		xfer_no_message(x, r);	/* drains the pipelined window first */
		return;
	}
	x->header_done = true;
	if (x->p.lines == 0 || x->window_done)
		top_maybe_finish(x);
}

/* Which of our items a FETCH attribute would be, or IMAP_SECTION_OTHER. For a TOP body
 * window, the current window's origin: a window of an earlier command has another. The
 * body comes after the header (Dovecot answers pipelined FETCHes in order). */
static enum imap_section_part
xfer_wanted(const struct gw_xfer *x, const struct imap_section *sec)
{
	struct imap_section want = { IMAP_SECTION_ALL, false, false, 0 };

	if (!x->p.top)
		return !x->got_literal && imap_section_is(sec, &want) ? IMAP_SECTION_ALL :
		    IMAP_SECTION_OTHER;
	want.part = IMAP_SECTION_HEADER;
	if (!x->got_literal && imap_section_is(sec, &want))
		return IMAP_SECTION_HEADER;
	want = (struct imap_section){ IMAP_SECTION_TEXT, false, true, x->window_off };
	if (x->got_literal && !x->window_seen && x->p.lines > 0 && imap_section_is(sec, &want))
		return IMAP_SECTION_TEXT;
	return IMAP_SECTION_OTHER;
}

static void
xfer_start_reply(struct gw_xfer *x)
{
	if (x->reply_started)
		return;
	if (x->p.top)
		pop3_reply_ok(x->p.out, "Top of message %zu follows.", x->p.msgno);
	else
		pop3_reply_ok(x->p.out, "%llu octets", (unsigned long long)x->p.size);
	x->reply_started = true;
}

/* Our data for `part` begins: `size` bytes will follow. `pending`: its FETCH named no UID
 * before it, so the line's end may still undo it (xfer_untake()). */
static void
xfer_take(struct gw_xfer *x, enum imap_section_part part, uint64_t size, bool pending)
{
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
xfer_untake(struct gw_xfer *x)
{
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
xfer_feed(struct gw_xfer *x, const uint8_t *p, size_t n)
{
	if (x->p.top && x->body_phase)
		n = pop3_top_take(&x->top, p, n);
	pop3_dotstuff(&x->dot, p, n, x->p.out);
	if (buf_len(x->p.out) >= x->p.out_hiwat)
		gw_imapc_pause(x->up);		/* resumed by the owner at the client's LOWAT */
}

/* Which FETCH a literal answers is read from its UID and item, never from the order of
 * arrival: Dovecot runs pipelined FETCHes together and may send a later command's data
 * before an earlier command's tagged OK, other clients' flag changes arrive as unsolicited
 * FETCHes, and a proxy may answer for another message. */
static bool
xfer_literal(struct gw_imapc_op *op, const struct imap_event *ev)
{
	struct gw_xfer *x = XFER(op);
	struct imap_fetch_head h;
	enum imap_fetch_head_result res;
	enum imap_section_part part;

	if (x->draining)
		return false;
	res = imap_fetch_head(ev->line, ev->line_len, &h);
	if (res == IMAP_FETCH_HEAD_INVALID)
		x->unreadable = true;		/* if no data of ours comes: [SYS/TEMP] */
	if (res != IMAP_FETCH_HEAD_ITEM)
		return false;
	if (h.has_uid && h.uid != x->p.uid)
		return false;			/* another message's data */
	if ((part = xfer_wanted(x, &h.section)) == IMAP_SECTION_OTHER) {
		/* Our body window, answered before the header (a proxy that reorders): asked
		 * again once the header is out (top_maybe_finish()), never taken as "no body". */
		if (x->p.top && h.section.part == IMAP_SECTION_TEXT && h.section.has_origin &&
		    h.section.origin == x->window_off && !x->got_literal && x->p.lines > 0)
			x->window_early = true;
		return false;
	}
	if (!literal_size_sane(ev->literal_size, x->p.size)) {
		gw_imapc_fail(x->up, "literal of %llu bytes for a message of %llu",
		    (unsigned long long)ev->literal_size, (unsigned long long)x->p.size);
		return false;
	}
	if (h.has_uid) {
		/* Our UID: this item is ours, and so is one taken earlier on the same line. */
		if (x->uid_pending)
			xfer_settled(x);
		xfer_take(x, part, ev->literal_size, false);
		xfer_start_reply(x);
		return true;
	}
	/* UID after the literal ("* 1 FETCH (BODY[] {5}\r\n... UID 7)"): taken, but "+OK" waits
	 * for its first byte, and the line's end decides (xfer_untagged()). What was streamed
	 * stays counted until then, across every item of the line. */
	x->uid_pending = true;
	xfer_take(x, part, ev->literal_size, true);
	return true;
}

static void
xfer_literal_data(struct gw_imapc_op *op, const uint8_t *p, size_t n)
{
	struct gw_xfer *x = XFER(op);

	if (x->uid_pending) {
		x->pending_streamed = true;
		xfer_start_reply(x);
	}
	xfer_feed(x, p, n);
}

/* `part` answered on the FETCH line itself: a quoted string is served exactly as a literal
 * would be; NIL means the server has no such data for a message it lists. */
static void
xfer_line_value(struct gw_xfer *x, const struct slice *text, enum imap_section_part part)
{
	struct imap_section want = { part, false, part == IMAP_SECTION_TEXT, x->window_off };
	struct imap_fetch_att att;
	struct slice rest, piece;
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
	xfer_take(x, part, size, false);
	xfer_start_reply(x);
	rest = att.value;
	while (imap_quoted_next(&rest, &piece))
		xfer_feed(x, piece.p, piece.len);
}

/* A complete untagged FETCH. It settles a literal whose UID came after it, and serves
 * items answered on the line (quoted string, NIL). */
static void
xfer_untagged(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_xfer *x = XFER(op);
	uint32_t uid;
	bool ours, has_uid;

	if (x->draining || !r->has_num || !imap_slice_eq(&r->name, "FETCH"))
		return;
	has_uid = imap_fetch_uid(&r->text, &uid);
	ours = has_uid && uid == x->p.uid;
	if (x->uid_pending) {
		bool streamed = x->pending_streamed;

		if (!ours && !streamed)
			xfer_untake(x);
		xfer_settled(x);
		if (!ours && streamed) {
			/* Another message's bytes went out as ours: only a cut is honest now,
			 * never a terminating ".". */
			gw_imapc_fail(x->up, "FETCH data streamed for uid %u belonged to %s",
			    x->p.uid, has_uid ? "another UID" : "no UID");
			return;
		}
		if (ours)
			xfer_start_reply(x);	/* a literal of 0 bytes */
	}
	if (!ours)
		return;
	if (!x->p.top) {
		if (!x->got_literal)
			xfer_line_value(x, &r->text, IMAP_SECTION_ALL);
		return;
	}
	if (!x->got_literal)
		xfer_line_value(x, &r->text, IMAP_SECTION_HEADER);
	if (x->p.lines > 0 && !x->window_seen) {
		if (x->got_literal) {
			xfer_line_value(x, &r->text, IMAP_SECTION_TEXT);
		} else {
			struct imap_section want = { IMAP_SECTION_TEXT, false, true, x->window_off };
			struct imap_fetch_att att;

			if (imap_fetch_find_section(&r->text, &want, &att))
				x->window_early = true;	/* before the header: asked again */
		}
	}
}

static void
xfer_lost(struct gw_imapc_op *op, const char *why)
{
	struct gw_xfer *x = XFER(op);

	(void)why;
	/* After "+OK" no terminating "." is sent: the client must see the cut. */
	if (!x->reply_started && !x->draining)
		pop3_reply_err(x->p.out, POP3_CODE_SYS_TEMP, "Lost the connection to the mail server.");
	xfer_end(x, GW_XFER_CLOSE, "upstream lost");
}

static const struct gw_imapc_op_handler xfer_handler = {
	.untagged = xfer_untagged,
	.literal = xfer_literal,
	.literal_data = xfer_literal_data,
	.lost = xfer_lost,
};

void
gw_xfer_start(struct gw_xfer *x, struct gw_imapc *up, const struct gw_xfer_params *p)
{
	memset(x, 0, sizeof(*x));
	x->p = *p;
	pop3_dotstuff_init(&x->dot);
	if (!gw_imapc_is_ready(up)) {
		/* Lost while the client was idle (BYE, a cut): this message cannot come, but the
		 * session goes on, so the client can still QUIT and be told nothing was deleted. */
		pop3_reply_err(p->out, POP3_CODE_SYS_TEMP, "Lost the connection to the mail server.");
		p->done(p->ctx, GW_XFER_REFUSED, NULL);
		return;
	}
	x->up = up;
	gw_imapc_op_begin(up, &x->op, &xfer_handler);
	if (!p->top) {
		if (!send_fetch(x, "fetching a message", retr_done, "BODY.PEEK[]"))
			gw_imapc_fail(up, "cannot send FETCH");
		return;
	}
	pop3_top_init(&x->top, p->lines);
	if (!send_fetch(x, "fetching a header", top_header_done, "BODY.PEEK[HEADER]")) {
		gw_imapc_fail(up, "cannot send FETCH");
		return;
	}
	if (p->lines == 0)
		return;
	/* Pipelined with the header: most TOPs then cost one round trip. */
	x->window_len = TOP_WINDOW_FIRST;
	while (x->window_len < (uint64_t)p->lines * 80 && x->window_len < TOP_WINDOW_MAX)
		x->window_len *= 4;
	if (!top_send_window(x))
		gw_imapc_fail(up, "cannot send FETCH");
}
