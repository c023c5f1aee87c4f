/* tests/unit/test_log_rate.c: the log line bound (common/log_rate.c): a burst passes, then
 * one line a second, and the next line logged tells how many were left out and over how
 * long. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../common/log_rate.h"

static void
test_burst_then_one_a_second(void **state)
{
	struct log_rate r = { 0 };
	unsigned n = 99, secs = 99, logged = 0;

	(void)state;
	for (unsigned i = 0; i < 100; i++)
		if (log_rate_take(&r, 1000.0, &n, &secs))
			logged++, assert_int_equal(n, 0), assert_int_equal(secs, 0);
	assert_int_equal(logged, LOG_RATE_BURST);
	/* half a second later: still nothing */
	assert_false(log_rate_take(&r, 1000.5, &n, &secs));
	/* a second after the flood: one line, with the count of the left out ones */
	assert_true(log_rate_take(&r, 1001.0, &n, &secs));
	assert_int_equal(n, 100 - LOG_RATE_BURST + 1);
	assert_int_equal(secs, 2);
	assert_false(log_rate_take(&r, 1001.0, &n, &secs));	/* 1 left out */
	/* 10 s of 100 lines a second: about 10 logged, each telling the ones before it */
	logged = 0;
	unsigned told = 0;
	for (unsigned i = 1; i <= 1000; i++)
		if (log_rate_take(&r, 1001.0 + i / 100.0, &n, &secs))
			logged++, told += n, assert_in_range(secs, 1, 2);
	assert_in_range(logged, 9, 11);
	/* quiet for a minute: the burst is back; this line tells the rest: none is lost */
	assert_true(log_rate_take(&r, 1100.0, &n, &secs));
	assert_int_equal(1 + 1000, logged + told + n);
	for (unsigned i = 1; i < LOG_RATE_BURST; i++)
		assert_true(log_rate_take(&r, 1100.0, &n, &secs)), assert_int_equal(n, 0);
	assert_false(log_rate_take(&r, 1100.0, &n, &secs));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_one_a_second),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
