/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Asynchronous tasks: which task this mount started last (tasks/latest),
 * and waiting for a task to end (tasks/<id>/wait), polling at the task's
 * own suggested interval, bounded by wait_timeout and by interruption.
 */
#ifndef DSFS_TASKS_H
#define DSFS_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "dialect.h"
#include "session.h"

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
 * Polls the task at url (its API path) until it ends. Returns 0 when it
 * ends in one of the dialect's succeeded states; -EIO in one of its failed
 * states (the task's error recorded for the log); -ETIMEDOUT after timeout
 * seconds; -EINTR as soon as interrupted() returns true, a poll in flight
 * included. A poll that fails for a reason a later one may not meet (EIO,
 * ETIMEDOUT, EAGAIN) is logged and polled again; another failure (ENOENT,
 * EACCES) ends the wait with its errno. *state gets the last state seen (malloc'd) when
 * non-NULL. Thread-safe.
 */
int dsfs_tasks_wait(struct dsfs_tasks *t, const char *url, double timeout, bool (*interrupted)(void),
		    char **state);

#endif
