/* tests/unit/test_imap_write.c: IMAP command arguments (imap/imap_write.c): quoted strings
 * with \ and " escaped, {n+} literals only with LITERAL+, CR/LF/NUL never written (a user
 * name must not smuggle a second command upstream), SASL PLAIN, UID sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_write.h"

static void
assert_buf_eq(const struct buf *b, const void *s, size_t n)
{
	assert_int_equal(buf_len(b), n);
	assert_memory_equal(buf_data(b), s, n);
}

static void
test_string_kind(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		enum imap_string_kind kind;
	} cases[] = {
		{ "alice", 5, IMAP_STRING_QUOTED },
		{ "", 0, IMAP_STRING_QUOTED },
		{ "a b", 3, IMAP_STRING_QUOTED },
		{ "a\"b\\c", 5, IMAP_STRING_QUOTED },
		{ "{5}", 3, IMAP_STRING_QUOTED },
		{ "\x7f", 1, IMAP_STRING_QUOTED },
		{ "w\xc3\xb6rd", 5, IMAP_STRING_LITERAL },
		{ "\x80", 1, IMAP_STRING_LITERAL },
		{ "alice\r\nA1 DELETE INBOX", 22, IMAP_STRING_INVALID },
		{ "a\rb", 3, IMAP_STRING_INVALID },
		{ "a\nb", 3, IMAP_STRING_INVALID },
		{ "a\0b", 3, IMAP_STRING_INVALID },
		{ "\xc3\xb6\n", 3, IMAP_STRING_INVALID },	/* invalid wins over 8-bit */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(imap_string_kind((const uint8_t *)cases[i].s, cases[i].len),
		    cases[i].kind);
}

static void
test_astring_table(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		bool literal_plus;
		int ret;
		const char *out;	/* NULL: nothing written */
		size_t out_len;
	} cases[] = {
		{ "alice", 5, false, 0, "\"alice\"", 7 },
		{ "alice", 5, true, 0, "\"alice\"", 7 },	/* quoted even with LITERAL+ */
		{ "", 0, false, 0, "\"\"", 2 },
		{ "a b", 3, false, 0, "\"a b\"", 5 },
		{ "p\"w", 3, false, 0, "\"p\\\"w\"", 6 },
		{ "p\\w", 3, false, 0, "\"p\\\\w\"", 6 },
		{ "\"\\", 2, false, 0, "\"\\\"\\\\\"", 6 },
		{ "\\\\", 2, false, 0, "\"\\\\\\\\\"", 6 },
		{ "{5}", 3, false, 0, "\"{5}\"", 5 },
		{ "{5+}", 4, false, 0, "\"{5+}\"", 6 },
		{ "w\xc3\xb6rd", 5, true, 0, "{5+}\r\nw\xc3\xb6rd", 11 },
		{ "w\xc3\xb6rd", 5, false, -1, NULL, 0 },
		{ "alice\r\nA1 DELETE INBOX", 22, false, -1, NULL, 0 },
		{ "alice\r\nA1 DELETE INBOX", 22, true, -1, NULL, 0 },
		{ "a\rb", 3, true, -1, NULL, 0 },
		{ "a\nb", 3, true, -1, NULL, 0 },
		{ "a\0b", 3, true, -1, NULL, 0 },
		{ "\xc3\xb6\0", 3, true, -1, NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };

		/* A non-empty buffer: the argument goes after what is there, or nothing does. */
		buf_append_str(&b, "A1 LOGIN ");
		assert_int_equal(imap_write_astring(&b, (const uint8_t *)cases[i].in, cases[i].len,
		    cases[i].literal_plus), cases[i].ret);
		assert_true(buf_len(&b) >= 9);
		assert_memory_equal(buf_data(&b), "A1 LOGIN ", 9);
		if (cases[i].out == NULL)
			assert_int_equal(buf_len(&b), 9);
		else {
			assert_int_equal(buf_len(&b), 9 + cases[i].out_len);
			assert_memory_equal(buf_data(&b) + 9, cases[i].out, cases[i].out_len);
		}
		buf_free(&b);
	}
}

