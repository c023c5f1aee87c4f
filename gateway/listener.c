/* gateway/listener.c: listening sockets and accept().
 *
 * Sockets are bound by the master before privileges are dropped (privileged ports). On
 * EMFILE/ENFILE the listeners pause for a second and one line is logged, instead of
 * spinning on a readable listen socket (libev's "accept()ing when you can't"). */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "session.h"
#include "worker.h"

#define LISTEN_BACKLOG 1024
#define ACCEPT_BACKOFF 1.0	/* seconds without accepting after EMFILE */
#define ACCEPT_BATCH 64		/* accepts per wakeup, so one listener cannot starve the loop */

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_listener *l = io->data;
	struct gw_worker *w = l->w;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH && !w->accept_paused; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			gw_session_new(w, fd, &ss, l->tls);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("accept on %s: %s: pausing new connections for %.0f s", l->conf->text,
			    strerror(errno), ACCEPT_BACKOFF);
			gw_listeners_pause(w, true);
			ev_timer_set(&w->accept_backoff, ACCEPT_BACKOFF, 0.);
			ev_timer_start(w->loop, &w->accept_backoff);
		}
		return;	/* EAGAIN, or an error for this one connection */
	}
}

static void
backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_worker *w = t->data;

	(void)loop;
	(void)revents;
	gw_listeners_pause(w, false);
}

void
gw_listeners_pause(struct gw_worker *w, bool pause)
{
	w->accept_paused = pause;
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].fd < 0)
			continue;
		if (pause)
			ev_io_stop(w->loop, &w->listeners[i].io);
		else
			ev_io_start(w->loop, &w->listeners[i].io);
	}
}

int
gw_listeners_open(struct gw_worker *w, const char **error_r)
{
	static char error[300];
	const struct gw_config *cfg = w->cfg;

	ev_init(&w->accept_backoff, backoff_cb);
	w->accept_backoff.data = w;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct gw_listen *conf = &cfg->listen[i];
		struct gw_listener *l = &w->listeners[i];
		int one = 1, fd;

		l->fd = -1;
		fd = socket(conf->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    (conf->addr.ss_family == AF_INET6 &&
		     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
		    bind(fd, (const struct sockaddr *)&conf->addr, conf->addrlen) < 0 ||
		    listen(fd, LISTEN_BACKLOG) < 0) {
			snprintf(error, sizeof(error), "listen on %s: %s", conf->text, strerror(errno));
			if (fd >= 0)
				close(fd);
			*error_r = error;
			return -1;
		}
		l->w = w;
		l->fd = fd;
		l->tls = conf->tls;
		l->conf = conf;
		w->nlisteners = i + 1;
		ev_io_init(&l->io, accept_cb, fd, EV_READ);
		l->io.data = l;
		log_info("listening on %s%s", conf->text, conf->tls ? " (implicit TLS)" : "");
	}
	return 0;
}

void
gw_listeners_close(struct gw_worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].fd < 0)
			continue;
		if (w->loop != NULL)
			ev_io_stop(w->loop, &w->listeners[i].io);
		close(w->listeners[i].fd);
		w->listeners[i].fd = -1;
	}
	if (w->loop != NULL)
		ev_timer_stop(w->loop, &w->accept_backoff);
}
