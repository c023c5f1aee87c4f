/* tests/unit/test_imap_queue.c: tags and pending commands (imap/imap_queue.c): unique tags
 * A1, A2, ...; a bounded queue; taking by tag in or out of order with the rest kept in
 * order; a slot freed by a take is usable at once; detaching an owner keeps its tags
 * answerable but drops who they belonged to. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_queue.h"

static void done_a(void) {}
static void done_b(void) {}

static struct slice
tag(const char *t)
{
	struct slice s = { (const uint8_t *)t, strlen(t) };

	return s;
}

static void
new_queue(struct imap_queue *q)
{
	memset(q, 0, sizeof(*q));
	imap_queue_init(q);
}

/* Takes `t` and appends "tag/what" to log. */
static bool
take(struct imap_queue *q, const char *t, char *log, size_t size)
{
	struct imap_cmd c;
	struct slice s = tag(t);
	size_t n = strlen(log);

	if (!imap_queue_take(q, &s, &c))
		return false;
	snprintf(log + n, size - n, "%s%s/%s", n ? "|" : "", c.tag, c.what ? c.what : "-");
	return true;
}

static void
test_tags_and_limit(void **state)
{
	struct imap_queue q;
	struct imap_cmd *c;
	char want[16], log[64] = "";

	(void)state;
	new_queue(&q);
	assert_null(imap_queue_head(&q));
	assert_int_equal(imap_queue_count(&q), 0);
	for (int i = 0; i < IMAP_QUEUE_MAX; i++) {
		assert_non_null(c = imap_queue_push(&q, "x", &q, done_a));
		snprintf(want, sizeof(want), "A%d", i + 1);
		assert_string_equal(c->tag, want);
		assert_ptr_equal(c->owner, &q);
		assert_ptr_equal(c->done, done_a);
		assert_int_equal(imap_queue_count(&q), (size_t)i + 1);
	}
	assert_null(imap_queue_push(&q, "y", NULL, NULL));
	assert_int_equal(imap_queue_count(&q), IMAP_QUEUE_MAX);
	assert_string_equal(imap_queue_head(&q)->tag, "A1");

	/* One is answered: room for one more, with a tag never used before. */
	assert_true(take(&q, "A1", log, sizeof(log)));
	assert_non_null(c = imap_queue_push(&q, "z", NULL, NULL));
	snprintf(want, sizeof(want), "A%d", IMAP_QUEUE_MAX + 1);
	assert_string_equal(c->tag, want);
	assert_null(imap_queue_push(&q, "z", NULL, NULL));
	assert_string_equal(imap_queue_head(&q)->tag, "A2");

	/* Re-initialising (a reconnect) empties it and keeps the tags unique. */
	imap_queue_init(&q);
	assert_int_equal(imap_queue_count(&q), 0);
	assert_non_null(c = imap_queue_push(&q, "w", NULL, NULL));
	snprintf(want, sizeof(want), "A%d", IMAP_QUEUE_MAX + 2);
	assert_string_equal(c->tag, want);
}

static void
test_take_in_order(void **state)
{
	static const char *const what[] = { "login", "select", "list" };
	struct imap_queue q;
	char log[128] = "";

	(void)state;
	new_queue(&q);
	for (int i = 0; i < 3; i++)
		assert_non_null(imap_queue_push(&q, what[i], NULL, NULL));
	assert_true(take(&q, "A1", log, sizeof(log)));
	assert_string_equal(imap_queue_head(&q)->tag, "A2");
	assert_true(take(&q, "A2", log, sizeof(log)));
	assert_true(take(&q, "A3", log, sizeof(log)));
	assert_string_equal(log, "A1/login|A2/select|A3/list");
	assert_null(imap_queue_head(&q));
	/* Already taken: unknown now. */
	assert_false(take(&q, "A3", log, sizeof(log)));
}

static void
test_take_out_of_order(void **state)
{
	static const char *const what[] = { "a", "b", "c", "d", "e" };
	struct imap_queue q;
	char log[128] = "";

	(void)state;
	new_queue(&q);
	/* Wrap the ring first so removal crosses its end. */
	for (int i = 0; i < IMAP_QUEUE_MAX - 2; i++) {
		char t[IMAP_TAG_MAX], scratch[64] = "";

		assert_non_null(imap_queue_push(&q, "w", NULL, NULL));
		snprintf(t, sizeof(t), "%s", imap_queue_head(&q)->tag);
		assert_true(take(&q, t, scratch, sizeof(scratch)));
	}
	for (int i = 0; i < 5; i++)
		assert_non_null(imap_queue_push(&q, what[i], NULL, NULL));
	/* Tags now A15 .. A19; the middle one, then the last, then the first. */
	assert_string_equal(imap_queue_head(&q)->tag, "A15");
	assert_true(take(&q, "A17", log, sizeof(log)));
	assert_true(take(&q, "A19", log, sizeof(log)));
	assert_int_equal(imap_queue_count(&q), 3);
	assert_string_equal(imap_queue_head(&q)->tag, "A15");
	assert_true(take(&q, "A15", log, sizeof(log)));
	/* The rest, still in order. */
	assert_true(take(&q, "A16", log, sizeof(log)));
	assert_true(take(&q, "A18", log, sizeof(log)));
	assert_string_equal(log, "A17/c|A19/e|A15/a|A16/b|A18/d");
	assert_int_equal(imap_queue_count(&q), 0);
}

static void
test_unknown_tag(void **state)
{
	static const char *const bad[] = { "A3", "A", "A12", "a1", "A1 ", "", "*", "A0" };
	struct imap_queue q;
	struct imap_cmd c;
	struct slice s;
	char log[64] = "";

	(void)state;
	new_queue(&q);
	assert_false(take(&q, "A1", log, sizeof(log)));	/* empty queue */
	assert_non_null(imap_queue_push(&q, "x", NULL, NULL));
	assert_non_null(imap_queue_push(&q, "y", NULL, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (take(&q, bad[i], log, sizeof(log)))
			fail_msg("tag \"%s\" matched", bad[i]);
	/* "A1" must not match "A12"'s prefix either way. */
	s.p = (const uint8_t *)"A12";
	s.len = 1;
	assert_false(imap_queue_take(&q, &s, &c));
	assert_int_equal(imap_queue_count(&q), 2);
	assert_string_equal(log, "");
}

static void
test_detach(void **state)
{
	struct imap_queue q;
	int mine, theirs;
	struct imap_cmd c;
	struct slice s;

	(void)state;
	new_queue(&q);
	assert_non_null(imap_queue_push(&q, "header", &mine, done_a));
	assert_non_null(imap_queue_push(&q, "window", &theirs, done_b));
	assert_non_null(imap_queue_push(&q, "window", &mine, done_a));
	imap_queue_detach(&q, &mine);
	assert_int_equal(imap_queue_count(&q), 3);	/* the server still answers them */
	s = tag("A1");
	assert_true(imap_queue_take(&q, &s, &c));
	assert_null(c.owner);
	assert_null(c.done);
	s = tag("A2");
	assert_true(imap_queue_take(&q, &s, &c));
	assert_ptr_equal(c.owner, &theirs);
	assert_ptr_equal(c.done, done_b);
	s = tag("A3");
	assert_true(imap_queue_take(&q, &s, &c));
	assert_null(c.owner);
	assert_string_equal(c.what, "window");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags_and_limit),
		cmocka_unit_test(test_take_in_order),
		cmocka_unit_test(test_take_out_of_order),
		cmocka_unit_test(test_unknown_tag),
		cmocka_unit_test(test_detach),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
