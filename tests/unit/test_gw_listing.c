/* tests/unit/test_gw_listing.c: the listing cache of a CONDSTORE login (gateway/login.c,
 * RFC 7162) against a scripted IMAP connection: SELECT (CONDSTORE) goes with the
 * credentials and the FETCH waits for its answer and the stored listing; an unchanged
 * mailbox sends no FETCH, new arrivals fetch only their range, and whatever the stored
 * listing cannot be proven against (an expunge, a new UIDVALIDITY, [NOMODSEQ], no stored
 * listing, SELECT (CONDSTORE) refused) gets the full FETCH. */
#include "gw_rig.h"
#include "../../gateway/login.h"

struct outcome {
	int calls;
	enum gw_login_outcome outcome;
	char why[200];
};

static void
login_done(void *ctx, enum gw_login_outcome outcome, const char *why)
{
	struct outcome *o = ctx;

	o->calls++;
	o->outcome = outcome;
	snprintf(o->why, sizeof(o->why), "%s", why);
}

static struct {
	struct rig r;
	struct gw_login lg;
	struct gw_cred cred;
	struct outcome o;
	int wanted;		/* prior_wanted() calls */
} l;

static void
prior_wanted(void *ctx)
{
	(void)ctx;
	l.wanted++;
}

/* The stored listing: UIDs 5, 9, 12 (sizes 100, 200, 300), UIDNEXT 13, HIGHESTMODSEQ 100. */
static uint32_t prior_uid[] = { 5, 9, 12 };
static uint64_t prior_size[] = { 100, 200, 300 };
static const struct cache_listing prior = { 42, 13, 3, 100, 3, prior_uid, prior_size };

#define SENT_LOGIN "A1 AUTHENTICATE PLAIN AGJvYgBwdw==\r\n"
#define SENT_SELECT_CS "A2 SELECT \"INBOX\" (CONDSTORE)\r\n"
#define FULL_FETCH "UID FETCH 1:* (UID RFC822.SIZE)\r\n"

static void
start(unsigned caps, bool hint)
{
	struct gw_login_params p = { .cred = &l.cred, .mailbox = "INBOX", .snap = &l.r.snap,
	    .done = login_done, .ctx = &l.o, .listing_cache = true, .condstore_hint = hint,
	    .prior_wanted = prior_wanted };

	rig_open(&l.r, caps, 0);
	memset(&l.cred, 0, sizeof(l.cred));
	memset(&l.o, 0, sizeof(l.o));
	l.wanted = 0;
	strcpy(l.cred.user, "bob");
	l.cred.mech = POP3_SASL_PLAIN;
	assert_int_equal(gw_cred_set_password(&l.cred, (const uint8_t *)"pw", 2), 0);
	gw_login_start(&l.lg, &l.r.c, &p);
	gw_login_ready(&l.lg);
}

/* A CONDSTORE server's login up to SELECT's answer; the FETCH waits. */
static void
start_selected(const char *select_data)
{
	char wire[1024];

	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR | GW_CAP_CONDSTORE, false);
	assert_string_equal(rig_sent(&l.r), SENT_LOGIN SENT_SELECT_CS);
	snprintf(wire, sizeof(wire), "A1 OK Logged in\r\n%sA2 OK [READ-WRITE] Select completed "
	    "(CONDSTORE enabled)\r\n", select_data);
	rig_server(&l.r, wire);
	assert_int_equal(l.o.calls, 0);
	assert_string_equal(rig_sent(&l.r), "");	/* no FETCH before the stored listing */
}

static void
assert_snapshot(const uint32_t *uid, const uint64_t *size, size_t n)
{
	assert_int_equal(l.o.calls, 1);
	assert_int_equal(l.o.outcome, GW_LOGIN_OK);
	assert_int_equal(l.r.snap.count, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(l.r.snap.uid[i], uid[i]);
		assert_int_equal(l.r.snap.size[i], size[i]);
	}
}

#define SELECTED(exists, uidvalidity, uidnext, modseq) \
	"* FLAGS (\\Seen \\Deleted)\r\n* " #exists " EXISTS\r\n* OK [UIDVALIDITY " #uidvalidity \
	"] UIDs valid\r\n* OK [UIDNEXT " #uidnext "] Predicted next UID\r\n" \
	"* OK [HIGHESTMODSEQ " #modseq "] Highest\r\n"

/* All four as stored: the stored listing, and no FETCH at all. */
static void
test_unchanged_sends_no_fetch(void **state)
{
	(void)state;
	start_selected(SELECTED(3, 42, 13, 100));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_int_equal(l.lg.how, GW_LISTING_CACHED);
	assert_false(l.lg.storable);		/* nothing new to store */
	assert_true(l.lg.exact);		/* what a QUIT may build on */
	assert_int_equal(l.r.snap.uidvalidity, 42);
	rig_free(&l.r);
}

