/* tests/unit/test_pop3_parse.c: POP3 command lines (pop3/pop3_parse.c): a table of lines,
 * every wire cut at every byte, over-long lines reported once and never exposed, SASL raw
 * lines, and numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_parse.h"
#include "unit.h"

/* A parser, its input buffer and a record of what came out, "RETR 7|NOOP|!LONG". */
struct feed {
	struct pop3_parser p;
	struct buf in;
	size_t max;
	bool raw;		/* SASL continuation lines instead of commands */
	char rec[16384];
	size_t reclen;
	size_t max_buffered;	/* most bytes left in `in` after a parse loop */
};

static void
rec(struct feed *f, const void *s, size_t n)
{
	assert_true(f->reclen + n < sizeof(f->rec));
	memcpy(f->rec + f->reclen, s, n);
	f->reclen += n;
	f->rec[f->reclen] = '\0';
}

static void
rec_str(struct feed *f, const char *s)
{
	rec(f, s, strlen(s));
}

static void
feed_init(struct feed *f, size_t max)
{
	memset(f, 0, sizeof(*f));
	f->max = max;
}

static void
rec_cmd(struct feed *f, const struct pop3_cmd *c)
{
	rec_str(f, c->verb[0] != '\0' ? c->verb : "?");
	for (size_t i = 0; i < c->nargs; i++) {
		rec_str(f, " ");
		rec(f, c->arg[i].p, c->arg[i].len);
	}
	if (c->too_many_args)
		rec_str(f, " +");
	rec_str(f, "{");
	rec(f, c->rest.p, c->rest.len);
	rec_str(f, "}");
}

/* Runs the parser over what is buffered, as the gateway does: consume after every call. */
static void
feed_run(struct feed *f)
{
	for (;;) {
		struct pop3_cmd cmd;
		struct slice line;
		size_t consumed = 12345;
		enum pop3_parse_result r;

		if (f->raw)
			r = pop3_parse_raw_line(&f->p, &f->in, f->max, &line, &consumed);
		else
			r = pop3_parse(&f->p, &f->in, f->max, &cmd, &consumed);
		assert_true(consumed <= buf_len(&f->in));
		if (r != POP3_PARSE_MORE && f->reclen > 0)
			rec_str(f, "|");
		switch (r) {
		case POP3_PARSE_MORE:
			break;
		case POP3_PARSE_COMMAND:
			assert_true(consumed > 0);
			if (f->raw) {
				rec_str(f, "<");
				rec(f, line.p, line.len);
				rec_str(f, ">");
			} else {
				rec_cmd(f, &cmd);
			}
			break;
		case POP3_PARSE_INVALID:
			assert_true(consumed > 0);
			rec_str(f, "!INVALID");
			break;
		case POP3_PARSE_TOO_LONG:
			assert_true(consumed > 0);
			rec_str(f, "!LONG");
			break;
		}
		buf_consume(&f->in, consumed);
		if (r == POP3_PARSE_MORE)
			break;
	}
	if (buf_len(&f->in) > f->max_buffered)
		f->max_buffered = buf_len(&f->in);
}

static void
feed_bytes(struct feed *f, const void *p, size_t n)
{
	assert_int_equal(buf_append(&f->in, p, n), 0);
	feed_run(f);
}

static void
feed_free(struct feed *f)
{
	buf_free(&f->in);
}

/* The record of a whole wire fed at once. */
static const char *
parse_all(struct feed *f, const char *wire, size_t len, size_t max)
{
	feed_init(f, max);
	feed_bytes(f, wire, len);
	return f->rec;
}

