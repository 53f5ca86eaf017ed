// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The run-time check of the lock order (util/locks.h), compiled in only with
 * DSFS_LOCK_CHECK (./configure --enable-debug or --enable-sanitizers): each
 * thread keeps the locks it holds, and taking one whose rank is not above
 * all of them aborts the daemon with both names, so that the test suites
 * fail on an order that could deadlock even when it did not.
 */
#include "util/locks.h"

#ifdef DSFS_LOCK_CHECK
#include <stdio.h>
#include <stdlib.h>

/* More than any path of dsfs nests (four or five); past it the check itself is wrong. */
#define HELD_MAX 16

static __thread const struct dsfs_mutex *held[HELD_MAX];
static __thread int nheld;

static const char *rank_name(enum dsfs_lock_rank r)
{
	static const struct {
		enum dsfs_lock_rank rank;
		const char *name;
	} names[] = {
		{ DSFS_LOCK_FUSE_PENDING_LIST, "FUSE_PENDING_LIST" },
		{ DSFS_LOCK_FUSE_PENDING, "FUSE_PENDING" },
		{ DSFS_LOCK_FUSE_PRUNE, "FUSE_PRUNE" },
		{ DSFS_LOCK_FUSE_DIRS, "FUSE_DIRS" },
		{ DSFS_LOCK_ADMIT, "ADMIT" },
		{ DSFS_LOCK_ESTATE, "ESTATE" },
		{ DSFS_LOCK_ESTATE_SIZING, "ESTATE_SIZING" },
		{ DSFS_LOCK_LOGIN_JOB, "LOGIN_JOB" },
		{ DSFS_LOCK_FS_HANDLE, "FS_HANDLE" },
		{ DSFS_LOCK_FS_EDIT, "FS_EDIT" },
		{ DSFS_LOCK_SCRATCH, "SCRATCH" },
		{ DSFS_LOCK_SCRATCH_FILE, "SCRATCH_FILE" },
		{ DSFS_LOCK_EVENTS_MERGE, "EVENTS_MERGE" },
		{ DSFS_LOCK_EVENTS, "EVENTS" },
		{ DSFS_LOCK_CACHE, "CACHE" },
		{ DSFS_LOCK_FS_RESULTS, "FS_RESULTS" },
		{ DSFS_LOCK_NODES, "NODES" },
		{ DSFS_LOCK_TASKS, "TASKS" },
		{ DSFS_LOCK_WAITERS, "WAITERS" },
		{ DSFS_LOCK_WAITCMD, "WAITCMD" },
		{ DSFS_LOCK_SESSION, "SESSION" },
		{ DSFS_LOCK_HTTP_POOL, "HTTP_POOL" },
		{ DSFS_LOCK_HTTP_SHARE, "HTTP_SHARE" },
		{ DSFS_LOCK_LOG, "LOG" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].rank == r)
			return names[i].name;
	return "unknown";
}

static void violated(const char *what, const struct dsfs_mutex *mu, const struct dsfs_mutex *other)
{
	fprintf(stderr, "dsfs: lock order violated: %s %s (rank %d) while holding %s (rank %d); held:", what,
		rank_name(mu->rank), (int)mu->rank, rank_name(other->rank), (int)other->rank);
	for (int i = 0; i < nheld; i++)
		fprintf(stderr, " %s", rank_name(held[i]->rank));
	fprintf(stderr, " (src/util/locks.h)\n");
	abort();
}

void dsfs_lock(struct dsfs_mutex *mu)
{
	for (int i = 0; i < nheld; i++)
		if (held[i]->rank > mu->rank ||
		    (held[i]->rank == mu->rank && (mu->rank != DSFS_LOCK_HTTP_SHARE || held[i] == mu)))
			violated("taking", mu, held[i]);
	if (nheld == HELD_MAX) {
		fprintf(stderr, "dsfs: more than %d locks held at once (src/util/locks.c)\n", HELD_MAX);
		abort();
	}
	pthread_mutex_lock(&mu->m);
	held[nheld++] = mu;
}

void dsfs_unlock(struct dsfs_mutex *mu)
{
	/* not always the last taken: a lock may be let go while a later one is kept */
	for (int i = nheld - 1; i >= 0; i--)
		if (held[i] == mu) {
			for (nheld--; i < nheld; i++) /* keep the rest in the order taken */
				held[i] = held[i + 1];
			pthread_mutex_unlock(&mu->m);
			return;
		}
	fprintf(stderr, "dsfs: unlocking %s, which this thread does not hold (src/util/locks.c)\n",
		rank_name(mu->rank));
	abort();
}

void dsfs_lock_check_wait(const struct dsfs_mutex *mu)
{
	for (int i = 0; i < nheld; i++)
		if (held[i] != mu && held[i]->rank > mu->rank)
			violated("waiting on", mu, held[i]);
}
#endif
