/* gateway/listener.c: listening sockets and accept().
 *
 * Sockets are bound before privileges are dropped (privileged ports), once per worker. On
 * EMFILE/ENFILE the listeners pause for a second and one line is logged, instead of
 * spinning on a readable listen socket (libev's "accept()ing when you can't"). */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "listener.h"

#define LISTEN_BACKLOG 1024
#define ACCEPT_BACKOFF 1.0	/* seconds without accepting after EMFILE */
#define ACCEPT_BATCH 64		/* accepts per wakeup, so one listener cannot starve the loop */

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_listener *l = io->data;
	struct gw_listeners *ls = l->set;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH && !ls->paused; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			ls->accept(ls->ctx, fd, &ss, l->tls);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("accept on %s: %s: pausing new connections for %.0f s", l->conf->text,
			    strerror(errno), ACCEPT_BACKOFF);
			gw_listeners_pause(ls, true);
			ev_timer_set(&ls->backoff, ACCEPT_BACKOFF, 0.);
			ev_timer_start(ls->loop, &ls->backoff);
		}
		return;	/* EAGAIN, or an error for this one connection */
	}
}

void
gw_listeners_take_queued(struct gw_listeners *ls)
{
	for (size_t i = 0; i < ls->n && !ls->paused; i++) {
		struct gw_listener *l = &ls->l[i];

		/* Bounded: the backlog's worth (connections keep coming while we take them). */
		for (int k = 0; l->fd >= 0 && k < LISTEN_BACKLOG; k++) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
			    SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd >= 0)
				ls->accept(ls->ctx, fd, &ss, l->tls);
			else if (errno != EINTR && errno != ECONNABORTED)
				break;		/* EAGAIN: empty; EMFILE: the rest are lost */
		}
	}
}

static void
backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_listeners *ls = t->data;

	(void)loop;
	(void)revents;
	gw_listeners_pause(ls, false);
}

void
gw_listeners_pause(struct gw_listeners *ls, bool pause)
{
	ls->paused = pause;
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->l[i].fd < 0)
			continue;
		if (pause)
			ev_io_stop(ls->loop, &ls->l[i].io);
		else
			ev_io_start(ls->loop, &ls->l[i].io);
	}
}

/* Does a socket listen on TCP port `port`, on any address (/proc/net/tcp and tcp6, state
 * 0A: LISTEN)? Read, never connected to: no packet leaves, nothing can block, and neither a
 * firewall nor a device binding changes the answer. A table that cannot be read answers
 * yes (refused with the reason rather than started beside another server). */
static bool
port_has_listener(uint16_t port)
{
	static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		char line[512];
		FILE *f = fopen(tables[t], "re");

		if (f == NULL)
			return true;
		while (fgets(line, sizeof(line), f) != NULL) {
			unsigned lport, st;

			/* "  0: 0100007F:006E 00000000:0000 0A ..." (the header line does not scan) */
			if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport, &st) == 2 &&
			    st == 0x0A && lport == port) {
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	return false;
}

static uint16_t
listen_port(const struct gw_listen *conf)
{
	if (conf->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&conf->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&conf->addr)->sin_port);
}

int
gw_listen_address_free(const struct gw_listen *conf, const char **error_r)
{
	static char error[300];
	int one = 1, fd, err;

	/* Bound without SO_REUSEPORT, a probe fails with EADDRINUSE while any socket listens
	 * there (this address, the wildcard, or a specific one under our wildcard), with the
	 * option or without it; SO_REUSEADDR lets it past connections of an earlier run still
	 * in TIME_WAIT, unless that server set SO_REUSEPORT alone: then the kernel's table of
	 * listeners tells. */
	fd = socket(conf->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (conf->addr.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&conf->addr, conf->addrlen) < 0) {
		err = errno;
		if (fd >= 0)
			close(fd);
		if (err == EADDRINUSE && !port_has_listener(listen_port(conf)))
			return 0;	/* a stopped server's connections: the binds decide */
		snprintf(error, sizeof(error), "listen on %s: %s%s", conf->text, strerror(err),
		    err == EADDRINUSE ? " (another popgate, or another server, listens there)" :
		    "");
		*error_r = error;
		return -1;
	}
	close(fd);
	return 0;
}

int
gw_listen_addresses_free(const struct gw_config *cfg, const char **error_r)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (gw_listen_address_free(&cfg->listen[i], error_r) < 0)
			return -1;
	return 0;
}

bool
gw_listen_same_address(const struct gw_listen *a, const struct gw_listen *b)
{
	return a->addrlen == b->addrlen && a->addr.ss_family == b->addr.ss_family &&
	    memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

int
gw_listen_fd_bind(const struct gw_listen *conf, bool reuseport, const char **error_r)
{
	static char error[300];
	int one = 1, fd;

	fd = socket(conf->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
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
	return fd;
}

int
gw_listen_fds_bind(struct gw_listen_fds *f, const struct gw_config *cfg, bool reuseport,
    const char **error_r)
{
	for (size_t i = 0; i < GW_LISTEN_MAX; i++)
		f->fd[i] = -1;
	f->n = 0;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		int fd = gw_listen_fd_bind(&cfg->listen[i], reuseport, error_r);

		if (fd < 0) {
			gw_listen_fds_close(f);
			return -1;
		}
		f->fd[i] = fd;
		f->n = i + 1;
	}
	return 0;
}

void
gw_listen_fds_close(struct gw_listen_fds *f)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->fd[i] >= 0)
			close(f->fd[i]);
		f->fd[i] = -1;
	}
	f->n = 0;
}

void
gw_listeners_open(struct gw_listeners *ls, struct ev_loop *loop, const struct gw_config *cfg,
    struct gw_listen_fds *fds, gw_accept_fn *accept, void *ctx)
{
	memset(ls, 0, sizeof(*ls));
	ls->loop = loop;
	ls->accept = accept;
	ls->ctx = ctx;
	for (size_t i = 0; i < GW_LISTEN_MAX; i++)
		ls->l[i].fd = -1;
	ev_init(&ls->backoff, backoff_cb);
	ls->backoff.data = ls;
	for (size_t i = 0; i < fds->n; i++) {
		const struct gw_listen *conf = &cfg->listen[i];
		struct gw_listener *l = &ls->l[i];

		l->set = ls;
		l->fd = fds->fd[i];
		l->tls = conf->tls;
		l->conf = conf;
		fds->fd[i] = -1;
		ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
		l->io.data = l;
	}
	ls->n = fds->n;
	fds->n = 0;
}

void
gw_listeners_close(struct gw_listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->l[i].fd < 0)
			continue;
		if (ls->loop != NULL)
			ev_io_stop(ls->loop, &ls->l[i].io);
		close(ls->l[i].fd);
		ls->l[i].fd = -1;
	}
	if (ls->loop != NULL)
		ev_timer_stop(ls->loop, &ls->backoff);
}
