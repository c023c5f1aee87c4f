/* common/conn.c: non-blocking socket I/O into bounded buffers, plain or TLS (OpenSSL 3). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conn.h"

void
conn_init(struct conn *c, int fd, size_t in_max, size_t out_max)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	buf_set_max(&c->in, in_max);
	buf_set_max(&c->out, out_max);
}

static enum conn_status
conn_fail(struct conn *c, const char *what)
{
	unsigned long e = ERR_get_error();

	if (e != 0) {
		char reason[120];

		ERR_error_string_n(e, reason, sizeof(reason));
		snprintf(c->error, sizeof(c->error), "%s: %s", what, reason);
	} else if (errno != 0) {
		snprintf(c->error, sizeof(c->error), "%s: %s", what, strerror(errno));
	} else {
		snprintf(c->error, sizeof(c->error), "%s", what);
	}
	ERR_clear_error();
	return CONN_ERROR;
}

int
conn_start_tls(struct conn *c, SSL_CTX *ctx, bool server, const char *sni, bool verify_host)
{
	ERR_clear_error();
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_fail(c, "TLS setup failed");
		return -1;
	}
	SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* A TCP close without close_notify is an EOF (SSL_ERROR_ZERO_RETURN), not a fatal
	 * error that sends an alert and forbids writing: a half-closed POP3 client still
	 * reads the replies to what it sent. Truncation cannot pass unseen: POP3 commands
	 * are whole lines and IMAP literals carry their size, both checked above us. */
	SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		unsigned char ip[16];
		bool literal = sni != NULL && (inet_pton(AF_INET, sni, ip) == 1 ||
		    inet_pton(AF_INET6, sni, ip) == 1);

		/* RFC 6066 §3: no IP literals in SNI; the IP is still verified below. */
		if (sni != NULL && !literal && SSL_set_tlsext_host_name(c->ssl, sni) != 1) {
			conn_fail(c, "TLS SNI setup failed");
			return -1;
		}
		if (sni != NULL && verify_host && SSL_set1_host(c->ssl, sni) != 1) {
			conn_fail(c, "TLS host check setup failed");
			return -1;
		}
		SSL_set_connect_state(c->ssl);
	}
	c->handshaking = true;
	return 0;
}

enum conn_status
conn_handshake(struct conn *c)
{
	int r, e;

	if (!c->handshaking)
		return CONN_OK;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		c->tls_news = true;
		c->rd_needs_write = c->wr_needs_read = false;
		return CONN_OK;
	}
	e = SSL_get_error(c->ssl, r);
	c->rd_needs_write = (e == SSL_ERROR_WANT_WRITE);
	c->wr_needs_read = false;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return CONN_OK;
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		snprintf(c->error, sizeof(c->error), "TLS handshake failed: certificate verify failed: %s",
		    X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
		ERR_clear_error();
		return CONN_ERROR;
	}
	if (e == SSL_ERROR_SYSCALL && errno == 0)
		errno = ECONNRESET;
	return conn_fail(c, "TLS handshake failed");
}

/* Where the next read goes, at most CONN_READ_CHUNK bytes: >0 room, 0 input full
 * (backpressure), -1 out of memory. In place when the input's storage already has the room
 * (a busy connection); otherwise into `scratch`, and read_commit() appends what came, so an
 * idle connection's input owns a few hundred bytes, not a chunk (most of a 64 KiB chunk
 * would stay unused, and under TLS it lands on pages OpenSSL's released record buffers
 * dirtied: resident memory for every idle session). */
static ssize_t
read_space(struct conn *c, uint8_t *scratch, uint8_t **dst_r)
{
	size_t room = buf_room(&c->in);

	if (room == 0)
		return 0;
	if (room > CONN_READ_CHUNK)
		room = CONN_READ_CHUNK;
	if (c->in.cap - buf_len(&c->in) < room) {
		*dst_r = scratch;
		return (ssize_t)room;
	}
	if ((*dst_r = buf_reserve(&c->in, room)) == NULL)	/* compacts, never grows */
		return -1;
	return (ssize_t)room;
}

/* The n bytes read_space() asked for arrived at dst: 0, or -1 out of memory. */
static int
read_commit(struct conn *c, uint8_t *scratch, const uint8_t *dst, size_t n)
{
	int r = 0;

	if (dst != scratch) {
		buf_commit(&c->in, n);
	} else {
		r = buf_append(&c->in, scratch, n);
		if (c->in.secret)
			explicit_bzero(scratch, n);	/* a PASS line: no copy on the stack */
	}
	c->bytes_in += n;
	return r;
}

