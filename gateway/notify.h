/* gateway/notify.h: telling the service manager where popgate is (systemd's sd_notify(3):
 * READY=1, RELOADING=1, STOPPING=1, with a STATUS= line for `systemctl status`), and the
 * parent of -d that the start is done (gateway/daemon.h).
 *
 * Only the process systemd started speaks (the master, or the one process with [server]
 * master = no): the unit's NotifyAccess=main would drop a worker's words. Without
 * $NOTIFY_SOCKET every call does nothing. */
#ifndef POPGATE_NOTIFY_H
#define POPGATE_NOTIFY_H

/* Listening and serving: after the workers are forked (or the one process serves). Also
 * ends the wait of -d's parent, which then exits 0. */
void gw_notify_ready(const char *status);
/* SIGHUP taken: a reload runs; gw_notify_ready() says when it is over, taken or refused. */
void gw_notify_reloading(void);
/* A stop began (the drain of [server] shutdown_timeout follows). */
void gw_notify_stopping(void);

#endif
