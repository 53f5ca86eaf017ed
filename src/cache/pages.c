// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guard of a paged listing: it remembers a 64-bit hash of every item's
 * identity, counts items and bytes, and refuses the page that shows the
 * server is not paging (nothing new, more than its total) or that would
 * take the listing past the memory bound.
 */
#include "cache/pages.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsfs_pages {
	size_t max_bytes, bytes;
	const char *id_field;
	unsigned long items;
	uint64_t *seen; /* open addressing; 0 marks a free slot */
	size_t nseen, cap;
};

struct dsfs_pages *dsfs_pages_new(size_t max_bytes, const char *id_field)
{
	struct dsfs_pages *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->max_bytes = max_bytes;
	p->id_field = id_field;
	return p;
}

void dsfs_pages_free(struct dsfs_pages *p)
{
	if (!p)
		return;
	free(p->seen);
	free(p);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

/* The identity of an item: its id when it has one, else its whole text. */
static uint64_t identity(const struct dsfs_pages *p, json_object *o)
{
	json_object *v;

	if (p->id_field && json_object_object_get_ex(o, p->id_field, &v) &&
	    (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int)))
		return fnv1a(json_object_get_string(v));
	return fnv1a(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static void put(uint64_t *set, size_t cap, uint64_t h)
{
	size_t i = (size_t)(h & (cap - 1));

	while (set[i] && set[i] != h)
		i = (i + 1) & (cap - 1);
	set[i] = h;
}

static bool has(const struct dsfs_pages *p, uint64_t h)
{
	size_t i;

	if (!p->cap)
		return false;
	for (i = (size_t)(h & (p->cap - 1)); p->seen[i]; i = (i + 1) & (p->cap - 1))
		if (p->seen[i] == h)
			return true;
	return false;
}

/* Makes room for n more hashes, keeping the table at most half full. */
static int reserve(struct dsfs_pages *p, size_t n)
{
	size_t cap = p->cap ? p->cap : 64;
	uint64_t *set;

	while (cap < 2 * (p->nseen + n))
		cap *= 2;
	if (cap == p->cap)
		return 0;
	set = calloc(cap, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < p->cap; i++)
		if (p->seen[i])
			put(set, cap, p->seen[i]);
	free(p->seen);
	p->seen = set;
	p->cap = cap;
	return 0;
}

int dsfs_pages_add(struct dsfs_pages *p, json_object *arr, size_t bytes, long total, char *why, size_t whylen)
{
	size_t i, n = json_object_array_length(arr), fresh = 0;

	if (total >= 0 && p->items + n > (unsigned long)total) {
		snprintf(why, whylen, "the server's total is %ld, but it has listed %lu items", total, p->items + n);
		return -EIO;
	}
	p->bytes += bytes;
	if (p->max_bytes && p->bytes > p->max_bytes) {
		snprintf(why, whylen, "the list is longer than cache_size allows (%zu bytes after %lu items)", p->bytes,
			 p->items + n);
		return -EIO;
	}
	if (reserve(p, n))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		uint64_t h = identity(p, json_object_array_get_idx(arr, i));

		if (has(p, h))
			continue;
		put(p->seen, p->cap, h);
		p->nseen++;
		fresh++;
	}
	if (n && !fresh) {
		snprintf(why, whylen, "the page brings nothing new after %lu items: the server repeats itself",
			 p->items);
		return -EIO;
	}
	p->items += n;
	return 0;
}
