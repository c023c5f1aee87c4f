/* gateway/migrate.h: the live UIDL migration's client: at a user's first login, popgate
 * logs in to the OLD POP3 server with the same credentials and reads what it needs to keep
 * the old UIDLs (DESIGN.md "UIDLs and the cache"): each message's UIDL, its LIST size and
 * the content key of its header (TOP n 0), then QUIT. Never DELE, never a body.
 *
 *   connect [TLS] -> greeting -> [STLS -> TLS] -> CAPA -> USER/PASS (or AUTH PLAIN)
 *   -> UIDL, LIST -> TOP n 0 for each message -> QUIT
 *
 * RFC 1939 (POP3), RFC 2449 (CAPA, PIPELINING, response codes), RFC 2595 (STLS), RFC 5034
 * (AUTH PLAIN, initial response), RFC 3206 ([SYS/TEMP], [AUTH]).
 *
 * Session-free, like imapc.h: one op on the worker's loop, non-blocking, bounded by one
 * timer for each answer of the old server; what the owner does with the result (the cache, the
 * client's reply) is not its business. The replies are read by pop3/pop3_client.h. */
#ifndef POPGATE_MIGRATE_H
#define POPGATE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "../common/buf.h"
#include "../common/content_key.h"
#include "../pop3/pop3_client.h"
#include "config.h"
#include "io.h"

#define GW_MIGRATE_PIPELINE 32		/* TOPs in flight with PIPELINING (pop3c_expect()'s
					   bound) */

/* The old server, built once per worker from [migration]. */
struct gw_migrate_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *host;		/* SNI and name verification; logs */
	unsigned port;			/* logs */
	enum gw_security security;	/* none | STARTTLS (POP3's STLS) | tls */
	SSL_CTX *tls;			/* NULL for none */
	bool verify;
	unsigned timeout;		/* seconds the old server may take for each answer */
};

/* From [migration] (cfg->mig_host set); tls: the worker's migration context. */
void gw_migrate_target_from_config(struct gw_migrate_target *t_r, const struct gw_config *cfg,
    SSL_CTX *tls);

/* One message of the old mailbox (about 310 octets each, the Message-ID inline). */
struct gw_migrate_msg {
	uint32_t msgno;			/* the old server's message number */
	char *uidl;			/* malloc'd, 1..70 octets 0x21..0x7E, unique */
	uint64_t size;			/* the old server's LIST size */
	char ckey[CONTENT_KEY_SIZE];	/* content_key_msgid() of TOP n 0's header; "" when
					   TOP was refused for it (or the server has no TOP) */
	char *msgid;			/* its normalized Message-ID (malloc'd), NULL when
					   none: ~50 octets a message, not 256 */
};

enum gw_migrate_outcome {
	GW_MIGRATE_OK,		/* msgs/n hold every message of the old mailbox */
	GW_MIGRATE_REFUSED,	/* the old server refused the credentials (-ERR to USER, PASS
				   or AUTH, [AUTH] or no code), or they hold CR, LF or NUL or
				   pass 1024 octets (then never sent) */
	GW_MIGRATE_TEMP,	/* unreachable, TLS failure, timeout, protocol error, [SYS/TEMP],
				   [IN-USE] or [LOGIN-DELAY] on login, a reply not parsed */
};

struct gw_migrate_params {
	const char *user;		/* as the client typed it (copied) */
	const uint8_t *password;	/* copied; the copy is wiped once written */
	size_t password_len;
	const char *log_id;		/* "session=0000001a": first on log lines (copied) */
	/* Connect, greet, STLS and CAPA, but send the credentials only once
	 * gw_migrate_release() says the IMAP server accepted them: a guesser's passwords
	 * never reach the old server (nor lock his account there). */
	bool hold_login;
	/* Called once, from the loop. why: NULL for OK, else for the log (server words
	 * escaped); it lives until the callback returns. The struct gw_migrate must stay
	 * valid while the callback runs; the callback may call gw_migrate_free() or
	 * gw_migrate_abort(). On anything but OK, msgs is already freed (n = 0). */
	void (*done)(void *ctx, enum gw_migrate_outcome outcome, const char *why);
	void *ctx;
};

enum gw_migrate_state {
	GW_MIG_IDLE,		/* zeroed, or over */
	GW_MIG_CONNECTING,	/* TCP */
	GW_MIG_TLS,		/* the TLS handshake (implicit, or after STLS) */
	GW_MIG_GREETING,
	GW_MIG_STLS,
	GW_MIG_CAPA,
	GW_MIG_LOGIN,		/* USER, PASS or AUTH PLAIN */
	GW_MIG_UIDL,
	GW_MIG_LIST,
	GW_MIG_TOP,
	GW_MIG_QUIT,
};

struct gw_migrate {
	struct gw_io io;
	struct ev_loop *loop;		/* NULL: never started */
	const struct gw_migrate_target *t;	/* the owner's; outlives the op */
	enum gw_migrate_state state;
	void (*done)(void *ctx, enum gw_migrate_outcome outcome, const char *why);
	void *ctx;
	char *user;			/* copy */
	uint8_t *pass;			/* copy; NULL once written (wiped) */
	size_t pass_len;
	char log_id[48];
	ev_timer timer;			/* the next answer (re-armed by each read); 0 s for an
					   early outcome */
	ev_tstamp started;
	struct pop3c_parser parser;
	struct { uint8_t cmd; uint32_t idx; } pending[GW_MIGRATE_PIPELINE];	/* [ring] the
					   commands whose replies are due, oldest first */
	unsigned pending_head, pending_count;
	unsigned inflight_max;		/* most TOPs in flight at once (tests, logs) */
	unsigned caps;			/* what CAPA listed (migrate.c's MC_*) */
	bool caps_known;		/* CAPA answered +OK: what caps says is what there is */
	bool auth_cont;			/* AUTH PLAIN without initial response: awaiting "+" */
	bool held;			/* hold_login, not released yet */
	bool login_due;			/* ... and the login would be sent now */
	bool early;			/* early_outcome is due from the timer */
	enum gw_migrate_outcome early_outcome;
	/* the old mailbox */
	struct gw_migrate_msg *msgs;	/* [idx] ascending by msgno (once UIDL is read) */
	size_t n, cap;
	size_t listed, top_sent, keyed, top_refused;
	struct buf header;		/* the key fields of the TOP answer being read (bounded) */
	bool hdr_keep, hdr_over;	/* the line above is a key field; the header ended */
	char why[320];
};

/* Starts: connects to t (which must outlive the op); m is zeroed or over (after done, or
 * gw_migrate_abort()), and is overwritten. done runs exactly once, always from
 * the loop, never inside this call. Credentials with CR, LF or NUL are REFUSED (from the
 * loop) without connecting; a connect() that fails at once is TEMP from the loop too.
 * Returns 0, or -1 (out of memory: nothing started, no callback). */
int gw_migrate_start(struct gw_migrate *m, struct ev_loop *loop, const struct gw_migrate_target *t,
    const struct gw_migrate_params *p);
/* The credentials may go (the IMAP server accepted them): the held login is sent from the
 * loop, or as soon as CAPA is answered. done never runs inside this call. Nothing happens
 * after an outcome. */
void gw_migrate_release(struct gw_migrate *m);
/* Stops it without a callback (the session ended): closes the connection, wipes the
 * credentials, frees everything (msgs too). Safe on a zeroed struct, after done, and twice. */
void gw_migrate_abort(struct gw_migrate *m);
/* After done: frees msgs (n = 0). The same as gw_migrate_abort() (safe anytime). */
void gw_migrate_free(struct gw_migrate *m);

#endif
