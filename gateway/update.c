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
 * (tests/integration/test_update.py found it). */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../imap/imap_search.h"
#include "../imap/imap_write.h"
#include "../pop3/pop3_reply.h"
#include "session.h"

/* Well under RFC 7162 §4's 8192-octet command line, with room for the verb and tag. */
#define UID_SET_MAX 7000

static void delete_next(struct gw_session *s);
static void send_verify(struct gw_session *s);
static void search_next(struct gw_session *s);
static void search_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r);

static bool
has_uid_expunge(const struct gw_session *s)
{
	return (s->up.caps & (GW_CAP_UIDPLUS | GW_CAP_IMAP4REV2)) != 0;
}

static void
update_reply_and_close(struct gw_session *s, bool ok, const char *why)
{
	if (ok) {
		pop3_reply_ok(gw_client_out(s), "Logging out, %zu messages deleted.", s->n_dele);
	} else {
		char user[GW_LOG_USER_SIZE];

		gw_log(LOG_LVL_WARN, s, "QUIT of user=%s: %s", gw_log_user(s, user, sizeof(user)),
		    why);
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "%s", why);
	}
	gw_upstream_logout(s);
	gw_session_flush(s);
	gw_session_close(s, ok ? "ok" : "update failed");
}

/* Every piece is decided: the client hears how it went. */
static void
update_finish(struct gw_session *s)
{
	s->n_dele = s->upd.removed;
	if (s->upd.left == 0) {
		update_reply_and_close(s, true, NULL);
		return;
	}
	gw_log(LOG_LVL_WARN, s, "%zu of %zu deleted messages are still upstream", s->upd.left,
	    s->upd.ndel);
	/* RFC 1939 §6's words. */
	update_reply_and_close(s, false, "some deleted messages not removed");
}

/* An answer for UPDATE to act on: false when UPDATE is over (the upstream was lost: the
 * session answered already) or must stop. A UIDVALIDITY change means our UIDs may now
 * name other messages: not one more UID command goes out; what is not decided yet counts
 * as not removed. */
static bool
update_answer(struct gw_session *s, const struct imap_resp *r)
{
	if (r == NULL || s->op != GW_OP_QUIT)
		return false;
	if (!s->up.uidvalidity_changed)
		return true;
	s->n_dele = s->upd.removed;
	update_reply_and_close(s, false, "Mailbox changed during the session, some deleted "
	    "messages not removed.");
	return false;
}

/* Our marked UIDs (ascending: the snapshot is sorted). Caller frees. */
static uint32_t *
marked_uids(const struct gw_session *s, uint8_t flag, size_t *n_r)
{
	uint32_t *uids = malloc((s->snap.count ? s->snap.count : 1) * sizeof(*uids));
	size_t n = 0;

	if (uids == NULL)
		return NULL;
	for (size_t i = 0; i < s->snap.count; i++)
		if (s->snap.flags[i] & flag)
			uids[n++] = s->snap.uid[i];
	*n_r = n;
	return uids;
}

/* How many of our UIDs one command may name: then an answer that lists each of them (a
 * UID SEARCH DELETED window, or a UID SEARCH UID check when none went) still fits the
 * response line popgate reads ([limits] imap_line_max), at 11 octets a UID at most. A
 * set of consecutive UIDs is short on the wire ("1:50000"), so its octets alone do not
 * bound the answer. */
static size_t
search_window(const struct gw_session *s)
{
	size_t w = (s->w->cfg->imap_line_max - 64) / 11;

	return w < 16 ? 16 : w;
}

/* Sends `verb` <set> `tail` for the next piece of our messages marked `flag`, from the
 * s->upd.pos-th on, and records the piece (its size and UID bounds) in s->upd. Returns
 * how many it covers, 0 when none are left, or -1. */
