/* tests/fuzz/fuzz_imap.h: the server's byte stream through the response reader
 * (imap/imap_parse.c) for the targets that check what it hands out. */
#ifndef POPGATE_FUZZ_IMAP_H
#define POPGATE_FUZZ_IMAP_H

#include "tests/fuzz/fuzz_common.h"
#include "imap/imap_parse.h"

/* One event of the reader (a LINE, a LITERAL's head, DATA...), rendered into out. */
typedef void fuzz_imap_event_fn(enum imap_parse_result r, const struct imap_event *ev,
    struct buf *out);

/* data[0..size) arriving in two reads cut at `cut`; every event goes to on_event until the
 * stream ends or the reader says it is broken. */
static inline void
fuzz_imap_stream(const uint8_t *data, size_t size, size_t cut, struct buf *out,
    fuzz_imap_event_fn *on_event)
{
	struct imap_parser p;
	struct buf in = { 0 };

	imap_parser_init(&p, 4096);
	buf_set_max(&in, size + 16);
	for (int k = 0; k < 2; k++) {
		struct imap_event ev;
		enum imap_parse_result r;

		if (buf_append(&in, data + (k ? cut : 0), k ? size - cut : cut) < 0)
			abort();
		while ((r = imap_parse_next(&p, &in, &ev)) != IMAP_PARSE_MORE &&
		    r != IMAP_PARSE_ERROR)
			on_event(r, &ev, out);
		if (r == IMAP_PARSE_ERROR)
			break;
	}
	imap_parser_free(&p);
	buf_free(&in);
}

/* fuzz_whole_and_cut() over the stream, each event to on_event. */
static fuzz_imap_event_fn *fuzz_imap_on_event;

static inline void
fuzz_imap_run(const uint8_t *data, size_t size, size_t cut, struct buf *out)
{
	fuzz_imap_stream(data, size, cut, out, fuzz_imap_on_event);
}

static inline void
fuzz_imap_whole_and_cut(const uint8_t *data, size_t size, size_t scale,
    fuzz_imap_event_fn *on_event)
{
	fuzz_imap_on_event = on_event;
	fuzz_whole_and_cut(data, size, scale, fuzz_imap_run);
}

#endif
