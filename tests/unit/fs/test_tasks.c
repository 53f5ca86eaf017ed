// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for task watching (src/fs/tasks.c) through the transport seam:
 * tasks that progress on the fake API until they end, in each dialect's
 * words, and what a wait says about it in dsfs's one vocabulary
 * (SUCCEEDED, FAILED, CANCELLED, TIMEDOUT) with the reason; polls that
 * fail, a task that is gone, wait_timeout, and several waits on one task.
 * Every watch runs at once (one tracker each), so the whole takes about
 * as long as the longest task.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "fakeapi.h"
#include "tap.h"
#include "fs/tasks.h"

#define MAX_BODIES 4

/* A task on its own fake API, and how its watch must end. */
struct job {
	const char *what;               /* for the TAP lines */
	const char *dialect, *url;      /* the task's URL, as the tree gives it to the poller */
	const char *route;              /* the path the fake answers it at (NULL: none, 404) */
	const char *bodies[MAX_BODIES]; /* what each poll answers (the last repeated) */
	long statuses[MAX_BODIES];      /* 0: 200 */
	double timeout;                 /* wait_timeout; 0: 5 s */
	/* expected */
	int ret;
	const char *end; /* NULL: none */
	const char *why; /* a text the reason holds, or NULL: no reason */
	size_t polls;    /* GETs of route, 0: not checked */

	struct fake_api *f;
	struct dsfs_session *s;
	struct dsfs_tasks *t;
	bool done;
	int got_ret;
	const char *got_end;
	char got_why[600];
};

#define SP_TASK(state, extra) "{\"id\":\"t1\",\"state\":\"" state "\",\"suggestedPollingIntervalSeconds\":0" extra "}"
#define JOB(status, extra) "{\"items\":[{\"id\":\"j1\",\"status\":\"" status "\"" extra "}]}"
#define SYNC(status, extra) "{\"relationshipId\":\"r1\",\"activity\":{\"status\":\"" status "\"" extra "}}"

// clang-format off
static struct job jobs[] = {
	{ "storageplugin: a task that runs, then succeeds", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { SP_TASK("RUNNING", ""), SP_TASK("RUNNING", ""), SP_TASK("SUCCEEDED", "") }, .ret = 0, .end = "SUCCEEDED",
	  .polls = 3 },
	{ "storageplugin: a failed task", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { SP_TASK("RUNNING", ""), SP_TASK("FAILED", ",\"error\":\"pool is full\"") }, .ret = -EIO, .end = "FAILED",
	  .why = "pool is full", .polls = 2 },
	{ "storageplugin: a cancelled task", "storageplugin", "/tasks/t1", "/tasks/t1", { SP_TASK("CANCELLED", "") },
	  .ret = -EIO, .end = "CANCELLED", .why = "ended CANCELLED; the server gave no reason", .polls = 1 },
	{ "storageplugin: a task the server timed out", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { SP_TASK("TIMEDOUT", "") }, .ret = -EIO, .end = "TIMEDOUT", .why = "ended TIMEDOUT", .polls = 1 },
	{ "storageplugin: a task still running at wait_timeout", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { SP_TASK("RUNNING", "") }, .timeout = 0.5, .ret = -ETIMEDOUT, .end = "TIMEDOUT", .why = "wait_timeout" },
	{ "storageplugin: a task in a state not known to end", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { SP_TASK("PAUSED", ""), SP_TASK("SUCCEEDED", "") }, .ret = 0, .end = "SUCCEEDED", .polls = 2 },
	{ "storageplugin: polls failing for a while", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { "{\"error\":\"busy\"}", "{\"error\":\"busy\"}", SP_TASK("SUCCEEDED", "") }, { 500, 503, 200 },
	  .ret = 0, .end = "SUCCEEDED", .polls = 3 },
	{ "storageplugin: a poll interval that is no number (NaN)", "storageplugin", "/tasks/t1", "/tasks/t1",
	  { "{\"id\":\"t1\",\"state\":\"RUNNING\",\"suggestedPollingIntervalSeconds\":NaN}", SP_TASK("SUCCEEDED", "") },
	  .ret = 0, .end = "SUCCEEDED", .polls = 2 },
	{ "storageplugin: a task that is gone", "storageplugin", "/tasks/t9", NULL, { NULL }, .ret = -ENOENT,
	  .end = NULL, .why = "/tasks/t9", .polls = 0 },
	{ "dscc: a failed task with an error object", "dscc", "/api/v1/tasks/t1", "/api/v1/tasks/t1",
	  { "{\"id\":\"t1\",\"state\":\"FAILED\",\"error\":{\"message\":\"array offline\"}}" }, .ret = -EIO,
	  .end = "FAILED", .why = "array offline", .polls = 1 },
	{ "dscc: a failed task with no reason", "dscc", "/api/v1/tasks/t1", "/api/v1/tasks/t1",
	  { "{\"id\":\"t1\",\"state\":\"FAILED\"}" }, .ret = -EIO, .end = "FAILED",
	  .why = "ended FAILED; the server gave no reason", .polls = 1 },
	{ "backupdr: a job that runs, then succeeded", "backupdr", "/jobstatus/j1", "/jobstatus",
	  { JOB("running", ""), JOB("succeeded", "") }, .ret = 0, .end = "SUCCEEDED", .polls = 2 },
	{ "backupdr: a canceled job", "backupdr", "/jobstatus/j1", "/jobstatus", { JOB("canceled", "") },
	  .ret = -EIO, .end = "CANCELLED", .why = "ended canceled", .polls = 1 },
	{ "backupdr: a failed job", "backupdr", "/jobstatus/j1", "/jobstatus",
	  { JOB("failed", ",\"message\":\"no space on the pool\"") }, .ret = -EIO, .end = "FAILED",
	  .why = "no space on the pool", .polls = 1 },
	{ "cloudsync: a sync that runs, then is done", "cloudsync", "/relationships-v2/r1", "/relationships-v2/r1",
	  { SYNC("RUNNING", ""), SYNC("DONE", "") }, .ret = 0, .end = "SUCCEEDED", .polls = 2 },
	{ "cloudsync: an aborted sync", "cloudsync", "/relationships-v2/r1", "/relationships-v2/r1",
	  { SYNC("ABORTED", "") }, .ret = -EIO, .end = "CANCELLED", .why = "ended ABORTED", .polls = 1 },
	{ "cloudsync: a failed sync", "cloudsync", "/relationships-v2/r1", "/relationships-v2/r1",
	  { SYNC("FAILED", ",\"failureMessage\":\"broker unreachable\"") }, .ret = -EIO, .end = "FAILED",
	  .why = "broker unreachable", .polls = 1 },
};
// clang-format on

