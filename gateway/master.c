/* gateway/master.c: binding for, forking, supervising and reloading the workers; see
 * master.h.
 *
 * The master has no event loop: it blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP and takes
 * them one at a time with sigtimedwait(), so nothing runs in a signal handler and no signal
 * is lost between two checks; its timeout is the next restart a back-off put off. Blocking
 * them before the first fork also keeps a worker from being killed by a SIGTERM that comes
 * before its loop watches for it: the child keeps SIGTERM, SIGINT and SIGUSR2 blocked until
 * its ev_signals are started, then unblocks them (a pending one is then delivered to
 * libev's handler); SIGHUP it ignores. */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include <signal.h>

#include "daemon.h"
#include "master.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "privileges.h"
#include "shared.h"

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

unsigned long long
gw_nofile_need(const struct gw_config *cfg)
{
	/* client + upstream per session, and the old POP3 server's connection of a first
	 * login while [migration] is on; the listening sockets of every worker are held by
	 * each for the moment between its fork and closing the others' */
	unsigned long long per = cfg->mig_host[0] != '\0' ? 3 : 2;

	/* + each [upstream:DOMAIN] cluster's capability probe, and the scrape sockets */
	return per * cfg->max_sessions + GW_NOFILE_SLACK + (unsigned long long)cfg->nlisten *
	    cfg->workers + cfg->ndomains + cfg->nmetrics_listen;
}

int
gw_nofile_check(const struct gw_config *cfg, bool apply, const char **error_r)
{
	static char error[400];
	unsigned long long need = gw_nofile_need(cfg);
	unsigned per = cfg->mig_host[0] != '\0' ? 3 : 2;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(error, sizeof(error), "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		*error_r = error;
		return -1;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		snprintf(error, sizeof(error), "[limits] max_sessions = %u needs %llu file "
		    "descriptors per worker (%u per session%s and %llu more), but the hard limit "
		    "RLIMIT_NOFILE is %llu: lower max_sessions or raise the limit (systemd's "
		    "LimitNOFILE=, ulimit -Hn)", cfg->max_sessions, need, per,
		    per == 3 ? ", with [migration] on" : "",
		    need - (unsigned long long)per * cfg->max_sessions,
		    (unsigned long long)rl.rlim_max);
		*error_r = error;
		return -1;
	}
	if (!apply || (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need))
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(error, sizeof(error), "raising RLIMIT_NOFILE to %llu for [limits] "
		    "max_sessions = %u: %s", need, cfg->max_sessions, strerror(errno));
		*error_r = error;
		return -1;
	}
	log_debug("RLIMIT_NOFILE raised to %llu for [limits] max_sessions = %u", need,
	    cfg->max_sessions);
	return 0;
}

int
gw_master_init(struct gw_master *m, const char *path, struct gw_config *cfg,
    struct gw_worker *proto, gw_accept_fn *accept, const char **error_r)
{
	memset(m, 0, sizeof(*m));
	/* A parent that ignored SIGCHLD hands that on through exec: the kernel would reap the
	 * workers itself, and a dead one would never be noticed. */
	signal(SIGCHLD, SIG_DFL);
	m->path = path;
	m->cfg = cfg;
	m->proto = proto;
	m->shared = proto->shared;
	m->accept = accept;
	m->pid = getpid();
	m->n = cfg->workers;
	m->generation = 1;
	sigprocmask(SIG_SETMASK, NULL, &m->oldmask);	/* what gw_master_free() restores */
	if (gw_privileges_check(cfg, error_r) < 0 || gw_listen_addresses_free(cfg, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < m->n; i++) {
		if (gw_listen_fds_bind(&m->slot[i].fds, cfg, true, error_r) < 0)
			return -1;	/* gw_master_free() closes the slots bound before */
	}
	gw_privileges_no_core();
	sigemptyset(&m->waited);
	sigaddset(&m->waited, SIGCHLD);
	sigaddset(&m->waited, SIGTERM);
	sigaddset(&m->waited, SIGINT);
	sigaddset(&m->waited, SIGHUP);
	sigprocmask(SIG_BLOCK, &m->waited, NULL);
	return 0;
}

static void __attribute__((noreturn))
worker_main(struct gw_master *m, unsigned i)
{
	struct gw_worker *w = m->proto;
	struct gw_listen_fds fds = m->slot[i].fds;
	const char *error = NULL;
	sigset_t mask = m->oldmask;

	/* The other workers' sockets: never accepted on here, and held here they would
	 * outlive their own worker's and the master's close at a stop, staying in the
	 * kernel's SO_REUSEPORT group with a share of new connections nobody accepts. */
	for (unsigned j = 0; j < m->n; j++)
		if (j != i)
			gw_listen_fds_close(&m->slot[j].fds);
	gw_daemon_forget();
	signal(SIGHUP, SIG_IGN);	/* the master's to take; a pending one is dropped */
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_SETMASK, &mask, NULL);	/* SIGCHLD back; see the file's header */
	if (gw_privileges_drop(m->cfg, GW_PRIV_SERVER, &error) < 0) {
		log_error("worker=%u: %s", i + 1, error);
		exit(1);
	}
	/* After the drop, which clears it: a worker whose master is gone (kill -9) stops as
	 * if told to. Then the check for a master that died before it was set. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != m->pid) {
		log_error("worker=%u: the master is gone before the worker started", i + 1);
		exit(1);
	}
	if (gw_worker_start(w, i + 1, &fds, m->accept, &error) < 0) {
		log_error("worker=%u: %s", i + 1, error);
		gw_listen_fds_close(&fds);
		gw_worker_free(w);
		exit(1);
	}
	sigprocmask(SIG_SETMASK, &m->oldmask, NULL);	/* its ev_signals watch them now */
	log_info("worker=%u started (pid %d)", i + 1, (int)getpid());
	gw_worker_run(w);
	gw_worker_free(w);
	log_info("worker=%u stopped", i + 1);
	exit(0);
}

