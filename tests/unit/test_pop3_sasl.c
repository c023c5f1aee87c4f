/* tests/unit/test_pop3_sasl.c: strict base64 (common/b64.c) and SASL decoding
 * (pop3/pop3_sasl.c over RFC 5034): PLAIN (RFC 4616) with and without authzid, every
 * malformed shape, field limits, "="; XOAUTH2 and OAUTHBEARER (RFC 7628): user name and
 * token out, GS2 header and saslname rules, refused shapes; the result wiped on every
 * refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/b64.h"
#include "../../pop3/pop3_sasl.h"
#include "unit.h"

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


/* --- XOAUTH2 / OAUTHBEARER --- */

static enum pop3_sasl_result
bearer_msg(enum pop3_sasl_mech mech, const char *msg, size_t len, struct pop3_sasl_bearer *r)
{
	char *e = enc(msg, len);
	enum pop3_sasl_result res = pop3_sasl_bearer_decode(mech, (const uint8_t *)e, strlen(e), r);

	free(e);
	return res;
}

static void
assert_bearer_wiped(const struct pop3_sasl_bearer *r)
{
	static const struct pop3_sasl_bearer zero;

	assert_memory_equal(r, &zero, sizeof(zero));
}

static void
assert_token(const struct pop3_sasl_bearer *r, const char *token)
{
	assert_int_equal(r->token_len, strlen(token));
	assert_memory_equal(r->token, token, r->token_len);
}

static void
test_mech_names(void **state)
{
	enum pop3_sasl_mech m;

	(void)state;
	assert_true(pop3_sasl_mech_parse((const uint8_t *)"plain", 5, &m));
	assert_int_equal(m, POP3_SASL_PLAIN);
	assert_true(pop3_sasl_mech_parse((const uint8_t *)"XOAuth2", 7, &m));
	assert_int_equal(m, POP3_SASL_XOAUTH2);
	assert_true(pop3_sasl_mech_parse((const uint8_t *)"OAUTHBEARER", 11, &m));
	assert_int_equal(m, POP3_SASL_OAUTHBEARER);
	assert_false(pop3_sasl_mech_parse((const uint8_t *)"LOGIN", 5, &m));
	assert_false(pop3_sasl_mech_parse((const uint8_t *)"XOAUTH", 6, &m));
	assert_false(pop3_sasl_mech_parse((const uint8_t *)"XOAUTH2X", 8, &m));
	assert_false(pop3_sasl_mech_parse((const uint8_t *)"", 0, &m));
	assert_string_equal(pop3_sasl_mech_name(POP3_SASL_OAUTHBEARER), "OAUTHBEARER");
}

static void
test_xoauth2_valid(void **state)
{
	struct pop3_sasl_bearer *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	assert_int_equal(bearer_msg(POP3_SASL_XOAUTH2,
	    W("user=alice@example.net\x01" "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"),
	    r), POP3_SASL_OK);
	assert_string_equal(r->user, "alice@example.net");
	assert_token(r, "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
	/* Google's own example, as a client sends it. */
	static const char google[] = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5"
	    "LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==";
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)google,
	    strlen(google), r), POP3_SASL_OK);
	assert_string_equal(r->user, "someuser@example.com");
	assert_token(r, "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
	/* The scheme in any case, pairs in any order, unknown keys skipped, '=' in a value. */
	assert_int_equal(bearer_msg(POP3_SASL_XOAUTH2,
	    W("auth=BEARER t/o+k=\x01" "host=x\x01" "user=a=b\x01\x01"), r), POP3_SASL_OK);
	assert_string_equal(r->user, "a=b");
	assert_token(r, "t/o+k=");
	/* UTF-8 user names are the upstream's business. */
	assert_int_equal(bearer_msg(POP3_SASL_XOAUTH2,
	    W("user=j\xc3\xbcrgen\x01" "auth=Bearer t\x01\x01"), r), POP3_SASL_OK);
	assert_string_equal(r->user, "j\xc3\xbcrgen");
	free(r);
}

static void
test_oauthbearer_valid(void **state)
{
	struct pop3_sasl_bearer *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	/* RFC 7628 §4.1's example. */
	assert_int_equal(bearer_msg(POP3_SASL_OAUTHBEARER,
	    W("n,a=user@example.com,\x01" "host=server.example.com\x01" "port=143\x01"
	    "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"), r), POP3_SASL_OK);
	assert_string_equal(r->user, "user@example.com");
	assert_token(r, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
	/* The same as base64 on the wire (RFC 7628 §4.1). */
	static const char wire[] = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_OAUTHBEARER, (const uint8_t *)wire,
	    strlen(wire), r), POP3_SASL_OK);
	assert_string_equal(r->user, "user@example.com");
	/* "y" flag; saslname escapes =2C and =3D. */
	assert_int_equal(bearer_msg(POP3_SASL_OAUTHBEARER,
	    W("y,a=a=2Cb=3Dc,\x01" "auth=Bearer t\x01\x01"), r), POP3_SASL_OK);
	assert_string_equal(r->user, "a,b=c");
	assert_token(r, "t");
	/* No a=: valid SASL, but no name to log in as. */
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(bearer_msg(POP3_SASL_OAUTHBEARER, W("n,,\x01" "auth=Bearer t\x01\x01"), r),
	    POP3_SASL_NO_USER);
	assert_bearer_wiped(r);
	free(r);
}

