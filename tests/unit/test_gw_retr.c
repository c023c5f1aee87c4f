/* tests/unit/test_gw_retr.c: RETR and TOP (gateway/retr.c) against a scripted IMAP
 * connection: the bytes the client gets (dot-stuffed, "+OK" first, "." last) are the same
 * however the server's bytes are cut; another message's data is skipped; a message
 * expunged meanwhile is an ordinary -ERR; TOP asks for the header and growing body windows
 * until it has its lines; backpressure pauses the connection. */
#include "gw_rig.h"
#include "../../gateway/retr.h"

struct outcome {
	int calls;
	enum gw_xfer_end end;
	char why[64];
};

static void
xfer_done(void *ctx, enum gw_xfer_end end, const char *why)
{
	struct outcome *o = ctx;

	o->calls++;
	o->end = end;
	snprintf(o->why, sizeof(o->why), "%s", why ? why : "");
}

/* One test's connection, op and outcome. */
static struct rig r;
static struct gw_xfer x;
static struct outcome o;

static void
start(bool top, uint32_t lines, size_t hiwat)
{
	static const uint32_t uids[] = { 3, 7 };
	struct gw_xfer_params p = { 2, 7, 0, top, lines, &r.out, hiwat, xfer_done, &o };

	rig_open(&r, GW_CAP_UIDPLUS, 0);
	rig_snapshot(&r, uids, 2, 9);
	p.size = r.snap.size[1];
	memset(&o, 0, sizeof(o));
	gw_xfer_start(&x, &r.c, &p);
}

static const char msg[] = "Subject: hi\r\n\r\n.starts with a dot\r\nbody\r\n.\r\nend\r\n";
static const char stuffed[] = "Subject: hi\r\n\r\n..starts with a dot\r\nbody\r\n..\r\nend\r\n.\r\n";

static void
test_retr_any_split(void **state)
{
	char wire[512], want[512];
	int n;

	(void)state;
	n = snprintf(wire, sizeof(wire), "* 9 FETCH (FLAGS (\\Seen)\r\n* 2 FETCH (UID 7 BODY[] {%zu}"
	    "\r\n%s)\r\nA1 OK done\r\n", sizeof(msg) - 1, msg);
	snprintf(want, sizeof(want), "+OK 1001 octets\r\n%s", stuffed);
	/* The first line is cut on purpose: an unsolicited FETCH without its end is still
	 * skipped whole once it ends. Split the rest at every byte. */
	for (int cut = 0; cut <= n; cut++) {
		char a[512];

		start(false, 0, 1 << 20);
		assert_string_equal(rig_sent(&r), "A1 UID FETCH 7 BODY.PEEK[]\r\n");
		memcpy(a, wire, (size_t)cut);
		a[cut] = '\0';
		rig_server(&r, a);
		rig_server(&r, wire + cut);
		assert_int_equal(o.calls, 1);
		assert_int_equal(o.end, GW_XFER_SENT);
		assert_string_equal(rig_client(&r), want);
		rig_free(&r);
	}
}

static void
test_retr_skips_another_uids_data(void **state)
{
	(void)state;
	start(false, 0, 1 << 20);
	rig_sent(&r);
	rig_server(&r, "* 1 FETCH (UID 3 BODY[] {5}\r\nWRONG)\r\n");
	assert_string_equal(rig_client(&r), "");
	rig_server(&r, "* 2 FETCH (BODY[] {4}\r\nok\r\n UID 7)\r\nA1 OK\r\n");	/* UID after */
	assert_string_equal(rig_client(&r), "+OK 1001 octets\r\nok\r\n.\r\n");
	assert_int_equal(o.end, GW_XFER_SENT);
	rig_free(&r);
}

static void
test_retr_expunged_meanwhile_is_an_ordinary_err(void **state)
{
	(void)state;
	start(false, 0, 1 << 20);
	rig_sent(&r);
	rig_server(&r, "A1 OK no data\r\n");
	assert_int_equal(o.end, GW_XFER_REFUSED);
	assert_string_equal(rig_client(&r), "-ERR Message 2 no longer exists.\r\n");
	rig_free(&r);
}

static void
test_retr_nil_is_sys_temp(void **state)
{
	(void)state;
	start(false, 0, 1 << 20);
	rig_sent(&r);
	rig_server(&r, "* 2 FETCH (UID 7 BODY[] NIL)\r\nA1 OK\r\n");
	assert_int_equal(o.end, GW_XFER_REFUSED);
	assert_non_null(strstr(rig_client(&r), "-ERR [SYS/TEMP]"));
	rig_free(&r);
}

