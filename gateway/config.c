/* gateway/config.c: loads popgate.ini with inih into struct gw_config.
 *
 * One table names every key, its type, default and bounds; the handler looks a key up
 * there, so an unknown key or a bad value stops the load with the line number inih gives
 * and a message that names the key. Host names are resolved here, once, at start: the
 * event loop never does DNS. */
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "../common/cidr.h"
#include "../common/log.h"
#include "../common/user_domain.h"
#include "config.h"

enum key_type { K_STR, K_BOOL, K_UINT, K_LISTEN, K_LISTEN_TLS, K_SECURITY, K_SECURITY_POP3, K_LEVEL,
    K_USERNAME, K_CIDRS, K_METRICS_LISTEN, K_FACILITY };

struct key {
	const char *section, *name;
	enum key_type type;
	size_t off;
	const char *def;		/* default, as it would be written in the file */
	unsigned min, max;		/* K_UINT bounds */
};

#define F(f) offsetof(struct gw_config, f)
static const struct key keys[] = {
	{ "server", "listen", K_LISTEN, 0, NULL, 0, 0 },
	{ "server", "listen_tls", K_LISTEN_TLS, 0, NULL, 0, 0 },
	/* default: the CPUs online, set before the file is read (gw_config_load()) */
	{ "server", "workers", K_UINT, F(workers), NULL, 1, GW_WORKERS_MAX },
	{ "server", "master", K_BOOL, F(master), "yes", 0, 0 },
	{ "server", "pid_file", K_STR, F(pid_file), "/run/popgate.pid", 0, 0 },
	{ "server", "user", K_STR, F(user), "", 0, 0 },
	{ "server", "group", K_STR, F(group), "", 0, 0 },
	{ "server", "allow_root", K_BOOL, F(allow_root), "no", 0, 0 },
	{ "server", "shutdown_timeout", K_UINT, F(shutdown_timeout), "30", 0, 3600 },
	{ "server", "greeting", K_STR, F(greeting), "popgate ready.", 0, 0 },
	{ "server", "proxy_protocol", K_BOOL, F(proxy_protocol), "no", 0, 0 },
	{ "server", "trusted_proxies", K_CIDRS, 0, NULL, 0, 0 },
	{ "tls", "cert_file", K_STR, F(tls_cert_file), "", 0, 0 },
	{ "tls", "key_file", K_STR, F(tls_key_file), "", 0, 0 },
	{ "tls", "min_protocol", K_STR, F(tls_min_protocol), "TLSv1.2", 0, 0 },
	{ "tls", "ciphers", K_STR, F(tls_ciphers), "", 0, 0 },
	{ "upstream", "host", K_STR, F(up_host), "", 0, 0 },
	{ "upstream", "port", K_UINT, F(up_port), "0", 0, 65535 },
	{ "upstream", "security", K_SECURITY, F(up_security), "tls", 0, 0 },
	{ "upstream", "ca_file", K_STR, F(up_ca_file), "", 0, 0 },
	{ "upstream", "verify", K_BOOL, F(up_verify), "yes", 0, 0 },
	{ "upstream", "mailbox", K_STR, F(up_mailbox), "INBOX", 0, 0 },
	{ "upstream", "send_client_id", K_BOOL, F(up_send_client_id), "no", 0, 0 },
	{ "upstream", "strip_domain", K_BOOL, F(up_strip_domain), "no", 0, 0 },
	{ "cache", "path", K_STR, F(cache_path), "/var/lib/popgate/uidl.sqlite", 0, 0 },
	{ "cache", "username", K_USERNAME, F(username_lower), "lower", 0, 0 },
	{ "cache", "retention_days", K_UINT, F(retention_days), "400", 0, 36500 },
	{ "pop3", "allow_plaintext_auth", K_BOOL, F(allow_plaintext_auth), "no", 0, 0 },
	{ "pop3", "allow_plaintext_loopback", K_BOOL, F(allow_plaintext_loopback), "no", 0, 0 },
	{ "pop3", "idle_timeout", K_UINT, F(idle_timeout), "600", 1, 86400 },
	{ "pop3", "set_seen", K_BOOL, F(set_seen), "no", 0, 0 },
	{ "pop3", "in_use_check", K_BOOL, F(in_use_check), "yes", 0, 0 },
	{ "limits", "max_sessions", K_UINT, F(max_sessions), "5000", 1, 1000000 },
	{ "limits", "max_per_address", K_UINT, F(max_per_address), "20", 1, 1000000 },
	{ "limits", "max_bad_commands", K_UINT, F(max_bad_commands), "20", 1, 100000 },
	{ "limits", "max_commands", K_UINT, F(max_commands), "100000", 10, 100000000 },
	{ "limits", "imap_line_max", K_UINT, F(imap_line_max), "65536", 1024, 16777216 },
	{ "limits", "output_high_watermark", K_UINT, F(out_hiwat), "65536", 4096, 67108864 },
	{ "limits", "output_low_watermark", K_UINT, F(out_lowat), "16384", 0, 67108864 },
	{ "limits", "connect_timeout", K_UINT, F(connect_timeout), "10", 1, 3600 },
	{ "limits", "upstream_timeout", K_UINT, F(upstream_timeout), "60", 1, 3600 },
	{ "limits", "tls_handshake_timeout", K_UINT, F(tls_handshake_timeout), "30", 1, 3600 },
	{ "limits", "auth_fail_delay_ms", K_UINT, F(auth_fail_delay_ms), "2000", 0, 60000 },
	{ "limits", "auth_fail_delay_max_ms", K_UINT, F(auth_fail_delay_max_ms), "15000", 0, 600000 },
	{ "limits", "max_auth_failures", K_UINT, F(max_auth_failures), "3", 1, 1000 },
	/* pop3 is HOST[:PORT] until config_check() splits it into mig_host and mig_port */
	{ "migration", "pop3", K_STR, F(mig_host), "", 0, 0 },
	{ "migration", "security", K_SECURITY_POP3, F(mig_security), "tls", 0, 0 },
	{ "migration", "ca_file", K_STR, F(mig_ca_file), "", 0, 0 },
	{ "migration", "verify", K_BOOL, F(mig_verify), "yes", 0, 0 },
	{ "migration", "required", K_BOOL, F(mig_required), "yes", 0, 0 },
	{ "migration", "timeout", K_UINT, F(mig_timeout), "60", 1, 3600 },
	{ "metrics", "listen", K_METRICS_LISTEN, 0, NULL, 0, 0 },
	{ "log", "level", K_LEVEL, F(log_level), "info", 0, 0 },
	{ "log", "target", K_STR, F(log_target), "stderr", 0, 0 },
	{ "log", "facility", K_FACILITY, F(log_facility), "mail", 0, 0 },
	{ "log", "ident", K_STR, F(log_ident), "popgate", 0, 0 },
};
#undef F

