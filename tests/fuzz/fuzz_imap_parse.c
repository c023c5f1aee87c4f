/* tests/fuzz/fuzz_imap_parse.c: the IMAP response reader (imap/imap_parse.c) and the line
 * reader (imap/imap_resp.c) under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut in two; the rest is the server's byte stream.
 * Two set-ups (default limits; a 32-byte line and 64-byte literal limit that make errors
 * common) each run the stream whole, in the two pieces and (short inputs) byte by byte,
 * as the gateway does: append, pull events until MORE, stop at ERROR. Every LINE goes
 * through imap_resp_parse(), imap_fetch_number(text, "UID"), imap_caps_has(),
 * imap_code_is() and, for SEARCH/ESEARCH answers, imap_search_parse(). Aborts when the runs' renderings (events, DATA pieces merged) differ,
 * or when a result breaks the contract: a line over the limit or holding LF, DATA not
 * inside the input buffer, a literal whose DATA does not add up to its size, a slice
 * outside its line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "imap/imap_fetch.h"
#include "imap/imap_parse.h"
#include "imap/imap_resp.h"
#include "imap/imap_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BYTEWISE_MAX 4096	/* byte-by-byte runs only for inputs up to this size */

struct record {
	struct buf b;
	size_t data_len_at;	/* where the open DATA run's length field is, or 0 */
	bool in_data;
};

static void
rec_event(struct record *r, uint8_t type, const void *p, uint64_t len)
{
	r->in_data = false;
	buf_append(&r->b, &type, 1);
	buf_append(&r->b, &len, sizeof(len));
	buf_append(&r->b, p, (size_t)len);
}

/* Consecutive DATA pieces render as one: how reads cut a literal is not the parser's say. */
static void
rec_data(struct record *r, const uint8_t *p, size_t len)
{
	uint64_t total;

	if (r->b.failed)
		return;		/* reported once the run is over */
	if (!r->in_data) {
		rec_event(r, 'D', "", 0);
		r->data_len_at = buf_len(&r->b) - sizeof(total);
		r->in_data = true;
	}
	memcpy(&total, r->b.data + r->b.off + r->data_len_at, sizeof(total));
	total += len;
	memcpy(r->b.data + r->b.off + r->data_len_at, &total, sizeof(total));
	buf_append(&r->b, p, len);
}

