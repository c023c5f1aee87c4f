/* gateway/registry.h: the live sessions of a worker, as the worker and the limits see them:
 * how many there are (this worker's), how many per client address and whose mailbox is in
 * use (all workers', in the shared table: shared.h), and those that ended and wait to be
 * freed. What an entry took in the shared table it gives back when it is doomed, exactly
 * once: the entry's flags say what it holds. The registry does not know what a session is: each entry
 * carries a small table of functions to end it and to free it.
 *
 * Freeing is deferred: an entry that ends is moved to the doomed list and freed by
 * gw_registry_reap(), which the worker runs from an ev_prepare once the stack has unwound
 * (Redis's freeClientAsync()), so no callback up the stack touches freed memory. */
#ifndef POPGATE_REGISTRY_H
#define POPGATE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "shared.h"

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
	bool user_held;			/* holds the mailbox ([IN-USE]) under user_id */
	uint8_t user_id[GW_SHARED_ID];
	uint32_t id;			/* the session's id: with the pid, the mailbox's owner */
	bool addr_held;			/* counted under addr in the shared table */
	uint8_t addr_key[GW_SHARED_ADDR_KEY];
};

struct gw_registry {
	struct gw_reg_entry *live;
	struct gw_reg_entry *doomed;
	size_t count;			/* this worker's: [limits] max_sessions */
	struct gw_shared *shared;	/* all workers': max_per_address, [IN-USE] */
	pid_t pid;			/* this worker's, as the shared table knows it */
};

/* Counts e (not yet added) under e->addr, all workers' sessions from it below limit
 * ([limits] max_per_address). *count_r: those sessions before this one. An address of no
 * family counted (a PROXY wait's) is always OK and holds nothing. */
enum gw_shared_take gw_registry_take_addr(struct gw_registry *r, struct gw_reg_entry *e,
    unsigned limit, unsigned *count_r);
void gw_registry_add(struct gw_registry *r, struct gw_reg_entry *e);
/* The entry ended: off the live list, its address and mailbox given back, freed at the
 * next gw_registry_reap(). */
void gw_registry_doom(struct gw_registry *r, struct gw_reg_entry *e);
/* e takes user's mailbox (the [IN-USE] check, all workers): OK, or LIMIT when another live
 * session holds it. The entry keeps the id it took with, not the name. */
enum gw_shared_take gw_registry_take_user(struct gw_registry *r, struct gw_reg_entry *e,
    const char *user);
/* Gives the mailbox back, if e holds one. */
void gw_registry_release_user(struct gw_registry *r, struct gw_reg_entry *e);
/* Calls stop (or end_now) on every live entry. */
void gw_registry_stop_all(struct gw_registry *r, bool now);
/* Calls sweep on every live entry that has one. */
void gw_registry_sweep(struct gw_registry *r);
/* Frees the doomed entries. */
void gw_registry_reap(struct gw_registry *r);

#endif
