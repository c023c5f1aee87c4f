/* tests/unit/test_imap_resp.c: the fields of one response line (imap/imap_resp.c): kind,
 * tag, status, number, name, [code] and text; response codes, capability words, and FETCH
 * items read at the top level only (imap_fetch_number(), on imap/imap_fetch.c's walker).
 * Lines are as imap_parse.h hands them out: no CRLF, literal markers "{n}" left in place. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_fetch.h"
#include "../../imap/imap_resp.h"

static struct slice
slice(const char *s)
{
	struct slice sl = { (const uint8_t *)s, strlen(s) };

	return sl;
}

static void
assert_slice_eq(const struct slice *s, const char *want)
{
	size_t n = strlen(want);

	if (s->len != n || (n > 0 && memcmp(s->p, want, n) != 0))
		fail_msg("slice \"%.*s\" != \"%s\"", (int)s->len, (const char *)s->p, want);
}

static bool
parse(const char *line, struct imap_resp *r)
{
	return imap_resp_parse((const uint8_t *)line, strlen(line), r);
}

static void
test_parse_table(void **state)
{
	static const struct {
		const char *line;
		enum imap_resp_kind kind;
		const char *tag;
		enum imap_status status;
		bool has_num;
		uint32_t num;
		const char *name;
		const char *code;
		const char *text;
	} cases[] = {
		{ "* OK [UIDVALIDITY 3857529045] UIDs valid", IMAP_RESP_UNTAGGED, "",
		  IMAP_STATUS_OK, false, 0, "", "UIDVALIDITY 3857529045", "UIDs valid" },
		{ "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.",
		  IMAP_RESP_UNTAGGED, "", IMAP_STATUS_OK, false, 0, "",
		  "CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN", "Dovecot ready." },
		{ "* OK Still here", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_OK, false, 0, "", "",
		  "Still here" },
		{ "* ok [ALERT] lower case", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_OK, false, 0, "",
		  "ALERT", "lower case" },
		{ "* BYE Logging out", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_BYE, false, 0, "", "",
		  "Logging out" },
		{ "* PREAUTH [CAPABILITY IMAP4rev1] hi", IMAP_RESP_UNTAGGED, "",
		  IMAP_STATUS_PREAUTH, false, 0, "", "CAPABILITY IMAP4rev1", "hi" },
		{ "* NO [ALERT]", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NO, false, 0, "", "ALERT", "" },
		{ "* 5 EXISTS", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE, true, 5, "EXISTS", "", "" },
		{ "* 0 RECENT", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE, true, 0, "RECENT", "", "" },
		{ "* 4294967295 EXPUNGE", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE, true,
		  4294967295u, "EXPUNGE", "", "" },
		{ "* 5 FETCH (UID 7 RFC822.SIZE 1200)", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE,
		  true, 5, "FETCH", "", "(UID 7 RFC822.SIZE 1200)" },
		{ "* CAPABILITY IMAP4rev1 LITERAL+", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE,
		  false, 0, "CAPABILITY", "", "IMAP4rev1 LITERAL+" },
		{ "* FLAGS (\\Seen \\Deleted)", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE, false, 0,
		  "FLAGS", "", "(\\Seen \\Deleted)" },
		{ "* SEARCH", IMAP_RESP_UNTAGGED, "", IMAP_STATUS_NONE, false, 0, "SEARCH", "", "" },
		{ "A1 OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in", IMAP_RESP_TAGGED, "A1",
		  IMAP_STATUS_OK, false, 0, "", "CAPABILITY IMAP4rev1 LITERAL+", "Logged in" },
		{ "A12 NO [AUTHENTICATIONFAILED] Authentication failed.", IMAP_RESP_TAGGED, "A12",
		  IMAP_STATUS_NO, false, 0, "", "AUTHENTICATIONFAILED", "Authentication failed." },
		{ "A3 BAD Error in IMAP command", IMAP_RESP_TAGGED, "A3", IMAP_STATUS_BAD, false, 0,
		  "", "", "Error in IMAP command" },
		{ "A4 OK", IMAP_RESP_TAGGED, "A4", IMAP_STATUS_OK, false, 0, "", "", "" },
		{ "A5 NO [UNAVAILABLE", IMAP_RESP_TAGGED, "A5", IMAP_STATUS_NO, false, 0, "", "",
		  "[UNAVAILABLE" },			/* no "]": all text */
		{ "+ ", IMAP_RESP_CONTINUE, "", IMAP_STATUS_NONE, false, 0, "", "", "" },
		{ "+", IMAP_RESP_CONTINUE, "", IMAP_STATUS_NONE, false, 0, "", "", "" },
		{ "+ Ready for literal data", IMAP_RESP_CONTINUE, "", IMAP_STATUS_NONE, false, 0,
		  "", "", "Ready for literal data" },
		{ "+ AGFsaWNl", IMAP_RESP_CONTINUE, "", IMAP_STATUS_NONE, false, 0, "", "",
		  "AGFsaWNl" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_resp r;

		if (!parse(cases[i].line, &r))
			fail_msg("\"%s\" refused", cases[i].line);
		assert_int_equal(r.kind, cases[i].kind);
		assert_int_equal(r.status, cases[i].status);
		assert_int_equal(r.has_num, cases[i].has_num);
		assert_int_equal(r.num, cases[i].num);
		assert_slice_eq(&r.tag, cases[i].tag);
		assert_slice_eq(&r.name, cases[i].name);
		assert_slice_eq(&r.code, cases[i].code);
		assert_slice_eq(&r.text, cases[i].text);
	}
}

