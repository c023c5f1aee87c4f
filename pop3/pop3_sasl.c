/* pop3/pop3_sasl.c: SASL messages of POP3 AUTH (RFC 5034), from base64 to fields: PLAIN
 * (RFC 4616) to three NUL-terminated fields; XOAUTH2 and OAUTHBEARER (RFC 7628) to the user
 * name and the bearer token. Not for: deciding whether the authzid is acceptable or the
 * credentials usable upstream (the gateway and the upstream do), or re-encoding anything
 * (a bearer response goes upstream as the client sent it). Pure: no I/O, no allocation;
 * every buffer that held a password or a token is wiped on every path, the caller's *r
 * included on error. */
#include <strings.h>
#include <string.h>

#include "../common/b64.h"
#include "pop3_sasl.h"

/* The largest message worth decoding: three full fields and their two NULs fit. */
#define SASL_PLAIN_MAX (3 * POP3_SASL_FIELD_MAX)

/* Copies a field NUL-terminated; false when it does not fit (field max minus the NUL). */
static bool
copy_field(char *dst, const uint8_t *src, size_t len)
{
	if (len >= POP3_SASL_FIELD_MAX)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

enum pop3_sasl_result
pop3_sasl_plain_decode(const uint8_t *b64, size_t len, struct pop3_sasl_plain *r)
{
	uint8_t msg[SASL_PLAIN_MAX];
	const uint8_t *end, *nul1, *nul2;
	enum pop3_sasl_result res = POP3_SASL_BAD_MESSAGE;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	/* Too long to hold fields that fit, whether or not it is base64. */
	if (B64_DECODED_MAX(len) > sizeof(msg))
		return POP3_SASL_BAD_MESSAGE;
	if ((n = b64_decode(b64, len, msg, sizeof(msg))) < 0) {
		/* RFC 5034 §4: "=" is an empty response, valid SASL, but PLAIN cannot be empty. */
		res = len == 1 && b64[0] == '=' ? POP3_SASL_BAD_MESSAGE : POP3_SASL_BAD_BASE64;
		goto out;
	}
	end = msg + n;
	/* RFC 4616 §2: [authzid] NUL authcid NUL passwd; authcid and passwd are not empty and
	 * nothing holds a NUL (UTF8SAFE excludes it). */
	if ((nul1 = memchr(msg, '\0', (size_t)(end - msg))) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))) == NULL ||
	    memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL ||
	    nul2 == nul1 + 1 || nul2 + 1 == end)
		goto out;
	if (copy_field(r->authzid, msg, (size_t)(nul1 - msg)) &&
	    copy_field(r->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1)) &&
	    copy_field(r->passwd, nul2 + 1, (size_t)(end - nul2 - 1)))
		res = POP3_SASL_OK;
out:
	explicit_bzero(msg, sizeof(msg));	/* on failure too: b64_decode may have written */
	if (res != POP3_SASL_OK)
		explicit_bzero(r, sizeof(*r));
	return res;
}

static const char *const mech_names[] = {
	[POP3_SASL_PLAIN] = "PLAIN",
	[POP3_SASL_XOAUTH2] = "XOAUTH2",
	[POP3_SASL_OAUTHBEARER] = "OAUTHBEARER",
};

bool
pop3_sasl_mech_parse(const uint8_t *name, size_t len, enum pop3_sasl_mech *mech_r)
{
	for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++) {
		if (strlen(mech_names[i]) == len &&
		    strncasecmp((const char *)name, mech_names[i], len) == 0) {
			*mech_r = (enum pop3_sasl_mech)i;
			return true;
		}
	}
	return false;
}

const char *
pop3_sasl_mech_name(enum pop3_sasl_mech mech)
{
	return (size_t)mech < sizeof(mech_names) / sizeof(mech_names[0]) ? mech_names[mech] : "?";
}

#define KVSEP 0x01	/* RFC 7628 §3.1 kvsep; XOAUTH2 uses the same separator */

/* A user name NUL-terminated into dst: not empty, fits, no CR, LF, NUL or ^A (nothing that
 * could split a log line or an IMAP string). saslname: RFC 5801's encoding, where "=2C"
 * is "," and "=3D" is "=" and any other "=" is invalid. */
