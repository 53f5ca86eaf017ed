// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The file system's entry points, on top of its other files: attributes,
 * listings, statfs, readlink, truncate, and the open files, each opened as
 * its kind and then used only through that kind's operations (struct
 * fs_handle_ops, as the kernel's file_operations). The mount's own entries
 * (fs/own.c) and editors' files (fs/editfile.c) come before the server's.
 * The read-through kind is here: a read handle keeps the bytes it opened,
 * so a reader sees one consistent version of a file, and one read past
 * its end fetches what was added since (tail -f). Control files (fs/ctlfile.c),
 * edits (fs/editfile.c) and waits (fs/wait.c) are kinds of their own;
 * what every part shares (resolution, handles, logs) is fs/core.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/errmap.h"
#include "fs/fs_int.h"
#include "util/locks.h"
#include "util/log.h"

struct dsfs_fs *dsfs_fs_new(struct dsfs_cache *cache, struct dsfs_http *http, struct dsfs_session *session,
			    struct dsfs_tasks *tasks, const struct dsfs_fs_opts *opts)
{
	struct dsfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->cache = cache;
	fs->http = http;
	fs->session = session;
	fs->tasks = tasks;
	fs->o = *opts;
	if (opts->tasks_dir) {
		if (asprintf(&fs->tasks_path, "/%s", opts->tasks_dir) < 0 ||
		    asprintf(&fs->latest_path, "/%s/" LATEST, opts->tasks_dir) < 0) {
			fs->tasks_path = fs->latest_path = NULL;
			dsfs_fs_free(fs);
			return NULL;
		}
	}
	dsfs_mutex_init(&fs->lock, DSFS_LOCK_FS_RESULTS);
	dsfs_mutex_init(&fs->edit_lock, DSFS_LOCK_FS_EDIT);
	if (!(fs->scratch = dsfs_scratch_new())) {
		dsfs_fs_free(fs);
		return NULL;
	}
	return fs;
}

void dsfs_fs_free(struct dsfs_fs *fs)
{
	if (!fs)
		return;
	fs_results_free(fs);
	dsfs_scratch_free(fs->scratch);
	fs_edits_free(fs);
	dsfs_mutex_destroy(&fs->edit_lock);
	free(fs->tasks_path);
	free(fs->latest_path);
	dsfs_mutex_destroy(&fs->lock);
	free(fs);
}

int dsfs_fs_getattr(struct dsfs_fs *fs, const char *path, struct stat *st, unsigned *flags)
{
	struct dsfs_loc loc;
	struct dsfs_attr a;
	int ret;

	if (flags)
		*flags = 0;
	dsfs_err_clear();
	ret = fs_own_stat(fs, path, st);
	if (ret > 0 && flags && (!strcmp(path, DSFS_STATS) || !strcmp(path, EVENTS_LOG)))
		*flags = DSFS_FS_LIVE;
	if (ret)
		return ret < 0 ? ret : 0;
	if (fs_scratch_stat(fs, path, st))
		return 0;
	ret = fs_resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_getattr(fs->cache, &loc, &a);
		if (ret == -ESTALE) /* the name is now another object's (the listing was taken again) */
			ret = fs_resolve_again(fs, path, &loc);
		if (ret == -ESTALE)
			ret = dsfs_cache_getattr(fs->cache, &loc, &a);
		if (ret == -ESTALE)
			ret = -ENOENT; /* renamed under us twice: the name is not to be trusted now */
		if (ret == 0 && loc.type == DSFS_LOC_CTL) {
			struct dsfs_blob *b = fs_result_get(fs, path);

			a.size = b ? b->len : 0;
			dsfs_blob_unref(b);
		}
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0)
		fs_fill_stat(fs, &a, st);
	if (ret == 0 && flags && (a.type == DSFS_LOC_FILE || a.type == DSFS_LOC_COUNT))
		*flags = a.direct ? DSFS_FS_LIVE : a.type == DSFS_LOC_FILE ? DSFS_FS_FETCHED : 0;
	return fs_done("stat", path, ret);
}

struct fill_ctx {
	struct dsfs_fs *fs;
	const char *dir;
	dsfs_fs_fill_fn fill;
	void *ctx;
};

static int fill_one(void *ctx, const char *name, const struct dsfs_attr *attr, bool complete)
{
	struct fill_ctx *f = ctx;
	struct dsfs_attr ctl;
	struct stat st;

	if (attr->type == DSFS_LOC_CTL) { /* its size is dsfs's own: a listing gives it whole */
		ctl = *attr;
		ctl.size = fs_ctl_size(f->fs, f->dir, name);
		attr = &ctl;
		complete = true;
	}
	fs_fill_stat(f->fs, attr, &st);
	return f->fill(f->ctx, name, &st,
		       (complete ? DSFS_FS_COMPLETE : 0) |
			       (attr->type != DSFS_LOC_FILE ? 0
					: attr->direct      ? DSFS_FS_LIVE
							    : DSFS_FS_FETCHED));
}

