/* common/log.h: logging to stderr (or syslog), one line per event, key=value friendly.
 * Never pass a password or message content here; client text goes through log_escape(). */
#ifndef POPGATE_LOG_H
#define POPGATE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
void log_use_syslog(const char *ident, int facility);	/* facility: LOG_MAIL etc. */
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Writes at most `max` bytes of untrusted text into dst (size dstsize, NUL-terminated),
 * with non-printable bytes as \xNN and a trailing "..." when cut. Returns dst. */
char *log_escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max);

#endif
