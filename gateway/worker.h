/* gateway/worker.h: one event loop and everything it owns: listeners, sessions, TLS
 * contexts, the UIDL cache handle, per-address counters. */
#ifndef POPGATE_WORKER_H
#define POPGATE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "../common/auth_fail.h"
#include "../imap/imap_parse.h"
#include "config.h"
#include "io.h"

struct gw_session;
struct cache;

struct gw_listener {
	struct gw_worker *w;
	int fd;
	bool tls;
	ev_io io;
	const struct gw_listen *conf;
};

#define GW_BAD_CRED_SLOTS 64

/* A user+password pair the upstream just refused, as a salted hash (never the password):
 * Thunderbird retries one wrong password with AUTH PLAIN, AUTH LOGIN and USER/PASS, and
 * the upstream should count one failure, not three (DESIGN.md). */
struct gw_bad_cred {
	uint8_t hash[32];
	ev_tstamp when;
};

/* The worker's own short upstream connection that learns the upstream's capabilities
 * before any client logs in (probe.c). */
enum gw_probe_state {
	GW_PROBE_IDLE,		/* not connected */
	GW_PROBE_CONNECTING,
	GW_PROBE_GREETING,	/* (TLS handshake, then) waiting for "* OK" */
	GW_PROBE_STARTTLS,	/* STARTTLS sent */
	GW_PROBE_TLS,		/* TLS handshake after STARTTLS */
	GW_PROBE_CAPABILITY,	/* CAPABILITY sent */
};

struct gw_probe {
	struct gw_io io;
	struct imap_parser parser;
	ev_timer timer;
	enum gw_probe_state state;
	unsigned caps;			/* GW_CAP_* from this probe's "* CAPABILITY" */
	bool got_caps;
	ev_tstamp retry_at;		/* after a failure: no new probe before this */
	double backoff;			/* seconds to wait after the next failure */
};

struct gw_worker {
	struct ev_loop *loop;
	const struct gw_config *cfg;
	struct gw_listener listeners[GW_LISTEN_MAX];
	size_t nlisteners;
	ev_timer accept_backoff;	/* EMFILE: listeners paused, resumed by this */
	bool accept_paused;
	SSL_CTX *server_tls;		/* POP3 side; NULL without [tls] */
	SSL_CTX *upstream_tls;		/* IMAP side; NULL for security = none */
	struct cache *cache;
	struct gw_session *sessions;	/* all live sessions, linked */
	struct gw_session *doomed;	/* closed, freed at the next ev_prepare */
	size_t nsessions;
	uint32_t next_session_id;
	ev_prepare reaper;
	ev_signal sigterm, sigint;
	bool stopping;
	struct auth_fail_table auth_fail;	/* the failed-login delay (common/auth_fail.h) */
	struct gw_bad_cred bad_cred[GW_BAD_CRED_SLOTS];
	size_t bad_cred_next;
	uint8_t bad_cred_salt[16];
	/* The upstream's pre-login capabilities (GW_CAP_* in session.h), after TLS: from the
	 * probe at start, refreshed by every session's login. CAPA lists XOAUTH2/OAUTHBEARER
	 * only when these say the upstream takes them. */
	unsigned up_caps;
	bool up_caps_known;
	struct gw_probe probe;
};

int gw_worker_init(struct gw_worker *w, const struct gw_config *cfg, const char **error_r);
void gw_worker_run(struct gw_worker *w);
void gw_worker_free(struct gw_worker *w);

/* Listeners: bind all (called before privileges are dropped) and accept. */
int gw_listeners_open(struct gw_worker *w, const char **error_r);
void gw_listeners_close(struct gw_worker *w);
void gw_listeners_pause(struct gw_worker *w, bool pause);

/* Same IP address (the port is not compared). */
bool gw_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* The growing delay before a failed login from this address is answered (ms): it grows
 * with the address's failures (IPv6: its /64), whichever users they were for. */
unsigned gw_auth_fail_delay_ms(struct gw_worker *w, const struct sockaddr_storage *addr);
/* A failed login of user_key (gw_user_key()) from addr. */
void gw_auth_fail_record(struct gw_worker *w, const struct sockaddr_storage *addr,
    const char *user_key);
/* user_key logged in from addr: its own failures from there no longer count; those of the
 * other users tried from that address still do. */
void gw_auth_fail_clear(struct gw_worker *w, const struct sockaddr_storage *addr,
    const char *user_key);

/* The one form of a user name that the [IN-USE] check, the refused-credential memory, the
 * failure delay and the UIDL cache use: ASCII-lowercased with [cache] username = lower
 * (the default, like Dovecot's auth_username_format %Lu), as typed with keep. Writes at
 * most size - 1 bytes and a NUL. */
void gw_user_key(const struct gw_config *cfg, const char *user, char *key_r, size_t size);

/* Recently refused credentials, by salted hash: remember after an upstream NO, ask
 * before a login. kind keeps secrets of different sorts apart ("password" for USER/PASS
 * and AUTH PLAIN alike, "bearer" for an OAuth token, whichever mechanism carried it). */
void gw_bad_cred_hash(struct gw_worker *w, const char *kind, const char *user,
    const uint8_t *secret, size_t len, uint8_t hash_r[32]);
void gw_bad_cred_remember(struct gw_worker *w, const uint8_t hash[32]);
bool gw_bad_cred_known(struct gw_worker *w, const uint8_t hash[32]);

/* probe.c. The upstream's pre-login capabilities: true with *caps_r when known; else
 * false, and a probe starts unless one runs or the back-off after a failure is not over. */
bool gw_upcaps_get(struct gw_worker *w, unsigned *caps_r);
/* A probe or a session's login saw these pre-login capabilities (after TLS, if any). */
void gw_upcaps_learned(struct gw_worker *w, unsigned caps, const char *source);
/* Starts a probe now (no-op while one runs); gw_probe_stop() closes it. */
void gw_probe_start(struct gw_worker *w);
void gw_probe_stop(struct gw_worker *w);

#endif
