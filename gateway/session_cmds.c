/* gateway/session_cmds.c: every POP3 command (RFC 1939, 2449, 2595, 5034), where it is
 * allowed and what it costs upstream. The table is the map; each handler checks, then
 * proceeds, and a check that refuses has already written the precise -ERR. */
#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../imap/imap_write.h"
#include "../pop3/pop3_capa.h"
#include "../pop3/pop3_reply.h"
#include "../pop3/pop3_sasl.h"
#include "metrics.h"
#include "session.h"

#define GW_UPSTREAM_KEEPALIVE 300	/* seconds of upstream silence before a NOOP goes up */

#define IN_AUTH (1u << GW_S_AUTHORIZATION)
#define IN_TRANS (1u << GW_S_TRANSACTION)

struct gw_cmd {
	enum pop3_cmd_id id;
	unsigned states;
	void (*fn)(struct gw_session *s, const struct pop3_cmd *cmd);
};

static void cmd_capa(struct gw_session *, const struct pop3_cmd *);
static void cmd_quit(struct gw_session *, const struct pop3_cmd *);
static void cmd_user(struct gw_session *, const struct pop3_cmd *);
static void cmd_pass(struct gw_session *, const struct pop3_cmd *);
static void cmd_auth(struct gw_session *, const struct pop3_cmd *);
static void cmd_stls(struct gw_session *, const struct pop3_cmd *);
static void cmd_apop(struct gw_session *, const struct pop3_cmd *);
static void cmd_stat(struct gw_session *, const struct pop3_cmd *);
static void cmd_list(struct gw_session *, const struct pop3_cmd *);
static void cmd_retr(struct gw_session *, const struct pop3_cmd *);
static void cmd_top(struct gw_session *, const struct pop3_cmd *);
static void cmd_dele(struct gw_session *, const struct pop3_cmd *);
static void cmd_rset(struct gw_session *, const struct pop3_cmd *);
static void cmd_noop(struct gw_session *, const struct pop3_cmd *);

static const struct gw_cmd gw_cmds[] = {
	{ POP3_CMD_CAPA, IN_AUTH | IN_TRANS, cmd_capa },	/* none */
	{ POP3_CMD_QUIT, IN_AUTH | IN_TRANS, cmd_quit },	/* UID STORE + UID EXPUNGE, LOGOUT */
	{ POP3_CMD_USER, IN_AUTH, cmd_user },			/* none */
	{ POP3_CMD_PASS, IN_AUTH, cmd_pass },			/* LOGIN, SELECT, [UID FETCH] */
	{ POP3_CMD_AUTH, IN_AUTH, cmd_auth },			/* the same as PASS */
	{ POP3_CMD_STLS, IN_AUTH, cmd_stls },			/* none: TLS with the client */
	{ POP3_CMD_APOP, IN_AUTH, cmd_apop },			/* refused: needs a plaintext secret */
	{ POP3_CMD_STAT, IN_TRANS, cmd_stat },			/* none: the snapshot */
	{ POP3_CMD_LIST, IN_TRANS, cmd_list },			/* none: the snapshot */
	{ POP3_CMD_UIDL, IN_TRANS, cmd_list },			/* none: the snapshot */
	{ POP3_CMD_RETR, IN_TRANS, cmd_retr },			/* UID FETCH uid BODY.PEEK[] */
	{ POP3_CMD_TOP, IN_TRANS, cmd_top },			/* BODY.PEEK[HEADER] + [TEXT]<..> */
	{ POP3_CMD_DELE, IN_TRANS, cmd_dele },			/* none now; at QUIT */
	{ POP3_CMD_RSET, IN_TRANS, cmd_rset },			/* none */
	{ POP3_CMD_NOOP, IN_TRANS, cmd_noop },			/* none */
};

