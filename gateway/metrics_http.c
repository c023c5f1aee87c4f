/* gateway/metrics_http.c: the scrape endpoint's sockets; see metrics_http.h. HTTP/1.0 and
 * 1.1 requests, answered once and closed (RFC 9112 §9.6 "Connection: close"): a scraper
 * asks every few seconds, so keeping connections would buy nothing but state. */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "metrics.h"
#include "metrics_http.h"

#define SCRAPE_REQUEST_MAX 4096	/* a request line and a few headers; more is not a scrape */
#define SCRAPE_TIMEOUT 5.0	/* s for the whole exchange: a stalled peer costs one fd */
#define SCRAPES_MAX 16		/* per worker at once; more are closed at accept */
#define SCRAPE_OUT_MAX (256 * 1024)	/* the text is about 10 KB */

/* This process's copies of the bound sockets (-1: closed). */
static int bound_fd[GW_METRICS_LISTEN_MAX] = { -1, -1, -1, -1 };
static size_t nbound;

struct gw_scrape {
	struct gw_metrics_http *h;
	struct gw_scrape *next, **prevp;
	int fd;
	ev_io io;
	ev_timer timer;
	char in[SCRAPE_REQUEST_MAX];
	size_t inlen;
	struct buf out;
};

int
gw_metrics_http_bind(const struct gw_config *cfg, const char **error_r)
{
	static char error[300];

	for (size_t i = 0; i < cfg->nmetrics_listen; i++) {
		const struct gw_listen *conf = &cfg->metrics_listen[i];
		int one = 1, fd;

		fd = socket(conf->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    (conf->addr.ss_family == AF_INET6 &&
		     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
		    bind(fd, (const struct sockaddr *)&conf->addr, conf->addrlen) < 0 ||
		    listen(fd, 64) < 0) {
			snprintf(error, sizeof(error), "[metrics] listen on %s: %s", conf->text,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			gw_metrics_http_close();
			*error_r = error;
			return -1;
		}
		bound_fd[nbound++] = fd;
	}
	return 0;
}

void
gw_metrics_http_close(void)
{
	for (size_t i = 0; i < nbound; i++) {
		if (bound_fd[i] >= 0)
			close(bound_fd[i]);
		bound_fd[i] = -1;
	}
	nbound = 0;
}

static void
scrape_free(struct gw_scrape *sc)
{
	struct gw_metrics_http *h = sc->h;

	ev_io_stop(h->loop, &sc->io);
	ev_timer_stop(h->loop, &sc->timer);
	close(sc->fd);
	buf_free(&sc->out);
	if (sc->next != NULL)
		sc->next->prevp = sc->prevp;
	*sc->prevp = sc->next;
	h->nscrapes--;
	free(sc);
}

static void
reply(struct gw_scrape *sc, const char *status, const char *extra, bool head_only)
{
	struct metrics_values v;
	struct buf body = { 0 };
	bool ok = strncmp(status, "200", 3) == 0;

	buf_set_max(&body, SCRAPE_OUT_MAX);
	if (ok) {
		gw_metrics_snapshot(&v);
		if (metrics_format(&v, &body) < 0) {
			buf_free(&body);	/* empty, and not failed any more */
			status = "500 Internal Server Error";
			ok = false;
		}
	}
	if (!ok)
		buf_printf(&body, "%s\n", status);
	buf_printf(&sc->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "%sConnection: close\r\n\r\n", status, ok ? "text/plain; version=0.0.4; "
	    "charset=utf-8" : "text/plain; charset=utf-8", buf_len(&body), extra);
	if (!head_only)
		buf_append(&sc->out, buf_data(&body), buf_len(&body));
	buf_free(&body);
	ev_io_stop(sc->h->loop, &sc->io);
	ev_io_set(&sc->io, sc->fd, EV_WRITE);
	ev_io_start(sc->h->loop, &sc->io);
}

/* The request's head is complete: "METHOD SP TARGET SP VERSION". Only the request line
 * matters; headers are read past and ignored. */
static void
answer(struct gw_scrape *sc)
{
	char *sp1, *sp2, *eol = memchr(sc->in, '\n', sc->inlen);
	size_t path_len;
	bool head_only;

	if (eol == NULL || (sp1 = memchr(sc->in, ' ', (size_t)(eol - sc->in))) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) == NULL) {
		reply(sc, "400 Bad Request", "", false);
		return;
	}
	head_only = sp1 - sc->in == 4 && memcmp(sc->in, "HEAD", 4) == 0;
	if (!head_only && !(sp1 - sc->in == 3 && memcmp(sc->in, "GET", 3) == 0)) {
		reply(sc, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false);
		return;
	}
	/* The query string, if any, selects nothing here. */
	for (path_len = 0; sp1 + 1 + path_len < sp2 && sp1[1 + path_len] != '?'; path_len++)
		;
	if (path_len != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0) {
		reply(sc, "404 Not Found", "", head_only);
		return;
	}
	reply(sc, "200 OK", "", head_only);
}

static bool
head_complete(const struct gw_scrape *sc)
{
	for (size_t i = 0; i + 1 < sc->inlen; i++) {
		if (sc->in[i] == '\n' && sc->in[i + 1] == '\n')
			return true;
		if (i + 3 < sc->inlen && memcmp(sc->in + i, "\r\n\r\n", 4) == 0)
			return true;
	}
	return false;
}

static void
scrape_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_scrape *sc = io->data;

	(void)loop;
	if (revents & EV_WRITE) {
		ssize_t n = send(sc->fd, buf_data(&sc->out), buf_len(&sc->out), MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n > 0)
			buf_consume(&sc->out, (size_t)n);
		if (n <= 0 || buf_len(&sc->out) == 0) {
			/* FIN after the last byte; the peer's unread request bytes (none, for a
			 * scraper) would otherwise turn the close into a reset. */
			shutdown(sc->fd, SHUT_WR);
			scrape_free(sc);
		}
		return;
	}
	for (;;) {
		ssize_t n = recv(sc->fd, sc->in + sc->inlen, sizeof(sc->in) - sc->inlen, 0);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			scrape_free(sc);	/* gone before asking */
			return;
		}
		sc->inlen += (size_t)n;
		if (head_complete(sc)) {
			answer(sc);
			return;
		}
		if (sc->inlen == sizeof(sc->in)) {
			reply(sc, "431 Request Header Fields Too Large", "", false);
			return;
		}
	}
}