int
gw_master_spawn(struct gw_master *m, unsigned i, const char **error_r)
{
	static char error[200];
	pid_t pid;

	if (i >= m->n || m->slot[i].pid != 0 || m->slot[i].fds.n == 0) {
		snprintf(error, sizeof(error), "worker=%u: no such slot, or it is running or has "
		    "no sockets", i + 1);
		*error_r = error;
		return -1;
	}
	fflush(NULL);		/* nothing buffered is written twice */
	if ((pid = fork()) < 0) {
		snprintf(error, sizeof(error), "worker=%u: fork: %s", i + 1, strerror(errno));
		*error_r = error;
		return -1;
	}
	if (pid == 0)
		worker_main(m, i);
	m->slot[i].pid = pid;
	m->slot[i].started = now_mono();
	m->slot[i].restart_at = 0;
	m->alive++;
	return 0;
}

void
gw_master_stop(struct gw_master *m, int sig)
{
	if (!m->stopping)
		gw_notify_stopping();
	m->stopping = true;
	/* Retiring workers are draining already, with no deadline: a stop gives them a
	 * deadline, their own generation's [server] shutdown_timeout. */
	for (unsigned r = 0; r < m->nretired; r++)
		if (kill(m->retired[r], sig) < 0 && errno != ESRCH)
			log_error("pid %d: kill: %s (the master needs CAP_KILL over its "
			    "workers)", (int)m->retired[r], strerror(errno));
	gw_metrics_http_close();	/* the workers close theirs as they stop */
	for (unsigned i = 0; i < m->n; i++) {
		m->slot[i].restart_at = 0;
		if (m->slot[i].pid > 0 && kill(m->slot[i].pid, sig) < 0 && errno != ESRCH)
			log_error("worker=%u (pid %d): kill: %s (the master needs CAP_KILL over its "
			    "workers)", i + 1, (int)m->slot[i].pid,
			    strerror(errno));
		/* The workers close theirs as they stop; held here, the kernel would go on
		 * completing handshakes into queues nobody accepts, for the whole drain. */
		gw_listen_fds_close(&m->slot[i].fds);
	}
}

/* Slot i's worker is gone (or could not be forked): when it starts again, in the log line's
 * words (buf), and restart_at set. */
static const char *
schedule(struct gw_master *m, unsigned i, double ran, char *buf, size_t size)
{
	struct gw_master_slot *slot = &m->slot[i];
	unsigned delay = gw_backoff_next(&slot->backoff, ran);

	slot->restart_at = now_mono() + delay;	/* > 0: the clock counts from boot */
	if (delay == 0)
		snprintf(buf, size, "starting another now");
	else
		snprintf(buf, size, "it keeps dying soon after its start (%u times in a row): "
		    "starting another in %u s", slot->backoff.quick, delay);
	return buf;
}

