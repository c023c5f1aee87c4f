/* gateway/session.h: one POP3 client's life, joined to one IMAP upstream.
 *
 * A session owns two conns: `client` (POP3, maybe TLS) and `up.io` (IMAP, maybe TLS).
 * States (RFC 1939 §3), changed only by gw_session_enter():
 *   AUTHORIZATION  USER/PASS/AUTH/CAPA/STLS/QUIT; a login in flight is op GW_OP_LOGIN
 *   TRANSACTION    the snapshot is fixed; STAT/LIST/UIDL/DELE/RSET/NOOP local, RETR/TOP
 *                  streamed from upstream
 *   UPDATE         QUIT seen in TRANSACTION: deletions being applied upstream
 *   CLOSED         ended: the upstream is logged out and no command runs; what is still
 *                  queued for the client drains first (`lingering`, a few seconds at most),
 *                  then the session is freed at the next loop iteration
 * One command runs at a time (`op`); commands the client pipelined wait in its input
 * buffer and are answered in order, also while a multi-line reply is streaming. */
#ifndef POPGATE_SESSION_H
#define POPGATE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "../common/log.h"
#include "../imap/imap_parse.h"
#include "../imap/imap_queue.h"
#include "../pop3/pop3_dotstuff.h"
#include "../pop3/pop3_parse.h"
#include "../pop3/pop3_sasl.h"
#include "../pop3/pop3_top.h"
#include "io.h"
#include "snapshot.h"
#include "worker.h"

enum gw_state { GW_S_AUTHORIZATION, GW_S_TRANSACTION, GW_S_UPDATE, GW_S_CLOSED };

/* The command being carried out; others wait. */
enum gw_op {
	GW_OP_NONE,
	GW_OP_LOGIN,		/* upstream LOGIN, SELECT, UID FETCH 1:* */
	GW_OP_AUTH_DELAY,	/* failed login: waiting before -ERR */
	GW_OP_SASL,		/* AUTH: waiting for the client's continuation line */
	GW_OP_LIST,		/* LIST/UIDL multi-line reply, written as the client drains */
	GW_OP_RETR,		/* UID FETCH BODY.PEEK[] streaming */
	GW_OP_TOP,		/* header, then body windows */
	GW_OP_QUIT,		/* UPDATE: STORE/EXPUNGE */
	GW_OP_STLS,		/* client TLS handshake after STLS */
};

enum gw_up_state {
	GW_UP_NONE,		/* no upstream connection */
	GW_UP_CONNECTING,	/* TCP connect in progress */
	GW_UP_GREETING,		/* waiting for "* OK" (after the TLS handshake for tls) */
	GW_UP_STARTTLS,		/* STARTTLS sent / TLS handshake after it */
	GW_UP_LOGIN,		/* CAPABILITY/ID/LOGIN/SELECT/FETCH in flight */
	GW_UP_READY,		/* selected, idle or serving RETR/TOP/QUIT */
	GW_UP_LOGOUT,		/* LOGOUT sent: closing */
};

/* What each upstream command is, for routing untagged data and for log context. */
enum gw_upcmd {
	GW_UPCMD_CAPABILITY, GW_UPCMD_STARTTLS, GW_UPCMD_ID, GW_UPCMD_LOGIN, GW_UPCMD_SELECT,
	GW_UPCMD_SNAPSHOT, GW_UPCMD_FETCH_BODY, GW_UPCMD_FETCH_HEADER, GW_UPCMD_FETCH_TEXT,
	GW_UPCMD_STORE, GW_UPCMD_EXPUNGE, GW_UPCMD_SEARCH, GW_UPCMD_NOOP, GW_UPCMD_LOGOUT,
	GW_UPCMD_VERIFY,
};

