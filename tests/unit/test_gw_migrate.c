/* tests/unit/test_gw_migrate.c: the live-migration client (gateway/migrate.c) against a
 * scripted old POP3 server on 127.0.0.1, both on one real libev loop; the server side is
 * a gw_io too (so it can speak TLS). Each test names the server's fault it scripts, and
 * checks the outcome, what the client learned (UIDLs, sizes, content keys equal to
 * content_key_msgid() of each header), and the exact commands the server received, grouped
 * by the reads they came in: "A,B|C" is A and B in one read (pipelined), then C. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../../common/b64.h"
#include "../../common/content_key.h"
#include "../../common/log.h"
#include "../../gateway/migrate.h"
#include "../../gateway/tls.h"

struct fake_msg {
	const char *uidl;
	const char *header;		/* ends with CRLF; the empty line is added */
	uint64_t size;
};

/* The old server: what it holds and which fault it scripts. */
struct server {
	struct ev_loop *loop;
	int lfd;
	ev_io accept_w;
	struct gw_io io;
	unsigned accepted;
	enum gw_security security;
	SSL_CTX *tls;
	bool inject;			/* a line pipelined after STLS's +OK */
	const struct fake_msg *msgs;
	size_t n;
	const char *capa;		/* CAPA lines; NULL: -ERR */
	const char *user_reply, *pass_reply, *auth_reply;	/* NULL: +OK */
	bool uidl_err;
	const char *uidl_extra, *list_extra;	/* lines added to the answer */
	uint32_t list_skip;		/* LIST leaves this message out */
	uint32_t top_err;		/* TOP of this message: -ERR */
	const char *top_body;		/* body lines TOP n 0 sends anyway */
	const char *eof_in;		/* this command's answer is cut, then the server closes */
	const char *silent_on;		/* this command is never answered */
	bool auth_wait;			/* "+" sent, the response comes next */
	/* what it saw */
	char cmds[8192];
	char plain[512];		/* AUTH PLAIN's response, decoded, NULs as '|' */
	unsigned max_batch_tops;
	bool silent_hit, eof_seen;
};

struct result {
	int calls;
	enum gw_migrate_outcome outcome;
	char why[512];
	struct ev_loop *loop;
};

static char ca_path[64];
static SSL_CTX *server_ctx;

/* --- the scripted server --- */

static void
srv_note(struct server *s, const char *line, bool first_in_read)
{
	size_t n = strlen(s->cmds);

	snprintf(s->cmds + n, sizeof(s->cmds) - n, "%s%s", n == 0 ? "" : first_in_read ? "|" :
	    ",", line);
}

static void
srv_send(struct server *s, const char *text)
{
	buf_append_str(&s->io.c.out, text);
}

static void
srv_top(struct server *s, uint32_t msgno)
{
	const char *h;

	if (msgno == 0 || msgno > s->n || msgno == s->top_err) {
		srv_send(s, "-ERR no such message\r\n");
		return;
	}
	srv_send(s, "+OK top of message follows\r\n");
	for (h = s->msgs[msgno - 1].header; *h != '\0';) {	/* dot-stuffed, RFC 1939 §3 */
		const char *eol = strchr(h, '\n');
		size_t len = eol ? (size_t)(eol - h) + 1 : strlen(h);

		if (h[0] == '.')
			srv_send(s, ".");
		buf_append(&s->io.c.out, h, len);
		h += len;
	}
	srv_send(s, "\r\n");
	srv_send(s, s->top_body ? s->top_body : "");
	srv_send(s, ".\r\n");
}

static void
srv_auth_response(struct server *s, const char *b64)
{
	uint8_t raw[512];
	ssize_t n = b64_decode((const uint8_t *)b64, strlen(b64), raw, sizeof(raw));

	for (ssize_t i = 0; i < n && (size_t)i < sizeof(s->plain) - 1; i++)
		s->plain[i] = raw[i] == '\0' ? '|' : (char)raw[i];
	srv_send(s, s->auth_reply ? s->auth_reply : "+OK logged in\r\n");
}

