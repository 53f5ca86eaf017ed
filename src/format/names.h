/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How resource names become directory entries and how ids become URL path
 * segments. Entry names never contain '/', are never "." or "..", are at
 * most NAME_MAX bytes and are unique among siblings; ids can never change which endpoint a URL names.
 * All functions are pure and thread-safe; results are malloc'd, caller frees.
 */
#ifndef DSFS_NAMES_H
#define DSFS_NAMES_H

#include <stddef.h>

/* The longest entry name, NAME_MAX: longer escaped names are shortened (docs/tree.md rule 5). */
#define DSFS_NAMES_MAX 255

/*
 * Escapes a name for use as an entry: '/', '%', control characters and
 * DEL become %XX; "." and ".." become "%2E" and "%2E%2E"; other bytes
 * (UTF-8 included) stay. An empty name gives the escaped id. NULL on ENOMEM.
 */
char *dsfs_names_entry(const char *name, const char *id);

/*
 * The entry of id in a .by-id directory: the id escaped as a name, shortened
 * as in dsfs_names_dedupe when too long. An empty id has no entry: "".
 * NULL on ENOMEM.
 */
char *dsfs_names_by_id(const char *id);

/*
 * Undoes what escaping did: each '%' followed by two hex digits becomes
 * that byte (any other '%' stays as it is: "%~" in shortened entries). A
 * byte 0 ("%00") has no place in a C string and would cut the text short:
 * -EINVAL. 0 with *out malloc'd, or -EINVAL or -ENOMEM (*out NULL).
 */
int dsfs_names_unescape(const char *s, char **out);

/* Percent-encodes s for one URL path segment (only A-Z a-z 0-9 - _ ~ stay; '.' too unless s is "." or ".."). */
char *dsfs_names_url_segment(const char *s);

/*
 * Undoes dsfs_names_url_segment: %XX escapes decoded, anything else kept.
 * NULL on ENOMEM, or when an escape decodes to a NUL byte.
 */
char *dsfs_names_url_unescape(const char *s);

/*
 * Makes entries[0..n) unique and at most DSFS_NAMES_MAX bytes, given each
 * entry's resource id. Colliding entries (with each other or with a
 * reserved name such as ".by-id") and entries that are too long become
 * "<entry>@<tag>": the tag is the escaped id with '@' escaped too, so the
 * last '@' always separates the two, or "%~" and 16 hex digits of a hash
 * when that is over 128 bytes; the entry is cut (at a character) so the
 * whole fits. Entries are replaced in place (old ones freed).
 * Returns 0 or -ENOMEM.
 */
int dsfs_names_dedupe(char **entries, char *const *ids, size_t n, const char *const *reserved);

#endif
