/* pop3/pop3_top.h: counting the body lines of TOP n m (RFC 1939 §7).
 *
 * The header is passed whole; the body is then passed through pop3_top_take(), which says
 * how many of the offered bytes belong to the first m lines. Once m full lines are out
 * `done` is set and nothing more is taken. Pure. */
#ifndef POPGATE_POP3_TOP_H
#define POPGATE_POP3_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_top {
	uint32_t lines_left;	/* body lines still to send */
	bool done;
};

void pop3_top_init(struct pop3_top *t, uint32_t lines);
/* Returns how many bytes of data[0..len) to send; sets t->done when the m-th LF is taken. */
size_t pop3_top_take(struct pop3_top *t, const uint8_t *data, size_t len);

#endif
