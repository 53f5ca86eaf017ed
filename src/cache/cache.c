// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cache's entry points (dsfs_cache_*, cache/cache.h) that make and
 * free a cache and resolve names and report attributes, listings and
 * contents: the top of the cache, built on the files below it. Resources
 * and collections are nodes (cache/store.c, which holds them, their
 * references and the memory bound); files, .by-id and its links are
 * views of them. What is not cached is fetched through cache/fetch.c
 * (one resource's file) and cache/listing.c (a collection's listing),
 * prefetched for walkers by cache/prefetch.c, and asked by .where and
 * .count through cache/query.c. Actions and statfs have their own entry
 * points (cache/actions.c, cache/space.c).
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "util/locks.h"
#include "format/names.h"

/* Content of resource r was used: the bound drops it last. */
static void content_used(struct dsfs_cache *c, struct dsfs_node *r)
{
	if (r->lru_next)
		cache_lru_touch(c, r);
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

/* The collection of r called name that is shown, or -1. */
static int shown_child(const struct dsfs_node *r, const char *name)
{
	for (size_t i = 0; i < r->kind->nchildren; i++)
		if (!strcmp(r->kind->children[i]->dir_name, name) && cache_child_shown(r, (int)i))
			return (int)i;
	return -1;
}

int dsfs_cache_lookup(struct dsfs_cache *c, const struct dsfs_loc *dir, const char *name, struct dsfs_loc *out)
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
	const char *what = loc->type == DSFS_LOC_COUNT ? COUNT_FILE
		: loc->type == DSFS_LOC_WHERE          ? WHERE_DIR
						       : WHERE_DIR "/";

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
	} else if (s->blob && s->fresh_for_open && dsfs_clock_now() - s->at < 1.0) {
		c->hits++;
	} else {
		ret = cache_fetch_slot(c, r, loc->file);
		if (ret == 0 && !s->blob)
			ret = -ENOENT;
	}
	if (ret == 0) {
		s->fresh_for_open = false;
		*content = dsfs_blob_ref(s->blob);
		*caching = direct                     ? DSFS_CACHING_DIRECT
			: s->blob->len != s->reported ? DSFS_CACHING_RESIZED
						      : DSFS_CACHING_PAGED;
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

int dsfs_cache_reread(struct dsfs_cache *c, const struct dsfs_loc *loc, double max_age, struct dsfs_blob **content)
{
	struct dsfs_node *r = loc->node;
	struct slot *s;
	int ret = 0;

	*content = NULL;
	if (loc->type != DSFS_LOC_FILE)
		return -EINVAL;
	dsfs_lock(&c->lock);
	s = &r->slots[loc->file];
	if (!s->blob || dsfs_clock_now() - s->at > max_age || s->at <= c->stale_before)
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
