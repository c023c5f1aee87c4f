/* gateway/session_upstream.c: what the upstream operations cost the client. The session
 * runs three ops on its IMAP connection (login.c, retr.c, update.c) and owns the
 * connection itself (imapc.c's handler); here their outcomes become POP3 replies, failed-
 * login delays ([AUTH], [IN-USE], [SYS/TEMP], RFC 3206 / RFC 2449), the session's state and,
 * when nothing else is honest, its end. */
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/user_domain.h"
#include "../pop3/pop3_reply.h"
#include "metrics.h"
#include "../pop3/pop3_sasl_encode.h"
#include "session.h"

static void
auth_delay_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;

	(void)loop;
	(void)revents;
	pop3_reply_err(gw_client_out(s), POP3_CODE_AUTH, "Authentication failed.");
	if (s->auth_failures >= s->w->cfg->max_auth_failures) {
		gw_session_flush(s);
		gw_session_close(s, "too many failed logins");
		return;
	}
	gw_session_op_done(s);
	gw_session_flush(s);
}

/* A login that failed becomes a POP3 reply, here and only here (RFC 3206, RFC 2449):
 * refused credentials get the growing delay, then -ERR [AUTH]; a locked mailbox
 * [IN-USE]; anything else is the upstream's trouble, -ERR [SYS/TEMP] at once (the user did
 * nothing wrong). why goes to the log only, never to the client: it may hold the server's
 * words. */
static void
login_failed(struct gw_session *s, enum gw_login_outcome outcome, const char *why)
{
	char user[GW_LOG_USER_SIZE], text[GW_LOG_TEXT_SIZE];
	ev_tstamp now = ev_now(s->w->loop);
	unsigned delay;

	gw_cred_wipe(&s->cred);
	s->logged_in = false;
	gw_session_listing_drop(s);
	if (s->mig != NULL)
		gw_migration_abort(s->mig);
	gw_keys_abort(&s->keys);
	if (s->cache_req != NULL) {
		gw_cache_cancel(s->cache_req);
		s->cache_req = NULL;
	}
	gw_cache_entries_free(s->keying, s->nkeying);
	s->keying = NULL;
	s->uidl_wait = 0;
	gw_imapc_logout(&s->up);
	gw_snapshot_free(&s->snap);
	s->have_user = false;
	gw_log_user(s, user, sizeof(user));
	gw_log_text(why, text, sizeof(text));
	gw_metrics_login_failed(outcome == GW_LOGIN_IN_USE ? MET_LOGIN_IN_USE :
	    outcome == GW_LOGIN_REFUSED ? MET_LOGIN_BAD_CREDENTIALS :
	    MET_LOGIN_UPSTREAM_UNAVAILABLE);
	if (outcome == GW_LOGIN_IN_USE) {
		gw_log(LOG_LVL_INFO, s, "login of user=%s failed: \"%s\"", user, text);
		pop3_reply_err(gw_client_out(s), POP3_CODE_IN_USE, "Mailbox is in use by another "
		    "session, try again later.");
		gw_session_op_done(s);
		return;
	}
	if (outcome != GW_LOGIN_REFUSED) {
		gw_log(LOG_LVL_WARN, s, "login of user=%s failed: \"%s\"", user, text);
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP,
		    "Temporary failure of the mail server, try again later.");
		gw_session_op_done(s);
		return;
	}
	/* A wrong password: answer after a delay that grows per client address, so a
	 * guesser gets few tries and the upstream's own guard never blocks the gateway. */
	s->auth_failures++;
	delay = gw_login_guard_delay_ms(&s->w->guard, &s->addr, now);
	gw_login_guard_failed(&s->w->guard, &s->addr, s->user_key, now);
	gw_log(LOG_LVL_INFO, s, "login of user=%s failed: \"%s\" (delay %u ms)", user, text,
	    delay);
	s->op = GW_OP_AUTH_DELAY;
	ev_timer_init(&s->delay, auth_delay_cb, delay / 1000.0, 0.);
	s->delay.data = s;
	ev_timer_start(s->w->loop, &s->delay);
}

/* Logged in, the snapshot and its UIDLs complete: the mailbox is the client's now, unless
 * another session of the user holds it ([IN-USE] is decided here, on the loop, with no
 * wait between the check and taking it). */
