/* tests/unit/test_log.c: escaping untrusted text for log lines (common/log.c): nothing a
 * user name or a server's text holds can end a line, open a quote or add a key=value field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <syslog.h>

#include "../../common/log.h"

static void
test_escape_table(void **state)
{
	static const struct {
		const char *in;
		const char *word;	/* log_escape_word(), for key=value */
		const char *quoted;	/* log_escape(), for key="value" */
	} rows[] = {
		{ "alice@example.net", "alice@example.net", "alice@example.net" },
		{ "x result=ok bytes_out=0", "x\\x20result=ok\\x20bytes_out=0", "x result=ok bytes_out=0" },
		{ "a\r\nsession=1 result=ok", "a\\x0d\\x0asession=1\\x20result=ok",
		  "a\\x0d\\x0asession=1 result=ok" },
		{ "say \"hi\"", "say\\x20\\x22hi\\x22", "say \\x22hi\\x22" },
		{ "back\\slash", "back\\x5cslash", "back\\x5cslash" },
		{ "tab\there", "tab\\x09here", "tab\\x09here" },
		{ "\xc3\xa9t\xc3\xa9", "\\xc3\\xa9t\\xc3\\xa9", "\\xc3\\xa9t\\xc3\\xa9" },
		{ "", "", "" },
	};
	char out[LOG_ESCAPE_SIZE(64)];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const uint8_t *in = (const uint8_t *)rows[i].in;
		size_t len = strlen(rows[i].in);

		assert_string_equal(log_escape_word(out, sizeof(out), in, len, 64), rows[i].word);
		assert_string_equal(log_escape(out, sizeof(out), in, len, 64), rows[i].quoted);
	}
}

static void
test_escape_cut(void **state)
{
	char out[LOG_ESCAPE_SIZE(4)], tiny[8];

	(void)state;
	/* at `max` input bytes, with a mark */
	assert_string_equal(log_escape_word(out, sizeof(out), (const uint8_t *)"abcdefgh", 8, 4),
	    "abcd...");
	/* never past dstsize, never half an escape */
	assert_string_equal(log_escape_word(tiny, sizeof(tiny), (const uint8_t *)"ab\n\n\n", 5, 64),
	    "ab\\x0a");
	/* a NUL in the input is a byte like another */
	assert_string_equal(log_escape(out, sizeof(out), (const uint8_t *)"a\0b", 3, 4), "a\\x00b");
}

/* [log] facility: the names popgate.ini(5) lists, any case; others refused. */
static void
test_facility_parse(void **state)
{
	(void)state;
	assert_int_equal(log_facility_parse("mail"), LOG_MAIL);
	assert_int_equal(log_facility_parse("Daemon"), LOG_DAEMON);
	assert_int_equal(log_facility_parse("local0"), LOG_LOCAL0);
	assert_int_equal(log_facility_parse("LOCAL7"), LOG_LOCAL7);
	assert_int_equal(log_facility_parse("local8"), -1);
	assert_int_equal(log_facility_parse("kern"), -1);
	assert_int_equal(log_facility_parse(""), -1);
	assert_int_equal(log_facility_parse("mail "), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_table),
		cmocka_unit_test(test_escape_cut),
		cmocka_unit_test(test_facility_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
