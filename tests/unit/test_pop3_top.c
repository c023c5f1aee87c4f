/* tests/unit/test_pop3_top.c: the body-line counter of TOP n m (pop3/pop3_top.c): how many
 * bytes of the body belong to the first m lines, the same for every cut of the body. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_top.h"
#include "unit.h"

/* Bytes taken from body for m lines, fed in two pieces cut at `cut`. */
static size_t
take_cut(const char *body, size_t len, uint32_t m, size_t cut, bool *done_r)
{
	struct pop3_top t;
	size_t taken;

	pop3_top_init(&t, m);
	taken = pop3_top_take(&t, (const uint8_t *)body, cut);
	if (taken < cut) {			/* done inside the first piece */
		assert_true(t.done);
	} else {
		taken += pop3_top_take(&t, (const uint8_t *)body + cut, len - cut);
	}
	*done_r = t.done;
	return taken;
}

static void
test_table(void **state)
{
	static const struct {
		const char *body;
		size_t len;
		uint32_t m;
		size_t want;
		bool done;
	} t[] = {
		{ W("a\r\nb\r\nc\r\n"), 0, 0, true },	/* TOP n 0: header only */
		{ W("a\r\nb\r\nc\r\n"), 1, 3, true },
		{ W("a\r\nb\r\nc\r\n"), 2, 6, true },
		{ W("a\r\nb\r\nc\r\n"), 3, 9, true },
		{ W("a\r\nb\r\nc\r\n"), 4, 9, false },	/* fewer lines than asked: all */
		{ W("a\r\nb\r\nc"), 3, 7, false },	/* last line without LF: all of it */
		{ W("a\nb\nc\n"), 2, 4, true },		/* bare LF counts */
		{ W("\r\n\r\n\r\n"), 2, 4, true },	/* empty lines count */
		{ W("a\rb\r\nc\r\n"), 1, 5, true },	/* a lone CR does not end a line */
		{ W(""), 5, 0, false },
		{ W("x"), 4294967295u, 1, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (size_t cut = 0; cut <= t[i].len; cut++) {
			bool done;
			size_t got = take_cut(t[i].body, t[i].len, t[i].m, cut, &done);

			if (got != t[i].want || done != t[i].done)
				fail_msg("case %zu cut %zu: took %zu (done %d), want %zu (%d)", i, cut,
				    got, done, t[i].want, t[i].done);
		}
	}
}

/* Byte by byte, and nothing more is taken once done. */
static void
test_byte_by_byte_then_nothing(void **state)
{
	static const char body[] = "one\r\ntwo\r\nthree\r\nfour\r\n";
	struct pop3_top t;
	size_t taken = 0;

	(void)state;
	pop3_top_init(&t, 2);
	assert_false(t.done);
	for (size_t i = 0; i < sizeof(body) - 1; i++)
		taken += pop3_top_take(&t, (const uint8_t *)body + i, 1);
	assert_int_equal(taken, 10);
	assert_true(t.done);
	assert_int_equal(t.lines_left, 0);
	assert_int_equal(pop3_top_take(&t, (const uint8_t *)"more\r\n", 6), 0);
	assert_int_equal(pop3_top_take(&t, (const uint8_t *)"", 0), 0);
	pop3_top_init(&t, 0);
	assert_true(t.done);
	assert_int_equal(pop3_top_take(&t, (const uint8_t *)body, sizeof(body) - 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_byte_by_byte_then_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
