// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/nearest.c: how far a typo is from the word meant. */
#include "nearest.h"
#include "tap.h"

int main(void)
{
	is_int(dsfs_nearest_distance("nmae", "name"), 1, "two swapped letters are one edit");
	is_int(dsfs_nearest_distance("stats.sise", "stats.size"), 1, "one changed letter");
	is_int(dsfs_nearest_distance("", "abc"), 3, "three added");
	is_int(dsfs_nearest_distance("name", "name"), 0, "the same word");
	ok(dsfs_nearest_close("nmae", 1) && !dsfs_nearest_close("nmae", 3) && dsfs_nearest_close("volumeTpye", 3),
	   "near enough grows with the word");
	return done_testing();
}
