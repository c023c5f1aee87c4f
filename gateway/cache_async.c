/* gateway/cache_async.c: the UIDL cache's thread and its two queues; see cache_async.h.
 *
 * The thread owns the SQLite handle (opened, used and closed there only). Requests go in
 * `todo` under the mutex and come back in `answered`, with an ev_async to wake the loop;
 * the loop runs completions outside the mutex. A cache that cannot be opened is retried at
 * the next request, so a file that was missing or locked at start is used once it is
 * there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/cache.h"
#include "../common/log.h"
#include "cache_async.h"
#include "metrics.h"

#define CACHE_REOPEN_EVERY 5.0	/* seconds between attempts to open a failed cache */

void
gw_cache_entries_free(struct cache_entry *e, size_t n)
{
	for (size_t i = 0; e != NULL && i < n; i++)
		free((char *)e[i].msgid);
	free(e);
}

static void
req_free(struct gw_cache_req *req)
{
	free(req->user);
	free(req->mailbox);
	free(req->uids);
	gw_cache_entries_free(req->entries, req->nentries);
	free(req->pending);
	free(req->need_key);
	cache_listing_free(&req->listing);
	buf_free(&req->learned);
	free(req);
}

static struct gw_cache_req *
req_new(enum gw_cache_kind kind, const char *user, const char *mailbox, uint32_t uidvalidity,
    size_t n)
{
	struct gw_cache_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->kind = kind;
	req->user = strdup(user);
	req->mailbox = strdup(mailbox);
	req->uidvalidity = uidvalidity;
	if (req->user == NULL || req->mailbox == NULL) {
		req_free(req);
		return NULL;
	}
	/* Each learned UIDL takes at most 75 bytes: bounded by the mailbox, not by the file. */
	buf_set_max(&req->learned, (n ? n : 1) * (5 + CACHE_UIDL_MAX));
	return req;
}

struct gw_cache_req *
gw_cache_lookup_new(const char *user, const char *mailbox, uint32_t uidvalidity,
    const uint32_t *uids, size_t n)
{
	struct gw_cache_req *req = req_new(GW_CACHE_LOOKUP, user, mailbox, uidvalidity, n);

	if (req == NULL)
		return NULL;
	req->uids = malloc((n ? n : 1) * sizeof(*uids));
	req->need_key = malloc((n ? n : 1) * sizeof(*req->need_key));
	if (req->uids == NULL || req->need_key == NULL) {
		req_free(req);
		return NULL;
	}
	if (n > 0)			/* an empty mailbox's list may be NULL */
		memcpy(req->uids, uids, n * sizeof(*uids));
	req->n = n;
	return req;
}

struct gw_cache_req *
gw_cache_record_new(const char *user, const char *mailbox, uint32_t uidvalidity,
    struct cache_entry *entries, size_t n)
{
	struct gw_cache_req *req = req_new(GW_CACHE_RECORD, user, mailbox, uidvalidity, n);

	if (req == NULL) {
		gw_cache_entries_free(entries, n);
		return NULL;
	}
	req->entries = entries;
	req->nentries = n;
	return req;
}

struct gw_cache_req *
gw_cache_known_new(const char *user)
{
	return req_new(GW_CACHE_KNOWN, user, "", 0, 0);
}

/* One allocation holds the rows and their strings: the request owns its copy, whatever
 * happens to the session's. */
