/* imap/imap_queue.h: tags and the queue of commands waiting for their tagged completion.
 *
 * Each command gets the next tag ("A1", "A2", ...) and a completion that runs when the
 * server answers that tag. Untagged responses are not the queue's business: the caller
 * routes them to the command at the head (imap_queue_head()), which in a pipeline is the
 * oldest one still running. Pure: the queue never touches the wire. */
#ifndef POPGATE_IMAP_QUEUE_H
#define POPGATE_IMAP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_resp.h"

#define IMAP_QUEUE_MAX 16	/* commands in flight at once (a pipelined login uses 4) */
#define IMAP_TAG_MAX 12

struct imap_cmd;

/* Called once per command: with the tagged response, or with resp == NULL when the
 * queue is flushed (connection lost). */
typedef void imap_done_fn(void *ctx, struct imap_cmd *cmd, const struct imap_resp *resp);

struct imap_cmd {
	char tag[IMAP_TAG_MAX];
	int kind;		/* the caller's label for this command (e.g. an enum) */
	imap_done_fn *done;
	void *ctx;
	uint32_t arg;		/* caller's datum, e.g. the UID being fetched */
};

struct imap_queue {
	struct imap_cmd cmd[IMAP_QUEUE_MAX];
	size_t head, count;
	uint32_t next_tag;
};

void imap_queue_init(struct imap_queue *q);
/* Adds a command; returns it (its tag filled in), or NULL when the queue is full. */
struct imap_cmd *imap_queue_push(struct imap_queue *q, int kind, imap_done_fn *done, void *ctx, uint32_t arg);
/* The oldest pending command, or NULL. */
struct imap_cmd *imap_queue_head(struct imap_queue *q);
size_t imap_queue_count(const struct imap_queue *q);
/* Completes the command with this tag: removes it, then calls its `done`.
 * Returns false if no pending command has the tag (a protocol violation). Tags complete in
 * order for popgate's commands; an out-of-order tag is still matched. */
bool imap_queue_complete(struct imap_queue *q, const struct imap_resp *resp);
/* Calls every pending completion with NULL and empties the queue. */
void imap_queue_flush(struct imap_queue *q);

#endif
