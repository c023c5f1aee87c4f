/* bench/popbench.c: the load generator of `make bench` (bench/run.py), one libev loop.
 * Talks POP3 (RFC 1939) to any server (popgate, Dovecot's own POP3, Dovecot's POP3 over imapc)
 * and, for the reference figure, IMAP4rev1 (RFC 3501) `UID FETCH uid BODY.PEEK[]` straight to
 * the upstream. Every multi-line answer is read to its final "." and un-stuffed as it arrives:
 * octets are counted (and hashed with SHA-256 when asked) without holding the message.
 * Not a test of correctness beyond that: no timed assertions; the exit status is 1 when a
 * session failed (an -ERR, a closed connection, wrong bytes), 2 for a usage error.
 * Output: one JSON object per line on stdout, one per result.
 *
 *   popbench MODE [-h host] -p port [options]
 *   poll      -c C -n N      C clients, N sessions in all: USER/PASS, STAT, UIDL, QUIT
 *   retr      -c C -m K      RETR K of each client's user, checked against LIST K [-S sha256hex]
 *   retr -a                  every message of the mailbox (LIST, then RETR 1..n, each checked)
 *   bigbox                   login, STAT, LIST, UIDL; then login + UIDL; then login + STAT
 *   idle      -k K           K sessions logged in and held until SIGUSR1/SIGTERM or -d seconds
 *   top0      -m K           TOP K 0
 *   imapfetch -m UID         IMAP LOGIN, SELECT, UID FETCH UID BODY.PEEK[] [-S sha256hex]
 * Users: -u PATTERN (printf with one %d, e.g. bench%04d) with -N count [-f first], or -U FILE
 * (one name a line); session i takes user i mod count. -P password. */

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)	/* one read(); a line must fit (POP3 and IMAP lines are short) */
#define CMD_MAX 512
#define MAX_MSGS 1000000
#define IDLE_LOGINS_AT_ONCE 64	/* logins in flight in idle mode: Dovecot's login processes queue */
#define TIMEOUT_S 600.0		/* no answer for this long: the session fails */

enum mode { M_POLL, M_RETR, M_BIGBOX, M_IDLE, M_TOP0, M_IMAPFETCH };

/* What a session waits for. */
enum wait { W_GREETING, W_LINE, W_MULTI, W_IMAP_TAG, W_IMAP_LITERAL, W_HELD, W_DONE };

/* The streaming reader of a multi-line answer: states between chunks. */
enum ml_state { ML_LS, ML_DOT, ML_DOTCR, ML_MID };

struct ml {
	enum ml_state st;
	uint64_t octets;	/* un-stuffed, without the final ".\r\n" */
	uint64_t lines;
	EVP_MD_CTX *sha;	/* NULL: not hashed */
	uint32_t *sizes;	/* LIST: sizes[msgno] parsed, when not NULL */
	uint32_t nsizes;
	char line[64];		/* LIST: the current line's first bytes */
	size_t linelen;
};

struct sess;
typedef void step_fn(struct sess *s, const char *line, size_t len);

struct sess {
	ev_io io;
	ev_timer timer;
	int fd;
	int idx;		/* client number */
	long user;		/* index into users */
	enum wait wait;
	step_fn *next;		/* called with the answer's first line (or NULL for multi's end) */
	int step;
	uint8_t *rbuf;
	size_t rlen;
	struct ml ml;
	double t_start, t_cmd;
	uint64_t want_octets;	/* from LIST k */
	uint32_t msgno, nmsgs;	/* retr -a: current, count */
	uint32_t *sizes;	/* retr -a: [msgno] */
	uint64_t literal_left;
	char tag[8];
	bool dead;		/* ended; not freed yet */
};

static struct {
	enum mode mode;
	const char *host;
	int port;
	int clients;
	long sessions;
	long msg;
	bool all;
	long idle_k;
	double duration;
	const char *sha_hex;
	const char *pattern;
	long nusers, first;
	char **users;
	const char *password;
	const char *label;
} opt = { .host = "127.0.0.1", .clients = 1, .sessions = 1, .msg = 1, .nusers = 1,
	.first = 1, .password = "bench-pass", .label = "" };

