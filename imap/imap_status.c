/* imap/imap_status.c: STATUS answers; see imap_status.h. */
#include <string.h>

#include "imap_fetch.h"
#include "imap_status.h"

bool
imap_status_is(const struct imap_resp *r)
{
	return r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE && !r->has_num &&
	    imap_slice_eq(&r->name, "STATUS");
}

/* The mailbox name at the start of text: *end_r is where the name ends (a space must
 * follow). A literal's bytes are not in the line: unreadable. */
static bool
mailbox_name(const struct slice *text, struct imap_status_info *st, size_t *end_r)
{
	const uint8_t *p = text->p;
	size_t i, len = text->len;

	if (len == 0 || p[0] == '{' || p[0] == '~' || p[0] == '(')
		return false;
	if (p[0] == '"') {
		for (i = 1; i < len && p[i] != '"'; i++) {
			if (p[i] == '\\') {
				if (++i == len || (p[i] != '\\' && p[i] != '"'))
					return false;	/* RFC 3501 quoted-specials only */
				st->mailbox_escaped = true;
			}
		}
		if (i == len)
			return false;
		st->mailbox = (struct slice){ p + 1, i - 1 };
		*end_r = i + 1;
		return true;
	}
	for (i = 0; i < len && p[i] != ' '; i++)
		if (p[i] == '"' || p[i] == ')' || p[i] < 0x21 || p[i] > 0x7e)
			return false;
	st->mailbox = (struct slice){ p, i };
	*end_r = i;
	return true;
}

/* One attribute's number into its field; false when it is malformed or came before. */
static bool
take(const struct imap_fetch_att *att, bool *has, uint64_t *v_r, uint64_t min, uint64_t max)
{
	if (*has || att->kind != IMAP_VALUE_ATOM || !imap_slice_to_u64(&att->value, v_r) ||
	    *v_r < min || *v_r > max)
		return false;
	*has = true;
	return true;
}

bool
imap_status_parse(const struct imap_resp *r, struct imap_status_info *st_r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	enum imap_fetch_step step;
	struct slice list;
	size_t end;
	uint64_t v;

	memset(st_r, 0, sizeof(*st_r));
	if (!mailbox_name(&r->text, st_r, &end) || end + 1 >= r->text.len ||
	    r->text.p[end] != ' ')
		return false;
	list = (struct slice){ r->text.p + end + 1, r->text.len - end - 1 };
	imap_fetch_iter_init(&it, &list);	/* "(name value ...)", the same shape as FETCH's */
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		bool ok = true;

		if (imap_slice_eq(&att.name, "MESSAGES")) {
			ok = take(&att, &st_r->has_messages, &v, 0, UINT32_MAX);
			st_r->messages = (uint32_t)v;
		} else if (imap_slice_eq(&att.name, "UIDNEXT")) {
			ok = take(&att, &st_r->has_uidnext, &v, 1, UINT32_MAX);
			st_r->uidnext = (uint32_t)v;
		} else if (imap_slice_eq(&att.name, "UIDVALIDITY")) {
			ok = take(&att, &st_r->has_uidvalidity, &v, 1, UINT32_MAX);
			st_r->uidvalidity = (uint32_t)v;
		} else if (imap_slice_eq(&att.name, "HIGHESTMODSEQ")) {
			ok = take(&att, &st_r->has_modseq, &v, 0, INT64_MAX);
			st_r->modseq = v;
		} else if (att.kind != IMAP_VALUE_ATOM) {
			ok = false;		/* every status-att's value is a number */
		}
		if (!ok)
			return false;
	}
	return step == IMAP_FETCH_END;
}

bool
imap_status_mailbox_is(const struct imap_status_info *st, const char *name)
{
	size_t len = strlen(name), at = 0;
	struct slice rest = st->mailbox, piece;

	if (!st->mailbox_escaped && imap_slice_eq(&st->mailbox, "INBOX"))
		return imap_slice_eq(&(struct slice){ (const uint8_t *)name, len }, "INBOX");
	if (!st->mailbox_escaped)
		return st->mailbox.len == len && memcmp(st->mailbox.p, name, len) == 0;
	while (imap_quoted_next(&rest, &piece)) {
		if (piece.len > len - at || memcmp(piece.p, name + at, piece.len) != 0)
			return false;
		at += piece.len;
	}
	return at == len;
}
