/* gateway/retr.h: RETR and TOP (RFC 1939 §7) as an operation on an IMAP client connection:
 * one message streamed from the upstream, dot-stuffed, into the client's output buffer. */
#ifndef POPGATE_RETR_H
#define POPGATE_RETR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../pop3/pop3_dotstuff.h"
#include "../pop3/pop3_top.h"
#include "imapc.h"

enum gw_xfer_end {
	GW_XFER_SENT,		/* "+OK", the message (or its top), "." are written */
	GW_XFER_REFUSED,	/* a "-ERR" is written: expunged meanwhile, or the server could
				   not give it now; the session goes on */
	GW_XFER_CLOSE,		/* the session must end (why: its result): the upstream is
				   lost, or it failed after "+OK", when only cutting the
				   connection is honest, never a terminating "." */
};

struct gw_xfer_params {
	size_t msgno;			/* the POP3 number, for replies */
	uint32_t uid;
	uint64_t size;			/* RFC822.SIZE, for "+OK n octets" and a sanity bound */
	bool top;
	uint32_t lines;			/* TOP: body lines */
	struct buf *out;		/* the client's output */
	size_t out_hiwat;		/* above it the upstream pauses (the owner resumes it) */
	void (*done)(void *ctx, enum gw_xfer_end end, const char *why);	/* once */
	void *ctx;
};

struct gw_xfer {
	struct gw_imapc_op op;
	struct gw_imapc *up;
	struct gw_xfer_params p;
	bool reply_started;		/* "+OK" sent: a failure now must cut the connection */
	bool got_literal;		/* RETR: the body literal; TOP: the header literal */
	bool header_done;		/* TOP: the header FETCH is answered */
	bool window_seen, window_done;	/* TOP: the current body window's literal / answer */
	bool body_phase;		/* TOP: past the header */
	bool uid_pending;		/* the literal streaming now named no UID before it: it
					   is ours only if its FETCH line ends naming our UID */
	bool pending_streamed;		/* bytes of that literal went to the client */
	bool pending_header;		/* the line's pending items include the header / BODY[] */
	bool pending_window;		/* ... and a TOP body window */
	bool window_early;		/* TOP: our window came before the header: ask again */
	bool pending_body_phase;	/* body_phase before it was taken */
	bool got_nil;			/* our FETCH answered the item with NIL */
	bool unreadable;		/* a FETCH whose attributes could not be read came */
	unsigned inflight;		/* FETCHes of ours not answered yet */
	bool draining;			/* refused ("-ERR" written) while a FETCH of ours is in
					   flight: its data is skipped until it is answered, so
					   that the next TOP of the message never takes it */
	uint64_t window_off;		/* TOP: body offset of the next window */
	uint64_t window_len;		/* TOP: size asked for in the pending window */
	uint64_t literal_size;		/* octets of the item taken (literal or quoted): for a
					   RETR, the owner compares them with p.size */
	struct pop3_dotstuff dot;
	struct pop3_top top;
};

/* Starts a RETR or TOP; p->done is called once (possibly before this returns). */
void gw_xfer_start(struct gw_xfer *x, struct gw_imapc *up, const struct gw_xfer_params *p);
/* Ends it without an outcome (the owner is closing). */
void gw_xfer_abort(struct gw_xfer *x);

#endif
