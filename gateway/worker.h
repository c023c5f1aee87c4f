/* gateway/worker.h: one event loop and everything it owns: listeners, the live sessions
 * (registry.h), TLS contexts, the upstream clusters' targets and learned capabilities
 * (cluster.h, probe.h),
 * the old POP3 server's target ([migration]), the UIDL cache handle, the failed-login
 * memory (login_guard.h). Sessions read it; the
 * worker itself never names a session: it reaches them through the registry.
 *
 * A worker comes to life in two steps, so that a process can prepare once and fork many
 * (gateway/master.h): gw_worker_load() builds what every worker shares and needs privileges
 * for (TLS contexts: the keys may be root's), in the process that forks; gw_worker_start()
 * builds what is a worker's own (its loop, cache thread, login memory, probe, the listening
 * sockets given to it), in the worker. With [server] workers = 1 both run in the one
 * process, without a fork.
 *
 * The limits all workers keep together (max_per_address, [IN-USE], the failed-login delay)
 * live in one region main() maps once, before any fork (gateway/shared.h): whoever calls
 * gw_worker_load() (main, a reload) sets w->shared to it afterwards; gw_worker_start()
 * refuses to start without it. */
#ifndef POPGATE_WORKER_H
#define POPGATE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "cache_async.h"
#include "cluster.h"
#include "config.h"
#include "imapc.h"
#include "listener.h"
#include "login_guard.h"
#include "metrics_http.h"
#include "migrate.h"
#include "probe.h"
#include "registry.h"

struct gw_worker {
	unsigned index;			/* 1..workers in a forked worker; 0: the one process */
	struct ev_loop *loop;
	const struct gw_config *cfg;
	struct gw_listeners listeners;
	struct gw_metrics_http metrics;	/* [metrics] listen: scrapes (metrics_http.h) */
	SSL_CTX *server_tls;		/* POP3 side; NULL without [tls] */
	struct gw_clusters clusters;	/* [upstream] and [upstream:DOMAIN]s: their TLS
					   contexts, targets, probes */
	SSL_CTX *migration_tls;		/* the old POP3 server; NULL unless [migration] pop3
					   is set and its security is not none */
	struct gw_migrate_target migration;	/* [migration]; meaningful when cfg->mig_host
						   is set */
	struct gw_cache_async cache;	/* the UIDL cache, on its own thread */
	struct gw_registry sessions;
	uint32_t next_session_id;
	ev_prepare reaper;		/* frees ended sessions once the stack has unwound */
	ev_timer sweeper;		/* idle sessions give their buffers back (io.h) */
	ev_timer drain;			/* a stop's [server] shutdown_timeout */
	ev_signal sigterm, sigint;
	ev_signal sigusr2;		/* a master's worker: retire (a reload) */
	ev_signal sighup;		/* master = no: a reload, which it cannot do */
	bool stopping;			/* accepts no more; exits when the last session ends */
	bool retiring;			/* stopping for a reload: no deadline until a stop */
	ev_tstamp stop_at;		/* when the first stop signal came */
	struct gw_login_guard guard;
	struct gw_shared *shared;	/* borrowed from main(): see above */
};

/* The shared part: TLS contexts and the upstream's and old server's targets (no loop, no
 * thread, nothing a fork would duplicate badly). 0, or -1 with *error_r; either way
 * gw_worker_free() releases what was built. */
int gw_worker_load(struct gw_worker *w, const struct gw_config *cfg, const char **error_r);
/* The worker's own part, after a fork (or in the one process): index (see above), the
 * listening sockets (taken: *fds is emptied), and accept, what a new client connection
 * becomes (the session's constructor). Session ids of worker i start at i << 24, so they
 * stay unique across workers (for a worker's first 16 million sessions: they are log ids). 0, or -1 with *error_r. */
int gw_worker_start(struct gw_worker *w, unsigned index, struct gw_listen_fds *fds,
    gw_accept_fn *accept, const char **error_r);
void gw_worker_run(struct gw_worker *w);
/* A reload's new proto (to, loaded) takes what every generation shares from the serving
 * one's (from). */
void gw_worker_keep_shared(struct gw_worker *to, const struct gw_worker *from);
void gw_worker_free(struct gw_worker *w);

#endif
