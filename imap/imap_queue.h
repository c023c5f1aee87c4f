/* imap/imap_queue.h: tags and the queue of commands waiting for their tagged completion.
 *
 * Each command gets the next tag ("A1", "A2", ...), a short text saying what it does (for
 * log context), the owner it belongs to and the owner's completion, stored untyped:
 * imap_queue_take() hands the command back when the server answers its tag, and the caller
 * calls the completion with its own type. Commands complete in order for popgate, but an
 * out-of-order tag is still matched. Untagged responses are not the queue's business.
 * Pure: the queue never touches the wire and calls nothing. */
#ifndef POPGATE_IMAP_QUEUE_H
#define POPGATE_IMAP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_resp.h"

#define IMAP_QUEUE_MAX 16	/* commands in flight at once (a pipelined login uses 4) */
#define IMAP_TAG_MAX 12

/* A completion, stored untyped: the caller casts it back to the type it pushed. */
typedef void imap_done_any(void);

struct imap_cmd {
	char tag[IMAP_TAG_MAX];
	const char *what;	/* static text: "fetching a message" */
	void *owner;		/* NULL once detached: its answer is dropped */
	imap_done_any *done;	/* NULL: nothing to call */
};

struct imap_queue {
	struct imap_cmd cmd[IMAP_QUEUE_MAX];
	size_t head, count;
	uint32_t next_tag;
};

/* Empties the queue; tags go on from where they were (unique over a connection's life). */
void imap_queue_init(struct imap_queue *q);
/* Adds a command; returns it (its tag filled in), or NULL when the queue is full. */
struct imap_cmd *imap_queue_push(struct imap_queue *q, const char *what, void *owner,
    imap_done_any *done);
/* The oldest pending command, or NULL. */
struct imap_cmd *imap_queue_head(struct imap_queue *q);
size_t imap_queue_count(const struct imap_queue *q);
/* Removes the command with this tag, keeping the others in order, and copies it to
 * *cmd_r. Returns false if no pending command has the tag (a protocol violation). */
bool imap_queue_take(struct imap_queue *q, const struct slice *tag, struct imap_cmd *cmd_r);
/* The owner's commands stay queued (their tags will be answered) but belong to no one:
 * owner and done become NULL. */
void imap_queue_detach(struct imap_queue *q, const void *owner);

#endif
