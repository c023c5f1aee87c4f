/* tests/fuzz/fuzz_imap_status.c: the STATUS answer (imap/imap_status.c) under libFuzzer, on
 * what the response reader (imap/imap_parse.c) hands out.
 *
 * Input: byte 0 picks where the rest is cut in two; the rest is the server's byte stream.
 * It runs whole and in the two pieces; every LINE goes through imap_resp_parse() and, when it
 * is a STATUS, imap_status_parse() and imap_status_mailbox_is(). Aborts when the two runs'
 * renderings differ, when the mailbox slice leaves its line, when a number is out of the
 * range the header promises (an nz-number that is 0, a mod-sequence above 2^63-1), and when
 * an answer that parsed says it has an attribute with no value read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_imap.h"
#include "imap/imap_resp.h"
#include "imap/imap_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const uint8_t *line, size_t len, struct buf *b)
{
	struct imap_resp r;
	struct imap_status_info st;
	uint8_t flags = 0;

	if (!imap_resp_parse(line, len, &r) || !imap_status_is(&r))
		return;
	memset(&st, 0, sizeof(st));
	if (!imap_status_parse(&r, &st)) {
		buf_append(b, "x", 1);
		return;
	}
	if (st.mailbox.len > 0 && (st.mailbox.p < line || st.mailbox.p + st.mailbox.len > line + len))
		abort();
	if ((st.has_uidnext && st.uidnext == 0) || (st.has_uidvalidity && st.uidvalidity == 0) ||
	    (st.has_modseq && st.modseq > INT64_MAX))
		abort();
	flags = (uint8_t)(st.has_messages | st.has_uidnext << 1 | st.has_uidvalidity << 2 |
	    st.has_modseq << 3 | imap_status_mailbox_is(&st, "INBOX") << 4 |
	    imap_status_mailbox_is(&st, "a \"b\\") << 5 | st.mailbox_escaped << 6);
	buf_append(b, &flags, 1);
	buf_append(b, &st.messages, sizeof(st.messages));
	buf_append(b, &st.uidnext, sizeof(st.uidnext));
	buf_append(b, &st.uidvalidity, sizeof(st.uidvalidity));
	buf_append(b, &st.modseq, sizeof(st.modseq));
	buf_append(b, &st.mailbox.len, sizeof(st.mailbox.len));
	buf_append(b, st.mailbox.p, st.mailbox.len);
}

static void
on_event(enum imap_parse_result r, const struct imap_event *ev, struct buf *b)
{
	if (r == IMAP_PARSE_LINE)
		check_line(ev->line, ev->line_len, b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_imap_whole_and_cut(data, size, 64, on_event);
	return 0;
}
