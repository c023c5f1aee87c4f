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
#include "cache_async.h"

#define CACHE_REOPEN_EVERY 5.0	/* seconds between attempts to open a failed cache */

static void
req_free(struct gw_cache_req *req)
{
	free(req->user);
	free(req->mailbox);
	free(req->uids);
	free(req->entries);
	free(req->need_key);
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
		free(entries);
		return NULL;
	}
	req->entries = entries;
	req->nentries = n;
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

/* Answers one request on the thread. */
static void
answer(struct cache **cache, const char *path, double *next_open, struct gw_cache_req *req)
{
	struct cache_answer a = { record_learned, record_need_key, req };
	const char *error = NULL;
	struct timespec now;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (*cache == NULL && now.tv_sec >= *next_open) {
		if ((*cache = cache_open(path, &error)) == NULL)
			*next_open = now.tv_sec + CACHE_REOPEN_EVERY;
	}
	if (*cache == NULL) {
		req->failed = true;
		snprintf(req->error, sizeof(req->error), "%s", error ? error :
		    "cache file could not be opened (retried every 5 s)");
		return;
	}
	r = req->kind == GW_CACHE_LOOKUP ?
	    cache_lookup_learned(*cache, req->user, req->mailbox, req->uidvalidity, req->uids,
	    req->n, &a, &req->rebuilt, &error) :
	    cache_record(*cache, req->user, req->mailbox, req->uidvalidity, req->entries,
	    req->nentries, &a, &req->stats, &error);
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
		if (ca->stop)
			break;
		req = ca->todo;
		ca->todo = req->next;
		if (ca->todo == NULL)
			ca->todo_tail = NULL;
		pthread_mutex_unlock(&ca->mu);
		answer(&cache, ca->path, &next_open, req);
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
		if (!req->cancelled)
			req->done(req->ctx, req, req->failed ? req->error : NULL);
		req_free(req);
	}
}

int
gw_cache_async_start(struct gw_cache_async *ca, struct ev_loop *loop, const char *path,
    const char **error_r)
{
	memset(ca, 0, sizeof(*ca));
	ca->loop = loop;
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
