/* gateway/login.c: from PASS (or AUTH) to a fixed snapshot: the upstream login.
 *
 *   connect [TLS] -> greeting -> [CAPABILITY] -> [STARTTLS -> TLS -> CAPABILITY]
 *   -> [ID] + LOGIN|AUTHENTICATE PLAIN + SELECT + UID FETCH 1:* (UID RFC822.SIZE)
 *   or [ID] + AUTHENTICATE XOAUTH2|OAUTHBEARER, then SELECT + UID FETCH
 *
 * The last three are pipelined (one round trip) unless the credentials need a
 * continuation. Credentials go as quoted strings, LITERAL+ literals or a SASL PLAIN
 * response, never raw; CR, LF and NUL are refused before a byte is sent. An OAuth bearer
 * response goes as the client sent it (strict base64, checked at AUTH), with SASL-IR when
 * offered (RFC 4959). Outcomes become POP3 replies here and only here: NO
 * [AUTHENTICATIONFAILED] -> -ERR [AUTH]; anything that is the upstream's trouble -> -ERR
 * [SYS/TEMP] (RFC 3206). Credentials are wiped as soon as they are written. */
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "../imap/imap_fetch.h"
#include "../imap/imap_refusal.h"
#include "../imap/imap_resp.h"
#include "../imap/imap_write.h"
#include "../pop3/pop3_reply.h"
#include "session.h"

static void login_next(struct gw_session *s);

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

/* Answers a login that failed. code: POP3_CODE_AUTH for refused credentials (the growing
 * delay, then -ERR [AUTH]); POP3_CODE_IN_USE for a locked mailbox; anything else is the
 * upstream's trouble (-ERR [SYS/TEMP] at once, no delay: the user did nothing wrong). why
 * goes to the log only, never to the client: it may hold the server's words. */
void
gw_login_failed(struct gw_session *s, const char *code, const char *why)
{
	char user[GW_LOG_USER_SIZE], text[GW_LOG_TEXT_SIZE];
	unsigned delay;

	gw_session_wipe_credentials(s);
	gw_upstream_logout(s);
	gw_snapshot_free(&s->snap);
	s->have_user = false;
	gw_log_user(s, user, sizeof(user));
	gw_log_text(why, text, sizeof(text));
	if (code != NULL && strcmp(code, POP3_CODE_IN_USE) == 0) {
		gw_log(LOG_LVL_INFO, s, "login of user=%s failed: \"%s\"", user, text);
		pop3_reply_err(gw_client_out(s), code, "Mailbox is in use by another session, "
		    "try again later.");
		gw_session_op_done(s);
		return;
	}
	if (code == NULL || strcmp(code, POP3_CODE_AUTH) != 0) {
		gw_log(LOG_LVL_WARN, s, "login of user=%s failed: \"%s\"", user, text);
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP,
		    "Temporary failure of the mail server, try again later.");
		gw_session_op_done(s);
		return;
	}
	/* A wrong password: answer after a delay that grows per client address, so a
	 * guesser gets few tries and the upstream's own guard never blocks the gateway. */
	s->auth_failures++;
	delay = gw_auth_fail_delay_ms(s->w, &s->addr);
	gw_auth_fail_record(s->w, &s->addr, s->user_key);
	gw_log(LOG_LVL_INFO, s, "login of user=%s failed: \"%s\" (delay %u ms)", user, text,
	    delay);
	s->op = GW_OP_AUTH_DELAY;
	ev_timer_init(&s->delay, auth_delay_cb, delay / 1000.0, 0.);
	s->delay.data = s;
	ev_timer_start(s->w->loop, &s->delay);
}

static void
login_fail_temp(struct gw_session *s, const char *why)
{
	gw_login_failed(s, POP3_CODE_SYS_TEMP, why);
}

/* The tagged response of a login-phase command, or NULL when the login was already
 * decided (an earlier pipelined command failed and closed the upstream). */
static bool
login_live(struct gw_session *s, const struct imap_resp *r)
{
	return r != NULL && s->op == GW_OP_LOGIN && !s->closing;
}

static void
resp_text(char *dst, size_t size, const char *what, const struct imap_resp *r)
{
	snprintf(dst, size, "%s: %s %.*s", what, r->status == IMAP_STATUS_NO ? "NO" :
	    r->status == IMAP_STATUS_BAD ? "BAD" : "?", (int)(r->text.len > 100 ? 100 : r->text.len),
	    (const char *)r->text.p);
}

