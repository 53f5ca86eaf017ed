// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The resource cache's tree: nodes (the root, collections, resources),
 * their references, the LRU of listings and the memory bound, and the
 * calls that resolve names and report attributes, listings and contents.
 * Resources and collections are nodes; files, .by-id and its links are
 * views of them. A node is reference-counted: the tree holds one
 * reference while the node is attached, and each location handed out
 * holds another, so eviction or a vanished resource never frees memory a
 * FUSE thread is still using. Lookups by id and entry are in cache/lookup.c,
 * fetching is in cache/fetch.c, prefetching in
 * cache/prefetch.c, actions in cache/actions.c.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "util/locks.h"
#include "format/names.h"

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
	cache_account(c, n, (ssize_t)(NODE_OVERHEAD + sizeof(*n) + strlen(url) + 1 +
				(is_coll ? 0 : kind->nfiles * sizeof(struct slot) +
						kind->nchildren * sizeof(void *))));
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

void cache_node_unref(struct dsfs_cache *c, struct dsfs_node *n);

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

void cache_set_slot(struct dsfs_cache *c, struct dsfs_node *n, int i, struct dsfs_blob *b, double at,
		    time_t updated)
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

/* Content of resource r was used: the bound drops it last. */
static void content_used(struct dsfs_cache *c, struct dsfs_node *r)
{
	if (r->lru_next)
		cache_lru_touch(c, r);
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

	if (!r || !coll->is_coll || !coll->attached || coll->refs != 1 || coll->listed || coll->listing ||
	    coll->walk)
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

void cache_drop_listing(struct dsfs_cache *c, struct dsfs_node *coll);

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
		if (ancestor || (n->ahead && cache_walk_ahead(n)))
			continue;
		cache_drop_listing(c, n);
		c->evictions++;
		evicted = true;
		free_unused_collection(c, n);
		/* drop_listing may have unlinked prev (a listing below n): restart from the tail. */
		prev = c->lru.lru_prev;
	}
	if (evicted && mono_now() - trimmed_at > 1.0) {
		/* glibc keeps freed memory; hand it back so the bound shows in RSS too */
		malloc_trim(0);
		trimmed_at = mono_now();
	}
}

/* ---- public interface ---------------------------------------------------- */

struct dsfs_cache *dsfs_cache_new(const struct dsfs_dialect *dialect, struct dsfs_session *session,
				  const struct dsfs_cache_opts *opts)
{
	struct dsfs_cache *c = calloc(1, sizeof(*c));
	char *url = strdup("");

	if (!c || !url)
		goto fail;
	c->dialect = dialect;
	c->session = session;
	c->o = *opts;
	if (!c->o.page_size)
		c->o.page_size = 1000;
	dsfs_mutex_init(&c->lock, DSFS_LOCK_CACHE);
	pthread_cond_init(&c->done, NULL);
	pthread_cond_init(&c->work, NULL);
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->root = cache_node_new(c, false, dialect->root, url);
	if (!c->root) {
		free(c);
		return NULL;
	}
	c->root->ino = 1;
	c->root->attached = true;
	return c;
fail:
	free(url);
	free(c);
	return NULL;
}

void dsfs_cache_free(struct dsfs_cache *c)
{
	if (!c)
		return;
	dsfs_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	dsfs_unlock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	free(c->workers);
	dsfs_lock(&c->lock);
	while (c->walks) {
		struct walk *w = c->walks;

		c->walks = w->next_walk;
		cache_node_unref(c, w->coll);
		free(w);
	}
	c->root->attached = false;
	cache_node_unref(c, c->root);
	dsfs_unlock(&c->lock);
	dsfs_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->work);
	free(c);
}

void dsfs_cache_root(struct dsfs_cache *c, struct dsfs_loc *out)
{
	dsfs_lock(&c->lock);
	memset(out, 0, sizeof(*out));
	out->type = DSFS_LOC_RESOURCE;
	out->node = cache_node_ref(c->root);
	dsfs_unlock(&c->lock);
}

void dsfs_cache_put(struct dsfs_cache *c, struct dsfs_loc *loc)
{
	if (!loc->node && !loc->target)
		return;
	dsfs_lock(&c->lock);
	cache_node_unref(c, loc->node);
	cache_node_unref(c, loc->target);
	dsfs_unlock(&c->lock);
	free(loc->where);
	memset(loc, 0, sizeof(*loc));
}

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
		shown = json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) :
			json_object_is_type(v, json_type_array) ? json_object_array_length(v) > 0 :
			json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double) ?
			json_object_get_double(v) != 0 : false;
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

