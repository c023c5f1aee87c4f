/* gateway/migrate.c: the live-migration POP3 client; see migrate.h.
 *
 * Every command sent is remembered in a small ring with what it was for, so each reply,
 * read in order by pop3/pop3_client.c, goes to the handler of its command however many are
 * pipelined. With PIPELINING (RFC 2449 §6.6) UIDL and LIST go together and up to
 * GW_MIGRATE_PIPELINE TOPs are in flight; without it, one command at a time.
 *
 * Of each TOP answer only the lines of the fields the content key is made of are kept (at
 * most MIG_HEADER_MAX octets, as gateway/keys.c), the way IMAP's HEADER.FIELDS returns
 * them: a key made here is the upstream's however many Received lines come first.
 *
 * The password is copied at start and wiped as soon as its line is queued; the output
 * buffer is `secret`, so the line is wiped as it is written. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/b64.h"
#include "../common/log.h"
#include "migrate.h"
#include "snapshot.h"

#define MIG_IN_MAX (128 * 1024)		/* read ahead; holds a longest line */
#define MIG_OUT_MAX (16 * 1024)		/* commands: the login's, or 32 TOPs */
#define MIG_LINE_MAX (64 * 1024)	/* a reply line: real mail has header lines past
					   RFC 5322's 998, and one must not fail a login */
#define MIG_HEADER_MAX (64 * 1024)	/* the key fields of one header */
#define MIG_CRED_MAX 1024		/* user name, password (POP3_SASL_FIELD_MAX) */
#define MIG_AUTH_LINE_MAX 255		/* RFC 5034 §4: a longer AUTH line has no initial
					   response */
#define MIG_MSGS_MAX GW_SNAPSHOT_MAX	/* the most the IMAP side would list */
#define MIG_UNLISTED UINT64_MAX		/* size before LIST named the message (LIST sizes
					   have at most 19 digits) */

/* The command a reply answers. */
enum mig_cmd { MC_GREETING, MC_STLS, MC_CAPA, MC_USER, MC_PASS, MC_AUTH, MC_UIDL, MC_LIST,
	MC_TOP, MC_QUIT };

/* What CAPA listed (RFC 2449 §6). */
#define MCAP_PIPELINING	0x1
#define MCAP_TOP	0x2
#define MCAP_USER	0x4
#define MCAP_SASL_PLAIN	0x8

static const char *const state_what[] = {
	[GW_MIG_IDLE] = "idle",
	[GW_MIG_CONNECTING] = "connecting",
	[GW_MIG_TLS] = "in the TLS handshake",
	[GW_MIG_GREETING] = "reading the greeting",
	[GW_MIG_STLS] = "starting TLS (STLS)",
	[GW_MIG_CAPA] = "reading CAPA",
	[GW_MIG_LOGIN] = "logging in",
	[GW_MIG_UIDL] = "reading UIDL",
	[GW_MIG_LIST] = "reading LIST",
	[GW_MIG_TOP] = "reading headers (TOP)",
	[GW_MIG_QUIT] = "quitting",
};

static const char *const key_fields[] = { "message-id", "date", "from", "to", "subject" };

static void mig_io(struct gw_io *io, enum gw_io_event ev, void *ctx);
static void mig_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void send_login(struct gw_migrate *m);

void
gw_migrate_target_from_config(struct gw_migrate_target *t_r, const struct gw_config *cfg,
    SSL_CTX *tls)
{
	memset(t_r, 0, sizeof(*t_r));
	memcpy(&t_r->addr, &cfg->mig_addr, sizeof(t_r->addr));
	t_r->addrlen = cfg->mig_addrlen;
	t_r->host = cfg->mig_host;
	t_r->port = cfg->mig_port;
	t_r->security = cfg->mig_security;
	t_r->tls = tls;
	t_r->verify = cfg->mig_verify;
	t_r->timeout = cfg->mig_timeout;
}

/* --- state, ending, cleaning up --- */

static void
mig_enter(struct gw_migrate *m, enum gw_migrate_state st)
{
	log_debug("%s migration: %s -> %s", m->log_id, state_what[m->state], state_what[st]);
	m->state = st;
}

static void
wipe_pass(struct gw_migrate *m)
{
	if (m->pass != NULL) {
		explicit_bzero(m->pass, m->pass_len);
		free(m->pass);
		m->pass = NULL;
	}
	m->pass_len = 0;
}

static void
free_msgs(struct gw_migrate *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->msgs[i].uidl);
		free(m->msgs[i].msgid);
	}
	free(m->msgs);
	m->msgs = NULL;
	m->n = m->cap = 0;
}

