/* common/content_key.c: the content key recipe; see content_key.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "content_key.h"

static const char *const key_fields[] = { "message-id", "date", "from", "to", "subject" };
#define NFIELDS (sizeof(key_fields) / sizeof(key_fields[0]))
#define VALUE_MAX 998		/* RFC 5322 §2.1.1's line limit: more is not kept */

struct field {
	char value[VALUE_MAX + 1];
	size_t len;
	bool seen;
};

static bool
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends bytes to a value, whitespace runs made one space (none at the start). */
static void
value_add(struct field *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && f->len < VALUE_MAX; i++) {
		if (is_ws(p[i])) {
			if (f->len > 0 && f->value[f->len - 1] != ' ')
				f->value[f->len++] = ' ';
			continue;
		}
		f->value[f->len++] = (char)p[i];
	}
}

size_t
content_msgid_normalize(const char *in, size_t len, char out[CONTENT_MSGID_MAX])
{
	struct field f = { .len = 0 };
	const char *p;

	value_add(&f, (const uint8_t *)in, len);
	while (f.len > 0 && f.value[f.len - 1] == ' ')
		f.len--;
	p = f.value;
	if (f.len >= 2 && p[0] == '<' && p[f.len - 1] == '>') {
		p++;
		f.len -= 2;
		while (f.len > 0 && *p == ' ') {	/* "< a@b >" */
			p++;
			f.len--;
		}
		while (f.len > 0 && p[f.len - 1] == ' ')
			f.len--;
	}
	if (f.len >= CONTENT_MSGID_MAX) {
		/* A longer id is still one id: its SHA-256, marked so no real id equals it. */
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;

		if (EVP_Digest(p, f.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
			out[0] = '\0';
			return 0;
		}
		out[0] = '#';
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
		return 1 + 2 * mdlen;
	}
	memcpy(out, p, f.len);
	out[f.len] = '\0';
	return f.len;
}

int
content_key(const uint8_t *header, size_t len, char key_r[CONTENT_KEY_SIZE])
{
	return content_key_msgid(header, len, key_r, NULL);
}

int
content_key_msgid(const uint8_t *header, size_t len, char key_r[CONTENT_KEY_SIZE],
    char msgid_r[CONTENT_MSGID_MAX])
{
	struct field fields[NFIELDS];
	struct field *cur = NULL;	/* the field a continuation line adds to */
	size_t pos = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;

	memset(fields, 0, sizeof(fields));
	while (pos < len) {
		const uint8_t *line = header + pos, *lf = memchr(line, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - line) + 1 : len - pos, body = n;
		const uint8_t *colon;

		pos += n;
		while (body > 0 && (line[body - 1] == '\n' || line[body - 1] == '\r'))
			body--;
		if (body == 0)
			break;			/* the empty line: the header is over */
		if (line[0] == ' ' || line[0] == '\t') {
			if (cur != NULL) {
				value_add(cur, (const uint8_t *)" ", 1);
				value_add(cur, line, body);
			}
			continue;
		}
		cur = NULL;
		if ((colon = memchr(line, ':', body)) == NULL)
			continue;
		for (size_t k = 0; k < NFIELDS; k++) {
			size_t nl = strlen(key_fields[k]);
			size_t name = (size_t)(colon - line);

			/* "Subject :" (obsolete, RFC 5322 §4.5): spaces before the colon */
			while (name > 0 && (line[name - 1] == ' ' || line[name - 1] == '\t'))
				name--;
			if (name == nl && strncasecmp((const char *)line, key_fields[k], nl) == 0 &&
			    !fields[k].seen) {
				fields[k].seen = true;
				cur = &fields[k];
				value_add(cur, colon + 1, body - (size_t)(colon + 1 - line));
				break;
			}
		}
	}
	if (msgid_r != NULL)
		content_msgid_normalize(fields[0].value, fields[0].len, msgid_r);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (size_t k = 0; k < NFIELDS && ok; k++) {
		struct field *f = &fields[k];

		while (f->len > 0 && f->value[f->len - 1] == ' ')
			f->len--;
		ok = EVP_DigestUpdate(ctx, key_fields[k], strlen(key_fields[k])) == 1 &&
		    EVP_DigestUpdate(ctx, ":", 1) == 1 &&
		    EVP_DigestUpdate(ctx, f->value, f->len) == 1 &&
		    EVP_DigestUpdate(ctx, "\n", 1) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= CONTENT_KEY_LEN / 2;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	for (size_t i = 0; i < CONTENT_KEY_LEN / 2; i++)
		snprintf(key_r + 2 * i, 3, "%02x", md[i]);
	return 0;
}
