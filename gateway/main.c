/* gateway/main.c: command line, config, and the master over the workers or the one process.
 *
 *   popgate -c FILE            run in the foreground, log to stderr (or syslog per [log])
 *   popgate -d -c FILE         detach, write [server] pid_file (gateway/daemon.h)
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
#include "daemon.h"
#include "master.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
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
	fprintf(asked ? stdout : stderr, "usage: popgate [-t | -d] -c FILE\n"
	    "       popgate -V\n"
	    GW_UIDL_USAGE
	    "  -c FILE       configuration (see etc/popgate.ini)\n"
	    "  -t            check the configuration and exit\n"
	    "  -d            detach into the background, write [server] pid_file\n"
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
	for (size_t i = 0; i < cfg->nmetrics_listen; i++)
		log_info("metrics on http://%s/metrics", cfg->metrics_listen[i].text);
	if (cfg->idle_timeout < 600)
		log_warn("[pop3] idle_timeout = %u is below RFC 1939's 10 minutes: slow clients may be "
		    "cut off", cfg->idle_timeout);
	if (cfg->user[0] == '\0' && geteuid() == 0)
		log_warn("serving sessions as root ([server] allow_root = yes)");
	log_info("popgate %s started, %s%u worker%s, upstream %s:%u (%s)", POPGATE_VERSION,
	    cfg->master ? "a master and " : "one process, ", cfg->workers,
	    cfg->workers == 1 ? "" : "s", cfg->up_host, cfg->up_port,
	    cfg->up_security == GW_SEC_NONE ? "plain" :
	    cfg->up_security == GW_SEC_TLS ? "tls" : "starttls");
	for (size_t i = 0; i < cfg->ndomains; i++)
		log_info("users @%s: upstream [upstream:%s] %s:%u (%s)%s", cfg->domains[i].domain,
		    cfg->domains[i].domain, cfg->domains[i].host, cfg->domains[i].port,
		    cfg->domains[i].security == GW_SEC_NONE ? "plain" :
		    cfg->domains[i].security == GW_SEC_TLS ? "tls" : "starttls",
		    cfg->domains[i].strip_domain ? ", domain stripped from the login name" : "");
	if (cfg->mig_host[0] != '\0')
		log_info("live UIDL migration from the old POP3 server %s:%u (%s), required=%s, "
		    "timeout=%us", cfg->mig_host, cfg->mig_port, cfg->mig_security == GW_SEC_NONE ?
		    "plain" : cfg->mig_security == GW_SEC_TLS ? "tls" : "stls",
		    cfg->mig_required ? "yes" : "no", cfg->mig_timeout);
	if (cfg->mig_host[0] != '\0' && cfg->mig_security == GW_SEC_NONE)
		log_warn("[migration] security = none: users' passwords cross to %s in clear",
		    cfg->mig_host);
}

/* master = no: the process is the worker, no fork. Binds and loads keys, drops privileges,
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
	gw_notify_ready("serving, one process");
	gw_worker_run(&w);
	gw_worker_free(&w);
	log_info("popgate stopped");
	return 0;
}

/* master = yes: the master binds a set of sockets per worker and loads keys, forks the
 * workers, which drop privileges, and supervises them (gateway/master.h). Takes cfg (heap). */
static int
run_master(const char *path, struct gw_config *cfg, struct gw_shared *shared)
{
	struct gw_worker *proto = calloc(1, sizeof(*proto));
	struct gw_master m;
	const char *error = NULL;
	char status[120];
	int rc;

	if (proto == NULL || gw_worker_load(proto, cfg, &error) < 0) {
		log_error("%s", error != NULL ? error : "out of memory");
		if (proto != NULL) {
			gw_worker_free(proto);
			free(proto);
		}
		gw_config_free(cfg);
		free(cfg);
		return 1;
	}
	proto->shared = shared;
	if (gw_master_init(&m, path, cfg, proto, gw_session_accept, &error) < 0) {
		log_error("%s", error);
		gw_master_free(&m);	/* frees cfg and proto too */
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
	if (!m.failed) {
		snprintf(status, sizeof(status), "serving, %u workers", cfg->workers);
		gw_notify_ready(status);
	}
	rc = gw_master_run(&m);
	gw_master_free(&m);
	log_info("popgate stopped");
	return rc;
}

int
main(int argc, char **argv)
{
	struct gw_config cfg;
	struct gw_shared *shared = NULL;
	struct gw_uidl_cmd tool;
	const char *path = NULL, *error = NULL;
	char *abs_path = NULL;
	bool check = false, detach = false;
	int ch, rc;

	/* "+": options end at the first word, so a tool's own (export --user) are its own. */
	while ((ch = getopt(argc, argv, "+c:tdhV")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = true; break;
		case 'd': detach = true; break;
		case 'h': usage(true);
		case 'V':
			gw_version_print(stdout);
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
		default: usage(false);
		}
	}
	if (path == NULL || (detach && (check || optind != argc)) || (optind != argc && (check ||
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
	if (check && (gw_tls_check(&cfg, &error) < 0 || gw_nofile_check(&cfg, false, &error) < 0 ||
	    gw_privileges_check(&cfg, &error) < 0)) {
		fprintf(stderr, "popgate: %s: %s\n", path, error);
		gw_config_free(&cfg);
		return 1;
	}
	if (check) {
		printf("popgate: %s: configuration OK\n", path);
		gw_config_free(&cfg);
		return 0;
	}
	/* A reload reads the file again, from / once detached. */
	if ((abs_path = realpath(path, NULL)) == NULL) {
		fprintf(stderr, "popgate: %s: %m\n", path);
		gw_config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);
	if (strcmp(cfg.log_target, "syslog") == 0)
		log_use_syslog(cfg.log_ident, cfg.log_facility);
	signal(SIGPIPE, SIG_IGN);	/* EPIPE is handled where it happens */
	/* The numbers' region and the scrape sockets, and the limits table: once, here, before
	 * any fork and while privileged (gateway/metrics.h, shared.h), never again at a
	 * reload: every worker, one forked again and a reload's next generation share them. */
	if ((detach && gw_daemon_start(cfg.pid_file, &error) < 0) ||
	    gw_nofile_check(&cfg, true, &error) < 0 || gw_metrics_init(&error) < 0 ||
	    gw_metrics_http_bind(&cfg, &error) < 0 ||
	    (shared = gw_shared_new(cfg.max_sessions, cfg.workers, &error)) == NULL) {
		log_error("%s: %s", abs_path, error);
		gw_config_free(&cfg);
		rc = 1;
	} else if (cfg.master) {
		struct gw_config *owned = malloc(sizeof(*owned));

		if (owned == NULL) {
			log_error("out of memory");
			rc = 1;
			gw_config_free(&cfg);
		} else {
			*owned = cfg;		/* the master owns it now */
			rc = run_master(abs_path, owned, shared);
		}
	} else {
		rc = run_single(&cfg, shared);
		gw_config_free(&cfg);
	}
	gw_shared_free(&shared);
	gw_metrics_http_close();
	gw_daemon_end();
	free(abs_path);
	return rc;
}