static void
login_complete(struct gw_session *s)
{
	char user[GW_LOG_USER_SIZE];
	size_t count;
	uint64_t octets;

	/* Taken with the check, in the table all workers share (gateway/shared.h); given back
	 * when the session closes or is doomed, whichever comes first. */
	if (s->w->cfg->in_use_check) {
		/* The mailbox, not the name typed: the server, its mailbox and the name it gets.
		 * With strip_domain, "dave@x.test", "dave@y.test" and "dave" can all be one
		 * mailbox upstream, also through two sections naming one server; RFC 1939's lock
		 * is on the maildrop. */
		const struct gw_upstream_conf *uc = &s->cluster->conf;
		char mailbox[2048 + sizeof(s->up_user)];
		size_t n = (size_t)snprintf(mailbox, 2048, "%.256s:%u/%.1024s\n", uc->host, uc->port,
		    uc->mailbox);
		enum gw_shared_take t;

		gw_config_user_key(s->w->cfg, s->up_user, mailbox + n, sizeof(mailbox) - n);
		t = gw_registry_take_user(&s->w->sessions, &s->reg, mailbox);

		if (t == GW_SHARED_LIMIT) {
			login_failed(s, GW_LOGIN_IN_USE, "Mailbox is locked by another POP3 session.");
			return;
		}
		if (t != GW_SHARED_OK) {
			login_failed(s, GW_LOGIN_TEMP, "the shared limits table is full (sized at the "
			    "start for [limits] max_sessions x [server] workers)");
			return;
		}
	}
	gw_login_guard_ok(&s->w->guard, &s->addr, s->user_key, ev_now(s->w->loop));
	GW_METRIC_INC(logins_ok);
	gw_session_enter(s, GW_S_TRANSACTION);
	gw_snapshot_stat(&s->snap, &count, &octets);
	gw_log(LOG_LVL_INFO, s, "login user=%s client=%s messages=%zu octets=%llu",
	    gw_log_user(s, user, sizeof(user)), s->addr_text, count, (unsigned long long)octets);
	pop3_reply_ok(gw_client_out(s), "Logged in, %zu messages (%llu octets).", count,
	    (unsigned long long)octets);
	gw_session_op_done(s);
}

/* Learned UIDLs of a cache answer into the snapshot. False on ENOMEM (login failed). */
static bool
apply_learned(struct gw_session *s, struct gw_cache_req *req)
{
	const char *uidl;
	size_t idx, len;

	while (gw_cache_req_next_learned(req, &idx, &uidl, &len)) {
		if (gw_snapshot_learn(&s->snap, idx, uidl, len) < 0) {
			login_failed(s, GW_LOGIN_TEMP, "out of memory for the learned UIDLs");
			return false;
		}
	}
	return true;
}

/* The keys are stored (cache_record()): a rebuilt or migrated mailbox's messages matched by
 * content have their old UIDLs back. */
static void
cache_recorded(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct gw_session *s = ctx;

	s->cache_req = NULL;
	if (error == NULL && !apply_learned(s, req)) {
		gw_session_flush(s);
		return;
	}
	if (error != NULL && s->rebuilt) {
		/* New UIDLs for a rebuilt mailbox would mean a full download for the client. */
		login_failed(s, GW_LOGIN_TEMP, error);
		gw_session_flush(s);
		return;
	}
	if (error != NULL)
		gw_log(LOG_LVL_WARN, s, "UIDL cache unavailable, using derived UIDLs: %s", error);
	else if (s->rebuilt)
		gw_log(LOG_LVL_INFO, s, "UIDLs of UIDVALIDITY %u matched: imported=%zu matched=%zu "
		    "new=%zu lost=%zu", s->snap.uidvalidity, req->stats.imported,
		    req->stats.matched, req->stats.fresh, req->stats.lost);
	login_complete(s);
	gw_session_flush(s);
}

/* What the login waits for before the client hears +OK: the cache's lookup, the content
 * keys it asked for, and the migration (if any), which run side by side. This is where they
 * meet. */
