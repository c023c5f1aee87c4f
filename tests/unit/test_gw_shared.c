/* tests/unit/test_gw_shared.c: the workers' shared limits table (gateway/shared.h): counts
 * per address over several pids, the mailbox owner, dead pids' entries, deletion without
 * tombstones against a model, a full table, two processes contending, a holder that dies
 * inside the lock. */
#include <sys/mman.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../gateway/shared.h"

static struct gw_shared *
region(size_t cap)
{
	const char *error = NULL;
	void *mem = mmap(NULL, gw_shared_size(cap), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(mem != MAP_FAILED);
	assert_int_equal(gw_shared_init(mem, cap, &error), 0);
	return mem;
}

static void
region_free(struct gw_shared *sh)
{
	munmap(sh, gw_shared_size(gw_shared_cap(sh)));
}

static void
key_v4(const char *text, uint8_t key[GW_SHARED_ADDR_KEY])
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	assert_true(gw_shared_addr_key(&ss, key));
}

/* A pid that surely is not running: a child that has exited and been reaped. */
static pid_t
dead_pid(void)
{
	pid_t p = fork();

	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

static void
test_addr_limit_over_pids(void **state)
{
	struct gw_shared *sh = region(1024);
	pid_t me = getpid(), parent = getppid();	/* two live pids: two "workers" */
	uint8_t a[GW_SHARED_ADDR_KEY], b[GW_SHARED_ADDR_KEY];
	unsigned n;

	(void)state;
	key_v4("192.0.2.1", a);
	key_v4("192.0.2.2", b);
	assert_int_equal(gw_shared_addr_take(sh, a, me, 3, &n), GW_SHARED_OK);
	assert_int_equal(n, 0);
	assert_int_equal(gw_shared_addr_take(sh, a, me, 3, &n), GW_SHARED_OK);
	assert_int_equal(gw_shared_addr_take(sh, a, parent, 3, &n), GW_SHARED_OK);
	assert_int_equal(n, 2);
	/* the fourth, whichever worker it lands on */
	assert_int_equal(gw_shared_addr_take(sh, a, parent, 3, &n), GW_SHARED_LIMIT);
	assert_int_equal(n, 3);
	assert_int_equal(gw_shared_addr_take(sh, a, me, 3, &n), GW_SHARED_LIMIT);
	/* another address is another count */
	assert_int_equal(gw_shared_addr_take(sh, b, me, 3, &n), GW_SHARED_OK);
	assert_int_equal(n, 0);
	assert_int_equal(gw_shared_addr_count(sh, a), 3);
	gw_shared_addr_release(sh, a, parent);
	assert_int_equal(gw_shared_addr_count(sh, a), 2);
	assert_int_equal(gw_shared_addr_take(sh, a, me, 3, &n), GW_SHARED_OK);
	/* a release by a pid with nothing there changes nothing */
	gw_shared_addr_release(sh, a, parent);
	assert_int_equal(gw_shared_addr_count(sh, a), 3);
	/* one entry per (address, pid) */
	assert_int_equal(gw_shared_used(sh), 2);
	/* a worker that ended: its share goes */
	assert_int_equal(gw_shared_forget_pid(sh, me), 2);
	assert_int_equal(gw_shared_addr_count(sh, a), 0);
	assert_int_equal(gw_shared_used(sh), 0);
	region_free(sh);
}

/* The master only notes a reaped pid; the next lock of anyone frees its entries, and a
 * burst beyond the ring leaves the oldest to the liveness check, never to a wrong pid. */
static void
test_reaped_pids_are_forgotten_at_the_next_lock(void **state)
{
	struct gw_shared *sh = region(1024);
	uint8_t a[GW_SHARED_ADDR_KEY] = { 1 }, b[GW_SHARED_ADDR_KEY] = { 2 };
	unsigned n;

	(void)state;
	assert_int_equal(gw_shared_addr_take(sh, a, 4001, 5, &n), GW_SHARED_OK);
	assert_int_equal(gw_shared_addr_take(sh, b, 4002, 5, &n), GW_SHARED_OK);
	assert_int_equal(gw_shared_user_take(sh, "carol", 4001, 7), GW_SHARED_OK);
	gw_shared_note_reaped(sh, 4001);
	assert_int_equal(gw_shared_used(sh), 1);		/* only 4002's address */
	assert_int_equal(gw_shared_addr_count(sh, a), 0);
	assert_int_equal(gw_shared_user_take(sh, "carol", getpid(), 8), GW_SHARED_OK);
	/* More reaped than the ring holds: the newest GW_SHARED_DEAD_RING are taken, and
	 * every holder is checked for life (this process is alive: carol stays). */
	for (int i = 0; i < GW_SHARED_DEAD_RING + 10; i++)
		gw_shared_note_reaped(sh, 5000 + i);
	gw_shared_note_reaped(sh, 4002);
	assert_int_equal(gw_shared_addr_count(sh, b), 0);
	assert_int_equal(gw_shared_used(sh), 1);		/* carol's, of this process */
	assert_true(gw_shared_user_held(sh, "carol"));
	region_free(sh);
}

/* A process killed while a rebuild put the entries back: the next locker finishes it from
 * the scratch half, and every live entry is still there. */
static void
test_killed_in_the_middle_of_a_rebuild_loses_nothing(void **state)
{
	struct gw_shared *sh = region(1024);
	char name[32];
	pid_t kid;
	int status;

	(void)state;
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		assert_int_equal(gw_shared_user_take(sh, name, getpid(), (uint32_t)i), GW_SHARED_OK);
	}
	if ((kid = fork()) == 0)
		gw_shared_test_die_in_refill(sh, getpid(), 37);
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_int_equal(gw_shared_used(sh), 200);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		assert_true(gw_shared_user_held(sh, name));
	}
	assert_int_equal(gw_shared_recoveries(sh), 1);
	region_free(sh);
}