static void
caps_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!login_live(s, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		login_fail_temp(s, "CAPABILITY failed");
		return;
	}
	s->up.caps_known = true;	/* even if the server listed nothing we know */
	login_next(s);
}

static void
starttls_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!login_live(s, r))
		return;
	if (r->status != IMAP_STATUS_OK) {
		login_fail_temp(s, "upstream refused STARTTLS");
		return;
	}
	/* Bytes after the OK were sent in plaintext before TLS: an injection attempt
	 * (CVE-2011-0411 class). Refuse them, never read them as if protected. */
	if (buf_len(&s->up.io.c.in) > 0) {
		login_fail_temp(s, "upstream sent data after STARTTLS OK");
		return;
	}
	s->up.caps_known = false;	/* RFC 3501 §6.2.1: forget what was said in clear */
	s->up.caps = 0;
	if (gw_upstream_start_tls(s) < 0)
		login_fail_temp(s, s->up.io.c.error);
}

void
gw_login_tls_done(struct gw_session *s)
{
	if (s->op == GW_OP_LOGIN)
		login_next(s);
}

/* The login's pipelined answers may come in any order (a proxy may reorder them): each
 * completion records its own, and this decides once LOGIN, SELECT and the listing are all
 * answered. A refused LOGIN is decided by login_done() alone. */
static void
login_maybe_finish(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	struct gw_login_state *lg = &s->lg;
	char user[GW_LOG_USER_SIZE];
	size_t count;
	uint64_t octets;
	char why[200];

	if (!lg->login_ok)
		return;
	if (lg->select_done && !lg->select_ok) {
		login_fail_temp(s, lg->why);
		return;
	}
	if (!lg->select_done || !lg->listing_done)
		return;
	/* Thunderbird forgets every UIDL on "+OK 0 0": never a short or empty list by
	 * accident (DESIGN.md). */
	if (!lg->listing_ok) {
		login_fail_temp(s, lg->why);
		return;
	}
	if (lg->listing_bad) {
		login_fail_temp(s, "upstream listing line without a readable UID or RFC822.SIZE");
		return;
	}
	if (!lg->have_exists) {
		login_fail_temp(s, "upstream SELECT said no EXISTS");
		return;
	}
	if (!s->up.have_uidvalidity) {
		login_fail_temp(s, "upstream sent no UIDVALIDITY");
		return;
	}
	if (!lg->base_taken) {
		/* No listing line, or all before SELECT's data: the count now, expunges in it. */
		lg->base = lg->exists;
		lg->expunged = 0;
	}
	s->snap.uidvalidity = s->up.uidvalidity;
	if (gw_snapshot_finish(&s->snap, s->w->cache, s->user_key, cfg->up_mailbox) < 0) {
		login_fail_temp(s, "out of memory building the message list");
		return;
	}
	if ((uint64_t)s->snap.count + lg->expunged < lg->base) {
		snprintf(why, sizeof(why), "upstream listed %zu of its %u messages", s->snap.count,
		    lg->base - lg->expunged);
		login_fail_temp(s, why);
		return;
	}
	if (cfg->in_use_check) {
		for (struct gw_session *o = s->w->sessions; o != NULL; o = o->next) {
			if (o != s && o->state >= GW_S_TRANSACTION && o->state != GW_S_CLOSED &&
			    strcmp(o->user_key, s->user_key) == 0) {
				gw_login_failed(s, POP3_CODE_IN_USE, "Mailbox is locked by another POP3 session.");
				return;
			}
		}
	}
	gw_auth_fail_clear(s->w, &s->addr, s->user_key);
	gw_session_enter(s, GW_S_TRANSACTION);
	gw_snapshot_stat(&s->snap, &count, &octets);
	gw_log(LOG_LVL_INFO, s, "login user=%s client=%s messages=%zu octets=%llu",
	    gw_log_user(s, user, sizeof(user)), s->addr_text, count, (unsigned long long)octets);
	pop3_reply_ok(gw_client_out(s), "Logged in, %zu messages (%llu octets).", count,
	    (unsigned long long)octets);
	gw_session_op_done(s);
}

/* One line of the listing ("* 3 FETCH (UID 7 RFC822.SIZE 1200)"). A FETCH without
 * RFC822.SIZE is another client's flag change, not a listing line: it adds nothing, and
 * a message the listing then lacks is caught by the count. A line we cannot read, or one
 * with a size but no readable UID, is a listing we cannot trust. */
