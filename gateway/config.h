/* gateway/config.h: the ini file (inih), every key with its default and bounds.
 * etc/popgate.ini documents the same keys for operators; keep the two in step. */
#ifndef POPGATE_CONFIG_H
#define POPGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/cidr.h"

#define GW_LISTEN_MAX 16
#define GW_WORKERS_MAX 64	/* [server] workers */
#define GW_TRUSTED_MAX 64	/* [server] trusted_proxies */
#define GW_METRICS_LISTEN_MAX 4	/* [metrics] listen */
#define GW_DOMAINS_MAX 64	/* [upstream:DOMAIN] sections */

enum gw_security { GW_SEC_NONE, GW_SEC_STARTTLS, GW_SEC_TLS };

struct gw_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool tls;		/* implicit TLS (RFC 8314), from listen_tls */
	char text[64];		/* as written, for logs */
};

/* One IMAP cluster: [upstream] (domain "") or an [upstream:DOMAIN] section. A domain
 * section stands on its own: a key it does not give has [upstream]'s built-in default
 * (port by security, tls, verify yes, INBOX...), never [upstream]'s value, so that
 * no cluster reaches another's host or trusts another's CA by accident; host is required. */
struct gw_upstream_conf {
	char *domain;				/* as written, without "upstream:" */
	char *host;
	unsigned port;
	enum gw_security security;
	char *ca_file;
	bool verify;
	char *mailbox;
	bool send_client_id;
	bool strip_domain;			/* LOGIN / AUTHENTICATE send "bob", not
						   "bob@DOMAIN" (common/user_domain.h) */
	struct sockaddr_storage addr;		/* resolved once at load: no DNS in the loop */
	socklen_t addrlen;
	int line;				/* the section's header line, for messages */
};

struct gw_config {
	/* [server] */
	struct gw_listen listen[GW_LISTEN_MAX];
	size_t nlisten;
	unsigned workers;			/* worker processes (gateway/master.h) */
	bool master;				/* a master forks, restarts and reloads the
						   workers; no: one process serves alone (1
						   worker, no reload: debugging, valgrind) */
	char *pid_file;				/* written with -d (gateway/daemon.h) */
	unsigned shutdown_timeout;		/* s a stop waits for open sessions; 0: none */
	char *user, *group;
	bool allow_root;			/* serve sessions as root (tests, containers) */
	char *greeting;
	/* PROXY protocol (gateway/proxyproto.c): on every listener, or on none. A load
	 * balancer puts every connection behind one header; mixing both on one port would let
	 * a direct client claim any address. */
	bool proxy_protocol;
	struct cidr trusted[GW_TRUSTED_MAX];	/* trusted_proxies: who may send the header */
	size_t ntrusted;
	/* [tls]: the POP3 side */
	char *tls_cert_file, *tls_key_file, *tls_min_protocol, *tls_ciphers;
	/* [upstream] */
	char *up_host;
	unsigned up_port;
	enum gw_security up_security;
	char *up_ca_file;
	bool up_verify;
	char *up_mailbox;
	bool up_send_client_id;
	bool up_strip_domain;
	struct sockaddr_storage up_addr;	/* resolved once at load: no DNS in the loop */
	socklen_t up_addrlen;
	/* [upstream:DOMAIN]: users of DOMAIN (the part after the last '@', any case) go there;
	 * everyone else to [upstream] */
	struct gw_upstream_conf *domains;
	size_t ndomains;
	const char *domain_names[GW_DOMAINS_MAX];	/* domains[i].domain, for the lookup */
	/* [cache] */
	char *cache_path;
	bool username_lower;			/* username = lower: ASCII-lowercased user names
						   for the cache, [IN-USE] and the delays */
	unsigned retention_days;		/* users not seen for this long leave the
						   cache (never pending imports); 0: never */
	/* [pop3] */
	bool allow_plaintext_auth;
	bool allow_plaintext_loopback;
	unsigned idle_timeout;			/* seconds; RFC 1939 §3: at least 600 */
	bool set_seen;				/* \Seen on retrieved messages at QUIT */
	bool in_use_check;			/* [IN-USE] for a second session of a user,
						   whichever worker either is on */
	/* [limits] */
	/* max_sessions is a worker's own (it bounds that process's descriptors); max_per_address,
	 * the [IN-USE] check and the failed-login delay count over all workers, in the table
	 * they share (gateway/shared.h). */
	unsigned max_sessions;			/* per worker */
	unsigned max_per_address;		/* all workers' */
	unsigned max_bad_commands;
	unsigned max_commands;
	unsigned imap_line_max;
	unsigned out_hiwat, out_lowat;
	unsigned connect_timeout, upstream_timeout, tls_handshake_timeout;
	unsigned auth_fail_delay_ms, auth_fail_delay_max_ms, max_auth_failures;
	/* [migration]: the old POP3 server a user's first login also reads (live UIDL
	 * migration, gateway/migrate.h) */
	char *mig_host;				/* "" (the default): migration off; the
						   ini's HOST[:PORT], HOST once loaded */
	unsigned mig_port;			/* default 995 for tls, else 110 */
	enum gw_security mig_security;		/* none | stls | tls */
	char *mig_ca_file;
	bool mig_verify;
	bool mig_required;			/* old server unreachable: -ERR [SYS/TEMP], never
						   new UIDLs */
	unsigned mig_timeout;			/* seconds, the whole conversation */
	struct sockaddr_storage mig_addr;	/* resolved once at load: no DNS in the loop */
	socklen_t mig_addrlen;
	/* [metrics]: Prometheus text on HTTP (gateway/metrics_http.h); none: off. Bound once
	 * at start, like the region the numbers live in. */
	struct gw_listen metrics_listen[GW_METRICS_LISTEN_MAX];
	size_t nmetrics_listen;
	/* [log] */
	int log_level;
	char *log_target;	/* stderr | syslog */
	int log_facility;	/* with syslog: LOG_MAIL (default), LOG_DAEMON, LOG_LOCAL0..7 */
	char *log_ident;	/* with syslog: the program name in each line, "popgate" */
};

/* The one form of a user name that the [IN-USE] check, the refused-credential memory, the
 * failure delay and the UIDL cache use: ASCII-lowercased with [cache] username = lower
 * (the default, like Dovecot's auth_username_format %Lu), as typed with keep. Writes at
 * most size - 1 bytes and a NUL. */
void gw_config_user_key(const struct gw_config *cfg, const char *user, char *key_r, size_t size);

/* [upstream] as a gw_upstream_conf (its strings borrowed from cfg, domain ""). */
void gw_config_upstream_default(const struct gw_config *cfg, struct gw_upstream_conf *uc_r);
/* The index in cfg->domains of user's [upstream:DOMAIN], or -1 for [upstream]. */
int gw_config_domain_index(const struct gw_config *cfg, const char *user);

/* The mailbox of user's cluster ([upstream:DOMAIN] mailbox, else [upstream]'s). */
const char *gw_config_mailbox(const struct gw_config *cfg, const char *user);

/* [server] workers when the file does not say: the CPUs online, 1..GW_WORKERS_MAX. */
unsigned gw_config_default_workers(void);

/* Loads and checks the file. Returns 0, or -1 with *error_r naming the line and key
 * (static storage, valid until the next call). */
int gw_config_load(struct gw_config *cfg, const char *path, const char **error_r);
void gw_config_free(struct gw_config *cfg);

#endif