static void
uidls_settle(struct gw_session *s)
{
	struct gw_cache_req *req;
	char text[GW_LOG_TEXT_SIZE];

	if (!s->logged_in || s->uidl_wait != 0)
		return;
	gw_log_text(s->mig_why, text, sizeof(text));
	if (s->mig_result == GW_MIGRATION_FAILED) {
		if (s->w->cfg->mig_required) {
			/* A temporary failure is better than new UIDLs: a full download. */
			login_failed(s, GW_LOGIN_TEMP, s->mig_why);
			return;
		}
		gw_log(LOG_LVL_WARN, s, "UIDL migration skipped ([migration] required = no): "
		    "\"%s\"", text);
	} else if (s->mig_result == GW_MIGRATION_IMPOSSIBLE) {
		gw_log(LOG_LVL_WARN, s, "UIDL migration skipped: \"%s\"", text);
	} else if (s->mig_result == GW_MIGRATION_STORED) {
		s->rebuilt = true;	/* pending rows to match now */
	}
	if (s->lookup_error[0] != '\0') {
		/* The old server's UIDLs are where we cannot read; or, while [migration] is on,
		 * a known user's may be (learned ones: derived UIDLs would be a full download). */
		if (s->rebuilt || s->w->cfg->mig_host[0] != '\0') {
			login_failed(s, GW_LOGIN_TEMP, s->lookup_error);
			return;
		}
		gw_log(LOG_LVL_WARN, s, "UIDL cache unavailable, using derived UIDLs: %s",
		    s->lookup_error);
	}
	if (s->keying == NULL) {
		login_complete(s);
		return;
	}
	if (!s->keys_complete && s->rebuilt) {
		/* A message without its key is not matched: it would get a new UIDL now. */
		login_failed(s, GW_LOGIN_TEMP, "the content keys could not all be read");
		return;
	}
	req = gw_cache_record_new(s->user_key, s->cluster->conf.mailbox, s->snap.uidvalidity,
	    s->keying, s->nkeying);
	s->keying = NULL;
	if (req == NULL) {
		login_failed(s, GW_LOGIN_TEMP, "out of memory for the UIDL cache request");
		return;
	}
	s->cache_req = req;
	gw_cache_submit(&s->w->cache, req, cache_recorded, s);
}

/* The content keys of the messages new to the cache are read (keys.c). What was read is
 * recorded; a message without its key gets no row while old or pending rows wait, so it
 * can still be matched at a later login. */
static void
keys_done(void *ctx, bool complete, const char *why)
{
	struct gw_session *s = ctx;

	s->uidl_wait &= ~GW_WAIT_KEYS;
	s->keys_complete = complete;
	if (!complete) {
		char text[GW_LOG_TEXT_SIZE];

		gw_log(LOG_LVL_WARN, s, "content keys not all read: \"%s\"", gw_log_text(why, text,
		    sizeof(text)));
	}
	uidls_settle(s);
	gw_session_flush(s);
}

/* The cache's first answer (cache_async.h), on the loop: learned UIDLs replace derived
 * ones; messages without a content key get one read upstream (only those: a routine poll
 * reads no header). A cache that cannot be used leaves the derived UIDLs, and says so. */
static void
cache_looked_up(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct gw_session *s = ctx;
	struct gw_keys_params p = { NULL, 0, keys_done, s };

	s->cache_req = NULL;
	s->uidl_wait &= ~GW_WAIT_LOOKUP;
	if (error == NULL && !apply_learned(s, req)) {
		gw_session_flush(s);
		return;
	}
	if (error != NULL)
		snprintf(s->lookup_error, sizeof(s->lookup_error), "%s", error);
	if (error != NULL || req->nneed == 0) {
		uidls_settle(s);
		gw_session_flush(s);
		return;
	}
	if ((s->keying = calloc(req->nneed, sizeof(*s->keying))) == NULL) {
		login_failed(s, GW_LOGIN_TEMP, "out of memory for the content keys");
		gw_session_flush(s);
		return;
	}
	for (size_t i = 0; i < req->nneed; i++) {
		size_t idx = req->need_key[i];

		s->keying[i] = (struct cache_entry){ idx, s->snap.uid[idx], s->snap.size[idx], "",
		    NULL };
	}
	s->nkeying = req->nneed;
	/* Old or pending rows wait to be matched: derived UIDLs now would cost the client a
	 * full download. */
	s->rebuilt = req->found.rebuilt || req->found.pending;
	p.entries = s->keying;
	p.n = s->nkeying;
	s->uidl_wait |= GW_WAIT_KEYS;
	gw_keys_start(&s->keys, &s->up, &p);	/* keys_done may run before this returns */
	gw_session_flush(s);
}

/* The login op's outcome (login.h). Logged in: the credentials may go to the old server
 * now, and the UIDLs are asked of the cache, off the loop, meanwhile. */