/* One command; false when the server closed. */
static bool
srv_command(struct server *s, char *line, bool first_in_read)
{
	char verb[16] = "";
	unsigned long arg = 0;

	if (s->auth_wait) {
		s->auth_wait = false;
		srv_note(s, "<response>", first_in_read);
		srv_auth_response(s, line);
		return true;
	}
	sscanf(line, "%15s %lu", verb, &arg);
	srv_note(s, strncmp(line, "PASS ", 5) == 0 ? "PASS <hidden>" :
	    strncmp(line, "AUTH PLAIN ", 11) == 0 ? "AUTH PLAIN <ir>" : line, first_in_read);
	if (s->silent_on != NULL && strcmp(verb, s->silent_on) == 0) {
		s->silent_hit = true;
		return true;
	}
	if (s->eof_in != NULL && strcmp(verb, s->eof_in) == 0) {
		srv_send(s, "+OK\r\n1 whole-line\r\n2 cut-li");
		(void)gw_io_flush(&s->io);
		gw_io_close(&s->io);
		return false;
	}
	if (strcmp(verb, "CAPA") == 0) {
		if (s->capa == NULL) {
			srv_send(s, "-ERR what?\r\n");
			return true;
		}
		srv_send(s, "+OK Capability list follows\r\n");
		srv_send(s, s->capa);
		srv_send(s, ".\r\n");
	} else if (strcmp(verb, "STLS") == 0 && s->tls == NULL) {
		srv_send(s, "-ERR [SYS/PERM] no TLS here\r\n");
	} else if (strcmp(verb, "STLS") == 0) {
		/* Read as CAPA's answer, an injected -ERR would shift every reply after it. */
		srv_send(s, s->inject ? "+OK Begin TLS\r\n-ERR [SYS/TEMP] injected\r\n" :
		    "+OK Begin TLS\r\n");
		(void)gw_io_flush(&s->io);
		assert_int_equal(gw_io_start_tls(&s->io, s->tls, true, NULL, false), 0);
	} else if (strcmp(verb, "USER") == 0) {
		srv_send(s, s->user_reply ? s->user_reply : "+OK\r\n");
	} else if (strcmp(verb, "PASS") == 0) {
		snprintf(s->plain, sizeof(s->plain), "%.500s", line + 5);
		srv_send(s, s->pass_reply ? s->pass_reply : "+OK logged in\r\n");
	} else if (strcmp(line, "AUTH PLAIN") == 0) {
		s->auth_wait = true;
		srv_send(s, "+ \r\n");
	} else if (strncmp(line, "AUTH PLAIN ", 11) == 0) {
		srv_auth_response(s, line + 11);
	} else if (strcmp(verb, "UIDL") == 0) {
		if (s->uidl_err) {
			srv_send(s, "-ERR UIDL not supported\r\n");
			return true;
		}
		srv_send(s, "+OK\r\n");
		for (size_t i = 0; i < s->n; i++)
			buf_printf(&s->io.c.out, "%zu %s\r\n", i + 1, s->msgs[i].uidl);
		srv_send(s, s->uidl_extra ? s->uidl_extra : "");
		srv_send(s, ".\r\n");
	} else if (strcmp(verb, "LIST") == 0) {
		buf_printf(&s->io.c.out, "+OK %zu messages\r\n", s->n);
		for (size_t i = 0; i < s->n; i++)
			if (i + 1 != s->list_skip)
				buf_printf(&s->io.c.out, "%zu %llu\r\n", i + 1,
				    (unsigned long long)s->msgs[i].size);
		srv_send(s, s->list_extra ? s->list_extra : "");
		srv_send(s, ".\r\n");
	} else if (strcmp(verb, "TOP") == 0) {
		srv_top(s, (uint32_t)arg);
	} else if (strcmp(verb, "QUIT") == 0) {
		srv_send(s, "+OK bye\r\n");
	} else {
		srv_send(s, "-ERR unknown command\r\n");
	}
	return true;
}

static void
srv_io(struct gw_io *io, enum gw_io_event ev, void *ctx)
{
	struct server *s = ctx;
	unsigned tops = 0;
	bool first = true;
	ssize_t lf;

	switch (ev) {
	case GW_IO_DATAIN:
		while ((lf = buf_find(&io->c.in, 0, '\n')) >= 0) {
			char line[1024];
			size_t len = (size_t)lf;

			if (len > 0 && buf_data(&io->c.in)[len - 1] == '\r')
				len--;
			assert_true(len < sizeof(line));
			memcpy(line, buf_data(&io->c.in), len);
			line[len] = '\0';
			buf_consume(&io->c.in, (size_t)lf + 1);
			if (strncmp(line, "TOP ", 4) == 0)
				tops++;
			if (!srv_command(s, line, first))
				return;
			first = false;
		}
		if (tops > s->max_batch_tops)
			s->max_batch_tops = tops;
		(void)gw_io_flush(io);
		return;
	case GW_IO_EOF:
		s->eof_seen = true;
		gw_io_close(io);
		return;
	case GW_IO_ERROR:
		gw_io_close(io);
		return;
	default:
		return;
	}
}

static void
srv_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *s = w->data;
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)revents;
	if (fd < 0)
		return;
	s->accepted++;
	gw_io_open(&s->io, loop, fd, 1 << 20, 1 << 20, srv_io, s);
	if (s->security == GW_SEC_TLS)
		assert_int_equal(gw_io_start_tls(&s->io, s->tls, true, NULL, false), 0);
	srv_send(s, "+OK old POP3 server ready <1.2@old>\r\n");
	(void)gw_io_flush(&s->io);
}

