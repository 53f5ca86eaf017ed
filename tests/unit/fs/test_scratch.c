// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/fs/scratch.c: editors' files, their table, renames and bounds. */
#include <errno.h>
#include <string.h>

#include "fs/scratch.h"
#include "tap.h"

static int count_names(void *ctx, const char *name, struct dsfs_scratch_file *f)
{
	(void)name;
	(void)f;
	(*(int *)ctx)++;
	return 0;
}

int main(void)
{
	struct dsfs_scratch *st = dsfs_scratch_new();
	struct dsfs_scratch_file *f, *g, *files[DSFS_SCRATCH_FILES];
	struct dsfs_blob *base = dsfs_blob_new("{}", 2), *b;
	char buf[16], path[64];
	int n = 0;

	is_int(dsfs_scratch_create(st, "/v/a", base, "/vol/1", &f), 0, "a file is made");
	is_int(dsfs_scratch_create(st, "/v/a", NULL, NULL, &g), -EEXIST, "not twice");
	is_int(dsfs_scratch_write(f, "hello", 5, 3), 5, "a write past the end");
	is_int(dsfs_scratch_read(f, buf, sizeof(buf), 0), 8, "the gap reads as zeros");
	ok(!memcmp(buf, "\0\0\0hello", 8), "zeros, then the bytes");
	is_int(dsfs_scratch_write(f, "x", 1, DSFS_SCRATCH_MAX), -EFBIG, "past the bound: EFBIG");
	is_int(dsfs_scratch_truncate(f, 2), 0, "truncated");
	b = dsfs_scratch_bytes(f);
	is_int((int)b->len, 2, "to 2 bytes");
	dsfs_blob_unref(b);
	b = dsfs_scratch_base(f);
	ok(b == base, "the base is the object as shown");
	dsfs_blob_unref(b);
	ok(!strcmp(dsfs_scratch_object(f), "/vol/1"), "it knows the object it was made beside");

	is_int(dsfs_scratch_create(st, "/v/b", NULL, NULL, &g), 0, "a second file");
	is_int(dsfs_scratch_rename(st, "/v/a", "/v/b"), 0, "renamed over the second");
	dsfs_scratch_put(g);
	g = dsfs_scratch_get(st, "/v/b");
	ok(g == f, "the name now holds the first file");
	dsfs_scratch_put(g);
	ok(!dsfs_scratch_get(st, "/v/a"), "its old name is free");
	dsfs_scratch_list(st, "/v", count_names, &n);
	is_int(n, 1, "one file listed in /v");
	n = 0;
	dsfs_scratch_list(st, "/", count_names, &n);
	is_int(n, 0, "none directly in /");

	for (int i = 1; i < DSFS_SCRATCH_FILES; i++) {
		snprintf(path, sizeof(path), "/w/%d", i);
		if (dsfs_scratch_create(st, path, NULL, NULL, &files[i]))
			break;
	}
	is_int(dsfs_scratch_create(st, "/w/one-too-many", NULL, NULL, &g), -ENOSPC, "bounded in number");
	for (int i = 1; i < DSFS_SCRATCH_FILES; i++)
		dsfs_scratch_put(files[i]);
	is_int(dsfs_scratch_unlink(st, "/v/b"), 0, "unlinked");
	is_int(dsfs_scratch_read(f, buf, sizeof(buf), 0), 2, "an open file outlives its name");
	is_int(dsfs_scratch_unlink(st, "/v/b"), -ENOENT, "gone");
	dsfs_scratch_put(f);
	dsfs_blob_unref(base);
	dsfs_scratch_free(st);
	return done_testing();
}
