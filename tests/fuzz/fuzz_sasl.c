/* tests/fuzz/fuzz_sasl.c: SASL decoding (pop3/pop3_sasl.c: PLAIN, XOAUTH2, OAUTHBEARER)
 * and strict base64 (common/b64.c) under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut in two; the rest is what a client sends during
 * AUTH: lines, found with pop3_parse_raw_line() as the gateway does, each decoded as a
 * PLAIN, an XOAUTH2 and an OAUTHBEARER response. Checks: the same lines whatever the cut;
 * PLAIN on OK: the three fields are NUL-terminated, authcid and passwd non-empty, and they
 * are exactly what b64_decode gives for the line; bearer on OK: the user is non-empty,
 * NUL-terminated, free of CR/LF/^A, the token non-empty printable ASCII found verbatim
 * after "auth=Bearer " (any case) in the decoded message, and for XOAUTH2 the user too
 * after "user="; on any refusal the result is all zero. The raw bytes also go through
 * b64_decode (a valid result re-encodes to something that decodes the same) and through
 * b64_encode (which always decodes back). Aborts on any violation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "common/b64.h"
#include "pop3/pop3_parse.h"
#include "pop3/pop3_sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static void
check_plain(const uint8_t *line, size_t len)
{
	static struct pop3_sasl_plain r;	/* 3 KB: not on the fuzzer's stack */
	static uint8_t dec[B64_DECODED_MAX(POP3_SASL_LINE_MAX)];
	enum pop3_sasl_result res = pop3_sasl_plain_decode(line, len, &r);
	size_t zl, cl, pl;
	ssize_t n;

	if (res != POP3_SASL_OK) {
		if (res != POP3_SASL_BAD_BASE64 && res != POP3_SASL_BAD_MESSAGE)
			abort();
		if (!all_zero(&r, sizeof(r)))
			abort();		/* nothing of a refused password is left */
		return;
	}
	zl = strnlen(r.authzid, sizeof(r.authzid));
	cl = strnlen(r.authcid, sizeof(r.authcid));
	pl = strnlen(r.passwd, sizeof(r.passwd));
	if (zl == sizeof(r.authzid) || cl == sizeof(r.authcid) || pl == sizeof(r.passwd) ||
	    cl == 0 || pl == 0)
		abort();
	n = b64_decode(line, len, dec, sizeof(dec));
	if (n < 0 || (size_t)n != zl + cl + pl + 2 || memcmp(dec, r.authzid, zl) != 0 ||
	    dec[zl] != 0 || memcmp(dec + zl + 1, r.authcid, cl) != 0 || dec[zl + 1 + cl] != 0 ||
	    memcmp(dec + zl + cl + 2, r.passwd, pl) != 0)
		abort();
	explicit_bzero(&r, sizeof(r));
}

/* Finds needle in hay, case-insensitively for the first `ci` bytes of needle. */
static bool
contains(const uint8_t *hay, size_t hlen, const uint8_t *pre, size_t plen, size_t ci,
    const uint8_t *rest, size_t rlen)
{
	for (size_t i = 0; i + plen + rlen <= hlen; i++) {
		size_t k;

		for (k = 0; k < plen; k++) {
			uint8_t a = hay[i + k], b = pre[k];

			if (k < ci && a >= 'A' && a <= 'Z')
				a = (uint8_t)(a - 'A' + 'a');
			if (k < ci && b >= 'A' && b <= 'Z')
				b = (uint8_t)(b - 'A' + 'a');
			if (a != b)
				break;
		}
		if (k == plen && memcmp(hay + i + plen, rest, rlen) == 0)
			return true;
	}
	return false;
}

