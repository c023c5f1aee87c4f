/* gateway/main.c: command line, config, privileges, and the one worker or the workers' supervisor.
 *
 *   popgate -c FILE            run in the foreground, log to stderr (or syslog per [log])
 *   popgate -t -c FILE         check FILE: exit 0, or 1 naming the line and key at fault
 *   popgate -c FILE uidl ...   the offline UIDL tools (gateway/uidl_tool.h)
 *   popgate -V                 the version and the libraries' (gateway/version.h)
 * Exit status: 0 done, 1 failed (said on stderr or in the log), 2 a wrong command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/log.h"
#include "config.h"
#include "master.h"
#include "privileges.h"
#include "session.h"
#include "shared.h"
#include "tls.h"
#include "uidl_tool.h"
#include "version.h"
#include "worker.h"

/* -h: the text on stdout, exit 0; a wrong command line: on stderr, exit 2. */
static void __attribute__((noreturn))
usage(bool asked)
{
	fprintf(asked ? stdout : stderr, "usage: popgate [-t] -c FILE\n"
	    "       popgate -V\n"
	    GW_UIDL_USAGE
	    "  -c FILE       configuration (see etc/popgate.ini)\n"
	    "  -t            check the configuration and exit\n"
	    "  -V            print the version, and the libraries' built with and running\n"
	    "  -h            this text\n"
	    GW_UIDL_HELP);
	exit(asked ? 0 : 2);
}

static void
log_started(const struct gw_config *cfg)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		log_info("listening on %s%s", cfg->listen[i].text, cfg->listen[i].tls ?
		    " (implicit TLS)" : "");
	if (cfg->idle_timeout < 600)
		log_warn("[pop3] idle_timeout = %u is below RFC 1939's 10 minutes: slow clients may be "
		    "cut off", cfg->idle_timeout);
	log_info("popgate %s started, %u worker%s, upstream %s:%u (%s)", POPGATE_VERSION,
	    cfg->workers, cfg->workers == 1 ? "" : "s", cfg->up_host, cfg->up_port,
	    cfg->up_security == GW_SEC_NONE ? "plain" :
	    cfg->up_security == GW_SEC_TLS ? "tls" : "starttls");
	if (cfg->mig_host[0] != '\0')
		log_info("live UIDL migration from the old POP3 server %s:%u (%s), required=%s, "
		    "timeout=%us", cfg->mig_host, cfg->mig_port, cfg->mig_security == GW_SEC_NONE ?
		    "plain" : cfg->mig_security == GW_SEC_TLS ? "tls" : "stls",
		    cfg->mig_required ? "yes" : "no", cfg->mig_timeout);
	if (cfg->mig_host[0] != '\0' && cfg->mig_security == GW_SEC_NONE)
		log_warn("[migration] security = none: users' passwords cross to %s in clear",
		    cfg->mig_host);
}

/* workers = 1: the process is the worker, no fork. Binds and loads keys, drops privileges,
 * then serves. */
static int
run_single(const struct gw_config *cfg, struct gw_shared *shared)
{
	struct gw_worker w;
	struct gw_listen_fds fds = { .n = 0 };
	const char *error = NULL;
	int loaded = gw_worker_load(&w, cfg, &error);

	w.shared = shared;
	if (loaded < 0 ||
	    gw_listen_fds_bind(&fds, cfg, false, &error) < 0 ||
	    gw_privileges_drop(cfg, GW_PRIV_SERVER, &error) < 0 ||
	    gw_worker_start(&w, 0, &fds, gw_session_accept, &error) < 0) {
		log_error("%s", error);
		gw_listen_fds_close(&fds);
		gw_worker_free(&w);
		return 1;
	}
	log_started(cfg);
	gw_worker_run(&w);
	gw_worker_free(&w);
	log_info("popgate stopped");
	return 0;
}

/* workers > 1: binds a set of sockets per worker and loads keys, drops privileges (the
 * supervisor needs none: it forks, waits and signals its own workers), forks them and
 * supervises (gateway/master.h). */
static int
run_workers(const struct gw_config *cfg, struct gw_shared *shared)
{
	struct gw_worker proto;
	struct gw_master m;
	const char *error = NULL;
	int rc;

	if (gw_worker_load(&proto, cfg, &error) < 0) {
		log_error("%s", error);
		gw_worker_free(&proto);
		return 1;
	}
	proto.shared = shared;
	if (gw_master_init(&m, cfg, &proto, gw_session_accept, &error) < 0) {
		log_error("%s", error);
		gw_worker_free(&proto);
		return 1;
	}
	if (gw_privileges_drop(cfg, GW_PRIV_SERVER, &error) < 0) {
		log_error("%s", error);
		gw_master_free(&m);
		gw_worker_free(&proto);
		return 1;
	}
	log_started(cfg);
	for (unsigned i = 0; i < cfg->workers; i++) {
		if (gw_master_spawn(&m, i, &error) < 0) {
			log_error("%s: stopping", error);
			gw_master_stop(&m, SIGTERM);
			m.failed = true;
			break;
		}
	}
	rc = gw_master_run(&m);
	gw_master_free(&m);
	gw_worker_free(&proto);
	log_info("popgate stopped");
	return rc;
}

int
main(int argc, char **argv)
{
	struct gw_config cfg;
	struct gw_shared *shared;
	struct gw_uidl_cmd tool;
	const char *path = NULL, *error = NULL;
	bool check = false;
	int ch, rc;

	/* "+": options end at the first word, so a tool's own (export --user) are its own. */
	while ((ch = getopt(argc, argv, "+c:thV")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = true; break;
		case 'h': usage(true);
		case 'V':
			gw_version_print(stdout);
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
		default: usage(false);
		}
	}
	if (path == NULL || (optind != argc && (check ||
	    gw_uidl_parse(argc - optind, argv + optind, &tool) < 0)))
		usage(false);
	if (gw_config_load(&cfg, path, &error) < 0) {
		fprintf(stderr, "popgate: %s\n", error);
		gw_config_free(&cfg);
		return 1;
	}
	if (optind != argc) {
		rc = gw_uidl_run(&cfg, &tool);
		gw_config_free(&cfg);
		return rc;
	}
	if (check && (gw_tls_check(&cfg, &error) < 0 || gw_nofile_check(&cfg, false, &error) < 0)) {
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
	if (gw_nofile_check(&cfg, true, &error) < 0) {
		log_error("%s: %s", path, error);
		gw_config_free(&cfg);
		return 1;
	}
	/* Once, before anything forks: every worker, one forked again and a reload's next
	 * generation share it (gateway/shared.h). */
	if ((shared = gw_shared_new(cfg.max_sessions, cfg.workers, &error)) == NULL) {
		log_error("%s", error);
		gw_config_free(&cfg);
		return 1;
	}
	rc = cfg.workers == 1 ? run_single(&cfg, shared) : run_workers(&cfg, shared);
	gw_shared_free(&shared);
	gw_config_free(&cfg);
	return rc;
}