static struct ev_loop *loop;
static long started, finished, errors, logged_in, active;
static double t_begin;
static double *lat;	/* poll: per-session ms */
static long nlat;
static uint64_t bytes_total;
static bool stopping;
static ev_signal sig_usr1, sig_term, sig_int;
static ev_timer hold_timer;
static struct sess **all_sess;

static double xfer_t0, xfer_t1;	/* retr, imapfetch: first command sent, last answer read */

static void sess_start(int idx);
static void sess_end(struct sess *s, bool ok, const char *why);
static void idle_check(void);
static void sess_reap(struct sess *s);

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "popbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void
user_name(long i, char *out, size_t outlen)
{
	long k = i % opt.nusers;

	if (opt.users != NULL)
		snprintf(out, outlen, "%s", opt.users[k]);
	else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(out, outlen, opt.pattern, (int)(opt.first + k));
#pragma GCC diagnostic pop
	}
}

static void
send_cmd(struct sess *s, const char *fmt, ...)
{
	char buf[CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		fatal("command too long");
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	/* Commands are short: a fresh socket's send buffer always takes one whole. */
	if (send(s->fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		sess_end(s, false, "send failed");
		return;
	}
	s->t_cmd = now_s();
}

/* ---- the multi-line reader ---------------------------------------------------------------- */

static void
ml_reset(struct ml *m, bool sha)
{
	m->st = ML_LS;
	m->octets = m->lines = 0;
	m->linelen = 0;
	if (sha) {
		if (m->sha == NULL)
			m->sha = EVP_MD_CTX_new();
		EVP_DigestInit_ex(m->sha, EVP_sha256(), NULL);
	} else if (m->sha != NULL) {
		EVP_MD_CTX_free(m->sha);
		m->sha = NULL;
	}
}

static void
ml_emit(struct ml *m, const uint8_t *p, size_t n, bool eol)
{
	m->octets += n;
	if (m->sha != NULL)
		EVP_DigestUpdate(m->sha, p, n);
	if (m->sizes != NULL) {	/* LIST: "msgno size" lines */
		size_t take = n < sizeof(m->line) - 1 - m->linelen ? n : sizeof(m->line) - 1 - m->linelen;

		memcpy(m->line + m->linelen, p, take);
		m->linelen += take;
		if (eol) {
			unsigned long no, sz;

			m->line[m->linelen] = '\0';
			if (sscanf(m->line, "%lu %lu", &no, &sz) == 2 && no >= 1 && no < m->nsizes)
				m->sizes[no] = (uint32_t)sz;
			m->linelen = 0;
		}
	}
	if (eol)
		m->lines++;
}

/* Feeds answer bytes; returns how many were used, *done_r true when the final "." was. */
static size_t
ml_feed(struct ml *m, const uint8_t *p, size_t n, bool *done_r)
{
	size_t i = 0;

	*done_r = false;
	while (i < n) {
		if (m->st == ML_LS) {
			if (p[i] == '.') {
				m->st = ML_DOT;
				i++;
				continue;
			}
			m->st = ML_MID;
		}
		if (m->st == ML_DOT) {
			if (p[i] == '\r') {
				m->st = ML_DOTCR;
				i++;
				continue;
			}
			m->st = ML_MID;	/* the dot was stuffing: dropped */
		}
		if (m->st == ML_DOTCR) {
			if (p[i] == '\n') {
				*done_r = true;
				return i + 1;
			}
			ml_emit(m, (const uint8_t *)"\r", 1, false);	/* malformed; counted */
			m->st = ML_MID;
		}
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - p) + 1 : n;

		ml_emit(m, p + i, end - i, nl != NULL);
		i = end;
		if (nl != NULL)
			m->st = ML_LS;
	}
	return i;
}

static bool
sha_matches(struct ml *m, const char *hex)
{
	unsigned char d[32];
	char h[65];
	unsigned int dl = 0;

	EVP_DigestFinal_ex(m->sha, d, &dl);
	for (unsigned i = 0; i < 32; i++)
		snprintf(h + 2 * i, 3, "%02x", d[i]);
	return strcasecmp(h, hex) == 0;
}

static void
xfer_begin(struct sess *s)
{
	if (xfer_t0 == 0 || s->t_cmd < xfer_t0)
		xfer_t0 = s->t_cmd;
}

static void
xfer_end(void)
{
	xfer_t1 = now_s();
}

/* ---- reading ------------------------------------------------------------------------------ */

static void
expect_line(struct sess *s, step_fn *next)
{
	s->wait = W_LINE;
	s->next = next;
}

static void
expect_multi(struct sess *s, step_fn *next, bool sha)
{
	s->wait = W_MULTI;	/* the +OK line first, then the body (W_MULTI after the +OK) */
	s->step = 0;
	s->next = next;
	ml_reset(&s->ml, sha);
}

static bool
is_ok(const char *line, size_t len)
{
	return len >= 3 && memcmp(line, "+OK", 3) == 0;
}

static void
process(struct sess *s)
{
	size_t off = 0;

	while (off < s->rlen && s->fd >= 0) {
		uint8_t *p = s->rbuf + off;
		size_t n = s->rlen - off;

		if (s->wait == W_MULTI && s->step == 1) {
			bool done;
			size_t used = ml_feed(&s->ml, p, n, &done);

			off += used;
			if (done)
				s->next(s, NULL, 0);
			continue;
		}
		if (s->wait == W_IMAP_LITERAL) {
			size_t take = n < s->literal_left ? n : (size_t)s->literal_left;

			s->ml.octets += take;
			if (s->ml.sha != NULL)
				EVP_DigestUpdate(s->ml.sha, p, take);
			s->literal_left -= take;
			off += take;
			if (s->literal_left == 0)
				s->wait = W_IMAP_TAG;
			continue;
		}
		if (s->wait == W_HELD || s->wait == W_DONE) {
			sess_end(s, false, "unexpected bytes from the server");
			return;
		}
		uint8_t *lf = memchr(p, '\n', n);

		if (lf == NULL)
			break;
		size_t len = (size_t)(lf - p) + 1;

		off += len;
		if (s->wait == W_MULTI) {	/* the status line */
			if (!is_ok((char *)p, len)) {
				sess_end(s, false, "-ERR to a multi-line command");
				return;
			}
			s->step = 1;
			continue;
		}
		if (s->wait == W_IMAP_TAG && len >= 5 && p[len - 3] == '}') {	/* "{N}\r\n" */
			uint8_t *brace = p + len - 4;

			while (brace > p && *brace != '{')
				brace--;
			s->literal_left = strtoull((char *)brace + 1, NULL, 10);
			s->wait = W_IMAP_LITERAL;
			continue;
		}
		s->next(s, (char *)p, len);
	}
	if (s->fd < 0)
		return;
	memmove(s->rbuf, s->rbuf + off, s->rlen - off);
	s->rlen -= off;
	if (s->rlen == RBUF_SIZE)
		sess_end(s, false, "line too long");
}

static void
io_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct sess *s = (struct sess *)w;
	ssize_t n;

	(void)l;
	if (revents & EV_WRITE) {	/* the connect finished */
		int err = 0;
		socklen_t el = sizeof(err);

		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			sess_end(s, false, strerror(err));
			sess_reap(s);
			return;
		}
		ev_io_stop(loop, &s->io);
		ev_io_set(&s->io, s->fd, EV_READ);
		ev_io_start(loop, &s->io);
		return;
	}
	n = read(s->fd, s->rbuf + s->rlen, RBUF_SIZE - s->rlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sess_end(s, s->wait == W_DONE, n == 0 ? "connection closed" : strerror(errno));
		sess_reap(s);
		return;
	}
	s->rlen += (size_t)n;
	ev_timer_again(loop, &s->timer);
	process(s);
	sess_reap(s);
}

