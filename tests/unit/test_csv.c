/* tests/unit/test_csv.c: the RFC 4180 reader (common/csv.c): quoting, commas, quotes and line
 * breaks inside quotes, empty fields, CRLF and LF, a final line without its end, a byte
 * order mark, the line each record starts on, what is not CSV and the bounds; every input
 * fed whole, cut at every byte, and byte by byte gives the same records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/csv.h"
#include "unit.h"

#define OUT_SIZE 16384

/* Renders what the parser hands out: "LINE:f1|f2;" per record (bytes outside printable
 * ASCII, and '\', as \xNN), then "END" or "ERR LINE: error". false once it stopped. */
static bool
drain(struct csv_parser *p, struct buf *in, bool eof, char *out)
{
	for (;;) {
		struct csv_record rec;
		enum csv_result r = csv_next(p, in, eof, &rec);
		size_t n = strlen(out);

		switch (r) {
		case CSV_MORE:
			assert_false(eof);
			return true;
		case CSV_END:
			snprintf(out + n, OUT_SIZE - n, "END");
			return false;
		case CSV_ERROR:
			snprintf(out + n, OUT_SIZE - n, "ERR %llu: %s", (unsigned long long)rec.line,
			    rec.error);
			/* It stays failed. */
			assert_int_equal(csv_next(p, in, eof, &rec), CSV_ERROR);
			return false;
		case CSV_RECORD:
			assert_true(rec.n >= 1);
			n += (size_t)snprintf(out + n, OUT_SIZE - n, "%llu:", (unsigned long long)rec.line);
			for (size_t k = 0; k < rec.n; k++) {
				for (size_t b = 0; b < rec.field[k].len; b++) {
					uint8_t c = rec.field[k].p[b];

					if (c >= 0x20 && c < 0x7f && c != '\\')
						n += (size_t)snprintf(out + n, OUT_SIZE - n, "%c", c);
					else
						n += (size_t)snprintf(out + n, OUT_SIZE - n, "\\x%02x", c);
				}
				n += (size_t)snprintf(out + n, OUT_SIZE - n, "%s", k + 1 < rec.n ? "|" : ";");
			}
			assert_true(n < OUT_SIZE - 1);
			break;
		}
	}
}

/* Feeds `len` bytes in pieces of at most `piece` (0: whole), cut first at `cut` (SIZE_MAX:
 * no cut), then the end of the input. */
static void
run(const char *s, size_t len, size_t field_max, size_t record_max, size_t cut, size_t piece,
    char *out)
{
	struct csv_parser p;
	struct buf in = { 0 };
	bool go = true;
	size_t off = 0;

	out[0] = '\0';
	csv_init(&p, field_max, record_max);
	if (cut != SIZE_MAX) {
		buf_append(&in, s, cut);
		go = drain(&p, &in, false, out);
		off = cut;
	}
	while (go && off < len) {
		size_t k = piece == 0 || len - off < piece ? len - off : piece;

		buf_append(&in, s + off, k);
		off += k;
		go = drain(&p, &in, false, out);
	}
	if (go)
		drain(&p, &in, true, out);
	csv_free(&p);
	buf_free(&in);
}

/* The input gives `want` whole, cut at every byte, and byte by byte. */
static void
check(const char *s, size_t len, size_t field_max, size_t record_max, const char *want)
{
	char out[OUT_SIZE];

	run(s, len, field_max, record_max, SIZE_MAX, 0, out);
	if (strcmp(out, want) != 0)
		fail_msg("%.*s\nwhole: %s\nwant:  %s", (int)len, s, out, want);
	for (size_t cut = 0; cut <= len; cut++) {
		run(s, len, field_max, record_max, cut, 0, out);
		if (strcmp(out, want) != 0)
			fail_msg("%.*s\ncut at %zu: %s\nwant:  %s", (int)len, s, cut, out, want);
	}
	run(s, len, field_max, record_max, SIZE_MAX, 1, out);
	if (strcmp(out, want) != 0)
		fail_msg("%.*s\nbyte by byte: %s\nwant:  %s", (int)len, s, out, want);
}

struct csv_case {
	const char *in;
	size_t len;
	const char *want;
};

static void
check_table(const struct csv_case *t, size_t n, size_t field_max, size_t record_max)
{
	for (size_t i = 0; i < n; i++)
		check(t[i].in, t[i].len, field_max, record_max, t[i].want);
}

