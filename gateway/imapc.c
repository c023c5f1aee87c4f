/* gateway/imapc.c: one IMAP client connection; see imapc.h.
 *
 * The server's bytes go through imap/imap_parse; lines are split by imap/imap_resp, tagged
 * ones complete their command (imap/imap_queue), untagged ones update what the connection
 * tracks and then go to the active ops, literals to the op that takes them. While paused
 * (backpressure) events stay unparsed in the input buffer and reading stops; a whole
 * message is never held here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "imapc.h"
#include "metrics.h"

/* Raw bytes read ahead of the parser: two of conn's 64 KiB reads, so that one can land while
 * the parser still holds part of the last (a paused RETR holds this much at most). */
#define IMAPC_IN_MAX (128 * 1024)
#define IMAPC_OUT_MAX (1024 * 1024)	/* commands; a STORE uid set is the largest */

static void imapc_io(struct gw_io *io, enum gw_io_event ev, void *ctx);
static void imapc_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void prelogin_next(struct gw_imapc *c);
static void imapc_fail_as(struct gw_imapc *c, enum metrics_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void
gw_imapc_target_from_config(struct gw_imapc_target *t_r, const struct gw_config *cfg,
    SSL_CTX *tls)
{
	memset(t_r, 0, sizeof(*t_r));
	t_r->addr = &cfg->up_addr;
	t_r->addrlen = cfg->up_addrlen;
	t_r->host = cfg->up_host;
	t_r->port = cfg->up_port;
	t_r->security = cfg->up_security;
	t_r->tls = tls;
	t_r->verify = cfg->up_verify;
	t_r->connect_timeout = cfg->connect_timeout;
	t_r->handshake_timeout = cfg->tls_handshake_timeout;
	t_r->response_timeout = cfg->upstream_timeout;
	t_r->line_max = cfg->imap_line_max;
}

unsigned
gw_imapc_parse_caps(const struct slice *caps)
{
	static const struct { const char *name; unsigned bit; } known[] = {
		{ "LITERAL+", GW_CAP_LITERALPLUS }, { "LITERAL-", GW_CAP_LITERALPLUS },
		{ "UIDPLUS", GW_CAP_UIDPLUS }, { "SASL-IR", GW_CAP_SASL_IR },
		{ "AUTH=PLAIN", GW_CAP_AUTH_PLAIN }, { "STARTTLS", GW_CAP_STARTTLS },
		{ "LOGINDISABLED", GW_CAP_LOGINDISABLED }, { "ID", GW_CAP_ID },
		{ "AUTH=XOAUTH2", GW_CAP_XOAUTH2 }, { "AUTH=OAUTHBEARER", GW_CAP_OAUTHBEARER },
		{ "IMAP4rev2", GW_CAP_IMAP4REV2 }, { "CONDSTORE", GW_CAP_CONDSTORE },
		{ "QRESYNC", GW_CAP_CONDSTORE },
	};
	unsigned bits = 0;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (imap_caps_has(caps, known[i].name))
			bits |= known[i].bit;
	return bits;
}

/* --- timeouts --- */

static bool
imapc_has_loop(const struct gw_imapc *c)
{
	return c->loop != NULL;		/* scripted connections (tests) have none */
}

static double
imapc_timeout(const struct gw_imapc *c)
{
	if (c->state == GW_IMAPC_CONNECTING && c->io.connecting)
		return c->t->connect_timeout;
	if (c->io.c.handshaking)
		return c->t->handshake_timeout;
	return c->t->response_timeout;
}

/* The clock of the timeout that applies now restarts. */
static void
imapc_rearm(struct gw_imapc *c)
{
	if (!imapc_has_loop(c))
		return;
	c->io.rx_at = ev_now(c->loop);
	c->timer.repeat = imapc_timeout(c);
	ev_timer_again(c->loop, &c->timer);
}

static void
imapc_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_imapc *c = t->data;
	double timeout = imapc_timeout(c), idle = ev_now(loop) - c->io.rx_at;

	(void)revents;
	/* Waiting on nothing, or paused for a slow client: not the server's fault. */
	if ((c->state == GW_IMAPC_READY && imap_queue_count(&c->queue) == 0) ||
	    c->io.c.read_paused)
		idle = 0;
	if (idle >= timeout) {
		imapc_fail_as(c, MET_ERR_UPSTREAM_TIMEOUT, "no response for %.0f seconds", idle);
		return;
	}
	t->repeat = timeout - idle;
	ev_timer_again(loop, t);
}

