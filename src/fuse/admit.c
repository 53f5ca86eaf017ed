// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One record per user with operations running or queued, FIFO within a
 * user, round robin across users: the thread that ends a job takes the
 * next job that may run, starting after the user it served last.
 */
#include "fuse/admit.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/locks.h"

struct job {
	dsfs_admit_fn fn;
	void *arg;
	struct job *next;
};

struct user {
	uid_t uid;
	unsigned running;
	struct job *head, *tail;
	struct user *next;
};

struct dsfs_admit {
	struct dsfs_mutex lock;
	unsigned per_user, others;
	uid_t owner;
	unsigned others_running, running, queued;
	struct user *users;
};

struct dsfs_admit *dsfs_admit_new(unsigned per_user, unsigned others, uid_t owner)
{
	struct dsfs_admit *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->per_user = per_user ? per_user : 1;
	a->others = others ? others : 1;
	a->owner = owner;
	dsfs_mutex_init(&a->lock, DSFS_LOCK_ADMIT);
	return a;
}

void dsfs_admit_free(struct dsfs_admit *a)
{
	struct user *u, *next;
	struct job *j, *jn;

	if (!a)
		return;
	for (u = a->users; u; u = next) {
		next = u->next;
		for (j = u->head; j; j = jn) {
			jn = j->next;
			j->fn(j->arg, false);
			free(j);
		}
		free(u);
	}
	dsfs_mutex_destroy(&a->lock);
	free(a);
}

static bool privileged(const struct dsfs_admit *a, uid_t uid)
{
	return uid == a->owner || uid == 0;
}

/*
 * A user with nothing running may always run one job, past the others'
 * share: so however many users flood the mount, each other user's next
 * operation runs at once (the threads this takes are bounded by the
 * number of users, not by what they do).
 */
static bool may_run(const struct dsfs_admit *a, const struct user *u)
{
	return u->running < a->per_user && (privileged(a, u->uid) || a->others_running < a->others || !u->running);
}

static void take(struct dsfs_admit *a, struct user *u)
{
	u->running++;
	a->running++;
	if (!privileged(a, u->uid))
		a->others_running++;
}

/* Ends a job of u; u goes when it has nothing left. Lock held. */
static void leave(struct dsfs_admit *a, struct user *u)
{
	u->running--;
	a->running--;
	if (!privileged(a, u->uid))
		a->others_running--;
	if (!u->running && !u->head) {
		struct user **p = &a->users;

		while (*p != u)
			p = &(*p)->next;
		*p = u->next;
		free(u);
	}
}

/* The user record of uid, made when missing. Lock held. */
static struct user *user_of(struct dsfs_admit *a, uid_t uid)
{
	struct user *u;

	for (u = a->users; u; u = u->next)
		if (u->uid == uid)
			return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	/* at the end, so the round robin below serves users in their order of arrival */
	struct user **p = &a->users;
	while (*p)
		p = &(*p)->next;
	*p = u;
	return u;
}

/* The next queued job that may run, taken off its queue and counted; rotates users. Lock held. */
static struct job *next_job(struct dsfs_admit *a, struct user **who)
{
	for (struct user **p = &a->users; *p; p = &(*p)->next) {
		struct user *u = *p;
		struct job *j = u->head;

		if (!j || !may_run(a, u))
			continue;
		u->head = j->next;
		if (!u->head)
			u->tail = NULL;
		a->queued--;
		take(a, u);
		/* this user goes to the back: the next turn is someone else's */
		*p = u->next;
		u->next = NULL;
		while (*p)
			p = &(*p)->next;
		*p = u;
		*who = u;
		return j;
	}
	return NULL;
}

void dsfs_admit_run(struct dsfs_admit *a, uid_t uid, dsfs_admit_fn fn, void *arg)
{
	struct user *u;
	struct job *j;

	dsfs_lock(&a->lock);
	u = user_of(a, uid);
	if (!u) { /* out of memory: run it, unbounded, rather than lose it */
		dsfs_unlock(&a->lock);
		fn(arg, true);
		return;
	}
	if (u->head || !may_run(a, u)) {
		j = malloc(sizeof(*j));
		if (j) {
			j->fn = fn;
			j->arg = arg;
			j->next = NULL;
			if (u->tail)
				u->tail->next = j;
			else
				u->head = j;
			u->tail = j;
			a->queued++;
			dsfs_unlock(&a->lock);
			return;
		}
	}
	take(a, u);
	for (;;) {
		dsfs_unlock(&a->lock);
		fn(arg, true);
		dsfs_lock(&a->lock);
		leave(a, u);
		j = next_job(a, &u);
		if (!j)
			break;
		fn = j->fn;
		arg = j->arg;
		free(j);
	}
	dsfs_unlock(&a->lock);
}

bool dsfs_admit_withdraw(struct dsfs_admit *a, void *arg)
{
	bool found = false;

	dsfs_lock(&a->lock);
	for (struct user *u = a->users; u && !found; u = u->next) {
		struct job *prev = NULL;

		for (struct job *j = u->head; j; prev = j, j = j->next) {
			if (j->arg != arg)
				continue;
			if (prev)
				prev->next = j->next;
			else
				u->head = j->next;
			if (u->tail == j)
				u->tail = prev;
			free(j);
			a->queued--;
			found = true;
			if (!u->running && !u->head) {
				struct user **p = &a->users;

				while (*p != u)
					p = &(*p)->next;
				*p = u->next;
				free(u);
			}
			break;
		}
	}
	dsfs_unlock(&a->lock);
	return found;
}

void dsfs_admit_counts(struct dsfs_admit *a, unsigned *running, unsigned *queued)
{
	dsfs_lock(&a->lock);
	*running = a->running;
	*queued = a->queued;
	dsfs_unlock(&a->lock);
}
