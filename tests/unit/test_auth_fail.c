/* tests/unit/test_auth_fail.c: the failed-login table (common/auth_fail.c): how addresses
 * are counted (IPv4 whole, IPv6 per /64, IPv4-mapped as IPv4), that a success takes back
 * only its own user's failures, forgetting, the bound, and the per-process key. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/auth_fail.h"

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return ss;
}

static bool
same_key(const char *a, const char *b)
{
	struct sockaddr_storage x = addr(a), y = addr(b);
	uint8_t kx[AUTH_FAIL_ADDR_KEY], ky[AUTH_FAIL_ADDR_KEY];

	auth_fail_addr_key(&x, kx);
	auth_fail_addr_key(&y, ky);
	return memcmp(kx, ky, sizeof(kx)) == 0;
}

static void
test_addr_key_table(void **state)
{
	static const struct {
		const char *a, *b;
		bool same;
	} rows[] = {
		{ "203.0.113.7", "203.0.113.7", true },
		{ "203.0.113.7", "203.0.113.8", false },		/* IPv4: the whole address */
		{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true },	/* one /64 */
		{ "2001:db8:1:2::1", "2001:db8:1:2:8d3a:11:5e2:9", true },	/* privacy address */
		{ "2001:db8:1:2::1", "2001:db8:1:3::1", false },	/* the next /64 */
		{ "2001:db8:1:2::1", "2001:db9:1:2::1", false },
		{ "::ffff:203.0.113.7", "203.0.113.7", true },		/* dual-stack listener */
		{ "::ffff:203.0.113.7", "::ffff:203.0.113.8", false },	/* not one big /64 */
		{ "::1", "::2", true },
		{ "::1", "127.0.0.1", false },
		{ "0.0.0.4", "::", false },	/* the family is part of the key */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (same_key(rows[i].a, rows[i].b) != rows[i].same)
			fail_msg("%s and %s: %s, want %s", rows[i].a, rows[i].b,
			    rows[i].same ? "apart" : "together", rows[i].same ? "together" : "apart");
}

static struct auth_fail_table *
table_new(void)
{
	struct auth_fail_table *t = malloc(sizeof(*t));
	const char *error = NULL;

	assert_non_null(t);
	assert_int_equal(auth_fail_init(t, &error), 0);
	return t;
}

/* The attack of issue 12 point 10: guesses at alice, a login to his own account, more
 * guesses at alice. His own success takes back nothing of alice's. */
static void
test_success_takes_back_only_its_own_user(void **state)
{
	struct auth_fail_table *t = table_new();
	struct sockaddr_storage x = addr("198.51.100.9"), y = addr("198.51.100.10");

	(void)state;
	for (int i = 0; i < 3; i++)
		auth_fail_record(t, &x, "alice", 10.0 + i);
	assert_int_equal(auth_fail_count(t, &x, 20.0), 3);
	auth_fail_success(t, &x, "mallory", 21.0);
	assert_int_equal(auth_fail_count(t, &x, 22.0), 3);
	/* mallory's own mistakes are his to take back, alice's stay */
	auth_fail_record(t, &x, "mallory", 23.0);
	assert_int_equal(auth_fail_count(t, &x, 24.0), 4);
	auth_fail_success(t, &x, "mallory", 25.0);
	assert_int_equal(auth_fail_count(t, &x, 26.0), 3);
	/* another address is not affected either way */
	assert_int_equal(auth_fail_count(t, &y, 26.0), 0);
	auth_fail_success(t, &y, "alice", 27.0);
	assert_int_equal(auth_fail_count(t, &x, 28.0), 3);
	/* alice herself, from there: what she (or someone as her) failed is taken back */
	auth_fail_success(t, &x, "alice", 29.0);
	assert_int_equal(auth_fail_count(t, &x, 30.0), 0);
	free(t);
}

static void
test_ipv6_counts_per_64(void **state)
{
	struct auth_fail_table *t = table_new();
	struct sockaddr_storage a = addr("2001:db8:5:6::10"), b = addr("2001:db8:5:6::11"),
	    other = addr("2001:db8:5:7::10");

	(void)state;
	auth_fail_record(t, &a, "alice", 1.0);
	auth_fail_record(t, &b, "bob", 2.0);	/* a new address in the same /64 */
	assert_int_equal(auth_fail_count(t, &a, 3.0), 2);
	assert_int_equal(auth_fail_count(t, &b, 3.0), 2);
	assert_int_equal(auth_fail_count(t, &other, 3.0), 0);
	/* bob logs in from yet another address of that /64: only his failure goes */
	auth_fail_success(t, &a, "bob", 4.0);
	assert_int_equal(auth_fail_count(t, &b, 5.0), 1);
	free(t);
}

static void
test_forgotten_after_quiet_time(void **state)
{
	struct auth_fail_table *t = table_new();
	struct sockaddr_storage x = addr("192.0.2.1");

	(void)state;
	auth_fail_record(t, &x, "alice", 100.0);
	auth_fail_record(t, &x, "alice", 200.0);
	assert_int_equal(auth_fail_count(t, &x, 200.0 + AUTH_FAIL_FORGET), 2);
	assert_int_equal(auth_fail_count(t, &x, 200.0 + AUTH_FAIL_FORGET + 1), 0);
	/* a new failure after that starts again from one */
	auth_fail_record(t, &x, "alice", 200.0 + AUTH_FAIL_FORGET + 2);
	assert_int_equal(auth_fail_count(t, &x, 200.0 + AUTH_FAIL_FORGET + 3), 1);
	free(t);
}

/* Far more addresses than records: the table stays its size, the newest are kept. */
static void
test_bounded(void **state)
{
	struct auth_fail_table *t = table_new();
	const size_t n = 4 * AUTH_FAIL_BUCKETS * AUTH_FAIL_WAYS;
	struct sockaddr_storage last = addr("10.0.0.1");
	char text[32];

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage a;

		snprintf(text, sizeof(text), "10.%zu.%zu.1", (i >> 8) & 255, i & 255);
		a = addr(text);
		auth_fail_record(t, &a, "user", (double)i);
		last = a;
	}
	assert_int_equal(auth_fail_count(t, &last, (double)n), 1);
	free(t);
}

/* Two processes place the same address in different buckets: the key is random. */
static void
test_key_is_per_process(void **state)
{
	struct auth_fail_table *t1 = table_new(), *t2 = table_new();
	struct sockaddr_storage x = addr("192.0.2.77");
	int where1 = -1, where2 = -1;

	(void)state;
	assert_memory_not_equal(t1->key, t2->key, sizeof(t1->key));
	auth_fail_record(t1, &x, "alice", 1.0);
	auth_fail_record(t2, &x, "alice", 1.0);
	for (int b = 0; b < AUTH_FAIL_BUCKETS; b++) {
		if (t1->addr[b][0].count > 0)
			where1 = b;
		if (t2->addr[b][0].count > 0)
			where2 = b;
	}
	assert_true(where1 >= 0 && where2 >= 0);
	assert_memory_not_equal(t1->addr[where1][0].id, t2->addr[where2][0].id, 16);
	free(t1);
	free(t2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_key_table),
		cmocka_unit_test(test_success_takes_back_only_its_own_user),
		cmocka_unit_test(test_ipv6_counts_per_64),
		cmocka_unit_test(test_forgotten_after_quiet_time),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_key_is_per_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
