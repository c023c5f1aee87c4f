/* gateway/metrics.h: where popgate's numbers (common/metrics.h) live while it runs, and the
 * calls that count them.
 *
 * One MAP_SHARED | MAP_ANONYMOUS region, mapped once by main() before anything forks, so
 * every worker of every generation (a restarted one, the new ones of a reload) adds to the
 * same numbers, and whichever worker answers a scrape sees them all (gateway/metrics_http.h).
 * Updates are relaxed __atomic adds on the region: no lock, one add per event (a RETR adds
 * once per write to the client, not per byte). A copy for the text is read field by field;
 * it may be a moment old in places, which a scrape tolerates.
 *
 * Counters survive a worker's death: what it counted did happen. The one gauge, the open
 * sessions, must not: a worker killed with SIGKILL never decrements it. So each worker
 * process counts its open sessions in a slot of its own, tagged with its pid, and the
 * reader sums the slots of live processes only. The master clears a dead worker's slot when
 * it reaps it (gw_metrics_forget_pid(), gateway/master.c); the reader also skips (and
 * clears) a slot whose process is gone, so a master that forgot to tell still cannot
 * inflate the gauge. A zombie not reaped yet still counts, for the moment the master takes
 * to reap it. Without gw_metrics_init() (the offline tools, unit tests) the numbers go to a
 * private copy no one reads. */
#ifndef POPGATE_GW_METRICS_H
#define POPGATE_GW_METRICS_H

#include <sys/types.h>

#include <stdint.h>

#include "../common/metrics.h"
#include "../pop3/pop3_parse.h"

/* Slots for worker processes: the workers of two generations (a reload's old ones draining
 * next to the new ones) with room to spare. A worker that finds none counts in a shared
 * slot that is never cleared (logged once). */
#define GW_METRICS_SLOTS 256

struct gw_metrics_slot {
	pid_t pid;			/* 0: free */
	int64_t sessions_active;
};

struct gw_metrics_region {
	struct metrics_values v;	/* v.sessions_active unused: the slots hold it */
	struct gw_metrics_slot slot[GW_METRICS_SLOTS];
	int64_t unslotted_active;	/* workers that found no slot */
};

/* Never NULL: the shared region after gw_metrics_init(), a private one before. */
extern struct gw_metrics_region *gw_metrics;

/* Maps the shared region (main(), once, before any fork). 0, or -1 with *error_r. */
int gw_metrics_init(const char **error_r);

/* The calling process counts its open sessions in a slot of its own from now on (a worker,
 * at its start); detach gives it back (at its end). */
void gw_metrics_attach(void);
void gw_metrics_detach(void);
/* pid is dead and reaped: its slot's sessions are gone with it. */
void gw_metrics_forget_pid(pid_t pid);

#define GW_METRIC_ADD(field, n) __atomic_fetch_add(&gw_metrics->v.field, (n), __ATOMIC_RELAXED)
#define GW_METRIC_INC(field) GW_METRIC_ADD(field, 1)

void gw_metrics_session_opened(void);
void gw_metrics_session_closed(void);
void gw_metrics_login_failed(enum metrics_login_fail reason);
void gw_metrics_command(enum pop3_cmd_id id);
void gw_metrics_error(enum metrics_error kind);
void gw_metrics_observe(enum metrics_hist_id h, double seconds);

/* A consistent-enough copy of every number, the gauge summed over live workers. */
void gw_metrics_snapshot(struct metrics_values *v_r);

#endif
