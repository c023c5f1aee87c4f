/* common/auth_fail.c: the failed-login table (see auth_fail.h): two bounded,
 * 4-way set-associative tables found by a keyed SipHash. */
#include <netinet/in.h>

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth_fail.h"

/* SipHash-2-4 with a 128-bit output (OpenSSL 3's EVP_MAC "SIPHASH") over a domain byte,
 * the address key and, for a pair, the user name (the address key has a fixed length, so
 * the concatenation is unambiguous). On an OpenSSL failure the id is all zeroes: records
 * then share one id, which only makes the delay stricter. */
static void
rec_id(const struct auth_fail_table *t, char domain, const uint8_t akey[AUTH_FAIL_ADDR_KEY],
    const char *user, uint8_t id_r[16])
{
	uint8_t msg[1 + AUTH_FAIL_ADDR_KEY + 1024];
	size_t len = 0, ulen = user != NULL ? strnlen(user, 1024) : 0, outlen = 0, size = 16;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};

	msg[len++] = (uint8_t)domain;
	memcpy(msg + len, akey, AUTH_FAIL_ADDR_KEY);
	len += AUTH_FAIL_ADDR_KEY;
	if (ulen > 0)
		memcpy(msg + len, user, ulen);	/* @UNSAFE: ulen <= 1024, the room left */
	len += ulen;
	if (EVP_Q_mac(NULL, "SIPHASH", NULL, NULL, params, t->key, sizeof(t->key), msg, len,
	    id_r, 16, &outlen) == NULL || outlen != 16)
		memset(id_r, 0, 16);
}

int
auth_fail_init(struct auth_fail_table *t, const char **error_r)
{
	uint8_t akey[AUTH_FAIL_ADDR_KEY] = { 0 }, id[16];
	static const uint8_t zero[16];

	memset(t, 0, sizeof(*t));
	if (RAND_bytes(t->key, sizeof(t->key)) != 1) {
		*error_r = "no random bytes for the failed-login table's key";
		return -1;
	}
	rec_id(t, 'a', akey, NULL, id);
	if (memcmp(id, zero, sizeof(id)) == 0) {
		*error_r = "OpenSSL has no SIPHASH (the failed-login table needs it)";
		return -1;
	}
	return 0;
}

void
auth_fail_addr_key(const struct sockaddr_storage *ss, uint8_t key_r[AUTH_FAIL_ADDR_KEY])
{
	memset(key_r, 0, AUTH_FAIL_ADDR_KEY);
	if (ss->ss_family == AF_INET) {
		key_r[0] = 4;
		memcpy(key_r + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key_r[0] = 4;
			memcpy(key_r + 1, a->s6_addr + 12, 4);
		} else {
			/* RFC 4291 §2.5.4: a /64 is one link; a host picks any address in it
			 * (RFC 8981 temporary addresses), so counting per address counts nothing. */
			key_r[0] = 6;
			memcpy(key_r + 1, a->s6_addr, 8);
		}
	}
}

static struct auth_fail_rec *
bucket_of(struct auth_fail_rec (*tab)[AUTH_FAIL_WAYS], const uint8_t id[16])
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return tab[h % AUTH_FAIL_BUCKETS];
}

static bool
rec_live(const struct auth_fail_rec *r, double now)
{
	return r->count > 0 && now - r->last <= AUTH_FAIL_FORGET;
}

static struct auth_fail_rec *
rec_find(struct auth_fail_rec (*tab)[AUTH_FAIL_WAYS], const uint8_t id[16], double now)
{
	struct auth_fail_rec *b = bucket_of(tab, id);

	for (size_t i = 0; i < AUTH_FAIL_WAYS; i++)
		if (rec_live(&b[i], now) && memcmp(b[i].id, id, 16) == 0)
			return &b[i];
	return NULL;
}

/* The record of id, or a new one in its bucket: a free or forgotten one, else the one
 * whose last failure is oldest. */
static struct auth_fail_rec *
rec_get(struct auth_fail_rec (*tab)[AUTH_FAIL_WAYS], const uint8_t id[16], double now)
{
	struct auth_fail_rec *b = bucket_of(tab, id), *r = rec_find(tab, id, now);

	if (r != NULL)
		return r;
	r = &b[0];
	for (size_t i = 0; i < AUTH_FAIL_WAYS; i++) {
		if (!rec_live(&b[i], now)) {
			r = &b[i];
			break;
		}
		if (b[i].last < r->last)
			r = &b[i];
	}
	memset(r, 0, sizeof(*r));
	memcpy(r->id, id, 16);
	return r;
}

unsigned
auth_fail_count(const struct auth_fail_table *t, const struct sockaddr_storage *addr, double now)
{
	uint8_t akey[AUTH_FAIL_ADDR_KEY], id[16];
	const struct auth_fail_rec *r;

	auth_fail_addr_key(addr, akey);
	rec_id(t, 'a', akey, NULL, id);
	/* rec_find() does not write: the cast only spares a const twin of it. */
	r = rec_find(((struct auth_fail_table *)t)->addr, id, now);
	return r != NULL ? r->count : 0;
}

void
auth_fail_record(struct auth_fail_table *t, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	uint8_t akey[AUTH_FAIL_ADDR_KEY], id[16];
	struct auth_fail_rec *r;

	auth_fail_addr_key(addr, akey);
	rec_id(t, 'a', akey, NULL, id);
	r = rec_get(t->addr, id, now);
	if (r->count < UINT_MAX)
		r->count++;
	r->last = now;
	rec_id(t, 'p', akey, user, id);
	r = rec_get(t->pair, id, now);
	if (r->count < UINT_MAX)
		r->count++;
	r->last = now;
}

void
auth_fail_success(struct auth_fail_table *t, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	uint8_t akey[AUTH_FAIL_ADDR_KEY], id[16];
	struct auth_fail_rec *pair, *a;

	auth_fail_addr_key(addr, akey);
	rec_id(t, 'p', akey, user, id);
	if ((pair = rec_find(t->pair, id, now)) == NULL)
		return;		/* nothing of this user's to take back */
	rec_id(t, 'a', akey, NULL, id);
	if ((a = rec_find(t->addr, id, now)) != NULL) {
		a->count -= pair->count < a->count ? pair->count : a->count;
		if (a->count == 0)
			memset(a, 0, sizeof(*a));
	}
	memset(pair, 0, sizeof(*pair));
}
