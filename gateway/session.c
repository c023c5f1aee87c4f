/* gateway/session.c: a session's life: accept, greeting, reading commands, writing replies
 * with backpressure, timers, the end-of-session log line, and freeing.
 *
 * Ordering rules (Redis's networking.c style, each for a reason):
 *  - A command's line is consumed from the input after it is handled: the input buffer is
 *    `secret` (common/buf.h), so consuming wipes the line, PASS and AUTH ones included.
 *    A handler that emptied the input (STLS) or closed the session leaves nothing to
 *    consume, and buf_consume() takes no more than there is.
 *  - Ending a session inside a callback only marks it: both conns close at once, the
 *    memory is freed by the worker's ev_prepare reaper, so no caller up the stack touches
 *    freed memory.
 *  - Writes go to the client's buffer; the flush at the end of each callback sends them,
 *    and its drain below the low watermark resumes whatever was waiting (LIST output,
 *    a paused upstream, pipelined commands).
 *  - The client's EOF (FIN, close_notify, a TCP close under TLS) ends nothing by itself:
 *    the commands already read run in order, QUIT and its UPDATE included, then the
 *    session ends "disconnected" (gw_session_process()). Nothing is read after EOF.
 *  - An ended session first writes what is queued for its client (linger_start()): the
 *    last reply is never thrown away because the client's socket buffer was full.
 *  - The inactivity timer counts only while popgate waits for the client
 *    (waits_for_client()); the upstream timers bound popgate's own waits. */
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../common/log.h"
#include "../common/log_rate.h"
#include "../pop3/pop3_reply.h"
#include "metrics.h"
#include "proxyproto.h"
#include "session.h"

#define CLIENT_IN_MAX (2 * POP3_SASL_LINE_MAX)
/* A "line" this long without LF is a flood: the connection is closed. */
#define CLIENT_FLOOD_MAX (64 * 1024)
/* Above the high watermark nothing more is produced, but one upstream read may still be
 * dot-stuffed into the buffer (at most doubling it): room for that. */
#define CLIENT_OUT_SLACK (512 * 1024)

static const char *const state_names[] = {
	[GW_S_AUTHORIZATION] = "AUTHORIZATION", [GW_S_TRANSACTION] = "TRANSACTION",
	[GW_S_UPDATE] = "UPDATE", [GW_S_CLOSED] = "CLOSED",
};

static void client_io(struct gw_io *io, enum gw_io_event ev, void *ctx);
static void idle_cb(struct ev_loop *loop, ev_timer *t, int revents);
static const struct gw_reg_class session_class;
static void session_process(struct gw_session *s);

struct buf *
gw_client_out(struct gw_session *s)
{
	return &s->client.c.out;
}

bool
gw_session_client_full(const struct gw_session *s)
{
	return conn_queued(&s->client.c) >= s->w->cfg->out_hiwat;
}

void
gw_session_enter(struct gw_session *s, enum gw_state st)
{
	if (s->state == st)
		return;
	gw_log(LOG_LVL_DEBUG, s, "state %s -> %s", state_names[s->state], state_names[st]);
	s->state = st;
}

static unsigned
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* " worker=N" for the connect and end lines of a forked worker's sessions; "" in the one
 * process of workers = 1. */
static const char *
worker_field(const struct gw_worker *w, char *buf, size_t size)
{
	buf[0] = '\0';
	if (w->index > 0)
		snprintf(buf, size, " worker=%u", w->index);
	return buf;
}

static void
refuse(int fd, const char *line)
{
	/* Best effort on a fresh socket: the reply fits any send buffer. */
	ssize_t r = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)r;
	close(fd);
}

/* Refused connections (max_per_address): one per connection a client makes, so a flood
 * is bounded like the PROXY closes (common/log_rate.h). Per worker. */
static struct log_rate refused_rate;

void
gw_session_accept(void *ctx, int fd, const struct sockaddr_storage *addr, bool tls)
{
	struct gw_worker *w = ctx;

	/* Behind a load balancer the peer is the proxy: the session waits for the header
	 * that names the client. */
	if (w->cfg->proxy_protocol)
		gw_proxyproto_accept(w, fd, addr, tls);
	else
		gw_session_start(w, fd, addr, addr, tls);
}

