/* gateway/master.c: binding for, forking and supervising the workers; see master.h.
 *
 * The supervisor has no event loop: it blocks SIGCHLD, SIGTERM and SIGINT and takes them
 * one at a time with sigtimedwait(), so nothing runs in a signal handler and no signal is
 * lost between two checks; its timeout is the next restart a back-off put off. Blocking
 * them before the first fork also keeps a worker from being killed by a SIGTERM that comes
 * before its loop watches for it: the child keeps SIGTERM and SIGINT blocked until its
 * ev_signals are started, then unblocks them (a pending one is then delivered to libev's
 * handler). */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include <signal.h>

#include "master.h"

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

	return per * cfg->max_sessions + GW_NOFILE_SLACK + (unsigned long long)cfg->nlisten *
	    cfg->workers;
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
gw_master_init(struct gw_master *m, const struct gw_config *cfg, struct gw_worker *proto,
    gw_accept_fn *accept, const char **error_r)
{
	memset(m, 0, sizeof(*m));
	/* A parent that ignored SIGCHLD hands that on through exec: the kernel would reap the
	 * workers itself, and a dead one would never be noticed. */
	signal(SIGCHLD, SIG_DFL);
	m->cfg = cfg;
	m->proto = proto;
	m->shared = proto->shared;
	m->accept = accept;
	m->pid = getpid();
	m->n = cfg->workers;
	if (gw_listen_addresses_free(cfg, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < m->n; i++) {
		if (gw_listen_fds_bind(&m->slot[i].fds, cfg, true, error_r) < 0) {
			for (unsigned j = 0; j < i; j++)
				gw_listen_fds_close(&m->slot[j].fds);
			return -1;
		}
	}
	sigemptyset(&m->waited);
	sigaddset(&m->waited, SIGCHLD);
	sigaddset(&m->waited, SIGTERM);
	sigaddset(&m->waited, SIGINT);
	sigprocmask(SIG_BLOCK, &m->waited, &m->oldmask);
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
	 * outlive their own worker's and the supervisor's close at a stop, staying in the
	 * kernel's SO_REUSEPORT group with a share of new connections nobody accepts. */
	for (unsigned j = 0; j < m->n; j++)
		if (j != i)
			gw_listen_fds_close(&m->slot[j].fds);
	/* A worker whose supervisor is gone (kill -9) stops as if told to. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_SETMASK, &mask, NULL);	/* SIGCHLD back; see the file's header */
	if (getppid() != m->pid) {
		log_error("worker=%u: the supervisor is gone before the worker started", i + 1);
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
	m->stopping = true;
	for (unsigned i = 0; i < m->n; i++) {
		m->slot[i].restart_at = 0;
		if (m->slot[i].pid > 0 && kill(m->slot[i].pid, sig) < 0 && errno != ESRCH)
			log_warn("worker=%u (pid %d): kill: %s", i + 1, (int)m->slot[i].pid,
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

/* A worker ended: what it says, and when its slot is forked again. Its sockets stay (see
 * master.h). */
static void
reaped(struct gw_master *m, pid_t pid, int status)
{
	char when[120];
	double ran;
	unsigned i;
	size_t held;

	/* Whatever child it was, what it held in the shared table is free now: its sessions
	 * are gone, and its pid cannot come back before our next fork. */
	if (m->shared != NULL && (held = gw_shared_forget_pid(m->shared, pid)) > 0)
		log_info("pid %d ended holding %zu entries of the shared limits table (addresses, "
		    "mailboxes in use): freed", (int)pid, held);
	for (i = 0; i < m->n && m->slot[i].pid != pid; i++)
		;
	if (i == m->n)
		return;			/* not a worker's */
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

int
gw_master_run(struct gw_master *m)
{
	for (;;) {
		double wait = restart_due(m);
		siginfo_t si;
		int sig;

		if (m->alive == 0 && wait < 0)
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
	sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
}
