/* tests/unit/test_pop3_reply.c: POP3 reply lines (pop3/pop3_reply.c): codes, no CR/LF/NUL
 * injection through arguments, the 512-octet bound, stuffed multi-line lines, a full buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../pop3/pop3_reply.h"

static void
assert_out(struct buf *b, const char *want)
{
	size_t n = strlen(want);

	if (buf_len(b) != n || memcmp(buf_data(b), want, n) != 0)
		fail_msg("got \"%.*s\", want \"%s\"", (int)buf_len(b), (const char *)buf_data(b),
		    want);
	buf_reset(b);
}

static void
test_status_lines(void **state)
{
	struct buf b = { 0 };

	(void)state;
	pop3_reply_ok(&b, "%u messages (%llu octets)", 2u, 320ULL);
	assert_out(&b, "+OK 2 messages (320 octets)\r\n");
	pop3_reply_err(&b, NULL, "No such message.");
	assert_out(&b, "-ERR No such message.\r\n");
	pop3_reply_err(&b, POP3_CODE_AUTH, "Authentication failed.");
	assert_out(&b, "-ERR [AUTH] Authentication failed.\r\n");
	pop3_reply_err(&b, POP3_CODE_SYS_TEMP, "Try later.");
	assert_out(&b, "-ERR [SYS/TEMP] Try later.\r\n");
	pop3_reply_err(&b, POP3_CODE_SYS_PERM, "x");
	assert_out(&b, "-ERR [SYS/PERM] x\r\n");
	pop3_reply_err(&b, POP3_CODE_IN_USE, "x");
	assert_out(&b, "-ERR [IN-USE] x\r\n");
	pop3_reply_err(&b, POP3_CODE_LOGIN_DELAY, "x");
	assert_out(&b, "-ERR [LOGIN-DELAY] x\r\n");
	pop3_reply_ok(&b, "%s", "");
	assert_out(&b, "+OK \r\n");
	buf_free(&b);
}

/* Text from a client or an upstream cannot end the line or start another reply. */
static void
test_injection(void **state)
{
	struct buf b = { 0 };

	(void)state;
	pop3_reply_ok(&b, "Hello %s", "bob\r\n+OK forged");
	assert_out(&b, "+OK Hello bob  +OK forged\r\n");
	pop3_reply_err(&b, POP3_CODE_AUTH, "upstream said: %s", "NO\nBYE\r");
	assert_out(&b, "-ERR [AUTH] upstream said: NO BYE \r\n");
	pop3_reply_line(&b, "%s%c%s", "a", 0, "b");		/* a NUL from %c */
	assert_out(&b, "a b\r\n");
	pop3_reply_line(&b, "%s", "1 x\r\n.\r\n");		/* no early terminator */
	assert_out(&b, "1 x  .  \r\n");
	buf_free(&b);
}

/* A multi-line reply's line that starts with "." is stuffed (RFC 1939 §3). */
static void
test_multiline(void **state)
{
	struct buf b = { 0 };

	(void)state;
	pop3_reply_line(&b, "%u %u", 1u, 120u);
	pop3_reply_line(&b, "%s", ".hidden");
	pop3_reply_line(&b, "%s", ".");
	pop3_reply_end(&b);
	assert_out(&b, "1 120\r\n..hidden\r\n..\r\n.\r\n");
	buf_free(&b);
}

/* RFC 2449 §4: a response line is at most 512 octets, CRLF included. */
static void
test_length_bound(void **state)
{
	struct buf b = { 0 };
	char big[2000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pop3_reply_ok(&b, "%s", big);
	assert_int_equal(buf_len(&b), 512);
	assert_memory_equal(buf_data(&b), "+OK xxx", 7);
	assert_memory_equal(buf_data(&b) + 510, "\r\n", 2);
	buf_reset(&b);
	pop3_reply_err(&b, POP3_CODE_LOGIN_DELAY, "%s", big);
	assert_int_equal(buf_len(&b), 512);
	assert_memory_equal(buf_data(&b), "-ERR [LOGIN-DELAY] xxx", 22);
	assert_memory_equal(buf_data(&b) + 510, "\r\n", 2);
	buf_reset(&b);
	big[0] = '.';
	pop3_reply_line(&b, "%s", big);
	assert_int_equal(buf_len(&b), 512);
	assert_memory_equal(buf_data(&b), "..xx", 4);
	buf_reset(&b);
	big[509] = '\0';				/* exactly 510 + CRLF: not cut */
	big[0] = 'x';
	pop3_reply_line(&b, "%s", big);
	assert_int_equal(buf_len(&b), 511);
	buf_free(&b);
}

/* Writers do not fail one by one: the buffer keeps the first failure. */
static void
test_full_buffer(void **state)
{
	struct buf b = { 0 };

	(void)state;
	buf_set_max(&b, 16);
	pop3_reply_ok(&b, "short");
	assert_false(b.failed);
	pop3_reply_ok(&b, "this does not fit at all");
	assert_true(b.failed);
	pop3_reply_end(&b);
	assert_true(b.failed);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_lines),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_length_bound),
		cmocka_unit_test(test_full_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