/* The upstream lost after "+OK": no terminating ".", the session must end. */
static void
test_retr_cut_after_ok(void **state)
{
	(void)state;
	start(false, 0, 1 << 20);
	rig_sent(&r);
	rig_server(&r, "* 2 FETCH (UID 7 BODY[] {100}\r\nhalf");
	gw_imapc_fail(&r.c, "connection closed by server");
	assert_int_equal(o.end, GW_XFER_CLOSE);
	assert_string_equal(rig_client(&r), "+OK 1001 octets\r\nhalf");
	rig_free(&r);
}

static void
test_retr_pauses_above_the_high_watermark(void **state)
{
	(void)state;
	start(false, 0, 20);
	rig_sent(&r);
	rig_server(&r, "* 2 FETCH (UID 7 BODY[] {40}\r\n0123456789012345678901234567890123456789)\r\n"
	    "A1 OK\r\n");
	assert_true(gw_imapc_paused(&r.c));
	assert_int_equal(o.calls, 0);		/* A1 OK waits in the input */
	buf_reset(&r.out);			/* the client drained */
	gw_imapc_resume(&r.c);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.end, GW_XFER_SENT);
	rig_free(&r);
}

/* TOP 2 n: the header and a first window go together; a full window without n lines asks
 * for the next, 4 times larger; enough lines end it. */
static void
test_top_windows(void **state)
{
	static char body[4096 + 1];
	char wire[8192];
	const char *client;

	(void)state;
	for (size_t i = 0; i < 4096; i += 8)
		memcpy(body + i, "line..\r\n", 8);	/* 512 lines of 8 octets */
	start(true, 600, 1 << 20);
	assert_string_equal(rig_sent(&r), "A1 UID FETCH 7 BODY.PEEK[HEADER]\r\n"
	    "A2 UID FETCH 7 BODY.PEEK[TEXT]<0.65536>\r\n");
	/* The server gives only 4096 octets of that window (as if that were all it had for
	 * it): a short window ends the body. A full one would ask for more. */
	snprintf(wire, sizeof(wire), "* 2 FETCH (UID 7 BODY[HEADER] {5}\r\nH\r\n\r\n)\r\nA1 OK\r\n"
	    "* 2 FETCH (UID 7 BODY[TEXT]<0> {4096}\r\n%s)\r\nA2 OK\r\n", body);
	rig_server(&r, wire);
	assert_int_equal(o.end, GW_XFER_SENT);
	client = rig_client(&r);
	assert_true(strncmp(client, "+OK Top of message 2 follows.\r\nH\r\n\r\nline..\r\n", 44) == 0);
	rig_free(&r);

	/* 10 lines wanted: the first window is the smallest, and a full window without them
	 * asks for the next one at its end, 4 times larger. */
	start(true, 10, 1 << 20);
	assert_string_equal(rig_sent(&r), "A1 UID FETCH 7 BODY.PEEK[HEADER]\r\n"
	    "A2 UID FETCH 7 BODY.PEEK[TEXT]<0.4096>\r\n");
	memset(body, 'x', 4096);		/* no line end in the first window */
	snprintf(wire, sizeof(wire), "* 2 FETCH (UID 7 BODY[HEADER] {5}\r\nH\r\n\r\n)\r\nA1 OK\r\n"
	    "* 2 FETCH (UID 7 BODY[TEXT]<0> {4096}\r\n%s)\r\nA2 OK\r\n", body);
	rig_server(&r, wire);
	assert_int_equal(o.calls, 0);
	assert_string_equal(rig_sent(&r), "A3 UID FETCH 7 BODY.PEEK[TEXT]<4096.16384>\r\n");
	/* A window of an earlier origin is not this one: skipped. */
	rig_server(&r, "* 2 FETCH (UID 7 BODY[TEXT]<0> {3}\r\nold)\r\n"
	    "* 2 FETCH (UID 7 BODY[TEXT]<4096> {14}\r\n\r\n1\r\n2\r\n3\r\n.\r\n)\r\nA3 OK\r\n");
	assert_int_equal(o.end, GW_XFER_SENT);
	client = rig_client(&r);
	assert_non_null(strstr(client, "xxx\r\n1\r\n2\r\n3\r\n..\r\n.\r\n"));
	assert_null(strstr(client, "old"));
	rig_free(&r);
}

