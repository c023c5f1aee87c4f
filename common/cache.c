/* common/cache.c: SQLite UIDL cache; see cache.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	"  uidl TEXT NOT NULL, size INTEGER NOT NULL,"
	"  PRIMARY KEY (user, mailbox, uidvalidity, uid)) WITHOUT ROWID;";

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

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, CACHE_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(c->db, cache_schema, NULL, NULL, NULL) != SQLITE_OK) {
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

int
cache_lookup_uidls(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const uint32_t *uids, const uint64_t *sizes, size_t n, char (*uidl_r)[CACHE_UIDL_MAX],
    const char **error_r)
{
	sqlite3_stmt *sel = NULL, *ins = NULL;
	unsigned char *known = NULL;
	int rc;

	for (size_t i = 0; i < n; i++)
		cache_derive_uidl(uidvalidity, uids[i], uidl_r[i]);
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if (n > 0 && (known = calloc(n, 1)) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache begin");
		free(known);
		return -1;
	}
	if (sqlite3_prepare_v2(c->db, "SELECT uid, uidl FROM uidl WHERE user=?1 AND mailbox=?2 "
	    "AND uidvalidity=?3", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO uidl (user, mailbox, uidvalidity, uid, "
	    "uidl, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(sel, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(sel, 2, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(sel, 3, uidvalidity);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		ssize_t idx = uid_index(uids, n, (uint32_t)sqlite3_column_int64(sel, 0));
		const unsigned char *u = sqlite3_column_text(sel, 1);
		int ulen = sqlite3_column_bytes(sel, 1);

		/* A stored UIDL must still be a valid one (RFC 1939: 0x21..0x7E, 1..70). */
		if (idx < 0 || u == NULL || ulen < 1 || ulen >= CACHE_UIDL_MAX)
			continue;
		memcpy(uidl_r[idx], u, (size_t)ulen);
		uidl_r[idx][ulen] = '\0';
		known[idx] = 1;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (known[i])
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, mailbox, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 3, uidvalidity);
		sqlite3_bind_int64(ins, 4, uids[i]);
		sqlite3_bind_text(ins, 5, uidl_r[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 6, (sqlite3_int64)sizes[i]);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	free(known);
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = cache_err(c, "cache commit");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
fail:
	*error_r = cache_err(c, "cache query");
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	/* UIDLs already read stay: they are right even if recording the new ones failed. */
	free(known);
	return -1;
}
