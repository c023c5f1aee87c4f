/* gateway/cluster.c: a worker's IMAP clusters; see cluster.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "tls.h"

static int
cluster_load(struct gw_cluster *cl, const struct gw_config *cfg, const char **error_r)
{
	struct gw_imapc_target *t = &cl->target;

	snprintf(cl->name, sizeof(cl->name), cl->conf.domain[0] ? "[upstream:%.253s]" :
	    "[upstream]", cl->conf.domain);
	if ((cl->tls = gw_tls_upstream_ctx(&cl->conf, error_r)) == NULL && *error_r != NULL)
		return -1;
	/* [upstream]'s target as gw_imapc_target_from_config() makes it, then this
	 * cluster's own where and how. */
	gw_imapc_target_from_config(t, cfg, cl->tls);
	t->addr = &cl->conf.addr;
	t->addrlen = cl->conf.addrlen;
	t->host = cl->conf.host;
	t->port = cl->conf.port;
	t->security = cl->conf.security;
	t->verify = cl->conf.verify;
	return 0;
}

int
gw_clusters_load(struct gw_clusters *cs, const struct gw_config *cfg, const char **error_r)
{
	cs->n = 0;
	if ((cs->c = calloc(1 + cfg->ndomains, sizeof(*cs->c))) == NULL) {
		*error_r = "out of memory for the upstream clusters";
		return -1;
	}
	gw_config_upstream_default(cfg, &cs->c[0].conf);
	for (size_t i = 0; i < cfg->ndomains; i++)
		cs->c[1 + i].conf = cfg->domains[i];
	for (size_t i = 0; i < 1 + cfg->ndomains; i++) {
		cs->n++;
		if (cluster_load(&cs->c[i], cfg, error_r) < 0)
			return -1;
	}
	return 0;
}

void
gw_clusters_probe_init(struct gw_clusters *cs, struct ev_loop *loop)
{
	for (size_t i = 0; i < cs->n; i++)
		gw_probe_init(&cs->c[i].probe, loop, &cs->c[i].target);
}

void
gw_clusters_probe_start(struct gw_clusters *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		gw_probe_start(&cs->c[i].probe);
}

void
gw_clusters_probe_stop(struct gw_clusters *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->c[i].probe.loop != NULL)	/* initialised (gw_worker_start() ran) */
			gw_probe_stop(&cs->c[i].probe, true);
}

void
gw_clusters_free(struct gw_clusters *cs)
{
	gw_clusters_probe_stop(cs);
	for (size_t i = 0; i < cs->n; i++)
		SSL_CTX_free(cs->c[i].tls);
	free(cs->c);
	cs->c = NULL;
	cs->n = 0;
}

struct gw_cluster *
gw_cluster_for_user(struct gw_clusters *cs, const struct gw_config *cfg, const char *user)
{
	int i = gw_config_domain_index(cfg, user);

	return i >= 0 && (size_t)i + 1 < cs->n ? &cs->c[1 + i] : &cs->c[0];
}

bool
gw_clusters_any_offers(struct gw_clusters *cs, unsigned cap)
{
	for (size_t i = 0; i < cs->n; i++) {
		unsigned caps;

		if (gw_upcaps_get(&cs->c[i].probe, &caps) && (caps & cap))
			return true;
	}
	return false;
}

bool
gw_clusters_may_offer(struct gw_clusters *cs, unsigned cap)
{
	for (size_t i = 0; i < cs->n; i++) {
		unsigned caps;

		if (!gw_upcaps_get(&cs->c[i].probe, &caps) || (caps & cap))
			return true;
	}
	return false;
}