/* pid was an older generation's worker (or nobody's we know): it is no longer waited for. */
static void
retired_ended(struct gw_master *m, pid_t pid, int status)
{
	unsigned r;

	for (r = 0; r < m->nretired && m->retired[r] != pid; r++)
		;
	if (r == m->nretired)
		return;
	m->retired[r] = m->retired[--m->nretired];
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("pid %d, a worker of an earlier configuration, finished its sessions "
		    "(%u such left)", (int)pid, m->nretired);
	else if (WIFSIGNALED(status))
		log_error("pid %d, a worker of an earlier configuration, was killed by signal %d",
		    (int)pid, WTERMSIG(status));
	else
		log_error("pid %d, a worker of an earlier configuration, exited with status %d",
		    (int)pid, WEXITSTATUS(status));
}

/* A worker ended: what it says, and when its slot is forked again. Its sockets stay (see
 * master.h). */
static void
reaped(struct gw_master *m, pid_t pid, int status)
{
	char when[120];
	double ran;
	unsigned i;

	/* Its open sessions are gone with it (a kill -9 never decremented them). */
	gw_metrics_forget_pid(pid);
	/* Whatever child it was, what it held in the shared table is free now: the next
	 * worker to use the table frees it (the master never locks it: workers write it). */
	if (m->shared != NULL)
		gw_shared_note_reaped(m->shared, pid);
	for (i = 0; i < m->n && m->slot[i].pid != pid; i++)
		;
	if (i == m->n) {
		retired_ended(m, pid, status);
		return;
	}
	m->slot[i].pid = 0;
	m->alive--;
	if (m->stopping) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			log_debug("worker=%u (pid %d) stopped", i + 1, (int)pid);
			return;
		}
		m->failed = true;
		if (WIFSIGNALED(status))
			log_error("worker=%u (pid %d) was killed by signal %d while stopping",
			    i + 1, (int)pid, WTERMSIG(status));
		else
			log_error("worker=%u (pid %d) exited with status %d while stopping",
			    i + 1, (int)pid, WEXITSTATUS(status));
		return;
	}
	ran = now_mono() - m->slot[i].started;
	schedule(m, i, ran, when, sizeof(when));
	if (WIFSIGNALED(status))
		log_error("worker=%u (pid %d) was killed by signal %d after %.0f s: its sessions "
		    "are lost; %s", i + 1, (int)pid, WTERMSIG(status), ran, when);
	else
		log_error("worker=%u (pid %d) exited with status %d after %.0f s: its sessions "
		    "are lost; %s", i + 1, (int)pid, WEXITSTATUS(status), ran, when);
}

/* Is a stop waiting to be taken? Then no worker is forked first. */
static bool
stop_pending(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* Forks the slots whose restart is due. Returns the seconds until the next one that is not,
 * or -1 when none waits. */
static double
restart_due(struct gw_master *m)
{
	double next = -1;

	for (unsigned i = 0; i < m->n; i++) {
		struct gw_master_slot *slot = &m->slot[i];
		const char *error = NULL;
		char when[120];
		double left;

		if (m->stopping || slot->pid != 0 || slot->restart_at <= 0)
			continue;
		if ((left = slot->restart_at - now_mono()) <= 0 && stop_pending())
			return 0;	/* the SIGTERM first: nothing starts after a stop began */
		if (left <= 0) {
			if (gw_master_spawn(m, i, &error) == 0)
				continue;
			/* fork failed (EAGAIN: a process or memory limit): as a death at start */
			log_error("%s; %s", error, schedule(m, i, 0, when, sizeof(when)));
			left = slot->restart_at - now_mono();
		}
		if (next < 0 || left < next)
			next = left > 0 ? left : 0;
	}
	return next;
}

static void
reap_all(struct gw_master *m)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			return;
		reaped(m, pid, status);
	}
}

/* A dup of the socket the serving slot i listens on want with; -1 when it has none. *held:
 * whether any serving slot listens there. */
static int
serving_socket(const struct gw_master *m, unsigned i, const struct gw_listen *want, bool *held)
{
	int fd = -1;

	*held = false;
	for (unsigned k = 0; k < m->n; k++) {
		for (size_t a = 0; a < m->slot[k].fds.n; a++) {
			if (m->slot[k].fds.fd[a] < 0 ||
			    !gw_listen_same_address(&m->cfg->listen[a], want))
				continue;
			*held = true;
			if (k == i)
				fd = fcntl(m->slot[k].fds.fd[a], F_DUPFD_CLOEXEC, 3);
		}
	}
	return fd;
}