/* The stored listing may come first: the same. */
static void
test_stored_listing_before_select(void **state)
{
	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR | GW_CAP_CONDSTORE, false);
	rig_sent(&l.r);
	gw_login_prior(&l.lg, &prior);
	rig_server(&l.r, "A1 OK\r\n" SELECTED(3, 42, 13, 100) "A2 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_int_equal(l.wanted, 0);		/* nothing was waited for */
	rig_free(&l.r);
}

/* Two new messages: only their range is fetched, and the whole is stored. */
static void
test_new_arrivals_fetch_only_their_range(void **state)
{
	static const uint32_t uid[] = { 5, 9, 12, 14, 17 };
	static const uint64_t size[] = { 100, 200, 300, 400, 500 };

	(void)state;
	start_selected(SELECTED(5, 42, 18, 107));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 4 FETCH (UID 14 RFC822.SIZE 400)\r\n"
	    "* 5 FETCH (UID 17 RFC822.SIZE 500)\r\nA3 OK Fetch completed\r\n");
	assert_string_equal(rig_sent(&l.r), "");
	assert_snapshot(uid, size, 5);
	assert_int_equal(l.lg.how, GW_LISTING_INCREMENTAL);
	assert_true(l.lg.storable);
	assert_int_equal(l.lg.meta.uidnext, 18);
	assert_int_equal(l.lg.meta.exists, 5);
	assert_true(l.lg.meta.modseq == 107);
	rig_free(&l.r);
}

/* Another client set \Deleted (or \Seen): HIGHESTMODSEQ moved, nothing else. The listing
 * holds \Deleted messages too (UID FETCH 1:* lists them), so it is unchanged: proven by the
 * range FETCH ("13:*" names the last message, below 13: not a new one) and the count. */
static void
test_a_flag_change_is_proven_by_count(void **state)
{
	(void)state;
	start_selected(SELECTED(3, 42, 13, 101));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 3 FETCH (UID 12 RFC822.SIZE 300)\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_int_equal(l.lg.how, GW_LISTING_INCREMENTAL);
	rig_free(&l.r);
}

/* An expunge: fewer messages than stored plus new ones, so the full FETCH. */
static void
test_an_expunge_gets_the_full_fetch(void **state)
{
	static const uint32_t uid[] = { 5, 12 };
	static const uint64_t size[] = { 100, 300 };

	(void)state;
	start_selected(SELECTED(2, 42, 13, 103));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 2 FETCH (UID 12 RFC822.SIZE 300)\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "A4 " FULL_FETCH);
	assert_int_equal(l.o.calls, 0);
	rig_server(&l.r, "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n"
	    "* 2 FETCH (UID 12 RFC822.SIZE 300)\r\nA4 OK\r\n");
	assert_snapshot(uid, size, 2);
	assert_int_equal(l.lg.how, GW_LISTING_FULL);
	assert_true(l.lg.storable);
	rig_free(&l.r);
}

/* An expunge and an arrival: EXISTS as stored, but UIDNEXT grew and the count says one of
 * the stored messages is gone. */
static void
test_an_expunge_and_an_arrival_get_the_full_fetch(void **state)
{
	static const uint32_t uid[] = { 5, 12, 13 };
	static const uint64_t size[] = { 100, 300, 50 };

	(void)state;
	start_selected(SELECTED(3, 42, 14, 104));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 3 FETCH (UID 13 RFC822.SIZE 50)\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "A4 " FULL_FETCH);
	rig_server(&l.r, "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 12 RFC822.SIZE "
	    "300)\r\n* 3 FETCH (UID 13 RFC822.SIZE 50)\r\nA4 OK\r\n");
	assert_snapshot(uid, size, 3);
	rig_free(&l.r);
}

/* An EXPUNGE during the range FETCH: no proof, the full FETCH. */
static void
test_an_expunge_during_the_range_fetch(void **state)
{
	static const uint32_t uid[] = { 5, 9, 14 };
	static const uint64_t size[] = { 100, 200, 400 };

	(void)state;
	start_selected(SELECTED(4, 42, 15, 104));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 4 FETCH (UID 14 RFC822.SIZE 400)\r\n* 3 EXPUNGE\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "A4 " FULL_FETCH);
	rig_server(&l.r, "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 9 RFC822.SIZE "
	    "200)\r\n* 3 FETCH (UID 14 RFC822.SIZE 400)\r\nA4 OK\r\n");
	assert_snapshot(uid, size, 3);
	assert_false(l.lg.storable);		/* an EXPUNGE after SELECT: not SELECT's view */
	rig_free(&l.r);
}

