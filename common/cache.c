/* common/cache.c: SQLite UIDL cache; see cache.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	"  uidl TEXT NOT NULL, size INTEGER NOT NULL, ckey TEXT,"
	"  PRIMARY KEY (user, mailbox, uidvalidity, uid)) WITHOUT ROWID;";

/* Version 1 had no content keys: its rows get them at their user's next login. */
static const char cache_v1_to_v2[] =
	"ALTER TABLE uidl ADD COLUMN ckey TEXT;";

/* The content key's lookups: by key among the old rows, and by UIDL for uniqueness. */
static const char cache_indexes[] =
	"CREATE INDEX IF NOT EXISTS uidl_ckey ON uidl (user, mailbox, ckey, uidvalidity, uid);"
	"CREATE INDEX IF NOT EXISTS uidl_uidl ON uidl (user, mailbox, uidl);";

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

/* Writes only what is missing: an open must not need the write lock another process may
 * hold (the file of a running gateway, an import). */
static int
cache_migrate(sqlite3 *db)
{
	if (user_version(db) == 2)
		return 0;
	if (sqlite3_exec(db, "SELECT ckey FROM uidl LIMIT 0", NULL, NULL, NULL) != SQLITE_OK &&
	    sqlite3_exec(db, cache_v1_to_v2, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(db, cache_indexes, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	return sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
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

		if (uid_index(uids, n, uid) >= 0)
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

int
cache_lookup_learned(struct cache *c, const char *user, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n, const struct cache_answer *a,
    bool *rebuilt_r, const char **error_r)
{
	sqlite3_stmt *sel = NULL, *old = NULL;
	unsigned char *keyed = NULL;
	size_t expunged = 0;
	char derived[CACHE_UIDL_MAX];
	int rc;

	*rebuilt_r = false;
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
	if (sqlite3_prepare_v2(c->db, "SELECT uid, uidl, ckey FROM uidl WHERE user=?1 AND "
	    "mailbox=?2 AND uidvalidity=?3", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, "SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 AND "
	    "uidvalidity<?3 LIMIT 1", -1, &old, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(sel, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(sel, 2, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(sel, 3, uidvalidity);
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
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_bind_text(old, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(old, 2, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(old, 3, uidvalidity);
	if ((rc = sqlite3_step(old)) != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	*rebuilt_r = rc == SQLITE_ROW;
	for (size_t i = 0; i < n; i++)
		if (!keyed[i])
			a->need_key(a->ctx, i);
	sqlite3_finalize(sel);
	sqlite3_finalize(old);
	free(keyed);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (expunged > 0)
		prune_expunged(c, user, mailbox, uidvalidity, uids, n);
	return 0;
fail:
	*error_r = cache_err(c, "cache query");
	sqlite3_finalize(sel);
	sqlite3_finalize(old);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	free(keyed);
	return -1;
}

int
cache_record(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const struct cache_entry *e, size_t n, const struct cache_answer *a,
    struct cache_stats *stats_r, const char **error_r)
{
	enum { ROW, SETKEY, INS, NEWER, ANYOLD, MATCH, TAKE, TAKEN, LOST, DROP, NSTMT };
	static const char *const sql[NSTMT] = {
		[ROW] = "SELECT uidl FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity=?3 "
		    "AND uid=?4",
		/* A key is never wiped by a session that could not read one. */
		[SETKEY] = "UPDATE uidl SET ckey=COALESCE(?5, ckey) WHERE user=?1 AND mailbox=?2 "
		    "AND uidvalidity=?3 AND uid=?4",
		[INS] = "INSERT INTO uidl (user, mailbox, uidvalidity, uid, uidl, size, ckey) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		/* Old means an earlier UIDVALIDITY (RFC 3501 §2.3.1.1: a new one is greater): a
		 * session that saw the mailbox before its rebuild never takes the new rows. */
		[NEWER] = "SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity>?3 "
		    "LIMIT 1",
		[ANYOLD] = "SELECT 1 FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<?3 "
		    "LIMIT 1",
		[MATCH] = "SELECT uidvalidity, uid, uidl FROM uidl INDEXED BY uidl_ckey WHERE "
		    "user=?1 AND mailbox=?2 AND ckey=?4 AND uidvalidity<?3 ORDER BY uidvalidity, "
		    "uid LIMIT 1",
		[TAKE] = "DELETE FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity=?5 AND "
		    "uid=?4",
		[TAKEN] = "SELECT 1 FROM uidl INDEXED BY uidl_uidl WHERE user=?1 AND mailbox=?2 "
		    "AND uidl=?5 LIMIT 1",
		[LOST] = "SELECT COUNT(*) FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<?3",
		[DROP] = "DELETE FROM uidl WHERE user=?1 AND mailbox=?2 AND uidvalidity<?3",
	};
	sqlite3_stmt *st[NSTMT] = { 0 };
	char derived[CACHE_UIDL_MAX], uidl[CACHE_UIDL_MAX];
	bool has_old, all_keyed = true;
	int rc;

	memset(stats_r, 0, sizeof(*stats_r));
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		return -1;
	}
	for (size_t k = 0; k < NSTMT; k++) {
		if (sqlite3_prepare_v2(c->db, sql[k], -1, &st[k], NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st[k], 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[k], 2, mailbox, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st[k], 3, uidvalidity);
	}
	/* A session that saw the mailbox before a rebuild another session has recorded: what it
	 * knows is history; it records nothing (and serves derived UIDLs until it logs in again). */
	if ((rc = sqlite3_step(st[NEWER])) == SQLITE_ROW)
		n = 0;
	else if (rc != SQLITE_DONE)
		goto fail;
	if ((rc = sqlite3_step(st[ANYOLD])) != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	has_old = rc == SQLITE_ROW && n > 0;
	for (size_t i = 0; i < n; i++) {
		const char *key = e[i].ckey[0] ? e[i].ckey : NULL;

		cache_derive_uidl(uidvalidity, e[i].uid, derived);
		/* A row already (another session of the user was first): its UIDL is the one. */
		sqlite3_bind_int64(st[ROW], 4, e[i].uid);
		if ((rc = sqlite3_step(st[ROW])) == SQLITE_ROW) {
			const unsigned char *u = sqlite3_column_text(st[ROW], 0);
			int ulen = sqlite3_column_bytes(st[ROW], 0);

			if (u != NULL && ulen > 0 && ulen < CACHE_UIDL_MAX &&
			    ((size_t)ulen != strlen(derived) || memcmp(u, derived, (size_t)ulen) != 0))
				a->learned(a->ctx, e[i].idx, (const char *)u, (size_t)ulen);
			sqlite3_reset(st[ROW]);
			sqlite3_bind_int64(st[SETKEY], 4, e[i].uid);
			sqlite3_bind_text(st[SETKEY], 5, key, -1, SQLITE_STATIC);
			if (step_done(st[SETKEY]) < 0)
				goto fail;
			continue;
		}
		sqlite3_reset(st[ROW]);
		if (rc != SQLITE_DONE)
			goto fail;
		strcpy(uidl, derived);
		if (has_old && key == NULL) {
			/* Not matchable yet: no row, and the old ones stay for the next login. */
			all_keyed = false;
			continue;
		}
		rc = SQLITE_DONE;
		if (has_old) {
			sqlite3_bind_text(st[MATCH], 4, key, -1, SQLITE_STATIC);
			rc = sqlite3_step(st[MATCH]);
		}
		if (rc == SQLITE_ROW && sqlite3_column_bytes(st[MATCH], 2) > 0 &&
		    sqlite3_column_bytes(st[MATCH], 2) < CACHE_UIDL_MAX) {
			int ulen = sqlite3_column_bytes(st[MATCH], 2);

			memcpy(uidl, sqlite3_column_text(st[MATCH], 2), (size_t)ulen);
			uidl[ulen] = '\0';
			sqlite3_bind_int64(st[TAKE], 5, sqlite3_column_int64(st[MATCH], 0));
			sqlite3_bind_int64(st[TAKE], 4, sqlite3_column_int64(st[MATCH], 1));
			sqlite3_reset(st[MATCH]);
			if (step_done(st[TAKE]) < 0)
				goto fail;
			stats_r->matched++;
		} else {
			sqlite3_reset(st[MATCH]);
			if (rc != SQLITE_DONE && rc != SQLITE_ROW)
				goto fail;
			/* After a rebuild, a new UIDL is never one an old message of the user had. */
			for (unsigned k = 1; has_old && k < 1000; k++) {
				sqlite3_bind_text(st[TAKEN], 5, uidl, -1, SQLITE_TRANSIENT);
				rc = sqlite3_step(st[TAKEN]);
				sqlite3_reset(st[TAKEN]);
				if (rc == SQLITE_DONE)
					break;
				if (rc != SQLITE_ROW)
					goto fail;
				snprintf(uidl, sizeof(uidl), "%.60s-%u", derived, k);
			}
			stats_r->fresh++;
		}
		sqlite3_bind_int64(st[INS], 4, e[i].uid);
		sqlite3_bind_text(st[INS], 5, uidl, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st[INS], 6, (sqlite3_int64)e[i].size);
		sqlite3_bind_text(st[INS], 7, key, -1, SQLITE_STATIC);
		if (step_done(st[INS]) < 0)
			goto fail;
		if (strcmp(uidl, derived) != 0)
			a->learned(a->ctx, e[i].idx, uidl, strlen(uidl));
	}
	/* Every message had its chance: the old rows no message took are gone messages. */
	if (has_old && all_keyed) {
		if (sqlite3_step(st[LOST]) != SQLITE_ROW)
			goto fail;
		stats_r->lost = (size_t)sqlite3_column_int64(st[LOST], 0);
		if (step_done(st[DROP]) < 0)
			goto fail;
	}
	for (size_t k = 0; k < NSTMT; k++)
		sqlite3_finalize(st[k]);
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache commit");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
fail:
	*error_r = cache_err(c, "cache update");
	for (size_t k = 0; k < NSTMT; k++)
		sqlite3_finalize(st[k]);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
