/* tests/unit/test_pop3_sasl.c: strict base64 (common/b64.c) and SASL PLAIN decoding
 * (pop3/pop3_sasl.c, RFC 4616 over RFC 5034): valid messages with and without authzid,
 * every malformed shape, field limits, "=", and the result wiped on every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/b64.h"
#include "../../pop3/pop3_sasl.h"

#define W(s) s, sizeof(s) - 1

static void
test_b64_vectors(void **state)
{
	/* RFC 4648 §10. */
	static const struct {
		const char *plain, *enc;
	} t[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char enc[64];
		uint8_t dec[64];
		size_t plen = strlen(t[i].plain), elen = strlen(t[i].enc);

		assert_int_equal(b64_encode((const uint8_t *)t[i].plain, plen, enc), elen);
		assert_string_equal(enc, t[i].enc);
		/* Padding is not counted: EVP_DecodeBlock would say 3 for "Zg==". */
		assert_int_equal(b64_decode((const uint8_t *)t[i].enc, elen, dec, sizeof(dec)), plen);
		assert_memory_equal(dec, t[i].plain, plen);
	}
	{
		uint8_t bin[256], dec[B64_DECODED_MAX(B64_ENCODED_SIZE(256) - 1)];
		char enc[B64_ENCODED_SIZE(256)];

		for (size_t i = 0; i < sizeof(bin); i++)
			bin[i] = (uint8_t)i;
		assert_int_equal(b64_encode(bin, sizeof(bin), enc), sizeof(enc) - 1);
		assert_int_equal(b64_decode((const uint8_t *)enc, sizeof(enc) - 1, dec, sizeof(dec)),
		    sizeof(bin));
		assert_memory_equal(dec, bin, sizeof(bin));
	}
}

static void
test_b64_rejects(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z", "Z===", "====", "=Zg=", "Zg==Zg==", "Zm=v", " Zm9v", "Zm9v ",
		"Zm9v\n", "Zm9\nv", "Zm 9", "Zm9v\r\n", "Zm9-", "Zm9_", "Zm9*",
	};
	uint8_t dec[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64_decode((const uint8_t *)bad[i], strlen(bad[i]), dec, sizeof(dec)) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(b64_decode((const uint8_t *)"Zm9v\0\0\0\0", 8, dec, sizeof(dec)), -1);
	/* Output too small for what the length could decode to. */
	assert_int_equal(b64_decode((const uint8_t *)"Zm9vYmFy", 8, dec, 5), -1);
	assert_int_equal(b64_decode((const uint8_t *)"Zm9vYmFy", 8, dec, 6), 6);
}

/* Base64 of a message with NULs. */
static char *
enc(const char *msg, size_t len)
{
	char *e = malloc(B64_ENCODED_SIZE(len));

	assert_non_null(e);
	b64_encode((const uint8_t *)msg, len, e);
	return e;
}

static enum pop3_sasl_result
decode_msg(const char *msg, size_t len, struct pop3_sasl_plain *r)
{
	char *e = enc(msg, len);
	enum pop3_sasl_result res = pop3_sasl_plain_decode((const uint8_t *)e, strlen(e), r);

	free(e);
	return res;
}

static void
assert_wiped(const struct pop3_sasl_plain *r)
{
	static const struct pop3_sasl_plain zero;

	assert_memory_equal(r, &zero, sizeof(zero));
}

static void
test_plain_valid(void **state)
{
	struct pop3_sasl_plain *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	assert_int_equal(decode_msg(W("\0alice@example.net\0pass word"), r), POP3_SASL_OK);
	assert_string_equal(r->authzid, "");
	assert_string_equal(r->authcid, "alice@example.net");
	assert_string_equal(r->passwd, "pass word");
	assert_int_equal(decode_msg(W("admin\0bob\0secret"), r), POP3_SASL_OK);
	assert_string_equal(r->authzid, "admin");
	assert_string_equal(r->authcid, "bob");
	assert_string_equal(r->passwd, "secret");
	/* The RFC 4616 §4 example, as a client sends it. */
	assert_int_equal(pop3_sasl_plain_decode((const uint8_t *)"AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
	    28, r), POP3_SASL_OK);
	assert_string_equal(r->authcid, "tim");
	assert_string_equal(r->passwd, "tanstaaftanstaaf");
	/* Bytes other than NUL are the gateway's business (UTF-8, even CR): kept as sent. */
	assert_int_equal(decode_msg(W("\0j\xc3\xbcrgen\0a\rb"), r), POP3_SASL_OK);
	assert_string_equal(r->authcid, "j\xc3\xbcrgen");
	assert_string_equal(r->passwd, "a\rb");
	free(r);
}

