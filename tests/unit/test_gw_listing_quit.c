/* tests/unit/test_gw_listing_quit.c: the stored listing after our own DELE + QUIT
 * (gateway/update.c's STATUS, gateway/listing.c's proof) against a scripted IMAP
 * connection. STATUS goes in the same write as the last check, so QUIT waits for no extra
 * round trip; its failure never changes QUIT's answer. The new listing (the old one minus
 * what was removed, with STATUS's numbers) is kept only when proven; an arrival, another
 * client's expunge, a refused or unanswered STATUS, a deletion that did not take, a
 * listing that was not exact: forgotten. */
#include "gw_rig.h"
#include "../../gateway/listing.h"
#include "../../gateway/update.h"
#include "update_outcome.h"

static struct rig r;
static struct gw_update u;
static struct outcome o;

/* SELECT saw UIDs 2 4 6 8 10 (sizes 1000..1004), UIDVALIDITY 77, UIDNEXT 11, EXISTS 5,
 * HIGHESTMODSEQ 50; the client deleted the messages of UID 4 and 8. */
static const struct cache_listing sel = { 77, 11, 5, 50, 0, NULL, NULL };

#define STATUS_CMD "STATUS \"INBOX\" (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)\r\n"

static void
start(const uint8_t marks[5], size_t line_max)
{
	static const uint32_t uids[] = { 2, 4, 6, 8, 10 };
	struct gw_update_params p = { &r.snap, false, update_done, &o, "INBOX" };

	rig_open(&r, GW_CAP_UIDPLUS | GW_CAP_CONDSTORE, line_max);
	r.c.caps_after_login = true;
	r.c.have_exists = true;
	r.c.exists = 5;
	rig_snapshot(&r, uids, 5, 77);
	for (size_t i = 0; i < 5; i++)
		r.snap.flags[i] = marks[i];
	memset(&o, 0, sizeof(o));
	gw_update_start(&u, &r.c, &p);
}

static const uint8_t two[5] = { 0, GW_MSG_DELETED, 0, GW_MSG_DELETED, 0 };

/* UPDATE of UIDs 4 and 8 up to the check, which goes with STATUS. */
static void
start_deleting(void)
{
	start(two, 0);
	assert_string_equal(rig_sent(&r), "A1 UID STORE 4,8 +FLAGS.SILENT (\\Deleted)\r\n");
	rig_server(&r, "A1 OK Store completed.\r\n");
	assert_string_equal(rig_sent(&r), "A2 UID EXPUNGE 4,8\r\n");
	rig_server(&r, "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\nA2 OK Expunge completed.\r\n");
	assert_string_equal(rig_sent(&r), "A3 UID SEARCH UID 4,8\r\nA4 " STATUS_CMD);
}

/* What the session would store: true with the listing (freed here), or the reason. */
static bool
after(bool exact, struct cache_listing *l_r, const char **why_r)
{
	struct gw_listing_quit q = { &sel, exact, &r.snap, o.removed, o.error[0] == '\0',
	    &u.status, &r.c, 0 };

	assert_int_equal(o.calls, 1);
	return gw_listing_after_quit(&q, l_r, why_r);
}

static void
assert_forgotten(bool exact)
{
	struct cache_listing l;
	const char *why = NULL;

	assert_false(after(exact, &l, &why));
	assert_non_null(why);
	assert_null(l.uid);
	rig_free(&r);
}

