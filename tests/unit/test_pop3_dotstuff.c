/* tests/unit/test_pop3_dotstuff.c: the streaming dot-stuffer (pop3/pop3_dotstuff.c): a table
 * of messages and their wire form (Dovecot's test-ostream-dot.c cases and more), then the
 * same output for every cut, byte by byte, and against a byte-at-a-time model on random
 * input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_dotstuff.h"
#include "unit.h"

static const struct {
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
} cases[] = {
	{ W(""), W(".\r\n") },					/* empty: just the terminator */
	{ W("a"), W("a\r\n.\r\n") },
	{ W("a\r\n"), W("a\r\n.\r\n") },
	{ W("."), W("..\r\n.\r\n") },
	{ W(".\r\n"), W("..\r\n.\r\n") },
	{ W("..\r\n"), W("...\r\n.\r\n") },
	{ W("a\r\n.\r\nb"), W("a\r\n..\r\nb\r\n.\r\n") },
	{ W("\n.\n"), W("\r\n..\r\n.\r\n") },
	{ W(".\n.\n"), W("..\r\n..\r\n.\r\n") },
	{ W("a.b\r\n.x"), W("a.b\r\n..x\r\n.\r\n") },		/* only a leading dot */
	{ W("no final newline"), W("no final newline\r\n.\r\n") },
	{ W("\r\n\r\n"), W("\r\n\r\n.\r\n") },
	{ W("x\n\n"), W("x\r\n\r\n.\r\n") },
	{ W("a\0b\r\n"), W("ab\r\n.\r\n") },			/* NUL dropped */
	{ W("\0"), W(".\r\n") },				/* only NUL: empty */
	{ W("\0\0\n"), W("\r\n.\r\n") },
	{ W("\0.x\n"), W("..x\r\n.\r\n") },			/* "." after a NUL still leads */
	{ W("a\n\0.\n"), W("a\r\n..\r\n.\r\n") },
	{ W("a\r\0\nb"), W("a\r\nb\r\n.\r\n") },		/* CR NUL LF is one CR LF */
	{ W("a\rb\n"), W("a\rb\r\n.\r\n") },			/* lone CR passes through */
	{ W("\r.\n"), W("\r.\r\n.\r\n") },			/* no line starts after a lone CR */
	{ W("a\r"), W("a\r\n.\r\n") },				/* final CR completed, not doubled */
	{ W("\r"), W("\r\n.\r\n") },
	{ W("a\r\r\n"), W("a\r\r\n.\r\n") },
	{ W("H: v\r\n\r\n.\r\n..\r\n"), W("H: v\r\n\r\n..\r\n...\r\n.\r\n") },
	{ W("\r\n.\r\n"), W("\r\n..\r\n.\r\n") },		/* a fake terminator is stuffed */
	{ W("a\n.\r\n.\n"), W("a\r\n..\r\n..\r\n.\r\n") },
};

/* The reference: one byte at a time, straight from the rules. */
static void
model(const uint8_t *in, size_t len, struct buf *out)
{
	bool at_start = true, prev_cr = false;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (c == '\0')
			continue;
		if (c == '\n') {
			buf_append(out, prev_cr ? "\n" : "\r\n", prev_cr ? 1 : 2);
			at_start = true;
			prev_cr = false;
			continue;
		}
		if (at_start && c == '.')
			buf_append(out, ".", 1);
		buf_append(out, &c, 1);
		at_start = false;
		prev_cr = c == '\r';
	}
	if (!at_start)
		buf_append(out, prev_cr ? "\n" : "\r\n", prev_cr ? 1 : 2);
	buf_append(out, ".\r\n", 3);
}

/* Stuffs in[0..len) cut at the given offsets (ascending, <= len) and finishes. */
static void
stuff_cuts(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts, struct buf *out)
{
	struct pop3_dotstuff d;
	size_t from = 0;

	pop3_dotstuff_init(&d);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		assert_int_equal(pop3_dotstuff(&d, in + from, to - from, out), 0);
		from = to;
	}
	assert_int_equal(pop3_dotstuff_finish(&d, out), 0);
	assert_true(d.at_line_start);		/* finish leaves it ready for the next */
	assert_false(d.after_cr);
}

static void
assert_same(const struct buf *a, const struct buf *b, const char *what, size_t at)
{
	if (buf_len(a) != buf_len(b) || memcmp(buf_data(a), buf_data(b), buf_len(a)) != 0)
		fail_msg("%s %zu: output differs (%zu vs %zu bytes)", what, at, buf_len(a),
		    buf_len(b));
}

/* Every split: whole, every single cut, every pair of cuts, byte by byte. */
static void
check_all_splits(const uint8_t *in, size_t len, const struct buf *want)
{
	struct buf out = { 0 };
	size_t cuts[2];

	for (size_t c = 0; c <= len; c++) {
		cuts[0] = c;
		buf_reset(&out);
		stuff_cuts(in, len, cuts, 1, &out);
		assert_same(&out, want, "cut", c);
		for (size_t c2 = c; c2 <= len && len <= 64; c2++) {
			cuts[1] = c2;
			buf_reset(&out);
			stuff_cuts(in, len, cuts, 2, &out);
			assert_same(&out, want, "second cut", c2);
		}
	}
	{
		struct pop3_dotstuff d;

		buf_reset(&out);
		pop3_dotstuff_init(&d);
		for (size_t i = 0; i < len; i++)
			pop3_dotstuff(&d, in + i, 1, &out);
		pop3_dotstuff_finish(&d, &out);
		assert_same(&out, want, "byte by byte", len);
	}
	buf_free(&out);
}

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out = { 0 }, ref = { 0 };
		const uint8_t *in = (const uint8_t *)cases[i].in;

		stuff_cuts(in, cases[i].inlen, NULL, 0, &out);
		if (buf_len(&out) != cases[i].outlen ||
		    memcmp(buf_data(&out), cases[i].out, cases[i].outlen) != 0)
			fail_msg("case %zu: wrong output", i);
		model(in, cases[i].inlen, &ref);	/* the model agrees with the table */
		assert_same(&ref, &out, "model on case", i);
		check_all_splits(in, cases[i].inlen, &out);
		buf_free(&out);
		buf_free(&ref);
	}
}