/* Listens on 127.0.0.1 (a free port); t is filled to reach it. */
static void
srv_open(struct server *s, struct ev_loop *loop, struct gw_migrate_target *t)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->tls = server_ctx;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &len), 0);
	ev_io_init(&s->accept_w, srv_accept, s->lfd, EV_READ);
	s->accept_w.data = s;
	ev_io_start(loop, &s->accept_w);
	memset(t, 0, sizeof(*t));
	memcpy(&t->addr, &sin, sizeof(sin));
	t->addrlen = sizeof(sin);
	t->host = "localhost";
	t->port = ntohs(sin.sin_port);
	t->security = GW_SEC_NONE;
	t->timeout = 10;
}

static void
srv_close(struct server *s)
{
	ev_io_stop(s->loop, &s->accept_w);
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
	gw_io_close(&s->io);
}

/* --- the client side --- */

static void
on_done(void *ctx, enum gw_migrate_outcome outcome, const char *why)
{
	struct result *r = ctx;

	r->calls++;
	r->outcome = outcome;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	ev_break(r->loop, EVBREAK_ALL);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until done was called, or `seconds` passed. */
static void
run(struct ev_loop *loop, double seconds)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, seconds, 0.);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
}

struct fixture {
	struct ev_loop *loop;
	struct server s;
	struct gw_migrate_target t;
	struct gw_migrate m;
	struct result r;
};

static void
fx_open(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LVL_ERROR);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	f->r.loop = f->loop;
	srv_open(&f->s, f->loop, &f->t);
}

/* Starts the migration as alice with `password` and runs it to its end. */
static void
fx_run_as(struct fixture *f, const char *password)
{
	struct gw_migrate_params p = {
		.user = "alice", .password = (const uint8_t *)password,
		.password_len = strlen(password), .log_id = "session=test",
		.done = on_done, .ctx = &f->r,
	};

	assert_int_equal(gw_migrate_start(&f->m, f->loop, &f->t, &p), 0);
	assert_int_equal(f->r.calls, 0);	/* never inside start */
	run(f->loop, 15);
	assert_int_equal(f->r.calls, 1);
	run(f->loop, 0.05);			/* the server reads the client's close */
	assert_int_equal(f->r.calls, 1);	/* once */
}

static void
fx_run(struct fixture *f)
{
	fx_run_as(f, "secret");
}

static void
fx_close(struct fixture *f)
{
	gw_migrate_free(&f->m);
	gw_migrate_free(&f->m);		/* twice is fine */
	srv_close(&f->s);
	ev_loop_destroy(f->loop);
}

/* --- the mailbox --- */

static const char hdr_a[] =
    "Return-Path: <bob@example.org>\r\n"
    "Received: from mx.example.org by old.example.net; Mon, 3 Mar 2025 10:00:00 +0000\r\n"
    "Message-ID: <a1@example.org>\r\n"
    "Date: Mon, 3 Mar 2025 09:59:58 +0000\r\n"
    "From: Bob <bob@example.org>\r\n"
    "To: alice@example.net\r\n"
    "Subject: lunch\r\n"
    "\ton Tuesday?\r\n"			/* folded */
    "Subject: a second Subject, not the key's\r\n"
    "X-UIDL: 1234\r\n"
    "Status: RO\r\n";
static const char hdr_nomsgid[] =
    "Date: Tue, 4 Mar 2025 08:00:00 +0000\r\n"
    "from : carol@example.org\r\n"		/* obsolete "name :" form, lower case */
    "TO: alice@example.net\r\n"
    "Subject: no id\r\n"
    ".hidden: a line that starts with a dot\r\n";

static const struct fake_msg three[] = {
	{ "UID1-a", hdr_a, 1200 },
	{ "UID2-b", hdr_a, 1200 },		/* the same mail delivered twice */
	{ "UID3-c", hdr_nomsgid, 530 },
};

static void
assert_msg(const struct gw_migrate_msg *m, uint32_t msgno, const char *uidl, uint64_t size,
    const char *header)
{
	char key[CONTENT_KEY_SIZE], msgid[CONTENT_MSGID_MAX];

	assert_int_equal(m->msgno, msgno);
	assert_string_equal(m->uidl, uidl);
	assert_int_equal(m->size, size);
	if (header == NULL) {
		assert_string_equal(m->ckey, "");
		return;
	}
	assert_int_equal(content_key_msgid((const uint8_t *)header, strlen(header), key, msgid), 0);
	assert_string_equal(m->ckey, key);
	assert_string_equal(m->msgid ? m->msgid : "", msgid);
}

/* --- tests --- */

