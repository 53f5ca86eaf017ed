/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Growing an array in place: the one loop behind every buffer and list
 * that takes in an answer of unknown size (a response body, a rendering,
 * a listing, a page of items). The caller owns the array; this only
 * reallocates it. Thread-safe.
 */
#ifndef DSFS_GROW_H
#define DSFS_GROW_H

#include <stddef.h>

/*
 * Makes the array p of *cap elements of size elem hold at least need:
 * the capacity doubles from first (or from *cap) until it does, and at
 * most max elements (0: no bound but the address space). Returns the
 * array, moved or not, with *cap its new capacity; NULL when need is
 * over max, the size overflows or memory is short: then p is unchanged,
 * still the caller's, and *cap too.
 */
void *dsfs_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first, size_t max);

#endif
