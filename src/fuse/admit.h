/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fair shares of the worker threads. An operation that may wait for the
 * server runs at once while its user has fewer than per_user running and,
 * for users other than the mount's owner and root, while all of them
 * together have fewer than others; past that it is queued, holding no
 * thread, and runs in turn across users as soon as one ends. A user with
 * nothing running may always run one. So however many slow operations
 * some users start, another user's operation waits for none of them.
 * Thread-safe.
 */
#ifndef DSFS_ADMIT_H
#define DSFS_ADMIT_H

#include <stdbool.h>
#include <sys/types.h>

struct dsfs_admit;

/* A job: run is true when it runs, false when it is dropped (the mount is ending). */
typedef void (*dsfs_admit_fn)(void *arg, bool run);

/* Shares as above. NULL on ENOMEM. */
struct dsfs_admit *dsfs_admit_new(unsigned per_user, unsigned others, uid_t owner);

/* Drops (fn(arg, false)) every job still queued, then frees. NULL does nothing. */
void dsfs_admit_free(struct dsfs_admit *a);

/*
 * Runs fn(arg, true) in the calling thread when uid is within its shares,
 * then any queued jobs its end lets run; otherwise queues it and returns
 * at once. Every job runs exactly once, or is dropped at dsfs_admit_free.
 */
void dsfs_admit_run(struct dsfs_admit *a, uid_t uid, dsfs_admit_fn fn, void *arg);

/*
 * Takes back the queued job whose arg is arg: true when it was still
 * queued (it will neither run nor be dropped), false when it has started.
 * Compares arg only, so it may be called after the job ran and arg went.
 */
bool dsfs_admit_withdraw(struct dsfs_admit *a, void *arg);

/* Jobs running and queued now, for .dsfs/stats and tests. */
void dsfs_admit_counts(struct dsfs_admit *a, unsigned *running, unsigned *queued);

#endif
