/* gateway/login.h: the upstream login, as an operation on an IMAP client connection:
 * credentials in, a selected mailbox and its fixed message list (the snapshot) out. It
 * knows IMAP, nothing of POP3 replies, delays or sessions (the owner decides
 * what an outcome means for its client). */
#ifndef POPGATE_LOGIN_H
#define POPGATE_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/cache.h"
#include "../pop3/pop3_sasl.h"
#include "imapc.h"
#include "snapshot.h"

/* What a login sends: the user name and one secret, which lives only until it is written
 * upstream (gw_cred_wipe()). */
struct gw_cred {
	char user[POP3_SASL_FIELD_MAX];
	enum pop3_sasl_mech mech;	/* PLAIN: pass; XOAUTH2/OAUTHBEARER: sasl_resp */
	uint8_t *pass;			/* the password (malloc): an idle session holds none */
	size_t pass_len;
	uint8_t *sasl_resp;		/* the client's base64 bearer response, as sent (malloc) */
	size_t sasl_resp_len;
};

/* Wipes the secret and frees it; the user name stays. */
void gw_cred_wipe(struct gw_cred *cred);
/* Takes a copy of the password (the previous secret is wiped). 0, or -1 on ENOMEM. */
int gw_cred_set_password(struct gw_cred *cred, const uint8_t *p, size_t len);

enum gw_login_outcome {
	GW_LOGIN_OK,		/* logged in, selected, the snapshot is complete */
	GW_LOGIN_REFUSED,	/* the credentials were refused (RFC 5530, imap_refusal.c) */
	GW_LOGIN_IN_USE,	/* the server says the mailbox is locked ([INUSE]) */
	GW_LOGIN_TEMP,		/* the upstream's trouble: try again later */
};

/* How the login's message list was had (DESIGN.md "UIDLs and the cache", CONDSTORE). */
enum gw_listing_how {
	GW_LISTING_FULL,	/* UID FETCH 1:* (UID RFC822.SIZE) */
	GW_LISTING_CACHED,	/* SELECT said the four numbers of the stored listing: no FETCH */
	GW_LISTING_INCREMENTAL,	/* the stored listing + UID FETCH <its UIDNEXT>:*, proven by count */
};

struct gw_login_params {
	struct gw_cred *cred;		/* wiped once written, on every path */
	const char *user;		/* the name a password login sends (strip_domain,
					   gateway/cluster.h); NULL: cred->user. A bearer
					   response goes as cred->sasl_resp holds it. */
	const char *mailbox;		/* [upstream] mailbox */
	const char *id_addr;		/* client address for ID (RFC 2971); NULL: no ID */
	unsigned id_port;
	struct gw_snapshot *snap;	/* filled and sorted; its UIDLs are the owner's business */
	/* The owner will hand over the stored listing (gw_login_prior()), so SELECT may ask
	 * for CONDSTORE when the server offers it, or when condstore_hint says an earlier
	 * login's server did (pre-login capabilities seldom name it). */
	bool listing_cache;
	bool condstore_hint;
	/* May be NULL. The FETCH of a CONDSTORE login waits for the stored listing alone now
	 * (LOGIN and SELECT are answered, gw_login_prior() was not called yet): called once,
	 * so that the owner can bound the wait. It may call gw_login_prior() at once. */
	void (*prior_wanted)(void *ctx);
	/* The login is decided: called once, after which the op is over. why: for the log
	 * (it may hold the server's words), never for the client. */
	void (*done)(void *ctx, enum gw_login_outcome outcome, const char *why);
	void *ctx;
};

struct gw_login {
	struct gw_imapc_op op;
	struct gw_imapc *up;
	struct gw_login_params p;
	bool pipelined;			/* SELECT and the listing went with the credentials */
	struct buf cont;		/* the SASL response for the server's "+" (wiped) */
	const char *sasl_err_ack;	/* bearer: the answer to the server's error challenge */
	/* the pipelined answers, in any order */
	bool login_ok, select_done, select_ok, listing_done, listing_ok, listing_bad;
	char why[200];			/* what SELECT or the listing answered when not OK */
	bool base_taken;		/* a listing line came with EXISTS known: base is fixed */
	uint32_t base;			/* messages when it began (later arrivals are not owed) */
	uint32_t expunged;		/* "* n EXPUNGE" since then */
	/* the listing cache (RFC 7162): SELECT (CONDSTORE) first, then the FETCH it needs */
	bool condstore;			/* SELECT (CONDSTORE) went; the FETCH waits for it */
	bool condstore_refused;		/* it was answered BAD: a plain SELECT went instead */
	bool prior_known;		/* gw_login_prior() was called */
	bool prior_wanted;		/* p.prior_wanted() was called */
	const struct cache_listing *prior;	/* the owner's; NULL: none */
	bool fetch_sent;
	uint32_t from_uid;		/* incremental: the stored listing's UIDNEXT */
	size_t sel_expunges;		/* the connection's EXPUNGE count when SELECT was done */
	enum gw_listing_how how;
	/* The outcome's listing, as SELECT saw the mailbox; `storable` when the snapshot is
	 * exactly that mailbox (cache_listing's rule) and the server has modseqs. */
	bool storable;
	/* The snapshot is exactly the mailbox as SELECT saw it (meta), cached or fetched: what
	 * UPDATE's deletions may be applied to for the next poll (session_listing.c). */
	bool exact;
	struct cache_listing meta;	/* four numbers only (no arrays) */
};

/* Begins the login on a connection that is opening (or open): nothing goes upstream until
 * gw_login_ready(). The connection's loss before the outcome is GW_LOGIN_TEMP. */
void gw_login_start(struct gw_login *lg, struct gw_imapc *up, const struct gw_login_params *p);
/* The connection is ready (its greeting, TLS and capabilities are done): the credentials
 * go, then SELECT and the listing (pipelined unless a continuation is needed). */
void gw_login_ready(struct gw_login *lg);
/* The stored listing, or NULL (none, or the cache failed): the FETCH of a CONDSTORE login
 * waits for it. prior must live until the outcome. Ignored when the op is over. */
void gw_login_prior(struct gw_login *lg, const struct cache_listing *prior);
/* Ends the op without an outcome (the owner is closing). Wipes what it holds. */
void gw_login_abort(struct gw_login *lg);

#endif
