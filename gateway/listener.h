/* gateway/listener.h: the listening sockets of a worker and accept().
 *
 * Binding and watching are apart: the process binds every listen address (once per worker,
 * with SO_REUSEPORT when there are several) before it drops privileges and forks; a worker
 * then watches the set that is its own (gateway/master.h). */
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

/* One bound socket per [server] listen address: fd[i] listens on cfg->listen[i]; -1 when
 * closed. */
struct gw_listen_fds {
	int fd[GW_LISTEN_MAX];
	size_t n;
};

/* Before the workers bind with SO_REUSEPORT: does anything listen on a listen address? A
 * second popgate (or any server) bound with SO_REUSEPORT by the same user would otherwise
 * let ours join its group, and the two would split the connections without a word. A
 * bind without SO_REUSEPORT says so, unless only connections of a stopped server are left
 * there: then no socket in the kernel's table listens on that port. 0, or -1 with *error_r
 * (static storage). Not for addresses this process already holds (a reload). */
int gw_listen_addresses_free(const struct gw_config *cfg, const char **error_r);
/* The same check for one address (a reload's new one). */
int gw_listen_address_free(const struct gw_listen *conf, const char **error_r);
/* Do a and b name the same socket address (family, address, port)? */
bool gw_listen_same_address(const struct gw_listen *a, const struct gw_listen *b);
/* One listening socket on conf (non-blocking, close-on-exec; see below for reuseport): the
 * fd, or -1 with *error_r (static storage). */
int gw_listen_fd_bind(const struct gw_listen *conf, bool reuseport, const char **error_r);
/* Binds and listens on every [server] listen address (called before privileges are
 * dropped: privileged ports). reuseport: SO_REUSEPORT, so that each worker binds its own
 * socket to the same address and the kernel spreads connections over them. 0, or -1 with
 * *error_r (static storage) and nothing left open. */
int gw_listen_fds_bind(struct gw_listen_fds *f, const struct gw_config *cfg, bool reuseport,
    const char **error_r);
/* Closes what is open; the set is then empty (every fd -1). */
void gw_listen_fds_close(struct gw_listen_fds *f);

/* Watches the bound sockets of fds, which the listeners now own (*fds is emptied). Watching
 * starts with gw_listeners_pause(false). */
void gw_listeners_open(struct gw_listeners *ls, struct ev_loop *loop, const struct gw_config *cfg,
    struct gw_listen_fds *fds, gw_accept_fn *accept, void *ctx);
void gw_listeners_close(struct gw_listeners *ls);
/* Accepts what waits in the sockets' queues now (a retiring worker, before it closes them: a
 * socket a reload dropped would reset its queue). */
void gw_listeners_take_queued(struct gw_listeners *ls);
void gw_listeners_pause(struct gw_listeners *ls, bool pause);

#endif