void
gw_session_start(struct gw_worker *w, int fd, const struct sockaddr_storage *addr,
    const struct sockaddr_storage *peer, bool tls)
{
	const struct gw_config *cfg = w->cfg;
	struct gw_session *s;
	char worker[24];
	enum gw_shared_take taken;
	unsigned same, left_out = 0, secs = 0;

	if (w->sessions.count >= cfg->max_sessions) {
		log_warn("session limit %u reached: refusing a connection", cfg->max_sessions);
		refuse(fd, "-ERR [SYS/TEMP] Too many connections, try again later.\r\n");
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		refuse(fd, "-ERR [SYS/TEMP] Out of memory, try again later.\r\n");
		return;
	}
	s->addr = *addr;
	s->reg.addr = &s->addr;
	/* All workers' sessions from the address (gateway/shared.h), taken with the check. */
	if ((taken = gw_registry_take_addr(&w->sessions, &s->reg, cfg->max_per_address,
	    &same)) != GW_SHARED_OK) {
		char text[64] = "?";

		free(s);
		getnameinfo((const struct sockaddr *)addr, sizeof(*addr), text, sizeof(text), NULL, 0,
		    NI_NUMERICHOST);
		if (taken == GW_SHARED_FULL) {
			log_error("client=%s: the shared limits table is full (sized at the start for "
			    "[limits] max_sessions x [server] workers): refusing a connection", text);
			refuse(fd, "-ERR [SYS/TEMP] Too many connections, try again later.\r\n");
			return;
		}
		if (log_rate_take(&refused_rate, ev_now(w->loop), &left_out, &secs)) {
			if (left_out > 0)
				log_warn("client=%s has %u connections, the limit: refusing one more "
				    "(and %u more refusals in the last %u s)", text, same, left_out,
				    secs);
			else
				log_warn("client=%s has %u connections, the limit: refusing one more",
				    text, same);
		}
		refuse(fd, "-ERR [SYS/TEMP] Too many connections from your address.\r\n");
		return;
	}
	s->w = w;
	s->id = ++w->next_session_id;
	snprintf(s->log_id, sizeof(s->log_id), "session=%08x", s->id);
	/* Whether the hop itself is local is the socket's fact, not the header's: a client
	 * a balancer names 127.0.0.1 has still crossed the network to us. */
	s->peer_loopback = gw_addr_is_loopback(peer);
	s->port = addr_port(addr);
	s->tls_listener = tls;
	s->result = "disconnected";
	s->up.io.c.fd = -1;
	if (getnameinfo((const struct sockaddr *)addr, sizeof(*addr), s->addr_text,
	    sizeof(s->addr_text), NULL, 0, NI_NUMERICHOST) != 0)
		strcpy(s->addr_text, "?");
	gw_io_open(&s->client, w->loop, fd, CLIENT_IN_MAX, cfg->out_hiwat + CLIENT_OUT_SLACK,
	    client_io, s);
	s->client.lowat = cfg->out_lowat;
	s->client.c.in.secret = true;	/* PASS and AUTH lines: wiped once handled */
	s->reg.cls = &session_class;
	s->reg.addr = &s->addr;
	s->client.count_sent = true;	/* popgate_client_sent_bytes_total */
	s->reg.id = s->id;
	gw_registry_add(&w->sessions, &s->reg);
	gw_metrics_session_opened();	/* until session_free() */
	s->started = s->last_activity = ev_now(w->loop);
	ev_init(&s->idle, idle_cb);
	s->idle.data = s;
	s->idle.repeat = tls ? cfg->tls_handshake_timeout : cfg->idle_timeout;
	ev_timer_again(w->loop, &s->idle);
	gw_log(LOG_LVL_DEBUG, s, "connect client=%s port=%u tls=%s%s", s->addr_text, s->port,
	    tls ? "yes" : "no", worker_field(w, worker, sizeof(worker)));
	if (tls) {
		if (gw_io_start_tls(&s->client, w->server_tls, true, NULL, false) < 0) {
			gw_metrics_error(MET_ERR_TLS_HANDSHAKE);
			gw_session_close(s, "tls setup failed");
			return;
		}
		s->op = GW_OP_STLS;	/* the greeting waits for the handshake (RFC 8314) */
		return;
	}
	pop3_reply_ok(gw_client_out(s), "%s", cfg->greeting);
	gw_session_flush(s);
}

