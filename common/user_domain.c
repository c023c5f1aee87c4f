/* common/user_domain.c: a user name's domain and its cluster's login name; see
 * user_domain.h. */
#include <string.h>
#include <strings.h>

#include "user_domain.h"

const char *
user_domain(const char *user)
{
	const char *at = strrchr(user, '@');

	return at == NULL || at[1] == '\0' ? NULL : at + 1;
}

int
user_domain_find(const char *const *domains, size_t n, const char *user)
{
	const char *d = user_domain(user);

	if (d == NULL)
		return -1;
	/* strcasecmp in the C locale the gateway runs in: ASCII only, like DNS (RFC 4343). */
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(domains[i], d) == 0)
			return (int)i;
	return -1;
}

bool
user_upstream_name(const char *user, bool strip, char *out, size_t size)
{
	size_t len = strlen(user);

	if (strip && user_domain(user) != NULL) {
		size_t local = (size_t)(strrchr(user, '@') - user);

		/* "@b.test" would become an empty name: sent as typed, the server refuses it. */
		if (local > 0)
			len = local;
	}
	if (size == 0)
		return false;
	if (len >= size) {
		out[0] = '\0';
		return false;
	}
	memcpy(out, user, len);
	out[len] = '\0';
	return true;
}

const char *
user_domain_check(const char *domain)
{
	size_t len = strlen(domain), label = 0;

	if (len == 0)
		return "empty domain";
	if (len > USER_DOMAIN_MAX)
		return "domain longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];

		if (c == '.') {
			if (label == 0)
				return "empty label in domain";
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return "domain may hold only letters, digits, '-' and '.'";
		if (++label > 63)
			return "domain label longer than 63 characters";
	}
	return label == 0 ? "empty label in domain" : NULL;
}
