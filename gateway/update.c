/* gateway/update.c: QUIT in TRANSACTION, the UPDATE state (RFC 1939 §6).
 *
 * Messages marked with DELE are removed upstream now and only now. With UID EXPUNGE
 * (RFC 4315 UIDPLUS, or IMAP4rev2, RFC 9051, which includes it), for each piece of ours:
 *   UID STORE <piece> +FLAGS.SILENT (\Deleted)
 *   UID EXPUNGE <piece>                  only ours go, whatever else is \Deleted
 *   UID SEARCH UID <piece>               which of them are still there
 * Without it a plain EXPUNGE would also remove what other clients flagged \Deleted, so:
 *   UID STORE <piece> ... (every piece)
 *   UID SEARCH DELETED UID <window>      for windows 1:a, a+1:b, ... z+1:* of the mailbox,
 *                                        each with no more of ours than an answer line
 *                                        holds; EXPUNGE only if an answer to each came and
 *                                        names nothing but ours (SEARCH or ESEARCH form)
 *   EXPUNGE, then UID SEARCH UID <piece> per piece
 * and otherwise our flags stay, a warning is logged and QUIT answers -ERR [SYS/TEMP]. The
 * window between that SEARCH and the EXPUNGE (another client may flag a message in it) is
 * inherent to IMAP without UIDPLUS.
 *
 * What was removed is decided from UIDs, never by counting "* n EXPUNGE" lines (those
 * include other sessions' expunges and miss ours that someone else removed first): a
 * message of ours the last SEARCH does not name is gone (the client wanted it gone, whoever
 * removed it); one it names, or one whose answer was missing or unreadable, was not
 * removed. A piece that falls short does not stop the others; QUIT's +OK or -ERR and the
 * log's dele= follow from the count. If UIDVALIDITY changed during the session, the UIDs
 * no longer name the client's messages: nothing is touched.
 *
 * A UID set goes in pieces of at most UID_SET_MAX octets, so deleting thousands of
 * scattered messages never makes a line the server refuses, and of at most
 * search_window() UIDs, so no answer that lists them outgrows the line popgate reads
 * (50,000 consecutive UIDs are a short set but a long SEARCH answer). A piece's UID EXPUNGE is sent
 * only once its STORE is answered: Dovecot 2.3.19, given both at once in a mailbox of a
 * few thousand messages, answered OK to the EXPUNGE yet left a whole piece in place
 * (tests/integration/test_update.py found it).
 *
 * For the listing cache (RFC 7162), the owner may ask for the mailbox's numbers once the
 * deletions are done: STATUS <mailbox> (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ) goes
 * in the same write as the last UID SEARCH UID, so QUIT's answer waits for no extra round
 * trip. STATUS on the selected mailbox is legal, if discouraged (RFC 9051 §6.3.11; Dovecot
 * answers it, with [CLIENTBUG]); what it says is only ever compared, never trusted
 * (session_listing.c), and its failure changes nothing of QUIT's answer. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/uids.h"
#include "../imap/imap_search.h"
#include "../imap/imap_status.h"
#include "../imap/imap_write.h"
#include "update.h"

#define UPD(op_) ((struct gw_update *)((char *)(op_) - offsetof(struct gw_update, op)))

/* Well under RFC 7162 §4's 8192-octet command line, with room for the verb and tag. */
#define UID_SET_MAX 7000

static void delete_next(struct gw_update *u);
static void send_verify(struct gw_update *u);
static void search_next(struct gw_update *u);
static void search_done(struct gw_imapc_op *op, const struct imap_resp *r);

static bool
has_uid_expunge(const struct gw_update *u)
{
	return (u->up->caps & (GW_CAP_UIDPLUS | GW_CAP_IMAP4REV2)) != 0;
}

void
gw_update_abort(struct gw_update *u)
{
	if (u->up == NULL)
		return;
	gw_imapc_op_end(u->up, &u->op);
	u->up = NULL;
}

/* UPDATE is over: error NULL when every marked message is gone. */
static void
update_end(struct gw_update *u, const char *error)
{
	gw_update_abort(u);
	u->p.done(u->p.ctx, u->removed, error);
}

