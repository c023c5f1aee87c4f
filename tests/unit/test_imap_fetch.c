/* tests/unit/test_imap_fetch.c: FETCH attributes (imap/imap_fetch.c): the walk over a
 * msg-att list (any order, nested lists, quoted strings with spaces, parentheses and
 * braces, earlier literals elided to their markers), the line so far before a literal
 * (sequence number, UID if it came first, the section the literal belongs to), body
 * section names with origins, the UID and a section's value on a complete line, and
 * unescaping quoted values. Lines are as imap_parse.h hands them out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/buf.h"
#include "../../imap/imap_fetch.h"
#include "../../imap/imap_parse.h"

static struct slice
slice(const char *s)
{
	struct slice sl = { (const uint8_t *)s, strlen(s) };

	return sl;
}

static const char *const kind_names[] = {
	[IMAP_VALUE_ATOM] = "atom", [IMAP_VALUE_NIL] = "nil", [IMAP_VALUE_QUOTED] = "quoted",
	[IMAP_VALUE_LITERAL] = "literal", [IMAP_VALUE_LIST] = "list",
};

/* "NAME=kind:value|...|END" (or CUT / INVALID) for the attribute list `text`. */
static void
render(const uint8_t *text, size_t len, char *out, size_t outlen)
{
	struct slice t = { text, len };
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	enum imap_fetch_step step;
	size_t n = 0;

	out[0] = '\0';
	imap_fetch_iter_init(&it, &t);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		n += (size_t)snprintf(out + n, outlen - n, "%.*s=%s%s:%.*s", (int)att.name.len,
		    (const char *)att.name.p, kind_names[att.kind], att.escaped ? "\\" : "",
		    (int)att.value.len, (const char *)att.value.p);
		if (att.kind == IMAP_VALUE_LITERAL)
			n += (size_t)snprintf(out + n, outlen - n, "#%llu",
			    (unsigned long long)att.literal_size);
		n += (size_t)snprintf(out + n, outlen - n, "|");
		assert_true(n < outlen);
	}
	snprintf(out + n, outlen - n, "%s", step == IMAP_FETCH_END ? "END" :
	    step == IMAP_FETCH_CUT ? "CUT" : "INVALID");
}

static void
test_walk_table(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "(UID 7 RFC822.SIZE 1200)", "UID=atom:7|RFC822.SIZE=atom:1200|END" },
		{ "()", "END" },
		{ "(FLAGS (\\Seen \\Deleted) UID 7)", "FLAGS=list:(\\Seen \\Deleted)|UID=atom:7|END" },
		{ "(FLAGS ())", "FLAGS=list:()|END" },
		{ "(UID 7 BODY[] {1200})", "UID=atom:7|BODY[]=literal:{1200}#1200|END" },
		{ "(BODY[] {1200} UID 7)", "BODY[]=literal:{1200}#1200|UID=atom:7|END" },
		{ "(BODY[] ~{3} UID 7)", "BODY[]=literal:~{3}#3|UID=atom:7|END" },
		{ "(BODY[] {3+} UID 7)", "BODY[]=literal:{3+}#3|UID=atom:7|END" },
		{ "(BODY[] \"a (b) {5} \\\"c\\\\\" UID 7)",
		  "BODY[]=quoted\\:a (b) {5} \\\"c\\\\|UID=atom:7|END" },
		{ "(BODY[] \"\")", "BODY[]=quoted:|END" },
		{ "(BODY[] NIL)", "BODY[]=nil:NIL|END" },
		{ "(BODY[] nil)", "BODY[]=nil:nil|END" },
		{ "(BODY[HEADER.FIELDS (DATE \"X Y\")] {10})",
		  "BODY[HEADER.FIELDS (DATE \"X Y\")]=literal:{10}#10|END" },
		{ "(BODY[TEXT]<4096> {0})", "BODY[TEXT]<4096>=literal:{0}#0|END" },
		{ "(ENVELOPE (\"d\" {5} NIL ((\"a)\" NIL \"b\" \"c\"))) UID 9)",
		  "ENVELOPE=list:(\"d\" {5} NIL ((\"a)\" NIL \"b\" \"c\")))|UID=atom:9|END" },
		{ "(UID 7", "CUT" },
		{ "(UID 7 ", "UID=atom:7|CUT" },
		{ "(UID 7 BODY[] {12}", "UID=atom:7|BODY[]=literal:{12}#12|CUT" },
		{ "(UID 7 BODY[] \"ab", "UID=atom:7|CUT" },
		{ "(UID 7 BODY[] \"ab\\\"", "UID=atom:7|CUT" },
		{ "(UID 7 ENVELOPE (\"x\" {3}", "UID=atom:7|CUT" },
		{ "(UID 7 BODY[HEADER.FIELDS (A", "UID=atom:7|CUT" },
		{ "", "INVALID" },
		{ "UID 7", "INVALID" },
		{ "(UID 7) x", "UID=atom:7|INVALID" },
		{ "(UID 7  RFC822.SIZE 5)", "UID=atom:7|INVALID" },
		{ "( UID 7)", "INVALID" },
		{ "(UID\"7\")", "INVALID" },
		{ "(BODY[] {12a})", "INVALID" },
		{ "(BODY[] {123456789012345678901})", "INVALID" },
		{ "(BODY[] \"x\"y UID 7)", "INVALID" },
		{ "(FLAGS (\\Seen)x)", "INVALID" },
	};
	char got[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		render((const uint8_t *)cases[i].text, strlen(cases[i].text), got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s\n got  %s\n want %s", cases[i].text, got, cases[i].want);
	}
}

