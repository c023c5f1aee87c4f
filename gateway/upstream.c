/* gateway/upstream.c: the IMAP connection of a session (RFC 3501/9051 client side).
 *
 * Connects without blocking (the address was resolved at config load), runs TLS when
 * configured, feeds the server's bytes to imap/imap_parse and routes what comes out:
 * tagged responses to their command's completion (imap/imap_queue), literals to the RETR/TOP
 * streamer (retr.c), untagged data (CAPABILITY, EXISTS, UIDVALIDITY, FETCH sizes) into the
 * session. Not for: what to send when (login.c, retr.c, update.c decide that).
 *
 * Backpressure: while a literal streams to a client whose output is above the high
 * watermark, events are left unparsed in the input buffer and reading stops; the client's
 * drain calls gw_upstream_resume(). A whole message is never held here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "../common/log.h"
#include "../imap/imap_resp.h"
#include "../imap/imap_search.h"
#include "session.h"

#define UP_IN_MAX (64 * 1024)		/* raw bytes read ahead of the parser */
#define UP_OUT_MAX (1024 * 1024)	/* commands; a STORE uid set is the largest */

static const char *const upcmd_names[] = {
	[GW_UPCMD_CAPABILITY] = "CAPABILITY", [GW_UPCMD_STARTTLS] = "STARTTLS",
	[GW_UPCMD_ID] = "ID", [GW_UPCMD_LOGIN] = "login", [GW_UPCMD_SELECT] = "SELECT",
	[GW_UPCMD_SNAPSHOT] = "listing messages", [GW_UPCMD_FETCH_BODY] = "fetching a message",
	[GW_UPCMD_FETCH_HEADER] = "fetching a header", [GW_UPCMD_FETCH_TEXT] = "fetching a body part",
	[GW_UPCMD_STORE] = "flagging messages", [GW_UPCMD_EXPUNGE] = "expunging",
	[GW_UPCMD_SEARCH] = "searching deleted messages", [GW_UPCMD_NOOP] = "NOOP",
	[GW_UPCMD_LOGOUT] = "LOGOUT", [GW_UPCMD_VERIFY] = "checking which deleted messages remain",
};

const char *
gw_upcmd_name(int kind)
{
	if (kind < 0 || (size_t)kind >= sizeof(upcmd_names) / sizeof(upcmd_names[0]))
		return "?";
	return upcmd_names[kind];
}

static void up_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void up_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

static void
up_update(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;

	if (gw_io_open(&up->io))
		gw_io_update(&up->io);
}

/* The timeout that applies now, in seconds. */
static double
up_timeout(const struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;

	if (s->up.state == GW_UP_CONNECTING)
		return cfg->connect_timeout;
	if (s->up.io.c.handshaking)
		return cfg->tls_handshake_timeout;
	return cfg->upstream_timeout;
}

/* Restarts the timeout clock with whatever timeout applies in the new state. */
static void
up_rearm(struct gw_session *s)
{
	s->up.last_rx = ev_now(s->w->loop);
	s->up.timer.repeat = up_timeout(s);
	ev_timer_again(s->w->loop, &s->up.timer);
}

int
gw_upstream_connect(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	struct gw_upstream *up = &s->up;

	memset(up, 0, sizeof(*up));
	imap_parser_init(&up->parser, cfg->imap_line_max);
	imap_queue_init(&up->queue);
	if (gw_io_connect(&up->io, s->w->loop, &cfg->up_addr, cfg->up_addrlen, UP_IN_MAX,
	    UP_OUT_MAX, up_io_cb, s) < 0) {
		snprintf(up->last_error, sizeof(up->last_error), "connect to %s:%u failed: %s",
		    cfg->up_host, cfg->up_port, strerror(errno));
		return -1;
	}
	up->io.c.out.secret = true;	/* LOGIN and AUTHENTICATE: wiped once sent */
	up->state = GW_UP_CONNECTING;
	up->last_rx = ev_now(s->w->loop);
	ev_init(&up->timer, up_timer_cb);
	up->timer.data = s;
	up->timer.repeat = up_timeout(s);
	ev_timer_again(s->w->loop, &up->timer);
	up_update(s);
	return 0;
}

int
gw_upstream_start_tls(struct gw_session *s)
{
	const struct gw_config *cfg = s->w->cfg;
	struct gw_upstream *up = &s->up;

	if (conn_start_tls(&up->io.c, s->w->upstream_tls, false, cfg->up_host, cfg->up_verify) < 0)
		return -1;
	/* The client speaks first in TLS: send the ClientHello now, or both sides wait. */
	if (conn_handshake(&up->io.c) == CONN_ERROR)
		return -1;
	up_update(s);
	return 0;
}

