/* gateway/login.c: from credentials to a fixed snapshot: the upstream login.
 *
 *   (the connection is ready: imapc.c did greeting, TLS / STARTTLS, CAPABILITY)
 *   [ID] + LOGIN|AUTHENTICATE PLAIN + SELECT + UID FETCH 1:* (UID RFC822.SIZE)
 *   or [ID] + AUTHENTICATE XOAUTH2|OAUTHBEARER, then SELECT + UID FETCH
 *
 * The last three are pipelined (one round trip) unless the credentials need a
 * continuation. With the listing cache (CONDSTORE, RFC 7162), SELECT goes as
 * SELECT mailbox (CONDSTORE) and the FETCH waits for its answer and the stored listing:
 * none, UID FETCH <stored UIDNEXT>:* or UID FETCH 1:* (listing_decide()). Credentials go
 * as quoted strings, LITERAL+ literals or a SASL PLAIN response, never raw; CR, LF and NUL
 * are refused before a byte is sent. An OAuth bearer response goes as the client sent it
 * (strict base64, checked at AUTH), with SASL-IR when offered (RFC 4959). Credentials are
 * wiped as soon as they are written.
 *
 * The answers may come in any order (a proxy may reorder them): each completion records
 * its own, and login_maybe_finish() decides once LOGIN, SELECT and the listing are all
 * answered. Thunderbird forgets every UIDL on "+OK 0 0", so a listing that is short, cut
 * or unreadable is never a mailbox: it is GW_LOGIN_TEMP (DESIGN.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../imap/imap_fetch.h"
#include "../imap/imap_refusal.h"
#include "../imap/imap_write.h"
#include "login.h"

#define LG(op) ((struct gw_login *)((char *)(op) - offsetof(struct gw_login, op)))

void
gw_cred_wipe(struct gw_cred *cred)
{
	if (cred->pass != NULL) {
		explicit_bzero(cred->pass, cred->pass_len);
		free(cred->pass);
		cred->pass = NULL;
	}
	cred->pass_len = 0;
	if (cred->sasl_resp != NULL) {
		explicit_bzero(cred->sasl_resp, cred->sasl_resp_len);
		free(cred->sasl_resp);
		cred->sasl_resp = NULL;
	}
	cred->sasl_resp_len = 0;
}

int
gw_cred_set_password(struct gw_cred *cred, const uint8_t *p, size_t len)
{
	gw_cred_wipe(cred);
	if ((cred->pass = malloc(len ? len : 1)) == NULL)
		return -1;
	memcpy(cred->pass, p, len);
	cred->pass_len = len;
	return 0;
}

static void
login_wipe(struct gw_login *lg)
{
	gw_cred_wipe(lg->p.cred);
	buf_free(&lg->cont);	/* wipes: it may hold a SASL response */
	lg->sasl_err_ack = NULL;
}

void
gw_login_abort(struct gw_login *lg)
{
	if (lg->up == NULL)
		return;
	login_wipe(lg);
	gw_imapc_op_end(lg->up, &lg->op);
	lg->up = NULL;
}

/* The outcome: told once; the op is over. */
static void
login_end(struct gw_login *lg, enum gw_login_outcome outcome, const char *why)
{
	struct gw_login_params p = lg->p;

	gw_login_abort(lg);
	p.done(p.ctx, outcome, why);
}

static void listing_done(struct gw_imapc_op *op, const struct imap_resp *r);

static void
resp_text(char *dst, size_t size, const char *what, const struct imap_resp *r)
{
	snprintf(dst, size, "%s: %s %.*s", what, r->status == IMAP_STATUS_NO ? "NO" :
	    r->status == IMAP_STATUS_BAD ? "BAD" : "?", (int)(r->text.len > 100 ? 100 : r->text.len),
	    (const char *)r->text.p);
}

/* "UID FETCH <from>:* (UID RFC822.SIZE)": the listing, whole or from a UID on. */
static void
send_listing(struct gw_login *lg, uint32_t from)
{
	struct buf *out;

	lg->fetch_sent = true;
	lg->from_uid = from;
	if ((out = gw_imapc_cmd(lg->up, &lg->op, "listing messages", listing_done)) == NULL) {
		gw_imapc_fail(lg->up, "cannot send the listing's FETCH");
		return;
	}
	buf_printf(out, "UID FETCH %u:* (UID RFC822.SIZE)\r\n", from);
	gw_imapc_send(lg->up);
}