/* The sockets a new generation (cfg) starts on, into fresh[0 .. cfg->workers): slot i keeps
 * the socket the serving slot i has for the same address (a dup: the old worker closes its
 * own as it retires; connections queued there are the new worker's), and binds a new one
 * where it has none, joining the SO_REUSEPORT group of an address some slot holds, or, for
 * an address none holds, after the check that nobody else listens there. A slot dropped
 * (fewer workers) or an address dropped closes with the old generation. 0, or -1 with
 * *error_r and nothing of fresh left open. */
static int
rebind(struct gw_master *m, const struct gw_config *cfg, struct gw_master_slot *fresh,
    const char **error_r)
{
	static char error[300];

	for (unsigned i = 0; i < cfg->workers; i++) {
		memset(&fresh[i], 0, sizeof(fresh[i]));
		for (size_t j = 0; j < GW_LISTEN_MAX; j++)
			fresh[i].fds.fd[j] = -1;
	}
	for (unsigned i = 0; i < cfg->workers; i++) {
		struct gw_listen_fds *f = &fresh[i].fds;

		f->n = cfg->nlisten;
		for (size_t j = 0; j < cfg->nlisten; j++) {
			const struct gw_listen *want = &cfg->listen[j];
			bool held;
			int fd = serving_socket(m, i, want, &held);

			/* A slot without one joins the address's SO_REUSEPORT group. An address
			 * nobody here holds yet is checked once, before slot 0 binds it; the later
			 * slots join slot 0's. */
			if (fd < 0 && (held || i > 0 || gw_listen_address_free(want, error_r) == 0))
				fd = gw_listen_fd_bind(want, true, error_r);
			if (fd < 0) {
				if (*error_r == NULL) {
					snprintf(error, sizeof(error), "listen on %s: %s", want->text,
					    strerror(errno));
					*error_r = error;
				}
				for (unsigned k = 0; k <= i; k++)
					gw_listen_fds_close(&fresh[k].fds);
				return -1;
			}
			f->fd[j] = fd;
		}
	}
	return 0;
}

