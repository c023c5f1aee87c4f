/* gateway/probe.c: what the upstream offers before anyone logs in (RFC 3501 §6.1.1, §6.2.1).
 *
 * CAPA's SASL line (RFC 5034 §6) and a bare AUTH list XOAUTH2 and OAUTHBEARER only when the
 * upstream takes them, yet a session opens its upstream connection only once credentials
 * arrive. So each worker asks on its own at start, inside its loop and never blocking:
 *
 *   connect [TLS] -> greeting -> [STARTTLS -> TLS] -> CAPABILITY -> LOGOUT
 *
 * with the same address, TLS context, verification and timeouts as a session's login.
 * Every login then refreshes the answer from its own post-TLS CAPABILITY (login.c calls
 * gw_upcaps_learned()), so a reconfigured upstream is seen at the next login. A failed
 * probe is logged and retried when a client next asks (CAPA, bare AUTH), after a back-off
 * that doubles up to PROBE_BACKOFF_MAX; until something is known, CAPA lists PLAIN only.
 * Not for: logging in or anything a session needs (login.c, upstream.c). */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../imap/imap_resp.h"
#include "session.h"
#include "worker.h"

#define PROBE_IN_MAX (64 * 1024)
#define PROBE_OUT_MAX 4096
#define PROBE_BACKOFF_MIN 5.0		/* seconds before retrying a failed probe */
#define PROBE_BACKOFF_MAX 300.0

/* The auth mechanisms popgate passes through: a change of these is worth a log line. */
#define UPCAPS_SASL (GW_CAP_AUTH_PLAIN | GW_CAP_XOAUTH2 | GW_CAP_OAUTHBEARER)

static void probe_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void probe_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

void
gw_upcaps_learned(struct gw_worker *w, unsigned caps, const char *source)
{
	if (!w->up_caps_known || (w->up_caps & UPCAPS_SASL) != (caps & UPCAPS_SASL))
		log_info("upstream %s:%u SASL mechanisms:%s%s%s%s (from %s)", w->cfg->up_host,
		    w->cfg->up_port, caps & GW_CAP_AUTH_PLAIN ? " PLAIN" : "",
		    caps & GW_CAP_XOAUTH2 ? " XOAUTH2" : "",
		    caps & GW_CAP_OAUTHBEARER ? " OAUTHBEARER" : "",
		    caps & UPCAPS_SASL ? "" : " none of PLAIN XOAUTH2 OAUTHBEARER", source);
	w->up_caps = caps;
	w->up_caps_known = true;
}

bool
gw_upcaps_get(struct gw_worker *w, unsigned *caps_r)
{
	if (w->up_caps_known) {
		*caps_r = w->up_caps;
		return true;
	}
	if (w->probe.state == GW_PROBE_IDLE && ev_now(w->loop) >= w->probe.retry_at)
		gw_probe_start(w);
	*caps_r = 0;
	return false;
}

/* Re-arms the timeout for the state just entered. */
static void
probe_arm(struct gw_worker *w)
{
	struct gw_probe *pr = &w->probe;
	const struct gw_config *cfg = w->cfg;

	pr->timer.repeat = pr->state == GW_PROBE_CONNECTING ? cfg->connect_timeout :
	    pr->io.c.handshaking ? cfg->tls_handshake_timeout : cfg->upstream_timeout;
	ev_timer_again(w->loop, &pr->timer);
}

void
gw_probe_stop(struct gw_worker *w)
{
	struct gw_probe *pr = &w->probe;

	if (pr->state == GW_PROBE_IDLE)
		return;
	ev_timer_stop(w->loop, &pr->timer);
	gw_io_close(&pr->io);
	imap_parser_free(&pr->parser);
	pr->state = GW_PROBE_IDLE;
}

