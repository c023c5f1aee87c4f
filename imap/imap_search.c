/* imap/imap_search.c: SEARCH and ESEARCH answers (RFC 3501 §7.2.5, RFC 4731 §3.1, RFC 9051
 * §7.3.4); see imap_search.h. Pure: every slice points into the response line. */
#include <string.h>

#include "imap_search.h"

struct cursor {
	const uint8_t *p;
	size_t len, pos;
};

static bool
at_end(const struct cursor *c)
{
	return c->pos >= c->len;
}

/* Servers differ in spaces at the end ("* SEARCH " for no match): any run is one separator. */
static void
skip_spaces(struct cursor *c)
{
	while (c->pos < c->len && c->p[c->pos] == ' ')
		c->pos++;
}

/* The next run of bytes up to a space (or the end). */
static struct slice
word(struct cursor *c)
{
	struct slice w = { c->p + c->pos, 0 };

	while (c->pos < c->len && c->p[c->pos] != ' ')
		c->pos++, w.len++;
	return w;
}

/* nz-number (RFC 3501): 1 .. 2^32-1, no leading zero. */
static bool
nz_number(const uint8_t *p, size_t len, uint32_t *v_r)
{
	struct slice s = { p, len };
	uint64_t v;

	if (len == 0 || p[0] == '0' || !imap_slice_to_u64(&s, &v) || v > UINT32_MAX)
		return false;
	*v_r = (uint32_t)v;
	return true;
}

/* sequence-set (RFC 9051): ranges "a", "a:b" (either order) separated by commas. "*" has no
 * meaning in an answer and is refused. */
static bool
sequence_set(const struct slice *set, imap_search_range_fn *fn, void *ctx)
{
	size_t i = 0;

	if (set->len == 0)
		return false;
	while (i <= set->len) {
		size_t start = i, colon = 0;
		uint32_t lo, hi;

		while (i < set->len && set->p[i] != ',') {
			if (set->p[i] == ':') {
				if (colon != 0)
					return false;
				colon = i;
			}
			i++;
		}
		if (colon == 0) {
			if (!nz_number(set->p + start, i - start, &lo))
				return false;
			hi = lo;
		} else if (!nz_number(set->p + start, colon - start, &lo) ||
		    !nz_number(set->p + colon + 1, i - colon - 1, &hi)) {
			return false;
		}
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (!fn(ctx, lo, hi))
			return false;
		i++;		/* past the comma, or past the end */
	}
	return true;
}

/* "* SEARCH 2 84 882": numbers, nothing else. */
static bool
parse_search(struct cursor *c, imap_search_range_fn *fn, void *ctx)
{
	skip_spaces(c);
	while (!at_end(c)) {
		struct slice w = word(c);
		uint32_t v;

		if (!nz_number(w.p, w.len, &v) || !fn(ctx, v, v))
			return false;
		skip_spaces(c);
	}
	return true;
}

/* search-correlator: "(TAG " tag-string ")", tag-string a quoted string. A literal here
 * would have had its bytes elided by the line reader: not comparable, so not accepted. */
static bool
parse_correlator(struct cursor *c, struct slice *tag_r)
{
	static const char open[] = "(TAG \"";
	size_t n = sizeof(open) - 1;

	if (c->len - c->pos < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = c->p[c->pos + i];

		if ((b >= 'a' && b <= 'z' ? b - 'a' + 'A' : b) != (uint8_t)open[i])
			return false;
	}
	c->pos += n;
	tag_r->p = c->p + c->pos;
	tag_r->len = 0;
	/* Tags are atoms (RFC 3501 tag): no quote or backslash can be inside one. */
	while (c->pos < c->len && c->p[c->pos] != '"') {
		if (c->p[c->pos] == '\\')
			return false;
		c->pos++, tag_r->len++;
	}
	if (c->len - c->pos < 2 || c->p[c->pos + 1] != ')' || tag_r->len == 0)
		return false;
	c->pos += 2;
	return true;
}

/* A value of search-ret-data-ext we do not use: a tagged-ext-simple word, or a
 * parenthesised tagged-ext-comp (nested lists, quoted strings). */
static bool
skip_ext_value(struct cursor *c)
{
	int depth = 0;
	bool quoted = false;

	if (at_end(c))
		return false;
	if (c->p[c->pos] != '(')
		return word(c).len > 0;
	for (; c->pos < c->len; c->pos++) {
		uint8_t b = c->p[c->pos];

		if (quoted) {
			if (b == '\\')
				c->pos++;
			else if (b == '"')
				quoted = false;
		} else if (b == '"') {
			quoted = true;
		} else if (b == '(') {
			depth++;
		} else if (b == ')' && --depth == 0) {
			c->pos++;
			return true;
		}
	}
	return false;
}

static bool
is_number(const struct slice *w)
{
	uint64_t v;

	return imap_slice_to_u64(w, &v);
}

/* "* ESEARCH" [SP correlator] [SP "UID"] *(SP search-return-data) */
static bool
parse_esearch(struct cursor *c, struct imap_search_info *info, imap_search_range_fn *fn,
    void *ctx)
{
	struct slice w;

	skip_spaces(c);
	if (!at_end(c) && c->p[c->pos] == '(') {
		if (!parse_correlator(c, &info->tag))
			return false;
		skip_spaces(c);
	}
	if (at_end(c))
		return true;
	w = word(c);
	if (imap_slice_eq(&w, "UID")) {
		info->uid = true;
		skip_spaces(c);
		if (at_end(c))
			return true;
		w = word(c);
	}
	for (;;) {
		struct slice v;

		skip_spaces(c);
		if (at_end(c))
			return false;	/* every return item has a value */
		if (imap_slice_eq(&w, "ALL")) {
			v = word(c);
			if (!sequence_set(&v, fn, ctx))
				return false;
		} else if (imap_slice_eq(&w, "MIN") || imap_slice_eq(&w, "MAX") ||
		    imap_slice_eq(&w, "COUNT") || imap_slice_eq(&w, "MODSEQ")) {
			v = word(c);
			if (!is_number(&v))
				return false;
		} else if (w.len == 0 || !skip_ext_value(c)) {
			return false;
		}
		skip_spaces(c);
		if (at_end(c))
			return true;
		w = word(c);
	}
}

bool
imap_search_is(const struct imap_resp *r)
{
	return r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE && !r->has_num &&
	    (imap_slice_eq(&r->name, "SEARCH") || imap_slice_eq(&r->name, "ESEARCH"));
}

bool
imap_search_parse(const struct imap_resp *r, struct imap_search_info *info_r,
    imap_search_range_fn *fn, void *ctx)
{
	struct cursor c = { r->text.p, r->text.len, 0 };

	memset(info_r, 0, sizeof(*info_r));
	info_r->tag.p = r->text.p;
	if (!imap_search_is(r))
		return false;
	if (imap_slice_eq(&r->name, "SEARCH"))
		return parse_search(&c, fn, ctx);
	info_r->esearch = true;
	return parse_esearch(&c, info_r, fn, ctx);
}

bool
imap_search_tag_is(const struct imap_search_info *info, const char *tag)
{
	size_t n = strlen(tag);

	return info->esearch && n > 0 && info->tag.len == n && memcmp(info->tag.p, tag, n) == 0;
}
