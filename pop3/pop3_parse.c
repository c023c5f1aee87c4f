/* pop3/pop3_parse.c: POP3 command lines (RFC 1939 §3, RFC 2449 §4) from a byte buffer.
 * See pop3_parse.h for the contract. Not for: deciding what a command may do (the gateway's
 * command table) or validating arguments beyond splitting them (the handlers do).
 * Pure: no I/O, no allocation, no strlen/sscanf on input: every length comes from memchr. */
#include <strings.h>
#include <string.h>

#include "pop3_parse.h"

static const char *const cmd_names[POP3_CMD_LAST] = {
	[POP3_CMD_UNKNOWN] = "?", [POP3_CMD_USER] = "USER", [POP3_CMD_PASS] = "PASS",
	[POP3_CMD_APOP] = "APOP", [POP3_CMD_AUTH] = "AUTH", [POP3_CMD_STLS] = "STLS",
	[POP3_CMD_CAPA] = "CAPA", [POP3_CMD_QUIT] = "QUIT", [POP3_CMD_STAT] = "STAT",
	[POP3_CMD_LIST] = "LIST", [POP3_CMD_UIDL] = "UIDL", [POP3_CMD_RETR] = "RETR",
	[POP3_CMD_TOP] = "TOP", [POP3_CMD_DELE] = "DELE", [POP3_CMD_RSET] = "RSET",
	[POP3_CMD_NOOP] = "NOOP", [POP3_CMD_UTF8] = "UTF8",
};

const char *
pop3_cmd_name(enum pop3_cmd_id id)
{
	return id < POP3_CMD_LAST && cmd_names[id] != NULL ? cmd_names[id] : "?";
}

/* Finds the next line. MORE: no LF yet within the limit. TOO_LONG: an over-long line was
 * dropped (reported once, when its LF arrives, so the -ERR comes after the client has
 * finished sending it and replies stay in order). Skipped bytes are in *consumed_r.
 * The LF is searched in all of `in`, not just the first `max` bytes: if it is already
 * there, TOO_LONG must come now, since no more bytes may ever arrive to call us again. */
static enum pop3_parse_result
find_line(struct pop3_parser *p, const struct buf *in, size_t max, size_t *len_r,
    size_t *consumed_r)
{
	const uint8_t *data = buf_data(in);
	size_t avail = buf_len(in);
	const uint8_t *lf = memchr(data, '\n', avail);

	*consumed_r = 0;
	if (p->skipping) {
		if (lf == NULL) {
			*consumed_r = avail;	/* drop it all: never exposed */
			return POP3_PARSE_MORE;
		}
		*consumed_r = (size_t)(lf - data) + 1;
		p->skipping = false;
		return POP3_PARSE_TOO_LONG;
	}
	if (lf == NULL) {
		/* `max` counts the LF: max bytes without one cannot become a line that fits. */
		if (avail >= max) {
			p->skipping = true;
			*consumed_r = avail;
		}
		return POP3_PARSE_MORE;
	}
	*consumed_r = (size_t)(lf - data) + 1;
	if (*consumed_r > max)
		return POP3_PARSE_TOO_LONG;
	*len_r = (size_t)(lf - data);
	if (*len_r > 0 && data[*len_r - 1] == '\r')
		(*len_r)--;
	return POP3_PARSE_COMMAND;
}

static enum pop3_cmd_id
lookup(const char *verb)
{
	for (int id = POP3_CMD_USER; id < POP3_CMD_LAST; id++)
		if (strcmp(verb, cmd_names[id]) == 0)
			return (enum pop3_cmd_id)id;
	return POP3_CMD_UNKNOWN;
}

/* RFC 5034 §4 has a client whose initial response would make AUTH longer than 255
 * octets send it in a continuation instead; XOAUTH2 clients often put a token of
 * kilobytes on the AUTH line anyway (Dovecot takes it). Be liberal: an AUTH line may be as
 * long as a SASL line. Decided on the first bytes, so an over-long line that is not AUTH
 * is still dropped without being buffered. */
static size_t
line_limit(const struct pop3_parser *p, const struct buf *in, size_t max)
{
	if (!p->skipping && max < POP3_SASL_LINE_MAX && buf_len(in) >= 5 &&
	    strncasecmp((const char *)buf_data(in), "AUTH ", 5) == 0)
		return POP3_SASL_LINE_MAX;
	return max;
}

enum pop3_parse_result
pop3_parse(struct pop3_parser *p, const struct buf *in, size_t max, struct pop3_cmd *cmd_r,
    size_t *consumed_r)
{
	enum pop3_parse_result r;
	const uint8_t *line;
	size_t len = 0, i = 0, vlen = 0;

	r = find_line(p, in, line_limit(p, in, max), &len, consumed_r);
	if (r != POP3_PARSE_COMMAND)
		return r;
	line = buf_data(in);
	memset(cmd_r, 0, sizeof(*cmd_r));
	if (len == 0 || memchr(line, '\0', len) != NULL)
		return POP3_PARSE_INVALID;
	/* The verb: up to the first space (RFC 1939 §3: 3-4 characters, any case). Letters
	 * and digits: RFC 6856's UTF8 has one. Anything else cannot be a verb we know. */
	while (i < len && line[i] != ' ') {
		uint8_t c = line[i];

		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) || vlen >= 4)
			vlen = sizeof(cmd_r->verb);	/* not a verb we know */
		else
			cmd_r->verb[vlen++] = (char)c;
		i++;
	}
	if (i == 0)
		return POP3_PARSE_INVALID;	/* leading space */
	if (vlen < sizeof(cmd_r->verb))
		cmd_r->id = lookup(cmd_r->verb);
	else
		cmd_r->verb[0] = '\0';
	cmd_r->secret = cmd_r->id == POP3_CMD_PASS || cmd_r->id == POP3_CMD_AUTH;
	if (i < len) {		/* one space, then the rest unsplit */
		cmd_r->rest.p = line + i + 1;
		cmd_r->rest.len = len - i - 1;
	} else {
		cmd_r->rest.p = line + len;
	}
	while (i < len) {
		size_t start;

		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (cmd_r->nargs == POP3_ARGS_MAX) {
			cmd_r->too_many_args = true;
			break;
		}
		cmd_r->arg[cmd_r->nargs].p = line + start;
		cmd_r->arg[cmd_r->nargs].len = i - start;
		cmd_r->nargs++;
	}
	return POP3_PARSE_COMMAND;
}

enum pop3_parse_result
pop3_parse_raw_line(struct pop3_parser *p, const struct buf *in, size_t max,
    struct slice *line_r, size_t *consumed_r)
{
	size_t len = 0;
	enum pop3_parse_result r = find_line(p, in, max, &len, consumed_r);

	if (r != POP3_PARSE_COMMAND)
		return r;
	line_r->p = buf_data(in);
	line_r->len = len;
	if (memchr(line_r->p, '\0', len) != NULL)
		return POP3_PARSE_INVALID;
	return POP3_PARSE_COMMAND;
}

bool
pop3_parse_number(const struct slice *arg, bool allow_zero, uint32_t *n_r)
{
	uint32_t v = 0;

	if (arg->len == 0)
		return false;
	for (size_t i = 0; i < arg->len; i++) {
		uint32_t digit;

		if (arg->p[i] < '0' || arg->p[i] > '9')
			return false;
		digit = (uint32_t)(arg->p[i] - '0');
		if (v > (UINT32_MAX - digit) / 10)
			return false;		/* checked before it can wrap */
		v = v * 10 + digit;
	}
	if (v == 0 && !allow_zero)
		return false;
	*n_r = v;
	return true;
}
