/* gateway/io.c: libev glue for a conn; see io.h. */
#include <errno.h>
#include <unistd.h>

#include "io.h"

void
gw_io_init(struct gw_io *io, struct ev_loop *loop, int fd, size_t in_max, size_t out_max,
    void (*cb)(struct ev_loop *, ev_io *, int), void *data)
{
	conn_init(&io->c, fd, in_max, out_max);
	io->loop = loop;
	ev_io_init(&io->w, cb, fd, 0);
	io->w.data = data;
	gw_io_update(io);
}

int
gw_io_connect(struct gw_io *io, struct ev_loop *loop, const struct sockaddr_storage *addr,
    socklen_t addrlen, size_t in_max, size_t out_max,
    void (*cb)(struct ev_loop *, ev_io *, int), void *data)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, addrlen) < 0 && errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	io->connecting = true;
	gw_io_init(io, loop, fd, in_max, out_max, cb, data);
	return 0;
}

int
gw_io_connected(struct gw_io *io)
{
	int err = conn_connect_error(&io->c);

	if (err == 0) {
		io->connecting = false;
		gw_io_update(io);
	}
	return err;
}

void
gw_io_update(struct gw_io *io)
{
	int ev = 0;

	if (io->loop == NULL || io->c.fd < 0)
		return;
	if (io->connecting)
		ev = EV_WRITE;		/* connect() completes by becoming writable */
	else if (conn_want_read(&io->c))
		ev |= EV_READ;
	if (!io->connecting && conn_want_write(&io->c))
		ev |= EV_WRITE;
	if (ev != (io->w.events & (EV_READ | EV_WRITE)) || (ev == 0) != !ev_is_active(&io->w)) {
		ev_io_stop(io->loop, &io->w);
		if (ev != 0) {
			ev_io_set(&io->w, io->c.fd, ev);
			ev_io_start(io->loop, &io->w);
		}
	}
	/* Two things epoll will not report, so the callback is called for them as if the socket
	 * were readable: a TLS record that did not fit the input buffer, waiting decrypted inside
	 * OpenSSL, and a handshake that some write finished (the owner acts on it in its
	 * callback, through conn_tls_established()). ev_io_stop() drops a fed event, so a
	 * closed io is never called. */
	if (((ev & EV_READ) && conn_tls_pending(&io->c)) || io->c.tls_news)
		ev_feed_event(io->loop, &io->w, EV_READ);
}

void
gw_io_close(struct gw_io *io)
{
	if (io->loop == NULL)
		return;			/* never opened, or closed already */
	ev_io_stop(io->loop, &io->w);
	conn_close(&io->c);
	io->loop = NULL;
	io->connecting = false;
}

bool
gw_io_open(const struct gw_io *io)
{
	return io->loop != NULL && io->c.fd >= 0;
}
