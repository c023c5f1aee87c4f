/* tests/unit/test_conn.c: how a plain conn (common/conn.c) holds its buffers, over a
 * socketpair: an idle connection's small reads own a small buffer, not a read chunk; bytes
 * arrive whole and in order whether a read goes through the stack or in place; and
 * conn_release_idle() gives back only empty, unfailed buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../common/conn.h"

struct pair {
	struct conn c;
	int peer;
};

static void
pair_open(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	conn_init(&p->c, sv[0], 256 * 1024, 0);
	p->peer = sv[1];
}

static void
pair_close(struct pair *p)
{
	conn_close(&p->c);
	close(p->peer);
}

static void
test_small_read_owns_little(void **state)
{
	struct pair p;
	static const char line[] = "NOOP\r\n";

	(void)state;
	pair_open(&p);
	assert_int_equal(write(p.peer, line, sizeof(line) - 1), sizeof(line) - 1);
	assert_int_equal(conn_read(&p.c), CONN_OK);
	assert_int_equal(buf_len(&p.c.in), sizeof(line) - 1);
	assert_memory_equal(buf_data(&p.c.in), line, sizeof(line) - 1);
	assert_true(p.c.in.cap <= 512);		/* not CONN_READ_CHUNK */
	assert_int_equal(p.c.bytes_in, sizeof(line) - 1);
	pair_close(&p);
}

/* More than a chunk, read in several calls: through the stack first, then in place. */
static void
test_bytes_whole_and_in_order(void **state)
{
	enum { N = 3 * CONN_READ_CHUNK + 100 };
	static uint8_t wire[N];
	struct pair p;
	size_t sent = 0;

	(void)state;
	for (size_t i = 0; i < N; i++)
		wire[i] = (uint8_t)(i * 7 + i / 251);
	pair_open(&p);
	assert_int_equal(fcntl(p.peer, F_SETFL, O_NONBLOCK), 0);
	while (buf_len(&p.c.in) < N) {
		if (sent < N) {
			ssize_t n = write(p.peer, wire + sent, N - sent);

			if (n > 0)
				sent += (size_t)n;
		}
		assert_int_equal(conn_read(&p.c), CONN_OK);
	}
	assert_int_equal(buf_len(&p.c.in), N);
	assert_memory_equal(buf_data(&p.c.in), wire, N);
	/* Half consumed: the next read goes in place, after what is left. */
	buf_consume(&p.c.in, N / 2);
	assert_int_equal(write(p.peer, "tail", 4), 4);
	assert_int_equal(conn_read(&p.c), CONN_OK);
	assert_int_equal(buf_len(&p.c.in), N - N / 2 + 4);
	assert_memory_equal(buf_data(&p.c.in), wire + N / 2, N - N / 2);
	assert_memory_equal(buf_data(&p.c.in) + N - N / 2, "tail", 4);
	pair_close(&p);
}

static void
test_release_idle(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p);
	assert_int_equal(write(p.peer, "abc", 3), 3);
	assert_int_equal(conn_read(&p.c), CONN_OK);
	assert_int_equal(buf_append(&p.c.out, "+OK\r\n", 5), 0);
	conn_release_idle(&p.c, CONN_IN | CONN_OUT);	/* both hold bytes: kept */
	assert_non_null(p.c.in.data);
	assert_non_null(p.c.out.data);

	buf_consume(&p.c.in, 3);
	assert_int_equal(conn_flush(&p.c), CONN_OK);
	conn_release_idle(&p.c, CONN_OUT);		/* only what was asked */
	assert_null(p.c.out.data);
	assert_non_null(p.c.in.data);
	conn_release_idle(&p.c, CONN_IN);
	assert_null(p.c.in.data);
	assert_int_equal(p.c.in.max, 256 * 1024);	/* the ceiling stays */

	/* A failed output keeps its state: the flush still reports the overflow. */
	buf_set_max(&p.c.out, 4);
	assert_int_equal(buf_append(&p.c.out, "too long", 8), -1);
	conn_release_idle(&p.c, CONN_OUT);
	assert_true(p.c.out.failed);
	assert_int_equal(conn_flush(&p.c), CONN_ERROR);

	/* Released, the conn reads on as before. */
	assert_int_equal(write(p.peer, "more", 4), 4);
	assert_int_equal(conn_read(&p.c), CONN_OK);
	assert_int_equal(buf_len(&p.c.in), 4);
	assert_memory_equal(buf_data(&p.c.in), "more", 4);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_read_owns_little),
		cmocka_unit_test(test_bytes_whole_and_in_order),
		cmocka_unit_test(test_release_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
