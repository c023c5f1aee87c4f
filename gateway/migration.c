/* gateway/migration.c: a first login's migration policy; see migration.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "migration.h"

static void
finish(struct gw_migration *m, enum gw_migration_result r, const char *why)
{
	gw_migration_abort(m);
	m->p.done(m->p.ctx, r, why);
}

static void
soon_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_migration *m = t->data;

	(void)loop;
	(void)revents;
	finish(m, m->result, m->why);
}

/* An outcome reached on the owner's stack: told from the loop. */
static void
finish_soon(struct gw_migration *m, enum gw_migration_result r, const char *why)
{
	m->result = r;
	snprintf(m->why, sizeof(m->why), "%s", why);
	ev_timer_init(&m->soon, soon_cb, 0., 0.);
	m->soon.data = m;
	ev_timer_start(m->loop, &m->soon);
}

static void
stored(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct gw_migration *m = ctx;
	char why[300];

	m->req = NULL;
	if (error != NULL) {
		snprintf(why, sizeof(why), "the old server's UIDLs could not be stored: %s", error);
		finish(m, GW_MIGRATION_FAILED, why);
		return;
	}
	log_info("%s: migration: %zu UIDLs of the old server stored for matching", m->p.log_id,
	    req->added);
	finish(m, GW_MIGRATION_STORED, NULL);
}

/* The old server's answer: its messages become pending rows. */
static void
conversed(void *ctx, enum gw_migrate_outcome outcome, const char *why)
{
	struct gw_migration *m = ctx;
	struct cache_pending *rows;
	size_t nrows = 0;
	char text[300];

	m->conversing = false;
	if (outcome != GW_MIGRATE_OK) {
		snprintf(text, sizeof(text), "%s: %s", outcome == GW_MIGRATE_REFUSED ?
		    "the old POP3 server refused the credentials" :
		    "the old POP3 server could not be used", why ? why : "");
		finish(m, GW_MIGRATION_FAILED, text);
		return;
	}
	if ((rows = calloc(m->conv.n ? m->conv.n : 1, sizeof(*rows))) == NULL) {
		finish(m, GW_MIGRATION_FAILED, "out of memory for the old server's UIDLs");
		return;
	}
	/* A message whose header the old server did not give (no TOP, TOP refused) has no
	 * key: it is left out rather than matched by size alone, which could hand its UIDL to
	 * another message of that size (one the client would then never download). */
	for (size_t i = 0; i < m->conv.n; i++) {
		const struct gw_migrate_msg *msg = &m->conv.msgs[i];

		if (msg->ckey[0] == '\0')
			continue;
		rows[nrows++] = (struct cache_pending){ msg->uidl, msg->ckey, msg->msgid,
		    msg->size };
	}
	if (nrows < m->conv.n)
		log_warn("%s: migration: %zu of the old server's %zu messages have no header to "
		    "match by: they get new UIDLs", m->p.log_id, m->conv.n - nrows, m->conv.n);
	m->req = gw_cache_pending_new(m->p.user_key, m->p.mailbox, rows, nrows);
	free(rows);
	gw_migrate_free(&m->conv);	/* the request has its copy */
	if (m->req == NULL) {
		finish(m, GW_MIGRATION_FAILED, "out of memory for the cache request");
		return;
	}
	gw_cache_submit(m->p.cache, m->req, stored, m);
}

/* The cache's answer: a user it knows is never migrated again. */
static void
known_answered(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct gw_migration *m = ctx;
	struct gw_migrate_params cp = {
		.user = m->cred.user,
		.password = m->cred.pass,
		.password_len = m->cred.pass_len,
		.log_id = m->p.log_id,
		.hold_login = !m->released,
		.done = conversed,
		.ctx = m,
	};
	char why[300];

	m->req = NULL;
	if (error != NULL) {
		/* Unknown whether this user was migrated: new UIDLs could cost a full download. */
		snprintf(why, sizeof(why), "the UIDL cache cannot tell whether the user was "
		    "migrated: %s", error);
		finish(m, GW_MIGRATION_FAILED, why);
		return;
	}
	if (req->found.known) {
		finish(m, GW_MIGRATION_NOT_NEEDED, NULL);
		return;
	}
	if (m->bearer) {
		finish(m, GW_MIGRATION_IMPOSSIBLE, "a bearer-token login cannot log in to the old "
		    "POP3 server");
		return;
	}
	if (gw_migrate_start(&m->conv, m->loop, m->p.target, &cp) < 0) {
		gw_cred_wipe(&m->cred);
		finish(m, GW_MIGRATION_FAILED, "cannot start the old server's conversation");
		return;
	}
	m->conversing = true;
	gw_cred_wipe(&m->cred);		/* the conversation has its own copy */
}

void
gw_migration_start(struct gw_migration *m, struct ev_loop *loop,
    const struct gw_migration_params *p)
{
	memset(m, 0, sizeof(*m));
	m->p = *p;
	m->loop = loop;
	m->running = true;
	snprintf(m->cred.user, sizeof(m->cred.user), "%s", p->cred->user);
	m->bearer = p->cred->mech != POP3_SASL_PLAIN || p->cred->pass == NULL;
	if (!m->bearer && gw_cred_set_password(&m->cred, p->cred->pass, p->cred->pass_len) < 0) {
		finish_soon(m, GW_MIGRATION_FAILED, "out of memory for the credentials");
		return;
	}
	if ((m->req = gw_cache_known_new(p->user_key)) == NULL) {
		finish_soon(m, GW_MIGRATION_FAILED, "out of memory for the cache request");
		return;
	}
	gw_cache_submit(p->cache, m->req, known_answered, m);
}

void
gw_migration_abort(struct gw_migration *m)
{
	if (!m->running)
		return;
	m->running = false;
	if (m->req != NULL) {
		gw_cache_cancel(m->req);
		m->req = NULL;
	}
	if (m->conversing) {
		gw_migrate_abort(&m->conv);
		m->conversing = false;
	}
	gw_migrate_free(&m->conv);
	ev_timer_stop(m->loop, &m->soon);
	gw_cred_wipe(&m->cred);
}

void
gw_migration_release(struct gw_migration *m)
{
	m->released = true;
	if (m->conversing)
		gw_migrate_release(&m->conv);
}
