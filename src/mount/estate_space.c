// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * df of an estate: every member asked side by side, the answers summed,
 * within one timeout whatever a member does.
 */
#include "mount/estate_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"
#include "util/log.h"

/* ---- df of the estate ------------------------------------------------------------ */

/*
 * A df of the estate asks every member at once, each in a thread of its
 * own, and waits one timeout at most: a member that hangs would otherwise
 * hold the df for its timeout, and n of them for n timeouts. A member that
 * has not answered by then is left out of the sum (logged); its thread
 * ends with its request, and until then the next df does not ask it again.
 */
struct sizing {
	struct dsfs_mutex lock;
	pthread_cond_t answered; /* monotonic clock */
	size_t refs;             /* the df and each of its threads still running */
	size_t left;             /* members yet to answer */
	struct dsfs_estate *e;
	struct sized {
		struct dsfs_space s;
		int ret;
		bool started, done;
	} * r;
};

struct sizer {
	struct sizing *job;
	size_t i;
};

static void sizing_unref(struct sizing *job)
{
	bool last;

	dsfs_lock(&job->lock);
	last = !--job->refs;
	dsfs_unlock(&job->lock);
	if (!last)
		return;
	pthread_cond_destroy(&job->answered);
	dsfs_mutex_destroy(&job->lock);
	free(job->r);
	free(job);
}

static void *size_member(void *arg)
{
	struct sizer *a = arg;
	struct sizing *job = a->job;
	struct dsfs_estate *e = job->e;
	struct member *m = &e->m[a->i];
	struct dsfs_space s;
	int ret;

	dsfs_log_set_member(m->name);
	ret = dsfs_fs_statfs(m->fs, "/", &s); /* its failure is logged, named after the member */
	dsfs_log_set_member(NULL);            /* this may be the df's own thread (no thread could be made) */

	dsfs_lock(&job->lock);
	job->r[a->i] = (struct sized){ .s = s, .ret = ret, .started = true, .done = true };
	job->left--;
	pthread_cond_broadcast(&job->answered);
	dsfs_unlock(&job->lock);
	sizing_unref(job);
	free(a);
	dsfs_lock(&e->lock); /* last: once sizers drops, e may go */
	m->sizing = false;
	e->sizers--;
	pthread_cond_broadcast(&e->sized);
	dsfs_unlock(&e->lock);
	return NULL;
}

/* Starts member i's df in the background: 0, -EBUSY (one from an earlier df runs), -ENOMEM. */
static int start_sizing(struct sizing *job, size_t i)
{
	struct dsfs_estate *e = job->e;
	struct sizer *a = malloc(sizeof(*a));
	pthread_attr_t attr;
	pthread_t t;
	bool busy;
	int ret;

	dsfs_lock(&e->lock);
	busy = e->m[i].sizing;
	if (!busy && a) {
		e->m[i].sizing = true;
		e->sizers++;
	}
	dsfs_unlock(&e->lock);
	if (busy || !a) {
		free(a);
		return busy ? -EBUSY : -ENOMEM;
	}
	*a = (struct sizer){ .job = job, .i = i };
	dsfs_lock(&job->lock);
	job->refs++;
	job->left++;
	job->r[i].started = true;
	dsfs_unlock(&job->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, size_member, a);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		return 0;
	dsfs_log(DSFS_LOG_WARN, "df: no thread to ask member %s (%s): asking it in turn", e->m[i].name, strerror(ret));
	size_member(a); /* as a thread would: the answer, and the counts undone */
	return 0;
}

int dsfs_estate_space_sum(struct dsfs_estate *e, struct dsfs_space *sum)
{
	struct sizing *job = calloc(1, sizeof(*job));
	double timeout = 0, deadline;
	pthread_condattr_t ca;
	struct timespec now, until;

	if (!job || !(job->r = calloc(e->n ? e->n : 1, sizeof(*job->r)))) {
		free(job);
		return -ENOMEM;
	}
	job->e = e;
	job->refs = 1;
	dsfs_mutex_init(&job->lock, DSFS_LOCK_ESTATE_SIZING);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&job->answered, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < e->n; i++) {
		double t = dsfs_session_timeout(e->m[i].session);
		int ret = start_sizing(job, i);

		timeout = t > timeout ? t : timeout;
		if (ret)
			dsfs_log(DSFS_LOG_WARN, "df: member %s left out of the sum: %s", e->m[i].name,
				 ret == -EBUSY ? "it has not answered an earlier df yet" : strerror(-ret));
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = (double)now.tv_sec + (double)now.tv_nsec / 1e9 + timeout;
	until.tv_sec = (time_t)deadline;
	until.tv_nsec = (long)((deadline - (double)until.tv_sec) * 1e9);
	dsfs_lock(&job->lock);
	while (job->left && dsfs_cond_timedwait(&job->answered, &job->lock, &until) != ETIMEDOUT)
		;
	for (size_t i = 0; i < e->n; i++) {
		if (job->r[i].done && job->r[i].ret == 0 && job->r[i].s.unit)
			dsfs_space_add(sum, &job->r[i].s);
		else if (job->r[i].done && job->r[i].ret)
			dsfs_log(DSFS_LOG_WARN, "df: member %s left out of the sum: %s", e->m[i].name,
				 strerror(-job->r[i].ret)); /* its request's own failure is logged without its name */
		else if (!job->r[i].done && job->r[i].started)
			dsfs_log(DSFS_LOG_WARN, "df: member %s did not answer within %.0f s: left out of the sum",
				 e->m[i].name, timeout);
	}
	dsfs_unlock(&job->lock);
	sizing_unref(job);
	return 0;
}
