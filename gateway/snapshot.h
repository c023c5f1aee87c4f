/* gateway/snapshot.h: the session's fixed message list (DESIGN.md "The snapshot").
 *
 * Words, as used everywhere in gateway/:
 *   msgno  the POP3 message number, 1..count, fixed for the whole session (RFC 1939 §5)
 *   idx    the array index, msgno - 1
 *   uid    the IMAP UID (RFC 3501 §2.3.1.1); the snapshot is sorted by it
 *   uidl   what POP3 clients remember the message by (cache.h): derived from UIDVALIDITY
 *          and UID when it is sent, unless one was learned (the cache holds another)
 * Taken from UID FETCH 1:* (UID RFC822.SIZE) at login (or the stored listing of a CONDSTORE
 * server, login.c); messages that arrive later are for
 * the next session. DELE and RSET only change `flags` here; QUIT applies them upstream.
 * A message costs 13 bytes here (a learned UIDL its length more): a 100,000-message
 * mailbox is about 1.3 MB, not 8.4 MB of UIDL strings. */
#ifndef POPGATE_SNAPSHOT_H
#define POPGATE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
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
	uint32_t *learned;		/* [idx] 1 + offset of its learned UIDL in `pool`, 0 for
					   the derived one; NULL while none is learned */
	struct buf pool;		/* learned UIDLs, each NUL-terminated */
	uint32_t uidvalidity;
};

/* Records one FETCH result. A UID seen twice keeps the last size. Returns -1 on ENOMEM or
 * past GW_SNAPSHOT_MAX. */
int gw_snapshot_add(struct gw_snapshot *snap, uint32_t uid, uint64_t size);

/* The listing is complete: sorts by UID and drops duplicates. -1 on ENOMEM. */
int gw_snapshot_sort(struct gw_snapshot *snap);
/* Message idx is known by this UIDL (1..70 octets), not its derived one. -1 on ENOMEM. */
int gw_snapshot_learn(struct gw_snapshot *snap, size_t idx, const char *uidl, size_t len);
/* Message idx's UIDL: the learned one, or the derived one written into buf. */
const char *gw_snapshot_uidl(const struct gw_snapshot *snap, size_t idx,
    char buf[CACHE_UIDL_MAX]);

void gw_snapshot_free(struct gw_snapshot *snap);

/* Messages and octets not marked deleted (STAT, RFC 1939 §5). */
void gw_snapshot_stat(const struct gw_snapshot *snap, size_t *count_r, uint64_t *octets_r);

#endif