static void
test_user_pass_three_messages(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_string_equal(f.r.why, "");
	assert_int_equal(f.m.n, 3);
	assert_msg(&f.m.msgs[0], 1, "UID1-a", 1200, hdr_a);
	assert_msg(&f.m.msgs[1], 2, "UID2-b", 1200, hdr_a);
	assert_msg(&f.m.msgs[2], 3, "UID3-c", 530, hdr_nomsgid);
	assert_string_equal(f.m.msgs[0].ckey, f.m.msgs[1].ckey);
	assert_string_equal(f.m.msgs[0].msgid, "a1@example.org");
	assert_null(f.m.msgs[2].msgid);
	assert_string_not_equal(f.m.msgs[2].ckey, f.m.msgs[0].ckey);
	assert_int_equal(f.m.keyed, 3);
	/* No PIPELINING: one command at a time. */
	assert_string_equal(f.s.cmds, "CAPA|USER alice|PASS <hidden>|UIDL|LIST|TOP 1 0|TOP 2 0|"
	    "TOP 3 0|QUIT");
	assert_string_equal(f.s.plain, "secret");
	assert_int_equal(f.s.max_batch_tops, 1);
	assert_int_equal(f.m.inflight_max, 1);
	assert_true(f.s.eof_seen);		/* the client closed after QUIT's +OK */
	fx_close(&f);
}

static void
test_pipelining_keeps_32_tops_in_flight(void **state)
{
	static struct fake_msg many[70];
	static char uidls[70][16];
	struct fixture f;

	(void)state;
	for (size_t i = 0; i < 70; i++) {
		snprintf(uidls[i], sizeof(uidls[i]), "u%zu", i + 1);
		many[i].uidl = uidls[i];
		many[i].header = i % 2 ? hdr_a : hdr_nomsgid;
		many[i].size = 100 + i;
	}
	fx_open(&f);
	f.s.msgs = many;
	f.s.n = 70;
	f.s.capa = "USER\r\nTOP\r\nPIPELINING\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.n, 70);
	for (size_t i = 0; i < 70; i++)
		assert_msg(&f.m.msgs[i], (uint32_t)i + 1, uidls[i], 100 + i,
		    i % 2 ? hdr_a : hdr_nomsgid);
	assert_int_equal(f.m.keyed, 70);
	assert_int_equal(f.m.inflight_max, GW_MIGRATE_PIPELINE);
	assert_int_equal(f.s.max_batch_tops, GW_MIGRATE_PIPELINE);	/* never more */
	/* UIDL and LIST in one read, then 32 TOPs in one. */
	assert_non_null(strstr(f.s.cmds, "|PASS <hidden>|UIDL,LIST|TOP 1 0,TOP 2 0,"));
	assert_non_null(strstr(f.s.cmds, ",TOP 32 0|"));
	assert_non_null(strstr(f.s.cmds, "TOP 70 0"));
	fx_close(&f);
}