static void
test_proven_listing_is_the_old_one_minus_ours(void **state)
{
	struct cache_listing l;
	const char *why;

	(void)state;
	start_deleting();
	/* Dovecot answers STATUS before the SEARCH's tagged OK (it runs them together). */
	rig_server(&r, "* SEARCH\r\n* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 "
	    "HIGHESTMODSEQ 53)\r\nA4 OK [CLIENTBUG] Status on selected mailbox completed.\r\n");
	assert_int_equal(o.calls, 0);		/* the check is not answered yet */
	rig_server(&r, "A3 OK Search completed.\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 2);
	assert_string_equal(o.error, "");
	assert_true(u.status.ok);
	assert_true(after(true, &l, &why));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.uid[0], 2);
	assert_int_equal(l.uid[1], 6);
	assert_int_equal(l.uid[2], 10);
	assert_int_equal(l.size[1], 1002);
	assert_int_equal(l.uidvalidity, 77);
	assert_int_equal(l.uidnext, 11);
	assert_int_equal(l.exists, 3);
	assert_true(l.modseq == 53);
	cache_listing_free(&l);
	rig_free(&r);
}

/* The check's answer first, STATUS's after: the outcome waits for STATUS. */
static void
test_outcome_waits_for_status(void **state)
{
	(void)state;
	start_deleting();
	rig_server(&r, "* SEARCH\r\nA3 OK Search completed.\r\n");
	assert_int_equal(o.calls, 0);
	rig_server(&r, "* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 53)\r\n"
	    "A4 OK done\r\n");
	assert_int_equal(o.calls, 1);
	assert_true(u.status.ok);
	rig_free(&r);
}

/* What STATUS says (or fails to) never changes QUIT's answer; the listing is forgotten. */
static void
test_status_trouble_forgets_and_quit_succeeds(void **state)
{
	static const char *const answers[] = {
		"A4 NO [CANNOT] no status for you\r\n",
		"A4 BAD unknown command\r\n",
		"A4 OK no data\r\n",					/* no line at all */
		"* STATUS INBOX (MESSAGES 3 UIDNEXT 11)\r\nA4 OK\r\n",	/* two numbers missing */
		"* STATUS INBOX (MESSAGES three)\r\nA4 OK\r\n",		/* unreadable */
		"* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 53)\r\n"
		"* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 54)\r\nA4 OK\r\n",
		/* another mailbox's numbers are not ours */
		"* STATUS Archive (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 53)\r\nA4 OK\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		start_deleting();
		rig_server(&r, "* SEARCH\r\nA3 OK Search completed.\r\n");
		rig_server(&r, answers[i]);
		assert_int_equal(o.calls, 1);
		assert_string_equal(o.error, "");
		assert_int_equal(o.removed, 2);
		assert_false(u.status.ok);
		assert_forgotten(true);
	}
}

/* The connection went after the check was answered: QUIT's +OK stands, no numbers. */
static void
test_lost_before_status_answered(void **state)
{
	(void)state;
	start_deleting();
	rig_server(&r, "* SEARCH\r\nA3 OK Search completed.\r\n");
	gw_imapc_fail(&r.c, "connection closed by server");
	assert_string_equal(o.error, "");
	assert_int_equal(o.removed, 2);
	assert_forgotten(true);
}

/* Each proof that fails: forgotten, and the next poll lists in full once. */
static void
test_what_is_not_proven_is_forgotten(void **state)
{
	static const char *const status[] = {
		/* a message arrived (UIDNEXT moved) */
		"* STATUS INBOX (MESSAGES 4 UIDNEXT 12 UIDVALIDITY 77 HIGHESTMODSEQ 53)\r\n",
		/* another client expunged one too, unseen by us */
		"* STATUS INBOX (MESSAGES 2 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 54)\r\n",
		/* another UIDVALIDITY */
		"* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 78 HIGHESTMODSEQ 53)\r\n",
		/* a HIGHESTMODSEQ that went back */
		"* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 HIGHESTMODSEQ 49)\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		start_deleting();
		rig_server(&r, status[i]);
		rig_server(&r, "* SEARCH\r\nA3 OK\r\nA4 OK\r\n");
		assert_true(u.status.ok);
		assert_forgotten(true);
	}
	/* an arrival the connection was told of, and another client's expunge it saw */
	for (int i = 0; i < 2; i++) {
		start_deleting();
		rig_server(&r, i == 0 ? "* 4 EXISTS\r\n" : "* 1 EXPUNGE\r\n");
		rig_server(&r, "* SEARCH\r\n* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 "
		    "HIGHESTMODSEQ 53)\r\nA3 OK\r\nA4 OK\r\n");
		assert_true(u.status.ok);
		assert_forgotten(true);
	}
	/* the login's listing was not the mailbox exactly */
	start_deleting();
	rig_server(&r, "* SEARCH\r\n* STATUS INBOX (MESSAGES 3 UIDNEXT 11 UIDVALIDITY 77 "
	    "HIGHESTMODSEQ 53)\r\nA3 OK\r\nA4 OK\r\n");
	assert_forgotten(false);
}