/* CONDSTORE (RFC 7162 §3.1.8): LOGIN, SELECT and the stored listing are known; which FETCH
 * the mailbox needs, if any. The POP3 listing is the set of UIDs with their sizes (a
 * message's size never changes, RFC 3501 §2.3.4; flags, \Deleted too, are not in it), and
 * the stored one is exactly the mailbox as a SELECT saw it (cache.h):
 *  - UIDVALIDITY, UIDNEXT, EXISTS and HIGHESTMODSEQ as stored: nothing changed (an
 *    arrival raises UIDNEXT, RFC 3501 §2.3.1.1; an expunge without one lowers EXISTS; a
 *    flag change raises HIGHESTMODSEQ, §3.1.1): no FETCH.
 *  - the same UIDVALIDITY, UIDNEXT not lower, HIGHESTMODSEQ higher: the stored listing and
 *    UID FETCH <stored UIDNEXT>:*, which lists every message that came since (UIDs only
 *    grow, RFC 3501 §2.3.1.1). Kept only if the stored messages plus the new ones are
 *    EXISTS with no EXPUNGE seen since SELECT: then none of the stored ones is gone
 *    (login_maybe_finish()); otherwise the full FETCH runs.
 *  - anything else ([NOMODSEQ], a number missing, UIDVALIDITY changed, no stored listing,
 *    a HIGHESTMODSEQ that went back): the full FETCH. */
static void
listing_decide(struct gw_login *lg)
{
	const struct cache_listing *prior = lg->prior, *now = &lg->meta;
	struct gw_snapshot *snap = lg->p.snap;

	lg->how = GW_LISTING_FULL;
	if (lg->up->have_modseq && !lg->up->nomodseq && lg->up->have_uidnext &&
	    lg->up->have_exists && lg->up->have_uidvalidity && !lg->up->uidvalidity_changed &&
	    prior != NULL && prior->uidvalidity == now->uidvalidity &&
	    now->uidnext >= prior->uidnext && now->modseq >= prior->modseq) {
		if (now->uidnext == prior->uidnext && now->exists == prior->exists &&
		    now->modseq == prior->modseq)
			lg->how = GW_LISTING_CACHED;
		else if (now->modseq > prior->modseq)
			lg->how = GW_LISTING_INCREMENTAL;
	}
	if (lg->how != GW_LISTING_FULL) {
		/* What is owed: the stored messages (the new ones are proven by count). */
		lg->base_taken = true;
		lg->base = (uint32_t)prior->n;
		lg->expunged = 0;
		for (size_t i = 0; i < prior->n; i++) {
			if (gw_snapshot_add(snap, prior->uid[i], prior->size[i]) < 0) {
				gw_imapc_fail(lg->up, "mailbox listing too large or out of memory");
				return;
			}
		}
	}
	if (lg->how == GW_LISTING_CACHED) {
		lg->fetch_sent = lg->listing_done = lg->listing_ok = true;
		return;
	}
	send_listing(lg, lg->how == GW_LISTING_INCREMENTAL ? prior->uidnext : 1);
}

/* The incremental listing did not prove itself: the full one, from scratch. */
static void
listing_restart(struct gw_login *lg)
{
	gw_snapshot_free(lg->p.snap);
	lg->listing_done = lg->listing_ok = lg->listing_bad = lg->base_taken = false;
	lg->expunged = 0;
	lg->how = GW_LISTING_FULL;
	send_listing(lg, 1);
}

/* Is the outcome's listing the mailbox as SELECT saw it, with modseqs (cache_listing's
 * rule)? A cached one is (its four numbers were SELECT's) unless an EXPUNGE came since. */
static bool
listing_exact(const struct gw_login *lg)
{
	const struct gw_snapshot *snap = lg->p.snap;

	return lg->condstore && lg->up->have_modseq &&
	    !lg->up->nomodseq && lg->up->have_uidnext && lg->meta.modseq > 0 &&
	    snap->count == lg->meta.exists && lg->up->expunges == lg->sel_expunges &&
	    (snap->count == 0 || snap->uid[snap->count - 1] < lg->meta.uidnext);
}

