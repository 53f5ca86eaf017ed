// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The mount's own entries, resolved before the cache: .dsfs/stats (the
 * request and cache counters), events/log (fs/events.h) and tasks/latest (a
 * link to the task the last action here started). .dsfs/ and events/ are
 * left out of the root listing so crawlers see only the estate.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/events.h"
#include "fs/fs_int.h"
#include "util/locks.h"
#include "format/names.h"

static struct dsfs_blob *stats_blob(struct dsfs_fs *fs)
{
	struct dsfs_http_stats h;
	struct dsfs_cache_stats c;
	char buf[1024];
	int n;

	dsfs_http_stats(fs->http, &h);
	dsfs_cache_stats(fs->cache, &c);
	n = snprintf(buf, sizeof(buf),
		     "{\n  \"requests\": {\n    \"GET\": %lu,\n    \"POST\": %lu,\n    \"PUT\": %lu,\n"
		     "    \"DELETE\": %lu,\n    \"other\": %lu,\n    \"total\": %lu\n  },\n"
		     "  \"retries\": %lu,\n  \"errors\": %lu,\n  \"logins\": %lu,\n"
		     "  \"cache\": {\n    \"hits\": %lu,\n    \"misses\": %lu,\n    \"evictions\": %lu,\n"
		     "    \"prefetched\": %lu,\n"
		     "    \"nodes\": %zu,\n    \"bytes\": %zu\n  },\n  \"page_cap_seen\": %lu\n}\n",
		     h.get, h.post, h.put, h.del, h.other, h.get + h.post + h.put + h.del + h.other, h.retries,
		     h.errors, dsfs_session_logins(fs->session), c.hits, c.misses, c.evictions, c.prefetched, c.nodes,
		     c.bytes, c.page_cap_seen);
	return dsfs_blob_new(buf, (size_t)n);
}

bool fs_is_latest(struct dsfs_fs *fs, const char *path)
{
	return fs->latest_path && !strcmp(path, fs->latest_path);
}

char *fs_latest_target(struct dsfs_fs *fs)
{
	char *id = dsfs_tasks_latest(fs->tasks), *entry;

	if (!id)
		return NULL;
	entry = dsfs_names_entry(id, id);
	free(id);
	return entry;
}

int fs_own_stat(struct dsfs_fs *fs, const char *path, struct stat *st)
{
	struct dsfs_attr a = { .mtime = fs->o.mounted };

	if (!strcmp(path, DSFS_DIR)) {
		a.type = DSFS_LOC_BYID; /* any directory type */
		a.ino = 2;
	} else if (!strcmp(path, DSFS_STATS)) {
		struct dsfs_blob *b = stats_blob(fs);

		a.type = DSFS_LOC_FILE;
		a.ino = 3;
		a.size = b ? b->len : 0;
		dsfs_blob_unref(b);
	} else if (fs->o.events && !strcmp(path, EVENTS_DIR)) {
		a.type = DSFS_LOC_BYID; /* any directory type */
		a.ino = 5;
	} else if (fs->o.events && !strcmp(path, EVENTS_LOG)) {
		struct dsfs_blob *b = dsfs_events_text(fs->o.events, true);

		a.type = DSFS_LOC_FILE;
		a.ino = 6;
		a.size = b ? b->len : 0;
		dsfs_blob_unref(b);
	} else if (fs_is_latest(fs, path)) {
		char *t = fs_latest_target(fs);

		if (!t)
			return -ENOENT;
		a.type = DSFS_LOC_LINK;
		a.ino = 4;
		a.size = strlen(t);
		free(t);
	} else {
		return 0;
	}
	fs_fill_stat(fs, &a, st);
	return 1;
}

bool fs_is_own(struct dsfs_fs *fs, const char *path)
{
	return !strncmp(path, DSFS_DIR, strlen(DSFS_DIR)) || fs_is_latest(fs, path) ||
		(fs->o.events && !strncmp(path, EVENTS_DIR, strlen(EVENTS_DIR)));
}

bool fs_own_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx, int *ret)
{
	struct stat st;

	if (!strcmp(path, DSFS_DIR)) {
		fs_own_stat(fs, DSFS_STATS, &st);
		*ret = fill(ctx, "stats", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
		return true;
	}
	if (fs->o.events && !strcmp(path, EVENTS_DIR)) {
		fs_own_stat(fs, EVENTS_LOG, &st);
		*ret = fill(ctx, "log", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
		return true;
	}
	return false;
}

static int stats_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		      enum dsfs_caching *caching)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	return (h->content = stats_blob(fs)) ? 0 : -ENOMEM;
}

/* .dsfs/stats: the counters as they were at open. */
static const struct fs_handle_ops stats_ops = {
	.name = ".dsfs/stats",
	.open = stats_open,
	.read = fs_read_content,
	.content = fs_handle_content,
};

static int events_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		       enum dsfs_caching *caching)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	dsfs_events_open(fs->o.events);
	if (!(h->content = dsfs_events_text(fs->o.events, true))) {
		dsfs_events_close(fs->o.events);
		return -ENOMEM;
	}
	return 0;
}

static int events_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		       off_t off)
{
	int ret;

	dsfs_lock(&h->lock);
	if ((size_t)off >= h->content->len) /* what the feed has gained since */
		dsfs_blob_take_grown(&h->content, dsfs_events_text(fs->o.events, true));
	ret = fs_copy_out(h->content, buf, size, off);
	dsfs_unlock(&h->lock);
	return ret;
}

static void events_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	dsfs_events_close(fs->o.events);
}

/* events/log: read past its end, it gives what the feed has gained since (tail -f). */
static const struct fs_handle_ops events_ops = {
	.name = "events/log",
	.open = events_open,
	.read = events_read,
	.release = events_release,
};

const struct fs_handle_ops *fs_own_ops(struct dsfs_fs *fs, const char *path)
{
	if (!strcmp(path, DSFS_STATS))
		return &stats_ops;
	if (fs->o.events && !strcmp(path, EVENTS_LOG))
		return &events_ops;
	return NULL;
}