/* Each of these is the full FETCH at once. */
static void
test_what_cannot_be_compared_gets_the_full_fetch(void **state)
{
	static const char *const selects[] = {
		SELECTED(3, 43, 13, 100),	/* UIDVALIDITY changed */
		"* 3 EXISTS\r\n* OK [UIDVALIDITY 42] x\r\n* OK [UIDNEXT 13] x\r\n"
		    "* OK [NOMODSEQ] Sorry, modsequences are not supported\r\n",
		"* 3 EXISTS\r\n* OK [UIDVALIDITY 42] x\r\n* OK [HIGHESTMODSEQ 100] x\r\n",
		SELECTED(3, 42, 13, 99),	/* HIGHESTMODSEQ went back */
		SELECTED(3, 42, 12, 100),	/* UIDNEXT went back */
	};
	static const bool storable[] = { true, false, false, true, true };

	(void)state;
	for (size_t i = 0; i < sizeof(selects) / sizeof(selects[0]); i++) {
		start_selected(selects[i]);
		gw_login_prior(&l.lg, &prior);
		assert_string_equal(rig_sent(&l.r), "A3 " FULL_FETCH);
		rig_server(&l.r, "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 9 "
		    "RFC822.SIZE 200)\r\n* 3 FETCH (UID 11 RFC822.SIZE 300)\r\nA3 OK\r\n");
		assert_int_equal(l.o.outcome, GW_LOGIN_OK);
		assert_int_equal(l.r.snap.uid[2], 11);
		assert_int_equal(l.lg.how, GW_LISTING_FULL);
		assert_int_equal(l.lg.storable, storable[i]);
		rig_free(&l.r);
	}
}

/* No stored listing (first poll, or the cache failed): the full FETCH, then stored. */
static void
test_no_stored_listing(void **state)
{
	(void)state;
	start_selected(SELECTED(3, 42, 13, 100));
	/* Only the stored listing is missing: the owner is told once, to bound the wait
	 * (session_listing.c); its NULL, on time or not, means the full FETCH. */
	assert_int_equal(l.wanted, 1);
	gw_login_prior(&l.lg, NULL);
	assert_int_equal(l.wanted, 1);
	assert_string_equal(rig_sent(&l.r), "A3 " FULL_FETCH);
	rig_server(&l.r, "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 9 RFC822.SIZE "
	    "200)\r\n* 3 FETCH (UID 12 RFC822.SIZE 300)\r\nA3 OK\r\n");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_true(l.lg.storable);
	/* what the next poll compares with */
	assert_int_equal(l.lg.meta.uidvalidity, 42);
	assert_int_equal(l.lg.meta.uidnext, 13);
	assert_int_equal(l.lg.meta.exists, 3);
	assert_true(l.lg.meta.modseq == 100);
	rig_free(&l.r);
}

/* A listing line that cannot be read is a failure, never a shorter listing. */
static void
test_an_unreadable_range_line_is_temp(void **state)
{
	(void)state;
	start_selected(SELECTED(4, 42, 14, 101));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 4 FETCH (UID x RFC822.SIZE 400)\r\nA3 OK\r\n");
	assert_int_equal(l.o.calls, 1);
	assert_int_equal(l.o.outcome, GW_LOGIN_TEMP);
	rig_free(&l.r);
}

/* Pre-login capabilities seldom name CONDSTORE (Dovecot's do not): an earlier login's
 * server did, so SELECT asks for it; the server refuses the parameter: a plain SELECT and
 * the full FETCH, and the hint is dropped. */
static void
test_a_wrong_hint_falls_back_to_a_plain_select(void **state)
{
	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, true);
	assert_string_equal(rig_sent(&l.r), SENT_LOGIN SENT_SELECT_CS);
	rig_server(&l.r, "A1 OK\r\nA2 BAD Unknown SELECT parameter\r\n");
	assert_string_equal(rig_sent(&l.r), "A3 SELECT \"INBOX\"\r\nA4 " FULL_FETCH);
	assert_true(l.lg.condstore_refused);
	gw_login_prior(&l.lg, &prior);		/* not waited for, not used */
	rig_server(&l.r, "* 3 EXISTS\r\n* OK [UIDVALIDITY 42] x\r\nA3 OK\r\n"
	    "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 9 RFC822.SIZE 200)\r\n"
	    "* 3 FETCH (UID 12 RFC822.SIZE 300)\r\nA4 OK\r\n");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_false(l.lg.storable);
	rig_free(&l.r);
}