static void
login_maybe_finish(struct gw_login *lg)
{
	const struct gw_imapc *up = lg->up;
	struct gw_snapshot *snap = lg->p.snap;
	char why[200];

	if (!lg->login_ok)
		return;
	if (lg->select_done && !lg->select_ok) {
		login_end(lg, GW_LOGIN_TEMP, lg->why);
		return;
	}
	if (lg->condstore && !lg->fetch_sent) {
		if (lg->select_done && !lg->prior_known && !lg->prior_wanted &&
		    lg->p.prior_wanted != NULL) {
			/* Only the stored listing is missing now: the owner bounds the wait. */
			lg->prior_wanted = true;
			lg->p.prior_wanted(lg->p.ctx);
			if (lg->up == NULL || lg->fetch_sent)
				return;		/* it answered (NULL) at once, or ended the op */
		}
		if (!lg->select_done || !lg->prior_known)
			return;
		listing_decide(lg);
		if (lg->up == NULL)
			return;		/* failed: told already */
	}
	if (!lg->select_done || !lg->listing_done)
		return;
	if (!lg->listing_ok) {
		login_end(lg, GW_LOGIN_TEMP, lg->why);
		return;
	}
	if (lg->listing_bad) {
		login_end(lg, GW_LOGIN_TEMP, "upstream listing line without a readable UID or "
		    "RFC822.SIZE");
		return;
	}
	if (!up->have_exists) {
		login_end(lg, GW_LOGIN_TEMP, "upstream SELECT said no EXISTS");
		return;
	}
	if (!up->have_uidvalidity || up->uidvalidity_changed) {
		login_end(lg, GW_LOGIN_TEMP, up->have_uidvalidity ? "upstream UIDVALIDITY changed "
		    "during the login" : "upstream sent no UIDVALIDITY");
		return;
	}
	if (!lg->base_taken) {
		/* No listing line, or all before SELECT's data: the count now, expunges in it. */
		lg->base = up->exists;
		lg->expunged = 0;
	}
	snap->uidvalidity = up->uidvalidity;
	if (gw_snapshot_sort(snap) < 0) {
		login_end(lg, GW_LOGIN_TEMP, "out of memory building the message list");
		return;
	}
	if (lg->how == GW_LISTING_INCREMENTAL &&
	    (snap->count != lg->meta.exists || up->exists != lg->meta.exists ||
	    up->expunges != lg->sel_expunges)) {
		/* A stored message may be gone, or one came meanwhile: no proof, full FETCH. The
		 * count is SELECT's EXISTS, not the one now: a server reports an arrival after
		 * the FETCH data (Dovecot syncs at the command's end), and that message, not in
		 * the data, must not stand in for a stored one that is gone. */
		listing_restart(lg);
		return;
	}
	lg->exact = listing_exact(lg);
	lg->storable = lg->exact && lg->how != GW_LISTING_CACHED;	/* stored already */
	if ((uint64_t)snap->count + lg->expunged < lg->base) {
		snprintf(why, sizeof(why), "upstream listed %zu of its %u messages", snap->count,
		    lg->base - lg->expunged);
		login_end(lg, GW_LOGIN_TEMP, why);
		return;
	}
	login_end(lg, GW_LOGIN_OK, "");
}

/* One line of the listing ("* 3 FETCH (UID 7 RFC822.SIZE 1200)"). A FETCH without
 * RFC822.SIZE is another client's flag change, not a listing line: it adds nothing, and
 * a message the listing then lacks is caught by the count. A line we cannot read, or one
 * with a size but no readable UID, is a listing we cannot trust. */
static void
listing_line(struct gw_login *lg, const struct imap_resp *r)
{
	struct imap_fetch_iter it;
	struct imap_fetch_att att;
	enum imap_fetch_step step;
	bool has_uid = false, has_size = false, bad = false;
	uint64_t uid = 0, size = 0;

	if (lg->listing_done || lg->listing_bad || (lg->condstore && !lg->fetch_sent))
		return;
	imap_fetch_iter_init(&it, &r->text);
	while ((step = imap_fetch_next(&it, &att)) == IMAP_FETCH_ATT) {
		if (!has_uid && imap_slice_eq(&att.name, "UID")) {
			has_uid = true;
			bad |= att.kind != IMAP_VALUE_ATOM || !imap_slice_to_u64(&att.value, &uid) ||
			    uid == 0 || uid > UINT32_MAX;
		} else if (!has_size && imap_slice_eq(&att.name, "RFC822.SIZE")) {
			has_size = true;
			bad |= att.kind != IMAP_VALUE_ATOM || !imap_slice_to_u64(&att.value, &size);
		}
	}
	if (step != IMAP_FETCH_END || bad || (has_size && !has_uid)) {
		lg->listing_bad = true;
		return;
	}
	if (!has_size || !lg->fetch_sent)
		return;		/* before our FETCH: another client's change, not a listing line */
	if (uid < lg->from_uid)
		return;		/* "n:*" names the last message even below n (RFC 3501 §6.4.8) */
	/* The messages SELECT said are there: taken at the first listing line, once EXISTS is
	 * known (a reordering proxy may send the listing before SELECT's data; then at the
	 * end). */
	if (!lg->base_taken && lg->up->have_exists) {
		lg->base = lg->up->exists;
		lg->base_taken = true;
	}
	if (gw_snapshot_add(lg->p.snap, (uint32_t)uid, size) < 0)
		gw_imapc_fail(lg->up, "mailbox listing too large or out of memory");
}

