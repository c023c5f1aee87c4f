/* imap/imap_resp.c: the fields of one response line (RFC 3501 §7). Pure, no allocation:
 * every slice points into the line. */
#include <string.h>

#include "imap_resp.h"

static uint8_t
upper(uint8_t c)
{
	return c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
}

bool
imap_slice_eq(const struct slice *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (upper(s->p[i]) != upper((uint8_t)word[i]))
			return false;
	return true;
}

bool
imap_slice_to_u64(const struct slice *s, uint64_t *v_r)
{
	uint64_t v = 0;

	if (s->len == 0 || s->len > 20)
		return false;
	for (size_t i = 0; i < s->len; i++) {
		uint64_t d;

		if (s->p[i] < '0' || s->p[i] > '9')
			return false;
		d = (uint64_t)(s->p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* Next space-delimited word of [*pos, len); advances past one following space. */
static struct slice
next_word(const uint8_t *line, size_t len, size_t *pos)
{
	struct slice w = { line + *pos, 0 };

	while (*pos < len && line[*pos] != ' ') {
		(*pos)++;
		w.len++;
	}
	if (*pos < len)
		(*pos)++;
	return w;
}

static enum imap_status
status_of(const struct slice *w)
{
	static const struct { const char *name; enum imap_status st; } st[] = {
		{ "OK", IMAP_STATUS_OK }, { "NO", IMAP_STATUS_NO }, { "BAD", IMAP_STATUS_BAD },
		{ "BYE", IMAP_STATUS_BYE }, { "PREAUTH", IMAP_STATUS_PREAUTH },
	};

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (imap_slice_eq(w, st[i].name))
			return st[i].st;
	return IMAP_STATUS_NONE;
}

/* resp-text: an optional "[code]" then text. */
static void
resp_text(const uint8_t *line, size_t len, size_t pos, struct imap_resp *r)
{
	if (pos < len && line[pos] == '[') {
		const uint8_t *close = memchr(line + pos, ']', len - pos);

		if (close != NULL) {
			r->code.p = line + pos + 1;
			r->code.len = (size_t)(close - line) - pos - 1;
			pos = (size_t)(close - line) + 1;
			if (pos < len && line[pos] == ' ')
				pos++;
		}
	}
	r->text.p = line + pos;
	r->text.len = len - pos;
}

bool
imap_resp_parse(const uint8_t *line, size_t len, struct imap_resp *r)
{
	struct slice first, w;
	size_t pos = 0;
	uint64_t num;

	memset(r, 0, sizeof(*r));
	r->text.p = r->code.p = r->name.p = r->tag.p = line;
	if (len == 0)
		return false;
	if (line[0] == '+') {
		r->kind = IMAP_RESP_CONTINUE;
		pos = len > 1 && line[1] == ' ' ? 2 : 1;
		resp_text(line, len, pos, r);
		return true;
	}
	first = next_word(line, len, &pos);
	if (first.len == 0)
		return false;
	w = next_word(line, len, &pos);
	if (w.len == 0)
		return false;
	if (first.len == 1 && first.p[0] == '*') {
		r->kind = IMAP_RESP_UNTAGGED;
		if ((r->status = status_of(&w)) != IMAP_STATUS_NONE) {
			resp_text(line, len, pos, r);
			return true;
		}
		if (imap_slice_to_u64(&w, &num)) {	/* "* 5 FETCH (...)" */
			if (num > UINT32_MAX)
				return false;
			r->has_num = true;
			r->num = (uint32_t)num;
			w = next_word(line, len, &pos);
			if (w.len == 0)
				return false;
		}
		r->name = w;
		r->text.p = line + pos;
		r->text.len = len - pos;
		return true;
	}
	r->kind = IMAP_RESP_TAGGED;
	r->tag = first;
	if ((r->status = status_of(&w)) == IMAP_STATUS_NONE || r->status == IMAP_STATUS_BYE ||
	    r->status == IMAP_STATUS_PREAUTH)
		return false;
	resp_text(line, len, pos, r);
	return true;
}

bool
imap_code_is(const struct imap_resp *r, const char *name, struct slice *arg_r)
{
	struct slice first = { r->code.p, 0 };

	while (first.len < r->code.len && r->code.p[first.len] != ' ')
		first.len++;
	if (r->code.len == 0 || !imap_slice_eq(&first, name))
		return false;
	if (arg_r != NULL) {
		size_t skip = first.len < r->code.len ? first.len + 1 : first.len;

		arg_r->p = r->code.p + skip;
		arg_r->len = r->code.len - skip;
	}
	return true;
}

bool
imap_caps_has(const struct slice *caps, const char *cap)
{
	size_t pos = 0;

	while (pos < caps->len) {
		struct slice w = next_word(caps->p, caps->len, &pos);

		if (imap_slice_eq(&w, cap))
			return true;
	}
	return false;
}