struct gw_cache_req *
gw_cache_pending_new(const char *user, const char *mailbox, const struct cache_pending *rows,
    size_t n)
{
	struct gw_cache_req *req = req_new(GW_CACHE_PENDING, user, mailbox, 0, 0);
	size_t need = (n ? n : 1) * sizeof(*rows);
	char *pool;

	if (req == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		need += strlen(rows[i].uidl) + 1 + (rows[i].ckey ? strlen(rows[i].ckey) : 0) + 1 +
		    (rows[i].msgid ? strlen(rows[i].msgid) : 0) + 1;
	if ((req->pending = malloc(need)) == NULL) {
		req_free(req);
		return NULL;
	}
	pool = (char *)(req->pending + (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		const char *src[3] = { rows[i].uidl, rows[i].ckey ? rows[i].ckey : "",
		    rows[i].msgid ? rows[i].msgid : "" };
		const char *dst[3];

		for (size_t k = 0; k < 3; k++) {
			size_t len = strlen(src[k]) + 1;

			memcpy(pool, src[k], len);
			dst[k] = pool;
			pool += len;
		}
		req->pending[i] = (struct cache_pending){ dst[0], dst[1], dst[2], rows[i].size };
	}
	req->npending = n;
	return req;
}

struct gw_cache_req *
gw_cache_listing_get_new(const char *user, const char *mailbox)
{
	return req_new(GW_CACHE_LISTING_GET, user, mailbox, 0, 0);
}

struct gw_cache_req *
gw_cache_listing_put_new(const char *user, const char *mailbox, const struct cache_listing *l)
{
	struct gw_cache_req *req = req_new(GW_CACHE_LISTING_PUT, user, mailbox, 0, 0);
	size_t n = l->n;

	if (req == NULL)
		return NULL;
	req->listing = *l;
	req->listing.uid = malloc((n ? n : 1) * sizeof(*l->uid));
	req->listing.size = malloc((n ? n : 1) * sizeof(*l->size));
	if (req->listing.uid == NULL || req->listing.size == NULL) {
		req_free(req);
		return NULL;
	}
	if (n > 0) {
		memcpy(req->listing.uid, l->uid, n * sizeof(*l->uid));
		memcpy(req->listing.size, l->size, n * sizeof(*l->size));
	}
	return req;
}

bool
gw_cache_req_next_learned(struct gw_cache_req *req, size_t *idx_r, const char **uidl_r,
    size_t *len_r)
{
	const uint8_t *p = buf_data(&req->learned);
	size_t left = buf_len(&req->learned) - req->read_pos;
	uint32_t idx;

	if (left < 5)
		return false;
	p += req->read_pos;
	memcpy(&idx, p, 4);
	if (left < 5 + (size_t)p[4])
		return false;
	*idx_r = idx;
	*uidl_r = (const char *)p + 5;
	*len_r = p[4];
	req->read_pos += 5 + (size_t)p[4];
	return true;
}

/* The cache's answers, on the thread. */
static void
record_need_key(void *ctx, size_t idx)
{
	struct gw_cache_req *req = ctx;

	req->need_key[req->nneed++] = (uint32_t)idx;
}

static void
record_learned(void *ctx, size_t idx, const char *uidl, size_t len)
{
	struct gw_cache_req *req = ctx;
	uint32_t i = (uint32_t)idx;
	uint8_t l = (uint8_t)len;	/* < CACHE_UIDL_MAX */

	buf_append(&req->learned, &i, 4);
	buf_append(&req->learned, &l, 1);
	buf_append(&req->learned, uidl, len);
}

/* [cache] retention_days: users not seen for that long are pruned, once a day, by the
 * thread (never pending imports: cache_prune_users()). */
static void
prune(struct gw_cache_async *ca, struct cache *cache, double now)
{
	const char *error = NULL;
	uint64_t users;

	if (ca->retention_days == 0 || now < ca->next_prune)
		return;
	ca->next_prune = now + 24 * 3600;
	if (cache_prune_users(cache, (int64_t)time(NULL) - (int64_t)ca->retention_days * 86400,
	    &users, &error) < 0)
		log_warn("UIDL cache: pruning users not seen for %u days failed: %s",
		    ca->retention_days, error);
	else if (users > 0)
		log_info("UIDL cache: pruned %llu users not seen for %u days",
		    (unsigned long long)users, ca->retention_days);
}

static int
run(struct cache *cache, struct gw_cache_req *req, const char **error_r)
{
	struct cache_answer a = { record_learned, record_need_key, req };

	switch (req->kind) {
	case GW_CACHE_LOOKUP:
		return cache_lookup_learned(cache, req->user, req->mailbox, req->uidvalidity,
		    req->uids, req->n, &a, &req->found, error_r);
	case GW_CACHE_RECORD:
		return cache_record(cache, req->user, req->mailbox, req->uidvalidity,
		    req->entries, req->nentries, &a, &req->stats, error_r);
	case GW_CACHE_KNOWN:
		return cache_user_known(cache, req->user, &req->found.known, error_r);
	case GW_CACHE_PENDING:
		return cache_add_pending(cache, req->user, req->mailbox, req->pending,
		    req->npending, &req->added, error_r);
	case GW_CACHE_LISTING_GET:
		return cache_listing_get(cache, req->user, req->mailbox, &req->listing,
		    &req->listing_found, error_r);
	case GW_CACHE_LISTING_PUT:
		if (req->listing.modseq == 0)
			return cache_listing_forget(cache, req->user, req->mailbox, error_r);
		return cache_listing_put(cache, req->user, req->mailbox, &req->listing, error_r);
	}
	*error_r = "unknown request";
	return -1;
}

/* Answers one request on the thread. */
static void
answer(struct gw_cache_async *ca, struct cache **cache, double *next_open,
    struct gw_cache_req *req)
{
	const char *error = NULL;
	struct timespec now;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (*cache == NULL && now.tv_sec >= *next_open) {
		if ((*cache = cache_open(ca->path, &error)) == NULL)
			*next_open = now.tv_sec + CACHE_REOPEN_EVERY;
	}
	if (*cache == NULL) {
		req->failed = true;
		snprintf(req->error, sizeof(req->error), "%s", error ? error :
		    "cache file could not be opened (retried every 5 s)");
		return;
	}
	if ((r = run(*cache, req, &error)) == 0)
		prune(ca, *cache, now.tv_sec);
	if (r < 0) {
		req->failed = true;
		snprintf(req->error, sizeof(req->error), "%s", error);
	} else if (req->learned.failed) {
		req->failed = true;
		snprintf(req->error, sizeof(req->error), "out of memory");
	}
}

static void *
cache_thread(void *arg)
{
	struct gw_cache_async *ca = arg;
	struct cache *cache = NULL;
	double next_open = 0;

	pthread_mutex_lock(&ca->mu);
	for (;;) {
		struct gw_cache_req *req;

		while (ca->todo == NULL && !ca->stop)
			pthread_cond_wait(&ca->cv, &ca->mu);
		/* A stop runs what is queued first: the writes nobody waits for (a listing after
		 * QUIT, a forget after a wrong size) would otherwise be lost with the process. */
		if (ca->todo == NULL)
			break;
		req = ca->todo;
		ca->todo = req->next;
		if (ca->todo == NULL)
			ca->todo_tail = NULL;
		pthread_mutex_unlock(&ca->mu);
		answer(ca, &cache, &next_open, req);
		pthread_mutex_lock(&ca->mu);
		req->next = ca->answered;
		ca->answered = req;
		ev_async_send(ca->loop, &ca->wake);
	}
	pthread_mutex_unlock(&ca->mu);
	cache_free(&cache);
	return NULL;
}

/* On the loop: the thread answered. Completions run in the order the requests went in. */
/* popgate_uidl_cache_*_total (gateway/metrics.h), on the loop: a lookup's listed messages
 * with a row (hits) and new to the cache (misses, their content key is read upstream); any
 * request that failed, including one whose session is gone meanwhile. */
static void
count(const struct gw_cache_req *req)
{
	if (req->failed) {
		GW_METRIC_INC(uidl_cache_errors);
		return;
	}
	if (req->kind == GW_CACHE_LOOKUP) {
		GW_METRIC_ADD(uidl_cache_hits, (uint64_t)(req->n - req->nneed));
		GW_METRIC_ADD(uidl_cache_misses, (uint64_t)req->nneed);
	}
}

static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct gw_cache_async *ca = w->data;
	struct gw_cache_req *list, *rev = NULL;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&ca->mu);
	list = ca->answered;
	ca->answered = NULL;
	pthread_mutex_unlock(&ca->mu);
	while (list != NULL) {		/* answered is newest first */
		struct gw_cache_req *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev != NULL) {
		struct gw_cache_req *req = rev;

		rev = req->next;
		count(req);
		if (!req->cancelled)
			req->done(req->ctx, req, req->failed ? req->error : NULL);
		req_free(req);
	}
}

