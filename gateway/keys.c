/* gateway/keys.c: content keys from the upstream's header fields; see keys.h.
 *
 * A header literal is collected (at most KEYS_HEADER_MAX octets: the recipe keeps 998 of
 * each value) and keyed when its FETCH line is complete, by the UID that line names, in
 * whatever order the attributes come. A line for a UID we did not ask about is skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../imap/imap_fetch.h"
#include "../imap/imap_write.h"
#include "keys.h"

#define KEYS_PIECE 1000			/* messages per FETCH */
#define KEYS_PIPELINE 4			/* FETCHes in flight: a 100,000-message first login
					   is not 100 round trips one after the other */
#define KEYS_HEADER_MAX (64 * 1024)
#define KEYS_SET_MAX 7000		/* octets of a UID set, as UPDATE's */
#define KEYS_ITEM "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)]"

#define KEYS(op_) ((struct gw_keys *)((char *)(op_) - offsetof(struct gw_keys, op)))

static void keys_fill(struct gw_keys *k);

void
gw_keys_abort(struct gw_keys *k)
{
	if (k->up == NULL)
		return;
	gw_imapc_op_end(k->up, &k->op);
	buf_free(&k->header);
	k->up = NULL;
}

static void
keys_end(struct gw_keys *k, bool complete, const char *why)
{
	gw_keys_abort(k);
	k->p.done(k->p.ctx, complete, why);
}

/* The entry of uid among those asked for, or NULL. */
static struct cache_entry *
entry_of(struct gw_keys *k, uint32_t uid)
{
	size_t lo = 0, hi = k->p.n;

	while (lo < hi) {		/* entries are ascending by uid */
		size_t mid = lo + (hi - lo) / 2;

		if (k->p.entries[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->p.n && k->p.entries[lo].uid == uid ? &k->p.entries[lo] : NULL;
}

static bool
is_header_fields(const struct slice *name)
{
	static const char want[] = "BODY[HEADER.FIELDS";	/* then " (" : not ".NOT" */
	size_t n = sizeof(want) - 1;

	return name->len > n && strncasecmp((const char *)name->p, want, n) == 0 &&
	    (name->p[n] == ' ' || name->p[n] == '(');
}

static bool
keys_literal(struct gw_imapc_op *op, const struct imap_event *ev)
{
	struct gw_keys *k = KEYS(op);
	struct imap_fetch_head h;

	if (imap_fetch_head(ev->line, ev->line_len, &h) != IMAP_FETCH_HEAD_ITEM ||
	    !is_header_fields(&h.name) || (h.has_uid && entry_of(k, h.uid) == NULL))
		return false;
	buf_reset(&k->header);
	k->taking = true;
	return true;
}

static void
keys_literal_data(struct gw_imapc_op *op, const uint8_t *p, size_t n)
{
	struct gw_keys *k = KEYS(op);
	size_t room = KEYS_HEADER_MAX - buf_len(&k->header);

	buf_append(&k->header, p, n < room ? n : room);
}

/* The entry's key and Message-ID (an import is matched by it; `uidl export` writes it). */
static void
key_entry(struct cache_entry *e, const struct buf *header)
{
	char msgid[CONTENT_MSGID_MAX];

	if (content_key_msgid(buf_data(header), buf_len(header), e->ckey, msgid) < 0) {
		e->ckey[0] = '\0';
		return;
	}
	free((char *)e->msgid);
	e->msgid = msgid[0] != '\0' ? strdup(msgid) : NULL;	/* ENOMEM: no id, no harm */
}

/* A complete FETCH line: the header it carried (a literal taken before, or a quoted string
 * or NIL on the line) becomes the key of the UID it names. */
static void
keys_untagged(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_keys *k = KEYS(op);
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	struct cache_entry *e;
	uint32_t uid;
	bool found = false;

	if (!r->has_num || !imap_slice_eq(&r->name, "FETCH"))
		return;
	if (!imap_fetch_uid(&r->text, &uid) || (e = entry_of(k, uid)) == NULL) {
		k->taking = false;
		return;
	}
	imap_fetch_iter_init(&it, &r->text);
	while (imap_fetch_next(&it, &att) == IMAP_FETCH_ATT) {
		if (!is_header_fields(&att.name))
			continue;
		found = true;
		if (att.kind == IMAP_VALUE_QUOTED) {
			struct slice rest = att.value, piece;

			buf_reset(&k->header);
			while (imap_quoted_next(&rest, &piece))
				buf_append(&k->header, piece.p, piece.len);
		} else if (att.kind == IMAP_VALUE_NIL) {
			buf_reset(&k->header);
		} else if (att.kind != IMAP_VALUE_LITERAL || !k->taking) {
			found = false;
		}
		break;
	}
	k->taking = false;
	if (found)
		key_entry(e, &k->header);
}

static void
keys_lost(struct gw_imapc_op *op, const char *why)
{
	keys_end(KEYS(op), false, why);
}

static const struct gw_imapc_op_handler keys_handler = {
	.untagged = keys_untagged,
	.literal = keys_literal,
	.literal_data = keys_literal_data,
	.lost = keys_lost,
};

static void
piece_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_keys *k = KEYS(op);

	k->inflight--;
	if (r->status != IMAP_STATUS_OK)
		k->refused = true;	/* one broken message must not cost the others their keys */
	keys_fill(k);
}

/* Sends the next piece: false when it cannot. */
static bool
keys_send(struct gw_keys *k)
{
	uint32_t uids[KEYS_PIECE];
	struct buf set = { 0 }, *out;
	size_t n = 0, piece;

	while (n < KEYS_PIECE && k->sent + n < k->p.n) {
		uids[n] = k->p.entries[k->sent + n].uid;
		n++;
	}
	piece = imap_write_uid_set(&set, uids, n, KEYS_SET_MAX);
	out = piece > 0 ? gw_imapc_cmd(k->up, &k->op, "reading header fields", piece_done) : NULL;
	if (out != NULL) {
		buf_append_str(out, "UID FETCH ");
		buf_append(out, buf_data(&set), buf_len(&set));
		buf_append_str(out, " (UID " KEYS_ITEM ")\r\n");
		k->sent += piece;
		k->inflight++;
	}
	buf_free(&set);
	return out != NULL;
}

/* Keeps KEYS_PIPELINE pieces in flight until all are asked; ends once all are answered. */
static void
keys_fill(struct gw_keys *k)
{
	while (k->inflight < KEYS_PIPELINE && k->sent < k->p.n) {
		if (!keys_send(k)) {
			keys_end(k, false, "cannot send FETCH");
			return;
		}
	}
	if (k->inflight == 0) {
		keys_end(k, !k->refused, k->refused ? "the upstream refused some header fields" :
		    NULL);
		return;
	}
	gw_imapc_send(k->up);
}

void
gw_keys_start(struct gw_keys *k, struct gw_imapc *up, const struct gw_keys_params *p)
{
	memset(k, 0, sizeof(*k));
	k->p = *p;
	if (!gw_imapc_is_ready(up)) {
		p->done(p->ctx, false, "the upstream connection is gone");
		return;
	}
	k->up = up;
	buf_set_max(&k->header, KEYS_HEADER_MAX);
	gw_imapc_op_begin(up, &k->op, &keys_handler);
	keys_fill(k);
}
