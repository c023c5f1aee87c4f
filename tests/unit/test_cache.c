/* tests/unit/test_cache.c: the SQLite UIDL cache (common/cache.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../common/cache.h"
#include "unit.h"

static char dbpath[64];
static sqlite3 *c_db_for_v3;

static int
setup(void **state)
{
	(void)state;
	return unit_db_name(dbpath, sizeof(dbpath));	/* cache_open creates it */
}

static int
teardown(void **state)
{
	(void)state;
	unit_db_remove(dbpath);
	return 0;
}

/* What a login does with the cache, as one call over a full array (the gateway does the same
 * in two requests on its cache thread): uidl_r[i] for every message, learned or derived, and
 * every message not recorded yet recorded (without a content key). */
struct array_ctx {
	char (*uidl_r)[CACHE_UIDL_MAX];
	struct cache_entry *e;
	size_t ne;
	const uint32_t *uids;
	const uint64_t *sizes;
};

static void
learned_into_array(void *ctx, size_t idx, const char *uidl, size_t len)
{
	struct array_ctx *x = ctx;

	memcpy(x->uidl_r[idx], uidl, len);
	x->uidl_r[idx][len] = '\0';
}

static void
need_key_into_entries(void *ctx, size_t idx)
{
	struct array_ctx *x = ctx;

	x->e[x->ne++] = (struct cache_entry){ idx, x->uids[idx], x->sizes[idx], "", NULL };
}

static int
cache_lookup_uidls(struct cache *c, const char *user, const char *mailbox, uint32_t uidvalidity,
    const uint32_t *uids, const uint64_t *sizes, size_t n, char (*uidl_r)[CACHE_UIDL_MAX],
    const char **error_r)
{
	struct array_ctx x = { uidl_r, NULL, 0, uids, sizes };
	struct cache_answer a = { learned_into_array, need_key_into_entries, &x };
	struct cache_stats stats;
	struct cache_found found;
	int r;

	for (size_t i = 0; i < n; i++)
		cache_derive_uidl(uidvalidity, uids[i], uidl_r[i]);
	if (c == NULL) {
		*error_r = "no cache";
		return -1;
	}
	if ((x.e = calloc(n ? n : 1, sizeof(*x.e))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	r = cache_lookup_learned(c, user, mailbox, uidvalidity, uids, n, &a, &found, error_r);
	if (r == 0 && x.ne > 0)
		r = cache_record(c, user, mailbox, uidvalidity, x.e, x.ne, &a, &stats, error_r);
	free(x.e);
	return r;
}

static void
test_derive_format(void **state)
{
	char u[CACHE_UIDL_MAX];

	(void)state;
	/* Dovecot's default pop3_uidl_format %08Xu%08Xv: UID first, then UIDVALIDITY, in
	 * lower-case hex (Dovecot's %X modifier prints with "%llx"). */
	cache_derive_uidl(0x5f3a1b2cu, 7, u);
	assert_string_equal(u, "000000075f3a1b2c");
	cache_derive_uidl(UINT32_MAX, UINT32_MAX, u);
	assert_string_equal(u, "ffffffffffffffff");
}

static void
test_lookup_stable_across_opens(void **state)
{
	const uint32_t uids[] = { 1, 2, 9 };
	const uint64_t sizes[] = { 100, 200, 300 };
	char a[3][CACHE_UIDL_MAX], b[3][CACHE_UIDL_MAX];
	const char *error = NULL;
	struct cache *c;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "alice", "INBOX", 42, uids, sizes, 3, a, &error), 0);
	cache_free(&c);
	assert_null(c);
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "alice", "INBOX", 42, uids, sizes, 3, b, &error), 0);
	for (int i = 0; i < 3; i++)
		assert_string_equal(a[i], b[i]);
	assert_string_equal(a[2], "000000090000002a");
	cache_free(&c);
}

