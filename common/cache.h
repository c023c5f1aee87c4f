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
 * derived UIDLs. One short transaction per login; a locked database is not waited for
 * longer than CACHE_BUSY_MS (the caller runs inside an event loop). */
#ifndef POPGATE_CACHE_H
#define POPGATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_UIDL_MAX 71	/* RFC 1939 §7: 1..70 characters, plus NUL */
#define CACHE_BUSY_MS 100

struct cache;

/* Opens (creating if needed) the cache file. Returns NULL with *error_r set on failure. */
struct cache *cache_open(const char *path, const char **error_r);
void cache_free(struct cache **cp);

/* The derived UIDL of a message. */
void cache_derive_uidl(uint32_t uidvalidity, uint32_t uid, char uidl_r[CACHE_UIDL_MAX]);

/* Fills uidl_r[i] for the n messages (uids ascending) of user's mailbox: from the cache
 * where known, derived (and recorded) otherwise. uidl_r is always fully filled, also when
 * it returns -1 (then with derived UIDLs and *error_r set). */
int cache_lookup_uidls(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const uint32_t *uids, const uint64_t *sizes, size_t n, char (*uidl_r)[CACHE_UIDL_MAX],
    const char **error_r);

#endif
