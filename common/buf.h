/* common/buf.h: a bounded, growable byte buffer.
 *
 * The bytes not yet consumed are data[off .. len). Appending grows the storage up to `max`
 * (0 means BUF_MAX_DEFAULT); an append that would pass the ceiling, or a failed allocation,
 * writes nothing and makes the buffer `failed`, which stays set until buf_reset() so that a
 * run of writers need not check each call (the flush reports it once).
 *
 * A zeroed struct buf is a valid empty buffer owning no storage. Pointers returned by
 * buf_data() stay valid until the next append or buf_compact(); buf_consume() only moves
 * the read offset and never moves bytes. Not for: I/O (see conn.h). */
#ifndef POPGATE_BUF_H
#define POPGATE_BUF_H

#include <sys/types.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_MAX_DEFAULT (1024 * 1024)

struct buf {
	uint8_t *data;
	size_t off;	/* first unconsumed byte */
	size_t len;	/* one past the last valid byte */
	size_t cap;	/* allocated bytes */
	size_t max;	/* ceiling on len - off; 0 = BUF_MAX_DEFAULT */
	bool failed;	/* sticky: an append hit the ceiling or ENOMEM */
	bool secret;	/* carries passwords or tokens: bytes consumed, reset or moved away
			 * by compaction are wiped at once, not left in the storage */
};

/* Sets the ceiling (0 = default). Keeps the contents. */
void buf_set_max(struct buf *b, size_t max);

/* Frees the storage; the buffer is empty, valid and keeps its ceiling. */
void buf_free(struct buf *b);

/* Empties the buffer and clears `failed`; keeps the storage for reuse. */
void buf_reset(struct buf *b);

/* Appends n bytes. Returns 0, or -1 (nothing written, `failed` set) past the ceiling. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Reserves room for at least n more bytes and returns where they go (NULL past the ceiling,
 * `failed` set); the caller writes k <= n bytes there and calls buf_commit(b, k). */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

/* Drops n bytes from the front (n <= buf_len). Never moves bytes; empties to offset 0.
 * A `secret` buffer zeroes them, so a caller still reading them consumes afterwards. */
void buf_consume(struct buf *b, size_t n);

/* Keeps the first n unconsumed bytes and drops the ones after them (n <= buf_len); a
 * `secret` buffer wipes what it drops. `failed` is left as it is. */
void buf_truncate(struct buf *b, size_t n);

/* Moves the unconsumed bytes to the front of the storage. */
void buf_compact(struct buf *b);

/* Index of the first `c` at or after `from` in the unconsumed bytes, or -1. */
ssize_t buf_find(const struct buf *b, size_t from, uint8_t c);

static inline const uint8_t *
buf_data(const struct buf *b)
{
	return b->data == NULL ? (const uint8_t *)"" : b->data + b->off;
}

static inline size_t
buf_len(const struct buf *b)
{
	return b->len - b->off;
}

static inline size_t
buf_room(const struct buf *b)
{
	size_t max = b->max ? b->max : BUF_MAX_DEFAULT;

	return max > buf_len(b) ? max - buf_len(b) : 0;
}

#endif
