/* gateway/worker.c: the event loop of a worker and what it owns; see worker.h. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "metrics.h"
#include "notify.h"
#include "tls.h"
#include "worker.h"

static void
reaper_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct gw_worker *w = p->data;

	(void)loop;
	(void)revents;
	gw_registry_reap(&w->sessions);
	if (w->stopping && w->sessions.live == NULL)
		ev_break(w->loop, EVBREAK_ALL);
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_worker *w = t->data;

	(void)loop;
	(void)revents;
	gw_registry_sweep(&w->sessions);
}

/* The drain is over (or there is none): the sessions still open end now. A dropped session
 * changes nothing upstream; UPDATEs already running finish, and ended sessions still writing
 * their last replies (lingering, bounded) too. */
static void
end_open_sessions(struct gw_worker *w)
{
	ev_timer_stop(w->loop, &w->drain);
	gw_registry_stop_all(&w->sessions, false);
}

static void
drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_worker *w = t->data;

	(void)loop;
	(void)revents;
	log_info("stopping: [server] shutdown_timeout (%u s) is over: open sessions end without "
	    "changing their mailboxes", w->cfg->shutdown_timeout);
	end_open_sessions(w);
}

#define STOP_AGAIN_AFTER 2.0	/* s: a signal sooner is the first stop's twin */

/* No new connection, from now on: the listeners close (the sockets stay open in the master
 * and in the next generation, if any), and so does the probe. */
static void
stop_accepting(struct gw_worker *w)
{
	gw_listeners_close(&w->listeners);
	gw_metrics_http_stop(&w->metrics);
	gw_clusters_probe_stop(&w->clusters);
}

/* SIGUSR2, from the master at a reload: a newer generation of workers takes the new
 * connections; this one lets its sessions finish at their own pace (their idle and upstream
 * timeouts still apply) and exits when the last ends. A stop that comes later gives them
 * [server] shutdown_timeout. */
static void
retire_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct gw_worker *w = sig->data;

	(void)loop;
	(void)revents;
	if (w->stopping)
		return;
	w->stopping = w->retiring = true;
	/* What the kernel queued on this worker's sockets before the reload is served here:
	 * when the new generation has fewer workers, nobody else holds those sockets, and
	 * closing them would reset it. */
	gw_listeners_take_queued(&w->listeners);
	stop_accepting(w);
	log_info("worker=%u retires (a reload started newer workers): %u open sessions may "
	    "finish", w->index, (unsigned)w->sessions.count);
}

/* SIGTERM/SIGINT: no new connection; the open sessions may finish what they do (a RETR, a
 * QUIT) for [server] shutdown_timeout seconds, then end. A second signal ends them at once. */
static void
stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct gw_worker *w = sig->data;
	unsigned t = w->cfg->shutdown_timeout;

	(void)loop;
	(void)revents;
	if (w->stopping && !w->retiring) {
		/* The same stop told twice (systemd's SIGTERM to the cgroup and the master's,
		 * or Ctrl-C's to the process group), not an operator asking again. */
		if (ev_now(w->loop) - w->stop_at < STOP_AGAIN_AFTER)
			return;
		log_info("signal %d again: open sessions end now", sig->signum);
		end_open_sessions(w);
		return;
	}
	if (!w->stopping) {
		stop_accepting(w);
		if (w->index == 0)
			gw_notify_stopping();	/* master = no: this process is systemd's */
	}
	w->stopping = true;
	w->retiring = false;
	w->stop_at = ev_now(w->loop);
	if (t == 0) {
		log_info("signal %d: stopping; open sessions end without changing their mailboxes",
		    sig->signum);
		end_open_sessions(w);
		return;
	}
	log_info("signal %d: stopping; open sessions may finish for up to %u s", sig->signum, t);
	ev_timer_set(&w->drain, (ev_tstamp)t, 0.);
	ev_timer_start(w->loop, &w->drain);
}

/* SIGHUP with [server] master = no: nothing can be reloaded in place (the sessions read
 * the configuration, and the keys may be root's). */
static void
hup_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	(void)loop;
	(void)sig;
	(void)revents;
	log_warn("SIGHUP: [server] master = no cannot reload; restart popgate to apply a new "
	    "configuration");
}

void
gw_worker_keep_shared(struct gw_worker *to, const struct gw_worker *from)
{
	/* What every generation shares lives in regions main() maps once before the first
	 * fork: the limits table (shared.h) by this pointer, the metrics (metrics.h) by the
	 * module's own. */
	to->shared = from->shared;
}