static void
scrape_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	scrape_free(t->data);
}

#define EMFILE_PAUSE 1.0	/* s a worker out of descriptors leaves scrapes to the others */

static void
watch(struct gw_metrics_http *h, bool on)
{
	for (size_t i = 0; i < h->n; i++) {
		if (on)
			ev_io_start(h->loop, &h->io[i]);
		else
			ev_io_stop(h->loop, &h->io[i]);
	}
}

static void
pause_over(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	watch(t->data, true);
}

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_metrics_http *h = io->data;

	(void)revents;
	/* A few at a time: the other workers watch the same socket. */
	for (int i = 0; i < 8; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct gw_scrape *sc;

		if (fd < 0) {
			/* EAGAIN: another worker took it. EMFILE and the like: the scrape waits
			 * in the queue for a worker with room (a POP3 client's fds come first);
			 * this one stops watching for a second, or the ready socket would wake
			 * its loop again at once, forever. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				watch(h, false);
				ev_timer_set(&h->pause, EMFILE_PAUSE, 0.);
				ev_timer_start(loop, &h->pause);
			}
			return;
		}
		if (h->nscrapes >= SCRAPES_MAX || (sc = calloc(1, sizeof(*sc))) == NULL) {
			close(fd);
			continue;
		}
		sc->h = h;
		sc->fd = fd;
		buf_set_max(&sc->out, SCRAPE_OUT_MAX + 512);
		ev_io_init(&sc->io, scrape_io, fd, EV_READ);
		sc->io.data = sc;
		ev_timer_init(&sc->timer, scrape_timeout, SCRAPE_TIMEOUT, 0.);
		sc->timer.data = sc;
		ev_io_start(loop, &sc->io);
		ev_timer_start(loop, &sc->timer);
		sc->next = h->scrapes;
		if (sc->next != NULL)
			sc->next->prevp = &sc->next;
		sc->prevp = &h->scrapes;
		h->scrapes = sc;
		h->nscrapes++;
	}
}

void
gw_metrics_http_start(struct gw_metrics_http *h, struct ev_loop *loop)
{
	h->loop = loop;
	h->n = 0;
	for (size_t i = 0; i < nbound; i++) {
		if (bound_fd[i] < 0)
			continue;
		ev_io_init(&h->io[h->n], accept_cb, bound_fd[i], EV_READ);
		h->io[h->n].data = h;
		ev_io_start(loop, &h->io[h->n]);
		h->n++;
	}
	ev_init(&h->pause, pause_over);
	h->pause.data = h;
}

void
gw_metrics_http_stop(struct gw_metrics_http *h)
{
	/* Only a process that served closes its copies here: the master's must outlive the
	 * prototype worker it frees (a reload's new generation inherits them). */
	if (h->loop == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		ev_io_stop(h->loop, &h->io[i]);
	ev_timer_stop(h->loop, &h->pause);
	while (h->scrapes != NULL)
		scrape_free(h->scrapes);
	h->n = 0;
	h->loop = NULL;
	gw_metrics_http_close();
}