static void
listing_line(struct gw_session *s, const struct imap_resp *r)
{
	struct gw_login_state *lg = &s->lg;
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	enum imap_fetch_step step;
	bool has_uid = false, has_size = false, bad = false;
	uint64_t uid = 0, size = 0;

	if (lg->listing_done || lg->listing_bad)
		return;
	imap_fetch_iter_init(&it, &r->text);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		if (!has_uid && imap_slice_eq(&att.name, "UID")) {
			has_uid = true;
			bad |= att.kind != IMAP_VALUE_ATOM || !imap_slice_to_u64(&att.value, &uid) ||
			    uid == 0 || uid > UINT32_MAX;
		} else if (!has_size && imap_slice_eq(&att.name, "RFC822.SIZE")) {
			has_size = true;
			bad |= att.kind != IMAP_VALUE_ATOM || !imap_slice_to_u64(&att.value, &size);
		}
	}
	if (step != IMAP_FETCH_END || bad || (has_size && !has_uid)) {
		lg->listing_bad = true;
		return;
	}
	if (!has_size)
		return;
	/* The messages SELECT said are there: taken at the first listing line, once EXISTS is
	 * known (a reordering proxy may send the listing before SELECT's data; then at the
	 * end). */
	if (!lg->base_taken && lg->have_exists) {
		lg->base = lg->exists;
		lg->base_taken = true;
	}
	if (gw_snapshot_add(&s->snap, (uint32_t)uid, size) < 0)
		gw_upstream_fail(s, "mailbox listing too large or out of memory");
}

void
gw_login_untagged(struct gw_session *s, const struct imap_resp *r)
{
	struct gw_login_state *lg = &s->lg;

	if (s->op != GW_OP_LOGIN)
		return;
	if (imap_slice_eq(&r->name, "EXISTS")) {
		lg->have_exists = true;
		lg->exists = r->num;
	} else if (imap_slice_eq(&r->name, "EXPUNGE")) {
		if (lg->exists > 0)
			lg->exists--;
		if (lg->base_taken)
			lg->expunged++;
	} else if (imap_slice_eq(&r->name, "FETCH")) {
		listing_line(s, r);
	}
}

static void
snapshot_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!login_live(s, r))
		return;
	s->lg.listing_done = true;
	s->lg.listing_ok = r->status == IMAP_STATUS_OK;
	if (!s->lg.listing_ok)
		resp_text(s->lg.why, sizeof(s->lg.why), "listing messages failed", r);
	login_maybe_finish(s);
}

static void
select_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;

	(void)cmd;
	if (!login_live(s, r))
		return;
	s->lg.select_done = true;
	s->lg.select_ok = r->status == IMAP_STATUS_OK;
	if (!s->lg.select_ok)
		resp_text(s->lg.why, sizeof(s->lg.why), "SELECT failed", r);
	login_maybe_finish(s);
}

static void
send_select_and_list(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	struct buf *out;

	if ((out = gw_upstream_cmd(s, GW_UPCMD_SELECT, select_done, 0)) == NULL)
		goto fail;
	buf_append_str(out, "SELECT ");
	if (imap_write_astring(out, (const uint8_t *)cfg->up_mailbox, strlen(cfg->up_mailbox),
	    (s->up.caps & GW_CAP_LITERALPLUS) != 0) < 0)
		goto fail;
	buf_append_str(out, "\r\n");
	if ((out = gw_upstream_cmd(s, GW_UPCMD_SNAPSHOT, snapshot_done, 0)) == NULL)
		goto fail;
	buf_append_str(out, "UID FETCH 1:* (UID RFC822.SIZE)\r\n");
	gw_upstream_send_end(s);
	return;
fail:
	login_fail_temp(s, "cannot send SELECT");
}

static void
login_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *r)
{
	struct gw_session *s = ctx;
	char why[200];

	if (!login_live(s, r))
		return;
	s->up.sasl_err_ack = NULL;
	if (r->status == IMAP_STATUS_OK) {
		s->up.state = GW_UP_READY;
		s->up.caps_after_login = imap_code_is(r, "CAPABILITY", NULL);
		s->lg.login_ok = true;
		if (cmd->arg == 0)	/* SELECT was not pipelined */
			send_select_and_list(s);
		else
			login_maybe_finish(s);
		return;
	}
	resp_text(why, sizeof(why), "upstream login refused", r);
	/* RFC 5530 (imap/imap_refusal.c): only a refusal of the credentials is remembered and
	 * delayed; a busy or broken server is [SYS/TEMP], a locked mailbox [IN-USE]. */
	switch (imap_login_refusal(r)) {
	case IMAP_REFUSAL_CREDENTIALS:
		gw_bad_cred_remember(s->w, s->cred_hash);
		gw_login_failed(s, POP3_CODE_AUTH, why);
		break;
	case IMAP_REFUSAL_IN_USE:
		gw_login_failed(s, POP3_CODE_IN_USE, why);
		break;
	case IMAP_REFUSAL_TEMPORARY:
		login_fail_temp(s, why);
		break;
	}
}

