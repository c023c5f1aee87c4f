/* tests/unit/test_gw_login.c: the login (gateway/login.c) against a scripted IMAP
 * connection: credentials, SELECT and the listing pipelined in one round trip; answers in
 * any order; refusals by RFC 5530 code; a listing that is short or unreadable is never a
 * mailbox; continuations for AUTHENTICATE PLAIN without SASL-IR and for OAuth; the secret
 * wiped once written. */
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

struct login_rig {
	struct rig r;
	struct gw_login lg;
	struct gw_cred cred;
	struct outcome o;
};

/* One test's login (a loop may run several in turn). */
static struct login_rig l;

static void
start(unsigned caps, const char *user, const char *pass)
{
	struct gw_login_params p = { .cred = &l.cred, .mailbox = "INBOX", .id_addr = "192.0.2.7",
	    .id_port = 40000, .snap = &l.r.snap, .done = login_done, .ctx = &l.o };

	rig_open(&l.r, caps, 0);
	memset(&l.cred, 0, sizeof(l.cred));
	memset(&l.o, 0, sizeof(l.o));
	snprintf(l.cred.user, sizeof(l.cred.user), "%s", user);
	l.cred.mech = POP3_SASL_PLAIN;
	assert_int_equal(gw_cred_set_password(&l.cred, (const uint8_t *)pass, strlen(pass)), 0);
	gw_login_start(&l.lg, &l.r.c, &p);
	gw_login_ready(&l.lg);
}

static const char selected[] =
    "* FLAGS (\\Seen \\Deleted)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 42] UIDs valid\r\n";
static const char listing[] =
    "* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (RFC822.SIZE 200 UID 9)\r\n"
    "* 3 FETCH (UID 12 RFC822.SIZE 300)\r\n";

static void
assert_wiped(void)
{
	assert_null(l.cred.pass);		/* wiped (explicit_bzero) and freed */
	assert_int_equal(l.cred.pass_len, 0);
}

static void
test_pipelined_sasl_ir_and_the_snapshot(void **state)
{
	char wire[1024];

	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR | GW_CAP_ID, "bob", "hunter2");
	/* One round trip: ID, credentials, SELECT and the listing in one write. */
	assert_string_equal(rig_sent(&l.r),
	    "A1 ID (\"name\" \"popgate\" \"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" "
	    "\"40000\")\r\n"
	    "A2 AUTHENTICATE PLAIN AGJvYgBodW50ZXIy\r\n"
	    "A3 SELECT \"INBOX\"\r\n"
	    "A4 UID FETCH 1:* (UID RFC822.SIZE)\r\n");
	assert_wiped();
	snprintf(wire, sizeof(wire), "A1 OK\r\nA2 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n"
	    "%sA3 OK [READ-WRITE] Select completed\r\n%sA4 OK Fetch completed\r\n", selected, listing);
	rig_server(&l.r, wire);
	assert_int_equal(l.o.calls, 1);
	assert_int_equal(l.o.outcome, GW_LOGIN_OK);
	assert_int_equal(l.r.snap.count, 3);
	assert_int_equal(l.r.snap.uid[1], 9);
	assert_int_equal(l.r.snap.size[2], 300);
	assert_int_equal(l.r.snap.uidvalidity, 42);
	{
		char buf[CACHE_UIDL_MAX];

		assert_string_equal(gw_snapshot_uidl(&l.r.snap, 0, buf), "000000050000002a");
	}
	assert_true(l.r.c.caps_after_login);
	assert_true(l.r.c.caps & GW_CAP_UIDPLUS);
	rig_free(&l.r);
}

/* A proxy may answer the listing before SELECT: the same snapshot. */
static void
test_answers_in_any_order(void **state)
{
	char wire[1024];

	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, "bob", "pw");
	assert_non_null(strstr(rig_sent(&l.r), "A3 UID FETCH"));
	snprintf(wire, sizeof(wire), "%sA3 OK\r\n%sA2 OK\r\nA1 OK\r\n", listing, selected);
	rig_server(&l.r, wire);
	assert_int_equal(l.o.outcome, GW_LOGIN_OK);
	assert_int_equal(l.r.snap.count, 3);
	rig_free(&l.r);
}

