/* gateway/shared.c: the workers' shared limits table; see shared.h for the design (why one
 * region mapped before the forks, why a robust mutex, how dead workers' entries go). */
#include <sys/mman.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../common/auth_fail.h"
#include "../common/log.h"
#include "shared.h"

#define SHARED_MAGIC 0x70677368u	/* "pgsh" */

struct slot {
	uint8_t id[16];		/* SipHash-2-4-128 of a domain byte and the key */
	uint32_t n;		/* address: sessions of pid from it; user: the owner's session id */
	int32_t pid;		/* 0: free; written last, so a slot is whole once it counts */
};

struct gw_shared {
	uint32_t magic;
	pthread_mutex_t lock;
	int32_t holder;		/* pid inside the lock: whose entries a recovery drops */
	unsigned recoveries;
	size_t cap;		/* slots, a power of two */
	size_t used;
	uint8_t key[16];
	size_t mapped;		/* bytes mmap()ed by gw_shared_new(), else 0 */
	/* Workers the master reaped, which a worker forgets at its next lock(): the master
	 * only writes here (dead[], then dead_seq), never reads, and takes no lock. */
	uint32_t dead_seq;		/* pids written so far */
	int32_t dead[GW_SHARED_DEAD_RING];
	uint32_t dead_done;		/* of dead_seq, those forgotten (under the lock) */
	size_t rebuilding;		/* > 0: a rebuild cleared the table and is putting
					   back this many entries from the scratch half */
	struct auth_fail_table fail;
	struct slot slot[];	/* cap, then cap more: a rebuild's scratch */
};

/* ---- hashing ---------------------------------------------------------------------- */

/* OpenSSL's SipHash (as common/auth_fail.c); on a failure the id is all zeroes, so every key
 * shares one id: limits get stricter, never looser. */
static void
hash_id(const struct gw_shared *sh, char domain, const void *key, size_t len, uint8_t id_r[16])
{
	uint8_t msg[1 + 4096];	/* above every key: [IN-USE]'s is a cluster name and a user name */
	size_t outlen = 0, size = 16;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};

	if (len > sizeof(msg) - 1)
		len = sizeof(msg) - 1;
	msg[0] = (uint8_t)domain;
	memcpy(msg + 1, key, len);
	if (EVP_Q_mac(NULL, "SIPHASH", NULL, NULL, params, sh->key, sizeof(sh->key), msg, len + 1,
	    id_r, 16, &outlen) == NULL || outlen != 16)
		memset(id_r, 0, 16);
}

static size_t
home_of(const struct gw_shared *sh, const uint8_t id[16])
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)h & (sh->cap - 1);
}

/* ---- the table, inside the lock --------------------------------------------------- */