const char *
gw_log_user(const struct gw_session *s, char *buf, size_t size)
{
	if (s->cred.user[0] == '\0')
		return "-";
	return log_escape_word(buf, size, (const uint8_t *)s->cred.user, strlen(s->cred.user),
	    GW_LOG_USER_MAX);
}

const char *
gw_log_text(const char *text, char *buf, size_t size)
{
	return log_escape(buf, size, (const uint8_t *)text, strlen(text), GW_LOG_TEXT_MAX);
}

/* The session's one line (DESIGN.md "Operating it"): key=value, the user name and the
 * server's words escaped so that neither can add a field or a line. */
static void
session_log_line(struct gw_session *s)
{
	size_t listed = s->snap.count;
	char user[GW_LOG_USER_SIZE], uperr[GW_LOG_TEXT_SIZE], worker[24];

	gw_log_text(gw_imapc_last_error(&s->up), uperr, sizeof(uperr));
	worker_field(s->w, worker, sizeof(worker));
	log_info("%s%s user=%s client=%s tls=%s listed=%zu retr=%zu dele=%zu "
	    "bytes_out=%zu up_in=%zu up_out=%zu listing=%s duration_ms=%lld result=%s%s%s%s",
	    s->log_id, worker, gw_log_user(s, user, sizeof(user)),
	    s->addr_text, conn_tls_active(&s->client.c) ? "yes" : "no", listed, s->n_retr,
	    s->n_dele, s->client.c.bytes_out, s->up.io.c.bytes_in, s->up.io.c.bytes_out,
	    s->listing != NULL ? s->listing : "none",
	    (long long)((ev_now(s->w->loop) - s->started) * 1000), s->result,
	    uperr[0] ? " upstream_error=\"" : "", uperr, uperr[0] ? "\"" : "");
}

/* A session that ends drains what is queued for its client first: QUIT's "+OK" after an
 * UPDATE, the rest of a RETR, "Too many bad commands" all reach a client whose socket buffer
 * was full when they were written. Nothing is run meanwhile and input is read and dropped
 * (closing with unread input would reset the connection and lose what is in flight). The
 * conn closes once the queue is written, or when the socket took no byte for LINGER_IDLE
 * seconds, or LINGER_MAX seconds after the end, whichever comes first: a client that does
 * not read costs a few seconds of an fd, never a worker's stop. */
#define LINGER_IDLE 5.0
#define LINGER_MAX 30.0

static bool
linger_wanted(const struct gw_session *s)
{
	const struct conn *c = &s->client.c;

	return gw_io_is_open(&s->client) && !s->client_gone && conn_queued(c) > 0 &&
	    !c->out.failed && !c->handshaking && c->error[0] == '\0';
}

