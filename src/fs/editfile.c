// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Editing (-o allow_edit): an object file open for writing holds a buffer
 * sent as one edit (a PUT of the changed fields) at its writer's close,
 * and truncate(2) is the same edit cut to size (fs/fs.c opens one, cuts
 * it and closes it, through these operations). Beside the object, an
 * editor's own files (sed -i's temporary, vim's swap) live in memory
 * (fs/scratch.h) and are listed, renamed and unlinked here; renaming one over
 * the object file sends the edit. An edit is only ever of the object it
 * was made for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "fs/fs_int.h"
#include "util/locks.h"
#include "util/log.h"
#include "fs/tasks.h"

/* An edit the server carries out in a task: until it ends, the object's next edit would land on a guess. */
struct fs_edit_record {
	char *url, *task;
	struct fs_edit_record *next;
};

/* Edit records kept at most; an older one is forgotten (its task has long ended in practice). */
#define EDIT_RECORDS 256

static void edit_record_free(struct fs_edit_record *e)
{
	free(e->url);
	free(e->task);
	free(e);
}

const char *fs_not_editable(const struct dsfs_fs *fs, const struct dsfs_loc *loc)
{
	if (loc->type == DSFS_LOC_FILE && dsfs_cache_editable(loc))
		return "editing objects needs the mount option allow_edit";
	return "the server's files are read-only here: the API has no update of them (docs/tree.md, Editing)";
}


/* The object file an editor's file at path would edit, i.e. of path's directory (references held). */
static int edit_target_of(struct dsfs_fs *fs, const char *path, struct dsfs_loc *obj)
{
	struct dsfs_loc dir;
	const char *name;
	char *parent = fs_split_parent(path, &name);
	int ret;

	memset(obj, 0, sizeof(*obj));
	if (!parent)
		return -ENOMEM;
	/* one name for each editor's file: beside the object in its collection, not under a .where view of it */
	ret = fs->o.allow_edit && !strstr(parent, "/.where/") ? fs_resolve(fs, parent, &dir) : -EPERM;
	free(parent);
	if (ret == 0) {
		ret = dsfs_cache_edit_target(fs->cache, &dir, obj);
		dsfs_cache_put(fs->cache, &dir);
	}
	return ret == -ENOENT ? -ENOENT : ret ? -EPERM : 0;
}

/* Inode numbers of editors' files: apart from the cache's hashes and the synthetic entries. */
#define SCRATCH_INO_BASE 0x5c5c000000000000ull

static void scratch_fill_stat(const struct dsfs_fs *fs, struct dsfs_scratch_file *f, struct stat *st)
{
	size_t size;
	time_t mtime;
	uint64_t ino;

	dsfs_scratch_stat(f, &size, &mtime, &ino);
	memset(st, 0, sizeof(*st));
	st->st_ino = SCRATCH_INO_BASE | ino;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_mode = S_IFREG | 0644;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

/* The API URL of the object an editor's file at path would edit now (malloc'd), or NULL. */
static char *object_beside(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_loc obj;
	char *url = NULL;

	if (edit_target_of(fs, path, &obj) == 0)
		url = dsfs_cache_resource_url(fs->cache, &obj);
	dsfs_cache_put(fs->cache, &obj);
	return url;
}

/*
 * A file made beside one object is not there once its directory's name is
 * another object's (the server renamed them): it never shows in, or edits,
 * another object's directory.
 */
struct dsfs_scratch_file *fs_scratch_find(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_scratch_file *f = fs->o.allow_edit ? dsfs_scratch_get(fs->scratch, path) : NULL;
	char *url;

	if (!f)
		return NULL;
	url = object_beside(fs, path);
	if (!url || !dsfs_scratch_object(f) || strcmp(url, dsfs_scratch_object(f))) {
		dsfs_scratch_put(f);
		f = NULL;
	}
	free(url);
	return f;
}

bool fs_scratch_stat(struct dsfs_fs *fs, const char *path, struct stat *st)
{
	struct dsfs_scratch_file *f = fs_scratch_find(fs, path);

	if (!f)
		return false;
	scratch_fill_stat(fs, f, st);
	dsfs_scratch_put(f);
	return true;
}

struct scratch_fill {
	struct dsfs_fs *fs;
	const char *object; /* the API URL of the directory's object */
	dsfs_fs_fill_fn fill;
	void *ctx;
};

static int scratch_fill_one(void *ctx, const char *name, struct dsfs_scratch_file *f)
{
	struct scratch_fill *sf = ctx;
	struct stat st;

	if (!dsfs_scratch_object(f) || strcmp(dsfs_scratch_object(f), sf->object))
		return 0; /* made beside the object that had this directory's name before */

	scratch_fill_stat(sf->fs, f, &st);
	return sf->fill(sf->ctx, name, &st, DSFS_FS_COMPLETE);
}

int fs_scratch_list(struct dsfs_fs *fs, const char *path, const char *object, dsfs_fs_fill_fn fill, void *ctx)
{
	struct scratch_fill sf = { fs, object, fill, ctx };

	return dsfs_scratch_list(fs->scratch, path, scratch_fill_one, &sf) ? -ENOMEM : 0;
}

/*
 * An object file opened for writing: its handle holds a buffer that starts
 * as the object was shown (empty with O_TRUNC) and is sent as an edit at
 * its writer's close.
 */
static int object_edit_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
			    enum dsfs_caching *caching)
{
	struct dsfs_blob *base = NULL;
	int ret;