static void
test_addr_key_families(void **state)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	uint8_t k[GW_SHARED_ADDR_KEY], k2[GW_SHARED_ADDR_KEY];

	(void)state;
	assert_false(gw_shared_addr_key(&ss, k));	/* a PROXY wait: not counted */
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
	sin6->sin6_port = htons(1);
	assert_true(gw_shared_addr_key(&ss, k));
	sin6->sin6_port = htons(2);		/* the port is not the address */
	assert_true(gw_shared_addr_key(&ss, k2));
	assert_memory_equal(k, k2, sizeof(k));
	inet_pton(AF_INET6, "2001:db8::2", &sin6->sin6_addr);
	assert_true(gw_shared_addr_key(&ss, k2));
	assert_memory_not_equal(k, k2, sizeof(k));
}

static void
test_user_owner(void **state)
{
	struct gw_shared *sh = region(1024);
	pid_t me = getpid(), parent = getppid();

	(void)state;
	assert_int_equal(gw_shared_user_take(sh, "alice", me, 7), GW_SHARED_OK);
	assert_int_equal(gw_shared_user_take(sh, "alice", parent, 1), GW_SHARED_LIMIT);
	assert_int_equal(gw_shared_user_take(sh, "alice", me, 8), GW_SHARED_LIMIT);
	assert_int_equal(gw_shared_user_take(sh, "bob", parent, 1), GW_SHARED_OK);
	/* only the owner gives it back */
	gw_shared_user_release(sh, "alice", parent, 7);
	gw_shared_user_release(sh, "alice", me, 8);
	assert_true(gw_shared_user_held(sh, "alice"));
	gw_shared_user_release(sh, "alice", me, 7);
	assert_false(gw_shared_user_held(sh, "alice"));
	assert_int_equal(gw_shared_user_take(sh, "alice", parent, 2), GW_SHARED_OK);
	assert_int_equal(gw_shared_used(sh), 2);
	region_free(sh);
}

/* A worker killed without its reaper having run yet: its entries do not refuse anybody. */
static void
test_dead_pid_holds_nothing(void **state)
{
	struct gw_shared *sh = region(1024);
	pid_t me = getpid(), gone = dead_pid();
	uint8_t a[GW_SHARED_ADDR_KEY];
	unsigned n;

	(void)state;
	key_v4("198.51.100.7", a);
	assert_int_equal(gw_shared_user_take(sh, "carol", gone, 1), GW_SHARED_OK);
	assert_int_equal(gw_shared_addr_take(sh, a, gone, 2, &n), GW_SHARED_OK);
	assert_int_equal(gw_shared_addr_take(sh, a, gone, 2, &n), GW_SHARED_OK);
	assert_int_equal(gw_shared_user_take(sh, "carol", me, 5), GW_SHARED_OK);
	assert_int_equal(gw_shared_addr_take(sh, a, me, 2, &n), GW_SHARED_OK);
	assert_int_equal(n, 0);
	assert_int_equal(gw_shared_addr_count(sh, a), 1);
	assert_int_equal(gw_shared_used(sh), 2);	/* all of the dead one's went */
	region_free(sh);
}

