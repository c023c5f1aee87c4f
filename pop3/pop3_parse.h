/* pop3/pop3_parse.h: POP3 command lines (RFC 1939, RFC 2449), parsed from a byte buffer.
 *
 * Pure: no I/O. The parser finds one line in `in` (LF-terminated, CR before LF optional),
 * splits it into an upper-cased verb and up to POP3_ARGS_MAX space-separated arguments, and
 * reports exactly one outcome per call. It never consumes: *consumed_r says how many bytes
 * of `in` the caller drops (buf_consume) once it has used the slices, which point into `in`.
 *
 * Lines longer than the limit (`max` counts the CR LF; an AUTH line may have up to
 * POP3_SASL_LINE_MAX, for XOAUTH2 tokens sent as initial responses) are discarded up to their LF and
 * reported exactly once, as POP3_PARSE_TOO_LONG, by the call that finds that LF. Until then
 * the calls return MORE with *consumed_r covering every buffered byte of it (so it costs no
 * memory however long it runs), and the caller must buf_consume(*consumed_r) after every
 * call, MORE included. A line whose LF never comes is never reported: the caller's own
 * limits (idle timer, byte caps) end that. No byte of a too-long line is ever exposed:
 * before login it may hold a password. */
#ifndef POPGATE_POP3_PARSE_H
#define POPGATE_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/slice.h"

#define POP3_LINE_MAX 255	/* RFC 2449 §4: a command line, CRLF included */
#define POP3_SASL_LINE_MAX 8192	/* RFC 5034 §4: SASL lines (OAuth tokens run to kilobytes) */
#define POP3_ARGS_MAX 2		/* TOP n m is the widest RFC 1939 command */
#define POP3_ARG_MAX 40		/* RFC 2449 §4: each argument up to 40 octets */

enum pop3_cmd_id {
	POP3_CMD_UNKNOWN = 0,
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_APOP, POP3_CMD_AUTH, POP3_CMD_STLS,
	POP3_CMD_CAPA, POP3_CMD_QUIT, POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_UIDL,
	POP3_CMD_RETR, POP3_CMD_TOP, POP3_CMD_DELE, POP3_CMD_RSET, POP3_CMD_NOOP,
	POP3_CMD_UTF8, POP3_CMD_LAST,
};

struct pop3_cmd {
	enum pop3_cmd_id id;
	char verb[8];			/* upper-cased, NUL-terminated; "" if not 1-4
					   letters/digits (id is then UNKNOWN) */
	size_t nargs;			/* arguments split on runs of spaces and tabs */
	struct slice arg[POP3_ARGS_MAX];
	struct slice rest;		/* everything after "VERB " up to CR LF, unsplit:
					   PASS takes its argument whole (RFC 1939 §7, spaces) */
	bool too_many_args;		/* more than POP3_ARGS_MAX arguments were present */
	bool secret;			/* PASS/AUTH: arguments must never be logged */
};

enum pop3_parse_result {
	POP3_PARSE_MORE,	/* no complete line yet: call again when bytes arrive */
	POP3_PARSE_COMMAND,	/* *cmd_r filled; its slices are valid until `in` changes */
	POP3_PARSE_INVALID,	/* empty verb, NUL, or other junk: reply -ERR, continue */
	POP3_PARSE_TOO_LONG,	/* over the limit: discarded up to LF; reply -ERR, continue */
};

struct pop3_parser {
	bool skipping;		/* inside an over-long line, dropping bytes until LF */
};

/* Parses the next command line of `in` no longer than `max` bytes (POP3_LINE_MAX, or
 * POP3_SASL_LINE_MAX while a SASL exchange is going on). *consumed_r is set for every
 * result but MORE (where it may be nonzero too: skipped bytes of an over-long line). */
enum pop3_parse_result
pop3_parse(struct pop3_parser *p, const struct buf *in, size_t max,
    struct pop3_cmd *cmd_r, size_t *consumed_r);

/* Finds one raw line (SASL continuation) the same way, with CR LF stripped. */
enum pop3_parse_result
pop3_parse_raw_line(struct pop3_parser *p, const struct buf *in, size_t max,
    struct slice *line_r, size_t *consumed_r);

/* Reads a message number or line count argument: decimal digits only, no sign, no leading
 * spaces, value 1..UINT32_MAX (or 0.. when allow_zero). Returns false for anything else. */
bool pop3_parse_number(const struct slice *arg, bool allow_zero, uint32_t *n_r);

/* The verb of a command id ("RETR"), for logs and metrics. */
const char *pop3_cmd_name(enum pop3_cmd_id id);

#endif
