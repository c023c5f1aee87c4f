/* gateway/login_guard.h: the memory of failed logins, the defence in front of the
 * upstream's own (DESIGN.md "Limits and defence"):
 *  - the growing delay before a failed login is answered, per client address (its /64)
 *    and per (address, user) (common/auth_fail.h), all workers' failures together (its
 *    table lives in the shared region, gateway/shared.h): guesses spread over the workers
 *    are as slow as guesses to one;
 *  - this worker's user+secret pairs the upstream refused moments ago, as salted hashes, never the
 *    secret: Thunderbird retries one wrong password with AUTH PLAIN, AUTH LOGIN and
 *    USER/PASS, and the upstream should count one failure, not three. */
#ifndef POPGATE_LOGIN_GUARD_H
#define POPGATE_LOGIN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared.h"

#define GW_REFUSED_SLOTS 64
#define GW_CRED_HASH_LEN 32

struct gw_login_guard {
	struct gw_shared *shared;		/* the failures: all workers' */
	unsigned delay_ms, delay_max_ms;	/* [limits] auth_fail_delay_ms, _max_ms */
	struct {
		uint8_t hash[GW_CRED_HASH_LEN];
		double when;
	} refused[GW_REFUSED_SLOTS];
	size_t refused_next;
	uint8_t salt[16];
};

/* 0, or -1 with *error_r (no random bytes). shared is borrowed. */
int gw_login_guard_init(struct gw_login_guard *g, struct gw_shared *shared, unsigned delay_ms,
    unsigned delay_max_ms, const char **error_r);

/* The delay (ms) before a failed login from addr is answered: base, 2 x base, ... up to the
 * cap, by the address's failures, whichever users they were for. */
unsigned gw_login_guard_delay_ms(const struct gw_login_guard *g,
    const struct sockaddr_storage *addr, double now);
/* A failed login of user (canonical form) from addr. */
void gw_login_guard_failed(struct gw_login_guard *g, const struct sockaddr_storage *addr,
    const char *user, double now);
/* user logged in from addr: its own failures from there no longer count; those of the other
 * users tried from that address still do. */
void gw_login_guard_ok(struct gw_login_guard *g, const struct sockaddr_storage *addr,
    const char *user, double now);

/* The salted hash of a credential. kind keeps secrets of different sorts apart ("password"
 * for USER/PASS and AUTH PLAIN alike, "bearer" for an OAuth token). */
void gw_cred_hash(const struct gw_login_guard *g, const char *kind, const char *user,
    const uint8_t *secret, size_t len, uint8_t hash_r[GW_CRED_HASH_LEN]);
void gw_cred_refused(struct gw_login_guard *g, const uint8_t hash[GW_CRED_HASH_LEN], double now);
/* Refused in the last few seconds (a client's retry round). */
bool gw_cred_recently_refused(const struct gw_login_guard *g,
    const uint8_t hash[GW_CRED_HASH_LEN], double now);

#endif
