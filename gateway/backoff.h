/* gateway/backoff.h: when the master starts a dead worker's slot again (gateway/master.c).
 *
 * A worker that had run a while and died is started again at once: a crash on one session's
 * input should cost that worker's sessions, not its share of new connections for long. One
 * that keeps dying soon after its start (the same crash at every start, a broken disk or
 * library) waits longer each time, 1 s, 2 s, 4 s ... at most GW_BACKOFF_MAX, so that the
 * master does not fork in a loop and fill the log; a run of GW_BACKOFF_STABLE seconds
 * forgives the past.
 *
 * Pure: no clock, no process; the caller says how long the worker ran. */
#ifndef POPGATE_BACKOFF_H
#define POPGATE_BACKOFF_H

#define GW_BACKOFF_STABLE 10	/* seconds: a worker that ran this long was not dying at start */
#define GW_BACKOFF_MAX 60	/* seconds: the longest wait, so a fixed fault is noticed soon */

/* One per slot; zeroed is a slot whose worker never died. */
struct gw_backoff {
	unsigned quick;		/* deaths in a row, each under GW_BACKOFF_STABLE s after its start */
};

/* A worker died after running ran seconds (a fork that failed: 0). Returns the seconds to
 * wait before the next start: 0 (at once) after a stable run or for the first quick death,
 * then 1, 2, 4 ... GW_BACKOFF_MAX for each further quick death in a row. */
unsigned gw_backoff_next(struct gw_backoff *b, double ran);

#endif
