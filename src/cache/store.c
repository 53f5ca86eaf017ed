// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bottom of the cache: its nodes (the root, collections, resources)
 * and their references, the bytes each is accounted, the file slots'
 * contents, the LRU and the memory bound that drops listings and contents
 * from it, and taking nodes out of the tree. It sends no request and
 * calls nothing of the cache above it (fetching, prefetching, queries,
 * the entry points of cache/cache.c): those build on it. A node is
 * reference-counted: the tree holds one reference while the node is
 * attached, and each location handed out holds another, so eviction or a
 * vanished resource never frees memory a FUSE thread is still using.
 * Lock: every function here expects c->lock held.
 */
#include "cache/cache_int.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes -------------------------------------------------------------- */

void cache_account(struct dsfs_cache *c, struct dsfs_node *n, ssize_t delta)
{
	n->bytes = (size_t)((ssize_t)n->bytes + delta);
	c->bytes = (size_t)((ssize_t)c->bytes + delta);
}

struct dsfs_node *cache_node_new(struct dsfs_cache *c, bool is_coll, const struct dsfs_kind *kind, char *url)
{
	struct dsfs_node *n = calloc(1, sizeof(*n));

	if (!n) {
		free(url);
		return NULL;
	}
	n->refs = 1;
	n->is_coll = is_coll;
	n->kind = kind;
	n->url = url;
	n->mtime = time(NULL);
	if (!is_coll && kind->nfiles) {
		n->slots = calloc(kind->nfiles, sizeof(*n->slots));
		if (!n->slots)
			goto fail;
	}
	if (!is_coll && kind->nchildren) {
		n->colls = calloc(kind->nchildren, sizeof(*n->colls));
		if (!n->colls)
			goto fail;
	}
	c->nodes++;
	/* NODE_OVERHEAD: what a node costs beyond its own bytes (allocator, libfuse's and the kernel's entries) */
	cache_account(c, n,
		      (ssize_t)(NODE_OVERHEAD + sizeof(*n) + strlen(url) + 1 +
				(is_coll ? 0 : kind->nfiles * sizeof(struct slot) + kind->nchildren * sizeof(void *))));
	return n;
fail:
	free(n->slots);
	free(n->url);
	free(n);
	return NULL;
}

static void lru_unlink(struct dsfs_node *n)
{
	if (n->lru_next) {
		n->lru_prev->lru_next = n->lru_next;
		n->lru_next->lru_prev = n->lru_prev;
		n->lru_prev = n->lru_next = NULL;
	}
}

void cache_lru_touch(struct dsfs_cache *c, struct dsfs_node *n)
{
	lru_unlink(n);
	n->lru_next = c->lru.lru_next;
	n->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = n;
	c->lru.lru_next = n;
}

bool cache_slot_droppable(const struct dsfs_node *r, int i)
{
	return r->kind->files[i].subpath || (r->kind->get_one && r->parent);
}

size_t cache_index_cost(const struct dsfs_kind *k)
{
	/* the node, its slots and collections, two places in the listing, and its URL, id and entry (about 40 bytes each) */
	return NODE_OVERHEAD + sizeof(struct dsfs_node) + k->nfiles * sizeof(struct slot) +
		k->nchildren * sizeof(void *) + 2 * sizeof(void *) + 3 * 40;
}

void cache_slot_took(struct slot *s, uint64_t sum, time_t updated)
{
	time_t now = time(NULL);

	if (s->summed && s->sum == sum)
		return;
	if (updated > 0 && updated <= UINT32_MAX && (!s->summed || updated > (time_t)s->mtime))
		s->mtime = (uint32_t)updated;
	else /* rsync -a tells contents apart by size and mtime: a new one never keeps the old mtime */
		s->mtime = (uint32_t)(s->summed && (time_t)s->mtime >= now ? (time_t)s->mtime + 1 : now);
	s->sum = sum;
	s->summed = true;
}

void cache_set_slot(struct dsfs_cache *c, struct dsfs_node *n, int i, struct dsfs_blob *b, double at, time_t updated)
{
	struct slot *s = &n->slots[i];

	static uint64_t taken_in; /* every cache's: versions order contents across evictions and members */

	if (s->blob)
		cache_account(c, n, -(ssize_t)s->blob->len);
	if (b) {
		b->version = __atomic_add_fetch(&taken_in, 1, __ATOMIC_RELAXED);
		cache_slot_took(s, dsfs_blob_sum(b->data, b->len), updated);
	}
	dsfs_blob_unref(s->blob);
	s->blob = b;
	s->at = at;
	s->dropped = false;
	if (b)
		cache_account(c, n, (ssize_t)b->len);
	/* new content the bound may drop on its own: the most recently used */
	if (b && n->attached && !n->is_coll && cache_slot_droppable(n, i))
		cache_lru_touch(c, n);
}

/*
 * Removes child collection coll from its resource when nothing but the
 * tree holds it and it holds no listing: a walk through a large listing
 * leaves one such node per resource, and lookup makes it again (same
 * URL, same inode number) when next wanted.
 */