static void
test_refusals_by_code(void **state)
{
	static const struct { const char *answer; enum gw_login_outcome want; } cases[] = {
		{ "A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", GW_LOGIN_REFUSED },
		{ "A1 NO Authentication failed.\r\n", GW_LOGIN_REFUSED },
		{ "A1 NO [UNAVAILABLE] Try later.\r\n", GW_LOGIN_TEMP },
		{ "A1 NO [INUSE] Mailbox locked.\r\n", GW_LOGIN_IN_USE },
		{ "A1 BAD what?\r\n", GW_LOGIN_TEMP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	
		start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, "bob", "pw");
		rig_sent(&l.r);
		rig_server(&l.r, cases[i].answer);
		/* The pipelined SELECT's answer after the refusal belongs to no one now. */
		rig_server(&l.r, "A2 NO not authenticated\r\nA3 BAD not authenticated\r\n");
		assert_int_equal(l.o.calls, 1);
		assert_int_equal(l.o.outcome, cases[i].want);
		rig_free(&l.r);
	}
}

/* Thunderbird forgets every UIDL on "+OK 0 0": a short, refused or unreadable listing is
 * the server's trouble, never a mailbox. */
static void
test_a_listing_that_is_not_whole_is_temp(void **state)
{
	static const char *const cases[] = {
		"* 3 EXISTS\r\n* OK [UIDVALIDITY 1]\r\nA2 OK\r\n* 1 FETCH (UID 5 RFC822.SIZE 10)\r\nA3 OK\r\n",
		"* 3 EXISTS\r\n* OK [UIDVALIDITY 1]\r\nA2 OK\r\nA3 NO [SERVERBUG] oops\r\n",
		"* 1 EXISTS\r\n* OK [UIDVALIDITY 1]\r\nA2 OK\r\n* 1 FETCH (UID x RFC822.SIZE 10)\r\nA3 OK\r\n",
		"* 1 EXISTS\r\nA2 OK\r\n* 1 FETCH (UID 5 RFC822.SIZE 10)\r\nA3 OK\r\n",
		"* OK [UIDVALIDITY 1]\r\nA2 OK\r\nA3 OK\r\n",
		"A2 NO [NONEXISTENT] no INBOX\r\nA3 BAD no mailbox\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	
		start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, "bob", "pw");
		rig_sent(&l.r);
		rig_server(&l.r, "A1 OK\r\n");
		rig_server(&l.r, cases[i]);
		assert_int_equal(l.o.calls, 1);
		if (l.o.outcome != GW_LOGIN_TEMP)
			fail_msg("case %zu: outcome %d, not TEMP", i, l.o.outcome);
		rig_free(&l.r);
	}
}

/* Messages expunged during the listing are not owed; arrivals after SELECT are for the
 * next session. */
static void
test_expunges_during_the_listing_are_not_owed(void **state)
{

	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, "bob", "pw");
	rig_sent(&l.r);
	rig_server(&l.r, "A1 OK\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 1]\r\nA2 OK\r\n"
	    "* 1 FETCH (UID 5 RFC822.SIZE 10)\r\n* 2 EXPUNGE\r\n* 2 FETCH (UID 12 RFC822.SIZE 30)\r\n"
	    "* 3 EXISTS\r\nA3 OK\r\n");
	assert_int_equal(l.o.outcome, GW_LOGIN_OK);
	assert_int_equal(l.r.snap.count, 2);
	rig_free(&l.r);
}

/* Without SASL-IR the response waits for the server's "+"; nothing is pipelined behind it. */
static void
test_authenticate_plain_with_a_continuation(void **state)
{

	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_LOGINDISABLED, "bob", "hunter2");
	assert_string_equal(rig_sent(&l.r), "A1 AUTHENTICATE PLAIN\r\n");
	assert_wiped();
	rig_server(&l.r, "+ \r\n");
	assert_string_equal(rig_sent(&l.r), "AGJvYgBodW50ZXIy\r\n");
	rig_server(&l.r, "A1 OK\r\n");
	assert_string_equal(rig_sent(&l.r), "A2 SELECT \"INBOX\"\r\nA3 UID FETCH 1:* (UID RFC822.SIZE)\r\n");
	/* A second "+" has nothing to answer: the connection fails, the login is TEMP. */
	rig_server(&l.r, "+ again?\r\n");
	assert_int_equal(l.o.outcome, GW_LOGIN_TEMP);
	assert_non_null(strstr(l.o.why, "unexpected continuation"));
	rig_free(&l.r);
}

