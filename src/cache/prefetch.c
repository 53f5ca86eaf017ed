// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The prefetcher: once a walker (find, tar, rsync) has gone into a few
 * resources of a directory, workers fetch what it will ask for next, a
 * bounded distance ahead of it, and stop when it stops.
 */
#include "cache/cache_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"

/* One step of a walk: fetch what the walker will want of item r. Lock held; dropped meanwhile. */
static void prefetch_item(struct dsfs_cache *c, struct dsfs_node *r, bool dirs, unsigned files)
{
	size_t i;

	for (i = 0; dirs && i < r->kind->nchildren && r->attached; i++) {
		struct dsfs_node *cc = cache_child_shown(r, (int)i) ? cache_child_collection(c, r, (int)i) : NULL;

		if (!cc || !cc->is_coll || (cc->listed && fresh(c, cc->listed_at)) || cc->listing)
			continue; /* a folder lists nothing */
		cache_node_ref(cc);
		if (cache_ensure_listing(c, cc, true) == 0) {
			c->prefetched++;
			/* the bound keeps it until the walker gets there */
			cc->ahead = cc->listed;
		}
		cache_node_unref(c, cc);
	}
	for (i = 0; i < r->kind->nfiles && i < WALK_FILES && r->attached; i++) {
		struct slot *sl = &r->slots[i];

		if (!(files & (1u << i)) || sl->fetching || (sl->blob && direct_fresh(c, sl->at)))
			continue;
		if (cache_fetch_slot(c, r, (int)i) == 0 && sl->blob) {
			sl->fresh_for_open = true;
			c->prefetched++;
		}
	}
}

/* True when the cache fits its bound: only then may a worker fetch more ahead of a walker. */
static bool room_ahead(const struct dsfs_cache *c)
{
	return !c->o.max_bytes || c->bytes <= c->o.max_bytes;
}

static void *prefetch_worker(void *arg)
{
	struct dsfs_cache *c = arg;

	dsfs_lock(&c->lock);
	while (!c->stopping) {
		struct walk *w, **pp;
		struct dsfs_node *r = NULL;
		bool dirs = false;
		unsigned files = 0;

		for (pp = &c->walks; (w = *pp);) {
			/*
			 * What the walker has reached it fetches itself; a worker
			 * behind it would only fetch again what the bound dropped
			 * after the walker used it.
			 */
			if (w->coll->walk_at == w->listed_at && w->next <= w->coll->walk_pos)
				w->next = w->coll->walk_pos + 1;
			if (cache_walk_done(w)) {
				*pp = w->next_walk;
				if (w->coll->walk == w)
					w->coll->walk = NULL;
				cache_node_unref(c, w->coll);
				free(w);
				continue;
			}
			/*
			 * Not past the lead, and not while the cache is over its
			 * bound: what it fetched could not be held until the
			 * walker gets there (the walker moving on wakes us).
			 */
			if (w->next <= w->coll->walk_pos + WALK_LEAD * c->nworkers && room_ahead(c)) {
				r = cache_node_ref(w->coll->items[w->next++]);
				dirs = w->dirs;
				files = w->files;
				break;
			}
			pp = &w->next_walk;
		}
		if (!r) {
			dsfs_cond_wait(&c->work, &c->lock);
			continue;
		}
		prefetch_item(c, r, dirs, files);
		cache_node_unref(c, r);
	}
	dsfs_unlock(&c->lock);
	return NULL;
}

/*
 * Notes that the walker went into resource r: listed one of its
 * collections (file < 0) or had file `file` fetched. Once it has done so for WALK_THRESHOLD
 * resources of one listing, workers fetch the same for the resources that
 * follow, a few ahead of it, so a crawl over a distant API waits for
 * several requests at once instead of one after another. A walker that
 * stops early wastes at most the lead. Lock held.
 */
void cache_note_walk(struct dsfs_cache *c, struct dsfs_node *r, int file)
{
	struct dsfs_node *coll = r->parent;
	unsigned *hits;
	size_t idx, *last;
	struct walk *w;

	if (!c->o.prefetch || c->o.ttl < 1 || !coll || !coll->is_coll || !r->attached || file >= WALK_FILES ||
	    c->stopping)
		return;
	if (coll->walk_at != coll->listed_at) {
		coll->walk_at = coll->listed_at;
		coll->walk_pos = 0;
		coll->walk_dirs = 0;
		coll->walk_last_dir = 0;
		memset(coll->walk_files, 0, sizeof(coll->walk_files));
		memset(coll->walk_last_file, 0, sizeof(coll->walk_last_file));
	}
	idx = cache_item_index(coll, r);
	if (idx == SIZE_MAX)
		return;
	if (idx > coll->walk_pos) {
		coll->walk_pos = idx;
		if (coll->walk)
			pthread_cond_broadcast(&c->work);
	}
	hits = file < 0 ? &coll->walk_dirs : &coll->walk_files[file];
	last = file < 0 ? &coll->walk_last_dir : &coll->walk_last_file[file];
	if (idx + 1 < *last && coll->walk && ++coll->walk->back >= WALK_THRESHOLD && coll->walk->back * 4 >= *hits) {
		/*
		 * The walker does not go in the listing's order (GNU find sorts a
		 * directory of more than 10,000 entries by inode number): what
		 * the workers fetch "ahead" is anywhere in its future, and the
		 * bound drops it before the walker gets there. The walk ends
		 * (its listings are no longer kept for it); it starts again only
		 * after WALK_THRESHOLD steps forward with no jump between them.
		 */
		coll->walk->next = coll->nitems;
		pthread_cond_broadcast(&c->work);
	}
	if (idx + 1 <= *last)
		return; /* only a walker moving forward counts: going back to one seen is browsing */
	if (*last && idx + 1 - *last > WALK_LEAD)
		*hits = 0; /* a jump, not a walk in the listing's order: count afresh */
	*last = idx + 1;
	if (++*hits != WALK_THRESHOLD)
		return;
	if (file < 0 && !r->kind->nchildren)
		return;
	if (!c->workers) {
		c->workers = calloc(c->o.prefetch, sizeof(*c->workers));
		for (unsigned i = 0; c->workers && i < c->o.prefetch; i++)
			if (pthread_create(&c->workers[i], NULL, prefetch_worker, c) == 0)
				c->nworkers++;
		if (!c->nworkers)
			return;
	}
	w = coll->walk;
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return;
		w->coll = cache_node_ref(coll);
		w->listed_at = coll->listed_at;
		w->next = idx + 1;
		w->next_walk = c->walks;
		c->walks = w;
		coll->walk = w;
	}
	if (file < 0)
		w->dirs = true;
	else
		w->files |= 1u << file;
	pthread_cond_broadcast(&c->work);
}
