/* tests/unit/test_gw_update.c: UPDATE (gateway/update.c) against a scripted IMAP connection:
 * the exact commands QUIT sends with UIDPLUS (UID STORE then UID EXPUNGE of the same
 * set, then a check by UID; never a bare EXPUNGE), pieces bounded by what an answer line
 * holds, the no-UIDPLUS path that expunges only when an answer names nothing but ours,
 * CAPABILITY asked first when the login named none, a UIDVALIDITY change that stops it,
 * and the connection's loss. */
#include "gw_rig.h"
#include "../../gateway/update.h"
#include "update_outcome.h"

/* One test's connection, op and outcome. */
static struct rig r;
static struct gw_update u;
static struct outcome o;

/* Five messages, UIDs 2 4 6 8 10; marks[i] flags the i-th. */
static void
start(unsigned caps, const uint8_t marks[5], size_t line_max)
{
	static const uint32_t uids[] = { 2, 4, 6, 8, 10 };
	struct gw_update_params p = { &r.snap, true, update_done, &o, NULL };

	rig_open(&r, caps, line_max);
	r.c.caps_after_login = true;
	rig_snapshot(&r, uids, 5, 77);
	for (size_t i = 0; i < 5; i++)
		r.snap.flags[i] = marks[i];
	memset(&o, 0, sizeof(o));
	gw_update_start(&u, &r.c, &p);
}