/* Every piece is decided: the client hears how it went (once STATUS, if it went, is
 * answered: status_done() comes back here). */
static void
update_finish(struct gw_update *u)
{
	u->decided = true;
	if (u->status_pending)
		return;
	if (u->left == 0) {
		update_end(u, NULL);
		return;
	}
	log_msg(LOG_LVL_WARN, "%s %zu of %zu deleted messages are still upstream", u->up->log_id,
	    u->left, u->ndel);
	/* RFC 1939 §6's words. */
	update_end(u, "some deleted messages not removed");
}

/* An answer for UPDATE to act on: false when UPDATE must stop. A UIDVALIDITY change means our UIDs may now
 * name other messages: not one more UID command goes out; what is not decided yet counts
 * as not removed. */
static bool
update_answer(struct gw_update *u, const struct imap_resp *r)
{
	(void)r;
	if (!u->up->uidvalidity_changed)
		return true;
	update_end(u, "Mailbox changed during the session, some deleted messages not removed.");
	return false;
}

/* Our marked UIDs (ascending: the snapshot is sorted). Caller frees. */
static uint32_t *
marked_uids(const struct gw_update *u, uint8_t flag, size_t *n_r)
{
	uint32_t *uids = malloc((u->p.snap->count ? u->p.snap->count : 1) * sizeof(*uids));
	size_t n = 0;

	if (uids == NULL)
		return NULL;
	for (size_t i = 0; i < u->p.snap->count; i++)
		if (u->p.snap->flags[i] & flag)
			uids[n++] = u->p.snap->uid[i];
	*n_r = n;
	return uids;
}

/* How many of our UIDs one command may name: then an answer that lists each of them (a
 * UID SEARCH DELETED window, or a UID SEARCH UID check when none went) still fits the
 * response line popgate reads ([limits] imap_line_max), at 11 octets a UID at most. A
 * set of consecutive UIDs is short on the wire ("1:50000"), so its octets alone do not
 * bound the answer. */
static size_t
search_window(const struct gw_update *u)
{
	size_t w = (u->up->t->line_max - 64) / 11;

	return w < 16 ? 16 : w;
}

/* Sends `verb` <set> `tail` for the next piece of our messages marked `flag`, from the
 * u->pos-th on, and records the piece (its size and UID bounds). Returns
 * how many it covers, 0 when none are left, or -1. */
static int
send_uid_piece(struct gw_update *u, const char *what, gw_imapc_done_fn *done, const char *verb,
    uint8_t flag, const char *tail)
{
	struct buf set = { 0 };
	uint32_t *uids;
	size_t n, k;
	struct buf *out;
	int r = -1;

	if ((uids = marked_uids(u, flag, &n)) == NULL)
		return -1;
	if (u->pos >= n) {
		free(uids);
		return 0;
	}
	k = n - u->pos;
	if (k > search_window(u))
		k = search_window(u);
	k = imap_write_uid_set(&set, uids + u->pos, k, UID_SET_MAX);
	if (k > 0 && (out = gw_imapc_cmd(u->up, &u->op, what, done)) != NULL) {
		buf_append_str(out, verb);
		buf_append(out, buf_data(&set), buf_len(&set));
		buf_append_str(out, tail);
		u->piece = k;
		u->piece_lo = uids[u->pos];
		u->piece_hi = uids[u->pos + k - 1];
		r = out->failed ? -1 : (int)k;	/* k <= search_window() */
	}
	free(uids);
	buf_free(&set);
	return r;
}

/* The first snapshot index whose UID is >= uid. */
static size_t
snap_lower_bound(const struct gw_snapshot *snap, uint32_t uid)
{
	return uids_lower_bound(snap->uid, snap->count, uid);
}

/* Looking at more snapshot entries than this for one answer means its ranges overlap
 * beyond reason: the answer is not read (a bound on a hostile server's cost). */
static bool
search_walk(struct gw_update *u)
{
	return ++u->search_walk <= 2 * u->p.snap->count + 16;
}