static int
send_uid_piece(struct gw_session *s, int kind, imap_done_fn *done, const char *verb,
    uint8_t flag, const char *tail)
{
	struct buf set = { 0 };
	uint32_t *uids;
	size_t n, k;
	struct buf *out;
	int r = -1;

	if ((uids = marked_uids(s, flag, &n)) == NULL)
		return -1;
	if (s->upd.pos >= n) {
		free(uids);
		return 0;
	}
	k = n - s->upd.pos;
	if (k > search_window(s))
		k = search_window(s);
	k = imap_write_uid_set(&set, uids + s->upd.pos, k, UID_SET_MAX);
	if (k > 0 && (out = gw_upstream_cmd(s, kind, done, (uint32_t)k)) != NULL) {
		buf_append_str(out, verb);
		buf_append(out, buf_data(&set), buf_len(&set));
		buf_append_str(out, tail);
		s->upd.piece = k;
		s->upd.piece_lo = uids[s->upd.pos];
		s->upd.piece_hi = uids[s->upd.pos + k - 1];
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
	size_t lo = 0, hi = snap->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->uid[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Looking at more snapshot entries than this for one answer means its ranges overlap
 * beyond reason: the answer is not read (a bound on a hostile server's cost). */
static bool
search_walk(struct gw_session *s)
{
	return ++s->upd.search_walk <= 2 * s->snap.count + 16;
}

/* UID SEARCH DELETED, no UIDPLUS: every UID named must be one of ours marked deleted;
 * one that is not (or a number that is in no snapshot entry) makes a plain EXPUNGE
 * unsafe. */
static bool
deleted_range(void *ctx, uint32_t lo, uint32_t hi)
{
	struct gw_session *s = ctx;
	size_t i = snap_lower_bound(&s->snap, lo), n = 0;

	for (; i < s->snap.count && s->snap.uid[i] <= hi; i++, n++) {
		if (!search_walk(s) || !(s->snap.flags[i] & GW_MSG_DELETED))
			return false;
	}
	s->upd.search_found += n;
	return n == (size_t)(hi - lo) + 1;
}

/* UID SEARCH UID <piece>: the named ones of the piece are still there. A UID of our
 * snapshot outside the piece was not asked: the answer is not to our question. */
static bool
remains_range(void *ctx, uint32_t lo, uint32_t hi)
{
	struct gw_session *s = ctx;

	for (size_t i = snap_lower_bound(&s->snap, lo); i < s->snap.count && s->snap.uid[i] <= hi;
	    i++) {
		if (!search_walk(s) || !(s->snap.flags[i] & GW_MSG_DELETED) ||
		    s->snap.uid[i] < s->upd.piece_lo || s->snap.uid[i] > s->upd.piece_hi)
			return false;
		s->snap.flags[i] |= GW_MSG_REMAINS;
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

void
gw_update_search_data(struct gw_session *s, const struct imap_resp *r)
{
	struct imap_search_info info;

	if (s->op != GW_OP_QUIT)
		return;
	/* Whose answer is it? An ESEARCH names its command's tag (RFC 4731 §3.1): one that
	 * names another is not ours, one that names none (or cannot be read) might be. A
	 * SEARCH names nothing: it is ours because ours is the one SEARCH running. Read once
	 * to know, then again to take the numbers. */
	if (!imap_search_parse(r, &info, any_range, NULL)) {
		s->upd.search_bad = true;
		return;
	}
	if (info.esearch && !imap_search_tag_is(&info, s->upd.search_tag)) {
		if (info.tag.len == 0)
			s->upd.search_bad = true;
		return;
	}
	s->upd.search_seen = true;
	if (info.esearch && !info.uid) {
		/* Message numbers, not the UIDs we asked for (RFC 4731 §3.1): not comparable. */
		s->upd.search_bad = true;
		return;
	}
	s->upd.search_walk = 0;
	if (!imap_search_parse(r, &info, s->upd.verifying ? remains_range : deleted_range, s))
		s->upd.search_bad = true;
}

/* Starts a SEARCH of ours (just queued): its answer is matched by gw_update_search_data(). */
static void
search_begin(struct gw_session *s, bool verifying)
{
	const char *tag = gw_upstream_last_tag(s);

	strncpy(s->upd.search_tag, tag, sizeof(s->upd.search_tag) - 1);
	s->upd.search_tag[sizeof(s->upd.search_tag) - 1] = '\0';
	s->upd.verifying = verifying;
	s->upd.search_seen = s->upd.search_bad = false;
}

/* The piece is decided: count it, clear the marks, go on. */
static void
piece_decided(struct gw_session *s, bool known)
{
	for (size_t i = snap_lower_bound(&s->snap, s->upd.piece_lo);
	    i < s->snap.count && s->snap.uid[i] <= s->upd.piece_hi; i++) {
		if (!(s->snap.flags[i] & GW_MSG_DELETED))
			continue;
		if (!known || (s->snap.flags[i] & GW_MSG_REMAINS))
			s->upd.left++;
		else
			s->upd.removed++;
		s->snap.flags[i] &= (uint8_t)~GW_MSG_REMAINS;
	}
	s->upd.pos += s->upd.piece;
	s->upd.piece = 0;
}

static void
verify_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	bool known;

	(void)cmd;
	if (!update_answer(s, r))
		return;
	known = r->status == IMAP_STATUS_OK && s->upd.search_seen && !s->upd.search_bad;
	if (!known)
		gw_log(LOG_LVL_WARN, s, "no readable answer to which deleted messages remain "
		    "(UID %u:%u): counted as not removed", s->upd.piece_lo, s->upd.piece_hi);
	piece_decided(s, known);
	if (has_uid_expunge(s))
		delete_next(s);
	else
		send_verify(s);
}

/* UID SEARCH UID <piece>: which of the piece are still upstream. */
static void
send_verify(struct gw_session *s)
{
	int k = send_uid_piece(s, GW_UPCMD_VERIFY, verify_done, "UID SEARCH UID ",
	    GW_MSG_DELETED, "\r\n");

	if (k < 0) {
		/* Nothing more can be asked: what is not decided counts as not removed. */
		s->upd.left += s->upd.ndel - s->upd.pos;
		update_finish(s);
		return;
	}
	if (k == 0) {
		update_finish(s);
		return;
	}
	search_begin(s, true);
	gw_upstream_send_end(s);
}

static void
expunge_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!update_answer(s, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		char text[LOG_ESCAPE_SIZE(100)];

		gw_log(LOG_LVL_WARN, s, "EXPUNGE refused: \"%s\"", log_escape(text, sizeof(text),
		    r->text.p, r->text.len, 100));
	}
	/* Whatever it answered, the UIDs tell what is gone. */
	if (has_uid_expunge(s)) {
		send_verify(s);		/* the same piece: s->upd.pos has not moved */
		return;
	}
	s->upd.pos = 0;
	send_verify(s);
}

/* No UIDPLUS: UID SEARCH DELETED over the whole mailbox, in windows of UIDs
 * (1:a, a+1:b, ..., z+1:*) that each hold at most search_window() of ours, so that a large
 * deletion never makes an answer longer than a line may be. */
static void
search_next(struct gw_session *s)
{
	uint32_t *uids;
	size_t n;
	struct buf *out;

	if ((uids = marked_uids(s, GW_MSG_DELETED, &n)) == NULL ||
	    (out = gw_upstream_cmd(s, GW_UPCMD_SEARCH, search_done, 0)) == NULL) {
		free(uids);
		s->upd.left = s->upd.ndel;
		update_finish(s);
		return;
	}
	if (n - s->upd.pos > search_window(s)) {
		uint32_t hi = uids[s->upd.pos + search_window(s) - 1];	/* < UINT32_MAX: more follow */

		buf_printf(out, "UID SEARCH DELETED UID %u:%u\r\n", s->upd.win_lo, hi);
		s->upd.win_lo = hi + 1;
		s->upd.pos += search_window(s);
	} else {
		/* RFC 9051 §6.4.4: "n:*" names the last message even when n is past it; a
		 * \Deleted last message that is not ours is then (rightly) found. */
		buf_printf(out, "UID SEARCH DELETED UID %u:*\r\n", s->upd.win_lo);
		s->upd.pos = n;
		s->upd.search_last = true;
	}
	free(uids);
	search_begin(s, false);
	gw_upstream_send_end(s);
}

static void
search_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	struct buf *out;
	const char *why = NULL;

	(void)cmd;
	if (!update_answer(s, r))
		return;
	if (r->status != IMAP_STATUS_OK)
		why = "UID SEARCH DELETED failed";
	else if (!s->upd.search_seen)
		why = "no answer to UID SEARCH DELETED";
	else if (s->upd.search_bad)
		why = "UID SEARCH DELETED names messages that are not ours, or could not be read";
	if (why != NULL) {
		/* A plain EXPUNGE might remove another client's \Deleted messages: ours stay
		 * flagged, for the next expunge from anyone. */
		gw_log(LOG_LVL_WARN, s, "upstream has no UIDPLUS and %s: leaving %zu messages "
		    "flagged \\Deleted, not expunged", why, s->upd.ndel);
		s->upd.left = s->upd.ndel;
		update_finish(s);
		return;
	}
	if (!s->upd.search_last) {
		search_next(s);
		return;
	}
	s->upd.pos = 0;
	if (s->upd.search_found == 0) {
		/* None of ours is \Deleted any more (someone expunged them, or the STORE did not
		 * take): an EXPUNGE could only remove what was flagged since. */
		send_verify(s);
		return;
	}
	if ((out = gw_upstream_cmd(s, GW_UPCMD_EXPUNGE, expunge_done, 0)) == NULL) {
		s->upd.left = s->upd.ndel;
		update_finish(s);
		return;
	}
	buf_append_str(out, "EXPUNGE\r\n");
	gw_upstream_send_end(s);
}

static void
store_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!update_answer(s, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		char text[LOG_ESCAPE_SIZE(100)];

		gw_log(LOG_LVL_WARN, s, "STORE \\Deleted refused for UID %u:%u: \"%s\"",
		    s->upd.piece_lo, s->upd.piece_hi, log_escape(text, sizeof(text), r->text.p,
		    r->text.len, 100));
	}
	if (!has_uid_expunge(s)) {
		s->upd.pos += s->upd.piece;
		delete_next(s);
		return;
	}
	if (r->status != IMAP_STATUS_OK) {
		/* Not flagged: nothing to expunge, but some may be gone already. */
		send_verify(s);
		return;
	}
	/* The same piece (s->upd.pos has not moved): UID EXPUNGE of just those. */
	if (send_uid_piece(s, GW_UPCMD_EXPUNGE, expunge_done, "UID EXPUNGE ", GW_MSG_DELETED,
	    "\r\n") <= 0) {
		send_verify(s);
		return;
	}
	gw_upstream_send_end(s);
}

/* The next piece: UID STORE \Deleted, then (store_done) with UID EXPUNGE its UID EXPUNGE
 * and its check. Without, once every piece is flagged: UID SEARCH DELETED (search_done). */
static void
delete_next(struct gw_session *s)
{
	int k;

	k = send_uid_piece(s, GW_UPCMD_STORE, store_done, "UID STORE ", GW_MSG_DELETED,
	    " +FLAGS.SILENT (\\Deleted)\r\n");
	if (k < 0) {
		s->upd.left += s->upd.ndel - s->upd.pos;
		update_finish(s);
		return;
	}
	if (k == 0) {
		if (has_uid_expunge(s)) {
			update_finish(s);
			return;
		}
		s->upd.pos = 0;
		s->upd.win_lo = 1;
		s->upd.search_found = 0;
		search_next(s);
		return;
	}
	gw_upstream_send_end(s);
}

static void seen_next(struct gw_session *s);

static void
seen_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	if (!update_answer(s, r))
		return;
	if (r->status != IMAP_STATUS_OK)
		gw_log(LOG_LVL_WARN, s, "could not set \\Seen on retrieved messages");
	s->upd.pos += cmd->arg;
	seen_next(s);
}

/* [pop3] set_seen: \Seen on the retrieved messages, piece by piece, before the deletions. */
static void
seen_next(struct gw_session *s)
{
	int k = send_uid_piece(s, GW_UPCMD_STORE, seen_done, "UID STORE ", GW_MSG_RETRIEVED,
	    " +FLAGS.SILENT (\\Seen)\r\n");

	if (k < 0) {
		s->upd.left = s->upd.ndel;
		update_finish(s);
		return;
	}
	if (k > 0) {
		gw_upstream_send_end(s);
		return;
	}
	s->upd.pos = 0;
	if (s->upd.ndel == 0)
		update_finish(s);
	else
		delete_next(s);
}

static void
update_begin(struct gw_session *s)
{
	if (s->upd.nseen > 0)
		seen_next(s);
	else
		delete_next(s);
}

/* The server's capabilities now (upstream.c read its "* CAPABILITY"); a refusal leaves
 * what was known: at worst the careful way without UID EXPUNGE. */
static void
caps_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!update_answer(s, r))
		return;
	update_begin(s);
}

