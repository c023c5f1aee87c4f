/* common/log.h: logging to stderr (or syslog), one line per event, key=value friendly.
 * Never pass a password or message content here; client text goes through log_escape(). */
#ifndef POPGATE_LOG_H
#define POPGATE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
/* From now on lines go to syslog(3) as ident (copied, at most 63 bytes) with facility
 * (LOG_MAIL etc.). */
void log_use_syslog(const char *ident, int facility);
/* "mail", "daemon", "local0".."local7" -> LOG_MAIL...; -1 if not one of them. */
int log_facility_parse(const char *s);
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Untrusted text (a user name, a server's words) for a log line, so that it can neither
 * end the line nor add key=value fields to it. Writes at most `max` bytes of src into dst
 * (size dstsize, NUL-terminated), a trailing "..." when cut, and returns dst.
 * log_escape(): for text inside double quotes (key="..."): control bytes, 8-bit bytes,
 * '\\' and '"' become \xNN; spaces stay.
 * log_escape_word(): for a bare value (key=...): the same, and spaces become \x20 too.
 * LOG_ESCAPE_SIZE(max) is a dstsize that never cuts before `max` input bytes. */
#define LOG_ESCAPE_SIZE(max) (4 * (max) + 4)
char *log_escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max);
char *log_escape_word(char *dst, size_t dstsize, const uint8_t *src, size_t len, size_t max);

#endif