static bool
str_differs(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

/* What a reload cannot change, said rather than ignored: set up once at the start (the log's
 * destination, the scrape sockets, the size of the shared limits table). */
static void
warn_start_only(const struct gw_config *old, const struct gw_config *cfg,
    const struct gw_shared *shared)
{
	bool metrics = old->nmetrics_listen != cfg->nmetrics_listen;

	for (size_t i = 0; !metrics && i < cfg->nmetrics_listen; i++)
		metrics = !gw_listen_same_address(&old->metrics_listen[i], &cfg->metrics_listen[i]);
	if (str_differs(old->log_target, cfg->log_target) || old->log_facility !=
	    cfg->log_facility || str_differs(old->log_ident, cfg->log_ident))
		log_warn("reload: [log] target, facility and ident take effect at the next start");
	if (metrics)
		log_warn("reload: [metrics] listen takes effect at the next start");
	if (shared != NULL && gw_shared_cap_for(cfg->max_sessions, cfg->workers) >
	    gw_shared_cap(shared))
		log_warn("reload: the shared limits table was sized at the start for fewer sessions "
		    "than [limits] max_sessions x [server] workers now allow; restart popgate when "
		    "they grow (until then, logins beyond its room get -ERR [SYS/TEMP])");
	if (str_differs(old->pid_file, cfg->pid_file))
		log_warn("reload: [server] pid_file takes effect at the next start");
}

/* An old generation's worker: told to retire once the new one runs (SIGUSR2), waited for. */
static void
retire(struct gw_master *m, pid_t pid)
{
	if (m->nretired == GW_RETIRED_MAX) {
		log_warn("%u workers of earlier configurations still run: pid %d is no longer "
		    "waited for", GW_RETIRED_MAX, (int)m->retired[0]);
		memmove(&m->retired[0], &m->retired[1], (GW_RETIRED_MAX - 1) * sizeof(pid_t));
		m->nretired--;
	}
	m->retired[m->nretired++] = pid;
}

/* SIGHUP: the ini and the keys again, a new generation on the same sockets, the old one
 * retired; or, when anything fails, a log line and the serving generation unchanged. */
static void
reload(struct gw_master *m)
{
	struct gw_master_slot fresh[GW_WORKERS_MAX];
	struct gw_config *cfg = calloc(1, sizeof(*cfg));
	struct gw_worker *proto = calloc(1, sizeof(*proto));
	unsigned first_retired = m->nretired, spawned = 0;
	const char *error = NULL;
	char status[160];

	gw_notify_reloading();
	log_info("SIGHUP: reloading %s", m->path);
	if (cfg == NULL || proto == NULL) {
		error = "out of memory";
		goto refused;
	}
	if (gw_config_load(cfg, m->path, &error) < 0)
		goto refused;
	if (!cfg->master) {
		error = "[server] master = no is taken at a start, not at a reload";
		goto refused;
	}
	if (gw_nofile_check(cfg, true, &error) < 0 || gw_privileges_check(cfg, &error) < 0 ||
	    gw_worker_load(proto, cfg, &error) < 0)
		goto refused;
	gw_worker_keep_shared(proto, m->proto);
	if (rebind(m, cfg, fresh, &error) < 0)
		goto refused;

	warn_start_only(m->cfg, cfg, m->shared);
	/* Taken. The serving generation retires: its pids are waited for, its sockets here
	 * are closed (the new slots hold dups), and it is told once the new one is forked. */
	for (unsigned i = 0; i < m->n; i++) {
		if (m->slot[i].pid > 0)
			retire(m, m->slot[i].pid);
		gw_listen_fds_close(&m->slot[i].fds);
		memset(&m->slot[i], 0, sizeof(m->slot[i]));
	}
	gw_worker_free(m->proto);
	free(m->proto);
	gw_config_free(m->cfg);
	free(m->cfg);
	m->cfg = cfg;
	m->proto = proto;
	m->n = cfg->workers;
	m->alive = 0;
	m->generation++;
	memcpy(m->slot, fresh, m->n * sizeof(fresh[0]));
	log_set_level(cfg->log_level);
	for (unsigned i = 0; i < m->n; i++) {
		char when[120];

		if (gw_master_spawn(m, i, &error) == 0)
			spawned++;
		else
			log_error("%s; %s", error, schedule(m, i, 0, when, sizeof(when)));
	}
	for (unsigned r = first_retired; r < m->nretired; r++)
		if (kill(m->retired[r], SIGUSR2) < 0 && errno != ESRCH)
			log_error("pid %d: kill: %s (the master needs CAP_KILL over its "
			    "workers)", (int)m->retired[r], strerror(errno));
	log_info("reloaded: configuration %u, %u of %u workers started; %u workers of earlier "
	    "configurations finish their sessions", m->generation, spawned, m->n,
	    m->nretired);
	snprintf(status, sizeof(status), "serving, %u workers, configuration %u", m->n,
	    m->generation);
	gw_notify_ready(status);
	return;

refused:
	log_error("reload refused, the configuration in use keeps serving: %s", error);
	if (proto != NULL) {
		if (proto->cfg != NULL)
			gw_worker_free(proto);
		free(proto);
	}
	if (cfg != NULL) {
		gw_config_free(cfg);
		free(cfg);
	}
	gw_notify_ready("serving; the last reload was refused (see the log)");
}

int
gw_master_run(struct gw_master *m)
{
	for (;;) {
		double wait = restart_due(m);
		siginfo_t si;
		int sig;

		if (m->alive == 0 && m->nretired == 0 && wait < 0)
			break;			/* stopped (nothing is restarted then) */
		if (wait >= 0) {
			struct timespec ts = {
				.tv_sec = (time_t)wait,
				.tv_nsec = (long)((wait - (time_t)wait) * 1e9),
			};

			sig = sigtimedwait(&m->waited, &si, &ts);
		} else {
			sig = sigwaitinfo(&m->waited, &si);
		}
		if (sig < 0) {
			if (errno != EINTR && errno != EAGAIN)
				log_warn("sigtimedwait: %s", strerror(errno));
			continue;		/* EAGAIN: a restart is due */
		}
		/* Workers that ended: several may have for one SIGCHLD, and one may have just
		 * before a SIGTERM that came first (the lower signal number is taken first): it
		 * died while serving, not while stopping. */
		reap_all(m);
		if (sig == SIGHUP && (m->stopping || stop_pending()))
			log_info("SIGHUP while stopping: not reloading");
		else if (sig == SIGHUP)
			reload(m);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!m->stopping)
				log_info("signal %d: stopping %u workers", sig, m->alive);
			gw_master_stop(m, sig);
		}
	}
	return m->stopping && !m->failed ? 0 : 1;
}

void
gw_master_free(struct gw_master *m)
{
	for (unsigned i = 0; i < m->n; i++)
		gw_listen_fds_close(&m->slot[i].fds);
	if (m->proto != NULL) {
		gw_worker_free(m->proto);
		free(m->proto);
	}
	if (m->cfg != NULL) {
		gw_config_free(m->cfg);
		free(m->cfg);
	}
	m->proto = NULL;
	m->cfg = NULL;
	sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
}