/* Wire literals as W() (unit.h): some hold NUL bytes. */
static void
test_table(void **state)
{
	static const struct {
		const char *wire;
		size_t len;
		const char *want;
	} t[] = {
		{ W("NOOP\r\n"), "NOOP{}" },
		{ W("noop\r\n"), "NOOP{}" },
		{ W("rEtR 7\r\n"), "RETR 7{7}" },
		{ W("RETR 7\n"), "RETR 7{7}" },			/* bare LF */
		{ W("TOP 1 10\r\n"), "TOP 1 10{1 10}" },
		{ W("TOP 1 10 5\r\n"), "TOP 1 10 +{1 10 5}" },	/* too many, first two kept */
		{ W("LIST  3  \r\n"), "LIST 3{ 3  }" },		/* runs of spaces */
		{ W("LIST \t3\t\r\n"), "LIST 3{\t3\t}" },		/* tabs split too */
		{ W("UIDL\r\n"), "UIDL{}" },
		{ W("UIDL \r\n"), "UIDL{}" },
		{ W("PASS my secret  pass \r\n"), "PASS my secret +{my secret  pass }" },
		{ W("USER bob@example.net\r\n"), "USER bob@example.net{bob@example.net}" },
		{ W("XYZ\r\n"), "XYZ{}" },				/* unknown, verb kept */
		{ W("NOOPS\r\n"), "?{}" },				/* over 4 letters: no verb */
		{ W("N0OP\r\n"), "N0OP{}" },			/* unknown, digits allowed */
		{ W("NO-P\r\n"), "?{}" },				/* not a verb at all */
		{ W("NOOP\r\r\n"), "?{}" },			/* the CR is in the verb */
		{ W("LIST\t1\r\n"), "?{}" },			/* the verb ends at a space */
		{ W("\r\n"), "!INVALID" },
		{ W("\n"), "!INVALID" },
		{ W(" NOOP\r\n"), "!INVALID" },			/* no verb before the space */
		{ W("NO\0OP\r\n"), "!INVALID" },
		{ W("NOOP\0\r\n"), "!INVALID" },
		{ W("PASS a\0b\r\n"), "!INVALID" },
		{ W("RETR 1\r\nDELE 1\r\nQUIT\r\n"), "RETR 1{1}|DELE 1{1}|QUIT{}" },
		{ W("\r\nNOOP\r\n"), "!INVALID|NOOP{}" },
		{ W("NOOP"), "" },					/* no LF yet */
		{ W("NOOP\r"), "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct feed f;

		parse_all(&f, t[i].wire, t[i].len, POP3_LINE_MAX);
		if (strcmp(f.rec, t[i].want) != 0)
			fail_msg("line %zu: got \"%s\", want \"%s\"", i, f.rec, t[i].want);
		feed_free(&f);
	}
}

static void
test_ids_and_secret(void **state)
{
	static const struct {
		const char *line;
		enum pop3_cmd_id id;
		bool secret;
	} t[] = {
		{ "USER a\r\n", POP3_CMD_USER, false }, { "PASS a\r\n", POP3_CMD_PASS, true },
		{ "apop a b\r\n", POP3_CMD_APOP, false }, { "AUTH PLAIN\r\n", POP3_CMD_AUTH, true },
		{ "STLS\r\n", POP3_CMD_STLS, false }, { "CAPA\r\n", POP3_CMD_CAPA, false },
		{ "QUIT\r\n", POP3_CMD_QUIT, false }, { "STAT\r\n", POP3_CMD_STAT, false },
		{ "LIST\r\n", POP3_CMD_LIST, false }, { "UIDL\r\n", POP3_CMD_UIDL, false },
		{ "RETR 1\r\n", POP3_CMD_RETR, false }, { "top 1 0\r\n", POP3_CMD_TOP, false },
		{ "DELE 1\r\n", POP3_CMD_DELE, false }, { "RSET\r\n", POP3_CMD_RSET, false },
		{ "NOOP\r\n", POP3_CMD_NOOP, false }, { "UTF8\r\n", POP3_CMD_UTF8, false },
		{ "XTND\r\n", POP3_CMD_UNKNOWN, false }, { "PASSX a\r\n", POP3_CMD_UNKNOWN, false },
		{ "TO\r\n", POP3_CMD_UNKNOWN, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pop3_parser p = { 0 };
		struct buf in = { 0 };
		struct pop3_cmd cmd;
		size_t consumed;

		buf_append_str(&in, t[i].line);
		assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
		    POP3_PARSE_COMMAND);
		assert_int_equal(cmd.id, t[i].id);
		assert_int_equal(cmd.secret, t[i].secret);
		assert_int_equal(consumed, strlen(t[i].line));
		if (t[i].id != POP3_CMD_UNKNOWN)
			assert_string_equal(cmd.verb, pop3_cmd_name(t[i].id));
		buf_free(&in);
	}
	assert_string_equal(pop3_cmd_name(POP3_CMD_RETR), "RETR");
	assert_string_equal(pop3_cmd_name(POP3_CMD_UNKNOWN), "?");
	assert_string_equal(pop3_cmd_name(POP3_CMD_LAST), "?");
	assert_string_equal(pop3_cmd_name((enum pop3_cmd_id)1000), "?");
}

/* PASS takes its argument whole (RFC 1939 §7): spaces inside and at the ends are kept. */
static void
test_pass_rest(void **state)
{
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	struct pop3_cmd cmd;
	size_t consumed;

	(void)state;
	buf_append_str(&in, "PASS  two  spaces \r\nPASS\r\n");
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_COMMAND);
	assert_int_equal(cmd.rest.len, 13);
	assert_memory_equal(cmd.rest.p, " two  spaces ", 13);
	assert_true(cmd.secret);
	buf_consume(&in, consumed);
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_COMMAND);
	assert_int_equal(cmd.id, POP3_CMD_PASS);
	assert_int_equal(cmd.rest.len, 0);
	assert_non_null(cmd.rest.p);
	assert_int_equal(cmd.nargs, 0);
	buf_free(&in);
}

