/* tests/unit/test_imap_queue.c: tags and pending completions (imap/imap_queue.c): unique
 * tags A1, A2, ...; a bounded queue; completion by tag in or out of order with the rest
 * kept in order; a completion may push the next command; flush tells everyone once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_queue.h"

/* What the completions saw, in order: "kind:arg:status" or "kind:arg:flush". */
struct log {
	char text[512];
	struct imap_queue *q;	/* for a completion that pushes */
	int pushes_left;
};

static void
log_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *resp)
{
	struct log *l = ctx;
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%s%s/%d/%u/%s", n ? "|" : "", cmd->tag,
	    cmd->kind, cmd->arg, resp == NULL ? "flush" : resp->status == IMAP_STATUS_OK ? "OK" : "NO");
}

/* Completes by pushing a follow-up command, as a login does SELECT after LOGIN. */
static void
push_done(void *ctx, struct imap_cmd *cmd, const struct imap_resp *resp)
{
	struct log *l = ctx;

	log_done(ctx, cmd, resp);
	if (resp != NULL && l->pushes_left-- > 0)
		assert_non_null(imap_queue_push(l->q, cmd->kind + 1, log_done, l, cmd->arg + 1));
}

static struct imap_resp
tagged(const char *tag, enum imap_status st)
{
	struct imap_resp r;

	memset(&r, 0, sizeof(r));
	r.kind = IMAP_RESP_TAGGED;
	r.status = st;
	r.tag.p = (const uint8_t *)tag;
	r.tag.len = strlen(tag);
	return r;
}

static void
new_queue(struct imap_queue *q)
{
	memset(q, 0, sizeof(*q));
	imap_queue_init(q);
}

static void
test_tags_and_limit(void **state)
{
	struct imap_queue q;
	struct imap_cmd *c;
	char want[16];		/* "A" and an int: more than IMAP_TAG_MAX, as gcc cannot see i is small */

	(void)state;
	new_queue(&q);
	assert_null(imap_queue_head(&q));
	assert_int_equal(imap_queue_count(&q), 0);
	for (int i = 0; i < IMAP_QUEUE_MAX; i++) {
		assert_non_null(c = imap_queue_push(&q, i, NULL, NULL, (uint32_t)i * 10));
		snprintf(want, sizeof(want), "A%d", i + 1);
		assert_string_equal(c->tag, want);
		assert_int_equal(c->kind, i);
		assert_int_equal(c->arg, (uint32_t)i * 10);
		assert_int_equal(imap_queue_count(&q), (size_t)i + 1);
	}
	assert_null(imap_queue_push(&q, 99, NULL, NULL, 0));
	assert_int_equal(imap_queue_count(&q), IMAP_QUEUE_MAX);
	assert_string_equal(imap_queue_head(&q)->tag, "A1");

	/* One completes: room for one more, with a tag never used before. */
	{
		struct imap_resp r = tagged("A1", IMAP_STATUS_OK);

		assert_true(imap_queue_complete(&q, &r));
	}
	assert_non_null(c = imap_queue_push(&q, 0, NULL, NULL, 0));
	snprintf(want, sizeof(want), "A%d", IMAP_QUEUE_MAX + 1);
	assert_string_equal(c->tag, want);
	assert_null(imap_queue_push(&q, 0, NULL, NULL, 0));
	assert_string_equal(imap_queue_head(&q)->tag, "A2");

	/* Re-initialising (a reconnect) keeps the tags unique. */
	imap_queue_flush(&q);
	assert_int_equal(imap_queue_count(&q), 0);
	imap_queue_init(&q);
	assert_int_equal(imap_queue_count(&q), 0);
	assert_non_null(c = imap_queue_push(&q, 0, NULL, NULL, 0));
	snprintf(want, sizeof(want), "A%d", IMAP_QUEUE_MAX + 2);
	assert_string_equal(c->tag, want);
}

