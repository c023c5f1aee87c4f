/* gateway/worker.c: the event loop of a worker and what it owns: sessions, the reaper
 * that frees closed sessions, signals, and the per-address failed-login memory. */
#include <netinet/in.h>

#include <signal.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../common/cache.h"
#include "../common/log.h"
#include "session.h"
#include "tls.h"
#include "worker.h"

static void
reaper_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct gw_worker *w = p->data;

	(void)loop;
	(void)revents;
	while (w->doomed != NULL) {
		struct gw_session *s = w->doomed;

		w->doomed = s->next_doomed;
		gw_session_free(&s);
	}
	if (w->stopping && w->sessions == NULL)
		ev_break(w->loop, EVBREAK_ALL);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct gw_worker *w = sig->data;

	(void)loop;
	(void)revents;
	log_info("signal %d: stopping; open sessions end without changing their mailboxes",
	    sig->signum);
	w->stopping = true;
	gw_listeners_close(w);
	gw_probe_stop(w);
	/* A dropped session changes nothing upstream; UPDATEs already running finish, and
	 * ended sessions still writing their last replies (lingering, bounded) too. */
	for (struct gw_session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->next;
		if (s->state != GW_S_UPDATE)
			gw_session_close(s, "shutdown");
	}
}

int
gw_worker_init(struct gw_worker *w, const struct gw_config *cfg, const char **error_r)
{
	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	for (size_t i = 0; i < GW_LISTEN_MAX; i++)
		w->listeners[i].fd = -1;
	if (RAND_bytes(w->bad_cred_salt, sizeof(w->bad_cred_salt)) != 1) {
		*error_r = "no random bytes for the credential cache";
		return -1;
	}
	if (auth_fail_init(&w->auth_fail, error_r) < 0)
		return -1;
	if ((w->loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		*error_r = "cannot create the event loop";
		return -1;
	}
	if ((w->server_tls = gw_tls_server_ctx(cfg, error_r)) == NULL && *error_r != NULL)
		return -1;
	if ((w->upstream_tls = gw_tls_client_ctx(cfg, error_r)) == NULL && *error_r != NULL)
		return -1;
	if (gw_listeners_open(w, error_r) < 0)
		return -1;
	ev_prepare_init(&w->reaper, reaper_cb);
	w->reaper.data = w;
	ev_prepare_start(w->loop, &w->reaper);
	ev_signal_init(&w->sigterm, stop_cb, SIGTERM);
	ev_signal_init(&w->sigint, stop_cb, SIGINT);
	w->sigterm.data = w->sigint.data = w;
	ev_signal_start(w->loop, &w->sigterm);
	ev_signal_start(w->loop, &w->sigint);
	return 0;
}

/* Opens the cache; called after privileges are dropped so the file is the service's. */
static void
worker_open_cache(struct gw_worker *w)
{
	const char *error = NULL;

	if ((w->cache = cache_open(w->cfg->cache_path, &error)) == NULL)
		log_warn("UIDL cache unavailable, serving derived UIDLs: %s", error);
}

void
gw_worker_run(struct gw_worker *w)
{
	worker_open_cache(w);
	gw_probe_start(w);	/* CAPA's SASL line needs the upstream's mechanisms */
	gw_listeners_pause(w, false);
	ev_run(w->loop, 0);
}

void
gw_worker_free(struct gw_worker *w)
{
	gw_listeners_close(w);
	gw_probe_stop(w);
	for (struct gw_session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->next;
		gw_session_close_now(s, "shutdown");	/* a lingering one too */
	}
	while (w->doomed != NULL) {
		struct gw_session *s = w->doomed;

		w->doomed = s->next_doomed;
		gw_session_free(&s);
	}
	if (w->loop != NULL) {
		ev_prepare_stop(w->loop, &w->reaper);
		ev_signal_stop(w->loop, &w->sigterm);
		ev_signal_stop(w->loop, &w->sigint);
		ev_loop_destroy(w->loop);
		w->loop = NULL;
	}
	cache_free(&w->cache);
	SSL_CTX_free(w->server_tls);
	SSL_CTX_free(w->upstream_tls);
	w->server_tls = w->upstream_tls = NULL;
}

/* --- failed logins per client address --- */

bool
gw_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

unsigned
gw_auth_fail_delay_ms(struct gw_worker *w, const struct sockaddr_storage *addr)
{
	const struct gw_config *cfg = w->cfg;
	unsigned count = auth_fail_count(&w->auth_fail, addr, ev_now(w->loop));
	unsigned long long d = cfg->auth_fail_delay_ms;

	/* base, 2 x base, 4 x base, ... up to the cap */
	for (unsigned i = 0; i < count && d < cfg->auth_fail_delay_max_ms; i++)
		d *= 2;
	return d > cfg->auth_fail_delay_max_ms ? cfg->auth_fail_delay_max_ms : (unsigned)d;
}

void
gw_auth_fail_record(struct gw_worker *w, const struct sockaddr_storage *addr,
    const char *user_key)
{
	auth_fail_record(&w->auth_fail, addr, user_key, ev_now(w->loop));
}

void
gw_auth_fail_clear(struct gw_worker *w, const struct sockaddr_storage *addr,
    const char *user_key)
{
	auth_fail_success(&w->auth_fail, addr, user_key, ev_now(w->loop));
}

void
gw_user_key(const struct gw_config *cfg, const char *user, char *key_r, size_t size)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; user[i] != '\0' && i + 1 < size; i++) {
		char c = user[i];

		/* ASCII only: no locale, and UTF-8 bytes stay as they are (Dovecot's %L). */
		key_r[i] = cfg->username_lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	key_r[i] = '\0';
}

/* --- recently refused credentials --- */

#define BAD_CRED_TTL 30.0	/* seconds: long enough for a client's retry round */

void
gw_bad_cred_hash(struct gw_worker *w, const char *kind, const char *user,
    const uint8_t *secret, size_t len, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int mdlen = 32;

	memset(out, 0, 32);
	if (md == NULL)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, w->bad_cred_salt, sizeof(w->bad_cred_salt)) == 1 &&
	    EVP_DigestUpdate(md, kind, strlen(kind) + 1) == 1 &&
	    EVP_DigestUpdate(md, user, strlen(user) + 1) == 1 &&
	    EVP_DigestUpdate(md, secret, len) == 1)
		EVP_DigestFinal_ex(md, out, &mdlen);
	EVP_MD_CTX_free(md);
}

void
gw_bad_cred_remember(struct gw_worker *w, const uint8_t hash[32])
{
	struct gw_bad_cred *b = &w->bad_cred[w->bad_cred_next++ % GW_BAD_CRED_SLOTS];

	memcpy(b->hash, hash, sizeof(b->hash));
	b->when = ev_now(w->loop);
}

bool
gw_bad_cred_known(struct gw_worker *w, const uint8_t h[32])
{
	for (size_t i = 0; i < GW_BAD_CRED_SLOTS; i++)
		if (w->bad_cred[i].when > 0 && ev_now(w->loop) - w->bad_cred[i].when < BAD_CRED_TTL &&
		    memcmp(w->bad_cred[i].hash, h, 32) == 0)
			return true;
	return false;
}