static void free_unused_collection(struct dsfs_cache *c, struct dsfs_node *coll)
{
	struct dsfs_node *r = coll->parent;

	if (!r || !coll->is_coll || !coll->attached || coll->refs != 1 || coll->listed || coll->listing || coll->walk)
		return; /* a folder (dsfs_kind.folder) holds collections of its own */
	for (size_t i = 0; r->colls && i < r->kind->nchildren; i++) {
		if (r->colls[i] == coll) {
			r->colls[i] = NULL;
			cache_detach(c, coll); /* the last reference: frees it */
			return;
		}
	}
}

/*
 * Forgets the content of resource r that a GET brings back, keeping its
 * length (stat answers with it) and r's place in its listing, and the
 * collections below r that hold nothing.
 */
static void drop_content(struct dsfs_cache *c, struct dsfs_node *r)
{
	lru_unlink(r);
	for (size_t i = 0; r->slots && i < r->kind->nfiles; i++) {
		struct slot *s = &r->slots[i];
		size_t len;

		if (!s->blob || s->fetching || !cache_slot_droppable(r, (int)i))
			continue;
		len = s->blob->len;
		cache_set_slot(c, r, (int)i, NULL, s->at, 0);
		s->dropped = true;
		s->dropped_len = len;
		s->fresh_for_open = false;
	}
	for (size_t i = 0; r->colls && i < r->kind->nchildren; i++)
		if (r->colls[i])
			free_unused_collection(c, r->colls[i]);
}

/* Takes n out of the tree and drops the tree's reference. */
void cache_detach(struct dsfs_cache *c, struct dsfs_node *n)
{
	size_t i;

	if (!n->attached)
		return;
	n->attached = false;
	n->parent = NULL;
	if (n->is_coll) {
		cache_drop_listing(c, n);
	} else {
		for (i = 0; n->colls && i < n->kind->nchildren; i++) {
			if (n->colls[i]) {
				cache_detach(c, n->colls[i]);
				n->colls[i] = NULL;
			}
		}
		for (i = 0; n->slots && i < n->kind->nfiles; i++)
			if (!n->slots[i].fetching)
				cache_set_slot(c, n, (int)i, NULL, 0, 0);
		lru_unlink(n);
	}
	cache_node_unref(c, n);
}

/* Forgets a collection's listing and detaches every resource in it. */
void cache_drop_listing(struct dsfs_cache *c, struct dsfs_node *coll)
{
	size_t i, n = coll->nitems;
	struct dsfs_node **items = coll->items;

	lru_unlink(coll);
	coll->items = NULL;
	free(coll->by_id);
	coll->by_id = NULL;
	coll->nitems = 0;
	coll->listed = false;
	coll->listed_at = 0;
	cache_account(c, coll, -(ssize_t)(2 * n * sizeof(void *)));
	for (i = 0; i < n; i++)
		cache_detach(c, items[i]);
	free(items);
}

static void node_free(struct dsfs_cache *c, struct dsfs_node *n)
{
	size_t i;

	if (n->is_coll) {
		cache_drop_listing(c, n);
	} else {
		for (i = 0; n->colls && i < n->kind->nchildren; i++)
			if (n->colls[i])
				cache_detach(c, n->colls[i]);
		for (i = 0; n->slots && i < n->kind->nfiles; i++)
			cache_set_slot(c, n, (int)i, NULL, 0, 0);
		lru_unlink(n);
	}
	c->bytes -= n->bytes;
	c->nodes--;
	free(n->slots);
	free(n->colls);
	free(n->url);
	free(n->base);
	free(n->base_id);
	free(n->id);
	cache_free_names(n);
	free(n);
}

void cache_node_unref(struct dsfs_cache *c, struct dsfs_node *n)
{
	if (n && --n->refs == 0)
		node_free(c, n);
}

struct dsfs_node *cache_node_ref(struct dsfs_node *n)
{
	if (n)
		n->refs++;
	return n;
}

/* ---- the memory bound ----------------------------------------------------- */

/*
 * True while collection coll (below a resource of a walked listing) was
 * listed ahead of the walker by the prefetcher and the walker, still
 * going, has not gone past it: the bound must not drop it, or the walker
 * would list it again. Clears coll->ahead once that no longer holds.
 */
static bool walk_ahead(struct dsfs_node *coll)
{
	struct dsfs_node *r = coll->parent, *walked = r ? r->parent : NULL;
	size_t idx;

	if (coll->ahead && coll->attached && coll->listed && r && r->attached && walked && walked->walk &&
	    !cache_walk_done(walked->walk) && walked->walk_at == walked->listed_at) {
		idx = cache_item_index(walked, r);
		/* the walker's own item too: it may be waiting for this very listing to arrive */
		if (idx != SIZE_MAX && idx >= walked->walk_pos)
			return true;
	}
	coll->ahead = false; /* reached, or the walk is over: an ordinary listing */
	return false;
}

/*
 * Drops the least recently used listings and contents until the cache
 * fits its bound. A resource's content goes on its own, so a listing that
 * a walk is going through (keep's, or one above it) stays while the
 * objects it has passed make room; a listing goes whole, with the
 * collections below it that nothing else holds. A listing the prefetcher
 * made ahead of a walker stays until the walker reaches it: the
 * prefetcher starts no more while the cache is over its bound, so what
 * it holds this way is at most what was under way then.
 */