/* --- opening and closing --- */

static void
imapc_reset(struct gw_imapc *c)
{
	if (imapc_has_loop(c))
		ev_timer_stop(c->loop, &c->timer);
	gw_io_close(&c->io);
	imap_parser_free(&c->parser);
	imap_queue_init(&c->queue);
	c->state = GW_IMAPC_CLOSED;
	c->ops = NULL;
	c->in_literal = false;
	c->literal_op = NULL;
}

/* A closed connection that knows its target, owner and name. */
static void
imapc_init(struct gw_imapc *c, const struct gw_imapc_target *t, const char *log_id,
    const struct gw_imapc_handler *h, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->t = t;
	c->h = h;
	c->ctx = ctx;
	c->log_id = log_id;
	imap_parser_init(&c->parser, t->line_max);
	imap_queue_init(&c->queue);
}

int
gw_imapc_open(struct gw_imapc *c, struct ev_loop *loop, const struct gw_imapc_target *t,
    const char *log_id, const struct gw_imapc_handler *h, void *ctx)
{
	imapc_init(c, t, log_id, h, ctx);
	if (gw_io_connect(&c->io, loop, t->addr, t->addrlen, IMAPC_IN_MAX, IMAPC_OUT_MAX,
	    imapc_io, c) < 0) {
		snprintf(c->last_error, sizeof(c->last_error), "connect failed: %s",
		    strerror(errno));
		imap_parser_free(&c->parser);
		return -1;
	}
	c->io.c.out.secret = true;	/* LOGIN and AUTHENTICATE: wiped once sent */
	c->state = GW_IMAPC_CONNECTING;
	c->loop = loop;
	ev_init(&c->timer, imapc_timer_cb);
	c->timer.data = c;
	imapc_rearm(c);
	return 0;
}

void
gw_imapc_close(struct gw_imapc *c)
{
	imapc_reset(c);
}

void
gw_imapc_logout(struct gw_imapc *c)
{
	struct buf *out;

	if (c->state == GW_IMAPC_CLOSED)
		return;
	/* Only between whole responses, with the line clear: the server frees its session. */
	if (c->state == GW_IMAPC_READY && !c->in_literal && !c->io.c.handshaking &&
	    (out = gw_imapc_cmd(c, &c->prelogin, "LOGOUT", NULL)) != NULL) {
		buf_append_str(out, "LOGOUT\r\n");
		(void)gw_io_flush(&c->io);
	}
	imapc_reset(c);
}

/* gw_imapc_fail() with the failure's kind for popgate_errors_total (gateway/metrics.h):
 * what the ops and the parser find wrong is a protocol error; the transport's own failures
 * say which they are. */
static void __attribute__((format(printf, 3, 0)))
imapc_vfail(struct gw_imapc *c, enum metrics_error kind, const char *fmt, va_list ap)
{
	struct imap_cmd *head = imap_queue_head(&c->queue);
	struct gw_imapc_op *ops = c->ops;
	char what[160], text[LOG_ESCAPE_SIZE(256)];

	if (c->state == GW_IMAPC_CLOSED)
		return;
	gw_metrics_error(kind);
	vsnprintf(what, sizeof(what), fmt, ap);
	if (head != NULL && head->what != NULL)
		snprintf(c->last_error, sizeof(c->last_error), "%s while %s", what, head->what);
	else
		snprintf(c->last_error, sizeof(c->last_error), "%s", what);
	log_warn("%s upstream %s:%u: \"%s\"", c->log_id, c->t->host, c->t->port,
	    log_escape(text, sizeof(text), (const uint8_t *)c->last_error, strlen(c->last_error),
	    256));
	imapc_reset(c);
	/* Each op learns once, then the owner. An op's reaction may end the owner (and call
	 * gw_imapc_logout(), which now does nothing): the list was taken before. */
	for (struct gw_imapc_op *op = ops, *next; op != NULL; op = next) {
		next = op->next;
		op->active = false;
		op->next = NULL;
		if (op->h != NULL && op->h->lost != NULL)
			op->h->lost(op, c->last_error);
	}
	if (c->h != NULL && c->h->lost != NULL)
		c->h->lost(c->ctx, c->last_error);
}

