/* tests/unit/test_cidr.c: CIDR networks of [server] trusted_proxies (common/cidr.c): what
 * parses, what is refused and why, and which addresses match, IPv4-mapped IPv6 included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>

#include "../../common/cidr.h"

static const struct {
	const char *text, *error;	/* error NULL: valid */
} parses[] = {
	{ "10.0.0.0/8", NULL }, { "127.0.0.1", NULL }, { "0.0.0.0/0", NULL }, { "::/0", NULL },
	{ "2001:db8::/32", NULL }, { "::1", NULL }, { "192.0.2.128/25", NULL },
	{ "10.0.0.1/8", "address has bits set past the prefix length" },
	{ "2001:db8::1/64", "address has bits set past the prefix length" },
	{ "10.0.0.0/33", "prefix length over 32" }, { "::/129", "prefix length over 128" },
	{ "10.0.0.0/", "prefix length is not a number" }, { "10.0.0.0/x", "prefix length is not a number" },
	{ "10.0.0.0/-1", "prefix length is not a number" }, { "10.0.0.0/0008", "prefix length is not a number" },
	{ "10.0.0/8", "not an IPv4 or IPv6 address" }, { "localhost", "not an IPv4 or IPv6 address" },
	{ "/8", "not an IPv4 or IPv6 address" }, { "", "not an IPv4 or IPv6 address" },
	{ "256.0.0.0/8", "not an IPv4 or IPv6 address" },
};

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		struct cidr c;
		const char *error = NULL;
		int r = cidr_parse(parses[i].text, strlen(parses[i].text), &c, &error);

		if (parses[i].error == NULL) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(error, parses[i].error);
		}
	}
}

static bool
match(const char *net, const char *addr)
{
	struct cidr c;
	const char *error;
	uint8_t a[16];

	assert_int_equal(cidr_parse(net, strlen(net), &c, &error), 0);
	if (inet_pton(AF_INET, addr, a) == 1)
		return cidr_match(&c, 4, a);
	assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
	return cidr_match(&c, 6, a);
}

static void
test_match(void **state)
{
	(void)state;
	assert_true(match("10.0.0.0/8", "10.255.1.2"));
	assert_false(match("10.0.0.0/8", "11.0.0.0"));
	assert_true(match("192.0.2.128/25", "192.0.2.200"));
	assert_false(match("192.0.2.128/25", "192.0.2.127"));
	assert_true(match("127.0.0.1", "127.0.0.1"));
	assert_false(match("127.0.0.1", "127.0.0.2"));
	assert_true(match("0.0.0.0/0", "203.0.113.7"));
	assert_false(match("0.0.0.0/0", "::1"));
	assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));	/* a dual-stack listener */
	assert_true(match("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(match("2001:db8::/32", "2001:db9::1"));
	assert_true(match("::1", "::1"));
	assert_false(match("::1", "127.0.0.1"));
	assert_true(match("::/0", "::ffff:1.2.3.4"));
	assert_true(match("fe80::/10", "febf::1"));
	assert_false(match("fe80::/10", "fec0::1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