static void
timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct sess *s = (struct sess *)((char *)w - offsetof(struct sess, timer));

	(void)l;
	(void)revents;
	if (s->wait == W_HELD) {
		ev_timer_again(loop, &s->timer);
		return;
	}
	sess_end(s, false, "timeout");
	sess_reap(s);
}

/* ---- POP3 session scripts ------------------------------------------------------------------ */

static void step_user(struct sess *s, const char *line, size_t len);
static void after_login(struct sess *s);

static void
step_quit(struct sess *s, const char *line, size_t len)
{
	if (!is_ok(line, len)) {
		sess_end(s, false, "-ERR to QUIT");
		return;
	}
	s->wait = W_DONE;	/* then the server closes */
	sess_end(s, true, NULL);
}

static void
do_quit(struct sess *s)
{
	send_cmd(s, "QUIT");
	expect_line(s, step_quit);
}

static void
step_pass(struct sess *s, const char *line, size_t len)
{
	if (!is_ok(line, len)) {
		sess_end(s, false, "-ERR to PASS");
		return;
	}
	after_login(s);
}

static void
step_user(struct sess *s, const char *line, size_t len)
{
	if (!is_ok(line, len)) {
		sess_end(s, false, "-ERR to USER");
		return;
	}
	send_cmd(s, "PASS %s", opt.password);
	expect_line(s, step_pass);
}