	if (!fs->o.allow_edit || !dsfs_cache_editable(&h->loc)) /* the API has no update, or the mount allows none */
		return fs_refuse("open for writing", path, -EPERM, fs_not_editable(fs, &h->loc));
	ret = dsfs_cache_shown(fs->cache, &h->loc, &base);
	if (ret == -ESTALE)
		ret = -ENOENT; /* the name is another object's now: an edit of it starts from a fresh open */
	if (ret == 0)
		ret = dsfs_scratch_create(NULL, NULL, base, NULL, &h->file);
	if (ret == 0 && !(flags & O_TRUNC))
		ret = dsfs_scratch_fill(h->file, base);
	dsfs_blob_unref(base);
	if (ret == 0 && !(h->path = strdup(path)))
		ret = -ENOMEM;
	h->object = true;
	h->opener = pid; /* its close, not a child's that inherited the file, sends the edit */
	return ret;
}

/* An editor's file, found by dsfs_fs_open (h->file). */
static int editor_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		       enum dsfs_caching *caching)
{
	if (!(h->path = strdup(path)))
		return -ENOMEM;
	return (flags & O_ACCMODE) != O_RDONLY && (flags & O_TRUNC) ? dsfs_scratch_truncate(h->file, 0) : 0;
}

static int edit_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		     off_t off)
{
	return dsfs_scratch_read(h->file, buf, size, off);
}

static int edit_write(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	int ret = dsfs_scratch_write(h->file, buf, size, off);

	dsfs_lock(&h->lock);
	h->dirty |= ret > 0;
	h->writer = pid;
	if (ret < 0 && h->object)
		h->failed = ret; /* a file missing part of what was written is never sent */
	dsfs_unlock(&h->lock);
	return ret;
}

struct edit_check {
	struct dsfs_fs *fs;
	const char *url;
};

/*
 * Before a PUT: an earlier edit of the object whose task still runs is not
 * yet in what the server shows, so the edit would land on a guess: EBUSY.
 * fs->edit_lock held.
 */
static int earlier_edit_ended(void *ctx)
{
	struct edit_check *ck = ctx;
	struct fs_edit_record **pp, *e;
	char why[300];
	bool ended;
	int ret;

	for (pp = &ck->fs->edits; *pp && strcmp((*pp)->url, ck->url); pp = &(*pp)->next)
		;
	if (!(e = *pp))
		return 0;
	ret = dsfs_cache_task_ended(ck->fs->cache, e->task, &ended);
	if (ret == 0 && ended) {
		*pp = e->next;
		edit_record_free(e);
	} else if (ret == 0) {
		snprintf(why, sizeof(why),
			 "an earlier edit of this object (task %s) is still being carried out: "
			 "edit it again once that task has ended",
			 e->task);
		dsfs_err_record("PUT", ck->url, 0, why);
		ret = -EBUSY;
	}
	return ret;
}

