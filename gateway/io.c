/* gateway/io.c: libev glue for a conn; see io.h. */
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

void
gw_io_update(struct gw_io *io)
{
	int ev = 0;

	if (io->loop == NULL || io->c.fd < 0)
		return;
	if (conn_want_read(&io->c))
		ev |= EV_READ;
	if (conn_want_write(&io->c))
		ev |= EV_WRITE;
	if (ev == (io->w.events & (EV_READ | EV_WRITE)) && (ev == 0) == !ev_is_active(&io->w))
		return;
	ev_io_stop(io->loop, &io->w);
	if (ev != 0) {
		ev_io_set(&io->w, io->c.fd, ev);
		ev_io_start(io->loop, &io->w);
	}
}

void
gw_io_close(struct gw_io *io)
{
	if (io->loop == NULL)
		return;			/* never opened, or closed already */
	ev_io_stop(io->loop, &io->w);
	conn_close(&io->c);
	io->loop = NULL;
}

bool
gw_io_open(const struct gw_io *io)
{
	return io->loop != NULL && io->c.fd >= 0;
}
