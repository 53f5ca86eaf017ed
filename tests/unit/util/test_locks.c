// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for src/util/locks.c, the run-time check of the lock order: built
 * with DSFS_LOCK_CHECK whatever the build, so that the check itself is
 * tested in every `make check`. A violation aborts; each is tried in a
 * child process.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/locks.h"
#include "tap.h"

static struct dsfs_mutex handle = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_FS_HANDLE);
static struct dsfs_mutex edit = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_FS_EDIT);
static struct dsfs_mutex cache = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_CACHE);
static struct dsfs_mutex cache2 = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_CACHE);
static struct dsfs_mutex log_lock = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_LOG);
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* Runs fn in a child: true when it aborted (the check fired), false when it returned. */
static bool aborts(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr)) /* the check's own report is not this test's output */
			_exit(2);
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void in_order(void)
{
	dsfs_lock(&handle);
	dsfs_lock(&edit);
	dsfs_lock(&cache);
	dsfs_lock(&log_lock);
	dsfs_unlock(&log_lock);
	dsfs_unlock(&cache);
	dsfs_unlock(&edit);
	dsfs_unlock(&handle);
}

static void inverted(void)
{
	dsfs_lock(&cache);
	dsfs_lock(&handle); /* a handle after the cache: the order says before */
}

static void same_rank(void)
{
	dsfs_lock(&cache);
	dsfs_lock(&cache2);
}

static void again(void)
{
	dsfs_lock(&edit);
	dsfs_lock(&edit);
}

/* A lock let go out of order leaves the others held: taking a lower one after it still fails. */
static void out_of_order_release(void)
{
	dsfs_lock(&handle);
	dsfs_lock(&edit);
	dsfs_unlock(&handle);
	dsfs_lock(&log_lock);
	dsfs_unlock(&log_lock);
	dsfs_lock(&handle); /* edit is still held */
}

static void release_then_lower(void)
{
	dsfs_lock(&cache);
	dsfs_unlock(&cache);
	dsfs_lock(&handle);
	dsfs_unlock(&handle);
}

static void unlock_unheld(void)
{
	dsfs_unlock(&edit);
}

/* Waiting on the cache's condition while holding a lock ranked after it would retake it out of order. */
static void wait_under_higher(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	dsfs_lock(&cache);
	dsfs_lock(&log_lock);
	dsfs_cond_timedwait(&cond, &cache, &now);
}

static void wait_as_highest(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	dsfs_lock(&handle);
	dsfs_lock(&cache);
	dsfs_cond_timedwait(&cond, &cache, &now);
	dsfs_unlock(&cache);
	dsfs_unlock(&handle);
}

int main(void)
{
	ok(!aborts(in_order), "locks taken in rising rank pass");
	ok(aborts(inverted), "a lock ranked before one held aborts");
	ok(aborts(same_rank), "two locks of one rank held together abort");
	ok(aborts(again), "taking a held lock again aborts (instead of deadlocking)");
	ok(aborts(out_of_order_release), "a lock released out of order leaves the others checked");
	ok(!aborts(release_then_lower), "once released, a lock no longer constrains the order");
	ok(aborts(unlock_unheld), "unlocking a lock the thread does not hold aborts");
	ok(aborts(wait_under_higher), "a condition wait with a later lock held aborts");
	ok(!aborts(wait_as_highest), "a condition wait on the highest lock held passes");
	return done_testing();
}
