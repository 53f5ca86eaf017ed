// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Counts the readers waiting for the server, in all and per user, under one
 * lock. The table of users is as long as the total bound: a user appears in
 * it only while holding a place, so it never grows past that.
 */
#include "fs/waiters.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/locks.h"
#include "util/log.h"

struct holder {
	uid_t uid;
	unsigned n; /* 0: a free row */
};

struct dsfs_waiters {
	struct dsfs_mutex lock;
	unsigned total, per_user, held; /* held: places taken by others than the owner, under lock */
	uid_t owner;
	struct holder *users; /* total rows, under lock */
};

struct dsfs_waiters *dsfs_waiters_new(unsigned total, unsigned per_user, uid_t owner)
{
	struct dsfs_waiters *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->users = calloc(total + 1, sizeof(*w->users)); /* the owner's row too */
	if (!w->users) {
		free(w);
		return NULL;
	}
	w->total = total;
	w->per_user = per_user;
	w->owner = owner;
	dsfs_mutex_init(&w->lock, DSFS_LOCK_WAITERS);
	return w;
}

void dsfs_waiters_free(struct dsfs_waiters *w)
{
	if (!w)
		return;
	dsfs_mutex_destroy(&w->lock);
	free(w->users);
	free(w);
}

int dsfs_waiters_enter(struct dsfs_waiters *w, uid_t uid)
{
	struct holder *mine = NULL, *spare = NULL;
	int ret = 0;

	if (!w)
		return 0;
	dsfs_lock(&w->lock);
	for (unsigned i = 0; i <= w->total && !mine; i++) {
		if (w->users[i].n && w->users[i].uid == uid)
			mine = &w->users[i];
		else if (!w->users[i].n && !spare)
			spare = &w->users[i];
	}
	if (uid != w->owner && w->held >= w->total) {
		dsfs_log(DSFS_LOG_WARN,
			 "uid %u: %u readers already wait for the server, the most this mount "
			 "allows at once; refused with EAGAIN",
			 (unsigned)uid, w->held);
		ret = -EAGAIN;
	} else if (mine && mine->n >= w->per_user) {
		dsfs_log(DSFS_LOG_WARN,
			 "uid %u already has %u readers waiting for the server, the most one "
			 "user may have; refused with EAGAIN",
			 (unsigned)uid, mine->n);
		ret = -EAGAIN;
	} else {
		if (!mine) {
			mine = spare; /* held < total, or the owner's row: a row is free */
			mine->uid = uid;
		}
		mine->n++;
		if (uid != w->owner)
			w->held++;
	}
	dsfs_unlock(&w->lock);
	return ret;
}

void dsfs_waiters_leave(struct dsfs_waiters *w, uid_t uid)
{
	if (!w)
		return;
	dsfs_lock(&w->lock);
	for (unsigned i = 0; i <= w->total; i++) {
		if (w->users[i].n && w->users[i].uid == uid) {
			w->users[i].n--;
			if (uid != w->owner)
				w->held--;
			break;
		}
	}
	dsfs_unlock(&w->lock);
}
