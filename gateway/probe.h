/* gateway/probe.h: what the upstream offers before anyone logs in (RFC 3501 §6.1.1), known
 * per worker, and the short connection that learns it; see probe.c. */
#ifndef POPGATE_PROBE_H
#define POPGATE_PROBE_H

#include <stdbool.h>

#include <ev.h>

#include "imapc.h"

struct gw_probe {
	struct ev_loop *loop;
	struct gw_imapc_target target;
	struct gw_imapc c;
	bool running;
	bool stopped;			/* the worker is stopping: no new probe */
	ev_tstamp retry_at;		/* after a failure: no new probe before this */
	double backoff;			/* seconds to wait after the next failure */
	/* The upstream's pre-login capabilities (GW_CAP_*), after TLS: from the probe at
	 * start, refreshed by every login. */
	unsigned caps;
	bool caps_known;
};

void gw_probe_init(struct gw_probe *p, struct ev_loop *loop, const struct gw_imapc_target *t);
/* Starts a probe now (no-op while one runs, or once stopped for good). */
void gw_probe_start(struct gw_probe *p);
/* Closes a running probe; with for_good, none starts again. */
void gw_probe_stop(struct gw_probe *p, bool for_good);

/* The upstream's pre-login capabilities: true with *caps_r when known; else false, and a
 * probe starts unless one runs or the back-off after a failure is not over. */
bool gw_upcaps_get(struct gw_probe *p, unsigned *caps_r);
/* A probe or a login saw these pre-login capabilities (after TLS, if any). */
void gw_upcaps_learned(struct gw_probe *p, unsigned caps, const char *source);

#endif
