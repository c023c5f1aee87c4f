/* tests/unit/test_imap_parse.c: the incremental IMAP response reader (imap/imap_parse.c).
 *
 * Events are rendered as one string, "LINE(* OK hi)|LIT(* 1 FETCH (BODY[] {3},3)|DATA(abc)|
 * END|LINE(* 1 FETCH (BODY[] {3}))", consecutive DATA pieces merged (how the reads cut a
 * literal is not the parser's business). Every transcript is fed whole, split in two at
 * every byte, and one byte at a time: the rendering must not change (Dovecot's
 * test-imap-parser.c grows its input a byte at a time). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_parse.h"

/* A parser, its input buffer and the rendering of what came out. */
struct feed {
	struct imap_parser p;
	struct buf in;
	struct buf out;
	bool in_data;		/* the last event was DATA: the next DATA extends it */
	bool stopped;		/* ERROR seen: the stream is unreadable */
	size_t line_max;
};

static void
feed_init(struct feed *f, size_t line_max, uint64_t literal_max)
{
	memset(f, 0, sizeof(*f));
	imap_parser_init(&f->p, line_max);
	f->p.literal_max = literal_max;
	f->line_max = line_max ? line_max : IMAP_LINE_MAX_DEFAULT;
	buf_set_max(&f->out, 4 * 1024 * 1024);
}

static void
render(struct feed *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
render(struct feed *f, const char *fmt, ...)
{
	va_list ap;

	if (f->in_data)
		buf_append_str(&f->out, ")");
	f->in_data = false;
	if (buf_len(&f->out) > 0)
		buf_append_str(&f->out, "|");
	va_start(ap, fmt);
	buf_vprintf(&f->out, fmt, ap);
	va_end(ap);
}

/* Pulls events until the parser wants more bytes (or gives up). */
static void
feed_drain(struct feed *f)
{
	while (!f->stopped) {
		struct imap_event ev;
		enum imap_parse_result r = imap_parse_next(&f->p, &f->in, &ev);

		switch (r) {
		case IMAP_PARSE_MORE:
			return;
		case IMAP_PARSE_LINE:
			assert_true(ev.line_len <= f->line_max);
			assert_null(memchr(ev.line, '\n', ev.line_len));
			render(f, "LINE(%.*s)", (int)ev.line_len, (const char *)ev.line);
			break;
		case IMAP_PARSE_LITERAL:
			assert_true(ev.line_len <= f->line_max);
			render(f, "LIT(%.*s,%llu)", (int)ev.line_len, (const char *)ev.line,
			    (unsigned long long)ev.literal_size);
			break;
		case IMAP_PARSE_LITERAL_DATA:
			assert_true(ev.data_len > 0);
			if (!f->in_data) {
				render(f, "DATA(");
				f->in_data = true;
			}
			buf_append(&f->out, ev.data, ev.data_len);
			break;
		case IMAP_PARSE_LITERAL_END:
			render(f, "END");
			break;
		case IMAP_PARSE_ERROR:
			assert_non_null(ev.error);
			render(f, "ERROR");
			f->stopped = true;
			return;
		}
	}
}

static void
feed_bytes(struct feed *f, const void *p, size_t n)
{
	if (f->stopped)
		return;
	assert_int_equal(buf_append(&f->in, p, n), 0);
	feed_drain(f);
}

/* The rendering so far, NUL-terminated (valid until the feed is freed). */
static const char *
feed_events(struct feed *f)
{
	if (f->in_data)
		buf_append_str(&f->out, ")");
	f->in_data = false;
	buf_append(&f->out, "", 1);
	f->out.len--;			/* keep the NUL out of the length */
	assert_false(f->out.failed);
	return (const char *)buf_data(&f->out);
}

static void
feed_free(struct feed *f)
{
	imap_parser_free(&f->p);
	buf_free(&f->in);
	buf_free(&f->out);
}

struct transcript {
	const char *wire;
	const char *events;
	size_t line_max;
	uint64_t literal_max;
};

/* Whole, every two-piece split, and byte by byte: the same rendering each time. */
static void
check_transcript(const struct transcript *t)
{
	size_t len = strlen(t->wire);
	struct feed f;

	feed_init(&f, t->line_max, t->literal_max);
	feed_bytes(&f, t->wire, len);
	assert_string_equal(feed_events(&f), t->events);
	feed_free(&f);

	for (size_t cut = 0; cut <= len; cut++) {
		feed_init(&f, t->line_max, t->literal_max);
		feed_bytes(&f, t->wire, cut);
		feed_bytes(&f, t->wire + cut, len - cut);
		if (strcmp(feed_events(&f), t->events) != 0)
			fail_msg("split at %zu of \"%s\": got \"%s\"", cut, t->wire, feed_events(&f));
		feed_free(&f);
	}

	feed_init(&f, t->line_max, t->literal_max);
	for (size_t i = 0; i < len; i++)
		feed_bytes(&f, t->wire + i, 1);
	assert_string_equal(feed_events(&f), t->events);
	feed_free(&f);
}

static void
check_table(const struct transcript *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_transcript(&t[i]);
}

static void
test_greeting_and_select(void **state)
{
	static const struct transcript t[] = {
		{ "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
		  "AUTH=PLAIN] Dovecot ready.\r\n",
		  "LINE(* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
		  "AUTH=PLAIN] Dovecot ready.)", 0, 0 },
		{ "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		  "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
		  "Flags permitted.\r\n"
		  "* 3 EXISTS\r\n"
		  "* 0 RECENT\r\n"
		  "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
		  "* OK [UIDNEXT 4] Predicted next UID\r\n"
		  "A2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
		  "LINE(* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft))|"
		  "LINE(* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
		  "Flags permitted.)|"
		  "LINE(* 3 EXISTS)|"
		  "LINE(* 0 RECENT)|"
		  "LINE(* OK [UIDVALIDITY 3857529045] UIDs valid)|"
		  "LINE(* OK [UIDNEXT 4] Predicted next UID)|"
		  "LINE(A2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).)", 0, 0 },
		/* A line with an empty body and a bare CR inside. */
		{ "\r\n* OK a\rb\r\n", "LINE()|LINE(* OK a\rb)", 0, 0 },
		/* An atom may end in "}": not a literal without its "{". */
		{ "* LIST () \"/\" foo}\r\n", "LINE(* LIST () \"/\" foo})", 0, 0 },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]));
}

