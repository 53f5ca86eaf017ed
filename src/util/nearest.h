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

/* The same for the la bytes at a and the lb bytes at b (no terminator needed). */
size_t dsfs_nearest_distance_n(const char *a, size_t la, const char *b, size_t lb);

/*
 * True when a word d edits from another is close enough to suggest: at
 * most 2 edits, 3 when word (the typed one, or the one suggested) is
 * longer than 6 bytes.
 */
bool dsfs_nearest_close(const char *word, size_t d);

/*
 * The nearest of the words offered so far to the len bytes at typed: set
 * typed, len and d (offers must be nearer than d: a bound, or
 * (size_t)-1 for none), then offer each candidate; best is NULL while
 * none was nearer, else the nearest (best_len bytes of it), d edits away.
 */
struct dsfs_nearest {
	const char *typed;
	size_t len;
	size_t d;
	const char *best;
	size_t best_len;
};

/* Takes the len bytes at cand as n's best when they are nearer to n's typed word than its best so far. */
void dsfs_nearest_offer(struct dsfs_nearest *n, const char *cand, size_t len);

#endif
