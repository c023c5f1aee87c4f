/* gateway/session_listing.c: the session's side of the listing cache (CONDSTORE, RFC 7162;
 * login.c decides with it, cache.h stores it, cache_async.c runs the requests).
 *
 *   login      the stored listing is asked of the cache thread while the connection opens;
 *              the FETCH waits for it, LISTING_WAIT at most (a cache thread that is slow
 *              or stuck costs the full FETCH, not the login); an exact listing is stored
 *   RETR       a literal whose size is not the listing's: the stored listing is forgotten
 *   QUIT       after our deletions, the mailbox now is stored when proven (listing.c),
 *              otherwise forgotten: the next poll never pays a range FETCH and a full one
 *
 * Requests to store or forget go in the order they are made, on one thread: the last one
 * wins. Nobody waits for them (the session may be gone when they are answered). */
#include <string.h>

#include "../common/log.h"
#include "listing.h"
#include "session.h"

/* How long a login's FETCH waits for the stored listing once SELECT is answered. The
 * lookup is one indexed row; a cache thread that has not answered in a second is stuck
 * behind a lock or a slow disk, and the full FETCH costs less than the wait. */
#define LISTING_WAIT 1.0

void
gw_session_listing_drop(struct gw_session *s)
{
	ev_timer_stop(s->w->loop, &s->listing_wait);
	if (s->listing_req != NULL) {
		gw_cache_cancel(s->listing_req);
		s->listing_req = NULL;
	}
	cache_listing_free(&s->prior);
}

/* The stored listing (CONDSTORE), on the loop: the login's FETCH waits for it. A cache that
 * cannot answer is no listing: the full FETCH runs. */
static void
listing_looked_up(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct gw_session *s = ctx;

	s->listing_req = NULL;
	ev_timer_stop(s->w->loop, &s->listing_wait);
	cache_listing_free(&s->prior);
	if (error != NULL)
		gw_log(LOG_LVL_DEBUG, s, "stored listing unavailable: %s", error);
	if (error == NULL && req->listing_found) {
		s->prior = req->listing;		/* taken: the request frees nothing of it */
		memset(&req->listing, 0, sizeof(req->listing));
		gw_login_prior(&s->login, &s->prior);
	} else {
		gw_login_prior(&s->login, NULL);
	}
	gw_session_flush(s);
}

/* LISTING_WAIT went by: the login goes on without the stored listing. */
static void
listing_wait_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;

	(void)loop;
	(void)revents;
	if (s->listing_req == NULL)
		return;
	gw_cache_cancel(s->listing_req);	/* its answer, whenever it comes, is dropped */
	s->listing_req = NULL;
	gw_log(LOG_LVL_INFO, s, "stored listing not answered by the cache in %.0f ms: listing "
	    "in full", LISTING_WAIT * 1000);
	gw_login_prior(&s->login, NULL);
	gw_session_flush(s);
}

/* login.h's prior_wanted: LOGIN and SELECT are answered, only the stored listing is not. */
static void
listing_wanted(void *ctx)
{
	struct gw_session *s = ctx;

	if (s->listing_req == NULL)
		return;
	ev_timer_init(&s->listing_wait, listing_wait_cb, LISTING_WAIT, 0.);
	s->listing_wait.data = s;
	ev_timer_start(s->w->loop, &s->listing_wait);
}

void
gw_session_listing_ask(struct gw_session *s, struct gw_login_params *p)
{
	struct gw_worker *w = s->w;

	if (!w->cache.running ||
	    (s->listing_req = gw_cache_listing_get_new(s->user_key, s->cluster->conf.mailbox)) == NULL)
		return;
	/* Looked up while the connection opens: ready, most often, when SELECT answers. */
	p->listing_cache = true;
	p->condstore_hint = s->cluster->condstore;
	p->prior_wanted = listing_wanted;
	gw_cache_submit(&w->cache, s->listing_req, listing_looked_up, s);
}

/* A write's answer: nobody waits for it (the session may be gone). */
static void
listing_written(void *ctx, struct gw_cache_req *req, const char *error)
{
	(void)ctx;
	if (error != NULL)
		log_warn("listing cache: %s the listing of user=%s failed: %s",
		    req->listing.modseq == 0 ? "forgetting" : "storing", req->user, error);
}