/* LOGIN with quoted strings, or LITERAL+ literals when a quoted string cannot carry it. */
static void
test_login_quoted_and_literal_plus(void **state)
{

	(void)state;
	start(0, "bob@example.net", "pa ss\"w\\d");
	assert_string_equal(rig_sent(&l.r), "A1 LOGIN \"bob@example.net\" \"pa ss\\\"w\\\\d\"\r\n"
	    "A2 SELECT \"INBOX\"\r\nA3 UID FETCH 1:* (UID RFC822.SIZE)\r\n");
	rig_free(&l.r);
	start(GW_CAP_LITERALPLUS, "bob", "\xc3\xa9t\xc3\xa9");
	assert_string_equal(rig_sent(&l.r), "A1 LOGIN \"bob\" {5+}\r\n\xc3\xa9t\xc3\xa9\r\n"
	    "A2 SELECT \"INBOX\"\r\nA3 UID FETCH 1:* (UID RFC822.SIZE)\r\n");
	rig_free(&l.r);
	/* Neither way possible: nothing is sent. */
	start(0, "bob", "\xc3\xa9t\xc3\xa9");
	assert_string_equal(rig_sent(&l.r), "");
	assert_int_equal(l.o.outcome, GW_LOGIN_TEMP);
	rig_free(&l.r);
}

/* A refused OAuth token comes back as a "+" with an error (RFC 7628 §3.2.2): answered once,
 * then the NO is a refusal of the credentials. */
static void
test_bearer_error_challenge(void **state)
{
	static const char token[] = "bixhPWJvYkBleGFtcGxlLm5ldCwBYXV0aD1CZWFyZXIgdG9rAQE=";
	struct gw_login_params p;

	(void)state;
	rig_open(&l.r, GW_CAP_OAUTHBEARER | GW_CAP_SASL_IR, 0);
	memset(&l.cred, 0, sizeof(l.cred));
	memset(&l.o, 0, sizeof(l.o));
	strcpy(l.cred.user, "bob@example.net");
	l.cred.mech = POP3_SASL_OAUTHBEARER;
	l.cred.sasl_resp = malloc(sizeof(token) - 1);
	memcpy(l.cred.sasl_resp, token, sizeof(token) - 1);
	l.cred.sasl_resp_len = sizeof(token) - 1;
	p = (struct gw_login_params){ .cred = &l.cred, .mailbox = "INBOX", .snap = &l.r.snap,
	    .done = login_done, .ctx = &l.o };
	gw_login_start(&l.lg, &l.r.c, &p);
	gw_login_ready(&l.lg);
	assert_string_equal(rig_sent(&l.r), "A1 AUTHENTICATE OAUTHBEARER bixhPWJvYkBleGFtcGxlLm5ldCwB"
	    "YXV0aD1CZWFyZXIgdG9rAQE=\r\n");	/* never pipelined */
	assert_null(l.cred.sasl_resp);
	rig_server(&l.r, "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n");
	assert_string_equal(rig_sent(&l.r), "AQ==\r\n");
	rig_server(&l.r, "A1 NO [AUTHENTICATIONFAILED] invalid token\r\n");
	assert_int_equal(l.o.outcome, GW_LOGIN_REFUSED);
	rig_free(&l.r);
}

/* The connection lost before the outcome: TEMP, told once. */
static void
test_lost_is_temp(void **state)
{

	(void)state;
	start(GW_CAP_AUTH_PLAIN | GW_CAP_SASL_IR, "bob", "pw");
	rig_server(&l.r, "A1 OK\r\n* BYE going down\r\n");
	gw_imapc_fail(&l.r.c, "connection closed by server");
	assert_int_equal(l.o.calls, 1);
	assert_int_equal(l.o.outcome, GW_LOGIN_TEMP);
	rig_free(&l.r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_sasl_ir_and_the_snapshot),
		cmocka_unit_test(test_answers_in_any_order),
		cmocka_unit_test(test_refusals_by_code),
		cmocka_unit_test(test_a_listing_that_is_not_whole_is_temp),
		cmocka_unit_test(test_expunges_during_the_listing_are_not_owed),
		cmocka_unit_test(test_authenticate_plain_with_a_continuation),
		cmocka_unit_test(test_login_quoted_and_literal_plus),
		cmocka_unit_test(test_bearer_error_challenge),
		cmocka_unit_test(test_lost_is_temp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