static void
test_astring_long(void **state)
{
	uint8_t s[IMAP_QUOTED_MAX + 1];
	struct buf b = { 0 };
	char head[32];
	int n;

	(void)state;
	memset(s, 'x', sizeof(s));
	/* IMAP_QUOTED_MAX bytes still go quoted. */
	assert_int_equal(imap_string_kind(s, IMAP_QUOTED_MAX), IMAP_STRING_QUOTED);
	assert_int_equal(imap_write_astring(&b, s, IMAP_QUOTED_MAX, false), 0);
	assert_int_equal(buf_len(&b), IMAP_QUOTED_MAX + 2);
	assert_int_equal(buf_data(&b)[0], '"');
	assert_int_equal(buf_data(&b)[IMAP_QUOTED_MAX + 1], '"');
	buf_free(&b);

	/* One more: a literal, refused without LITERAL+. */
	assert_int_equal(imap_string_kind(s, sizeof(s)), IMAP_STRING_LITERAL);
	buf_append_str(&b, "x ");
	assert_int_equal(imap_write_astring(&b, s, sizeof(s), false), -1);
	assert_buf_eq(&b, "x ", 2);
	assert_int_equal(imap_write_astring(&b, s, sizeof(s), true), 0);
	n = snprintf(head, sizeof(head), "x {%zu+}\r\n", sizeof(s));
	assert_int_equal(buf_len(&b), (size_t)n + sizeof(s));
	assert_memory_equal(buf_data(&b), head, (size_t)n);
	assert_memory_equal(buf_data(&b) + n, s, sizeof(s));
	buf_free(&b);
}

static void
test_astring_full_buffer(void **state)
{
	struct buf b = { 0 };

	(void)state;
	/* The ceiling leaves room for the open quote but not the rest: nothing stays. */
	buf_set_max(&b, 8);
	buf_append_str(&b, "abc");
	assert_int_equal(imap_write_astring(&b, (const uint8_t *)"alice", 5, false), -1);
	assert_buf_eq(&b, "abc", 3);
	buf_free(&b);

	buf_set_max(&b, 8);
	buf_append_str(&b, "abc");
	assert_int_equal(imap_write_astring(&b, (const uint8_t *)"\xc3\xb6", 2, true), -1);
	assert_buf_eq(&b, "abc", 3);
	buf_free(&b);

	/* Bytes already consumed from the front: the rollback keeps the unconsumed ones. */
	buf_set_max(&b, 12);
	buf_append_str(&b, "0123456789");
	buf_consume(&b, 6);
	assert_int_equal(imap_write_astring(&b, (const uint8_t *)"a\"b\\c", 5, false), -1);
	assert_buf_eq(&b, "6789", 4);
	buf_free(&b);
}

static void
test_sasl_plain(void **state)
{
	struct buf b = { 0 };
	uint8_t big[1100];

	(void)state;
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"alice", 5,
	    (const uint8_t *)"secret", 6), 0);
	assert_buf_eq(&b, "AGFsaWNlAHNlY3JldA==", 20);
	buf_reset(&b);

	/* 8-bit and spaces are fine: base64 carries them. "\0w\xc3\xb6rd\0a b" */
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"w\xc3\xb6rd", 5,
	    (const uint8_t *)"a b", 3), 0);
	assert_buf_eq(&b, "AHfDtnJkAGEgYg==", 16);
	buf_reset(&b);

	/* Empty password: "\0u\0". */
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"u", 1,
	    (const uint8_t *)"", 0), 0);
	assert_buf_eq(&b, "AHUA", 4);
	buf_reset(&b);

	/* NUL in user or pass would shift the fields: refused, nothing written. */
	buf_append_str(&b, "AUTHENTICATE PLAIN ");
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"al\0ice", 6,
	    (const uint8_t *)"secret", 6), -1);
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"alice", 5,
	    (const uint8_t *)"sec\0ret", 7), -1);
	assert_buf_eq(&b, "AUTHENTICATE PLAIN ", 19);

	/* Over-long fields are refused rather than overflowing. */
	memset(big, 'a', sizeof(big));
	assert_int_equal(imap_write_sasl_plain(&b, big, sizeof(big), (const uint8_t *)"x", 1), -1);
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"x", 1, big, sizeof(big)), -1);
	assert_buf_eq(&b, "AUTHENTICATE PLAIN ", 19);
	buf_free(&b);

	/* A full buffer reports -1. */
	buf_set_max(&b, 10);
	assert_int_equal(imap_write_sasl_plain(&b, (const uint8_t *)"alice", 5,
	    (const uint8_t *)"secret", 6), -1);
	assert_true(b.failed);
	buf_free(&b);
}

