/* tests/unit/unit.h: what several unit tests share. */
#ifndef POPGATE_TESTS_UNIT_H
#define POPGATE_TESTS_UNIT_H

/* A string literal as the (pointer, length) pair of its bytes, NULs inside included and the
 * terminating one left out: { W("a\0b"), ... } is { "a\0b", 3, ... }. */
#define W(s) s, sizeof(s) - 1

/* A SQLite file for one test (tests of the UIDL cache): a fresh name that does not exist
 * yet, and its removal with the -wal and -shm files SQLite leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline int
unit_db_name(char *path, size_t size)
{
	int fd;

	snprintf(path, size, "/tmp/popgate-test-db-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	close(fd);
	unlink(path);
	return 0;
}

static inline void
unit_db_remove(const char *path)
{
	char p[256];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

#endif