void cache_enforce_bound(struct dsfs_cache *c, struct dsfs_node *keep)
{
	static double trimmed_at;
	struct dsfs_node *n, *prev;
	bool evicted = false;

	if (!c->o.max_bytes)
		return;
	for (n = c->lru.lru_prev; n != &c->lru && c->bytes > c->o.max_bytes; n = prev) {
		prev = n->lru_prev;
		if (n == keep || n->listing)
			continue;
		if (!n->is_coll) {
			drop_content(c, n); /* unlinks n only, and frees collections that are not in the LRU */
			c->evictions++;
			evicted = true;
			continue;
		}
		/* Never evict a listing above keep: keep's node lives in it. */
		bool ancestor = false;
		for (struct dsfs_node *p = keep; p; p = p->parent)
			if (p == n)
				ancestor = true;
		if (ancestor || (n->ahead && walk_ahead(n)))
			continue;
		cache_drop_listing(c, n);
		c->evictions++;
		evicted = true;
		free_unused_collection(c, n);
		/* drop_listing may have unlinked prev (a listing below n): restart from the tail. */
		prev = c->lru.lru_prev;
	}
	if (evicted && dsfs_clock_now() - trimmed_at > 1.0) {
		/* glibc keeps freed memory; hand it back so the bound shows in RSS too */
		malloc_trim(0);
		trimmed_at = dsfs_clock_now();
	}
}

/* ---- the tree's shape ------------------------------------------------------ */

/* Whether collection idx of r says it is there: its kind's shown_if, asked of r's object at hand. */
static bool says_shown(const struct dsfs_node *r, int idx)
{
	const struct dsfs_kind *k = r->kind->children[idx];
	const struct dsfs_file_desc *f = r->kind->nfiles ? &r->kind->files[0] : NULL;
	json_object *o, *v;
	bool shown = true;

	if (!k->shown_if || !f || f->subpath || f->derive || f->fetch || !r->slots[0].blob)
		return true; /* not said, or the object is not at hand */
	if (!(o = json_tokener_parse(r->slots[0].blob->data)))
		return true;
	shown = false;
	for (size_t i = 0; k->shown_if[i] && !shown; i++) {
		v = dsfs_dialect_field(o, k->shown_if[i]);
		shown = json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v)
			: json_object_is_type(v, json_type_array) ? json_object_array_length(v) > 0
			: json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)
			? json_object_get_double(v) != 0
			: false;
	}
	json_object_put(o);
	return shown;
}

bool cache_child_shown(const struct dsfs_node *r, int idx)
{
	const char *name = r->kind->children[idx]->dir_name;

	if (!says_shown(r, idx))
		return false;
	for (int j = 0; j < idx; j++) /* two kinds of one name: the first shown is the directory */
		if (!strcmp(r->kind->children[j]->dir_name, name) && says_shown(r, j))
			return false;
	return true;
}

struct dsfs_node *cache_child_collection(struct dsfs_cache *c, struct dsfs_node *r, int idx)
{
	const struct dsfs_kind *k = r->kind->children[idx];
	struct dsfs_node *coll = r->colls[idx];

	if (coll)
		return coll;
	/* a folder is a resource without an object: its collections hang below it */
	coll = cache_node_new(c, !k->folder, k, cache_collection_url(r->url, r->id, k->segment));
	if (!coll)
		return NULL;
	coll->ino = hash_ino(coll->url, NULL, NULL);
	coll->mtime = r->mtime;
	coll->base = strdup(r->url);
	coll->base_id = r->id ? strdup(r->id) : NULL;
	if (k->folder) {
		coll->entry = strdup(k->dir_name);
		coll->id = r->id ? strdup(r->id) : NULL; /* its children's "{id}" is its parent's */
	}
	if (!coll->base || (r->id && !coll->base_id) || (k->folder && (!coll->entry || (r->id && !coll->id)))) {
		cache_node_unref(c, coll);
		return NULL;
	}
	coll->parent = r;
	coll->attached = r->attached;
	r->colls[idx] = coll; /* the tree's reference */
	return coll;
}

/* Removes one resource from its collection's listing (it has vanished on the server). */
void cache_forget_resource(struct dsfs_cache *c, struct dsfs_node *r)
{
	struct dsfs_node *coll = r->parent;
	size_t i;

	if (!r->attached || !coll)
		return;
	for (i = 0; i < coll->nitems; i++) {
		if (coll->items[i] == r) {
			memmove(&coll->items[i], &coll->items[i + 1], (coll->nitems - i - 1) * sizeof(r));
			break;
		}
	}
	for (i = 0; i < coll->nitems; i++) {
		if (coll->by_id[i] == r) {
			memmove(&coll->by_id[i], &coll->by_id[i + 1], (coll->nitems - i - 1) * sizeof(r));
			break;
		}
	}
	coll->nitems--;
	cache_account(c, coll, -(ssize_t)(2 * sizeof(void *)));
	cache_detach(c, r);
}