static void
test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"", "*", "* ", "A1", "A1 ", "A1 FOO", "A1 FOO bar", "A1 BYE x", "A1 PREAUTH x",
		" A1 OK", "* 99999999999 FETCH", "* 4294967296 EXISTS", "* 5",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_resp r;

		if (parse(bad[i], &r))
			fail_msg("\"%s\" accepted", bad[i]);
	}
}

static void
test_code_is(void **state)
{
	struct imap_resp r;
	struct slice arg;
	uint64_t v;

	(void)state;
	assert_true(parse("* OK [UIDVALIDITY 3857529045] UIDs valid", &r));
	assert_true(imap_code_is(&r, "UIDVALIDITY", &arg));
	assert_slice_eq(&arg, "3857529045");
	assert_true(imap_slice_to_u64(&arg, &v));
	assert_int_equal(v, 3857529045u);
	assert_true(imap_code_is(&r, "uidvalidity", NULL));
	assert_false(imap_code_is(&r, "UIDVALID", &arg));
	assert_false(imap_code_is(&r, "UIDVALIDITYX", &arg));
	assert_false(imap_code_is(&r, "UIDNEXT", &arg));

	assert_true(parse("A1 NO [AUTHENTICATIONFAILED] Authentication failed.", &r));
	assert_true(imap_code_is(&r, "AUTHENTICATIONFAILED", &arg));
	assert_slice_eq(&arg, "");
	assert_false(imap_code_is(&r, "UNAVAILABLE", &arg));

	assert_true(parse("A2 OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Logged in", &r));
	assert_true(imap_code_is(&r, "CAPABILITY", &arg));
	assert_slice_eq(&arg, "IMAP4rev1 LITERAL+ AUTH=PLAIN");
	assert_true(imap_caps_has(&arg, "LITERAL+"));

	/* No code at all. */
	assert_true(parse("A3 OK done", &r));
	assert_false(imap_code_is(&r, "", &arg));
	assert_false(imap_code_is(&r, "OK", &arg));
}

static void
test_caps_has(void **state)
{
	struct slice caps = slice("IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN ID");
	struct imap_resp r;

	(void)state;
	assert_true(imap_caps_has(&caps, "LITERAL+"));
	assert_true(imap_caps_has(&caps, "literal+"));
	assert_false(imap_caps_has(&caps, "LITERAL"));
	assert_false(imap_caps_has(&caps, "LITERAL-"));
	assert_true(imap_caps_has(&caps, "auth=plain"));
	assert_false(imap_caps_has(&caps, "AUTH"));
	assert_false(imap_caps_has(&caps, "AUTH=PLAINX"));
	assert_true(imap_caps_has(&caps, "IMAP4REV1"));	/* first word */
	assert_true(imap_caps_has(&caps, "ID"));	/* last word */
	assert_false(imap_caps_has(&caps, "I"));
	assert_false(imap_caps_has(&caps, "STARTTLS"));

	caps = slice("  IMAP4rev1   IDLE ");		/* stray spaces */
	assert_true(imap_caps_has(&caps, "IDLE"));
	assert_false(imap_caps_has(&caps, "LITERAL+"));
	caps = slice("");
	assert_false(imap_caps_has(&caps, "IMAP4rev1"));

	/* "* CAPABILITY" text works the same. */
	assert_true(parse("* CAPABILITY IMAP4rev1 LITERAL+ STARTTLS", &r));
	assert_true(imap_caps_has(&r.text, "starttls"));
	assert_false(imap_caps_has(&r.text, "CAPABILITY"));
}