static void __attribute__((format(printf, 2, 3)))
probe_fail(struct gw_worker *w, const char *fmt, ...)
{
	struct gw_probe *pr = &w->probe;
	char why[200], text[LOG_ESCAPE_SIZE(200)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (pr->backoff < PROBE_BACKOFF_MIN)
		pr->backoff = PROBE_BACKOFF_MIN;
	log_warn("upstream %s:%u: learning its capabilities failed: \"%s\" (retried on a CAPA "
	    "after %.0f s)", w->cfg->up_host, w->cfg->up_port,
	    log_escape(text, sizeof(text), (const uint8_t *)why, strlen(why), sizeof(why)),
	    pr->backoff);
	gw_probe_stop(w);
	pr->retry_at = ev_now(w->loop) + pr->backoff;
	pr->backoff = pr->backoff * 2 > PROBE_BACKOFF_MAX ? PROBE_BACKOFF_MAX : pr->backoff * 2;
}

static void
probe_send(struct gw_worker *w, const char *line, enum gw_probe_state next)
{
	struct gw_probe *pr = &w->probe;

	buf_append_str(&pr->io.c.out, line);
	pr->state = next;
	probe_arm(w);
}

static bool
probe_start_tls(struct gw_worker *w)
{
	struct gw_probe *pr = &w->probe;
	const struct gw_config *cfg = w->cfg;

	if (conn_start_tls(&pr->io.c, w->upstream_tls, false, cfg->up_host, cfg->up_verify) < 0 ||
	    conn_handshake(&pr->io.c) == CONN_ERROR) {
		probe_fail(w, "%s", pr->io.c.error);
		return false;
	}
	probe_arm(w);
	return true;
}

/* Done: the answer is recorded; LOGOUT is sent best effort, as a session's is. */
static void
probe_done(struct gw_worker *w)
{
	struct gw_probe *pr = &w->probe;

	gw_upcaps_learned(w, pr->caps, "probe");
	buf_append_str(&pr->io.c.out, "p3 LOGOUT\r\n");
	(void)conn_flush(&pr->io.c);
	gw_probe_stop(w);
	pr->backoff = 0;
	pr->retry_at = 0;
}

/* One response line. Returns false when the probe ended (done or failed). */
static bool
probe_line(struct gw_worker *w, const uint8_t *line, size_t len)
{
	struct gw_probe *pr = &w->probe;
	struct imap_resp r;

	if (!imap_resp_parse(line, len, &r)) {
		probe_fail(w, "malformed response");
		return false;
	}
	if (r.kind == IMAP_RESP_UNTAGGED && r.status == IMAP_STATUS_BYE) {
		probe_fail(w, "server said BYE: %.*s", (int)(r.text.len > 100 ? 100 : r.text.len),
		    (const char *)r.text.p);
		return false;
	}
	if (r.kind == IMAP_RESP_UNTAGGED && r.status == IMAP_STATUS_NONE &&
	    imap_slice_eq(&r.name, "CAPABILITY")) {
		pr->caps = gw_upstream_parse_caps(&r.text);
		pr->got_caps = true;
		return true;
	}
	switch (pr->state) {
	case GW_PROBE_GREETING:
		if (r.kind != IMAP_RESP_UNTAGGED)
			break;
		if (r.status != IMAP_STATUS_OK) {
			probe_fail(w, "greeting was not OK");
			return false;
		}
		if (w->cfg->up_security == GW_SEC_STARTTLS)
			probe_send(w, "p1 STARTTLS\r\n", GW_PROBE_STARTTLS);
		else
			probe_send(w, "p2 CAPABILITY\r\n", GW_PROBE_CAPABILITY);
		return true;
	case GW_PROBE_STARTTLS:
		if (r.kind != IMAP_RESP_TAGGED)
			break;
		if (r.status != IMAP_STATUS_OK) {
			probe_fail(w, "STARTTLS refused");
			return false;
		}
		/* As in login.c: bytes after the OK were sent before TLS; never read them as
		 * protected, and forget what was said in clear (RFC 3501 §6.2.1). */
		if (buf_len(&pr->io.c.in) > 0) {
			probe_fail(w, "data after STARTTLS OK");
			return false;
		}
		pr->got_caps = false;
		pr->caps = 0;
		pr->state = GW_PROBE_TLS;
		return probe_start_tls(w);
	case GW_PROBE_CAPABILITY:
		if (r.kind != IMAP_RESP_TAGGED)
			break;
		if (r.status != IMAP_STATUS_OK || !pr->got_caps) {
			probe_fail(w, "CAPABILITY failed");
			return false;
		}
		probe_done(w);
		return false;
	default:
		break;
	}
	return true;	/* other untagged data: not ours to read */
}

static void
probe_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gw_worker *w = io->data;
	struct gw_probe *pr = &w->probe;
	struct imap_event ev;

	(void)loop;
	(void)revents;
	if (pr->state == GW_PROBE_CONNECTING) {
		int err = gw_io_connected(&pr->io);

		if (err != 0) {
			probe_fail(w, "connect failed: %s", strerror(err));
			return;
		}
		pr->state = GW_PROBE_GREETING;
		if (w->cfg->up_security == GW_SEC_TLS && !probe_start_tls(w))
			return;
		probe_arm(w);
	}
	if (conn_flush(&pr->io.c) == CONN_ERROR || conn_read(&pr->io.c) == CONN_ERROR) {
		probe_fail(w, "%s", pr->io.c.error);
		return;
	}
	/* However the handshake finished (here, or in the flush below after STARTTLS's OK:
	 * gw_io_update() then calls us again). */
	if (conn_tls_established(&pr->io.c)) {
		probe_arm(w);
		if (pr->state == GW_PROBE_TLS)
			probe_send(w, "p2 CAPABILITY\r\n", GW_PROBE_CAPABILITY);
		/* An implicit-TLS greeting OpenSSL already decrypted comes through
		 * gw_io_update(), as any held bytes do. */
	}
	for (;;) {
		switch (imap_parse_next(&pr->parser, &pr->io.c.in, &ev)) {
		case IMAP_PARSE_MORE:
			goto read_all;
		case IMAP_PARSE_LINE:
			if (!probe_line(w, ev.line, ev.line_len))
				return;
			break;
		case IMAP_PARSE_ERROR:
			probe_fail(w, "unreadable response: %s", ev.error ? ev.error : "?");
			return;
		default:
			break;		/* literals: nothing a probe needs */
		}
	}
read_all:
	if (pr->io.c.eof) {
		probe_fail(w, "connection closed by server");
		return;
	}
	if (conn_flush(&pr->io.c) == CONN_ERROR) {
		probe_fail(w, "%s", pr->io.c.error);
		return;
	}
	gw_io_update(&pr->io);
}

static void
probe_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_worker *w = t->data;

	(void)loop;
	(void)revents;
	probe_fail(w, "no answer within %.0f seconds", t->repeat);
}

void
gw_probe_start(struct gw_worker *w)
{
	const struct gw_config *cfg = w->cfg;
	struct gw_probe *pr = &w->probe;

	if (pr->state != GW_PROBE_IDLE || w->stopping)
		return;
	pr->caps = 0;
	pr->got_caps = false;
	if (gw_io_connect(&pr->io, w->loop, &cfg->up_addr, cfg->up_addrlen, PROBE_IN_MAX,
	    PROBE_OUT_MAX, probe_io_cb, w) < 0) {
		probe_fail(w, "connect failed: %s", strerror(errno));
		return;
	}
	imap_parser_init(&pr->parser, cfg->imap_line_max);
	ev_init(&pr->timer, probe_timer_cb);
	pr->timer.data = w;
	pr->state = GW_PROBE_CONNECTING;
	probe_arm(w);
}
