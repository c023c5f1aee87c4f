/* gateway/snapshot.h: the session's fixed message list (DESIGN.md "The snapshot").
 *
 * Words, as used everywhere in gateway/:
 *   msgno  the POP3 message number, 1..count, fixed for the whole session (RFC 1939 §5)
 *   idx    the array index, msgno - 1
 *   uid    the IMAP UID (RFC 3501 §2.3.1.1); the snapshot is sorted by it
 *   uidl   what POP3 clients remember the message by (cache.h)
 * Taken from UID FETCH 1:* (UID RFC822.SIZE) at login; messages that arrive later are for
 * the next session. DELE and RSET only change `flags` here; QUIT applies them upstream. */
#ifndef POPGATE_SNAPSHOT_H
#define POPGATE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/cache.h"

#define GW_MSG_DELETED 0x01	/* DELE'd in this session */
#define GW_MSG_RETRIEVED 0x02	/* RETR'd (for \Seen at QUIT) */
#define GW_MSG_REMAINS 0x04	/* UPDATE: the last UID SEARCH UID named it, still upstream */

#define GW_SNAPSHOT_MAX 1000000	/* messages per mailbox we accept to list */

struct gw_snapshot {
	size_t count;			/* messages: msgno 1..count */
	size_t cap;
	uint32_t *uid;			/* [idx] IMAP UID, ascending after gw_snapshot_finish() */
	uint64_t *size;			/* [idx] RFC822.SIZE */
	uint8_t *flags;			/* [idx] GW_MSG_* */
	char (*uidl)[CACHE_UIDL_MAX];	/* [idx] filled by gw_snapshot_finish() */
	uint32_t uidvalidity;
};

/* Records one FETCH result. A UID seen twice keeps the last size. Returns -1 on ENOMEM or
 * past GW_SNAPSHOT_MAX. */
int gw_snapshot_add(struct gw_snapshot *snap, uint32_t uid, uint64_t size);

/* Sorts by UID, drops duplicates and fills the UIDLs from the cache (or derived; a cache
 * failure is logged, never fatal). Returns -1 only on ENOMEM. */
int gw_snapshot_finish(struct gw_snapshot *snap, struct cache *cache, const char *user,
    const char *mailbox);

void gw_snapshot_free(struct gw_snapshot *snap);

/* Messages and octets not marked deleted (STAT, RFC 1939 §5). */
void gw_snapshot_stat(const struct gw_snapshot *snap, size_t *count_r, uint64_t *octets_r);

#endif
