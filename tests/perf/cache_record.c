/* tests/perf/cache_record.c: what the UIDL cache costs its thread for a 100,000-message
 * mailbox (gateway/cache_async.c runs it off the event loop): a first login (lookup, then
 * the record of every message with its content key), a repeat login (lookup only), and a
 * rebuild (new UIDVALIDITY and UIDs, every message matched by key). `make measure-cache`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/cache.h"

#define N 100000

static void
on_learned(void *ctx, size_t idx, const char *uidl, size_t len)
{
	(void)ctx;
	(void)idx;
	(void)uidl;
	(void)len;
}

static void
on_need(void *ctx, size_t idx)
{
	(void)ctx;
	(void)idx;
}

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int
main(void)
{
	static const char *path = "/tmp/popgate-measure-cache.sqlite";
	struct cache_answer a = { on_learned, on_need, NULL };
	struct cache_entry *e = calloc(N, sizeof(*e));
	uint32_t *uids = calloc(N, sizeof(*uids));
	const char *error = NULL;
	struct cache_stats st;
	struct cache *c;
	struct cache_found found;
	double t;

	unlink(path);
	if (e == NULL || uids == NULL || (c = cache_open(path, &error)) == NULL) {
		fprintf(stderr, "cache_record: %s\n", error ? error : "out of memory");
		return 1;
	}
	for (size_t i = 0; i < N; i++) {
		e[i] = (struct cache_entry){ i, (uint32_t)i + 1, 1000, "", NULL };
		snprintf(e[i].ckey, sizeof(e[i].ckey), "%032zx", i % 99000);	/* duplicates too */
		uids[i] = (uint32_t)i + 1;
	}
	t = now();
	if (cache_lookup_learned(c, "u", "INBOX", 1, uids, N, &a, &found, &error) < 0 ||
	    cache_record(c, "u", "INBOX", 1, e, N, &a, &st, &error) < 0)
		goto fail;
	printf("first login, %d messages: lookup + record %.2f s\n", N, now() - t);
	t = now();
	if (cache_lookup_learned(c, "u", "INBOX", 1, uids, N, &a, &found, &error) < 0)
		goto fail;
	printf("repeat login: lookup %.3f s\n", now() - t);
	for (size_t i = 0; i < N; i++) {	/* appended again in reverse order */
		e[i].uid = (uint32_t)i + 200001;
		snprintf(e[i].ckey, sizeof(e[i].ckey), "%032zx", (N - 1 - i) % 99000);
		uids[i] = e[i].uid;
	}
	t = now();
	if (cache_lookup_learned(c, "u", "INBOX", 2, uids, N, &a, &found, &error) < 0 ||
	    cache_record(c, "u", "INBOX", 2, e, N, &a, &st, &error) < 0)
		goto fail;
	printf("rebuilt mailbox: lookup + record %.2f s (matched %zu, new %zu, lost %zu)\n",
	    now() - t, st.matched, st.fresh, st.lost);
	/* A migrated user: N pending rows (an old server's UIDLs and keys), then the first
	 * login matches all of them. */
	{
		struct cache_pending *p = calloc(N, sizeof(*p));
		char (*names)[16] = calloc(N, sizeof(*names));
		size_t added;

		if (p == NULL || names == NULL)
			goto fail;
		for (size_t i = 0; i < N; i++) {
			snprintf(names[i], sizeof(names[i]), "old-%zu", i);
			p[i] = (struct cache_pending){ names[i], e[i].ckey, NULL, 1000 };
		}
		t = now();
		if (cache_add_pending(c, "m", "INBOX", p, N, &added, &error) < 0)
			goto fail;
		printf("migration: %zu pending rows stored %.2f s\n", added, now() - t);
		t = now();
		if (cache_lookup_learned(c, "m", "INBOX", 3, uids, N, &a, &found, &error) < 0 ||
		    cache_record(c, "m", "INBOX", 3, e, N, &a, &st, &error) < 0)
			goto fail;
		printf("migrated first login: lookup + record %.2f s (imported %zu, new %zu)\n",
		    now() - t, st.imported, st.fresh);
		free(p);
		free(names);
	}
	cache_free(&c);
	unlink(path);
	free(e);
	free(uids);
	return 0;
fail:
	fprintf(stderr, "cache_record: %s\n", error);
	return 1;
}