static void
test_records_and_quoting(void **state)
{
	static const struct csv_case t[] = {
		{ W(""), "END" },
		{ W("user,uidl\r\nalice,u1\r\n"), "1:user|uidl;2:alice|u1;END" },
		{ W("user,uidl\nalice,u1\n"), "1:user|uidl;2:alice|u1;END" },
		{ W("a,b\r\nc,d\nx,y\r\n"), "1:a|b;2:c|d;3:x|y;END" },	/* mixed line ends */
		{ W("a,b\nc,d"), "1:a|b;2:c|d;END" },		/* no final line end */
		{ W("a"), "1:a;END" },
		{ W("\"a,b\",c\n"), "1:a,b|c;END" },
		{ W("x,\"say \"\"hi\"\"\"\n"), "1:x|say \"hi\";END" },
		{ W("\"\"\"\"\n"), "1:\";END" },			/* a field that is one quote */
		{ W("\"\"\"a,\"\"\",b"), "1:\"a,\"|b;END" },
		{ W("\"l1\nl2\",x\nnext,y\n"), "1:l1\\x0al2|x;3:next|y;END" },
		{ W("\"l1\r\nl2\",x\r\nn,y\r\n"), "1:l1\\x0d\\x0al2|x;3:n|y;END" },
		{ W("\"a\rb\",c\n"), "1:a\\x0db|c;END" },	/* a CR inside quotes is data */
		{ W("\"\n\n\n\"\nz"), "1:\\x0a\\x0a\\x0a;5:z;END" },
		{ W(",,\n"), "1:||;END" },
		{ W("a,,c\n"), "1:a||c;END" },
		{ W("\"\",x\n"), "1:|x;END" },
		{ W("a,"), "1:a|;END" },
		{ W("a,\"\""), "1:a|;END" },
		{ W("a\n\nb\n"), "1:a;2:;3:b;END" },		/* an empty line: one empty field */
		{ W("\r\n"), "1:;END" },
		{ W(" a , b \n"), "1: a | b ;END" },		/* spaces are data (§2.4) */
		{ W("a\0b,c\n"), "1:a\\x00b|c;END" },
		{ W("caf\xc3\xa9,\"\xe2\x82\xac\"\n"), "1:caf\\xc3\\xa9|\\xe2\\x82\\xac;END" },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]), 0, 0);
}

static void
test_byte_order_mark(void **state)
{
	static const struct csv_case t[] = {
		{ W("\xef\xbb\xbfuser,uidl\r\na,b\r\n"), "1:user|uidl;2:a|b;END" },
		{ W("\xef\xbb\xbf"), "END" },
		{ W("\xef\xbb\xbf\"q\",x"), "1:q|x;END" },
		/* Only at the very start; a partial one is data. */
		{ W("a\n\xef\xbb\xbf" "b\n"), "1:a;2:\\xef\\xbb\\xbfb;END" },
		{ W("\xef\xbb" "x\n"), "1:\\xef\\xbbx;END" },
		{ W("\xef"), "1:\\xef;END" },
		{ W("\xef\xbb\xbf\xef\xbb\xbf" "a"), "1:\\xef\\xbb\\xbfa;END" },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]), 0, 0);
}

static void
test_what_is_not_csv(void **state)
{
	static const struct csv_case t[] = {
		/* An unterminated quote on line 4 runs to the end of the input. */
		{ W("user,uidl\na,1\nb,2\n\"c,3\nd,4\n"),
		    "1:user|uidl;2:a|1;3:b|2;ERR 4: a quoted field is not closed (a '\"' is missing)" },
		{ W("\""), "ERR 1: a quoted field is not closed (a '\"' is missing)" },
		{ W("a,\"b\"\"\n"), "ERR 1: a quoted field is not closed (a '\"' is missing)" },
		{ W("ok\nab\"c\n"), "1:ok;ERR 2: a quote inside an unquoted field (quote the whole "
		    "field, and double the quote)" },
		{ W("\"a\"b,c\n"), "ERR 1: text after the closing quote of a field" },
		{ W("\"a\" ,c\n"), "ERR 1: text after the closing quote of a field" },
		/* The line a record starts on, even when the fault is lines later. */
		{ W("h\n\"x\ny\nz\"w\n"), "1:h;ERR 2: text after the closing quote of a field" },
		{ W("a\rb\n"), "ERR 1: a CR not followed by LF (lines end in CRLF or LF)" },
		{ W("a,b\r"), "ERR 1: a CR not followed by LF (lines end in CRLF or LF)" },
		{ W("a\n\r\r\n"), "1:a;ERR 2: a CR not followed by LF (lines end in CRLF or LF)" },
	};

	(void)state;
	check_table(t, sizeof(t) / sizeof(t[0]), 0, 0);
}

