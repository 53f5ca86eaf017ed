// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Waiting on tasks without a thread: a read of tasks/<id>/wait, or an
 * rmdir the server carries out in a task, starts a watch on the tasks'
 * poller (fs/tasks.h) and is answered from there when the task ends, within
 * the per-user bounds on waiting readers (fs/waiters.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/caller.h"
#include "net/errmap.h"
#include "fs/fs_int.h"
#include "util/locks.h"
#include "util/log.h"
#include "fs/waiters.h"

struct dsfs_fs_wait {
	struct dsfs_fs *fs;
	struct dsfs_task_watch *watch;
	struct dsfs_handle *h; /* a read of tasks/<id>/wait, or NULL for an rmdir */
	char *what;            /* the path (rmdir) or the task's URL (wait), for the log */
	char *id;              /* rmdir: the object deleted */
	uid_t uid;             /* holds a waiting place */
	dsfs_fs_done_fn done;
	void *arg;
};

static void wait_free(struct dsfs_fs_wait *w)
{
	dsfs_waiters_leave(w->fs->o.waiters, w->uid);
	free(w->what);
	free(w->id);
	free(w);
}

/*
 * The task ended (on the tasks' poller thread): its effect shows, and the
 * caller hears. A reader of wait gets one line in dsfs's words, whatever
 * the API calls the end ("SUCCEEDED", "FAILED: <reason>"), and, after it,
 * the errno of a task that did not succeed: cat prints the line and fails.
 */
static void wait_ended(void *arg, int ret, const char *end, const char *why)
{
	struct dsfs_fs_wait *w = arg;
	struct dsfs_fs *fs = w->fs;
	char line[700];

	if (ret == 0 || ret == -EIO)
		dsfs_cache_invalidate(fs->cache);
	dsfs_err_clear();
	if (ret && why)
		dsfs_err_record("GET", w->what, 0, why);
	if (w->h && end) {
		if (ret)
			snprintf(line, sizeof(line), "%s: %s\n", end, why ? why : "the server gave no reason");
		else
			snprintf(line, sizeof(line), "%s\n", end);
		dsfs_lock(&w->h->lock);
		if (!w->h->content && !(w->h->content = dsfs_blob_new(line, strlen(line))))
			ret = -ENOMEM;
		w->h->end_err = ret;
		dsfs_unlock(&w->h->lock);
		if (ret == -ETIMEDOUT)
			fs_done("read", w->what, ret); /* the task's own end is logged once, by its poller */
		ret = ret == -ENOMEM ? ret : 0;        /* the line first; the errno at its end */
	}
	if (!w->h && ret == 0)
		dsfs_log(DSFS_LOG_INFO, "rmdir %s: deleted %s", w->what, w->id);
	if (!w->h || !end)
		fs_done(w->h ? "read" : "rmdir", w->what, ret);
	w->done(w->arg, ret);
	wait_free(w);
}

int fs_wait_start(struct dsfs_fs *fs, const char *url, struct dsfs_handle *h, const char *what, const char *id,
		  dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **out)
{
	struct dsfs_fs_wait *w = calloc(1, sizeof(*w));

	if (!w || !(w->what = strdup(what)) || (id && !(w->id = strdup(id)))) {
		if (w)
			free(w->what);
		free(w);
		return -ENOMEM;
	}
	w->fs = fs;
	w->h = h;
	w->uid = dsfs_caller_uid();
	w->done = fn;
	w->arg = arg;
	*out = w;
	w->watch = dsfs_tasks_watch(fs->tasks, url, fs->o.wait_timeout, wait_ended, w);
	if (!w->watch) {
		free(w->what);
		free(w->id);
		free(w);
		return -ENOMEM;
	}
	return DSFS_FS_WAITING;
}

bool dsfs_fs_read_waits(struct dsfs_handle *h)
{
	return h->ops->read_waits && h->ops->read_waits(h);
}

int dsfs_fs_read_wait(struct dsfs_fs *fs, struct dsfs_handle *h, dsfs_fs_done_fn fn, void *arg,
		      struct dsfs_fs_wait **out)
{
	char *url;
	int ret;

	if (!dsfs_fs_read_waits(h))
		return 0;
	/* a reader past its user's or the mount's bound gets EAGAIN */
	ret = dsfs_waiters_enter(fs->o.waiters, dsfs_caller_uid());
	if (ret)
		return ret;
	url = dsfs_cache_resource_url(fs->cache, &h->loc);
	ret = url ? fs_wait_start(fs, url, h, url, NULL, fn, arg, out) : -ENOMEM;
	if (ret < 0)
		dsfs_waiters_leave(fs->o.waiters, dsfs_caller_uid());
	free(url);
	return ret;
}

bool dsfs_fs_wait_cancel(struct dsfs_fs_wait *w)
{
	if (!dsfs_tasks_unwatch(w->fs->tasks, w->watch))
		return false;
	wait_free(w);
	return true;
}

static int wait_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		     enum dsfs_caching *caching)
{
	return (flags & O_ACCMODE) != O_RDONLY ? fs_refuse("open", path, -EACCES, "a task's wait is read-only") : 0;
}

/* Until its task has ended, a wait file has no content: its line comes when the wait ends. */
static bool wait_read_waits(struct dsfs_handle *h)
{
	bool waits;

	dsfs_lock(&h->lock);
	waits = !h->content;
	dsfs_unlock(&h->lock);
	return waits;
}

static int wait_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		     off_t off)
{
	int ret;

	dsfs_lock(&h->lock);
	if (!h->content)
		ret = -EAGAIN; /* dsfs_fs_read_wait comes first */
	else if ((size_t)off >= h->content->len)
		ret = h->end_err;
	else
		ret = fs_copy_out(h->content, buf, size, off);
	dsfs_unlock(&h->lock);
	return ret;
}

const struct fs_handle_ops fs_wait_ops = {
	.name = "wait",
	.open = wait_open,
	.read_waits = wait_read_waits,
	.read = wait_read,
};