static void
imapc_fail_as(struct gw_imapc *c, enum metrics_error kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imapc_vfail(c, kind, fmt, ap);
	va_end(ap);
}

void
gw_imapc_fail(struct gw_imapc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imapc_vfail(c, MET_ERR_UPSTREAM_PROTOCOL, fmt, ap);
	va_end(ap);
}

bool
gw_imapc_is_ready(const struct gw_imapc *c)
{
	return c->state == GW_IMAPC_READY && !c->bye;
}

const char *
gw_imapc_last_error(const struct gw_imapc *c)
{
	return c->last_error;
}

/* --- ops and commands --- */

void
gw_imapc_op_begin(struct gw_imapc *c, struct gw_imapc_op *op, const struct gw_imapc_op_handler *h)
{
	gw_imapc_op_end(c, op);
	op->h = h;
	op->active = true;
	op->next = c->ops;
	c->ops = op;
}

void
gw_imapc_op_end(struct gw_imapc *c, struct gw_imapc_op *op)
{
	if (!op->active)
		return;
	for (struct gw_imapc_op **pp = &c->ops; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	op->active = false;
	op->next = NULL;
	imap_queue_detach(&c->queue, op);
	if (c->literal_op == op)
		c->literal_op = NULL;	/* the rest of its literal is skipped */
}

struct buf *
gw_imapc_cmd(struct gw_imapc *c, struct gw_imapc_op *op, const char *what,
    gw_imapc_done_fn *done)
{
	struct imap_cmd *cmd;

	if (c->state < GW_IMAPC_GREETING || c->bye)
		return NULL;
	if ((cmd = imap_queue_push(&c->queue, what, op, (imap_done_any *)done)) == NULL)
		return NULL;
	buf_printf(&c->io.c.out, "%s ", cmd->tag);
	return &c->io.c.out;
}

const char *
gw_imapc_last_tag(const struct gw_imapc *c)
{
	const struct imap_queue *q = &c->queue;

	if (q->count == 0)
		return "";
	return q->cmd[(q->head + q->count - 1) % IMAP_QUEUE_MAX].tag;
}

void
gw_imapc_send(struct gw_imapc *c)
{
	/* Written by the io on the next loop pass, or by the owner's flush: no failure can
	 * re-enter the caller from here. */
	imapc_rearm(c);		/* the response timeout starts now */
	gw_io_update(&c->io);
}

void
gw_imapc_write(struct gw_imapc *c, const void *p, size_t n)
{
	buf_append(&c->io.c.out, p, n);
	gw_io_update(&c->io);
}

void
gw_imapc_authenticated(struct gw_imapc *c, const struct imap_resp *r)
{
	c->authenticated = true;
	c->caps_after_login = imap_code_is(r, "CAPABILITY", NULL);
}

void
gw_imapc_keepalive(struct gw_imapc *c, double idle)
{
	struct buf *out;

	if (!gw_imapc_is_ready(c) || imap_queue_count(&c->queue) > 0 || !imapc_has_loop(c) ||
	    ev_now(c->loop) - c->io.rx_at <= idle)
		return;
	if ((out = gw_imapc_cmd(c, &c->prelogin, "NOOP", NULL)) != NULL) {
		buf_append_str(out, "NOOP\r\n");
		gw_imapc_send(c);
	}
}

/* --- what the server says --- */

static void
imapc_caps(struct gw_imapc *c, const struct slice *caps)
{
	c->caps = gw_imapc_parse_caps(caps);
	c->caps_known = true;
	/* A list that names no IMAP version (RFC 3501 §7.2.1: it must) names nothing. */
	if (imap_caps_has(caps, "IMAP4rev1") || imap_caps_has(caps, "IMAP4rev2"))
		c->caps_seen = true;
	if (c->authenticated)
		c->caps_after_login = true;
}

/* Response codes the connection tracks, on any status response. */
static void
imapc_codes(struct gw_imapc *c, const struct imap_resp *r)
{
	struct slice arg;
	uint64_t v;

	if (imap_code_is(r, "CAPABILITY", &arg)) {
		imapc_caps(c, &arg);
	} else if (imap_code_is(r, "UIDVALIDITY", &arg) && imap_slice_to_u64(&arg, &v) &&
	    v <= UINT32_MAX) {
		if (!c->have_uidvalidity) {
			c->uidvalidity = (uint32_t)v;
			c->have_uidvalidity = true;
		} else if (c->uidvalidity != (uint32_t)v && !c->uidvalidity_changed) {
			/* UIDs learned before no longer name the same messages. */
			c->uidvalidity_changed = true;
			log_warn("%s upstream UIDVALIDITY changed from %u to %u: the UIDs known "
			    "before name other messages now", c->log_id, c->uidvalidity, (uint32_t)v);
		}
	} else if (imap_code_is(r, "READ-ONLY", NULL)) {
		c->read_only = true;
	} else if (imap_code_is(r, "UIDNEXT", &arg)) {
		/* One we cannot read is one we do not have: the listing cache is not used. */
		c->have_uidnext = imap_slice_to_u64(&arg, &v) && v > 0 && v <= UINT32_MAX;
		c->uidnext = c->have_uidnext ? (uint32_t)v : 0;
	} else if (imap_code_is(r, "HIGHESTMODSEQ", &arg)) {
		/* RFC 7162 §7: mod-sequence-value, 1..2^63-1 */
		c->have_modseq = imap_slice_to_u64(&arg, &v) && v > 0 && v <= INT64_MAX;
		c->modseq = c->have_modseq ? v : 0;
	} else if (imap_code_is(r, "NOMODSEQ", NULL)) {
		c->nomodseq = true;
	}
}

static void
greeting(struct gw_imapc *c, const struct imap_resp *r)
{
	if (r->status == IMAP_STATUS_PREAUTH) {
		/* Logged in as someone we did not choose: not the mailbox we are after. */
		gw_imapc_fail(c, "upstream greeted with PREAUTH");
		return;
	}
	if (r->status != IMAP_STATUS_OK) {
		gw_imapc_fail(c, "upstream greeting was not OK");
		return;
	}
	c->state = GW_IMAPC_PRELOGIN;
	prelogin_next(c);
}

static void
untagged(struct gw_imapc *c, const struct imap_resp *r)
{
	if (r->status != IMAP_STATUS_NONE) {
		imapc_codes(c, r);
		if (r->status == IMAP_STATUS_BYE) {
			c->bye = true;
			snprintf(c->last_error, sizeof(c->last_error), "server said BYE: %.*s",
			    (int)(r->text.len > 120 ? 120 : r->text.len), (const char *)r->text.p);
		}
		if (c->state == GW_IMAPC_GREETING) {
			greeting(c, r);
			return;
		}
	} else if (imap_slice_eq(&r->name, "CAPABILITY")) {
		imapc_caps(c, &r->text);
	} else if (r->has_num && imap_slice_eq(&r->name, "EXISTS")) {
		c->have_exists = true;
		c->exists = r->num;
	} else if (r->has_num && imap_slice_eq(&r->name, "EXPUNGE")) {
		c->expunges++;
		if (c->exists > 0)
			c->exists--;
	}
	for (struct gw_imapc_op *op = c->ops, *next; op != NULL && c->state != GW_IMAPC_CLOSED;
	    op = next) {
		next = op->next;
		if (op->h->untagged != NULL)
			op->h->untagged(op, r);
	}
}

static void
continuation(struct gw_imapc *c, const struct imap_resp *r)
{
	for (struct gw_imapc_op *op = c->ops; op != NULL; op = op->next) {
		if (op->h->continuation != NULL && op->h->continuation(op, r))
			return;
		if (c->state == GW_IMAPC_CLOSED)
			return;
	}
	gw_imapc_fail(c, "unexpected continuation request");
}

static void
line(struct gw_imapc *c, const uint8_t *p, size_t len)
{
	struct imap_resp r;
	struct imap_cmd cmd;

	if (!imap_resp_parse(p, len, &r)) {
		gw_imapc_fail(c, "malformed response");
		return;
	}
	switch (r.kind) {
	case IMAP_RESP_CONTINUE:
		continuation(c, &r);
		return;
	case IMAP_RESP_UNTAGGED:
		untagged(c, &r);
		return;
	case IMAP_RESP_TAGGED:
		imapc_codes(c, &r);
		if (!imap_queue_take(&c->queue, &r.tag, &cmd)) {
			gw_imapc_fail(c, "response with an unknown tag");
			return;
		}
		/* A detached command (its op ended) is answered to no one. */
		if (cmd.done != NULL)
			((gw_imapc_done_fn *)cmd.done)(cmd.owner, &r);
		return;
	}
}

static void
literal_begin(struct gw_imapc *c, const struct imap_event *ev)
{
	c->in_literal = true;
	c->literal_op = NULL;
	for (struct gw_imapc_op *op = c->ops; op != NULL; op = op->next) {
		if (op->h->literal != NULL && op->h->literal(op, ev)) {
			c->literal_op = op;
			return;
		}
		if (c->state == GW_IMAPC_CLOSED)
			return;
	}
}

/* Handles parser events until input runs out, a pause, or the connection ends. */
static void
imapc_process(struct gw_imapc *c)
{
	struct imap_event ev;

	while (c->state >= GW_IMAPC_GREETING && !c->io.c.read_paused) {
		switch (imap_parse_next(&c->parser, &c->io.c.in, &ev)) {
		case IMAP_PARSE_MORE:
			return;
		case IMAP_PARSE_LINE:
			line(c, ev.line, ev.line_len);
			break;
		case IMAP_PARSE_LITERAL:
			literal_begin(c, &ev);
			break;
		case IMAP_PARSE_LITERAL_DATA:
			if (c->literal_op != NULL)
				c->literal_op->h->literal_data(c->literal_op, ev.data, ev.data_len);
			break;
		case IMAP_PARSE_LITERAL_END:
			c->in_literal = false;
			c->literal_op = NULL;
			break;
		case IMAP_PARSE_ERROR:
			gw_imapc_fail(c, "unreadable response: %s", ev.error ? ev.error : "?");
			return;
		}
	}
}

/* After the server's bytes: the end of the stream, then the owner's flush. */
static void
imapc_settle(struct gw_imapc *c)
{
	if (c->state != GW_IMAPC_CLOSED && c->io.c.eof && !c->io.c.read_paused)
		imapc_fail_as(c, MET_ERR_UPSTREAM_CLOSED, "%s", c->bye ? c->last_error :
		    "connection closed by server");
	if (c->h != NULL && c->h->settled != NULL)
		c->h->settled(c->ctx);
}

void
gw_imapc_pause(struct gw_imapc *c)
{
	gw_io_pause(&c->io, true);
}

void
gw_imapc_resume(struct gw_imapc *c)
{
	if (c->state == GW_IMAPC_CLOSED || !c->io.c.read_paused)
		return;
	gw_io_pause(&c->io, false);
	if (imapc_has_loop(c))
		c->io.rx_at = ev_now(c->loop);	/* a slow client is not a stalled server */
	/* What was read before the pause; the rest, even what TLS holds decrypted, comes
	 * through the io (gw_io_update()). */
	imapc_process(c);
	imapc_settle(c);
}

bool
gw_imapc_paused(const struct gw_imapc *c)
{
	return c->io.c.read_paused;
}

void
gw_imapc_open_scripted(struct gw_imapc *c, const struct gw_imapc_target *t, unsigned caps,
    const char *log_id, const struct gw_imapc_handler *h, void *ctx)
{
	imapc_init(c, t, log_id, h, ctx);
	c->io.c.fd = -1;
	c->state = GW_IMAPC_READY;
	c->caps = caps;
	c->caps_known = true;
}

void
gw_imapc_feed(struct gw_imapc *c, const void *p, size_t n)
{
	buf_append(&c->io.c.in, p, n);
	imapc_process(c);
}

/* --- before ready: greeting, STARTTLS, CAPABILITY --- */

/* The connection whose own op (`prelogin`) a completion belongs to. */
#define PRELOGIN_CONN(op) ((struct gw_imapc *)((char *)(op) - offsetof(struct gw_imapc, prelogin)))

static void
caps_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_imapc *c = PRELOGIN_CONN(op);

	if (r->status != IMAP_STATUS_OK) {
		gw_imapc_fail(c, "CAPABILITY failed");
		return;
	}
	c->caps_known = true;	/* even if the server listed nothing we know */
	prelogin_next(c);
}