static void
test_fetch_literals(void **state)
{
	static const struct transcript t[] = {
		{ "* 1 FETCH (UID 7 BODY[] {3}\r\nabc)\r\nA3 OK Fetch completed.\r\n",
		  "LIT(* 1 FETCH (UID 7 BODY[] {3},3)|DATA(abc)|END|"
		  "LINE(* 1 FETCH (UID 7 BODY[] {3}))|LINE(A3 OK Fetch completed.)", 0, 0 },
		/* Two literals in one response. */
		{ "* 1 FETCH (BODY[HEADER] {10}\r\n0123456789 BODY[TEXT] {5}\r\nabcde)\r\n",
		  "LIT(* 1 FETCH (BODY[HEADER] {10},10)|DATA(0123456789)|END|"
		  "LIT(* 1 FETCH (BODY[HEADER] {10} BODY[TEXT] {5},5)|DATA(abcde)|END|"
		  "LINE(* 1 FETCH (BODY[HEADER] {10} BODY[TEXT] {5}))", 0, 0 },
		/* The line ends right after the literal. */
		{ "* LIST () \"/\" {5}\r\nINBOX\r\n",
		  "LIT(* LIST () \"/\" {5},5)|DATA(INBOX)|END|LINE(* LIST () \"/\" {5})", 0, 0 },
		/* Untagged responses between FETCHes; literal bytes that look like protocol. */
		{ "* 1 FETCH (UID 7 BODY[] {2}\r\nhi)\r\n"
		  "* 2 EXPUNGE\r\n"
		  "* 3 EXISTS\r\n"
		  "* 2 FETCH (UID 9 BODY[] {23}\r\nA4 OK fake\r\nx {3}\r\n\r\n\r\n)\r\n"
		  "* 2 FETCH (FLAGS (\\Seen))\r\n"
		  "A4 OK done\r\n",
		  "LIT(* 1 FETCH (UID 7 BODY[] {2},2)|DATA(hi)|END|LINE(* 1 FETCH (UID 7 BODY[] {2}))|"
		  "LINE(* 2 EXPUNGE)|LINE(* 3 EXISTS)|"
		  "LIT(* 2 FETCH (UID 9 BODY[] {23},23)|DATA(A4 OK fake\r\nx {3}\r\n\r\n\r\n)|END|"
		  "LINE(* 2 FETCH (UID 9 BODY[] {23}))|"
		  "LINE(* 2 FETCH (FLAGS (\\Seen)))|LINE(A4 OK done)", 0, 0 },
		/* An empty literal: no DATA, straight to END. */
		{ "* 1 FETCH (BODY[] {0}\r\n)\r\n",
		  "LIT(* 1 FETCH (BODY[] {0},0)|END|LINE(* 1 FETCH (BODY[] {0}))", 0, 0 },
		/* LITERAL+ "{n+}" and RFC 3516 binary "~{n}". */
		{ "* 1 FETCH (BODY[] {5+}\r\nhello)\r\n* 2 FETCH (BINARY[] ~{4}\r\n\x01\x80\xffz)\r\n",
		  "LIT(* 1 FETCH (BODY[] {5+},5)|DATA(hello)|END|LINE(* 1 FETCH (BODY[] {5+}))|"
		  "LIT(* 2 FETCH (BINARY[] ~{4},4)|DATA(\x01\x80\xffz)|END|"
		  "LINE(* 2 FETCH (BINARY[] ~{4}))", 0, 0 },
		/* Leading zeros and the largest size are markers too (no body follows here). */
		{ "* 1 FETCH (BODY[] {007}\r\n",
		  "LIT(* 1 FETCH (BODY[] {007},7)", 0, 0 },
		{ "* 1 FETCH (BODY[] {18446744073709551615}\r\nab",
		  "LIT(* 1 FETCH (BODY[] {18446744073709551615},18446744073709551615)|DATA(ab)", 0, 0 },
		/* Bare LF line endings. */
		{ "* OK hi\n* 1 FETCH (BODY[] {3}\nabc)\nA1 OK x\n",
		  "LINE(* OK hi)|LIT(* 1 FETCH (BODY[] {3},3)|DATA(abc)|END|"
		  "LINE(* 1 FETCH (BODY[] {3}))|LINE(A1 OK x)", 0, 0 },
		/* A transcript cut mid-line and mid-literal: nothing half-made comes out. */
		{ "* OK hi\r\n* 1 FE", "LINE(* OK hi)", 0, 0 },
		{ "* 1 FETCH (BODY[] {10}\r\nabc", "LIT(* 1 FETCH (BODY[] {10},10)|DATA(abc)", 0, 0 },
		/* A literal right after a literal, and "}" text after one. */
		{ "* 1 FETCH (X {1}\r\na{2}\r\nbc)\r\n",
		  "LIT(* 1 FETCH (X {1},1)|DATA(a)|END|LIT(* 1 FETCH (X {1}{2},2)|DATA(bc)|END|"
		  "LINE(* 1 FETCH (X {1}{2}))", 0, 0 },
		{ "* 1 FETCH (X {1}\r\na5})\r\n",
		  "LIT(* 1 FETCH (X {1},1)|DATA(a)|END|LINE(* 1 FETCH (X {1}5}))", 0, 0 },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]));
}

