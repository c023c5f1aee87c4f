/* tests/unit/gw_rig.h: a scripted IMAP connection for the gateway's ops (login.c, retr.c,
 * update.c), without a socket or an event loop: gw_imapc_open_scripted() gives a ready
 * connection; what the op sends collects in its output buffer (rig_sent() takes it), and
 * rig_server() hands it the server's bytes as if they had been read. The client's output
 * (POP3 replies) is a plain buffer. Header-only: each test file includes it once. */
#ifndef POPGATE_TEST_GW_RIG_H
#define POPGATE_TEST_GW_RIG_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/log.h"
#include "../../gateway/imapc.h"
#include "../../gateway/snapshot.h"

struct rig {
	struct gw_imapc c;
	struct gw_imapc_target t;
	struct gw_snapshot snap;
	struct buf out;			/* the POP3 client's output */
	char sent[64 * 1024];		/* the last rig_sent() */
	bool lost;			/* the owner's `lost` ran */
};

static void rig_ready(void *ctx) { (void)ctx; }

static void
rig_lost(void *ctx, const char *why)
{
	(void)why;
	((struct rig *)ctx)->lost = true;
}

static const struct gw_imapc_handler rig_handler = { rig_ready, rig_lost, NULL };

/* A ready connection with these capabilities (GW_CAP_*); line_max 0: the default. */
static inline void
rig_open(struct rig *r, unsigned caps, size_t line_max)
{
	memset(r, 0, sizeof(*r));
	log_set_level(LOG_LVL_ERROR);
	r->t.host = "imap.test";
	r->t.port = 143;
	r->t.line_max = line_max ? line_max : 64 * 1024;
	gw_imapc_open_scripted(&r->c, &r->t, caps, "test", &rig_handler, r);
}

/* The selected mailbox: `n` messages with UIDs uids[i] (ascending) and sizes 1000 + i. */
static inline void
rig_snapshot(struct rig *r, const uint32_t *uids, size_t n, uint32_t uidvalidity)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(gw_snapshot_add(&r->snap, uids[i], 1000 + i), 0);
	r->snap.uidvalidity = uidvalidity;
	assert_int_equal(gw_snapshot_sort(&r->snap), 0);
	r->c.uidvalidity = uidvalidity;
	r->c.have_uidvalidity = true;
}

/* What went upstream since the last call, as text. */
static inline const char *
rig_sent(struct rig *r)
{
	struct buf *b = &r->c.io.c.out;
	size_t n = buf_len(b) < sizeof(r->sent) - 1 ? buf_len(b) : sizeof(r->sent) - 1;

	memcpy(r->sent, buf_data(b), n);
	r->sent[n] = '\0';
	buf_reset(b);
	return r->sent;
}

static inline void
rig_server(struct rig *r, const char *bytes)
{
	gw_imapc_feed(&r->c, bytes, strlen(bytes));
}

/* The client's output so far, as text (NUL-terminated copy in a static buffer). */
static inline const char *
rig_client(struct rig *r)
{
	static char text[256 * 1024];
	size_t n = buf_len(&r->out) < sizeof(text) - 1 ? buf_len(&r->out) : sizeof(text) - 1;

	memcpy(text, buf_data(&r->out), n);
	text[n] = '\0';
	return text;
}

static inline void
rig_free(struct rig *r)
{
	gw_imapc_close(&r->c);
	gw_io_close(&r->c.io);
	buf_free(&r->c.io.c.out);
	buf_free(&r->c.io.c.in);
	buf_free(&r->out);
	gw_snapshot_free(&r->snap);
}

#endif
