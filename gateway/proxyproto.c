/* gateway/proxyproto.c: the wait for a PROXY protocol header before a session starts
 * (see proxyproto.h). The header itself is parsed by common/proxy_header.c.
 *
 * The socket is read with MSG_PEEK, and only bytes known to be the header are taken off
 * it: everything after the header (a POP3 command, or the TLS ClientHello on the implicit
 * TLS port) stays in the kernel for the session, exactly as if no proxy were there, and
 * TLS needs no bytes handed over. The parser's NEED_MORE promises that all bytes it saw
 * belong to the header, so those are consumed at once: a partial header never leaves
 * bytes in the socket that would keep it readable (no busy loop).
 *
 * A waiting connection is an entry in the worker's registry, so max_sessions bounds the
 * waits too and a stopping worker ends them; it becomes a session only once the header
 * said who the client is, so max_per_address and everything after count the real client. */
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cidr.h"
#include "../common/log.h"
#include "../common/log_rate.h"
#include "../common/proxy_header.h"
#include "proxyproto.h"
#include "session.h"

struct proxy_wait {
	struct gw_reg_entry reg;	/* first: the registry hands it back */
	struct gw_worker *w;
	int fd;
	bool tls;
	struct sockaddr_storage peer;	/* the proxy's address */
	char peer_text[64];
	ev_io io;
	ev_timer timer;
	size_t have;			/* header bytes consumed so far */
	uint8_t buf[PROXY_HEADER_MAX];
};

static const struct gw_reg_class wait_class;
static const struct sockaddr_storage no_address = { .ss_family = AF_UNSPEC };	/* equals none */
/* The lines of closed connections: anyone who reaches the port can make one, so a flood is
 * bounded (a burst, then one a second) and counted. Per worker: each is its own process. */
static struct log_rate closed_rate;

static void
log_closed(struct ev_loop *loop, const char *peer, const char *why)
{
	unsigned n, secs;

	if (!log_rate_take(&closed_rate, ev_now(loop), &n, &secs))
		return;
	if (n > 0)
		log_info("proxy=%s: connection closed: %s (and %u more in the last %u s)", peer, why,
		    n, secs);
	else
		log_info("proxy=%s: connection closed: %s", peer, why);
}

static bool
peer_trusted(const struct gw_config *cfg, const struct sockaddr_storage *peer)
{
	const uint8_t *a;
	uint8_t family;

	if (peer->ss_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
		family = 4;
	} else if (peer->ss_family == AF_INET6) {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
		family = 6;
	} else {
		return false;
	}
	for (size_t i = 0; i < cfg->ntrusted; i++)
		if (cidr_match(&cfg->trusted[i], family, a))
			return true;
	return false;
}

/* Ends the wait: watchers stopped, off the live list (freed by the reaper); the fd is
 * closed unless a session took it. */
static void
wait_end(struct proxy_wait *p, const char *why)
{
	if (why != NULL)
		log_closed(p->w->loop, p->peer_text, why);
	ev_io_stop(p->w->loop, &p->io);
	ev_timer_stop(p->w->loop, &p->timer);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	gw_registry_doom(&p->w->sessions, &p->reg);
}

/* The header is in: the session starts with the client the header names (or, for v1
 * UNKNOWN and v2 LOCAL, the proxy's own connection). */
static void
wait_done(struct proxy_wait *p, const struct proxy_header *h)
{
	struct gw_worker *w = p->w;
	struct sockaddr_storage client = p->peer, p_peer = p->peer;
	int fd = p->fd;
	bool tls = p->tls;

	if (h->family == PROXY_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&client;

		memset(&client, 0, sizeof(client));
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, h->src, 4);
		sin->sin_port = htons(h->src_port);
	} else if (h->family == PROXY_AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&client;

		memset(&client, 0, sizeof(client));
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, h->src, 16);
		sin6->sin6_port = htons(h->src_port);
	}
	log_debug("proxy=%s: PROXY v%u header of %zu bytes%s", p->peer_text, h->version, h->len,
	    h->family == PROXY_AF_NONE ? ", no address: the proxy's own connection" : "");
	p->fd = -1;			/* the session's now */
	wait_end(p, NULL);		/* first: this wait no longer counts as a session */
	gw_session_start(w, fd, &client, &p_peer, tls);
}