/* The keys of an [upstream:DOMAIN] section, with [upstream]'s built-in defaults. */
#define U(f) offsetof(struct gw_upstream_conf, f)
static const struct key up_keys[] = {
	{ "upstream", "host", K_STR, U(host), "", 0, 0 },
	{ "upstream", "port", K_UINT, U(port), "0", 0, 65535 },
	{ "upstream", "security", K_SECURITY, U(security), "tls", 0, 0 },
	{ "upstream", "ca_file", K_STR, U(ca_file), "", 0, 0 },
	{ "upstream", "verify", K_BOOL, U(verify), "yes", 0, 0 },
	{ "upstream", "mailbox", K_STR, U(mailbox), "INBOX", 0, 0 },
	{ "upstream", "send_client_id", K_BOOL, U(send_client_id), "no", 0, 0 },
	{ "upstream", "strip_domain", K_BOOL, U(strip_domain), "no", 0, 0 },
};
#undef U

struct load_ctx {
	struct gw_config *cfg;
	char error[300];
	FILE *f;
	bool workers_set;	/* [server] workers is in the file */
	bool key_in_section;	/* a key came since the last header (inih's prev_name) */
	bool mid_line;		/* the last chunk read ended without its newline */
	int line;		/* lines read so far: inih's numbering (one per reader call) */
	int error_line;		/* > 0: an error found by the reader (a section header) */
	int cur_domain;		/* the section being read is cfg->domains[cur_domain]; -1: none */
	char section[300];	/* "upstream:DOMAIN" of messages */
};