static void
login_done(void *ctx, enum gw_login_outcome outcome, const char *why)
{
	struct gw_session *s = ctx;
	struct gw_snapshot *snap = &s->snap;

	static const char *const how[] = { "full", "cached", "incremental" };

	if (s->up_login_sent > 0) {
		gw_metrics_observe(MET_H_UPSTREAM_LOGIN, ev_time() - s->up_login_sent);
		s->up_login_sent = 0;
	}
	if (outcome == GW_LOGIN_REFUSED)
		gw_cred_refused(&s->w->guard, s->cred_hash, ev_now(s->w->loop));
	/* What the server offers once logged in decides the next login's SELECT. */
	if (s->up.caps_after_login)
		s->cluster->condstore = (s->up.caps & GW_CAP_CONDSTORE) != 0;
	if (s->login.condstore_refused)
		s->cluster->condstore = false;
	if (outcome != GW_LOGIN_OK) {
		login_failed(s, outcome, why);
		return;
	}
	gw_session_listing_drop(s);
	s->listing = how[s->login.how];
	gw_log(LOG_LVL_DEBUG, s, "listing: %s (condstore=%s stored=%s)", s->listing,
	    s->login.condstore ? "yes" : "no", s->login.storable ? "yes" : "no");
	if (s->login.storable)
		gw_session_listing_store(s);
	s->logged_in = true;
	s->cache_req = gw_cache_lookup_new(s->user_key, s->cluster->conf.mailbox, snap->uidvalidity,
	    snap->uid, snap->count);
	if (s->cache_req == NULL) {
		login_failed(s, GW_LOGIN_TEMP, "out of memory for the UIDL cache request");
		return;
	}
	s->uidl_wait |= GW_WAIT_LOOKUP;
	gw_cache_submit(&s->w->cache, s->cache_req, cache_looked_up, s);
	if (s->uidl_wait & GW_WAIT_MIGRATION)
		gw_migration_release(s->mig);
}

/* The migration's outcome (migration.h). */
static void
migration_done(void *ctx, enum gw_migration_result r, const char *why)
{
	struct gw_session *s = ctx;

	s->uidl_wait &= ~GW_WAIT_MIGRATION;
	s->mig_result = r;
	snprintf(s->mig_why, sizeof(s->mig_why), "%s", why ? why : "");
	if (r == GW_MIGRATION_FAILED && s->w->cfg->mig_required && s->logged_in) {
		/* No need to wait for the keys: the answer is -ERR [SYS/TEMP] whatever they say.
		 * (Before the IMAP login is done, its own verdict comes first: [AUTH] stays
		 * [AUTH].) */
		login_failed(s, GW_LOGIN_TEMP, s->mig_why);
		gw_session_flush(s);
		return;
	}
	uidls_settle(s);
	gw_session_flush(s);
}

static void
login_ready(struct gw_session *s)
{
	/* The capabilities every login sees, after TLS: what CAPA offers next (unless the
	 * server named none: that is not knowing, as for the probe). */
	if (s->up.caps_seen)
		gw_upcaps_learned(&s->cluster->probe, s->up.caps, "login");
	/* ev_time(), not the loop's cached ev_now(): a local upstream answers within one
	 * iteration, and the histograms' lowest buckets are milliseconds. */
	s->up_login_sent = ev_time();
	gw_metrics_observe(MET_H_UPSTREAM_CONNECT, s->up_login_sent - s->up_opened);
	gw_login_ready(&s->login);
}

/* The upstream connection's owner: the login goes on when it is ready; its loss is told to
 * the op that runs (each op's own `lost`), and an idle session just goes on: the next
 * RETR/TOP/QUIT says so. */
static void
upstream_ready(void *ctx)
{
	login_ready(ctx);
}

static void
upstream_lost(void *ctx, const char *why)
{
	(void)why;
	gw_session_flush(ctx);		/* what the op answered (a timeout comes from no read) */
}

static void
upstream_settled(void *ctx)
{
	gw_session_flush(ctx);
}

static const struct gw_imapc_handler upstream_handler = {
	.ready = upstream_ready,
	.lost = upstream_lost,
	.settled = upstream_settled,
};

/* strip_domain with a bearer mechanism: the name inside the client's response becomes
 * s->up_user too (the token is the client's, unchanged). 0, or -1 (out of memory). */
static int
bearer_rename(struct gw_session *s)
{
	static struct pop3_sasl_bearer b;	/* 7 KB: off the stack; wiped on every path */
	char *resp = NULL;
	size_t len = 0;

	if (pop3_sasl_bearer_decode(s->cred.mech, s->cred.sasl_resp, s->cred.sasl_resp_len,
	    &b) == POP3_SASL_OK)
		resp = pop3_sasl_bearer_encode(s->cred.mech, s->up_user, b.token, b.token_len, &len);
	explicit_bzero(&b, sizeof(b));
	if (resp == NULL)
		return -1;	/* decoded once already (session_cmds.c): memory is what failed */
	explicit_bzero(s->cred.sasl_resp, s->cred.sasl_resp_len);
	free(s->cred.sasl_resp);
	s->cred.sasl_resp = (uint8_t *)resp;
	s->cred.sasl_resp_len = len;
	return 0;
}