/* Every cut of the wire, and byte by byte, gives the same record as the whole wire. */
static void
check_any_split(const char *wire, size_t len, size_t max, bool raw, const char *want)
{
	struct feed whole;

	feed_init(&whole, max);
	whole.raw = raw;
	feed_bytes(&whole, wire, len);
	if (want != NULL && strcmp(whole.rec, want) != 0)
		fail_msg("whole: got \"%s\", want \"%s\"", whole.rec, want);
	for (size_t cut = 0; cut <= len; cut++) {
		struct feed f;

		feed_init(&f, max);
		f.raw = raw;
		feed_bytes(&f, wire, cut);
		feed_bytes(&f, wire + cut, len - cut);
		if (strcmp(f.rec, whole.rec) != 0)
			fail_msg("cut %zu: got \"%s\", want \"%s\"", cut, f.rec, whole.rec);
		feed_free(&f);
	}
	{
		struct feed f;

		feed_init(&f, max);
		f.raw = raw;
		for (size_t i = 0; i < len; i++)
			feed_bytes(&f, wire + i, 1);
		assert_string_equal(f.rec, whole.rec);
		/* Byte by byte, the buffer never holds a whole over-long line. */
		assert_true(f.max_buffered < max);
		feed_free(&f);
	}
	feed_free(&whole);
}

static void
test_parse_any_split(void **state)
{
	static const char wire[] = "RETR 7\r\nNOOP\r\n\r\nlist  2\nPASS a b c\r\nX\0Y\r\nTOP 1 2 3\r\n";

	(void)state;
	check_any_split(wire, sizeof(wire) - 1, POP3_LINE_MAX, false,
	    "RETR 7{7}|NOOP{}|!INVALID|LIST 2{ 2}|PASS a b +{a b c}|!INVALID|TOP 1 2 +{1 2 3}");
}

static void
test_too_long_once(void **state)
{
	char wire[1200];
	size_t n = 0;

	(void)state;
	/* 300 bytes and CRLF, then a command: one TOO_LONG, then the command. */
	memcpy(wire, "USER ", 5);
	memset(wire + 5, 'a', 295);
	n = 300;
	memcpy(wire + n, "\r\nNOOP\r\n", 8);
	n += 8;
	check_any_split(wire, n, POP3_LINE_MAX, false, "!LONG|NOOP{}");

	/* 800 bytes (several times the limit), bare LF, then two commands. */
	memset(wire, 'P', 800);
	memcpy(wire + 800, "\nSTAT\r\nQUIT\r\n", 13);
	check_any_split(wire, 813, POP3_LINE_MAX, false, "!LONG|STAT{}|QUIT{}");

	/* Two long lines in a row: two reports. */
	memset(wire, 'x', 1000);
	wire[400] = '\n';
	memcpy(wire + 1000, "\nNOOP\n", 6);
	check_any_split(wire, 1006, POP3_LINE_MAX, false, "!LONG|!LONG|NOOP{}");
}

/* The limit counts the CR LF (RFC 2449 §4: 255 octets). */
static void
test_limit_edges(void **state)
{
	char wire[300];

	(void)state;
	memcpy(wire, "USER ", 5);
	memset(wire + 5, 'u', 248);		/* 253 bytes + CRLF = 255: fits */
	memcpy(wire + 253, "\r\n", 2);
	check_any_split(wire, 255, POP3_LINE_MAX, false, NULL);
	{
		struct feed f;

		parse_all(&f, wire, 255, POP3_LINE_MAX);
		assert_memory_equal(f.rec, "USER uuu", 8);
		feed_free(&f);
	}
	memset(wire + 5, 'u', 249);		/* 254 + CRLF = 256: too long */
	memcpy(wire + 254, "\r\n", 2);
	check_any_split(wire, 256, POP3_LINE_MAX, false, "!LONG");
	memcpy(wire + 254, "\n", 1);		/* 254 + LF = 255: fits */
	check_any_split(wire, 255, POP3_LINE_MAX, false, NULL);
	{
		struct feed f;

		parse_all(&f, wire, 255, POP3_LINE_MAX);
		assert_memory_equal(f.rec, "USER uuu", 8);
		feed_free(&f);
	}
}

