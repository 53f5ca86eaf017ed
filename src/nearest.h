/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * "Did you mean": the known word nearest to a mistyped one, by edit
 * distance. Pure functions, thread-safe.
 */
#ifndef DSFS_NEAREST_H
#define DSFS_NEAREST_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Edits that turn a into b: a character added, dropped or changed, or two
 * neighbours swapped ("nmae" is one edit from "name"). Words of 64 bytes
 * or more are never near: (size_t)-1.
 */
size_t dsfs_nearest_distance(const char *a, const char *b);

/* True when a word d edits from typed is close enough to suggest (at most 2 edits; 3 past 6 bytes). */
bool dsfs_nearest_close(const char *typed, size_t d);

#endif