/* The end of a session, once its output is written or given up: log line, close, reaper. */
static void
session_end(struct gw_session *s)
{
	struct gw_worker *w = s->w;
	struct conn *c = &s->client.c;

	ev_timer_stop(w->loop, &s->idle);
	if (s->lingering && conn_queued(c) > 0)
		gw_log(LOG_LVL_DEBUG, s, "client took no more bytes: %zu left unsent", conn_queued(c));
	s->lingering = false;
	if (gw_io_is_open(&s->client) && conn_tls_active(c) && conn_queued(c) == 0 &&
	    c->error[0] == '\0') {
		/* Best effort close_notify (RFC 8446 §6.1): the client sees a clean end. */
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	session_log_line(s);
	gw_io_close(&s->client);
	/* Off the live list now; freed by the reaper once the stack has unwound. */
	gw_registry_doom(&w->sessions, &s->reg);
}

/* Starts draining an ended session's output. It stays on the worker's live list (it still
 * holds an fd, and the worker's stop waits for it, at most LINGER_MAX), in state CLOSED. */
static void
linger_start(struct gw_session *s)
{
	struct conn *c = &s->client.c;

	s->lingering = true;
	s->linger_started = s->last_activity = ev_now(s->w->loop);
	buf_reset(&c->in);
	gw_io_pause(&s->client, false);
	s->idle.repeat = LINGER_IDLE;
	ev_timer_again(s->w->loop, &s->idle);
	gw_log(LOG_LVL_DEBUG, s, "ended: writing the %zu bytes still queued for the client",
	    conn_queued(c));
	gw_io_update(&s->client);
}

/* An event on the client while lingering: drop what it sent; end once what is queued is
 * written, or the connection failed. */
static void
linger_io(struct gw_session *s, enum gw_io_event ev)
{
	struct conn *c = &s->client.c;

	buf_reset(&c->in);
	if (ev == GW_IO_ERROR)
		gw_log(LOG_LVL_DEBUG, s, "client gone while its last bytes were written: %s", c->error);
	if (ev == GW_IO_ERROR || conn_queued(c) == 0)
		session_end(s);
}

static void
linger_timer(struct gw_session *s)
{
	ev_tstamp now = ev_now(s->w->loop);
	ev_tstamp last = s->client.tx_at > s->linger_started ? s->client.tx_at : s->linger_started;
	double idle_left = LINGER_IDLE - (now - last);
	double total_left = LINGER_MAX - (now - s->linger_started);

	if (idle_left <= 0 || total_left <= 0) {
		session_end(s);
		return;
	}
	s->idle.repeat = idle_left < total_left ? idle_left : total_left;
	ev_timer_again(s->w->loop, &s->idle);
}

void
gw_session_close(struct gw_session *s, const char *result)
{
	struct gw_worker *w = s->w;

	if (s->closing)
		return;
	s->closing = true;
	if (result != NULL)
		s->result = result;
	gw_session_enter(s, GW_S_CLOSED);
	gw_registry_release_user(&w->sessions, &s->reg);	/* no longer in use */
	ev_timer_stop(w->loop, &s->idle);
	ev_timer_stop(w->loop, &s->delay);
	gw_login_abort(&s->login);
	if (s->mig != NULL)
		gw_migration_abort(s->mig);
	if (s->cache_req != NULL) {
		gw_cache_cancel(s->cache_req);	/* the thread's answer is dropped */
		s->cache_req = NULL;
	}
	gw_session_listing_drop(s);
	gw_keys_abort(&s->keys);
	gw_cache_entries_free(s->keying, s->nkeying);
	s->keying = NULL;
	gw_xfer_abort(&s->xfer);
	gw_update_abort(&s->upd);
	gw_imapc_logout(&s->up);
	gw_cred_wipe(&s->cred);
	if (linger_wanted(s))
		linger_start(s);	/* session_end() when written, or given up */
	else
		session_end(s);
}

/* The registry's view of a session (registry.h). */
static void
session_stop(struct gw_reg_entry *e)
{
	struct gw_session *s = (struct gw_session *)e;

	if (s->state != GW_S_UPDATE)
		gw_session_close(s, "shutdown");
}

static void
session_end_now(struct gw_reg_entry *e)
{
	struct gw_session *s = (struct gw_session *)e;

	gw_session_close(s, "shutdown");
	if (s->lingering)
		session_end(s);
}

static void
session_free(struct gw_reg_entry *e)
{
	struct gw_session *s = (struct gw_session *)e;

	gw_imapc_close(&s->up);
	gw_io_close(&s->client);
	gw_snapshot_free(&s->snap);
	if (s->mig != NULL) {
		gw_migration_abort(s->mig);	/* done by the close already: wipes, stops */
		explicit_bzero(s->mig, sizeof(*s->mig));
		free(s->mig);
	}
	gw_cred_wipe(&s->cred);
	explicit_bzero(s, sizeof(*s));
	free(s);
	gw_metrics_session_closed();
}

/* The worker's sweep: a quiet connection's empty buffers go back (io.h). */
static void
session_sweep(struct gw_reg_entry *e)
{
	struct gw_session *s = (struct gw_session *)e;

	gw_io_release_quiet(&s->client, GW_IO_QUIET);
	gw_io_release_quiet(&s->up.io, GW_IO_QUIET);
}

static const struct gw_reg_class session_class = {
	.stop = session_stop,
	.end_now = session_end_now,
	.free = session_free,
	.sweep = session_sweep,
};

void
gw_session_op_done(struct gw_session *s)
{
	s->op = GW_OP_NONE;
	if (!s->in_process)
		session_process(s);
	/* else: the loop on the stack picks up the next command. */
}

static void
bad_command(struct gw_session *s, const char *reply)
{
	pop3_reply_err(gw_client_out(s), NULL, "%s", reply);
	if (++s->bad_commands >= s->w->cfg->max_bad_commands) {
		pop3_reply_err(gw_client_out(s), NULL, "Too many bad commands, closing.");
		gw_session_flush(s);
		gw_metrics_error(MET_ERR_CLIENT_PROTOCOL);
		gw_session_close(s, "too many bad commands");
	}
}

/* popgate waits for the client's next line (a command, or a SASL continuation): only then
 * does the client's silence count as inactivity (RFC 1939 §3). While a command is carried
 * out (a login, RETR/TOP/LIST streaming, UPDATE) the upstream timeouts bound the waits, and
 * the client is idle only if its socket stops taking what is queued for it. */
static bool
waits_for_client(const struct gw_session *s)
{
	return (s->op == GW_OP_NONE || s->op == GW_OP_SASL) && s->state != GW_S_UPDATE;
}

static void
session_process(struct gw_session *s)
{
	struct buf *in = &s->client.c.in;
	bool starved = false;		/* no complete command line left in the input */

	if (s->in_process)
		return;
	s->in_process = true;
	while (!s->closing && waits_for_client(s) &&
	    s->state != GW_S_UPDATE && !gw_session_client_full(s)) {
		struct pop3_cmd cmd;
		struct slice line;
		size_t consumed = 0;
		enum pop3_parse_result r;

		if (s->op == GW_OP_SASL) {
			r = pop3_parse_raw_line(&s->parser, in, POP3_SASL_LINE_MAX, &line, &consumed);
			if (r == POP3_PARSE_COMMAND)
				gw_session_sasl_line(s, &line);
			else if (r != POP3_PARSE_MORE)
				gw_session_sasl_line(s, NULL);
			buf_consume(in, consumed);	/* see the file comment */
			if (r == POP3_PARSE_MORE) {
				starved = true;
				break;
			}
			continue;
		}
		r = pop3_parse(&s->parser, in, POP3_LINE_MAX, &cmd, &consumed);
		s->long_line = r == POP3_PARSE_MORE && s->parser.skipping ? s->long_line + consumed : 0;
		switch (r) {
		case POP3_PARSE_MORE:
			starved = true;
			buf_consume(in, consumed);
			if (s->long_line > CLIENT_FLOOD_MAX) {
				/* Bytes without an end: a flood, not a command. */
				pop3_reply_err(gw_client_out(s), NULL, "Line too long, closing.");
				gw_session_flush(s);
				gw_metrics_error(MET_ERR_CLIENT_PROTOCOL);
				gw_session_close(s, "line flood");
			}
			goto out;
		case POP3_PARSE_TOO_LONG:
			gw_metrics_command(POP3_CMD_UNKNOWN);
			bad_command(s, "Line too long.");
			break;
		case POP3_PARSE_INVALID:
			gw_metrics_command(POP3_CMD_UNKNOWN);
			bad_command(s, "Invalid command line.");
			break;
		case POP3_PARSE_COMMAND:
			gw_metrics_command(cmd.id);
			if (++s->commands > s->w->cfg->max_commands) {
				pop3_reply_err(gw_client_out(s), NULL, "Too many commands, closing.");
				gw_session_flush(s);
				gw_metrics_error(MET_ERR_CLIENT_PROTOCOL);
				gw_session_close(s, "too many commands");
				break;
			}
			gw_session_dispatch(s, &cmd);
			if (cmd.id == POP3_CMD_UNKNOWN)
				bad_command(s, "Unknown command.");
			break;
		}
		buf_consume(in, consumed);	/* see the file comment */
	}
out:
	s->in_process = false;
	if (!s->closing && starved && s->client.c.eof) {
		/* The client closed its side (FIN, close_notify) and every complete command it
		 * sent before has run; a partial last line is dropped. Without a QUIT among them
		 * nothing changes upstream (DESIGN.md); their replies still drain (a half-closed
		 * client reads them). */
		gw_log(LOG_LVL_DEBUG, s, "client closed the connection");
		gw_session_close(s, "disconnected");
		return;
	}
}

/* The client's TLS handshake is done (after STLS, or on an implicit TLS port), whichever
 * read or write finished it. */
static void
client_tls_established(struct gw_session *s)
{
	struct conn *c = &s->client.c;

	gw_log(LOG_LVL_DEBUG, s, "client TLS established (%s)", SSL_get_version(c->ssl));
	s->idle.repeat = s->w->cfg->idle_timeout;
	ev_timer_again(s->w->loop, &s->idle);
	if (s->tls_listener)
		pop3_reply_ok(gw_client_out(s), "%s", s->w->cfg->greeting);
	s->op = GW_OP_NONE;
}

bool
gw_session_flush(struct gw_session *s)
{
	if (s->closing)
		return false;
	if (s->client_gone)
		buf_reset(&s->client.c.out);
	else
		gw_io_flush(&s->client);	/* a failure comes back as GW_IO_ERROR */
	return true;
}

/* The client drained to its low watermark: whatever waited for room goes on. */
static void
client_lowat(struct gw_session *s)
{
	if (s->op == GW_OP_LIST)
		gw_session_list_continue(s);
	if (!s->closing && gw_imapc_paused(&s->up))
		gw_imapc_resume(&s->up);	/* its `settled` flushes */
	/* A command, or the SASL line an AUTH waits for: both wait for room in the output. */
	if (!s->closing && waits_for_client(s) &&
	    (buf_len(&s->client.c.in) > 0 || s->client.c.eof))
		session_process(s);	/* at EOF too: it ends the session */
}

/* The client's connection failed (a reset, a write error, a broken TLS record). */
static void
client_error(struct gw_session *s)
{
	gw_log(LOG_LVL_DEBUG, s, "client %s", s->client.c.error);
	if (s->op == GW_OP_QUIT) {
		s->client_gone = true;	/* let UPDATE finish: the client asked for it */
		buf_reset(&s->client.c.out);
		gw_io_close(&s->client);
		return;
	}
	/* A dropped connection changes nothing upstream (DESIGN.md). */
	gw_metrics_error(s->client.c.handshaking ? MET_ERR_TLS_HANDSHAKE : MET_ERR_CLIENT_IO);
	gw_session_close(s, "client error");
}

static void
client_io(struct gw_io *io, enum gw_io_event ev, void *ctx)
{
	struct gw_session *s = ctx;

	(void)io;
	if (s->lingering) {
		linger_io(s, ev);
		return;
	}
	if (s->closing)
		return;
	switch (ev) {
	case GW_IO_CONNECTED:
		return;			/* accepted, never connecting */
	case GW_IO_TLS_READY:
		client_tls_established(s);
		break;
	case GW_IO_DATAIN:
		session_process(s);
		break;
	case GW_IO_LOWAT:
		client_lowat(s);
		break;
	case GW_IO_EOF:
		/* The read may have brought commands with it, and a client that pipelined
		 * "DELE 1, QUIT" then closed did issue QUIT: session_process() runs every
		 * complete line first and ends the session once none is left. */
		gw_log(LOG_LVL_DEBUG, s, "client closed its side, %zu bytes of commands unread",
		    buf_len(&s->client.c.in));
		session_process(s);
		break;
	case GW_IO_ERROR:
		client_error(s);
		return;
	}
	gw_session_flush(s);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;
	double timeout = s->client.c.handshaking ? s->w->cfg->tls_handshake_timeout :
	    s->w->cfg->idle_timeout;
	double idle;

	(void)revents;
	if (s->lingering) {
		linger_timer(s);
		return;
	}
	/* Working with nothing queued for the client is not inactivity (waits_for_client()),
	 * and an UPDATE is never cut halfway. Otherwise, with output queued, the clock runs
	 * from the last byte the client's socket took. */
	if (!s->client.c.handshaking && (s->state == GW_S_UPDATE ||
	    (!waits_for_client(s) && conn_queued(&s->client.c) == 0)))
		s->last_activity = ev_now(loop);
	/* Bytes moving either way are activity: a slow reader is not idle. */
	if (s->client.rx_at > s->last_activity)
		s->last_activity = s->client.rx_at;
	if (s->client.tx_at > s->last_activity)
		s->last_activity = s->client.tx_at;
	idle = ev_now(loop) - s->last_activity;
	if (idle < timeout) {
		t->repeat = timeout - idle;
		ev_timer_again(loop, t);
		return;
	}
	if (!s->client.c.handshaking) {
		/* RFC 1939 §3: the autologout timer; no UPDATE happens. */
		pop3_reply_err(gw_client_out(s), NULL, "Disconnected for inactivity.");
		gw_session_flush(s);
	}
	gw_metrics_error(s->client.c.handshaking ? MET_ERR_TLS_HANDSHAKE : MET_ERR_CLIENT_TIMEOUT);
	gw_session_close(s, s->client.c.handshaking ? "tls handshake timeout" : "idle timeout");
}