static void
test_uidplus_store_then_uid_expunge_of_the_same_set(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_DELETED, 0, GW_MSG_DELETED, 0, 0 };

	(void)state;
	start(GW_CAP_UIDPLUS, marks, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 2,6 +FLAGS.SILENT (\\Deleted)\r\n");
	/* UID EXPUNGE only once STORE is answered (Dovecot 2.3.19 lost a piece otherwise). */
	rig_server(&r, "A1 OK Store completed.\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID EXPUNGE 2,6\r\n");
	/* Another session's expunge is in the same answer: counted by UID, not by lines. */
	rig_server(&r, "* 1 EXPUNGE\r\n* 2 EXPUNGE\r\n* 3 EXPUNGE\r\nA2 OK Expunge completed.\r\n");
	assert_string_equal(rig_sent(&r), "A3 UID SEARCH UID 2,6\r\n");
	assert_int_equal(o.calls, 0);
	rig_server(&r, "* SEARCH\r\nA3 OK Search completed.\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 2);
	assert_string_equal(o.error, "");
	assert_string_equal(rig_sent(&r), "");	/* nothing more, and never a bare EXPUNGE */
	rig_free(&r);
}

static void
test_imap4rev2_is_uid_expunge_too(void **state)
{
	static const uint8_t marks[5] = { 0, 0, 0, 0, GW_MSG_DELETED };

	(void)state;
	start(GW_CAP_IMAP4REV2, marks, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 10 +FLAGS.SILENT (\\Deleted)\r\n");
	rig_server(&r, "A1 OK\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID EXPUNGE 10\r\n");
	rig_server(&r, "A2 OK\r\n");
	assert_string_equal(rig_sent(&r), "A3 UID SEARCH UID 10\r\n");
	/* It is still there: the client hears that. */
	rig_server(&r, "* ESEARCH (TAG \"A3\") UID ALL 10\r\nA3 OK\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 0);
	assert_string_equal(o.error, "some deleted messages not removed");
	rig_free(&r);
}

/* Pieces: at most (line_max - 64) / 11 UIDs each, so every answer that lists them fits. */
static void
test_pieces_bounded_by_the_answer_line(void **state)
{
	uint32_t uids[40];
	struct gw_update_params p = { &r.snap, false, update_done, &o, NULL };
	char want[128];

	(void)state;
	for (uint32_t i = 0; i < 40; i++)
		uids[i] = 101 + i;
	rig_open(&r, GW_CAP_UIDPLUS, 64 + 16 * 11);	/* 16 UIDs an answer line */
	r.c.caps_after_login = true;
	rig_snapshot(&r, uids, 40, 5);
	for (size_t i = 0; i < 40; i++)
		r.snap.flags[i] = GW_MSG_DELETED;
	memset(&o, 0, sizeof(o));
	gw_update_start(&u, &r.c, &p);
	for (unsigned piece = 0, tag = 1; piece < 3; piece++, tag += 3) {
		unsigned lo = 101 + piece * 16, hi = piece < 2 ? lo + 15 : 140;

		snprintf(want, sizeof(want), "A%u UID STORE %u:%u +FLAGS.SILENT (\\Deleted)\r\n",
		    tag, lo, hi);
		assert_string_equal(rig_sent(&r), want);
		snprintf(want, sizeof(want), "A%u OK\r\n", tag);
		rig_server(&r, want);
		snprintf(want, sizeof(want), "A%u UID EXPUNGE %u:%u\r\n", tag + 1, lo, hi);
		assert_string_equal(rig_sent(&r), want);
		snprintf(want, sizeof(want), "A%u OK\r\n", tag + 1);
		rig_server(&r, want);
		snprintf(want, sizeof(want), "A%u UID SEARCH UID %u:%u\r\n", tag + 2, lo, hi);
		assert_string_equal(rig_sent(&r), want);
		snprintf(want, sizeof(want), "* SEARCH\r\nA%u OK\r\n", tag + 2);
		rig_server(&r, want);
	}
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 40);
	assert_string_equal(o.error, "");
	rig_free(&r);
}

/* No UIDPLUS: a plain EXPUNGE would also take another client's \Deleted message. */
static void
test_without_uidplus_another_clients_deleted_message_blocks_expunge(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_DELETED, GW_MSG_DELETED, 0, 0, 0 };

	(void)state;
	start(0, marks, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 2,4 +FLAGS.SILENT (\\Deleted)\r\n");
	rig_server(&r, "A1 OK\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID SEARCH DELETED UID 1:*\r\n");
	rig_server(&r, "* SEARCH 2 4 8\r\nA2 OK\r\n");	/* 8: not ours */
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 0);
	assert_string_equal(o.error, "some deleted messages not removed");
	assert_string_equal(rig_sent(&r), "");	/* no EXPUNGE */
	rig_free(&r);
}

static void
test_without_uidplus_only_ours_deleted_then_expunge_and_check(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_DELETED, 0, 0, GW_MSG_DELETED, 0 };

	(void)state;
	start(0, marks, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 2,8 +FLAGS.SILENT (\\Deleted)\r\n");
	rig_server(&r, "A1 OK\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID SEARCH DELETED UID 1:*\r\n");
	/* An ESEARCH naming another command's tag is not our answer; ours follows. */
	rig_server(&r, "* ESEARCH (TAG \"X9\") UID ALL 6\r\n* ESEARCH (TAG \"A2\") UID ALL 2,8\r\n"
	    "A2 OK\r\n");
	assert_string_equal(rig_sent(&r), "A3 EXPUNGE\r\n");
	rig_server(&r, "* 4 EXPUNGE\r\n* 1 EXPUNGE\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&r), "A4 UID SEARCH UID 2,8\r\n");
	rig_server(&r, "* SEARCH\r\nA4 OK\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 2);
	assert_string_equal(o.error, "");
	rig_free(&r);
}

static void
test_without_uidplus_no_answer_to_our_search_means_no_expunge(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_DELETED, 0, 0, 0, 0 };

	(void)state;
	start(0, marks, 0);
	rig_sent(&r);
	rig_server(&r, "A1 OK\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID SEARCH DELETED UID 1:*\r\n");
	rig_server(&r, "A2 OK\r\n");			/* an answer with no SEARCH line */
	assert_int_equal(o.calls, 1);
	assert_string_equal(o.error, "some deleted messages not removed");
	assert_string_equal(rig_sent(&r), "");
	rig_free(&r);
}

/* The login's OK named no capabilities: ask before choosing how to delete. */
static void
test_capability_asked_when_the_login_named_none(void **state)
{
	static const uint8_t marks[5] = { 0, GW_MSG_DELETED, 0, 0, 0 };
	static const uint32_t uids[] = { 2, 4, 6, 8, 10 };
	struct gw_update_params p = { &r.snap, false, update_done, &o, NULL };

	(void)state;
	rig_open(&r, 0, 0);
	rig_snapshot(&r, uids, 5, 77);
	memcpy(r.snap.flags, marks, 5);
	memset(&o, 0, sizeof(o));
	gw_update_start(&u, &r.c, &p);
	assert_string_equal(rig_sent(&r), "A1 CAPABILITY\r\n");
	rig_server(&r, "* CAPABILITY IMAP4rev1 UIDPLUS\r\nA1 OK\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\n");
	rig_server(&r, "A2 OK\r\n");
	assert_string_equal(rig_sent(&r), "A3 UID EXPUNGE 4\r\n");
	rig_free(&r);
}

/* \Seen on retrieved messages goes first; a UIDVALIDITY change stops everything after. */
static void
test_seen_first_and_a_uidvalidity_change_stops_it(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_RETRIEVED, GW_MSG_DELETED, 0, 0, 0 };

	(void)state;
	start(GW_CAP_UIDPLUS, marks, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
	rig_server(&r, "* OK [UIDVALIDITY 78] rebuilt\r\nA1 OK\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 0);
	assert_non_null(strstr(o.error, "Mailbox changed"));
	assert_string_equal(rig_sent(&r), "");	/* not one more UID command */
	rig_free(&r);
}

static void
test_connection_lost_midway(void **state)
{
	static const uint8_t marks[5] = { GW_MSG_DELETED, 0, 0, 0, 0 };

	(void)state;
	start(GW_CAP_UIDPLUS, marks, 0);
	rig_sent(&r);
	rig_server(&r, "* BYE shutting down\r\n");
	gw_imapc_fail(&r.c, "connection closed by server");
	assert_int_equal(o.calls, 1);
	assert_non_null(strstr(o.error, "Lost the connection"));
	assert_true(r.lost);
	rig_free(&r);
}

static void
test_nothing_marked_sends_nothing(void **state)
{
	static const uint8_t marks[5] = { 0 };

	(void)state;
	start(GW_CAP_UIDPLUS, marks, 0);
	assert_int_equal(o.calls, 1);
	assert_string_equal(o.error, "");
	assert_string_equal(rig_sent(&r), "");
	rig_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uidplus_store_then_uid_expunge_of_the_same_set),
		cmocka_unit_test(test_imap4rev2_is_uid_expunge_too),
		cmocka_unit_test(test_pieces_bounded_by_the_answer_line),
		cmocka_unit_test(test_without_uidplus_another_clients_deleted_message_blocks_expunge),
		cmocka_unit_test(test_without_uidplus_only_ours_deleted_then_expunge_and_check),
		cmocka_unit_test(test_without_uidplus_no_answer_to_our_search_means_no_expunge),
		cmocka_unit_test(test_capability_asked_when_the_login_named_none),
		cmocka_unit_test(test_seen_first_and_a_uidvalidity_change_stops_it),
		cmocka_unit_test(test_connection_lost_midway),
		cmocka_unit_test(test_nothing_marked_sends_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