/* Everything but msgs (and the result counters), from any state. */
static void
mig_release(struct gw_migrate *m)
{
	if (m->loop != NULL)
		ev_timer_stop(m->loop, &m->timer);
	gw_io_close(&m->io);		/* wipes both buffers */
	wipe_pass(m);
	if (m->user != NULL) {
		explicit_bzero(m->user, strlen(m->user));
		free(m->user);
		m->user = NULL;
	}
	buf_free(&m->header);
	m->state = GW_MIG_IDLE;
	m->pending_count = 0;
	m->auth_cont = m->early = false;
}

void
gw_migrate_abort(struct gw_migrate *m)
{
	mig_release(m);
	free_msgs(m);
}

void
gw_migrate_free(struct gw_migrate *m)
{
	gw_migrate_abort(m);
}

/* The one line a migration leaves in the log. */
static void
mig_log_end(struct gw_migrate *m, enum gw_migrate_outcome o)
{
	static const char *const result[] = { "ok", "refused", "temp" };
	char user[LOG_ESCAPE_SIZE(64)] = "";
	double ms = (ev_now(m->loop) - m->started) * 1000;

	if (m->user != NULL)
		log_escape_word(user, sizeof(user), (const uint8_t *)m->user, strlen(m->user), 64);
	log_msg(o == GW_MIGRATE_TEMP ? LOG_LVL_WARN : LOG_LVL_INFO,
	    "%s migration old_server=%s:%u user=%s result=%s messages=%zu keyed=%zu top_refused=%zu "
	    "duration_ms=%.0f%s%s%s", m->log_id, m->t->host, m->t->port, user, result[o], m->n,
	    m->keyed, m->top_refused, ms < 0 ? 0 : ms, o != GW_MIGRATE_OK ? " why=\"" : "",
	    o != GW_MIGRATE_OK ? m->why : "", o != GW_MIGRATE_OK ? "\"" : "");
}

/* The outcome: logged, everything closed and wiped, then told. fmt NULL: m->why as it is.
 * Nothing here touches m after `done`; callers up the stack only read m->state (IDLE now),
 * which is why the owner keeps m valid while `done` runs (migrate.h). */
static void
mig_end(struct gw_migrate *m, enum gw_migrate_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
mig_end(struct gw_migrate *m, enum gw_migrate_outcome o, const char *fmt, ...)
{
	void (*done)(void *, enum gw_migrate_outcome, const char *) = m->done;
	void *ctx = m->ctx;
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(m->why, sizeof(m->why), fmt, ap);
		va_end(ap);
	}
	if (o == GW_MIGRATE_OK)
		m->why[0] = '\0';
	mig_log_end(m, o);
	mig_release(m);
	if (o != GW_MIGRATE_OK)
		free_msgs(m);
	done(ctx, o, o == GW_MIGRATE_OK ? NULL : m->why);
}

