/* common/cidr.c: CIDR networks for [server] trusted_proxies (see cidr.h). */
#include <arpa/inet.h>	/* inet_pton() only */

#include <string.h>

#include "cidr.h"

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int
cidr_parse(const char *text, size_t len, struct cidr *c_r, const char **error_r)
{
	char addr[64];
	const char *slash = memchr(text, '/', len);
	size_t alen = slash ? (size_t)(slash - text) : len, nbytes;
	unsigned bits = 0, max;

	memset(c_r, 0, sizeof(*c_r));
	if (alen == 0 || alen >= sizeof(addr)) {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c_r->addr) == 1)
		c_r->family = 4;
	else if (inet_pton(AF_INET6, addr, c_r->addr) == 1)
		c_r->family = 6;
	else {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	max = c_r->family == 4 ? 32 : 128;
	if (slash == NULL) {
		bits = max;
	} else {
		size_t n = len - alen - 1;

		if (n == 0 || n > 3) {
			*error_r = "prefix length is not a number";
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (slash[1 + i] < '0' || slash[1 + i] > '9') {
				*error_r = "prefix length is not a number";
				return -1;
			}
			bits = bits * 10 + (unsigned)(slash[1 + i] - '0');
		}
		if (bits > max) {
			*error_r = c_r->family == 4 ? "prefix length over 32" : "prefix length over 128";
			return -1;
		}
	}
	c_r->bits = (uint8_t)bits;
	nbytes = max / 8;
	for (size_t i = 0; i < nbytes; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
		uint8_t mask = (uint8_t)(0xff00 >> keep);

		if (c_r->addr[i] & (uint8_t)~mask) {
			*error_r = "address has bits set past the prefix length";
			return -1;
		}
	}
	return 0;
}

bool
cidr_match(const struct cidr *c, uint8_t family, const uint8_t *addr)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (family == 6 && c->family == 4 && memcmp(addr, v4_mapped, 12) == 0) {
		family = 4;
		addr += 12;
	}
	if (family != c->family)
		return false;
	if (memcmp(addr, c->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((addr[full] ^ c->addr[full]) & (uint8_t)(0xff00 >> rest)) == 0;
}
