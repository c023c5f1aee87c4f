/* gateway/cluster.h: the IMAP clusters a worker logs users in to: [upstream] and one per
 * [upstream:DOMAIN] section, chosen by the domain of the user name (common/user_domain.h).
 *
 * Per cluster: its TLS client context (ca_file and verify differ), its target, its probe
 * (what it offers before login: CAPA's bearer mechanisms), whether its last login saw
 * CONDSTORE, its mailbox, send_client_id and strip_domain. Not per cluster: everything
 * keyed on the user (UIDL cache, [IN-USE], failed-login memory: the full name as typed,
 * gw_config_user_key()), [limits] and its timeouts, and [migration]'s one old POP3 server.
 *
 * Built by gw_worker_load() (TLS contexts may need root's keys; a reload builds them anew),
 * probes started by gw_worker_start(). */
#ifndef POPGATE_CLUSTER_H
#define POPGATE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "config.h"
#include "imapc.h"
#include "probe.h"

struct gw_cluster {
	struct gw_upstream_conf conf;	/* the config's, strings borrowed; domain "" for
					   [upstream] */
	char name[270];			/* "[upstream]", "[upstream:b.test]": for logs */
	SSL_CTX *tls;			/* NULL for security = none */
	struct gw_imapc_target target;	/* points into conf: a cluster never moves */
	struct gw_probe probe;
	bool condstore;			/* the last login here offered CONDSTORE once logged
					   in: the next SELECT may ask for it in the pipeline */
};

struct gw_clusters {
	struct gw_cluster *c;		/* c[0]: [upstream]; c[1 + i]: cfg->domains[i] */
	size_t n;
};

/* Builds every cluster's TLS context and target. 0, or -1 with *error_r (what was built
 * stays for gw_clusters_free()). */
int gw_clusters_load(struct gw_clusters *cs, const struct gw_config *cfg, const char **error_r);
/* In the worker: each cluster's probe, on loop (not started). */
void gw_clusters_probe_init(struct gw_clusters *cs, struct ev_loop *loop);
void gw_clusters_probe_start(struct gw_clusters *cs);
void gw_clusters_probe_stop(struct gw_clusters *cs);
void gw_clusters_free(struct gw_clusters *cs);

/* The cluster of a user name: its domain's, else [upstream]. */
struct gw_cluster *gw_cluster_for_user(struct gw_clusters *cs, const struct gw_config *cfg,
    const char *user);

/* Before the user is known (CAPA, AUTH's mechanism): does any cluster offer this GW_CAP_*
 * bit (known only)? Does any cluster offer it, or not know yet (AUTH is then taken and the
 * user's cluster decides at login)? */
bool gw_clusters_any_offers(struct gw_clusters *cs, unsigned cap);
bool gw_clusters_may_offer(struct gw_clusters *cs, unsigned cap);

#endif
