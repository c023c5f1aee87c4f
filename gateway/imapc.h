/* gateway/imapc.h: one IMAP client connection (RFC 3501/9051 client side), session-free.
 *
 * It knows how to reach a server and talk to it, and nothing of what it is used for:
 *
 *   connect (non-blocking) [TLS] -> greeting -> [CAPABILITY] -> [STARTTLS -> TLS ->
 *   CAPABILITY] -> ready
 *
 * then tagged commands with their completions, the capabilities the server names
 * (greeting, codes, "* CAPABILITY"), BYE, UIDVALIDITY / EXISTS / READ-ONLY of the selected
 * mailbox, timeouts (connect, handshake, response), and pause / resume for backpressure.
 * Certificates are verified unless the target says not to; a STARTTLS the server does not
 * offer, bytes after STARTTLS's OK, a PREAUTH greeting or an unknown tag end the connection.
 *
 * Who uses it: an owner (a POP3 session, the probe) gets `ready` and `lost` through a
 * handler struct. The commands belong to operations (struct gw_imapc_op: a login, a RETR, an
 * UPDATE), each with its own handler for the untagged data, literals and continuation
 * requests it reads, and for the connection's loss. An op is active from gw_imapc_op_begin()
 * to gw_imapc_op_end(); ending it drops the completions of its commands still in flight.
 * Untagged data goes to every active op (a session runs one at a time), after the
 * connection has read what it tracks itself. */
#ifndef POPGATE_IMAPC_H
#define POPGATE_IMAPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "../common/buf.h"
#include "../imap/imap_parse.h"
#include "../imap/imap_queue.h"
#include "../imap/imap_resp.h"
#include "config.h"
#include "io.h"

/* Capabilities popgate uses (gw_imapc_parse_caps()). */
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
#define GW_CAP_CONDSTORE	0x400	/* RFC 7162 (QRESYNC implies it, §3.2.3) */

/* Where the server is and how to reach it (from [upstream] and [limits]). */
struct gw_imapc_target {
	const struct sockaddr_storage *addr;
	socklen_t addrlen;
	const char *host;		/* for logs, SNI and the certificate check */
	unsigned port;
	enum gw_security security;
	SSL_CTX *tls;			/* NULL for security = none */
	bool verify;
	double connect_timeout, handshake_timeout, response_timeout;
	size_t line_max;		/* imap_line_max */
};

/* The target of [upstream]. */
void gw_imapc_target_from_config(struct gw_imapc_target *t_r, const struct gw_config *cfg,
    SSL_CTX *tls);

struct gw_imapc;
struct gw_imapc_op;

struct gw_imapc_op_handler {
	/* An untagged data or status response (r's slices live until it returns). A FETCH
	 * line comes whole, its literals elided, after their bytes went to `literal_data`. */
	void (*untagged)(struct gw_imapc_op *op, const struct imap_resp *r);
	/* A literal begins: true to take its bytes (literal_data, then literal_end). */
	bool (*literal)(struct gw_imapc_op *op, const struct imap_event *ev);
	void (*literal_data)(struct gw_imapc_op *op, const uint8_t *p, size_t n);
	/* "+": true when the op answered it (gw_imapc_write()). */
	bool (*continuation)(struct gw_imapc_op *op, const struct imap_resp *r);
	/* The connection is gone: the op ends (it is already inactive). why: for the log. */
	void (*lost)(struct gw_imapc_op *op, const char *why);
};

struct gw_imapc_op {
	const struct gw_imapc_op_handler *h;
	struct gw_imapc_op *next;	/* the connection's active ops */
	bool active;
};

/* Called with the tagged response of a command; the op is still active. */
typedef void gw_imapc_done_fn(struct gw_imapc_op *op, const struct imap_resp *r);

struct gw_imapc_handler {
	/* Greeting OK, TLS / STARTTLS done, capabilities known: commands may go. */
	void (*ready)(void *ctx);
	/* The connection failed or was closed by the server (after each active op's `lost`).
	 * why is also in gw_imapc_last_error(). */
	void (*lost)(void *ctx, const char *why);
	/* The server's bytes were handled: what they produced may be flushed. May be NULL. */
	void (*settled)(void *ctx);
};

enum gw_imapc_state {
	GW_IMAPC_CLOSED,
	GW_IMAPC_CONNECTING,	/* TCP (and for security = tls, the TLS handshake) */
	GW_IMAPC_GREETING,
	GW_IMAPC_PRELOGIN,	/* CAPABILITY / STARTTLS before ready */
	GW_IMAPC_READY,
};