/* "host:port", "[v6]:port", "host" or "[v6]" -> host (brackets removed) and port ("" when
 * none is written). 0, or -1 when it is not of that form or a part is too long. */
static int
split_host_port(const char *text, char host[256], char port[16])
{
	const char *colon;
	size_t hlen;

	if (text[0] == '[') {		/* [::1]:110 */
		const char *end = strchr(text, ']');

		if (end == NULL || (end[1] != ':' && end[1] != '\0'))
			return -1;
		hlen = (size_t)(end - text - 1);
		if (hlen >= 256)
			return -1;
		memcpy(host, text + 1, hlen);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(text, ':');
		hlen = colon ? (size_t)(colon - text) : strlen(text);
		if (hlen >= 256)
			return -1;
		memcpy(host, text, hlen);
	}
	host[hlen] = '\0';
	port[0] = '\0';
	if (colon != NULL) {
		if (strlen(colon + 1) >= 16)
			return -1;
		snprintf(port, 16, "%s", colon + 1);
		if (port[0] == '\0')
			return -1;
	}
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	if (strtoul(port, NULL, 10) > 65535)	/* at most 15 digits: no overflow */
		return -1;
	return 0;
}

static int
parse_host_port(const char *text, struct sockaddr_storage *ss, socklen_t *len_r, int *gai_r,
    int default_port, bool passive)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;

	if (split_host_port(text, host, port) < 0)
		return -1;
	if (port[0] == '\0' && default_port > 0)
		snprintf(port, sizeof(port), "%d", default_port);
	else if (port[0] == '\0')
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if ((*gai_r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool
parse_bool(const char *v, bool *b_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *b_r = true, true;
		if (strcasecmp(v, no[i]) == 0)
			return *b_r = false, true;
	}
	return false;
}

/* [server] listen and listen_tls add to cfg->listen, [metrics] listen to
 * cfg->metrics_listen (then an empty value is none: off). */
static int
add_listeners(struct load_ctx *lc, const struct key *k, const char *value, bool tls)
{
	struct gw_config *cfg = lc->cfg;
	bool metrics = k->type == K_METRICS_LISTEN;
	struct gw_listen *set = metrics ? cfg->metrics_listen : cfg->listen;
	size_t *n = metrics ? &cfg->nmetrics_listen : &cfg->nlisten;
	size_t max = metrics ? GW_METRICS_LISTEN_MAX : GW_LISTEN_MAX;
	char *copy = strdup(value), *save = NULL, *item;
	int gai = 0;

	if (copy == NULL)
		return -1;
	for (item = strtok_r(copy, ", \t", &save); item; item = strtok_r(NULL, ", \t", &save)) {
		struct gw_listen *l;

		if (*n == max) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: more than %zu listeners",
			    k->section, k->name, max);
			free(copy);
			return -1;
		}
		l = &set[*n];
		if (parse_host_port(item, &l->addr, &l->addrlen, &gai, -1, true) < 0) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not HOST:PORT%s%s",
			    k->section, k->name, item, gai ? ": " : "", gai ? gai_strerror(gai) : "");
			free(copy);
			return -1;
		}
		l->tls = tls;
		snprintf(l->text, sizeof(l->text), "%s", item);
		(*n)++;
	}
	free(copy);
	return 0;
}

/* trusted_proxies = CIDR, CIDR...: each checked here, so a typo stops the load on its line
 * instead of silently trusting nobody (or too many). */
static int
add_cidrs(struct load_ctx *lc, const struct key *k, const char *value)
{
	struct gw_config *cfg = lc->cfg;
	const char *p = value;

	for (;;) {
		size_t n;
		const char *error;

		p += strspn(p, ", \t");
		if (*p == '\0')
			return 0;
		n = strcspn(p, ", \t");
		if (cfg->ntrusted == GW_TRUSTED_MAX) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: more than %d networks",
			    k->section, k->name, GW_TRUSTED_MAX);
			return -1;
		}
		if (cidr_parse(p, n, &cfg->trusted[cfg->ntrusted], &error) < 0) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.*s\" is not a CIDR: %s",
			    k->section, k->name, (int)(n < 64 ? n : 64), p, error);
			return -1;
		}
		cfg->ntrusted++;
		p += n;
	}
}

