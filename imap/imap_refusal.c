/* imap/imap_refusal.c: an IMAP login refusal -> what it means (RFC 5530 §3, RFC 3501
 * §7.1). One table: a code not in it is one that says nothing about why, like no code. */
#include <stddef.h>

#include "imap_refusal.h"

static const struct {
	const char *code;
	enum imap_refusal means;
} codes[] = {
	{ "AUTHENTICATIONFAILED", IMAP_REFUSAL_CREDENTIALS },	/* wrong user or password */
	{ "AUTHORIZATIONFAILED", IMAP_REFUSAL_CREDENTIALS },	/* right, but not for this */
	{ "EXPIRED", IMAP_REFUSAL_CREDENTIALS },		/* the password must be changed */
	{ "CONTACTADMIN", IMAP_REFUSAL_CREDENTIALS },		/* the account is blocked */
	{ "NOPERM", IMAP_REFUSAL_CREDENTIALS },
	{ "UNAVAILABLE", IMAP_REFUSAL_TEMPORARY },		/* e.g. the auth backend is down */
	{ "SERVERBUG", IMAP_REFUSAL_TEMPORARY },
	{ "LIMIT", IMAP_REFUSAL_TEMPORARY },			/* too many connections */
	{ "OVERQUOTA", IMAP_REFUSAL_TEMPORARY },
	{ "CORRUPTION", IMAP_REFUSAL_TEMPORARY },
	{ "CLIENTBUG", IMAP_REFUSAL_TEMPORARY },		/* our command: not the user's fault */
	{ "CANNOT", IMAP_REFUSAL_TEMPORARY },
	{ "PRIVACYREQUIRED", IMAP_REFUSAL_TEMPORARY },		/* our TLS setup, not the password */
	{ "INUSE", IMAP_REFUSAL_IN_USE },
};

enum imap_refusal
imap_login_refusal(const struct imap_resp *r)
{
	if (r->status != IMAP_STATUS_NO)
		return IMAP_REFUSAL_TEMPORARY;	/* BAD: a protocol error; BYE: going away */
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (imap_code_is(r, codes[i].code, NULL))
			return codes[i].means;
	/* No code, ALERT, or one we do not know: servers without RFC 5530 answer a wrong
	 * password with a bare NO, and treating it as temporary would let a guesser retry
	 * without the delay. Documented in README.md (the PASS row). */
	return IMAP_REFUSAL_CREDENTIALS;
}

const char *
imap_refusal_name(enum imap_refusal v)
{
	switch (v) {
	case IMAP_REFUSAL_CREDENTIALS:
		return "credentials";
	case IMAP_REFUSAL_TEMPORARY:
		return "temporary";
	case IMAP_REFUSAL_IN_USE:
		return "in-use";
	}
	return "?";
}