/* Upstream capabilities popgate uses. */
#define GW_CAP_LITERALPLUS	0x001	/* RFC 7888 LITERAL+ (or LITERAL-) */
#define GW_CAP_UIDPLUS		0x002	/* RFC 4315 */
#define GW_CAP_SASL_IR		0x004	/* RFC 4959 */
#define GW_CAP_AUTH_PLAIN	0x008
#define GW_CAP_STARTTLS		0x010
#define GW_CAP_LOGINDISABLED	0x020
#define GW_CAP_ID		0x040	/* RFC 2971 */
#define GW_CAP_XOAUTH2		0x080
#define GW_CAP_OAUTHBEARER	0x100
#define GW_CAP_IMAP4REV2	0x200	/* RFC 9051: includes UID EXPUNGE (UIDPLUS's) */

struct gw_upstream {
	struct gw_io io;
	enum gw_up_state state;
	struct imap_parser parser;
	struct imap_queue queue;
	ev_timer timer;			/* connect / response timeout */
	ev_tstamp last_rx;		/* last byte from upstream */
	unsigned caps;
	bool caps_known;
	bool caps_after_login;		/* caps are what the server offers once logged in (its
					   LOGIN OK's code, or a CAPABILITY asked since) */
	bool in_literal;		/* between LITERAL and LITERAL_END */
	bool bye;			/* the server said BYE */
	uint32_t uidvalidity;
	bool have_uidvalidity;
	bool uidvalidity_changed;	/* during TRANSACTION: UIDs no longer name our messages */
	bool read_only;
	char last_error[256];		/* the last upstream problem, for the log */
	struct buf cont;		/* bytes to send on the next "+" continuation */
	const char *sasl_err_ack;	/* bearer AUTHENTICATE pending: the answer to the
					   server's error challenge ("\r\n" or "AQ==\r\n") */
};

/* A RETR or TOP in progress. */
struct gw_xfer {
	size_t idx;			/* the message */
	bool reply_started;		/* "+OK" sent: a failure now must cut the connection */
	bool got_literal;		/* RETR: the body literal; TOP: the header literal */
	bool header_done;		/* TOP: the header FETCH is answered */
	bool window_seen, window_done;	/* TOP: the current body window's literal / answer */
	bool is_top;
	bool body_phase;		/* TOP: past the header */
	bool skipping;			/* literal bytes we do not forward */
	bool uid_pending;		/* the literal streaming now named no UID before it: it
					   is ours only if its FETCH line ends naming our UID */
	bool pending_streamed;		/* bytes of that literal went to the client */
	bool pending_header;		/* the line's pending items include the header / BODY[] */
	bool pending_window;		/* ... and a TOP body window */
	bool window_early;		/* TOP: our window came before the header: ask again */
	bool pending_body_phase;	/* body_phase before it was taken */
	bool got_nil;			/* our FETCH answered the item with NIL */
	bool unreadable;		/* a FETCH whose attributes could not be read came */
	uint32_t top_lines;
	uint64_t window_off;		/* TOP: body offset of the next window */
	uint64_t window_len;		/* TOP: size asked for in the pending window */
	uint64_t literal_size, literal_seen;
	struct pop3_dotstuff dot;
	struct pop3_top top;
};

struct gw_session {
	struct gw_session *next, *prev;	/* worker->sessions */
	struct gw_session *next_doomed;
	struct gw_worker *w;
	uint32_t id;
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
	struct pop3_parser parser;
	size_t long_line;		/* bytes of the over-long line being dropped */
	ev_timer idle;			/* RFC 1939 §3 autologout; also the TLS handshake bound */
	ev_timer delay;			/* failed-login delay */
	ev_tstamp last_activity, started;

	/* AUTHORIZATION */
	char user[POP3_SASL_FIELD_MAX];
	char user_key[POP3_SASL_FIELD_MAX];	/* gw_user_key() of user, set when a login
						   starts: [IN-USE], delays, cache */
	bool have_user;
	char pass[POP3_SASL_FIELD_MAX];	/* until the login is written; then wiped */
	size_t pass_len;
	enum pop3_sasl_mech login_mech;	/* PLAIN: a password (USER/PASS or AUTH PLAIN);
					   XOAUTH2/OAUTHBEARER: sasl_resp goes upstream */
	uint8_t *sasl_resp;		/* the client's base64 bearer response, as sent; until
					   the login is written, then wiped and freed */
	size_t sasl_resp_len;
	uint8_t cred_hash[32];		/* salted hash of user+secret (worker.h gw_bad_cred) */
	unsigned auth_failures, bad_commands, commands;
	enum pop3_sasl_mech sasl_mech;	/* GW_OP_SASL: the mechanism whose response comes */

