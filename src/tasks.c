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

/*
 * Polls are shared and few: readers waiting on one task take the answer of
 * a poll at most POLL_SHARE seconds old (or the one in flight), and no more
 * than MAX_POLLS polls are in flight at once, so waiting readers, however
 * many, never take more than that many of the endpoint's connections.
 */
#define MAX_POLLS 4
#define POLL_SHARE 0.5
#define POLL_SLOTS 64

struct poll {
	char *url;   /* NULL: a free slot */
	double at;   /* when its answer arrived */
	int ret;     /* 0, or the poll's -errno */
	char *body;  /* the answer */
	bool busy;   /* a poll of url is in flight */
};

struct dsfs_tasks {
	const struct dsfs_dialect *dialect;
	struct dsfs_session *session;
	pthread_mutex_t lock;
	char *latest;
	unsigned long latest_seq;
	pthread_cond_t polled;           /* a poll ended */
	struct poll polls[POLL_SLOTS];   /* under lock */
	int in_flight;                   /* under lock */
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
	pthread_cond_init(&t->polled, NULL);
	return t;
}

void dsfs_tasks_free(struct dsfs_tasks *t)
{
	if (!t)
		return;
	free(t->latest);
	for (size_t i = 0; i < POLL_SLOTS; i++) {
		free(t->polls[i].url);
		free(t->polls[i].body);
	}
	pthread_cond_destroy(&t->polled);
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

/* The slot of url, or a free (or the oldest idle) one claimed for it. Lock held. */
static struct poll *poll_slot(struct dsfs_tasks *t, const char *url)
{
	struct poll *spare = NULL;

	for (size_t i = 0; i < POLL_SLOTS; i++) {
		struct poll *p = &t->polls[i];

		if (p->url && !strcmp(p->url, url))
			return p;
		if (!p->busy && (!spare || !p->url || (spare->url && p->at < spare->at)))
			spare = p;
	}
	if (!spare) /* every slot busy: cannot be, MAX_POLLS < POLL_SLOTS */
		return NULL;
	free(spare->url);
	free(spare->body);
	memset(spare, 0, sizeof(*spare));
	spare->url = strdup(url);
	return spare->url ? spare : NULL;
}

/*
 * The task's answer: one shared with other readers of it when fresh enough,
 * else a poll of our own once one of MAX_POLLS is free. 0 with *body
 * (malloc'd), -EINTR when interrupted, or the poll's -errno.
 */
static int shared_poll(struct dsfs_tasks *t, const char *url, bool (*interrupted)(void), char **body)
{
	struct dsfs_request req = { .method = "GET", .path = url, .cancelled = interrupted };
	struct dsfs_response resp = { 0 };
	struct poll *p;
	int ret;

	*body = NULL;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct timespec ts;

		p = poll_slot(t, url);
		if (!p) {
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		if (!p->busy && p->at > 0 && now_s() - p->at < POLL_SHARE) {
			ret = p->ret;
			if (ret == 0 && !(*body = strdup(p->body ? p->body : "")))
				ret = -ENOMEM;
			pthread_mutex_unlock(&t->lock);
			return ret;
		}
		if (!p->busy && t->in_flight < MAX_POLLS)
			break;
		if (interrupted && interrupted()) {
			pthread_mutex_unlock(&t->lock);
			return -EINTR;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->polled, &t->lock, &ts);
	}
	p->busy = true;
	t->in_flight++;
	pthread_mutex_unlock(&t->lock);

	ret = dsfs_session_call(t->session, &req, &resp, false);
	if (ret == 0 && !(*body = strdup(resp.body ? resp.body : "")))
		ret = -ENOMEM;
	dsfs_response_clear(&resp);

	pthread_mutex_lock(&t->lock);
	t->in_flight--;
	p = poll_slot(t, url); /* the same slot: a busy one is never reused */
	if (p) {
		p->busy = false;
		free(p->body);
		p->body = NULL;
		/* an interrupted poll answers for nobody else */
		p->ret = ret == -EINTR ? -EIO : ret;
		p->at = ret == -EINTR ? 0 : now_s();
		if (ret == 0 && *body)
			p->body = strdup(*body);
	}
	pthread_cond_broadcast(&t->polled);
	pthread_mutex_unlock(&t->lock);
	return ret;
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
		json_object *o = NULL, *v;
		double interval = 1, next;
		const char *st;
		char *body;

		/* a poll in flight is abandoned as soon as its reader is interrupted or the mount ends */
		ret = shared_poll(t, url, interrupted, &body);
		if (ret == 0 && !(o = json_tokener_parse(body))) {
			dsfs_err_record("GET", url, 0, "task answer is not JSON");
			ret = -EIO;
		}
		free(body);
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
