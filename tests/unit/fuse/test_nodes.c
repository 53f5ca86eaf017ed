// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/fuse/nodes.c: the kernel's node ids, their paths and their lifetimes. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fuse/nodes.h"
#include "tap.h"

static void is_path(struct dsfs_nodes *n, uint64_t id, const char *want, const char *name)
{
	char *p = NULL;
	int ret = dsfs_nodes_path(n, id, &p);

	ok(ret == 0 && p && !strcmp(p, want), "%s: %s (%d)", name, p ? p : "(none)", ret);
	free(p);
}

static bool listed_kept(void *ctx, const char *name)
{
	(void)ctx;
	return !strcmp(name, "kept");
}

int main(void)
{
	struct dsfs_nodes *n = dsfs_nodes_new();
	uint64_t servers, s0, vol, again, fresh;
	char *p = NULL, name[NAME_MAX + 2];
	size_t count, bytes;

	ok(n != NULL, "a table");
	is_path(n, DSFS_NODES_ROOT, "/", "the root is /");
	servers = dsfs_nodes_lookup(n, DSFS_NODES_ROOT, "servers");
	s0 = dsfs_nodes_lookup(n, servers, "svm-0");
	vol = dsfs_nodes_lookup(n, s0, "vol 1");
	ok(servers > DSFS_NODES_ROOT && s0 != servers && vol != s0, "each name its own id");
	is_path(n, vol, "/servers/svm-0/vol 1", "a path is rebuilt from the names");
	again = dsfs_nodes_lookup(n, s0, "vol 1");
	ok(again == vol, "a second lookup gives the same id");
	ok(dsfs_nodes_find(n, s0, "vol 1") == vol && dsfs_nodes_find(n, s0, "nope") == 0, "find");
	ok(dsfs_nodes_child_path(n, s0, "snapshots", &p) == 0 && !strcmp(p, "/servers/svm-0/snapshots"),
	   "a child's path: %s", p);
	free(p);

	/* the parent stays while a child is held, whatever the kernel forgets first */
	dsfs_nodes_forget(n, s0, 1);
	is_path(n, vol, "/servers/svm-0/vol 1", "a forgotten parent of a held child stays");
	dsfs_nodes_forget(n, vol, 1);
	is_path(n, vol, "/servers/svm-0/vol 1", "one lookup of two forgotten: still held");
	dsfs_nodes_forget(n, vol, 1);
	ok(dsfs_nodes_path(n, vol, &p) == -ESTALE && !p, "forgotten entirely: ESTALE");
	ok(dsfs_nodes_path(n, s0, &p) == -ESTALE, "and its parent went with it");
	is_path(n, servers, "/servers", "the grandparent still held");
	fresh = dsfs_nodes_lookup(n, servers, "svm-0");
	ok(fresh != s0, "ids are never reused: %llu after %llu", (unsigned long long)fresh, (unsigned long long)s0);

	/* rmdir: the name goes, the kernel's old node stays valid until forgotten */
	vol = dsfs_nodes_lookup(n, fresh, "snap");
	dsfs_nodes_unlink(n, fresh, "snap");
	ok(dsfs_nodes_find(n, fresh, "snap") == 0, "an unlinked name is not found");
	is_path(n, vol, "/servers/svm-0/snap", "the unlinked node keeps its path");
	again = dsfs_nodes_lookup(n, fresh, "snap");
	ok(again != vol, "a new object of that name gets a new id");
	dsfs_nodes_forget(n, vol, 1);
	ok(dsfs_nodes_path(n, vol, &p) == -ESTALE, "the unlinked node goes when forgotten");
	is_path(n, again, "/servers/svm-0/snap", "the new one is unaffected");

	/* bounds */
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ok(dsfs_nodes_child_path(n, servers, name, &p) == -ENAMETOOLONG, "a name past NAME_MAX");
	ok(dsfs_nodes_lookup(n, 999999, "x") == 0, "an unknown parent");
	dsfs_nodes_forget(n, DSFS_NODES_ROOT, 1000);
	is_path(n, DSFS_NODES_ROOT, "/", "the root is never forgotten");

	/* many: the tables grow, and every node is found again */
	{
		uint64_t ids[5000];
		bool all = true;

		for (int i = 0; i < 5000; i++) {
			snprintf(name, sizeof(name), "v%d", i);
			ids[i] = dsfs_nodes_lookup(n, servers, name);
		}
		for (int i = 0; i < 5000 && all; i++) {
			snprintf(name, sizeof(name), "v%d", i);
			all = dsfs_nodes_find(n, servers, name) == ids[i];
		}
		ok(all, "5,000 names found after the tables grew");
		dsfs_nodes_stats(n, &count, &bytes);
		ok(count > 5000 && bytes > count * 40, "stats: %zu nodes, %zu bytes", count, bytes);
		for (int i = 0; i < 5000; i++)
			dsfs_nodes_forget(n, ids[i], 1);
		dsfs_nodes_stats(n, &count, &bytes);
		ok(count < 10, "forgotten: %zu nodes left", count);
	}

	/* the names looked up longest ago, for the kernel to let go of; each once, then the next ones */
	{
		struct dsfs_nodes *t = dsfs_nodes_new();
		struct dsfs_nodes_entry e[8];
		uint64_t a = dsfs_nodes_lookup(t, DSFS_NODES_ROOT, "old-a");
		size_t got;

		dsfs_nodes_lookup(t, a, "old-b");
		dsfs_nodes_lookup(t, DSFS_NODES_ROOT, "newer");
		got = dsfs_nodes_oldest(t, e, 2);
		ok(got == 2 && e[0].parent == a && !strcmp(e[0].name, "old-b") && e[1].parent == DSFS_NODES_ROOT &&
			   !strcmp(e[1].name, "newer"),
		   "the two oldest leaves, oldest first; not old-a, which holds old-b (%zu: %s, %s)", got,
		   got ? e[0].name : "", got > 1 ? e[1].name : "");
		dsfs_nodes_forget(t, dsfs_nodes_find(t, a, "old-b"), 1);
		got = dsfs_nodes_oldest(t, e, 8);
		ok(got == 2 && !strcmp(e[0].name, "old-a") && !strcmp(e[1].name, "newer"),
		   "old-b forgotten: old-a is a leaf now, and the oldest (%zu: %s)", got, got ? e[0].name : "");
		dsfs_nodes_forget(t, a, 1);
		dsfs_nodes_forget(t, dsfs_nodes_find(t, DSFS_NODES_ROOT, "newer"), 1);
		ok(dsfs_nodes_oldest(t, e, 8) == 0, "none held: none asked for");
		dsfs_nodes_free(t);
	}

	/* the names the kernel holds that a listing lost; hidden names are never listed, so never lost */
	{
		struct dsfs_nodes *t = dsfs_nodes_new();
		struct dsfs_nodes_entry e[8];
		uint64_t d = dsfs_nodes_lookup(t, DSFS_NODES_ROOT, "d");
		uint64_t x = dsfs_nodes_lookup(t, d, "x");
		size_t got;

		dsfs_nodes_lookup(t, d, "kept");
		dsfs_nodes_lookup(t, d, ".by-id");
		got = dsfs_nodes_held_except(t, d, listed_kept, NULL, e, 8);
		ok(got == 1 && e[0].parent == d && !strcmp(e[0].name, "x"), "x is lost (%zu)", got);
		dsfs_nodes_rename(t, d, "x", DSFS_NODES_ROOT, "moved");
		ok(dsfs_nodes_held_except(t, d, listed_kept, NULL, e, 8) == 0, "renamed away: not lost here");
		got = dsfs_nodes_held_except(t, DSFS_NODES_ROOT, listed_kept, NULL, e, 8);
		ok(got == 2, "but in its new directory, beside d (%zu)", got);
		dsfs_nodes_forget(t, x, 1);
		got = dsfs_nodes_held_except(t, DSFS_NODES_ROOT, listed_kept, NULL, e, 8);
		ok(got == 1 && !strcmp(e[0].name, "d"), "forgotten: gone (%zu)", got);
		dsfs_nodes_free(t);
	}

	/* listings the kernel may keep: the same digest again says so, another one or 0 does not */
	ok(!dsfs_nodes_listed(n, servers, 42), "a first listing is not the kernel's yet");
	ok(dsfs_nodes_listed(n, servers, 42), "the same listing again: the kernel's copy is right");
	ok(!dsfs_nodes_listed(n, servers, 43), "another listing: it is not");
	ok(!dsfs_nodes_listed(n, servers, 0) && !dsfs_nodes_listed(n, servers, 0), "0 is never the kernel's");
	ok(!dsfs_nodes_listed(n, 999999, 42) && !dsfs_nodes_listed(n, 999999, 42), "an unknown directory");
	dsfs_nodes_free(n);
	dsfs_nodes_free(NULL);
	return done_testing();
}