void
gw_session_dispatch(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (cmd->id == POP3_CMD_UNKNOWN)
		return;		/* the caller counts it and answers */
	for (size_t i = 0; i < sizeof(gw_cmds) / sizeof(gw_cmds[0]); i++) {
		if (gw_cmds[i].id != cmd->id)
			continue;
		if (!(gw_cmds[i].states & (1u << s->state))) {
			pop3_reply_err(gw_client_out(s), NULL, s->state == GW_S_AUTHORIZATION ?
			    "Not logged in." : "Already logged in.");
			return;
		}
		gw_log(LOG_LVL_DEBUG, s, "command %s%s", pop3_cmd_name(cmd->id),
		    cmd->secret ? " <hidden>" : "");
		gw_cmds[i].fn(s, cmd);
		return;
	}
	pop3_reply_err(gw_client_out(s), NULL, "Command not supported.");
}

/* --- checks: each one that refuses has replied --- */

bool
gw_addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

/* RFC 2595 §2.4 / RFC 8314: a password crosses only inside TLS unless configured. */
static bool
plaintext_allowed(const struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;

	return cfg->allow_plaintext_auth || conn_tls_active(&s->client.c) ||
	    (cfg->allow_plaintext_loopback && s->peer_loopback && gw_addr_is_loopback(&s->addr));
}

/* attempt: the command is a login attempt (PASS, AUTH), whose refusal is counted (USER's
 * is not: its PASS would count the same attempt twice). */
static bool
check_plaintext(struct gw_session *s, bool attempt)
{
	if (plaintext_allowed(s))
		return true;
	if (attempt)
		gw_metrics_login_failed(MET_LOGIN_PLAINTEXT_REFUSED);
	pop3_reply_err(gw_client_out(s), POP3_CODE_AUTH,
	    "Plaintext authentication disallowed on non-secure connections.");
	return false;
}

static bool
check_no_args(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs == 0)
		return true;
	pop3_reply_err(gw_client_out(s), NULL, "Noise after command.");
	return false;
}

/* Message number argument `argi` -> idx, or -1 having replied (Dovecot's get_msgnum()
 * tells each case apart; so do we). */
static ssize_t
msg_from_arg(struct gw_session *s, const struct pop3_cmd *cmd, size_t argi)
{
	uint32_t n;

	if (cmd->nargs <= argi) {
		pop3_reply_err(gw_client_out(s), NULL, "Message number required.");
		return -1;
	}
	if (!pop3_parse_number(&cmd->arg[argi], false, &n)) {
		pop3_reply_err(gw_client_out(s), NULL, "Invalid message number.");
		return -1;
	}
	if (n > s->snap.count) {
		pop3_reply_err(gw_client_out(s), NULL, "There is no message %u.", n);
		return -1;
	}
	if (s->snap.flags[n - 1] & GW_MSG_DELETED) {
		pop3_reply_err(gw_client_out(s), NULL, "Message %u is deleted.", n);
		return -1;
	}
	return (ssize_t)(n - 1);
}

/* The one argument of RETR/DELE/LIST n/UIDL n -> idx, or -1 having replied. */
static ssize_t
only_msg_arg(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (cmd->nargs > 1) {
		pop3_reply_err(gw_client_out(s), NULL, "Noise after message number.");
		return -1;
	}
	return msg_from_arg(s, cmd, 0);
}

/* A credential that could never be sent safely: refused before anything goes upstream. */
static bool
check_credential(struct gw_session *s, const uint8_t *p, size_t len, size_t max, bool attempt)
{
	if (len > 0 && len < max && imap_string_kind(p, len) != IMAP_STRING_INVALID)
		return true;
	if (attempt)
		gw_metrics_login_failed(MET_LOGIN_INVALID_CREDENTIALS);
	pop3_reply_err(gw_client_out(s), POP3_CODE_AUTH, len == 0 ? "Empty credentials." :
	    "Invalid characters or length in credentials.");
	return false;
}

/* XOAUTH2/OAUTHBEARER are listed when the upstream's known capabilities offer them
 * (gateway/probe.c learns them before any login). CAPA and AUTH's mechanism come before
 * the user name, so before its cluster is known (gateway/cluster.h): a mechanism is listed
 * when some cluster offers it; a user whose cluster lacks it is refused at login. */