/* No byte of an over-long line is ever shown, and its bytes are dropped as they come. */
static void
test_too_long_not_exposed(void **state)
{
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	struct pop3_cmd cmd;
	size_t consumed;
	char chunk[100];

	(void)state;
	memset(chunk, 's', sizeof(chunk));
	buf_append(&in, "PASS ", 5);
	for (int i = 0; i < 2; i++) {		/* 205 bytes: not yet over */
		buf_append(&in, chunk, sizeof(chunk));
		assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
		    POP3_PARSE_MORE);
		assert_int_equal(consumed, 0);
	}
	buf_append(&in, chunk, sizeof(chunk));	/* 305: dropped, nothing reported yet */
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_MORE);
	assert_int_equal(consumed, 305);
	buf_consume(&in, consumed);
	for (int i = 0; i < 50; i++) {		/* 5000 more: each chunk dropped */
		buf_append(&in, chunk, sizeof(chunk));
		assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
		    POP3_PARSE_MORE);
		assert_int_equal(consumed, sizeof(chunk));
		buf_consume(&in, consumed);
	}
	buf_append_str(&in, "sss\r\nNOOP\r\n");
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
	    POP3_PARSE_TOO_LONG);
	assert_int_equal(consumed, 5);		/* up to and with its LF */
	buf_consume(&in, consumed);
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
	    POP3_PARSE_COMMAND);
	assert_int_equal(cmd.id, POP3_CMD_NOOP);
	buf_consume(&in, consumed);
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_MORE);
	assert_int_equal(consumed, 0);
	buf_free(&in);
}

/* SASL continuation lines: raw, CR LF stripped, their own larger limit. */
static void
test_raw_lines(void **state)
{
	static char wire[20000];
	size_t n = 0;

	(void)state;
	check_any_split("dGVzdA==\r\n*\r\n\r\n=\n", 18, POP3_SASL_LINE_MAX, true,
	    "<dGVzdA==>|<*>|<>|<=>");
	check_any_split("a\0b\r\nc d\r\n", 10, POP3_SASL_LINE_MAX, true, "!INVALID|<c d>");
	memset(wire, 'A', 9000);		/* an OAuth token too big even for SASL */
	n = 9000;
	memcpy(wire + n, "\r\nAAAA\r\n", 8);
	n += 8;
	check_any_split(wire, n, POP3_SASL_LINE_MAX, true, "!LONG|<AAAA>");
	memset(wire, 'A', 8190);		/* 8190 + CRLF = 8192: fits */
	memcpy(wire + 8190, "\r\n", 2);
	{
		struct feed f;

		feed_init(&f, POP3_SASL_LINE_MAX);
		f.raw = true;
		for (size_t i = 0; i < 8192; i += 100)
			feed_bytes(&f, wire + i, i + 100 <= 8192 ? 100 : 8192 - i);
		assert_int_equal(f.reclen, 8192);	/* "<" 8190 A ">" */
		feed_free(&f);
	}
}

/* A too-long command line, then the parser serves a SASL exchange (same parser state). */
static void
test_switch_command_raw(void **state)
{
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	struct pop3_cmd cmd;
	struct slice line;
	size_t consumed;
	char junk[300];

	(void)state;
	memset(junk, 'j', sizeof(junk));
	buf_append(&in, junk, sizeof(junk));
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_MORE);
	buf_consume(&in, consumed);
	buf_append_str(&in, "\r\nAUTH PLAIN\r\nAHUAcA==\r\n");
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
	    POP3_PARSE_TOO_LONG);
	buf_consume(&in, consumed);
	assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_COMMAND);
	assert_int_equal(cmd.id, POP3_CMD_AUTH);
	assert_int_equal(cmd.nargs, 1);
	buf_consume(&in, consumed);
	assert_int_equal(pop3_parse_raw_line(&p, &in, POP3_SASL_LINE_MAX, &line, &consumed),
	    POP3_PARSE_COMMAND);
	assert_int_equal(line.len, 8);
	assert_memory_equal(line.p, "AHUAcA==", 8);
	buf_free(&in);
}

