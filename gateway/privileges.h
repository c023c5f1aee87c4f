/* gateway/privileges.h: becoming [server] user and group, for the gateway (after binding its
 * ports and loading its keys) and for the offline tools (`popgate uidl ...`, before opening
 * the cache, so the files they create stay the gateway's). Not for: anything after the
 * switch, which is for good. */
#ifndef POPGATE_PRIVILEGES_H
#define POPGATE_PRIVILEGES_H

#include "config.h"

enum gw_privileges_for {
	GW_PRIV_SERVER,	/* started as root without [server] user: refused unless allow_root */
	GW_PRIV_TOOL,	/* started as root without [server] user: goes on as root (a tool run
			   by hand, not a server facing the network); started as another user
			   than [server] user: refused (what it created would not be the
			   gateway's) */
};

/* No core dumps (the process will hold keys and passwords), privileges kept: the master. */
void gw_privileges_no_core(void);
/* Would gw_privileges_drop(cfg, GW_PRIV_SERVER) succeed (the user and group exist; root is
 * allowed)? Checked by the master before it forks workers that drop them. 0, or -1 with
 * *error_r. */
int gw_privileges_check(const struct gw_config *cfg, const char **error_r);
/* No core dumps (the gateway holds passwords in flight), then becomes cfg->user with
 * cfg->group (else the user's primary group) and no supplementary groups, when a user is
 * set. 0, or -1 with *error_r (static storage). */
int gw_privileges_drop(const struct gw_config *cfg, enum gw_privileges_for what,
    const char **error_r);

#endif