static void
starttls_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_imapc *c = PRELOGIN_CONN(op);

	if (r->status != IMAP_STATUS_OK) {
		imapc_fail_as(c, MET_ERR_UPSTREAM_TLS, "upstream refused STARTTLS");
		return;
	}
	/* Bytes after the OK were sent in plaintext before TLS: an injection attempt
	 * (CVE-2011-0411 class). Refused, never read as if protected. */
	if (buf_len(&c->io.c.in) > 0) {
		gw_imapc_fail(c, "upstream sent data after STARTTLS OK");
		return;
	}
	c->caps_known = c->caps_seen = false;	/* RFC 3501 §6.2.1: forget what was said in clear */
	c->caps = 0;
	if (gw_io_start_tls(&c->io, c->t->tls, false, c->t->host, c->t->verify) < 0) {
		gw_imapc_fail(c, "%s", c->io.c.error);
		return;
	}
	imapc_rearm(c);
}

static void
prelogin_cmd(struct gw_imapc *c, const char *verb, gw_imapc_done_fn *done)
{
	struct buf *out = gw_imapc_cmd(c, &c->prelogin, verb, done);

	if (out == NULL) {
		gw_imapc_fail(c, "cannot send %s", verb);
		return;
	}
	buf_printf(out, "%s\r\n", verb);
	gw_imapc_send(c);
}

