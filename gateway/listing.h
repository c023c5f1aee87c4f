/* gateway/listing.h: what a user's stored listing (the listing cache, RFC 7162; cache.h's
 * cache_listing) becomes after the session's own UPDATE. Policy, no I/O: the session asks
 * the cache to store or to forget what this says (session_listing.c). */
#ifndef POPGATE_LISTING_H
#define POPGATE_LISTING_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/cache.h"
#include "imapc.h"
#include "snapshot.h"
#include "update.h"

/* What is known once UPDATE is over. */
struct gw_listing_quit {
	const struct cache_listing *sel;	/* SELECT's four numbers (gw_login.meta) */
	bool exact;				/* the snapshot was that mailbox (gw_login.exact) */
	const struct gw_snapshot *snap;		/* GW_MSG_DELETED: what UPDATE was to remove */
	size_t removed;				/* UPDATE: ours gone upstream, by UID */
	bool update_ok;				/* UPDATE's outcome had no error */
	const struct gw_update_status *status;	/* the STATUS after the deletions */
	const struct gw_imapc *up;		/* what the connection saw since SELECT */
	size_t sel_expunges;			/* its EXPUNGE count at SELECT (gw_login) */
};

/* The mailbox now, when it is proven: true with *l_r (the snapshot minus what was deleted,
 * with STATUS's numbers; its arrays are malloc'd: cache_listing_free()). Otherwise false
 * with *why_r (for the log): the stored listing must be forgotten, so that the next poll
 * lists in full once instead of a range FETCH that cannot prove itself, then a full one. */
bool gw_listing_after_quit(const struct gw_listing_quit *q, struct cache_listing *l_r,
    const char **why_r);

#endif
