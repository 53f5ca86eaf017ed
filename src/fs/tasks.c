// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Task tracking and watching. One poller thread per tracker, started at
 * the first watch, polls the watched tasks in turn: a task many readers
 * wait on is polled once per round, at most one poll is in flight per
 * tracker (one connection of the endpoint), and a poll nobody waits for
 * any more is abandoned at once.
 */
#include "fs/tasks.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/errmap.h"
#include "util/clock.h"
#include "util/locks.h"
#include "util/log.h"

struct dsfs_task_watch {
	char *url;
	double deadline; /* wait_timeout passes */
	double next;     /* the next poll is due */
	dsfs_task_done_fn done;
	void *arg;
	struct dsfs_task_watch *next_w;
};

struct dsfs_tasks {
	const struct dsfs_dialect *dialect;
	struct dsfs_session *session;
	struct dsfs_mutex lock;
	char *latest;
	unsigned long latest_seq;
	pthread_cond_t work;             /* a watch arrived, or the tracker is going */
	struct dsfs_task_watch *watches; /* under lock */
	size_t nwatches;                 /* under lock */
	const char *polling;             /* the URL of the poll in flight, or NULL (under lock) */
	pthread_t poller;
	bool started, stop; /* under lock */
};

/* Orders "latest" across the members of an estate. */
static unsigned long seq_counter;

struct dsfs_tasks *dsfs_tasks_new(const struct dsfs_dialect *dialect, struct dsfs_session *session)
{
	struct dsfs_tasks *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->dialect = dialect;
	t->session = session;
	dsfs_mutex_init(&t->lock, DSFS_LOCK_TASKS);
	pthread_cond_init(&t->work, NULL);
	return t;
}

void dsfs_tasks_free(struct dsfs_tasks *t)
{
	struct dsfs_task_watch *w, *next;

	if (!t)
		return;
	dsfs_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->work);
	dsfs_unlock(&t->lock);
	if (t->started)
		pthread_join(t->poller, NULL);
	for (w = t->watches; w; w = next) { /* their callers have gone with the mount */
		next = w->next_w;
		free(w->url);
		free(w);
	}
	free(t->latest);
	pthread_cond_destroy(&t->work);
	dsfs_mutex_destroy(&t->lock);
	free(t);
}

void dsfs_tasks_set_latest(struct dsfs_tasks *t, const char *id)
{
	char *copy = id ? strdup(id) : NULL;

	if (id && !copy)
		return;
	dsfs_lock(&t->lock);
	free(t->latest);
	t->latest = copy;
	t->latest_seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
	dsfs_unlock(&t->lock);
}

unsigned long dsfs_tasks_latest_seq(struct dsfs_tasks *t)
{
	unsigned long seq;

	dsfs_lock(&t->lock);
	seq = t->latest_seq;
	dsfs_unlock(&t->lock);
	return seq;
}

char *dsfs_tasks_latest(struct dsfs_tasks *t)
{
	char *id;

	dsfs_lock(&t->lock);
	id = t->latest ? strdup(t->latest) : NULL;
	dsfs_unlock(&t->lock);
	return id;
}

static const char *string_field(json_object *o, const char *name)
{
	json_object *v = dsfs_dialect_field(o, name);

	if (v)
		return json_object_is_type(v, json_type_string)
			? json_object_get_string(v)
			: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return NULL;
}

/* Failures of one poll that a later poll may not see: the wait goes on through them. */
static bool transient(int err)
{
	return err == -EIO || err == -ETIMEDOUT || err == -EAGAIN;
}

/* The tracker whose poll the calling thread sends: its poll is abandoned when nobody waits for it. */
static __thread struct dsfs_tasks *poller_of;

static bool poll_unwanted(void)
{
	struct dsfs_tasks *t = poller_of;
	bool unwanted = true;

	if (!t)
		return false;
	dsfs_lock(&t->lock);
	if (!t->stop)
		for (struct dsfs_task_watch *w = t->watches; w && unwanted; w = w->next_w)
			unwanted = strcmp(w->url, t->polling);
	dsfs_unlock(&t->lock);
	return unwanted;
}

