/* gateway/listing.c: the stored listing after our own UPDATE; see listing.h.
 *
 * The listing of a mailbox is its set of UIDs with their sizes, stored with UIDVALIDITY,
 * UIDNEXT, EXISTS and HIGHESTMODSEQ of one moment (cache.h), and login.c trusts it only as
 * far as those numbers prove. After our DELE + QUIT the mailbox is the login's listing
 * minus what we removed, provided nothing else happened in between, and that is proven
 * here, never assumed:
 *  - the login's listing was exactly the mailbox SELECT saw (cached or fetched whole);
 *  - every marked message is gone (UPDATE decided it by UID), and the connection saw as
 *    many EXPUNGEs as we removed and no arrival (EXISTS = SELECT's - removed);
 *  - STATUS, asked after the deletions, says the same UIDVALIDITY and UIDNEXT as SELECT
 *    (no message came: UIDs only grow, RFC 3501 §2.3.1.1), MESSAGES = SELECT's EXISTS -
 *    removed (nobody else removed one) and a HIGHESTMODSEQ not below SELECT's.
 * STATUS's numbers are then the new listing's. Should a server's STATUS be late on one of
 * them, the next poll still sees a difference and does not take the stored listing as is
 * (a HIGHESTMODSEQ that is low costs a range FETCH, proven by count). Anything short of the
 * proof forgets the stored listing. */
#include <stdlib.h>
#include <string.h>

#include "listing.h"

static bool
fail(const char **why_r, const char *why)
{
	*why_r = why;
	return false;
}

bool
gw_listing_after_quit(const struct gw_listing_quit *q, struct cache_listing *l_r,
    const char **why_r)
{
	const struct cache_listing *sel = q->sel;
	const struct gw_update_status *st = q->status;
	const struct gw_snapshot *snap = q->snap;
	size_t marked = 0, n = 0;

	memset(l_r, 0, sizeof(*l_r));
	for (size_t i = 0; i < snap->count; i++)
		marked += (snap->flags[i] & GW_MSG_DELETED) != 0;
	if (!q->exact)
		return fail(why_r, "the session's listing was not exactly the mailbox");
	if (!q->update_ok || q->removed != marked || marked > sel->exists)
		return fail(why_r, "not every deleted message is known to be gone");
	if (q->up->uidvalidity_changed)
		return fail(why_r, "UIDVALIDITY changed");
	if (q->up->expunges - q->sel_expunges != q->removed)
		return fail(why_r, "other messages were expunged");
	if (q->up->exists != sel->exists - marked)
		return fail(why_r, "a message arrived");
	if (!st->sent || !st->ok)
		return fail(why_r, "no readable STATUS answer");
	if (st->uidvalidity != sel->uidvalidity || st->uidnext != sel->uidnext)
		return fail(why_r, "STATUS: UIDVALIDITY or UIDNEXT moved (a message arrived)");
	if (st->messages != sel->exists - marked)
		return fail(why_r, "STATUS: MESSAGES is not the listing's count");
	if (st->modseq == 0 || st->modseq < sel->modseq)
		return fail(why_r, "STATUS: HIGHESTMODSEQ unusable");
	l_r->uid = malloc((snap->count ? snap->count : 1) * sizeof(*l_r->uid));
	l_r->size = malloc((snap->count ? snap->count : 1) * sizeof(*l_r->size));
	if (l_r->uid == NULL || l_r->size == NULL) {
		cache_listing_free(l_r);
		return fail(why_r, "out of memory");
	}
	for (size_t i = 0; i < snap->count; i++) {
		if (snap->flags[i] & GW_MSG_DELETED)
			continue;
		l_r->uid[n] = snap->uid[i];
		l_r->size[n++] = snap->size[i];
	}
	l_r->uidvalidity = st->uidvalidity;
	l_r->uidnext = st->uidnext;
	l_r->exists = st->messages;
	l_r->modseq = st->modseq;
	l_r->n = n;
	return true;
}