static void
login_untagged(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_login *lg = LG(op);

	if (!r->has_num)
		return;
	if (imap_slice_eq(&r->name, "EXPUNGE") && lg->base_taken)
		lg->expunged++;
	else if (imap_slice_eq(&r->name, "FETCH"))
		listing_line(lg, r);
}

static bool
login_continuation(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_login *lg = LG(op);

	(void)r;
	if (buf_len(&lg->cont) > 0) {
		gw_imapc_write(lg->up, buf_data(&lg->cont), buf_len(&lg->cont));
		buf_free(&lg->cont);	/* a SASL response: wiped, not kept */
		return true;
	}
	if (lg->sasl_err_ack != NULL) {
		/* A refused OAuth token comes back as a "+" with an error (RFC 7628 §3.2.2,
		 * Google's XOAUTH2): answered once, then the tagged NO follows. */
		gw_imapc_write(lg->up, lg->sasl_err_ack, strlen(lg->sasl_err_ack));
		lg->sasl_err_ack = NULL;
		return true;
	}
	return false;
}

static void
login_lost(struct gw_imapc_op *op, const char *why)
{
	login_end(LG(op), GW_LOGIN_TEMP, why);
}

static const struct gw_imapc_op_handler login_handler = {
	.untagged = login_untagged,
	.continuation = login_continuation,
	.lost = login_lost,
};

/* SELECT's or the listing's tagged answer: recorded, then the login may be decided. */
static void
pipelined_answer(struct gw_login *lg, bool *done, bool *ok, const char *what,
    const struct imap_resp *r)
{
	*done = true;
	*ok = r->status == IMAP_STATUS_OK;
	if (!*ok)
		resp_text(lg->why, sizeof(lg->why), what, r);
	login_maybe_finish(lg);
}

static void
listing_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_login *lg = LG(op);

	pipelined_answer(lg, &lg->listing_done, &lg->listing_ok, "listing messages failed", r);
}

static bool send_select_and_list(struct gw_login *lg);

static void
select_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_login *lg = LG(op);
	const struct gw_imapc *up = lg->up;

	if (lg->condstore && r->status == IMAP_STATUS_BAD) {
		/* The server does not take the parameter (the hint was another server's): a
		 * plain SELECT and the full FETCH, today's way. */
		lg->condstore = false;
		lg->condstore_refused = true;
		if (!send_select_and_list(lg))
			login_end(lg, GW_LOGIN_TEMP, "cannot send SELECT");
		return;
	}
	if (r->status == IMAP_STATUS_OK) {
		/* The mailbox as this SELECT saw it: what a stored listing is compared with,
		 * and what this login's listing is stored with. */
		lg->meta.uidvalidity = up->uidvalidity;
		lg->meta.uidnext = up->have_uidnext ? up->uidnext : 0;
		lg->meta.exists = up->exists;
		lg->meta.modseq = up->have_modseq && !up->nomodseq ? up->modseq : 0;
		lg->sel_expunges = up->expunges;
	}
	pipelined_answer(lg, &lg->select_done, &lg->select_ok, "SELECT failed", r);
}

/* SELECT and the listing; with the listing cache, SELECT (CONDSTORE) alone (the FETCH
 * waits for its answer). False when they cannot be queued. */
