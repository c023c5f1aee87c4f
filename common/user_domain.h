/* common/user_domain.h: which [upstream:DOMAIN] cluster a user name belongs to, and the
 * name that cluster is sent (strip_domain). Pure: strings in, strings out.
 *
 * The domain is what follows the LAST '@' ("a@b@c.test" is in c.test, as Dovecot splits
 * %u into %n and %d), compared ASCII case-insensitively (DNS names are). A name without
 * '@', or ending in '@', has no domain. */
#ifndef POPGATE_USER_DOMAIN_H
#define POPGATE_USER_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#define USER_DOMAIN_MAX 253	/* RFC 1035 §2.3.4, without the root's dot */

/* The domain part of user (a pointer into it), or NULL when it has none. */
const char *user_domain(const char *user);

/* The index in domains[0..n) of user's domain, or -1 (no domain, or none listed). */
int user_domain_find(const char *const *domains, size_t n, const char *user);

/* The name to log in with: user without "@domain" when strip is true and user has a
 * domain and a non-empty local part; else user as it is. Writes at most size - 1 bytes
 * and a NUL; returns false (out holds "") when it does not fit. */
bool user_upstream_name(const char *user, bool strip, char *out, size_t size);

/* A domain as a section name may give it: 1..USER_DOMAIN_MAX bytes of letters, digits,
 * '-' and '.', no empty label (no leading, trailing or double dot). NULL when valid, else
 * why not (static). */
const char *user_domain_check(const char *domain);

#endif