/* A bearer mechanism the user's cluster is known not to offer. Unknown (its probe failed):
 * let the server decide at login. */
static bool
bearer_in_cluster(struct gw_cluster *cl, enum pop3_sasl_mech mech)
{
	unsigned caps;

	if (!gw_upcaps_get(&cl->probe, &caps))
		return true;
	return (caps & (mech == POP3_SASL_XOAUTH2 ? GW_CAP_XOAUTH2 : GW_CAP_OAUTHBEARER)) != 0;
}

/* PASS or AUTH, with s->cred filled: connect upstream and start the login op. secret is
 * what identifies the credential for the refused-credential memory: the password, or the
 * bearer token (whichever mechanism carried it). */
void
gw_session_login_start(struct gw_session *s, const uint8_t *secret, size_t len)
{
	struct gw_worker *w = s->w;
	/* The user's cluster: by the domain as typed; what is keyed on the user below (the
	 * delays, [IN-USE], the cache) keeps the full name, so that two domains' "bob" never
	 * share anything. */
	struct gw_cluster *cl = s->cluster = gw_cluster_for_user(&w->clusters, w->cfg,
	    s->cred.user);
	struct gw_login_params p = {
		.cred = &s->cred,
		.user = s->up_user,
		.mailbox = cl->conf.mailbox,
		.id_addr = cl->conf.send_client_id ? s->addr_text : NULL,
		.id_port = s->port,
		.snap = &s->snap,
		.done = login_done,
		.ctx = s,
	};

	s->op = GW_OP_LOGIN;
	s->logged_in = false;
	s->uidl_wait = 0;
	s->keys_complete = true;
	s->rebuilt = false;
	s->lookup_error[0] = '\0';
	s->mig_result = GW_MIGRATION_NOT_NEEDED;
	s->listing = NULL;
	gw_session_listing_drop(s);
	gw_snapshot_free(&s->snap);
	gw_config_user_key(w->cfg, s->cred.user, s->user_key, sizeof(s->user_key));
	gw_cred_hash(&w->guard, s->cred.mech == POP3_SASL_PLAIN ? "password" : "bearer",
	    s->user_key, secret, len, s->cred_hash);
	if (s->cred.mech != POP3_SASL_PLAIN && !bearer_in_cluster(cl, s->cred.mech)) {
		/* CAPA listed it for another cluster: not the server's trouble, not a wrong
		 * credential either (no delay, nothing remembered). */
		char user[GW_LOG_USER_SIZE];

		gw_log(LOG_LVL_INFO, s, "login of user=%s failed: %s does not offer AUTH=%s",
		    gw_log_user(s, user, sizeof(user)), cl->name, pop3_sasl_mech_name(s->cred.mech));
		gw_cred_wipe(&s->cred);
		s->have_user = false;
		pop3_reply_err(gw_client_out(s), NULL, "AUTH %s is not available for this user, "
		    "use another mechanism.", pop3_sasl_mech_name(s->cred.mech));
		gw_session_op_done(s);
		return;
	}
	if (gw_cred_recently_refused(&w->guard, s->cred_hash, ev_now(w->loop))) {
		/* The same wrong password again (a client's retry round): the upstream has
		 * answered it already. */
		login_failed(s, GW_LOGIN_REFUSED, "credentials refused moments ago, not sent again");
		return;
	}
	/* "bob@evil@b.test": which '@' ends the name is the server's choice (Dovecot takes
	 * the first), ours the last; where a domain picks the cluster or is stripped, such a
	 * name could reach one mailbox under several [IN-USE] keys. Refused, like a wrong
	 * password. */
	if ((w->cfg->ndomains > 0 || cl->conf.strip_domain) && strchr(s->cred.user, '@') !=
	    strrchr(s->cred.user, '@')) {
		login_failed(s, GW_LOGIN_REFUSED, "a user name with more than one '@' is ambiguous "
		    "with [upstream:DOMAIN] sections or strip_domain");
		return;
	}
	/* Same buffer size as cred.user: it always fits. */
	(void)user_upstream_name(s->cred.user, cl->conf.strip_domain, s->up_user,
	    sizeof(s->up_user));
	gw_log(LOG_LVL_DEBUG, s, "upstream %s %s:%u%s", cl->name, cl->conf.host, cl->conf.port,
	    strcmp(s->up_user, s->cred.user) != 0 ? ", the domain stripped" : "");
	if (s->cred.mech != POP3_SASL_PLAIN && strcmp(s->up_user, s->cred.user) != 0 &&
	    bearer_rename(s) < 0) {
		login_failed(s, GW_LOGIN_TEMP, "out of memory for the SASL response");
		return;
	}
	if (w->cfg->mig_host[0] != '\0' && s->mig == NULL &&
	    (s->mig = calloc(1, sizeof(*s->mig))) == NULL) {
		login_failed(s, GW_LOGIN_TEMP, "out of memory for the migration");
		return;
	}
	s->up_opened = ev_time();
	s->up_login_sent = 0;
	if (gw_imapc_open(&s->up, w->loop, &cl->target, s->log_id, &upstream_handler, s) < 0) {
		gw_metrics_error(MET_ERR_UPSTREAM_CONNECT);
		login_failed(s, GW_LOGIN_TEMP, gw_imapc_last_error(&s->up));
		return;
	}
	if (w->cfg->mig_host[0] != '\0') {
		/* Before the login op, which wipes the password once it is written. */
		struct gw_migration_params mp = {
			.cache = &w->cache,
			.target = &w->migration,
			.user_key = s->user_key,
			.mailbox = cl->conf.mailbox,
			.cred = &s->cred,
			.log_id = s->log_id,
			.done = migration_done,
			.ctx = s,
		};

		s->uidl_wait |= GW_WAIT_MIGRATION;
		gw_migration_start(s->mig, w->loop, &mp);
	}
	gw_session_listing_ask(s, &p);
	gw_login_start(&s->login, &s->up, &p);
}