/* TEMP: what happened, while doing what. */
static void
mig_temp(struct gw_migrate *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mig_temp(struct gw_migrate *m, const char *fmt, ...)
{
	char what[sizeof(m->why) - 40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	mig_end(m, GW_MIGRATE_TEMP, "%s while %s", what, state_what[m->state]);
}

/* An outcome decided before anything could happen: told from the loop (done never runs
 * inside gw_migrate_start()). */
static void
mig_early(struct gw_migrate *m, enum gw_migrate_outcome o, const char *why)
{
	m->early = true;
	m->early_outcome = o;
	snprintf(m->why, sizeof(m->why), "%s", why);
	ev_timer_stop(m->loop, &m->timer);
	ev_timer_set(&m->timer, 0., 0.);
	ev_timer_start(m->loop, &m->timer);
}

/* The old server answered: it has target->timeout again for the next answer (a large
 * mailbox on a slow server is not a dead one). */
static void
mig_rearm(struct gw_migrate *m)
{
	if (m->early || m->login_due)	/* an outcome due; or held: no answer is owed */
		return;
	ev_timer_stop(m->loop, &m->timer);
	ev_timer_set(&m->timer, (double)m->t->timeout, 0.);
	ev_timer_start(m->loop, &m->timer);
}

static void
mig_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_migrate *m = t->data;

	(void)loop;
	(void)revents;
	if (m->early) {
		mig_end(m, m->early_outcome, NULL);
	} else if (m->login_due && !m->held) {	/* released */
		m->login_due = false;
		mig_rearm(m);
		send_login(m);
	} else if (m->state == GW_MIG_QUIT)
		mig_end(m, GW_MIGRATE_OK, NULL);	/* all was read; QUIT is manners */
	else
		mig_temp(m, "no answer for %u seconds", m->t->timeout);
}

/* --- sending --- */

static bool
cmd_multi(enum mig_cmd cmd)
{
	return cmd == MC_CAPA || cmd == MC_UIDL || cmd == MC_LIST || cmd == MC_TOP;
}

/* A command goes out: its reply is due after those before it. Returns the output buffer
 * for the caller to write the line to. */
static struct buf *
mig_cmd(struct gw_migrate *m, enum mig_cmd cmd, uint32_t idx)
{
	unsigned slot;
	bool room = m->pending_count < GW_MIGRATE_PIPELINE &&
	    pop3c_expect(&m->parser, cmd_multi(cmd));

	assert(room);		/* the ring and the parser count the same replies */
	(void)room;
	slot = (m->pending_head + m->pending_count++) % GW_MIGRATE_PIPELINE;
	m->pending[slot].cmd = (uint8_t)cmd;
	m->pending[slot].idx = idx;
	return &m->io.c.out;
}

/* Written now if the socket takes it; a failure comes as GW_IO_ERROR from the loop. */
static void
mig_flush(struct gw_migrate *m)
{
	(void)gw_io_flush(&m->io);
}

static void
mig_simple(struct gw_migrate *m, enum mig_cmd cmd, const char *line,
    enum gw_migrate_state st)
{
	buf_append_str(mig_cmd(m, cmd, 0), line);
	mig_enter(m, st);
	mig_flush(m);
}

/* "\0user\0password" in base64 (RFC 4616), malloc'd; the caller wipes it. */
static char *
plain_b64(const struct gw_migrate *m, size_t *len_r)
{
	size_t ulen = strlen(m->user), rawlen = ulen + m->pass_len + 2;
	uint8_t *raw = malloc(rawlen);
	char *b64 = malloc(B64_ENCODED_SIZE(rawlen));

	if (raw == NULL || b64 == NULL) {
		free(raw);
		free(b64);
		return NULL;
	}
	raw[0] = '\0';
	memcpy(raw + 1, m->user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, m->pass, m->pass_len);
	*len_r = b64_encode(raw, rawlen, b64);
	explicit_bzero(raw, rawlen);
	free(raw);
	return b64;
}

/* The SASL PLAIN response (as an initial response, or after "+"): the password's last use. */
static void
auth_response(struct gw_migrate *m, struct buf *out, bool initial)
{
	size_t len = 0;
	char *b64 = plain_b64(m, &len);

	if (b64 == NULL) {
		mig_temp(m, "out of memory");
		return;
	}
	if (initial && sizeof("AUTH PLAIN \r\n") - 1 + len > MIG_AUTH_LINE_MAX) {
		buf_append_str(out, "AUTH PLAIN\r\n");	/* the response follows "+" */
		m->auth_cont = true;
	} else {
		if (initial)
			buf_append_str(out, "AUTH PLAIN ");
		buf_append(out, b64, len);
		buf_append_str(out, "\r\n");
		wipe_pass(m);
	}
	explicit_bzero(b64, len);
	free(b64);
	mig_flush(m);
}

static void
send_auth(struct gw_migrate *m)
{
	mig_enter(m, GW_MIG_LOGIN);
	auth_response(m, mig_cmd(m, MC_AUTH, 0), true);
}

static void
send_login(struct gw_migrate *m)
{
	if (m->held) {
		/* gw_migrate_release() sends it. Meanwhile the old server owes nothing: the
		 * wait is the IMAP login's (bounded by its own timeouts, or the session's end). */
		m->login_due = true;
		ev_timer_stop(m->loop, &m->timer);
		return;
	}
	/* A server that lists its capabilities and no USER, but SASL PLAIN, gets AUTH. */
	if (m->caps_known && !(m->caps & MCAP_USER) && (m->caps & MCAP_SASL_PLAIN)) {
		send_auth(m);
		return;
	}
	buf_printf(mig_cmd(m, MC_USER, 0), "USER %s\r\n", m->user);
	mig_enter(m, GW_MIG_LOGIN);
	mig_flush(m);
}

static void
send_pass(struct gw_migrate *m)
{
	struct buf *out = mig_cmd(m, MC_PASS, 0);

	buf_append_str(out, "PASS ");
	buf_append(out, m->pass, m->pass_len);
	buf_append_str(out, "\r\n");
	wipe_pass(m);
	mig_flush(m);
}

static void
send_quit(struct gw_migrate *m)
{
	mig_simple(m, MC_QUIT, "QUIT\r\n", GW_MIG_QUIT);
}

/* Keeps TOPs in flight (GW_MIGRATE_PIPELINE with PIPELINING, else one) until every
 * message was asked for; QUIT once all are answered. */
static void
top_fill(struct gw_migrate *m)
{
	unsigned window = (m->caps & MCAP_PIPELINING) ? GW_MIGRATE_PIPELINE : 1;

	while (m->top_sent < m->n && m->pending_count < window) {
		buf_printf(mig_cmd(m, MC_TOP, (uint32_t)m->top_sent), "TOP %u 0\r\n",
		    m->msgs[m->top_sent].msgno);
		m->top_sent++;
	}
	if (m->pending_count > m->inflight_max)
		m->inflight_max = m->pending_count;
	if (m->pending_count == 0) {
		send_quit(m);
		return;
	}
	mig_flush(m);
}

static void
top_start(struct gw_migrate *m)
{
	if (m->n > 0 && m->caps_known && !(m->caps & MCAP_TOP)) {
		log_warn("%s migration: %s:%u does not list TOP in CAPA: the old messages get no "
		    "content keys", m->log_id, m->t->host, m->t->port);
		send_quit(m);
		return;
	}
	mig_enter(m, GW_MIG_TOP);
	top_fill(m);
}

/* --- what the server says --- */

/* "[code] text" of a status line, escaped for a log line (the server's words). */
static const char *
reply_words(char *dst, size_t size, const struct pop3c_event *ev)
{
	char code[LOG_ESCAPE_SIZE(40)], text[LOG_ESCAPE_SIZE(100)];

	log_escape(code, sizeof(code), ev->code.p, ev->code.len, 40);
	log_escape(text, sizeof(text), ev->text.p, ev->text.len, 100);
	snprintf(dst, size, "%s%s%s%s%s", ev->ok ? "+OK" : "-ERR", ev->code.len ? " [" : "",
	    code, ev->code.len ? "]" : "", text[0] ? " " : "");
	snprintf(dst + strlen(dst), size - strlen(dst), "%s", text);
	return dst;
}

/* RFC 2449 §8: codes are hierarchical ("SYS/TEMP/..." is a SYS/TEMP). */
static bool
code_is(const struct slice *code, const char *want)
{
	size_t n = strlen(want);

	return code->len >= n && strncasecmp((const char *)code->p, want, n) == 0 &&
	    (code->len == n || code->p[n] == '/');
}

/* A login refused for the server's own trouble (RFC 3206 SYS/TEMP, RFC 2449 IN-USE and
 * LOGIN-DELAY), not for the credentials. */
static bool
login_temp(const struct pop3c_event *ev)
{
	return code_is(&ev->code, "SYS/TEMP") || code_is(&ev->code, "IN-USE") ||
	    code_is(&ev->code, "LOGIN-DELAY");
}

static void
login_refused(struct gw_migrate *m, const char *verb, const struct pop3c_event *ev)
{
	char words[LOG_ESCAPE_SIZE(160)];

	reply_words(words, sizeof(words), ev);
	if (login_temp(ev))
		mig_temp(m, "%s answered %s", verb, words);
	else
		mig_end(m, GW_MIGRATE_REFUSED, "the old server refused %s: %s", verb, words);
}

static bool
next_word(struct slice *rest, struct slice *word_r)
{
	size_t i = 0, j;

	while (i < rest->len && (rest->p[i] == ' ' || rest->p[i] == '\t'))
		i++;
	for (j = i; j < rest->len && rest->p[j] != ' ' && rest->p[j] != '\t'; j++)
		;
	word_r->p = rest->p + i;
	word_r->len = j - i;
	rest->p += j;
	rest->len -= j;
	return word_r->len > 0;
}

static bool
word_is(const struct slice *w, const char *s)
{
	return w->len == strlen(s) && strncasecmp((const char *)w->p, s, w->len) == 0;
}

static void
capa_line(struct gw_migrate *m, const struct slice *line)
{
	struct slice rest = *line, w;

	if (!next_word(&rest, &w))
		return;
	if (word_is(&w, "PIPELINING"))
		m->caps |= MCAP_PIPELINING;
	else if (word_is(&w, "TOP"))
		m->caps |= MCAP_TOP;
	else if (word_is(&w, "USER"))
		m->caps |= MCAP_USER;
	else if (word_is(&w, "SASL"))
		while (next_word(&rest, &w))
			if (word_is(&w, "PLAIN"))
				m->caps |= MCAP_SASL_PLAIN;
}

static void
uidl_line(struct gw_migrate *m, const struct slice *line)
{
	char text[LOG_ESCAPE_SIZE(80)];
	struct gw_migrate_msg *msg;
	struct slice uidl;
	uint32_t msgno;

	if (!pop3c_uidl_line(line, &msgno, &uidl)) {
		mig_temp(m, "unreadable UIDL line '%s'",
		    log_escape(text, sizeof(text), line->p, line->len, 80));
		return;
	}
	if (m->n >= MIG_MSGS_MAX) {
		mig_temp(m, "more than %u messages", (unsigned)MIG_MSGS_MAX);
		return;
	}
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct gw_migrate_msg *p;

		if (ncap > MIG_MSGS_MAX)
			ncap = MIG_MSGS_MAX;
		if ((p = realloc(m->msgs, ncap * sizeof(*p))) == NULL) {	/* @UNSAFE: ncap
										   <= 10^6 */
			mig_temp(m, "out of memory");
			return;
		}
		m->msgs = p;
		m->cap = ncap;
	}
	msg = &m->msgs[m->n];
	memset(msg, 0, sizeof(*msg));
	if ((msg->uidl = strndup((const char *)uidl.p, uidl.len)) == NULL) {
		mig_temp(m, "out of memory");
		return;
	}
	msg->msgno = msgno;
	msg->size = MIG_UNLISTED;
	m->n++;
}