/* Many keys in a small table, taken and released at random, against a plain array: the
 * backward-shift deletion never loses or duplicates an entry. */
static void
test_against_model(void **state)
{
	enum { KEYS = 300, ROUNDS = 20000 };
	struct gw_shared *sh = region(1024);
	static unsigned model[KEYS][2];
	pid_t pids[2] = { getpid(), getppid() };
	unsigned n;

	(void)state;
	srandom(42);
	for (int r = 0; r < ROUNDS; r++) {
		unsigned k = (unsigned)random() % KEYS, w = (unsigned)random() % 2;
		uint8_t key[GW_SHARED_ADDR_KEY] = { 4 };

		memcpy(key + 1, &k, sizeof(k));
		if (random() % 2) {
			enum gw_shared_take t = gw_shared_addr_take(sh, key, pids[w], 3, &n);

			assert_int_equal(n, model[k][0] + model[k][1]);
			assert_int_equal(t, n < 3 ? GW_SHARED_OK : GW_SHARED_LIMIT);
			if (t == GW_SHARED_OK)
				model[k][w]++;
		} else {
			gw_shared_addr_release(sh, key, pids[w]);
			if (model[k][w] > 0)
				model[k][w]--;
		}
	}
	size_t used = 0;

	for (unsigned k = 0; k < KEYS; k++) {
		uint8_t key[GW_SHARED_ADDR_KEY] = { 4 };

		memcpy(key + 1, &k, sizeof(k));
		assert_int_equal(gw_shared_addr_count(sh, key), model[k][0] + model[k][1]);
		used += (model[k][0] > 0) + (model[k][1] > 0);
	}
	assert_int_equal(gw_shared_used(sh), used);
	region_free(sh);
}

static void
test_full_table(void **state)
{
	struct gw_shared *sh = region(1024);
	char user[32];
	unsigned i;

	(void)state;
	for (i = 0; i < 1023; i++) {
		snprintf(user, sizeof(user), "user%u", i);
		assert_int_equal(gw_shared_user_take(sh, user, getpid(), i), GW_SHARED_OK);
	}
	assert_int_equal(gw_shared_user_take(sh, "one-more", getpid(), i), GW_SHARED_FULL);
	/* still found, still freed */
	assert_int_equal(gw_shared_user_take(sh, "user5", getppid(), 1), GW_SHARED_LIMIT);
	gw_shared_user_release(sh, "user5", getpid(), 5);
	assert_int_equal(gw_shared_user_take(sh, "one-more", getpid(), i), GW_SHARED_OK);
	region_free(sh);
}

static void
test_cap_for(void **state)
{
	(void)state;
	assert_int_equal(gw_shared_cap_for(1, 1), GW_SHARED_CAP_MIN);
	assert_int_equal(gw_shared_cap_for(5000, 4), 262144);	/* >= 8 x 20000 */
	assert_int_equal(gw_shared_cap_for(1000000, 64), GW_SHARED_CAP_MAX);
}

/* Two processes on one region: the mailbox is never held by both at once, and the address
 * count never passes its limit; at the end all is given back. */
