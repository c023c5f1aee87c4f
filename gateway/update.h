/* gateway/update.h: QUIT in TRANSACTION (RFC 1939 §6, UPDATE) as an operation on an IMAP
 * client connection: the snapshot's DELE marks (and \Seen for retrieved messages) applied
 * upstream, and how many of ours are now gone, decided by UID. */
#ifndef POPGATE_UPDATE_H
#define POPGATE_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../imap/imap_queue.h"
#include "imapc.h"
#include "snapshot.h"

struct gw_update_params {
	struct gw_snapshot *snap;	/* GW_MSG_DELETED / RETRIEVED marks; REMAINS is used */
	bool set_seen;			/* \Seen on retrieved messages first */
	/* Called once: `removed` of ours are gone upstream; error NULL when all marked ones
	 * are, else the words for "-ERR [SYS/TEMP] ...". */
	void (*done)(void *ctx, size_t removed, const char *error);
	void *ctx;
	/* Non-NULL: once the deletions are done, STATUS <status_mailbox> (MESSAGES UIDNEXT
	 * UIDVALIDITY HIGHESTMODSEQ) goes with the last check (no round trip of its own), and
	 * the outcome waits for its answer (gw_update.status). Its failure changes nothing
	 * of the outcome. */
	const char *status_mailbox;
};

/* What the STATUS after the deletions said (RFC 7162 §3.1.6), for the listing cache. */
struct gw_update_status {
	bool sent;			/* it went */
	bool ok;			/* answered OK with one readable line for our mailbox
					   naming the four numbers below */
	uint32_t messages, uidnext, uidvalidity;
	uint64_t modseq;
};

struct gw_update {
	struct gw_imapc_op op;
	struct gw_imapc *up;
	struct gw_update_params p;
	size_t ndel;			/* messages to delete */
	size_t nseen;			/* retrieved messages to flag \Seen */
	size_t pos;			/* marked messages handled so far in this phase */
	size_t piece;			/* how many the current piece covers (from pos) */
	uint32_t piece_lo, piece_hi;	/* its first and last UID */
	size_t removed;			/* ours no longer upstream, by UID */
	size_t left;			/* ours still there, or unknown: QUIT says -ERR */
	char search_tag[IMAP_TAG_MAX];	/* the SEARCH running: ESEARCH names it */
	bool searching;			/* a SEARCH of ours is in flight */
	bool verifying;			/* it is UID SEARCH UID <piece>, not DELETED */
	bool search_seen;		/* an answer to it came */
	bool search_bad;		/* ... that did not parse, or named what it may not */
	size_t search_walk;		/* snapshot entries looked at for it (a bound) */
	size_t search_found;		/* UID SEARCH DELETED: how many of ours it named */
	uint32_t win_lo;		/* ... the next window's first UID */
	bool search_last;		/* ... the window up to "*" was sent */
	bool decided;			/* every piece is decided; only STATUS may be pending */
	bool status_pending;		/* STATUS is in flight */
	bool status_seen, status_bad;	/* ... a line for it came; one that did not do */
	struct gw_update_status status;	/* readable by the owner in (and after) p.done */
};

/* Starts UPDATE; p->done is called once (possibly before this returns). */
void gw_update_start(struct gw_update *u, struct gw_imapc *up, const struct gw_update_params *p);
/* Ends it without an outcome (the owner is closing). */
void gw_update_abort(struct gw_update *u);

#endif
