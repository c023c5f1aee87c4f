/* common/log.c: the one place log lines are written (stderr with a timestamp, or syslog). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_level = LOG_LVL_INFO;
static bool log_syslog;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

int
log_facility_parse(const char *s)
{
	static const struct { const char *name; int facility; } names[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "local0", LOG_LOCAL0 },
		{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
		{ "local7", LOG_LOCAL7 },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].facility;
	return -1;
}

void
log_use_syslog(const char *ident, int facility)
{
	/* openlog() keeps the pointer: a copy of our own outlives the config it came from (a
	 * reload frees that). Calling it again (a reload) changes ident and facility. */
	static char ident_copy[64];

	snprintf(ident_copy, sizeof(ident_copy), "%s", ident);
	closelog();
	openlog(ident_copy, LOG_PID | LOG_NDELAY, facility);
	log_syslog = true;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048], stamp[32], out[2048 + 96];
	int n;
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write per line so lines of concurrent workers do not interleave (dprintf() would
	 * also fstat and seek the descriptor on every line); the rest of a short write (a
	 * stream socket, a signal) follows at once. A line cut at the buffer's size still ends
	 * with its newline. */
	n = snprintf(out, sizeof(out), "%s.%03ldZ popgate[%d] %s: %s\n", stamp,
	    ts.tv_nsec / 1000000, (int)getpid(), level_names[lvl], line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out)) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = write(STDERR_FILENO, out + off, (size_t)n - off);

		if (w > 0)
			off += (size_t)w;
		else if (w == 0 || errno != EINTR)
			break;	/* nowhere to say so: the line is lost */
	}
}

static char *
escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max, bool word)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (dstsize == 0)
		return dst;
	for (i = 0; i < len && i < max; i++) {
		uint8_t c = src[i];

		if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') {
			if (o + 2 > dstsize)
				break;
			dst[o++] = (char)c;
		} else if (c == ' ' && !word) {
			if (o + 2 > dstsize)
				break;
			dst[o++] = ' ';
		} else {
			if (o + 5 > dstsize)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (i < len && o + 4 <= dstsize) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

char *
log_escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max)
{
	return escape(dst, dstsize, src, len, max, false);
}

char *
log_escape_word(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max)
{
	return escape(dst, dstsize, src, len, max, true);
}