/* base: the struct k->off is into (the config, or a domain's gw_upstream_conf). */
static int
set_value(struct load_ctx *lc, void *base_p, const struct key *k, const char *value)
{
	char *base = base_p;
	int lvl;

	switch (k->type) {
	case K_STR: {
		char **dst = (char **)(base + k->off), *dup = strdup(value);

		if (dup == NULL)
			return -1;
		free(*dst);
		*dst = dup;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(value, (bool *)(base + k->off)))
			return 0;
		snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not yes or no",
		    k->section, k->name, value);
		return -1;
	case K_UINT: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || value[0] == '-' ||
		    v < k->min || v > k->max) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not a number "
			    "from %u to %u", k->section, k->name, value, k->min, k->max);
			return -1;
		}
		*(unsigned *)(base + k->off) = (unsigned)v;
		return 0;
	}
	case K_LISTEN:
	case K_LISTEN_TLS:
	case K_METRICS_LISTEN:
		return add_listeners(lc, k, value, k->type == K_LISTEN_TLS);
	case K_CIDRS:
		return add_cidrs(lc, k, value);
	case K_SECURITY: {
		enum gw_security *sec = (enum gw_security *)(base + k->off);

		if (strcasecmp(value, "none") == 0)
			*sec = GW_SEC_NONE;
		else if (strcasecmp(value, "starttls") == 0)
			*sec = GW_SEC_STARTTLS;
		else if (strcasecmp(value, "tls") == 0)
			*sec = GW_SEC_TLS;
		else {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not none, "
			    "starttls or tls", k->section, k->name, value);
			return -1;
		}
		return 0;
	}
	case K_SECURITY_POP3: {
		enum gw_security *sec = (enum gw_security *)(base + k->off);

		/* RFC 2595 names POP3's STARTTLS "STLS"; "starttls" is taken too, as [upstream]
		 * spells it. */
		if (strcasecmp(value, "none") == 0)
			*sec = GW_SEC_NONE;
		else if (strcasecmp(value, "stls") == 0 || strcasecmp(value, "starttls") == 0)
			*sec = GW_SEC_STARTTLS;
		else if (strcasecmp(value, "tls") == 0)
			*sec = GW_SEC_TLS;
		else {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not none, "
			    "stls or tls", k->section, k->name, value);
			return -1;
		}
		return 0;
	}
	case K_USERNAME:
		if (strcasecmp(value, "lower") == 0 || strcasecmp(value, "keep") == 0) {
			*(bool *)(base + k->off) = strcasecmp(value, "lower") == 0;
			return 0;
		}
		snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not lower or keep",
		    k->section, k->name, value);
		return -1;
	case K_FACILITY:
		if ((lvl = log_facility_parse(value)) < 0) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not mail, daemon "
			    "or local0 to local7", k->section, k->name, value);
			return -1;
		}
		*(int *)(base + k->off) = lvl;
		return 0;
	case K_LEVEL:
		if ((lvl = log_level_parse(value)) < 0) {
			snprintf(lc->error, sizeof(lc->error), "[%s] %s: \"%.64s\" is not error, warn, "
			    "info or debug", k->section, k->name, value);
			return -1;
		}
		*(int *)(base + k->off) = lvl;
		return 0;
	}
	return -1;
}

/* A key of the [upstream:DOMAIN] section being read (the reader knows which: inih's copy
 * of a section name is cut at 49 characters, a domain may be longer). */
