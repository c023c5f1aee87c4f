/* common/metrics.h: popgate's numbers, and their Prometheus text exposition (format 0.0.4).
 *
 * Pure: a plain struct of counters and the text made from a copy of it. Where the numbers
 * live (one region shared by every worker) and who updates them is gateway/metrics.h's
 * business; who serves the text over HTTP, gateway/metrics_http.c's. Every label value is a
 * fixed word from a table here, never anything a client or a server sent, so the text needs
 * no escaping and its series are a fixed set (a dashboard never sees one appear or vanish). */
#ifndef POPGATE_METRICS_H
#define POPGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Why a login failed (popgate_login_failures_total{reason}). */
enum metrics_login_fail {
	MET_LOGIN_BAD_CREDENTIALS,	/* the upstream refused them ([AUTH]), or refused the
					   same ones moments ago */
	MET_LOGIN_IN_USE,		/* [IN-USE]: another session holds the mailbox */
	MET_LOGIN_UPSTREAM_UNAVAILABLE,	/* [SYS/TEMP]: unreachable, failing, or the UIDLs could
					   not be had safely */
	MET_LOGIN_PLAINTEXT_REFUSED,	/* PASS/AUTH before TLS where plaintext is not allowed */
	MET_LOGIN_INVALID_CREDENTIALS,	/* empty, over-long or with CR/LF/NUL: never sent */
	MET_LOGIN_NR,
};

/* POP3 commands by verb (popgate_pop3_commands_total{command}). */
enum metrics_cmd {
	MET_CMD_USER, MET_CMD_PASS, MET_CMD_STAT, MET_CMD_LIST, MET_CMD_UIDL, MET_CMD_RETR,
	MET_CMD_TOP, MET_CMD_DELE, MET_CMD_RSET, MET_CMD_NOOP, MET_CMD_QUIT, MET_CMD_CAPA,
	MET_CMD_STLS, MET_CMD_AUTH, MET_CMD_APOP, MET_CMD_LAST,
	MET_CMD_OTHER,			/* any other verb, or a line that is no command */
	MET_CMD_NR,
};

/* What went wrong, by kind (popgate_errors_total{kind}). One count per failure seen, which
 * is not one per session: a session may see none or several. */
enum metrics_error {
	MET_ERR_UPSTREAM_CONNECT,	/* connect() failed or was refused */
	MET_ERR_UPSTREAM_TLS,		/* the upstream's TLS handshake or STARTTLS failed */
	MET_ERR_UPSTREAM_TIMEOUT,	/* no answer within [limits] *_timeout */
	MET_ERR_UPSTREAM_CLOSED,	/* the server closed the connection, or said BYE */
	MET_ERR_UPSTREAM_IO,		/* a read or write on the upstream failed (reset) */
	MET_ERR_UPSTREAM_PROTOCOL,	/* an answer popgate cannot accept */
	MET_ERR_TLS_HANDSHAKE,		/* a client's TLS handshake failed or timed out */
	MET_ERR_CLIENT_TIMEOUT,		/* RFC 1939 autologout */
	MET_ERR_CLIENT_IO,		/* a client's connection broke (reset, bad TLS record) */
	MET_ERR_CLIENT_PROTOCOL,	/* too many bad commands, a line flood, too many
					   commands: the session was closed */
	MET_ERR_UPDATE_FAILED,		/* QUIT's deletions could not all be applied */
	MET_ERR_NR,
};

enum metrics_hist_id {
	MET_H_UPSTREAM_CONNECT,		/* connect() to an upstream ready for LOGIN */
	MET_H_UPSTREAM_LOGIN,		/* credentials sent to the login's outcome */
	MET_H_NR,
};

/* The histograms' upper bounds in seconds, ascending; one more bucket is +Inf. */
#define METRICS_BUCKETS 12
extern const double metrics_bucket_le[METRICS_BUCKETS];

struct metrics_hist {
	uint64_t bucket[METRICS_BUCKETS + 1];	/* [i]: observations in (le[i-1], le[i]],
						   the last one above every bound: not
						   cumulative (the text makes them so) */
	uint64_t sum_us;			/* of every observation, in microseconds */
};

/* Every number. Counters only grow; sessions_active is the one gauge. */
struct metrics_values {
	int64_t sessions_active;
	uint64_t sessions_total;
	uint64_t logins_ok;
	uint64_t login_failures[MET_LOGIN_NR];
	uint64_t commands[MET_CMD_NR];
	uint64_t client_sent_bytes;
	uint64_t uidl_cache_hits, uidl_cache_misses, uidl_cache_errors;
	uint64_t errors[MET_ERR_NR];
	struct metrics_hist hist[MET_H_NR];
};

/* The bucket an observation of `seconds` falls in: 0..METRICS_BUCKETS (the last: +Inf). */
size_t metrics_bucket(double seconds);

/* Appends the exposition of v to out: every family with HELP and TYPE, every series of
 * the fixed label sets (zeros too). 0, or -1 when out could not take it (its ceiling, or
 * ENOMEM; what was appended stays). */
int metrics_format(const struct metrics_values *v, struct buf *out);

#endif
