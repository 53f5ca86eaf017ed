// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pruner: a thread that asks the kernel to drop names (and so forget
 * their inodes and dsfs's nodes), those a listing lost at once, and past
 * the node bound the ones looked up longest ago.
 */
#include "fuse/fuse_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/locks.h"

static struct {
	size_t node_bytes;
	pthread_t thread;
	bool running, stop;
	struct dsfs_mutex lock;
	pthread_cond_t cond;
	struct dsfs_nodes_entry *lost; /* names to drop (lock) */
	size_t nlost;
} pr = { .lock = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_FUSE_PRUNE), .cond = PTHREAD_COND_INITIALIZER };

#define PRUNE_BATCH 256
#define PRUNE_MAX 16384 /* names asked for at most per round (10 rounds a second) */
#define LOST_MAX 4096   /* lost names waiting to be dropped; more wait for their entry timeout */

void dsfs_fuse_prune_lost(const struct dsfs_nodes_entry *e, size_t n)
{
	dsfs_lock(&pr.lock);
	if (pr.running && pr.lost) {
		if (n > LOST_MAX - pr.nlost)
			n = LOST_MAX - pr.nlost;
		memcpy(pr.lost + pr.nlost, e, n * sizeof(*e));
		pr.nlost += n;
		pthread_cond_signal(&pr.cond);
	}
	dsfs_unlock(&pr.lock);
}

static void inval_entries(const struct dsfs_nodes_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_entry(dsfs_fuse.se, e[i].parent, e[i].name, strlen(e[i].name));
}

/*
 * The kernel holds an inode, and dsfs a node, for every name it looked up
 * until it forgets it, which it does only under its own memory pressure,
 * and it goes on finding a name until its entry timeout. This thread asks
 * it to drop names (notify_inval_entry): those a listing lost, at once (a
 * directory with everything below it), and past node_bytes the names
 * looked up longest ago that hold none below them; the kernel FORGETs what
 * it drops, and a later path lookup asks again. Its own thread, as dropping
 * a name waits for lookups in its directory, which worker threads answer.
 */
static void *prune(void *arg)
{
	struct dsfs_nodes_entry *batch = malloc(PRUNE_BATCH * sizeof(*batch));
	struct dsfs_nodes_entry *lost = malloc(LOST_MAX * sizeof(*lost));

	(void)arg;
	dsfs_lock(&pr.lock);
	while (batch && lost && !pr.stop) {
		struct timespec until;
		size_t count, bytes, want, got, nlost;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000 * 1000 * 1000) {
			until.tv_sec++;
			until.tv_nsec -= 1000 * 1000 * 1000;
		}
		if (!pr.nlost)
			dsfs_cond_timedwait(&pr.cond, &pr.lock, &until);
		if (pr.stop)
			break;
		nlost = pr.nlost;
		memcpy(lost, pr.lost, nlost * sizeof(*lost));
		pr.nlost = 0;
		dsfs_unlock(&pr.lock);
		inval_entries(lost, nlost);
		dsfs_nodes_stats(dsfs_fuse.nodes, &count, &bytes);
		/* down to 7/8 of the bound, so that one round lasts a while */
		want = pr.node_bytes && bytes > pr.node_bytes && count
			? (bytes - pr.node_bytes / 8 * 7) / (bytes / count) + 1
			: 0;
		if (want > PRUNE_MAX)
			want = PRUNE_MAX;
		while (want &&
		       (got = dsfs_nodes_oldest(dsfs_fuse.nodes, batch, want < PRUNE_BATCH ? want : PRUNE_BATCH))) {
			inval_entries(batch, got);
			want -= got;
		}
		dsfs_lock(&pr.lock);
	}
	dsfs_unlock(&pr.lock);
	free(batch);
	free(lost);
	return NULL;
}

void dsfs_fuse_prune_start(size_t node_bytes)
{
	pr.node_bytes = node_bytes;
	pr.lost = malloc(LOST_MAX * sizeof(*pr.lost));
	dsfs_lock(&pr.lock);
	pr.running = pr.lost && pthread_create(&pr.thread, NULL, prune, NULL) == 0;
	dsfs_unlock(&pr.lock);
}

void dsfs_fuse_prune_stop(void)
{
	bool running;

	dsfs_lock(&pr.lock);
	running = pr.running;
	pr.stop = true;
	if (running)
		pthread_cond_signal(&pr.cond);
	dsfs_unlock(&pr.lock);
	if (running)
		pthread_join(pr.thread, NULL);
	dsfs_lock(&pr.lock);
	pr.running = false;
	free(pr.lost);
	pr.lost = NULL;
	dsfs_unlock(&pr.lock);
}