static bool
bearer_offered(struct gw_session *s, enum pop3_sasl_mech mech)
{
	return gw_clusters_any_offers(&s->w->clusters,
	    mech == POP3_SASL_XOAUTH2 ? GW_CAP_XOAUTH2 : GW_CAP_OAUTHBEARER);
}

/* AUTH with a bearer mechanism is taken when an upstream offers it, and also while some
 * upstream's capabilities are unknown (its probe failed): then the upstream decides at
 * login. */
static bool
bearer_usable(struct gw_session *s, enum pop3_sasl_mech mech)
{
	return gw_clusters_may_offer(&s->w->clusters,
	    mech == POP3_SASL_XOAUTH2 ? GW_CAP_XOAUTH2 : GW_CAP_OAUTHBEARER);
}

/* --- AUTHORIZATION --- */

static void
cmd_capa(struct gw_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_capa capa;
	bool auth_state = s->state == GW_S_AUTHORIZATION;

	if (!check_no_args(s, cmd))
		return;
	memset(&capa, 0, sizeof(capa));
	/* RFC 2449 §5: list what can be used now; no USER or PLAIN where they are refused,
	 * and no bearer mechanism (a token is a credential too) there or upstream lacks. */
	capa.user = auth_state && plaintext_allowed(s);
	capa.sasl_plain = capa.user;
	capa.sasl_xoauth2 = capa.user && bearer_offered(s, POP3_SASL_XOAUTH2);
	capa.sasl_oauthbearer = capa.user && bearer_offered(s, POP3_SASL_OAUTHBEARER);
	capa.stls = auth_state && s->w->server_tls != NULL && !conn_tls_active(&s->client.c);
	capa.implementation = "popgate";
	pop3_reply_ok(gw_client_out(s), "Capability list follows");
	pop3_capa_write(gw_client_out(s), &capa);
}

static void
cmd_quit(struct gw_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (s->state == GW_S_TRANSACTION) {
		gw_session_update_start(s);
		return;
	}
	pop3_reply_ok(gw_client_out(s), "Logging out.");
	gw_session_flush(s);
	gw_session_close(s, "ok");
}

static void
cmd_user(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (!check_plaintext(s, false) ||
	    !check_credential(s, cmd->rest.p, cmd->rest.len, sizeof(s->cred.user), false))
		return;
	memcpy(s->cred.user, cmd->rest.p, cmd->rest.len);
	s->cred.user[cmd->rest.len] = '\0';
	s->have_user = true;
	pop3_reply_ok(gw_client_out(s), "Send your password.");
}

static void
cmd_pass(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (!check_plaintext(s, true))
		return;
	if (!s->have_user) {
		pop3_reply_err(gw_client_out(s), NULL, "No user name given, send USER first.");
		return;
	}
	if (!check_credential(s, cmd->rest.p, cmd->rest.len, POP3_SASL_FIELD_MAX, true))
		return;
	if (gw_cred_set_password(&s->cred, cmd->rest.p, cmd->rest.len) < 0) {
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "Out of memory, try again later.");
		return;
	}
	s->cred.mech = POP3_SASL_PLAIN;
	gw_session_login_start(s, s->cred.pass, s->cred.pass_len);
}

static void
cmd_apop(struct gw_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	/* APOP needs the plaintext secret on our side; the gateway never has it. */
	pop3_reply_err(gw_client_out(s), NULL, "APOP is not supported, use USER/PASS or AUTH.");
}

