/* gateway/session.h: one POP3 client's life, joined to one IMAP upstream connection.
 *
 * A session owns two connections: `client` (POP3, maybe TLS; gateway/io.h) and `up` (an IMAP
 * client connection, gateway/imapc.h), and the operations that run on the latter: the login
 * (login.h), RETR/TOP (retr.h) and UPDATE (update.h). States (RFC 1939 §3), changed only by
 * gw_session_enter():
 *   AUTHORIZATION  USER/PASS/AUTH/CAPA/STLS/QUIT; a login in flight is op GW_OP_LOGIN
 *   TRANSACTION    the snapshot is fixed; STAT/LIST/UIDL/DELE/RSET/NOOP local, RETR/TOP
 *                  streamed from upstream
 *   UPDATE         QUIT seen in TRANSACTION: deletions being applied upstream
 *   CLOSED         ended: the upstream is logged out and no command runs; what is still
 *                  queued for the client drains first (`lingering`, a few seconds at most),
 *                  then the session is freed at the next loop iteration
 * One command runs at a time (`op`); commands the client pipelined wait in its input
 * buffer and are answered in order, also while a multi-line reply is streaming.
 *
 * Only the session's four files see this struct: session.c (the client connection, the
 * command loop, timers, the end), session_cmds.c (the command table: what each POP3 command
 * does), session_upstream.c (the table's upstream half: what the login, RETR/TOP and
 * UPDATE ops answer the client) and session_listing.c (the listing cache's requests). */
#ifndef POPGATE_SESSION_H
#define POPGATE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "../common/log.h"
#include "../pop3/pop3_parse.h"
#include "../pop3/pop3_sasl.h"
#include "cache_async.h"
#include "imapc.h"
#include "io.h"
#include "keys.h"
#include "login.h"
#include "migration.h"
#include "registry.h"
#include "retr.h"
#include "snapshot.h"
#include "update.h"
#include "worker.h"

enum gw_state { GW_S_AUTHORIZATION, GW_S_TRANSACTION, GW_S_UPDATE, GW_S_CLOSED };

/* What a login's +OK waits for, side by side (session_upstream.c's uidls_settle()). */
#define GW_WAIT_LOOKUP 0x1	/* the cache's answer for the listed messages */
#define GW_WAIT_KEYS 0x2	/* the content keys of the messages new to it */
#define GW_WAIT_MIGRATION 0x4	/* the old POP3 server ([migration]) */

/* The command being carried out; others wait. */
enum gw_op {
	GW_OP_NONE,
	GW_OP_LOGIN,		/* login.c: upstream LOGIN, SELECT, UID FETCH 1:* */
	GW_OP_AUTH_DELAY,	/* failed login: waiting before -ERR */
	GW_OP_SASL,		/* AUTH: waiting for the client's continuation line */
	GW_OP_LIST,		/* LIST/UIDL multi-line reply, written as the client drains */
	GW_OP_XFER,		/* retr.c: RETR or TOP streaming */
	GW_OP_QUIT,		/* update.c: UPDATE */
	GW_OP_STLS,		/* client TLS handshake after STLS (or on an implicit TLS port) */
};

struct gw_session {
	struct gw_reg_entry reg;	/* the worker's view: address, user in use, freeing */
	struct gw_worker *w;
	uint32_t id;
	char log_id[24];		/* "session=0000001a" */
	enum gw_state state;
	enum gw_op op;
	bool closing;
	bool in_process;		/* gw_session_process() is on the stack */
	bool client_gone;		/* client hung up during UPDATE: finish, discard output */
	bool lingering;			/* CLOSED, still writing its queued output (session.c) */
	ev_tstamp linger_started;
	struct gw_io client;
	struct sockaddr_storage addr;
	char addr_text[64];		/* "203.0.113.7" for logs and ID */
	unsigned port;
	bool tls_listener;		/* implicit TLS listener */
	bool peer_loopback;		/* the socket's peer (a proxy's, behind one) is local */
	struct pop3_parser parser;
	size_t long_line;		/* bytes of the over-long line being dropped */
	ev_timer idle;			/* RFC 1939 §3 autologout; also the TLS handshake bound */
	ev_timer delay;			/* failed-login delay */
	ev_tstamp last_activity, started;

	/* AUTHORIZATION */
	struct gw_cred cred;		/* the user name, and the secret until it is written */
	bool have_user;
	char user_key[POP3_SASL_FIELD_MAX];	/* gw_config_user_key() of the user, set when a
						   login starts: [IN-USE], delays, cache */
	struct gw_cluster *cluster;	/* the user's IMAP cluster (cluster.h), set when a
					   login starts: never NULL after that */
	char up_user[POP3_SASL_FIELD_MAX];	/* the name sent there (strip_domain) */
	uint8_t cred_hash[GW_CRED_HASH_LEN];	/* login_guard.h: refused-credential memory */
	unsigned auth_failures, bad_commands, commands;
	enum pop3_sasl_mech sasl_mech;	/* GW_OP_SASL: the mechanism whose response comes */

