/* gateway/login_guard.c: failed-login delays and recently refused credentials; see
 * login_guard.h. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "login_guard.h"

#define REFUSED_TTL 30.0	/* seconds: long enough for a client's retry round */

int
gw_login_guard_init(struct gw_login_guard *g, struct gw_shared *shared, unsigned delay_ms,
    unsigned delay_max_ms, const char **error_r)
{
	memset(g, 0, sizeof(*g));
	g->shared = shared;
	g->delay_ms = delay_ms;
	g->delay_max_ms = delay_max_ms;
	if (RAND_bytes(g->salt, sizeof(g->salt)) != 1) {
		*error_r = "no random bytes for the credential cache";
		return -1;
	}
	return 0;
}

unsigned
gw_login_guard_delay_ms(const struct gw_login_guard *g, const struct sockaddr_storage *addr,
    double now)
{
	unsigned count = gw_shared_fail_count(g->shared, addr, now);
	unsigned long long d = g->delay_ms;

	for (unsigned i = 0; i < count && d < g->delay_max_ms; i++)
		d *= 2;
	return d > g->delay_max_ms ? g->delay_max_ms : (unsigned)d;
}

void
gw_login_guard_failed(struct gw_login_guard *g, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	gw_shared_fail_record(g->shared, addr, user, now);
}

void
gw_login_guard_ok(struct gw_login_guard *g, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	gw_shared_fail_success(g->shared, addr, user, now);
}

void
gw_cred_hash(const struct gw_login_guard *g, const char *kind, const char *user,
    const uint8_t *secret, size_t len, uint8_t out[GW_CRED_HASH_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int mdlen = GW_CRED_HASH_LEN;

	memset(out, 0, GW_CRED_HASH_LEN);
	if (md == NULL)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, g->salt, sizeof(g->salt)) == 1 &&
	    EVP_DigestUpdate(md, kind, strlen(kind) + 1) == 1 &&
	    EVP_DigestUpdate(md, user, strlen(user) + 1) == 1 &&
	    EVP_DigestUpdate(md, secret, len) == 1)
		EVP_DigestFinal_ex(md, out, &mdlen);
	EVP_MD_CTX_free(md);
}

void
gw_cred_refused(struct gw_login_guard *g, const uint8_t hash[GW_CRED_HASH_LEN], double now)
{
	size_t i = g->refused_next++ % GW_REFUSED_SLOTS;

	memcpy(g->refused[i].hash, hash, GW_CRED_HASH_LEN);
	g->refused[i].when = now;
}

bool
gw_cred_recently_refused(const struct gw_login_guard *g, const uint8_t hash[GW_CRED_HASH_LEN],
    double now)
{
	for (size_t i = 0; i < GW_REFUSED_SLOTS; i++)
		if (g->refused[i].when > 0 && now - g->refused[i].when < REFUSED_TTL &&
		    memcmp(g->refused[i].hash, hash, GW_CRED_HASH_LEN) == 0)
			return true;
	return false;
}
