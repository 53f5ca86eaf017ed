// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Path resolution and POSIX semantics. A path is resolved component by
 * component through the cache; the mount's own entries (fs/own.c) and
 * editors' files (fs/editfile.c) come first. Attributes, listings, and the
 * open files: a read handle keeps the bytes it opened, so a reader sees
 * one consistent version of a file; read-through files fetch what was
 * added when read past their end (tail -f). Control files (fs/ctlfile.c),
 * edits (fs/editfile.c) and waits (fs/wait.c) are open files of their own kinds.
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


int fs_done(const char *op, const char *path, int ret)
{
	char why[1200];
	bool quiet;

	if (ret < 0 && dsfs_err_describe(why, sizeof(why))) {
		/* A GET answered 404 is a name that went away: routine. A refused change never is. */
		quiet = (ret == -ENOENT && !strncmp(why, "GET ", 4)) || ret == -EINTR; /* or a reader that went */
		dsfs_log(quiet ? DSFS_LOG_DEBUG : DSFS_LOG_ERR, "%s %s: %s (%s)", op, path, why, strerror(-ret));
	}
	return ret;
}

int fs_refuse(const char *op, const char *path, int ret, const char *why)
{
	dsfs_log(DSFS_LOG_WARN, "%s %s: refused: %s (%s)", op, path, why, strerror(-ret));
	return ret;
}

int fs_resolve(struct dsfs_fs *fs, const char *path, struct dsfs_loc *out)
{
	char name[4096];
	const char *p = path, *end;
	struct dsfs_loc cur, next;
	int ret;

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
			dsfs_cache_put(fs->cache, &cur);
			return -ENAMETOOLONG;
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
	*out = cur;
	return 0;
}

int fs_resolve_again(struct dsfs_fs *fs, const char *path, struct dsfs_loc *loc)
{
	int ret;

	dsfs_cache_put(fs->cache, loc);
	ret = fs_resolve(fs, path, loc);
	if (ret)
		memset(loc, 0, sizeof(*loc));
	return ret ? ret : -ESTALE;
}

void fs_fill_stat(const struct dsfs_fs *fs, const struct dsfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_mtime = st->st_ctime = st->st_atime = a->mtime;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	switch (a->type) {
	case DSFS_LOC_RESOURCE:
	case DSFS_LOC_COLLECTION:
	case DSFS_LOC_BYID:
	case DSFS_LOC_WHERE_DIR:
	case DSFS_LOC_WHERE:
		/* writable where mkdir, rmdir or an editor acts, so that default_permissions lets the owner act */
		st->st_mode = S_IFDIR | (a->writable ? (fs->o.allow_other_actions ? 0777 : 0755) :
					 a->editable && fs->o.allow_edit ? 0755 : 0555);
		st->st_nlink = 2;
		return;
	case DSFS_LOC_LINK:
		st->st_mode = S_IFLNK | 0777;
		break;
	case DSFS_LOC_FILE:
	case DSFS_LOC_WAIT:
	case DSFS_LOC_COUNT:
		st->st_mode = S_IFREG | (a->editable && fs->o.allow_edit ? 0644 : 0444);
		break;
	case DSFS_LOC_CTL:
		st->st_mode = S_IFREG | (fs->o.allow_other_actions ? 0666 : 0600); /* by default only the owner acts */
		break;
	}
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
}

char *fs_split_parent(const char *path, const char **name)
{
	char *parent = strdup(path), *slash;

	if (!parent)
		return NULL;
	slash = strrchr(parent, '/');
	*name = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return parent;
}

