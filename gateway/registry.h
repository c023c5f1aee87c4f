/* gateway/registry.h: the live sessions of a worker, as the worker and the limits see them:
 * how many there are, how many per client address, whose mailbox is in use, and those that
 * ended and wait to be freed. The registry does not know what a session is: each entry
 * carries a small table of functions to end it and to free it.
 *
 * Freeing is deferred: an entry that ends is moved to the doomed list and freed by
 * gw_registry_reap(), which the worker runs from an ev_prepare once the stack has unwound
 * (Redis's freeClientAsync()), so no callback up the stack touches freed memory. */
#ifndef POPGATE_REGISTRY_H
#define POPGATE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct gw_reg_entry;

struct gw_reg_class {
	/* The worker is stopping: end unless busy with what must finish (an UPDATE). */
	void (*stop)(struct gw_reg_entry *e);
	/* The worker is exiting: end now, without lingering. */
	void (*end_now)(struct gw_reg_entry *e);
	void (*free)(struct gw_reg_entry *e);
	/* Optional, from the worker's periodic sweep: give back what idle memory holds. */
	void (*sweep)(struct gw_reg_entry *e);
};

struct gw_reg_entry {
	struct gw_reg_entry *next, *prev, *next_doomed;
	const struct gw_reg_class *cls;
	const struct sockaddr_storage *addr;	/* the client's */
	const char *user;		/* the canonical user name once logged in, else NULL */
};

struct gw_registry {
	struct gw_reg_entry *live;
	struct gw_reg_entry *doomed;
	size_t count;
};

/* Same IP address (the port is not compared). */
bool gw_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* Live entries from this client address. */
unsigned gw_registry_count_addr(const struct gw_registry *r, const struct sockaddr_storage *addr);
void gw_registry_add(struct gw_registry *r, struct gw_reg_entry *e);
/* The entry ended: off the live list, freed at the next gw_registry_reap(). */
void gw_registry_doom(struct gw_registry *r, struct gw_reg_entry *e);
/* Another live entry is logged in as `user` (the [IN-USE] check). */
bool gw_registry_user_in_use(const struct gw_registry *r, const struct gw_reg_entry *self,
    const char *user);
/* Calls stop (or end_now) on every live entry. */
void gw_registry_stop_all(struct gw_registry *r, bool now);
/* Calls sweep on every live entry that has one. */
void gw_registry_sweep(struct gw_registry *r);
/* Frees the doomed entries. */
void gw_registry_reap(struct gw_registry *r);

#endif
