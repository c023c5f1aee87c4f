/* gateway/io.c: socket readiness -> conn I/O -> events for the owner; see io.h. */
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "metrics.h"

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

void
gw_io_open(struct gw_io *io, struct ev_loop *loop, int fd, size_t in_max, size_t out_max,
    gw_io_fn *fn, void *ctx)
{
	int one = 1;

	memset(io, 0, sizeof(*io));
	/* popgate writes whole replies, or a buffer's worth: Nagle would only hold the last
	 * small segment of a multi-line reply back until the peer's delayed ACK (40 ms on
	 * Linux, 200 ms on Windows), for every LIST or UIDL. Not a TCP socket (a test's
	 * socketpair): nothing to do. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_init(&io->c, fd, in_max, out_max);
	io->loop = loop;
	io->fn = fn;
	io->ctx = ctx;
	io->rx_at = io->tx_at = ev_now(loop);
	ev_io_init(&io->w, io_cb, fd, 0);
	io->w.data = io;
	gw_io_update(io);
}

int
gw_io_connect(struct gw_io *io, struct ev_loop *loop, const struct sockaddr_storage *addr,
    socklen_t addrlen, size_t in_max, size_t out_max, gw_io_fn *fn, void *ctx)
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
	gw_io_open(io, loop, fd, in_max, out_max, fn, ctx);
	io->connecting = true;
	gw_io_update(io);
	return 0;
}

int
gw_io_start_tls(struct gw_io *io, SSL_CTX *ctx, bool server, const char *sni, bool verify_host)
{
	if (conn_start_tls(&io->c, ctx, server, sni, verify_host) < 0)
		return -1;
	/* The client speaks first in TLS: send the ClientHello now, or both sides wait. */
	if (!server && conn_handshake(&io->c) == CONN_ERROR)
		return -1;
	gw_io_update(io);
	return 0;
}

/* The connection failed: GW_IO_ERROR is due, and nothing else. */
static void
io_failed(struct gw_io *io)
{
	io->failed = true;
}

bool
gw_io_flush(struct gw_io *io)
{
	enum conn_status st;
	size_t before;

	if (!gw_io_is_open(io) || io->failed)
		return false;
	if (io->connecting)
		return true;		/* written once connected */
	before = io->c.bytes_out;
	st = conn_flush(&io->c);
	if (io->count_sent && io->c.bytes_out != before)
		GW_METRIC_ADD(client_sent_bytes, io->c.bytes_out - before);
	if (st == CONN_ERROR) {
		io_failed(io);
		gw_io_update(io);
		return false;
	}
	if (io->c.bytes_out != before) {
		io->tx_at = ev_now(io->loop);
		if (conn_queued(&io->c) <= io->lowat)
			io->lowat_due = true;
	}
	gw_io_update(io);
	return true;
}

void
gw_io_pause(struct gw_io *io, bool pause)
{
	io->c.read_paused = pause;
	gw_io_update(io);
}

/* The io reads on this readiness: a TLS handshake always, else unless paused, at EOF or
 * with the input full. */
static bool
io_reads(const struct gw_io *io)
{
	const struct conn *c = &io->c;

	return c->handshaking || (!c->read_paused && !c->eof && buf_room(&c->in) > 0);
}

void
gw_io_update(struct gw_io *io)
{
	int ev = 0;

	if (!gw_io_is_open(io))
		return;
	if (io->connecting)
		ev = EV_WRITE;		/* connect() completes by becoming writable */
	else if (!io->failed) {
		if (conn_want_read(&io->c))
			ev |= EV_READ;
		if (conn_want_write(&io->c))
			ev |= EV_WRITE;
	}
	if (ev != (io->w.events & (EV_READ | EV_WRITE)) || (ev == 0) != !ev_is_active(&io->w)) {
		ev_io_stop(io->loop, &io->w);
		if (ev != 0) {
			ev_io_set(&io->w, io->c.fd, ev);
			ev_io_start(io->loop, &io->w);
		}
	}
	/* What epoll will not report (io.h), and what the owner's own calls caused: the
	 * callback runs as if the socket were ready. ev_io_stop() drops a fed event, so it is
	 * fed again after every re-arm, and a closed io is never called. Held bytes only when
	 * the callback will read them: EV_READ is also armed for a TLS write that needs a read
	 * (conn_want_read()), and feeding what nobody reads would spin the loop. */
	if (io->failed || io->lowat_due || io->c.tls_news ||
	    ((ev & EV_READ) && io_reads(io) && conn_tls_pending(&io->c)))
		ev_feed_event(io->loop, &io->w, EV_CUSTOM);
}

/* Tells the owner; false when it closed the io meanwhile (then nothing more). */
static bool
io_tell(struct gw_io *io, enum gw_io_event ev)
{
	io->fn(io, ev, io->ctx);
	return gw_io_is_open(io);
}

static bool
io_connected(struct gw_io *io)
{
	int err = conn_connect_error(&io->c);

	io->connecting = false;
	if (err != 0) {
		snprintf(io->c.error, sizeof(io->c.error), "connect failed: %s", strerror(err));
		io_failed(io);
		return true;
	}
	return io_tell(io, GW_IO_CONNECTED);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_io *io = w->data;
	struct conn *c = &io->c;
	size_t in_before = c->bytes_in, out_before = c->bytes_out;
	enum conn_status st = CONN_OK;

	(void)revents;
	if (io->connecting && !io->failed && !io_connected(io))
		return;
	if (!io->failed && conn_flush(c) == CONN_ERROR)
		io_failed(io);
	if (!io->failed && io_reads(io))
		st = conn_read(c);
	if (st == CONN_ERROR)
		io_failed(io);
	if (c->bytes_in != in_before)
		io->rx_at = ev_now(loop);
	if (c->bytes_out != out_before) {
		if (io->count_sent)
			GW_METRIC_ADD(client_sent_bytes, c->bytes_out - out_before);
		io->tx_at = ev_now(loop);
		if (conn_queued(c) <= io->lowat)
			io->lowat_due = true;
	}
	if (io->failed) {
		if (!io->error_told) {
			io->error_told = true;
			io_tell(io, GW_IO_ERROR);
		}
		return;
	}
	/* However the handshake finished: in this read, or in a write elsewhere. */
	if (conn_tls_established(c) && !io_tell(io, GW_IO_TLS_READY))
		return;
	if (c->bytes_in != in_before && !io_tell(io, GW_IO_DATAIN))
		return;
	if (io->lowat_due) {
		io->lowat_due = false;
		if (!io_tell(io, GW_IO_LOWAT))
			return;
	}
	if (c->eof && !io->eof_told) {
		io->eof_told = true;
		if (!io_tell(io, GW_IO_EOF))
			return;
	}
	gw_io_update(io);
}

void
gw_io_release_quiet(struct gw_io *io, ev_tstamp quiet)
{
	ev_tstamp last = io->rx_at > io->tx_at ? io->rx_at : io->tx_at;

	if (gw_io_is_open(io) && !io->connecting && ev_now(io->loop) - last >= quiet)
		conn_release_idle(&io->c, CONN_IN | CONN_OUT);
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
gw_io_is_open(const struct gw_io *io)
{
	return io->loop != NULL && io->c.fd >= 0;
}