/* Decides the next step from what is known about the connection. */
static void
prelogin_next(struct gw_imapc *c)
{
	if (c->t->security == GW_SEC_STARTTLS && !conn_tls_active(&c->io.c)) {
		if (c->io.c.ssl != NULL)
			return;		/* the handshake runs: TLS_READY goes on */
		if (c->caps_known && !(c->caps & GW_CAP_STARTTLS)) {
			/* No silent downgrade: the password would cross in clear. */
			imapc_fail_as(c, MET_ERR_UPSTREAM_TLS, "upstream does not offer STARTTLS");
			return;
		}
		prelogin_cmd(c, c->caps_known ? "STARTTLS" : "CAPABILITY",
		    c->caps_known ? starttls_done : caps_done);
		return;
	}
	if (!c->caps_known) {
		prelogin_cmd(c, "CAPABILITY", caps_done);
		return;
	}
	c->state = GW_IMAPC_READY;
	c->h->ready(c->ctx);
}

static void
imapc_io(struct gw_io *io, enum gw_io_event ev, void *ctx)
{
	struct gw_imapc *c = ctx;

	(void)io;
	switch (ev) {
	case GW_IO_CONNECTED:
		c->state = GW_IMAPC_GREETING;
		if (c->t->security == GW_SEC_TLS &&
		    gw_io_start_tls(&c->io, c->t->tls, false, c->t->host, c->t->verify) < 0) {
			imapc_fail_as(c, MET_ERR_UPSTREAM_TLS, "%s", c->io.c.error);
			return;
		}
		imapc_rearm(c);	/* from now on the handshake or response timeout applies */
		return;
	case GW_IO_TLS_READY:
		log_debug("%s upstream TLS established (%s)", c->log_id,
		    SSL_get_version(c->io.c.ssl));
		imapc_rearm(c);
		if (c->state == GW_IMAPC_PRELOGIN)
			prelogin_next(c);	/* after STARTTLS */
		break;
	case GW_IO_DATAIN:
	case GW_IO_EOF:
		imapc_process(c);
		break;
	case GW_IO_LOWAT:
		return;
	case GW_IO_ERROR:
		/* Where it failed says what failed: connect(), the TLS handshake, or the
		 * connection itself. */
		imapc_fail_as(c, c->state == GW_IMAPC_CONNECTING ? MET_ERR_UPSTREAM_CONNECT :
		    c->io.c.handshaking ? MET_ERR_UPSTREAM_TLS : MET_ERR_UPSTREAM_IO, "%s",
		    c->io.c.error);
		break;
	}
	imapc_settle(c);
}
