/* gateway/master.h: the master process over the workers ([server] master = yes, the
 * default).
 *
 * The master binds every listen address once per worker (SO_REUSEPORT: the kernel spreads
 * connections over the workers' sockets), loads the TLS keys (gw_worker_load()) and forks
 * the workers; each drops privileges and starts its own loop, cache thread, registry,
 * login memory and probe (gw_worker_start()). The master keeps its privileges, like
 * nginx's and Dovecot's: it reads no network input, and a reload must read root's keys
 * again and bind port 110 with the same owner as the sockets it joins. The limits kept
 * by all workers together live in the region main() mapped before (gateway/shared.h), and
 * the master frees what a worker held there when it reaps it.
 *
 * It waits for signals, never in a handler (sigtimedwait()):
 *   SIGCHLD  a worker that died is started again on its slot (gateway/backoff.h: at once, or
 *            later when it keeps dying soon after its start), on the same sockets: the
 *            connections the kernel hashed to that slot wait in its queue instead of being
 *            reset;
 *   SIGHUP   reload: the ini is read and the keys loaded again; if anything fails the old
 *            configuration keeps serving and the log says why. Else a new generation of
 *            workers starts on the same sockets (new ones bound for new addresses), and the
 *            old generation is told to retire (SIGUSR2): it stops accepting, lets its
 *            sessions finish for its [server] shutdown_timeout (an UPDATE always
 *            completes), and exits. No connection is refused or reset in between;
 *   SIGTERM, SIGINT  stop: forwarded to the workers, which drain the same way (worker.c);
 *            the master exits once every worker, retiring ones included, has.
 *
 * With master = no none of this runs: the one process is the worker (gateway/main.c). */
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
/* Old workers still finishing their sessions after reloads; beyond it the oldest are
 * forgotten (still reaped, no longer waited for). */
#define GW_RETIRED_MAX 256

struct gw_master_slot {
	pid_t pid;			/* 0: not running */
	struct gw_listen_fds fds;	/* its sockets, kept to fork it again (also while it
					   is dead); closed when the workers are told to stop */
	double started;			/* CLOCK_MONOTONIC seconds of its last fork */
	double restart_at;		/* pid 0 and > 0: fork it again at this time */
	struct gw_backoff backoff;
};

struct gw_master {
	const char *path;		/* the ini, read again at SIGHUP */
	struct gw_config *cfg;		/* the serving generation's; the master owns it */
	struct gw_worker *proto;	/* loaded, not started: what each worker starts from;
					   owned */
	struct gw_shared *shared;	/* proto's at init: a reaped worker's entries are
					   freed in it (gateway/shared.h) */
	gw_accept_fn *accept;
	pid_t pid;			/* the master's own */
	unsigned n;			/* cfg->workers */
	unsigned alive;			/* of the serving generation */
	unsigned generation;		/* 1, then one more per reload taken */
	bool stopping;			/* SIGTERM or SIGINT came: no worker is expected back */
	bool failed;			/* a worker ended with an error */
	sigset_t waited;		/* SIGCHLD, SIGTERM, SIGINT, SIGHUP: blocked, taken by
					   sigtimedwait() (sigwaitinfo() with no restart due) */
	sigset_t oldmask;
	struct gw_master_slot slot[GW_WORKERS_MAX];
	pid_t retired[GW_RETIRED_MAX];	/* older generations' workers still running */
	unsigned nretired;
};

/* The descriptors one worker needs for [limits] max_sessions. */
unsigned long long gw_nofile_need(const struct gw_config *cfg);
/* RLIMIT_NOFILE against gw_nofile_need(): with apply, raises the soft limit to it (never
 * lowers it; the hard limit stays). 0, or -1 with *error_r (static storage) naming
 * max_sessions and the hard limit when even that cannot hold it (popgate -t says the same). */
int gw_nofile_check(const struct gw_config *cfg, bool apply, const char **error_r);

/* Takes cfg and proto (heap, loaded with gw_worker_load(); freed by gw_master_free(), also
 * on failure), checks the addresses are free and binds cfg->workers sets of listening
 * sockets (SO_REUSEPORT), and blocks the signals the master waits for. path is the ini a
 * reload reads. 0, or -1 with *error_r and nothing open. */
int gw_master_init(struct gw_master *m, const char *path, struct gw_config *cfg,
    struct gw_worker *proto, gw_accept_fn *accept, const char **error_r);
/* Forks the worker of slot i (0-based; it logs as worker=i+1). In the parent: 0, or -1 with
 * *error_r. The child never returns: it closes the other slots' sockets, drops privileges,
 * starts and runs its worker, and exits 0 once stopped, 1 if it could not start. */
int gw_master_spawn(struct gw_master *m, unsigned i, const char **error_r);
/* Supervises until a stop has ended every worker (see above). The exit status: 0 when the
 * stop ended every worker cleanly, else 1 (one failed to stop, or one could not be forked
 * at the start). */
int gw_master_run(struct gw_master *m);
/* A stop: sig (SIGTERM, SIGINT) to every live worker of the serving generation (retiring
 * ones are draining already); no worker is expected back, and none waiting for its restart
 * is started. */
void gw_master_stop(struct gw_master *m, int sig);
/* Closes every slot's sockets, frees the configuration and proto, restores the mask. */
void gw_master_free(struct gw_master *m);

#endif
