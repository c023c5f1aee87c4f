/* common/log_rate.c: see log_rate.h. */
#include "log_rate.h"

bool
log_rate_take(struct log_rate *r, double now, unsigned *left_out_r, unsigned *secs_r)
{
	if (r->at == 0) {
		r->tokens = LOG_RATE_BURST;
	} else if (now > r->at) {
		r->tokens += (now - r->at) * LOG_RATE_PER_S;
		if (r->tokens > LOG_RATE_BURST)
			r->tokens = LOG_RATE_BURST;
	}
	r->at = now;
	if (r->tokens < 1) {
		if (r->left_out++ == 0)
			r->left_out_since = now;
		return false;
	}
	r->tokens -= 1;
	*left_out_r = r->left_out;
	/* rounded up: "in the last 1 s" rather than "0 s" for a burst just now */
	*secs_r = r->left_out ? (unsigned)(now - r->left_out_since) + 1 : 0;
	r->left_out = 0;
	return true;
}
