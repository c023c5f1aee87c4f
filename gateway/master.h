/* gateway/master.h: the process around the workers ([server] workers > 1).
 *
 * The process that starts binds every listen address once per worker (SO_REUSEPORT: the
 * kernel spreads connections over the workers' sockets), loads the TLS keys
 * (gw_worker_load()), drops privileges, then forks the workers; each starts its own loop,
 * cache thread, registry, login memory and probe (gw_worker_start()); the limits kept by all
 * workers together live in the region main() mapped before (gateway/shared.h), and the
 * supervisor frees what a worker held there when it reaps it. What stays is a small
 * supervisor: it waits for its workers, forwards SIGTERM and SIGINT to them and exits once
 * they have, and starts a worker that dies again on its slot (gateway/backoff.h: at once,
 * or later when it keeps dying soon after its start).
 *
 * A dead worker's sockets stay open in the supervisor: it has dropped privileges and could
 * not bind port 110 again, and the connections the kernel hashed to that slot wait in their
 * queues for the next worker (for a moment, or the back-off's wait) instead of being reset.
 *
 * Not here yet: reload on SIGHUP. (The drain of a stop is the workers': worker.c.)
 *
 * With workers = 1 none of this runs: the one process is the worker (gateway/main.c). */
#ifndef POPGATE_MASTER_H
#define POPGATE_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "backoff.h"
#include "config.h"
#include "listener.h"
#include "worker.h"

/* Descriptors a worker holds besides its sessions' two each: stdio, the loop's, the cache
 * file (database, WAL, shared memory), the probe, a migration's connection, the listening
 * sockets it inherited for a moment (counted apart). */
#define GW_NOFILE_SLACK 64

struct gw_master_slot {
	pid_t pid;			/* 0: not running */
	struct gw_listen_fds fds;	/* its sockets, kept to fork it again (also while it
					   is dead); closed when the workers are told to stop */
	double started;			/* CLOCK_MONOTONIC seconds of its last fork */
	double restart_at;		/* pid 0 and > 0: fork it again at this time */
	struct gw_backoff backoff;
};

struct gw_master {
	const struct gw_config *cfg;
	struct gw_worker *proto;	/* loaded, not started: what each worker starts from */
	struct gw_shared *shared;	/* proto's at init: a reaped worker's entries are
					   freed in it (gateway/shared.h) */
	gw_accept_fn *accept;
	pid_t pid;			/* the supervisor's own */
	unsigned n;			/* cfg->workers */
	unsigned alive;
	bool stopping;			/* SIGTERM or SIGINT came: no worker is expected back */
	bool failed;			/* a worker ended with an error */
	sigset_t waited;		/* SIGCHLD, SIGTERM, SIGINT: blocked, taken by
					   sigtimedwait() (sigwaitinfo() with no restart due) */
	sigset_t oldmask;
	struct gw_master_slot slot[GW_WORKERS_MAX];
};

/* The descriptors one worker needs for [limits] max_sessions. */
unsigned long long gw_nofile_need(const struct gw_config *cfg);
/* RLIMIT_NOFILE against gw_nofile_need(): with apply, raises the soft limit to it (never
 * lowers it; the hard limit stays). 0, or -1 with *error_r (static storage) naming
 * max_sessions and the hard limit when even that cannot hold it (popgate -t says the same). */
int gw_nofile_check(const struct gw_config *cfg, bool apply, const char **error_r);

/* Binds cfg->workers sets of listening sockets (SO_REUSEPORT), as the user that can (root
 * for ports below 1024), and blocks the signals the supervisor waits for. proto is loaded
 * (gw_worker_load()); the master borrows it. 0, or -1 with *error_r and nothing open. */
int gw_master_init(struct gw_master *m, const struct gw_config *cfg, struct gw_worker *proto,
    gw_accept_fn *accept, const char **error_r);
/* Forks the worker of slot i (0-based; it logs as worker=i+1). In the parent: 0, or -1 with
 * *error_r. The child never returns: it closes the other slots' sockets, starts and runs its
 * worker, and exits 0 once stopped, 1 if it could not start. */
int gw_master_spawn(struct gw_master *m, unsigned i, const char **error_r);
/* Supervises until a stop has ended every worker: SIGTERM/SIGINT are forwarded; a worker
 * that ends otherwise is reaped, logged with when it starts again, and forked again on its
 * slot then. The exit status: 0 when the stop ended every live worker cleanly, else 1 (one
 * failed to stop, or one could not be forked at the start). */
int gw_master_run(struct gw_master *m);
/* A stop: sig (SIGTERM, SIGINT) to every live worker; no worker is expected back, and none
 * waiting for its restart is started. */
void gw_master_stop(struct gw_master *m, int sig);
/* Closes every slot's sockets and restores the signal mask. */
void gw_master_free(struct gw_master *m);

#endif