static int
by_msgno(const void *a, const void *b)
{
	uint32_t x = ((const struct gw_migrate_msg *)a)->msgno;
	uint32_t y = ((const struct gw_migrate_msg *)b)->msgno;

	return x < y ? -1 : x > y;
}

static int
by_uidl(const void *a, const void *b)
{
	return strcmp((*(struct gw_migrate_msg *const *)a)->uidl,
	    (*(struct gw_migrate_msg *const *)b)->uidl);
}

/* UIDL's answer is complete: in msgno order, each number and each UIDL once. */
static bool
uidl_check(struct gw_migrate *m)
{
	struct gw_migrate_msg **v;
	const char *dup = NULL;

	if (m->n == 0)
		return true;
	qsort(m->msgs, m->n, sizeof(m->msgs[0]), by_msgno);
	for (size_t i = 1; i < m->n; i++) {
		if (m->msgs[i].msgno == m->msgs[i - 1].msgno) {
			mig_temp(m, "UIDL names message %u twice", m->msgs[i].msgno);
			return false;
		}
	}
	/* RFC 1939 §7: unique in the maildrop. Two messages with one UIDL cannot both keep it. */
	if ((v = malloc(m->n * sizeof(*v))) == NULL) {
		mig_temp(m, "out of memory");
		return false;
	}
	for (size_t i = 0; i < m->n; i++)
		v[i] = &m->msgs[i];
	qsort(v, m->n, sizeof(*v), by_uidl);
	for (size_t i = 1; i < m->n && dup == NULL; i++)
		if (strcmp(v[i]->uidl, v[i - 1]->uidl) == 0)
			dup = v[i]->uidl;
	if (dup != NULL) {
		char text[LOG_ESCAPE_SIZE(70)];

		log_escape(text, sizeof(text), (const uint8_t *)dup, strlen(dup), 70);
		free(v);
		mig_temp(m, "UIDL names two messages %s", text);
		return false;
	}
	free(v);
	return true;
}

