/* imap/imap_write.h: writing IMAP client commands (RFC 3501 §4, RFC 9051, RFC 7888 LITERAL+).
 *
 * Quoting is the default: every string argument goes through imap_write_astring(), which
 * picks a quoted string when the bytes allow it and a non-synchronizing literal {n+} when
 * they do not (only when the server offered LITERAL+ or LITERAL-; otherwise it refuses and
 * the caller uses AUTHENTICATE PLAIN). CR, LF and NUL are refused: no credential needs
 * them, and they are how a user name would smuggle a second command upstream. Pure. */
#ifndef POPGATE_IMAP_WRITE_H
#define POPGATE_IMAP_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

enum imap_string_kind {
	IMAP_STRING_QUOTED,	/* "..." with \ and " escaped: 7-bit, no CR/LF/NUL */
	IMAP_STRING_LITERAL,	/* 8-bit or over-long: needs {n} */
	IMAP_STRING_INVALID,	/* contains CR, LF or NUL: never sent */
};

#define IMAP_QUOTED_MAX 1024	/* longer strings go as literals */

/* What a string needs to be sent. */
enum imap_string_kind imap_string_kind(const uint8_t *s, size_t len);

/* Appends s as a quoted string or, if literal_plus, as {n+}CRLF<bytes>.
 * Returns 0; -1 (nothing written) for CR/LF/NUL, or a literal without literal_plus,
 * or when `out` refused the bytes. */
int imap_write_astring(struct buf *out, const uint8_t *s, size_t len, bool literal_plus);

/* Appends the SASL PLAIN initial response (RFC 4616) "\0user\0pass", base64-encoded.
 * Returns 0, or -1 for NUL in user/pass or a full buffer. */
int imap_write_sasl_plain(struct buf *out, const uint8_t *user, size_t ulen,
    const uint8_t *pass, size_t plen);

/* Appends the UID set ("1,5,7:9", runs collapsed) of the longest prefix of uids (sorted
 * ascending) whose text fits in max octets; a run is never split. Returns how many of the
 * n UIDs the set covers: n when all fit, fewer when the caller must send the rest in
 * another command, 0 when n is 0, max < IMAP_UID_SET_MIN or `out` refused the bytes.
 * Servers cap command lines (Dovecot: 64 KB; RFC 7162 §4 asks clients for 8192 octets),
 * so a QUIT that deletes thousands of scattered messages needs several commands. */
#define IMAP_UID_SET_MIN 21	/* "4294967294:4294967295": any single run fits */
size_t imap_write_uid_set(struct buf *out, const uint32_t *uids, size_t n, size_t max);

#endif