/* AUTH PLAIN's message, from the initial response or the continuation line. */
static void
sasl_plain(struct gw_session *s, const uint8_t *b64, size_t len)
{
	struct pop3_sasl_plain plain;
	enum pop3_sasl_result r = pop3_sasl_plain_decode(b64, len, &plain);
	size_t ulen, plen;

	s->op = GW_OP_NONE;
	if (r != POP3_SASL_OK) {
		pop3_reply_err(gw_client_out(s), NULL, r == POP3_SASL_BAD_BASE64 ?
		    "Invalid base64 data." : "Invalid SASL PLAIN message.");
		return;
	}
	ulen = strlen(plain.authcid);
	plen = strlen(plain.passwd);
	if (plain.authzid[0] != '\0' && strcmp(plain.authzid, plain.authcid) != 0) {
		pop3_reply_err(gw_client_out(s), POP3_CODE_AUTH, "Authorization identity not supported.");
	} else if (check_credential(s, (const uint8_t *)plain.authcid, ulen, sizeof(s->cred.user),
	    true) && check_credential(s, (const uint8_t *)plain.passwd, plen, POP3_SASL_FIELD_MAX,
	    true)) {
		if (gw_cred_set_password(&s->cred, (const uint8_t *)plain.passwd, plen) < 0) {
			pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP,
			    "Out of memory, try again later.");
			explicit_bzero(&plain, sizeof(plain));
			return;
		}
		memcpy(s->cred.user, plain.authcid, ulen + 1);
		s->have_user = true;
		s->cred.mech = POP3_SASL_PLAIN;
		explicit_bzero(&plain, sizeof(plain));
		gw_session_login_start(s, s->cred.pass, s->cred.pass_len);
		return;
	}
	explicit_bzero(&plain, sizeof(plain));
}

/* AUTH XOAUTH2/OAUTHBEARER's response, from the AUTH line or the continuation line: the
 * user name is read out of it, the base64 goes upstream unchanged. */
static void
sasl_bearer(struct gw_session *s, enum pop3_sasl_mech mech, const uint8_t *b64, size_t len)
{
	static struct pop3_sasl_bearer b;	/* 7 KB: off the stack; wiped on every path */
	enum pop3_sasl_result r = pop3_sasl_bearer_decode(mech, b64, len, &b);
	size_t ulen;

	s->op = GW_OP_NONE;
	switch (r) {
	case POP3_SASL_OK:
		break;
	case POP3_SASL_BAD_BASE64:
		pop3_reply_err(gw_client_out(s), NULL, "Invalid base64 data.");
		return;
	case POP3_SASL_NO_USER:
		pop3_reply_err(gw_client_out(s), POP3_CODE_AUTH,
		    "OAUTHBEARER needs the user name (a=) in its GS2 header.");
		return;
	default:
		pop3_reply_err(gw_client_out(s), NULL, "Invalid SASL %s message.",
		    pop3_sasl_mech_name(mech));
		return;
	}
	gw_cred_wipe(&s->cred);
	ulen = strlen(b.user);
	if (!check_credential(s, (const uint8_t *)b.user, ulen, sizeof(s->cred.user), true)) {
		explicit_bzero(&b, sizeof(b));
		return;
	}
	if ((s->cred.sasl_resp = malloc(len)) == NULL) {
		pop3_reply_err(gw_client_out(s), POP3_CODE_SYS_TEMP, "Out of memory, try again later.");
		explicit_bzero(&b, sizeof(b));
		return;
	}
	memcpy(s->cred.sasl_resp, b64, len);
	s->cred.sasl_resp_len = len;
	memcpy(s->cred.user, b.user, ulen + 1);
	s->have_user = true;
	s->cred.mech = mech;
	gw_session_login_start(s, b.token, b.token_len);
	explicit_bzero(&b, sizeof(b));
}

static void
sasl_response(struct gw_session *s, enum pop3_sasl_mech mech, const uint8_t *b64, size_t len)
{
	if (mech == POP3_SASL_PLAIN)
		sasl_plain(s, b64, len);
	else
		sasl_bearer(s, mech, b64, len);
}