static void
test_login_refusals(void **state)
{
	static const struct {
		const char *user_reply, *pass_reply;
		enum gw_migrate_outcome outcome;
		const char *cmds;
	} cases[] = {
		{ NULL, "-ERR [AUTH] invalid password\r\n", GW_MIGRATE_REFUSED,
		    "CAPA|USER alice|PASS <hidden>" },
		{ NULL, "-ERR no\r\n", GW_MIGRATE_REFUSED, "CAPA|USER alice|PASS <hidden>" },
		{ NULL, "-ERR [SYS/PERM] account disabled\r\n", GW_MIGRATE_REFUSED,
		    "CAPA|USER alice|PASS <hidden>" },
		{ "-ERR no such user\r\n", NULL, GW_MIGRATE_REFUSED, "CAPA|USER alice" },
		{ NULL, "-ERR [SYS/TEMP] backend down\r\n", GW_MIGRATE_TEMP,
		    "CAPA|USER alice|PASS <hidden>" },
		{ NULL, "-ERR [IN-USE] mailbox locked\r\n", GW_MIGRATE_TEMP,
		    "CAPA|USER alice|PASS <hidden>" },
		{ NULL, "-ERR [LOGIN-DELAY] wait\r\n", GW_MIGRATE_TEMP,
		    "CAPA|USER alice|PASS <hidden>" },
		{ "-ERR [SYS/TEMP] later\r\n", NULL, GW_MIGRATE_TEMP, "CAPA|USER alice" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;

		fx_open(&f);
		f.s.msgs = three;
		f.s.n = 3;
		f.s.capa = "USER\r\nTOP\r\n";
		f.s.user_reply = cases[i].user_reply;
		f.s.pass_reply = cases[i].pass_reply;
		fx_run(&f);
		assert_int_equal(f.r.outcome, cases[i].outcome);
		assert_string_equal(f.s.cmds, cases[i].cmds);	/* nothing after the refusal */
		assert_int_equal(f.m.n, 0);
		assert_null(f.m.msgs);
		assert_true(f.s.eof_seen);
		fx_close(&f);
	}
}

/* A reply not parsed is a failure, never an empty result. */
static void
test_what_is_temp(void **state)
{
	static const struct {
		const char *name;
		bool uidl_err;
		const char *uidl_extra, *list_extra;
		uint32_t list_skip;
		const char *eof_in;
		const char *why;
	} cases[] = {
		{ "UIDL -ERR", true, NULL, NULL, 0, NULL, "UIDL answered -ERR" },
		{ "LIST names one UIDL did not", false, NULL, "4 100\r\n", 0, NULL,
		    "LIST names message 4, UIDL did not" },
		{ "UIDL names one LIST did not", false, NULL, NULL, 2, NULL,
		    "UIDL names message 2, LIST did not" },
		{ "UIDL names one twice", false, "3 UID3-again\r\n", NULL, 0, NULL,
		    "UIDL names message 3 twice" },
		{ "two messages, one UIDL", false, "4 UID1-a\r\n", "4 10\r\n", 0, NULL,
		    "UIDL names two messages UID1-a" },
		{ "unreadable UIDL line", false, "x UID\r\n", NULL, 0, NULL,
		    "unreadable UIDL line 'x UID'" },
		{ "unreadable LIST line", false, NULL, "4 -1\r\n", 0, NULL,
		    "unreadable LIST line" },
		{ "EOF in UIDL's answer", false, NULL, NULL, 0, "UIDL",
		    "connection closed by the old server while reading UIDL" },
		{ "EOF in a TOP's answer", false, NULL, NULL, 0, "TOP",
		    "while reading headers (TOP)" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;

		fx_open(&f);
		f.s.msgs = three;
		f.s.n = 3;
		f.s.capa = "USER\r\nTOP\r\n";
		f.s.uidl_err = cases[i].uidl_err;
		f.s.uidl_extra = cases[i].uidl_extra;
		f.s.list_extra = cases[i].list_extra;
		f.s.list_skip = cases[i].list_skip;
		f.s.eof_in = cases[i].eof_in;
		fx_run(&f);
		if (f.r.outcome != GW_MIGRATE_TEMP || strstr(f.r.why, cases[i].why) == NULL)
			fail_msg("%s: outcome %d, why \"%s\"", cases[i].name, f.r.outcome, f.r.why);
		assert_int_equal(f.m.n, 0);
		fx_close(&f);
	}
}

static void
test_top_refused_keeps_no_key(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = NULL;		/* CAPA -ERR: no capabilities, TOP is still tried */
	f.s.top_err = 2;
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.n, 3);
	assert_msg(&f.m.msgs[0], 1, "UID1-a", 1200, hdr_a);
	assert_msg(&f.m.msgs[1], 2, "UID2-b", 1200, NULL);
	assert_msg(&f.m.msgs[2], 3, "UID3-c", 530, hdr_nomsgid);
	assert_int_equal(f.m.keyed, 2);
	assert_int_equal(f.m.top_refused, 1);
	fx_close(&f);
}

/* A server that sends body lines to TOP n 0: they are not the header. */
static void
test_top_body_lines_are_not_header(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nTOP\r\n";
	f.s.top_body = "Subject: a body line\r\nMessage-ID: <body@x>\r\n\r\n..dotted\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_msg(&f.m.msgs[0], 1, "UID1-a", 1200, hdr_a);
	assert_msg(&f.m.msgs[2], 3, "UID3-c", 530, hdr_nomsgid);
	fx_close(&f);
}

static void
test_no_top_in_capa_asks_for_none(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nUIDL\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.n, 3);
	assert_msg(&f.m.msgs[0], 1, "UID1-a", 1200, NULL);
	assert_string_equal(f.s.cmds, "CAPA|USER alice|PASS <hidden>|UIDL|LIST|QUIT");
	fx_close(&f);
}

static void
test_empty_mailbox_is_ok(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.capa = "USER\r\nTOP\r\nPIPELINING\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.n, 0);
	assert_string_equal(f.s.cmds, "CAPA|USER alice|PASS <hidden>|UIDL,LIST|QUIT");
	fx_close(&f);
}

static void
test_timeout(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\n";
	f.s.silent_on = "UIDL";
	f.t.timeout = 1;
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_TEMP);
	assert_string_equal(f.r.why, "no answer for 1 seconds while reading UIDL");
	assert_true(f.s.eof_seen);
	fx_close(&f);
}

