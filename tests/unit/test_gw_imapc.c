/* tests/unit/test_gw_imapc.c: the IMAP client connection (gateway/imapc.c) on its own, with
 * a scripted server: tagged answers reach their op's completion and a detached one is
 * dropped; untagged data reaches every active op and no ended one; what the connection
 * tracks (capabilities, EXISTS, UIDVALIDITY and its change, READ-ONLY, BYE); and what ends
 * it (an unknown tag, a "+" nobody answers, a malformed line). */
#include "gw_rig.h"

struct probe_op {
	struct gw_imapc_op op;
	char seen[256];		/* "done:A1:OK|untagged:EXISTS|lost" */
};

#define PROBE(o) ((struct probe_op *)((char *)(o) - offsetof(struct probe_op, op)))

static void
note(struct probe_op *p, const char *what)
{
	size_t n = strlen(p->seen);

	snprintf(p->seen + n, sizeof(p->seen) - n, "%s%s", n ? "|" : "", what);
}

static void
op_untagged(struct gw_imapc_op *op, const struct imap_resp *r)
{
	char text[64];

	snprintf(text, sizeof(text), "untagged:%.*s", (int)r->name.len, (const char *)r->name.p);
	note(PROBE(op), text);
}

static void
op_lost(struct gw_imapc_op *op, const char *why)
{
	(void)why;
	note(PROBE(op), "lost");
}

static void
op_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	char text[64];

	snprintf(text, sizeof(text), "done:%.*s:%s", (int)r->tag.len, (const char *)r->tag.p,
	    r->status == IMAP_STATUS_OK ? "OK" : "NO");
	note(PROBE(op), text);
}

static const struct gw_imapc_op_handler probe_handler = {
	.untagged = op_untagged,
	.lost = op_lost,
};

static void
cmd(struct rig *r, struct probe_op *p, const char *verb)
{
	struct buf *out = gw_imapc_cmd(&r->c, &p->op, verb, op_done);

	assert_non_null(out);
	buf_printf(out, "%s\r\n", verb);
	gw_imapc_send(&r->c);
}

static void
test_completions_and_untagged_go_to_their_op(void **state)
{
	struct rig r;
	struct probe_op a = { 0 }, b = { 0 };

	(void)state;
	rig_open(&r, 0, 0);
	gw_imapc_op_begin(&r.c, &a.op, &probe_handler);
	gw_imapc_op_begin(&r.c, &b.op, &probe_handler);
	cmd(&r, &a, "NOOP");
	cmd(&r, &b, "CHECK");
	assert_string_equal(rig_sent(&r), "A1 NOOP\r\nA2 CHECK\r\n");
	rig_server(&r, "* 4 EXISTS\r\nA2 OK\r\n");
	gw_imapc_op_end(&r.c, &a.op);		/* A1's answer now belongs to no one */
	rig_server(&r, "* 1 EXPUNGE\r\nA1 OK\r\n");
	assert_string_equal(a.seen, "untagged:EXISTS");
	assert_string_equal(b.seen, "untagged:EXISTS|done:A2:OK|untagged:EXPUNGE");
	assert_true(r.c.have_exists);
	assert_int_equal(r.c.exists, 3);
	gw_imapc_fail(&r.c, "test");
	assert_string_equal(b.seen, "untagged:EXISTS|done:A2:OK|untagged:EXPUNGE|lost");
	assert_string_equal(a.seen, "untagged:EXISTS");	/* ended ops hear nothing */
	assert_true(r.lost);
	rig_free(&r);
}

static void
test_what_the_connection_tracks(void **state)
{
	struct rig r;

	(void)state;
	rig_open(&r, 0, 0);
	r.c.caps_known = false;
	rig_server(&r, "* CAPABILITY\r\n");		/* names no IMAP version: names nothing */
	assert_true(r.c.caps_known);
	assert_false(r.c.caps_seen);
	rig_server(&r, "* CAPABILITY IMAP4rev1 UIDPLUS AUTH=PLAIN LITERAL-\r\n");
	assert_true(r.c.caps_seen);
	assert_int_equal(r.c.caps, GW_CAP_UIDPLUS | GW_CAP_AUTH_PLAIN | GW_CAP_LITERALPLUS);
	rig_server(&r, "* OK [UIDVALIDITY 7] x\r\n* OK [UIDVALIDITY 7] again\r\n");
	assert_int_equal(r.c.uidvalidity, 7);
	assert_false(r.c.uidvalidity_changed);
	rig_server(&r, "* OK [UIDVALIDITY 8] rebuilt\r\n");
	assert_true(r.c.uidvalidity_changed);
	assert_int_equal(r.c.uidvalidity, 7);		/* the one our UIDs were taken under */
	assert_false(r.c.read_only);
	rig_server(&r, "* OK [READ-ONLY] x\r\n");
	assert_true(r.c.read_only);
	assert_true(gw_imapc_is_ready(&r.c));
	rig_server(&r, "* BYE going away\r\n");
	assert_false(gw_imapc_is_ready(&r.c));	/* no new command after BYE */
	assert_null(gw_imapc_cmd(&r.c, &r.c.prelogin, "NOOP", NULL));
	assert_non_null(strstr(gw_imapc_last_error(&r.c), "BYE"));
	rig_free(&r);
}

static void
test_what_ends_it(void **state)
{
	static const char *const wire[] = {
		"A9 OK who asked?\r\n",		/* an unknown tag */
		"+ go on\r\n",			/* a continuation no op answers */
		"garbage\r\n",			/* not a response */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(wire) / sizeof(wire[0]); i++) {
		struct rig r;

		rig_open(&r, 0, 0);
		rig_server(&r, wire[i]);
		assert_true(r.lost);
		assert_false(gw_imapc_is_ready(&r.c));
		rig_free(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completions_and_untagged_go_to_their_op),
		cmocka_unit_test(test_what_the_connection_tracks),
		cmocka_unit_test(test_what_ends_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
