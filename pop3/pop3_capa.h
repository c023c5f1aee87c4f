/* pop3/pop3_capa.h: the CAPA list (RFC 2449 §5, RFC 2595 STLS, RFC 5034 SASL). Pure. */
#ifndef POPGATE_POP3_CAPA_H
#define POPGATE_POP3_CAPA_H

#include <stdbool.h>

#include "../common/buf.h"

struct pop3_capa {
	bool user;			/* USER/PASS usable here */
	bool stls;			/* STLS offered (TLS configured, not yet active) */
	bool sasl_plain;
	bool sasl_xoauth2;
	bool sasl_oauthbearer;
	const char *implementation;	/* NULL: no IMPLEMENTATION line */
};

/* Writes the capability lines and the terminating "." (not the +OK line). */
void pop3_capa_write(struct buf *out, const struct pop3_capa *c);

#endif