static void
check_bearer(enum pop3_sasl_mech mech, const uint8_t *line, size_t len)
{
	static struct pop3_sasl_bearer r;	/* 7 KB: not on the fuzzer's stack */
	static uint8_t dec[B64_DECODED_MAX(POP3_SASL_LINE_MAX)];
	enum pop3_sasl_result res = pop3_sasl_bearer_decode(mech, line, len, &r);
	size_t ul;
	ssize_t n;

	if (res != POP3_SASL_OK) {
		if (res != POP3_SASL_BAD_BASE64 && res != POP3_SASL_BAD_MESSAGE &&
		    !(res == POP3_SASL_NO_USER && mech == POP3_SASL_OAUTHBEARER))
			abort();
		if (!all_zero(&r, sizeof(r)))
			abort();		/* nothing of a refused token is left */
		return;
	}
	ul = strnlen(r.user, sizeof(r.user));
	if (ul == 0 || ul == sizeof(r.user) || memchr(r.user, '\r', ul) != NULL ||
	    memchr(r.user, '\n', ul) != NULL || memchr(r.user, 0x01, ul) != NULL)
		abort();
	if (r.token_len == 0 || r.token_len > sizeof(r.token))
		abort();
	for (size_t i = 0; i < r.token_len; i++)
		if (r.token[i] <= 0x20 || r.token[i] >= 0x7f)
			abort();
	n = b64_decode(line, len, dec, sizeof(dec));
	if (n < 0 || !contains(dec, (size_t)n, (const uint8_t *)"auth=bearer ", 12, 12, r.token,
	    r.token_len))
		abort();
	if (mech == POP3_SASL_XOAUTH2 &&
	    !contains(dec, (size_t)n, (const uint8_t *)"user=", 5, 0, (const uint8_t *)r.user, ul))
		abort();
	explicit_bzero(&r, sizeof(r));
}

/* The lines of the stream, each decoded; their boundaries recorded to compare runs. */
static void
run(const uint8_t *data, size_t size, size_t cut, struct buf *rec)
{
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	size_t pieces[2][2] = { { 0, cut }, { cut, size } };

	buf_set_max(&in, size + 16);
	for (int k = 0; k < 2; k++) {
		buf_append(&in, data + pieces[k][0], pieces[k][1] - pieces[k][0]);
		for (;;) {
			struct slice line;
			size_t consumed = 0;
			enum pop3_parse_result r;
			uint8_t tag;

			r = pop3_parse_raw_line(&p, &in, POP3_SASL_LINE_MAX, &line, &consumed);
			tag = (uint8_t)r;
			if (r != POP3_PARSE_MORE)	/* how often MORE comes depends on the cut */
				buf_append(rec, &tag, 1);
			if (r == POP3_PARSE_COMMAND) {
				check_plain(line.p, line.len);
				check_bearer(POP3_SASL_XOAUTH2, line.p, line.len);
				check_bearer(POP3_SASL_OAUTHBEARER, line.p, line.len);
				buf_append(rec, &line.len, sizeof(line.len));
			}
			buf_consume(&in, consumed);
			if (r == POP3_PARSE_MORE)
				break;
		}
	}
	buf_free(&in);
}

static void
check_b64(const uint8_t *data, size_t size)
{
	uint8_t *dec = malloc(B64_DECODED_MAX(size) + 1);
	char *enc = malloc(B64_ENCODED_SIZE(size));
	uint8_t *dec2 = malloc(B64_DECODED_MAX(B64_ENCODED_SIZE(size)) + 1);
	ssize_t n, n2;
	size_t elen;

	if (dec == NULL || enc == NULL || dec2 == NULL)
		goto out;
	/* Any bytes encode, and decode back to themselves. */
	elen = b64_encode(data, size, enc);
	if (elen != B64_ENCODED_SIZE(size) - 1 || enc[elen] != '\0')
		abort();
	n2 = b64_decode((const uint8_t *)enc, elen, dec2, B64_DECODED_MAX(elen));
	if (n2 != (ssize_t)size || memcmp(dec2, data, size) != 0)
		abort();
	/* Whatever decodes re-encodes to something of the same length that decodes the same
	 * (not always the same text: unused bits of the last character may differ). */
	n = b64_decode(data, size, dec, B64_DECODED_MAX(size));
	if (n >= 0) {
		if (size % 4 != 0 || (size_t)n > B64_DECODED_MAX(size) ||
		    (size_t)n + 2 < B64_DECODED_MAX(size))
			abort();
		elen = b64_encode(dec, (size_t)n, enc);
		if (elen != size)
			abort();
		n2 = b64_decode((const uint8_t *)enc, elen, dec2, B64_DECODED_MAX(elen));
		if (n2 != n || memcmp(dec2, dec, (size_t)n) != 0)
			abort();
	}
out:
	free(dec);
	free(enc);
	free(dec2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	fuzz_whole_and_cut(data, size, 16, run);
	check_b64(data + 1, size - 1);
	return 0;
}