struct buf *
gw_upstream_cmd(struct gw_session *s, int kind, imap_done_fn *done, uint32_t arg)
{
	struct gw_upstream *up = &s->up;
	struct imap_cmd *cmd;

	if (!gw_io_open(&up->io) || up->bye)
		return NULL;
	if ((cmd = imap_queue_push(&up->queue, kind, done, s, arg)) == NULL)
		return NULL;
	buf_printf(&up->io.c.out, "%s ", cmd->tag);
	return &up->io.c.out;
}

const char *
gw_upstream_last_tag(const struct gw_session *s)
{
	const struct imap_queue *q = &s->up.queue;

	if (q->count == 0)
		return "";
	return q->cmd[(q->head + q->count - 1) % IMAP_QUEUE_MAX].tag;
}

void
gw_upstream_send_end(struct gw_session *s)
{
	/* Written by the io callback on the next loop pass: no failure can re-enter the
	 * caller from here. */
	up_rearm(s);	/* the response timeout starts now */
	up_update(s);
}

void
gw_upstream_close(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;

	if (s->w != NULL && up->timer.data != NULL)
		ev_timer_stop(s->w->loop, &up->timer);
	gw_io_close(&up->io);
	imap_parser_free(&up->parser);
	imap_queue_init(&up->queue);	/* no completion runs: the op was told once */
	buf_free(&up->cont);	/* wipes: it may hold a SASL response */
	up->sasl_err_ack = NULL;
	up->state = GW_UP_NONE;
	up->in_literal = false;
}

void
gw_upstream_logout(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	struct buf *out;

	if (!gw_io_open(&up->io))
		return;
	if (up->state >= GW_UP_LOGIN && !up->in_literal && !up->io.c.handshaking &&
	    (out = gw_upstream_cmd(s, GW_UPCMD_LOGOUT, NULL, 0)) != NULL) {
		buf_append_str(out, "LOGOUT\r\n");
		(void)conn_flush(&up->io.c);	/* best effort: the server frees its session */
	}
	gw_upstream_close(s);
}

