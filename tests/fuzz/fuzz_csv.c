/* tests/fuzz/fuzz_csv.c: the RFC 4180 reader (common/csv.c) under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut in two, byte 1 the bounds (low nibble: a field's,
 * 0 for the default; high nibble: a record's, 0 for the default); the rest is the file. It is
 * read whole, in the two pieces, and byte by byte; the three renderings must be the same.
 * Every record must keep the bounds and start on a later line than the one before, and
 * written back as CSV (every field quoted) it must read as the same fields. Aborts
 * otherwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "common/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct limits {
	size_t field, record;
};

static void
render(struct buf *out, const struct csv_record *rec)
{
	uint32_t n = (uint32_t)rec->n;

	buf_append(out, &rec->line, sizeof(rec->line));
	buf_append(out, &n, sizeof(n));
	for (size_t k = 0; k < rec->n; k++) {
		uint32_t len = (uint32_t)rec->field[k].len;

		buf_append(out, &len, sizeof(len));
		buf_append(out, rec->field[k].p, rec->field[k].len);
	}
}

/* The record written as CSV, every field quoted, read back: the same fields. */
static void
round_trip(const struct csv_record *rec, const struct limits *l)
{
	struct buf text = { 0 }, a = { 0 }, b = { 0 };
	struct csv_parser p;
	struct csv_record again;

	buf_set_max(&text, 4 * 1024 * 1024);
	for (size_t k = 0; k < rec->n; k++) {
		buf_append(&text, k ? ",\"" : "\"", k ? 2 : 1);
		for (size_t i = 0; i < rec->field[k].len; i++) {
			if (rec->field[k].p[i] == '"')
				buf_append(&text, "\"", 1);
			buf_append(&text, &rec->field[k].p[i], 1);
		}
		buf_append(&text, "\"", 1);
	}
	buf_append(&text, "\r\n", 2);
	csv_init(&p, l->field, l->record);
	if (csv_next(&p, &text, true, &again) != CSV_RECORD || buf_len(&text) != 0)
		abort();
	again.line = rec->line;
	render(&a, rec);
	render(&b, &again);
	fuzz_same_or_abort(&a, &b);
	if (csv_next(&p, &text, true, &again) != CSV_END)
		abort();
	csv_free(&p);
	buf_free(&text);
	buf_free(&a);
	buf_free(&b);
}

/* Reads what `in` holds; false once the parser stopped (the end, an error). */
static bool
drain(struct csv_parser *p, struct buf *in, bool eof, const struct limits *l, uint64_t *last,
    struct buf *out)
{
	for (;;) {
		struct csv_record rec;
		enum csv_result r = csv_next(p, in, eof, &rec);
		uint8_t tag = (uint8_t)r;
		size_t total = 0;

		if (r == CSV_MORE) {
			if (eof || buf_len(in) > 2)
				abort();	/* MORE leaves at most a byte order mark's start */
			return true;
		}
		buf_append(out, &tag, 1);
		if (r == CSV_END)
			return false;
		if (r == CSV_ERROR) {
			buf_append(out, &rec.line, sizeof(rec.line));
			buf_append_str(out, rec.error);
			return false;
		}
		if (rec.n < 1 || rec.n > CSV_FIELDS_MAX || rec.line <= *last)
			abort();
		for (size_t k = 0; k < rec.n; k++) {
			if (rec.field[k].len > l->field)
				abort();
			total += rec.field[k].len;
		}
		if (total > l->record)
			abort();
		*last = rec.line;
		render(out, &rec);
		round_trip(&rec, l);
	}
}

static void
run(const uint8_t *d, size_t n, size_t cut, int how, const struct limits *l, struct buf *out)
{
	struct csv_parser p;
	struct buf in = { 0 };
	uint64_t last = 0;
	bool go = true;

	csv_init(&p, l->field, l->record);
	if (how == 0) {
		buf_append(&in, d, n);
	} else if (how == 1) {
		buf_append(&in, d, cut);
		go = drain(&p, &in, false, l, &last, out);
		buf_append(&in, d + cut, n - cut);
	} else {
		for (size_t i = 0; i < n && go; i++) {
			buf_append(&in, d + i, 1);
			go = drain(&p, &in, false, l, &last, out);
		}
	}
	if (go)
		go = drain(&p, &in, false, l, &last, out);
	if (go)
		drain(&p, &in, true, l, &last, out);
	csv_free(&p);
	buf_free(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf r[3] = { { 0 } };
	struct limits l;
	size_t cut;

	if (size < 2)
		return 0;
	cut = size > 2 ? data[0] % (size - 2 + 1) : 0;
	l.field = (data[1] & 15) ? (size_t)(data[1] & 15) * 3 : CSV_FIELD_MAX;
	l.record = (data[1] >> 4) ? (size_t)(data[1] >> 4) * 8 : CSV_RECORD_MAX;
	for (int how = 0; how < 3; how++) {
		buf_set_max(&r[how], 16 * 1024 * 1024);
		run(data + 2, size - 2, cut, how, &l, &r[how]);
	}
	fuzz_same_or_abort(&r[0], &r[1]);
	fuzz_same_or_abort(&r[0], &r[2]);
	for (int i = 0; i < 3; i++)
		buf_free(&r[i]);
	return 0;
}
