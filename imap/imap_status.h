/* imap/imap_status.h: the answer to STATUS (RFC 3501 §6.3.10 / §7.2.4, RFC 9051 §7.3.5),
 * with RFC 7162 §3.1.6's HIGHESTMODSEQ:
 *
 *   * STATUS INBOX (MESSAGES 5 UIDNEXT 8 UIDVALIDITY 1796168538 HIGHESTMODSEQ 10)
 *
 * Read whole or not at all: a mailbox name that is a literal (elided by the parser), a
 * number out of its range, an attribute named twice or bytes after the list make the
 * answer unreadable, never a partial one. Attributes popgate does not ask for are read
 * and skipped. Pure, no allocation: slices point into the response line. */
#ifndef POPGATE_IMAP_STATUS_H
#define POPGATE_IMAP_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "imap_resp.h"

struct imap_status_info {
	struct slice mailbox;		/* as sent: an atom, or a quoted string's inside */
	bool mailbox_escaped;		/* a quoted one with backslash escapes still in */
	bool has_messages, has_uidnext, has_uidvalidity, has_modseq;
	uint32_t messages;		/* number (RFC 9051: 0 .. 2^32-1) */
	uint32_t uidnext, uidvalidity;	/* nz-number */
	uint64_t modseq;		/* RFC 7162 §7 mod-sequence-valzer: 0 .. 2^63-1 */
};

/* True if r is an untagged STATUS data response. */
bool imap_status_is(const struct imap_resp *r);
/* Reads it (imap_status_is(r) must hold): true with *st_r, false if anything in it does
 * not parse. */
bool imap_status_parse(const struct imap_resp *r, struct imap_status_info *st_r);
/* Is the answer about mailbox `name` (as popgate sent it)? INBOX in any case (RFC 3501
 * §5.1), any other name byte for byte once unquoted. */
bool imap_status_mailbox_is(const struct imap_status_info *st, const char *name);

#endif
