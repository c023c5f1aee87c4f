/* pop3/pop3_sasl_encode.h: a bearer response (XOAUTH2, OAUTHBEARER) written anew for another
 * user name: what the gateway sends upstream when [upstream*] strip_domain takes the domain
 * off a name the client put inside its SASL response. Pure. */
#ifndef POPGATE_POP3_SASL_ENCODE_H
#define POPGATE_POP3_SASL_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "pop3_sasl.h"

/* Base64 of "user=USER ^A auth=Bearer TOKEN ^A ^A" (XOAUTH2) or "n,a=USER, ^A auth=Bearer
 * TOKEN ^A ^A" (OAUTHBEARER, RFC 7628 §3.1; ',' and '=' in USER as =2C and =3D, RFC 5801
 * §5.1). Other key=value pairs of the client's response (host, port) are not kept: servers
 * use them only for logging. Returns a malloc'd NUL-terminated string, its length in
 * *len_r, or NULL (out of memory, or mech is PLAIN). The intermediate copy is wiped. */
char *pop3_sasl_bearer_encode(enum pop3_sasl_mech mech, const char *user, const uint8_t *token,
    size_t token_len, size_t *len_r);

#endif