void fs_log_dry_run(const char *op, const char *path, const struct dsfs_post_result *res)
{
	json_object *body;

	if (!res->request)
		return;
	body = dsfs_dialect_field(res->request, "body");
	dsfs_log(DSFS_LOG_INFO, "%s %s: dry run: would send %s %s%s%s; nothing sent", op, path,
		 json_object_get_string(dsfs_dialect_field(res->request, "method")),
		 json_object_get_string(dsfs_dialect_field(res->request, "url")), body ? " " : "",
		 body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "");
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
	return f->fill(f->ctx, name, &st, (complete ? DSFS_FS_COMPLETE : 0) |
					     (attr->type != DSFS_LOC_FILE ? 0 : attr->direct ? DSFS_FS_LIVE : DSFS_FS_FETCHED));
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
		if (fs->o.allow_edit && loc.type == DSFS_LOC_RESOURCE && !(object = dsfs_cache_resource_url(fs->cache, &loc)))
			ret = -ENOMEM;
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0 && fs->tasks_path && !strcmp(path, fs->tasks_path) &&
	    fs_own_stat(fs, fs->latest_path, &st) == 1)
		ret = fill(ctx, LATEST, &st, DSFS_FS_COMPLETE) ? -ENOMEM : 0;
	if (ret == 0 && object)
		ret = fs_scratch_list(fs, path, object, fill, ctx);
	free(object);
	return fs_done("readdir", path, ret);
}

struct dsfs_handle *fs_handle_new(const struct fs_handle_ops *ops)
{
	struct dsfs_handle *h = calloc(1, sizeof(*h));

	if (h) {
		h->ops = ops;
		dsfs_mutex_init(&h->lock, DSFS_LOCK_FS_HANDLE);
	}
	return h;
}

/* Frees what every kind of handle may hold (the kind's own part went first, in its release). */
static void handle_free(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	dsfs_scratch_put(h->file);
	dsfs_cache_put(fs->cache, &h->loc);
	dsfs_blob_unref(h->content);
	free(h->path);
	free(h->buf);
	dsfs_mutex_destroy(&h->lock);
	free(h);
}

bool fs_last_close(struct dsfs_handle *h, pid_t pid)
{
	/*
	 * Every close() flushes, the close of a copy a child inherited (a
	 * command substitution, any program run in between) included. Only
	 * the last close of the process that opened the file, or, once it has
	 * gone, of the process that wrote the pending bytes, ends the line.
	 */
	if (pid == h->opener)
		h->opener_closed = true;
	return pid == h->opener || (h->opener_closed && pid == h->writer);
}

int fs_copy_out(const struct dsfs_blob *b, char *buf, size_t size, off_t off)
{
	if (!b || (size_t)off >= b->len)
		return 0;
	if (size > b->len - (size_t)off)
		size = b->len - (size_t)off;
	memcpy(buf, b->data + off, size);
	return (int)size;
}

int fs_read_content(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		    off_t off)
{
	int ret;

	dsfs_lock(&h->lock);
	ret = fs_copy_out(h->content, buf, size, off);
	dsfs_unlock(&h->lock);
	return ret;
}

struct dsfs_blob *fs_handle_content(struct dsfs_handle *h)
{
	struct dsfs_blob *b;

	dsfs_lock(&h->lock);
	b = dsfs_blob_ref(h->content);
	dsfs_unlock(&h->lock);
	return b;
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
		ret = h->loc.type == DSFS_LOC_FILE ? dsfs_cache_open(fs->cache, &h->loc, &h->content, caching) : -ENOENT;
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

const struct fs_handle_ops fs_read_ops = {
	.name = "read-through",
	.open = read_open,
	.read = read_through,
	.content = fs_handle_content,
};

/* ---- open files, through their kind's operations -------------------------------- */

/* Which kind of open file each type of location opens as for reading; directories open as none. */
static const struct fs_handle_ops *const opens_as[] = {
	[DSFS_LOC_FILE] = &fs_read_ops,
	[DSFS_LOC_COUNT] = &fs_read_ops,
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
		handle_free(fs, h);
		return fs_done("open", path, ret);
	}
	*out = h;
	return 0;
}

int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		 off_t off)
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
	handle_free(fs, h);
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