static void
step_greeting(struct sess *s, const char *line, size_t len)
{
	char u[256];

	if (!is_ok(line, len)) {
		fprintf(stderr, "popbench: greeting: %.*s", (int)len, line);
		sess_end(s, false, "no +OK greeting");
		return;
	}
	user_name(s->user, u, sizeof(u));
	send_cmd(s, "USER %s", u);
	expect_line(s, step_user);
}

/* poll: STAT, UIDL, QUIT */
static void
poll_uidl_done(struct sess *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	do_quit(s);
}

static void
poll_stat(struct sess *s, const char *line, size_t len)
{
	if (!is_ok(line, len)) {
		sess_end(s, false, "-ERR to STAT");
		return;
	}
	send_cmd(s, "UIDL");
	expect_multi(s, poll_uidl_done, false);
}

/* retr: LIST k, RETR k (checked), QUIT; -a: LIST, RETR 1..n */
static void retr_next(struct sess *s);

static void
retr_done(struct sess *s, const char *line, size_t len)
{
	double dt = now_s() - s->t_cmd;
	uint64_t want = opt.all ? s->sizes[s->msgno] : s->want_octets;

	(void)line;
	(void)len;
	if (s->ml.octets != want) {
		fprintf(stderr, "popbench: RETR %u: %llu octets, LIST said %llu\n", s->msgno,
			(unsigned long long)s->ml.octets, (unsigned long long)want);
		sess_end(s, false, "RETR: wrong octet count");
		return;
	}
	if (opt.sha_hex != NULL && !opt.all && !sha_matches(&s->ml, opt.sha_hex)) {
		sess_end(s, false, "RETR: SHA-256 differs");
		return;
	}
	bytes_total += s->ml.octets;
	xfer_end();
	if (!opt.all) {
		lat[nlat++] = dt * 1000;
		do_quit(s);
		return;
	}
	retr_next(s);
}

static void
retr_next(struct sess *s)
{
	if (++s->msgno > s->nmsgs) {
		lat[nlat++] = (now_s() - s->t_start) * 1000;
		do_quit(s);
		return;
	}
	send_cmd(s, "RETR %u", s->msgno);
	expect_multi(s, retr_done, false);
}

static void
retr_list_all(struct sess *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	s->nmsgs = (uint32_t)s->ml.lines;
	s->ml.sizes = NULL;
	for (uint32_t i = 1; i <= s->nmsgs; i++)
		if (s->sizes[i] == 0) {
			sess_end(s, false, "LIST: a message without a size");
			return;
		}
	s->msgno = 0;
	retr_next(s);
	s->t_start = s->t_cmd;	/* the whole mailbox: from the first RETR to the last "." */
	xfer_begin(s);
}

static void
retr_list1(struct sess *s, const char *line, size_t len)
{
	unsigned long no, sz;

	if (!is_ok(line, len) || sscanf(line, "+OK %lu %lu", &no, &sz) != 2) {
		sess_end(s, false, "LIST k");
		return;
	}
	s->want_octets = sz;
	s->msgno = (uint32_t)opt.msg;
	send_cmd(s, "RETR %ld", opt.msg);
	xfer_begin(s);
	expect_multi(s, retr_done, opt.sha_hex != NULL);
}

/* bigbox: three sessions; step counts them */
static double bb[8];	/* login, stat, list, uidl; login2, uidl2; login3, stat3 */
static long bb_lines[3];
static int bb_round;

static void
bb_uidl(struct sess *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	bb[bb_round == 0 ? 3 : 5] = now_s() - s->t_cmd;
	bb_lines[2] = (long)s->ml.lines;
	do_quit(s);
}

