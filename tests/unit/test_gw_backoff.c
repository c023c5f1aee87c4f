/* tests/unit/test_gw_backoff.c: the restart schedule of a dying worker (gateway/backoff.c):
 * at once after a stable run or a first quick death, then 1, 2, 4 ... 60 s, forgiven by a
 * run of GW_BACKOFF_STABLE seconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../gateway/backoff.h"

static void
test_quick_deaths_double_up_to_the_cap(void **state)
{
	static const unsigned want[] = { 0, 1, 2, 4, 8, 16, 32, 60, 60, 60 };
	struct gw_backoff b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(gw_backoff_next(&b, 0.5), want[i]);
	/* However long it has been dying, the wait stays at the cap (no overflow). */
	for (unsigned i = 0; i < 100000; i++)
		assert_int_equal(gw_backoff_next(&b, 0), GW_BACKOFF_MAX);
}

static void
test_a_stable_run_resets_the_schedule(void **state)
{
	struct gw_backoff b = { 0 };

	(void)state;
	assert_int_equal(gw_backoff_next(&b, 3600), 0);		/* died after an hour: at once */
	assert_int_equal(gw_backoff_next(&b, 1), 0);		/* first quick death: at once */
	assert_int_equal(gw_backoff_next(&b, 1), 1);
	assert_int_equal(gw_backoff_next(&b, 2), 2);
	assert_int_equal(gw_backoff_next(&b, 9.9), 4);		/* just under stable: still quick */
	assert_int_equal(gw_backoff_next(&b, GW_BACKOFF_STABLE), 0);	/* ran long enough */
	assert_int_equal(b.quick, 0);
	assert_int_equal(gw_backoff_next(&b, 0), 0);		/* a new run of quick deaths */
	assert_int_equal(gw_backoff_next(&b, 0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quick_deaths_double_up_to_the_cap),
		cmocka_unit_test(test_a_stable_run_resets_the_schedule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
