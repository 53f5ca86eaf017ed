/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounds on readers that wait for the server (tasks/<id>/wait, rmdir of an
 * object deleted by a task): how many may wait at once in all, and how many
 * of them one user may hold. Each waiter holds one of libfuse's worker
 * threads, so these bounds keep threads free for every other request and
 * keep one user from taking the waiting places of all the others.
 */
#ifndef DSFS_WAITERS_H
#define DSFS_WAITERS_H

#include <sys/types.h>

struct dsfs_waiters;

/*
 * At most total waiters at once, at most per_user of them one uid's. The
 * mount's owner is held only to per_user, so other users can never take
 * its waiting places. NULL on
 * ENOMEM. Thread-safe.
 */
struct dsfs_waiters *dsfs_waiters_new(unsigned total, unsigned per_user, uid_t owner);
void dsfs_waiters_free(struct dsfs_waiters *w);

/*
 * Takes a waiting place for uid: 0, or -EAGAIN (logged, naming the bound
 * reached) when uid or everyone already holds as many as allowed. A NULL w
 * bounds nothing. Thread-safe.
 */
int dsfs_waiters_enter(struct dsfs_waiters *w, uid_t uid);

/* Gives back a place dsfs_waiters_enter gave uid. Thread-safe. */
void dsfs_waiters_leave(struct dsfs_waiters *w, uid_t uid);

#endif