#define NJOBS (sizeof(jobs) / sizeof(jobs[0]))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ended = PTHREAD_COND_INITIALIZER;

static void done(void *arg, int ret, const char *end, const char *why)
{
	struct job *j = arg;

	pthread_mutex_lock(&lock);
	j->got_ret = ret;
	j->got_end = end;
	snprintf(j->got_why, sizeof(j->got_why), "%s", why ? why : "");
	j->done = true;
	pthread_cond_broadcast(&ended);
	pthread_mutex_unlock(&lock);
}

/* Waits until every watch of js (n) has ended, or 8 s: true when they all did. */
static bool wait_all(struct job *js, size_t n)
{
	struct timespec until;
	bool all = false;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 8;
	pthread_mutex_lock(&lock);
	for (;;) {
		all = true;
		for (size_t i = 0; i < n; i++)
			all = all && js[i].done;
		if (all || pthread_cond_timedwait(&ended, &lock, &until))
			break;
	}
	pthread_mutex_unlock(&lock);
	return all;
}

static void start(struct job *j)
{
	size_t n = 0;

	while (n < MAX_BODIES && j->bodies[n])
		n++;
	for (size_t i = 0; i < n; i++)
		j->statuses[i] = j->statuses[i] ? j->statuses[i] : 200;
	j->f = fake_new();
	j->s = fake_session(j->f, j->dialect);
	j->t = dsfs_tasks_new(dsfs_dialect_named(j->dialect), j->s);
	if (j->route)
		fake_sequence(j->f, "GET", j->route, j->bodies, j->statuses, n);
	if (!dsfs_tasks_watch(j->t, j->url, j->timeout ? j->timeout : 5, done, j))
		done(j, -ENOMEM, NULL, "cannot watch");
}

static void stop(struct job *j)
{
	dsfs_tasks_free(j->t);
	dsfs_session_free(j->s);
	fake_free(j->f);
}

static void check(struct job *j)
{
	ok(j->done && j->got_ret == j->ret && (j->end ? j->got_end && !strcmp(j->got_end, j->end) : !j->got_end),
	   "%s: the wait ends %d %s (got %d %s)", j->what, j->ret, j->end ? j->end : "without an end", j->got_ret,
	   j->got_end ? j->got_end : "none");
	if (j->why)
		ok(strstr(j->got_why, j->why), "%s: the reason says \"%s\": %s", j->what, j->why, j->got_why);
	else
		ok(!j->got_why[0], "%s: no reason is given", j->what);
	if (j->polls)
		is_int(fake_count(j->f, "GET", j->route, -1), j->polls, "polled once per answer, not again once ended");
}

/* Two waits on one task: it is polled once per round for both. */
static void test_shared(void)
{
	static const char *const bodies[] = { SP_TASK("RUNNING", ""), SP_TASK("SUCCEEDED", "") };
	struct job two[2] = { { .what = "shared 1" }, { .what = "shared 2" } };
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");
	struct dsfs_tasks *t = dsfs_tasks_new(dsfs_dialect_named("storageplugin"), s);
	struct dsfs_task_watch *gone;

	fake_sequence(f, "GET", "/tasks/t1", bodies, NULL, 2);
	dsfs_tasks_watch(t, "/tasks/t1", 5, done, &two[0]);
	dsfs_tasks_watch(t, "/tasks/t1", 5, done, &two[1]);
	gone = dsfs_tasks_watch(t, "/tasks/t1", 5, done, NULL);
	ok(dsfs_tasks_unwatch(t, gone), "a watch stopped before its task ended is removed (its done never called)");
	ok(wait_all(two, 2) && two[0].got_ret == 0 && two[1].got_ret == 0, "two waits on one task both see it succeed");
	is_int(fake_count(f, "GET", "/tasks/t1", -1), 2, "polled once per round for both: 2 GETs, not 4");
	is_int(dsfs_tasks_watching(t), 0, "no watch is left");
	dsfs_tasks_free(t);
	dsfs_session_free(s);
	fake_free(f);
}

int main(void)
{
	for (size_t i = 0; i < NJOBS; i++)
		start(&jobs[i]);
	test_shared();
	ok(wait_all(jobs, NJOBS), "every wait ended within its bound");
	for (size_t i = 0; i < NJOBS; i++) {
		check(&jobs[i]);
		stop(&jobs[i]);
	}
	return done_testing();
}
