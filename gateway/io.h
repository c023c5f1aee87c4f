/* gateway/io.h: the one I/O path of gateway/: a conn (common/conn.h) under a libev watcher,
 * turning socket readiness into events for its owner (in the spirit of OpenSMTPD's ioev.c).
 * The POP3 client, the IMAP upstream and the probe all use it; none of them reads, writes
 * or watches a socket itself.
 *
 * On each readiness the io does, in this order, and tells the owner what happened:
 *   a pending connect() completed          GW_IO_CONNECTED (the owner may start TLS)
 *   write what is queued                   (a handshake may finish here)
 *   read what the socket has               unless paused; a TLS handshake always reads
 *   the TLS handshake finished             GW_IO_TLS_READY, once, whichever read or
 *                                          write finished it (also the owner's flushes)
 *   bytes were read                        GW_IO_DATAIN: they are in io->c.in
 *   a write made progress and the queue    GW_IO_LOWAT: produce more (also after the
 *   is at or below the low watermark       owner's own gw_io_flush())
 *   the peer closed its side               GW_IO_EOF, once, after the last DATAIN
 *   connect, read, write or TLS failed     GW_IO_ERROR, once; io->c.error says why; no
 *                                          other event follows
 * Two things epoll does not report are fed to the watcher as if the socket were ready:
 * decrypted bytes OpenSSL holds (a record that did not fit the input buffer) and the news
 * of a handshake some write finished. Events the owner's own calls cause (a failed or
 * draining gw_io_flush()) are delivered from the loop, never from inside that call, so
 * an owner is never re-entered.
 *
 * Idle connections own no buffer storage: the owner's sweep (gw_io_release_quiet()) frees
 * the empty buffers of an io quiet for a while, between events.
 *
 * After each event the owner may have closed the io (gw_io_close()): nothing more is
 * delivered then. The io lives inside its owner, which must outlive the callback (the
 * session's reaper frees it on the next loop iteration). */
#ifndef POPGATE_IO_H
#define POPGATE_IO_H

#include <stdbool.h>
#include <sys/socket.h>

#include <ev.h>

#include "../common/conn.h"

enum gw_io_event {
	GW_IO_CONNECTED,
	GW_IO_TLS_READY,
	GW_IO_DATAIN,
	GW_IO_LOWAT,
	GW_IO_EOF,
	GW_IO_ERROR,
};

struct gw_io;
typedef void gw_io_fn(struct gw_io *io, enum gw_io_event ev, void *ctx);

struct gw_io {
	struct conn c;
	ev_io w;
	struct ev_loop *loop;	/* NULL: closed, or never opened */
	gw_io_fn *fn;
	void *ctx;
	size_t lowat;		/* GW_IO_LOWAT at or below this many queued bytes */
	ev_tstamp rx_at;	/* the last byte read */
	ev_tstamp tx_at;	/* the last byte written */
	bool connecting;	/* connect() in progress */
	bool failed;		/* GW_IO_ERROR is due or told: nothing else is delivered */
	bool error_told, eof_told;
	bool lowat_due;		/* an owner's flush drained: GW_IO_LOWAT from the loop */
	bool count_sent;	/* a POP3 client's: what is written is added to
				   popgate_client_sent_bytes_total (gateway/metrics.h), once
				   per write */
};

/* Wraps a connected fd (non-blocking) and starts watching it. */
void gw_io_open(struct gw_io *io, struct ev_loop *loop, int fd, size_t in_max, size_t out_max,
    gw_io_fn *fn, void *ctx);
/* Opens a non-blocking TCP connection to addr: GW_IO_CONNECTED or GW_IO_ERROR follows.
 * 0, or -1 with errno set (nothing opened). */
int gw_io_connect(struct gw_io *io, struct ev_loop *loop, const struct sockaddr_storage *addr,
    socklen_t addrlen, size_t in_max, size_t out_max, gw_io_fn *fn, void *ctx);
/* Starts TLS (client side: sni names the server and is verified when verify_host). The
 * client's first flight goes at once. 0, or -1 with io->c.error set. */
int gw_io_start_tls(struct gw_io *io, SSL_CTX *ctx, bool server, const char *sni,
    bool verify_host);
/* Writes what is queued, now. Returns false when the connection failed (GW_IO_ERROR then
 * comes from the loop). */
bool gw_io_flush(struct gw_io *io);
/* Backpressure: stop or resume reading (a TLS handshake still reads). Bytes already in
 * io->c.in stay there for the owner. */
void gw_io_pause(struct gw_io *io, bool pause);
/* Re-arms the watcher for what the conn wants now; gw_io_flush() and the event loop call
 * it, an owner only after changing io->c by hand (buf_reset of the input). */
void gw_io_update(struct gw_io *io);
/* Stops the watcher and closes the conn. Safe on a zeroed (never opened) io, and twice. */
void gw_io_close(struct gw_io *io);
bool gw_io_is_open(const struct gw_io *io);

/* Seconds without a byte either way after which an io's empty buffers go back. Most
 * sessions sit logged in and silent, and two conns' buffers were most of what each cost;
 * a stream (RETR) moves bytes far more often, so it keeps its storage instead of
 * allocating and growing it again for every readiness (freeing after every small event
 * instead measured 6.3 CPU s/GB against 1.3 with 4 concurrent RETRs, tests/perf). */
#define GW_IO_QUIET 0.5

/* Frees the io's empty buffers (conn_release_idle()) when nothing moved for `quiet`
 * seconds. Only between events: a pointer into the buffers' storage dies. */
void gw_io_release_quiet(struct gw_io *io, ev_tstamp quiet);
#endif
