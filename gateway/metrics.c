/* gateway/metrics.c: the shared region of popgate's numbers and the calls that count them;
 * see metrics.h for why it is shared and how the open-session gauge survives a SIGKILL. */
#include <sys/mman.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "metrics.h"

static struct gw_metrics_region private_region;
struct gw_metrics_region *gw_metrics = &private_region;

/* This process's slot; NULL: none (not a worker, or none was free). */
static struct gw_metrics_slot *my_slot;

int
gw_metrics_init(const char **error_r)
{
	static char error[120];
	void *p;

	p = mmap(NULL, sizeof(struct gw_metrics_region), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(error, sizeof(error), "metrics: mmap of %zu bytes: %s",
		    sizeof(struct gw_metrics_region), strerror(errno));
		*error_r = error;
		return -1;
	}
	/* Zero-filled by the kernel. Never unmapped: workers hold it until they exit. */
	gw_metrics = p;
	return 0;
}

void
gw_metrics_attach(void)
{
	pid_t me = getpid();

	if (my_slot != NULL && my_slot->pid == me)
		return;
	my_slot = NULL;
	for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
		struct gw_metrics_slot *sl = &gw_metrics->slot[i];
		pid_t free_pid = 0;

		if (__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) != 0)
			continue;
		/* Reserved (-pid: readers skip it, and free it if we die right here), its gauge
		 * zeroed, then ours: whatever the dead holder left is gone before a reader sees
		 * our pid, and nobody zeroes it after (gw_metrics_forget_pid() only frees). */
		if (__atomic_compare_exchange_n(&sl->pid, &free_pid, -me, false, __ATOMIC_ACQ_REL,
		    __ATOMIC_RELAXED)) {
			__atomic_store_n(&sl->sessions_active, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&sl->pid, me, __ATOMIC_RELEASE);
			my_slot = sl;
			return;
		}
	}
	log_warn("metrics: no free slot for this worker's open sessions; they are counted "
	    "where a kill -9 would leave them");
}

void
gw_metrics_detach(void)
{
	if (my_slot == NULL)
		return;
	gw_metrics_forget_pid(my_slot->pid);
	my_slot = NULL;
}

void
gw_metrics_forget_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
		struct gw_metrics_slot *sl = &gw_metrics->slot[i];
		pid_t was = pid;

		/* Only the pid: a reader skips a free slot, and the next holder zeroes the gauge
		 * (gw_metrics_attach()). Zeroing it here could wipe that holder's count. The loop
		 * is bounded by the constant: the master runs this on memory workers write. */
		if (__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) != pid)
			continue;
		__atomic_compare_exchange_n(&sl->pid, &was, 0, false, __ATOMIC_ACQ_REL,
		    __ATOMIC_RELAXED);
	}
}

static int64_t *
active_counter(void)
{
	return my_slot != NULL ? &my_slot->sessions_active : &gw_metrics->unslotted_active;
}

void
gw_metrics_session_opened(void)
{
	__atomic_fetch_add(active_counter(), 1, __ATOMIC_RELAXED);
	GW_METRIC_INC(sessions_total);
}

void
gw_metrics_session_closed(void)
{
	__atomic_fetch_sub(active_counter(), 1, __ATOMIC_RELAXED);
}

void
gw_metrics_login_failed(enum metrics_login_fail reason)
{
	GW_METRIC_INC(login_failures[reason]);
}

void
gw_metrics_error(enum metrics_error kind)
{
	GW_METRIC_INC(errors[kind]);
}

void
gw_metrics_command(enum pop3_cmd_id id)
{
	enum metrics_cmd c;

	switch (id) {
	case POP3_CMD_USER: c = MET_CMD_USER; break;
	case POP3_CMD_PASS: c = MET_CMD_PASS; break;
	case POP3_CMD_APOP: c = MET_CMD_APOP; break;
	case POP3_CMD_AUTH: c = MET_CMD_AUTH; break;
	case POP3_CMD_STLS: c = MET_CMD_STLS; break;
	case POP3_CMD_CAPA: c = MET_CMD_CAPA; break;
	case POP3_CMD_QUIT: c = MET_CMD_QUIT; break;
	case POP3_CMD_STAT: c = MET_CMD_STAT; break;
	case POP3_CMD_LIST: c = MET_CMD_LIST; break;
	case POP3_CMD_UIDL: c = MET_CMD_UIDL; break;
	case POP3_CMD_RETR: c = MET_CMD_RETR; break;
	case POP3_CMD_TOP: c = MET_CMD_TOP; break;
	case POP3_CMD_DELE: c = MET_CMD_DELE; break;
	case POP3_CMD_RSET: c = MET_CMD_RSET; break;
	case POP3_CMD_NOOP: c = MET_CMD_NOOP; break;
	case POP3_CMD_LAST: c = MET_CMD_LAST; break;
	default: c = MET_CMD_OTHER; break;	/* UTF8, unknown verbs */
	}
	GW_METRIC_INC(commands[c]);
}

void
gw_metrics_observe(enum metrics_hist_id h, double seconds)
{
	struct metrics_hist *mh = &gw_metrics->v.hist[h];
	uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6 + 0.5) : 0;

	__atomic_fetch_add(&mh->bucket[metrics_bucket(seconds)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mh->sum_us, us, __ATOMIC_RELAXED);
}

/* Is pid a live process? kill(pid, 0): EPERM is alive too (another user's, in theory). */
static bool
alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

void
gw_metrics_snapshot(struct metrics_values *v_r)
{
	const uint64_t *src = (const uint64_t *)&gw_metrics->v;
	uint64_t *dst = (uint64_t *)v_r;
	int64_t active = __atomic_load_n(&gw_metrics->unslotted_active, __ATOMIC_RELAXED);

	/* The struct is nothing but 64-bit numbers (checked below): one atomic load each. */
	_Static_assert(sizeof(struct metrics_values) % sizeof(uint64_t) == 0,
	    "struct metrics_values holds 64-bit numbers only");
	for (size_t i = 0; i < sizeof(struct metrics_values) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
		struct gw_metrics_slot *sl = &gw_metrics->slot[i];
		pid_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);

		if (pid < 0 && !alive(-pid)) {
			pid_t was = pid;	/* taken by one killed in the act: free again */

			__atomic_compare_exchange_n(&sl->pid, &was, 0, false, __ATOMIC_ACQ_REL,
			    __ATOMIC_RELAXED);
		}
		if (pid <= 0)
			continue;		/* free, or being taken */
		if (!alive(pid)) {
			gw_metrics_forget_pid(pid);	/* died unreaped by us: see metrics.h */
			continue;
		}
		active += __atomic_load_n(&sl->sessions_active, __ATOMIC_RELAXED);
	}
	v_r->sessions_active = active;
}
