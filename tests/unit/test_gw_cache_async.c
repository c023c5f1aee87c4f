/* tests/unit/test_gw_cache_async.c: the UIDL cache's thread (gateway/cache_async.c), with a
 * real libev loop and a SQLite file: an answer comes back on the loop with the UIDLs the
 * file holds that differ from the derived ones (none on a first login, the stored one
 * after), in the order the requests went in; a cancelled request's answer is dropped; a
 * cache that cannot be opened answers with an error, never with invented UIDLs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../common/cache.h"
#include "../../gateway/cache_async.h"
#include "unit.h"

static char dbpath[64];

struct answer {
	int calls;
	char error[256];
	char learned[256];	/* "idx=uidl,..." */
	size_t nneed;
	int order;
};

static int answered;

static void
on_answer(void *ctx, struct gw_cache_req *req, const char *error)
{
	struct answer *a = ctx;
	const char *uidl;
	size_t idx, len;

	a->calls++;
	a->order = ++answered;
	snprintf(a->error, sizeof(a->error), "%s", error ? error : "");
	a->nneed = req->nneed;
	while (gw_cache_req_next_learned(req, &idx, &uidl, &len)) {
		size_t n = strlen(a->learned);

		snprintf(a->learned + n, sizeof(a->learned) - n, "%s%zu=%.*s", n ? "," : "", idx,
		    (int)len, uidl);
	}
}

/* Runs the loop until `want` answers came (or a second passed). */
static void
run_until(struct ev_loop *loop, int want)
{
	for (int i = 0; i < 1000 && answered < want; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

static int
setup(void **state)
{
	(void)state;
	answered = 0;
	return unit_db_name(dbpath, sizeof(dbpath));
}

static int
teardown(void **state)
{
	(void)state;
	unit_db_remove(dbpath);
	return 0;
}

static void
test_answers_on_the_loop_in_order(void **state)
{
	static const uint32_t uids[] = { 3, 9 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct gw_cache_async ca;
	struct answer first = { 0 }, second = { 0 }, recorded = { 0 }, third = { 0 };
	const char *error = NULL;
	sqlite3 *db;

	(void)state;
	assert_int_equal(gw_cache_async_start(&ca, loop, dbpath, 0, &error), 0);
	gw_cache_submit(&ca, gw_cache_lookup_new("alice", "INBOX", 42, uids, 2), on_answer,
	    &first);
	gw_cache_submit(&ca, gw_cache_lookup_new("bob", "INBOX", 42, uids, 2), on_answer,
	    &second);
	assert_int_equal(first.calls, 0);	/* never before the loop runs */
	run_until(loop, 2);
	assert_int_equal(first.calls, 1);
	assert_int_equal(first.order, 1);
	assert_int_equal(second.order, 2);
	assert_string_equal(first.error, "");
	assert_string_equal(first.learned, "");	/* a first login: derived UIDLs, and */
	assert_int_equal(first.nneed, 2);		/* no content key for either */
	{
		struct cache_entry *e = calloc(2, sizeof(*e));

		e[0] = (struct cache_entry){ 0, 3, 100, "0123456789abcdef0123456789abcdef",
		    NULL };
		e[1] = (struct cache_entry){ 1, 9, 200, "", NULL };
		gw_cache_submit(&ca, gw_cache_record_new("alice", "INBOX", 42, e, 2), on_answer,
		    &recorded);
		run_until(loop, 3);
		assert_int_equal(recorded.calls, 1);
		assert_string_equal(recorded.error, "");
	}
	/* Another gateway (or an import) recorded another UIDL for alice's UID 9. */
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE uidl SET uidl='old-pop-77' WHERE user='alice' "
	    "AND uid=9", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	gw_cache_submit(&ca, gw_cache_lookup_new("alice", "INBOX", 42, uids, 2), on_answer,
	    &third);
	run_until(loop, 4);
	assert_string_equal(third.learned, "1=old-pop-77");
	assert_int_equal(third.nneed, 1);		/* UID 9 still has no key */
	gw_cache_async_stop(&ca);
	ev_loop_destroy(loop);
}

static void
test_a_cancelled_answer_is_dropped(void **state)
{
	static const uint32_t uids[] = { 1 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct gw_cache_async ca;
	struct answer gone = { 0 }, kept = { 0 }, empty = { 0 };
	struct gw_cache_req *req;
	const char *error = NULL;

	(void)state;
	assert_int_equal(gw_cache_async_start(&ca, loop, dbpath, 0, &error), 0);
	req = gw_cache_lookup_new("carol", "INBOX", 1, uids, 1);
	gw_cache_submit(&ca, req, on_answer, &gone);
	gw_cache_cancel(req);			/* the session ended */
	gw_cache_submit(&ca, gw_cache_lookup_new("dave", "INBOX", 1, uids, 1), on_answer,
	    &kept);
	run_until(loop, 1);
	assert_int_equal(gone.calls, 0);
	assert_int_equal(kept.calls, 1);
	/* An empty mailbox: no list at all. */
	gw_cache_submit(&ca, gw_cache_lookup_new("gail", "INBOX", 1, NULL, 0), on_answer, &empty);
	run_until(loop, 2);
	assert_int_equal(empty.calls, 1);
	assert_string_equal(empty.error, "");
	assert_int_equal(empty.nneed, 0);
	/* Requests still queued at the stop are freed without a call (valgrind: no leak). */
	gw_cache_submit(&ca, gw_cache_lookup_new("erin", "INBOX", 1, uids, 1), on_answer,
	    &gone);
	gw_cache_async_stop(&ca);
	assert_int_equal(gone.calls, 0);
	ev_loop_destroy(loop);
}

static void
test_an_unusable_file_is_an_error_not_uidls(void **state)
{
	static const uint32_t uids[] = { 5 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct gw_cache_async ca;
	struct answer a = { 0 };
	const char *error = NULL;

	(void)state;
	assert_int_equal(gw_cache_async_start(&ca, loop, "/nonexistent-dir/x.sqlite", 0,
	    &error), 0);
	gw_cache_submit(&ca, gw_cache_lookup_new("frank", "INBOX", 1, uids, 1), on_answer, &a);
	run_until(loop, 1);
	assert_int_equal(a.calls, 1);
	assert_string_not_equal(a.error, "");
	assert_string_equal(a.learned, "");
	gw_cache_async_stop(&ca);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers_on_the_loop_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_cancelled_answer_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_unusable_file_is_an_error_not_uidls, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