static void
test_two_processes_contend(void **state)
{
	enum { ITER = 3000, LIMIT = 1 };
	struct gw_shared *sh = region(1024);
	/* the children's witness: who is inside, and how many hold an address place */
	int *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kids[2];

	(void)state;
	assert_true(shm != MAP_FAILED);
	memset(shm, 0, 4096);
	for (int c = 0; c < 2; c++) {
		if ((kids[c] = fork()) == 0) {
			uint8_t key[GW_SHARED_ADDR_KEY];
			unsigned n;
			int bad = 0, got = 0;

			key_v4("203.0.113.9", key);
			for (int i = 0; i < ITER; i++) {
				if (gw_shared_user_take(sh, "dave", getpid(), (uint32_t)i) ==
				    GW_SHARED_OK) {
					got++;
					if (__atomic_add_fetch(&shm[0], 1, __ATOMIC_SEQ_CST) != 1)
						bad++;
					__atomic_sub_fetch(&shm[0], 1, __ATOMIC_SEQ_CST);
					gw_shared_user_release(sh, "dave", getpid(), (uint32_t)i);
				}
				if (gw_shared_addr_take(sh, key, getpid(), LIMIT, &n) == GW_SHARED_OK) {
					if (__atomic_add_fetch(&shm[1], 1, __ATOMIC_SEQ_CST) > LIMIT)
						bad++;
					__atomic_sub_fetch(&shm[1], 1, __ATOMIC_SEQ_CST);
					gw_shared_addr_release(sh, key, getpid());
				}
			}
			_exit(bad != 0 ? 1 : got == 0 ? 2 : 0);
		}
		assert_true(kids[c] > 0);
	}
	for (int c = 0; c < 2; c++) {
		int status;

		assert_int_equal(waitpid(kids[c], &status, 0), kids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(gw_shared_used(sh), 0);
	assert_false(gw_shared_user_held(sh, "dave"));
	munmap(shm, 4096);
	region_free(sh);
}

/* A worker killed while inside the lock: the next taker recovers the lock and the table,
 * without the dead one's entries; the others' stay. */
static void
test_holder_dies_inside(void **state)
{
	struct gw_shared *sh = region(1024);
	uint8_t a[GW_SHARED_ADDR_KEY];
	pid_t kid;
	int status;
	unsigned n;

	(void)state;
	key_v4("192.0.2.77", a);
	assert_int_equal(gw_shared_user_take(sh, "erin", getpid(), 1), GW_SHARED_OK);
	if ((kid = fork()) == 0) {
		if (gw_shared_user_take(sh, "frank", getpid(), 1) != GW_SHARED_OK ||
		    gw_shared_addr_take(sh, a, getpid(), 1, &n) != GW_SHARED_OK)
			_exit(1);
		gw_shared_test_lock_and_leave(sh, getpid());
		_exit(0);	/* dies holding the lock */
	}
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* no reaper ran: the lock itself says its holder died */
	assert_int_equal(gw_shared_user_take(sh, "frank", getpid(), 2), GW_SHARED_OK);
	assert_int_equal(gw_shared_recoveries(sh), 1);
	assert_int_equal(gw_shared_addr_take(sh, a, getpid(), 1, &n), GW_SHARED_OK);
	assert_int_equal(n, 0);
	assert_int_equal(gw_shared_user_take(sh, "erin", getppid(), 1), GW_SHARED_LIMIT);
	assert_int_equal(gw_shared_used(sh), 3);
	region_free(sh);
}

static void
test_failed_logins_shared(void **state)
{
	struct gw_shared *sh = region(1024);
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	pid_t kid;
	int status;

	(void)state;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.50", &sin->sin_addr);
	gw_shared_fail_record(sh, &ss, "gina", 100.0);
	if ((kid = fork()) == 0) {	/* another worker's failure, same address */
		gw_shared_fail_record(sh, &ss, "hank", 101.0);
		_exit(0);
	}
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_int_equal(gw_shared_fail_count(sh, &ss, 102.0), 2);
	gw_shared_fail_success(sh, &ss, "gina", 103.0);
	assert_int_equal(gw_shared_fail_count(sh, &ss, 104.0), 1);
	region_free(sh);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_limit_over_pids),
		cmocka_unit_test(test_addr_key_families),
		cmocka_unit_test(test_reaped_pids_are_forgotten_at_the_next_lock),
		cmocka_unit_test(test_killed_in_the_middle_of_a_rebuild_loses_nothing),
		cmocka_unit_test(test_user_owner),
		cmocka_unit_test(test_dead_pid_holds_nothing),
		cmocka_unit_test(test_against_model),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_cap_for),
		cmocka_unit_test(test_two_processes_contend),
		cmocka_unit_test(test_holder_dies_inside),
		cmocka_unit_test(test_failed_logins_shared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