/* UID SEARCH DELETED, no UIDPLUS: every UID named must be one of ours marked deleted;
 * one that is not (or a number that is in no snapshot entry) makes a plain EXPUNGE
 * unsafe. */
static bool
deleted_range(void *ctx, uint32_t lo, uint32_t hi)
{
	struct gw_update *u = ctx;
	size_t i = snap_lower_bound(u->p.snap, lo), n = 0;

	for (; i < u->p.snap->count && u->p.snap->uid[i] <= hi; i++, n++) {
		if (!search_walk(u) || !(u->p.snap->flags[i] & GW_MSG_DELETED))
			return false;
	}
	u->search_found += n;
	return n == (size_t)(hi - lo) + 1;
}

/* UID SEARCH UID <piece>: the named ones of the piece are still there. A UID of our
 * snapshot outside the piece was not asked: the answer is not to our question. */
static bool
remains_range(void *ctx, uint32_t lo, uint32_t hi)
{
	struct gw_update *u = ctx;

	for (size_t i = snap_lower_bound(u->p.snap, lo); i < u->p.snap->count && u->p.snap->uid[i] <= hi;
	    i++) {
		if (!search_walk(u) || !(u->p.snap->flags[i] & GW_MSG_DELETED) ||
		    u->p.snap->uid[i] < u->piece_lo || u->p.snap->uid[i] > u->piece_hi)
			return false;
		u->p.snap->flags[i] |= GW_MSG_REMAINS;
	}
	return true;
}

static bool
any_range(void *ctx, uint32_t lo, uint32_t hi)
{
	(void)ctx;
	(void)lo;
	(void)hi;
	return true;
}

/* "* STATUS" while ours runs: another mailbox's is not ours (NOTIFY, RFC 5465, would
 * send those); ours must come once, readable, with the four numbers asked for. */
static void
status_line(struct gw_update *u, const struct imap_resp *r)
{
	struct imap_status_info st;

	if (!imap_status_parse(r, &st)) {
		u->status_bad = true;
		return;
	}
	if (!imap_status_mailbox_is(&st, u->p.status_mailbox))
		return;
	if (u->status_seen || !st.has_messages || !st.has_uidnext || !st.has_uidvalidity ||
	    !st.has_modseq)
		u->status_bad = true;
	u->status_seen = true;
	u->status.messages = st.messages;
	u->status.uidnext = st.uidnext;
	u->status.uidvalidity = st.uidvalidity;
	u->status.modseq = st.modseq;
}

/* An untagged SEARCH or ESEARCH while a SEARCH of ours runs; STATUS while ours does. */
static void
update_untagged(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);
	struct imap_search_info info;

	if (u->status_pending && imap_status_is(r)) {
		status_line(u, r);
		return;
	}
	if (!u->searching || !imap_search_is(r))
		return;
	/* Whose answer is it? An ESEARCH names its command's tag (RFC 4731 §3.1): one that
	 * names another is not ours, one that names none (or cannot be read) might be. A
	 * SEARCH names nothing: it is ours because ours is the one SEARCH running. Read once
	 * to know, then again to take the numbers. */
	if (!imap_search_parse(r, &info, any_range, NULL)) {
		u->search_bad = true;
		return;
	}
	if (info.esearch && !imap_search_tag_is(&info, u->search_tag)) {
		if (info.tag.len == 0)
			u->search_bad = true;
		return;
	}
	u->search_seen = true;
	if (info.esearch && !info.uid) {
		/* Message numbers, not the UIDs we asked for (RFC 4731 §3.1): not comparable. */
		u->search_bad = true;
		return;
	}
	u->search_walk = 0;
	if (!imap_search_parse(r, &info, u->verifying ? remains_range : deleted_range, u))
		u->search_bad = true;
}

/* Starts a SEARCH of ours (just queued): its answer is matched by update_untagged(). */
static void
search_begin(struct gw_update *u, bool verifying)
{
	const char *tag = gw_imapc_last_tag(u->up);

	strncpy(u->search_tag, tag, sizeof(u->search_tag) - 1);
	u->search_tag[sizeof(u->search_tag) - 1] = '\0';
	u->verifying = verifying;
	u->searching = true;
	u->search_seen = u->search_bad = false;
}