	struct gw_imapc up;
	ev_tstamp up_opened;		/* ev_time() of the upstream connect (metrics.h) */
	ev_tstamp up_login_sent;	/* ... of its ready: the login went; 0: not now */
	struct gw_snapshot snap;
	struct gw_login login;
	struct gw_xfer xfer;
	struct gw_update upd;
	struct gw_cache_req *cache_req;	/* the login's UIDLs, asked of the cache thread */
	struct gw_cache_req *listing_req;	/* the stored listing (CONDSTORE), asked of it */
	struct cache_listing prior;	/* ... its answer, until the login is decided */
	ev_timer listing_wait;		/* ... how long the login's FETCH waits for it */
	bool listing_size_forgotten;	/* a RETR's size was not the listing's: forgotten */
	const char *listing;		/* for the log: "full", "cached", "incremental" */
	struct gw_keys keys;		/* the login's content keys, read upstream */
	struct cache_entry *keying;	/* ... for these messages (then the cache's) */
	size_t nkeying;
	bool rebuilt;			/* the cache holds rows of another UIDVALIDITY, or
					   pending rows, to match */
	struct gw_migration *mig;	/* [migration]: the old server, next to the login;
					   allocated by the first login that needs it (2.8 KB
					   no session without [migration] should carry) */
	enum gw_migration_result mig_result;
	char mig_why[256];
	bool logged_in;			/* the IMAP login is done: the UIDLs come next */
	unsigned uidl_wait;		/* GW_WAIT_*: what the login's +OK still waits for */
	bool keys_complete;		/* every piece of the content keys was answered */
	char lookup_error[256];		/* the cache's lookup failed: why ("" if not) */
	struct { size_t next; bool uidl; } list;

	/* for the session's log line */
	size_t n_retr, n_dele;
	const char *result;
};

/* listener.h's gw_accept_fn: an accepted connection becomes a session (ctx: the worker).
 * Takes ownership of fd. */
void gw_session_accept(void *ctx, int fd, const struct sockaddr_storage *addr, bool tls);
/* A session for a connection whose client is `addr` (the peer, or the address a PROXY
 * header named: gateway/proxyproto.c). Takes fd. */
void gw_session_start(struct gw_worker *w, int fd, const struct sockaddr_storage *addr,
    const struct sockaddr_storage *peer, bool tls);
/* 127.0.0.0/8 or ::1 (session_cmds.c). */
bool gw_addr_is_loopback(const struct sockaddr_storage *ss);
/* Ends the session (safe inside callbacks): logs the upstream out now; the client conn
 * closes once what is queued for it is written (bounded linger), and the session is freed
 * after that. Further calls on an ended session do nothing. */
void gw_session_close(struct gw_session *s, const char *result);

void gw_session_enter(struct gw_session *s, enum gw_state st);
/* The current op is done: go on with the client's next pipelined command. */
void gw_session_op_done(struct gw_session *s);
/* Writes what is queued for the client now. Returns false if the session closed. */
bool gw_session_flush(struct gw_session *s);
/* True when the client's output is above the high watermark (stop producing). */
bool gw_session_client_full(const struct gw_session *s);
struct buf *gw_client_out(struct gw_session *s);

/* session_cmds.c: the command table */
void gw_session_dispatch(struct gw_session *s, const struct pop3_cmd *cmd);
void gw_session_list_continue(struct gw_session *s);
void gw_session_sasl_line(struct gw_session *s, const struct slice *line);

/* session_upstream.c: the operations upstream. Login: PASS or AUTH with s->cred filled;
 * secret identifies the credential for the refused-credential memory (the password, or
 * the bearer token). RETR/TOP of the message at idx. UPDATE (QUIT in TRANSACTION). Each
 * answers the client and goes on with the next command, or ends the session. */
void gw_session_login_start(struct gw_session *s, const uint8_t *secret, size_t len);
void gw_session_xfer_start(struct gw_session *s, size_t idx, bool top, uint32_t lines);
void gw_session_update_start(struct gw_session *s);

/* session_listing.c: the listing cache (CONDSTORE). ask: at login start, the stored
 * listing is looked up and p is told (the FETCH then waits for it, a bounded time). drop:
 * no longer wanted (the login is decided, or the session ends). store: the login's exact
 * listing. size_differs: RETR's literal of message idx had `literal` octets, not the
 * snapshot's size (the stored listing is forgotten, once a session); retr_failed: RETR of
 * message idx ended the session (the upstream cut it: forgotten too). status_mailbox: the
 * mailbox UPDATE asks STATUS of (NULL: none). after_update: UPDATE's outcome (update.h),
 * before the session ends: the mailbox now is stored when proven, else forgotten. */
void gw_session_listing_ask(struct gw_session *s, struct gw_login_params *p);
void gw_session_listing_drop(struct gw_session *s);
void gw_session_listing_store(struct gw_session *s);
void gw_session_listing_size_differs(struct gw_session *s, size_t idx, uint64_t literal);
void gw_session_listing_retr_failed(struct gw_session *s, size_t idx);
const char *gw_session_listing_status_mailbox(const struct gw_session *s);
void gw_session_listing_after_update(struct gw_session *s, size_t removed, const char *error);

/* Untrusted text for a log line (common/log.h), so that it can neither end the line nor
 * add fields to it: gw_log_user() is the user name as a bare value (user=%s; "-" when
 * none), gw_log_text() any text (a server's words) to be put between double quotes. Both
 * return buf, which should have GW_LOG_USER_SIZE / GW_LOG_TEXT_SIZE bytes. */
#define GW_LOG_USER_MAX 128
#define GW_LOG_USER_SIZE LOG_ESCAPE_SIZE(GW_LOG_USER_MAX)
#define GW_LOG_TEXT_MAX 256
#define GW_LOG_TEXT_SIZE LOG_ESCAPE_SIZE(GW_LOG_TEXT_MAX)
const char *gw_log_user(const struct gw_session *s, char *buf, size_t size);
const char *gw_log_text(const char *text, char *buf, size_t size);

/* A session-tagged log line: "session=%08x ..." */
#define gw_log(lvl, s, fmt, ...) log_msg(lvl, "%s " fmt, (s)->log_id, ##__VA_ARGS__)

#endif
