/* imap/imap_fetch.c: the attributes of an untagged FETCH response (RFC 3501 §7.4.2,
 * RFC 9051 §7.5.2), on a complete line or on the line so far before a literal. See
 * imap_fetch.h. Not for: which attribute popgate wants (gateway/retr.c decides).
 * Pure, no allocation: every slice points into the caller's text. */
#include <string.h>

#include "imap_fetch.h"

#define LITERAL_DIGITS_MAX 20

void
imap_fetch_iter_init(struct imap_fetch_iter *it, const struct slice *text)
{
	it->p = text->p;
	it->len = text->len;
	it->pos = 0;
	it->started = false;
}

/* An attribute name: up to a space outside [ ]. Inside the brackets a section may hold a
 * parenthesised header list with quoted names (BODY[HEADER.FIELDS ("X A")]). Returns the
 * end of the name, or len if the text stops first; *bad_r for a character no name has. */
static size_t
scan_name(const uint8_t *p, size_t len, size_t i, bool *bad_r)
{
	int bracket = 0;
	bool quoted = false;

	*bad_r = false;
	for (; i < len; i++) {
		uint8_t c = p[i];

		if (quoted) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quoted = false;
		} else if (bracket > 0) {
			if (c == '"')
				quoted = true;
			else if (c == '[')
				bracket++;
			else if (c == ']')
				bracket--;
		} else if (c == '[') {
			bracket++;
		} else if (c == ' ') {
			return i;
		} else if (c == '(' || c == ')' || c == '"' || c == '{' || c < 0x20 || c == 0x7f) {
			*bad_r = true;
			return i;
		}
	}
	return len;
}

/* A quoted string starting at p[i] == '"': true with the index after its closing quote in
 * *end_r, false if the text stops first. */
static bool
scan_quoted(const uint8_t *p, size_t len, size_t i, size_t *end_r, bool *escaped_r)
{
	for (i++; i < len; i++) {
		if (p[i] == '\\') {
			*escaped_r = true;
			if (++i == len)
				return false;
		} else if (p[i] == '"') {
			*end_r = i + 1;
			return true;
		}
	}
	return false;
}

/* A list starting at p[i] == '(': true with the index after its closing ")", false if the
 * text stops first. Quoted strings inside may hold parentheses; literal markers inside are
 * text (their bytes are elided). */
static bool
scan_list(const uint8_t *p, size_t len, size_t i, size_t *end_r)
{
	size_t depth = 0;
	bool esc = false;

	while (i < len) {
		if (p[i] == '"') {
			if (!scan_quoted(p, len, i, &i, &esc))
				return false;
			continue;
		}
		if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && --depth == 0) {
			*end_r = i + 1;
			return true;
		}
		i++;
	}
	return false;
}

/* A literal marker "{n}", "{n+}" or "~{n}" at p[i]: 1 with the index after it, 0 if the
 * text stops inside it, -1 if malformed. */
static int
scan_literal(const uint8_t *p, size_t len, size_t i, size_t *end_r, uint64_t *size_r)
{
	struct slice digits;

	if (p[i] == '~')
		i++;
	if (i == len)
		return 0;
	if (p[i] != '{')
		return -1;
	digits.p = p + ++i;
	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	digits.len = (size_t)(p + i - digits.p);
	if (i < len && p[i] == '+')
		i++;
	if (i == len)
		return 0;
	if (p[i] != '}' || digits.len > LITERAL_DIGITS_MAX || !imap_slice_to_u64(&digits, size_r))
		return -1;
	*end_r = i + 1;
	return 1;
}

/* One value at p[i] (i < len). Returns the step: ATT with the value's end in *end_r, CUT if
 * the text stops inside the value, INVALID. */
static enum imap_fetch_step
scan_value(const uint8_t *p, size_t len, size_t i, struct imap_fetch_att *att, size_t *end_r)
{
	size_t end;

	att->value.p = p + i;
	if (p[i] == '"') {
		if (!scan_quoted(p, len, i, &end, &att->escaped))
			return IMAP_FETCH_CUT;
		att->kind = IMAP_VALUE_QUOTED;
		att->value.p = p + i + 1;
		att->value.len = end - i - 2;
	} else if (p[i] == '(') {
		if (!scan_list(p, len, i, &end))
			return IMAP_FETCH_CUT;
		att->kind = IMAP_VALUE_LIST;
		att->value.len = end - i;
	} else if (p[i] == '{' || p[i] == '~') {
		int m = scan_literal(p, len, i, &end, &att->literal_size);

		if (m <= 0)
			return m == 0 ? IMAP_FETCH_CUT : IMAP_FETCH_INVALID;
		att->kind = IMAP_VALUE_LITERAL;
		att->value.len = end - i;
	} else {
		for (end = i; end < len && p[end] != ' ' && p[end] != ')' && p[end] != '(' &&
		    p[end] != '"'; end++)
			;
		if (end == i)
			return IMAP_FETCH_INVALID;
		if (end == len)
			return IMAP_FETCH_CUT;	/* the atom may go on in bytes not here yet */
		att->value.len = end - i;
		att->kind = imap_slice_eq(&att->value, "NIL") ? IMAP_VALUE_NIL : IMAP_VALUE_ATOM;
	}
	*end_r = end;
	return IMAP_FETCH_ATT;
}