int
gw_worker_load(struct gw_worker *w, const struct gw_config *cfg, const char **error_r)
{
	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	if ((w->server_tls = gw_tls_server_ctx(cfg, error_r)) == NULL && *error_r != NULL)
		return -1;
	if (gw_clusters_load(&w->clusters, cfg, error_r) < 0)
		return -1;
	if ((w->migration_tls = gw_tls_migration_ctx(cfg, error_r)) == NULL && *error_r != NULL)
		return -1;
	if (cfg->mig_host[0] != '\0')
		gw_migrate_target_from_config(&w->migration, cfg, w->migration_tls);
	return 0;
}

int
gw_worker_start(struct gw_worker *w, unsigned index, struct gw_listen_fds *fds,
    gw_accept_fn *accept, const char **error_r)
{
	const struct gw_config *cfg = w->cfg;

	w->index = index;
	w->next_session_id = (uint32_t)index << 24;
	if (w->shared == NULL) {
		*error_r = "no shared limits table (main() maps it; set w->shared after "
		    "gw_worker_load())";
		return -1;
	}
	w->sessions.shared = w->shared;
	/* Before this worker holds any entry: the pids the master reaped are forgotten now,
	 * so that one reused by this very worker can never cost it its own entries later. */
	(void)gw_shared_used(w->shared);
	w->sessions.pid = getpid();	/* after the fork: the owner of what it takes */
	/* Here, not in gw_worker_load(): each worker salts its hashes with its own bytes. */
	if (gw_login_guard_init(&w->guard, w->shared, cfg->auth_fail_delay_ms,
	    cfg->auth_fail_delay_max_ms, error_r) < 0)
		return -1;
	if ((w->loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		*error_r = "cannot create the event loop";
		return -1;
	}
	gw_clusters_probe_init(&w->clusters, w->loop);
	gw_listeners_open(&w->listeners, w->loop, cfg, fds, accept, w);
	gw_metrics_attach();		/* this process's open-session gauge (metrics.h) */
	gw_metrics_http_start(&w->metrics, w->loop);
	ev_prepare_init(&w->reaper, reaper_cb);
	w->reaper.data = w;
	ev_prepare_start(w->loop, &w->reaper);
	/* A quiet io is swept within 2 * GW_IO_QUIET of its last byte. */
	ev_timer_init(&w->sweeper, sweep_cb, GW_IO_QUIET, GW_IO_QUIET);
	w->sweeper.data = w;
	ev_timer_start(w->loop, &w->sweeper);
	ev_init(&w->drain, drain_cb);
	w->drain.data = w;
	ev_signal_init(&w->sigterm, stop_cb, SIGTERM);
	ev_signal_init(&w->sigint, stop_cb, SIGINT);
	ev_signal_init(&w->sigusr2, retire_cb, SIGUSR2);
	ev_signal_init(&w->sighup, hup_cb, SIGHUP);
	w->sigterm.data = w->sigint.data = w->sigusr2.data = w->sighup.data = w;
	ev_signal_start(w->loop, &w->sigterm);
	ev_signal_start(w->loop, &w->sigint);
	if (index > 0)
		ev_signal_start(w->loop, &w->sigusr2);	/* a master's worker */
	else
		ev_signal_start(w->loop, &w->sighup);	/* the one process */
	return 0;
}

void
gw_worker_run(struct gw_worker *w)
{
	const char *error = NULL;

	/* The cache thread opens the file after privileges are dropped, so it is the
	 * service's. */
	if (gw_cache_async_start(&w->cache, w->loop, w->cfg->cache_path,
	    w->cfg->retention_days, &error) < 0)
		log_warn("UIDL cache unavailable, serving derived UIDLs: %s", error);
	gw_clusters_probe_start(&w->clusters);	/* CAPA's SASL line needs their mechanisms */
	gw_listeners_pause(&w->listeners, false);
	ev_run(w->loop, 0);
}

void
gw_worker_free(struct gw_worker *w)
{
	gw_listeners_close(&w->listeners);
	gw_metrics_http_stop(&w->metrics);
	gw_clusters_probe_stop(&w->clusters);
	gw_registry_stop_all(&w->sessions, true);	/* a lingering one too */
	gw_registry_reap(&w->sessions);
	gw_cache_async_stop(&w->cache);		/* its ev_async lives in the loop */
	if (w->loop != NULL) {
		ev_prepare_stop(w->loop, &w->reaper);
		ev_timer_stop(w->loop, &w->sweeper);
		ev_timer_stop(w->loop, &w->drain);
		ev_signal_stop(w->loop, &w->sigterm);
		ev_signal_stop(w->loop, &w->sigint);
		ev_signal_stop(w->loop, &w->sigusr2);
		ev_signal_stop(w->loop, &w->sighup);
		ev_loop_destroy(w->loop);
		w->loop = NULL;
	}
	gw_metrics_detach();		/* its sessions are freed: none open is counted */
	SSL_CTX_free(w->server_tls);
	gw_clusters_free(&w->clusters);
	SSL_CTX_free(w->migration_tls);
	w->server_tls = w->migration_tls = NULL;
}