/* RETR/TOP's outcome (retr.h). */
static void
xfer_done(void *ctx, enum gw_xfer_end end, const char *why)
{
	struct gw_session *s = ctx;
	size_t idx = s->xfer.p.msgno - 1;

	if (end == GW_XFER_CLOSE) {
		if (!s->xfer.p.top)
			gw_session_listing_retr_failed(s, idx);
		gw_session_flush(s);
		gw_session_close(s, why);
		return;
	}
	if (end == GW_XFER_SENT && !s->xfer.p.top) {
		s->snap.flags[idx] |= GW_MSG_RETRIEVED;
		s->n_retr++;
		if (s->xfer.literal_size != s->snap.size[idx])
			gw_session_listing_size_differs(s, idx, s->xfer.literal_size);
	}
	gw_session_op_done(s);
}

void
gw_session_xfer_start(struct gw_session *s, size_t idx, bool top, uint32_t lines)
{
	struct gw_xfer_params p = {
		.msgno = idx + 1,
		.uid = s->snap.uid[idx],
		.size = s->snap.size[idx],
		.top = top,
		.lines = lines,
		.out = gw_client_out(s),
		.out_hiwat = s->w->cfg->out_hiwat,
		.done = xfer_done,
		.ctx = s,
	};

	s->op = GW_OP_XFER;
	gw_xfer_start(&s->xfer, &s->up, &p);
}

/* UPDATE's outcome (update.h): QUIT's reply, then the end. */
static void
update_done(void *ctx, size_t removed, const char *error)
{
	struct gw_session *s = ctx;
	char user[GW_LOG_USER_SIZE];

	s->n_dele = removed;
	gw_session_listing_after_update(s, removed, error);
	if (error == NULL) {
		pop3_reply_ok(gw_client_out(s), "Logging out, %zu messages deleted.", removed);
	} else {
		gw_log(LOG_LVL_WARN, s, "QUIT of user=%s: %s", gw_log_user(s, user, sizeof(user)),
		    error);
		gw_metrics_error(MET_ERR_UPDATE_FAILED);
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "%s", error);
	}
	gw_imapc_logout(&s->up);
	gw_session_flush(s);
	gw_session_close(s, error == NULL ? "ok" : "update failed");
}

void
gw_session_update_start(struct gw_session *s)
{
	struct gw_update_params p = {
		.snap = &s->snap,
		.set_seen = s->w->cfg->set_seen,
		.status_mailbox = gw_session_listing_status_mailbox(s),
		.done = update_done,
		.ctx = s,
	};

	gw_session_enter(s, GW_S_UPDATE);
	s->op = GW_OP_QUIT;
	gw_update_start(&s->upd, &s->up, &p);
}

