/* common/cache.h: the SQLite UIDL cache (DESIGN.md "UIDLs and the cache").
 *
 * Maps, per user and mailbox, IMAP (UIDVALIDITY, UID) to the UIDL POP3 clients know the
 * message by. A message not yet in the cache gets a UIDL derived from UIDVALIDITY and UID
 * only, so two gateways hand out the same UIDL without sharing state; the format is
 * Dovecot's default pop3_uidl_format "%08Xu%08Xv" (lower-case hex: Dovecot's %X prints
 * with "%llx"), so mailboxes that Dovecot's own POP3 served keep their UIDLs, byte for
 * byte.
 *
 * The cache is a cache: every failure is reported to the caller, which goes on with the
 * derived UIDLs. Not for an event loop: the gateway calls it from its cache thread
 * (gateway/cache_async.c). A locked database is not waited for longer than CACHE_BUSY_MS,
 * so one busy file holds the thread's other logins up briefly only. */
#ifndef POPGATE_CACHE_H
#define POPGATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content_key.h"

#define CACHE_UIDL_MAX 71	/* RFC 1939 §7: 1..70 characters, plus NUL */
#define CACHE_BUSY_MS 100

struct cache;

/* Opens (creating if needed) the cache file. Returns NULL with *error_r set on failure. */
struct cache *cache_open(const char *path, const char **error_r);
void cache_free(struct cache **cp);

/* The derived UIDL of a message. */
void cache_derive_uidl(uint32_t uidvalidity, uint32_t uid, char uidl_r[CACHE_UIDL_MAX]);

/* What a lookup or a record hands back, message by message (idx: into the caller's list). */
struct cache_answer {
	/* The message's UIDL is not its derived one (len < CACHE_UIDL_MAX). */
	void (*learned)(void *ctx, size_t idx, const char *uidl, size_t len);
	/* The cache has no content key for it: the caller should compute one and record it. */
	void (*need_key)(void *ctx, size_t idx);
	void *ctx;
};

/* For the n messages (uids ascending) of user's mailbox under uidvalidity: the learned
 * UIDLs, the messages without a content key, and *rebuilt_r when rows of another
 * UIDVALIDITY exist (the mailbox was rebuilt: cache_record() matches them by key). Rows of
 * this UIDVALIDITY whose message is not among uids any more (expunged) are then deleted,
 * best effort (a busy file keeps them for next time). 0, or -1 with *error_r (what was
 * handed out before the error stands). */
int cache_lookup_learned(struct cache *c, const char *user, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n, const struct cache_answer *a,
    bool *rebuilt_r, const char **error_r);

struct cache_entry {
	size_t idx;			/* the caller's index, handed back to learned() */
	uint32_t uid;
	uint64_t size;
	char ckey[CONTENT_KEY_SIZE];	/* "" when it could not be computed */
};

struct cache_stats {
	size_t matched;			/* took an old message's UIDL by content key */
	size_t fresh;			/* got a new UIDL */
	size_t lost;			/* old messages no current one matched */
};

/* Records messages. One with a row keeps its UIDL (learned() says so when it is not the
 * derived one) and gets its content key, unless it has none. One without gets a row whose
 * UIDL is that of the first old row (an earlier UIDVALIDITY: the mailbox was rebuilt) with
 * its key not taken yet, in UID order, else its derived UIDL, made unique among the user's
 * UIDLs. After a rebuild, a message without a key gets no row and the old rows stay; when
 * every message had one, the old rows no message took are dropped (*stats_r counts them).
 * Rows of a later UIDVALIDITY mean the caller saw the mailbox before a rebuild another
 * session recorded: nothing is recorded. One transaction. 0, or -1 with *error_r (nothing
 * changed). */
int cache_record(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const struct cache_entry *e, size_t n, const struct cache_answer *a,
    struct cache_stats *stats_r, const char **error_r);

#endif
