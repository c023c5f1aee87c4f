/* common/uids.h: searching an ascending array of IMAP UIDs (the snapshot's, the cache's).
 * Pure. */
#ifndef POPGATE_UIDS_H
#define POPGATE_UIDS_H

#include <stddef.h>
#include <stdint.h>

/* The first index whose UID is >= uid (n when there is none). */
static inline size_t
uids_lower_bound(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#endif
