/* imap/imap_refusal.h: what an IMAP server's refusal of a login means (RFC 5530 response
 * codes), so that a busy or broken server is never taken for a wrong password. Pure. */
#ifndef POPGATE_IMAP_REFUSAL_H
#define POPGATE_IMAP_REFUSAL_H

#include "imap_resp.h"

enum imap_refusal {
	/* The credentials: wrong, not allowed, expired (AUTHENTICATIONFAILED,
	 * AUTHORIZATIONFAILED, EXPIRED, CONTACTADMIN, NOPERM), or a NO that says nothing
	 * about why (no code, or only ALERT or a code RFC 5530 does not define): old servers
	 * answer a wrong password that way. The gateway answers [AUTH], remembers the refused
	 * credential and grows the failure delay. */
	IMAP_REFUSAL_CREDENTIALS,
	/* The server's trouble: UNAVAILABLE, SERVERBUG, LIMIT, OVERQUOTA, CORRUPTION,
	 * CLIENTBUG, CANNOT, PRIVACYREQUIRED, any BAD, a BYE. [SYS/TEMP]: nothing remembered,
	 * no delay, the same password may be tried again at once. */
	IMAP_REFUSAL_TEMPORARY,
	/* INUSE: the mailbox is locked by another session. [IN-USE], nothing remembered. */
	IMAP_REFUSAL_IN_USE,
};

/* r: the tagged NO or BAD that answered LOGIN or AUTHENTICATE, or the untagged BYE that
 * ended the connection before it. Any other status (OK, PREAUTH, a data response) is not
 * a refusal the function knows: IMAP_REFUSAL_TEMPORARY. */
enum imap_refusal imap_login_refusal(const struct imap_resp *r);

/* "credentials", "temporary", "in-use": for logs. */
const char *imap_refusal_name(enum imap_refusal v);

#endif
