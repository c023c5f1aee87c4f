/* common/cidr.h: IPv4 and IPv6 networks written as CIDR ("192.0.2.0/24", "2001:db8::/32",
 * or a lone address meaning /32 or /128), and whether an address falls in one. Used for
 * [server] trusted_proxies. Pure: no socket. */
#ifndef POPGATE_CIDR_H
#define POPGATE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cidr {
	uint8_t family;		/* 4 or 6 */
	uint8_t bits;		/* prefix length: 0..32 or 0..128 */
	uint8_t addr[16];	/* network order, bits past the prefix zero */
};

/* Parses text[0..len). 0, or -1 with *error_r set (static) when it is not a CIDR: a bad
 * address, a prefix out of range, or host bits set past the prefix (a typo for another
 * network more often than not: refused). */
int cidr_parse(const char *text, size_t len, struct cidr *c_r, const char **error_r);

/* Is the address (family 4: 4 bytes, 6: 16 bytes, network order) inside c? An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is compared as the IPv4 address it is. */
bool cidr_match(const struct cidr *c, uint8_t family, const uint8_t *addr);

#endif
