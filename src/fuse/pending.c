// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Waits answered later: a read of tasks/<id>/wait, and an rmdir whose
 * delete runs as a task, are answered from the task poller when the wait
 * ends, and hold no thread meanwhile. Each wait's reply is claimed once,
 * by whichever comes first of its end, the reader's interrupt and the
 * unmount. A read's reply is made here, for a read answered at once too.
 */
#include "fuse/fuse_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/locks.h"
#include "util/log.h"

void dsfs_fuse_reply_read(fuse_req_t req, struct dsfs_ehandle *h, struct dsfs_blob *newest, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	int n = buf ? dsfs_estate_read(h, newest, buf, size, off) : -ENOMEM;

	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* A wait answered later: a read of tasks/<id>/wait, or an rmdir. */
struct pending {
	fuse_req_t req;
	struct dsfs_ehandle *h; /* read: the handle, and what was asked */
	size_t size;
	off_t off;
	fuse_ino_t parent; /* rmdir: the entry removed, and its path */
	char *name, *path;
	struct dsfs_fs_wait *w; /* the wait, once started */
	struct dsfs_mutex lock;
	bool interrupted, finished; /* finished: its reply is claimed */
	int refs;
	struct pending *prev, *next; /* in the mount's list */
};

static struct dsfs_mutex list_lock = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_FUSE_PENDING_LIST); /* guards list */
static pthread_cond_t list_shrank = PTHREAD_COND_INITIALIZER; /* broadcast when one leaves list */
static struct pending *list;

#define END_DRAIN_S 10 /* at unmount, how long the waits whose end is being told may take to finish */

static void pending_unref(struct pending *p)
{
	bool last;

	dsfs_lock(&p->lock);
	last = --p->refs == 0;
	dsfs_unlock(&p->lock);
	if (!last)
		return;
	dsfs_lock(&list_lock);
	if (p->prev)
		p->prev->next = p->next;
	else
		list = p->next;
	if (p->next)
		p->next->prev = p->prev;
	pthread_cond_broadcast(&list_shrank);
	dsfs_unlock(&list_lock);
	dsfs_mutex_destroy(&p->lock);
	free(p->name);
	free(p->path);
	free(p);
}

/*
 * Replies to a pending request whose reply this thread claimed, from
 * outside its interrupt callback: clearing the callback first waits for
 * one that is running, so none can run once p is gone.
 */
static void pending_reply(struct pending *p, int ret)
{
	fuse_req_interrupt_func(p->req, NULL, NULL);
	if (ret < 0) {
		fuse_reply_err(p->req, -ret);
	} else if (p->h) {
		dsfs_fuse_reply_read(p->req, p->h, NULL, p->size, p->off); /* a wait file: never paged */
	} else {
		dsfs_nodes_unlink(dsfs_fuse.nodes, p->parent, p->name);
		fuse_reply_err(p->req, 0);
	}
}

/* The wait ended (on the task poller's thread). */
static void pending_done(void *arg, int ret)
{
	struct pending *p = arg;
	bool mine;

	dsfs_lock(&p->lock);
	mine = !p->finished;
	p->finished = true;
	dsfs_unlock(&p->lock);
	if (mine)
		pending_reply(p, ret);
	pending_unref(p); /* the wait's */
}

/* The reader was interrupted (under libfuse's lock of the request). */
static void pending_interrupt(fuse_req_t req, void *arg)
{
	struct pending *p = arg;
	bool mine = false;

	dsfs_lock(&p->lock);
	p->interrupted = true;
	if (!p->finished && p->w && dsfs_fs_wait_cancel(p->w))
		mine = p->finished = true;
	dsfs_unlock(&p->lock);
	if (mine) {
		fuse_reply_err(req, EINTR);
		pending_unref(p); /* the wait's: it will not end now */
	}
}

static struct pending *pending_new(fuse_req_t req)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->req = req;
	p->refs = 1; /* the starter's */
	dsfs_mutex_init(&p->lock, DSFS_LOCK_FUSE_PENDING);
	dsfs_lock(&list_lock);
	p->next = list;
	if (list)
		list->prev = p;
	list = p;
	dsfs_unlock(&list_lock);
	return p;
}

/*
 * Starts the wait start() begins for p, answering later when it does:
 * returns true when the reply is taken care of, false when start found
 * nothing to wait for (*ret says what to do now).
 */
static bool pending_start(struct pending *p, int (*start)(struct pending *p), int *ret)
{
	bool later = false;

	fuse_req_interrupt_func(p->req, pending_interrupt, p); /* may run at once */
	dsfs_lock(&p->lock);
	if (p->interrupted) {
		*ret = -EINTR;
	} else {
		p->refs++; /* the wait's */
		*ret = start(p);
		later = *ret == DSFS_FS_WAITING;
		if (!later)
			p->refs--;
	}
	if (!later)
		p->finished = true;
	dsfs_unlock(&p->lock);
	if (!later)
		fuse_req_interrupt_func(p->req, NULL, NULL);
	pending_unref(p); /* the starter's */
	return later;
}

static int start_read_wait(struct pending *p)
{
	return dsfs_estate_read_wait(p->h, pending_done, p, &p->w);
}

bool dsfs_fuse_pending_read(fuse_req_t req, struct dsfs_ehandle *h, size_t size, off_t off, int *ret)
{
	struct pending *p = pending_new(req);

	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return true;
	}
	p->h = h;
	p->size = size;
	p->off = off;
	return pending_start(p, start_read_wait, ret);
}

static int start_rmdir(struct pending *p)
{
	return dsfs_estate_rmdir(dsfs_fuse.e, p->path, pending_done, p, &p->w);
}

bool dsfs_fuse_pending_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name, int *ret)
{
	struct pending *p = pending_new(req);

	*ret = p ? dsfs_nodes_child_path(dsfs_fuse.nodes, parent, name, &p->path) : -ENOMEM;
	if (!*ret && !(p->name = strdup(name)))
		*ret = -ENOMEM;
	if (*ret) {
		if (p)
			pending_unref(p);
		return false;
	}
	p->parent = parent;
	return pending_start(p, start_rmdir, ret);
}

/*
 * Waits until every pending wait has left the list. What is left after
 * the cancels could not be cancelled: the task's poller has taken its
 * watch and is telling its end (pending_done) right now, with no request
 * in flight. Whatever the wait touches (its open file, the member's
 * file system) is freed after this returns, so it must have finished.
 */
static void drain(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += END_DRAIN_S;
	dsfs_lock(&list_lock);
	while (list && dsfs_cond_timedwait(&list_shrank, &list_lock, &until) != ETIMEDOUT)
		;
	if (list)
		dsfs_log(DSFS_LOG_ERR, "unmount: a wait's end was still being told after %d s", END_DRAIN_S);
	dsfs_unlock(&list_lock);
}

void dsfs_fuse_pending_end(void)
{
	for (;;) {
		struct pending *p;
		bool mine = false;

		dsfs_lock(&list_lock);
		for (p = list; p; p = p->next) {
			dsfs_lock(&p->lock);
			if (!p->finished && p->w && dsfs_fs_wait_cancel(p->w))
				mine = p->finished = true;
			dsfs_unlock(&p->lock);
			if (mine)
				break;
		}
		dsfs_unlock(&list_lock);
		if (!p)
			break;
		pending_reply(p, -EINTR);
		pending_unref(p);
	}
	drain();
}