/* An edit's task has ended: what the server now holds shows at the next read. */
static void edit_task_ended(void *arg, int ret, const char *end, const char *why)
{
	(void)ret;
	(void)end;
	(void)why;
	dsfs_cache_invalidate(arg);
}

/*
 * Sends an edit: base (what the writer started from) to now, for object
 * file loc (path for the log). 0 when sent or when nothing changed. An
 * edit the server carries out in a task marks the cache stale again when
 * the task ends (tasks/latest/wait waits for it).
 */
static int edit_object(struct dsfs_fs *fs, const char *path, const struct dsfs_loc *loc, struct dsfs_blob *base,
		       struct dsfs_blob *now)
{
	struct dsfs_post_result res = { 0 };
	struct fs_edit_record **pp, *e;
	char *url = dsfs_cache_resource_url(fs->cache, loc);
	size_t kept;
	int ret = 0;

	if (!base || !now || !url) {
		free(url);
		return -ENOMEM;
	}
	dsfs_lock(&fs->edit_lock);
	ret = dsfs_cache_edit(fs->cache, loc, base, now->data, now->len, earlier_edit_ended,
			      &(struct edit_check){ fs, url }, &res);
	if (ret == 0 && res.task_id && (e = calloc(1, sizeof(*e)))) {
		e->url = url;
		url = NULL;
		e->next = fs->edits;
		fs->edits = e;
		if (!(e->task = strdup(res.task_id))) {
			fs->edits = e->next;
			edit_record_free(e);
		}
	}
	for (pp = &fs->edits, kept = 0; *pp && kept < EDIT_RECORDS; pp = &(*pp)->next, kept++)
		;
	while ((e = *pp)) { /* a bounded memory of them */
		*pp = e->next;
		edit_record_free(e);
	}
	dsfs_unlock(&fs->edit_lock);
	free(url);
	if (ret == 0 && res.status) {
		dsfs_log(DSFS_LOG_INFO, "edit %s: sent (HTTP %ld)%s%s", path, res.status, res.task_id ? ", task " : "",
			 res.task_id ? res.task_id : "");
		dsfs_tasks_set_latest(fs->tasks, res.task_id); /* tasks/latest never shows an older action's */
	}
	fs_log_dry_run("edit", path, &res); /* the file goes on showing the server's object, which nothing changed */
	if (ret == 0 && res.task_id) {
		char *task_url = dsfs_cache_task_url(fs->cache, res.task_id);

		if (!task_url || !dsfs_tasks_watch(fs->tasks, task_url, fs->o.wait_timeout, edit_task_ended, fs->cache))
			dsfs_log(DSFS_LOG_WARN,
				 "edit %s: cannot follow task %s: read the file again once it has "
				 "ended",
				 path, res.task_id);
		free(task_url);
	}
	dsfs_post_result_clear(&res);
	return fs_done("edit", path, ret);
}

/* An object file's buffer at its writer's close: sent once, unless nothing was written. */
static int send_edit(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	struct dsfs_blob *base, *now;
	int ret = 0;

	dsfs_lock(&h->lock);
	if (h->object && h->failed) {
		dsfs_log(DSFS_LOG_ERR, "edit %s: a write failed (%s): nothing sent", h->path, strerror(-h->failed));
		ret = h->failed;
		h->dirty = false;
		h->failed = 0;
	} else if (h->object && h->dirty) {
		base = dsfs_scratch_base(h->file);
		now = dsfs_scratch_bytes(h->file);
		ret = edit_object(fs, h->path, &h->loc, base, now);
		dsfs_blob_unref(base);
		dsfs_blob_unref(now);
		if (ret != -EINTR)
			h->dirty = false; /* sent or refused: another close sends nothing again */
	}
	dsfs_unlock(&h->lock);
	return ret;
}

