/* gateway/shared.h: the limits every worker of one popgate enforces together, in one memory
 * region that main() maps (MAP_SHARED | MAP_ANONYMOUS) before anything forks, so the
 * workers, a worker forked again after a death and the new generation of a reload all see
 * the same table:
 *  - [limits] max_per_address: connections per client address, all workers' together;
 *  - [pop3] in_use_check: which session (pid + session id) holds a user's mailbox;
 *  - the failed-login delay's memory (common/auth_fail.h), so guesses spread over workers
 *    count as guesses from one address.
 * [limits] max_sessions stays a worker's own: it bounds that process's file descriptors.
 *
 * The table: open addressing (linear probing, deletion by backward shift, so no tombstones
 * pile up), entries found by a SipHash-2-4-128 keyed with random bytes drawn once per start:
 * a client cannot choose addresses or names that pile onto one probe run. An entry is the
 * hash (never the name or the address), the pid that holds it and a number: for an address
 * the sessions that pid has from it (one entry per address and pid, so a dead pid's share
 * goes with it), for a user the owning session's id.
 *
 * Concurrency: one process-shared robust mutex. The critical sections are a probe run and a
 * few stores (the table's hashing is done before taking it; the failed-login table hashes
 * inside, a few microseconds); nothing in them blocks on I/O or sleeps. The master's scan
 * for a dead pid reads the whole table once (milliseconds at the default sizes). A worker
 * killed while holding it leaves EOWNERDEAD to the next taker, which rebuilds the table
 * without the dead holder's entries (its sessions are gone with it; any half-done move of
 * the backward shift is undone by the rebuild's de-duplication) and marks the mutex
 * consistent.
 *
 * A dead worker's entries are freed two ways: the master notes every child it reaps
 * (gw_shared_note_reaped(): a ring it only writes; the root master never takes the lock or
 * reads what workers can write), and the next worker to take the lock frees that pid's
 * entries and logs it (exact: the pid cannot be reused before the master's next fork); and a
 * refusal (the address at its limit, the user in use) first checks that the
 * pids behind it live (kill(pid, 0) != ESRCH), forgetting those that do not: a stale entry
 * can never lock a user out for longer than one attempt, even if a reaper missed it.
 *
 * Size: fixed at the start, from the start's max_sessions x workers: each session holds at
 * most two entries (its address, its user), and a reload may run two generations at once,
 * so 2 x 2 x max_sessions x workers entries, at most half the slots (probe runs stay
 * short): cap = next power of two >= 8 x max_sessions x workers, at least 1024, at most
 * GW_SHARED_CAP_MAX. A reload that raises max_sessions or workers far enough can fill it:
 * then a new connection or login is refused with [SYS/TEMP] and an error is logged (a known
 * state, never a limit silently not kept). Memory is touched only where entries land.
 *
 * Pure: no sockets, no loop, no config; the caller passes pids, keys and limits. */
#ifndef POPGATE_SHARED_H
#define POPGATE_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#define GW_SHARED_CAP_MIN 1024
#define GW_SHARED_CAP_MAX (1u << 22)	/* 4 M slots, 112 MB (x2 with the rebuild's
					   scratch): 1 M sessions over two generations,
					   beyond what one host's descriptors hold */
#define GW_SHARED_ADDR_KEY 17		/* family byte + 16 address bytes */

struct gw_shared;

enum gw_shared_take {
	GW_SHARED_OK,			/* taken */
	GW_SHARED_LIMIT,		/* the address is at its limit / the user is in use */
	GW_SHARED_FULL,			/* no free slot (or the lock is unusable): refuse */
};

/* The slots for max_sessions x workers (see above). */
size_t gw_shared_cap_for(unsigned max_sessions, unsigned workers);
/* Bytes of a region of cap slots (cap a power of two). */
size_t gw_shared_size(size_t cap);
/* Lays out a zeroed region of gw_shared_size(cap) bytes: the mutex (process-shared, robust),
 * a random key, an empty table, an empty failed-login table. 0, or -1 with *error_r. */
