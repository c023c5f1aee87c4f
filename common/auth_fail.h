/* common/auth_fail.h: failed logins per client address, for the growing delay before a
 * failed login is answered (DESIGN.md "Limits and defence").
 *
 * Counted per address (IPv4 whole, IPv6 per /64: one customer's LAN or one attacker's
 * prefix) and per (address, user): the delay grows with the address's count, and a
 * successful login takes back only that user's own failures from it. An attacker who logs
 * in to his own account between guesses therefore resets nothing for the users he guesses,
 * and a customer who mistyped and then got it right leaves no delay behind for his
 * neighbours. Records are found by a SipHash keyed with a per-process random key, so
 * nobody can pick addresses or user names that land in one bucket and push a record out;
 * they hold that hash, never a user name. The table is bounded (AUTH_FAIL_BUCKETS x
 * AUTH_FAIL_WAYS records of each kind; a full bucket forgets its oldest record) and forgets
 * a record AUTH_FAIL_FORGET seconds after its last failure.
 *
 * Pure: no I/O and no clock (the caller passes `now`, in seconds). */
#ifndef POPGATE_AUTH_FAIL_H
#define POPGATE_AUTH_FAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_FAIL_BUCKETS 256
#define AUTH_FAIL_WAYS 4
#define AUTH_FAIL_FORGET 600.0		/* seconds without a new failure */
#define AUTH_FAIL_ADDR_KEY 17		/* family byte + up to 16 address bytes */

struct auth_fail_rec {
	uint8_t id[16];			/* SipHash-2-4-128 of the address key (+ user) */
	unsigned count;			/* 0: a free record */
	double last;			/* time of the last failure */
};

struct auth_fail_table {
	uint8_t key[16];		/* the SipHash key: random, per process */
	struct auth_fail_rec addr[AUTH_FAIL_BUCKETS][AUTH_FAIL_WAYS];	/* per address */
	struct auth_fail_rec pair[AUTH_FAIL_BUCKETS][AUTH_FAIL_WAYS];	/* per (address, user) */
};

/* Empties the table and draws its key (RAND_bytes). Returns 0, or -1 with *error_r. */
int auth_fail_init(struct auth_fail_table *t, const char **error_r);

/* The form an address is counted under: AF_INET -> 4 || the 4 bytes; AF_INET6 -> 6 || its
 * first 8 bytes (the /64); an IPv4-mapped IPv6 address (::ffff:a.b.c.d, a dual-stack
 * listener) counts as the IPv4 address it is. Other families: 0. Zero-padded to
 * AUTH_FAIL_ADDR_KEY bytes. */
void auth_fail_addr_key(const struct sockaddr_storage *ss, uint8_t key_r[AUTH_FAIL_ADDR_KEY]);

/* Failures recorded from this address (its /64) and not yet forgotten or taken back. */
unsigned auth_fail_count(const struct auth_fail_table *t, const struct sockaddr_storage *addr,
    double now);
/* One more failed login of `user` (its canonical form) from `addr`. */
void auth_fail_record(struct auth_fail_table *t, const struct sockaddr_storage *addr,
    const char *user, double now);
/* `user` logged in from `addr`: its own failures from there are taken back, no others. */
void auth_fail_success(struct auth_fail_table *t, const struct sockaddr_storage *addr,
    const char *user, double now);

#endif