/* The collection of r called name that is shown, or -1. */
static int shown_child(const struct dsfs_node *r, const char *name)
{
	for (size_t i = 0; i < r->kind->nchildren; i++)
		if (!strcmp(r->kind->children[i]->dir_name, name) && cache_child_shown(r, (int)i))
			return (int)i;
	return -1;
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

/* Finds a listed resource by entry name (or, in .by-id, by its .by-id entry), listing if needed. */
static int find_listed(struct dsfs_cache *c, struct dsfs_node *coll, const char *name, bool by_id,
		       struct dsfs_node **out)
{
	char *id = NULL;
	int ret = by_id ? dsfs_names_unescape(name, &id) : 0, pass;

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret; /* "%00" is no id's entry */
	for (pass = 0; pass < 2; pass++) {
		if (coll->listed) {
			*out = by_id ? cache_find_by_id_entry(coll, name, id) : cache_find_by_entry(coll, name);
			if (*out) {
				c->hits++;
				cache_lru_touch(c, coll); /* a listing walked through is in use: evict others first */
				break;
			}
			if (fresh(c, coll->listed_at) || pass == 1) {
				ret = -ENOENT;
				break;
			}
		}
		ret = cache_ensure_listing(c, coll, true);
		if (ret)
			break;
	}
	if (!*out && !ret)
		ret = -ENOENT;
	free(id);
	return ret;
}

int dsfs_cache_lookup(struct dsfs_cache *c, const struct dsfs_loc *dir, const char *name,
		      struct dsfs_loc *out)
{
	struct dsfs_node *n = dir->node, *found = NULL;
	const char *why;
	int ret = 0, idx;

	memset(out, 0, sizeof(*out));
	dsfs_lock(&c->lock);
	switch (dir->type) {
	case DSFS_LOC_RESOURCE:
		if ((idx = dsfs_kind_file(n->kind, name)) >= 0) {
			out->type = DSFS_LOC_FILE;
			out->node = cache_node_ref(n);
			out->file = idx;
		} else if (n->kind->nactions && !strcmp(name, CTL_ACTION)) {
			out->type = DSFS_LOC_CTL;
			out->node = cache_node_ref(n);
		} else if (n->kind->is_task && !strcmp(name, TASK_WAIT)) {
			out->type = DSFS_LOC_WAIT;
			out->node = cache_node_ref(n);
		} else if ((idx = shown_child(n, name)) >= 0) {
			struct dsfs_node *coll = cache_child_collection(c, n, idx);

			if (!coll) {
				ret = -ENOMEM;
				break;
			}
			out->type = coll->is_coll ? DSFS_LOC_COLLECTION : DSFS_LOC_RESOURCE;
			out->node = cache_node_ref(coll);
		} else {
			ret = -ENOENT;
		}
		break;
	case DSFS_LOC_COLLECTION:
		if (!strcmp(name, BYID_DIR)) {
			out->type = DSFS_LOC_BYID;
			out->node = cache_node_ref(n);
			break;
		}
		if ((ret = cache_query_lookup(n, NULL, name, out)) != 0) {
			ret = ret < 0 ? ret : 0;
			break;
		}
		if (n->kind->create && !strcmp(name, CTL_NEW)) {
			out->type = DSFS_LOC_CTL;
			out->node = cache_node_ref(n);
			break;
		}
		ret = find_listed(c, n, name, false, &found);
		if (ret == 0) {
			out->type = DSFS_LOC_RESOURCE;
			out->node = cache_node_ref(found);
		}
		break;
	case DSFS_LOC_BYID:
		ret = find_listed(c, n, name, true, &found);
		if (ret == 0) {
			out->type = DSFS_LOC_LINK;
			out->node = cache_node_ref(n);
			out->target = cache_node_ref(found);
		}
		break;
	case DSFS_LOC_WHERE_DIR:
		if ((ret = cache_where_check(name, &why)) != 0) {
			if (ret == -EINVAL) /* logged with the whole path where the lookup is answered */
				dsfs_err_record("query", name, 0, why);
			break;
		}
		out->type = DSFS_LOC_WHERE;
		out->node = cache_node_ref(n);
		if (!(out->where = cache_where_join(dir->where, name)))
			ret = -ENOMEM;
		break;
	case DSFS_LOC_WHERE:
		if ((ret = cache_query_lookup(n, dir->where, name, out)) != 0) {
			ret = ret < 0 ? ret : 0;
			break;
		}
		ret = find_listed(c, n, name, false, &found);
		if (ret == 0) {
			bool match;

			cache_node_ref(found); /* the lock may be dropped while its object is fetched */
			ret = cache_where_meets(c, found, dir->where, &match);
			cache_node_unref(c, found);
			if (ret == 0 && !match)
				ret = -ENOENT;
		}
		if (ret == 0) {
			out->type = DSFS_LOC_RESOURCE;
			out->node = cache_node_ref(found);
		}
		break;
	default:
		ret = -ENOTDIR;
	}
	if (ret && (out->node || out->where)) {
		cache_node_unref(c, out->node);
		free(out->where);
		memset(out, 0, sizeof(*out));
	}
	dsfs_unlock(&c->lock);
	return ret;
}

static uint64_t file_ino(const struct dsfs_node *r, int i)
{
	return hash_ino(r->url, "file", r->kind->files[i].name);
}

static void dir_attr(struct dsfs_attr *a, enum dsfs_loc_type type, uint64_t ino, time_t mtime)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->ino = ino;
	a->mtime = mtime;
}