static int
on_domain_key(struct load_ctx *lc, const char *name, const char *value)
{
	struct gw_upstream_conf *uc;

	if (lc->cur_domain < 0)		/* cannot happen: the reader saw the header */
		return snprintf(lc->error, sizeof(lc->error), "[upstream:...]: unreadable section "
		    "header"), 0;
	uc = &lc->cfg->domains[lc->cur_domain];
	snprintf(lc->section, sizeof(lc->section), "upstream:%.253s", uc->domain);
	for (size_t i = 0; i < sizeof(up_keys) / sizeof(up_keys[0]); i++) {
		struct key k = up_keys[i];

		if (strcasecmp(name, k.name) != 0)
			continue;
		k.section = lc->section;
		return set_value(lc, uc, &k, value) == 0;
	}
	snprintf(lc->error, sizeof(lc->error), "[%.120s] %.50s: unknown key", lc->section, name);
	return 0;
}

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *lc = user;

	lc->key_in_section = true;
	if (strncasecmp(section, "upstream:", 9) == 0)
		return on_domain_key(lc, name, value);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcasecmp(section, keys[i].section) != 0 || strcasecmp(name, keys[i].name) != 0)
			continue;
		if (strcasecmp(name, "workers") == 0)
			lc->workers_set = true;
		return set_value(lc, lc->cfg, &keys[i], value) == 0;
	}
	snprintf(lc->error, sizeof(lc->error), "[%s] %s: unknown key", section, name);
	return 0;
}

/* A section header line: [upstream:DOMAIN] opens a new domain cluster (its built-in
 * defaults set here), any other header leaves domain sections. Returns -1 with lc->error
 * for a bad domain, a second section of the same domain, or too many. Read here rather
 * than from inih, which gives its handler neither line numbers nor empty sections. */
static int
section_header(struct load_ctx *lc, const char *line)
{
	struct gw_config *cfg = lc->cfg;
	struct gw_upstream_conf *uc;
	const char *p = line, *end, *why;
	char domain[USER_DOMAIN_MAX + 2];
	size_t n;

	if (lc->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;				/* a UTF-8 BOM, as inih skips it */
	/* inih's rule (INI_ALLOW_MULTILINE): an indented line after a key of this section
	 * continues that key's value ("listen = a,\n  [::1]:110"), whatever it holds. */
	if ((p[0] == ' ' || p[0] == '\t') && lc->key_in_section)
		return 0;
	p += strspn(p, " \t");
	if (*p != '[' || (end = strchr(p, ']')) == NULL)
		return 0;			/* not a header (inih judges the rest) */
	lc->key_in_section = false;
	p++;
	p += strspn(p, " \t");
	if (strncasecmp(p, "upstream:", 9) != 0) {
		lc->cur_domain = -1;
		return 0;
	}
	p += 9;
	p += strspn(p, " \t");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - p);
	if (n >= sizeof(domain)) {
		why = "domain longer than 253 characters";
	} else {
		memcpy(domain, p, n);
		domain[n] = '\0';
		why = user_domain_check(domain);
	}
	if (why != NULL)
		return snprintf(lc->error, sizeof(lc->error), "[upstream:%.*s]: %s",
		    (int)(n < 64 ? n : 64), p, why), -1;
	for (size_t i = 0; i < cfg->ndomains; i++)
		if (strcasecmp(cfg->domains[i].domain, domain) == 0)
			return snprintf(lc->error, sizeof(lc->error), "[upstream:%.120s]: a second "
			    "section for this domain (the first is at line %d)", domain,
			    cfg->domains[i].line), -1;
	if (cfg->ndomains == GW_DOMAINS_MAX)
		return snprintf(lc->error, sizeof(lc->error), "[upstream:%.120s]: more than %d "
		    "domain sections", domain, GW_DOMAINS_MAX), -1;
	if (cfg->domains == NULL &&
	    (cfg->domains = calloc(GW_DOMAINS_MAX, sizeof(*cfg->domains))) == NULL)
		return snprintf(lc->error, sizeof(lc->error), "out of memory"), -1;
	uc = &cfg->domains[cfg->ndomains];
	memset(uc, 0, sizeof(*uc));
	if ((uc->domain = strdup(domain)) == NULL)
		return snprintf(lc->error, sizeof(lc->error), "out of memory"), -1;
	uc->line = lc->line;
	cfg->domain_names[cfg->ndomains] = uc->domain;
	lc->cur_domain = (int)cfg->ndomains++;
	snprintf(lc->section, sizeof(lc->section), "upstream:%.253s", uc->domain);
	for (size_t i = 0; i < sizeof(up_keys) / sizeof(up_keys[0]); i++) {
		struct key k = up_keys[i];

		k.section = lc->section;
		if (set_value(lc, uc, &k, k.def) < 0)
			return -1;
	}
	return 0;
}