/* Stores l; with l->modseq 0, forgets the stored listing. */
static void
listing_put(struct gw_session *s, const struct cache_listing *l)
{
	struct gw_cache_req *req;

	if (!s->w->cache.running)
		return;
	if ((req = gw_cache_listing_put_new(s->user_key, s->cluster->conf.mailbox, l)) == NULL) {
		gw_log(LOG_LVL_WARN, s, "out of memory for a listing cache request");
		return;		/* a stale listing proves nothing: the next poll's count says so */
	}
	gw_cache_submit(&s->w->cache, req, listing_written, NULL);
}

static void
listing_forget(struct gw_session *s)
{
	struct cache_listing none = { 0 };	/* modseq 0: cache_listing_forget() */

	listing_put(s, &none);
}

void
gw_session_listing_store(struct gw_session *s)
{
	struct cache_listing l = s->login.meta;

	l.n = s->snap.count;
	l.uid = s->snap.uid;
	l.size = s->snap.size;
	listing_put(s, &l);
}

void
gw_session_listing_size_differs(struct gw_session *s, size_t idx, uint64_t literal)
{
	char user[GW_LOG_USER_SIZE];

	if (s->listing_size_forgotten)
		return;
	s->listing_size_forgotten = true;
	gw_log(LOG_LVL_WARN, s, "message uid=%u of user=%s is %llu octets upstream, not the "
	    "listing's %llu: forgetting the stored listing", s->snap.uid[idx],
	    gw_log_user(s, user, sizeof(user)), (unsigned long long)literal,
	    (unsigned long long)s->snap.size[idx]);
	listing_forget(s);
}

void
gw_session_listing_retr_failed(struct gw_session *s, size_t idx)
{
	char user[GW_LOG_USER_SIZE];

	if (s->listing_size_forgotten || !s->login.condstore)
		return;
	/* The upstream cut the message off (a literal far from its size, a server that found
	 * its own cached size wrong and closed): the stored size may be what is wrong, and the
	 * unchanged mailbox would serve it to every later poll. One full FETCH settles it. */
	s->listing_size_forgotten = true;
	gw_log(LOG_LVL_WARN, s, "RETR of message uid=%u of user=%s failed: forgetting the "
	    "stored listing", s->snap.uid[idx], gw_log_user(s, user, sizeof(user)));
	listing_forget(s);
}

const char *
gw_session_listing_status_mailbox(const struct gw_session *s)
{
	if (s->listing_size_forgotten)
		return NULL;	/* the listing's sizes are wrong: nothing to store after QUIT */
	for (size_t i = 0; i < s->snap.count; i++)
		if (s->snap.flags[i] & GW_MSG_DELETED)
			return s->login.condstore && s->login.exact ? s->cluster->conf.mailbox : NULL;
	return NULL;
}

void
gw_session_listing_after_update(struct gw_session *s, size_t removed, const char *error)
{
	struct gw_listing_quit q = {
		.sel = &s->login.meta,
		.exact = s->login.exact,
		.snap = &s->snap,
		.removed = removed,
		.update_ok = error == NULL,
		.status = &s->upd.status,
		.up = &s->up,
		.sel_expunges = s->login.sel_expunges,
	};
	struct cache_listing l;
	const char *why;
	bool any = false;

	for (size_t i = 0; i < s->snap.count && !any; i++)
		any = (s->snap.flags[i] & GW_MSG_DELETED) != 0;
	if (!any || !s->login.condstore || s->listing_size_forgotten)
		return;		/* nothing deleted, no listing of this login to speak of, or one a
				 * RETR found a wrong size in (forgotten then: storing it again from
				 * this snapshot would bring the wrong size back) */
	if (!gw_listing_after_quit(&q, &l, &why)) {
		gw_log(LOG_LVL_DEBUG, s, "listing after QUIT: forgotten (%s)", why);
		listing_forget(s);
		return;
	}
	gw_log(LOG_LVL_DEBUG, s, "listing after QUIT: stored, %zu messages, HIGHESTMODSEQ %llu",
	    l.n, (unsigned long long)l.modseq);
	listing_put(s, &l);
	cache_listing_free(&l);
}
