/* common/metrics.c: the Prometheus text exposition (format 0.0.4) of popgate's numbers;
 * see metrics.h. Names follow Prometheus's conventions: a popgate_ prefix, base units
 * (seconds, bytes) in the name, _total on counters. */
#include <inttypes.h>

#include "metrics.h"

/* From a fast local IMAP server (a few ms) to one that is barely answering (the default
 * [limits] connect_timeout is 10 s): the range an operator's alert would be set in. */
const double metrics_bucket_le[METRICS_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

static const char *const login_reason[MET_LOGIN_NR] = {
	[MET_LOGIN_BAD_CREDENTIALS] = "bad_credentials",
	[MET_LOGIN_IN_USE] = "in_use",
	[MET_LOGIN_UPSTREAM_UNAVAILABLE] = "upstream_unavailable",
	[MET_LOGIN_PLAINTEXT_REFUSED] = "plaintext_refused",
	[MET_LOGIN_INVALID_CREDENTIALS] = "invalid_credentials",
};

static const char *const cmd_name[MET_CMD_NR] = {
	[MET_CMD_USER] = "USER", [MET_CMD_PASS] = "PASS", [MET_CMD_STAT] = "STAT",
	[MET_CMD_LIST] = "LIST", [MET_CMD_UIDL] = "UIDL", [MET_CMD_RETR] = "RETR",
	[MET_CMD_TOP] = "TOP", [MET_CMD_DELE] = "DELE", [MET_CMD_RSET] = "RSET",
	[MET_CMD_NOOP] = "NOOP", [MET_CMD_QUIT] = "QUIT", [MET_CMD_CAPA] = "CAPA",
	[MET_CMD_STLS] = "STLS", [MET_CMD_AUTH] = "AUTH", [MET_CMD_APOP] = "APOP",
	[MET_CMD_LAST] = "LAST", [MET_CMD_OTHER] = "other",
};

static const char *const error_kind[MET_ERR_NR] = {
	[MET_ERR_UPSTREAM_CONNECT] = "upstream_connect",
	[MET_ERR_UPSTREAM_TLS] = "upstream_tls",
	[MET_ERR_UPSTREAM_TIMEOUT] = "upstream_timeout",
	[MET_ERR_UPSTREAM_CLOSED] = "upstream_closed",
	[MET_ERR_UPSTREAM_IO] = "upstream_io",
	[MET_ERR_UPSTREAM_PROTOCOL] = "upstream_protocol",
	[MET_ERR_TLS_HANDSHAKE] = "tls_handshake",
	[MET_ERR_CLIENT_TIMEOUT] = "client_timeout",
	[MET_ERR_CLIENT_IO] = "client_io",
	[MET_ERR_CLIENT_PROTOCOL] = "client_protocol",
	[MET_ERR_UPDATE_FAILED] = "update_failed",
};

static const struct {
	const char *name, *help;
} hist_meta[MET_H_NR] = {
	[MET_H_UPSTREAM_CONNECT] = { "popgate_upstream_connect_duration_seconds",
	    "Time from connecting to the IMAP upstream to its being ready for the login (TCP, "
	    "TLS, greeting, capabilities)." },
	[MET_H_UPSTREAM_LOGIN] = { "popgate_upstream_login_duration_seconds",
	    "Time from sending the credentials upstream to the login's outcome (LOGIN, SELECT, "
	    "the message list)." },
};

size_t
metrics_bucket(double seconds)
{
	size_t i;

	for (i = 0; i < METRICS_BUCKETS && !(seconds <= metrics_bucket_le[i]); i++)
		;
	return i;
}

static void
head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
counter(struct buf *out, const char *name, const char *help, uint64_t v)
{
	head(out, name, "counter", help);
	buf_printf(out, "%s %" PRIu64 "\n", name, v);
}

static void
labelled(struct buf *out, const char *name, const char *help, const char *label,
    const char *const *values, const uint64_t *v, size_t n)
{
	head(out, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, values[i], v[i]);
}

/* Buckets are cumulative in the text, and _count is the +Inf bucket: the copy the text is
 * made from was read field by field while workers kept counting, and this way the text
 * agrees with itself whatever moved meanwhile. */
static void
histogram(struct buf *out, const char *name, const char *help, const struct metrics_hist *h)
{
	uint64_t cum = 0;

	head(out, name, "histogram", help);
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->bucket[i];
		buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, metrics_bucket_le[i],
		    cum);
	}
	cum += h->bucket[METRICS_BUCKETS];
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	buf_printf(out, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", name, h->sum_us / 1000000,
	    h->sum_us % 1000000);
	buf_printf(out, "%s_count %" PRIu64 "\n", name, cum);
}

int
metrics_format(const struct metrics_values *v, struct buf *out)
{
	head(out, "popgate_sessions_active", "gauge",
	    "POP3 sessions open now, over the workers that are alive.");
	buf_printf(out, "popgate_sessions_active %" PRId64 "\n",
	    v->sessions_active > 0 ? v->sessions_active : 0);
	counter(out, "popgate_sessions_total", "POP3 client connections that became sessions.",
	    v->sessions_total);
	counter(out, "popgate_logins_total", "Logins that succeeded (the client got +OK).",
	    v->logins_ok);
	labelled(out, "popgate_login_failures_total", "Logins that failed, by reason.",
	    "reason", login_reason, v->login_failures, MET_LOGIN_NR);
	for (size_t i = 0; i < MET_H_NR; i++)
		histogram(out, hist_meta[i].name, hist_meta[i].help, &v->hist[i]);
	labelled(out, "popgate_pop3_commands_total", "POP3 command lines received, by verb.",
	    "command", cmd_name, v->commands, MET_CMD_NR);
	counter(out, "popgate_client_sent_bytes_total", "POP3 bytes written to clients "
	    "(replies and messages, before TLS).", v->client_sent_bytes);
	counter(out, "popgate_uidl_cache_hits_total", "Listed messages the UIDL cache knew at "
	    "login.", v->uidl_cache_hits);
	counter(out, "popgate_uidl_cache_misses_total", "Listed messages new to the UIDL cache "
	    "at login (their content key is read upstream).", v->uidl_cache_misses);
	counter(out, "popgate_uidl_cache_errors_total", "Requests to the UIDL cache that "
	    "failed.", v->uidl_cache_errors);
	labelled(out, "popgate_errors_total", "Failures seen, by kind.", "kind", error_kind,
	    v->errors, MET_ERR_NR);
	return out->failed ? -1 : 0;
}
