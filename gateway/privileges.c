/* gateway/privileges.c: dropping root; see privileges.h. */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "../common/log.h"
#include "privileges.h"

/* Who cfg says to become: *uid_r and *gid_r, or *switch_r false when nobody (no [server]
 * user). 0, or -1 with *error_r. */
static int
resolve(const struct gw_config *cfg, enum gw_privileges_for what, bool *switch_r, uid_t *uid_r,
    gid_t *gid_r, const char **error_r)
{
	static char error[200];
	struct passwd *pw;

	*switch_r = false;
	if (cfg->user[0] == '\0') {
		if (geteuid() != 0 || what == GW_PRIV_TOOL)
			return 0;
		if (!cfg->allow_root) {
			*error_r = "refusing to serve sessions as root: set [server] user (or "
			    "allow_root = yes for a test machine)";
			return -1;
		}
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(error, sizeof(error), "[server] user: no such user \"%s\"", cfg->user);
		*error_r = error;
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			snprintf(error, sizeof(error), "[server] group: no such group \"%s\"", cfg->group);
			*error_r = error;
			return -1;
		}
		*gid_r = gr->gr_gid;
	}
	/* A tool run by the service user itself has nothing to drop (and may not setgroups). */
	if (what == GW_PRIV_TOOL && geteuid() != 0) {
		if (geteuid() == *uid_r)
			return 0;
		snprintf(error, sizeof(error), "run this as root or as [server] user %s: the cache "
		    "must stay that user's", cfg->user);
		*error_r = error;
		return -1;
	}
	*switch_r = true;
	return 0;
}

void
gw_privileges_no_core(void)
{
	struct rlimit no_core = { 0, 0 };

	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
gw_privileges_check(const struct gw_config *cfg, const char **error_r)
{
	bool sw;
	uid_t uid;
	gid_t gid;

	return resolve(cfg, GW_PRIV_SERVER, &sw, &uid, &gid, error_r);
}

int
gw_privileges_drop(const struct gw_config *cfg, enum gw_privileges_for what,
    const char **error_r)
{
	static char error[200];
	bool sw;
	uid_t uid = 0;
	gid_t gid = 0;

	gw_privileges_no_core();
	if (resolve(cfg, what, &sw, &uid, &gid, error_r) < 0)
		return -1;
	if (!sw)
		return 0;
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(error, sizeof(error), "cannot become user %s: %m", cfg->user);
		*error_r = error;
		return -1;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);	/* setuid resets it */
	return 0;
}
