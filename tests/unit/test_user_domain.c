/* tests/unit/test_user_domain.c: which [upstream:DOMAIN] a user name goes to and what name
 * that cluster is sent (common/user_domain.c), the domain check of section names, and the
 * bearer response written anew for a stripped name (pop3/pop3_sasl_encode.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/user_domain.h"
#include "../../pop3/pop3_sasl.h"
#include "../../pop3/pop3_sasl_encode.h"

static void
test_domain(void **state)
{
	(void)state;
	assert_string_equal(user_domain("bob@b.test"), "b.test");
	assert_string_equal(user_domain("a@b@c.test"), "c.test");	/* the LAST '@' */
	assert_null(user_domain("bob"));
	assert_null(user_domain("bob@"));				/* an empty domain: none */
	assert_string_equal(user_domain("@b.test"), "b.test");
	assert_null(user_domain(""));
}

static void
test_find(void **state)
{
	const char *const domains[] = { "a.test", "B.Test", "sub.b.test" };

	(void)state;
	assert_int_equal(user_domain_find(domains, 3, "x@a.test"), 0);
	assert_int_equal(user_domain_find(domains, 3, "x@A.TEST"), 0);	/* any case */
	assert_int_equal(user_domain_find(domains, 3, "x@b.test"), 1);
	assert_int_equal(user_domain_find(domains, 3, "x@SUB.b.test"), 2);
	assert_int_equal(user_domain_find(domains, 3, "x@c.b.test"), -1);	/* no suffix match */
	assert_int_equal(user_domain_find(domains, 3, "x@test"), -1);
	assert_int_equal(user_domain_find(domains, 3, "a.test"), -1);	/* no '@' */
	assert_int_equal(user_domain_find(domains, 3, "b.test@a.test"), 0);
	assert_int_equal(user_domain_find(domains, 3, "x@a.test@"), -1);
	assert_int_equal(user_domain_find(domains, 0, "x@a.test"), -1);
}

static void
test_upstream_name(void **state)
{
	char out[17];

	(void)state;
	assert_true(user_upstream_name("bob@b.test", true, out, sizeof(out)));
	assert_string_equal(out, "bob");
	assert_true(user_upstream_name("bob@b.test", false, out, sizeof(out)));
	assert_string_equal(out, "bob@b.test");
	assert_true(user_upstream_name("a@b@c.test", true, out, sizeof(out)));
	assert_string_equal(out, "a@b");				/* only the last domain */
	assert_true(user_upstream_name("bob", true, out, sizeof(out)));
	assert_string_equal(out, "bob");
	assert_true(user_upstream_name("bob@", true, out, sizeof(out)));
	assert_string_equal(out, "bob@");				/* no domain to strip */
	assert_true(user_upstream_name("@b.test", true, out, sizeof(out)));
	assert_string_equal(out, "@b.test");				/* never an empty name */
	assert_true(user_upstream_name("Bob@B.Test", true, out, sizeof(out)));
	assert_string_equal(out, "Bob");				/* case as typed */
	assert_false(user_upstream_name("a-very-long-name@b.test", false, out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(user_upstream_name("a-very-long-name@b.test", true, out, sizeof(out)));
	assert_string_equal(out, "a-very-long-name");
}

static void
test_check(void **state)
{
	char long_label[80], long_name[300];

	(void)state;
	assert_null(user_domain_check("b.test"));
	assert_null(user_domain_check("xn--bcher-kva.example"));
	assert_null(user_domain_check("localhost"));
	assert_non_null(user_domain_check(""));
	assert_non_null(user_domain_check(".b.test"));
	assert_non_null(user_domain_check("b.test."));
	assert_non_null(user_domain_check("b..test"));
	assert_non_null(user_domain_check("b test"));
	assert_non_null(user_domain_check("b_test"));
	assert_non_null(user_domain_check("bob@b.test"));
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_non_null(user_domain_check(long_label));
	long_label[63] = '\0';
	assert_null(user_domain_check(long_label));
	for (size_t i = 0; i < 254; i++)
		long_name[i] = i % 2 ? '.' : 'a';
	long_name[253] = '\0';		/* "a.a.…a": 253 characters */
	assert_null(user_domain_check(long_name));
	long_name[253] = 'a';
	long_name[254] = '\0';
	assert_non_null(user_domain_check(long_name));
}

/* What the encoder writes decodes, with the gateway's own decoder, to the new name and the
 * same token. */
static void
roundtrip(enum pop3_sasl_mech mech, const char *user)
{
	static struct pop3_sasl_bearer b;
	static const uint8_t token[] = "ya29.a0Af-token_value";
	size_t len = 0;
	char *resp = pop3_sasl_bearer_encode(mech, user, token, sizeof(token) - 1, &len);

	assert_non_null(resp);
	assert_int_equal(strlen(resp), len);
	assert_int_equal(pop3_sasl_bearer_decode(mech, (const uint8_t *)resp, len, &b), POP3_SASL_OK);
	assert_string_equal(b.user, user);
	assert_int_equal(b.token_len, sizeof(token) - 1);
	assert_memory_equal(b.token, token, b.token_len);
	free(resp);
}

static void
test_bearer_encode(void **state)
{
	size_t len;

	(void)state;
	roundtrip(POP3_SASL_XOAUTH2, "bob");
	roundtrip(POP3_SASL_OAUTHBEARER, "bob");
	roundtrip(POP3_SASL_OAUTHBEARER, "b,o=b");	/* GS2's =2C and =3D */
	assert_null(pop3_sasl_bearer_encode(POP3_SASL_PLAIN, "bob", (const uint8_t *)"t", 1, &len));
}

/* The exact bytes of XOAUTH2's form (Google's documentation). */
static void
test_bearer_xoauth2_bytes(void **state)
{
	static const char token[] = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
	size_t len = 0;
	char *resp = pop3_sasl_bearer_encode(POP3_SASL_XOAUTH2, "someuser@example.com",
	    (const uint8_t *)token, sizeof(token) - 1, &len);

	(void)state;
	assert_non_null(resp);
	assert_string_equal(resp, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	free(resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_upstream_name),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_bearer_encode),
		cmocka_unit_test(test_bearer_xoauth2_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
