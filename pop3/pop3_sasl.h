/* pop3/pop3_sasl.h: SASL PLAIN (RFC 4616) decoding for POP3 AUTH (RFC 5034). Pure.
 * Base64 is strict (common/b64.h): no whitespace, padding required. Each field holds at
 * most POP3_SASL_FIELD_MAX - 1 bytes; a longer one is BAD_MESSAGE, as is "=" (RFC 5034's
 * empty response: PLAIN is never empty). */
#ifndef POPGATE_POP3_SASL_H
#define POPGATE_POP3_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_SASL_FIELD_MAX 1024

struct pop3_sasl_plain {
	char authzid[POP3_SASL_FIELD_MAX];
	char authcid[POP3_SASL_FIELD_MAX];
	char passwd[POP3_SASL_FIELD_MAX];
};

enum pop3_sasl_result {
	POP3_SASL_OK,
	POP3_SASL_BAD_BASE64,	/* not valid base64 */
	POP3_SASL_BAD_MESSAGE,	/* not authzid NUL authcid NUL passwd, empty authcid/passwd, over-long field */
};

/* Decodes a base64 PLAIN initial response. On anything but OK, *r is wiped. */
enum pop3_sasl_result
pop3_sasl_plain_decode(const uint8_t *b64, size_t len, struct pop3_sasl_plain *r);

#endif
