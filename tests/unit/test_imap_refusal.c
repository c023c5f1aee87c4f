/* tests/unit/test_imap_refusal.c: what a login refusal means (imap/imap_refusal.c), one row
 * per RFC 5530 code and per status. The gateway turns CREDENTIALS into -ERR [AUTH] (the
 * credential remembered, the delay grown), TEMPORARY into -ERR [SYS/TEMP] and IN_USE into
 * -ERR [IN-USE], neither remembered nor delayed (gateway/login.c login_done()). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_refusal.h"

#define CRED IMAP_REFUSAL_CREDENTIALS
#define TEMP IMAP_REFUSAL_TEMPORARY
#define INUSE IMAP_REFUSAL_IN_USE

static void
test_refusal_table(void **state)
{
	static const struct {
		const char *line;
		enum imap_refusal want;
	} rows[] = {
		/* RFC 5530: the credentials */
		{ "A2 NO [AUTHENTICATIONFAILED] Authentication failed.", CRED },
		{ "A2 NO [authenticationfailed] lower case is the same code", CRED },
		{ "A2 NO [AUTHORIZATIONFAILED] Not allowed to log in as that user.", CRED },
		{ "A2 NO [EXPIRED] Password expired.", CRED },
		{ "A2 NO [CONTACTADMIN] Account blocked.", CRED },
		{ "A2 NO [NOPERM] No permission.", CRED },
		/* no code, or one that says nothing about why: an old server's wrong password */
		{ "A2 NO Server busy", CRED },
		{ "A2 NO", CRED },
		{ "A2 NO [ALERT] Wrong password.", CRED },
		{ "A2 NO [XWHATEVER 1] vendor code", CRED },
		{ "A2 NO [AUTHENTICATIONFAILEDX] not the same word", CRED },
		/* RFC 5530: the server's trouble */
		{ "A2 NO [UNAVAILABLE] Authentication backend down.", TEMP },
		{ "A2 NO [SERVERBUG] Internal error.", TEMP },
		{ "A2 NO [LIMIT] Too many connections.", TEMP },
		{ "A2 NO [OVERQUOTA] Over quota.", TEMP },
		{ "A2 NO [CORRUPTION] Index corrupt.", TEMP },
		{ "A2 NO [CLIENTBUG] Bad command.", TEMP },
		{ "A2 NO [CANNOT] Cannot.", TEMP },
		{ "A2 NO [PRIVACYREQUIRED] Use TLS.", TEMP },
		/* a BAD is a protocol error, whatever its code; a BYE is the server going away */
		{ "A2 BAD Error in IMAP command LOGIN: Invalid arguments.", TEMP },
		{ "A2 BAD [AUTHENTICATIONFAILED] odd but BAD", TEMP },
		{ "A2 BAD", TEMP },
		{ "* BYE Server shutting down.", TEMP },
		{ "* BYE [UNAVAILABLE] Maintenance.", TEMP },
		/* RFC 5530: the mailbox is locked */
		{ "A2 NO [INUSE] Mailbox is locked.", INUSE },
		/* not refusals at all: never taken for a wrong password */
		{ "A2 OK Logged in.", TEMP },
		{ "* PREAUTH [CAPABILITY IMAP4rev1] hello", TEMP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct imap_resp r;
		enum imap_refusal got;

		assert_true(imap_resp_parse((const uint8_t *)rows[i].line, strlen(rows[i].line), &r));
		got = imap_login_refusal(&r);
		if (got != rows[i].want)
			fail_msg("\"%s\": %s, want %s", rows[i].line, imap_refusal_name(got),
			    imap_refusal_name(rows[i].want));
	}
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(imap_refusal_name(CRED), "credentials");
	assert_string_equal(imap_refusal_name(TEMP), "temporary");
	assert_string_equal(imap_refusal_name(INUSE), "in-use");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusal_table),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