/* inih's line reader, counting lines and reading section headers (section_header()). */
static char *
read_line(char *str, int num, void *stream)
{
	struct load_ctx *lc = stream;

	bool mid_line = lc->mid_line;

	if (lc->error_line > 0 || fgets(str, num, lc->f) == NULL)
		return NULL;
	lc->line++;
	/* The rest of a line longer than num is no header, whatever it starts with. */
	lc->mid_line = strchr(str, '\n') == NULL;
	if (!mid_line && section_header(lc, str) < 0) {
		lc->error_line = lc->line;
		return NULL;		/* inih stops as at the end of the file */
	}
	return str;
}

/* One cluster's checks after its keys are read: host given and resolved (the port's
 * default follows security), a mailbox. name: "upstream" or "upstream:DOMAIN". */
static int
upstream_check(struct load_ctx *lc, const char *name, char **host, unsigned *port,
    enum gw_security security, const char *mailbox, struct sockaddr_storage *addr,
    socklen_t *addrlen)
{
	char hp[300];
	int gai = 0;

	if ((*host)[0] == '\0')
		return snprintf(lc->error, sizeof(lc->error), "[%s] host: missing", name), -1;
	if (*port == 0)
		*port = security == GW_SEC_TLS ? 993 : 143;
	snprintf(hp, sizeof(hp), strchr(*host, ':') ? "[%.256s]:%u" : "%.256s:%u", *host, *port);
	if (parse_host_port(hp, addr, addrlen, &gai, -1, false) < 0)
		return snprintf(lc->error, sizeof(lc->error), "[%s] host: cannot resolve "
		    "\"%.64s\"%s%s", name, *host, gai ? ": " : "", gai ? gai_strerror(gai) : ""), -1;
	if (mailbox[0] == '\0')
		return snprintf(lc->error, sizeof(lc->error), "[%s] mailbox: empty", name), -1;
	return 0;
}

/* [migration] pop3 = HOST[:PORT]: split into mig_host and mig_port (the default port
 * follows security, read by now) and resolved once, like [upstream] host. */
static int
migration_check(struct load_ctx *lc)
{
	struct gw_config *cfg = lc->cfg;
	char host[256], port[16], hp[300], *dup;
	int gai = 0;

	if (cfg->mig_host[0] == '\0')
		return 0;			/* migration off */
	if (split_host_port(cfg->mig_host, host, port) < 0 || host[0] == '\0')
		return snprintf(lc->error, sizeof(lc->error), "[migration] pop3: \"%.64s\" is not "
		    "HOST or HOST:PORT", cfg->mig_host), -1;
	cfg->mig_port = port[0] != '\0' ? (unsigned)strtoul(port, NULL, 10) :
	    cfg->mig_security == GW_SEC_TLS ? 995 : 110;
	if (cfg->mig_port == 0)
		return snprintf(lc->error, sizeof(lc->error), "[migration] pop3: port 0"), -1;
	snprintf(hp, sizeof(hp), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, cfg->mig_port);
	if (parse_host_port(hp, &cfg->mig_addr, &cfg->mig_addrlen, &gai, -1, false) < 0)
		return snprintf(lc->error, sizeof(lc->error), "[migration] pop3: cannot resolve "
		    "\"%.64s\"%s%s", host, gai ? ": " : "", gai ? gai_strerror(gai) : ""), -1;
	if ((dup = strdup(host)) == NULL)
		return snprintf(lc->error, sizeof(lc->error), "out of memory"), -1;
	free(cfg->mig_host);
	cfg->mig_host = dup;
	return 0;
}

/* A file popgate opens while serving: absolute, or it would mean one thing in the
 * foreground and another under -d or systemd (both run from /), where a cache the
 * workers cannot find means new UIDLs for everyone. */
