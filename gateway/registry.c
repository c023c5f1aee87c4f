/* gateway/registry.c: a worker's live and doomed sessions; see registry.h. */
#include <string.h>

#include "registry.h"

enum gw_shared_take
gw_registry_take_addr(struct gw_registry *r, struct gw_reg_entry *e, unsigned limit,
    unsigned *count_r)
{
	enum gw_shared_take t;

	*count_r = 0;
	e->addr_held = false;
	if (!gw_shared_addr_key(e->addr, e->addr_key))
		return GW_SHARED_OK;
	if ((t = gw_shared_addr_take(r->shared, e->addr_key, r->pid, limit, count_r)) ==
	    GW_SHARED_OK)
		e->addr_held = true;
	return t;
}

enum gw_shared_take
gw_registry_take_user(struct gw_registry *r, struct gw_reg_entry *e, const char *user)
{
	enum gw_shared_take t;

	gw_registry_release_user(r, e);		/* never two: one session, one mailbox */
	gw_shared_user_id(r->shared, user, e->user_id);
	if ((t = gw_shared_user_take_id(r->shared, e->user_id, r->pid, e->id)) == GW_SHARED_OK)
		e->user_held = true;
	return t;
}

void
gw_registry_release_user(struct gw_registry *r, struct gw_reg_entry *e)
{
	if (!e->user_held)
		return;
	gw_shared_user_release_id(r->shared, e->user_id, r->pid, e->id);
	e->user_held = false;
}

void
gw_registry_add(struct gw_registry *r, struct gw_reg_entry *e)
{
	e->prev = NULL;
	e->next = r->live;
	if (r->live != NULL)
		r->live->prev = e;
	r->live = e;
	r->count++;
}

void
gw_registry_doom(struct gw_registry *r, struct gw_reg_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		r->live = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->next = e->prev = NULL;
	gw_registry_release_user(r, e);
	if (e->addr_held)
		gw_shared_addr_release(r->shared, e->addr_key, r->pid);
	e->addr_held = false;
	r->count--;
	e->next_doomed = r->doomed;
	r->doomed = e;
}

void
gw_registry_stop_all(struct gw_registry *r, bool now)
{
	for (struct gw_reg_entry *e = r->live, *next; e != NULL; e = next) {
		next = e->next;		/* e may be doomed by its own stop */
		if (now)
			e->cls->end_now(e);
		else
			e->cls->stop(e);
	}
}

void
gw_registry_sweep(struct gw_registry *r)
{
	for (struct gw_reg_entry *e = r->live; e != NULL; e = e->next)
		if (e->cls->sweep != NULL)
			e->cls->sweep(e);
}

void
gw_registry_reap(struct gw_registry *r)
{
	while (r->doomed != NULL) {
		struct gw_reg_entry *e = r->doomed;

		r->doomed = e->next_doomed;
		e->cls->free(e);
	}
}
