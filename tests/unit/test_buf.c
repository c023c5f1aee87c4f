/* tests/unit/test_buf.c: the bounded byte buffer (common/buf.c): a zeroed buffer is valid,
 * the ceiling is enforced and `failed` stays set until reset, consume never moves bytes, and
 * a `secret` buffer leaves no copy of a consumed, reset or compacted-away byte in its storage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/buf.h"

static void
assert_buf_eq(const struct buf *b, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(buf_len(b), n);
	assert_memory_equal(buf_data(b), s, n);
}

static void
test_zeroed_is_valid(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(buf_len(&b), 0);
	assert_non_null(buf_data(&b));		/* "" rather than NULL: memchr-safe */
	assert_int_equal(buf_room(&b), BUF_MAX_DEFAULT);
	assert_int_equal(buf_find(&b, 0, 'x'), -1);
	buf_consume(&b, 0);
	buf_compact(&b);
	buf_reset(&b);
	buf_free(&b);				/* owns nothing: a no-op */
	assert_null(b.data);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	assert_buf_eq(&b, "ab");
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(buf_len(&b), 0);
}

static void
test_ceiling_and_sticky_failure(void **state)
{
	struct buf b = { 0 };

	(void)state;
	buf_set_max(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_false(b.failed);
	assert_int_equal(buf_room(&b), 0);
	assert_int_equal(buf_append(&b, "9", 1), -1);	/* one past the ceiling */
	assert_true(b.failed);
	assert_buf_eq(&b, "12345678");			/* nothing written */
	buf_consume(&b, 4);
	assert_int_equal(buf_append(&b, "ab", 2), 0);	/* fits again ... */
	assert_true(b.failed);				/* ... but the failure stays */
	assert_buf_eq(&b, "5678ab");
	buf_reset(&b);
	assert_false(b.failed);
	assert_int_equal(buf_len(&b), 0);
	/* An over-ceiling append is refused whole, not cut. */
	assert_int_equal(buf_append(&b, "0123456789", 10), -1);
	assert_int_equal(buf_len(&b), 0);
	assert_null(buf_reserve(&b, 9));
	buf_free(&b);
	assert_int_equal(b.max, 8);			/* free keeps the ceiling */
}

static void
test_ceiling_counts_unconsumed_only(void **state)
{
	struct buf b = { 0 };

	(void)state;
	buf_set_max(&b, 600);
	for (int i = 0; i < 100; i++) {		/* far more than 600 bytes pass through */
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
		buf_consume(&b, 10);
	}
	assert_false(b.failed);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
}

static void
test_consume_and_compact(void **state)
{
	struct buf b = { 0 };
	const uint8_t *p;

	(void)state;
	buf_append_str(&b, "hello world");
	p = buf_data(&b);
	buf_consume(&b, 6);
	assert_ptr_equal(buf_data(&b), p + 6);		/* consume never moves bytes */
	assert_buf_eq(&b, "world");
	assert_int_equal(buf_find(&b, 0, 'r'), 2);
	assert_int_equal(buf_find(&b, 3, 'r'), -1);
	assert_int_equal(buf_find(&b, 99, 'w'), -1);
	buf_compact(&b);
	assert_int_equal(b.off, 0);
	assert_buf_eq(&b, "world");
	buf_consume(&b, 5);				/* emptied: back to offset 0 */
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	buf_append_str(&b, "x");
	buf_consume(&b, 100);				/* more than there is: empties */
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
}

static void
test_reserve_commit(void **state)
{
	struct buf b = { 0 };
	uint8_t *dst;

	(void)state;
	dst = buf_reserve(&b, 4096);
	assert_non_null(dst);
	memcpy(dst, "abc", 3);
	buf_commit(&b, 3);
	assert_buf_eq(&b, "abc");
	assert_true(b.cap >= 4096);
	buf_free(&b);
}

static void
test_printf(void **state)
{
	struct buf b = { 0 };
	char big[2000];

	(void)state;
	assert_int_equal(buf_printf(&b, "%u %s", 42u, "x"), 0);
	assert_buf_eq(&b, "42 x");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", big), 0);	/* grows past the first block */
	assert_int_equal(buf_len(&b), 4 + 2 + sizeof(big) - 1);
	assert_int_equal(buf_data(&b)[buf_len(&b) - 1], ']');
	buf_reset(&b);
	buf_set_max(&b, 4);
	assert_int_equal(buf_printf(&b, "%s", "12345"), -1);
	assert_true(b.failed);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
}

/* How many times the storage of b, consumed or not, holds needle. */
static int
storage_count(const struct buf *b, const char *needle)
{
	size_t n = strlen(needle);
	int count = 0;

	for (size_t i = 0; b->data != NULL && i + n <= b->cap; i++)
		count += memcmp(b->data + i, needle, n) == 0;
	return count;
}

static void
test_secret_wipes_what_it_lets_go(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.secret = 1;
	assert_non_null(buf_reserve(&b, 128));	/* storage the appends below reuse, defined */
	memset(b.data, 0, b.cap);		/* throughout for storage_count() */
	assert_int_equal(buf_append_str(&b, "PASS hunter2\r\nSTAT\r\n"), 0);
	buf_consume(&b, 14);
	assert_buf_eq(&b, "STAT\r\n");
	assert_int_equal(storage_count(&b, "hunter2"), 0);
	/* Compaction moves the rest to the front: the copy left behind goes. */
	assert_int_equal(buf_append_str(&b, "NOOP\r\nNOOP\r\nNOOP\r\nPASS swordfish\r\n"), 0);
	buf_consume(&b, 6 + 18);
	buf_compact(&b);
	assert_buf_eq(&b, "PASS swordfish\r\n");
	assert_int_equal(storage_count(&b, "swordfish"), 1);
	buf_reset(&b);
	assert_int_equal(storage_count(&b, "swordfish"), 0);
	/* Draining to empty is a consume too. */
	assert_int_equal(buf_append_str(&b, "AUTH PLAIN AGJvYgBib2I=\r\n"), 0);
	buf_consume(&b, buf_len(&b));
	assert_int_equal(storage_count(&b, "AGJvYgBib2I="), 0);
	buf_free(&b);
}

/* buf_truncate() drops the tail of what is unconsumed, whatever was consumed before it, and
 * a secret buffer wipes the tail it drops (a LOGIN line that could not be finished). */
static void
test_truncate(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(buf_append_str(&b, "A1 NOOP\r\nA2 LOGIN"), 0);
	buf_consume(&b, 9);
	buf_truncate(&b, 3);
	assert_buf_eq(&b, "A2 ");
	buf_truncate(&b, 10);			/* past the end: nothing changes */
	assert_buf_eq(&b, "A2 ");
	assert_int_equal(buf_append_str(&b, "NOOP"), 0);
	assert_buf_eq(&b, "A2 NOOP");
	buf_truncate(&b, 0);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_append_str(&b, "x"), 0);
	assert_buf_eq(&b, "x");
	buf_free(&b);

	memset(&b, 0, sizeof(b));
	b.secret = 1;
	assert_non_null(buf_reserve(&b, 128));
	memset(b.data, 0, b.cap);
	assert_int_equal(buf_append_str(&b, "A3 LOGIN bob hunter2"), 0);
	buf_truncate(&b, 3);
	assert_buf_eq(&b, "A3 ");
	assert_int_equal(storage_count(&b, "hunter2"), 0);
	buf_free(&b);
}

static void
test_not_secret_leaves_consumed_bytes(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	/* The ordinary buffer does no extra work: consumed bytes stay where they were (this is
	 * what makes the secret test above able to fail). */
	assert_non_null(buf_reserve(&b, 128));
	memset(b.data, 0, b.cap);
	assert_int_equal(buf_append_str(&b, "RETR 1\r\nSTAT\r\n"), 0);
	buf_consume(&b, 8);
	assert_int_equal(storage_count(&b, "RETR 1"), 1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zeroed_is_valid),
		cmocka_unit_test(test_ceiling_and_sticky_failure),
		cmocka_unit_test(test_ceiling_counts_unconsumed_only),
		cmocka_unit_test(test_consume_and_compact),
		cmocka_unit_test(test_reserve_commit),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_secret_wipes_what_it_lets_go),
		cmocka_unit_test(test_not_secret_leaves_consumed_bytes),
		cmocka_unit_test(test_truncate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
