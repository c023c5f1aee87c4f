/* gateway/daemon.h: `popgate -d`, for hosts without systemd: the process detaches (a new
 * session, no controlling terminal, stdin and stdout on /dev/null, the working directory
 * /), writes [server] pid_file, and the command returns only once the gateway serves: 0,
 * or the daemon's exit status when its start failed (said on stderr, which stays what the
 * caller gave: redirect it, or set [log] target = syslog).
 *
 * The PID file is locked (flock) for the daemon's life: a second `popgate -d` with the same
 * file is refused while the first runs, and a file left by a crash does not stop the next
 * start. It is removed when the daemon ends. */
#ifndef POPGATE_DAEMON_H
#define POPGATE_DAEMON_H

/* Forks. The parent waits for gw_daemon_ready() or the child's end, and exits; the child
 * (the daemon) returns 0 once detached and its PID file written, or -1 with *error_r
 * (static storage; it then exits with status 1, which the parent passes on). */
int gw_daemon_start(const char *pid_file, const char **error_r);
/* The start is done: the waiting parent exits 0. Nothing when not daemonized, or after
 * the first call. */
void gw_daemon_ready(void);
/* In a forked worker: closes its copies of the ready pipe and the PID file (the lock and
 * the parent's wait are the daemon's own). */
void gw_daemon_forget(void);
/* The daemon ends: removes the PID file it wrote. */
void gw_daemon_end(void);

#endif
