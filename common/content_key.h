/* common/content_key.h: a message's content key, what matches a message across a mailbox
 * rebuild (new UIDVALIDITY, new UIDs) and across servers (an old POP3 store, the IMAP
 * cluster), where neither UIDs nor sizes survive (DESIGN.md "UIDLs and the cache").
 *
 * The recipe, exactly:
 *  1. Of the message's header (up to the first empty line; all of it may be given, or only
 *     the fields below, as IMAP's BODY.PEEK[HEADER.FIELDS (...)] returns them), take the
 *     first occurrence of each of Message-ID, Date, From, To and Subject. Field names match
 *     case-insensitively; a line that starts with a space or tab continues the field above
 *     (RFC 5322 §2.2.3 unfolding). Every other field is ignored: old servers and migration
 *     tools add Status, X-Status, X-UIDL, X-Keywords, Content-Length and Received.
 *  2. Each value: leading and trailing whitespace removed, every run of whitespace (space,
 *     tab, CR, LF) made one space. Bytes are otherwise kept as they are: no MIME decoding,
 *     no case folding. A field that is absent has the empty value.
 *  3. SHA-256 of "message-id:" V1 "\n" "date:" V2 "\n" "from:" V3 "\n" "to:" V4 "\n"
 *     "subject:" V5 "\n"; the key is the first 16 bytes of it in lower-case hex (32
 *     characters).
 * The size is not part of the key: mbox-era servers count line ends differently.
 * Pure: no I/O. */
#ifndef POPGATE_CONTENT_KEY_H
#define POPGATE_CONTENT_KEY_H

#include <stddef.h>
#include <stdint.h>

#define CONTENT_KEY_LEN 32
#define CONTENT_KEY_SIZE (CONTENT_KEY_LEN + 1)
#define CONTENT_MSGID_MAX 256	/* a longer Message-ID is kept as its hash */

/* The key of a header block (any bytes; reading stops at the first empty line). Returns 0,
 * or -1 if the hash cannot be computed (OpenSSL failure). */
int content_key(const uint8_t *header, size_t len, char key_r[CONTENT_KEY_SIZE]);
/* The same, and the Message-ID the key was made of, normalized for matching an imported
 * one (content_msgid_normalize()). */
int content_key_msgid(const uint8_t *header, size_t len, char key_r[CONTENT_KEY_SIZE],
    char msgid_r[CONTENT_MSGID_MAX]);
/* A Message-ID as matching compares it: whitespace as in step 2 of the recipe, then one
 * pair of surrounding angle brackets and the spaces inside them removed ("<a@b>", "a@b"
 * and "< a@b >" are one id). One of CONTENT_MSGID_MAX octets or more becomes "#" and the
 * hex SHA-256 of it. Writes "" and returns 0 when it is empty; else its length. */
size_t content_msgid_normalize(const char *in, size_t len, char out[CONTENT_MSGID_MAX]);

#endif