static enum conn_status
conn_read_tls(struct conn *c, uint8_t *scratch)
{
	for (;;) {
		size_t n = 0;
		uint8_t *dst;
		ssize_t room = read_space(c, scratch, &dst);
		int r, e;

		if (room <= 0)
			return room == 0 ? CONN_OK : conn_fail(c, "out of memory");
		ERR_clear_error();
		errno = 0;
		r = SSL_read_ex(c->ssl, dst, (size_t)room, &n);
		if (r == 1) {
			if (read_commit(c, scratch, dst, n) < 0)
				return conn_fail(c, "out of memory");
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		c->rd_needs_write = (e == SSL_ERROR_WANT_WRITE);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return CONN_OK;
		if (e == SSL_ERROR_ZERO_RETURN) {
			c->eof = true;
			return CONN_EOF;
		}
		if (e == SSL_ERROR_SYSCALL && errno == 0) {
			/* The peer closed TCP without close_notify: treat as EOF (OpenSSL 3
			 * only says so with SSL_OP_IGNORE_UNEXPECTED_EOF, see conn_start_tls()). */
			c->eof = true;
			return CONN_EOF;
		}
		return conn_fail(c, "TLS read failed");
	}
}

enum conn_status
conn_read(struct conn *c)
{
	uint8_t scratch[CONN_READ_CHUNK];	/* see read_space() */

	if (c->fd < 0)
		return CONN_ERROR;
	if (c->ssl != NULL) {
		if (c->handshaking)
			return conn_handshake(c);
		return conn_read_tls(c, scratch);
	}
	for (;;) {
		uint8_t *dst;
		ssize_t room = read_space(c, scratch, &dst), n;

		if (room <= 0)
			return room == 0 ? CONN_OK : conn_fail(c, "out of memory");
		n = read(c->fd, dst, (size_t)room);
		if (n > 0) {
			if (read_commit(c, scratch, dst, (size_t)n) < 0)
				return conn_fail(c, "out of memory");
			if (n < room)
				return CONN_OK;	/* drained the socket for now */
			continue;
		}
		if (n == 0) {
			c->eof = true;
			return CONN_EOF;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return CONN_OK;
		return conn_fail(c, "read failed");
	}
}

enum conn_status
conn_flush(struct conn *c)
{
	if (c->fd < 0)
		return CONN_ERROR;
	if (c->out.failed) {
		errno = 0;
		return conn_fail(c, "output buffer overflow");
	}
	if (c->ssl != NULL && c->handshaking)
		return conn_handshake(c);
	while (buf_len(&c->out) > 0) {
		if (c->ssl != NULL) {
			size_t n = 0;
			int r, e;

			ERR_clear_error();
			errno = 0;
			r = SSL_write_ex(c->ssl, buf_data(&c->out), buf_len(&c->out), &n);
			if (r == 1) {
				buf_consume(&c->out, n);
				c->bytes_out += n;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			c->wr_needs_read = (e == SSL_ERROR_WANT_READ);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return CONN_OK;
			if (e == SSL_ERROR_SYSCALL && errno == 0)
				errno = EPIPE;
			return conn_fail(c, "TLS write failed");
		} else {
			ssize_t n = send(c->fd, buf_data(&c->out), buf_len(&c->out), MSG_NOSIGNAL);

			if (n >= 0) {
				buf_consume(&c->out, (size_t)n);
				c->bytes_out += (size_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return CONN_OK;
			return conn_fail(c, "write failed");
		}
	}
	return CONN_OK;
}

bool
conn_want_read(const struct conn *c)
{
	if (c->fd < 0)
		return false;
	if (c->ssl != NULL && c->handshaking)
		return !c->rd_needs_write;
	if (c->wr_needs_read && buf_len(&c->out) > 0)
		return true;
	return !c->read_paused && !c->eof && buf_room(&c->in) > 0 && !c->rd_needs_write;
}

bool
conn_want_write(const struct conn *c)
{
	if (c->fd < 0)
		return false;
	if (c->ssl != NULL && c->handshaking)
		return c->rd_needs_write;
	if (c->rd_needs_write)
		return true;
	return buf_len(&c->out) > 0 && !c->wr_needs_read;
}

bool
conn_tls_active(const struct conn *c)
{
	return c->ssl != NULL && !c->handshaking;
}

bool
conn_tls_established(struct conn *c)
{
	bool news = c->tls_news;

	c->tls_news = false;
	return news;
}

bool
conn_tls_pending(const struct conn *c)
{
	/* SSL_pending(), not SSL_has_pending(): a partly received record is not readable yet,
	 * and its remainder will wake the socket. */
	return conn_tls_active(c) && SSL_pending(c->ssl) > 0;
}

void
conn_release_idle(struct conn *c, unsigned which)
{
	if ((which & CONN_IN) && buf_len(&c->in) == 0 && !c->in.failed)
		buf_free(&c->in);
	if ((which & CONN_OUT) && buf_len(&c->out) == 0 && !c->out.failed)
		buf_free(&c->out);
}

void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	buf_free(&c->in);
	buf_free(&c->out);
}

int
conn_connect_error(const struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}