static bool
pid_dead(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* A slot counts only once whole: freed first, its pid written last. A holder killed between
 * two of these stores leaves a free slot or a duplicate of the entry being moved, never an
 * entry mixing two (the recovery's rebuild re-places and de-duplicates). */
static void
slot_put(struct slot *dst, const uint8_t id[16], uint32_t n, int32_t pid)
{
	__atomic_store_n(&dst->pid, 0, __ATOMIC_RELEASE);
	memcpy(dst->id, id, 16);
	dst->n = n;
	__atomic_store_n(&dst->pid, pid, __ATOMIC_RELEASE);
}

/* Linear probing's deletion without tombstones: the entries after the hole whose home is
 * not between the hole and themselves move back into it (Knuth 6.4, algorithm R). */
static void
slot_delete(struct gw_shared *sh, size_t i)
{
	size_t mask = sh->cap - 1, j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (sh->slot[j].pid == 0)
			break;
		k = home_of(sh, sh->slot[j].id);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		slot_put(&sh->slot[i], sh->slot[j].id, sh->slot[j].n, sh->slot[j].pid);
		i = j;
	}
	__atomic_store_n(&sh->slot[i].pid, 0, __ATOMIC_RELEASE);
	sh->used--;
}

/* Puts an entry at the end of its probe run. False when the table is full (one slot always
 * stays free, so every probe run ends). dedupe: an entry with the same id and pid is already
 * there: skip (a rebuild after a move the dead holder left half done). */
static bool
slot_insert(struct gw_shared *sh, const uint8_t id[16], uint32_t n, int32_t pid, bool dedupe)
{
	size_t mask = sh->cap - 1, i = home_of(sh, id);

	if (sh->used + 1 >= sh->cap)
		return false;
	for (; sh->slot[i].pid != 0; i = (i + 1) & mask)
		if (dedupe && sh->slot[i].pid == pid && memcmp(sh->slot[i].id, id, 16) == 0)
			return true;
	slot_put(&sh->slot[i], id, n, pid);
	sh->used++;
	return true;
}

/* Puts the n entries of the scratch half back into an empty table. Marked first: a process
 * killed halfway leaves the mark, and the next holder of the lock (EOWNERDEAD) starts this
 * again from the scratch, which nothing changes meanwhile: no live entry is lost. */
static void
refill(struct gw_shared *sh, size_t n)
{
	struct slot *scratch = sh->slot + sh->cap;

	/* The mark is stored before the table is cleared, and cleared after it is whole: in
	 * that order in memory too (a compiler may not move plain stores around it). */
	__atomic_store_n(&sh->rebuilding, n, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memset(sh->slot, 0, sh->cap * sizeof(*sh->slot));
	sh->used = 0;
	for (size_t i = 0; i < n; i++)
		slot_insert(sh, scratch[i].id, scratch[i].n, scratch[i].pid, true);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&sh->rebuilding, 0, __ATOMIC_RELEASE);
}

/* The table again, without pid's entries (0: none dropped) and without duplicates. */
static size_t
rebuild(struct gw_shared *sh, pid_t drop)
{
	struct slot *scratch = sh->slot + sh->cap;
	size_t n = 0, dropped = 0;

	for (size_t i = 0; i < sh->cap; i++) {
		if (sh->slot[i].pid == 0)
			continue;
		if (drop != 0 && sh->slot[i].pid == drop) {
			dropped++;
			continue;
		}
		scratch[n++] = sh->slot[i];
	}
	refill(sh, n);
	return dropped;
}

static size_t
forget_locked(struct gw_shared *sh, pid_t pid)
{
	size_t i;

	for (i = 0; i < sh->cap && sh->slot[i].pid != pid; i++)
		;
	if (i == sh->cap)
		return 0;		/* the common case: a worker that ended cleanly */
	return rebuild(sh, pid);
}

/* The pids the master wrote since the last lock: their entries go (logged, as a kill -9's
 * sessions are). Pids beyond the ring's reach are left to the liveness check of refusals. */
static void
forget_reaped(struct gw_shared *sh)
{
	uint32_t seq = __atomic_load_n(&sh->dead_seq, __ATOMIC_ACQUIRE);

	if (seq - sh->dead_done > GW_SHARED_DEAD_RING) {
		/* More deaths than the ring holds: the oldest are gone from it; every holder
		 * is checked instead (rare: hundreds of workers dying between two locks). */
		size_t i;

		sh->dead_done = seq - GW_SHARED_DEAD_RING;
		do {
			for (i = 0; i < sh->cap && (sh->slot[i].pid == 0 ||
			    !pid_dead(sh->slot[i].pid)); i++)
				;
			if (i < sh->cap)
				forget_locked(sh, sh->slot[i].pid);
		} while (i < sh->cap);
	}
	for (; sh->dead_done != seq; sh->dead_done++) {
		pid_t pid = __atomic_load_n(&sh->dead[sh->dead_done % GW_SHARED_DEAD_RING],
		    __ATOMIC_RELAXED);
		size_t held = pid > 0 ? forget_locked(sh, pid) : 0;

		if (held > 0)
			log_info("pid %d ended holding %zu entries of the shared limits table "
			    "(addresses, mailboxes in use): freed", (int)pid, held);
	}
}

static bool
lock(struct gw_shared *sh, pid_t pid)
{
	int r = pthread_mutex_lock(&sh->lock);

	if (r == EOWNERDEAD) {
		/* Its holder died inside: whatever it was changing was its own entries, or a
		 * move of the backward shift (a duplicate); the rebuild drops both. A refill it
		 * left halfway is done again first (the scratch holds every entry). */
		if (sh->rebuilding > 0 && sh->rebuilding <= sh->cap)
			refill(sh, sh->rebuilding);
		rebuild(sh, sh->holder);
		sh->recoveries++;
		pthread_mutex_consistent(&sh->lock);
	} else if (r != 0) {
		return false;		/* ENOTRECOVERABLE: cannot happen, see above */
	}
	sh->holder = pid;
	forget_reaped(sh);
	return true;
}

static void
unlock(struct gw_shared *sh)
{
	sh->holder = 0;
	pthread_mutex_unlock(&sh->lock);
}

/* ---- the region --------------------------------------------------------------------- */

/* What gw_shared_new() mapped, in this process's own memory. */
static struct gw_shared *mapped_at;
static size_t mapped_size;

size_t
gw_shared_cap_for(unsigned max_sessions, unsigned workers)
{
	unsigned long long want = 8ULL * max_sessions * (workers ? workers : 1);
	size_t cap = GW_SHARED_CAP_MIN;

	while (cap < want && cap < GW_SHARED_CAP_MAX)
		cap *= 2;
	return cap;
}

size_t
gw_shared_size(size_t cap)
{
	return sizeof(struct gw_shared) + 2 * cap * sizeof(struct slot);
}

int
gw_shared_init(void *mem, size_t cap, const char **error_r)
{
	struct gw_shared *sh = mem;
	pthread_mutexattr_t attr;
	uint8_t id[16];
	static const uint8_t zero[16];

	sh->cap = cap;
	if (RAND_bytes(sh->key, sizeof(sh->key)) != 1) {
		*error_r = "no random bytes for the shared limits table's key";
		return -1;
	}
	hash_id(sh, 'x', "", 0, id);
	if (memcmp(id, zero, sizeof(id)) == 0) {
		*error_r = "OpenSSL has no SIPHASH (the shared limits table needs it)";
		return -1;
	}
	if (auth_fail_init(&sh->fail, error_r) < 0)
		return -1;
	if (pthread_mutexattr_init(&attr) != 0 ||
	    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&sh->lock, &attr) != 0) {
		*error_r = "cannot make a process-shared robust mutex";
		return -1;
	}
	pthread_mutexattr_destroy(&attr);
	sh->magic = SHARED_MAGIC;
	return 0;
}