static bool
send_select_and_list(struct gw_login *lg)
{
	struct gw_imapc *up = lg->up;
	const char *mbox = lg->p.mailbox;
	struct buf *out;
	bool offered = up->caps_after_login ? (up->caps & GW_CAP_CONDSTORE) != 0 :
	    lg->p.condstore_hint || (up->caps & GW_CAP_CONDSTORE) != 0;

	lg->condstore = lg->p.listing_cache && !lg->condstore_refused && offered;
	if ((out = gw_imapc_cmd(up, &lg->op, "SELECT", select_done)) == NULL)
		return false;
	buf_append_str(out, "SELECT ");
	if (imap_write_astring(out, (const uint8_t *)mbox, strlen(mbox),
	    (up->caps & GW_CAP_LITERALPLUS) != 0) < 0)
		return false;
	buf_append_str(out, lg->condstore ? " (CONDSTORE)\r\n" : "\r\n");
	if (!lg->condstore) {
		if ((out = gw_imapc_cmd(up, &lg->op, "listing messages", listing_done)) == NULL)
			return false;
		buf_append_str(out, "UID FETCH 1:* (UID RFC822.SIZE)\r\n");
		lg->fetch_sent = true;
		lg->from_uid = 1;
		lg->how = GW_LISTING_FULL;
	}
	gw_imapc_send(up);
	return true;
}

void
gw_login_prior(struct gw_login *lg, const struct cache_listing *prior)
{
	if (lg->up == NULL || lg->prior_known)
		return;
	lg->prior = prior;
	lg->prior_known = true;
	login_maybe_finish(lg);
}

static void
credentials_done(struct gw_imapc_op *op, const struct imap_resp *r)
{
	struct gw_login *lg = LG(op);
	char why[200];

	lg->sasl_err_ack = NULL;
	if (r->status == IMAP_STATUS_OK) {
		gw_imapc_authenticated(lg->up, r);
		lg->login_ok = true;
		if (!lg->pipelined && !send_select_and_list(lg))
			login_end(lg, GW_LOGIN_TEMP, "cannot send SELECT");
		else
			login_maybe_finish(lg);
		return;
	}
	resp_text(why, sizeof(why), "upstream login refused", r);
	/* RFC 5530 (imap/imap_refusal.c): a busy or broken server is not a wrong password. */
	switch (imap_login_refusal(r)) {
	case IMAP_REFUSAL_CREDENTIALS:
		login_end(lg, GW_LOGIN_REFUSED, why);
		break;
	case IMAP_REFUSAL_IN_USE:
		login_end(lg, GW_LOGIN_IN_USE, why);
		break;
	case IMAP_REFUSAL_TEMPORARY:
		login_end(lg, GW_LOGIN_TEMP, why);
		break;
	}
}

static void
send_id(struct gw_login *lg)
{
	struct buf *out;

	if ((out = gw_imapc_cmd(lg->up, &lg->op, "ID", NULL)) == NULL)
		return;
	/* RFC 2971; Dovecot reads x-originating-* from trusted networks for its logs and
	 * its brute-force protection. Addresses are digits, dots and colons: quoted safely. */
	buf_printf(out, "ID (\"name\" \"popgate\" \"x-originating-ip\" \"%s\" "
	    "\"x-originating-port\" \"%u\")\r\n", lg->p.id_addr, lg->p.id_port);
}

/* XOAUTH2 / OAUTHBEARER: the client's response goes upstream unchanged. Never pipelined:
 * a refused token is answered with a "+" carrying the error (RFC 7628 §3.2.2), and the
 * next line the server reads must be our answer to it, not SELECT. Returns why it could
 * not be sent, or NULL. */
static const char *
send_bearer(struct gw_login *lg)
{
	static char why[80];
	struct gw_imapc *up = lg->up;
	const struct gw_cred *cred = lg->p.cred;
	const char *mech = pop3_sasl_mech_name(cred->mech);
	unsigned need = cred->mech == POP3_SASL_XOAUTH2 ? GW_CAP_XOAUTH2 : GW_CAP_OAUTHBEARER;
	struct buf *out;

	if (!(up->caps & need)) {
		/* Offered when CAPA was answered, gone now: the upstream changed. */
		snprintf(why, sizeof(why), "upstream does not offer AUTH=%s", mech);
		return why;
	}
	if ((out = gw_imapc_cmd(up, &lg->op, "login", credentials_done)) == NULL)
		return "cannot send login";
	buf_printf(out, "AUTHENTICATE %s", mech);
	if (up->caps & GW_CAP_SASL_IR) {
		buf_append_str(out, " ");
		buf_append(out, cred->sasl_resp, cred->sasl_resp_len);
	} else {
		buf_append(&lg->cont, cred->sasl_resp, cred->sasl_resp_len);
		buf_append_str(&lg->cont, "\r\n");
	}
	buf_append_str(out, "\r\n");
	/* XOAUTH2 answers the error with an empty response; OAUTHBEARER with ^A
	 * (RFC 7628 §3.2.3). */
	lg->sasl_err_ack = cred->mech == POP3_SASL_XOAUTH2 ? "\r\n" : "AQ==\r\n";
	return out->failed || lg->cont.failed ? "cannot send login" : NULL;
}

