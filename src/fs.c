// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Path resolution and POSIX read semantics. A path is resolved component by
 * component through the cache; a handle keeps the bytes it opened, so a
 * reader sees one consistent version of a file even if the cache refreshes
 * it meanwhile. .dsfs/ is resolved here, before the cache: it is the
 * mount's own state, not the API's, and is left out of the root listing so
 * crawlers see only the estate.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"
#include "log.h"

#define DSFS_DIR "/.dsfs"
#define DSFS_STATS DSFS_DIR "/stats"

struct dsfs_fs {
	struct dsfs_cache *cache;
	struct dsfs_http *http;
	struct dsfs_session *session;
	struct dsfs_fs_opts o;
};

struct dsfs_handle {
	struct dsfs_blob *content;
};

struct dsfs_fs *dsfs_fs_new(struct dsfs_cache *cache, struct dsfs_http *http,
			    struct dsfs_session *session, const struct dsfs_fs_opts *opts)
{
	struct dsfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->cache = cache;
	fs->http = http;
	fs->session = session;
	fs->o = *opts;
	return fs;
}

void dsfs_fs_free(struct dsfs_fs *fs)
{
	free(fs);
}

/* Logs a failed operation once, if a request caused it. Returns ret. */
static int done(const char *op, const char *path, int ret)
{
	char why[1200];

	if (ret < 0 && dsfs_err_describe(why, sizeof(why)))
		dsfs_log(ret == -ENOENT ? DSFS_LOG_DEBUG : DSFS_LOG_ERR, "%s %s: %s (%s)", op, path, why,
			 strerror(-ret));
	return ret;
}

/* Resolves an absolute path to a location (references held: put it). */
static int resolve(struct dsfs_fs *fs, const char *path, struct dsfs_loc *out)
{
	char name[4096];
	const char *p = path, *end;
	struct dsfs_loc cur, next;
	int ret = 0;

	dsfs_cache_root(fs->cache, &cur);
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchr(p, '/');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof(name)) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, (size_t)(end - p));
		name[end - p] = '\0';
		ret = dsfs_cache_lookup(fs->cache, &cur, name, &next);
		dsfs_cache_put(fs->cache, &cur);
		if (ret)
			return ret;
		cur = next;
		p = end;
	}
	if (ret) {
		dsfs_cache_put(fs->cache, &cur);
		return ret;
	}
	*out = cur;
	return 0;
}

static void fill_stat(const struct dsfs_fs *fs, const struct dsfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_mtime = st->st_ctime = st->st_atime = a->mtime;
	switch (a->type) {
	case DSFS_LOC_RESOURCE:
	case DSFS_LOC_COLLECTION:
	case DSFS_LOC_BYID:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case DSFS_LOC_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)a->size;
		break;
	case DSFS_LOC_FILE:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)a->size;
		st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
		break;
	}
	st->st_blksize = 4096;
}

/* The JSON of .dsfs/stats: request and cache counters. */
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
		     "    \"nodes\": %zu,\n    \"bytes\": %zu\n  },\n  \"page_cap_seen\": %lu\n}\n",
		     h.get, h.post, h.put, h.del, h.other, h.get + h.post + h.put + h.del + h.other,
		     h.retries, h.errors, dsfs_session_logins(fs->session), c.hits, c.misses,
		     c.evictions, c.nodes, c.bytes, c.page_cap_seen);
	return dsfs_blob_new(buf, (size_t)n);
}

static bool synthetic_stat(struct dsfs_fs *fs, const char *path, struct stat *st)
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
	} else {
		return false;
	}
	fill_stat(fs, &a, st);
	return true;
}

int dsfs_fs_getattr(struct dsfs_fs *fs, const char *path, struct stat *st)
{
	struct dsfs_loc loc;
	struct dsfs_attr a;
	int ret;

	dsfs_err_clear();
	if (synthetic_stat(fs, path, st))
		return 0;
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_getattr(fs->cache, &loc, &a);
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0)
		fill_stat(fs, &a, st);
	return done("stat", path, ret);
}

struct fill_ctx {
	struct dsfs_fs *fs;
	dsfs_fs_fill_fn fill;
	void *ctx;
};

static int fill_one(void *ctx, const char *name, const struct dsfs_attr *attr, bool complete)
{
	struct fill_ctx *f = ctx;
	struct stat st;

	fill_stat(f->fs, attr, &st);
	return f->fill(f->ctx, name, &st, complete);
}

int dsfs_fs_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx)
{
	struct fill_ctx f = { fs, fill, ctx };
	struct dsfs_loc loc;
	struct stat st;
	int ret;

	dsfs_err_clear();
	if (!strcmp(path, DSFS_DIR)) {
		synthetic_stat(fs, DSFS_STATS, &st);
		return fill(ctx, "stats", &st, true) ? -ENOMEM : 0;
	}
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readdir(fs->cache, &loc, fill_one, &f);
		dsfs_cache_put(fs->cache, &loc);
	}
	return done("readdir", path, ret);
}

int dsfs_fs_open(struct dsfs_fs *fs, const char *path, int flags, struct dsfs_handle **h, bool *direct_io)
{
	struct dsfs_blob *content = NULL;
	struct dsfs_loc loc;
	bool direct = false;
	int ret;

	dsfs_err_clear();
	*h = NULL;
	*direct_io = false;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	if (!strcmp(path, DSFS_STATS)) {
		content = stats_blob(fs);
		ret = content ? 0 : -ENOMEM;
		*direct_io = true;
	} else {
		ret = resolve(fs, path, &loc);
		if (ret == 0) {
			ret = loc.type == DSFS_LOC_FILE ? dsfs_cache_open(fs->cache, &loc, &content, &direct)
							: -EISDIR;
			dsfs_cache_put(fs->cache, &loc);
		}
	}
	if (ret == 0) {
		*h = calloc(1, sizeof(**h));
		if (!*h) {
			dsfs_blob_unref(content);
			ret = -ENOMEM;
		} else {
			(*h)->content = content;
			*direct_io = *direct_io || direct;
		}
	}
	return done("open", path, ret);
}

int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, char *buf, size_t size, off_t off)
{
	(void)fs;
	if (off < 0)
		return -EINVAL;
	if ((size_t)off >= h->content->len)
		return 0;
	if (size > h->content->len - (size_t)off)
		size = h->content->len - (size_t)off;
	memcpy(buf, h->content->data + off, size);
	return (int)size;
}

void dsfs_fs_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	(void)fs;
	if (!h)
		return;
	dsfs_blob_unref(h->content);
	free(h);
}

int dsfs_fs_readlink(struct dsfs_fs *fs, const char *path, char *buf, size_t size)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readlink(fs->cache, &loc, buf, size);
		dsfs_cache_put(fs->cache, &loc);
	}
	return done("readlink", path, ret);
}