static void
bb_list(struct sess *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	bb[2] = now_s() - s->t_cmd;
	bb_lines[1] = (long)s->ml.lines;
	send_cmd(s, "UIDL");
	expect_multi(s, bb_uidl, false);
}

static void
bb_stat(struct sess *s, const char *line, size_t len)
{
	unsigned long n, o;

	if (!is_ok(line, len) || sscanf(line, "+OK %lu %lu", &n, &o) != 2) {
		sess_end(s, false, "STAT");
		return;
	}
	bb_lines[0] = (long)n;
	if (bb_round == 2) {
		bb[7] = now_s() - s->t_cmd;
		do_quit(s);
		return;
	}
	bb[1] = now_s() - s->t_cmd;
	send_cmd(s, "LIST");
	expect_multi(s, bb_list, false);
}

/* top0 */
static void
top_done(struct sess *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	lat[nlat++] = (now_s() - s->t_cmd) * 1000;
	bytes_total += s->ml.octets;
	do_quit(s);
}

static void
after_login(struct sess *s)
{
	double login = now_s() - s->t_start;

	switch (opt.mode) {
	case M_POLL:
		send_cmd(s, "STAT");
		expect_line(s, poll_stat);
		break;
	case M_RETR:
		if (opt.all) {
			s->sizes = calloc(MAX_MSGS + 1, sizeof(*s->sizes));
			if (s->sizes == NULL)
				fatal("out of memory");
			send_cmd(s, "LIST");
			expect_multi(s, retr_list_all, false);
			s->ml.sizes = s->sizes;
			s->ml.nsizes = MAX_MSGS + 1;
		} else {
			send_cmd(s, "LIST %ld", opt.msg);
			expect_line(s, retr_list1);
		}
		break;
	case M_BIGBOX:
		bb[bb_round == 0 ? 0 : bb_round == 1 ? 4 : 6] = login;
		if (bb_round == 1) {
			send_cmd(s, "UIDL");
			expect_multi(s, bb_uidl, false);
		} else {
			send_cmd(s, "STAT");
			expect_line(s, bb_stat);
		}
		break;
	case M_IDLE:
		s->wait = W_HELD;
		logged_in++;
		active--;
		if (logged_in == opt.idle_k) {
			printf("{\"mode\":\"idle\",\"label\":\"%s\",\"sessions\":%ld,\"login_s\":%.3f,"
				"\"pid\":%d,\"event\":\"all logged in\"}\n", opt.label, logged_in,
				now_s() - t_begin, (int)getpid());
			fflush(stdout);
		}
		/* the next login (a window of IDLE_LOGINS_AT_ONCE) */
		if (started < opt.idle_k)
			sess_start((int)started);
		else
			idle_check();
		break;
	case M_TOP0:
		send_cmd(s, "TOP %ld 0", opt.msg);
		expect_multi(s, top_done, false);
		break;
	case M_IMAPFETCH:
		break;
	}
}

/* ---- IMAP: LOGIN, SELECT, UID FETCH uid BODY.PEEK[], LOGOUT -------------------------------- */

static void
imap_step(struct sess *s, const char *line, size_t len)
{
	if (s->step == 0) {	/* greeting */
		char u[256];

		if (len < 4 || memcmp(line, "* OK", 4) != 0) {
			sess_end(s, false, "no IMAP greeting");
			return;
		}
		user_name(s->user, u, sizeof(u));
		send_cmd(s, "a1 LOGIN \"%s\" \"%s\"", u, opt.password);
		s->wait = W_IMAP_TAG;
		s->step = 1;
		return;
	}
	if (line[0] != 'a')
		return;	/* untagged, or the rest of the FETCH line after its literal */
	if (len < 5 || memcmp(line + 3, "OK", 2) != 0) {
		fprintf(stderr, "popbench: IMAP: %.*s", (int)len, line);
		sess_end(s, false, "IMAP command failed");
		return;
	}
	switch (s->step++) {
	case 1:
		send_cmd(s, "a2 SELECT INBOX");
		break;
	case 2:
		ml_reset(&s->ml, opt.sha_hex != NULL);
		send_cmd(s, "a3 UID FETCH %ld BODY.PEEK[]", opt.msg);
		xfer_begin(s);
		break;
	case 3:
		lat[nlat++] = (now_s() - s->t_cmd) * 1000;
		if (s->ml.octets == 0) {
			sess_end(s, false, "UID FETCH: no literal (no such UID?)");
			return;
		}
		if (opt.sha_hex != NULL && !sha_matches(&s->ml, opt.sha_hex)) {
			sess_end(s, false, "UID FETCH: SHA-256 differs");
			return;
		}
		bytes_total += s->ml.octets;
		xfer_end();
		send_cmd(s, "a4 LOGOUT");
		break;
	default:
		s->wait = W_DONE;
		sess_end(s, true, NULL);
		break;
	}
}

