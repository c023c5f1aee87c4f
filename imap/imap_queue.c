/* imap/imap_queue.c: tags and pending commands; see imap_queue.h. Pure. */
#include <stdio.h>
#include <string.h>

#include "imap_queue.h"

void
imap_queue_init(struct imap_queue *q)
{
	uint32_t next = q->next_tag;

	memset(q, 0, sizeof(*q));
	q->next_tag = next ? next : 1;	/* tags stay unique over a connection's life */
}

struct imap_cmd *
imap_queue_push(struct imap_queue *q, const char *what, void *owner, imap_done_any *done)
{
	struct imap_cmd *c;

	if (q->count == IMAP_QUEUE_MAX)
		return NULL;
	c = &q->cmd[(q->head + q->count) % IMAP_QUEUE_MAX];
	memset(c, 0, sizeof(*c));
	snprintf(c->tag, sizeof(c->tag), "A%u", q->next_tag++);
	c->what = what;
	c->owner = owner;
	c->done = done;
	q->count++;
	return c;
}

struct imap_cmd *
imap_queue_head(struct imap_queue *q)
{
	return q->count ? &q->cmd[q->head] : NULL;
}

size_t
imap_queue_count(const struct imap_queue *q)
{
	return q->count;
}

bool
imap_queue_take(struct imap_queue *q, const struct slice *tag, struct imap_cmd *cmd_r)
{
	for (size_t k = 0; k < q->count; k++) {
		size_t idx = (q->head + k) % IMAP_QUEUE_MAX;

		if (strlen(q->cmd[idx].tag) != tag->len ||
		    memcmp(q->cmd[idx].tag, tag->p, tag->len) != 0)
			continue;
		*cmd_r = q->cmd[idx];
		for (size_t m = k; m > 0; m--)
			q->cmd[(q->head + m) % IMAP_QUEUE_MAX] = q->cmd[(q->head + m - 1) % IMAP_QUEUE_MAX];
		q->head = (q->head + 1) % IMAP_QUEUE_MAX;
		q->count--;
		return true;
	}
	return false;
}

void
imap_queue_detach(struct imap_queue *q, const void *owner)
{
	for (size_t k = 0; k < q->count; k++) {
		struct imap_cmd *c = &q->cmd[(q->head + k) % IMAP_QUEUE_MAX];

		if (c->owner == owner) {
			c->owner = NULL;
			c->done = NULL;
		}
	}
}