static void
test_bearer_refused(void **state)
{
	static const struct {
		enum pop3_sasl_mech mech;
		const char *msg;
		size_t len;
	} t[] = {
		{ POP3_SASL_XOAUTH2, W("user=alice\x01" "auth=Bearer t\x01") },	/* no final ^A */
		{ POP3_SASL_XOAUTH2, W("user=alice\x01" "auth=Bearer t") },
		{ POP3_SASL_XOAUTH2, W("user=alice\x01" "auth=Bearer t\x01\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=alice\x01" "auth=Bearer t\x01\x01x") },
		{ POP3_SASL_XOAUTH2, W("auth=Bearer t\x01\x01") },		/* no user */
		{ POP3_SASL_XOAUTH2, W("user=alice\x01\x01") },			/* no auth */
		{ POP3_SASL_XOAUTH2, W("user=\x01" "auth=Bearer t\x01\x01") },	/* empty user */
		{ POP3_SASL_XOAUTH2, W("user=al\rice\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=al\nice\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=al\0ice\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01user=b\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Bearer t\x01" "auth=Bearer u\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Bearer \x01\x01") },	/* empty token */
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Bearer\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Basic dDp0\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Bearer t u\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "auth=Bearer t\r\n\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "=x\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("user=a\x01" "junk\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("\x01\x01") },
		{ POP3_SASL_XOAUTH2, W("") },
		{ POP3_SASL_OAUTHBEARER, W("p=tls-unique,a=a,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a,auth=Bearer t\x01\x01") },	/* no kvsep */
		{ POP3_SASL_OAUTHBEARER, W("x,a=a,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,b=a,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a=2,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a=2c,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a=41,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a\r\n,\x01" "auth=Bearer t\x01\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,a=a,\x01" "host=h\x01\x01") },		/* no auth */
		{ POP3_SASL_OAUTHBEARER, W("n,a=a,\x01" "auth=Bearer t\x01") },
		{ POP3_SASL_OAUTHBEARER, W("n,") },
		{ POP3_SASL_OAUTHBEARER, W("n") },
		/* user= is XOAUTH2's; in OAUTHBEARER it is skipped, and a= is missing. */
		{ POP3_SASL_OAUTHBEARER, W("user=a\x01" "auth=Bearer t\x01\x01") },
	};
	struct pop3_sasl_bearer *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(r, 0xa5, sizeof(*r));
		if (bearer_msg(t[i].mech, t[i].msg, t[i].len, r) != POP3_SASL_BAD_MESSAGE)
			fail_msg("case %zu not refused as a bad message", i);
		assert_bearer_wiped(r);
	}
	/* Not base64, "=", empty, PLAIN asked of the bearer decoder. */
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)"dXNlcj1h!", 9,
	    r), POP3_SASL_BAD_BASE64);
	assert_bearer_wiped(r);
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)"*", 1, r),
	    POP3_SASL_BAD_BASE64);
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_OAUTHBEARER, (const uint8_t *)"=", 1, r),
	    POP3_SASL_BAD_MESSAGE);
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)"", 0, r),
	    POP3_SASL_BAD_MESSAGE);
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_PLAIN, (const uint8_t *)"AGEAYg==", 8, r),
	    POP3_SASL_BAD_MESSAGE);
	assert_bearer_wiped(r);
	free(r);
}

static void
test_bearer_limits(void **state)
{
	const size_t fmax = POP3_SASL_FIELD_MAX - 1;
	struct pop3_sasl_bearer *r = malloc(sizeof(*r));
	char *msg = malloc(POP3_SASL_LINE_MAX + 4), *e;
	size_t n, tok;

	(void)state;
	assert_non_null(r);
	assert_non_null(msg);
	/* The longest user name: accepted; one more byte: refused. */
	for (size_t extra = 0; extra <= 1; extra++) {
		memcpy(msg, "user=", 5);
		memset(msg + 5, 'u', fmax + extra);
		n = 5 + fmax + extra;
		memcpy(msg + n, "\x01" "auth=Bearer t\x01\x01", 16);
		n += 16;
		assert_int_equal(bearer_msg(POP3_SASL_XOAUTH2, msg, n, r),
		    extra ? POP3_SASL_BAD_MESSAGE : POP3_SASL_OK);
		if (!extra)
			assert_int_equal(strlen(r->user), fmax);
	}
	/* The longest token a SASL line can carry: the whole line is base64 of the message. */
	tok = B64_DECODED_MAX(POP3_SASL_LINE_MAX - 2) - strlen("user=a\x01" "auth=Bearer \x01\x01");
	memcpy(msg, "user=a\x01" "auth=Bearer ", 19);
	memset(msg + 19, 'T', tok);
	memcpy(msg + 19 + tok, "\x01\x01", 2);
	n = 19 + tok + 2;
	e = enc(msg, n);
	assert_true(strlen(e) <= POP3_SASL_LINE_MAX - 2);
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)e, strlen(e), r),
	    POP3_SASL_OK);
	assert_int_equal(r->token_len, tok);
	free(e);
	/* Longer than any line: refused before decoding, base64 or not. */
	memset(msg, 'A', POP3_SASL_LINE_MAX + 4);
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(pop3_sasl_bearer_decode(POP3_SASL_XOAUTH2, (const uint8_t *)msg,
	    POP3_SASL_LINE_MAX + 4, r), POP3_SASL_BAD_MESSAGE);
	assert_bearer_wiped(r);
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
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_xoauth2_valid),
		cmocka_unit_test(test_oauthbearer_valid),
		cmocka_unit_test(test_bearer_refused),
		cmocka_unit_test(test_bearer_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
