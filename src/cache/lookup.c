// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cache's lookups that need no lock of their own and send nothing: a
 * listed resource by id or by entry name, or its place in the listing
 * (binary searches of a listing's two sorted arrays), and the URLs of
 * objects and collections joined from their parents'. Callers hold the
 * cache lock where the listing can change.
 */
#include "cache/cache_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/names.h"

struct dsfs_node *cache_find_by_id(struct dsfs_node *coll, const char *id)
{
	size_t lo = 0, hi = coll->nitems;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(id, coll->by_id[mid]->id);

		if (r == 0)
			return coll->by_id[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Index of the item of coll's listing named entry, or SIZE_MAX (binary search: items are sorted by entry). */
static size_t entry_index(const struct dsfs_node *coll, const char *entry)
{
	size_t lo = 0, hi = coll->nitems;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(entry, coll->items[mid]->entry);

		if (r == 0)
			return mid;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

struct dsfs_node *cache_find_by_entry(struct dsfs_node *coll, const char *entry)
{
	size_t i = entry_index(coll, entry);

	return i == SIZE_MAX ? NULL : coll->items[i];
}

size_t cache_item_index(const struct dsfs_node *coll, const struct dsfs_node *r)
{
	size_t i = entry_index(coll, r->entry);

	return i != SIZE_MAX && coll->items[i] == r ? i : SIZE_MAX;
}

struct dsfs_node *cache_find_by_id_entry(struct dsfs_node *coll, const char *name, const char *id)
{
	struct dsfs_node *r = strstr(name, "%~") ? NULL : cache_find_by_id(coll, id);
	char *e;

	for (size_t i = 0; !r && strstr(name, "%~") && i < coll->nitems; i++) {
		e = dsfs_names_by_id(coll->by_id[i]->id);
		if (e && !strcmp(e, name))
			r = coll->by_id[i];
		free(e);
	}
	if (!r)
		return NULL;
	e = dsfs_names_by_id(r->id);
	if (!e || strcmp(e, name))
		r = NULL; /* "%2e" or an empty id: not an entry readdir shows */
	free(e);
	return r;
}

/*
 * base + "/" + the escaped id (or segment). A list URL's own query (a filter,
 * as in "/backup?filter=appid:%3D7") is not part of its objects' URLs.
 */
char *cache_join_url(const char *base, const char *segment, const char *id)
{
	char *seg = id ? dsfs_names_url_segment(id) : NULL;
	size_t len = strlen(base) + strlen(segment) + (seg ? strlen(seg) : 0) + 3;
	int blen = (int)strcspn(base, "?");
	char *url = (id && !seg) ? NULL : malloc(len);

	if (url)
		snprintf(url, len, "%.*s/%s", blen, base, seg ? seg : segment);
	free(seg);
	return url;
}

/*
 * URL of the collection of segment under the resource at base (with id
 * base_id). A segment starting with '/' hangs off the API root instead, with
 * "{id}" standing for the resource's id (DSCC volume sets, say).
 */
char *cache_collection_url(const char *base, const char *base_id, const char *segment)
{
	const char *hole;
	char *seg, *url;

	if (segment[0] != '/')
		return cache_join_url(base, segment, NULL);
	hole = strstr(segment, "{id}");
	if (!hole || !base_id)
		return strdup(segment);
	seg = dsfs_names_url_segment(base_id);
	if (!seg || asprintf(&url, "%.*s%s%s", (int)(hole - segment), segment, seg, hole + 4) < 0)
		url = NULL;
	free(seg);
	return url;
}
