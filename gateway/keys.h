/* gateway/keys.h: learning content keys (common/content_key.h) from the upstream, as an
 * operation on an IMAP client connection: for the messages the UIDL cache has no key for,
 *   UID FETCH <set> (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)])
 * in pieces, each header block turned into its key. A routine poll asks for nothing: only
 * messages new to the cache are fetched. */
#ifndef POPGATE_KEYS_H
#define POPGATE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/cache.h"
#include "imapc.h"

struct gw_keys_params {
	struct cache_entry *entries;	/* idx, uid, size filled, ascending by uid; ckey
					   is filled here ("" when no header came), and
					   msgid (malloc'd, the owner frees it) */
	size_t n;
	/* Called once: complete when every piece was answered OK (some keys may still be
	 * "" if the server gave no header for a message, e.g. one expunged meanwhile). */
	void (*done)(void *ctx, bool complete, const char *why);
	void *ctx;
};

struct gw_keys {
	struct gw_imapc_op op;
	struct gw_imapc *up;
	struct gw_keys_params p;
	size_t sent;			/* entries asked for so far */
	unsigned inflight;		/* FETCHes not answered yet */
	bool refused;			/* a piece was refused: the others still go */
	struct buf header;		/* the literal being read (bounded) */
	bool taking;			/* a header literal of ours streams */
};

/* Starts; p->done runs once (maybe before this returns). */
void gw_keys_start(struct gw_keys *k, struct gw_imapc *up, const struct gw_keys_params *p);
void gw_keys_abort(struct gw_keys *k);

#endif
