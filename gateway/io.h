/* gateway/io.h: a conn (common/conn.h) under a libev watcher. gw_io_update() makes the
 * watcher ask for exactly the readiness the conn needs; nothing else in gateway/ touches
 * ev_io_set. */
#ifndef POPGATE_IO_H
#define POPGATE_IO_H

#include <sys/socket.h>

#include <ev.h>

#include "../common/conn.h"

struct gw_io {
	struct conn c;
	ev_io w;
	struct ev_loop *loop;
	bool connecting;		/* gw_io_connect() until gw_io_connected() */
};

/* Wraps fd (non-blocking) and starts watching it; cb gets the io's ev_io. */
void gw_io_init(struct gw_io *io, struct ev_loop *loop, int fd, size_t in_max, size_t out_max,
    void (*cb)(struct ev_loop *, ev_io *, int), void *data);
/* Opens a non-blocking TCP connection to addr and watches for its completion: cb runs
 * when the socket is writable, and calls gw_io_connected(). 0, or -1 with errno set. */
int gw_io_connect(struct gw_io *io, struct ev_loop *loop, const struct sockaddr_storage *addr,
    socklen_t addrlen, size_t in_max, size_t out_max,
    void (*cb)(struct ev_loop *, ev_io *, int), void *data);
/* The connect's outcome: 0 (from now on the watcher follows the conn), or its errno. */
int gw_io_connected(struct gw_io *io);
/* Re-arms the watcher for what the conn wants now (stops it when it wants nothing). */
void gw_io_update(struct gw_io *io);
/* Stops the watcher and closes the conn. Safe on a zeroed (never opened) io, and twice. */
void gw_io_close(struct gw_io *io);
bool gw_io_open(const struct gw_io *io);

#endif