static void
test_bounds(void **state)
{
	static const struct csv_case fields[] = {
		{ W("abcd,\"ab\"\"c\"\n"), "1:abcd|ab\"c;END" },	/* 4 octets unquoted */
		{ W("abcde\n"), "ERR 1: a field longer than 4 octets" },
		{ W("x\n\"ab\"\"cd\""), "1:x;ERR 2: a field longer than 4 octets" },
		{ W("x\n\"a\nbcd\"\n"), "1:x;ERR 2: a field longer than 4 octets" },
	};
	static const struct csv_case records[] = {
		{ W("abcd,efgh\n"), "1:abcd|efgh;END" },		/* 8 octets of fields */
		{ W("abcd,efgh,i\n"), "ERR 1: a record longer than 8 octets" },
		/* Whichever bound the first byte too many passes, however the input is cut
		 * (found by fuzz_csv). */
		{ W("ab,cdefg\n"), "ERR 1: a field longer than 4 octets" },
		{ W("abcd,abc,xyz\n"), "ERR 1: a record longer than 8 octets" },
		{ W("abcd,ab,cdefg\n"), "ERR 1: a record longer than 8 octets" },
	};
	char many[2 * CSV_FIELDS_MAX + 2], want[2 * CSV_FIELDS_MAX + 8];
	size_t n = 0;

	(void)state;
	check_table(fields, sizeof(fields) / sizeof(fields[0]), 4, 0);
	check_table(records, sizeof(records) / sizeof(records[0]), 4, 8);
	/* CSV_FIELDS_MAX fields are a record; one more is not. */
	strcpy(want, "1:");
	for (int k = 0; k < CSV_FIELDS_MAX; k++) {
		many[n++] = 'x';
		many[n++] = k + 1 < CSV_FIELDS_MAX ? ',' : '\n';
		strcat(want, k + 1 < CSV_FIELDS_MAX ? "x|" : "x;END");
	}
	check(many, n, 0, 0, want);
	many[n - 1] = ',';
	many[n++] = 'y';
	check(many, n, 0, 0, "ERR 1: more than 32 fields");
	/* The default bound: 4096 octets are a field, 4097 are not. */
	{
		static char big[CSV_FIELD_MAX + 2];
		char out[OUT_SIZE];

		memset(big, 'a', sizeof(big));
		run(big, CSV_FIELD_MAX, 0, 0, SIZE_MAX, 0, out);
		assert_int_equal(strlen(out), 2 + CSV_FIELD_MAX + 1 + 3);
		run(big, CSV_FIELD_MAX + 1, 0, 0, SIZE_MAX, 0, out);
		assert_string_equal(out, "ERR 1: a field longer than 4096 octets");
	}
}

/* A large input in the pieces a file read gives: many records, lines counted to the end. */
static void
test_many_records_in_chunks(void **state)
{
	struct buf file = { 0 }, in = { 0 };
	struct csv_parser p;
	struct csv_record rec;
	size_t off = 0, records = 0;
	enum csv_result r;

	(void)state;
	buf_set_max(&file, 8 * 1024 * 1024);
	for (int i = 0; i < 20000; i++)
		buf_printf(&file, i % 7 == 0 ? "u%d,\"id\n%d\",%d\r\n" : "u%d,id%d,%d\n", i, i, i);
	assert_false(file.failed);
	csv_init(&p, 0, 0);
	for (;;) {
		size_t k = buf_len(&file) - off < 4093 ? buf_len(&file) - off : 4093;
		bool eof = k == 0;

		buf_append(&in, buf_data(&file) + off, k);
		off += k;
		while ((r = csv_next(&p, &in, eof, &rec)) == CSV_RECORD) {
			char want[64];
			int i = (int)records;

			assert_int_equal(rec.n, 3);
			snprintf(want, sizeof(want), "u%d", i);
			assert_int_equal(rec.field[0].len, strlen(want));
			assert_memory_equal(rec.field[0].p, want, strlen(want));
			/* Each earlier record of every 7th took two lines. */
			assert_int_equal(rec.line, (uint64_t)i + (uint64_t)(i + 6) / 7 + 1);
			records++;
		}
		if (eof) {
			assert_int_equal(r, CSV_END);
			break;
		}
		assert_int_equal(r, CSV_MORE);
		assert_int_equal(buf_len(&in), 0);
	}
	assert_int_equal(records, 20000);
	csv_free(&p);
	buf_free(&in);
	buf_free(&file);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_and_quoting),
		cmocka_unit_test(test_byte_order_mark),
		cmocka_unit_test(test_what_is_not_csv),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_many_records_in_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