static void
test_status_responses(void **state)
{
	static const struct transcript t[] = {
		{ "A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n* BYE bye\r\nA2 BAD x\r\n",
		  "LINE(A1 NO [AUTHENTICATIONFAILED] Authentication failed.)|LINE(* BYE bye)|"
		  "LINE(A2 BAD x)", 0, 0 },
		/* "{5}" ending resp-text is text, not a literal (RFC 3501 §7.1). */
		{ "* OK text {5}\r\nA3 OK done {5}\r\n+ {5}\r\n+{5}\r\n* NO {5}\r\n* BAD x {5}\r\n"
		  "* BYE {5}\r\n* PREAUTH {5}\r\nA4 NO x {5}\r\nA5 BAD {5}\r\n* ok {5}\r\n"
		  "A6 ok [X] {5+}\r\n",
		  "LINE(* OK text {5})|LINE(A3 OK done {5})|LINE(+ {5})|LINE(+{5})|LINE(* NO {5})|"
		  "LINE(* BAD x {5})|LINE(* BYE {5})|LINE(* PREAUTH {5})|LINE(A4 NO x {5})|"
		  "LINE(A5 BAD {5})|LINE(* ok {5})|LINE(A6 ok [X] {5+})", 0, 0 },
		/* Status words must be whole words: "* OKAY" is a data response. */
		{ "* OKAY {2}\r\nab\r\n", "LIT(* OKAY {2},2)|DATA(ab)|END|LINE(* OKAY {2})", 0, 0 },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]));
}

