/* common/cache.c: SQLite UIDL cache; see cache.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"
#include "uids.h"

struct cache {
	sqlite3 *db;
	char error[256];
};

static const char cache_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS uidl ("
	"  user TEXT NOT NULL, mailbox TEXT NOT NULL,"
	"  uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,"
	"  uidl TEXT NOT NULL, size INTEGER NOT NULL, ckey TEXT, msgid TEXT,"
	"  PRIMARY KEY (user, mailbox, uidvalidity, uid)) WITHOUT ROWID;";

/* Version 1 had no content keys: its rows get them at their user's next login. */
static const char cache_v1_to_v2[] =
	"ALTER TABLE uidl ADD COLUMN ckey TEXT;";

/* Version 3: the Message-ID of a row (for `uidl export`), pending rows (a migration, an
 * import: a UIDL and what identifies its message, no UID yet; seq is their order), and
 * users (when each was last seen, for [cache] retention_days; a user with a row here is
 * known: no live migration). The users of a v2 file count as seen now. */
static const char cache_v2_to_v3[] =
	"CREATE TABLE IF NOT EXISTS pending ("
	"  user TEXT NOT NULL, mailbox TEXT NOT NULL, seq INTEGER NOT NULL,"
	"  uidl TEXT NOT NULL, ckey TEXT, msgid TEXT, size INTEGER NOT NULL,"
	"  PRIMARY KEY (user, mailbox, seq)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX IF NOT EXISTS pending_uidl ON pending (user, mailbox, uidl);"
	"CREATE INDEX IF NOT EXISTS pending_ckey ON pending (user, mailbox, ckey, seq);"
	"CREATE INDEX IF NOT EXISTS pending_msgid ON pending (user, mailbox, msgid, seq);"
	"CREATE TABLE IF NOT EXISTS users ("
	"  user TEXT PRIMARY KEY, last_seen INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO users SELECT DISTINCT user, CAST(strftime('%s','now') AS INTEGER)"
	"  FROM uidl;";

/* Version 4: each user's last exact listing of a mailbox, for a CONDSTORE server's polls
 * (cache.h, cache_listing_get()): the SELECT's four numbers and one BLOB of the messages. */
static const char cache_v3_to_v4[] =
	"CREATE TABLE IF NOT EXISTS listing ("
	"  user TEXT NOT NULL, mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL, exist INTEGER NOT NULL, modseq INTEGER NOT NULL,"
	"  msgs BLOB NOT NULL, PRIMARY KEY (user, mailbox)) WITHOUT ROWID;";

/* The content key's lookups: by key among the old rows, and by UIDL for uniqueness. */
static const char cache_indexes[] =
	"CREATE INDEX IF NOT EXISTS uidl_ckey ON uidl (user, mailbox, ckey, uidvalidity, uid);"
	"CREATE INDEX IF NOT EXISTS uidl_uidl ON uidl (user, mailbox, uidl);";

/* Is there a row of another UIDVALIDITY? Two index ranges: "uidvalidity<>?3" would walk
 * every row of the mailbox when there is none (each routine poll). */
#define CACHE_ANY_OTHER_UIDVALIDITY \
	"SELECT 1 FROM (SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<?3 " \
	"LIMIT 1) UNION ALL SELECT 1 FROM (SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 " \
	"AND uidvalidity>?3 LIMIT 1)"

#define CACHE_VERSION 4
#define SEEN_EVERY (24 * 3600)	/* a user's last_seen is written at most once a day */

static int
user_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool
has_column(sqlite3 *db, const char *select)
{
	return sqlite3_exec(db, select, NULL, NULL, NULL) == SQLITE_OK;
}

/* Writes only what is missing: an open must not need the write lock another process may
 * hold (the file of a running gateway, an import). One transaction: a file is at one
 * version or the next, never between. */
