/* common/buf.c: bounded growable byte buffer; see buf.h for the contract. */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_ALLOC 512

static size_t
buf_ceiling(const struct buf *b)
{
	return b->max ? b->max : BUF_MAX_DEFAULT;
}

void
buf_set_max(struct buf *b, size_t max)
{
	b->max = max;
}

void
buf_free(struct buf *b)
{
	/* Client input and upstream output carry passwords and tokens: wipe before free. */
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	b->failed = false;
}

void
buf_reset(struct buf *b)
{
	if (b->secret && b->data != NULL)
		explicit_bzero(b->data, b->len);
	b->off = b->len = 0;
	b->failed = false;
}

void
buf_compact(struct buf *b)
{
	size_t old_len = b->len;

	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
	if (b->secret)
		explicit_bzero(b->data + b->len, old_len - b->len);	/* the moved-away copy */
}

uint8_t *
buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (n > buf_ceiling(b) - buf_len(b) || n > buf_ceiling(b)) {
		b->failed = true;
		return NULL;
	}
	if (b->cap - b->len >= n)
		return b->data + b->len;
	buf_compact(b);
	if (b->cap - b->len >= n)
		return b->data + b->len;
	need = b->len + n;	/* <= 2 * ceiling: no overflow for sane ceilings */
	ncap = b->cap ? b->cap : BUF_MIN_ALLOC;
	while (ncap < need)
		ncap *= 2;
	if (ncap > buf_ceiling(b) && need <= buf_ceiling(b))
		ncap = buf_ceiling(b);
	/* Not realloc: it would leave the old block, maybe holding a password, unwiped. */
	if ((p = malloc(ncap)) == NULL) {
		b->failed = true;
		return NULL;
	}
	if (b->data != NULL) {
		memcpy(p, b->data, b->len);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = ncap;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return 0;
	if ((dst = buf_reserve(b, n)) == NULL)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	uint8_t *dst;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (dst = buf_reserve(b, (size_t)n + 1)) == NULL) {
		b->failed = true;
		return -1;
	}
	vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > buf_len(b))
		n = buf_len(b);
	if (b->secret && n > 0)
		explicit_bzero(b->data + b->off, n);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void
buf_truncate(struct buf *b, size_t n)
{
	if (n >= buf_len(b))
		return;
	if (b->secret)
		explicit_bzero(b->data + b->off + n, buf_len(b) - n);
	b->len = b->off + n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

ssize_t
buf_find(const struct buf *b, size_t from, uint8_t c)
{
	const uint8_t *p;

	if (from >= buf_len(b))
		return -1;
	p = memchr(buf_data(b) + from, c, buf_len(b) - from);
	return p == NULL ? -1 : p - buf_data(b);
}