static void
test_auth_plain_fallback(void **state)
{
	static const struct {
		const char *capa, *user_reply, *password, *cmds, *plain;
	} cases[] = {
		/* USER refused, SASL PLAIN listed: AUTH PLAIN with an initial response */
		{ "USER\r\nSASL LOGIN PLAIN\r\nTOP\r\n", "-ERR USER off here\r\n", "secret",
		    "CAPA|USER alice|AUTH PLAIN <ir>", "|alice|secret" },
		/* no USER in CAPA, SASL PLAIN: AUTH at once */
		{ "SASL PLAIN\r\nTOP\r\n", NULL, "secret", "CAPA|AUTH PLAIN <ir>", "|alice|secret" },
		/* a line over 255 octets (RFC 5034 §4): the response after "+" */
		{ "SASL PLAIN\r\nTOP\r\n", NULL,
		    "0123456789012345678901234567890123456789012345678901234567890123456789"
		    "0123456789012345678901234567890123456789012345678901234567890123456789"
		    "0123456789012345678901234567890123456789012345678901234567890123456789",
		    "CAPA|AUTH PLAIN|<response>", "|alice|0123456789" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		char want[1024];

		fx_open(&f);
		f.s.msgs = three;
		f.s.n = 3;
		f.s.capa = cases[i].capa;
		f.s.user_reply = cases[i].user_reply;
		fx_run_as(&f, cases[i].password);
		assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
		assert_int_equal(f.m.keyed, 3);
		snprintf(want, sizeof(want), "%s|UIDL|LIST|TOP 1 0|TOP 2 0|TOP 3 0|QUIT",
		    cases[i].cmds);
		assert_string_equal(f.s.cmds, want);
		assert_memory_equal(f.s.plain, cases[i].plain, strlen(cases[i].plain));
		fx_close(&f);
	}
}

/* USER refused by a server that names no login we can use: not the credentials' fault. */
static void
test_no_usable_login_is_temp(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.capa = "TOP\r\nSTLS\r\n";
	f.s.user_reply = "-ERR [AUTH] Plaintext authentication disallowed\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_TEMP);
	assert_non_null(strstr(f.r.why, "neither USER nor SASL PLAIN"));
	fx_close(&f);
}

static void
test_cr_lf_nul_refused_unsent(void **state)
{
	static const struct { const char *user; const char *pass; size_t len; } cases[] = {
		{ "alice", "sec\r\nDELE 1", 12 },
		{ "alice", "sec\nret", 7 },
		{ "alice", "sec\0ret", 7 },
		{ "alice\r\nDELE 1", "secret", 6 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct gw_migrate_params p = {
			.user = cases[i].user, .password = (const uint8_t *)cases[i].pass,
			.password_len = cases[i].len, .log_id = "session=test",
			.done = on_done, .ctx = &f.r,
		};

		fx_open(&f);
		assert_int_equal(gw_migrate_start(&f.m, f.loop, &f.t, &p), 0);
		assert_int_equal(f.r.calls, 0);
		run(f.loop, 5);
		assert_int_equal(f.r.calls, 1);
		assert_int_equal(f.r.outcome, GW_MIGRATE_REFUSED);
		run(f.loop, 0.05);
		assert_int_equal(f.s.accepted, 0);	/* not even connected */
		assert_string_equal(f.s.cmds, "");
		fx_close(&f);
	}
}

static void
test_unreachable_is_temp(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	srv_close(&f.s);		/* nobody listens on the port now */
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_TEMP);
	assert_non_null(strstr(f.r.why, "connect"));
	fx_close(&f);
}

static void
test_abort_mid_way(void **state)
{
	struct fixture f;
	struct gw_migrate_params p = {
		.user = "alice", .password = (const uint8_t *)"secret", .password_len = 6,
		.log_id = "session=test", .done = on_done, .ctx = NULL,
	};

	(void)state;
	fx_open(&f);
	p.ctx = &f.r;
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nTOP\r\n";
	f.s.silent_on = "TOP";
	assert_int_equal(gw_migrate_start(&f.m, f.loop, &f.t, &p), 0);
	for (int i = 0; i < 2000 && !f.s.silent_hit; i++)
		ev_run(f.loop, EVRUN_ONCE);
	assert_true(f.s.silent_hit);
	assert_int_equal(f.m.n, 3);		/* UIDL and LIST were read */
	gw_migrate_abort(&f.m);
	gw_migrate_abort(&f.m);
	assert_null(f.m.msgs);
	run(f.loop, 0.1);
	assert_int_equal(f.r.calls, 0);
	assert_true(f.s.eof_seen);
	fx_close(&f);
}

static void
test_abort_zeroed(void **state)
{
	struct gw_migrate m;

	(void)state;
	memset(&m, 0, sizeof(m));
	gw_migrate_abort(&m);
	gw_migrate_free(&m);
}

/* A header whose key fields come after 70 KiB of Received lines keys like the whole: only
 * the key fields count against the 64 KiB kept (they are longer than a Received line, so
 * keeping everything up to the bound would lose them). */
static void
test_big_header_keys_like_the_whole(void **state)
{
	static struct fake_msg big[1];
	struct fixture f;
	char *h = malloc(80 * 1024);
	size_t len = 0;

	(void)state;
	assert_non_null(h);
	while (len < 70 * 1024)
		len += (size_t)sprintf(h + len, "Received: from relay%zu.example.org by "
		    "relay.example.net with ESMTPS id %zu; Mon, 3 Mar 2025 10:00:00 +0000\r\n",
		    len, len);
	sprintf(h + len, "Message-ID: <late.%0120d@example.org>\r\nSubject: late %0200d\r\n"
	    "\tand folded\r\n", 7, 8);
	big[0].uidl = "BIG";
	big[0].header = h;
	big[0].size = 99999;
	fx_open(&f);
	f.s.msgs = big;
	f.s.n = 1;
	f.s.capa = "USER\r\nTOP\r\n";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_msg(&f.m.msgs[0], 1, "BIG", 99999, h);
	assert_non_null(strstr(f.m.msgs[0].msgid, "00007@example.org"));
	fx_close(&f);
	free(h);
}

/* A mailbox of one message with this header, migrated: the fixture, for its checks. */
static void
one_message(struct fixture *f, struct fake_msg *msg)
{
	fx_open(f);
	f->s.msgs = msg;
	f->s.n = 1;
	f->s.capa = "USER\r\nTOP\r\n";
	fx_run(f);
	assert_int_equal(f->r.outcome, GW_MIGRATE_OK);
}

/* A header of prefix, `n` times c, then suffix (malloc'd). */
static char *
long_header(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t len = strlen(prefix);
	char *h = malloc(len + n + strlen(suffix) + 1);

	assert_non_null(h);
	memcpy(h, prefix, len);
	memset(h + len, c, n);
	strcpy(h + len + n, suffix);
	return h;
}

/* One header line longer than the reader's bound (70 KiB, unfolded, not a key field): cut,
 * not a failure (a TEMP would keep the user out for as long as the old server has it). */
static void
test_one_over_long_header_line(void **state)
{
	static struct fake_msg msg[1];
	struct fixture f;
	char *h = long_header("Message-ID: <long@example.org>\r\nX-Junk: ", 'j', 70 * 1024,
	    "\r\nSubject: after the long one\r\n");

	(void)state;
	msg[0] = (struct fake_msg){ .uidl = "LONG", .header = h, .size = 80000 };
	one_message(&f, msg);
	assert_msg(&f.m.msgs[0], 1, "LONG", 80000, h);
	fx_close(&f);
	free(h);
}

/* A key field longer than what is kept (a To: of 98 KiB): the old server's side hashes the
 * same first 64 KiB of the key fields as keys.c does of IMAP's HEADER.FIELDS literal, so
 * the two keys match. */
static void
test_an_over_long_key_field_keys_as_imap_does(void **state)
{
	static struct fake_msg msg[1];
	struct fixture f;
	char key[CONTENT_KEY_SIZE];
	char *h = long_header("Message-ID: <wide@example.org>\r\nTo: ", 't', 98 * 1024,
	    "\r\nFrom: a@example.org\r\nSubject: wide\r\n");

	(void)state;
	msg[0] = (struct fake_msg){ .uidl = "WIDE", .header = h, .size = 100000 };
	one_message(&f, msg);
	/* Every line is a key field: IMAP's literal is the header itself, cut at 64 KiB. */
	assert_int_equal(content_key((const uint8_t *)h, 64 * 1024, key), 0);
	assert_string_equal(f.m.msgs[0].ckey, key);
	fx_close(&f);
	free(h);
}

/* Starts a migration of `three` that holds its login, and runs the loop for `seconds`:
 * nothing may have ended by then. */
static void
start_held(struct fixture *f, unsigned timeout, double seconds)
{
	struct gw_migrate_params p = {
		.user = "alice", .password = (const uint8_t *)"secret", .password_len = 6,
		.log_id = "session=test", .hold_login = true, .done = on_done,
	};

	fx_open(f);
	p.ctx = &f->r;
	f->s.msgs = three;
	f->s.n = 3;
	f->s.capa = "USER\r\nTOP\r\n";
	if (timeout > 0)
		f->t.timeout = timeout;
	assert_int_equal(gw_migrate_start(&f->m, f->loop, &f->t, &p), 0);
	run(f->loop, seconds);
	assert_int_equal(f->r.calls, 0);
}

/* hold_login: connected, greeted and CAPA read, but no credential goes out before
 * gw_migrate_release() (the IMAP server has not accepted them yet). */
static void
test_the_login_waits_for_its_release(void **state)
{
	struct fixture f;

	(void)state;
	start_held(&f, 0, 0.3);
	assert_string_equal(f.s.cmds, "CAPA");
	gw_migrate_release(&f.m);
	run(f.loop, 15);
	assert_int_equal(f.r.calls, 1);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_non_null(strstr(f.s.cmds, "CAPA|USER alice|PASS <hidden>|UIDL"));
	fx_close(&f);
}

/* Held longer than [migration] timeout: the old server owes no answer meanwhile, so the
 * wait for the IMAP login is not its timeout. */
static void
test_a_long_hold_is_not_a_timeout(void **state)
{
	struct fixture f;

	(void)state;
	start_held(&f, 1, 1.6);
	gw_migrate_release(&f.m);
	assert_int_equal(f.r.calls, 0);		/* never inside the release */
	run(f.loop, 15);
	assert_int_equal(f.r.calls, 1);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	fx_close(&f);
}

/* --- TLS --- */

static SSL_CTX *
client_ctx(bool verify)
{
	const char *error = NULL;
	SSL_CTX *ctx = gw_tls_client_ctx_new("[migration]", ca_path, verify, "localhost", &error);

	assert_non_null(ctx);
	return ctx;
}

static void
test_implicit_tls_verified(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nTOP\r\nPIPELINING\r\n";
	f.s.security = f.t.security = GW_SEC_TLS;
	f.t.tls = client_ctx(true);
	f.t.verify = true;
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.keyed, 3);
	assert_string_equal(f.s.plain, "secret");
	fx_close(&f);
	SSL_CTX_free(f.t.tls);
}