/* AUTH may carry an initial response as long as a SASL line (XOAUTH2 tokens); any other
 * command keeps RFC 2449's 255, and so does AUTH beyond the SASL limit. */
static void
test_long_auth_line(void **state)
{
	static char wire[POP3_SASL_LINE_MAX + 64];
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	struct pop3_cmd cmd;
	size_t consumed, n;

	(void)state;
	for (int k = 0; k < 4; k++) {
		/* k: 0 AUTH at the SASL limit, 1 "auth" in lower case, 2 one byte over, 3 USER */
		const char *verb = k == 1 ? "auth XOAUTH2 " : k == 3 ? "USER " : "AUTH XOAUTH2 ";
		size_t arg = POP3_SASL_LINE_MAX - 2 - strlen(verb) + (k == 2);

		memcpy(wire, verb, strlen(verb));
		memset(wire + strlen(verb), 'A', arg);
		n = strlen(verb) + arg;
		memcpy(wire + n, "\r\nNOOP\r\n", 8);
		n += 8;
		/* In two pieces: the decision holds across calls. */
		buf_append(&in, wire, 300);
		assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_MORE);
		buf_consume(&in, consumed);
		buf_append(&in, wire + 300, n - 300);
		if (k < 2) {
			assert_int_equal(consumed, 0);
			assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
			    POP3_PARSE_COMMAND);
			assert_int_equal(cmd.id, POP3_CMD_AUTH);
			assert_int_equal(cmd.nargs, 2);
			assert_int_equal(cmd.arg[1].len, arg);
		} else {
			assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed),
			    POP3_PARSE_TOO_LONG);
		}
		buf_consume(&in, consumed);
		assert_int_equal(pop3_parse(&p, &in, POP3_LINE_MAX, &cmd, &consumed), POP3_PARSE_COMMAND);
		assert_int_equal(cmd.id, POP3_CMD_NOOP);
		buf_consume(&in, consumed);
		assert_int_equal(buf_len(&in), 0);
	}
	buf_free(&in);
}

static void
test_number(void **state)
{
	static const struct {
		const char *s;
		bool allow_zero;
		bool ok;
		uint32_t n;
	} t[] = {
		{ "1", false, true, 1 },
		{ "42", false, true, 42 },
		{ "4294967295", false, true, 4294967295u },
		{ "4294967296", false, false, 0 },
		{ "4294967300", false, false, 0 },
		{ "9999999999", false, false, 0 },
		{ "18446744073709551617", false, false, 0 },	/* wraps a 64-bit counter */
		{ "01", false, true, 1 },		/* leading zeros: still the number */
		{ "000000000000000000007", false, true, 7 },
		{ "0", false, false, 0 },
		{ "0", true, true, 0 },
		{ "00", true, true, 0 },
		{ "", false, false, 0 },
		{ "", true, false, 0 },
		{ "+1", false, false, 0 },
		{ "-1", false, false, 0 },
		{ " 1", false, false, 0 },
		{ "1 ", false, false, 0 },
		{ "1a", false, false, 0 },
		{ "0x10", true, false, 0 },
		{ "1.0", false, false, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct slice s = { (const uint8_t *)t[i].s, strlen(t[i].s) };
		uint32_t n = 0xdeadbeef;
		bool ok = pop3_parse_number(&s, t[i].allow_zero, &n);

		if (ok != t[i].ok)
			fail_msg("\"%s\": got %d, want %d", t[i].s, ok, t[i].ok);
		if (ok)
			assert_int_equal(n, t[i].n);
		else
			assert_int_equal(n, 0xdeadbeef);	/* untouched on failure */
	}
	{
		/* Not NUL-terminated: only len bytes are read. */
		struct slice s = { (const uint8_t *)"12345", 2 };
		uint32_t n;

		assert_true(pop3_parse_number(&s, false, &n));
		assert_int_equal(n, 12);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_ids_and_secret),
		cmocka_unit_test(test_pass_rest),
		cmocka_unit_test(test_parse_any_split),
		cmocka_unit_test(test_too_long_once),
		cmocka_unit_test(test_limit_edges),
		cmocka_unit_test(test_too_long_not_exposed),
		cmocka_unit_test(test_raw_lines),
		cmocka_unit_test(test_switch_command_raw),
		cmocka_unit_test(test_long_auth_line),
		cmocka_unit_test(test_number),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