/* The piece is decided: count it, clear the marks, go on. */
static void
piece_decided(struct gw_update *u, bool known)
{
	for (size_t i = snap_lower_bound(u->p.snap, u->piece_lo);
	    i < u->p.snap->count && u->p.snap->uid[i] <= u->piece_hi; i++) {
		if (!(u->p.snap->flags[i] & GW_MSG_DELETED))
			continue;
		if (!known || (u->p.snap->flags[i] & GW_MSG_REMAINS))
			u->left++;
		else
			u->removed++;
		u->p.snap->flags[i] &= (uint8_t)~GW_MSG_REMAINS;
	}
	u->pos += u->piece;
	u->piece = 0;
}

static void
verify_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);
	bool known;

	u->searching = false;
	if (!update_answer(u, r))
		return;
	known = r->status == IMAP_STATUS_OK && u->search_seen && !u->search_bad;
	if (!known)
		log_msg(LOG_LVL_WARN, "%s no readable answer to which deleted messages remain "
		    "(UID %u:%u): counted as not removed", u->up->log_id, u->piece_lo, u->piece_hi);
	piece_decided(u, known);
	if (has_uid_expunge(u))
		delete_next(u);
	else
		send_verify(u);
}

static void
status_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);

	u->status_pending = false;
	u->status.ok = r->status == IMAP_STATUS_OK && u->status_seen && !u->status_bad;
	if (u->decided)
		update_finish(u);
}

/* STATUS of the mailbox, queued behind the last check (sent with it). Not sent when the
 * name would need a synchronizing literal (a round trip of its own) or cannot be queued:
 * then the owner has no numbers, which is allowed. */
static void
queue_status(struct gw_update *u)
{
	const uint8_t *mbox = (const uint8_t *)u->p.status_mailbox;
	size_t len = strlen(u->p.status_mailbox);
	bool litplus = (u->up->caps & GW_CAP_LITERALPLUS) != 0;
	enum imap_string_kind kind = imap_string_kind(mbox, len);
	struct buf *out;

	if (kind == IMAP_STRING_INVALID || (kind == IMAP_STRING_LITERAL && !litplus))
		return;
	if ((out = gw_imapc_cmd(u->up, &u->op, "asking the mailbox's numbers", status_done)) ==
	    NULL)
		return;
	buf_append_str(out, "STATUS ");
	imap_write_astring(out, mbox, len, litplus);
	buf_append_str(out, " (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)\r\n");
	u->status.sent = u->status_pending = true;
}

/* UID SEARCH UID <piece>: which of the piece are still upstream. The last piece's goes
 * with STATUS, when the owner asked for it. */
static void
send_verify(struct gw_update *u)
{
	int k = send_uid_piece(u, "checking which deleted messages remain", verify_done, "UID SEARCH UID ",
	    GW_MSG_DELETED, "\r\n");

	if (k < 0) {
		/* Nothing more can be asked: what is not decided counts as not removed. */
		u->left += u->ndel - u->pos;
		update_finish(u);
		return;
	}
	if (k == 0) {
		update_finish(u);
		return;
	}
	search_begin(u, true);
	if (u->p.status_mailbox != NULL && !u->status.sent && u->pos + (size_t)k >= u->ndel)
		queue_status(u);
	gw_imapc_send(u->up);
}

static void
expunge_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);

	if (!update_answer(u, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		char text[LOG_ESCAPE_SIZE(100)];

		log_msg(LOG_LVL_WARN, "%s EXPUNGE refused: \"%s\"", u->up->log_id,
		    log_escape(text, sizeof(text), r->text.p, r->text.len, 100));
	}
	/* Whatever it answered, the UIDs tell what is gone. */
	if (has_uid_expunge(u)) {
		send_verify(u);		/* the same piece: u->pos has not moved */
		return;
	}
	u->pos = 0;
	send_verify(u);
}

/* No UIDPLUS: UID SEARCH DELETED over the whole mailbox, in windows of UIDs
 * (1:a, a+1:b, ..., z+1:*) that each hold at most search_window() of ours, so that a large
 * deletion never makes an answer longer than a line may be. */
