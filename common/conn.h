/* common/conn.h: one socket, with optional TLS, moving bytes between the kernel and two
 * bounded buffers. Non-blocking only; never waits. Not for: readiness (the gateway's libev
 * glue asks conn_want_read()/conn_want_write() which events to watch) or protocol.
 *
 * With TLS, a read may need the socket writable and a write readable (renegotiation,
 * post-handshake messages); the want_* functions account for that. */
#ifndef POPGATE_CONN_H
#define POPGATE_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "buf.h"

/* The most one read takes from the socket; also how much a "busy" connection moves. 64 KiB:
 * a RETR of 100 MB costs a quarter of the reads (and of the ACKs each read sends) of 16 KiB,
 * about a fifth less of popgate's CPU (measured, bench/run.py's CPU per GB); an idle
 * connection owns none of it (read_space()), and the stack chunk is the loop thread's. */
#define CONN_READ_CHUNK 65536

/* Which buffer: conn_release_idle(). */
#define CONN_IN 1u
#define CONN_OUT 2u

enum conn_status {
	CONN_OK,	/* progress made or nothing to do; call again on the next event */
	CONN_EOF,	/* the peer closed (reads) */
	CONN_ERROR,	/* the connection is broken; conn->error says why */
};

struct conn {
	int fd;			/* -1 when closed */
	SSL *ssl;		/* NULL for plain */
	struct buf in;		/* bytes read, not yet consumed */
	struct buf out;		/* bytes to write */
	bool handshaking;	/* TLS handshake not finished */
	bool tls_news;		/* the handshake finished, and conn_tls_established() has not
				 * said so yet */
	bool rd_needs_write;	/* last SSL read wanted POLLOUT */
	bool wr_needs_read;	/* last SSL write wanted POLLIN */
	bool read_paused;	/* the owner stopped reading (backpressure) */
	bool eof;		/* the peer closed its side */
	char error[160];	/* why the last CONN_ERROR happened */
	size_t bytes_in, bytes_out;
};

/* Wraps a connected non-blocking fd. Buffers get their ceilings. */
void conn_init(struct conn *c, int fd, size_t in_max, size_t out_max);

/* Starts TLS on the connection (client or server side); the handshake then runs inside
 * conn_read/conn_flush until conn->handshaking is false. Returns 0, or -1 with error set.
 * sni: host name to send and verify (client side; NULL to skip). */
int conn_start_tls(struct conn *c, SSL_CTX *ctx, bool server, const char *sni, bool verify_host);

/* Drives the TLS handshake. CONN_OK when done or waiting, CONN_ERROR on failure. */
enum conn_status conn_handshake(struct conn *c);
/* After a non-blocking connect() reported writable: 0 when it succeeded, else the errno
 * it failed with (SO_ERROR). */
int conn_connect_error(const struct conn *c);

/* Reads what the socket has, up to the input buffer's room. */
enum conn_status conn_read(struct conn *c);

/* Writes as much of c->out as the socket takes. */
enum conn_status conn_flush(struct conn *c);

bool conn_want_read(const struct conn *c);
bool conn_want_write(const struct conn *c);

/* Bytes waiting to be written. */
static inline size_t
conn_queued(const struct conn *c)
{
	return buf_len(&c->out);
}

/* TLS in use and the handshake done. */
bool conn_tls_active(const struct conn *c);
/* True once after the TLS handshake finishes, whichever read or write finished it: the
 * owner acts on it (a greeting, the first command) where it asks, not where it happened. */
bool conn_tls_established(struct conn *c);
/* Decrypted bytes OpenSSL holds for us (a record that did not fit the input buffer): the
 * socket will not signal them again, so whoever waits for readability must read them itself. */
bool conn_tls_pending(const struct conn *c);

/* Gives back the storage of the buffers in `which` (CONN_IN, CONN_OUT) that are empty (wiped,
 * as buf_free() does), so an idle connection owns none; the next bytes allocate what they
 * need. Pointers into that storage die: call it where nobody holds one (between events).
 * A buffer that failed keeps its state for the flush to report. */
void conn_release_idle(struct conn *c, unsigned which);

/* Closes the fd, frees TLS state and both buffers. Safe to call twice. */
void conn_close(struct conn *c);

#endif