struct gw_imapc {
	struct gw_io io;
	struct ev_loop *loop;		/* NULL for a scripted connection (tests) */
	enum gw_imapc_state state;
	const struct gw_imapc_target *t;	/* the owner's; outlives the connection */
	const struct gw_imapc_handler *h;
	void *ctx;
	const char *log_id;		/* "session=0000001a", "probe": first on its log lines
					   (the owner's string, as long as the connection) */
	struct imap_parser parser;
	struct imap_queue queue;
	struct gw_imapc_op *ops;	/* active ops */
	struct gw_imapc_op prelogin;	/* the connection's own commands (STARTTLS, CAPABILITY) */
	ev_timer timer;
	unsigned caps;			/* GW_CAP_* */
	bool caps_known;		/* asked, or named: what caps says is what there is */
	bool caps_seen;			/* the server named its capabilities (not only OK'd) */
	bool authenticated;		/* gw_imapc_authenticated() was called */
	bool caps_after_login;		/* caps are what the server offers once logged in */
	bool bye;
	bool in_literal;
	struct gw_imapc_op *literal_op;	/* who takes the literal streaming now */
	/* the selected mailbox (SELECT's data) */
	bool have_uidvalidity, uidvalidity_changed, read_only, have_exists;
	uint32_t uidvalidity, exists;
	/* RFC 3501 §7.1 [UIDNEXT]; RFC 7162 §3.1.2.1 [HIGHESTMODSEQ], §3.1.2.2 [NOMODSEQ] */
	bool have_uidnext, have_modseq, nomodseq;
	uint32_t uidnext;
	uint64_t modseq;
	size_t expunges;		/* "* n EXPUNGE" lines seen, ever (a change counter) */
	char last_error[256];		/* the last upstream problem, for the log */
};

/* Starts connecting to *t (which, like log_id, must outlive the connection). The conn's
 * output buffer is `secret` (credentials are written to it).
 * Returns 0, or -1 with gw_imapc_last_error() set (nothing open). */
int gw_imapc_open(struct gw_imapc *c, struct ev_loop *loop, const struct gw_imapc_target *t,
    const char *log_id, const struct gw_imapc_handler *h, void *ctx);
/* Sends LOGOUT when that can be done cleanly (best effort, no waiting), then closes. No
 * handler is called. Safe on a closed or zeroed connection. */
void gw_imapc_logout(struct gw_imapc *c);
/* Closes at once, no LOGOUT, no handler called. */
void gw_imapc_close(struct gw_imapc *c);
/* Fails the connection: logs why (while the oldest command's `what`), closes it, tells
 * every active op and then the owner. */
void gw_imapc_fail(struct gw_imapc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool gw_imapc_is_ready(const struct gw_imapc *c);
const char *gw_imapc_last_error(const struct gw_imapc *c);

void gw_imapc_op_begin(struct gw_imapc *c, struct gw_imapc_op *op,
    const struct gw_imapc_op_handler *h);
/* The op is over: no more data or completions for it. Safe when not active. */
void gw_imapc_op_end(struct gw_imapc *c, struct gw_imapc_op *op);

/* Starts a tagged command of op: queues it and writes "TAG " to the output, which is
 * returned for the caller to append the rest, CRLF included; then gw_imapc_send(). what:
 * what the command does, for log context ("fetching a message"). NULL when the connection
 * is not ready or the queue is full. */
struct buf *gw_imapc_cmd(struct gw_imapc *c, struct gw_imapc_op *op, const char *what,
    gw_imapc_done_fn *done);
/* The tag of the command gw_imapc_cmd() queued last. */
const char *gw_imapc_last_tag(const struct gw_imapc *c);
/* Commands are written: the response timeout starts. */
void gw_imapc_send(struct gw_imapc *c);
/* Raw bytes for the server (a continuation's answer). */
void gw_imapc_write(struct gw_imapc *c, const void *p, size_t n);

/* The server accepted a login: capabilities it names from now on are post-login ones.
 * r: the tagged OK (its CAPABILITY code counts). */
void gw_imapc_authenticated(struct gw_imapc *c, const struct imap_resp *r);

/* Backpressure: stop handing out the server's data (what is read stays buffered), and go
 * on. Resuming handles what was buffered before reading more. */
void gw_imapc_pause(struct gw_imapc *c);
void gw_imapc_resume(struct gw_imapc *c);
bool gw_imapc_paused(const struct gw_imapc *c);

/* Sends NOOP when nothing is in flight and the server has been silent for `idle` seconds
 * (IMAP servers log out idle clients after 30 minutes, RFC 3501 §5.4). */
void gw_imapc_keepalive(struct gw_imapc *c, double idle);

/* "IMAP4rev1 SASL-IR AUTH=PLAIN ..." -> the GW_CAP_* bits popgate uses. */
unsigned gw_imapc_parse_caps(const struct slice *caps);

/* For tests of the ops, without a socket or a loop: a connection that is ready with these
 * capabilities; what it would send collects in c->io.c.out, and gw_imapc_feed() hands it
 * the server's bytes as if they had been read. */
void gw_imapc_open_scripted(struct gw_imapc *c, const struct gw_imapc_target *t, unsigned caps,
    const char *log_id, const struct gw_imapc_handler *h, void *ctx);
void gw_imapc_feed(struct gw_imapc *c, const void *p, size_t n);

#endif