static void
search_next(struct gw_update *u)
{
	uint32_t *uids;
	size_t n;
	struct buf *out;

	if ((uids = marked_uids(u, GW_MSG_DELETED, &n)) == NULL ||
	    (out = gw_imapc_cmd(u->up, &u->op, "searching deleted messages", search_done)) == NULL) {
		free(uids);
		u->left = u->ndel;
		update_finish(u);
		return;
	}
	if (n - u->pos > search_window(u)) {
		uint32_t hi = uids[u->pos + search_window(u) - 1];	/* < UINT32_MAX: more follow */

		buf_printf(out, "UID SEARCH DELETED UID %u:%u\r\n", u->win_lo, hi);
		u->win_lo = hi + 1;
		u->pos += search_window(u);
	} else {
		/* RFC 9051 §6.4.4: "n:*" names the last message even when n is past it; a
		 * \Deleted last message that is not ours is then (rightly) found. */
		buf_printf(out, "UID SEARCH DELETED UID %u:*\r\n", u->win_lo);
		u->pos = n;
		u->search_last = true;
	}
	free(uids);
	search_begin(u, false);
	gw_imapc_send(u->up);
}

static void
search_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);
	struct buf *out;
	const char *why = NULL;

	u->searching = false;
	if (!update_answer(u, r))
		return;
	if (r->status != IMAP_STATUS_OK)
		why = "UID SEARCH DELETED failed";
	else if (!u->search_seen)
		why = "no answer to UID SEARCH DELETED";
	else if (u->search_bad)
		why = "UID SEARCH DELETED names messages that are not ours, or could not be read";
	if (why != NULL) {
		/* A plain EXPUNGE might remove another client's \Deleted messages: ours stay
		 * flagged, for the next expunge from anyone. */
		log_msg(LOG_LVL_WARN, "%s upstream has no UIDPLUS and %s: leaving %zu messages "
		    "flagged \\Deleted, not expunged", u->up->log_id, why, u->ndel);
		u->left = u->ndel;
		update_finish(u);
		return;
	}
	if (!u->search_last) {
		search_next(u);
		return;
	}
	u->pos = 0;
	if (u->search_found == 0) {
		/* None of ours is \Deleted any more (someone expunged them, or the STORE did not
		 * take): an EXPUNGE could only remove what was flagged since. */
		send_verify(u);
		return;
	}
	if ((out = gw_imapc_cmd(u->up, &u->op, "expunging", expunge_done)) == NULL) {
		u->left = u->ndel;
		update_finish(u);
		return;
	}
	buf_append_str(out, "EXPUNGE\r\n");
	gw_imapc_send(u->up);
}

static void
store_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);

	if (!update_answer(u, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		char text[LOG_ESCAPE_SIZE(100)];

		log_msg(LOG_LVL_WARN, "%s STORE \\Deleted refused for UID %u:%u: \"%s\"",
		    u->up->log_id, u->piece_lo, u->piece_hi, log_escape(text, sizeof(text), r->text.p,
		    r->text.len, 100));
	}
	if (!has_uid_expunge(u)) {
		u->pos += u->piece;
		delete_next(u);
		return;
	}
	if (r->status != IMAP_STATUS_OK) {
		/* Not flagged: nothing to expunge, but some may be gone already. */
		send_verify(u);
		return;
	}
	/* The same piece (u->pos has not moved): UID EXPUNGE of just those. */
	if (send_uid_piece(u, "expunging", expunge_done, "UID EXPUNGE ", GW_MSG_DELETED,
	    "\r\n") <= 0) {
		send_verify(u);
		return;
	}
	gw_imapc_send(u->up);
}

/* The next piece: UID STORE \Deleted, then (store_done) with UID EXPUNGE its UID EXPUNGE
 * and its check. Without, once every piece is flagged: UID SEARCH DELETED (search_done). */