int
gw_cache_async_start(struct gw_cache_async *ca, struct ev_loop *loop, const char *path,
    unsigned retention_days, const char **error_r)
{
	memset(ca, 0, sizeof(*ca));
	ca->loop = loop;
	ca->retention_days = retention_days;
	pthread_mutex_init(&ca->mu, NULL);
	pthread_cond_init(&ca->cv, NULL);
	/* Started first: without a thread, requests are still answered (with an error). */
	ev_async_init(&ca->wake, wake_cb);
	ca->wake.data = ca;
	ev_async_start(loop, &ca->wake);
	if ((ca->path = strdup(path)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (pthread_create(&ca->thread, NULL, cache_thread, ca) != 0) {
		*error_r = "cannot start the cache thread";
		return -1;
	}
	ca->running = true;
	return 0;
}

void
gw_cache_async_stop(struct gw_cache_async *ca)
{
	struct gw_cache_req *lists[2];

	if (ca->loop == NULL)
		return;
	if (ca->running) {
		pthread_mutex_lock(&ca->mu);
		ca->stop = true;
		pthread_cond_signal(&ca->cv);
		pthread_mutex_unlock(&ca->mu);
		pthread_join(ca->thread, NULL);
		ca->running = false;
	}
	ev_async_stop(ca->loop, &ca->wake);
	lists[0] = ca->todo;
	lists[1] = ca->answered;
	for (size_t i = 0; i < 2; i++) {
		while (lists[i] != NULL) {
			struct gw_cache_req *next = lists[i]->next;

			req_free(lists[i]);
			lists[i] = next;
		}
	}
	ca->todo = ca->todo_tail = ca->answered = NULL;
	pthread_mutex_destroy(&ca->mu);
	pthread_cond_destroy(&ca->cv);
	free(ca->path);
	ca->loop = NULL;
}

void
gw_cache_submit(struct gw_cache_async *ca, struct gw_cache_req *req, gw_cache_done_fn *done,
    void *ctx)
{
	req->done = done;
	req->ctx = ctx;
	req->next = NULL;
	if (!ca->running) {
		/* No thread: answered as a failure, still from the loop (never re-entrantly). */
		req->failed = true;
		snprintf(req->error, sizeof(req->error), "no cache thread");
		pthread_mutex_lock(&ca->mu);
		req->next = ca->answered;
		ca->answered = req;
		pthread_mutex_unlock(&ca->mu);
		ev_async_send(ca->loop, &ca->wake);
		return;
	}
	pthread_mutex_lock(&ca->mu);
	if (ca->todo_tail != NULL)
		ca->todo_tail->next = req;
	else
		ca->todo = req;
	ca->todo_tail = req;
	pthread_cond_signal(&ca->cv);
	pthread_mutex_unlock(&ca->mu);
}

void
gw_cache_cancel(struct gw_cache_req *req)
{
	req->cancelled = true;
}