/* ---- sessions ------------------------------------------------------------------------------- */

static void
sess_start(int idx)
{
	struct sess *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin;
	int one = 1;

	if (s == NULL || (s->rbuf = malloc(opt.mode == M_IDLE ? 4096 : RBUF_SIZE)) == NULL)
		fatal("out of memory");
	s->idx = idx;
	s->user = started;
	started++;
	active++;
	s->t_start = now_s();
	if (opt.mode == M_IDLE)
		all_sess[idx] = s;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		fatal("socket: %s", strerror(errno));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1)
		fatal("bad host %s", opt.host);
	ev_io_init(&s->io, io_cb, s->fd, EV_WRITE);
	ev_init(&s->timer, timeout_cb);
	s->timer.repeat = TIMEOUT_S;
	ev_timer_again(loop, &s->timer);
	if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		sess_end(s, false, strerror(errno));
		sess_reap(s);
		return;
	}
	ev_io_start(loop, &s->io);
	if (opt.mode == M_IMAPFETCH) {
		s->wait = W_LINE;
		s->step = 0;
		s->next = imap_step;
	} else
		expect_line(s, step_greeting);
}

static void
sess_end(struct sess *s, bool ok, const char *why)
{
	if (s->fd < 0)
		return;
	if (!ok) {
		errors++;
		if (errors <= 10)
			fprintf(stderr, "popbench: session %d (user #%ld): %s\n", s->idx, s->user, why);
	}
	if (opt.mode == M_POLL && ok)
		lat[nlat++] = (now_s() - s->t_start) * 1000;
	ev_io_stop(loop, &s->io);
	ev_timer_stop(loop, &s->timer);
	close(s->fd);
	s->fd = -1;
	finished++;
	if (opt.mode == M_IDLE) {
		if (!ok && !stopping) {
			if (s->wait != W_HELD)
				active--;
			else
				logged_in--;
			if (started < opt.idle_k)
				sess_start((int)started);
			else
				idle_check();
		}
		return;	/* freed at the end */
	}
	active--;
	s->dead = true;	/* freed by the callback that got here (sess_reap) */
	if (opt.mode == M_BIGBOX && ok && ++bb_round < 3) {
		sess_start(0);
		return;
	}
	if (started < opt.sessions && opt.mode != M_BIGBOX)
		sess_start((int)started);
	else if (active == 0)
		ev_break(loop, EVBREAK_ALL);
}

/* Frees s if it ended: only from the outermost callback, never under process(). */
static void
sess_reap(struct sess *s)
{
	if (!s->dead)
		return;
	if (s->ml.sha != NULL)
		EVP_MD_CTX_free(s->ml.sha);
	free(s->sizes);
	free(s->rbuf);
	free(s);
}

/* ---- idle: hold, then QUIT everything ------------------------------------------------------- */

static void
idle_release(void)
{
	long n = 0;

	if (stopping)
		return;
	stopping = true;
	for (long i = 0; i < started; i++) {
		struct sess *s = all_sess[i];

		if (s != NULL && s->fd >= 0) {
			if (send(s->fd, "QUIT\r\n", 6, MSG_NOSIGNAL) == 6)
				n++;
			close(s->fd);
			ev_io_stop(loop, &s->io);
			ev_timer_stop(loop, &s->timer);
			s->fd = -1;
		}
	}
	printf("{\"mode\":\"idle\",\"label\":\"%s\",\"sessions\":%ld,\"held\":%ld,\"errors\":%ld,"
		"\"event\":\"released\"}\n", opt.label, opt.idle_k, n, errors);
	fflush(stdout);
	ev_break(loop, EVBREAK_ALL);
}

