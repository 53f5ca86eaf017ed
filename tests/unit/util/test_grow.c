// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/util/grow.c: growing an array by doubling, within its bound. */
#include "util/grow.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	size_t cap = 0;
	char *p = dsfs_grow(NULL, &cap, 10, 1, 4, 0);

	ok(p && cap == 16, "the first growth doubles from first until need fits");
	memcpy(p, "0123456789", 10);
	ok(dsfs_grow(p, &cap, 16, 1, 4, 0) == p && cap == 16, "need within the capacity: nothing moves");
	p = dsfs_grow(p, &cap, 17, 1, 4, 0);
	ok(p && cap == 32 && !memcmp(p, "0123456789", 10), "past it: doubled, the content kept");
	ok(!dsfs_grow(p, &cap, 65, 1, 4, 64) && cap == 32, "past the bound: NULL, the array and capacity as they were");
	p = dsfs_grow(p, &cap, 40, 1, 4, 48);
	ok(p && cap == 48, "doubling stops at the bound");
	ok(!dsfs_grow(p, &cap, SIZE_MAX / 2 + 2, 1, 4, 0) && cap == 48, "a capacity that would overflow: NULL");
	free(p);
	{
		size_t n = 0;
		uint64_t *w = dsfs_grow(NULL, &n, 3, sizeof(*w), 0, 0);

		ok(w && n == 4, "first 0 starts at one element");
		ok(!dsfs_grow(w, &n, SIZE_MAX / 4, sizeof(*w), 0, 0) && n == 4, "elements whose bytes overflow: NULL");
		free(w);
	}
	return done_testing();
}
