/* gateway/update.c: QUIT in TRANSACTION, the UPDATE state (RFC 1939 §6).
 *
 * Messages marked with DELE are removed upstream now and only now:
 *   UID STORE <ours> +FLAGS.SILENT (\Deleted)      (+ \Seen for retrieved, if configured)
 *   UID EXPUNGE <ours>                             (RFC 4315 UIDPLUS: only ours go)
 * Without UIDPLUS a plain EXPUNGE would also remove what other clients flagged \Deleted,
 * so it is sent only when UID SEARCH DELETED shows nothing but ours; otherwise our flags
 * stay, a warning is logged and the client hears -ERR. If UIDVALIDITY changed during the
 * session, the UIDs no longer name the client's messages: nothing is touched. */
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

static int
send_uid_cmd(struct gw_session *s, int kind, imap_done_fn *done, const char *verb,
    uint8_t flag, const char *tail)
{
	uint32_t *uids;
	size_t n;
	struct buf *out;
	int r = -1;

	if ((uids = marked_uids(s, flag, &n)) == NULL)
		return -1;
	if (n > 0 && (out = gw_upstream_cmd(s, kind, done, (uint32_t)n)) != NULL) {
		buf_append_str(out, verb);
		imap_write_uid_set(out, uids, n);
		buf_append_str(out, tail);
		r = out->failed ? -1 : 0;
	}
	free(uids);
	return r;
}

static void
expunge_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK) {
		update_reply_and_close(s, false, "Some deleted messages were not removed.");
		return;
	}
	s->n_dele = cmd->arg;	/* counted once the server confirmed */
	update_reply_and_close(s, true, NULL);
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

static void
search_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	struct buf *out;

	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK) {
		update_reply_and_close(s, false, "Deleted messages could not be removed.");
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
		update_reply_and_close(s, false, "Deleted messages could not be removed.");
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
	if (r == NULL || s->op != GW_OP_QUIT)
		return;
	if (r->status != IMAP_STATUS_OK)
		update_reply_and_close(s, false, "Deleted messages could not be removed.");
	/* With UIDPLUS the pipelined UID EXPUNGE answers next; otherwise search_done. */
}

static void
seen_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (r != NULL && r->status != IMAP_STATUS_OK)
		gw_log(LOG_LVL_WARN, s, "could not set \\Seen on retrieved messages");
	if (r != NULL && s->op == GW_OP_QUIT && cmd->kind == GW_UPCMD_NOOP)
		update_reply_and_close(s, true, NULL);
}

void
gw_update_start(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	size_t ndel = 0, nseen = 0;
	struct buf *out;

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
	if (nseen > 0 && send_uid_cmd(s, GW_UPCMD_STORE, seen_done, "UID STORE ", GW_MSG_RETRIEVED,
	    " +FLAGS.SILENT (\\Seen)\r\n") < 0)
		goto fail;
	if (ndel == 0) {
		/* Only \Seen to set: a NOOP after it carries the reply. */
		if ((out = gw_upstream_cmd(s, GW_UPCMD_NOOP, seen_done, 0)) == NULL)
			goto fail;
		buf_append_str(out, "NOOP\r\n");
		gw_upstream_send_end(s);
		return;
	}
	if (send_uid_cmd(s, GW_UPCMD_STORE, store_done, "UID STORE ", GW_MSG_DELETED,
	    " +FLAGS.SILENT (\\Deleted)\r\n") < 0)
		goto fail;
	if (s->up.caps & GW_CAP_UIDPLUS) {
		if (send_uid_cmd(s, GW_UPCMD_EXPUNGE, expunge_done, "UID EXPUNGE ", GW_MSG_DELETED,
		    "\r\n") < 0)
			goto fail;
	} else {
		s->up.nsearch = 0;
		if ((out = gw_upstream_cmd(s, GW_UPCMD_SEARCH, search_done, (uint32_t)ndel)) == NULL)
			goto fail;
		buf_append_str(out, "UID SEARCH DELETED\r\n");
	}
	gw_upstream_send_end(s);
	return;
fail:
	update_reply_and_close(s, false, "Deleted messages could not be removed.");
}