/* Every login done, some failed: say so (the harness reads the count). */
static void
idle_check(void)
{
	static bool said;

	if (said || active > 0 || logged_in == opt.idle_k)
		return;
	said = true;
	printf("{\"mode\":\"idle\",\"label\":\"%s\",\"sessions\":%ld,\"login_s\":%.3f,"
		"\"pid\":%d,\"errors\":%ld,\"event\":\"logins done\"}\n", opt.label, logged_in,
		now_s() - t_begin, (int)getpid(), errors);
	fflush(stdout);
}

static void
sig_cb(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	idle_release();
}

static void
hold_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	idle_release();
}

/* ---- results -------------------------------------------------------------------------------- */

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	if (nlat == 0)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);

	return lat[k];
}

static void
usage(void)
{
	fprintf(stderr, "usage: popbench poll|retr|bigbox|idle|top0|imapfetch -p port [-h host] "
		"[-c clients] [-n sessions] [-m msg|uid] [-a] [-k sessions] [-d seconds] "
		"[-S sha256hex] [-u pattern -N count [-f first] | -U file] [-P password] [-l label]\n");
	exit(2);
}

static void
read_users(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	long cap = 0;

	if (f == NULL)
		fatal("%s: %s", path, strerror(errno));
	opt.nusers = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (opt.nusers == cap) {
			cap = cap ? cap * 2 : 64;
			opt.users = realloc(opt.users, (size_t)cap * sizeof(*opt.users));
			if (opt.users == NULL)
				fatal("out of memory");
		}
		opt.users[opt.nusers++] = strdup(line);
	}
	fclose(f);
	if (opt.nusers == 0)
		fatal("%s: no users", path);
}