/* TOP n 0 asks for the header only. */
static void
test_top_zero_is_the_header_only(void **state)
{
	(void)state;
	start(true, 0, 1 << 20);
	assert_string_equal(rig_sent(&r), "A1 UID FETCH 7 BODY.PEEK[HEADER]\r\n");
	rig_server(&r, "* 2 FETCH (BODY[HEADER] \"A: b\\r\\n\\r\\n\" UID 7)\r\nA1 OK\r\n");
	assert_int_equal(o.end, GW_XFER_SENT);
	rig_free(&r);
}

/* A TOP refused at its header while its window FETCH is in flight waits for that window
 * (skipping its data) before the next command runs: a server that answers in order, and a
 * proxy that sends the stale window after the next TOP's header, give the next TOP its own
 * body either way. */
static void
test_top_refused_then_top_again(void **state)
{
	static char full[20001];
	char wire[32768];
	const char *client;
	int lines = 0;

	(void)state;
	for (size_t i = 0; i < 200; i++)
		snprintf(full + i * 100, 101, "%098zu\r\n", i);
	start(true, 2, 1 << 20);			/* TOP 2 2 */
	assert_string_equal(rig_sent(&r), "A1 UID FETCH 7 BODY.PEEK[HEADER]\r\n"
	    "A2 UID FETCH 7 BODY.PEEK[TEXT]<0.4096>\r\n");
	rig_server(&r, "A1 NO [UNAVAILABLE] try later\r\n");
	assert_non_null(strstr(rig_client(&r), "-ERR [SYS/TEMP]"));
	assert_int_equal(o.calls, 0);			/* not before A2 is answered */
	rig_server(&r, "* 2 FETCH (UID 7 BODY[TEXT]<0> {11}\r\nSTALE\r\nXX\r\n)\r\nA2 OK\r\n");
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.end, GW_XFER_REFUSED);
	assert_null(strstr(rig_client(&r), "STALE"));
	rig_free(&r);

	/* The reordering proxy: A1 refused, then the next TOP's header, then A2's window. */
	start(true, 2, 1 << 20);
	rig_sent(&r);
	rig_server(&r, "A1 NO [UNAVAILABLE] try later\r\n");
	snprintf(wire, sizeof(wire), "* 2 FETCH (UID 7 BODY[TEXT]<0> {4096}\r\n%.4096s)\r\nA2 OK\r\n",
	    full);
	rig_server(&r, wire);
	assert_int_equal(o.end, GW_XFER_REFUSED);
	buf_reset(&r.out);
	{
		struct gw_xfer_params p = { 2, 7, 20005, true, 100, &r.out, 1 << 20, xfer_done, &o };

		memset(&o, 0, sizeof(o));
		gw_xfer_start(&x, &r.c, &p);		/* TOP 2 100 */
	}
	assert_string_equal(rig_sent(&r), "A3 UID FETCH 7 BODY.PEEK[HEADER]\r\n"
	    "A4 UID FETCH 7 BODY.PEEK[TEXT]<0.16384>\r\n");
	snprintf(wire, sizeof(wire), "* 2 FETCH (UID 7 BODY[HEADER] {5}\r\nH\r\n\r\n)\r\nA3 OK\r\n"
	    "* 2 FETCH (UID 7 BODY[TEXT]<0> {16384}\r\n%.16384s)\r\nA4 OK\r\n", full);
	rig_server(&r, wire);
	assert_int_equal(o.end, GW_XFER_SENT);
	client = rig_client(&r);
	for (const char *q = strstr(client, "\r\n\r\n") + 4; (q = strstr(q, "\r\n")) != NULL; q += 2)
		lines++;
	assert_int_equal(lines - 1, 100);		/* the body lines, then "." */
	rig_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retr_any_split),
		cmocka_unit_test(test_retr_skips_another_uids_data),
		cmocka_unit_test(test_retr_expunged_meanwhile_is_an_ordinary_err),
		cmocka_unit_test(test_retr_nil_is_sys_temp),
		cmocka_unit_test(test_retr_cut_after_ok),
		cmocka_unit_test(test_retr_pauses_above_the_high_watermark),
		cmocka_unit_test(test_top_windows),
		cmocka_unit_test(test_top_zero_is_the_header_only),
		cmocka_unit_test(test_top_refused_then_top_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