static void
test_stored_uidl_wins(void **state)
{
	const uint32_t uids[] = { 5 };
	const uint64_t sizes[] = { 10 };
	char u[1][CACHE_UIDL_MAX];
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "bob", "INBOX", 1, uids, sizes, 1, u, &error), 0);
	cache_free(&c);
	/* An imported UIDL (what the old POP3 server said) replaces the derived one. */
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE uidl SET uidl='old-pop3-uidl' WHERE user='bob'",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "bob", "INBOX", 1, uids, sizes, 1, u, &error), 0);
	assert_string_equal(u[0], "old-pop3-uidl");
	/* Another user's mailbox is separate. */
	assert_int_equal(cache_lookup_uidls(c, "carol", "INBOX", 1, uids, sizes, 1, u, &error), 0);
	assert_string_equal(u[0], "0000000500000001");
	cache_free(&c);
}

/* What a lookup records: one row per message, in the file, for the next process. */
static void
test_lookup_records_each_message(void **state)
{
	const uint32_t uids[] = { 1, 2, 9 };
	const uint64_t sizes[] = { 100, 200, 300 };
	char u[3][CACHE_UIDL_MAX];
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;
	sqlite3_stmt *st;
	int rows = 0;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "alice", "INBOX", 42, uids, sizes, 3, u, &error), 0);
	cache_free(&c);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT user, mailbox, uidvalidity, uid, uidl, size "
	    "FROM uidl ORDER BY uid", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_true(rows < 3);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "alice");
		assert_string_equal((const char *)sqlite3_column_text(st, 1), "INBOX");
		assert_int_equal(sqlite3_column_int64(st, 2), 42);
		assert_int_equal(sqlite3_column_int64(st, 3), uids[rows]);
		assert_string_equal((const char *)sqlite3_column_text(st, 4), u[rows]);
		assert_int_equal(sqlite3_column_int64(st, 5), sizes[rows]);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(rows, 3);
}

/* A mapping stored in the file (what an import from the old POP3 server writes, before any
 * login) is what the next processes hand out: not replaced by the derived UIDL, for its
 * UIDVALIDITY only. A cache that keeps nothing in the file, or never reads it, fails. */
static void
test_imported_uidl_is_served_after_reopen(void **state)
{
	const uint32_t uids[] = { 2, 3, 4 };
	const uint64_t sizes[] = { 20, 30, 40 };
	char u[3][CACHE_UIDL_MAX];
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));	/* creates the table */
	cache_free(&c);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO uidl (user, mailbox, uidvalidity, uid, uidl, "
	    "size) VALUES ('dave', 'INBOX', 7, 3, 'imported-uidl-3', 30)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	for (int round = 0; round < 2; round++) {	/* a login, then another process's */
		assert_non_null(c = cache_open(dbpath, &error));
		assert_int_equal(cache_lookup_uidls(c, "dave", "INBOX", 7, uids, sizes, 3, u, &error),
		    0);
		assert_string_equal(u[0], "0000000200000007");
		assert_string_equal(u[1], "imported-uidl-3");
		assert_string_equal(u[2], "0000000400000007");
		cache_free(&c);
	}
	/* Another UIDVALIDITY: the UIDs name other messages, the import does not apply. */
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_uidls(c, "dave", "INBOX", 8, uids, sizes, 3, u, &error), 0);
	assert_string_equal(u[1], "0000000300000008");
	cache_free(&c);
}

static void
test_no_cache_gives_derived(void **state)
{
	const uint32_t uids[] = { 3, 4 };
	const uint64_t sizes[] = { 1, 2 };
	char u[2][CACHE_UIDL_MAX];
	const char *error = NULL;

	(void)state;
	assert_int_equal(cache_lookup_uidls(NULL, "x", "INBOX", 7, uids, sizes, 2, u, &error), -1);
	assert_non_null(error);
	assert_string_equal(u[0], "0000000300000007");
	assert_string_equal(u[1], "0000000400000007");
	assert_null(cache_open("/nonexistent-dir/x/y.sqlite", &error));
	assert_non_null(error);
}

/* What lookups and records hand back, as text. */
struct seen {
	char learned[256];
	char need[64];
};

static void
seen_learned(void *ctx, size_t idx, const char *uidl, size_t len)
{
	struct seen *x = ctx;
	size_t n = strlen(x->learned);

	snprintf(x->learned + n, sizeof(x->learned) - n, "%s%zu=%.*s", n ? "," : "", idx,
	    (int)len, uidl);
}