static void
delete_next(struct gw_update *u)
{
	int k;

	k = send_uid_piece(u, "flagging messages", store_done, "UID STORE ", GW_MSG_DELETED,
	    " +FLAGS.SILENT (\\Deleted)\r\n");
	if (k < 0) {
		u->left += u->ndel - u->pos;
		update_finish(u);
		return;
	}
	if (k == 0) {
		if (has_uid_expunge(u)) {
			update_finish(u);
			return;
		}
		u->pos = 0;
		u->win_lo = 1;
		u->search_found = 0;
		search_next(u);
		return;
	}
	gw_imapc_send(u->up);
}

static void seen_next(struct gw_update *u);

static void
seen_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);

	if (!update_answer(u, r))
		return;
	if (r->status != IMAP_STATUS_OK)
		log_msg(LOG_LVL_WARN, "%s could not set \\Seen on retrieved messages", u->up->log_id);
	u->pos += u->piece;
	seen_next(u);
}

/* [pop3] set_seen: \Seen on the retrieved messages, piece by piece, before the deletions. */
static void
seen_next(struct gw_update *u)
{
	int k = send_uid_piece(u, "flagging messages", seen_done, "UID STORE ", GW_MSG_RETRIEVED,
	    " +FLAGS.SILENT (\\Seen)\r\n");

	if (k < 0) {
		u->left = u->ndel;
		update_finish(u);
		return;
	}
	if (k > 0) {
		gw_imapc_send(u->up);
		return;
	}
	u->pos = 0;
	if (u->ndel == 0)
		update_finish(u);
	else
		delete_next(u);
}

static void
update_lost(struct gw_imapc_op *op, const char *why)
{
	struct gw_update *u = UPD(op);

	(void)why;
	if (u->decided) {
		/* Only STATUS was still to come: the deletions' outcome stands. */
		u->status_pending = false;
		update_finish(u);
		return;
	}
	gw_update_abort(u);
	u->p.done(u->p.ctx, u->removed, "Lost the connection to the mail server, deletions may "
	    "not have been applied.");
}

static const struct gw_imapc_op_handler update_handler = {
	.untagged = update_untagged,
	.lost = update_lost,
};

static void
update_begin(struct gw_update *u)
{
	if (u->nseen > 0)
		seen_next(u);
	else
		delete_next(u);
}

/* The server's capabilities now (imapc.c read its "* CAPABILITY"); a refusal leaves
 * what was known: at worst the careful way without UID EXPUNGE. */
static void
caps_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_update *u = UPD(op);

	if (!update_answer(u, r))
		return;
	update_begin(u);
}

void
gw_update_start(struct gw_update *u, struct gw_imapc *up, const struct gw_update_params *p)
{
	size_t ndel = 0, nseen = 0;

	memset(u, 0, sizeof(*u));
	u->p = *p;
	for (size_t i = 0; i < p->snap->count; i++) {
		ndel += (p->snap->flags[i] & GW_MSG_DELETED) != 0;
		nseen += (p->snap->flags[i] & GW_MSG_RETRIEVED) != 0;
	}
	if (!p->set_seen)
		nseen = 0;
	if (ndel == 0 && nseen == 0) {
		p->done(p->ctx, 0, NULL);
		return;
	}
	if (!gw_imapc_is_ready(up)) {
		p->done(p->ctx, 0, "Lost the connection to the mail server, nothing deleted.");
		return;
	}
	if (up->uidvalidity_changed) {
		p->done(p->ctx, 0, "Mailbox changed during the session, nothing deleted.");
		return;
	}
	if (up->read_only && ndel > 0) {
		p->done(p->ctx, 0, "Mailbox is read-only, nothing deleted.");
		return;
	}
	u->up = up;
	u->ndel = ndel;
	u->nseen = nseen;
	gw_imapc_op_begin(up, &u->op, &update_handler);
	if (ndel > 0 && !up->caps_after_login) {
		/* Servers often list UIDPLUS only once logged in, and this one's LOGIN OK named
		 * no capabilities: ask, rather than fall back to SEARCH DELETED + EXPUNGE. */
		struct buf *out = gw_imapc_cmd(up, &u->op, "CAPABILITY", caps_done);

		if (out != NULL) {
			buf_append_str(out, "CAPABILITY\r\n");
			gw_imapc_send(up);
			return;
		}
	}
	update_begin(u);
}
