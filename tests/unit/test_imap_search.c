/* tests/unit/test_imap_search.c: SEARCH and ESEARCH answers (imap/imap_search.c). A table of
 * lines -> (well-formed?, form, tag, UID indicator, ranges as "lo:hi,..."), the ESEARCH forms
 * of RFC 4731 and RFC 9051 (no ALL when nothing matched, MIN/MAX/COUNT/MODSEQ, extension
 * items), and what must be refused rather than read as an empty result. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../imap/imap_resp.h"
#include "../../imap/imap_search.h"

struct ranges {
	char text[256];
	size_t n;
	size_t stop_after;	/* 0: never stop */
};

static bool
collect(void *ctx, uint32_t lo, uint32_t hi)
{
	struct ranges *r = ctx;
	size_t used = strlen(r->text);

	snprintf(r->text + used, sizeof(r->text) - used, "%s%u:%u", r->n ? "," : "", lo, hi);
	r->n++;
	return r->stop_after == 0 || r->n < r->stop_after;
}

static bool
parse(const char *line, struct imap_search_info *info, struct ranges *rg)
{
	struct imap_resp r;

	memset(rg, 0, sizeof(*rg));
	if (!imap_resp_parse((const uint8_t *)line, strlen(line), &r))
		return false;
	if (!imap_search_is(&r))
		return false;
	return imap_search_parse(&r, info, collect, rg);
}

static void
test_search_table(void **state)
{
	static const struct {
		const char *line;
		bool ok, esearch, uid;
		const char *tag, *ranges;
	} t[] = {
		{ "* SEARCH", true, false, false, "", "" },
		{ "* SEARCH ", true, false, false, "", "" },	/* trailing space: some servers */
		{ "* SEARCH 2 84 882", true, false, false, "", "2:2,84:84,882:882" },
		{ "* search 7", true, false, false, "", "7:7" },
		{ "* SEARCH 4294967295", true, false, false, "", "4294967295:4294967295" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 3,7", true, true, true, "A5", "3:3,7:7" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 2,10:11", true, true, true, "A5", "2:2,10:11" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 11:10", true, true, true, "A5", "10:11" },
		{ "* ESEARCH (TAG \"A5\") UID", true, true, true, "A5", "" },	/* nothing matched */
		{ "* ESEARCH (TAG \"A5\")", true, true, false, "A5", "" },
		{ "* ESEARCH (tag \"A5\") uid all 1:3", true, true, true, "A5", "1:3" },
		{ "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3", true, true, false, "A282", "" },
		{ "* ESEARCH (TAG \"A5\") UID COUNT 2 ALL 4:5 MAX 5 MIN 4", true, true, true, "A5", "4:5" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 1:2 MODSEQ 917162500", true, true, true, "A5", "1:2" },
		{ "* ESEARCH (TAG \"A5\") UID X-EXT (1 (2 \"a)\") 3) ALL 9", true, true, true, "A5", "9:9" },
		{ "* ESEARCH (TAG \"A5\") UID X-EXT word ALL 9", true, true, true, "A5", "9:9" },
		{ "* ESEARCH UID ALL 4", true, true, true, "", "4:4" },	/* no correlator */
		{ "* ESEARCH", true, true, false, "", "" },
		/* Refused: a result we cannot read is never an empty one. */
		{ "* SEARCH 0", false, false, false, "", "" },
		{ "* SEARCH 4294967296", false, false, false, "", "" },
		{ "* SEARCH 07", false, false, false, "", "" },
		{ "* SEARCH 1 x 3", false, false, false, "", "" },
		{ "* SEARCH 1:3", false, false, false, "", "" },
		{ "* SEARCH 2 (MODSEQ 5)", false, false, false, "", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 3,", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL ,3", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 3::4", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 3:*", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID ALL 0:4", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID COUNT", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID COUNT x", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG \"A5\") UID X-EXT (1 2", false, true, true, "A5", "" },
		{ "* ESEARCH (TAG A5) UID ALL 3", false, true, false, "", "" },
		{ "* ESEARCH (TAG \"A5) UID ALL 3", false, true, false, "", "" },
		{ "* ESEARCH (TAG {2}) UID ALL 3", false, true, false, "", "" },
		{ "* ESEARCH (TAG \"\") UID ALL 3", false, true, false, "", "" },
		{ "* ESEARCH (TAG \"A\\\"5\") UID ALL 3", false, true, false, "", "" },
		{ "* ESEARCH (FOO \"A5\") UID ALL 3", false, true, false, "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct imap_search_info info;
		struct ranges rg;
		bool ok = parse(t[i].line, &info, &rg);

		if (ok != t[i].ok)
			fail_msg("%s: parse %d, want %d", t[i].line, ok, t[i].ok);
		if (!ok)
			continue;
		if (info.esearch != t[i].esearch || info.uid != t[i].uid)
			fail_msg("%s: esearch %d uid %d", t[i].line, info.esearch, info.uid);
		if (info.tag.len != strlen(t[i].tag) ||
		    memcmp(info.tag.p, t[i].tag, info.tag.len) != 0)
			fail_msg("%s: tag \"%.*s\"", t[i].line, (int)info.tag.len, info.tag.p);
		if (strcmp(rg.text, t[i].ranges) != 0)
			fail_msg("%s: ranges \"%s\", want \"%s\"", t[i].line, rg.text, t[i].ranges);
	}
}

static void
test_not_a_search(void **state)
{
	static const char *const lines[] = {
		"* 3 SEARCH 1", "* OK [UIDVALIDITY 3] x", "A1 OK SEARCH done", "* FETCH 1",
		"* SEARCHX 1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct imap_resp r;

		if (imap_resp_parse((const uint8_t *)lines[i], strlen(lines[i]), &r))
			assert_false(imap_search_is(&r));
	}
}

static void
test_callback_stops(void **state)
{
	struct imap_resp r;
	struct imap_search_info info;
	struct ranges rg = { .stop_after = 2 };
	const char *line = "* ESEARCH (TAG \"A9\") UID ALL 1,3,5";

	(void)state;
	assert_true(imap_resp_parse((const uint8_t *)line, strlen(line), &r));
	assert_false(imap_search_parse(&r, &info, collect, &rg));
	assert_int_equal(rg.n, 2);
}

static void
test_tag_is(void **state)
{
	struct imap_search_info info;
	struct ranges rg;

	(void)state;
	assert_true(parse("* ESEARCH (TAG \"A12\") UID ALL 1", &info, &rg));
	assert_true(imap_search_tag_is(&info, "A12"));
	assert_false(imap_search_tag_is(&info, "A1"));
	assert_false(imap_search_tag_is(&info, "a12"));
	assert_false(imap_search_tag_is(&info, "A123"));
	assert_true(parse("* SEARCH 1", &info, &rg));
	assert_false(imap_search_tag_is(&info, ""));	/* a SEARCH has no tag to match */
	assert_true(parse("* ESEARCH UID ALL 1", &info, &rg));
	assert_false(imap_search_tag_is(&info, ""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_table),
		cmocka_unit_test(test_not_a_search),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_tag_is),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
