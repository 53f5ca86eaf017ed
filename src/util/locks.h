/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every mutex of dsfs, in one order, and the wrapper that checks it.
 *
 * LOCK ORDERING
 *
 * Each lock has a rank (enum dsfs_lock_rank, below). A thread may take a
 * lock only while every lock it already holds has a lower rank: acquire A
 * then B only if A < B. Two locks of one rank (two handles, two caches of
 * an estate's members) are never held together, libcurl's HTTP_SHARE
 * locks aside. A condition variable is
 * waited on only with its mutex the highest lock held, since the wait
 * takes that mutex again. Built with --enable-debug or
 * --enable-sanitizers (DSFS_LOCK_CHECK), every dsfs_lock checks this
 * against a per-thread list of held locks and aborts, naming both locks,
 * on a violation; otherwise dsfs_lock is pthread_mutex_lock.
 *
 * From the outside in:
 *
 *   FUSE_PENDING_LIST  fuse/pending.c list_lock: the list of waits answered later.
 *   FUSE_PENDING       fuse/pending.c pending.lock: one such wait's state; held
 *                      while its wait is taken back (TASKS, WAITERS).
 *   FUSE_PRUNE         fuse/prune.c pr.lock: the pruner's queue of lost names.
 *   FUSE_DIRS          fuse/readdir.c open_lock: the listings open directories hold.
 *   ADMIT              fuse/admit.c: fair shares of the FUSE threads per user.
 *   ESTATE             mount/estate.c e->lock: an estate's open handles and df threads.
 *   ESTATE_SIZING      mount/estate_space.c: one df of an estate, its members' answers.
 *   LOGIN_JOB          main.c: the members left to log in at mount.
 *   FS_HANDLE          fs/fs_int.h dsfs_handle.lock: an open file's content, its
 *                      pending command bytes, an edit's state. HELD ACROSS
 *                      REQUESTS: a control file's command (the POST, and the
 *                      GETs naming ids) is sent under it, and so are an edit's
 *                      PUT at close, a read-through file's re-read past its end
 *                      and events/log's question: what the request is about
 *                      (the bytes written, the content read) must not change
 *                      under it, and commands written to one open file are
 *                      sent in the order they were written. Only threads
 *                      using that same open file wait.
 *   FS_EDIT            fs/fs_int.h dsfs_fs.edit_lock: the edits whose task may
 *                      still run. HELD ACROSS REQUESTS: an edit's PUT, and the
 *                      GET of the task of the object's edit before it, so that
 *                      each edit is computed against what the one before it
 *                      left, never against the same stale base as another.
 *   SCRATCH            fs/scratch.c table: editors' files by path.
 *   SCRATCH_FILE       fs/scratch.c file: one editor's file's bytes and references.
 *   EVENTS_MERGE       fs/events.c merge: an estate's events/log; a member's feed
 *                      is read under it, but never asked (no request).
 *   EVENTS             fs/events.c ev->lock: one feed's text and readers; dropped
 *                      while its question is in flight (ev->asking).
 *   CACHE              cache/cache_int.h c->lock: the node tree, LRU and bound,
 *                      fetches and walks; dropped during every request (a
 *                      fetch in flight is marked on its node, others wait on
 *                      c->done).
 *   FS_RESULTS         fs/fs_int.h dsfs_fs.lock: the last result of each control
 *                      file; taken under CACHE, as a listing gives each control
 *                      file's size from inside the cache's walk of the entries.
 *   NODES              fuse/nodes.c: the kernel's node ids and what their pages hold.
 *   TASKS              fs/tasks.c: the watched tasks and tasks/latest; dropped
 *                      while a task is polled and while its watchers hear.
 *   WAITERS            fs/waiters.c: the bounds on waiting readers.
 *   WAITCMD            mount/waitcmd.c: `dsfs wait`'s tasks (a command, not the daemon).
 *   SESSION            net/session.c: the login, its expiry and health; dropped
 *                      while a login is in flight (others wait on login_done).
 *   HTTP_POOL          net/http.c: idle curl handles.
 *   HTTP_SHARE         net/http.c share_locks[]: taken by libcurl itself inside a
 *                      request (DNS, connections, TLS sessions), never across
 *                      one. libcurl takes one while holding another (DNS
 *                      under CONNECT): their order among themselves is
 *                      libcurl's, so these alone may nest within their rank.
 *   LOG                util/log.c: the log's ring and file. Innermost: anything
 *                      may log under any lock.
 *
 * No lock but FS_HANDLE and FS_EDIT is held across an HTTP round trip.
 */