/* Insertion sort: stuff_cuts() wants its cuts ascending. */
static void
sort_cuts(size_t *cuts, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			size_t t = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
}

/* Random messages over the bytes that matter, random chunking, against the model. */
static void
test_random_vs_model(void **state)
{
	static const uint8_t alphabet[] = { 'a', '.', '.', '\r', '\n', '\n', '\0', 'b' };
	uint8_t in[300];
	unsigned int seed = 20240601;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		struct buf out = { 0 }, ref = { 0 };
		size_t len = (size_t)rand_r(&seed) % sizeof(in), cuts[8], ncuts;

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[(size_t)rand_r(&seed) % sizeof(alphabet)];
		ncuts = (size_t)rand_r(&seed) % 8;
		for (size_t i = 0; i < ncuts; i++)
			cuts[i] = (size_t)rand_r(&seed) % (len + 1);
		sort_cuts(cuts, ncuts);
		model(in, len, &ref);
		stuff_cuts(in, len, cuts, ncuts, &out);
		assert_same(&out, &ref, "random round", (size_t)round);
		if (round < 200) {	/* and every split of a short prefix */
			struct buf short_ref = { 0 };
			size_t slen = len < 40 ? len : 40;

			model(in, slen, &short_ref);
			check_all_splits(in, slen, &short_ref);
			buf_free(&short_ref);
		}
		buf_free(&out);
		buf_free(&ref);
	}
}

/* A large ordinary message: the output is the input plus the terminator. */
static void
test_large_clean_message(void **state)
{
	const size_t n = 1 << 20;
	uint8_t *msg = malloc(n);
	struct buf out = { 0 };
	struct pop3_dotstuff d;

	(void)state;
	assert_non_null(msg);
	for (size_t i = 0; i < n; i++)
		msg[i] = i % 78 == 76 ? '\r' : i % 78 == 77 ? '\n' : (uint8_t)('A' + i % 26);
	buf_set_max(&out, 2 * n);
	pop3_dotstuff_init(&d);
	for (size_t off = 0; off < n; off += 16384)
		assert_int_equal(pop3_dotstuff(&d, msg + off, n - off < 16384 ? n - off : 16384,
		    &out), 0);
	pop3_dotstuff_finish(&d, &out);
	/* n is not a multiple of 78: the last line gets its CR LF from finish. */
	assert_memory_equal(buf_data(&out), msg, n);
	assert_memory_equal(buf_data(&out) + n, "\r\n.\r\n", 5);
	assert_int_equal(buf_len(&out), n + 5);
	free(msg);
	buf_free(&out);
}

/* A full output buffer: -1, `failed` set, and the stuffer does not crash. */
static void
test_output_full(void **state)
{
	struct buf out = { 0 };
	struct pop3_dotstuff d;

	(void)state;
	buf_set_max(&out, 8);
	pop3_dotstuff_init(&d);
	assert_int_equal(pop3_dotstuff(&d, (const uint8_t *)"abc\r\n", 5, &out), 0);
	assert_int_equal(pop3_dotstuff(&d, (const uint8_t *)"more than fits\n", 15, &out), -1);
	assert_true(out.failed);
	assert_int_equal(pop3_dotstuff_finish(&d, &out), -1);
	buf_free(&out);
}

/* Long, mostly plain mail (CRLF lines of 1-120 bytes) with a rare dot line, bare LF, lone
 * CR or NUL, often at or near a multiple of 2048 (the stuffer's block), in random chunks:
 * the block check must agree with the model at every edge of a block. */
static void
test_long_mail_vs_model(void **state)
{
	static uint8_t in[24000];
	unsigned int seed = 20261201;

	(void)state;
	for (int round = 0; round < 400; round++) {
		struct buf out = { 0 }, ref = { 0 };
		size_t len = 0, cuts[6], ncuts;

		while (len + 130 < sizeof(in)) {
			size_t line = (size_t)rand_r(&seed) % 120;

			for (size_t i = 0; i < line; i++)
				in[len++] = (uint8_t)('a' + rand_r(&seed) % 26);
			in[len++] = '\r';
			in[len++] = '\n';
		}
		for (int k = rand_r(&seed) % 6; k > 0; k--) {
			static const uint8_t odd[] = { '.', '\n', '\r', '\0' };
			size_t at = (size_t)rand_r(&seed) % len;

			if (rand_r(&seed) % 2)	/* at a block's edge, give or take two */
				at = (at / 2048) * 2048 + (size_t)(rand_r(&seed) % 5) - 2 + 2048;
			if (at < len)
				in[at] = odd[(size_t)rand_r(&seed) % sizeof(odd)];
		}
		ncuts = (size_t)rand_r(&seed) % 6;
		for (size_t i = 0; i < ncuts; i++)
			cuts[i] = (size_t)rand_r(&seed) % (len + 1);
		sort_cuts(cuts, ncuts);
		model(in, len, &ref);
		stuff_cuts(in, len, cuts, ncuts, &out);
		assert_same(&out, &ref, "long round", (size_t)round);
		buf_free(&out);
		buf_free(&ref);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_random_vs_model),
		cmocka_unit_test(test_long_mail_vs_model),
		cmocka_unit_test(test_large_clean_message),
		cmocka_unit_test(test_output_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