static void
send_id(struct gw_session *s)
{
	struct buf *out;

	if ((out = gw_upstream_cmd(s, GW_UPCMD_ID, NULL, 0)) == NULL)
		return;
	/* RFC 2971; Dovecot reads x-originating-* from trusted networks for its logs and
	 * its brute-force protection. Addresses are digits, dots and colons: quoted safely. */
	buf_printf(out, "ID (\"name\" \"popgate\" \"x-originating-ip\" \"%s\" "
	    "\"x-originating-port\" \"%u\")\r\n", s->addr_text, s->port);
}

/* XOAUTH2 / OAUTHBEARER: the client's response goes upstream unchanged. Never pipelined:
 * a refused token is answered with a "+" carrying the error (RFC 7628 §3.2.2), and the
 * next line the server reads must be our answer to it, not SELECT. */
static void
send_bearer(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	const char *mech = pop3_sasl_mech_name(s->login_mech);
	unsigned need = s->login_mech == POP3_SASL_XOAUTH2 ? GW_CAP_XOAUTH2 : GW_CAP_OAUTHBEARER;
	char why[80];
	struct buf *out;

	if (!(up->caps & need)) {
		/* Offered when CAPA was answered, gone now: the upstream changed. */
		gw_session_wipe_credentials(s);
		snprintf(why, sizeof(why), "upstream does not offer AUTH=%s", mech);
		login_fail_temp(s, why);
		return;
	}
	if (s->w->cfg->up_send_client_id && (up->caps & GW_CAP_ID))
		send_id(s);
	if ((out = gw_upstream_cmd(s, GW_UPCMD_LOGIN, login_done, 0)) != NULL) {
		buf_printf(out, "AUTHENTICATE %s", mech);
		if (up->caps & GW_CAP_SASL_IR) {
			buf_append_str(out, " ");
			buf_append(out, s->sasl_resp, s->sasl_resp_len);
		} else {
			buf_append(&up->cont, s->sasl_resp, s->sasl_resp_len);
			buf_append_str(&up->cont, "\r\n");
		}
		buf_append_str(out, "\r\n");
		/* XOAUTH2 answers the error with an empty response; OAUTHBEARER with ^A
		 * (RFC 7628 §3.2.3). */
		up->sasl_err_ack = s->login_mech == POP3_SASL_XOAUTH2 ? "\r\n" : "AQ==\r\n";
	}
	gw_session_wipe_credentials(s);
	if (out == NULL || out->failed || up->cont.failed) {
		login_fail_temp(s, "cannot send login");
		return;
	}
	up->state = GW_UP_LOGIN;
	gw_upstream_send_end(s);
}