void
gw_session_sasl_line(struct gw_session *s, const struct slice *line)
{
	if (line == NULL) {
		s->op = GW_OP_NONE;
		pop3_reply_err(gw_client_out(s), NULL, "SASL response too long.");
		return;
	}
	if (line->len == 1 && line->p[0] == '*') {	/* RFC 5034 §4: the client cancels */
		s->op = GW_OP_NONE;
		pop3_reply_err(gw_client_out(s), NULL, "Authentication aborted.");
		return;
	}
	sasl_response(s, s->sasl_mech, line->p, line->len);
}

static void
cmd_auth(struct gw_session *s, const struct pop3_cmd *cmd)
{
	struct buf *out = gw_client_out(s);
	enum pop3_sasl_mech mech;

	if (cmd->nargs == 0) {
		/* Old Outlook sends a bare AUTH and expects the mechanism list. */
		pop3_reply_ok(out, "Mechanisms follow");
		if (plaintext_allowed(s)) {
			pop3_reply_line(out, "PLAIN");
			if (bearer_offered(s, POP3_SASL_XOAUTH2))
				pop3_reply_line(out, "XOAUTH2");
			if (bearer_offered(s, POP3_SASL_OAUTHBEARER))
				pop3_reply_line(out, "OAUTHBEARER");
		}
		pop3_reply_end(out);
		return;
	}
	if (!pop3_sasl_mech_parse(cmd->arg[0].p, cmd->arg[0].len, &mech) ||
	    (mech != POP3_SASL_PLAIN && !bearer_usable(s, mech))) {
		pop3_reply_err(out, NULL, "Unsupported authentication mechanism.");
		return;
	}
	if (!check_plaintext(s, true))
		return;
	if (cmd->nargs >= 2) {
		sasl_response(s, mech, cmd->arg[1].p, cmd->arg[1].len);
		return;
	}
	s->op = GW_OP_SASL;
	s->sasl_mech = mech;
	buf_append_str(out, "+ \r\n");
}

static void
cmd_stls(struct gw_session *s, const struct pop3_cmd *cmd)
{
	struct conn *c = &s->client.c;

	if (!check_no_args(s, cmd))
		return;
	if (s->w->server_tls == NULL) {
		pop3_reply_err(gw_client_out(s), NULL, "STLS is not available.");
		return;
	}
	if (c->ssl != NULL) {
		pop3_reply_err(gw_client_out(s), NULL, "TLS is already active.");
		return;
	}
	pop3_reply_ok(gw_client_out(s), "Begin TLS negotiation.");
	if (!gw_io_flush(&s->client) || conn_queued(c) > 0) {
		gw_session_close(s, "client write failed");
		return;
	}
	/* RFC 2595 §4, nginx's ngx_mail_pop3_stls(): what the client pipelined after STLS
	 * was sent in clear; it is dropped, never run inside TLS. */
	buf_reset(&c->in);
	memset(&s->parser, 0, sizeof(s->parser));
	if (gw_io_start_tls(&s->client, s->w->server_tls, true, NULL, false) < 0) {
		gw_session_close(s, "tls setup failed");
		return;
	}
	s->op = GW_OP_STLS;
	s->idle.repeat = s->w->cfg->tls_handshake_timeout;
	ev_timer_again(s->w->loop, &s->idle);
}

/* --- TRANSACTION --- */

static void
cmd_stat(struct gw_session *s, const struct pop3_cmd *cmd)
{
	size_t count;
	uint64_t octets;

	if (!check_no_args(s, cmd))
		return;
	gw_snapshot_stat(&s->snap, &count, &octets);
	pop3_reply_ok(gw_client_out(s), "%zu %llu", count, (unsigned long long)octets);
}

void
gw_session_list_continue(struct gw_session *s)
{
	struct buf *out = gw_client_out(s);
	char uidl[CACHE_UIDL_MAX];

	while (s->list.next < s->snap.count && !gw_session_client_full(s)) {
		size_t i = s->list.next++;

		if (s->snap.flags[i] & GW_MSG_DELETED)
			continue;
		if (s->list.uidl)
			pop3_reply_line(out, "%zu %s", i + 1, gw_snapshot_uidl(&s->snap, i, uidl));
		else
			pop3_reply_line(out, "%zu %llu", i + 1, (unsigned long long)s->snap.size[i]);
	}
	if (s->list.next == s->snap.count) {
		pop3_reply_end(out);
		gw_session_op_done(s);
	}
}