static void
test_errors(void **state)
{
	static const struct transcript t[] = {
		/* A line over the limit (here 16). */
		{ "* OK short\r\n* OK 0123456789abcdefghij\r\n* OK after\r\n",
		  "LINE(* OK short)|ERROR", 16, 0 },
		/* Over the limit and never ended: a flood, not a wait. */
		{ "* OK 0123456789abcdefghij", "ERROR", 16, 0 },
		/* The limit counts the whole line, literals excluded. */
		{ "* 1 FETCH (X {20}\r\n01234567890123456789 Y)\r\n",
		  "LIT(* 1 FETCH (X {20},20)|DATA(01234567890123456789)|END|"
		  "LINE(* 1 FETCH (X {20} Y))", 24, 0 },
		{ "* 1 FETCH (X {20}\r\n01234567890123456789 YYYYYYYY)\r\n",
		  "LIT(* 1 FETCH (X {20},20)|DATA(01234567890123456789)|END|ERROR", 24, 0 },
		/* Malformed markers. */
		{ "* 1 FETCH (BODY[] {12a}\r\nabcdefghijkl)\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {a12}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {-1}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {+}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {5++}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {123456789012345678901}\r\n", "ERROR", 0, 0 },
		{ "* 1 FETCH (BODY[] {18446744073709551616}\r\n", "ERROR", 0, 0 },
		{ "* OK fine\r\n* 1 FETCH (BODY[] {99999999999999999999}\r\n",
		  "LINE(* OK fine)|ERROR", 0, 0 },
		/* literal_max. */
		{ "* 1 FETCH (BODY[] {100}\r\n", "LIT(* 1 FETCH (BODY[] {100},100)", 0, 100 },
		{ "* 1 FETCH (BODY[] {101}\r\n", "ERROR", 0, 100 },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]));
}

/* A 1 MB literal in 4 KB reads: every byte arrives in order, straight from the input
 * buffer, and the line buffer holds only the line. */
