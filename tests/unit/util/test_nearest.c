// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/util/nearest.c: how far a typo is from the word meant. */
#include "util/nearest.h"
#include "tap.h"

#include <string.h>

int main(void)
{
	is_int(dsfs_nearest_distance("nmae", "name"), 1, "two swapped letters are one edit");
	is_int(dsfs_nearest_distance("stats.sise", "stats.size"), 1, "one changed letter");
	is_int(dsfs_nearest_distance("", "abc"), 3, "three added");
	is_int(dsfs_nearest_distance("name", "name"), 0, "the same word");
	ok(dsfs_nearest_close("nmae", 1) && !dsfs_nearest_close("nmae", 3) && dsfs_nearest_close("volumeTpye", 3),
	   "near enough grows with the word");
	is_int(dsfs_nearest_distance_n("cache_ttl=5", 9, "cache_tll=%s", 9), 1, "only the bytes given count");
	{
		const char *words[] = { "policy.id", "policy.name", "name", NULL };
		struct dsfs_nearest n = { .typed = "policy", .len = 6, .d = (size_t)-1 };

		for (size_t i = 0; words[i]; i++)
			dsfs_nearest_offer(&n, words[i], strlen(words[i]));
		ok(n.best == words[0] && n.d == 3 && n.best_len == 9, "the nearest offered wins");
		n = (struct dsfs_nearest){ .typed = "frobnicate", .len = 10, .d = 3 };
		for (size_t i = 0; words[i]; i++)
			dsfs_nearest_offer(&n, words[i], strlen(words[i]));
		ok(!n.best && n.d == 3, "none nearer than the bound: no best");
	}
	return done_testing();
}
