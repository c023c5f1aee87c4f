/* common/csv.c: an RFC 4180 reader; see csv.h.
 *
 * One state per place a byte can land, kept between calls, so a record may arrive in any
 * number of pieces. Runs of ordinary bytes are copied as runs. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "csv.h"

enum {
	S_BOM,		/* nothing read yet: a byte order mark may come */
	S_FIELD,	/* at the start of a field */
	S_UNQUOTED,	/* in a field that did not start with '"' */
	S_QUOTED,	/* in a quoted field */
	S_QUOTE,	/* a '"' in a quoted field: the end, or the first of '""' */
	S_CR,		/* a CR ended the field: its LF must follow */
	S_FAILED,
};

static const uint8_t utf8_bom[3] = { 0xef, 0xbb, 0xbf };

void
csv_init(struct csv_parser *p, size_t field_max, size_t record_max)
{
	memset(p, 0, sizeof(*p));
	p->field_max = field_max ? field_max : CSV_FIELD_MAX;
	p->record_max = record_max ? record_max : CSV_RECORD_MAX;
	p->state = S_BOM;
	p->line = p->rec_line = 1;
	buf_set_max(&p->rec, p->record_max);
}

void
csv_free(struct csv_parser *p)
{
	buf_free(&p->rec);
}

static int __attribute__((format(printf, 2, 3)))
fail(struct csv_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	p->state = S_FAILED;
	return -1;
}

/* Appends n bytes to the field being read. 0, or -1 (failed) past a bound. */
static int
add(struct csv_parser *p, const uint8_t *d, size_t n)
{
	size_t have = buf_len(&p->rec) - p->start[p->nfields];
	size_t field_room = p->field_max - have, record_room = p->record_max - buf_len(&p->rec);

	/* The bound the first byte too many passes, as if the bytes came one by one: the
	 * error must not depend on how the input was cut. */
	if (n > field_room || n > record_room) {
		if (field_room <= record_room)
			return fail(p, "a field longer than %zu octets", p->field_max);
		return fail(p, "a record longer than %zu octets", p->record_max);
	}
	if (buf_append(&p->rec, d, n) < 0)
		return fail(p, "out of memory");
	return 0;
}

static int
end_field(struct csv_parser *p)
{
	if (p->nfields == CSV_FIELDS_MAX)
		return fail(p, "more than %d fields", CSV_FIELDS_MAX);
	p->start[++p->nfields] = buf_len(&p->rec);
	return 0;
}

/* c (',', CR or LF) ended a field. 1: LF, the record is complete; 0: go on; -1: failed. */
static int
delimiter(struct csv_parser *p, uint8_t c)
{
	if (end_field(p) < 0)
		return -1;
	if (c == ',') {
		p->state = S_FIELD;
		return 0;
	}
	if (c == '\r') {
		p->state = S_CR;
		return 0;
	}
	p->line++;
	return 1;
}

static enum csv_result
record(struct csv_parser *p, struct csv_record *rec_r)
{
	const uint8_t *base = buf_data(&p->rec);

	rec_r->n = p->nfields;
	for (size_t k = 0; k < p->nfields; k++) {
		rec_r->field[k].p = base + p->start[k];
		rec_r->field[k].len = p->start[k + 1] - p->start[k];
	}
	rec_r->line = p->rec_line;
	p->handed_out = true;
	p->state = S_FIELD;
	p->started = false;
	return CSV_RECORD;
}

static enum csv_result
failed(struct csv_parser *p, struct csv_record *rec_r)
{
	rec_r->n = 0;
	rec_r->line = p->rec_line;
	rec_r->error = p->error;
	return CSV_ERROR;
}

static bool
is_delimiter(uint8_t c)
{
	return c == ',' || c == '\r' || c == '\n';
}

enum csv_result
csv_next(struct csv_parser *p, struct buf *in, bool eof, struct csv_record *rec_r)
{
	const uint8_t *d = buf_data(in);
	size_t n = buf_len(in), i = 0;
	int rc = 0;

	rec_r->error = NULL;
	if (p->state == S_FAILED)
		return failed(p, rec_r);
	if (p->handed_out) {
		buf_reset(&p->rec);
		p->nfields = 0;
		p->rec_line = p->line;
		p->handed_out = false;
	}
	if (p->state == S_BOM) {
		size_t k = n < sizeof(utf8_bom) ? n : sizeof(utf8_bom);

		if (k < sizeof(utf8_bom) && !eof && memcmp(d, utf8_bom, k) == 0)
			return CSV_MORE;	/* maybe the start of one: wait for the rest */
		if (k == sizeof(utf8_bom) && memcmp(d, utf8_bom, k) == 0)
			i = k;
		p->state = S_FIELD;
	}
	while (i < n && rc == 0) {
		uint8_t c = d[i];
		size_t j;

		switch (p->state) {
		case S_FIELD:
			p->started = true;
			if (c == '"') {
				p->state = S_QUOTED;
				i++;
			} else if (is_delimiter(c)) {
				i++;
				rc = delimiter(p, c);	/* an empty field */
			} else {
				p->state = S_UNQUOTED;
			}
			break;
		case S_UNQUOTED:
			for (j = i; j < n && !is_delimiter(d[j]) && d[j] != '"'; j++)
				;
			if (j > i && add(p, d + i, j - i) < 0) {
				rc = -1;
				break;
			}
			i = j;
			if (i == n)
				break;
			if (d[i] == '"') {
				rc = fail(p, "a quote inside an unquoted field (quote the whole field, "
				    "and double the quote)");
				break;
			}
			rc = delimiter(p, d[i++]);
			break;
		case S_QUOTED:
			for (j = i; j < n && d[j] != '"'; j++)
				if (d[j] == '\n')
					p->line++;
			if (j > i && add(p, d + i, j - i) < 0) {
				rc = -1;
				break;
			}
			i = j;
			if (i < n) {
				p->state = S_QUOTE;
				i++;
			}
			break;
		case S_QUOTE:
			if (c == '"') {		/* RFC 4180 §2.7: "" is one quote */
				if ((rc = add(p, &c, 1)) == 0)
					p->state = S_QUOTED;
				i++;
			} else if (is_delimiter(c)) {
				i++;
				rc = delimiter(p, c);
			} else {
				rc = fail(p, "text after the closing quote of a field");
			}
			break;
		case S_CR:
			if (c != '\n') {
				rc = fail(p, "a CR not followed by LF (lines end in CRLF or LF)");
				break;
			}
			i++;
			p->line++;
			rc = 1;
			break;
		}
	}
	buf_consume(in, i);
	if (rc < 0)
		return failed(p, rec_r);
	if (rc == 1)
		return record(p, rec_r);
	if (!eof)
		return CSV_MORE;
	switch (p->state) {
	case S_FIELD:
		if (!p->started)
			return CSV_END;
		/* "a," ends in an empty field */
		/* FALLTHROUGH */
	case S_UNQUOTED:
	case S_QUOTE:
		if (end_field(p) < 0)
			return failed(p, rec_r);
		return record(p, rec_r);
	case S_QUOTED:
		fail(p, "a quoted field is not closed (a '\"' is missing)");
		return failed(p, rec_r);
	default:
		fail(p, "a CR not followed by LF (lines end in CRLF or LF)");
		return failed(p, rec_r);
	}
}
