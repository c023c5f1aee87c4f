/* imap/imap_queue.c: tags and pending completions; see imap_queue.h. Pure. */
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
imap_queue_push(struct imap_queue *q, int kind, imap_done_fn *done, void *ctx, uint32_t arg)
{
	struct imap_cmd *c;

	if (q->count == IMAP_QUEUE_MAX)
		return NULL;
	c = &q->cmd[(q->head + q->count) % IMAP_QUEUE_MAX];
	memset(c, 0, sizeof(*c));
	snprintf(c->tag, sizeof(c->tag), "A%u", q->next_tag++);
	c->kind = kind;
	c->done = done;
	c->ctx = ctx;
	c->arg = arg;
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
imap_queue_complete(struct imap_queue *q, const struct imap_resp *resp)
{
	for (size_t k = 0; k < q->count; k++) {
		size_t idx = (q->head + k) % IMAP_QUEUE_MAX;
		struct imap_cmd c = q->cmd[idx];	/* a copy: `done` may push */

		if (strlen(c.tag) != resp->tag.len || memcmp(c.tag, resp->tag.p, resp->tag.len) != 0)
			continue;
		/* Remove it, keeping the others in order. */
		for (size_t m = k; m > 0; m--)
			q->cmd[(q->head + m) % IMAP_QUEUE_MAX] = q->cmd[(q->head + m - 1) % IMAP_QUEUE_MAX];
		q->head = (q->head + 1) % IMAP_QUEUE_MAX;
		q->count--;
		if (c.done != NULL)
			c.done(c.ctx, &c, resp);
		return true;
	}
	return false;
}

void
imap_queue_flush(struct imap_queue *q)
{
	while (q->count > 0) {
		struct imap_cmd c = q->cmd[q->head];

		q->head = (q->head + 1) % IMAP_QUEUE_MAX;
		q->count--;
		if (c.done != NULL)
			c.done(c.ctx, &c, NULL);
	}
}