#ifndef DSFS_LOCKS_H
#define DSFS_LOCKS_H

#include <pthread.h>
#include <time.h>

enum dsfs_lock_rank {
	DSFS_LOCK_FUSE_PENDING_LIST = 10,
	DSFS_LOCK_FUSE_PENDING = 11,
	DSFS_LOCK_FUSE_PRUNE = 12,
	DSFS_LOCK_FUSE_DIRS = 13,
	DSFS_LOCK_ADMIT = 20,
	DSFS_LOCK_ESTATE = 30,
	DSFS_LOCK_ESTATE_SIZING = 31,
	DSFS_LOCK_LOGIN_JOB = 32,
	DSFS_LOCK_FS_HANDLE = 40,
	DSFS_LOCK_FS_EDIT = 41,
	DSFS_LOCK_SCRATCH = 43,
	DSFS_LOCK_SCRATCH_FILE = 44,
	DSFS_LOCK_EVENTS_MERGE = 50,
	DSFS_LOCK_EVENTS = 51,
	DSFS_LOCK_CACHE = 60,
	DSFS_LOCK_FS_RESULTS = 62,
	DSFS_LOCK_NODES = 65,
	DSFS_LOCK_TASKS = 70,
	DSFS_LOCK_WAITERS = 71,
	DSFS_LOCK_WAITCMD = 72,
	DSFS_LOCK_SESSION = 80,
	DSFS_LOCK_HTTP_POOL = 90,
	DSFS_LOCK_HTTP_SHARE = 91, /* libcurl nests these among themselves, in its own order */
	DSFS_LOCK_LOG = 120,
};

/* A mutex with its rank in the lock order. */
struct dsfs_mutex {
	pthread_mutex_t m;
	enum dsfs_lock_rank rank;
};

#define DSFS_MUTEX_INITIALIZER(r)              \
	{                                      \
		PTHREAD_MUTEX_INITIALIZER, (r) \
	}

static inline void dsfs_mutex_init(struct dsfs_mutex *mu, enum dsfs_lock_rank rank)
{
	pthread_mutex_init(&mu->m, NULL);
	mu->rank = rank;
}

static inline void dsfs_mutex_destroy(struct dsfs_mutex *mu)
{
	pthread_mutex_destroy(&mu->m);
}

#ifdef DSFS_LOCK_CHECK
/* Takes mu; aborts, naming both locks, when a lock of the same or a higher rank is held. */
void dsfs_lock(struct dsfs_mutex *mu);
void dsfs_unlock(struct dsfs_mutex *mu);
/* Before a condition wait on mu: aborts unless mu is the highest lock held. */
void dsfs_lock_check_wait(const struct dsfs_mutex *mu);
#else
static inline void dsfs_lock(struct dsfs_mutex *mu)
{
	pthread_mutex_lock(&mu->m);
}

static inline void dsfs_unlock(struct dsfs_mutex *mu)
{
	pthread_mutex_unlock(&mu->m);
}

static inline void dsfs_lock_check_wait(const struct dsfs_mutex *mu)
{
	(void)mu;
}
#endif

static inline int dsfs_cond_wait(pthread_cond_t *c, struct dsfs_mutex *mu)
{
	dsfs_lock_check_wait(mu);
	return pthread_cond_wait(c, &mu->m);
}

static inline int dsfs_cond_timedwait(pthread_cond_t *c, struct dsfs_mutex *mu, const struct timespec *until)
{
	dsfs_lock_check_wait(mu);
	return pthread_cond_timedwait(c, &mu->m, until);
}

#endif
