/* tests/unit/test_content_key.c: the content key recipe (common/content_key.c): the value
 * computed independently (Python's hashlib over the documented string), and the same key
 * whatever an old server or a migration tool did to the header, a different one when what
 * identifies the message differs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/content_key.h"
#include "unit.h"

static const char base[] =
    "Message-ID: <a1@example.net>\r\n"
    "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@example.net>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello  there\r\n"
    "\r\n";

static const char *
key_of(const char *header, size_t len)
{
	static char key[CONTENT_KEY_SIZE];

	assert_int_equal(content_key((const uint8_t *)header, len, key), 0);
	return key;
}

/* hashlib.sha256(b"message-id:<a1@example.net>\ndate:Tue, 1 Dec 2026 10:00:00 +0000\n"
 * b"from:Alice <alice@example.net>\nto:bob@example.net\nsubject:Hello there\n")[:16] */
static void
test_the_documented_recipe(void **state)
{
	(void)state;
	assert_string_equal(key_of(W(base)), "f6c995ee0c40f793529e7511f970af52");
	/* No field at all: every value empty. */
	assert_string_equal(key_of(W("X-Other: 1\r\n\r\n")), "60a6d1f34914586932fc04ac72023d87");
	assert_string_equal(key_of(W("")), "60a6d1f34914586932fc04ac72023d87");
}

/* What old servers and migration tools do to a header, and a different transport. */
static void
test_the_same_message_as_others_keep_it(void **state)
{
	static const char *const same[] = {
		/* extra fields (Status, X-UIDL, Received ...), in any place */
		"Received: from x by y; Tue, 1 Dec 2026\r\nStatus: RO\r\nX-Status: A\r\n"
		"Message-ID: <a1@example.net>\r\nX-UIDL: 0c5e1a2b\r\nDate: Tue, 1 Dec 2026 10:00:00 "
		"+0000\r\nFrom: Alice <alice@example.net>\r\nX-Keywords: $Junk\r\nTo: bob@example.net"
		"\r\nContent-Length: 1234\r\nSubject: Hello  there\r\n\r\n",
		/* only the fields asked for, in another order, LF line ends, no empty line */
		"subject: Hello  there\nTO: bob@example.net\nfrom: Alice <alice@example.net>\n"
		"date: Tue, 1 Dec 2026 10:00:00 +0000\nmessage-id: <a1@example.net>\n",
		/* folded, and whitespace spread differently */
		"Message-ID:\r\n <a1@example.net>\r\nDate:   Tue, 1 Dec 2026\r\n\t10:00:00 +0000  \r\n"
		"From: Alice\r\n  <alice@example.net>\r\nTo: bob@example.net\r\nSubject: Hello\r\n"
		"\tthere\r\n\r\n",
		/* a second Subject later is not the message's subject; the body is not read */
		"Message-ID: <a1@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: "
		"Alice <alice@example.net>\r\nTo: bob@example.net\r\nSubject: Hello there\r\n"
		"Subject: another\r\n\r\nSubject: in the body\r\n",
		/* obsolete syntax: a space before the colon */
		"Message-ID : <a1@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: "
		"Alice <alice@example.net>\r\nTo: bob@example.net\r\nSubject : Hello there\r\n\r\n",
	};
	char want[CONTENT_KEY_SIZE];

	(void)state;
	strcpy(want, key_of(W(base)));
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (strcmp(key_of(same[i], strlen(same[i])), want) != 0)
			fail_msg("case %zu has another key", i);
}

static void
test_another_message_has_another_key(void **state)
{
	static const char *const other[] = {
		"Message-ID: <a2@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: "
		"Alice <alice@example.net>\r\nTo: bob@example.net\r\nSubject: Hello there\r\n\r\n",
		"Message-ID: <a1@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:01 +0000\r\nFrom: "
		"Alice <alice@example.net>\r\nTo: bob@example.net\r\nSubject: Hello there\r\n\r\n",
		"Message-ID: <a1@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: "
		"Alice <alice@example.net>\r\nTo: bob@example.net\r\nSubject: hello there\r\n\r\n",
		/* a value moved to another field */
		"Message-ID: <a1@example.net>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nTo: "
		"Alice <alice@example.net>\r\nFrom: bob@example.net\r\nSubject: Hello there\r\n\r\n",
		/* no Message-ID */
		"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: Alice <alice@example.net>\r\n"
		"To: bob@example.net\r\nSubject: Hello there\r\n\r\n",
	};
	char want[CONTENT_KEY_SIZE];

	(void)state;
	strcpy(want, key_of(W(base)));
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (strcmp(key_of(other[i], strlen(other[i])), want) == 0)
			fail_msg("case %zu has the same key", i);
}

/* The Message-ID an import is matched by: folded, spaced, bracketed or not, one id. */
static void
test_the_message_id_as_matching_compares_it(void **state)
{
	static const char hdr[] = "X-UIDL: 17\r\nmessage-id:\r\n   <a1@example.net>  \r\n"
	    "Subject: hi\r\n\r\nMessage-ID: <body@x>\r\n";
	char key[CONTENT_KEY_SIZE], id[CONTENT_MSGID_MAX], big[400];

	(void)state;
	assert_int_equal(content_key_msgid((const uint8_t *)hdr, strlen(hdr), key, id), 0);
	assert_string_equal(id, "a1@example.net");
	assert_string_equal(key, key_of(W(hdr)));
	assert_int_equal(content_msgid_normalize(W(" <a1@example.net>\t"), id), 14);
	assert_int_equal(content_msgid_normalize("a1@example.net", 14, id), 14);
	assert_string_equal(id, "a1@example.net");
	assert_int_equal(content_msgid_normalize(W("  "), id), 0);
	assert_string_equal(id, "");
	assert_int_equal(content_msgid_normalize(W("< a1@example.net >"), id), 14);
	assert_string_equal(id, "a1@example.net");
	/* A long id is matched by its hash: the same id, the same form; another, another. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(content_msgid_normalize(big, sizeof(big), id), 65);
	assert_int_equal(id[0], '#');
	{
		char again[CONTENT_MSGID_MAX];

		big[0] = '<';
		big[sizeof(big) - 1] = '>';
		assert_int_equal(content_msgid_normalize(big, sizeof(big), again), 65);
		assert_string_not_equal(again, id);	/* 398 x's, not 400 */
		memset(big + 1, 'x', sizeof(big) - 2);
		assert_int_equal(content_msgid_normalize(big + 1, sizeof(big) - 2, id), 65);
		assert_string_equal(again, id);
	}
	assert_int_equal(content_key_msgid((const uint8_t *)"Subject: x\r\n\r\n", 15, key, id), 0);
	assert_string_equal(id, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_documented_recipe),
		cmocka_unit_test(test_the_same_message_as_others_keep_it),
		cmocka_unit_test(test_another_message_has_another_key),
		cmocka_unit_test(test_the_message_id_as_matching_compares_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
