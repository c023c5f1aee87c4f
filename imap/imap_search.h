/* imap/imap_search.h: reading the answer to a (UID) SEARCH, in either of its forms.
 *
 *   * SEARCH 2 84 882                          RFC 3501 §7.2.5 (IMAP4rev1)
 *   * ESEARCH (TAG "A5") UID ALL 2,10:11       RFC 4731 §3.1, RFC 9051 §7.3.4 (IMAP4rev2,
 *   * ESEARCH (TAG "A5") UID                      where it is the only form: no match -> no ALL)
 *
 * The numbers come out as ranges (a SEARCH number n is the range n:n), so a server's
 * "1:100000" costs one call, not a hundred thousand. A SEARCH answer carries no tag: the
 * caller knows it belongs to its command only because that is the one SEARCH it has
 * running. An ESEARCH answer names its command's tag; one without a TAG correlator is not
 * anybody's answer (RFC 4731 §3.1: "MUST" carry it when answering a tagged command).
 *
 * Not for: MIN, MAX, COUNT or MODSEQ results (read, checked, and not handed out), SEARCH
 * answers to commands with RETURN (PARTIAL ...). Pure: no allocation, no I/O. */
#ifndef POPGATE_IMAP_SEARCH_H
#define POPGATE_IMAP_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "imap_resp.h"

struct imap_search_info {
	bool esearch;		/* the ESEARCH form */
	struct slice tag;	/* ESEARCH: the correlator's tag (unquoted); empty otherwise */
	bool uid;		/* ESEARCH: "UID": the numbers are UIDs (a plain SEARCH answer
				   to UID SEARCH is UIDs too; the caller knows what it asked) */
};

/* Called for each range lo <= hi of the result, in the server's order (not sorted, and
 * ranges may overlap). Returns false to stop: imap_search_parse() then returns false. */
typedef bool imap_search_range_fn(void *ctx, uint32_t lo, uint32_t hi);

/* True if r is an untagged SEARCH or ESEARCH data response. */
bool imap_search_is(const struct imap_resp *r);

/* Reads a SEARCH or ESEARCH response (imap_search_is(r) must hold). Returns true when it
 * is well-formed, with *info_r filled and every range handed to fn; false when anything
 * in it does not parse (a zero, a number past 2^32-1, a broken sequence set, an unknown
 * ESEARCH item with no readable value, trailing bytes). fn may have been called for the
 * ranges before the error: the caller keeps what it gathered only when this returns true. */
bool imap_search_parse(const struct imap_resp *r, struct imap_search_info *info_r,
    imap_search_range_fn *fn, void *ctx);

/* Case-sensitive compare of an ESEARCH tag with our command's tag (RFC 3501: tags are
 * compared as strings). */
bool imap_search_tag_is(const struct imap_search_info *info, const char *tag);

#endif
