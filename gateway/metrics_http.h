/* gateway/metrics_http.h: the Prometheus scrape endpoint, [metrics] listen.
 *
 * main() binds the addresses once, before privileges are dropped and before any fork, like
 * the region the numbers live in (metrics.h); every worker then watches the same sockets
 * (no SO_REUSEPORT: one queue, and whichever worker accepts answers, since each sees all the
 * numbers). A scrape is tiny: the request is read (bounded, with a timeout), `GET /metrics`
 * is answered 200 with the text, any other path 404, any other method 405, then the
 * connection closes. Nothing blocks the loop: the answer is built from a copy of the
 * numbers in memory and written as the socket takes it.
 *
 * A worker that stops (SIGTERM's drain) stops answering scrapes as it stops accepting POP3
 * clients; the master closes its own copies when it stops, so nothing is left accepting
 * into a queue nobody serves. With [server] workers = 1 the one process serves them. */
#ifndef POPGATE_METRICS_HTTP_H
#define POPGATE_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "config.h"

struct gw_scrape;

struct gw_metrics_http {
	struct ev_loop *loop;		/* NULL: not started */
	ev_io io[GW_METRICS_LISTEN_MAX];
	size_t n;
	ev_timer pause;			/* EMFILE: the sockets unwatched for a moment */
	struct gw_scrape *scrapes;	/* being answered */
	unsigned nscrapes;
};

/* Binds and listens on cfg's [metrics] listen addresses (none: nothing to do). 0, or -1
 * with *error_r (static storage) and nothing left open. */
int gw_metrics_http_bind(const struct gw_config *cfg, const char **error_r);
/* Closes this process's copies of the listening sockets (a worker's stop, the master's). */
void gw_metrics_http_close(void);

/* Watches the bound sockets on loop (nothing when none is bound). */
void gw_metrics_http_start(struct gw_metrics_http *h, struct ev_loop *loop);
/* Stops watching, ends the scrapes being answered and closes the listening sockets of this
 * process. Does nothing when not started (the master's prototype worker), and twice. */
void gw_metrics_http_stop(struct gw_metrics_http *h);

#endif