int gw_shared_init(void *mem, size_t cap, const char **error_r);
/* mmap(MAP_SHARED | MAP_ANONYMOUS) + gw_shared_init(). NULL with *error_r. */
struct gw_shared *gw_shared_new(unsigned max_sessions, unsigned workers, const char **error_r);
void gw_shared_free(struct gw_shared **sh);
size_t gw_shared_cap(const struct gw_shared *sh);

/* The form an address is counted under: family byte (4 or 6) and the whole address (the
 * port is not part of it; an IPv4-mapped IPv6 address stays IPv6), zero-padded. False for other families
 * (AF_UNSPEC: a connection still waiting for its PROXY header): not counted. */
bool gw_shared_addr_key(const struct sockaddr_storage *ss, uint8_t key_r[GW_SHARED_ADDR_KEY]);

/* One more session of pid from the address, if all pids' sessions from it are below limit.
 * *count_r: the sessions from it before this one. */
enum gw_shared_take gw_shared_addr_take(struct gw_shared *sh,
    const uint8_t key[GW_SHARED_ADDR_KEY], pid_t pid, unsigned limit, unsigned *count_r);
/* One session of pid from the address is over. */
void gw_shared_addr_release(struct gw_shared *sh, const uint8_t key[GW_SHARED_ADDR_KEY],
    pid_t pid);
/* Sessions from the address, all pids (dead ones' included until forgotten). */
unsigned gw_shared_addr_count(struct gw_shared *sh, const uint8_t key[GW_SHARED_ADDR_KEY]);

/* Session (pid, sid) takes user's mailbox, unless a live session holds it (LIMIT). */
/* A user's id in the table (SipHash, keyed per start). A session keeps the id it took
 * with and releases by it: hashing again at the release could give another id (a failed
 * MAC gives zeroes) and leave the mailbox locked. */
#define GW_SHARED_ID 16
void gw_shared_user_id(const struct gw_shared *sh, const char *user, uint8_t id_r[GW_SHARED_ID]);
enum gw_shared_take gw_shared_user_take_id(struct gw_shared *sh, const uint8_t id[GW_SHARED_ID],
    pid_t pid, uint32_t sid);
void gw_shared_user_release_id(struct gw_shared *sh, const uint8_t id[GW_SHARED_ID], pid_t pid,
    uint32_t sid);
enum gw_shared_take gw_shared_user_take(struct gw_shared *sh, const char *user, pid_t pid,
    uint32_t sid);
/* Gives it back, if (pid, sid) holds it. */
void gw_shared_user_release(struct gw_shared *sh, const char *user, pid_t pid, uint32_t sid);
/* Whether anybody holds it (tests). */
bool gw_shared_user_held(struct gw_shared *sh, const char *user);

/* Frees every entry of pid (a worker that ended). Returns how many there were. */
size_t gw_shared_forget_pid(struct gw_shared *sh, pid_t pid);
/* The master: pid was reaped. Written into a ring of GW_SHARED_DEAD_RING, which the next
 * lock() of any worker empties with gw_shared_forget_pid()'s effect; no lock, no read. */
#define GW_SHARED_DEAD_RING 256
void gw_shared_note_reaped(struct gw_shared *sh, pid_t pid);
/* Entries in use (tests, logs). */
size_t gw_shared_used(struct gw_shared *sh);
/* Times a dead holder's lock was recovered (tests). */
unsigned gw_shared_recoveries(struct gw_shared *sh);

/* The failed-login memory (common/auth_fail.h), under the same lock. */
unsigned gw_shared_fail_count(struct gw_shared *sh, const struct sockaddr_storage *addr,
    double now);
void gw_shared_fail_record(struct gw_shared *sh, const struct sockaddr_storage *addr,
    const char *user, double now);
void gw_shared_fail_success(struct gw_shared *sh, const struct sockaddr_storage *addr,
    const char *user, double now);

/* Tests: takes the lock as pid and returns without giving it back (a holder that dies). */
void gw_shared_test_lock_and_leave(struct gw_shared *sh, pid_t pid);
/* Tests: as pid, clears the table for a rebuild, puts back only `keep` of its entries and
 * exits (a process killed in the middle of a rebuild). Never returns. */
void gw_shared_test_die_in_refill(struct gw_shared *sh, pid_t pid, size_t keep)
    __attribute__((noreturn));

#endif
