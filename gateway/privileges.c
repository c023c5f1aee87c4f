/* gateway/privileges.c: dropping root; see privileges.h. */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

#include "../common/log.h"
#include "privileges.h"

int
gw_privileges_drop(const struct gw_config *cfg, enum gw_privileges_for what,
    const char **error_r)
{
	static char error[200];
	struct rlimit no_core = { 0, 0 };
	struct passwd *pw;
	gid_t gid;

	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (cfg->user[0] == '\0') {
		if (geteuid() != 0 || what == GW_PRIV_TOOL)
			return 0;
		if (!cfg->allow_root) {
			*error_r = "refusing to serve sessions as root: set [server] user (or "
			    "allow_root = yes for a test machine)";
			return -1;
		}
		log_warn("serving sessions as root ([server] allow_root = yes)");
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(error, sizeof(error), "[server] user: no such user \"%s\"", cfg->user);
		*error_r = error;
		return -1;
	}
	gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			snprintf(error, sizeof(error), "[server] group: no such group \"%s\"", cfg->group);
			*error_r = error;
			return -1;
		}
		gid = gr->gr_gid;
	}
	/* A tool run by the service user itself has nothing to drop (and may not setgroups). */
	if (what == GW_PRIV_TOOL && geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		snprintf(error, sizeof(error), "run this as root or as [server] user %s: the cache "
		    "must stay that user's", cfg->user);
		*error_r = error;
		return -1;
	}
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(error, sizeof(error), "cannot become user %s: %m", cfg->user);
		*error_r = error;
		return -1;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);	/* setuid resets it */
	return 0;
}
