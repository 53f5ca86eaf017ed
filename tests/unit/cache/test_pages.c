// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/cache/pages.c: the bounds a paged listing stays within. */
#include <errno.h>
#include <stdlib.h>

#include "cache/pages.h"
#include "tap.h"

/* A page of items with ids first .. first+n-1. */
static json_object *page(int first, int n)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		char id[32];

		snprintf(id, sizeof(id), "v-%d", first + i);
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_array_add(arr, o);
	}
	return arr;
}

static int add(struct dsfs_pages *p, int first, int n, size_t bytes, long total, char *why, size_t len)
{
	json_object *arr = page(first, n);
	int ret = dsfs_pages_add(p, arr, bytes, total, why, len);

	json_object_put(arr);
	return ret;
}

int main(void)
{
	struct dsfs_pages *p = dsfs_pages_new(0, "id");
	char why[160];

	is_int(add(p, 0, 3, 100, -1, why, sizeof(why)), 0, "a first page passes");
	is_int(add(p, 3, 3, 100, -1, why, sizeof(why)), 0, "the next page passes");
	is_int(add(p, 5, 3, 100, -1, why, sizeof(why)), 0, "a page overlapping the last but bringing new ids passes");
	is_int(add(p, 0, 0, 10, -1, why, sizeof(why)), 0, "an empty page passes");
	is_int(add(p, 0, 3, 100, -1, why, sizeof(why)), -EIO, "a page of ids already listed fails");
	ok(strstr(why, "nothing new"), "and says why: %s", why);
	dsfs_pages_free(p);

	p = dsfs_pages_new(0, "id");
	is_int(add(p, 0, 5, 100, 10, why, sizeof(why)), 0, "items within the total pass");
	is_int(add(p, 5, 6, 100, 10, why, sizeof(why)), -EIO, "more items than the total fail");
	ok(strstr(why, "total is 10"), "and say why: %s", why);
	dsfs_pages_free(p);

	p = dsfs_pages_new(1000, "id");
	is_int(add(p, 0, 2, 600, -1, why, sizeof(why)), 0, "a listing within the bound passes");
	is_int(add(p, 2, 2, 600, -1, why, sizeof(why)), -EIO, "a listing past the bound fails");
	ok(strstr(why, "cache_size"), "and says why: %s", why);
	dsfs_pages_free(p);

	/* without an id field, items are known by their text; 5000 distinct ids grow the table */
	p = dsfs_pages_new(0, NULL);
	is_int(add(p, 0, 5000, 1, -1, why, sizeof(why)), 0, "5000 items by text pass");
	is_int(add(p, 4999, 2, 1, -1, why, sizeof(why)), 0, "one new item is an advance");
	is_int(add(p, 10, 100, 1, -1, why, sizeof(why)), -EIO, "items seen before, by text, fail");
	dsfs_pages_free(p);
	dsfs_pages_free(NULL);
	return done_testing();
}
