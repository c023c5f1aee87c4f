/* gateway/main.c: command line, config, privileges, and the worker's loop.
 *
 *   popgate -c FILE       run in the foreground, log to stderr (or syslog per [log])
 *   popgate -t -c FILE    check FILE: exit 0, or 1 naming the line and key at fault */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/log.h"
#include "config.h"
#include "session.h"
#include "tls.h"
#include "worker.h"

#define POPGATE_VERSION "0.1"

static void
usage(void)
{
	fprintf(stderr, "usage: popgate [-t] -c FILE\n"
	    "  -c FILE  configuration (see etc/popgate.ini)\n"
	    "  -t       check the configuration and exit\n");
	exit(2);
}

/* After binding and loading keys: become the configured user; no core dumps, since the
 * process holds passwords in flight. */
static int
drop_privileges(const struct gw_config *cfg, const char **error_r)
{
	static char error[200];
	struct rlimit no_core = { 0, 0 };

	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (cfg->user[0] == '\0') {
		if (geteuid() != 0)
			return 0;
		if (!cfg->allow_root) {
			*error_r = "refusing to serve sessions as root: set [server] user (or "
			    "allow_root = yes for a test machine)";
			return -1;
		}
		log_warn("serving sessions as root ([server] allow_root = yes)");
		return 0;
	}
	struct passwd *pw = getpwnam(cfg->user);
	gid_t gid;

	if (pw == NULL) {
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
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(error, sizeof(error), "cannot become user %s: %m", cfg->user);
		*error_r = error;
		return -1;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);	/* setuid resets it */
	return 0;
}

int
main(int argc, char **argv)
{
	struct gw_config cfg;
	struct gw_worker w;
	const char *path = NULL, *error = NULL;
	bool check = false;
	int ch;

	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = true; break;
		default: usage();
		}
	}
	if (path == NULL || optind != argc)
		usage();
	if (gw_config_load(&cfg, path, &error) < 0) {
		fprintf(stderr, "popgate: %s\n", error);
		gw_config_free(&cfg);
		return 1;
	}
	if (check && gw_tls_check(&cfg, &error) < 0) {
		fprintf(stderr, "popgate: %s: %s\n", path, error);
		gw_config_free(&cfg);
		return 1;
	}
	if (check) {
		printf("popgate: %s: configuration OK\n", path);
		gw_config_free(&cfg);
		return 0;
	}
	log_set_level(cfg.log_level);
	if (strcmp(cfg.log_target, "syslog") == 0)
		log_use_syslog("popgate", LOG_MAIL);
	signal(SIGPIPE, SIG_IGN);	/* EPIPE is handled where it happens */
	if (gw_worker_init(&w, &cfg, gw_session_accept, &error) < 0 || drop_privileges(&cfg, &error) < 0) {
		log_error("%s", error);
		gw_worker_free(&w);
		gw_config_free(&cfg);
		return 1;
	}
	if (cfg.idle_timeout < 600)
		log_warn("[pop3] idle_timeout = %u is below RFC 1939's 10 minutes: slow clients may be "
		    "cut off", cfg.idle_timeout);
	log_info("popgate %s started, upstream %s:%u (%s)", POPGATE_VERSION, cfg.up_host,
	    cfg.up_port, cfg.up_security == GW_SEC_NONE ? "plain" :
	    cfg.up_security == GW_SEC_TLS ? "tls" : "starttls");
	if (cfg.mig_host[0] != '\0')
		log_info("live UIDL migration from the old POP3 server %s:%u (%s), required=%s, "
		    "timeout=%us", cfg.mig_host, cfg.mig_port, cfg.mig_security == GW_SEC_NONE ?
		    "plain" : cfg.mig_security == GW_SEC_TLS ? "tls" : "stls",
		    cfg.mig_required ? "yes" : "no", cfg.mig_timeout);
	if (cfg.mig_host[0] != '\0' && cfg.mig_security == GW_SEC_NONE)
		log_warn("[migration] security = none: users' passwords cross to %s in clear",
		    cfg.mig_host);
	gw_worker_run(&w);
	gw_worker_free(&w);
	gw_config_free(&cfg);
	log_info("popgate stopped");
	return 0;
}
