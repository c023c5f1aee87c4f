/* pop3/pop3_sasl.h: SASL messages of POP3 AUTH (RFC 5034), decoded. Pure.
 *   PLAIN (RFC 4616): authzid, authcid, password.
 *   XOAUTH2 (Google's, also Microsoft's) and OAUTHBEARER (RFC 7628): a bearer token passed
 *   through to the upstream as the client sent it; decoded only for the user name (logs,
 *   [IN-USE], the UIDL cache) and the token (the refused-credential memory's hash).
 * Base64 is strict (common/b64.h): no whitespace, padding required. Each name or password
 * holds at most POP3_SASL_FIELD_MAX - 1 bytes; a longer one is BAD_MESSAGE, as is "=" (RFC
 * 5034's empty response: none of these mechanisms is ever empty). */
#ifndef POPGATE_POP3_SASL_H
#define POPGATE_POP3_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/b64.h"
#include "pop3_parse.h"

#define POP3_SASL_FIELD_MAX 1024
/* A token fills at most what the longest SASL line decodes to. */
#define POP3_SASL_TOKEN_MAX B64_DECODED_MAX(POP3_SASL_LINE_MAX)

enum pop3_sasl_mech {
	POP3_SASL_PLAIN,
	POP3_SASL_XOAUTH2,
	POP3_SASL_OAUTHBEARER,
};

struct pop3_sasl_plain {
	char authzid[POP3_SASL_FIELD_MAX];
	char authcid[POP3_SASL_FIELD_MAX];
	char passwd[POP3_SASL_FIELD_MAX];
};

struct pop3_sasl_bearer {
	char user[POP3_SASL_FIELD_MAX];		/* NUL-terminated, not empty, no CR/LF/NUL/^A */
	uint8_t token[POP3_SASL_TOKEN_MAX];	/* after "Bearer ": printable ASCII, no space */
	size_t token_len;			/* > 0 */
};

enum pop3_sasl_result {
	POP3_SASL_OK,
	POP3_SASL_BAD_BASE64,	/* not valid base64 */
	POP3_SASL_BAD_MESSAGE,	/* not the mechanism's shape, an empty or over-long field, a
				   user name with CR/LF/NUL, no "auth=Bearer <token>" */
	POP3_SASL_NO_USER,	/* OAUTHBEARER without "a=" in its GS2 header: valid (RFC 7628
				   §3.1), but the gateway needs the name before it logs in */
};

/* "PLAIN", "XOAUTH2", "OAUTHBEARER" (any case) -> *mech_r; false for anything else. */
bool pop3_sasl_mech_parse(const uint8_t *name, size_t len, enum pop3_sasl_mech *mech_r);
/* The mechanism's name as CAPA lists it. */
const char *pop3_sasl_mech_name(enum pop3_sasl_mech mech);

/* Decodes a base64 PLAIN response. On anything but OK, *r is wiped. */
enum pop3_sasl_result
pop3_sasl_plain_decode(const uint8_t *b64, size_t len, struct pop3_sasl_plain *r);

/* Decodes a base64 XOAUTH2 response ("user=NAME ^A auth=Bearer TOKEN ^A ^A") or OAUTHBEARER
 * response (RFC 7628 §3.1: "n,a=NAME," ^A key=value pairs with auth=Bearer TOKEN ^A ^A;
 * "=2C" and "=3D" in NAME are "," and "="; channel binding "p=" is refused). Keys other
 * than user/auth (host, port, ...) are skipped; user or auth twice is BAD_MESSAGE. The
 * bytes stay the client's to send upstream: this only reads them. mech must not be PLAIN.
 * On anything but OK, *r is wiped; so is every internal copy, on every path. */
enum pop3_sasl_result
pop3_sasl_bearer_decode(enum pop3_sasl_mech mech, const uint8_t *b64, size_t len,
    struct pop3_sasl_bearer *r);

#endif
