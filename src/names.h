/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How resource names become directory entries and how ids become URL path
 * segments. Entry names never contain '/', are never "." or "..", and are
 * unique among siblings; ids can never change which endpoint a URL names.
 * All functions are pure and thread-safe; results are malloc'd, caller frees.
 */
#ifndef DSFS_NAMES_H
#define DSFS_NAMES_H

#include <stddef.h>

/*
 * Escapes a name for use as an entry: '/', '%', control characters and
 * DEL become %XX; "." and ".." become "%2E" and "%2E%2E"; other bytes
 * (UTF-8 included) stay. An empty name gives the escaped id. NULL on ENOMEM.
 */
char *dsfs_names_entry(const char *name, const char *id);

/* Percent-encodes s for one URL path segment (only A-Z a-z 0-9 - _ ~ stay; '.' too unless s is "." or ".."). */
char *dsfs_names_url_segment(const char *s);

/*
 * Makes entries[0..n) unique, given each entry's resource id. Colliding
 * entries (with each other or with a reserved name such as ".by-id") become
 * "<entry>@<escaped id>", where the id also has '@' escaped so the last '@'
 * always separates the two. Entries are replaced in place (old ones freed).
 * Returns 0 or -ENOMEM.
 */
int dsfs_names_dedupe(char **entries, char *const *ids, size_t n, const char *const *reserved);

#endif
