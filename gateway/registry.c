/* gateway/registry.c: a worker's live and doomed sessions; see registry.h. */
#include <netinet/in.h>

#include <string.h>

#include "registry.h"

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
gw_registry_count_addr(const struct gw_registry *r, const struct sockaddr_storage *addr)
{
	unsigned n = 0;

	for (const struct gw_reg_entry *e = r->live; e != NULL; e = e->next)
		n += gw_addr_equal(e->addr, addr);
	return n;
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
	e->user = NULL;
	r->count--;
	e->next_doomed = r->doomed;
	r->doomed = e;
}

bool
gw_registry_user_in_use(const struct gw_registry *r, const struct gw_reg_entry *self,
    const char *user)
{
	for (const struct gw_reg_entry *e = r->live; e != NULL; e = e->next)
		if (e != self && e->user != NULL && strcmp(e->user, user) == 0)
			return true;
	return false;
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
