/* gateway/worker.h: one event loop and everything it owns: listeners, sessions, TLS
 * contexts, the UIDL cache handle, per-address counters. */
#ifndef POPGATE_WORKER_H
#define POPGATE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"

struct gw_session;
struct cache;

struct gw_listener {
	struct gw_worker *w;
	int fd;
	bool tls;
	ev_io io;
	const struct gw_listen *conf;
};

/* Failed logins of one client address, for the growing delay (RFC 2449 LOGIN-DELAY's
 * spirit, and the upstream's own brute-force guard never seeing us as the attacker). */
struct gw_auth_fail {
	struct sockaddr_storage addr;
	unsigned count;
	ev_tstamp last;
};

#define GW_AUTH_FAIL_SLOTS 256
#define GW_BAD_CRED_SLOTS 64

/* A user+password pair the upstream just refused, as a salted hash (never the password):
 * Thunderbird retries one wrong password with AUTH PLAIN, AUTH LOGIN and USER/PASS, and
 * the upstream should count one failure, not three (DESIGN.md). */
struct gw_bad_cred {
	uint8_t hash[32];
	ev_tstamp when;
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
	struct gw_auth_fail auth_fail[GW_AUTH_FAIL_SLOTS];
	struct gw_bad_cred bad_cred[GW_BAD_CRED_SLOTS];
	size_t bad_cred_next;
	uint8_t bad_cred_salt[16];
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

/* Growing delay before answering a failed login from this address (ms), and recording. */
unsigned gw_auth_fail_delay_ms(struct gw_worker *w, const struct sockaddr_storage *addr);
void gw_auth_fail_record(struct gw_worker *w, const struct sockaddr_storage *addr);
void gw_auth_fail_clear(struct gw_worker *w, const struct sockaddr_storage *addr);

/* Recently refused credentials, by salted hash: remember after an upstream NO, ask
 * before a login. */
void gw_bad_cred_hash(struct gw_worker *w, const char *user, const char *pass, size_t plen,
    uint8_t hash_r[32]);
void gw_bad_cred_remember(struct gw_worker *w, const uint8_t hash[32]);
bool gw_bad_cred_known(struct gw_worker *w, const uint8_t hash[32]);

#endif