static struct gw_migrate_msg *
msg_of(struct gw_migrate *m, uint32_t msgno)
{
	struct gw_migrate_msg key = { .msgno = msgno };

	return bsearch(&key, m->msgs, m->n, sizeof(m->msgs[0]), by_msgno);
}

static void
list_line(struct gw_migrate *m, const struct slice *line)
{
	char text[LOG_ESCAPE_SIZE(80)];
	struct gw_migrate_msg *msg;
	uint32_t msgno;
	uint64_t size;

	if (!pop3c_list_line(line, &msgno, &size)) {
		mig_temp(m, "unreadable LIST line '%s'",
		    log_escape(text, sizeof(text), line->p, line->len, 80));
		return;
	}
	if ((msg = msg_of(m, msgno)) == NULL) {
		mig_temp(m, "LIST names message %u, UIDL did not", msgno);
		return;
	}
	if (msg->size != MIG_UNLISTED) {
		mig_temp(m, "LIST names message %u twice", msgno);
		return;
	}
	msg->size = size;
	m->listed++;
}

static bool
list_check(struct gw_migrate *m)
{
	if (m->listed == m->n)
		return true;
	for (size_t i = 0; i < m->n; i++) {
		if (m->msgs[i].size == MIG_UNLISTED) {
			mig_temp(m, "UIDL names message %u, LIST did not", m->msgs[i].msgno);
			return false;
		}
	}
	return true;
}

/* A header line names one of the key's fields (content_key.h, step 1): "Name:" or the
 * obsolete "Name :", case-insensitive. */
static bool
key_field(const struct slice *line)
{
	const uint8_t *colon = memchr(line->p, ':', line->len);
	size_t name;

	if (colon == NULL)
		return false;
	name = (size_t)(colon - line->p);
	while (name > 0 && (line->p[name - 1] == ' ' || line->p[name - 1] == '\t'))
		name--;
	for (size_t k = 0; k < sizeof(key_fields) / sizeof(key_fields[0]); k++)
		if (name == strlen(key_fields[k]) &&
		    strncasecmp((const char *)line->p, key_fields[k], name) == 0)
			return true;
	return false;
}

/* A line of TOP n 0's answer: the key fields and their continuation lines are kept, up
 * to the empty line that ends the header (a line of only CR ends it too, as in
 * content_key()). */
