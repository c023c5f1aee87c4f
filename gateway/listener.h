/* gateway/listener.h: the listening sockets of a worker and accept(). */
#ifndef POPGATE_LISTENER_H
#define POPGATE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>

#include "config.h"

/* A new connection: takes ownership of fd. */
typedef void gw_accept_fn(void *ctx, int fd, const struct sockaddr_storage *addr, bool tls);

struct gw_listener {
	struct gw_listeners *set;
	int fd;
	bool tls;
	ev_io io;
	const struct gw_listen *conf;
};

struct gw_listeners {
	struct ev_loop *loop;
	struct gw_listener l[GW_LISTEN_MAX];
	size_t n;
	ev_timer backoff;		/* EMFILE: paused, resumed by this */
	bool paused;
	gw_accept_fn *accept;
	void *ctx;
};

/* Binds every [server] listen address (called before privileges are dropped); watching
 * starts with gw_listeners_pause(false). 0, or -1 with *error_r. */
int gw_listeners_open(struct gw_listeners *ls, struct ev_loop *loop, const struct gw_config *cfg,
    gw_accept_fn *accept, void *ctx, const char **error_r);
void gw_listeners_close(struct gw_listeners *ls);
void gw_listeners_pause(struct gw_listeners *ls, bool pause);

#endif
