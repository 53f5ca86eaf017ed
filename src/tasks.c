// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Waiting for tasks. A wait sleeps in short slices so an interrupt (Ctrl-C
 * on the waiting process) ends it within a fraction of a second, and polls
 * the task no faster than the server suggests.
 */
#include "tasks.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errmap.h"
#include "log.h"

struct dsfs_tasks {
	const struct dsfs_dialect *dialect;
	struct dsfs_session *session;
	pthread_mutex_t lock;
	char *latest;
	unsigned long latest_seq;
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
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void dsfs_tasks_free(struct dsfs_tasks *t)
{
	if (!t)
		return;
	free(t->latest);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void dsfs_tasks_set_latest(struct dsfs_tasks *t, const char *id)
{
	char *copy = id ? strdup(id) : NULL;

	if (id && !copy)
		return;
	pthread_mutex_lock(&t->lock);
	free(t->latest);
	t->latest = copy;
	t->latest_seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->lock);
}

unsigned long dsfs_tasks_latest_seq(struct dsfs_tasks *t)
{
	unsigned long seq;

	pthread_mutex_lock(&t->lock);
	seq = t->latest_seq;
	pthread_mutex_unlock(&t->lock);
	return seq;
}

char *dsfs_tasks_latest(struct dsfs_tasks *t)
{
	char *id;

	pthread_mutex_lock(&t->lock);
	id = t->latest ? strdup(t->latest) : NULL;
	pthread_mutex_unlock(&t->lock);
	return id;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *string_field(json_object *o, const char *name)
{
	json_object *v = dsfs_dialect_field(o, name);

	if (v)
		return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
								: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return NULL;
}

/* Failures of one poll that a later poll may not see: the wait goes on through them. */
static bool transient(int err)
{
	return err == -EIO || err == -ETIMEDOUT || err == -EAGAIN;
}

int dsfs_tasks_wait(struct dsfs_tasks *t, const char *url, double timeout, bool (*interrupted)(void),
		    char **state_out)
{
	const struct dsfs_dialect *d = t->dialect;
	double deadline = now_s() + timeout;
	char *state = NULL;
	int ret, failed_polls = 0;

	for (;;) {
		/* a poll in flight is abandoned as soon as its reader is interrupted or the mount ends */
		struct dsfs_request req = { .method = "GET", .path = url, .cancelled = interrupted };
		struct dsfs_response resp = { 0 };
		json_object *o = NULL, *v;
		double interval = 1, next;
		const char *st;

		ret = dsfs_session_call(t->session, &req, &resp, false);
		if (ret == 0 && !(o = json_tokener_parse(resp.body ? resp.body : ""))) {
			dsfs_err_record("GET", url, 0, "task answer is not JSON");
			ret = -EIO;
		}
		dsfs_response_clear(&resp);
		if (ret == -EINTR || (ret && interrupted && interrupted())) {
			free(state);
			return -EINTR;
		}
		if (ret && !transient(ret))
			break;
		if (ret) {
			/* the task has not ended because one poll failed: log it, and poll again */
			char why[600];

			if (failed_polls++ == 0 || failed_polls % 30 == 0)
				dsfs_log(DSFS_LOG_WARN, "waiting for %s: a poll failed (%s); polling on until "
					 "wait_timeout", url, dsfs_err_describe(why, sizeof(why)) ?: strerror(-ret));
		} else {
			st = string_field(o, d->task.state_field);
			free(state);
			state = strdup(st ? st : "UNSPECIFIED");
			if (dsfs_dialect_state_in(st, d->task.succeeded)) {
				json_object_put(o);
				ret = 0;
				break;
			}
			if (dsfs_dialect_state_in(st, d->task.failed)) {
				const char *why = string_field(o, d->task.error_field);

				dsfs_err_record("GET", url, 0, why ? why : st);
				dsfs_log(DSFS_LOG_ERR, "task %s ended %s: %s", url, st, why ? why : "(no error given)");
				json_object_put(o);
				ret = -EIO;
				break;
			}
			if (d->task.poll_field && (v = dsfs_dialect_field(o, d->task.poll_field)))
				interval = json_object_get_double(v);
			json_object_put(o);
		}
		if (interval < 0.2)
			interval = 0.2;
		if (interval > 30)
			interval = 30;
		next = now_s() + interval;
		for (;;) {
			struct timespec slice = { 0, 50 * 1000 * 1000 };

			if (interrupted && interrupted()) {
				free(state);
				return -EINTR;
			}
			if (now_s() >= deadline) {
				dsfs_err_record("GET", url, 0, "wait_timeout passed before the task ended");
				ret = -ETIMEDOUT;
				goto out;
			}
			if (now_s() >= next)
				break;
			nanosleep(&slice, NULL);
		}
	}
out:
	if (state_out)
		*state_out = state;
	else
		free(state);
	return ret;
}