static bool
copy_name(char *dst, const uint8_t *src, size_t len, bool saslname)
{
	size_t o = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = src[i];

		if (c == '\r' || c == '\n' || c == '\0' || c == KVSEP)
			return false;
		if (saslname && c == '=') {
			if (len - i < 3)
				return false;
			if (src[i + 1] == '2' && src[i + 2] == 'C')
				c = ',';
			else if (src[i + 1] == '3' && src[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o >= POP3_SASL_FIELD_MAX - 1)
			return false;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return true;
}

/* "Bearer TOKEN" (the scheme in any case, RFC 7235 §2.1): the token into r. */
static bool
copy_bearer(struct pop3_sasl_bearer *r, const uint8_t *v, size_t len)
{
	static const char scheme[] = "Bearer ";
	const size_t slen = sizeof(scheme) - 1;

	if (len <= slen || strncasecmp((const char *)v, scheme, slen) != 0 ||
	    len - slen > sizeof(r->token))
		return false;
	for (size_t i = slen; i < len; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7f)	/* RFC 6750 b64token is a subset */
			return false;
	memcpy(r->token, v + slen, len - slen);
	r->token_len = len - slen;
	return true;
}

static bool
key_is(const uint8_t *k, size_t klen, const char *name)
{
	return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

/* key=value pairs, each ended by ^A, the list ended by one more ^A at the very end. */
static bool
read_pairs(const uint8_t *p, const uint8_t *end, bool want_user, struct pop3_sasl_bearer *r)
{
	bool have_user = false, have_auth = false;

	for (;;) {
		const uint8_t *sep = memchr(p, KVSEP, (size_t)(end - p)), *eq;

		if (sep == NULL)
			return false;
		if (sep == p)		/* the empty pair: the end of the message */
			return sep + 1 == end && have_auth && have_user == want_user;
		if ((eq = memchr(p, '=', (size_t)(sep - p))) == NULL || eq == p)
			return false;
		if (key_is(p, (size_t)(eq - p), "auth")) {
			if (have_auth || !copy_bearer(r, eq + 1, (size_t)(sep - eq - 1)))
				return false;
			have_auth = true;
		} else if (want_user && key_is(p, (size_t)(eq - p), "user")) {
			if (have_user || !copy_name(r->user, eq + 1, (size_t)(sep - eq - 1), false))
				return false;
			have_user = true;
		}
		/* else: host=, port=, ... (RFC 7628 §3.1): the upstream's business */
		p = sep + 1;
	}
}

/* RFC 7628 §3.1: gs2-header = gs2-cbind-flag "," [ "a=" saslname ] "," then kvsep.
 * *user_r: whether "a=" was there (copied into r->user). Returns the byte after the
 * header's ^A, or NULL if the header is malformed. */
static const uint8_t *
read_gs2_header(const uint8_t *p, const uint8_t *end, struct pop3_sasl_bearer *r, bool *user_r)
{
	const uint8_t *comma;

	*user_r = false;
	/* "n" or "y"; "p=" asks for channel binding, which OAUTHBEARER does not have. */
	if (end - p < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return NULL;
	p += 2;
	if ((comma = memchr(p, ',', (size_t)(end - p))) == NULL)
		return NULL;
	if (comma != p) {
		if (comma - p < 3 || p[0] != 'a' || p[1] != '=' ||
		    !copy_name(r->user, p + 2, (size_t)(comma - p - 2), true))
			return NULL;
		*user_r = true;
	}
	p = comma + 1;
	if (p == end || *p != KVSEP)
		return NULL;
	return p + 1;
}

enum pop3_sasl_result
pop3_sasl_bearer_decode(enum pop3_sasl_mech mech, const uint8_t *b64, size_t len,
    struct pop3_sasl_bearer *r)
{
	uint8_t msg[POP3_SASL_TOKEN_MAX];
	const uint8_t *p, *end;
	enum pop3_sasl_result res = POP3_SASL_BAD_MESSAGE;
	bool have_user = false;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (mech == POP3_SASL_PLAIN || B64_DECODED_MAX(len) > sizeof(msg))
		return POP3_SASL_BAD_MESSAGE;
	if ((n = b64_decode(b64, len, msg, sizeof(msg))) < 0) {
		res = len == 1 && b64[0] == '=' ? POP3_SASL_BAD_MESSAGE : POP3_SASL_BAD_BASE64;
		goto out;
	}
	p = msg;
	end = msg + n;
	if (mech == POP3_SASL_XOAUTH2) {
		if (read_pairs(p, end, true, r))
			res = POP3_SASL_OK;
		goto out;
	}
	if ((p = read_gs2_header(p, end, r, &have_user)) == NULL || !read_pairs(p, end, false, r))
		goto out;
	res = have_user ? POP3_SASL_OK : POP3_SASL_NO_USER;
out:
	explicit_bzero(msg, sizeof(msg));
	if (res != POP3_SASL_OK)
		explicit_bzero(r, sizeof(*r));
	return res;
}