static int
absolute(struct load_ctx *lc, const char *section, const char *key, const char *path)
{
	if (path == NULL || path[0] == '\0' || path[0] == '/')
		return 0;
	return snprintf(lc->error, sizeof(lc->error), "[%.80s] %s: \"%.64s\" must be an absolute "
	    "path (popgate runs from / once detached, as under systemd)", section, key, path), -1;
}

/* Checks that need all keys read. */
static int
config_check(struct load_ctx *lc)
{
	struct gw_config *cfg = lc->cfg;

	if (absolute(lc, "cache", "path", cfg->cache_path) < 0 ||
	    absolute(lc, "tls", "cert_file", cfg->tls_cert_file) < 0 ||
	    absolute(lc, "tls", "key_file", cfg->tls_key_file) < 0 ||
	    absolute(lc, "upstream", "ca_file", cfg->up_ca_file) < 0 ||
	    absolute(lc, "migration", "ca_file", cfg->mig_ca_file) < 0)
		return -1;
	for (size_t i = 0; i < cfg->ndomains; i++) {
		snprintf(lc->section, sizeof(lc->section), "upstream:%.253s", cfg->domains[i].domain);
		if (absolute(lc, lc->section, "ca_file", cfg->domains[i].ca_file) < 0) {
			lc->error_line = cfg->domains[i].line;
			return -1;
		}
	}

	if (cfg->nlisten == 0)
		return snprintf(lc->error, sizeof(lc->error), "[server] listen: no listener "
		    "configured"), -1;
	if (upstream_check(lc, "upstream", &cfg->up_host, &cfg->up_port, cfg->up_security,
	    cfg->up_mailbox, &cfg->up_addr, &cfg->up_addrlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->ndomains; i++) {
		struct gw_upstream_conf *uc = &cfg->domains[i];

		snprintf(lc->section, sizeof(lc->section), "upstream:%.253s", uc->domain);
		if (upstream_check(lc, lc->section, &uc->host, &uc->port, uc->security,
		    uc->mailbox, &uc->addr, &uc->addrlen) < 0) {
			lc->error_line = uc->line;	/* the section's header */
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].tls && (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0'))
			return snprintf(lc->error, sizeof(lc->error), "[server] listen_tls: needs "
			    "[tls] cert_file and key_file"), -1;
	/* Trusting nobody would refuse every connection: a mistake, not a setting. */
	if (cfg->proxy_protocol && cfg->ntrusted == 0)
		return snprintf(lc->error, sizeof(lc->error), "[server] proxy_protocol = yes needs "
		    "trusted_proxies (the load balancers' addresses)"), -1;
	/* master = no: one process serves alone; the CPU count is no reason to refuse it. */
	if (!cfg->master && cfg->workers > 1 && lc->workers_set)
		return snprintf(lc->error, sizeof(lc->error), "[server] master = no serves in one "
		    "process: workers must be 1 (or master = yes)"), -1;
	if (!cfg->master)
		cfg->workers = 1;
	if (cfg->pid_file[0] != '\0' && cfg->pid_file[0] != '/')
		return snprintf(lc->error, sizeof(lc->error), "[server] pid_file: must be an "
		    "absolute path (a daemon's directory is /)"), -1;
	if (cfg->out_lowat >= cfg->out_hiwat)
		return snprintf(lc->error, sizeof(lc->error), "[limits] output_low_watermark: must "
		    "be below output_high_watermark (%u)", cfg->out_hiwat), -1;
	/* Anything else would have gone to stderr without a word. */
	if (strcmp(cfg->log_target, "stderr") != 0 && strcmp(cfg->log_target, "syslog") != 0)
		return snprintf(lc->error, sizeof(lc->error), "[log] target: \"%.64s\" is not stderr "
		    "or syslog", cfg->log_target), -1;
	if (cfg->log_ident[0] == '\0' || strlen(cfg->log_ident) > 63)
		return snprintf(lc->error, sizeof(lc->error), "[log] ident: must be 1 to 63 "
		    "characters"), -1;
	return migration_check(lc);
}

int
gw_config_load(struct gw_config *cfg, const char *path, const char **error_r)
{
	static char error[400];
	struct load_ctx lc;
	int line;

	memset(cfg, 0, sizeof(*cfg));
	memset(&lc, 0, sizeof(lc));
	lc.cfg = cfg;
	lc.cur_domain = -1;
	cfg->workers = gw_config_default_workers();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].def != NULL && set_value(&lc, cfg, &keys[i], keys[i].def) < 0) {
			snprintf(error, sizeof(error), "%s: built-in default of [%s] %s is invalid",
			    path, keys[i].section, keys[i].name);
			*error_r = error;
			return -1;
		}
	}
	if ((lc.f = fopen(path, "r")) == NULL) {
		snprintf(error, sizeof(error), "%s: cannot read: %s", path, strerror(errno));
		*error_r = error;
		return -1;
	}
	line = ini_parse_stream(read_line, &lc, on_key, &lc);
	fclose(lc.f);
	if (line == 0 && lc.error_line > 0)
		line = lc.error_line;		/* the reader stopped at a section header */
	if (line < 0) {
		snprintf(error, sizeof(error), "%s: cannot read: out of memory", path);
		*error_r = error;
		return -1;
	}
	if (line > 0) {
		snprintf(error, sizeof(error), "%s:%d: %s", path, line,
		    lc.error[0] ? lc.error : "syntax error (expected [section] or key = value)");
		*error_r = error;
		return -1;
	}
	if (config_check(&lc) < 0) {
		if (lc.error_line > 0)
			snprintf(error, sizeof(error), "%s:%d: %s", path, lc.error_line, lc.error);
		else
			snprintf(error, sizeof(error), "%s: %s", path, lc.error);
		*error_r = error;
		return -1;
	}
	return 0;
}