static void
top_line(struct gw_migrate *m, const struct slice *line, bool truncated)
{
	size_t len = line->len, room;

	if (m->hdr_over)
		return;
	while (len > 0 && (line->p[len - 1] == '\r' || line->p[len - 1] == '\n'))
		len--;
	if (len == 0) {
		m->hdr_over = true;
		return;
	}
	if (line->p[0] != ' ' && line->p[0] != '\t')
		m->hdr_keep = key_field(line);
	if (!m->hdr_keep)
		return;
	room = MIG_HEADER_MAX - buf_len(&m->header);
	if (line->len + 2 > room) {
		/* Cut where keys.c cuts the IMAP side's HEADER.FIELDS literal (its first
		 * MIG_HEADER_MAX octets), so both hash the same bytes: what fits of this line
		 * (a line the reader cut is longer still: no CRLF), and nothing after it. */
		buf_append(&m->header, line->p, line->len < room ? line->len : room);
		if (!truncated && line->len < room)
			buf_append(&m->header, "\r\n", room - line->len);
		m->hdr_over = true;
		return;
	}
	buf_append(&m->header, line->p, line->len);
	if (!truncated)
		buf_append(&m->header, "\r\n", 2);
	else
		m->hdr_over = true;	/* its rest is gone: so is the rest of the header */
}

static void
top_end(struct gw_migrate *m, uint32_t idx)
{
	struct gw_migrate_msg *msg = &m->msgs[idx];

	char msgid[CONTENT_MSGID_MAX];

	if (content_key_msgid(buf_data(&m->header), buf_len(&m->header), msg->ckey, msgid) < 0) {
		msg->ckey[0] = '\0';
		log_warn("%s migration: cannot compute a content key (OpenSSL)", m->log_id);
	} else {
		m->keyed++;
		free(msg->msgid);
		/* Held only when there is one: ENOMEM costs the id, not the key. */
		msg->msgid = msgid[0] != '\0' ? strdup(msgid) : NULL;
	}
	buf_reset(&m->header);
}

static void
top_refused(struct gw_migrate *m, uint32_t idx, const struct pop3c_event *ev)
{
	char words[LOG_ESCAPE_SIZE(160)];

	if (m->top_refused++ == 0)
		log_warn("%s migration: %s:%u refused TOP %u 0: %s; such messages get no content "
		    "key", m->log_id, m->t->host, m->t->port, m->msgs[idx].msgno,
		    reply_words(words, sizeof(words), ev));
}

/* After the login: UIDL, and LIST with it when the server pipelines. */
static void
listing_start(struct gw_migrate *m)
{
	buf_append_str(mig_cmd(m, MC_UIDL, 0), "UIDL\r\n");
	if (m->caps & MCAP_PIPELINING)
		buf_append_str(mig_cmd(m, MC_LIST, 0), "LIST\r\n");
	mig_enter(m, GW_MIG_UIDL);
	mig_flush(m);
}

static void
on_status(struct gw_migrate *m, enum mig_cmd cmd, uint32_t idx, const struct pop3c_event *ev)
{
	char words[LOG_ESCAPE_SIZE(160)];

	switch (cmd) {
	case MC_GREETING:
		if (!ev->ok) {
			mig_temp(m, "the old server greeted with %s",
			    reply_words(words, sizeof(words), ev));
		} else if (m->t->security == GW_SEC_STARTTLS) {
			mig_simple(m, MC_STLS, "STLS\r\n", GW_MIG_STLS);
		} else {
			mig_simple(m, MC_CAPA, "CAPA\r\n", GW_MIG_CAPA);
		}
		return;
	case MC_STLS:
		if (!ev->ok) {
			/* No downgrade: the password would cross in clear. */
			mig_temp(m, "STLS answered %s", reply_words(words, sizeof(words), ev));
			return;
		}
		/* Bytes after the +OK came in plaintext before TLS: a STARTTLS injection
		 * (CVE-2011-0411 class). Dropped, never read as if protected (RFC 2595 §4). */
		if (buf_len(&m->io.c.in) > 0) {
			log_warn("%s migration: %s:%u sent %zu bytes after STLS's +OK: dropped",
			    m->log_id, m->t->host, m->t->port, buf_len(&m->io.c.in));
			buf_reset(&m->io.c.in);
		}
		mig_enter(m, GW_MIG_TLS);
		if (gw_io_start_tls(&m->io, m->t->tls, false, m->t->host, m->t->verify) < 0)
			mig_temp(m, "%s", m->io.c.error);
		return;
	case MC_CAPA:
		m->caps = 0;
		m->caps_known = ev->ok;		/* -ERR: no capabilities, no promise */
		if (!ev->ok)
			send_login(m);
		return;
	case MC_USER:
		if (ev->ok)
			send_pass(m);
		else if (!login_temp(ev) && (m->caps & MCAP_SASL_PLAIN))
			send_auth(m);		/* RFC 5034: USER may be off where AUTH is on */
		else if (!login_temp(ev) && m->caps_known && !(m->caps & MCAP_USER))
			/* Not about the credentials: the server offers no login we can use
			 * (plaintext logins off without TLS, say). */
			mig_temp(m, "the old server lists neither USER nor SASL PLAIN, and USER "
			    "answered %s", reply_words(words, sizeof(words), ev));
		else
			login_refused(m, "USER", ev);
		return;
	case MC_PASS:
	case MC_AUTH:
		if (ev->ok)
			listing_start(m);
		else
			login_refused(m, cmd == MC_PASS ? "PASS" : "AUTH PLAIN", ev);
		return;
	case MC_UIDL:
		if (!ev->ok)	/* without UIDLs nothing can be kept */
			mig_temp(m, "UIDL answered %s", reply_words(words, sizeof(words), ev));
		return;
	case MC_LIST:
		if (!ev->ok)
			mig_temp(m, "LIST answered %s", reply_words(words, sizeof(words), ev));
		return;
	case MC_TOP:
		if (ev->ok) {
			buf_reset(&m->header);
			m->hdr_keep = m->hdr_over = false;
		} else {
			top_refused(m, idx, ev);	/* that message keeps ckey "" */
			top_fill(m);
		}
		return;
	case MC_QUIT:
		/* -ERR to QUIT (RFC 1939 §6: deletions not made): nothing was deleted. */
		mig_end(m, GW_MIGRATE_OK, NULL);
		return;
	}
}