int
main(int argc, char **argv)
{
	static const char *names[] = { "poll", "retr", "bigbox", "idle", "top0", "imapfetch" };
	struct rlimit rl;
	int c, i;
	double wall;

	if (argc < 2)
		usage();
	for (i = 0; i < 6 && strcmp(argv[1], names[i]) != 0; i++)
		;
	if (i == 6)
		usage();
	opt.mode = (enum mode)i;
	optind = 2;
	while ((c = getopt(argc, argv, "h:p:c:n:m:ak:d:S:u:N:f:U:P:l:")) != -1) {
		switch (c) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'c': opt.clients = atoi(optarg); break;
		case 'n': opt.sessions = atol(optarg); break;
		case 'm': opt.msg = atol(optarg); break;
		case 'a': opt.all = true; break;
		case 'k': opt.idle_k = atol(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'S': opt.sha_hex = optarg; break;
		case 'u': opt.pattern = optarg; break;
		case 'N': opt.nusers = atol(optarg); break;
		case 'f': opt.first = atol(optarg); break;
		case 'U': read_users(optarg); break;
		case 'P': opt.password = optarg; break;
		case 'l': opt.label = optarg; break;
		default: usage();
		}
	}
	if (opt.port <= 0 || (opt.pattern == NULL && opt.users == NULL) || opt.nusers < 1 ||
	    opt.clients < 1)
		usage();
	if (opt.mode != M_POLL)
		opt.sessions = opt.clients;
	if (opt.mode == M_BIGBOX)
		opt.sessions = opt.clients = 1;
	if (opt.mode == M_IDLE) {
		if (opt.idle_k < 1)
			usage();
		opt.sessions = opt.idle_k;
		opt.clients = opt.idle_k < IDLE_LOGINS_AT_ONCE ? (int)opt.idle_k : IDLE_LOGINS_AT_ONCE;
		/* One descriptor a session, and a few of our own. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.idle_k + 16 > rl.rlim_cur)
			fatal("-k %ld needs %ld descriptors, the limit is %lu", opt.idle_k,
				opt.idle_k + 16, (unsigned long)rl.rlim_cur);
		all_sess = calloc((size_t)opt.idle_k, sizeof(*all_sess));
	}
	if (opt.clients > opt.sessions)
		opt.clients = (int)opt.sessions;
	lat = calloc((size_t)opt.sessions + 4, sizeof(*lat));
	if (lat == NULL)
		fatal("out of memory");
	signal(SIGPIPE, SIG_IGN);
	loop = EV_DEFAULT;
	if (opt.mode == M_IDLE) {
		ev_signal_init(&sig_usr1, sig_cb, SIGUSR1);
		ev_signal_init(&sig_term, sig_cb, SIGTERM);
		ev_signal_init(&sig_int, sig_cb, SIGINT);
		ev_signal_start(loop, &sig_usr1);
		ev_signal_start(loop, &sig_term);
		ev_signal_start(loop, &sig_int);
	}
	t_begin = now_s();
	for (i = 0; i < opt.clients; i++)
		sess_start(i);
	if (opt.mode == M_IDLE && opt.duration > 0) {
		/* the hold timer counts from the start; a generous duration covers the logins */
		ev_timer_init(&hold_timer, hold_cb, opt.duration, 0);
		ev_timer_start(loop, &hold_timer);
	}
	ev_run(loop, 0);
	wall = now_s() - t_begin;
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_d);
	switch (opt.mode) {
	case M_POLL:
		printf("{\"mode\":\"poll\",\"label\":\"%s\",\"clients\":%d,\"sessions\":%ld,"
			"\"ok\":%ld,\"errors\":%ld,\"wall_s\":%.3f,\"sessions_per_s\":%.1f,"
			"\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n", opt.label, opt.clients, opt.sessions, nlat,
			errors, wall, nlat / wall, pct(50), pct(99));
		break;
	case M_RETR:
		printf("{\"mode\":\"retr\",\"label\":\"%s\",\"clients\":%d,\"all\":%s,\"msg\":%ld,"
			"\"ok\":%ld,\"errors\":%ld,\"bytes\":%llu,\"wall_s\":%.3f,\"mb_per_s\":%.1f,"
			"\"sha256_checked\":%s,\"p50_ms\":%.1f}\n", opt.label, opt.clients,
			opt.all ? "true" : "false", opt.msg, nlat, errors,
			(unsigned long long)bytes_total, xfer_t1 - xfer_t0,
			bytes_total / 1e6 / (xfer_t1 - xfer_t0),
			opt.sha_hex != NULL && !opt.all ? "true" : "false", pct(50));
		break;
	case M_BIGBOX:
		printf("{\"mode\":\"bigbox\",\"label\":\"%s\",\"errors\":%ld,\"messages\":%ld,"
			"\"list_lines\":%ld,\"uidl_lines\":%ld,\"login_ms\":%.2f,\"stat_ms\":%.2f,"
			"\"list_ms\":%.2f,\"uidl_ms\":%.2f,\"login_uidl_ms\":%.2f,\"login_stat_ms\":%.2f}\n",
			opt.label, errors, bb_lines[0], bb_lines[1], bb_lines[2], bb[0] * 1e3,
			bb[1] * 1e3, bb[2] * 1e3, bb[3] * 1e3, (bb[4] + bb[5]) * 1e3,
			(bb[6] + bb[7]) * 1e3);
		if (errors == 0 && (bb_lines[0] != bb_lines[1] || bb_lines[1] != bb_lines[2])) {
			fprintf(stderr, "popbench: bigbox: STAT %ld, LIST %ld lines, UIDL %ld lines\n",
				bb_lines[0], bb_lines[1], bb_lines[2]);
			errors++;
		}
		break;
	case M_IDLE:
		break;
	case M_TOP0:
		printf("{\"mode\":\"top0\",\"label\":\"%s\",\"msg\":%ld,\"errors\":%ld,"
			"\"header_octets\":%llu,\"ms\":%.2f}\n", opt.label, opt.msg, errors,
			(unsigned long long)bytes_total, pct(50));
		if (errors == 0 && bytes_total == 0)
			errors++;
		break;
	case M_IMAPFETCH:
		printf("{\"mode\":\"imapfetch\",\"label\":\"%s\",\"uid\":%ld,\"clients\":%d,"
			"\"errors\":%ld,\"bytes\":%llu,\"wall_s\":%.3f,\"mb_per_s\":%.1f,"
			"\"fetch_ms\":%.1f,\"sha256_checked\":%s}\n", opt.label, opt.msg, opt.clients,
			errors, (unsigned long long)bytes_total, xfer_t1 - xfer_t0,
			bytes_total / 1e6 / (xfer_t1 - xfer_t0), pct(50),
			opt.sha_hex ? "true" : "false");
		break;
	}
	fflush(stdout);
	return errors == 0 ? 0 : 1;
}