void
gw_config_free(struct gw_config *cfg)
{
	char *base = (char *)cfg;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].type == K_STR) {
			free(*(char **)(base + keys[i].off));
			*(char **)(base + keys[i].off) = NULL;
		}
	}
	for (size_t d = 0; d < cfg->ndomains; d++) {
		struct gw_upstream_conf *uc = &cfg->domains[d];

		free(uc->domain);
		for (size_t i = 0; i < sizeof(up_keys) / sizeof(up_keys[0]); i++)
			if (up_keys[i].type == K_STR)
				free(*(char **)((char *)uc + up_keys[i].off));
	}
	free(cfg->domains);
	cfg->domains = NULL;
	cfg->ndomains = 0;
}

void
gw_config_upstream_default(const struct gw_config *cfg, struct gw_upstream_conf *uc_r)
{
	memset(uc_r, 0, sizeof(*uc_r));
	uc_r->domain = (char *)"";
	uc_r->host = cfg->up_host;
	uc_r->port = cfg->up_port;
	uc_r->security = cfg->up_security;
	uc_r->ca_file = cfg->up_ca_file;
	uc_r->verify = cfg->up_verify;
	uc_r->mailbox = cfg->up_mailbox;
	uc_r->send_client_id = cfg->up_send_client_id;
	uc_r->strip_domain = cfg->up_strip_domain;
	memcpy(&uc_r->addr, &cfg->up_addr, sizeof(uc_r->addr));
	uc_r->addrlen = cfg->up_addrlen;
}

const char *
gw_config_mailbox(const struct gw_config *cfg, const char *user)
{
	int i = gw_config_domain_index(cfg, user);

	return i >= 0 ? cfg->domains[i].mailbox : cfg->up_mailbox;
}

int
gw_config_domain_index(const struct gw_config *cfg, const char *user)
{
	return user_domain_find(cfg->domain_names, cfg->ndomains, user);
}

unsigned
gw_config_default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > GW_WORKERS_MAX ? GW_WORKERS_MAX : (unsigned)n;
}

void
gw_config_user_key(const struct gw_config *cfg, const char *user, char *key_r, size_t size)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; user[i] != '\0' && i + 1 < size; i++) {
		char c = user[i];

		/* ASCII only: no locale, and UTF-8 bytes stay as they are (Dovecot's %L). */
		key_r[i] = cfg->username_lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	key_r[i] = '\0';
}