static void
test_tls_wrong_name_is_temp(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.security = f.t.security = GW_SEC_TLS;
	f.t.tls = client_ctx(true);
	f.t.verify = true;
	f.t.host = "pop.wrong.example";
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_TEMP);
	assert_non_null(strstr(f.r.why, "certificate verify failed"));
	assert_string_equal(f.s.cmds, "");		/* no password crossed */
	fx_close(&f);
	SSL_CTX_free(f.t.tls);
}

static void
test_stls_drops_injected_bytes(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.msgs = three;
	f.s.n = 3;
	f.s.capa = "USER\r\nTOP\r\n";
	f.s.inject = true;		/* "-ERR injected" rides after STLS's +OK */
	f.t.security = GW_SEC_STARTTLS;
	f.t.tls = client_ctx(true);
	f.t.verify = true;
	fx_run(&f);
	assert_int_equal(f.r.outcome, GW_MIGRATE_OK);
	assert_int_equal(f.m.keyed, 3);
	assert_string_equal(f.s.cmds, "STLS|CAPA|USER alice|PASS <hidden>|UIDL|LIST|TOP 1 0|"
	    "TOP 2 0|TOP 3 0|QUIT");
	fx_close(&f);
	SSL_CTX_free(f.t.tls);
}

static void
test_stls_refused_is_temp(void **state)
{
	struct fixture f;

	(void)state;
	fx_open(&f);
	f.s.tls = NULL;			/* the scripted server answers STLS with -ERR */
	f.t.security = GW_SEC_STARTTLS;
	f.t.tls = client_ctx(false);
	fx_run(&f);
	f.t.tls = (SSL_CTX_free(f.t.tls), NULL);
	assert_int_equal(f.r.outcome, GW_MIGRATE_TEMP);
	assert_non_null(strstr(f.r.why, "STLS answered -ERR"));
	assert_string_equal(f.s.cmds, "STLS");		/* and no USER in clear */
	fx_close(&f);
}