static int
cache_migrate(sqlite3 *db)
{
	if (user_version(db) == CACHE_VERSION)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if ((has_column(db, "SELECT ckey FROM uidl LIMIT 0") ||
	    sqlite3_exec(db, cache_v1_to_v2, NULL, NULL, NULL) == SQLITE_OK) &&
	    (has_column(db, "SELECT msgid FROM uidl LIMIT 0") ||
	    sqlite3_exec(db, "ALTER TABLE uidl ADD COLUMN msgid TEXT;", NULL, NULL, NULL) ==
	    SQLITE_OK) &&
	    sqlite3_exec(db, cache_v2_to_v3, NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, cache_indexes, NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, cache_v3_to_v4, NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, "PRAGMA user_version=4", NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static const char *
cache_err(struct cache *c, const char *what)
{
	snprintf(c->error, sizeof(c->error), "%s: %s", what, sqlite3_errmsg(c->db));
	return c->error;
}

struct cache *
cache_open(const char *path, const char **error_r)
{
	static char open_error[256];
	struct cache *c;
	int fd;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	/* Created 0600 (user names, and what each user's mailbox holds, are nobody else's);
	 * SQLite gives its -wal and -shm files the database file's mode. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, CACHE_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(c->db, cache_schema, NULL, NULL, NULL) != SQLITE_OK ||
	    cache_migrate(c->db) < 0) {
		snprintf(open_error, sizeof(open_error), "cache %s: %s", path,
		    c->db ? sqlite3_errmsg(c->db) : "cannot open");
		*error_r = open_error;
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

void
cache_free(struct cache **cp)
{
	if (*cp == NULL)
		return;
	sqlite3_close((*cp)->db);
	free(*cp);
	*cp = NULL;
}

void
cache_derive_uidl(uint32_t uidvalidity, uint32_t uid, char uidl_r[CACHE_UIDL_MAX])
{
	snprintf(uidl_r, CACHE_UIDL_MAX, "%08x%08x", uid, uidvalidity);
}

/* Index of uid in the ascending array, or -1. */
static ssize_t
uid_index(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t i = uids_lower_bound(uids, n, uid);

	return i < n && uids[i] == uid ? (ssize_t)i : -1;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Rows of this UIDVALIDITY whose message is no longer in the mailbox (uids: all of it) go.
 * Best effort, its own short write: a busy file leaves them for the next login. */
static void
prune_expunged(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const uint32_t *uids, size_t n)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	uint32_t *gone = NULL;
	size_t ngone = 0, cap = 0;
	int rc;

	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(c->db, "SELECT uid FROM uidl WHERE user=?1 AND mailbox=?2 AND "
	    "uidvalidity=?3", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, "DELETE FROM uidl WHERE user=?1 AND mailbox=?2 AND "
	    "uidvalidity=?3 AND uid=?4", -1, &del, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(sel, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(sel, 2, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(sel, 3, uidvalidity);
	/* The UIDs are collected first: no row is deleted under the open cursor. */
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(sel, 0), *g;

		/* Above the session's highest UID is newer than its list, not expunged: another
		 * session may have just recorded it. */
		if (n == 0 || uid > uids[n - 1] || uid_index(uids, n, uid) >= 0)
			continue;
		if (ngone == cap) {
			cap = cap ? cap * 2 : 64;
			if ((g = realloc(gone, cap * sizeof(*gone))) == NULL)
				goto out;
			gone = g;
		}
		gone[ngone++] = uid;
	}
	if (rc != SQLITE_DONE)
		goto out;
	sqlite3_bind_text(del, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(del, 2, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(del, 3, uidvalidity);
	for (size_t i = 0; i < ngone; i++) {
		sqlite3_bind_int64(del, 4, gone[i]);
		if (step_done(del) < 0)
			goto out;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	free(gone);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	return;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	free(gone);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* One row of a single-column query: 1 (a row), 0 (none), -1 (error). */
static int
exists(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int
prepare_user(struct cache *c, const char *sql, const char *user, const char *mailbox,
    sqlite3_stmt **st_r)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st_r, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(*st_r, 1, user, -1, SQLITE_STATIC);
	if (mailbox != NULL)
		sqlite3_bind_text(*st_r, 2, mailbox, -1, SQLITE_STATIC);
	return 0;
}

/* The user's last_seen, written at most once a day so that a routine poll stays a read;
 * best effort. */
static void
note_seen(struct cache *c, const char *user, int64_t last_seen)
{
	sqlite3_stmt *st = NULL;
	int64_t now = (int64_t)time(NULL);

	if (last_seen > now - SEEN_EVERY && last_seen <= now)
		return;
	if (prepare_user(c, "INSERT INTO users (user, last_seen) VALUES (?1, ?2) ON CONFLICT "
	    "(user) DO UPDATE SET last_seen=?2", user, NULL, &st) == 0) {
		sqlite3_bind_int64(st, 2, now);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
}

static int
user_known(struct cache *c, const char *user, bool *known_r, int64_t *last_seen_r)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*known_r = false;
	*last_seen_r = 0;
	if (prepare_user(c, "SELECT last_seen FROM users WHERE user=?1", user, NULL, &st) < 0)
		goto out;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*known_r = true;
		*last_seen_r = sqlite3_column_int64(st, 0);
		rc = 0;
		goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	/* Rows without a users row: written by another process's older binary. */
	if (prepare_user(c, "SELECT 1 FROM uidl WHERE user=?1 UNION ALL SELECT 1 FROM pending "
	    "WHERE user=?1 LIMIT 1", user, NULL, &st) < 0 || (rc = exists(st)) < 0)
		goto out;
	*known_r = rc == 1;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc == 0 ? 0 : -1;
}

int
cache_user_known(struct cache *c, const char *user, bool *known_r, const char **error_r)
{
	int64_t last_seen;

	*known_r = false;
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (user_known(c, user, known_r, &last_seen) < 0) {
		*error_r = cache_err(c, "cache query");
		return -1;
	}
	return 0;
}

int
cache_lookup_learned(struct cache *c, const char *user, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n, const struct cache_answer *a,
    struct cache_found *found_r, const char **error_r)
{
	sqlite3_stmt *sel = NULL, *old = NULL, *pend = NULL;
	unsigned char *keyed = NULL;
	size_t expunged = 0;
	char derived[CACHE_UIDL_MAX];
	int64_t last_seen = 0;
	int rc;

	memset(found_r, 0, sizeof(*found_r));
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (n > 0 && (keyed = calloc(n, 1)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		free(keyed);
		return -1;
	}
	if (prepare_user(c, "SELECT uid, uidl, ckey FROM uidl WHERE user=?1 AND mailbox=?2 AND "
	    "uidvalidity=?3", user, mailbox, &sel) < 0 ||
	    prepare_user(c, CACHE_ANY_OTHER_UIDVALIDITY, user, mailbox, &old) < 0 ||
	    prepare_user(c, "SELECT 1 FROM pending WHERE user=?1 AND mailbox=?2 LIMIT 1", user,
	    mailbox, &pend) < 0)
		goto fail;
	sqlite3_bind_int64(sel, 3, uidvalidity);
	sqlite3_bind_int64(old, 3, uidvalidity);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		ssize_t idx = uid_index(uids, n, (uint32_t)sqlite3_column_int64(sel, 0));
		const unsigned char *u = sqlite3_column_text(sel, 1);
		int ulen = sqlite3_column_bytes(sel, 1);

		if (idx < 0) {
			expunged++;	/* its message is gone: pruned below */
			continue;
		}
		/* A stored UIDL must still be a valid one (RFC 1939: 0x21..0x7E, 1..70). */
		if (u == NULL || ulen < 1 || ulen >= CACHE_UIDL_MAX)
			continue;
		keyed[idx] = sqlite3_column_bytes(sel, 2) == CONTENT_KEY_LEN;
		cache_derive_uidl(uidvalidity, uids[idx], derived);
		if ((size_t)ulen != strlen(derived) || memcmp(u, derived, (size_t)ulen) != 0)
			a->learned(a->ctx, (size_t)idx, (const char *)u, (size_t)ulen);
	}
	if (rc != SQLITE_DONE || (rc = exists(old)) < 0)
		goto fail;
	found_r->rebuilt = rc == 1;
	if ((rc = exists(pend)) < 0 || user_known(c, user, &found_r->known, &last_seen) < 0)
		goto fail;
	found_r->pending = rc == 1;
	for (size_t i = 0; i < n; i++)
		if (!keyed[i])
			a->need_key(a->ctx, i);
	sqlite3_finalize(sel);
	sqlite3_finalize(old);
	sqlite3_finalize(pend);
	free(keyed);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (expunged > 0)
		prune_expunged(c, user, mailbox, uidvalidity, uids, n);
	if (found_r->known)
		note_seen(c, user, last_seen);
	return 0;
fail:
	*error_r = cache_err(c, "cache query");
	sqlite3_finalize(sel);
	sqlite3_finalize(old);
	sqlite3_finalize(pend);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	free(keyed);
	return -1;
}

static bool
valid_uidl(const char *u)
{
	size_t len = u ? strlen(u) : 0;

	if (len < 1 || len >= CACHE_UIDL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

static const char *
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

enum rec_stmt {
	ROW, SETKEY, INS, ANYOLD, ANYPEND, MATCH, TAKE, TAKEN, PTAKEN, LOST, DROP,
	PKEY, PMSGID, PSIZE, PTAKE, PLOST, PDROP, SEEN, NSTMT
};

static const char *const rec_sql[NSTMT] = {
	[ROW] = "SELECT uidl FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity=?3 AND "
	    "uid=?4",
	/* A key is never wiped by a session that could not read one. */
	[SETKEY] = "UPDATE uidl SET ckey=COALESCE(?5, ckey), msgid=COALESCE(?6, msgid) WHERE "
	    "user=?1 AND mailbox=?2 AND uidvalidity=?3 AND uid=?4",
	[INS] = "INSERT INTO uidl (user, mailbox, uidvalidity, uid, uidl, size, ckey, msgid) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	/* Old means another UIDVALIDITY, earlier or later: RFC 3501 §2.3.1.1 wants a new one
	 * greater, but a mailbox restored from a backup or moved to another backend may go
	 * back, and a session that listed the mailbox just before a rebuild another session
	 * recorded sees the earlier one. Either way its messages take the rows by key, so the
	 * UIDLs stay whichever listing records. */
	[ANYOLD] = CACHE_ANY_OTHER_UIDVALIDITY,
	[ANYPEND] = "SELECT 1 FROM pending WHERE user=?1 AND mailbox=?2 LIMIT 1",
	[MATCH] = "SELECT uidvalidity, uid, uidl FROM uidl INDEXED BY uidl_ckey WHERE "
	    "user=?1 AND mailbox=?2 AND ckey=?4 AND uidvalidity<>?3 ORDER BY uidvalidity, uid "
	    "LIMIT 1",
	[TAKE] = "DELETE FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity=?5 AND uid=?4",
	[TAKEN] = "SELECT 1 FROM uidl INDEXED BY uidl_uidl WHERE user=?1 AND mailbox=?2 AND "
	    "uidl=?4 LIMIT 1",
	[PTAKEN] = "SELECT 1 FROM pending WHERE user=?1 AND mailbox=?2 AND uidl=?4 LIMIT 1",
	[LOST] = "SELECT COUNT(*) FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<>?3",
	[DROP] = "DELETE FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<>?3",
	[PKEY] = "SELECT seq, uidl FROM pending WHERE user=?1 AND mailbox=?2 AND ckey=?4 "
	    "ORDER BY seq LIMIT 1",
	[PMSGID] = "SELECT seq, uidl FROM pending WHERE user=?1 AND mailbox=?2 AND ckey IS NULL "
	    "AND msgid=?4 ORDER BY seq LIMIT 1",
	[PSIZE] = "SELECT seq, uidl FROM pending WHERE user=?1 AND mailbox=?2 AND ckey IS NULL "
	    "AND msgid IS NULL AND size=?4 ORDER BY seq LIMIT 1",
	[PTAKE] = "DELETE FROM pending WHERE user=?1 AND mailbox=?2 AND seq=?4",
	[PLOST] = "SELECT COUNT(*) FROM pending WHERE user=?1 AND mailbox=?2 AND ckey IS NULL",
	[PDROP] = "DELETE FROM pending WHERE user=?1 AND mailbox=?2 AND ckey IS NULL",
	[SEEN] = "INSERT INTO users (user, last_seen) VALUES (?1, CAST(strftime('%s','now') AS "
	    "INTEGER)) ON CONFLICT (user) DO UPDATE SET last_seen=excluded.last_seen",
};

struct recorder {
	sqlite3_stmt *st[NSTMT];
	const struct cache_answer *a;
	uint32_t uidvalidity;
	struct cache_stats *stats;
};

/* Takes the first pending row stmt finds (bound ?4): its UIDL into uidl_r. 1 taken, 0 none,
 * -1 error. */
static int
take_pending(struct recorder *r, sqlite3_stmt *find, char uidl_r[CACHE_UIDL_MAX])
{
	int rc = sqlite3_step(find), ulen;

	if (rc != SQLITE_ROW) {
		sqlite3_reset(find);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	ulen = sqlite3_column_bytes(find, 1);
	if (ulen < 1 || ulen >= CACHE_UIDL_MAX) {
		sqlite3_reset(find);
		return -1;
	}
	memcpy(uidl_r, sqlite3_column_text(find, 1), (size_t)ulen);
	uidl_r[ulen] = '\0';
	sqlite3_bind_int64(r->st[PTAKE], 4, sqlite3_column_int64(find, 0));
	sqlite3_reset(find);
	if (step_done(r->st[PTAKE]) < 0)
		return -1;
	r->stats->imported++;
	return 1;
}

/* The old row of the same key (a rebuilt mailbox). Same returns as take_pending(). */
static int
take_old(struct recorder *r, const char *key, char uidl_r[CACHE_UIDL_MAX])
{
	sqlite3_stmt *m = r->st[MATCH];
	int rc, ulen;

	sqlite3_bind_text(m, 4, key, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(m)) != SQLITE_ROW) {
		sqlite3_reset(m);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	ulen = sqlite3_column_bytes(m, 2);
	if (ulen < 1 || ulen >= CACHE_UIDL_MAX) {
		sqlite3_reset(m);
		return -1;
	}
	memcpy(uidl_r, sqlite3_column_text(m, 2), (size_t)ulen);
	uidl_r[ulen] = '\0';
	sqlite3_bind_int64(r->st[TAKE], 5, sqlite3_column_int64(m, 0));
	sqlite3_bind_int64(r->st[TAKE], 4, sqlite3_column_int64(m, 1));
	sqlite3_reset(m);
	if (step_done(r->st[TAKE]) < 0)
		return -1;
	r->stats->matched++;
	return 1;
}

/* derived, or derived-k: never a UIDL the user has, as a row or a pending row (an old
 * server's UIDLs may look like derived ones). */
static int
fresh_uidl(struct recorder *r, const char *derived, char uidl_r[CACHE_UIDL_MAX])
{
	strcpy(uidl_r, derived);
	for (unsigned k = 1; k < 1000; k++) {
		int in_rows, in_pending;

		sqlite3_bind_text(r->st[TAKEN], 4, uidl_r, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(r->st[PTAKEN], 4, uidl_r, -1, SQLITE_TRANSIENT);
		if ((in_rows = exists(r->st[TAKEN])) < 0 || (in_pending = exists(r->st[PTAKEN])) < 0)
			return -1;
		if (!in_rows && !in_pending)
			break;
		snprintf(uidl_r, CACHE_UIDL_MAX, "%.60s-%u", derived, k);
	}
	r->stats->fresh++;
	return 0;
}

static int
insert_row(struct recorder *r, const struct cache_entry *e, const char *uidl)
{
	char derived[CACHE_UIDL_MAX];
	sqlite3_stmt *ins = r->st[INS];

	sqlite3_bind_int64(ins, 4, e->uid);
	sqlite3_bind_text(ins, 5, uidl, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(ins, 6, (sqlite3_int64)e->size);
	sqlite3_bind_text(ins, 7, nonempty(e->ckey), -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 8, nonempty(e->msgid), -1, SQLITE_STATIC);
	if (step_done(ins) < 0)
		return -1;
	cache_derive_uidl(r->uidvalidity, e->uid, derived);
	if (strcmp(uidl, derived) != 0)
		r->a->learned(r->a->ctx, e->idx, uidl, strlen(uidl));
	return 0;
}

/* A message that has a row: 1 (its UIDL stands, its key noted), 0 (no row), -1. */
static int
existing_row(struct recorder *r, const struct cache_entry *e)
{
	sqlite3_stmt *row = r->st[ROW];
	char derived[CACHE_UIDL_MAX];
	int rc;

	sqlite3_bind_int64(row, 4, e->uid);
	if ((rc = sqlite3_step(row)) != SQLITE_ROW) {
		sqlite3_reset(row);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	const unsigned char *u = sqlite3_column_text(row, 0);
	int ulen = sqlite3_column_bytes(row, 0);

	cache_derive_uidl(r->uidvalidity, e->uid, derived);
	if (u != NULL && ulen > 0 && ulen < CACHE_UIDL_MAX &&
	    ((size_t)ulen != strlen(derived) || memcmp(u, derived, (size_t)ulen) != 0))
		r->a->learned(r->a->ctx, e->idx, (const char *)u, (size_t)ulen);
	sqlite3_reset(row);
	sqlite3_bind_int64(r->st[SETKEY], 4, e->uid);
	sqlite3_bind_text(r->st[SETKEY], 5, nonempty(e->ckey), -1, SQLITE_STATIC);
	sqlite3_bind_text(r->st[SETKEY], 6, nonempty(e->msgid), -1, SQLITE_STATIC);
	return step_done(r->st[SETKEY]) < 0 ? -1 : 1;
}

int
cache_record(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const struct cache_entry *e, size_t n, const struct cache_answer *a,
    struct cache_stats *stats_r, const char **error_r)
{
	struct recorder r = { .a = a, .uidvalidity = uidvalidity, .stats = stats_r };
	char derived[CACHE_UIDL_MAX], uidl[CACHE_UIDL_MAX];
	unsigned char *later = NULL;	/* messages for the second pass */
	bool has_old, has_pending, all_keyed = true;
	int rc;

	memset(stats_r, 0, sizeof(*stats_r));
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (n > 0 && (later = calloc(n, 1)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		free(later);
		return -1;
	}
	for (size_t k = 0; k < NSTMT; k++) {
		if (prepare_user(c, rec_sql[k], user, mailbox, &r.st[k]) < 0)
			goto fail;
		sqlite3_bind_int64(r.st[k], 3, uidvalidity);
	}
	if ((rc = exists(r.st[ANYOLD])) < 0)
		goto fail;
	has_old = rc == 1 && n > 0;
	if ((rc = exists(r.st[ANYPEND])) < 0)
		goto fail;
	has_pending = rc == 1 && n > 0;
	/* First pass: rows, pending rows by key or Message-ID, old rows by key. */
	for (size_t i = 0; i < n; i++) {
		const char *key = nonempty(e[i].ckey), *msgid = nonempty(e[i].msgid);

		if ((rc = existing_row(&r, &e[i])) < 0)
			goto fail;
		if (rc == 1)
			continue;
		if ((has_old || has_pending) && key == NULL) {
			/* Not matchable yet: no row; the old and pending ones stay for next time. */
			all_keyed = false;
			continue;
		}
		/* The message's own history (a rebuilt mailbox) first, then what came from
		 * before popgate. */
		rc = has_old ? take_old(&r, key, uidl) : 0;
		if (rc == 0 && has_pending) {
			sqlite3_bind_text(r.st[PKEY], 4, key, -1, SQLITE_STATIC);
			rc = take_pending(&r, r.st[PKEY], uidl);
			if (rc == 0 && msgid != NULL) {
				sqlite3_bind_text(r.st[PMSGID], 4, msgid, -1, SQLITE_STATIC);
				rc = take_pending(&r, r.st[PMSGID], uidl);
			}
		}
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			later[i] = 1;
			continue;
		}
		if (insert_row(&r, &e[i], uidl) < 0)
			goto fail;
	}
	/* Second pass, for what nothing matched: a pending row without key or Message-ID by
	 * size, else a fresh UIDL. */
	for (size_t i = 0; i < n; i++) {
		if (!later[i])
			continue;
		rc = 0;
		if (has_pending) {
			sqlite3_bind_int64(r.st[PSIZE], 4, (sqlite3_int64)e[i].size);
			rc = take_pending(&r, r.st[PSIZE], uidl);
		}
		if (rc == 0) {
			cache_derive_uidl(uidvalidity, e[i].uid, derived);
			rc = fresh_uidl(&r, derived, uidl);
		}
		if (rc < 0 || insert_row(&r, &e[i], uidl) < 0)
			goto fail;
	}
	/* Every message had its chance: the old rows no message took are gone messages. */
	if (has_old && all_keyed) {
		if (sqlite3_step(r.st[LOST]) != SQLITE_ROW)
			goto fail;
		stats_r->lost = (size_t)sqlite3_column_int64(r.st[LOST], 0);
		if (step_done(r.st[DROP]) < 0)
			goto fail;
	}
	/* Pending rows without a content key (an import's: a Message-ID, or only a size) had
	 * their chance with every message there is: left, they would hand their UIDL to mail
	 * that arrives later (a reused Message-ID, the same size), which the client would then
	 * never download. Keyed ones stay for messages a migration still copies: a content
	 * key names one message. */
	if (has_pending && all_keyed) {
		if (sqlite3_step(r.st[PLOST]) != SQLITE_ROW)
			goto fail;
		stats_r->lost += (size_t)sqlite3_column_int64(r.st[PLOST], 0);
		sqlite3_reset(r.st[PLOST]);
		if (step_done(r.st[PDROP]) < 0)
			goto fail;
	}
	if (n > 0 && step_done(r.st[SEEN]) < 0)
		goto fail;
	for (size_t k = 0; k < NSTMT; k++)
		sqlite3_finalize(r.st[k]);
	free(later);
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache commit");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
fail:
	*error_r = cache_err(c, "cache update");
	for (size_t k = 0; k < NSTMT; k++)
		sqlite3_finalize(r.st[k]);
	free(later);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
cache_begin(struct cache *c, const char **error_r)
{
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		return -1;
	}
	return 0;
}

int
cache_commit(struct cache *c, const char **error_r)
{
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache commit");
		cache_rollback(c);
		return -1;
	}
	return 0;
}

void
cache_rollback(struct cache *c)
{
	if (c != NULL && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

bool
cache_busy(const struct cache *c)
{
	int rc;

	if (c == NULL)
		return false;
	rc = sqlite3_errcode(c->db) & 0xff;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

int
cache_user_has_rows(struct cache *c, const char *user, const char *mailbox, bool *rows_r,
    const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*rows_r = false;
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (prepare_user(c, "SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 LIMIT 1", user,
	    mailbox, &st) == 0 && (rc = exists(st)) >= 0)
		*rows_r = rc == 1;
	sqlite3_finalize(st);
	if (rc < 0) {
		*error_r = cache_err(c, "cache query");
		return -1;
	}
	return 0;
}

int
cache_add_pending(struct cache *c, const char *user, const char *mailbox,
    const struct cache_pending *rows, size_t n, size_t *added_r, const char **error_r)
{
	enum { NEXT, ROWS, HAVE, ADD, KNOWN, NP };
	static const char *const sql[NP] = {
		[NEXT] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM pending WHERE user=?1 AND "
		    "mailbox=?2",
		[ROWS] = "SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 LIMIT 1",
		[HAVE] = "SELECT 1 FROM uidl INDEXED BY uidl_uidl WHERE user=?1 AND mailbox=?2 AND "
		    "uidl=?3 UNION ALL SELECT 1 FROM pending WHERE user=?1 AND mailbox=?2 AND "
		    "uidl=?3 LIMIT 1",
		[ADD] = "INSERT INTO pending (user, mailbox, seq, uidl, ckey, msgid, size) VALUES "
		    "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		[KNOWN] = "INSERT OR IGNORE INTO users (user, last_seen) VALUES (?1, "
		    "CAST(strftime('%s','now') AS INTEGER))",
	};
	sqlite3_stmt *st[NP] = { 0 };
	bool own = false;
	int64_t seq;
	int rc;

	*added_r = 0;
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (sqlite3_get_autocommit(c->db)) {
		if (cache_begin(c, error_r) < 0)
			return -1;
		own = true;
	}
	for (size_t k = 0; k < NP; k++)
		if (prepare_user(c, sql[k], user, k == KNOWN ? NULL : mailbox, &st[k]) < 0)
			goto fail;
	if (sqlite3_step(st[NEXT]) != SQLITE_ROW)
		goto fail;
	seq = sqlite3_column_int64(st[NEXT], 0);
	if ((rc = exists(st[ROWS])) < 0)
		goto fail;
	if (rc == 1)
		n = 0;		/* logged in through popgate already: its client has our UIDLs */
	for (size_t i = 0; i < n; i++) {
		if (!valid_uidl(rows[i].uidl)) {
			snprintf(c->error, sizeof(c->error), "not a UIDL (1 to 70 characters, no "
			    "space or control character)");
			*error_r = c->error;
			goto out;
		}
		sqlite3_bind_text(st[HAVE], 3, rows[i].uidl, -1, SQLITE_STATIC);
		if ((rc = exists(st[HAVE])) < 0)
			goto fail;
		if (rc == 1)
			continue;	/* known already: importing twice changes nothing */
		sqlite3_bind_int64(st[ADD], 3, seq++);
		sqlite3_bind_text(st[ADD], 4, rows[i].uidl, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[ADD], 5, nonempty(rows[i].ckey), -1, SQLITE_STATIC);
		sqlite3_bind_text(st[ADD], 6, nonempty(rows[i].msgid), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st[ADD], 7, (sqlite3_int64)rows[i].size);
		if (step_done(st[ADD]) < 0)
			goto fail;
		(*added_r)++;
	}
	if (step_done(st[KNOWN]) < 0)
		goto fail;
	for (size_t k = 0; k < NP; k++)
		sqlite3_finalize(st[k]);
	return own ? cache_commit(c, error_r) : 0;
fail:
	*error_r = cache_err(c, "cache import");
out:
	for (size_t k = 0; k < NP; k++)
		sqlite3_finalize(st[k]);
	if (own)
		cache_rollback(c);
	*added_r = 0;
	return -1;
}

int
cache_export(struct cache *c, const char *user, const char *mailbox,
    int (*fn)(void *ctx, const struct cache_export_row *r), void *ctx, const char **error_r)
{
	static const char sql[] =
	    "SELECT user, uidl, COALESCE(msgid, ''), size, pending FROM ("
	    " SELECT user, uidl, msgid, size, 0 AS pending, uidvalidity AS o1, uid AS o2 FROM uidl"
	    "  WHERE mailbox=?2 AND (?1 IS NULL OR user=?1)"
	    " UNION ALL"
	    " SELECT user, uidl, msgid, size, 1, 0, seq FROM pending"
	    "  WHERE mailbox=?2 AND (?1 IS NULL OR user=?1))"
	    " ORDER BY user, pending, o1, o2";
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		return -1;
	}
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, mailbox, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct cache_export_row row = {
			.user = (const char *)sqlite3_column_text(st, 0),
			.uidl = (const char *)sqlite3_column_text(st, 1),
			.msgid = (const char *)sqlite3_column_text(st, 2),
			.size = (uint64_t)sqlite3_column_int64(st, 3),
			.pending = sqlite3_column_int(st, 4) != 0,
		};

		if (row.user == NULL || row.uidl == NULL || row.msgid == NULL)
			goto fail;
		r = fn(ctx, &row);
	}
	if (r == 0 && rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	return r;
fail:
	*error_r = cache_err(c, "cache export");
	sqlite3_finalize(st);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
count(struct cache *c, const char *sql, const char *user, uint64_t *n_r)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (prepare_user(c, sql, user, NULL, &st) == 0 && sqlite3_step(st) == SQLITE_ROW) {
		*n_r = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int
cache_totals(struct cache *c, struct cache_totals *t_r, const char **error_r)
{
	memset(t_r, 0, sizeof(*t_r));
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    count(c, "SELECT COUNT(*) FROM (SELECT user FROM users UNION SELECT user FROM uidl "
	    "UNION SELECT user FROM pending)", NULL, &t_r->users) < 0 ||
	    count(c, "SELECT COUNT(*) FROM uidl", NULL, &t_r->rows) < 0 ||
	    count(c, "SELECT COUNT(*) FROM pending", NULL, &t_r->pending) < 0) {
		*error_r = cache_err(c, "cache stats");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	return 0;
}

static int
exec_user(struct cache *c, const char *sql, const char *user, int64_t when, uint64_t *changes_r)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (prepare_user(c, sql, user, NULL, &st) == 0) {
		sqlite3_bind_int64(st, 2, when);
		if (sqlite3_step(st) == SQLITE_DONE) {
			rc = 0;
			if (changes_r != NULL)
				*changes_r += (uint64_t)sqlite3_changes(c->db);
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int
cache_forget(struct cache *c, const char *user, uint64_t *removed_r, const char **error_r)
{
	*removed_r = 0;
	if (cache_begin(c, error_r) < 0)
		return -1;
	if (exec_user(c, "DELETE FROM uidl WHERE user=?1", user, 0, removed_r) < 0 ||
	    exec_user(c, "DELETE FROM pending WHERE user=?1", user, 0, removed_r) < 0 ||
	    exec_user(c, "DELETE FROM listing WHERE user=?1", user, 0, NULL) < 0 ||
	    exec_user(c, "DELETE FROM users WHERE user=?1", user, 0, NULL) < 0) {
		*error_r = cache_err(c, "cache forget");
		cache_rollback(c);
		*removed_r = 0;
		return -1;
	}
	return cache_commit(c, error_r);
}

int
cache_prune_users(struct cache *c, int64_t before, uint64_t *users_r, const char **error_r)
{
	*users_r = 0;
	if (cache_begin(c, error_r) < 0)
		return -1;
	/* ?1 is NULL (no user): exec_user binds the time as ?2. A user with pending rows
	 * keeps everything: an import is never pruned, nor what it matched. */
	if (exec_user(c, "DELETE FROM uidl WHERE ?1 IS NULL AND user IN (SELECT user FROM users "
	    "WHERE last_seen<?2 AND user NOT IN (SELECT user FROM pending))", NULL, before,
	    NULL) < 0 ||
	    exec_user(c, "DELETE FROM listing WHERE ?1 IS NULL AND user IN (SELECT user FROM "
	    "users WHERE last_seen<?2 AND user NOT IN (SELECT user FROM pending))", NULL, before,
	    NULL) < 0 ||
	    exec_user(c, "DELETE FROM users WHERE ?1 IS NULL AND last_seen<?2 AND user NOT IN "
	    "(SELECT user FROM pending)", NULL, before, users_r) < 0) {
		*error_r = cache_err(c, "cache prune");
		cache_rollback(c);
		*users_r = 0;
		return -1;
	}
	return cache_commit(c, error_r);
}

/* --- the last listing (cache_listing_*) --- */

/* The BLOB: per message, varint(uid - previous uid) then varint(size), LEB128, the first
 * uid against 0. About 4-6 bytes a message instead of 12. */
static size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	return n;
}

static bool
get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v_r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v_r = v;
			return true;
		}
	}
	return false;
}

void
cache_listing_free(struct cache_listing *l)
{
	free(l->uid);
	free(l->size);
	memset(l, 0, sizeof(*l));
}

/* A BLOB into l (whose four numbers are set): false unless it holds exactly l->exists
 * messages, ascending, below UIDNEXT, and nothing else. */
static bool
listing_decode(struct cache_listing *l, const uint8_t *p, size_t len)
{
	const uint8_t *end;
	uint64_t uid = 0, d, size;
	size_t n = l->exists;

	if (p == NULL)			/* SQLite's empty BLOB */
		return n == 0;
	end = p + len;
	if (n > len / 2)		/* every message takes 2 bytes at least */
		return false;
	l->uid = malloc((n ? n : 1) * sizeof(*l->uid));
	l->size = malloc((n ? n : 1) * sizeof(*l->size));
	if (l->uid == NULL || l->size == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!get_varint(&p, end, &d) || !get_varint(&p, end, &size) || d == 0 ||
		    d >= l->uidnext || uid + d >= l->uidnext)
			return false;
		uid += d;
		l->uid[i] = (uint32_t)uid;
		l->size[i] = size;
	}
	l->n = n;
	return p == end;
}

int
cache_listing_get(struct cache *c, const char *user, const char *mailbox,
    struct cache_listing *l_r, bool *found_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(l_r, 0, sizeof(*l_r));
	*found_r = false;
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (prepare_user(c, "SELECT uidvalidity, uidnext, exist, modseq, msgs FROM listing "
	    "WHERE user=?1 AND mailbox=?2", user, mailbox, &st) < 0) {
		*error_r = cache_err(c, "cache query");
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t v[4];

		for (int i = 0; i < 4; i++)
			v[i] = sqlite3_column_int64(st, i);
		if (v[0] > 0 && v[0] <= UINT32_MAX && v[1] > 0 && v[1] <= UINT32_MAX &&
		    v[2] >= 0 && v[2] <= UINT32_MAX && v[3] > 0) {
			l_r->uidvalidity = (uint32_t)v[0];
			l_r->uidnext = (uint32_t)v[1];
			l_r->exists = (uint32_t)v[2];
			l_r->modseq = (uint64_t)v[3];
			/* A row that does not decode is no listing: the full FETCH runs. */
			*found_r = listing_decode(l_r, sqlite3_column_blob(st, 4),
			    (size_t)sqlite3_column_bytes(st, 4));
		}
		if (!*found_r)
			cache_listing_free(l_r);
	} else if (rc != SQLITE_DONE) {
		*error_r = cache_err(c, "cache query");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int
cache_listing_put(struct cache *c, const char *user, const char *mailbox,
    const struct cache_listing *l, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	uint8_t *blob;
	size_t len = 0;
	uint32_t prev = 0;
	int rc;

	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (l->n != l->exists || l->modseq == 0 || l->modseq > INT64_MAX) {
		*error_r = "listing not exact";
		return -1;
	}
	/* @UNSAFE: 5 bytes of UID delta and 10 of size at most per message */
	if ((blob = malloc(l->n * 15 + 1)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (l->uid[i] <= prev || l->uid[i] >= l->uidnext) {
			free(blob);
			*error_r = "listing not exact";
			return -1;
		}
		len += put_varint(blob + len, l->uid[i] - prev);
		len += put_varint(blob + len, l->size[i]);
		prev = l->uid[i];
	}
	if (prepare_user(c, "INSERT OR REPLACE INTO listing (user, mailbox, uidvalidity, "
	    "uidnext, exist, modseq, msgs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", user, mailbox,
	    &st) < 0) {
		free(blob);
		*error_r = cache_err(c, "cache write");
		return -1;
	}
	sqlite3_bind_int64(st, 3, l->uidvalidity);
	sqlite3_bind_int64(st, 4, l->uidnext);
	sqlite3_bind_int64(st, 5, l->exists);
	sqlite3_bind_int64(st, 6, (int64_t)l->modseq);
	sqlite3_bind_blob(st, 7, blob, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(blob);
	if (rc != SQLITE_DONE) {
		*error_r = cache_err(c, "cache write");
		return -1;
	}
	return 0;
}

int
cache_listing_forget(struct cache *c, const char *user, const char *mailbox,
    const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (prepare_user(c, "DELETE FROM listing WHERE user=?1 AND mailbox=?2", user, mailbox,
	    &st) < 0) {
		*error_r = cache_err(c, "cache write");
		return -1;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = cache_err(c, "cache write");
		return -1;
	}
	return 0;
}
