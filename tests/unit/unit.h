/* tests/unit/unit.h: what several unit tests share. */
#ifndef POPGATE_TESTS_UNIT_H
#define POPGATE_TESTS_UNIT_H

/* A string literal as the (pointer, length) pair of its bytes, NULs inside included and the
 * terminating one left out: { W("a\0b"), ... } is { "a\0b", 3, ... }. */
#define W(s) s, sizeof(s) - 1

#endif
