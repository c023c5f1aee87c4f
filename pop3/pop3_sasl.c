/* pop3/pop3_sasl.c: SASL PLAIN (RFC 4616) for POP3 AUTH (RFC 5034). Pure; every buffer
 * that held a password is wiped on every path. */
#include <string.h>

#include "../common/b64.h"
#include "pop3_sasl.h"

#define SASL_PLAIN_MAX (3 * POP3_SASL_FIELD_MAX)

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
	const uint8_t *nul1, *nul2;
	ssize_t n;
	enum pop3_sasl_result res = POP3_SASL_BAD_MESSAGE;

	memset(r, 0, sizeof(*r));
	if (B64_DECODED_MAX(len) > sizeof(msg))
		return POP3_SASL_BAD_MESSAGE;
	/* RFC 5034 §4: "=" is an empty initial response; PLAIN cannot be empty. */
	if ((n = b64_decode(b64, len, msg, sizeof(msg))) < 0)
		return len == 1 && b64[0] == '=' ? POP3_SASL_BAD_MESSAGE : POP3_SASL_BAD_BASE64;
	/* authzid NUL authcid NUL passwd; neither of the last two empty, no third NUL. */
	if ((nul1 = memchr(msg, '\0', (size_t)n)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', (size_t)(msg + n - nul1 - 1))) == NULL ||
	    memchr(nul2 + 1, '\0', (size_t)(msg + n - nul2 - 1)) != NULL ||
	    nul2 == nul1 + 1 || nul2 + 1 == msg + n)
		goto out;
	if (copy_field(r->authzid, msg, (size_t)(nul1 - msg)) &&
	    copy_field(r->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1)) &&
	    copy_field(r->passwd, nul2 + 1, (size_t)(msg + n - nul2 - 1)))
		res = POP3_SASL_OK;
out:
	explicit_bzero(msg, sizeof(msg));
	if (res != POP3_SASL_OK)
		explicit_bzero(r, sizeof(*r));
	return res;
}