struct gw_shared *
gw_shared_new(unsigned max_sessions, unsigned workers, const char **error_r)
{
	size_t cap = gw_shared_cap_for(max_sessions, workers), size = gw_shared_size(cap);
	struct gw_shared *sh;

	/* Anonymous shared memory reads as zeroes and is only backed where written. */
	sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (sh == MAP_FAILED) {
		*error_r = "cannot map the shared limits table";
		return NULL;
	}
	if (gw_shared_init(sh, cap, error_r) < 0) {
		munmap(sh, size);
		return NULL;
	}
	sh->mapped = size;
	mapped_at = sh;
	mapped_size = size;
	return sh;
}

void
gw_shared_free(struct gw_shared **shp)
{
	struct gw_shared *sh = *shp;

	*shp = NULL;
	/* The size this process mapped, not the region's word for it (workers can write
	 * that; the master must not munmap what they say). */
	if (sh != NULL && sh == mapped_at && mapped_size > 0)
		munmap(sh, mapped_size);
	if (sh == mapped_at)
		mapped_at = NULL;
}

size_t
gw_shared_cap(const struct gw_shared *sh)
{
	return sh->cap;
}

/* ---- addresses ---------------------------------------------------------------------- */

bool
gw_shared_addr_key(const struct sockaddr_storage *ss, uint8_t key_r[GW_SHARED_ADDR_KEY])
{
	memset(key_r, 0, GW_SHARED_ADDR_KEY);
	if (ss->ss_family == AF_INET) {
		key_r[0] = 4;
		memcpy(key_r + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		key_r[0] = 6;
		memcpy(key_r + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		return true;
	}
	return false;
}

/* Sessions from id over its probe run; *own_r: pid's entry, or SIZE_MAX. */
static unsigned
addr_sum(struct gw_shared *sh, const uint8_t id[16], pid_t pid, size_t *own_r)
{
	size_t mask = sh->cap - 1;
	unsigned sum = 0;

	*own_r = SIZE_MAX;
	for (size_t i = home_of(sh, id); sh->slot[i].pid != 0; i = (i + 1) & mask) {
		if (memcmp(sh->slot[i].id, id, 16) != 0)
			continue;
		sum += sh->slot[i].n;
		if (sh->slot[i].pid == pid)
			*own_r = i;
	}
	return sum;
}

/* Forgets the gone pids among id's entries. True when one was. */
static bool
forget_dead_of(struct gw_shared *sh, const uint8_t id[16], pid_t self)
{
	size_t mask = sh->cap - 1;

	for (size_t i = home_of(sh, id); sh->slot[i].pid != 0; i = (i + 1) & mask) {
		pid_t p = sh->slot[i].pid;

		if (p != self && memcmp(sh->slot[i].id, id, 16) == 0 && pid_dead(p)) {
			forget_locked(sh, p);
			return true;	/* the table moved: the caller looks again */
		}
	}
	return false;
}

enum gw_shared_take
gw_shared_addr_take(struct gw_shared *sh, const uint8_t key[GW_SHARED_ADDR_KEY], pid_t pid,
    unsigned limit, unsigned *count_r)
{
	enum gw_shared_take r = GW_SHARED_OK;
	uint8_t id[16];
	unsigned sum;
	size_t own;

	hash_id(sh, 'a', key, GW_SHARED_ADDR_KEY, id);
	if (!lock(sh, pid))
		return GW_SHARED_FULL;
	while ((sum = addr_sum(sh, id, pid, &own)) >= limit && forget_dead_of(sh, id, pid))
		;
	*count_r = sum;
	if (sum >= limit)
		r = GW_SHARED_LIMIT;
	else if (own != SIZE_MAX)
		sh->slot[own].n++;
	else if (!slot_insert(sh, id, 1, pid, false))
		r = GW_SHARED_FULL;
	unlock(sh);
	return r;
}

void
gw_shared_addr_release(struct gw_shared *sh, const uint8_t key[GW_SHARED_ADDR_KEY], pid_t pid)
{
	uint8_t id[16];
	size_t own;

	hash_id(sh, 'a', key, GW_SHARED_ADDR_KEY, id);
	if (!lock(sh, pid))
		return;
	addr_sum(sh, id, pid, &own);
	if (own != SIZE_MAX && --sh->slot[own].n == 0)
		slot_delete(sh, own);
	unlock(sh);
}

unsigned
gw_shared_addr_count(struct gw_shared *sh, const uint8_t key[GW_SHARED_ADDR_KEY])
{
	uint8_t id[16];
	unsigned sum = 0;
	size_t own;

	hash_id(sh, 'a', key, GW_SHARED_ADDR_KEY, id);
	if (!lock(sh, getpid()))
		return 0;
	sum = addr_sum(sh, id, 0, &own);
	unlock(sh);
	return sum;
}

/* ---- users -------------------------------------------------------------------------- */

static size_t
user_find(struct gw_shared *sh, const uint8_t id[16])
{
	size_t mask = sh->cap - 1;

	for (size_t i = home_of(sh, id); sh->slot[i].pid != 0; i = (i + 1) & mask)
		if (memcmp(sh->slot[i].id, id, 16) == 0)
			return i;
	return SIZE_MAX;
}

void
gw_shared_user_id(const struct gw_shared *sh, const char *user, uint8_t id_r[GW_SHARED_ID])
{
	hash_id(sh, 'u', user, strlen(user), id_r);
}

enum gw_shared_take
gw_shared_user_take_id(struct gw_shared *sh, const uint8_t id[GW_SHARED_ID], pid_t pid,
    uint32_t sid)
{
	enum gw_shared_take r = GW_SHARED_OK;
	size_t i;

	if (!lock(sh, pid))
		return GW_SHARED_FULL;
	/* A holder that is gone (a worker killed, its reaper late) holds nothing. */
	while ((i = user_find(sh, id)) != SIZE_MAX && sh->slot[i].pid != pid &&
	    pid_dead(sh->slot[i].pid))
		forget_locked(sh, sh->slot[i].pid);
	if (i != SIZE_MAX)
		r = GW_SHARED_LIMIT;
	else if (!slot_insert(sh, id, sid, pid, false))
		r = GW_SHARED_FULL;
	unlock(sh);
	return r;
}

void
gw_shared_user_release_id(struct gw_shared *sh, const uint8_t id[GW_SHARED_ID], pid_t pid,
    uint32_t sid)
{
	size_t i;

	if (!lock(sh, pid))
		return;
	if ((i = user_find(sh, id)) != SIZE_MAX && sh->slot[i].pid == pid && sh->slot[i].n == sid)
		slot_delete(sh, i);
	unlock(sh);
}

enum gw_shared_take
gw_shared_user_take(struct gw_shared *sh, const char *user, pid_t pid, uint32_t sid)
{
	uint8_t id[GW_SHARED_ID];

	gw_shared_user_id(sh, user, id);
	return gw_shared_user_take_id(sh, id, pid, sid);
}

void
gw_shared_user_release(struct gw_shared *sh, const char *user, pid_t pid, uint32_t sid)
{
	uint8_t id[GW_SHARED_ID];

	gw_shared_user_id(sh, user, id);
	gw_shared_user_release_id(sh, id, pid, sid);
}

bool
gw_shared_user_held(struct gw_shared *sh, const char *user)
{
	uint8_t id[16];
	bool held;

	hash_id(sh, 'u', user, strlen(user), id);
	if (!lock(sh, getpid()))
		return false;
	held = user_find(sh, id) != SIZE_MAX;
	unlock(sh);
	return held;
}

/* ---- the rest ------------------------------------------------------------------------- */

void
gw_shared_note_reaped(struct gw_shared *sh, pid_t pid)
{
	static uint32_t seq;	/* the master's own count: dead_seq is never read back */

	if (pid <= 0)
		return;
	__atomic_store_n(&sh->dead[seq % GW_SHARED_DEAD_RING], pid, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->dead_seq, ++seq, __ATOMIC_RELEASE);
}

size_t
gw_shared_forget_pid(struct gw_shared *sh, pid_t pid)
{
	size_t n;

	if (pid <= 0 || !lock(sh, getpid()))
		return 0;
	n = forget_locked(sh, pid);
	unlock(sh);
	return n;
}

size_t
gw_shared_used(struct gw_shared *sh)
{
	size_t n;

	if (!lock(sh, getpid()))
		return 0;
	n = sh->used;
	unlock(sh);
	return n;
}

unsigned
gw_shared_recoveries(struct gw_shared *sh)
{
	unsigned n;

	if (!lock(sh, getpid()))
		return 0;
	n = sh->recoveries;
	unlock(sh);
	return n;
}

unsigned
gw_shared_fail_count(struct gw_shared *sh, const struct sockaddr_storage *addr, double now)
{
	unsigned n;

	if (!lock(sh, getpid()))
		return 0;
	n = auth_fail_count(&sh->fail, addr, now);
	unlock(sh);
	return n;
}

void
gw_shared_fail_record(struct gw_shared *sh, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	if (!lock(sh, getpid()))
		return;
	auth_fail_record(&sh->fail, addr, user, now);
	unlock(sh);
}

void
gw_shared_fail_success(struct gw_shared *sh, const struct sockaddr_storage *addr,
    const char *user, double now)
{
	if (!lock(sh, getpid()))
		return;
	auth_fail_success(&sh->fail, addr, user, now);
	unlock(sh);
}

void
gw_shared_test_lock_and_leave(struct gw_shared *sh, pid_t pid)
{
	(void)lock(sh, pid);	/* held on purpose: the caller exits without unlocking */
}

void
gw_shared_test_die_in_refill(struct gw_shared *sh, pid_t pid, size_t keep)
{
	struct slot *scratch;
	size_t n = 0;

	(void)lock(sh, pid);
	scratch = sh->slot + sh->cap;
	for (size_t i = 0; i < sh->cap; i++)
		if (sh->slot[i].pid != 0)
			scratch[n++] = sh->slot[i];
	sh->rebuilding = n;
	memset(sh->slot, 0, sh->cap * sizeof(*sh->slot));
	sh->used = 0;
	for (size_t i = 0; i < n && i < keep; i++)
		slot_insert(sh, scratch[i].id, scratch[i].n, scratch[i].pid, true);
	_exit(0);		/* killed halfway: the lock and the mark stay */
}
