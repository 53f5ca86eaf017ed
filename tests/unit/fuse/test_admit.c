// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/fuse/admit.c: fair shares of the threads between users. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuse/admit.h"
#include "tap.h"

#define OWNER 1000
#define NOBODY 65534
#define OTHER 4242

struct slow {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool release; /* the slow jobs may end */
	int started, ran, dropped;
};

static struct slow s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0 };

/* A job that stays running until released. */
static void slow_job(void *arg, bool run)
{
	(void)arg;
	pthread_mutex_lock(&s.lock);
	if (!run) {
		s.dropped++;
		pthread_mutex_unlock(&s.lock);
		return;
	}
	s.started++;
	pthread_cond_broadcast(&s.cond);
	while (!s.release)
		pthread_cond_wait(&s.cond, &s.lock);
	s.ran++;
	pthread_mutex_unlock(&s.lock);
}

static void quick_job(void *arg, bool run)
{
	*(int *)arg = run ? 1 : -1;
}

struct start {
	struct dsfs_admit *a;
	uid_t uid;
};

static void *submit(void *arg)
{
	struct start *st = arg;

	dsfs_admit_run(st->a, st->uid, slow_job, NULL);
	return NULL;
}

int main(void)
{
	struct dsfs_admit *a = dsfs_admit_new(4, 6, OWNER);
	pthread_t t[12];
	struct start nobody = { a, NOBODY }, other = { a, OTHER };
	unsigned running, queued;
	int owner_ran = 0, root_ran = 0, other_ran = 0;
	bool joined[12] = { false };

	ok(a != NULL, "shares");
	/* nobody starts 8 slow jobs: 4 run (its share), 4 wait without a thread */
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, submit, &nobody);
	usleep(200 * 1000);
	dsfs_admit_counts(a, &running, &queued);
	ok(running == 4 && queued == 4, "one user runs its share, the rest queue: %u running, %u queued", running,
	   queued);
	/* the queued ones hold no thread: their submitters have returned */
	{
		int returned = 0;

		for (int i = 0; i < 8; i++)
			if (pthread_tryjoin_np(t[i], NULL) == 0) {
				joined[i] = true;
				returned++;
			}
		ok(returned == 4, "the 4 queued jobs' submitters returned at once: %d did", returned);
	}
	/* the owner and root run at once, whatever nobody holds */
	dsfs_admit_run(a, OWNER, quick_job, &owner_ran);
	dsfs_admit_run(a, 0, quick_job, &root_ran);
	ok(owner_ran == 1 && root_ran == 1, "the owner and root are not held by nobody's jobs");
	/* another user has the rest of the others' share: 2 of 6 */
	dsfs_admit_run(a, OTHER, quick_job, &other_ran);
	ok(other_ran == 1, "another user runs within the others' share");
	pthread_create(&t[8], NULL, submit, &other);
	pthread_create(&t[9], NULL, submit, &other);
	pthread_create(&t[10], NULL, submit, &other);
	usleep(200 * 1000);
	dsfs_admit_counts(a, &running, &queued);
	ok(running == 6 && queued == 5, "the others' share is shared: %u running, %u queued", running, queued);
	other_ran = 0;
	dsfs_admit_run(a, OTHER, quick_job, &other_ran);
	ok(other_ran == 0, "past the others' share, a job queues and the caller returns at once");
	{
		int third_ran = 0;

		dsfs_admit_run(a, 777, quick_job, &third_ran);
		ok(third_ran == 1, "a user with nothing running runs one job even past the others' share");
	}
	/* everything ends; queued jobs run in turn across users on the threads that end jobs */
	pthread_mutex_lock(&s.lock);
	s.release = true;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	for (int i = 0; i < 11; i++)
		if (!joined[i])
			pthread_join(t[i], NULL);
	dsfs_admit_counts(a, &running, &queued);
	ok(running == 0 && queued == 0 && s.ran == 11 && other_ran == 1,
	   "every queued job ran: %d slow, quick %d, %u left", s.ran, other_ran, queued);

	/* jobs still queued at the end are dropped, each once */
	s.release = false;
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, submit, &nobody);
	usleep(200 * 1000);
	dsfs_admit_counts(a, &running, &queued);
	ok(running == 4 && queued == 2, "4 running, 2 queued again");
	pthread_mutex_lock(&s.lock);
	s.release = true;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	dsfs_admit_free(a);
	a = dsfs_admit_new(1, 1, OWNER);
	nobody.a = a; /* the submitter works on the new shares, not the freed ones */
	s.release = false;
	pthread_create(&t[0], NULL, submit, &nobody);
	usleep(100 * 1000);
	other_ran = 0;
	dsfs_admit_run(a, NOBODY, quick_job, &other_ran);
	pthread_mutex_lock(&s.lock);
	s.release = true;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	pthread_join(t[0], NULL);
	ok(other_ran == 1, "a job queued behind a slow one runs when it ends");
	dsfs_admit_free(a);
	dsfs_admit_free(NULL);
	return done_testing();
}