static void
test_complete_in_order(void **state)
{
	struct imap_queue q;
	struct log l = { "", NULL, 0 };
	struct imap_resp r;

	(void)state;
	new_queue(&q);
	for (int i = 0; i < 3; i++)
		assert_non_null(imap_queue_push(&q, i, log_done, &l, (uint32_t)i + 100));
	r = tagged("A1", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	assert_string_equal(imap_queue_head(&q)->tag, "A2");
	r = tagged("A2", IMAP_STATUS_NO);
	assert_true(imap_queue_complete(&q, &r));
	r = tagged("A3", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	assert_string_equal(l.text, "A1/0/100/OK|A2/1/101/NO|A3/2/102/OK");
	assert_null(imap_queue_head(&q));
	assert_int_equal(imap_queue_count(&q), 0);
	/* Already completed: unknown now. */
	assert_false(imap_queue_complete(&q, &r));
}

static void
test_complete_out_of_order(void **state)
{
	struct imap_queue q;
	struct log l = { "", NULL, 0 };
	struct imap_resp r;

	(void)state;
	new_queue(&q);
	/* Wrap the ring first so removal crosses its end. */
	for (int i = 0; i < IMAP_QUEUE_MAX - 2; i++) {
		assert_non_null(imap_queue_push(&q, 0, NULL, NULL, 0));
		r = tagged(imap_queue_head(&q)->tag, IMAP_STATUS_OK);
		assert_true(imap_queue_complete(&q, &r));
	}
	for (int i = 0; i < 5; i++)
		assert_non_null(imap_queue_push(&q, i, log_done, &l, (uint32_t)i));
	/* Tags now A15 .. A19; complete the middle one, then the last, then the first. */
	assert_string_equal(imap_queue_head(&q)->tag, "A15");
	r = tagged("A17", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	r = tagged("A19", IMAP_STATUS_NO);
	assert_true(imap_queue_complete(&q, &r));
	assert_int_equal(imap_queue_count(&q), 3);
	assert_string_equal(imap_queue_head(&q)->tag, "A15");
	r = tagged("A15", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	assert_string_equal(l.text, "A17/2/2/OK|A19/4/4/NO|A15/0/0/OK");
	/* The rest, still in order. */
	assert_int_equal(imap_queue_count(&q), 2);
	assert_string_equal(imap_queue_head(&q)->tag, "A16");
	l.text[0] = '\0';
	imap_queue_flush(&q);
	assert_string_equal(l.text, "A16/1/1/flush|A18/3/3/flush");
}

static void
test_unknown_tag(void **state)
{
	struct imap_queue q;
	static const char *const bad[] = { "A3", "A", "A12", "a1", "A1 ", "", "*", "A0" };
	struct log l = { "", NULL, 0 };
	struct imap_resp r;

	(void)state;
	new_queue(&q);
	r = tagged("A1", IMAP_STATUS_OK);
	assert_false(imap_queue_complete(&q, &r));	/* empty queue */
	assert_non_null(imap_queue_push(&q, 0, log_done, &l, 0));
	assert_non_null(imap_queue_push(&q, 0, log_done, &l, 0));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = tagged(bad[i], IMAP_STATUS_OK);
		if (imap_queue_complete(&q, &r))
			fail_msg("tag \"%s\" matched", bad[i]);
	}
	/* "A1" must not match "A12"'s prefix either way. */
	r.tag.p = (const uint8_t *)"A12";
	r.tag.len = 1;
	assert_false(imap_queue_complete(&q, &r));
	assert_int_equal(imap_queue_count(&q), 2);
	assert_string_equal(l.text, "");
	imap_queue_flush(&q);
}

static void
test_done_may_push(void **state)
{
	struct imap_queue q;
	struct log l = { "", NULL, 2 };
	struct imap_resp r;
	char want[32];

	(void)state;
	new_queue(&q);
	l.q = &q;
	assert_non_null(imap_queue_push(&q, 1, push_done, &l, 10));
	assert_non_null(imap_queue_push(&q, 5, log_done, &l, 50));
	r = tagged("A1", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));	/* pushes A3 */
	assert_int_equal(imap_queue_count(&q), 2);
	assert_string_equal(imap_queue_head(&q)->tag, "A2");
	r = tagged("A3", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	r = tagged("A2", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	assert_string_equal(l.text, "A1/1/10/OK|A3/2/11/OK|A2/5/50/OK");

	/* A full queue: the completion frees a slot before it runs, so its push fits. */
	l.text[0] = '\0';
	l.pushes_left = 1;
	assert_non_null(imap_queue_push(&q, 1, push_done, &l, 20));
	for (int i = 1; i < IMAP_QUEUE_MAX; i++)
		assert_non_null(imap_queue_push(&q, 9, NULL, NULL, 0));
	assert_null(imap_queue_push(&q, 9, NULL, NULL, 0));
	r = tagged("A4", IMAP_STATUS_OK);
	assert_true(imap_queue_complete(&q, &r));
	assert_int_equal(imap_queue_count(&q), IMAP_QUEUE_MAX);
	assert_string_equal(l.text, "A4/1/20/OK");
	l.text[0] = '\0';
	imap_queue_flush(&q);
	snprintf(want, sizeof(want), "A%d/2/21/flush", 4 + IMAP_QUEUE_MAX);
	assert_string_equal(l.text, want);	/* NULL-done entries are skipped silently */
}

static void
test_flush(void **state)
{
	struct imap_queue q;
	struct log l = { "", NULL, 5 };

	(void)state;
	new_queue(&q);
	imap_queue_flush(&q);			/* empty: nothing happens */
	assert_string_equal(l.text, "");
	l.q = &q;
	assert_non_null(imap_queue_push(&q, 1, log_done, &l, 1));
	assert_non_null(imap_queue_push(&q, 2, NULL, NULL, 2));	/* no completion */
	assert_non_null(imap_queue_push(&q, 3, push_done, &l, 3));	/* no push on flush */
	imap_queue_flush(&q);
	assert_string_equal(l.text, "A1/1/1/flush|A3/3/3/flush");
	assert_int_equal(imap_queue_count(&q), 0);
	assert_null(imap_queue_head(&q));
	/* Usable again afterwards. */
	assert_non_null(imap_queue_push(&q, 4, log_done, &l, 4));
	assert_string_equal(imap_queue_head(&q)->tag, "A4");
	imap_queue_flush(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags_and_limit),
		cmocka_unit_test(test_complete_in_order),
		cmocka_unit_test(test_complete_out_of_order),
		cmocka_unit_test(test_unknown_tag),
		cmocka_unit_test(test_done_may_push),
		cmocka_unit_test(test_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
