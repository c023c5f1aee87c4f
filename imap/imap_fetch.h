/* imap/imap_fetch.h: the attributes of an untagged FETCH response (RFC 3501 §7.4.2,
 * RFC 9051 §7.5.2), read so that message data is matched by UID and item, never by the
 * order in which responses arrive.
 *
 * Two shapes of input, both as imap_parse.h hands them out (no CRLF, literal bytes elided,
 * their "{n}" markers left in place):
 *   - the line so far at IMAP_PARSE_LITERAL: "* 3 FETCH (UID 7 BODY[] {1200}"; the literal
 *     about to stream is the value of the last attribute, or lies inside one (ENVELOPE);
 *   - a complete line at IMAP_PARSE_LINE: "* 3 FETCH (BODY[] {1200} UID 7)".
 * Attributes come in any order; values are atoms/numbers, NIL, quoted strings (spaces,
 * parentheses and braces inside them are text), literal markers, or parenthesised lists
 * (nested, quoted strings and markers inside).
 *
 * Pure, no allocation: every slice points into the caller's text and lives as long as it. */
#ifndef POPGATE_IMAP_FETCH_H
#define POPGATE_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_resp.h"

enum imap_value_kind {
	IMAP_VALUE_ATOM,	/* a number or atom: "7", "\Seen" */
	IMAP_VALUE_NIL,
	IMAP_VALUE_QUOTED,	/* value: between the quotes, escapes still in (see `escaped`) */
	IMAP_VALUE_LITERAL,	/* value: the marker "{n}", "{n+}" or "~{n}" (RFC 3516) */
	IMAP_VALUE_LIST,	/* value: "( ... )", parentheses included */
};

struct imap_fetch_att {
	struct slice name;		/* as sent: "UID", "FLAGS", "BODY[TEXT]<0>" */
	enum imap_value_kind kind;
	struct slice value;
	bool escaped;			/* QUOTED: holds backslash escapes */
	uint64_t literal_size;		/* LITERAL */
};

/* Walks the msg-att list "(name value name value ...)" of one FETCH response. */
struct imap_fetch_iter {
	const uint8_t *p;
	size_t len, pos;
	bool started;
};

enum imap_fetch_step {
	IMAP_FETCH_ATT,		/* *att_r is the next attribute */
	IMAP_FETCH_END,		/* the list's ")" closed the text: every attribute was seen */
	IMAP_FETCH_CUT,		/* the text stops inside the list (a line so far): no more
				   attributes; a partial one is not handed out */
	IMAP_FETCH_INVALID,	/* not a msg-att list: stop */
};

/* text: the part of the line after "FETCH ", starting at "(" (imap_resp's r->text). */
void imap_fetch_iter_init(struct imap_fetch_iter *it, const struct slice *text);
enum imap_fetch_step imap_fetch_next(struct imap_fetch_iter *it, struct imap_fetch_att *att_r);

/* The body sections popgate asks for. */
enum imap_section_part {
	IMAP_SECTION_OTHER,	/* anything else: BODY[1], BODY[HEADER.FIELDS (...)], UID, ... */
	IMAP_SECTION_ALL,	/* BODY[] or BINARY[] */
	IMAP_SECTION_HEADER,	/* BODY[HEADER] */
	IMAP_SECTION_TEXT,	/* BODY[TEXT] */
};

struct imap_section {
	enum imap_section_part part;
	bool binary;		/* BINARY[] (RFC 3516) */
	bool has_origin;	/* "<origin>" of a partial fetch followed the section */
	uint64_t origin;
};

/* Reads an attribute name such as "BODY[TEXT]<4096>" (case-insensitive). Returns the part;
 * IMAP_SECTION_OTHER also for a malformed origin. */
enum imap_section_part imap_section_parse(const struct slice *name, struct imap_section *s_r);

/* True when `got` (an answer's attribute name, as read by imap_section_parse()) is the item
 * `want` asked for: the same part and kind, and the same origin for a partial fetch (a
 * window of another command has another origin; an answer to a whole-item fetch has none).
 * IMAP_SECTION_OTHER matches nothing. */
bool imap_section_is(const struct imap_section *got, const struct imap_section *want);

/* What precedes a literal: the line so far at IMAP_PARSE_LITERAL. */
struct imap_fetch_head {
	uint32_t seq;		/* the message sequence number */
	bool has_uid;		/* a UID attribute came before the literal */
	uint32_t uid;
	struct slice name;	/* the attribute whose value the literal is */
	struct imap_section section;
};

enum imap_fetch_head_result {
	IMAP_FETCH_HEAD_ITEM,	/* the literal is the value of top-level attribute h_r->name */
	IMAP_FETCH_HEAD_NESTED,	/* a FETCH, but the literal lies inside a value (ENVELOPE,
				   BODYSTRUCTURE) or a quoted string: not an item's data */
	IMAP_FETCH_HEAD_OTHER,	/* not an untagged FETCH response */
	IMAP_FETCH_HEAD_INVALID,/* a FETCH whose attributes cannot be read */
};

/* line: the line so far, ending in the literal's marker. Fills *h_r for ITEM and NESTED
 * (seq, has_uid/uid as far as read). */
enum imap_fetch_head_result imap_fetch_head(const uint8_t *line, size_t len,
    struct imap_fetch_head *h_r);

/* A complete line "* n FETCH (...)": true with *seq_r and the iterator over its attributes,
 * false if it is not an untagged FETCH. */
bool imap_fetch_line(const uint8_t *line, size_t len, uint32_t *seq_r, struct imap_fetch_iter *it_r);

/* The attribute list's UID (RFC 3501 §6.4.8: every UID FETCH answer carries one).
 * Returns false if absent, not a number in 1..2^32-1, or the list cannot be read. */
bool imap_fetch_uid(const struct slice *text, uint32_t *uid_r);

/* The first attribute of a complete list (text as for imap_fetch_iter_init) whose name is
 * the section `want` (part, and origin when want->has_origin; without, the answer must
 * have none either). Returns false if there is none or the list cannot be read. */
bool imap_fetch_find_section(const struct slice *text, const struct imap_section *want,
    struct imap_fetch_att *att_r);

/* The first top-level attribute named `name` (case-insensitive) of a complete list: true
 * with *att_r, false if there is none before the list ends or stops being readable. Items
 * inside values (FLAGS (UID), a quoted "UID 5") are never taken for attributes. */
bool imap_fetch_find(const struct slice *text, const char *name, struct imap_fetch_att *att_r);
/* The same attribute read as a number ("UID 7", "RFC822.SIZE 1200"): false if absent or
 * its value is not an unsigned decimal. */
bool imap_fetch_number(const struct slice *text, const char *name, uint64_t *v_r);

/* Unescaping a quoted value piece by piece, without a copy: each call gives the next run
 * of content bytes in *piece_r (an escaped character starts a run) and advances *rest.
 * Returns false when *rest is empty. Start with *rest = att.value. */
bool imap_quoted_next(struct slice *rest, struct slice *piece_r);

#endif
