/* pop3/pop3_reply.h: POP3 status lines (RFC 1939 §3) with RFC 2449/3206 response codes.
 * Writers append to a buffer and never fail one by one: a full buffer keeps its `failed`
 * flag and the flush reports it. The text is sanitised: CR, LF and NUL never reach the wire
 * from a format argument (they become spaces), so a reply cannot be split; a line longer
 * than RFC 2449's 512 octets (CRLF included) is cut. */
#ifndef POPGATE_POP3_REPLY_H
#define POPGATE_POP3_REPLY_H

#include "../common/buf.h"

/* RFC 2449 §8 / RFC 3206 response codes, written as "-ERR [CODE] text". */
#define POP3_CODE_AUTH "AUTH"
#define POP3_CODE_SYS_TEMP "SYS/TEMP"
#define POP3_CODE_SYS_PERM "SYS/PERM"
#define POP3_CODE_IN_USE "IN-USE"
#define POP3_CODE_LOGIN_DELAY "LOGIN-DELAY"

void pop3_reply_ok(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* code may be NULL (plain -ERR). */
void pop3_reply_err(struct buf *out, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One line of a multi-line reply (e.g. "1 120"); a leading "." is stuffed all the same. */
void pop3_reply_line(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The terminating ".\r\n" of a multi-line reply. */
void pop3_reply_end(struct buf *out);

#endif
