/* pop3/pop3_sasl_encode.c: a bearer response for another user name; see pop3_sasl_encode.h. */
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "pop3_sasl_encode.h"

char *
pop3_sasl_bearer_encode(enum pop3_sasl_mech mech, const char *user, const uint8_t *token,
    size_t token_len, size_t *len_r)
{
	size_t ulen = strlen(user), max, n = 0;
	uint8_t *raw;
	char *out;

	if (mech == POP3_SASL_PLAIN)
		return NULL;
	/* every user byte may become 3 ("=2C"), plus the fixed parts */
	max = 3 * ulen + token_len + 64;
	if ((raw = malloc(max)) == NULL)
		return NULL;
#define PUT(s, l) (memcpy(raw + n, (s), (l)), n += (l))
	if (mech == POP3_SASL_XOAUTH2) {
		PUT("user=", 5);
		PUT(user, ulen);
	} else {
		PUT("n,a=", 4);
		for (size_t i = 0; i < ulen; i++) {
			if (user[i] == ',')
				PUT("=2C", 3);
			else if (user[i] == '=')
				PUT("=3D", 3);
			else
				raw[n++] = (uint8_t)user[i];
		}
		PUT(",", 1);
	}
	PUT("\001auth=Bearer ", 13);
	PUT(token, token_len);
	PUT("\001\001", 2);
#undef PUT
	if ((out = malloc(B64_ENCODED_SIZE(n))) != NULL)
		*len_r = b64_encode(raw, n, out);
	explicit_bzero(raw, max);
	free(raw);
	return out;
}