/* Cut anywhere, a list gives the attributes of the whole list that end before the cut,
 * nothing half-read, and CUT (END only when nothing was cut). */
static void
test_walk_every_prefix(void **state)
{
	static const char *const texts[] = {
		"(FLAGS (\\Seen \\Answered) UID 4711 BODY[] {1200} INTERNALDATE \"17-Jul-1996 "
		"02:44:25 -0700\" BODY[TEXT]<0> \"a \\\\ (b) {9}\" BODY[HEADER] NIL "
		"ENVELOPE (\"d\" {5} (\"x)\" NIL)) RFC822.SIZE 99)",
	};
	char whole[1024], part[1024];

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t len = strlen(texts[t]);

		render((const uint8_t *)texts[t], len, whole, sizeof(whole));
		assert_string_equal(whole + strlen(whole) - 3, "END");
		for (size_t cut = 1; cut < len; cut++) {
			size_t n;

			render((const uint8_t *)texts[t], cut, part, sizeof(part));
			n = strlen(part);
			if (n < 3 || strcmp(part + n - 3, "CUT") != 0 ||
			    strncmp(whole, part, n - 3) != 0)
				fail_msg("cut at %zu: %s\nwhole: %s", cut, part, whole);
		}
	}
}

static void
test_section_table(void **state)
{
	static const struct {
		const char *name;
		enum imap_section_part part;
		bool binary, has_origin;
		uint64_t origin;
	} cases[] = {
		{ "BODY[]", IMAP_SECTION_ALL, false, false, 0 },
		{ "body[]", IMAP_SECTION_ALL, false, false, 0 },
		{ "BINARY[]", IMAP_SECTION_ALL, true, false, 0 },
		{ "BODY[HEADER]", IMAP_SECTION_HEADER, false, false, 0 },
		{ "BODY[header]", IMAP_SECTION_HEADER, false, false, 0 },
		{ "BODY[TEXT]", IMAP_SECTION_TEXT, false, false, 0 },
		{ "BODY[TEXT]<0>", IMAP_SECTION_TEXT, false, true, 0 },
		{ "BODY[TEXT]<4096>", IMAP_SECTION_TEXT, false, true, 4096 },
		{ "BODY[]<18446744073709551615>", IMAP_SECTION_ALL, false, true, UINT64_MAX },
		{ "BODY[]<18446744073709551616>", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[TEXT]<>", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[TEXT]<12", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[TEXT]<1.2>", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[TEXT]x", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[TEXT", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[1]", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BODY[HEADER.FIELDS (DATE)]", IMAP_SECTION_OTHER, false, false, 0 },
		{ "BINARY[HEADER]", IMAP_SECTION_OTHER, true, false, 0 },
		{ "BODY.PEEK[]", IMAP_SECTION_OTHER, false, false, 0 },
		{ "RFC822", IMAP_SECTION_OTHER, false, false, 0 },
		{ "UID", IMAP_SECTION_OTHER, false, false, 0 },
		{ "", IMAP_SECTION_OTHER, false, false, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slice n = slice(cases[i].name);
		struct imap_section s;

		if (imap_section_parse(&n, &s) != cases[i].part || s.part != cases[i].part)
			fail_msg("%s: part %d", cases[i].name, s.part);
		if (cases[i].part == IMAP_SECTION_OTHER)
			continue;
		if (s.binary != cases[i].binary || s.has_origin != cases[i].has_origin ||
		    s.origin != cases[i].origin)
			fail_msg("%s: binary %d origin %d %llu", cases[i].name, s.binary,
			    s.has_origin, (unsigned long long)s.origin);
	}
}

/* imap_section_is(): an answer's item is the one asked for only with the same part, kind
 * and origin (a window of another command has another origin). */
static void
test_section_is(void **state)
{
	static const struct {
		const char *got;
		struct imap_section want;
		bool match;
	} cases[] = {
		{ "BODY[]", { IMAP_SECTION_ALL, false, false, 0 }, true },
		{ "body[]", { IMAP_SECTION_ALL, false, false, 0 }, true },
		{ "BINARY[]", { IMAP_SECTION_ALL, false, false, 0 }, false },
		{ "BODY[]<0>", { IMAP_SECTION_ALL, false, false, 0 }, false },
		{ "BODY[HEADER]", { IMAP_SECTION_ALL, false, false, 0 }, false },
		{ "BODY[HEADER]", { IMAP_SECTION_HEADER, false, false, 0 }, true },
		{ "BODY[TEXT]<4096>", { IMAP_SECTION_TEXT, false, true, 4096 }, true },
		{ "BODY[TEXT]<0>", { IMAP_SECTION_TEXT, false, true, 4096 }, false },
		{ "BODY[TEXT]", { IMAP_SECTION_TEXT, false, true, 0 }, false },
		{ "BODY[1]", { IMAP_SECTION_OTHER, false, false, 0 }, false },
		{ "UID", { IMAP_SECTION_OTHER, false, false, 0 }, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slice n = { (const uint8_t *)cases[i].got, strlen(cases[i].got) };
		struct imap_section got;

		imap_section_parse(&n, &got);
		if (imap_section_is(&got, &cases[i].want) != cases[i].match)
			fail_msg("%s: %s", cases[i].got, cases[i].match ? "no match" : "matched");
	}
}

static void
test_head_table(void **state)
{
	static const struct {
		const char *line;
		enum imap_fetch_head_result res;
		uint32_t seq;
		bool has_uid;
		uint32_t uid;
		const char *name;
		enum imap_section_part part;
		uint64_t origin;
	} cases[] = {
		{ "* 3 FETCH (UID 7 BODY[] {1200}", IMAP_FETCH_HEAD_ITEM, 3, true, 7, "BODY[]",
		  IMAP_SECTION_ALL, 0 },
		{ "* 3 fetch (uid 7 body[] {1200}", IMAP_FETCH_HEAD_ITEM, 3, true, 7, "body[]",
		  IMAP_SECTION_ALL, 0 },
		{ "* 3 FETCH (BODY[] {1200}", IMAP_FETCH_HEAD_ITEM, 3, false, 0, "BODY[]",
		  IMAP_SECTION_ALL, 0 },
		{ "* 9 FETCH (FLAGS (\\Seen) UID 2 BODY[] {5}", IMAP_FETCH_HEAD_ITEM, 9, true, 2,
		  "BODY[]", IMAP_SECTION_ALL, 0 },
		{ "* 1 FETCH (UID 1 BODY[TEXT]<4096> {10}", IMAP_FETCH_HEAD_ITEM, 1, true, 1,
		  "BODY[TEXT]<4096>", IMAP_SECTION_TEXT, 4096 },
		{ "* 1 FETCH (UID 1 BODY[HEADER] {10} BODY[TEXT]<0> {20}", IMAP_FETCH_HEAD_ITEM, 1,
		  true, 1, "BODY[TEXT]<0>", IMAP_SECTION_TEXT, 0 },
		{ "* 1 FETCH (BODY[HEADER] {10} UID 5 BODY[TEXT]<0> {20}", IMAP_FETCH_HEAD_ITEM, 1,
		  true, 5, "BODY[TEXT]<0>", IMAP_SECTION_TEXT, 0 },
		{ "* 1 FETCH (INTERNALDATE \"x (UID 9) {3}\" UID 4 BODY[] {3}", IMAP_FETCH_HEAD_ITEM,
		  1, true, 4, "BODY[]", IMAP_SECTION_ALL, 0 },
		{ "* 1 FETCH (UID 4 BINARY[] ~{3}", IMAP_FETCH_HEAD_ITEM, 1, true, 4, "BINARY[]",
		  IMAP_SECTION_ALL, 0 },
		{ "* 1 FETCH (UID 4 BODY[1] {3}", IMAP_FETCH_HEAD_ITEM, 1, true, 4, "BODY[1]",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID 4 ENVELOPE (\"d\" {3}", IMAP_FETCH_HEAD_NESTED, 1, true, 4, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID 4 X-NOTE \"ab {3}", IMAP_FETCH_HEAD_NESTED, 1, true, 4, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID 4 BODY[HEADER.FIELDS ({3}", IMAP_FETCH_HEAD_NESTED, 1, true, 4, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID {3}", IMAP_FETCH_HEAD_INVALID, 1, false, 0, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID 4) {3}", IMAP_FETCH_HEAD_INVALID, 1, true, 4, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH UID 4 {3}", IMAP_FETCH_HEAD_INVALID, 1, false, 0, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* 1 FETCH (UID 4 BODY[] {3a}", IMAP_FETCH_HEAD_INVALID, 1, true, 4, "",
		  IMAP_SECTION_OTHER, 0 },
		{ "* LIST () \"/\" {5}", IMAP_FETCH_HEAD_OTHER, 0, false, 0, "", IMAP_SECTION_OTHER, 0 },
		{ "* 1 EXISTS {5}", IMAP_FETCH_HEAD_OTHER, 0, false, 0, "", IMAP_SECTION_OTHER, 0 },
		{ "A1 FETCH (BODY[] {5}", IMAP_FETCH_HEAD_OTHER, 0, false, 0, "", IMAP_SECTION_OTHER, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_fetch_head h;
		enum imap_fetch_head_result r;

		r = imap_fetch_head((const uint8_t *)cases[i].line, strlen(cases[i].line), &h);
		if (r != cases[i].res)
			fail_msg("%s: result %d, want %d", cases[i].line, r, cases[i].res);
		if (r == IMAP_FETCH_HEAD_OTHER)
			continue;
		if (h.seq != cases[i].seq || h.has_uid != cases[i].has_uid ||
		    (h.has_uid && h.uid != cases[i].uid))
			fail_msg("%s: seq %u uid %d/%u", cases[i].line, h.seq, h.has_uid, h.uid);
		if (r != IMAP_FETCH_HEAD_ITEM)
			continue;
		if (h.name.len != strlen(cases[i].name) ||
		    memcmp(h.name.p, cases[i].name, h.name.len) != 0 ||
		    h.section.part != cases[i].part || h.section.origin != cases[i].origin)
			fail_msg("%s: item %.*s part %d origin %llu", cases[i].line, (int)h.name.len,
			    (const char *)h.name.p, h.section.part,
			    (unsigned long long)h.section.origin);
	}
}

static void
test_uid_and_find_section(void **state)
{
	struct imap_section all = { IMAP_SECTION_ALL, false, false, 0 };
	struct imap_section head = { IMAP_SECTION_HEADER, false, false, 0 };
	struct imap_section win = { IMAP_SECTION_TEXT, false, true, 4096 };
	struct slice t;
	struct imap_fetch_att att;
	uint32_t uid, seq;
	struct imap_fetch_iter it;

	(void)state;
	t = slice("(BODY[] {1200} UID 7)");
	assert_true(imap_fetch_uid(&t, &uid));
	assert_int_equal(uid, 7);
	assert_true(imap_fetch_find_section(&t, &all, &att));
	assert_int_equal(att.kind, IMAP_VALUE_LITERAL);
	assert_int_equal(att.literal_size, 1200);
	assert_false(imap_fetch_find_section(&t, &head, &att));

	t = slice("(FLAGS (\\Seen))");
	assert_false(imap_fetch_uid(&t, &uid));
	assert_false(imap_fetch_find_section(&t, &all, &att));
	t = slice("(UID 0 FLAGS ())");
	assert_false(imap_fetch_uid(&t, &uid));
	t = slice("(UID 4294967296)");
	assert_false(imap_fetch_uid(&t, &uid));
	t = slice("(UID 4294967295 X \"unterminated)");
	assert_false(imap_fetch_uid(&t, &uid));

	t = slice("(UID 3 BODY[HEADER] NIL)");
	assert_true(imap_fetch_find_section(&t, &head, &att));
	assert_int_equal(att.kind, IMAP_VALUE_NIL);

	t = slice("(UID 3 BODY[TEXT]<0> \"old\" BODY[TEXT]<4096> \"new\")");
	assert_true(imap_fetch_find_section(&t, &win, &att));
	assert_int_equal(att.kind, IMAP_VALUE_QUOTED);
	assert_int_equal(att.value.len, 3);
	assert_memory_equal(att.value.p, "new", 3);
	t = slice("(UID 3 BODY[TEXT] \"no origin\")");
	assert_false(imap_fetch_find_section(&t, &win, &att));
	t = slice("(UID 3 BODY[]<0> \"an origin\")");
	assert_false(imap_fetch_find_section(&t, &all, &att));
	t = slice("(UID 3 BODY[] \"x\" junk");
	assert_false(imap_fetch_find_section(&t, &all, &att));

	assert_true(imap_fetch_line((const uint8_t *)"* 12 FETCH (UID 3)", 18, &seq, &it));
	assert_int_equal(seq, 12);
	assert_int_equal(imap_fetch_next(&it, &att), IMAP_FETCH_ATT);
	assert_int_equal(imap_fetch_next(&it, &att), IMAP_FETCH_END);
	assert_false(imap_fetch_line((const uint8_t *)"* OK (UID 3)", 12, &seq, &it));
	assert_false(imap_fetch_line((const uint8_t *)"* 3 EXPUNGE", 11, &seq, &it));
}

static void
test_quoted_unescape(void **state)
{
	static const struct {
		const char *quoted;	/* as between the quotes on the wire */
		const char *want;
	} cases[] = {
		{ "", "" },
		{ "plain text", "plain text" },
		{ "a\\\"b", "a\"b" },
		{ "\\\\", "\\" },
		{ "\\\"\\\"", "\"\"" },
		{ "x\\\\y\\\"z", "x\\y\"z" },
		{ "(a) {5} [b]", "(a) {5} [b]" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slice rest = slice(cases[i].quoted), piece;
		char out[64];
		size_t n = 0;

		while (imap_quoted_next(&rest, &piece)) {
			assert_true(piece.len > 0 && n + piece.len < sizeof(out));
			memcpy(out + n, piece.p, piece.len);
			n += piece.len;
		}
		out[n] = '\0';
		assert_string_equal(out, cases[i].want);
	}
}

/* The wire cut anywhere: what imap_parse hands out, read by imap_fetch, is the same. */
static void
render_stream(const char *wire, size_t len, size_t cut, char *out, size_t outlen)
{
	struct imap_parser p;
	struct buf in = { 0 };
	size_t n = 0;

	imap_parser_init(&p, 0);
	for (int k = 0; k < 2; k++) {
		struct imap_event ev;
		enum imap_parse_result r;

		buf_append(&in, wire + (k ? cut : 0), k ? len - cut : cut);
		while ((r = imap_parse_next(&p, &in, &ev)) != IMAP_PARSE_MORE) {
			assert_int_not_equal(r, IMAP_PARSE_ERROR);
			if (r == IMAP_PARSE_LITERAL) {
				struct imap_fetch_head h;
				int res = imap_fetch_head(ev.line, ev.line_len, &h);

				n += (size_t)snprintf(out + n, outlen - n, "[%d seq=%u uid=%d/%u "
				    "%.*s]", res, h.seq, h.has_uid, h.uid, (int)h.name.len,
				    (const char *)h.name.p);
			} else if (r == IMAP_PARSE_LINE) {
				struct imap_fetch_iter it;
				uint32_t seq;
				char atts[512];

				if (imap_fetch_line(ev.line, ev.line_len, &seq, &it)) {
					render(it.p, it.len, atts, sizeof(atts));
					n += (size_t)snprintf(out + n, outlen - n, "<%u %s>", seq, atts);
				}
			}
			assert_true(n < outlen);
		}
	}
	imap_parser_free(&p);
	buf_free(&in);
}

static void
test_stream_any_split(void **state)
{
	static const char wire[] =
	    "* 9 FETCH (UID 2 BODY[] {5}\r\n(){}\"" ")\r\n"
	    "* 1 FETCH (FLAGS (\\Seen))\r\n"
	    "* 1 FETCH (BODY[] {3}\r\nabc UID 1 INTERNALDATE \"a ) {2}\")\r\n"
	    "* 1 FETCH (UID 1 BODY[HEADER] {2}\r\nhh BODY[TEXT]<0> {1}\r\nt)\r\n"
	    "A1 OK done\r\n";
	char whole[2048], split[2048];

	(void)state;
	render_stream(wire, sizeof(wire) - 1, sizeof(wire) - 1, whole, sizeof(whole));
	assert_string_equal(whole,
	    "[0 seq=9 uid=1/2 BODY[]]<9 UID=atom:2|BODY[]=literal:{5}#5|END>"
	    "<1 FLAGS=list:(\\Seen)|END>"
	    "[0 seq=1 uid=0/0 BODY[]]<1 BODY[]=literal:{3}#3|UID=atom:1|"
	    "INTERNALDATE=quoted:a ) {2}|END>"
	    "[0 seq=1 uid=1/1 BODY[HEADER]][0 seq=1 uid=1/1 BODY[TEXT]<0>]"
	    "<1 UID=atom:1|BODY[HEADER]=literal:{2}#2|BODY[TEXT]<0>=literal:{1}#1|END>");
	for (size_t cut = 0; cut < sizeof(wire) - 1; cut++) {
		render_stream(wire, sizeof(wire) - 1, cut, split, sizeof(split));
		if (strcmp(whole, split) != 0)
			fail_msg("cut at %zu:\n%s\n%s", cut, split, whole);
	}
}

/* Present or not is a different question from "is it a number": the listing tells an
 * unsolicited FLAGS update (no RFC822.SIZE) from a line it cannot read (RFC822.SIZE NIL). */
static void
test_find(void **state)
{
	static const struct {
		const char *text, *name;
		bool present;
		enum imap_value_kind kind;
		const char *val;
	} cases[] = {
		{ "(UID 7 RFC822.SIZE 1200)", "RFC822.SIZE", true, IMAP_VALUE_ATOM, "1200" },
		{ "(UID 7 RFC822.SIZE NIL)", "RFC822.SIZE", true, IMAP_VALUE_NIL, "NIL" },
		{ "(UID 7 FLAGS (\\Seen))", "FLAGS", true, IMAP_VALUE_LIST, "(\\Seen)" },
		{ "(UID 7 FLAGS (\\Seen))", "RFC822.SIZE", false, IMAP_VALUE_ATOM, "" },
		{ "(FLAGS (\\Seen))", "UID", false, IMAP_VALUE_ATOM, "" },
		{ "(UID x RFC822.SIZE 3)", "UID", true, IMAP_VALUE_ATOM, "x" },
		{ "(BODY[] \"a b\" UID 2)", "BODY[]", true, IMAP_VALUE_QUOTED, "a b" },
		{ "(UID)", "UID", false, IMAP_VALUE_ATOM, "" },
		{ "UID 7", "UID", false, IMAP_VALUE_ATOM, "" },
		{ "", "UID", false, IMAP_VALUE_ATOM, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct slice text = slice(cases[i].text);
		struct imap_fetch_att att;
		bool present = imap_fetch_find(&text, cases[i].name, &att);

		if (present != cases[i].present)
			fail_msg("%s %s: present %d", cases[i].text, cases[i].name, present);
		if (!present)
			continue;
		if (att.kind != cases[i].kind || att.value.len != strlen(cases[i].val) ||
		    memcmp(att.value.p, cases[i].val, att.value.len) != 0)
			fail_msg("%s %s: %s \"%.*s\"", cases[i].text, cases[i].name,
			    kind_names[att.kind], (int)att.value.len, (const char *)att.value.p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_table),
		cmocka_unit_test(test_walk_every_prefix),
		cmocka_unit_test(test_section_table),
		cmocka_unit_test(test_section_is),
		cmocka_unit_test(test_head_table),
		cmocka_unit_test(test_uid_and_find_section),
		cmocka_unit_test(test_quoted_unescape),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_stream_any_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