static int edit_flush(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open)
{
	bool last;

	(void)keeps_open; /* an edit's handle is its own buffer: another descriptor of the file is another edit */
	dsfs_lock(&h->lock);
	last = fs_last_close(h, pid);
	dsfs_unlock(&h->lock);
	return last ? send_edit(fs, h) : 0;
}

static void edit_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	if (h->object && h->dirty)
		dsfs_log(DSFS_LOG_WARN, "edit discarded: its writer never closed the file; nothing sent");
}

void fs_edits_free(struct dsfs_fs *fs)
{
	while (fs->edits) {
		struct fs_edit_record *e = fs->edits;

		fs->edits = e->next;
		edit_record_free(e);
	}
}

int dsfs_fs_unlink(struct dsfs_fs *fs, const char *path)
{
	/* only an editor's file goes: everything else is the server's */
	if (fs->o.allow_edit && dsfs_scratch_unlink(fs->scratch, path) == 0)
		return 0;
	return fs_refuse("unlink", path, -EPERM,
			 "the server's files cannot be removed (an object goes with rmdir of "
			 "its directory, with the mount option allow_delete)");
}


int dsfs_fs_create(struct dsfs_fs *fs, const char *path, int flags, struct dsfs_handle **out)
{
	struct dsfs_loc obj, there;
	struct dsfs_blob *base = NULL;
	struct dsfs_handle *h = NULL;
	char *object = NULL;
	int ret;

	dsfs_err_clear();
	*out = NULL;
	(void)flags;
	ret = edit_target_of(fs, path, &obj);
	if (ret == -EPERM)
		fs_refuse("create", path, ret,
			  "a new file can only be an editor's, beside an editable object, with the "
			  "mount option allow_edit");
	if (ret == 0 && fs_resolve(fs, path, &there) == 0) {
		dsfs_cache_put(fs->cache, &there);
		ret = -EEXIST; /* the server's entries are never replaced by a new file */
	}
	/* the object as it was shown: what the editor read, and what its edit is compared with */
	if (ret == 0 && (ret = dsfs_cache_shown(fs->cache, &obj, &base)) == -ESTALE)
		ret = -ENOENT; /* the directory's name is another object's now */
	if (ret == 0 && !(object = dsfs_cache_resource_url(fs->cache, &obj)))
		ret = -ENOMEM;
	dsfs_cache_put(fs->cache, &obj);
	if (ret == 0 && (!(h = fs_handle_new(&fs_editor_ops)) || !(h->path = strdup(path))))
		ret = -ENOMEM;
	if (ret == 0)
		ret = dsfs_scratch_create(fs->scratch, path, base, object, &h->file);
	dsfs_blob_unref(base);
	free(object);
	if (ret) {
		fs_handle_free(fs, h); /* nothing written yet: the kind holds nothing of its own */
		return fs_done("create", path, ret);
	}
	*out = h;
	return 0;
}

/* Whether editor's file f was made beside the object of object file loc. */
static bool made_for(struct dsfs_fs *fs, struct dsfs_scratch_file *f, const struct dsfs_loc *loc)
{
	char *url = dsfs_cache_resource_url(fs->cache, loc);
	bool same = url && dsfs_scratch_object(f) && !strcmp(url, dsfs_scratch_object(f));

	free(url);
	return same;
}

static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	return sa - a == sb - b && !strncmp(a, b, (size_t)(sa - a));
}