void
gw_upstream_fail(struct gw_session *s, const char *fmt, ...)
{
	struct gw_upstream *up = &s->up;
	struct imap_cmd *head = imap_queue_head(&up->queue);
	char what[160], text[GW_LOG_TEXT_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (head != NULL)
		snprintf(up->last_error, sizeof(up->last_error), "%s while %s", what,
		    gw_upcmd_name(head->kind));
	else
		snprintf(up->last_error, sizeof(up->last_error), "%s", what);
	gw_log(LOG_LVL_WARN, s, "upstream %s:%u: \"%s\"", s->w->cfg->up_host, s->w->cfg->up_port,
	    gw_log_text(up->last_error, text, sizeof(text)));
	gw_upstream_close(s);
	gw_session_upstream_lost(s);
}

unsigned
gw_upstream_parse_caps(const struct imap_slice *caps)
{
	static const struct { const char *name; unsigned bit; } known[] = {
		{ "LITERAL+", GW_CAP_LITERALPLUS }, { "LITERAL-", GW_CAP_LITERALPLUS },
		{ "UIDPLUS", GW_CAP_UIDPLUS }, { "SASL-IR", GW_CAP_SASL_IR },
		{ "AUTH=PLAIN", GW_CAP_AUTH_PLAIN }, { "STARTTLS", GW_CAP_STARTTLS },
		{ "LOGINDISABLED", GW_CAP_LOGINDISABLED }, { "ID", GW_CAP_ID },
		{ "AUTH=XOAUTH2", GW_CAP_XOAUTH2 }, { "AUTH=OAUTHBEARER", GW_CAP_OAUTHBEARER },
		{ "IMAP4rev2", GW_CAP_IMAP4REV2 },
	};
	unsigned bits = 0;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (imap_caps_has(caps, known[i].name))
			bits |= known[i].bit;
	return bits;
}

static void
up_parse_caps(struct gw_upstream *up, const struct imap_slice *caps)
{
	up->caps = gw_upstream_parse_caps(caps);
	up->caps_known = true;
}

/* Untagged and tagged status responses may carry codes we track. */
static void
up_status_codes(struct gw_session *s, const struct imap_resp *r)
{
	struct gw_upstream *up = &s->up;
	struct imap_slice arg;
	uint64_t v;

	if (imap_code_is(r, "CAPABILITY", &arg)) {
		up_parse_caps(up, &arg);
	} else if (imap_code_is(r, "UIDVALIDITY", &arg) && imap_slice_to_u64(&arg, &v) &&
	    v <= UINT32_MAX) {
		if (up->have_uidvalidity && up->uidvalidity != (uint32_t)v && s->state != GW_S_AUTHORIZATION) {
			/* DESIGN.md: UIDs no longer name what the client saw; QUIT deletes nothing. */
			up->uidvalidity_changed = true;
			gw_log(LOG_LVL_WARN, s, "upstream UIDVALIDITY changed from %u to %u during the "
			    "session: no deletion will be applied", up->uidvalidity, (uint32_t)v);
		} else {
			up->uidvalidity = (uint32_t)v;
			up->have_uidvalidity = true;
		}
	} else if (imap_code_is(r, "READ-ONLY", NULL)) {
		up->read_only = true;
	}
}

/* True if a command of this kind is waiting for its answer. Untagged data is matched to
 * the kind of command that asks for it, not to the queue's head: servers may answer
 * pipelined commands' data before the earlier ones' tagged responses. */
static bool
up_pending(struct gw_upstream *up, int kind)
{
	for (size_t k = 0; k < up->queue.count; k++)
		if (up->queue.cmd[(up->queue.head + k) % IMAP_QUEUE_MAX].kind == kind)
			return true;
	return false;
}

static void
up_untagged(struct gw_session *s, const struct imap_resp *r)
{
	struct gw_upstream *up = &s->up;

	if (r->status != IMAP_STATUS_NONE) {
		up_status_codes(s, r);
		if (r->status == IMAP_STATUS_BYE) {
			up->bye = true;
			snprintf(up->last_error, sizeof(up->last_error), "server said BYE: %.*s",
			    (int)(r->text.len > 120 ? 120 : r->text.len), (const char *)r->text.p);
		}
		if (up->state == GW_UP_GREETING)
			gw_login_on_greeting(s, r);
		return;
	}
	if (r->has_num && imap_slice_eq(&r->name, "FETCH")) {
		gw_xfer_fetch_line(s, r);	/* RETR/TOP: UID after a literal, quoted or NIL data */
		if (!gw_io_open(&up->io))
			return;			/* it failed the upstream: r's line is gone */
	}
	if (imap_slice_eq(&r->name, "CAPABILITY")) {
		up_parse_caps(up, &r->text);
		if (up->state == GW_UP_READY)
			up->caps_after_login = true;
	} else if (r->has_num && (up_pending(up, GW_UPCMD_SELECT) ||
	    up_pending(up, GW_UPCMD_SNAPSHOT))) {
		gw_login_untagged(s, r);	/* EXISTS, EXPUNGE, the listing's FETCH lines */
	} else if (imap_search_is(r) && (up_pending(up, GW_UPCMD_SEARCH) ||
	    up_pending(up, GW_UPCMD_VERIFY))) {
		gw_update_search_data(s, r);
	}
	/* EXPUNGE, RECENT, FLAGS: the snapshot is fixed and UIDs name messages; what QUIT
	 * removed is asked by UID (update.c), never counted from EXPUNGE lines. */
}

static void
up_line(struct gw_session *s, const uint8_t *line, size_t len)
{
	struct gw_upstream *up = &s->up;
	struct imap_resp r;

	if (!imap_resp_parse(line, len, &r)) {
		gw_upstream_fail(s, "malformed response");
		return;
	}
	switch (r.kind) {
	case IMAP_RESP_CONTINUE:
		if (buf_len(&up->cont) > 0) {
			buf_append(&up->io.c.out, buf_data(&up->cont), buf_len(&up->cont));
			buf_free(&up->cont);	/* a SASL response: wiped, not kept */
		} else if (up->sasl_err_ack != NULL) {
			/* A refused OAuth token comes back as a "+" with an error (RFC 7628
			 * §3.2.2, Google's XOAUTH2): answered once, then the tagged NO follows. */
			gw_log(LOG_LVL_DEBUG, s, "upstream refused the token (SASL error challenge)");
			buf_append_str(&up->io.c.out, up->sasl_err_ack);
			up->sasl_err_ack = NULL;
		} else {
			gw_upstream_fail(s, "unexpected continuation request");
			return;
		}
		up_update(s);
		return;
	case IMAP_RESP_UNTAGGED:
		up_untagged(s, &r);
		return;
	case IMAP_RESP_TAGGED:
		up_status_codes(s, &r);
		if (!imap_queue_complete(&up->queue, &r))
			gw_upstream_fail(s, "response with an unknown tag");
		return;
	}
}

/* Runs parser events until input runs out, the client is full, or the session ends. */
static void
up_process(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	struct imap_event ev;

	while (!s->closing && gw_io_open(&up->io)) {
		if (up->in_literal && gw_session_client_full(s)) {
			up->io.c.read_paused = true;	/* resumed by gw_upstream_resume() */
			break;
		}
		switch (imap_parse_next(&up->parser, &up->io.c.in, &ev)) {
		case IMAP_PARSE_MORE:
			return;
		case IMAP_PARSE_LINE:
			up_line(s, ev.line, ev.line_len);
			break;
		case IMAP_PARSE_LITERAL:
			up->in_literal = true;
			gw_xfer_literal(s, &ev);
			break;
		case IMAP_PARSE_LITERAL_DATA:
			gw_xfer_data(s, ev.data, ev.data_len);
			break;
		case IMAP_PARSE_LITERAL_END:
			up->in_literal = false;
			gw_xfer_literal_end(s);
			break;
		case IMAP_PARSE_ERROR:
			gw_upstream_fail(s, "unreadable response: %s", ev.error ? ev.error : "?");
			return;
		}
	}
}

void
gw_upstream_resume(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;

	if (!gw_io_open(&up->io) || !up->io.c.read_paused)
		return;
	up->io.c.read_paused = false;
	up->last_rx = ev_now(s->w->loop);	/* a slow client is not a stalled server */
	up_process(s);	/* what was read before the pause; the rest, even what TLS holds
			 * decrypted, comes through up_io_cb (gw_io_update()) */
	if (!s->closing)
		gw_session_flush(s);
	up_update(s);
}

static void
up_connected(struct gw_session *s)
{
	struct gw_upstream *up = &s->up;
	int err = gw_io_connected(&up->io);

	if (err != 0) {
		gw_upstream_fail(s, "connect failed: %s", strerror(err));
		return;
	}
	up->state = GW_UP_GREETING;
	if (s->w->cfg->up_security == GW_SEC_TLS && gw_upstream_start_tls(s) < 0) {
		gw_upstream_fail(s, "%s", up->io.c.error);
		return;
	}
	up_rearm(s);	/* from now on the handshake or response timeout applies */
}

static void
up_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;
	struct gw_upstream *up = &s->up;
	enum conn_status st;
	size_t before;

	(void)loop;
	(void)revents;
	if (up->state == GW_UP_CONNECTING) {
		up_connected(s);
		if (!gw_io_open(&up->io))
			return;
	}
	if (conn_flush(&up->io.c) == CONN_ERROR) {
		gw_upstream_fail(s, "%s", up->io.c.error);
		return;
	}
	if (!up->io.c.read_paused || up->io.c.handshaking) {
		before = up->io.c.bytes_in;
		st = conn_read(&up->io.c);
		if (st == CONN_ERROR) {
			gw_upstream_fail(s, "%s", up->io.c.error);
			return;
		}
		if (up->io.c.bytes_in != before)
			up->last_rx = ev_now(s->w->loop);
	}
	/* However the handshake finished: in this read, or in a write elsewhere (gw_io_update()
	 * then calls us again). Outside the test above, so that the news is always taken. */
	if (conn_tls_established(&up->io.c)) {
		gw_log(LOG_LVL_DEBUG, s, "upstream TLS established (%s)",
		    SSL_get_version(up->io.c.ssl));
		up_rearm(s);
		if (up->state == GW_UP_STARTTLS)
			gw_login_tls_done(s);
		if (!gw_io_open(&up->io))
			return;
	}
	if (!up->io.c.read_paused || up->io.c.handshaking) {
		up_process(s);
		if (!gw_io_open(&up->io) || s->closing)
			goto out;
		if (up->io.c.eof && !up->io.c.read_paused) {
			gw_upstream_fail(s, "%s", up->bye ? up->last_error : "connection closed by server");
			goto out;
		}
	}
	up_update(s);
out:
	if (!s->closing)
		gw_session_flush(s);
}

static void
up_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;
	struct gw_upstream *up = &s->up;
	double timeout = up_timeout(s), idle = ev_now(loop) - up->last_rx;

	(void)revents;
	/* Waiting on nothing, or paused for a slow client: not the server's fault. */
	if ((imap_queue_count(&up->queue) == 0 && up->state == GW_UP_READY) || up->io.c.read_paused)
		idle = 0;
	if (idle >= timeout) {
		gw_upstream_fail(s, "no response for %.0f seconds", idle);
		if (!s->closing)
			gw_session_flush(s);
		return;
	}
	t->repeat = timeout - idle;
	ev_timer_again(loop, t);
}