int dsfs_fs_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx)
{
	struct fill_ctx f = { fs, path, fill, ctx };
	char *object = NULL;
	struct dsfs_loc loc;
	struct stat st;
	int ret;

	dsfs_err_clear();
	if (fs_own_readdir(fs, path, fill, ctx, &ret))
		return ret;
	ret = fs_resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readdir(fs->cache, &loc, fill_one, &f);
		if (fs->o.allow_edit && loc.type == DSFS_LOC_RESOURCE &&
		    !(object = dsfs_cache_resource_url(fs->cache, &loc)))
			ret = -ENOMEM;
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0 && fs->tasks_path && !strcmp(path, fs->tasks_path) && fs_own_stat(fs, fs->latest_path, &st) == 1)
		ret = fill(ctx, LATEST, &st, DSFS_FS_COMPLETE) ? -ENOMEM : 0;
	if (ret == 0 && object)
		ret = fs_scratch_list(fs, path, object, fill, ctx);
	free(object);
	return fs_done("readdir", path, ret);
}

/* ---- read-through files: object files and .count -------------------------------- */

static int read_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		     enum dsfs_caching *caching)
{
	int ret;

	if ((flags & O_ACCMODE) != O_RDONLY) /* an object file open for writing is an edit's kind */
		return fs_refuse("open", path, -EACCES, "a count is read-only");
	ret = dsfs_cache_open(fs->cache, &h->loc, &h->content, caching);
	if (h->loc.type == DSFS_LOC_COUNT)
		return ret;
	if (ret == -ESTALE) /* the name is now another object's (the listing was taken again) */
		ret = fs_resolve_again(fs, path, &h->loc);
	if (ret == -ESTALE)
		ret = h->loc.type == DSFS_LOC_FILE ? dsfs_cache_open(fs->cache, &h->loc, &h->content, caching)
						   : -ENOENT;
	if (ret == -ESTALE)
		ret = -ENOENT;
	h->direct = h->loc.node && *caching != DSFS_CACHING_PAGED;
	return ret;
}

static int read_through(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
			off_t off)
{
	struct dsfs_blob *b;
	int ret;

	dsfs_lock(&h->lock);
	if (h->direct && h->content && (size_t)off >= h->content->len) {
		/* Past what it held: fetch what was added since (tail -f on a task's log). */
		double age = fs->o.ttl < 1.0 ? fs->o.ttl : 1.0;

		if (dsfs_cache_reread(fs->cache, &h->loc, age, &b) == 0)
			dsfs_blob_take_grown(&h->content, b);
	}
	if (newest && h->content && newest->version > h->content->version) {
		dsfs_blob_unref(h->content); /* the kernel's shared pages never go back to older bytes */
		h->content = dsfs_blob_ref(newest);
	}
	ret = fs_copy_out(h->content, buf, size, off);
	dsfs_unlock(&h->lock);
	return ret;
}

/* Object files and .count, read through the cache. */
static const struct fs_handle_ops read_ops = {
	.name = "read-through",
	.open = read_open,
	.read = read_through,
	.content = fs_handle_content,
};

/* ---- open files, through their kind's operations -------------------------------- */

/* Which kind of open file each type of location opens as for reading; directories open as none. */
static const struct fs_handle_ops *const opens_as[] = {
	[DSFS_LOC_FILE] = &read_ops,
	[DSFS_LOC_COUNT] = &read_ops,
	[DSFS_LOC_CTL] = &fs_ctl_ops,
	[DSFS_LOC_WAIT] = &fs_wait_ops,
};

int dsfs_fs_open(struct dsfs_fs *fs, const char *path, int flags, pid_t pid, struct dsfs_handle **out,
		 enum dsfs_caching *caching)
{
	const struct fs_handle_ops *ops;
	struct dsfs_scratch_file *f = NULL;
	struct dsfs_handle *h;
	struct dsfs_loc loc = { 0 };
	int ret;