static void
seen_need(void *ctx, size_t idx)
{
	struct seen *x = ctx;
	size_t n = strlen(x->need);

	snprintf(x->need + n, sizeof(x->need) - n, "%s%zu", n ? "," : "", idx);
}

#define KEY_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KEY_C "cccccccccccccccccccccccccccccccc"

/* A rebuilt mailbox (new UIDVALIDITY, new UIDs, another order): each message takes the UIDL
 * of the old message with its content key, duplicates pair up in UID order, a message
 * with no match gets a new UIDL that no old message of the user had, and the old rows go. */
static void
test_a_rebuilt_mailbox_keeps_its_uidls(void **state)
{
	static const uint32_t new_uids[] = { 10, 11, 12, 13 };
	struct cache_entry old[] = {
		{ 0, 1, 100, KEY_A, NULL }, { 1, 2, 200, KEY_B, NULL }, { 2, 3, 100, KEY_A, NULL },
	};
	struct cache_entry now[] = {
		{ 0, 10, 100, KEY_B, NULL }, { 1, 11, 100, KEY_A, NULL }, { 2, 12, 100, KEY_A, NULL },
		{ 3, 13, 300, KEY_C, NULL },
	};
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;
	struct cache_found found;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_record(c, "ann", "INBOX", 1, old, 3, &a, &st, &error), 0);
	assert_int_equal(st.fresh, 3);
	assert_string_equal(x.learned, "");		/* derived UIDLs */
	/* The old server's UIDL for UID 2 (an import), and one that collides with the derived
	 * UIDL UID 13 will have under UIDVALIDITY 2. */
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE uidl SET uidl='old-pop-2' WHERE uid=2; "
	    "UPDATE uidl SET uidl='0000000d00000002' WHERE uid=3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(cache_lookup_learned(c, "ann", "INBOX", 2, new_uids, 4, &a, &found,
	    &error), 0);
	assert_true(found.rebuilt);
	assert_string_equal(x.need, "0,1,2,3");
	assert_int_equal(cache_record(c, "ann", "INBOX", 2, now, 4, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=old-pop-2,1=0000000100000001,2=0000000d00000002,"
	    "3=0000000d00000002-1");
	assert_int_equal(st.matched, 3);
	assert_int_equal(st.fresh, 1);
	assert_int_equal(st.lost, 0);

	/* A second session that looked up before the first recorded: it hears the same UIDLs. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_record(c, "ann", "INBOX", 2, now, 4, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=old-pop-2,1=0000000100000001,2=0000000d00000002,"
	    "3=0000000d00000002-1");
	/* A session that listed the mailbox just before the rebuild records after it: its
	 * messages take the new rows by key, so its client hears the UIDLs it knows. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_record(c, "ann", "INBOX", 1, old, 3, &a, &st, &error), 0);
	assert_string_equal(x.learned, "1=old-pop-2,2=0000000d00000002");	/* 0: derived */
	assert_int_equal(st.matched, 3);
	/* And the next login of the rebuilt mailbox takes them back: the same UIDLs again. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_record(c, "ann", "INBOX", 2, now, 4, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=old-pop-2,1=0000000100000001,2=0000000d00000002,"
	    "3=0000000d00000002-1");
	/* From now on, answered from the rows of the new UIDVALIDITY; nothing to key. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_lookup_learned(c, "ann", "INBOX", 2, new_uids, 4, &a, &found,
	    &error), 0);
	assert_false(found.rebuilt);
	assert_string_equal(x.need, "");
	assert_string_equal(x.learned, "0=old-pop-2,1=0000000100000001,2=0000000d00000002,"
	    "3=0000000d00000002-1");
	cache_free(&c);
}

/* After a rebuild, a message whose header could not be read gets no row and the old rows
 * stay: at the next login, with its key, it still finds its old UIDL. */
static void
test_a_rebuilt_message_without_its_key_is_matched_later(void **state)
{
	struct cache_entry old[] = { { 0, 1, 10, KEY_A, NULL }, { 1, 2, 10, KEY_B, NULL } };
	struct cache_entry now[] = { { 0, 7, 10, KEY_A, NULL }, { 1, 8, 10, "", NULL } };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_record(c, "di", "INBOX", 1, old, 2, &a, &st, &error), 0);
	assert_int_equal(cache_record(c, "di", "INBOX", 2, now, 2, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=0000000100000001");
	assert_int_equal(st.matched, 1);
	assert_int_equal(st.lost, 0);			/* the old rows stay */
	memset(&x, 0, sizeof(x));
	strcpy(now[1].ckey, KEY_B);
	assert_int_equal(cache_record(c, "di", "INBOX", 2, now, 2, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=0000000100000001,1=0000000200000001");
	assert_int_equal(st.matched, 1);
	cache_free(&c);
}

/* Rows of messages no longer in the mailbox are pruned at the next lookup; the others stay. */
static void
test_rows_of_expunged_messages_are_pruned(void **state)
{
	static const uint32_t left[] = { 1, 3 };
	struct cache_entry e[] = { { 0, 1, 10, KEY_A, NULL }, { 1, 2, 10, KEY_B, NULL }, { 2, 3, 10, KEY_C, NULL } };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;
	sqlite3_stmt *q;
	struct cache_found found;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_record(c, "cy", "INBOX", 5, e, 3, &a, &st, &error), 0);
	assert_int_equal(cache_lookup_learned(c, "cy", "INBOX", 5, left, 2, &a, &found, &error), 0);
	assert_string_equal(x.need, "");
	cache_free(&c);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(uid) FROM (SELECT uid FROM uidl "
	    "WHERE user='cy' ORDER BY uid)", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "1,3");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* A cache file of version 1 (no content keys) keeps its UIDLs; its rows are keyed later. */
static void
test_a_version_1_file_is_migrated(void **state)
{
	static const uint32_t uids[] = { 4 };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;
	struct cache_found found;

	(void)state;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE uidl (user TEXT NOT NULL, mailbox TEXT "
	    "NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL, uidl TEXT NOT NULL, "
	    "size INTEGER NOT NULL, PRIMARY KEY (user, mailbox, uidvalidity, uid)) WITHOUT ROWID;"
	    "INSERT INTO uidl VALUES ('bo', 'INBOX', 7, 4, 'kept-from-v1', 10);", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_lookup_learned(c, "bo", "INBOX", 7, uids, 1, &a, &found, &error), 0);
	assert_string_equal(x.learned, "0=kept-from-v1");
	assert_string_equal(x.need, "0");
	cache_free(&c);
}

#define KEY_D "dddddddddddddddddddddddddddddddd"

static int
sqlite3_exec_count(const char *sql)
{
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static uint64_t
sql_count(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	uint64_t n;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	n = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* A live migration's rows (UIDL and content key of each old message): at the first login
 * each message takes its old UIDL by key, duplicates in order, one the old server did not
 * have gets a new UIDL, and an old message not here yet stays pending for a later login. */
static void
test_a_migration_is_matched_by_content_key(void **state)
{
	static const uint32_t uids[] = { 1, 2, 3, 4 };
	const struct cache_pending old[] = {
		{ "old-1", KEY_A, "a@x", 100 }, { "old-2", KEY_B, NULL, 200 },
		{ "old-3", KEY_A, "a@x", 100 }, { "old-4", KEY_C, NULL, 300 },
	};
	/* The same messages as the IMAP side has them: other sizes (the old server counted
	 * another way), a message the old server never had. */
	struct cache_entry now[] = {
		{ 0, 1, 101, KEY_A, "a@x" }, { 1, 2, 101, KEY_A, "a@x" }, { 2, 3, 201, KEY_B, NULL },
		{ 3, 4, 300, KEY_D, NULL },
	};
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_found found;
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	size_t added;
	bool known;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_user_known(c, "mo", &known, &error), 0);
	assert_false(known);
	assert_int_equal(cache_add_pending(c, "mo", "INBOX", old, 4, &added, &error), 0);
	assert_int_equal(added, 4);
	assert_int_equal(cache_add_pending(c, "mo", "INBOX", old, 4, &added, &error), 0);
	assert_int_equal(added, 0);			/* twice: nothing more */
	assert_int_equal(cache_user_known(c, "mo", &known, &error), 0);
	assert_true(known);
	assert_int_equal(cache_lookup_learned(c, "mo", "INBOX", 9, uids, 4, &a, &found, &error), 0);
	assert_true(found.known);
	assert_true(found.pending);
	assert_false(found.rebuilt);
	assert_string_equal(x.need, "0,1,2,3");
	assert_int_equal(cache_record(c, "mo", "INBOX", 9, now, 4, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=old-1,1=old-3,2=old-2");	/* 3: derived */
	assert_int_equal(st.imported, 3);
	assert_int_equal(st.fresh, 1);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending WHERE uidl='old-4'"), 1);
	/* The next login: from the rows, nothing to key; old-4 still waits. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_lookup_learned(c, "mo", "INBOX", 9, uids, 4, &a, &found, &error), 0);
	assert_string_equal(x.learned, "0=old-1,1=old-3,2=old-2");
	assert_string_equal(x.need, "");
	assert_true(found.pending);
	/* It arrives (the migration tool copied it late): it takes its old UIDL. */
	memset(&x, 0, sizeof(x));
	now[0] = (struct cache_entry){ 4, 5, 300, KEY_C, NULL };
	assert_int_equal(cache_record(c, "mo", "INBOX", 9, now, 1, &a, &st, &error), 0);
	assert_string_equal(x.learned, "4=old-4");
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending"), 0);
	cache_free(&c);
}

/* A CSV import: rows with a Message-ID are matched by it, duplicates in order; rows without
 * one by size among the messages nothing else matched; a message without its header read
 * waits (no row) for a later login. */
static void
test_an_import_is_matched_by_message_id_then_size(void **state)
{
	const struct cache_pending csv[] = {
		{ "u1", NULL, "dup@x", 10 }, { "u2", NULL, "dup@x", 10 }, { "u3", NULL, NULL, 55 },
		{ "u4", NULL, NULL, 77 }, { "u5", NULL, "late@x", 9 },
	};
	struct cache_entry now[] = {
		{ 0, 1, 77, KEY_A, "other@x" },	/* no such id: matched by size in pass 2 */
		{ 1, 2, 12, KEY_B, "dup@x" }, { 2, 3, 12, KEY_C, "dup@x" },
		{ 3, 4, 55, KEY_D, NULL }, { 4, 5, 99, "", NULL },
		{ 5, 6, 55, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", NULL },
	};
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	size_t added;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_add_pending(c, "im", "INBOX", csv, 5, &added, &error), 0);
	assert_int_equal(added, 5);
	assert_int_equal(cache_record(c, "im", "INBOX", 3, now, 6, &a, &st, &error), 0);
	/* 0 by size (77), 1 and 2 by id in order, 3 by size (55); 4 unkeyed: no row; 5 has no
	 * size match left: derived. */
	assert_string_equal(x.learned, "1=u1,2=u2,0=u4,3=u3");
	assert_int_equal(st.imported, 4);
	assert_int_equal(st.fresh, 1);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM uidl WHERE user='im'"), 5);
	/* Importing the file again changes nothing: the user has logged in (his client knows
	 * these UIDLs now), and u5 is pending already. */
	{
		bool rows;

		assert_int_equal(cache_user_has_rows(c, "im", "INBOX", &rows, &error), 0);
		assert_true(rows);
		assert_int_equal(cache_user_has_rows(c, "nobody", "INBOX", &rows, &error), 0);
		assert_false(rows);
	}
	/* The unkeyed message keyed at a later login: every message had its chance, so u5
	 * (no key, a Message-ID nothing had) goes; a later message with that Message-ID or
	 * size must not get a UIDL its client already knows. */
	memset(&x, 0, sizeof(x));
	strcpy(now[4].ckey, "ffffffffffffffffffffffffffffffff");
	assert_int_equal(cache_record(c, "im", "INBOX", 3, &now[4], 1, &a, &st, &error), 0);
	assert_int_equal(st.lost, 1);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending WHERE user='im'"), 0);
	now[0] = (struct cache_entry){ 6, 9, 9, KEY_A, "late@x" };
	assert_int_equal(cache_record(c, "im", "INBOX", 3, now, 1, &a, &st, &error), 0);
	assert_int_equal(st.imported, 0);
	assert_string_equal(x.learned, "");
	/* Nor does importing the file again: the user's client knows his UIDLs now. */
	assert_int_equal(cache_add_pending(c, "im", "INBOX", csv, 5, &added, &error), 0);
	assert_int_equal(added, 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending WHERE user='im'"), 0);
	cache_free(&c);
}

/* A new UIDL never equals an old server's UIDL of the user, even one that looks derived. */
static void
test_a_new_uidl_never_takes_a_pending_one(void **state)
{
	const struct cache_pending old[] = { { "0000000100000005", KEY_A, NULL, 1 } };
	struct cache_entry now[] = { { 0, 1, 1, KEY_B, NULL } };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	size_t added;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_add_pending(c, "ny", "INBOX", old, 1, &added, &error), 0);
	assert_int_equal(cache_record(c, "ny", "INBOX", 5, now, 1, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=0000000100000005-1");
	cache_free(&c);
}

/* A bad row in an import: an error, and nothing of the batch stays. */
static void
test_an_import_with_a_bad_uidl_adds_nothing(void **state)
{
	const struct cache_pending rows[] = { { "ok-1", NULL, "a@x", 1 }, { "has space", NULL,
	    NULL, 2 } };
	const char *error = NULL;
	struct cache *c;
	size_t added;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_add_pending(c, "bad", "INBOX", rows, 2, &added, &error), -1);
	assert_non_null(strstr(error, "not a UIDL"));
	assert_int_equal(added, 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending"), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM users"), 0);
	cache_free(&c);
}

struct exported {
	char text[512];
};

static int
export_row(void *ctx, const struct cache_export_row *r)
{
	struct exported *x = ctx;
	size_t n = strlen(x->text);

	snprintf(x->text + n, sizeof(x->text) - n, "%s,%s,%s,%llu,%d;", r->user, r->uidl, r->msgid,
	    (unsigned long long)r->size, r->pending);
	return 0;
}

/* export, stats, forget, and the retention prune that never touches pending imports. */
static void
test_export_stats_forget_and_prune(void **state)
{
	const struct cache_pending rows[] = { { "p-1", NULL, "a@x", 5 } };
	struct cache_entry e[] = { { 0, 2, 20, KEY_B, "b@x" }, { 1, 1, 10, KEY_A, NULL } };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct exported out = { "" };
	struct cache_totals t;
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;
	uint64_t removed, pruned;
	size_t added;
	bool known;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_record(c, "zed", "INBOX", 4, &e[1], 1, &a, &st, &error), 0);
	assert_int_equal(cache_record(c, "zed", "INBOX", 4, &e[0], 1, &a, &st, &error), 0);
	assert_int_equal(cache_add_pending(c, "ada", "INBOX", rows, 1, &added, &error), 0);
	assert_int_equal(cache_export(c, NULL, "INBOX", export_row, &out, &error), 0);
	assert_string_equal(out.text, "ada,p-1,a@x,5,1;zed,0000000100000004,,10,0;"
	    "zed,0000000200000004,b@x,20,0;");
	out.text[0] = '\0';
	assert_int_equal(cache_export(c, "ada", "INBOX", export_row, &out, &error), 0);
	assert_string_equal(out.text, "ada,p-1,a@x,5,1;");
	assert_int_equal(cache_totals(c, &t, &error), 0);
	assert_int_equal(t.users, 2);
	assert_int_equal(t.rows, 2);
	assert_int_equal(t.pending, 1);
	/* Everyone last seen before the future: zed is pruned, ada (pending) is not. */
	assert_int_equal(cache_prune_users(c, (int64_t)time(NULL) + 10, &pruned, &error), 0);
	assert_int_equal(pruned, 1);
	assert_int_equal(cache_user_known(c, "zed", &known, &error), 0);
	assert_false(known);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM uidl"), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending"), 1);
	assert_int_equal(cache_forget(c, "ada", &removed, &error), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(cache_user_known(c, "ada", &known, &error), 0);
	assert_false(known);
	cache_free(&c);
}

/* A write lock held by another connection (a gateway recording, another import): cache_begin()
 * fails after CACHE_BUSY_MS and cache_busy() says so, so `uidl import` knows to wait; once the
 * lock is gone the same call works, and what it adds is seen only after the commit. */
static void
test_busy_while_another_connection_writes(void **state)
{
	const struct cache_pending rows[] = { { "b-1", NULL, "b@x", 3 } };
	const char *error = NULL;
	struct cache *c;
	struct cache_totals t;
	sqlite3 *db;
	size_t added;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cache_begin(c, &error), -1);
	assert_true(cache_busy(c));
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(cache_begin(c, &error), 0);
	assert_int_equal(cache_add_pending(c, "bu", "INBOX", rows, 1, &added, &error), 0);
	assert_int_equal(added, 1);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending"), 0);
	assert_int_equal(cache_commit(c, &error), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM pending"), 1);
	assert_int_equal(cache_totals(c, &t, &error), 0);
	assert_int_equal(t.pending, 1);
	sqlite3_close(db);
	cache_free(&c);
}

/* Two sessions of one user: the one whose list is older never deletes rows above its
 * highest UID (newer mail another session recorded); a UIDVALIDITY that went back (a
 * restored mailbox) takes the rows by key, the same UIDLs; after a rebuild, a message's
 * own old row beats a pending one. */
static void
test_an_older_view_keeps_the_uidls(void **state)
{
	static const uint32_t older[] = { 1 };
	struct cache_entry e[] = { { 0, 1, 10, KEY_A, NULL }, { 1, 2, 10, KEY_B, NULL } };
	struct seen x = { "", "" };
	struct cache_answer a = { seen_learned, seen_need, &x };
	struct cache_found found;
	struct cache_stats st;
	const char *error = NULL;
	struct cache *c;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_record(c, "ov", "INBOX", 7, e, 2, &a, &st, &error), 0);
	assert_int_equal(cache_lookup_learned(c, "ov", "INBOX", 7, older, 1, &a, &found, &error), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM uidl WHERE user='ov'"), 2);
	assert_int_equal(cache_lookup_learned(c, "ov", "INBOX", 7, NULL, 0, &a, &found, &error), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM uidl WHERE user='ov'"), 2);
	memset(&x, 0, sizeof(x));
	assert_int_equal(cache_record(c, "ov", "INBOX", 6, e, 2, &a, &st, &error), 0);
	assert_string_equal(x.learned, "0=0000000100000007,1=0000000200000007");
	assert_int_equal(st.matched, 2);
	assert_int_equal(st.fresh, 0);
	memset(&x, 0, sizeof(x));
	/* Rebuilt (UIDVALIDITY 8) with a pending row of the same key around (a migration's
	 * row whose message had two copies, one copied late): the old row wins. */
	assert_int_equal(sqlite3_exec_count("INSERT INTO pending VALUES ('ov', 'INBOX', 1, "
	    "'imported-a', '" KEY_A "', NULL, 10)"), 0);
	e[0].uid = 5;
	assert_int_equal(cache_record(c, "ov", "INBOX", 8, e, 1, &a, &st, &error), 0);
	assert_int_equal(st.matched, 1);
	assert_int_equal(st.imported, 0);
	assert_string_equal(x.learned, "0=0000000100000007");
	cache_free(&c);
}

/* A version 2 file (issue 13's): its users are known (no migration for them). */
static void
test_a_version_2_file_is_migrated(void **state)
{
	const char *error = NULL;
	struct cache *c;
	sqlite3 *db;
	bool known;

	(void)state;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE uidl (user TEXT NOT NULL, mailbox TEXT "
	    "NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL, uidl TEXT NOT NULL, "
	    "size INTEGER NOT NULL, ckey TEXT, PRIMARY KEY (user, mailbox, uidvalidity, uid)) "
	    "WITHOUT ROWID; INSERT INTO uidl VALUES ('vi', 'INBOX', 7, 4, 'v2-uidl', 10, NULL);"
	    "PRAGMA user_version=2;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_user_known(c, "vi", &known, &error), 0);
	assert_true(known);
	cache_free(&c);
	assert_int_equal(sql_count("PRAGMA user_version"), 4);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM users WHERE user='vi'"), 1);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM listing"), 0);
}

/* The last listing: stored compactly, read back the same; one that is not exact is never
 * written, and a row that does not decode is no listing. */
static void
test_listing_round_trip(void **state)
{
	uint32_t uid[4] = { 3, 4, 200, 4000000000u };
	uint64_t size[4] = { 1, 0, 99999999999ull, 1234 };
	struct cache_listing l = { 42, 4000000001u, 4, 1ull << 62, 4, uid, size }, got;
	const char *error = NULL;
	struct cache *c;
	bool found;
	sqlite3 *db;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	assert_int_equal(cache_listing_get(c, "ann", "INBOX", &got, &found, &error), 0);
	assert_false(found);
	assert_int_equal(cache_listing_put(c, "ann", "INBOX", &l, &error), 0);
	assert_int_equal(cache_listing_get(c, "ann", "INBOX", &got, &found, &error), 0);
	assert_true(found);
	assert_int_equal(got.uidvalidity, 42);
	assert_int_equal(got.uidnext, 4000000001u);
	assert_int_equal(got.exists, 4);
	assert_true(got.modseq == 1ull << 62);
	assert_int_equal(got.n, 4);
	assert_memory_equal(got.uid, uid, sizeof(uid));
	assert_memory_equal(got.size, size, sizeof(size));
	cache_listing_free(&got);
	/* other users and mailboxes have none */
	assert_int_equal(cache_listing_get(c, "ann", "Other", &got, &found, &error), 0);
	assert_false(found);
	/* not exact: a count that is not EXISTS, a UID at UIDNEXT, UIDs not ascending */
	l.exists = 5;
	assert_int_equal(cache_listing_put(c, "ann", "INBOX", &l, &error), -1);
	l.exists = 4;
	l.uidnext = 4000000000u;
	assert_int_equal(cache_listing_put(c, "ann", "INBOX", &l, &error), -1);
	l.uidnext = 4000000001u;
	uid[1] = 3;
	assert_int_equal(cache_listing_put(c, "ann", "INBOX", &l, &error), -1);
	/* a row another hand changed: EXISTS no longer its count */
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE listing SET exist=3", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cache_listing_get(c, "ann", "INBOX", &got, &found, &error), 0);
	assert_false(found);
	assert_int_equal(cache_listing_forget(c, "ann", "INBOX", &error), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM listing"), 0);
	/* an empty mailbox is a listing too */
	l.n = l.exists = 0;
	assert_int_equal(cache_listing_put(c, "ann", "INBOX", &l, &error), 0);
	assert_int_equal(cache_listing_get(c, "ann", "INBOX", &got, &found, &error), 0);
	assert_true(found);
	assert_int_equal(got.n, 0);
	cache_listing_free(&got);
	cache_free(&c);
}

/* A version 3 file gets the listing table, its rows untouched. */
static void
test_a_version_3_file_is_migrated(void **state)
{
	const char *error = NULL;
	struct cache *c;

	(void)state;
	assert_non_null(c = cache_open(dbpath, &error));
	cache_free(&c);
	assert_int_equal(sqlite3_open(dbpath, &c_db_for_v3), SQLITE_OK);
	assert_int_equal(sqlite3_exec(c_db_for_v3, "DROP TABLE listing; PRAGMA user_version=3; "
	    "INSERT INTO users VALUES ('vi', 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(c_db_for_v3);
	assert_int_equal(sql_count("PRAGMA user_version"), 3);
	assert_non_null(c = cache_open(dbpath, &error));
	cache_free(&c);
	assert_int_equal(sql_count("PRAGMA user_version"), 4);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM listing"), 0);
	assert_int_equal(sql_count("SELECT COUNT(*) FROM users WHERE user='vi'"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_rebuilt_mailbox_keeps_its_uidls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_a_version_1_file_is_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_rebuilt_message_without_its_key_is_matched_later,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_of_expunged_messages_are_pruned, setup,
		    teardown),
		cmocka_unit_test(test_derive_format),
		cmocka_unit_test_setup_teardown(test_lookup_stable_across_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stored_uidl_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_records_each_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imported_uidl_is_served_after_reopen, setup,
		    teardown),
		cmocka_unit_test(test_no_cache_gives_derived),
		cmocka_unit_test_setup_teardown(test_a_migration_is_matched_by_content_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_an_import_is_matched_by_message_id_then_size,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_new_uidl_never_takes_a_pending_one, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_an_import_with_a_bad_uidl_adds_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_export_stats_forget_and_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_older_view_keeps_the_uidls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_busy_while_another_connection_writes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_a_version_2_file_is_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_version_3_file_is_migrated, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
