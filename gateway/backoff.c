/* gateway/backoff.c: the restart delay of a worker that keeps dying; see backoff.h. */
#include "backoff.h"

unsigned
gw_backoff_next(struct gw_backoff *b, double ran)
{
	unsigned delay = 1;

	if (ran >= GW_BACKOFF_STABLE) {
		b->quick = 0;
		return 0;
	}
	/* The first quick death may be bad luck (a crash on the first session): at once. */
	if (++b->quick == 1)
		return 0;
	/* Doubling from 1 s; the loop stops at the cap, so no shift can overflow however
	 * long the slot has been dying. */
	for (unsigned k = 2; k < b->quick && delay < GW_BACKOFF_MAX; k++)
		delay *= 2;
	return delay < GW_BACKOFF_MAX ? delay : GW_BACKOFF_MAX;
}