static uint64_t
fnv1a(const uint8_t *p, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void
check_slice(const struct slice *s, const uint8_t *line, size_t len)
{
	if (s->len > 0 && (s->p < line || s->p + s->len > line + len))
		abort();
}

/* A SEARCH range must be ordered and name no zero; summed so the runs can be compared. */
static bool
search_range(void *ctx, uint32_t lo, uint32_t hi)
{
	if (lo == 0 || lo > hi)
		abort();
	*(uint64_t *)ctx += (uint64_t)hi - lo + 1;
	return true;
}

/* The line reader on one complete line: whatever it says must stay inside the line. */
static void
check_line(const uint8_t *line, size_t len, struct record *rec)
{
	struct imap_resp r;
	struct slice arg;
	uint64_t v = 0;
	uint8_t flags = 0;

	if (imap_resp_parse(line, len, &r)) {
		flags |= 1;
		check_slice(&r.tag, line, len);
		check_slice(&r.name, line, len);
		check_slice(&r.code, line, len);
		check_slice(&r.text, line, len);
		if (r.kind == IMAP_RESP_TAGGED && (r.tag.len == 0 || r.status == IMAP_STATUS_NONE))
			abort();
		if (imap_code_is(&r, "CAPABILITY", &arg)) {
			flags |= 2;
			check_slice(&arg, r.code.p, r.code.len);
			if (imap_caps_has(&arg, "LITERAL+"))
				flags |= 4;
		}
		if (imap_caps_has(&r.text, "LITERAL+"))
			flags |= 8;
		if (imap_fetch_number(&r.text, "UID", &v)) {
			flags |= 16;
			if (r.text.len == 0 || r.text.p[0] != '(')
				abort();
		}
		if (imap_code_is(&r, "UIDVALIDITY", &arg) && imap_slice_to_u64(&arg, &v))
			flags |= 32;
		if (imap_search_is(&r)) {
			struct imap_search_info info;
			uint64_t total = 0;

			if (imap_search_parse(&r, &info, search_range, &total)) {
				flags |= 64;
				check_slice(&info.tag, line, len);
				v += total;
			}
		}
	}
	buf_append(&rec->b, &flags, 1);
	buf_append(&rec->b, &v, sizeof(v));
}

static void
run(const uint8_t *data, size_t size, size_t piece, size_t cut, size_t line_max,
    uint64_t literal_max, struct record *rec)
{
	struct imap_parser p;
	struct buf in = { 0 };
	size_t from = 0;
	uint64_t lit_left = 0, h;
	bool in_literal = false, stopped = false;

	imap_parser_init(&p, line_max);
	p.literal_max = literal_max;
	buf_set_max(&in, size + 16);
	for (size_t k = 0;; k++) {
		size_t to = piece ? (size - from < piece ? size : from + piece) : k == 0 ? cut : size;

		if (buf_append(&in, data + from, to - from) < 0)
			abort();
		from = to;
		while (!stopped) {
			struct imap_event ev;
			enum imap_parse_result r = imap_parse_next(&p, &in, &ev);

			if (r == IMAP_PARSE_MORE)
				break;
			switch (r) {
			case IMAP_PARSE_LINE:
			case IMAP_PARSE_LITERAL:
				if (in_literal || ev.line_len > line_max || ev.line == NULL ||
				    memchr(ev.line, '\n', ev.line_len) != NULL)
					abort();
				if (r == IMAP_PARSE_LINE) {
					rec_event(rec, 'L', ev.line, ev.line_len);
					check_line(ev.line, ev.line_len, rec);
					break;
				}
				/* Each literal repeats the line so far: a hash keeps the record linear. */
				h = fnv1a(ev.line, ev.line_len);
				rec_event(rec, 'T', &h, sizeof(h));
				buf_append(&rec->b, &ev.line_len, sizeof(ev.line_len));
				if (literal_max != 0 && ev.literal_size > literal_max)
					abort();
				buf_append(&rec->b, &ev.literal_size, sizeof(ev.literal_size));
				lit_left = ev.literal_size;
				in_literal = true;
				break;
			case IMAP_PARSE_LITERAL_DATA:
				if (!in_literal || ev.data_len == 0 || ev.data_len > lit_left ||
				    ev.data < in.data || ev.data + ev.data_len > in.data + in.cap)
					abort();
				lit_left -= ev.data_len;
				rec_data(rec, ev.data, ev.data_len);
				break;
			case IMAP_PARSE_LITERAL_END:
				if (!in_literal || lit_left != 0)
					abort();
				in_literal = false;
				rec_event(rec, 'E', "", 0);
				break;
			case IMAP_PARSE_ERROR:
				if (ev.error == NULL)
					abort();
				rec_event(rec, 'X', ev.error, strlen(ev.error));
				stopped = true;
				break;
			default:
				abort();
			}
		}
		if (from == size && (piece || k >= 1))
			break;
	}
	if (!stopped && !in_literal && buf_len(&p.line) > line_max)
		abort();
	imap_parser_free(&p);
	buf_free(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		size_t line_max;
		uint64_t literal_max;
	} setups[] = {
		{ IMAP_LINE_MAX_DEFAULT, 0 },
		{ 32, 64 },
	};
	size_t cut;

	if (size == 0)
		return 0;
	cut = data[0] % size;			/* 0 .. size - 1 bytes of the rest */
	data++;
	size--;
	for (size_t s = 0; s < sizeof(setups) / sizeof(setups[0]); s++) {
		struct record whole = { { 0 }, 0, false }, two = { { 0 }, 0, false };
		struct record bytes = { { 0 }, 0, false };
		size_t cap = 64 * size + 1024;

		buf_set_max(&whole.b, cap);
		buf_set_max(&two.b, cap);
		buf_set_max(&bytes.b, cap);
		run(data, size, 0, size, setups[s].line_max, setups[s].literal_max, &whole);
		run(data, size, 0, cut, setups[s].line_max, setups[s].literal_max, &two);
		if (whole.b.failed || two.b.failed)
			abort();
		fuzz_same_or_abort(&whole.b, &two.b);
		if (size <= BYTEWISE_MAX) {
			run(data, size, 1, 0, setups[s].line_max, setups[s].literal_max, &bytes);
			if (bytes.b.failed)
				abort();
			fuzz_same_or_abort(&whole.b, &bytes.b);
		}
		buf_free(&whole.b);
		buf_free(&two.b);
		buf_free(&bytes.b);
	}
	return 0;
}
