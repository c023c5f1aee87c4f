/* tests/fuzz/fuzz_pop3_parse.c: the POP3 command parser (pop3/pop3_parse.c) under libFuzzer.
 *
 * Input: byte 0 picks where the rest is cut in two; the rest is the client's byte stream.
 * Each of four set-ups (command lines at RFC 2449's 255 and at a tiny limit that makes
 * most lines too long; SASL raw lines at their limit and at the tiny one) is run on the
 * whole stream, on the two pieces, and byte by byte, as the gateway does: parse, consume,
 * repeat until MORE. Aborts when the three runs disagree, when a result breaks the
 * contract (slices outside the line, a verb not upper-case, more bytes consumed than
 * buffered, a step that neither consumes nor waits), or when an over-long line's bytes
 * stay buffered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/fuzz/fuzz_common.h"
#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TINY_MAX 8

/* What came out, flattened: a result byte, then for a command its fields. */
struct record {
	struct buf b;
};

static void
rec_slice(struct record *r, const struct slice *s)
{
	uint32_t len = (uint32_t)s->len;

	buf_append(&r->b, &len, sizeof(len));
	buf_append(&r->b, s->p, s->len);
}

static void
check_slice(const struct slice *s, const uint8_t *line, size_t consumed)
{
	if (s->p == NULL || s->p < line || s->p + s->len > line + consumed)
		abort();
	if (memchr(s->p, '\n', s->len) != NULL)
		abort();
}

/* The limit the parser applies to the line at the start of `in`: an AUTH command line may
 * run to POP3_SASL_LINE_MAX (XOAUTH2 tokens on the AUTH line), any other to `max`. */
static size_t
line_limit(bool raw, const struct buf *in, size_t max)
{
	if (!raw && max < POP3_SASL_LINE_MAX && buf_len(in) >= 5 &&
	    strncasecmp((const char *)buf_data(in), "AUTH ", 5) == 0)
		return POP3_SASL_LINE_MAX;
	return max;
}

static void
run(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts, bool raw, size_t max,
    struct record *rec)
{
	struct pop3_parser p = { 0 };
	struct buf in = { 0 };
	size_t from = 0;

	buf_set_max(&in, size + 16);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : size;

		buf_append(&in, data + from, to - from);
		from = to;
		for (;;) {
			struct pop3_cmd cmd;
			struct slice line;
			size_t consumed = (size_t)-1, avail = buf_len(&in);
			const uint8_t *start = buf_data(&in);
			enum pop3_parse_result r;
			size_t limit = line_limit(raw, &in, max);
			uint8_t tag;

			r = raw ? pop3_parse_raw_line(&p, &in, max, &line, &consumed) :
			    pop3_parse(&p, &in, max, &cmd, &consumed);
			if (consumed > avail)
				abort();
			if (r != POP3_PARSE_MORE && consumed == 0)
				abort();		/* would loop for ever */
			if (r != POP3_PARSE_MORE && start[consumed - 1] != '\n')
				abort();		/* a result ends at an LF */
			if (r == POP3_PARSE_COMMAND && consumed > limit)
				abort();
			tag = (uint8_t)r;
			if (r != POP3_PARSE_MORE)
				buf_append(&rec->b, &tag, 1);
			if (r == POP3_PARSE_COMMAND && raw) {
				check_slice(&line, start, consumed);
				rec_slice(rec, &line);
			} else if (r == POP3_PARSE_COMMAND) {
				size_t vlen = strnlen(cmd.verb, sizeof(cmd.verb));

				if (vlen > 4 || (cmd.id != POP3_CMD_UNKNOWN &&
				    strcmp(cmd.verb, pop3_cmd_name(cmd.id)) != 0))
					abort();
				for (size_t i = 0; i < vlen; i++)
					if (!((cmd.verb[i] >= 'A' && cmd.verb[i] <= 'Z') ||
					    (cmd.verb[i] >= '0' && cmd.verb[i] <= '9')))
						abort();
				if (cmd.nargs > POP3_ARGS_MAX ||
				    (cmd.too_many_args && cmd.nargs != POP3_ARGS_MAX))
					abort();
				if (cmd.secret != (cmd.id == POP3_CMD_PASS || cmd.id == POP3_CMD_AUTH))
					abort();
				buf_append(&rec->b, &cmd.id, sizeof(cmd.id));
				buf_append(&rec->b, cmd.verb, sizeof(cmd.verb));
				buf_append(&rec->b, &cmd.too_many_args, 1);
				for (size_t i = 0; i < cmd.nargs; i++) {
					check_slice(&cmd.arg[i], start, consumed);
					if (cmd.arg[i].len == 0 ||
					    memchr(cmd.arg[i].p, ' ', cmd.arg[i].len) != NULL)
						abort();
					rec_slice(rec, &cmd.arg[i]);
				}
				check_slice(&cmd.rest, start, consumed);
				rec_slice(rec, &cmd.rest);
			}
			buf_consume(&in, consumed);
			if (r == POP3_PARSE_MORE)
				break;
		}
		/* Waiting for more: what is left is one partial line that may still fit. */
		if (buf_len(&in) >= line_limit(raw, &in, max) || memchr(buf_data(&in), '\n', buf_len(&in)) != NULL)
			abort();
	}
	if (in.failed)
		abort();
	buf_free(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		bool raw;
		size_t max;
	} setups[] = {
		{ false, POP3_LINE_MAX }, { false, TINY_MAX },
		{ true, POP3_SASL_LINE_MAX }, { true, TINY_MAX },
	};
	size_t cut, *each;

	if (size == 0)
		return 0;
	cut = data[0] % size;			/* 0 .. size - 1 bytes of the rest */
	data++;
	size--;
	if ((each = malloc((size + 1) * sizeof(*each))) == NULL)
		return 0;
	for (size_t i = 0; i < size; i++)
		each[i] = i + 1;
	for (size_t s = 0; s < sizeof(setups) / sizeof(setups[0]); s++) {
		struct record whole = { { 0 } }, two = { { 0 } }, bytes = { { 0 } };

		buf_set_max(&whole.b, 64 * size + 64);
		buf_set_max(&two.b, 64 * size + 64);
		buf_set_max(&bytes.b, 64 * size + 64);
		run(data, size, NULL, 0, setups[s].raw, setups[s].max, &whole);
		run(data, size, &cut, 1, setups[s].raw, setups[s].max, &two);
		run(data, size, each, size ? size - 1 : 0, setups[s].raw, setups[s].max, &bytes);
		if (whole.b.failed)
			abort();
		fuzz_same_or_abort(&whole.b, &two.b);
		fuzz_same_or_abort(&whole.b, &bytes.b);
		buf_free(&whole.b);
		buf_free(&two.b);
		buf_free(&bytes.b);
	}
	free(each);
	return 0;
}