static void
send_credentials(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	const uint8_t *u = (const uint8_t *)s->user, *p = (const uint8_t *)s->pass;
	size_t ulen = strlen(s->user), plen = s->pass_len;
	bool litplus = (up->caps & GW_CAP_LITERALPLUS) != 0, pipelined = true;
	struct buf *out;
	enum imap_string_kind uk = imap_string_kind(u, ulen), pk = imap_string_kind(p, plen);

	/* The capabilities every login sees, after TLS: what CAPA offers next. */
	gw_upcaps_learned(s->w, up->caps, "login");
	if (s->login_mech != POP3_SASL_PLAIN) {
		send_bearer(s);
		return;
	}
	if (uk == IMAP_STRING_INVALID || pk == IMAP_STRING_INVALID) {
		/* Checked at PASS already; this is the last line of defence. */
		gw_login_failed(s, POP3_CODE_AUTH, "credentials with CR, LF or NUL");
		return;
	}
	if (s->w->cfg->up_send_client_id && (up->caps & GW_CAP_ID))
		send_id(s);
	if ((up->caps & GW_CAP_AUTH_PLAIN) && (up->caps & GW_CAP_SASL_IR)) {
		out = gw_upstream_cmd(s, GW_UPCMD_LOGIN, login_done, 1);
		if (out != NULL) {
			buf_append_str(out, "AUTHENTICATE PLAIN ");
			imap_write_sasl_plain(out, u, ulen, p, plen);
			buf_append_str(out, "\r\n");
		}
	} else if (!(up->caps & GW_CAP_LOGINDISABLED) &&
	    ((uk == IMAP_STRING_QUOTED && pk == IMAP_STRING_QUOTED) || litplus)) {
		out = gw_upstream_cmd(s, GW_UPCMD_LOGIN, login_done, 1);
		if (out != NULL) {
			buf_append_str(out, "LOGIN ");
			imap_write_astring(out, u, ulen, litplus);
			buf_append_str(out, " ");
			imap_write_astring(out, p, plen, litplus);
			buf_append_str(out, "\r\n");
		}
	} else if (up->caps & GW_CAP_AUTH_PLAIN) {
		/* The response goes after the server's "+": nothing may follow in the pipe. */
		pipelined = false;
		out = gw_upstream_cmd(s, GW_UPCMD_LOGIN, login_done, 0);
		if (out != NULL) {
			buf_append_str(out, "AUTHENTICATE PLAIN\r\n");
			imap_write_sasl_plain(&up->cont, u, ulen, p, plen);
			buf_append_str(&up->cont, "\r\n");
		}
	} else {
		gw_session_wipe_credentials(s);
		login_fail_temp(s, "upstream offers no login method for these credentials");
		return;
	}
	gw_session_wipe_credentials(s);
	if (out == NULL || out->failed) {
		login_fail_temp(s, "cannot send login");
		return;
	}
	up->state = GW_UP_LOGIN;
	if (pipelined)
		send_select_and_list(s);
	else
		gw_upstream_send_end(s);
}

/* Decides the next step from what is known about the connection. */
static void
login_next(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	struct buf *out;

	if (s->w->cfg->up_security == GW_SEC_STARTTLS && !conn_tls_active(&up->io.c)) {
		if (up->caps_known && !(up->caps & GW_CAP_STARTTLS)) {
			/* No silent downgrade: the password would cross in clear. */
			login_fail_temp(s, "upstream does not offer STARTTLS");
			return;
		}
		if (up->caps_known) {
			if ((out = gw_upstream_cmd(s, GW_UPCMD_STARTTLS, starttls_done, 0)) == NULL) {
				login_fail_temp(s, "cannot send STARTTLS");
				return;
			}
			up->state = GW_UP_STARTTLS;
			buf_append_str(out, "STARTTLS\r\n");
			gw_upstream_send_end(s);
			return;
		}
	}
	if (!up->caps_known) {
		if ((out = gw_upstream_cmd(s, GW_UPCMD_CAPABILITY, caps_done, 0)) == NULL) {
			login_fail_temp(s, "cannot send CAPABILITY");
			return;
		}
		buf_append_str(out, "CAPABILITY\r\n");
		gw_upstream_send_end(s);
		return;
	}
	send_credentials(s);
}

void
gw_login_on_greeting(struct gw_session *s, const struct imap_resp *r)
{
	if (s->op != GW_OP_LOGIN)
		return;
	if (r->status == IMAP_STATUS_PREAUTH) {
		/* Logged in as someone we did not choose: not this user's mailbox. */
		login_fail_temp(s, "upstream greeted with PREAUTH");
		return;
	}
	if (r->status != IMAP_STATUS_OK) {
		login_fail_temp(s, "upstream greeting was not OK");
		return;
	}
	s->up.state = GW_UP_LOGIN;
	login_next(s);
}

void
gw_login_start(struct gw_session *s, const uint8_t *secret, size_t len)
{
	s->op = GW_OP_LOGIN;
	memset(&s->lg, 0, sizeof(s->lg));
	gw_snapshot_free(&s->snap);
	gw_user_key(s->w->cfg, s->user, s->user_key, sizeof(s->user_key));
	gw_bad_cred_hash(s->w, s->login_mech == POP3_SASL_PLAIN ? "password" : "bearer",
	    s->user_key, secret, len, s->cred_hash);
	if (gw_bad_cred_known(s->w, s->cred_hash)) {
		/* The same wrong password again (a client's retry round): the upstream has
		 * answered it already. */
		gw_login_failed(s, POP3_CODE_AUTH, "credentials refused moments ago, not sent again");
		return;
	}
	if (gw_upstream_connect(s) < 0)
		login_fail_temp(s, s->up.last_error);
}