/* A password: AUTHENTICATE PLAIN with SASL-IR, LOGIN with quoted strings or LITERAL+, or
 * AUTHENTICATE PLAIN with a continuation. Returns why it could not be sent, or NULL. */
static const char *
send_password(struct gw_login *lg)
{
	struct gw_imapc *up = lg->up;
	const struct gw_cred *cred = lg->p.cred;
	const char *user = lg->p.user != NULL ? lg->p.user : cred->user;
	const uint8_t *u = (const uint8_t *)user, *p = cred->pass;
	size_t ulen = strlen(user), plen = cred->pass_len;
	bool litplus = (up->caps & GW_CAP_LITERALPLUS) != 0;
	enum imap_string_kind uk = imap_string_kind(u, ulen), pk = imap_string_kind(p, plen);
	struct buf *out;

	if (uk == IMAP_STRING_INVALID || pk == IMAP_STRING_INVALID)
		return NULL;	/* checked at PASS already: the caller refuses them */
	if ((up->caps & GW_CAP_AUTH_PLAIN) && (up->caps & GW_CAP_SASL_IR)) {
		if ((out = gw_imapc_cmd(up, &lg->op, "login", credentials_done)) == NULL)
			return "cannot send login";
		buf_append_str(out, "AUTHENTICATE PLAIN ");
		imap_write_sasl_plain(out, u, ulen, p, plen);
	} else if (!(up->caps & GW_CAP_LOGINDISABLED) &&
	    ((uk == IMAP_STRING_QUOTED && pk == IMAP_STRING_QUOTED) || litplus)) {
		if ((out = gw_imapc_cmd(up, &lg->op, "login", credentials_done)) == NULL)
			return "cannot send login";
		buf_append_str(out, "LOGIN ");
		imap_write_astring(out, u, ulen, litplus);
		buf_append_str(out, " ");
		imap_write_astring(out, p, plen, litplus);
	} else if (up->caps & GW_CAP_AUTH_PLAIN) {
		/* The response goes after the server's "+": nothing may follow in the pipe. */
		lg->pipelined = false;
		if ((out = gw_imapc_cmd(up, &lg->op, "login", credentials_done)) == NULL)
			return "cannot send login";
		buf_append_str(out, "AUTHENTICATE PLAIN");
		imap_write_sasl_plain(&lg->cont, u, ulen, p, plen);
		buf_append_str(&lg->cont, "\r\n");
	} else {
		return "upstream offers no login method for these credentials";
	}
	buf_append_str(out, "\r\n");
	return out->failed ? "cannot send login" : NULL;
}

void
gw_login_ready(struct gw_login *lg)
{
	const struct gw_cred *cred = lg->p.cred;
	const char *user = lg->p.user != NULL ? lg->p.user : cred->user;
	const char *why;

	if (lg->up == NULL)
		return;
	if (cred->mech == POP3_SASL_PLAIN &&
	    (imap_string_kind((const uint8_t *)user, strlen(user)) == IMAP_STRING_INVALID ||
	    imap_string_kind(cred->pass, cred->pass_len) == IMAP_STRING_INVALID)) {
		/* The last line of defence: never a CR, LF or NUL upstream. */
		login_end(lg, GW_LOGIN_REFUSED, "credentials with CR, LF or NUL");
		return;
	}
	if (lg->p.id_addr != NULL && (lg->up->caps & GW_CAP_ID))
		send_id(lg);
	lg->pipelined = cred->mech == POP3_SASL_PLAIN;
	why = cred->mech == POP3_SASL_PLAIN ? send_password(lg) : send_bearer(lg);
	gw_cred_wipe(lg->p.cred);
	if (why != NULL) {
		login_end(lg, GW_LOGIN_TEMP, why);
		return;
	}
	if (lg->pipelined && !send_select_and_list(lg)) {
		login_end(lg, GW_LOGIN_TEMP, "cannot send SELECT");
		return;
	}
	gw_imapc_send(lg->up);
}

void
gw_login_start(struct gw_login *lg, struct gw_imapc *up, const struct gw_login_params *p)
{
	memset(lg, 0, sizeof(*lg));
	lg->up = up;
	lg->p = *p;
	gw_imapc_op_begin(up, &lg->op, &login_handler);
}