enum imap_fetch_step
imap_fetch_next(struct imap_fetch_iter *it, struct imap_fetch_att *att_r)
{
	const uint8_t *p = it->p;
	size_t len = it->len, end;
	enum imap_fetch_step step;
	bool bad;

	memset(att_r, 0, sizeof(*att_r));
	if (!it->started) {
		if (len == 0)
			return IMAP_FETCH_INVALID;
		if (p[0] != '(')
			return IMAP_FETCH_INVALID;
		it->started = true;
		it->pos = 1;
	}
	if (it->pos >= len)
		return IMAP_FETCH_CUT;
	if (p[it->pos] == ')') {
		if (it->pos + 1 != len)
			return IMAP_FETCH_INVALID;	/* bytes after the list */
		it->pos = len;
		it->len = 0;			/* END once */
		return IMAP_FETCH_END;
	}
	end = scan_name(p, len, it->pos, &bad);
	if (bad || end == it->pos)
		return IMAP_FETCH_INVALID;
	if (end == len || end + 1 == len)
		return IMAP_FETCH_CUT;
	att_r->name.p = p + it->pos;
	att_r->name.len = end - it->pos;
	if ((step = scan_value(p, len, end + 1, att_r, &end)) != IMAP_FETCH_ATT)
		return step;
	/* After a value: a space and the next attribute, the list's ")", or (a line so far)
	 * the end of the text. */
	if (end < len && p[end] != ' ' && p[end] != ')')
		return IMAP_FETCH_INVALID;
	it->pos = end < len && p[end] == ' ' ? end + 1 : end;
	return IMAP_FETCH_ATT;
}

static bool
prefix_is(const struct slice *s, size_t *pos, const char *word)
{
	struct slice w = { s->p + *pos, strlen(word) };

	if (s->len - *pos < w.len || !imap_slice_eq(&w, word))
		return false;
	*pos += w.len;
	return true;
}

enum imap_section_part
imap_section_parse(const struct slice *name, struct imap_section *s_r)
{
	struct slice sec, origin;
	size_t pos = 0, close;

	memset(s_r, 0, sizeof(*s_r));
	if (prefix_is(name, &pos, "BINARY["))
		s_r->binary = true;
	else if (!prefix_is(name, &pos, "BODY["))
		return IMAP_SECTION_OTHER;
	for (close = pos; close < name->len && name->p[close] != ']'; close++)
		;
	if (close == name->len)
		return IMAP_SECTION_OTHER;
	sec.p = name->p + pos;
	sec.len = close - pos;
	pos = close + 1;
	if (pos < name->len) {
		if (name->p[pos] != '<' || name->p[name->len - 1] != '>')
			return IMAP_SECTION_OTHER;
		origin.p = name->p + pos + 1;
		origin.len = name->len - pos - 2;
		if (name->len - pos < 3 || !imap_slice_to_u64(&origin, &s_r->origin))
			return IMAP_SECTION_OTHER;
		s_r->has_origin = true;
	}
	if (sec.len == 0)
		s_r->part = IMAP_SECTION_ALL;
	else if (!s_r->binary && imap_slice_eq(&sec, "HEADER"))
		s_r->part = IMAP_SECTION_HEADER;
	else if (!s_r->binary && imap_slice_eq(&sec, "TEXT"))
		s_r->part = IMAP_SECTION_TEXT;
	return s_r->part;
}

/* "UID 7": the UID, if the attribute is one and well-formed. */
static bool
att_uid(const struct imap_fetch_att *att, uint32_t *uid_r)
{
	uint64_t v;

	if (!imap_slice_eq(&att->name, "UID") || att->kind != IMAP_VALUE_ATOM ||
	    !imap_slice_to_u64(&att->value, &v) || v == 0 || v > UINT32_MAX)
		return false;
	*uid_r = (uint32_t)v;
	return true;
}

