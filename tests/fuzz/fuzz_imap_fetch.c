/* tests/fuzz/fuzz_imap_fetch.c: FETCH attributes (imap/imap_fetch.c) under libFuzzer, on
 * what the response reader (imap/imap_parse.c) hands out.
 *
 * Input: byte 0 picks where the rest is cut in two; the rest is the server's byte stream.
 * It runs whole and in the two pieces: every LITERAL event's line so far goes through
 * imap_fetch_head(), every LINE through imap_fetch_line() and the walk, imap_fetch_uid(),
 * imap_fetch_find_section() for each section popgate asks, and imap_quoted_next() over
 * every quoted value. Aborts when the two runs' renderings differ, when a slice leaves its
 * line, when a walk does not end, when a quoted value unescapes to more bytes than it holds, and when the walk
 * over any prefix of a complete list hands out an attribute the whole list does not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_imap.h"
#include "imap/imap_fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ATTS_MAX 64		/* attributes compared in the prefix check */

static void
check_slice(const struct slice *s, const uint8_t *line, size_t len)
{
	if (s->len > 0 && (s->p < line || s->p + s->len > line + len))
		abort();
}

static void
rec(struct buf *b, const void *p, size_t len)
{
	buf_append(b, &len, sizeof(len));
	buf_append(b, p, len);
}

static void
check_quoted(const struct imap_fetch_att *att, struct buf *b)
{
	struct slice rest = att->value, piece;
	size_t total = 0, steps = 0;

	while (imap_quoted_next(&rest, &piece)) {
		if (piece.len == 0 || ++steps > att->value.len)
			abort();
		check_slice(&piece, att->value.p, att->value.len);
		total += piece.len;
		buf_append(b, piece.p, piece.len);
	}
	if (total > att->value.len || (!att->escaped && total != att->value.len))
		abort();
}

/* Walks a complete list; then every prefix of it must give a prefix of its attributes. */
static void
check_walk(const struct slice *text, const uint8_t *line, size_t len, struct buf *b)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att, atts[ATTS_MAX];
	enum imap_fetch_step step;
	size_t n = 0, guard = 0;

	imap_fetch_iter_init(&it, text);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		if (++guard > text->len)
			abort();
		check_slice(&att.name, line, len);
		check_slice(&att.value, line, len);
		if (att.name.len == 0)
			abort();
		rec(b, att.name.p, att.name.len);
		rec(b, att.value.p, att.value.len);
		buf_append(b, &att.kind, sizeof(att.kind));
		if (att.kind == IMAP_VALUE_QUOTED)
			check_quoted(&att, b);
		if (n < ATTS_MAX)
			atts[n++] = att;
	}
	buf_append(b, &step, sizeof(step));
	if (step != IMAP_FETCH_END || text->len > 512)
		return;
	for (size_t cut = 1; cut < text->len; cut++) {
		struct slice part = { text->p, cut };
		size_t k = 0;

		imap_fetch_iter_init(&it, &part);
		while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
			if (k < n && (att.name.p != atts[k].name.p || att.name.len != atts[k].name.len ||
			    att.value.p != atts[k].value.p || att.value.len != atts[k].value.len ||
			    att.kind != atts[k].kind))
				abort();
			k++;
		}
		if (step != IMAP_FETCH_CUT || k > n)
			abort();
	}
}

static void
check_line(const uint8_t *line, size_t len, struct buf *b)
{
	static const struct imap_section want[] = {
		{ IMAP_SECTION_ALL, false, false, 0 },
		{ IMAP_SECTION_HEADER, false, false, 0 },
		{ IMAP_SECTION_TEXT, false, true, 0 },
		{ IMAP_SECTION_TEXT, false, true, 4096 },
	};
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	struct slice text;
	uint32_t seq, uid = 0;
	uint8_t flags = 0;

	if (!imap_fetch_line(line, len, &seq, &it))
		return;
	text.p = it.p;
	text.len = it.len;
	check_slice(&text, line, len);
	check_walk(&text, line, len, b);
	if (imap_fetch_uid(&text, &uid)) {
		if (uid == 0)
			abort();
		flags |= 1;
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (imap_fetch_find_section(&text, &want[i], &att)) {
			flags |= (uint8_t)(2 << i);
			check_slice(&att.value, line, len);
		}
	}
	buf_append(b, &seq, sizeof(seq));
	buf_append(b, &uid, sizeof(uid));
	buf_append(b, &flags, 1);
}

static void
check_head(const uint8_t *line, size_t len, struct buf *b)
{
	struct imap_fetch_head h;
	enum imap_fetch_head_result r = imap_fetch_head(line, len, &h);

	buf_append(b, &r, sizeof(r));
	if (r == IMAP_FETCH_HEAD_OTHER)
		return;
	buf_append(b, &h.seq, sizeof(h.seq));
	buf_append(b, &h.uid, sizeof(h.uid));
	if (r != IMAP_FETCH_HEAD_ITEM)
		return;
	check_slice(&h.name, line, len);
	if (h.name.len == 0 || (h.has_uid && h.uid == 0))
		abort();
	rec(b, h.name.p, h.name.len);
	buf_append(b, &h.section, sizeof(h.section.part));
}

static void
on_event(enum imap_parse_result r, const struct imap_event *ev, struct buf *b)
{
	if (r == IMAP_PARSE_LITERAL)
		check_head(ev->line, ev->line_len, b);
	else if (r == IMAP_PARSE_LINE)
		check_line(ev->line, ev->line_len, b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_imap_whole_and_cut(data, size, 64, on_event);
	return 0;
}
