/* pop3/pop3_sasl.c: SASL PLAIN (RFC 4616) for POP3 AUTH (RFC 5034), from base64 to three
 * NUL-terminated fields. Not for: deciding whether the authzid is acceptable or the
 * credentials usable upstream (the gateway does). Pure: no I/O, no allocation; every
 * buffer that held a password is wiped on every path, the caller's *r included on error. */
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
