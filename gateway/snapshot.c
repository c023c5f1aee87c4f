/* gateway/snapshot.c: building the fixed message list; see snapshot.h. */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static int
snapshot_grow(struct gw_snapshot *snap)
{
	size_t ncap = snap->cap ? snap->cap * 2 : 64;
	uint32_t *uid;
	uint64_t *size;

	if (ncap > GW_SNAPSHOT_MAX)
		ncap = GW_SNAPSHOT_MAX;
	if (ncap <= snap->cap)
		return -1;
	if ((uid = realloc(snap->uid, ncap * sizeof(*uid))) == NULL)
		return -1;
	snap->uid = uid;
	if ((size = realloc(snap->size, ncap * sizeof(*size))) == NULL)
		return -1;
	snap->size = size;
	snap->cap = ncap;
	return 0;
}

int
gw_snapshot_add(struct gw_snapshot *snap, uint32_t uid, uint64_t size)
{
	if (snap->count == snap->cap && snapshot_grow(snap) < 0)
		return -1;
	snap->uid[snap->count] = uid;
	snap->size[snap->count] = size;
	snap->count++;
	return 0;
}

struct pair {
	uint32_t uid;
	uint64_t size;
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int
gw_snapshot_sort(struct gw_snapshot *snap)
{
	struct pair *p = NULL;
	size_t n = 0;

	if (snap->count > 0) {
		if ((p = malloc(snap->count * sizeof(*p))) == NULL)
			return -1;
		for (size_t i = 0; i < snap->count; i++)
			p[i] = (struct pair){ snap->uid[i], snap->size[i] };
		/* Servers answer in sequence order, which is UID order; sort anyway, cheaply. */
		qsort(p, snap->count, sizeof(*p), pair_cmp);
		for (size_t i = 0; i < snap->count; i++) {
			if (n > 0 && p[n - 1].uid == p[i].uid)
				n--;		/* a later FETCH of the same UID wins */
			p[n++] = p[i];
		}
		for (size_t i = 0; i < n; i++) {
			snap->uid[i] = p[i].uid;
			snap->size[i] = p[i].size;
		}
		free(p);
	}
	snap->count = n;
	if ((snap->flags = calloc(n ? n : 1, sizeof(*snap->flags))) == NULL)
		return -1;
	return 0;
}

int
gw_snapshot_learn(struct gw_snapshot *snap, size_t idx, const char *uidl, size_t len)
{
	size_t off = buf_len(&snap->pool);

	if (idx >= snap->count || len == 0 || len >= CACHE_UIDL_MAX || off >= UINT32_MAX - 128)
		return -1;
	if (snap->learned == NULL &&
	    (snap->learned = calloc(snap->count, sizeof(*snap->learned))) == NULL)
		return -1;
	buf_set_max(&snap->pool, (size_t)GW_SNAPSHOT_MAX * CACHE_UIDL_MAX);
	if (buf_append(&snap->pool, uidl, len) < 0 || buf_append(&snap->pool, "", 1) < 0)
		return -1;
	snap->learned[idx] = (uint32_t)off + 1;
	return 0;
}

const char *
gw_snapshot_uidl(const struct gw_snapshot *snap, size_t idx, char buf[CACHE_UIDL_MAX])
{
	if (snap->learned != NULL && snap->learned[idx] != 0)
		return (const char *)buf_data(&snap->pool) + snap->learned[idx] - 1;
	cache_derive_uidl(snap->uidvalidity, snap->uid[idx], buf);
	return buf;
}

void
gw_snapshot_free(struct gw_snapshot *snap)
{
	free(snap->uid);
	free(snap->size);
	free(snap->flags);
	free(snap->learned);
	buf_free(&snap->pool);
	memset(snap, 0, sizeof(*snap));
}

void
gw_snapshot_stat(const struct gw_snapshot *snap, size_t *count_r, uint64_t *octets_r)
{
	size_t count = 0;
	uint64_t octets = 0;

	for (size_t i = 0; i < snap->count; i++) {
		if (snap->flags[i] & GW_MSG_DELETED)
			continue;
		count++;
		octets += snap->size[i];
	}
	*count_r = count;
	*octets_r = octets;
}
