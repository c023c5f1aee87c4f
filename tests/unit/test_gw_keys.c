/* tests/unit/test_gw_keys.c: reading content keys upstream (gateway/keys.c) against a
 * scripted IMAP connection: one FETCH of the header fields for the messages asked about,
 * each answer keyed by the UID its line names (before or after the literal, or a quoted
 * string, or NIL), answers for other UIDs skipped, a refusal reported. */
#include "gw_rig.h"
#include "../../common/content_key.h"
#include "../../gateway/keys.h"

struct outcome {
	int calls;
	bool complete;
};

static void
keys_done(void *ctx, bool complete, const char *why)
{
	struct outcome *o = ctx;

	(void)why;
	o->calls++;
	o->complete = complete;
}

static const char h5[] = "Message-ID: <five@x>\r\nSubject: five\r\n\r\n";
static const char h9[] = "Subject: nine\r\nMessage-ID: <nine@x>\r\n\r\n";

static const char *
key(const char *header)
{
	static char k[2][CONTENT_KEY_SIZE];
	static int which;

	which ^= 1;
	assert_int_equal(content_key((const uint8_t *)header, strlen(header), k[which]), 0);
	return k[which];
}

static void
test_keys_by_uid_in_any_form(void **state)
{
	struct rig r;
	struct gw_keys k;
	struct outcome o = { 0, false };
	struct cache_entry e[3] = { { 0, 5, 10, "", NULL }, { 1, 7, 10, "", NULL },
	    { 2, 9, 10, "", NULL } };
	struct gw_keys_params p = { e, 3, keys_done, &o };
	char wire[1024];

	(void)state;
	rig_open(&r, 0, 0);
	gw_keys_start(&k, &r.c, &p);
	assert_string_equal(rig_sent(&r), "A1 UID FETCH 5,7,9 (UID BODY.PEEK[HEADER.FIELDS "
	    "(MESSAGE-ID DATE FROM TO SUBJECT)])\r\n");
	snprintf(wire, sizeof(wire),
	    "* 1 FETCH (UID 4 BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] {3}\r\nx\r\n)\r\n"
	    "* 2 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] {%zu}\r\n%s)\r\n"
	    "* 3 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] {%zu}\r\n%s UID 9)\r\n"
	    "* 4 FETCH (UID 7 BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)] NIL)\r\n"
	    "A1 OK done\r\n", strlen(h5), h5, strlen(h9), h9);
	rig_server(&r, wire);
	assert_int_equal(o.calls, 1);
	assert_true(o.complete);
	assert_string_equal(e[0].ckey, key(h5));
	assert_string_equal(e[2].ckey, key(h9));
	assert_string_equal(e[1].ckey, key(""));	/* NIL: no header at all */
	/* The Message-ID each key was made of, for import matching and `uidl export`. */
	assert_string_equal(e[0].msgid, "five@x");
	assert_string_equal(e[2].msgid, "nine@x");
	assert_null(e[1].msgid);
	rig_free(&r);
	for (size_t i = 0; i < 3; i++)
		free((char *)e[i].msgid);
}

static void
test_a_refusal_is_reported(void **state)
{
	struct rig r;
	struct gw_keys k;
	struct outcome o = { 0, true };
	struct cache_entry e[1] = { { 0, 5, 10, "", NULL } };
	struct gw_keys_params p = { e, 1, keys_done, &o };

	(void)state;
	rig_open(&r, 0, 0);
	gw_keys_start(&k, &r.c, &p);
	rig_sent(&r);
	rig_server(&r, "A1 NO [SERVERBUG] no\r\n");
	assert_int_equal(o.calls, 1);
	assert_false(o.complete);
	assert_string_equal(e[0].ckey, "");
	rig_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_by_uid_in_any_form),
		cmocka_unit_test(test_a_refusal_is_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
