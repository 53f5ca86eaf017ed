/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Asynchronous tasks: which task this mount started last (tasks/latest),
 * and watching tasks until they end (tasks/<id>/wait, rmdir), polling at
 * each task's own suggested interval, bounded by wait_timeout; a watch
 * holds no thread of its caller, so any number of readers can wait.
 */
#ifndef DSFS_TASKS_H
#define DSFS_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "dialect/dialect.h"
#include "net/session.h"

struct dsfs_tasks;

/* Task tracking over session (borrowed). NULL on ENOMEM. */
struct dsfs_tasks *dsfs_tasks_new(const struct dsfs_dialect *dialect, struct dsfs_session *session);
void dsfs_tasks_free(struct dsfs_tasks *t);

/*
 * Records id as the task most recently started through this mount; NULL
 * records that the last action started none (tasks/latest then names
 * nothing). Thread-safe.
 */
void dsfs_tasks_set_latest(struct dsfs_tasks *t, const char *id);

/* The id of that task (malloc'd, caller frees), or NULL when none was started. Thread-safe. */
char *dsfs_tasks_latest(struct dsfs_tasks *t);

/* When that task was started, as a sequence number across all task trackers (0: never). */
unsigned long dsfs_tasks_latest_seq(struct dsfs_tasks *t);

/*
 * What a watch of a task ended with: called once, from the tasks' poller
 * thread. end is how the task ended in dsfs's one vocabulary (SUCCEEDED,
 * FAILED, CANCELLED, TIMEDOUT: dsfs_task_end_word), or NULL when the wait
 * could not see it end (a poll that can never succeed).
 */
typedef void (*dsfs_task_done_fn)(void *arg, int ret, const char *end, const char *why);

struct dsfs_task_watch;

/*
 * Watches the task at url (its API path) until it ends, without holding
 * the caller: one poller thread per tracker polls every watched task, each
 * URL once per round however many watch it, no faster than the task
 * suggests. done(arg, ret, end, why) is called once, never from inside
 * this call: ret 0 when the task ended in one of the dialect's succeeded
 * states, -EIO in a failed, cancelled or timed-out one, -ETIMEDOUT after
 * timeout seconds (end "TIMEDOUT" too), or a poll's -errno that a later
 * poll would not change (ENOENT, EACCES; end NULL); a poll that fails for
 * a reason a later one may not meet (EIO, ETIMEDOUT, EAGAIN) is logged and
 * polled again. why is the failure's reason, one line (or NULL). NULL on
 * ENOMEM. Thread-safe.
 */
struct dsfs_task_watch *dsfs_tasks_watch(struct dsfs_tasks *t, const char *url, double timeout, dsfs_task_done_fn done,
					 void *arg);

/*
 * Stops watch w unless it has ended: true when it was removed (done will
 * never be called), false when done has been or is being called. Never
 * waits for done and never touches w itself, so it may be called under a
 * lock done takes. Thread-safe.
 */
bool dsfs_tasks_unwatch(struct dsfs_tasks *t, struct dsfs_task_watch *w);

/* Watches in progress, for .dsfs/stats. */
size_t dsfs_tasks_watching(struct dsfs_tasks *t);

#endif
