/* common/csv.h: reading comma-separated values (RFC 4180), for `popgate uidl import`.
 *
 * A pull parser over bytes, like pop3/pop3_client.h: the caller appends whatever a read gave
 * to its buffer and asks for the next record; the same records come out however the bytes
 * are cut. What it reads:
 *  - fields separated by ",", records ended by CRLF or a bare LF (RFC 4180 §2.1 wants
 *    CRLF; Unix tools write LF); the last record may lack its line end;
 *  - a field in double quotes may hold ",", CR, LF, and '"' written as '""' (§2.5-2.7);
 *  - a UTF-8 byte order mark at the very start of the input is skipped (spreadsheets write
 *    one);
 *  - an empty line is a record of one empty field (the caller decides what it means).
 * Errors (the input is not CSV; nothing after one is read): a quote inside an unquoted field,
 * text after a closing quote, a CR not followed by LF outside quotes, a quoted field still
 * open at the end of the input, a field, a record or a field count over its bound.
 * Bytes are not interpreted otherwise: a field may hold any octet, NUL included.
 * Pure: no I/O; the parser owns the copy of the current record. */
#ifndef POPGATE_CSV_H
#define POPGATE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "slice.h"

#define CSV_FIELD_MAX 4096		/* default bound of one field, octets after unquoting */
#define CSV_RECORD_MAX (64 * 1024)	/* default bound of one record's fields together */
#define CSV_FIELDS_MAX 32		/* fields in a record */

enum csv_result {
	CSV_MORE,	/* every byte of `in` is used (but for up to 2 of a possible byte order
			   mark at the start): append more, or call with eof */
	CSV_RECORD,	/* *rec_r is a record; its slices live until the next call */
	CSV_END,	/* eof, and every record was handed out */
	CSV_ERROR,	/* rec_r->error says what, rec_r->line where; every later call says
			   the same */
};

struct csv_record {
	size_t n;				/* fields, >= 1 */
	struct slice field[CSV_FIELDS_MAX];	/* unquoted, into the parser's copy */
	uint64_t line;				/* the physical line (1-based, counted by LF)
						   the record starts on */
	const char *error;			/* CSV_ERROR only: valid until csv_free() */
};

struct csv_parser {
	size_t field_max, record_max;
	int state;				/* internal */
	bool started;				/* a byte of the current record was read */
	bool handed_out;			/* rec holds the record the last call returned */
	uint64_t line, rec_line;
	size_t nfields;				/* fields of the current record ended so far */
	size_t start[CSV_FIELDS_MAX + 1];	/* [field] its first byte in rec */
	struct buf rec;				/* the current record's unquoted bytes */
	char error[80];
};

/* field_max, record_max: 0 for CSV_FIELD_MAX, CSV_RECORD_MAX. */
void csv_init(struct csv_parser *p, size_t field_max, size_t record_max);
void csv_free(struct csv_parser *p);

/* The next record from the bytes of `in` (consumed as they are read). eof: no byte will be
 * appended any more, so a final record without its line end is complete. */
enum csv_result csv_next(struct csv_parser *p, struct buf *in, bool eof, struct csv_record *rec_r);

#endif
