/* gateway/cache_async.h: the UIDL cache (common/cache.h) off the event loop.
 *
 * SQLite never runs on a worker's loop (DESIGN.md "The loop"): one thread per worker owns the
 * cache file and answers requests from a queue; a finished request comes back to the loop
 * through an ev_async, and its completion runs there. A login therefore waits for its UIDLs
 * without stopping the other sessions, however large the mailbox or slow the disk.
 *
 * A request owns copies of what it asks about and what comes back, so the session that made
 * it may end meanwhile: gw_cache_cancel() then drops the answer (the loop frees the request
 * when it returns). Only the loop thread touches `done`, `ctx` and `cancelled`. */
#ifndef POPGATE_CACHE_ASYNC_H
#define POPGATE_CACHE_ASYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "../common/buf.h"
#include "../common/cache.h"

struct gw_cache_req;

/* The answer, on the loop: learned UIDLs are in req (gw_cache_req_next_learned()); error is
 * NULL, or why the cache could not be used (the derived UIDLs stand). */
typedef void gw_cache_done_fn(void *ctx, struct gw_cache_req *req, const char *error);

enum gw_cache_kind {
	GW_CACHE_LOOKUP,	/* cache_lookup_learned(): learned UIDLs, keys missing, rebuilt? */
	GW_CACHE_RECORD,	/* cache_record(): keys stored, a rebuilt mailbox matched */
	GW_CACHE_KNOWN,		/* cache_user_known(): may a live migration run? */
	GW_CACHE_PENDING,	/* cache_add_pending(): what a live migration learned */
	GW_CACHE_LISTING_GET,	/* cache_listing_get(): the last exact listing (CONDSTORE) */
	GW_CACHE_LISTING_PUT,	/* cache_listing_put(), or _forget() when listing.modseq is 0 */
};

struct gw_cache_req {
	struct gw_cache_req *next;
	enum gw_cache_kind kind;
	/* the question */
	char *user, *mailbox;
	uint32_t uidvalidity;
	uint32_t *uids;			/* LOOKUP: ascending */
	size_t n;
	struct cache_entry *entries;	/* RECORD; each msgid is malloc'd, freed with req */
	size_t nentries;
	struct cache_pending *pending;	/* PENDING: one allocation with its strings */
	size_t npending;
	/* the answer: records of (idx: 4 bytes, length: 1 byte, the UIDL) */
	struct buf learned;
	size_t read_pos;
	uint32_t *need_key;		/* LOOKUP: the messages without a content key */
	size_t nneed;
	struct cache_found found;	/* LOOKUP; KNOWN: .known */
	struct cache_stats stats;	/* RECORD */
	size_t added;			/* PENDING */
	struct cache_listing listing;	/* LISTING_GET: the answer; _PUT: the question */
	bool listing_found;		/* LISTING_GET */
	bool failed;
	char error[256];
	/* the loop's side */
	gw_cache_done_fn *done;
	void *ctx;
	bool cancelled;
};

struct gw_cache_async {
	struct ev_loop *loop;
	ev_async wake;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gw_cache_req *todo, *todo_tail;	/* for the thread */
	struct gw_cache_req *answered;		/* for the loop */
	bool stop;
	char *path;
	unsigned retention_days;		/* 0: users are never pruned */
	double next_prune;			/* the thread's: monotonic seconds */
};

/* Starts the thread, which opens the cache at path (so call it after privileges are
 * dropped) and prunes users not seen for retention_days (0: never), once a day. 0, or -1
 * with *error_r (no thread: every request then fails at once). */
int gw_cache_async_start(struct gw_cache_async *ca, struct ev_loop *loop, const char *path,
    unsigned retention_days, const char **error_r);
/* Stops the thread once the request it runs is done; unanswered requests are freed
 * without their completion. */
void gw_cache_async_stop(struct gw_cache_async *ca);

/* A lookup for the n messages of user's mailbox (copies everything). NULL on ENOMEM. */
struct gw_cache_req *gw_cache_lookup_new(const char *user, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n);
/* A record of these messages' keys (takes entries, a malloc'd array, and the malloc'd
 * msgid strings in it). NULL on ENOMEM (entries freed, not their msgids). */
struct gw_cache_req *gw_cache_record_new(const char *user, const char *mailbox,
    uint32_t uidvalidity, struct cache_entry *entries, size_t n);
/* Frees an entries array and the msgid strings in it (NULL is fine). */
void gw_cache_entries_free(struct cache_entry *e, size_t n);
/* Does the cache know the user (no live migration then)? */
struct gw_cache_req *gw_cache_known_new(const char *user);
/* Pending rows for user's mailbox (copied: rows may go at once). NULL on ENOMEM. */
struct gw_cache_req *gw_cache_pending_new(const char *user, const char *mailbox,
    const struct cache_pending *rows, size_t n);
/* The stored listing of user's mailbox (req->listing, when req->listing_found). */
struct gw_cache_req *gw_cache_listing_get_new(const char *user, const char *mailbox);
/* Stores this listing (copied); with modseq 0, drops the stored one. NULL on ENOMEM. */
struct gw_cache_req *gw_cache_listing_put_new(const char *user, const char *mailbox,
    const struct cache_listing *l);
/* Queues it; done(ctx, req, error) runs on the loop once answered, then req is freed. */
void gw_cache_submit(struct gw_cache_async *ca, struct gw_cache_req *req,
    gw_cache_done_fn *done, void *ctx);
/* The owner is gone: no completion will run (safe from the completion's own stack). */
void gw_cache_cancel(struct gw_cache_req *req);
/* The next learned UIDL of an answer: true with *idx_r and the UIDL (len < 71). */
bool gw_cache_req_next_learned(struct gw_cache_req *req, size_t *idx_r, const char **uidl_r,
    size_t *len_r);

#endif
