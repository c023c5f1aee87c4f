/* imap/imap_resp.h: reading the fields popgate needs out of one complete response line
 * (as handed out by imap_parse.h: no CRLF, literals elided). Pure, no allocation: every
 * slice points into the line. */
#ifndef POPGATE_IMAP_RESP_H
#define POPGATE_IMAP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/slice.h"

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED,	/* "* ..." */
	IMAP_RESP_TAGGED,	/* "A12 OK ..." */
	IMAP_RESP_CONTINUE,	/* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE,	/* a data response: "* 3 FETCH", "* CAPABILITY ..." */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_resp {
	enum imap_resp_kind kind;
	struct slice tag;		/* TAGGED only */
	enum imap_status status;
	bool has_num;
	uint32_t num;			/* "* 5 EXISTS" / "* 5 FETCH" / "* 5 EXPUNGE": 5 */
	struct slice name;		/* data responses: "FETCH", "CAPABILITY", "FLAGS", ... upper-cased compare */
	struct slice code;		/* status responses: inside [ ], e.g. "UIDVALIDITY 3857529045" */
	struct slice text;		/* the rest: after the code for status, after the name for data */
};

/* Splits a line. Returns false if it is not a well-formed response. */
bool imap_resp_parse(const uint8_t *line, size_t len, struct imap_resp *r);

/* Case-insensitive compare of a slice with a NUL-terminated ASCII word. */
bool imap_slice_eq(const struct slice *s, const char *word);

/* In a response code "UIDVALIDITY 38575" or a code's first word ("AUTHENTICATIONFAILED"):
 * true if the code's first word is `name`; *arg_r gets the rest (may be empty). */
bool imap_code_is(const struct imap_resp *r, const char *name, struct slice *arg_r);

/* True if a space-separated capability list contains `cap` (case-insensitive, whole word).
 * Works on "CAPABILITY IMAP4rev1 LITERAL+ ..." codes and on "* CAPABILITY" text alike. */
bool imap_caps_has(const struct slice *caps, const char *cap);

/* Reads an unsigned decimal (no sign, at most 20 digits, no overflow). */
bool imap_slice_to_u64(const struct slice *s, uint64_t *v_r);

#endif
