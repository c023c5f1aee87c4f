/* imap/imap_write.c: IMAP command arguments (RFC 3501 §4.3 strings, RFC 7888 LITERAL+).
 * See imap_write.h. Pure. */
#include <stdio.h>
#include <string.h>

#include "../common/b64.h"
#include "imap_write.h"

enum imap_string_kind
imap_string_kind(const uint8_t *s, size_t len)
{
	enum imap_string_kind kind = len > IMAP_QUOTED_MAX ? IMAP_STRING_LITERAL : IMAP_STRING_QUOTED;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return IMAP_STRING_INVALID;	/* a second command would start here */
		if (s[i] >= 0x80)
			kind = IMAP_STRING_LITERAL;	/* RFC 3501 quoted: 7-bit only */
	}
	return kind;
}

int
imap_write_astring(struct buf *out, const uint8_t *s, size_t len, bool literal_plus)
{
	size_t start = buf_len(out);

	switch (imap_string_kind(s, len)) {
	case IMAP_STRING_INVALID:
		return -1;
	case IMAP_STRING_LITERAL:
		if (!literal_plus)
			return -1;
		buf_printf(out, "{%zu+}\r\n", len);
		buf_append(out, s, len);
		break;
	case IMAP_STRING_QUOTED:
		buf_append(out, "\"", 1);
		for (size_t i = 0; i < len; i++) {
			size_t run = i;

			while (run < len && s[run] != '"' && s[run] != '\\')
				run++;
			buf_append(out, s + i, run - i);
			if (run == len)
				break;
			buf_append(out, "\\", 1);
			buf_append(out, s + run, 1);
			i = run;
		}
		buf_append(out, "\"", 1);
		break;
	}
	if (out->failed) {
		buf_truncate(out, start);	/* write nothing on failure */
		return -1;
	}
	return 0;
}

int
imap_write_sasl_plain(struct buf *out, const uint8_t *user, size_t ulen, const uint8_t *pass,
    size_t plen)
{
	uint8_t msg[2 + 2 * 1024];
	char enc[4 * ((sizeof(msg) + 2) / 3) + 1];
	size_t n, elen;

	if (ulen > 1024 || plen > 1024 || memchr(user, '\0', ulen) != NULL ||
	    memchr(pass, '\0', plen) != NULL)
		return -1;
	msg[0] = '\0';			/* empty authzid: act as authcid */
	memcpy(msg + 1, user, ulen);
	msg[1 + ulen] = '\0';
	memcpy(msg + 2 + ulen, pass, plen);
	n = 2 + ulen + plen;
	elen = b64_encode(msg, n, enc);
	buf_append(out, enc, elen);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(enc, sizeof(enc));
	return out->failed ? -1 : 0;
}

static size_t
digits(uint32_t v)
{
	size_t d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

size_t
imap_write_uid_set(struct buf *out, const uint32_t *uids, size_t n, size_t max)
{
	size_t i = 0, used = 0;

	if (max < IMAP_UID_SET_MIN)
		return 0;
	while (i < n) {
		size_t j = i, len;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		len = (i ? 1 : 0) + digits(uids[i]) + (j == i ? 0 : 1 + digits(uids[j]));
		if (used + len > max)
			break;
		if (j == i)
			buf_printf(out, "%s%u", i ? "," : "", uids[i]);
		else
			buf_printf(out, "%s%u:%u", i ? "," : "", uids[i], uids[j]);
		used += len;
		i = j + 1;
	}
	return out->failed ? 0 : i;
}
