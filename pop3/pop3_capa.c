/* pop3/pop3_capa.c: the CAPA list (RFC 2449 §5). What is listed is what works on this
 * connection now: no USER or SASL PLAIN where plaintext login is refused (RFC 2595 §4). */
#include "pop3_capa.h"
#include "pop3_reply.h"

void
pop3_capa_write(struct buf *out, const struct pop3_capa *c)
{
	static const char *const always[] = {
		"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
	};

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		pop3_reply_line(out, "%s", always[i]);
	if (c->user)
		pop3_reply_line(out, "USER");
	if (c->sasl_plain || c->sasl_xoauth2 || c->sasl_oauthbearer)
		pop3_reply_line(out, "SASL%s%s%s", c->sasl_plain ? " PLAIN" : "",
		    c->sasl_xoauth2 ? " XOAUTH2" : "", c->sasl_oauthbearer ? " OAUTHBEARER" : "");
	if (c->stls)
		pop3_reply_line(out, "STLS");
	if (c->implementation != NULL)
		pop3_reply_line(out, "IMPLEMENTATION %s", c->implementation);
	pop3_reply_end(out);
}