static void link_attr(const struct dsfs_node *coll, const struct dsfs_node *r, struct dsfs_attr *a)
{
	dir_attr(a, DSFS_LOC_LINK, hash_ino(coll->url, BYID_DIR, r->id), r->mtime);
	a->size = 3 + strlen(r->entry);
}

/* Attributes of file i of r if known without a request; false otherwise. */
static bool file_attr_cached(struct dsfs_cache *c, struct dsfs_node *r, int i, struct dsfs_attr *a)
{
	const struct dsfs_file_desc *f = &r->kind->files[i];
	struct slot *s = &r->slots[i];

	if (f->flags & DSFS_FILE_DIRECT ? !s->blob || !direct_fresh(c, s->at) : !s->blob && !s->dropped)
		return false;
	dir_attr(a, DSFS_LOC_FILE, file_ino(r, i), s->summed ? s->mtime : r->mtime);
	/* content dropped for memory: its size is known, the next open fetches it */
	a->size = s->blob ? s->blob->len : s->dropped_len;
	if (s->blob)
		content_used(c, r);
	a->direct = f->flags & DSFS_FILE_DIRECT;
	a->editable = i == 0 && r->kind->nedit;
	s->reported = a->size;
	return true;
}

static uint64_t query_ino(const struct dsfs_loc *loc)
{
	const char *what = loc->type == DSFS_LOC_COUNT ? COUNT_FILE :
			   loc->type == DSFS_LOC_WHERE ? WHERE_DIR : WHERE_DIR "/";

	return hash_ino(loc->node->url, what, loc->where);
}

/* The text of .count: the number and a newline. Lock held (dropped while asking). */
static int count_text(struct dsfs_cache *c, const struct dsfs_loc *loc, char *buf, size_t len, size_t *n)
{
	long count;
	int ret = cache_count(c, loc->node, loc->where, &count);

	if (ret == 0)
		*n = (size_t)snprintf(buf, len, "%ld\n", count);
	return ret;
}

int dsfs_cache_getattr(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_attr *out)
{
	struct dsfs_node *n = loc->node;
	int ret = 0;

	dsfs_lock(&c->lock);
	switch (loc->type) {
	case DSFS_LOC_RESOURCE:
	case DSFS_LOC_COLLECTION:
		dir_attr(out, loc->type, n->ino, n->mtime);
		out->writable = loc->type == DSFS_LOC_COLLECTION && (n->kind->create || n->kind->deletable);
		out->editable = loc->type == DSFS_LOC_RESOURCE && n->kind->nedit;
		break;
	case DSFS_LOC_BYID:
		dir_attr(out, loc->type, hash_ino(n->url, BYID_DIR, NULL), n->mtime);
		break;
	case DSFS_LOC_WHERE_DIR:
	case DSFS_LOC_WHERE:
		dir_attr(out, loc->type, query_ino(loc), n->mtime);
		break;
	case DSFS_LOC_COUNT: {
		char buf[32];
		size_t len = 0;

		ret = count_text(c, loc, buf, sizeof(buf), &len);
		dir_attr(out, loc->type, query_ino(loc), n->mtime);
		out->size = len;
		out->direct = true; /* a count changes between reads */
		break;
	}
	case DSFS_LOC_LINK:
		link_attr(n, loc->target, out);
		break;
	case DSFS_LOC_CTL:
	case DSFS_LOC_WAIT:
		dir_attr(out, loc->type, hash_ino(n->url, loc->type == DSFS_LOC_CTL ? CTL_ACTION : TASK_WAIT, NULL),
			 n->mtime);
		out->direct = true;
		break;
	case DSFS_LOC_FILE:
		if (file_attr_cached(c, n, loc->file, out)) {
			c->hits++;
			break;
		}
		if (loc->file > 0 && !n->kind->files[loc->file].derive)
			cache_note_walk(c, n, loc->file);
		ret = cache_fetch_slot(c, n, loc->file);
		if (ret == 0 && !n->slots[loc->file].blob)
			ret = -ENOENT;
		if (ret == 0) {
			n->slots[loc->file].fresh_for_open = true;
			dir_attr(out, DSFS_LOC_FILE, file_ino(n, loc->file), n->slots[loc->file].mtime);
			out->editable = loc->file == 0 && n->kind->nedit;
			out->size = n->slots[loc->file].blob->len;
			out->direct = n->kind->files[loc->file].flags & DSFS_FILE_DIRECT;
			n->slots[loc->file].reported = out->size;
		}
		break;
	}
	dsfs_unlock(&c->lock);
	return ret;
}

