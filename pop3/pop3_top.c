/* pop3/pop3_top.c: how much of a message body belongs to the first m lines of TOP n m
 * (RFC 1939 §7). Lines end at LF (the dot-stuffer after it turns a bare LF into CR LF, so
 * both count the same); a last line without LF is all taken. Pure: counts, copies nothing. */
#include <string.h>

#include "pop3_top.h"

void
pop3_top_init(struct pop3_top *t, uint32_t lines)
{
	t->lines_left = lines;
	t->done = lines == 0;
}

size_t
pop3_top_take(struct pop3_top *t, const uint8_t *data, size_t len)
{
	size_t taken = 0;

	while (!t->done && taken < len) {
		const uint8_t *lf = memchr(data + taken, '\n', len - taken);

		if (lf == NULL)
			return len;	/* all of it is inside the current line */
		taken = (size_t)(lf - data) + 1;
		if (--t->lines_left == 0)
			t->done = true;
	}
	return taken;
}