static void
test_fetch_number(void **state)
{
	static const struct {
		const char *text;
		const char *item;
		bool ok;
		uint64_t v;
	} cases[] = {
		{ "(UID 7 RFC822.SIZE 1200)", "UID", true, 7 },
		{ "(UID 7 RFC822.SIZE 1200)", "RFC822.SIZE", true, 1200 },
		{ "(UID 7 RFC822.SIZE 1200)", "rfc822.size", true, 1200 },
		{ "(UID 7 RFC822.SIZE 1200)", "RFC822", false, 0 },
		{ "(FLAGS (\\Seen UID) UID 9)", "UID", true, 9 },
		{ "(FLAGS (\\Seen UID 5) UID 9)", "UID", true, 9 },
		{ "(UID 7 BODY[] {1200})", "UID", true, 7 },
		{ "(UID 7 BODY[] {1200})", "RFC822.SIZE", false, 0 },
		{ "(BODY[] {1200} UID 7)", "UID", true, 7 },
		{ "(BODY[HEADER.FIELDS (UID)] {0} UID 4)", "UID", true, 4 },
		{ "(BODY[HEADER.FIELDS (UID RFC822.SIZE)] {0} RFC822.SIZE 3)", "RFC822.SIZE",
		  true, 3 },
		/* Quoted strings holding parens and item names. */
		{ "(X-SUBJ \"a) UID 5 (\" UID 6)", "UID", true, 6 },
		{ "(ENVELOPE (\"Mon\" \"re: (UID 1\" NIL NIL) UID 8)", "UID", true, 8 },
		{ "(X \"a\\\"b) UID 2\" UID 3)", "UID", true, 3 },
		{ "(MODSEQ (12345) UID 10)", "MODSEQ", false, 0 },	/* a list, not a number */
		{ "(UID 18446744073709551615)", "UID", true, UINT64_MAX },
		{ "(UID 18446744073709551616)", "UID", false, 0 },
		{ "(UID 123456789012345678901)", "UID", false, 0 },
		{ "(UID -1)", "UID", false, 0 },
		{ "(UID 7x)", "UID", false, 0 },
		{ "(UID )", "UID", false, 0 },
		{ "(UID)", "UID", false, 0 },
		{ "()", "UID", false, 0 },
		{ "", "UID", false, 0 },
		{ "UID 7", "UID", false, 0 },		/* not a list */
		{ "(FLAGS (\\Seen))", "UID", false, 0 },
		{ "(FLAGS (\\Seen)) UID 7", "UID", false, 0 },	/* after the list's end */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slice t = slice(cases[i].text);
		uint64_t v = 12345;
		bool ok = imap_fetch_number(&t, cases[i].item, &v);

		if (ok != cases[i].ok)
			fail_msg("%s in \"%s\": %d", cases[i].item, cases[i].text, ok);
		if (ok)
			assert_int_equal(v, cases[i].v);
	}
}

static void
test_fetch_from_line(void **state)
{
	struct imap_resp r;
	uint64_t v;

	(void)state;
	assert_true(parse("* 3 FETCH (UID 7 BODY[] {1200})", &r));
	assert_true(imap_slice_eq(&r.name, "fetch"));
	assert_int_equal(r.num, 3);
	assert_true(imap_fetch_number(&r.text, "UID", &v));
	assert_int_equal(v, 7);
	assert_false(imap_fetch_number(&r.text, "RFC822.SIZE", &v));
}

static void
test_slice_helpers(void **state)
{
	struct slice s;
	uint64_t v = 0;

	(void)state;
	s = slice("Fetch");
	assert_true(imap_slice_eq(&s, "FETCH"));
	assert_false(imap_slice_eq(&s, "FETC"));
	assert_false(imap_slice_eq(&s, "FETCHX"));
	s = slice("");
	assert_true(imap_slice_eq(&s, ""));
	assert_false(imap_slice_to_u64(&s, &v));
	s = slice("00000000000000000001");		/* 20 digits */
	assert_true(imap_slice_to_u64(&s, &v));
	assert_int_equal(v, 1);
	s = slice("000000000000000000001");		/* 21 */
	assert_false(imap_slice_to_u64(&s, &v));
	s = slice("+1");
	assert_false(imap_slice_to_u64(&s, &v));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_code_is),
		cmocka_unit_test(test_caps_has),
		cmocka_unit_test(test_fetch_number),
		cmocka_unit_test(test_fetch_from_line),
		cmocka_unit_test(test_slice_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
