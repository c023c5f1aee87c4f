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

/* What a lookup found out about the user besides the UIDLs. */
struct cache_found {
	bool known;		/* the cache knows the user: rows, pending rows, an earlier login
				   or a finished migration (none: a live migration may run) */
	bool rebuilt;		/* rows of another UIDVALIDITY: the mailbox was rebuilt, and
				   cache_record() matches them by key */
	bool pending;		/* pending rows (an import, a migration) wait to be matched */
};

/* For the n messages (uids ascending) of user's mailbox under uidvalidity: the learned
 * UIDLs, the messages without a content key, and what *found_r says. Rows of this
 * UIDVALIDITY whose message is not among uids any more (expunged) are then deleted, and the
 * user's last-seen day noted for [cache] retention_days, both best effort (a busy file
 * keeps them for next time; a row above the highest of uids is newer than the list, not
 * expunged, and stays). 0, or -1 with *error_r (what was handed out before the error
 * stands). */
int cache_lookup_learned(struct cache *c, const char *user, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n, const struct cache_answer *a,
    struct cache_found *found_r, const char **error_r);

/* Does the cache know user (see cache_found.known)? 0, or -1 with *error_r. */
int cache_user_known(struct cache *c, const char *user, bool *known_r, const char **error_r);

struct cache_entry {
	size_t idx;			/* the caller's index, handed back to learned() */
	uint32_t uid;
	uint64_t size;
	char ckey[CONTENT_KEY_SIZE];	/* "" when it could not be computed */
	const char *msgid;		/* normalized (content_msgid_normalize()); NULL or "":
					   none. Kept for `uidl export` and import matching */
};

struct cache_stats {
	size_t imported;		/* took a pending row's UIDL (a migration, an import) */
	size_t matched;			/* took an old message's UIDL by content key */
	size_t fresh;			/* got a new UIDL */
	size_t lost;			/* old messages (and key-less pending rows) no current
					   one matched */
};

/* Records messages (ascending by uid). One with a row keeps its UIDL (learned() says so when
 * it is not the derived one) and gets its content key, unless it has none. One without a
 * row gets, in this order of preference:
 *  1. the UIDL of the first old row (another UIDVALIDITY: the mailbox was rebuilt, or
 *     restored, or this session listed it just before a rebuild another one recorded)
 *     with its key, in (UIDVALIDITY, UID) order: a message's own history first;
 *  2. the UIDL of the user's first pending row (in import order) that matches it: a
 *     pending row with a content key by key; one with a Message-ID but no key by
 *     Message-ID; one with neither by size, among the messages nothing else matched;
 *  3. its derived UIDL, made unique among the user's UIDLs and pending UIDLs ("-k").
 * While pending or old rows exist, a message without a key gets no row: it is matched at a
 * later login. Once every message had a key, the old rows no message took are dropped, and
 * so are pending rows without a content key (left, they would give their UIDL to later
 * mail of that Message-ID or size); *stats_r counts both as lost. Pending rows with a key
 * stay (a migration may still be copying their messages). One transaction. 0, or -1 with
 * *error_r (nothing changed). */
int cache_record(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const struct cache_entry *e, size_t n, const struct cache_answer *a,
    struct cache_stats *stats_r, const char **error_r);

/* A pending row: a UIDL a POP3 client knows from before popgate (the old server, a CSV
 * import), waiting for its message in the IMAP mailbox. */
struct cache_pending {
	const char *uidl;	/* 1..70 octets 0x21..0x7E */
	const char *ckey;	/* NULL or "": none (an import) */
	const char *msgid;	/* normalized; NULL or "": none */
	uint64_t size;
};

/* Adds pending rows to user's mailbox after those it has (their order is the matching
 * order). A UIDL the user already has, as a row or a pending row, is skipped, so importing a
 * file twice changes nothing (*added_r counts the rows added). A user who has rows in the
 * mailbox (who logged in through popgate before) gets none: his client knows popgate's
 * UIDLs now, and old ones would make it download those messages again. The user becomes known (no
 * live migration), also with n == 0. Inside cache_begin()/cache_commit() when the caller
 * opened a transaction, else its own. 0, or -1 with *error_r; a UIDL that is not one is
 * an error (EINVAL-like: *error_r says so). */
int cache_add_pending(struct cache *c, const char *user, const char *mailbox,
    const struct cache_pending *rows, size_t n, size_t *added_r, const char **error_r);

/* Has user rows in mailbox (has he logged in through popgate)? 0, or -1 with *error_r. */
int cache_user_has_rows(struct cache *c, const char *user, const char *mailbox, bool *rows_r,
    const char **error_r);

int cache_begin(struct cache *c, const char **error_r);
int cache_commit(struct cache *c, const char **error_r);
void cache_rollback(struct cache *c);

/* After a call that failed: was it because another connection held the file's lock past
 * CACHE_BUSY_MS (a gateway recording a login, another import)? Then the same call may work
 * a little later (`uidl import` waits for it). */
bool cache_busy(const struct cache *c);

/* For `uidl export`: each row, then each pending row, user by user (user NULL: all). */
struct cache_export_row {
	const char *user, *uidl, *msgid;	/* msgid: "" when unknown */
	uint64_t size;
	bool pending;
};
/* fn returning non-zero stops the export with that value. 0, fn's value, or -1 with
 * *error_r. */
int cache_export(struct cache *c, const char *user, const char *mailbox,
    int (*fn)(void *ctx, const struct cache_export_row *r), void *ctx, const char **error_r);

struct cache_totals {
	uint64_t users, rows, pending;
};
int cache_totals(struct cache *c, struct cache_totals *t_r, const char **error_r);

/* Removes all of user's rows, pending rows and the mark that the user is known.
 * *removed_r: rows and pending rows removed. */
int cache_forget(struct cache *c, const char *user, uint64_t *removed_r, const char **error_r);

/* [cache] retention_days: users last seen before `before` (Unix time) lose their rows and
 * become unknown; pending rows are never pruned (nor their user's mark). *users_r: how
 * many users were pruned. */
int cache_prune_users(struct cache *c, int64_t before, uint64_t *users_r, const char **error_r);

/* A user's last exact listing of a mailbox on a CONDSTORE server (RFC 7162), with what its
 * SELECT said: the next poll whose SELECT says the same skips UID FETCH 1:*. Exact means:
 * n == exists, uids ascending and all below uidnext (the mailbox as SELECT saw it). */
struct cache_listing {
	uint32_t uidvalidity, uidnext, exists;
	uint64_t modseq;		/* HIGHESTMODSEQ, 1..2^63-1 */
	size_t n;
	uint32_t *uid;			/* [idx] ascending */
	uint64_t *size;			/* [idx] RFC822.SIZE */
};

/* The stored listing: 0 with *found_r (false: none, or one that is not exact: it is not
 * used), or -1 with *error_r. l_r owns its arrays: cache_listing_free(). */
int cache_listing_get(struct cache *c, const char *user, const char *mailbox,
    struct cache_listing *l_r, bool *found_r, const char **error_r);
/* Replaces the stored listing. One that is not exact is refused (-1, nothing written). */
int cache_listing_put(struct cache *c, const char *user, const char *mailbox,
    const struct cache_listing *l, const char **error_r);
/* Drops it (a login whose listing could not be proven). 0, or -1 with *error_r. */
int cache_listing_forget(struct cache *c, const char *user, const char *mailbox,
    const char **error_r);
void cache_listing_free(struct cache_listing *l);

#endif