/* A self-signed certificate for "localhost", written to ca_path for the client to trust. */
static int
make_cert(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *san;
	FILE *fp;
	int fd;

	(void)state;
	if (key == NULL || x == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
	    -1, -1, 0);
	X509_set_issuer_name(x, name);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
	X509_add_ext(x, san, -1);
	X509_EXTENSION_free(san);
	if (X509_sign(x, key, EVP_sha256()) == 0)
		return -1;
	snprintf(ca_path, sizeof(ca_path), "/tmp/popgate-test-ca-XXXXXX");
	if ((fd = mkstemp(ca_path)) < 0 || (fp = fdopen(fd, "w")) == NULL)
		return -1;
	PEM_write_X509(fp, x);
	fclose(fp);
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (server_ctx == NULL || SSL_CTX_use_certificate(server_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, key) != 1)
		return -1;
	X509_free(x);
	EVP_PKEY_free(key);
	return 0;
}

static int
drop_cert(void **state)
{
	(void)state;
	unlink(ca_path);
	SSL_CTX_free(server_ctx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_pass_three_messages),
		cmocka_unit_test(test_pipelining_keeps_32_tops_in_flight),
		cmocka_unit_test(test_login_refusals),
		cmocka_unit_test(test_what_is_temp),
		cmocka_unit_test(test_top_refused_keeps_no_key),
		cmocka_unit_test(test_top_body_lines_are_not_header),
		cmocka_unit_test(test_no_top_in_capa_asks_for_none),
		cmocka_unit_test(test_empty_mailbox_is_ok),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_auth_plain_fallback),
		cmocka_unit_test(test_no_usable_login_is_temp),
		cmocka_unit_test(test_cr_lf_nul_refused_unsent),
		cmocka_unit_test(test_unreachable_is_temp),
		cmocka_unit_test(test_abort_mid_way),
		cmocka_unit_test(test_abort_zeroed),
		cmocka_unit_test(test_big_header_keys_like_the_whole),
		cmocka_unit_test(test_one_over_long_header_line),
		cmocka_unit_test(test_the_login_waits_for_its_release),
		cmocka_unit_test(test_an_over_long_key_field_keys_as_imap_does),
		cmocka_unit_test(test_a_long_hold_is_not_a_timeout),
		cmocka_unit_test(test_implicit_tls_verified),
		cmocka_unit_test(test_tls_wrong_name_is_temp),
		cmocka_unit_test(test_stls_drops_injected_bytes),
		cmocka_unit_test(test_stls_refused_is_temp),
	};

	return cmocka_run_group_tests(tests, make_cert, drop_cert);
}
