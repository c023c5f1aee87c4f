/* gateway/probe.c: what the upstream offers before anyone logs in (RFC 3501 §6.1.1, §6.2.1).
 *
 * CAPA's SASL line (RFC 5034 §6) and a bare AUTH list XOAUTH2 and OAUTHBEARER only when the
 * upstream takes them, yet a session opens its upstream connection only once credentials
 * arrive. So each worker asks on its own at start, inside its loop and never blocking: an
 * IMAP client connection (imapc.c) with the same target as a session's, which is ready
 * once greeting, TLS or STARTTLS and CAPABILITY are done; then LOGOUT. Every login then
 * refreshes the answer from its own post-TLS capabilities (gw_upcaps_learned()), so a
 * reconfigured upstream is seen at the next login. A failed probe is logged and retried
 * when a client next asks (CAPA, bare AUTH), after a back-off that doubles up to
 * PROBE_BACKOFF_MAX; until something is known, CAPA lists PLAIN only. */
#include <string.h>

#include "../common/log.h"
#include "probe.h"

#define PROBE_BACKOFF_MIN 5.0		/* seconds before retrying a failed probe */
#define PROBE_BACKOFF_MAX 300.0

/* The auth mechanisms popgate passes through: a change of these is worth a log line. */
#define UPCAPS_SASL (GW_CAP_AUTH_PLAIN | GW_CAP_XOAUTH2 | GW_CAP_OAUTHBEARER)

void
gw_probe_init(struct gw_probe *p, struct ev_loop *loop, const struct gw_imapc_target *t)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->target = *t;
}

void
gw_upcaps_learned(struct gw_probe *p, unsigned caps, const char *source)
{
	if (!p->caps_known || (p->caps & UPCAPS_SASL) != (caps & UPCAPS_SASL))
		log_info("upstream %s:%u SASL mechanisms:%s%s%s%s (from %s)", p->target.host,
		    p->target.port, caps & GW_CAP_AUTH_PLAIN ? " PLAIN" : "",
		    caps & GW_CAP_XOAUTH2 ? " XOAUTH2" : "",
		    caps & GW_CAP_OAUTHBEARER ? " OAUTHBEARER" : "",
		    caps & UPCAPS_SASL ? "" : " none of PLAIN XOAUTH2 OAUTHBEARER", source);
	p->caps = caps;
	p->caps_known = true;
}

bool
gw_upcaps_get(struct gw_probe *p, unsigned *caps_r)
{
	if (p->caps_known) {
		*caps_r = p->caps;
		return true;
	}
	if (!p->running && ev_now(p->loop) >= p->retry_at)
		gw_probe_start(p);
	*caps_r = 0;
	return false;
}

static void probe_lost(void *ctx, const char *why);

static void
probe_ready(void *ctx)
{
	struct gw_probe *p = ctx;

	if (!p->c.caps_seen) {
		/* CAPABILITY answered OK without naming any: knowing nothing is not knowing that
		 * there is no bearer mechanism. Tried again later, as any failure. */
		gw_imapc_logout(&p->c);
		probe_lost(p, "CAPABILITY answered without capabilities");
		return;
	}
	gw_upcaps_learned(p, p->c.caps, "probe");
	gw_imapc_logout(&p->c);		/* best effort, as a session's */
	p->running = false;
	p->backoff = 0;
	p->retry_at = 0;
}

static void
probe_lost(void *ctx, const char *why)
{
	struct gw_probe *p = ctx;
	char text[LOG_ESCAPE_SIZE(200)];

	p->running = false;
	if (p->backoff < PROBE_BACKOFF_MIN)
		p->backoff = PROBE_BACKOFF_MIN;
	log_warn("upstream %s:%u: learning its capabilities failed: \"%s\" (retried on a CAPA "
	    "after %.0f s)", p->target.host, p->target.port,
	    log_escape(text, sizeof(text), (const uint8_t *)why, strlen(why), 200), p->backoff);
	p->retry_at = ev_now(p->loop) + p->backoff;
	p->backoff = p->backoff * 2 > PROBE_BACKOFF_MAX ? PROBE_BACKOFF_MAX : p->backoff * 2;
}

static const struct gw_imapc_handler probe_handler = {
	.ready = probe_ready,
	.lost = probe_lost,
};

void
gw_probe_start(struct gw_probe *p)
{
	if (p->running || p->stopped)
		return;
	p->running = true;
	if (gw_imapc_open(&p->c, p->loop, &p->target, "probe", &probe_handler, p) < 0)
		probe_lost(p, gw_imapc_last_error(&p->c));
}

void
gw_probe_stop(struct gw_probe *p, bool for_good)
{
	if (for_good)
		p->stopped = true;
	if (!p->running)
		return;
	gw_imapc_close(&p->c);
	p->running = false;
}