/* One poll's outcome for every watch of its URL. */
struct outcome {
	int ret;         /* 0: polled; else the poll's -errno */
	bool ended;      /* the task ended (or the wait must end): ret says how */
	double interval; /* when it has not: seconds to the next poll */
	const char *end; /* how it ended, in dsfs's words (static), or NULL */
	char why[600];
};

/* Polls url once. Lock not held. */
static void poll_task(struct dsfs_tasks *t, const char *url, struct outcome *out)
{
	const struct dsfs_dialect *d = t->dialect;
	struct dsfs_request req = { .method = "GET", .path = url, .cancelled = poll_unwanted };
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *v;
	enum dsfs_task_end end;
	const char *st;

	memset(out, 0, sizeof(*out));
	out->interval = 1;
	dsfs_err_clear();
	if (d->task_get) {
		out->ret = d->task_get(t->session, url, poll_unwanted, &o);
	} else {
		out->ret = dsfs_session_call(t->session, &req, &resp, false);
		if (out->ret == 0 && !(o = json_tokener_parse(resp.body ? resp.body : ""))) {
			dsfs_err_record("GET", url, 0, "task answer is not JSON");
			out->ret = -EIO;
		}
		dsfs_response_clear(&resp);
	}
	if (out->ret) {
		if (!dsfs_err_describe(out->why, sizeof(out->why)))
			snprintf(out->why, sizeof(out->why), "%s", strerror(-out->ret));
		/* abandoned (nobody waits any more): a watch that came since is polled afresh */
		out->ended = !transient(out->ret) && out->ret != -EINTR;
		return;
	}
	st = string_field(o, d->task.state_field);
	end = dsfs_task_outcome(&d->task, st);
	if (end == DSFS_TASK_SUCCEEDED) {
		out->ended = true;
		out->end = dsfs_task_end_word(end);
	} else if (end != DSFS_TASK_RUNNING) {
		if (!dsfs_task_reason(o, &d->task, out->why, sizeof(out->why))) /* one line, as error shows it */
			snprintf(out->why, sizeof(out->why), "ended %s; the server gave no reason", st);
		dsfs_log(DSFS_LOG_ERR, "task %s ended %s (%s): %s", url, st, dsfs_task_end_word(end), out->why);
		out->ret = -EIO;
		out->ended = true;
		out->end = dsfs_task_end_word(end);
	} else if (d->task.poll_field && (v = dsfs_dialect_field(o, d->task.poll_field))) {
		out->interval = json_object_get_double(v);
	}
	json_object_put(o);
	/* written so that a NaN the server sent (json-c reads one) is held too: it is never due */
	if (!(out->interval >= 0.2))
		out->interval = 0.2;
	if (!(out->interval <= 30))
		out->interval = 30;
}

/* Calls done for each watch on list (taken off the tracker), then frees them. Lock not held. */
static void finish(struct dsfs_task_watch *list, int ret, const char *state, const char *why)
{
	struct dsfs_task_watch *next;

	for (; list; list = next) {
		next = list->next_w;
		list->done(list->arg, ret, state, why);
		free(list->url);
		free(list);
	}
}