static void
wait_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct proxy_wait *p = io->data;
	struct proxy_header h;
	const char *error = "?";
	enum proxy_result r;
	size_t want;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(p->fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		wait_end(p, strerror(errno));
		return;
	}
	if (n == 0) {
		wait_end(p, p->have ? "closed in its PROXY header" : "closed before a PROXY header");
		return;
	}
	if ((r = proxy_header_parse(p->buf, p->have + (size_t)n, &h, &error)) == PROXY_ERROR) {
		wait_end(p, error);	/* static text from the parser: no client bytes in it */
		return;
	}
	/* NEED_MORE: all of it is header; DONE: up to the header's end, the rest is the
	 * client's. Peeked bytes are in the socket's buffer: taking them cannot come up short. */
	want = r == PROXY_DONE ? h.len - p->have : (size_t)n;
	if (recv(p->fd, p->buf + p->have, want, 0) != (ssize_t)want) {
		wait_end(p, "reading the PROXY header failed");
		return;
	}
	p->have += want;
	if (r == PROXY_DONE)
		wait_done(p, &h);
}

static void
wait_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct proxy_wait *p = t->data;

	(void)loop;
	(void)revents;
	wait_end(p, p->have ? "PROXY header not complete within 5 s" :
	    "no PROXY header within 5 s");
}

void
gw_proxyproto_accept(void *ctx, int fd, const struct sockaddr_storage *peer, bool tls)
{
	struct gw_worker *w = ctx;
	struct proxy_wait *p;
	char text[64] = "?";

	getnameinfo((const struct sockaddr *)peer, sizeof(*peer), text, sizeof(text), NULL, 0,
	    NI_NUMERICHOST);
	if (!peer_trusted(w->cfg, peer)) {
		/* Not a proxy of ours: its header would be a lie, and without one it is a
		 * client that should not reach this port. Nothing is sent: it speaks no POP3. */
		log_closed(w->loop, text, "not in [server] trusted_proxies");
		close(fd);
		return;
	}
	if (w->sessions.count >= w->cfg->max_sessions) {
		log_warn("session limit %u reached: refusing a connection", w->cfg->max_sessions);
		close(fd);
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warn("proxy=%s: connection closed: out of memory", text);
		close(fd);
		return;
	}
	p->w = w;
	p->fd = fd;
	p->tls = tls;
	p->peer = *peer;
	memcpy(p->peer_text, text, sizeof(text));
	p->reg.cls = &wait_class;
	/* Counted in max_sessions, never under an address: under the proxy's, a burst of
	 * waits would refuse the balancer's own health checks (v2 LOCAL takes its address). */
	p->reg.addr = &no_address;
	gw_registry_add(&w->sessions, &p->reg);
	ev_io_init(&p->io, wait_read, fd, EV_READ);
	p->io.data = p;
	ev_io_start(w->loop, &p->io);
	ev_timer_init(&p->timer, wait_timeout, PROXY_WAIT_TIMEOUT, 0.);
	p->timer.data = p;
	ev_timer_start(w->loop, &p->timer);
}

/* A stopping or exiting worker: a connection without its header yet is not a session to
 * let finish. */
static void
wait_stop(struct gw_reg_entry *e)
{
	wait_end((struct proxy_wait *)e, "popgate is stopping");
}

static void
wait_free(struct gw_reg_entry *e)
{
	free(e);
}

static const struct gw_reg_class wait_class = {
	.stop = wait_stop,
	.end_now = wait_stop,
	.free = wait_free,
};