static void
cmd_list(struct gw_session *s, const struct pop3_cmd *cmd)
{
	bool uidl = cmd->id == POP3_CMD_UIDL;
	char text[CACHE_UIDL_MAX];
	ssize_t idx;

	if (cmd->nargs >= 1) {
		if ((idx = only_msg_arg(s, cmd)) < 0)
			return;
		if (uidl)
			pop3_reply_ok(gw_client_out(s), "%zd %s", idx + 1,
			    gw_snapshot_uidl(&s->snap, (size_t)idx, text));
		else
			pop3_reply_ok(gw_client_out(s), "%zd %llu", idx + 1,
			    (unsigned long long)s->snap.size[idx]);
		return;
	}
	if (uidl) {
		pop3_reply_ok(gw_client_out(s), "Unique-ID listing follows");
	} else {
		size_t count;
		uint64_t octets;

		gw_snapshot_stat(&s->snap, &count, &octets);
		pop3_reply_ok(gw_client_out(s), "%zu messages (%llu octets)", count,
		    (unsigned long long)octets);
	}
	/* Written as the client drains: a huge mailbox never sits whole in memory. */
	s->op = GW_OP_LIST;
	s->list.next = 0;
	s->list.uidl = uidl;
	gw_session_list_continue(s);
}

static void
cmd_retr(struct gw_session *s, const struct pop3_cmd *cmd)
{
	ssize_t idx;

	if ((idx = only_msg_arg(s, cmd)) < 0)
		return;
	gw_session_xfer_start(s, (size_t)idx, false, 0);
}

static void
cmd_top(struct gw_session *s, const struct pop3_cmd *cmd)
{
	ssize_t idx;
	uint32_t lines;

	if (cmd->nargs != 2 || cmd->too_many_args) {
		pop3_reply_err(gw_client_out(s), NULL, cmd->nargs < 2 ?
		    "Message number and line count required." : "Noise after line count.");
		return;
	}
	if ((idx = msg_from_arg(s, cmd, 0)) < 0)
		return;
	if (!pop3_parse_number(&cmd->arg[1], true, &lines)) {
		pop3_reply_err(gw_client_out(s), NULL, "Invalid line count.");
		return;
	}
	gw_session_xfer_start(s, (size_t)idx, true, lines);
}

static void
cmd_dele(struct gw_session *s, const struct pop3_cmd *cmd)
{
	ssize_t idx;

	if ((idx = only_msg_arg(s, cmd)) < 0)
		return;
	s->snap.flags[idx] |= GW_MSG_DELETED;	/* RFC 1939 §6: nothing changes before UPDATE */
	pop3_reply_ok(gw_client_out(s), "Message %zd deleted.", idx + 1);
}

static void
cmd_rset(struct gw_session *s, const struct pop3_cmd *cmd)
{
	size_t count;
	uint64_t octets;

	if (!check_no_args(s, cmd))
		return;
	for (size_t i = 0; i < s->snap.count; i++)
		s->snap.flags[i] &= (uint8_t)~GW_MSG_DELETED;
	gw_snapshot_stat(&s->snap, &count, &octets);
	pop3_reply_ok(gw_client_out(s), "Maildrop has %zu messages (%llu octets).", count,
	    (unsigned long long)octets);
}

static void
cmd_noop(struct gw_session *s, const struct pop3_cmd *cmd)
{
	if (!check_no_args(s, cmd))
		return;
	/* Keep the upstream alive too: IMAP servers log out after 30 idle minutes
	 * (RFC 3501 §5.4), while a POP3 client may NOOP for hours. */
	gw_imapc_keepalive(&s->up, GW_UPSTREAM_KEEPALIVE);
	pop3_reply_ok(gw_client_out(s), "Keeping on.");
}