	struct gw_upstream up;
	struct gw_snapshot snap;

	/* op state */
	struct gw_login_state {		/* GW_OP_LOGIN (login.c): the pipelined answers, any order */
		bool login_ok;		/* LOGIN/AUTHENTICATE answered OK */
		bool select_done, select_ok, listing_done, listing_ok;
		char why[200];		/* what SELECT or the listing answered when not OK */
		bool have_exists;	/* SELECT said "* n EXISTS" */
		uint32_t exists;	/* messages now, by EXISTS and EXPUNGE */
		bool base_taken;	/* a listing line came with EXISTS known: base is fixed */
		uint32_t base;		/* messages when it began (later arrivals are not owed) */
		uint32_t expunged;	/* "* n EXPUNGE" since then */
		bool listing_bad;	/* a listing line that could not be read */
	} lg;
	struct { size_t next; bool uidl; } list;
	struct gw_xfer xfer;
	uint32_t xfer_gen;		/* names the current RETR/TOP in its upstream commands */
	const char *pending_err;	/* GW_OP_AUTH_DELAY: the reply to send */
	struct {			/* GW_OP_QUIT (update.c): sent in pieces */
		size_t ndel;		/* messages to delete */
		size_t nseen;		/* retrieved messages to flag \Seen */
		size_t pos;		/* marked messages handled so far in this phase */
		size_t piece;		/* how many the current piece covers (from pos) */
		uint32_t piece_lo, piece_hi;	/* its first and last UID */
		size_t removed;		/* ours no longer upstream, by UID (update.c) */
		size_t left;		/* ours still there, or unknown: QUIT says -ERR */
		char search_tag[IMAP_TAG_MAX];	/* the SEARCH running: ESEARCH names it */
		bool verifying;		/* it is UID SEARCH UID <piece>, not DELETED */
		bool search_seen;	/* an answer to it came */
		bool search_bad;	/* ... that did not parse, or named what it may not */
		size_t search_walk;	/* snapshot entries looked at for it (a bound) */
		size_t search_found;	/* UID SEARCH DELETED: how many of ours it named */
		uint32_t win_lo;	/* ... the next window's first UID */
		bool search_last;	/* ... the window up to "*" was sent */
	} upd;

	/* for the session's log line */
	size_t n_retr, n_dele;
	uint64_t bytes_retr;
	const char *result;
};

/* Accepted connection: takes ownership of fd. */
void gw_session_new(struct gw_worker *w, int fd, const struct sockaddr_storage *addr, bool tls);
/* Ends the session (safe inside callbacks): logs the upstream out now; the client conn
 * closes once what is queued for it is written (bounded linger), and the session is freed
 * after that. Further calls on an ended session do nothing. */
void gw_session_close(struct gw_session *s, const char *result);
/* The same, but without lingering: a lingering session is cut now (the worker's end). */
void gw_session_close_now(struct gw_session *s, const char *result);
/* Frees a closed session (the worker's reaper calls this). */
void gw_session_free(struct gw_session **sp);

void gw_session_enter(struct gw_session *s, enum gw_state st);
/* The current op is done: go on with the client's next pipelined command. */
void gw_session_op_done(struct gw_session *s);
/* Flushes the client side and re-arms its watcher. Returns false if the session closed. */
bool gw_session_flush(struct gw_session *s);
/* Reads and answers buffered client commands while no op is running. */
void gw_session_process(struct gw_session *s);
/* True when the client's output is above the high watermark (stop producing). */
bool gw_session_client_full(const struct gw_session *s);
struct buf *gw_client_out(struct gw_session *s);

/* session_cmds.c */
void gw_session_dispatch(struct gw_session *s, const struct pop3_cmd *cmd);
void gw_session_list_continue(struct gw_session *s);
void gw_session_sasl_line(struct gw_session *s, const struct pop3_slice *line);