static void *poller(void *arg)
{
	struct dsfs_tasks *t = arg;
	int failed_polls = 0;

	poller_of = t;
	dsfs_lock(&t->lock);
	while (!t->stop) {
		struct dsfs_task_watch *due = NULL, *expired = NULL, *ended = NULL, **p;
		double now = dsfs_clock_now(), wake = now + 3600;
		struct outcome out;
		struct timespec ts;
		char *url;

		for (p = &t->watches; *p;) {
			struct dsfs_task_watch *w = *p;

			if (now >= w->deadline) {
				*p = w->next_w;
				w->next_w = expired;
				expired = w;
				t->nwatches--;
				continue;
			}
			if (w->next <= now && (!due || w->next < due->next))
				due = w;
			if (w->next < wake)
				wake = w->next;
			if (w->deadline < wake)
				wake = w->deadline;
			p = &w->next_w;
		}
		if (expired) {
			dsfs_unlock(&t->lock);
			finish(expired, -ETIMEDOUT, dsfs_task_end_word(DSFS_TASK_TIMEDOUT),
			       "wait_timeout passed before the task ended; it may still run");
			dsfs_lock(&t->lock);
			continue;
		}
		if (!due) {
			double abs_s;

			clock_gettime(CLOCK_REALTIME, &ts);
			abs_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (wake - now);
			ts.tv_sec = (time_t)abs_s;
			ts.tv_nsec = (long)((abs_s - (double)ts.tv_sec) * 1e9);
			dsfs_cond_timedwait(&t->work, &t->lock, &ts);
			continue;
		}
		url = strdup(due->url);
		if (!url) {
			due->next = now + 1;
			continue;
		}
		t->polling = url;
		dsfs_unlock(&t->lock);
		poll_task(t, url, &out);
		dsfs_lock(&t->lock);
		t->polling = NULL;
		now = dsfs_clock_now();
		if (out.ret && out.ret != -EINTR && !out.ended && (failed_polls++ == 0 || failed_polls % 30 == 0))
			dsfs_log(DSFS_LOG_WARN, "waiting for %s: a poll failed (%s); polling on until wait_timeout",
				 url, out.why);
		if (out.ret == 0)
			failed_polls = 0;
		for (p = &t->watches; *p;) {
			struct dsfs_task_watch *w = *p;

			if (strcmp(w->url, url)) {
				p = &w->next_w;
			} else if (out.ended) {
				*p = w->next_w;
				w->next_w = ended;
				ended = w;
				t->nwatches--;
			} else {
				w->next = now + out.interval;
				p = &w->next_w;
			}
		}
		dsfs_unlock(&t->lock);
		finish(ended, out.ret, out.end, out.why[0] ? out.why : NULL);
		free(url);
		dsfs_lock(&t->lock);
	}
	dsfs_unlock(&t->lock);
	return NULL;
}

struct dsfs_task_watch *dsfs_tasks_watch(struct dsfs_tasks *t, const char *url, double timeout, dsfs_task_done_fn done,
					 void *arg)
{
	struct dsfs_task_watch *w = calloc(1, sizeof(*w));

	if (!w || !(w->url = strdup(url))) {
		free(w);
		return NULL;
	}
	w->done = done;
	w->arg = arg;
	w->next = dsfs_clock_now();
	w->deadline = w->next + timeout;
	dsfs_lock(&t->lock);
	if (!t->started) {
		if (pthread_create(&t->poller, NULL, poller, t) != 0) {
			dsfs_unlock(&t->lock);
			free(w->url);
			free(w);
			return NULL;
		}
		t->started = true;
	}
	w->next_w = t->watches;
	t->watches = w;
	t->nwatches++;
	pthread_cond_signal(&t->work);
	dsfs_unlock(&t->lock);
	return w;
}

bool dsfs_tasks_unwatch(struct dsfs_tasks *t, struct dsfs_task_watch *w)
{
	bool removed = false;

	dsfs_lock(&t->lock);
	for (struct dsfs_task_watch **p = &t->watches; *p; p = &(*p)->next_w)
		if (*p == w) {
			*p = w->next_w;
			t->nwatches--;
			removed = true;
			break;
		}
	dsfs_unlock(&t->lock);
	if (removed) {
		free(w->url);
		free(w);
	}
	return removed;
}

size_t dsfs_tasks_watching(struct dsfs_tasks *t)
{
	size_t n;

	dsfs_lock(&t->lock);
	n = t->nwatches;
	dsfs_unlock(&t->lock);
	return n;
}