static void
on_line(struct gw_migrate *m, enum mig_cmd cmd, const struct slice *line, bool truncated)
{
	switch (cmd) {
	case MC_CAPA:
		capa_line(m, line);
		break;
	case MC_UIDL:
		uidl_line(m, line);
		break;
	case MC_LIST:
		list_line(m, line);
		break;
	case MC_TOP:
		top_line(m, line, truncated);
		break;
	default:
		break;		/* only multi-line answers have lines */
	}
}

static void
on_end(struct gw_migrate *m, enum mig_cmd cmd, uint32_t idx)
{
	switch (cmd) {
	case MC_CAPA:
		send_login(m);
		break;
	case MC_UIDL:
		if (!uidl_check(m))
			return;
		if (m->caps & MCAP_PIPELINING) {
			mig_enter(m, GW_MIG_LIST);	/* asked already */
			return;
		}
		mig_simple(m, MC_LIST, "LIST\r\n", GW_MIG_LIST);
		break;
	case MC_LIST:
		if (list_check(m))
			top_start(m);
		break;
	case MC_TOP:
		top_end(m, idx);
		top_fill(m);
		break;
	default:
		break;
	}
}

/* AUTH PLAIN without an initial response: the server's "+" (RFC 5034 §4), read here since
 * it is no POP3 status line. 1: handled or not one (the parser goes on), 0: need more. */
static int
auth_continuation(struct gw_migrate *m)
{
	struct buf *in = &m->io.c.in;
	ssize_t lf = buf_find(in, 0, '\n');
	const uint8_t *d = buf_data(in);

	if (lf < 0)
		return buf_len(in) > MIG_LINE_MAX ? 1 : 0;	/* the parser refuses it */
	m->auth_cont = false;
	if (d[0] != '+' || (lf > 1 && d[1] != ' ' && d[1] != '\r'))
		return 1;	/* "+OK" or "-ERR": AUTH's own answer */
	buf_consume(in, (size_t)lf + 1);
	auth_response(m, &m->io.c.out, false);
	return 1;
}

/* Reads the server's replies until input runs out or the migration ends. */
static void
mig_process(struct gw_migrate *m)
{
	struct pop3c_event ev;
	enum mig_cmd cmd;
	uint32_t idx;

	while (m->state >= GW_MIG_GREETING) {
		if (m->auth_cont && auth_continuation(m) == 0)
			return;
		if (m->state < GW_MIG_GREETING)
			return;
		switch (pop3c_next(&m->parser, &m->io.c.in, &ev)) {
		case POP3C_MORE:
			return;
		case POP3C_ERROR:
			mig_temp(m, "unreadable reply (%s)", ev.error);
			return;
		case POP3C_STATUS:
			cmd = m->pending[m->pending_head].cmd;
			idx = m->pending[m->pending_head].idx;
			if (!(ev.ok && cmd_multi(cmd))) {	/* the reply is whole */
				m->pending_head = (m->pending_head + 1) % GW_MIGRATE_PIPELINE;
				m->pending_count--;
			}
			on_status(m, cmd, idx, &ev);
			break;
		case POP3C_LINE:
			on_line(m, m->pending[m->pending_head].cmd, &ev.text, ev.truncated);
			break;
		case POP3C_END:
			cmd = m->pending[m->pending_head].cmd;
			idx = m->pending[m->pending_head].idx;
			m->pending_head = (m->pending_head + 1) % GW_MIGRATE_PIPELINE;
			m->pending_count--;
			on_end(m, cmd, idx);
			break;
		}
	}
}