void
gw_update_start(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	size_t ndel = 0, nseen = 0;

	for (size_t i = 0; i < s->snap.count; i++) {
		ndel += (s->snap.flags[i] & GW_MSG_DELETED) != 0;
		nseen += (s->snap.flags[i] & GW_MSG_RETRIEVED) != 0;
	}
	if (!cfg->set_seen)
		nseen = 0;
	gw_session_enter(s, GW_S_UPDATE);
	s->op = GW_OP_QUIT;
	if (ndel == 0 && nseen == 0) {
		update_reply_and_close(s, true, NULL);
		return;
	}
	if (s->up.state != GW_UP_READY || !gw_io_open(&s->up.io)) {
		update_reply_and_close(s, false, "Lost the connection to the mail server, nothing deleted.");
		return;
	}
	if (s->up.uidvalidity_changed) {
		update_reply_and_close(s, false, "Mailbox changed during the session, nothing deleted.");
		return;
	}
	if (s->up.read_only && ndel > 0) {
		update_reply_and_close(s, false, "Mailbox is read-only, nothing deleted.");
		return;
	}
	memset(&s->upd, 0, sizeof(s->upd));
	s->upd.ndel = ndel;
	s->upd.nseen = nseen;
	if (ndel > 0 && !s->up.caps_after_login) {
		/* Servers often list UIDPLUS only once logged in, and this one's LOGIN OK named
		 * no capabilities: ask, rather than fall back to SEARCH DELETED + EXPUNGE. */
		struct buf *out = gw_upstream_cmd(s, GW_UPCMD_CAPABILITY, caps_done, 0);

		if (out != NULL) {
			buf_append_str(out, "CAPABILITY\r\n");
			gw_upstream_send_end(s);
			return;
		}
	}
	update_begin(s);
}