/* A refused STORE or EXPUNGE leaves no listing that says the messages are gone. */
static void
test_a_failed_deletion_is_forgotten(void **state)
{
	(void)state;
	start(two, 0);
	rig_sent(&r);
	rig_server(&r, "A1 NO [SERVERBUG] cannot store\r\n");
	/* Not flagged: the check (and STATUS) go at once. */
	assert_string_equal(rig_sent(&r), "A2 UID SEARCH UID 4,8\r\nA3 " STATUS_CMD);
	rig_server(&r, "* SEARCH 4 8\r\n* STATUS INBOX (MESSAGES 5 UIDNEXT 11 UIDVALIDITY 77 "
	    "HIGHESTMODSEQ 50)\r\nA2 OK\r\nA3 OK\r\n");
	assert_int_equal(o.removed, 0);
	assert_string_not_equal(o.error, "");
	assert_forgotten(true);

	start(two, 0);
	rig_sent(&r);
	rig_server(&r, "A1 OK\r\n");
	rig_sent(&r);
	rig_server(&r, "A2 NO expunge refused\r\n");
	rig_sent(&r);
	rig_server(&r, "* SEARCH 4 8\r\nA3 OK\r\nA4 OK\r\n");	/* no STATUS line */
	assert_string_not_equal(o.error, "");
	assert_forgotten(true);
}

/* Several pieces: STATUS goes once, with the last one's check. */
static void
test_status_with_the_last_piece_only(void **state)
{
	struct gw_update_params p = { &r.snap, false, update_done, &o, "INBOX" };
	uint32_t uids[40];
	char want[256];

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

		rig_sent(&r);
		snprintf(want, sizeof(want), "A%u OK\r\n", tag);
		rig_server(&r, want);
		rig_sent(&r);
		snprintf(want, sizeof(want), "A%u OK\r\n", tag + 1);
		rig_server(&r, want);
		snprintf(want, sizeof(want), "A%u UID SEARCH UID %u:%u\r\n%s", tag + 2, lo, hi,
		    piece == 2 ? "A10 " STATUS_CMD : "");
		assert_string_equal(rig_sent(&r), want);
		snprintf(want, sizeof(want), "* SEARCH\r\nA%u OK\r\n", tag + 2);
		rig_server(&r, want);
	}
	assert_int_equal(o.calls, 0);
	rig_server(&r, "* STATUS INBOX (MESSAGES 0 UIDNEXT 141 UIDVALIDITY 5 HIGHESTMODSEQ 9)\r\n"
	    "A10 OK\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.removed, 40);
	assert_true(u.status.ok);
	assert_int_equal(u.status.uidnext, 141);
	rig_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proven_listing_is_the_old_one_minus_ours),
		cmocka_unit_test(test_outcome_waits_for_status),
		cmocka_unit_test(test_status_trouble_forgets_and_quit_succeeds),
		cmocka_unit_test(test_lost_before_status_answered),
		cmocka_unit_test(test_what_is_not_proven_is_forgotten),
		cmocka_unit_test(test_a_failed_deletion_is_forgotten),
		cmocka_unit_test(test_status_with_the_last_piece_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