static void
mig_io(struct gw_io *io, enum gw_io_event ev, void *ctx)
{
	struct gw_migrate *m = ctx;

	(void)io;
	switch (ev) {
	case GW_IO_CONNECTED:
		if (m->t->security != GW_SEC_TLS) {
			mig_enter(m, GW_MIG_GREETING);
			return;
		}
		mig_enter(m, GW_MIG_TLS);
		if (gw_io_start_tls(&m->io, m->t->tls, false, m->t->host, m->t->verify) < 0)
			mig_temp(m, "%s", m->io.c.error);
		return;
	case GW_IO_TLS_READY:
		log_debug("%s migration: TLS established (%s)", m->log_id,
		    SSL_get_version(m->io.c.ssl));
		if (m->state != GW_MIG_TLS)
			return;
		if (m->t->security == GW_SEC_STARTTLS)	/* RFC 2595 §4: ask again under TLS */
			mig_simple(m, MC_CAPA, "CAPA\r\n", GW_MIG_CAPA);
		else
			mig_enter(m, GW_MIG_GREETING);
		return;
	case GW_IO_DATAIN:
		mig_rearm(m);
		mig_process(m);
		return;
	case GW_IO_EOF:
		mig_process(m);
		if (m->state == GW_MIG_QUIT)
			mig_end(m, GW_MIGRATE_OK, NULL);
		else if (m->state != GW_MIG_IDLE)
			mig_temp(m, "connection closed by the old server");
		return;
	case GW_IO_LOWAT:
		return;
	case GW_IO_ERROR:
		if (m->state == GW_MIG_QUIT)
			mig_end(m, GW_MIGRATE_OK, NULL);	/* all was read */
		else
			mig_temp(m, "%s", m->io.c.error);
		return;
	}
}

/* --- starting --- */

static bool
cred_ok(const uint8_t *p, size_t len)
{
	return len <= MIG_CRED_MAX && memchr(p, '\0', len) == NULL &&
	    memchr(p, '\r', len) == NULL && memchr(p, '\n', len) == NULL;
}

int
gw_migrate_start(struct gw_migrate *m, struct ev_loop *loop, const struct gw_migrate_target *t,
    const struct gw_migrate_params *p)
{
	memset(m, 0, sizeof(*m));
	if (t->security != GW_SEC_NONE && t->tls == NULL) {
		errno = EINVAL;
		return -1;
	}
	m->t = t;
	m->done = p->done;
	m->ctx = p->ctx;
	snprintf(m->log_id, sizeof(m->log_id), "%s", p->log_id != NULL ? p->log_id : "-");
	pop3c_init(&m->parser, MIG_LINE_MAX);
	buf_set_max(&m->header, MIG_HEADER_MAX);
	if ((m->user = strdup(p->user)) == NULL ||
	    (m->pass = malloc(p->password_len ? p->password_len : 1)) == NULL) {
		free(m->user);
		m->user = NULL;
		return -1;
	}
	memcpy(m->pass, p->password, p->password_len);
	m->pass_len = p->password_len;
	m->held = p->hold_login;
	m->loop = loop;
	m->started = ev_now(loop);
	ev_timer_init(&m->timer, mig_timer_cb, (double)t->timeout, 0.);
	m->timer.data = m;
	ev_timer_start(loop, &m->timer);
	/* Nothing goes to the old server that it could read as two commands. */
	if (!cred_ok((const uint8_t *)m->user, strlen(m->user)) || !cred_ok(m->pass, m->pass_len)) {
		mig_early(m, GW_MIGRATE_REFUSED, "the user name or password holds CR, LF or NUL, "
		    "or is too long: not sent");
		return 0;
	}
	if (gw_io_connect(&m->io, loop, &t->addr, t->addrlen, MIG_IN_MAX, MIG_OUT_MAX, mig_io,
	    m) < 0) {
		char why[160];

		snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
		mig_early(m, GW_MIGRATE_TEMP, why);
		return 0;
	}
	m->io.c.out.secret = true;	/* PASS and AUTH: wiped once written */
	mig_enter(m, GW_MIG_CONNECTING);
	(void)mig_cmd(m, MC_GREETING, 0);	/* the greeting is the first reply */
	return 0;
}

void
gw_migrate_release(struct gw_migrate *m)
{
	if (!m->held)
		return;
	m->held = false;
	if (m->login_due && m->state != GW_MIG_IDLE && !m->early) {
		/* Sent from the loop, never on the owner's stack: a failure to send would end
		 * the conversation (and call its owner back) inside this call. */
		ev_timer_stop(m->loop, &m->timer);
		ev_timer_set(&m->timer, 0., 0.);
		ev_timer_start(m->loop, &m->timer);
	}
}