	dsfs_err_clear();
	*out = NULL;
	*caching = DSFS_CACHING_DIRECT;
	/* the mount's own files and editors' files first: they are no server's */
	ops = fs_own_ops(fs, path);
	if (!ops && (f = fs_scratch_find(fs, path)))
		ops = &fs_editor_ops;
	if (!ops) {
		ret = fs_resolve(fs, path, &loc);
		if (ret)
			return fs_done("open", path, ret);
		if (loc.type == DSFS_LOC_FILE && (flags & O_ACCMODE) != O_RDONLY)
			ops = &fs_object_edit_ops;
		else if ((size_t)loc.type < sizeof(opens_as) / sizeof(opens_as[0]))
			ops = opens_as[loc.type];
	}
	h = ops ? fs_handle_new(ops) : NULL;
	ret = !ops ? -EISDIR : !h ? -ENOMEM : 0;
	if (ret) {
		dsfs_cache_put(fs->cache, &loc);
		dsfs_scratch_put(f);
		return fs_done("open", path, ret);
	}
	h->loc = loc; /* keeps the references */
	h->file = f;
	ret = ops->open(fs, h, path, flags, pid, caching);
	if (ret) {
		fs_handle_free(fs, h);
		return fs_done("open", path, ret);
	}
	*out = h;
	return 0;
}

int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size, off_t off)
{
	if (off < 0)
		return -EINVAL;
	dsfs_err_clear();
	return h->ops->read(fs, h, newest, buf, size, off);
}

struct dsfs_blob *dsfs_fs_content(struct dsfs_handle *h)
{
	return h->ops->content ? h->ops->content(h) : NULL;
}

int dsfs_fs_write(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	dsfs_err_clear();
	return h->ops->write ? h->ops->write(fs, h, buf, size, off, pid) : -EBADF;
}

int dsfs_fs_flush(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open)
{
	if (!h->ops->flush)
		return 0;
	dsfs_err_clear();
	return h->ops->flush(fs, h, pid, keeps_open);
}

int dsfs_fs_ftruncate(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size)
{
	return h->ops->ftruncate ? h->ops->ftruncate(fs, h, size) : -EACCES;
}

void dsfs_fs_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	if (!h)
		return;
	if (h->ops->release)
		h->ops->release(fs, h);
	fs_handle_free(fs, h);
}

/*
 * truncate(2) of an editable object file: the same edit as opening it for
 * writing, cutting it to size and closing it (an in-place write), so its
 * checks, its one PUT and its refusals are an edit's own: a cut that
 * leaves no JSON object is EINVAL, nothing sent; one that changes nothing
 * sends nothing.
 */
static int truncate_object(struct dsfs_fs *fs, const char *path, off_t size)
{
	enum dsfs_caching caching;
	struct dsfs_handle *h;
	int ret = dsfs_fs_open(fs, path, O_WRONLY, 0, &h, &caching);

	if (ret)
		return ret;
	ret = dsfs_fs_ftruncate(fs, h, size);
	if (ret == 0)
		ret = dsfs_fs_flush(fs, h, 0, false); /* opened by pid 0: this close is the opener's */
	dsfs_fs_release(fs, h);
	return ret;
}

int dsfs_fs_truncate(struct dsfs_fs *fs, const char *path, off_t size)
{
	struct dsfs_scratch_file *f = fs_scratch_find(fs, path);
	struct dsfs_loc loc;
	bool edit = false;
	int ret;

	dsfs_err_clear();
	if (f) {
		ret = dsfs_scratch_truncate(f, size);
		dsfs_scratch_put(f);
		return ret;
	}
	ret = fs_resolve(fs, path, &loc);
	if (ret == 0) {
		edit = fs->o.allow_edit && dsfs_cache_editable(&loc);
		ret = edit || (loc.type == DSFS_LOC_CTL && size == 0) ? 0 : -EACCES;
		if (ret)
			fs_refuse("truncate", path, ret,
				  loc.type == DSFS_LOC_CTL ? "a control file takes commands, not a size"
							   : fs_not_editable(fs, &loc));
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0 && edit)
		return truncate_object(fs, path, size); /* the edit logs its own outcome */
	return fs_done("truncate", path, ret);
}


int dsfs_fs_statfs(struct dsfs_fs *fs, const char *path, struct dsfs_space *out)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	if (fs_is_own(fs, path))
		path = "/";
	ret = fs_resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_space(fs->cache, &loc, out);
		dsfs_cache_put(fs->cache, &loc);
	}
	return fs_done("statfs", path, ret);
}

int dsfs_fs_readlink(struct dsfs_fs *fs, const char *path, char *buf, size_t size)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	if (fs_is_latest(fs, path)) {
		char *t = fs_latest_target(fs);

		if (!t)
			return -ENOENT;
		snprintf(buf, size, "%s", t);
		free(t);
		return 0;
	}
	ret = fs_resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readlink(fs->cache, &loc, buf, size);
		dsfs_cache_put(fs->cache, &loc);
	}
	return fs_done("readlink", path, ret);
}