int dsfs_cache_readdir(struct dsfs_cache *c, const struct dsfs_loc *dir, dsfs_fill_fn fill, void *ctx)
{
	struct dsfs_node *n = dir->node;
	struct dsfs_attr a;
	size_t i;
	int ret = 0;

	dsfs_lock(&c->lock);
	switch (dir->type) {
	case DSFS_LOC_RESOURCE:
		for (i = 0; i < n->kind->nfiles && !ret; i++) {
			bool complete = file_attr_cached(c, n, (int)i, &a);

			if (!complete) {
				dir_attr(&a, DSFS_LOC_FILE, file_ino(n, (int)i), n->mtime);
				a.editable = i == 0 && n->kind->nedit;
			}
			ret = fill(ctx, n->kind->files[i].name, &a, complete);
		}
		if (n->kind->nactions && !ret) {
			dir_attr(&a, DSFS_LOC_CTL, hash_ino(n->url, CTL_ACTION, NULL), n->mtime);
			ret = fill(ctx, CTL_ACTION, &a, false);
		}
		for (i = 0; i < n->kind->nchildren && !ret; i++) {
			const struct dsfs_kind *k = n->kind->children[i];
			char *url;

			if (!cache_child_shown(n, (int)i))
				continue;
			if (!(url = cache_collection_url(n->url, n->id, k->segment))) {
				ret = -ENOMEM;
				break;
			}
			dir_attr(&a, k->folder ? DSFS_LOC_RESOURCE : DSFS_LOC_COLLECTION, hash_ino(url, NULL, NULL),
				 n->mtime);
			a.writable = k->create || k->deletable;
			free(url);
			ret = fill(ctx, k->dir_name, &a, true);
		}
		break;
	case DSFS_LOC_COLLECTION:
		if (n->parent && n->parent->attached)
			cache_note_walk(c, n->parent, -1); /* a walker going into each resource's collections */
		ret = cache_ensure_listing(c, n, true);
		if (ret)
			break;
		/* .by-id is reachable, not listed: find, tar and rsync walk the objects once, not a link farm */
		if (n->kind->create) {
			dir_attr(&a, DSFS_LOC_CTL, hash_ino(n->url, CTL_ACTION, NULL), n->mtime);
			ret = fill(ctx, CTL_NEW, &a, false);
		}
		for (i = 0; i < n->nitems && !ret; i++) {
			dir_attr(&a, DSFS_LOC_RESOURCE, n->items[i]->ino, n->items[i]->mtime);
			a.editable = n->items[i]->kind->nedit;
			ret = fill(ctx, n->items[i]->entry, &a, true);
		}
		break;
	case DSFS_LOC_WHERE_DIR:
		break; /* conditions are named, not listed */
	case DSFS_LOC_WHERE:
		if ((ret = cache_where_readdir(c, n, dir->where, fill, ctx)) != -ENOTSUP)
			break; /* the server filtered it */
		ret = cache_ensure_listing(c, n, true);
		if (ret == 0) {
			struct dsfs_node **items;
			size_t nmatch;

			ret = cache_where_items(c, n, dir->where, &items, &nmatch);
			for (i = 0; i < nmatch && !ret; i++) {
				dir_attr(&a, DSFS_LOC_RESOURCE, items[i]->ino, items[i]->mtime);
				a.editable = items[i]->kind->nedit;
				ret = fill(ctx, items[i]->entry, &a, true);
			}
			if (nmatch || items)
				cache_nodes_put(c, items, nmatch);
		}
		break;
	case DSFS_LOC_BYID:
		ret = cache_ensure_listing(c, n, true);
		for (i = 0; i < n->nitems && !ret; i++) {
			char *e = dsfs_names_by_id(n->by_id[i]->id);

			if (!e) {
				ret = -ENOMEM;
				break;
			}
			link_attr(n, n->by_id[i], &a);
			if (*e) /* an empty id has no entry */
				ret = fill(ctx, e, &a, true);
			free(e);
		}
		break;
	default:
		ret = -ENOTDIR;
	}
	if (ret > 0)
		ret = 0; /* the filler asked to stop */
	dsfs_unlock(&c->lock);
	return ret;
}

