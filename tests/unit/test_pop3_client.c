/* tests/unit/test_pop3_client.c: a POP3 server's replies as a client reads them
 * (pop3/pop3_client.c): status lines with and without response codes, multi-line answers
 * un-stuffed, -ERR never multi-line, pipelined replies in order, the same events however the
 * stream is cut; and what is not a reply. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_client.h"
#include "unit.h"

/* A pipelined conversation: greeting, CAPA, UIDL (multi), STAT, a refused UIDL, TOP 1 0. */
static const char wire[] =
    "+OK POP3 ready <1.2@old>\r\n"
    "+OK Capability list follows\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n"
    "+OK\r\n1 a1b2\r\n2 ..dotted\r\n.\r\n"	/* only a line's first dot is stuffing */
    "+OK 2 320\r\n"
    "-ERR [SYS/TEMP] busy\r\n"
    "+OK top follows\nMessage-ID: <x@y>\r\n..leading dot\r\n\r\n.\r\n";
static const bool multi[] = { false, true, true, false, true, true };
static const char want[] =
    "S+|||POP3 ready <1.2@old>|S+|||Capability list follows|L:UIDL|L:TOP|L:PIPELINING|E|"
    "S+||||L:1 a1b2|L:2 ..dotted|E|S+|||2 320|S-|SYS/TEMP||busy|S+|||top follows|"
    "L:Message-ID: <x@y>|L:.leading dot|L:|E|M";

/* Feeds `len` bytes and renders the events until MORE or an error. */
static void
drain(struct pop3c_parser *p, struct buf *in, char *out, size_t size)
{
	struct pop3c_event ev;
	enum pop3c_result r;

	do {
		size_t n = strlen(out);

		switch ((r = pop3c_next(p, in, &ev))) {
		case POP3C_STATUS:
			snprintf(out + n, size - n, "S%c|%.*s||%.*s|", ev.ok ? '+' : '-',
			    (int)ev.code.len, (const char *)ev.code.p, (int)ev.text.len,
			    (const char *)ev.text.p);
			break;
		case POP3C_LINE:
			snprintf(out + n, size - n, "L:%.*s|", (int)ev.text.len, (const char *)ev.text.p);
			break;
		case POP3C_END:
			snprintf(out + n, size - n, "E|");
			break;
		case POP3C_MORE:
			break;
		case POP3C_ERROR:
			snprintf(out + n, size - n, "X:%s|", ev.error);
			break;
		}
	} while (r != POP3C_MORE && r != POP3C_ERROR);
}

static void
test_a_pipelined_conversation_any_split(void **state)
{
	(void)state;
	for (size_t cut = 0; cut <= sizeof(wire) - 1; cut++) {
		struct pop3c_parser p;
		struct buf in = { 0 };
		char out[1024] = "";

		pop3c_init(&p, 0);
		for (size_t i = 0; i < sizeof(multi); i++)
			assert_true(pop3c_expect(&p, multi[i]));
		buf_append(&in, wire, cut);
		drain(&p, &in, out, sizeof(out));
		buf_append(&in, wire + cut, sizeof(wire) - 1 - cut);
		drain(&p, &in, out, sizeof(out));
		strcat(out, "M");
		if (strcmp(out, want) != 0)
			fail_msg("cut %zu:\n%s\nwant:\n%s", cut, out, want);
		buf_free(&in);
	}
}