/* A server without CONDSTORE, no hint: today's pipeline, the stored listing not waited for. */
static void
test_without_condstore_nothing_changes(void **state)
{
	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, false);
	assert_string_equal(rig_sent(&l.r), SENT_LOGIN "A2 SELECT \"INBOX\"\r\nA3 " FULL_FETCH);
	rig_server(&l.r, "A1 OK\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 42] x\r\nA2 OK\r\n"
	    "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 9 RFC822.SIZE 200)\r\n"
	    "* 3 FETCH (UID 12 RFC822.SIZE 300)\r\nA3 OK\r\n");
	assert_snapshot(prior_uid, prior_size, 3);
	assert_false(l.lg.condstore);
	assert_false(l.lg.storable);
	rig_free(&l.r);
}

/* OAuth is never pipelined: SELECT goes after the login's OK, whose capabilities decide
 * (a hint from another login does not override what this server says now). */
static void
test_after_a_bearer_login_its_capabilities_decide(void **state)
{
	static const char token[] = "bixhPWJvYkBleGFtcGxlLm5ldCwBYXV0aD1CZWFyZXIgdG9rAQE=";
	static const struct { const char *ok; bool hint; const char *want; } cases[] = {
		{ "A1 OK [CAPABILITY IMAP4rev1 CONDSTORE] Logged in\r\n", false,
		    "A2 SELECT \"INBOX\" (CONDSTORE)\r\n" },
		{ "A1 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n", true,
		    "A2 SELECT \"INBOX\"\r\nA3 " FULL_FETCH },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_login_params p = { .cred = &l.cred, .mailbox = "INBOX",
		    .snap = &l.r.snap, .done = login_done, .ctx = &l.o, .listing_cache = true,
		    .condstore_hint = cases[i].hint };

		rig_open(&l.r, GW_CAP_OAUTHBEARER | GW_CAP_SASL_IR, 0);
		memset(&l.cred, 0, sizeof(l.cred));
		memset(&l.o, 0, sizeof(l.o));
		strcpy(l.cred.user, "bob@example.net");
		l.cred.mech = POP3_SASL_OAUTHBEARER;
		assert_non_null(l.cred.sasl_resp = malloc(sizeof(token) - 1));
		memcpy(l.cred.sasl_resp, token, sizeof(token) - 1);
		l.cred.sasl_resp_len = sizeof(token) - 1;
		gw_login_start(&l.lg, &l.r.c, &p);
		gw_login_ready(&l.lg);
		assert_non_null(strstr(rig_sent(&l.r), "A1 AUTHENTICATE OAUTHBEARER "));
		rig_server(&l.r, cases[i].ok);
		assert_string_equal(rig_sent(&l.r), cases[i].want);
		gw_login_abort(&l.lg);
		rig_free(&l.r);
	}
}

/* Stored 5, 9, 12; before SELECT 9 is expunged and a flag set (EXISTS 2, HIGHESTMODSEQ up);
 * during the range FETCH a message arrives and its EXISTS comes after the FETCH data
 * (Dovecot's sync at the command's end). Stored 3 + new 0 == EXISTS 3 now, yet UID 9 is
 * gone: the proof counts against SELECT's EXISTS, so the full FETCH runs. */
static void
test_an_arrival_during_the_range_fetch_proves_nothing(void **state)
{
	(void)state;
	start_selected(SELECTED(2, 42, 13, 103));
	gw_login_prior(&l.lg, &prior);
	assert_string_equal(rig_sent(&l.r), "A3 UID FETCH 13:* (UID RFC822.SIZE)\r\n");
	rig_server(&l.r, "* 2 FETCH (UID 12 RFC822.SIZE 300)\r\n* 3 EXISTS\r\nA3 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "A4 " FULL_FETCH);
	rig_free(&l.r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_arrival_during_the_range_fetch_proves_nothing),
		cmocka_unit_test(test_unchanged_sends_no_fetch),
		cmocka_unit_test(test_stored_listing_before_select),
		cmocka_unit_test(test_new_arrivals_fetch_only_their_range),
		cmocka_unit_test(test_a_flag_change_is_proven_by_count),
		cmocka_unit_test(test_an_expunge_gets_the_full_fetch),
		cmocka_unit_test(test_an_expunge_and_an_arrival_get_the_full_fetch),
		cmocka_unit_test(test_an_expunge_during_the_range_fetch),
		cmocka_unit_test(test_what_cannot_be_compared_gets_the_full_fetch),
		cmocka_unit_test(test_no_stored_listing),
		cmocka_unit_test(test_an_unreadable_range_line_is_temp),
		cmocka_unit_test(test_a_wrong_hint_falls_back_to_a_plain_select),
		cmocka_unit_test(test_without_condstore_nothing_changes),
		cmocka_unit_test(test_after_a_bearer_login_its_capabilities_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
