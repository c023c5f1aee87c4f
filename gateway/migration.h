/* gateway/migration.h: a user's first login with [migration] set, the policy around the old
 * POP3 server's conversation (migrate.h):
 *   1. ask the cache thread whether it knows the user (rows, pending rows, a login before);
 *   2. if not, read the old server's UIDLs and headers with the user's credentials;
 *   3. store them as pending rows (cache_add_pending()), which the login's cache_record()
 *      then matches to the IMAP messages by content key.
 * It runs next to the IMAP login, on the same loop, and never touches the session: its
 * owner hears one outcome. The credentials reach the old server only once the IMAP server
 * has accepted them (gw_migration_release()): a guesser never gets a try there. A known user costs one indexed read on the cache thread; a
 * routine poll never reaches the old server. */
#ifndef POPGATE_MIGRATION_H
#define POPGATE_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "cache_async.h"
#include "login.h"
#include "migrate.h"

enum gw_migration_result {
	GW_MIGRATION_NOT_NEEDED,	/* the cache knows the user already */
	GW_MIGRATION_STORED,		/* the old server's UIDLs are pending rows now */
	GW_MIGRATION_FAILED,		/* why says what: the old server refused or could not be
					   reached, the cache could not tell or store;
					   [migration] required decides what it costs */
	GW_MIGRATION_IMPOSSIBLE,	/* a bearer-token login: a POP3 server takes no token.
					   Logged; the login goes on (required or not: such a
					   user could never log in otherwise) */
};

struct gw_migration_params {
	struct gw_cache_async *cache;
	const struct gw_migrate_target *target;
	const char *user_key;		/* the cache's form of the user (gw_config_user_key) */
	const char *mailbox;		/* [upstream] mailbox: where the pending rows belong */
	const struct gw_cred *cred;	/* copied: the user as typed, and the password (a
					   bearer token cannot log in to a POP3 server) */
	const char *log_id;
	void (*done)(void *ctx, enum gw_migration_result r, const char *why);
	void *ctx;
};

struct gw_migration {
	struct gw_migration_params p;
	struct ev_loop *loop;
	bool running;
	bool bearer;			/* the client logged in with a token */
	bool released;			/* the IMAP login accepted the credentials */
	struct gw_cred cred;		/* the copy, wiped once the conversation has it */
	struct gw_cache_req *req;	/* the known-user question, then the store */
	struct gw_migrate conv;
	bool conversing;
	ev_timer soon;			/* an outcome known at once still comes from the loop */
	enum gw_migration_result result;
	char why[256];
};

/* Starts; done runs once, always from the loop. */
void gw_migration_start(struct gw_migration *m, struct ev_loop *loop,
    const struct gw_migration_params *p);
/* The IMAP server accepted the credentials: only now do they go to the old server (the
 * connection, its greeting and CAPA may be ready by then). */
void gw_migration_release(struct gw_migration *m);
/* No outcome wanted any more (the login failed, the session ended): everything stops, the
 * password copy is wiped. Safe on a zeroed struct and twice. */
void gw_migration_abort(struct gw_migration *m);

#endif