int dsfs_fs_rename(struct dsfs_fs *fs, const char *from, const char *to, unsigned flags)
{
	struct dsfs_scratch_file *f = fs_scratch_find(fs, from);
	struct dsfs_blob *base, *now;
	struct dsfs_loc obj, there;
	int ret;

	dsfs_err_clear();
	if (!f) /* only an editor's file moves: the server's entries are named by the server */
		return fs_refuse("rename", from, -EPERM, "the server's entries are named by the server");
	if (flags & ~RENAME_NOREPLACE) {
		dsfs_scratch_put(f);
		return -EINVAL;
	}
	if (!same_dir(from, to)) {
		/* its edit is of the object beside it: mv elsewhere copies, and the copy is an edit of that object */
		dsfs_scratch_put(f);
		return fs_refuse("rename", from, -EXDEV,
				 "an editor's file is an edit of the object beside it: it stays "
				 "in its directory");
	}
	ret = edit_target_of(fs, to, &obj);
	if (ret == 0 && fs_resolve(fs, to, &there) == 0) {
		/* onto the object file: the edit, sent now */
		if (flags & RENAME_NOREPLACE)
			ret = -EEXIST;
		else if (there.type != DSFS_LOC_FILE || !dsfs_cache_editable(&there))
			ret = fs_refuse("rename", to, -EPERM, "only an object file takes an edit");
		else if (!made_for(fs, f, &there)) /* its edit is of the one it was made beside */
			ret = fs_refuse("rename", to, -EXDEV, "the name is now another object's");
		if (ret == 0) {
			base = dsfs_scratch_base(f);
			now = dsfs_scratch_bytes(f);
			ret = edit_object(fs, to, &there, base, now);
			dsfs_blob_unref(base);
			dsfs_blob_unref(now);
		}
		if (ret == 0)
			dsfs_scratch_unlink(fs->scratch, from);
		dsfs_cache_put(fs->cache, &there);
	} else if (ret == 0) {
		/* to another editor's name */
		struct dsfs_scratch_file *g = dsfs_scratch_get(fs->scratch, to);

		ret = g && (flags & RENAME_NOREPLACE) ? -EEXIST : dsfs_scratch_rename(fs->scratch, from, to);
		dsfs_scratch_put(g);
	}
	dsfs_cache_put(fs->cache, &obj);
	dsfs_scratch_put(f);
	return ret;
}

static int edit_ftruncate(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size)
{
	int ret = dsfs_scratch_truncate(h->file, size);

	dsfs_lock(&h->lock);
	h->dirty |= ret == 0;
	if (ret && h->object)
		h->failed = ret;
	dsfs_unlock(&h->lock);
	return ret;
}

int dsfs_fs_chmeta(struct dsfs_fs *fs, const char *path, bool changes)
{
	struct dsfs_scratch_file *f;
	struct dsfs_loc loc;
	int ret = -EPERM;

	if (!fs->o.allow_edit)
		return fs_refuse("chmod/chown/touch", path, -EPERM,
				 "the server's files keep the mount's mode, owner "
				 "and times");
	if ((f = fs_scratch_find(fs, path))) {
		dsfs_scratch_put(f);
		return 0;
	}
	if (fs_resolve(fs, path, &loc) == 0) {
		/* an object file's mode and owner are the mount's: a change that would be dropped is refused */
		ret = dsfs_cache_editable(&loc) && !changes ? 0 : -EPERM;
		if (ret && changes && dsfs_cache_editable(&loc))
			dsfs_log(DSFS_LOG_WARN,
				 "chmod/chown %s: an object file's mode and owner are the mount's; "
				 "nothing changed",
				 path);
		else if (ret)
			fs_refuse("chmod/chown/touch", path, ret,
				  "only an editable object file or an editor's file takes them");
		dsfs_cache_put(fs->cache, &loc);
	}
	return ret;
}

const struct fs_handle_ops fs_editor_ops = {
	.name = "editor's file",
	.open = editor_open,
	.read = edit_read,
	.write = edit_write,
	.flush = edit_flush,
	.ftruncate = edit_ftruncate,
	.release = edit_release,
};

const struct fs_handle_ops fs_object_edit_ops = {
	.name = "edit",
	.open = object_edit_open,
	.read = edit_read,
	.write = edit_write,
	.flush = edit_flush,
	.ftruncate = edit_ftruncate,
	.release = edit_release,
};
