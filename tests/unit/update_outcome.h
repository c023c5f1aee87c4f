/* tests/unit/update_outcome.h: what UPDATE (gateway/update.c) told its owner, for the tests
 * that drive it against a scripted IMAP connection (test_gw_update.c, test_gw_listing_quit.c). */
#ifndef POPGATE_TEST_UPDATE_OUTCOME_H
#define POPGATE_TEST_UPDATE_OUTCOME_H

#include <stdio.h>

struct outcome {
	int calls;
	size_t removed;
	char error[200];
};

static void
update_done(void *ctx, size_t removed, const char *error)
{
	struct outcome *o = ctx;

	o->calls++;
	o->removed = removed;
	snprintf(o->error, sizeof(o->error), "%s", error ? error : "");
}

#endif