static void
test_big_literal_streams(void **state)
{
	static const char head[] = "* 1 FETCH (UID 7 BODY[] {1048576}\r\n";
	static const char tail[] = ")\r\nA5 OK done\r\n";
	const size_t size = 1024 * 1024, piece = 4096;
	size_t total = sizeof(head) - 1 + size + sizeof(tail) - 1, fed = 0, got = 0;
	uint8_t *wire = malloc(total);
	int lit = 0, end = 0, lines = 0;
	struct imap_parser p;
	struct buf in = { 0 };

	(void)state;
	assert_non_null(wire);
	memcpy(wire, head, sizeof(head) - 1);
	for (size_t i = 0; i < size; i++)
		wire[sizeof(head) - 1 + i] = (uint8_t)((i * 7 + i / 251) & 0xff);
	memcpy(wire + sizeof(head) - 1 + size, tail, sizeof(tail) - 1);

	imap_parser_init(&p, 0);
	while (fed < total) {
		size_t n = total - fed < piece ? total - fed : piece;
		struct imap_event ev;
		enum imap_parse_result r;

		assert_int_equal(buf_append(&in, wire + fed, n), 0);
		fed += n;
		while ((r = imap_parse_next(&p, &in, &ev)) != IMAP_PARSE_MORE) {
			switch (r) {
			case IMAP_PARSE_LITERAL:
				lit++;
				assert_int_equal(ev.literal_size, size);
				assert_int_equal(ev.line_len, sizeof(head) - 3);
				assert_memory_equal(ev.line, head, sizeof(head) - 3);
				break;
			case IMAP_PARSE_LITERAL_DATA:
				/* Not copied: the bytes are where the read put them. */
				assert_true(ev.data >= in.data && ev.data + ev.data_len <= in.data + in.cap);
				assert_true(got + ev.data_len <= size);
				assert_memory_equal(ev.data, wire + sizeof(head) - 1 + got, ev.data_len);
				got += ev.data_len;
				break;
			case IMAP_PARSE_LITERAL_END:
				end++;
				assert_int_equal(got, size);
				break;
			case IMAP_PARSE_LINE:
				if (lines++ == 0) {
					assert_int_equal(ev.line_len, sizeof(head) - 2);
					assert_memory_equal(ev.line, "* 1 FETCH (UID 7 BODY[] {1048576})",
					    ev.line_len);
				} else {
					assert_int_equal(ev.line_len, 10);
					assert_memory_equal(ev.line, "A5 OK done", 10);
				}
				break;
			default:
				fail_msg("unexpected event %d", r);
			}
			/* The line buffer never holds literal bytes. */
			assert_true(buf_len(&p.line) <= sizeof(head));
			assert_true(p.line.cap <= 512);
		}
		assert_true(buf_len(&in) < piece);
		assert_true(in.cap <= 2 * piece);
	}
	assert_int_equal(lit, 1);
	assert_int_equal(end, 1);
	assert_int_equal(lines, 2);
	assert_int_equal(got, size);
	assert_int_equal(buf_len(&in), 0);
	imap_parser_free(&p);
	buf_free(&in);
	free(wire);
}

/* An event's line stays readable until the next call; the next line starts clean. */
static void
test_line_reuse(void **state)
{
	struct imap_parser p;
	struct buf in = { 0 };
	struct imap_event ev;

	(void)state;
	imap_parser_init(&p, 0);
	buf_append_str(&in, "* 1 EXISTS\r\n* 22 EXPUNGE\r\n");
	assert_int_equal(imap_parse_next(&p, &in, &ev), IMAP_PARSE_LINE);
	assert_int_equal(ev.line_len, 10);
	assert_memory_equal(ev.line, "* 1 EXISTS", 10);
	assert_int_equal(imap_parse_next(&p, &in, &ev), IMAP_PARSE_LINE);
	assert_int_equal(ev.line_len, 12);
	assert_memory_equal(ev.line, "* 22 EXPUNGE", 12);
	assert_int_equal(imap_parse_next(&p, &in, &ev), IMAP_PARSE_MORE);
	assert_int_equal(imap_parse_next(&p, &in, &ev), IMAP_PARSE_MORE);
	assert_int_equal(buf_len(&in), 0);
	assert_int_equal(buf_len(&p.line), 0);
	imap_parser_free(&p);
	imap_parser_free(&p);		/* twice is harmless */
	buf_free(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_select),
		cmocka_unit_test(test_fetch_literals),
		cmocka_unit_test(test_status_responses),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_big_literal_streams),
		cmocka_unit_test(test_line_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
