/* common/log_rate.h: a bound on how many lines one kind of event may log, so that a flood
 * (a port scan hitting the PROXY listener, a misconfigured balancer) cannot fill the disk or
 * drown the other lines. A token bucket: LOG_RATE_BURST lines at once, then one a second;
 * the lines left out are counted and told with the next line that is logged.
 * Pure: the caller gives the time (ev_now()) and owns the state (one per worker and kind). */
#ifndef POPGATE_LOG_RATE_H
#define POPGATE_LOG_RATE_H

#include <stdbool.h>

#define LOG_RATE_BURST 20	/* lines at once: a handful of errors is never hidden */
#define LOG_RATE_PER_S 1.0	/* lines a second after the burst */

struct log_rate {
	double tokens;		/* lines that may be logged now */
	double at;		/* when tokens was last refilled; 0: never used (full) */
	unsigned left_out;	/* lines not logged since the last one that was */
	double left_out_since;	/* when the first of them came */
};

/* Zeroed is ready. At time now (seconds, never going back): true when this line may be
 * logged, with *left_out_r lines left out before it over the last *secs_r seconds (both 0
 * when none); false when it is to be left out (counted). */
bool log_rate_take(struct log_rate *r, double now, unsigned *left_out_r, unsigned *secs_r);

#endif