static void
test_what_is_not_a_reply(void **state)
{
	static const struct { const char *in; int expect; const char *err; } cases[] = {
		{ "+OKAY\r\n", 1, "not a +OK or -ERR reply" },
		{ "* OK IMAP\r\n", 1, "not a +OK or -ERR reply" },
		{ "+OK unasked\r\n", 0, "a reply nobody asked for" },
		{ "+OK xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 1, "reply line too long" },
		{ "+OKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1, "reply line too long" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pop3c_parser p;
		struct buf in = { 0 };
		char out[256] = "", want_err[128];

		pop3c_init(&p, 32);
		if (cases[i].expect)
			pop3c_expect(&p, false);
		buf_append(&in, cases[i].in, strlen(cases[i].in));
		drain(&p, &in, out, sizeof(out));
		snprintf(want_err, sizeof(want_err), "X:%s|", cases[i].err);
		if (strcmp(out, want_err) != 0)
			fail_msg("case %zu: %s", i, out);
		buf_free(&in);
	}
}

static void
test_uidl_and_list_lines(void **state)
{
	static const struct { const char *line; bool ok; uint32_t n; const char *v; } uidl[] = {
		{ "1 abc", true, 1, "abc" },
		{ "4294967295 x", true, 4294967295u, "x" },
		{ "4294967296 x", false, 0, NULL },
		{ "0 abc", false, 0, NULL },
		{ "1  abc", false, 0, NULL },		/* a space is not a UIDL octet */
		{ "1", false, 0, NULL },
		{ "x abc", false, 0, NULL },
		{ "1 0123456789012345678901234567890123456789012345678901234567890123456789", true,
		    1, "0123456789012345678901234567890123456789012345678901234567890123456789" },
		{ "1 0123456789012345678901234567890123456789012345678901234567890123456789X", false,
		    0, NULL },
	};
	uint32_t n;
	uint64_t size;
	struct slice v;

	(void)state;
	for (size_t i = 0; i < sizeof(uidl) / sizeof(uidl[0]); i++) {
		struct slice l = { (const uint8_t *)uidl[i].line, strlen(uidl[i].line) };

		if (pop3c_uidl_line(&l, &n, &v) != uidl[i].ok)
			fail_msg("%s", uidl[i].line);
		if (uidl[i].ok && (n != uidl[i].n || v.len != strlen(uidl[i].v) ||
		    memcmp(v.p, uidl[i].v, v.len) != 0))
			fail_msg("%s: wrong fields", uidl[i].line);
	}
	{
		struct slice l = { (const uint8_t *)"3 1200", 6 }, bad = { (const uint8_t *)"3 12a", 5 };

		assert_true(pop3c_list_line(&l, &n, &size));
		assert_int_equal(n, 3);
		assert_int_equal(size, 1200);
		assert_false(pop3c_list_line(&bad, &n, &size));
	}
}

/* A message's header line over line_max in TOP's answer: its first line_max octets, the
 * rest dropped, and the answer read on (however the stream is cut); a status line that long
 * is still an error. */
static void
test_an_over_long_line_of_an_answer_is_cut(void **state)
{
	static const char wire2[] =
	    "+OK\r\nSubject: abcdefghijklmnopqrstuvwxyz0123456789\r\n.XYZ is long too, and more\r\n"
	    "To: b\r\n.\r\n+OK 1 2\r\n";
	static const char want2[] =
	    "S+||||L:Subject: abcdefghijklmnop|L:XYZ is long too, and mor|L:To: b|E|S+|||1 2|M";

	(void)state;
	for (size_t cut = 0; cut <= sizeof(wire2) - 1; cut++) {
		struct pop3c_parser p;
		struct buf in = { 0 };
		char out[512] = "";

		pop3c_init(&p, 25);
		assert_true(pop3c_expect(&p, true));
		assert_true(pop3c_expect(&p, false));
		buf_append(&in, wire2, cut);
		drain(&p, &in, out, sizeof(out));
		buf_append(&in, wire2 + cut, sizeof(wire2) - 1 - cut);
		drain(&p, &in, out, sizeof(out));
		strcat(out, "M");
		if (strcmp(out, want2) != 0)
			fail_msg("cut %zu:\n%s\nwant:\n%s", cut, out, want2);
		buf_free(&in);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_pipelined_conversation_any_split),
		cmocka_unit_test(test_what_is_not_a_reply),
		cmocka_unit_test(test_uidl_and_list_lines),
		cmocka_unit_test(test_an_over_long_line_of_an_answer_is_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