int dsfs_cache_open(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_blob **content,
		    enum dsfs_caching *caching)
{
	struct dsfs_node *r = loc->node;
	struct slot *s;
	bool direct;
	int ret = 0;

	*content = NULL;
	*caching = DSFS_CACHING_DIRECT;
	if (loc->type == DSFS_LOC_COUNT) {
		char buf[32];
		size_t len;

		dsfs_lock(&c->lock);
		ret = count_text(c, loc, buf, sizeof(buf), &len);
		dsfs_unlock(&c->lock);
		if (ret == 0 && !(*content = dsfs_blob_new(buf, len)))
			ret = -ENOMEM;
		return ret;
	}
	if (loc->type != DSFS_LOC_FILE)
		return -EISDIR;
	dsfs_lock(&c->lock);
	s = &r->slots[loc->file];
	direct = r->kind->files[loc->file].flags & DSFS_FILE_DIRECT;
	if (s->blob && (direct ? direct_fresh(c, s->at) : fresh(c, s->at))) {
		c->hits++;
		content_used(c, r);
	} else if (s->blob && s->fresh_for_open && mono_now() - s->at < 1.0) {
		c->hits++;
	} else {
		ret = cache_fetch_slot(c, r, loc->file);
		if (ret == 0 && !s->blob)
			ret = -ENOENT;
	}
	if (ret == 0) {
		s->fresh_for_open = false;
		*content = dsfs_blob_ref(s->blob);
		*caching = direct ? DSFS_CACHING_DIRECT : s->blob->len != s->reported ? DSFS_CACHING_RESIZED :
			 DSFS_CACHING_PAGED;
		s->reported = s->blob->len;
	}
	dsfs_unlock(&c->lock);
	return ret;
}

int dsfs_cache_shown(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_blob **content)
{
	enum dsfs_caching caching;

	*content = NULL;
	if (loc->type != DSFS_LOC_FILE)
		return -EISDIR;
	dsfs_lock(&c->lock);
	if (loc->node->slots[loc->file].blob)
		*content = dsfs_blob_ref(loc->node->slots[loc->file].blob);
	dsfs_unlock(&c->lock);
	return *content ? 0 : dsfs_cache_open(c, loc, content, &caching);
}

int dsfs_cache_readlink(struct dsfs_cache *c, const struct dsfs_loc *loc, char *buf, size_t len)
{
	if (loc->type != DSFS_LOC_LINK)
		return -EINVAL;
	dsfs_lock(&c->lock);
	snprintf(buf, len, "../%s", loc->target->entry);
	dsfs_unlock(&c->lock);
	return 0;
}

void dsfs_cache_stats(struct dsfs_cache *c, struct dsfs_cache_stats *out)
{
	dsfs_lock(&c->lock);
	out->hits = c->hits;
	out->misses = c->misses;
	out->evictions = c->evictions;
	out->prefetched = c->prefetched;
	out->bytes = c->bytes;
	out->nodes = c->nodes;
	out->page_cap_seen = c->page_cap_seen;
	dsfs_unlock(&c->lock);
}

int dsfs_cache_reread(struct dsfs_cache *c, const struct dsfs_loc *loc, double max_age,
		      struct dsfs_blob **content)
{
	struct dsfs_node *r = loc->node;
	struct slot *s;
	int ret = 0;

	*content = NULL;
	if (loc->type != DSFS_LOC_FILE)
		return -EINVAL;
	dsfs_lock(&c->lock);
	s = &r->slots[loc->file];
	if (!s->blob || mono_now() - s->at > max_age || s->at <= c->stale_before)
		ret = cache_fetch_slot(c, r, loc->file);
	if (ret == 0 && !s->blob)
		ret = -ENOENT;
	if (ret == 0) {
		*content = dsfs_blob_ref(s->blob);
		s->reported = s->blob->len;
	}
	dsfs_unlock(&c->lock);
	return ret;
}
