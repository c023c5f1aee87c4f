/* gateway/update.c: QUIT in TRANSACTION, the UPDATE state (RFC 1939 §6).
 *
 * Messages marked with DELE are removed upstream now and only now:
 *   UID STORE <ours> +FLAGS.SILENT (\Deleted)      (+ \Seen for retrieved, if configured)
 *   UID EXPUNGE <ours>                             (RFC 4315 UIDPLUS: only ours go)
 * Without UIDPLUS a plain EXPUNGE would also remove what other clients flagged \Deleted,
 * so it is sent only when UID SEARCH DELETED shows nothing but ours; otherwise our flags
 * stay, a warning is logged and the client hears -ERR. If UIDVALIDITY changed during the
 * session, the UIDs no longer name the client's messages: nothing is touched.
 *
 * A UID set goes in pieces of at most UID_SET_MAX octets, so deleting thousands of
 * scattered messages never makes a line the server refuses. A piece's UID EXPUNGE is sent
 * only once its STORE is answered: Dovecot 2.3.19, given both at once in a mailbox of a
 * few thousand messages, answered OK to the EXPUNGE yet left a whole piece in place
 * (tests/integration/test_update.py found it). What counts as removed is what the server
 * reported with "* n EXPUNGE"; fewer than asked, or a piece that fails, stops the rest and
 * the client hears -ERR. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../imap/imap_write.h"
#include "../pop3/pop3_reply.h"
#include "session.h"

static void
update_reply_and_close(struct gw_session *s, bool ok, const char *why)
{
	if (ok) {
		pop3_reply_ok(gw_client_out(s), "Logging out, %zu messages deleted.", s->n_dele);
	} else {
		gw_log(LOG_LVL_WARN, s, "QUIT of user=%s: %s", s->user, why);
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "%s", why);
	}
	gw_upstream_logout(s);
	gw_session_flush(s);
	gw_session_close(s, ok ? "ok" : "update failed");
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

/* Well under RFC 7162 §4's 8192-octet command line, with room for the verb and tag. */
#define UID_SET_MAX 7000

/* Sends `verb` <set> `tail` for the next piece of our messages marked `flag`, from the
 * s->upd.pos-th on; the command's arg is how many it covers. Returns that count, 0 when
 * none are left, or -1. */
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
	k = imap_write_uid_set(&set, uids + s->upd.pos, n - s->upd.pos, UID_SET_MAX);
	free(uids);
	if (k > 0 && (out = gw_upstream_cmd(s, kind, done, (uint32_t)k)) != NULL) {
		buf_append_str(out, verb);
		buf_append(out, buf_data(&set), buf_len(&set));
		buf_append_str(out, tail);
		r = out->failed ? -1 : (int)k;	/* k <= UID_SET_MAX / 2 */
	}
	buf_free(&set);
	return r;
}

static bool
search_only_ours(struct gw_session *s)
{
	for (size_t i = 0; i < s->up.nsearch; i++) {
		size_t lo = 0, hi = s->snap.count;
		bool ours = false;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (s->snap.uid[mid] == s->up.search[i]) {
				ours = (s->snap.flags[mid] & GW_MSG_DELETED) != 0;
				break;
			}
			if (s->snap.uid[mid] < s->up.search[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!ours)
			return false;
	}
	return true;
}

static void delete_next(struct gw_session *s);

/* A piece failed or could not be sent: what went before stays done, the rest is not
 * attempted, and the client hears which of the two it is. */
static void
update_failed(struct gw_session *s)
{
	s->n_dele = s->upd.removed;
	update_reply_and_close(s, false, s->upd.removed > 0 ?
	    "Some deleted messages were not removed." : "Deleted messages could not be removed.");
}

static void
expunge_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	uint32_t confirmed;

	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK) {
		update_failed(s);
		return;
	}
	/* Pending expunges of other sessions may be reported here too (RFC 3501 §7.4.1):
	 * more than asked is fine, fewer means some of ours stayed. */
	confirmed = s->up.expunges < cmd->arg ? s->up.expunges : cmd->arg;
	s->upd.removed += confirmed;
	if (confirmed < cmd->arg) {
		gw_log(LOG_LVL_WARN, s, "upstream expunged %u of the %u messages asked",
		    confirmed, cmd->arg);
		update_failed(s);
		return;
	}
	if (s->up.caps & GW_CAP_UIDPLUS) {
		s->upd.pos += cmd->arg;
		if (s->upd.pos < s->upd.ndel) {
			delete_next(s);
			return;
		}
	}
	s->n_dele = s->upd.removed;
	update_reply_and_close(s, true, NULL);
}

static void
search_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	struct buf *out;

	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK) {
		update_failed(s);
		return;
	}
	if (!search_only_ours(s)) {
		/* Another client's \Deleted messages would go too: leave ours flagged. */
		gw_log(LOG_LVL_WARN, s, "upstream has no UIDPLUS and other \\Deleted messages: "
		    "leaving %u messages flagged, not expunged", cmd->arg);
		update_reply_and_close(s, false, "Messages marked deleted, removal postponed.");
		return;
	}
	if ((out = gw_upstream_cmd(s, GW_UPCMD_EXPUNGE, expunge_done, cmd->arg)) == NULL) {
		update_failed(s);
		return;
	}
	buf_append_str(out, "EXPUNGE\r\n");
	s->up.expunges = 0;
	gw_upstream_send_end(s);
}

static void
store_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK) {
		update_failed(s);
		return;
	}
	if (s->up.caps & GW_CAP_UIDPLUS) {
		/* The same piece (s->upd.pos has not moved): UID EXPUNGE of just those. */
		s->up.expunges = 0;
		if (send_uid_piece(s, GW_UPCMD_EXPUNGE, expunge_done, "UID EXPUNGE ",
		    GW_MSG_DELETED, "\r\n") != (int)cmd->arg) {
			update_failed(s);
			return;
		}
		gw_upstream_send_end(s);
		return;
	}
	s->upd.pos += cmd->arg;
	delete_next(s);
}

/* The next piece: UID STORE \Deleted, then (store_done) with UIDPLUS its UID EXPUNGE.
 * Without UIDPLUS, once every piece is flagged: UID SEARCH DELETED, and EXPUNGE only if
 * it finds nothing but ours (search_done). */
static void
delete_next(struct gw_session *s)
{
	struct buf *out;
	int k;

	k = send_uid_piece(s, GW_UPCMD_STORE, store_done, "UID STORE ", GW_MSG_DELETED,
	    " +FLAGS.SILENT (\\Deleted)\r\n");
	if (k < 0)
		goto fail;
	if (k == 0) {
		s->up.nsearch = 0;
		if ((out = gw_upstream_cmd(s, GW_UPCMD_SEARCH, search_done,
		    (uint32_t)s->upd.ndel)) == NULL)
			goto fail;
		buf_append_str(out, "UID SEARCH DELETED\r\n");
	}
	gw_upstream_send_end(s);
	return;
fail:
	update_failed(s);
}

static void seen_next(struct gw_session *s);

static void
seen_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	if (r == NULL || s->op != GW_OP_QUIT)
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
		update_failed(s);
		return;
	}
	if (k > 0) {
		gw_upstream_send_end(s);
		return;
	}
	s->upd.pos = 0;
	if (s->upd.ndel == 0)
		update_reply_and_close(s, true, NULL);
	else
		delete_next(s);
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
	if (nseen > 0)
		seen_next(s);
	else
		delete_next(s);
}