/* Wipes the password and the bearer response (every path that ends a login attempt). */
void gw_session_wipe_credentials(struct gw_session *s);

/* login.c: the upstream login conversation, started by PASS/AUTH with s->user and
 * s->login_mech set, and s->pass or s->sasl_resp holding the credential. secret is what
 * identifies the credential for the refused-credential memory: the password, or the
 * bearer token (whichever mechanism carried it). */
void gw_login_start(struct gw_session *s, const uint8_t *secret, size_t len);
void gw_login_on_greeting(struct gw_session *s, const struct imap_resp *r);
void gw_login_tls_done(struct gw_session *s);
/* The upstream is lost/failed during login: answer the client. */
void gw_login_failed(struct gw_session *s, const char *code, const char *why);
/* Untagged EXISTS / EXPUNGE / FETCH while the login's SELECT or listing runs. */
void gw_login_untagged(struct gw_session *s, const struct imap_resp *r);

/* retr.c: RETR and TOP */
void gw_retr_start(struct gw_session *s, size_t idx);
void gw_top_start(struct gw_session *s, size_t idx, uint32_t lines);
void gw_xfer_literal(struct gw_session *s, const struct imap_event *ev);
void gw_xfer_data(struct gw_session *s, const uint8_t *p, size_t n);
void gw_xfer_literal_end(struct gw_session *s);
void gw_xfer_fetch_line(struct gw_session *s, const struct imap_resp *r);

/* update.c: QUIT in TRANSACTION */
void gw_update_start(struct gw_session *s);
/* An untagged SEARCH or ESEARCH response while a SEARCH of UPDATE runs. */
void gw_update_search_data(struct gw_session *s, const struct imap_resp *r);

/* upstream.c */
int gw_upstream_connect(struct gw_session *s);
/* Starts a tagged command: pushes it on the queue and writes "TAG " to the output; the
 * caller appends the rest and calls gw_upstream_send_end(). NULL if the queue is full. */
struct buf *gw_upstream_cmd(struct gw_session *s, int kind, imap_done_fn *done, uint32_t arg);
/* The tag of the command gw_upstream_cmd() queued last ("" if none). */
const char *gw_upstream_last_tag(const struct gw_session *s);
void gw_upstream_send_end(struct gw_session *s);
/* Sends LOGOUT (best effort) and closes the upstream. */
void gw_upstream_logout(struct gw_session *s);
void gw_upstream_close(struct gw_session *s);
/* The client drained: resume reading upstream (backpressure). */
void gw_upstream_resume(struct gw_session *s);
/* Something upstream failed: logs why, closes it, tells the op. */
void gw_upstream_fail(struct gw_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The upstream is gone (gw_upstream_fail, or its EOF): the op in progress reacts. */
void gw_session_upstream_lost(struct gw_session *s);
const char *gw_upcmd_name(int kind);
/* "IMAP4rev1 SASL-IR AUTH=PLAIN ..." -> the GW_CAP_* bits popgate uses. */
unsigned gw_upstream_parse_caps(const struct imap_slice *caps);
int gw_upstream_start_tls(struct gw_session *s);

/* Untrusted text for a log line (common/log.h), so that it can neither end the line nor
 * add fields to it: gw_log_user() is s->user as a bare value (user=%s; "-" when none),
 * gw_log_text() any text (a server's words) to be put between double quotes. Both return
 * buf, which should have GW_LOG_USER_SIZE / GW_LOG_TEXT_SIZE bytes. */
#define GW_LOG_USER_MAX 128
#define GW_LOG_USER_SIZE LOG_ESCAPE_SIZE(GW_LOG_USER_MAX)
#define GW_LOG_TEXT_MAX 256
#define GW_LOG_TEXT_SIZE LOG_ESCAPE_SIZE(GW_LOG_TEXT_MAX)
const char *gw_log_user(const struct gw_session *s, char *buf, size_t size);
const char *gw_log_text(const char *text, char *buf, size_t size);

/* A session-tagged log line: "session=%08x ..." */
#define gw_log(lvl, s, fmt, ...) log_msg(lvl, "session=%08x " fmt, (s)->id, ##__VA_ARGS__)

#endif
