/* tests/unit/test_pop3_capa.c: the CAPA list (pop3/pop3_capa.c, RFC 2449 §5): what is
 * always there, what depends on the connection, the terminator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_capa.h"

#define ALWAYS "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"

static void
check(const struct pop3_capa *c, const char *want)
{
	struct buf b = { 0 };
	size_t n = strlen(want);

	pop3_capa_write(&b, c);
	if (buf_len(&b) != n || memcmp(buf_data(&b), want, n) != 0)
		fail_msg("got \"%.*s\", want \"%s\"", (int)buf_len(&b), (const char *)buf_data(&b),
		    want);
	buf_free(&b);
}

static void
test_minimal(void **state)
{
	struct pop3_capa c = { 0 };

	(void)state;
	/* Plaintext refused, no TLS to offer: no USER, no SASL, no STLS. */
	check(&c, ALWAYS ".\r\n");
}

static void
test_before_stls(void **state)
{
	struct pop3_capa c = { .stls = true, .implementation = "popgate 0.1" };

	(void)state;
	check(&c, ALWAYS "STLS\r\nIMPLEMENTATION popgate 0.1\r\n.\r\n");
}

static void
test_everything(void **state)
{
	struct pop3_capa c = {
		.user = true, .stls = true, .sasl_plain = true, .sasl_xoauth2 = true,
		.sasl_oauthbearer = true, .implementation = "popgate 0.1",
	};

	(void)state;
	check(&c, ALWAYS "USER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\nSTLS\r\n"
	    "IMPLEMENTATION popgate 0.1\r\n.\r\n");
}

static void
test_sasl_subsets(void **state)
{
	struct pop3_capa c = { .sasl_xoauth2 = true };

	(void)state;
	check(&c, ALWAYS "SASL XOAUTH2\r\n.\r\n");
	c = (struct pop3_capa){ .user = true, .sasl_plain = true };
	check(&c, ALWAYS "USER\r\nSASL PLAIN\r\n.\r\n");
	c = (struct pop3_capa){ .sasl_oauthbearer = true };
	check(&c, ALWAYS "SASL OAUTHBEARER\r\n.\r\n");
}

/* An implementation string from the config cannot add lines. */
static void
test_implementation_sanitised(void **state)
{
	struct pop3_capa c = { .implementation = "x\r\n.\r\n" };

	(void)state;
	check(&c, ALWAYS "IMPLEMENTATION x  .  \r\n.\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_before_stls),
		cmocka_unit_test(test_everything),
		cmocka_unit_test(test_sasl_subsets),
		cmocka_unit_test(test_implementation_sanitised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