/* "* n FETCH ": the response, its number and its text. */
static bool
fetch_resp(const uint8_t *line, size_t len, struct imap_resp *r)
{
	return imap_resp_parse(line, len, r) && r->kind == IMAP_RESP_UNTAGGED &&
	    r->status == IMAP_STATUS_NONE && r->has_num && imap_slice_eq(&r->name, "FETCH");
}

enum imap_fetch_head_result
imap_fetch_head(const uint8_t *line, size_t len, struct imap_fetch_head *h_r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att, last;
	struct imap_resp r;
	bool have_last = false;

	memset(h_r, 0, sizeof(*h_r));
	if (!fetch_resp(line, len, &r))
		return IMAP_FETCH_HEAD_OTHER;
	h_r->seq = r.num;
	imap_fetch_iter_init(&it, &r.text);
	for (;;) {
		switch (imap_fetch_next(&it, &att)) {
		case IMAP_FETCH_ATT:
			if (!h_r->has_uid && att_uid(&att, &h_r->uid))
				h_r->has_uid = true;
			last = att;
			have_last = true;
			continue;
		case IMAP_FETCH_CUT:
			/* The literal is an item's data only if it is the last attribute's whole
			 * value, ending where the line so far ends. */
			if (!have_last || last.kind != IMAP_VALUE_LITERAL ||
			    last.value.p + last.value.len != line + len)
				return IMAP_FETCH_HEAD_NESTED;
			if (imap_slice_eq(&last.name, "UID"))	/* "UID {1}": not a number */
				return IMAP_FETCH_HEAD_INVALID;
			h_r->name = last.name;
			imap_section_parse(&last.name, &h_r->section);
			return IMAP_FETCH_HEAD_ITEM;
		case IMAP_FETCH_END:		/* the list closed before the marker */
		case IMAP_FETCH_INVALID:
			return IMAP_FETCH_HEAD_INVALID;
		}
	}
}

bool
imap_fetch_line(const uint8_t *line, size_t len, uint32_t *seq_r, struct imap_fetch_iter *it_r)
{
	struct imap_resp r;

	if (!fetch_resp(line, len, &r))
		return false;
	*seq_r = r.num;
	imap_fetch_iter_init(it_r, &r.text);
	return true;
}

bool
imap_fetch_uid(const struct slice *text, uint32_t *uid_r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	enum imap_fetch_step step;
	bool found = false;
	uint32_t uid;

	imap_fetch_iter_init(&it, text);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT)
		if (!found && att_uid(&att, &uid))
			found = true;
	if (step != IMAP_FETCH_END || !found)
		return false;
	*uid_r = uid;
	return true;
}

bool
imap_section_is(const struct imap_section *got, const struct imap_section *want)
{
	return got->part == want->part && want->part != IMAP_SECTION_OTHER &&
	    got->binary == want->binary && got->has_origin == want->has_origin &&
	    (!want->has_origin || got->origin == want->origin);
}

bool
imap_fetch_find_section(const struct slice *text, const struct imap_section *want,
    struct imap_fetch_att *att_r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	struct imap_section sec;
	enum imap_fetch_step step;
	bool found = false;

	imap_fetch_iter_init(&it, text);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		if (found)
			continue;
		imap_section_parse(&att.name, &sec);
		if (!imap_section_is(&sec, want))
			continue;
		*att_r = att;
		found = true;
	}
	return step == IMAP_FETCH_END && found;
}

bool
imap_fetch_find(const struct slice *text, const char *name, struct imap_fetch_att *att_r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att;

	imap_fetch_iter_init(&it, text);
	while (imap_fetch_next(&it, &att) == IMAP_FETCH_ATT) {
		if (imap_slice_eq(&att.name, name)) {
			*att_r = att;
			return true;
		}
	}
	return false;
}

bool
imap_fetch_number(const struct slice *text, const char *name, uint64_t *v_r)
{
	struct imap_fetch_att att;

	return imap_fetch_find(text, name, &att) && att.kind == IMAP_VALUE_ATOM &&
	    imap_slice_to_u64(&att.value, v_r);
}

bool
imap_quoted_next(struct slice *rest, struct slice *piece_r)
{
	size_t start = 0, end;

	if (rest->len == 0)
		return false;
	if (rest->p[0] == '\\' && rest->len > 1)
		start = 1;		/* the escaped character starts the run */
	for (end = start + 1; end < rest->len && rest->p[end] != '\\'; end++)
		;
	piece_r->p = rest->p + start;
	piece_r->len = end - start;
	rest->p += end;
	rest->len -= end;
	return true;
}