static void
test_uid_set(void **state)
{
	static const uint32_t a[] = { 1, 2, 3, 7, 9, 10 };
	static const uint32_t one[] = { 42 };
	static const uint32_t run[] = { 5, 6 };
	static const uint32_t gaps[] = { 1, 3, 5 };
	static const uint32_t top[] = { 4294967294u, 4294967295u };
	static const struct {
		const uint32_t *uids;
		size_t n;
		const char *out;
	} cases[] = {
		{ a, 6, "1:3,7,9:10" },
		{ one, 1, "42" },
		{ run, 2, "5:6" },
		{ gaps, 3, "1,3,5" },
		{ top, 2, "4294967294:4294967295" },
		{ a, 0, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };

		buf_append_str(&b, "UID FETCH ");
		assert_int_equal(imap_write_uid_set(&b, cases[i].uids, cases[i].n, 1000),
		    cases[i].n);
		assert_int_equal(buf_len(&b), 10 + strlen(cases[i].out));
		assert_memory_equal(buf_data(&b) + 10, cases[i].out, strlen(cases[i].out));
		buf_free(&b);
	}
}

/* Thousands of scattered UIDs: each piece fits its bound, ends at a run boundary, and the
 * pieces together name every UID once, in order. */
static void
test_uid_set_pieces(void **state)
{
	enum { N = 5000 };
	static uint32_t uids[N];
	size_t n = 0, covered = 0;

	(void)state;
	for (uint32_t u = 1; n < N; u++)
		if (u % 3 != 0 || u % 7 == 0)	/* runs of 2, gaps, some longer runs */
			uids[n++] = u > 3000 ? u + 4000000000u : u;	/* 10-digit UIDs too */
	for (size_t max = IMAP_UID_SET_MIN; max <= 8000; max = max * 3 + 1) {
		size_t pieces = 0;

		covered = 0;
		while (covered < N) {
			struct buf b = { 0 };
			struct buf whole = { 0 };
			size_t k = imap_write_uid_set(&b, uids + covered, N - covered, max);

			assert_true(k > 0);
			assert_true(buf_len(&b) <= max);
			/* Cut at a run boundary: written alone, the piece is the same text. */
			assert_int_equal(imap_write_uid_set(&whole, uids + covered, k, (size_t)-1), k);
			assert_int_equal(buf_len(&whole), buf_len(&b));
			assert_memory_equal(buf_data(&whole), buf_data(&b), buf_len(&b));
			if (covered + k < N)
				assert_true(uids[covered + k - 1] + 1 != uids[covered + k]);
			covered += k;
			pieces++;
			buf_free(&b);
			buf_free(&whole);
		}
		assert_true(pieces >= 1);
	}
	/* Below the minimum nothing is written; an empty list covers nothing. */
	{
		struct buf b = { 0 };

		assert_int_equal(imap_write_uid_set(&b, uids, N, IMAP_UID_SET_MIN - 1), 0);
		assert_int_equal(buf_len(&b), 0);
		assert_int_equal(imap_write_uid_set(&b, uids, 0, 100), 0);
		buf_free(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_kind),
		cmocka_unit_test(test_astring_table),
		cmocka_unit_test(test_astring_long),
		cmocka_unit_test(test_astring_full_buffer),
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_uid_set),
		cmocka_unit_test(test_uid_set_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