static void
test_plain_refused(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
	} t[] = {
		{ W("alicepass") },		/* no NUL */
		{ W("alice\0pass") },		/* one NUL */
		{ W("\0alice\0pa\0ss") },	/* a third NUL */
		{ W("\0alice\0pass\0") },
		{ W("\0\0pass") },		/* empty authcid */
		{ W("admin\0\0pass") },
		{ W("\0alice\0") },		/* empty passwd */
		{ W("\0\0") },
		{ W("\0") },
		{ W("") },
	};
	struct pop3_sasl_plain *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(r, 0xa5, sizeof(*r));
		if (decode_msg(t[i].msg, t[i].len, r) != POP3_SASL_BAD_MESSAGE)
			fail_msg("case %zu not refused as a bad message", i);
		assert_wiped(r);
	}
	free(r);
}

static void
test_plain_bad_base64(void **state)
{
	static const char *const bad[] = {
		"AGFsaWNlAHBhc3M",		/* padding missing */
		"AGFsaWNlAHBhc3M=\r\n",		/* line end left on */
		" AGFsaWNlAHBhc3M=",
		"AGFsaWNl AHBhc3M=",
		"AGFsaWNl\nAHBhc3M=",
		"AGFsaWNlAHBhc3M!",
		"*",				/* a cancel is the gateway's to see first */
		"==",
	};
	struct pop3_sasl_plain *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	/* The sound version of the first one, to be sure the shapes above are the problem. */
	assert_int_equal(pop3_sasl_plain_decode((const uint8_t *)"AGFsaWNlAHBhc3M=", 16, r),
	    POP3_SASL_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(r, 0xa5, sizeof(*r));
		if (pop3_sasl_plain_decode((const uint8_t *)bad[i], strlen(bad[i]), r) !=
		    POP3_SASL_BAD_BASE64)
			fail_msg("\"%s\" not refused as bad base64", bad[i]);
		assert_wiped(r);
	}
	/* RFC 5034 §4: "=" is a valid empty response, but PLAIN cannot be empty. */
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(pop3_sasl_plain_decode((const uint8_t *)"=", 1, r),
	    POP3_SASL_BAD_MESSAGE);
	assert_wiped(r);
	assert_int_equal(pop3_sasl_plain_decode((const uint8_t *)"", 0, r),
	    POP3_SASL_BAD_MESSAGE);
	free(r);
}

static void
test_plain_field_limits(void **state)
{
	const size_t fmax = POP3_SASL_FIELD_MAX - 1;	/* the NUL takes the last byte */
	struct pop3_sasl_plain *r = malloc(sizeof(*r));
	char *msg = malloc(4 * POP3_SASL_FIELD_MAX);
	size_t n;

	(void)state;
	assert_non_null(r);
	assert_non_null(msg);
	/* Three fields at their maximum: accepted. */
	memset(msg, 'z', fmax);
	msg[fmax] = '\0';
	memset(msg + fmax + 1, 'u', fmax);
	msg[2 * fmax + 1] = '\0';
	memset(msg + 2 * fmax + 2, 'p', fmax);
	n = 3 * fmax + 2;
	assert_int_equal(decode_msg(msg, n, r), POP3_SASL_OK);
	assert_int_equal(strlen(r->authzid), fmax);
	assert_int_equal(strlen(r->authcid), fmax);
	assert_int_equal(strlen(r->passwd), fmax);
	/* One byte more in the password: refused, wiped. */
	memset(msg + 2 * fmax + 2, 'p', fmax + 1);
	assert_int_equal(decode_msg(msg, n + 1, r), POP3_SASL_BAD_MESSAGE);
	assert_wiped(r);
	/* An over-long user name. */
	msg[0] = '\0';
	memset(msg + 1, 'u', fmax + 1);
	msg[fmax + 2] = '\0';
	memcpy(msg + fmax + 3, "pw", 2);
	assert_int_equal(decode_msg(msg, fmax + 5, r), POP3_SASL_BAD_MESSAGE);
	assert_wiped(r);
	/* Far too long to decode at all, valid base64 or not. */
	memset(msg, 'A', 4 * POP3_SASL_FIELD_MAX);
	assert_int_equal(pop3_sasl_plain_decode((const uint8_t *)msg, 4 * POP3_SASL_FIELD_MAX, r),
	    POP3_SASL_BAD_MESSAGE);
	assert_wiped(r);
	free(msg);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_plain_valid),
		cmocka_unit_test(test_plain_refused),
		cmocka_unit_test(test_plain_bad_base64),
		cmocka_unit_test(test_plain_field_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
