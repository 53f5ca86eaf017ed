// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Collections' listings: every page of a list (within the paging guard of
 * cache/pages.c), its objects read and named, and installed into the tree
 * (cache/store.c), and the lists the server filters (.where). The GETs
 * and the page loop serve cache/fetch.c too (a file that is a paged list).
 * Requests run with the lock dropped; a listing in flight is marked on its
 * collection, and other threads wanting it wait for it instead of sending
 * their own.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "util/locks.h"
#include "util/log.h"
#include "format/names.h"
#include "cache/pages.h"
#include "format/render.h"

/* Entry names a collection keeps for itself. */
static const char *const reserved_entries[] = { BYID_DIR, WHERE_DIR, COUNT_FILE, CTL_NEW, "latest", NULL };

struct item {
	char *id, *name;
	time_t mtime;
	bool has_mtime;
	time_t updated;               /* the object's update time (its kind's update_field), or 0 */
	uint64_t sum;                 /* the rendered object's sum, kept when the blob is dropped */
	struct dsfs_blob *blob;       /* NULL when dropped for memory (collect_page) */
	size_t len;                   /* the rendered object's length */
	const struct dsfs_kind *kind; /* the source it was listed from */
	const char *list_url;         /* that source's list URL (owned by the collect state) */
};

static void item_clear(struct item *it)
{
	free(it->id);
	free(it->name);
	dsfs_blob_unref(it->blob);
	memset(it, 0, sizeof(*it));
}

/* The kinds a collection of kind k lists: k, then the kinds listed alongside it. */
static const struct dsfs_kind *source_kind(const struct dsfs_kind *k, size_t i)
{
	if (i == 0)
		return k;
	for (size_t j = 0; k->also && k->also[j]; j++)
		if (j + 1 == i)
			return k->also[j];
	return NULL;
}

static void items_free(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		item_clear(&items[i]);
	free(items);
}

int cache_protocol_error(const char *path, const char *what)
{
	dsfs_err_record("GET", path, 0, what);
	return -EIO;
}

/* GETs path and parses the answer as JSON; *len (when not NULL) gets the answer's size. */
int cache_get_json(struct dsfs_cache *c, const char *path, bool anonymous, json_object **out, size_t *len)
{
	struct dsfs_request req = { .method = "GET", .path = path };
	struct dsfs_response resp = { 0 };
	enum json_tokener_error jerr;
	int ret;

	*out = NULL;
	ret = dsfs_session_call(c->session, &req, &resp, anonymous);
	if (len)
		*len = resp.len;
	if (ret == 0) {
		*out = json_tokener_parse_verbose(resp.body ? resp.body : "", &jerr);
		if (!*out) {
			char msg[160];

			snprintf(msg, sizeof(msg), "answer is not JSON (%s)", json_tokener_error_desc(jerr));
			ret = cache_protocol_error(path, msg);
		}
	}
	dsfs_response_clear(&resp);
	return ret;
}

/* When object o says it last changed (kind's update_field), or 0 when it does not say. */
time_t cache_updated_of(const struct dsfs_kind *kind, json_object *o)
{
	json_object *v = kind->update_field ? dsfs_dialect_field(o, kind->update_field) : NULL;
	time_t t;

	return v && dsfs_render_time(v, &t) == 0 ? t : 0;
}

char *cache_kind_name(const struct dsfs_kind *k, json_object *o)
{
	json_object *v, *w;
	char *out;

	if (!json_object_object_get_ex(o, k->name_field, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (!k->name_value_field)
		return strdup(json_object_get_string(v));
	if (!json_object_object_get_ex(o, k->name_value_field, &w) || !json_object_is_type(w, json_type_string) ||
	    asprintf(&out, "%s=%s", json_object_get_string(v), json_object_get_string(w)) < 0)
		return NULL;
	return out;
}

/* Reads one listed object into an item. */
static int parse_item(const struct dsfs_kind *kind, json_object *o, struct item *it)
{
	json_object *v;

	memset(it, 0, sizeof(*it));
	if (!json_object_is_type(o, json_type_object))
		return -EIO;
	if (!json_object_object_get_ex(o, kind->id_field, &v) ||
	    !(json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int)))
		return -EIO;
	it->id = strdup(json_object_get_string(v));
	if (!(it->name = cache_kind_name(kind, o)))
		it->name = strdup("");
	if (kind->time_field && json_object_object_get_ex(o, kind->time_field, &v))
		it->has_mtime = dsfs_render_time(v, &it->mtime) == 0;
	it->updated = cache_updated_of(kind, o);
	it->blob = dsfs_render_json(o);
	if (!it->id || !it->name || !it->blob)
		return -ENOMEM;
	it->len = it->blob->len;
	return 0;
}

/*
 * Asks for every page of a list. A page shorter than the largest page the
 * server has ever answered proves the end (the server's cap is then known
 * to be larger), as does an empty page. Items are identified by id_field
 * (NULL: by their text); a guard ends the listing with EIO when the server
 * is not paging or the list outgrows the memory bound (src/cache/pages.h): what
 * it costs is item_cost per item when its objects may be dropped for
 * memory (a listing of resources a GET can bring back), else (0) the
 * answers' bytes and a node's overhead per item. A page asks for
 * page_size items, or the collection's largest page where that is smaller
 * (kind k's page_max; k NULL: a file's list), and a collection that comes
 * whole (k->unpaged) is asked once, without paging parameters.
 */
int cache_each_page(struct dsfs_cache *c, const char *url, const struct dsfs_kind *k, const char *key,
		    const char *id_field, size_t item_cost, bool anonymous, cache_page_fn fn, void *ctx)
{
	struct dsfs_paging whole = c->dialect->paging;
	const struct dsfs_paging *pg = k && k->unpaged ? &whole : &c->dialect->paging;
	unsigned page_max = k ? k->page_max : 0;
	struct dsfs_pages *guard = dsfs_pages_new(c->o.max_bytes, id_field);
	unsigned long start = 0, cap;
	long total = -1;
	char *path = malloc(strlen(url) + 96);
	int ret = 0;

	whole.limit_param = NULL; /* asked once, whole */

	if (!path || !guard) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		json_object *o, *arr;
		char why[160];
		size_t n, len;

		if (!pg->limit_param)
			strcpy(path, url); /* the whole list in one answer */
		else                       /* a collection URL may carry a query of its own (a filter) */
			sprintf(path, "%s%c%s=%u&%s=%lu", url, strchr(url, '?') ? '&' : '?', pg->limit_param,
				page_max && page_max < c->o.page_size ? page_max : c->o.page_size, pg->start_param,
				start);
		ret = cache_get_json(c, path, anonymous, &o, &len);
		if (ret)
			break;
		arr = o;
		if (key && pg->null_is_empty && json_object_object_get_ex(o, key, &arr) && !arr) {
			/* "items": null: no items; the page is made an empty list in the answer */
			arr = json_object_new_array();
			if (!arr || json_object_object_add(o, key, arr)) {
				json_object_put(o);
				ret = -ENOMEM;
				break;
			}
		}
		if ((key && !json_object_object_get_ex(o, key, &arr)) || !json_object_is_type(arr, json_type_array)) {
			char msg[128];

			if (key)
				snprintf(msg, sizeof(msg), "answer has no \"%s\" list", key);
			else
				snprintf(msg, sizeof(msg), "answer is not a list");
			json_object_put(o);
			ret = cache_protocol_error(path, msg);
			break;
		}
		n = json_object_array_length(arr);
		if (pg->total_field) {
			json_object *t;

			if (json_object_object_get_ex(o, pg->total_field, &t) && json_object_is_type(t, json_type_int))
				total = (long)json_object_get_int64(t);
		}
		/* what the listing costs once cached: its nodes, and the answer unless its objects may be dropped */
		ret = dsfs_pages_add(guard, arr, item_cost ? n * item_cost : len + n * NODE_OVERHEAD, total, why,
				     sizeof(why));
		if (ret == -EIO)
			cache_protocol_error(path, why);
		if (ret == 0)
			ret = fn(ctx, arr);
		json_object_put(o);
		if (ret || !pg->limit_param)
			break; /* an unpaged list is whole */
		dsfs_lock(&c->lock);
		cap = c->page_cap_seen;
		if (n > c->page_cap_seen)
			c->page_cap_seen = n;
		dsfs_unlock(&c->lock);
		start += n;
		if (n == 0 || (total >= 0 && start >= (unsigned long)total))
			break; /* the answer said how many there are */
		if (total < 0 && n < cap)
			break;
	}
out:
	dsfs_pages_free(guard);
	free(path);
	return ret;
}

/* True when a listed object of kind k can be fetched alone (its object file is a GET of one). */
static bool droppable_kind(const struct dsfs_kind *k)
{
	return k->get_one && k->nfiles && !k->files[0].subpath;
}

struct collect {
	const struct dsfs_kind *kind; /* of the source being listed */
	struct item *items;
	size_t n, cap;
	const char *url;   /* of the source being listed */
	const char *scope; /* the id every item's kind->scope_field must equal (the parent's) */
	size_t budget;     /* bytes of objects and nodes past which objects are dropped (0: none) */
	size_t used;       /* what the items collected so far cost */
};

/*
 * Is o an item of the collection col lists? One whose scope field names
 * another parent came from a server that widened the list: it is left
 * out (logged), never shown under this parent.
 */
static bool in_scope(const struct collect *col, json_object *o)
{
	const char *field = col->kind->scope_field;
	json_object *v;

	if (!field || !col->scope || !json_object_is_type(o, json_type_object))
		return true;
	v = dsfs_dialect_field(o, field);
	if ((json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int)) &&
	    !strcmp(json_object_get_string(v), col->scope))
		return true;
	dsfs_log(DSFS_LOG_WARN, "GET %s: a listed %s is outside its collection (%s %s, not %s); left out", col->url,
		 col->kind->name, field, v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "absent",
		 col->scope);
	return false;
}

static int collect_page(void *ctx, json_object *arr)
{
	struct collect *col = ctx;
	size_t i, n = json_object_array_length(arr);

	if (col->n + n > col->cap) {
		struct item *p = dsfs_grow(col->items, &col->cap, col->n + n, sizeof(*p), 64, 0);

		if (!p)
			return -ENOMEM;
		col->items = p;
	}
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct item *it = &col->items[col->n];
		int ret;

		if (!in_scope(col, o))
			continue;
		ret = parse_item(col->kind, o, it);

		it->kind = col->kind;
		it->list_url = col->url;
		col->n++;
		if (ret == 0 && col->budget && droppable_kind(col->kind)) {
			/*
			 * A listing larger than the bound keeps its objects' sizes
			 * and not their text past the budget: a GET brings one back
			 * when it is read. What is dropped here is never held.
			 */
			col->used += cache_index_cost(col->kind);
			if (col->used + it->len > col->budget) {
				it->sum =
					dsfs_blob_sum(it->blob->data, it->blob->len); /* its mtime outlives the text */
				dsfs_blob_unref(it->blob);
				it->blob = NULL;
			} else {
				col->used += it->len;
			}
		}
		if (ret == -EIO) {
			char msg[128];

			snprintf(msg, sizeof(msg), "a listed %s has no usable \"%s\"", col->kind->name,
				 col->kind->id_field);
			return cache_protocol_error(col->url, msg);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int cmp_by_entry(const void *a, const void *b)
{
	return strcmp((*(struct dsfs_node *const *)a)->entry, (*(struct dsfs_node *const *)b)->entry);
}

static int cmp_by_id(const void *a, const void *b)
{
	return strcmp((*(struct dsfs_node *const *)a)->id, (*(struct dsfs_node *const *)b)->id);
}

/*
 * Replaces coll's listing by items (consumed). Nodes of resources still
 * listed are kept, so their inodes, open handles and sub-listings survive.
 * Ownership: the items array of a collection holds the tree's one reference
 * to each attached resource; cache_detach() drops it.
 */
static int install_listing(struct dsfs_cache *c, struct dsfs_node *coll, struct item *items, size_t n, double at)
{
	size_t i, old_n = coll->nitems, alloc_n = n ? n : 1;
	struct dsfs_node **nodes = calloc(alloc_n, sizeof(*nodes));
	struct dsfs_node **by_id = calloc(alloc_n, sizeof(*by_id));
	char **entries = calloc(alloc_n, sizeof(*entries));
	char **ids = calloc(alloc_n, sizeof(*ids));
	bool *created = calloc(alloc_n, sizeof(*created));
	struct dsfs_node **old = coll->items;
	int ret = -ENOMEM;

	if (!nodes || !by_id || !entries || !ids || !created)
		goto out;
	for (i = 0; i < n; i++) {
		struct dsfs_node *r = coll->listed ? cache_find_by_id(coll, items[i].id) : NULL;

		if (r && r->kind != items[i].kind)
			r = NULL; /* the same id from another source: not the same resource */
		if (!r) {
			r = cache_node_new(c, false, items[i].kind, cache_join_url(items[i].list_url, "", items[i].id));
			if (!r)
				goto out_nodes;
			created[i] = true;
			r->id = items[i].id;
			items[i].id = NULL;
			r->ino = hash_ino(r->url, NULL, NULL);
			r->parent = coll;
			r->attached = true;
			cache_account(c, r, (ssize_t)strlen(r->id) + 1);
		}
		nodes[i] = r;
		ids[i] = r->id;
		entries[i] = dsfs_names_entry(items[i].name, r->id);
		if (!entries[i])
			goto out_nodes;
	}
	if (dsfs_names_dedupe(entries, ids, n, reserved_entries))
		goto out_nodes;
	for (i = 0; i < n; i++) {
		struct dsfs_node *r = nodes[i];

		if (items[i].has_mtime)
			r->mtime = items[i].mtime;
		/* an object fetched since this listing was asked for is newer than the listing's copy */
		if (r->kind->nfiles && !r->kind->files[0].subpath && !r->slots[0].fetching &&
		    !(r->slots[0].blob && r->slots[0].at > at)) {
			cache_set_slot(c, r, 0, items[i].blob, at, items[i].updated);
			if (!items[i].blob) { /* dropped for memory while listing (collect_page) */
				cache_slot_took(&r->slots[0], items[i].sum, items[i].updated);
				r->slots[0].dropped = true;
				r->slots[0].dropped_len = items[i].len;
			}
			items[i].blob = NULL;
		}
		cache_account(c, r, -(ssize_t)cache_names_cost(r));
		cache_free_names(r);
		r->entry = entries[i];
		entries[i] = NULL;
		/* what an object fetched for this entry must still be called; most names are their entry */
		if (strcmp(items[i].name, r->entry)) {
			r->name = items[i].name;
			items[i].name = NULL;
		} else {
			r->name = r->entry;
		}
		cache_account(c, r, (ssize_t)cache_names_cost(r));
		by_id[i] = r;
	}
	qsort(nodes, n, sizeof(*nodes), cmp_by_entry);
	qsort(by_id, n, sizeof(*by_id), cmp_by_id);

	/* Swap in the new listing, then let go of resources no longer listed. */
	free(coll->by_id);
	cache_account(c, coll, (ssize_t)(2 * n * sizeof(void *)) - (ssize_t)(2 * old_n * sizeof(void *)));
	coll->items = nodes;
	coll->by_id = by_id;
	coll->nitems = n;
	coll->listed = true;
	coll->listed_at = at;
	cache_lru_touch(c, coll);
	for (i = 0; i < old_n; i++) {
		struct dsfs_node *r = old[i];

		if (n == 0 || !bsearch(&r, by_id, n, sizeof(*by_id), cmp_by_id))
			cache_detach(c, r);
	}
	free(old);
	nodes = by_id = NULL;
	ret = 0;
	goto out;

out_nodes:
	for (i = 0; i < n; i++) {
		if (created[i]) {
			nodes[i]->attached = false;
			cache_node_unref(c, nodes[i]);
		}
	}
out:
	for (i = 0; entries && i < n; i++)
		free(entries[i]);
	free(entries);
	free(ids);
	free(created);
	free(nodes);
	free(by_id);
	items_free(items, n);
	return ret;
}

static int cmp_item_id(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->id, ((const struct item *)b)->id);
}

/* Drops items whose id repeats an earlier one: a listing maps ids to entries one to one. */
static size_t unique_ids(struct item *items, size_t n, const char *url)
{
	size_t i, o = 0;

	if (n == 0)
		return 0;
	qsort(items, n, sizeof(*items), cmp_item_id);
	for (i = 0; i < n; i++) {
		if (o && !strcmp(items[o - 1].id, items[i].id)) {
			dsfs_log(DSFS_LOG_WARN, "GET %s: id \"%s\" listed twice; keeping the first", url, items[i].id);
			item_clear(&items[i]);
			continue;
		}
		items[o++] = items[i];
	}
	return o;
}

/*
 * Makes coll's listing present (and fresh, when want_fresh), fetching it if
 * needed. Called with the lock held; drops it while the requests run.
 */
int cache_ensure_listing(struct dsfs_cache *c, struct dsfs_node *coll, bool want_fresh)
{
	struct collect col = { 0 };
	char *urls[8] = { 0 };
	const struct dsfs_kind *k;
	double at;
	size_t i;
	int ret = 0;

	for (;;) {
		if (coll->listed && (!want_fresh || fresh(c, coll->listed_at))) {
			c->hits++;
			cache_lru_touch(c, coll);
			return 0;
		}
		if (!coll->listing)
			break;
		dsfs_cond_wait(&c->done, &c->lock);
		if (!coll->listing && coll->listed && dsfs_clock_now() - coll->listed_at < 1.0 + c->o.ttl) {
			/* Just listed by the thread we waited for: that answer is as new as ours would be. */
			cache_lru_touch(c, coll);
			return 0;
		}
	}
	coll->listing = true;
	cache_node_ref(coll);
	c->misses++;
	at = dsfs_clock_now();
	dsfs_unlock(&c->lock);

	for (i = 0; ret == 0 && i < 8 && (k = source_kind(coll->kind, i)); i++) {
		/* one list per source: device types that share a directory, say */
		urls[i] = i == 0 ? strdup(coll->url) : cache_collection_url(coll->base, coll->base_id, k->segment);
		if (!urls[i]) {
			ret = -ENOMEM;
			break;
		}
		col.kind = k;
		col.url = urls[i];
		col.scope = coll->base_id;
		/* half the bound at most for one listing's objects: the walk going through it needs the rest */
		col.budget = c->o.max_bytes / 2;
		ret = cache_each_page(c, urls[i], k, k->list_key, k->id_field,
				      droppable_kind(k) ? cache_index_cost(k) : 0, false, collect_page, &col);
	}
	if (ret == 0)
		col.n = unique_ids(col.items, col.n, coll->url);

	dsfs_lock(&c->lock);
	coll->listing = false;
	if (ret == 0)
		ret = install_listing(c, coll, col.items, col.n, at);
	else
		items_free(col.items, col.n);
	for (i = 0; i < 8; i++)
		free(urls[i]);
	cache_enforce_bound(c, coll);
	pthread_cond_broadcast(&c->done);
	cache_node_unref(c, coll);
	return ret;
}

/* ---- lists the server filters (.where) --------------------------------------------- */

void cache_found_free(struct cache_found *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++) {
		free(f[i].entry);
		dsfs_blob_unref(f[i].blob);
	}
	free(f);
}

/* Lists coll's URL with query into col (its items' URLs are coll's). Lock held, dropped meanwhile. */
static int list_filtered(struct dsfs_cache *c, struct dsfs_node *coll, const char *query, struct collect *col)
{
	const struct dsfs_kind *k = coll->kind;
	char *url;
	int ret;

	if (asprintf(&url, "%s%c%s", coll->url, strchr(coll->url, '?') ? '&' : '?', query) < 0)
		return -ENOMEM;
	col->kind = k;
	col->url = coll->url;
	col->scope = coll->base_id;
	c->misses++;
	dsfs_unlock(&c->lock);
	ret = cache_each_page(c, url, k, k->list_key, k->id_field, 0, false, collect_page, col);
	dsfs_lock(&c->lock);
	if (ret == 0)
		col->n = unique_ids(col->items, col->n, url);
	if (ret == -EINVAL) {
		dsfs_log(DSFS_LOG_DEBUG, "GET %s: the server cannot filter so; filtering its listing", url);
		ret = -ENOTSUP;
	}
	free(url);
	return ret;
}

/* Names beyond which the objects sharing them are not asked for: the listing is cheaper then. */
#define FOUND_NAMES_MAX 64

int cache_fetch_filtered(struct dsfs_cache *c, struct dsfs_node *coll, const char *query, bool named,
			 struct cache_found **out, size_t *n)
{
	struct collect col = { 0 }, same = { 0 };
	const char *names[FOUND_NAMES_MAX];
	char **entries = NULL, **ids = NULL, buf[8192];
	size_t nnames = 0, all = 0, i, j;
	int ret;

	*out = NULL;
	*n = 0;
	ret = list_filtered(c, coll, query, &col);
	/* the entry of an object depends on its siblings of the same name: ask for those too */
	for (i = 0; ret == 0 && named && i < col.n; i++) {
		for (j = 0; j < nnames && strcmp(names[j], col.items[i].name); j++)
			;
		if (j < nnames)
			continue;
		if (nnames == FOUND_NAMES_MAX)
			ret = -ENOTSUP;
		else
			names[nnames++] = col.items[i].name;
	}
	if (ret == 0 && nnames) {
		if (!c->dialect->filter || !coll->kind->name_field || coll->kind->name_value_field ||
		    !c->dialect->filter(coll->kind->name_field, "=", names, nnames, buf, sizeof(buf)))
			ret = -ENOTSUP;
		else
			ret = list_filtered(c, coll, buf, &same);
	}
	all = col.n + same.n;
	if (ret == 0 &&
	    (!(*out = calloc(col.n ? col.n : 1, sizeof(**out))) ||
	     !(entries = calloc(all ? all : 1, sizeof(*entries))) || !(ids = calloc(all ? all : 1, sizeof(*ids)))))
		ret = -ENOMEM;
	for (i = 0; ret == 0 && i < all; i++) {
		struct item *it = i < col.n ? &col.items[i] : &same.items[i - col.n];

		ids[i] = it->id;
		if (!(entries[i] = dsfs_names_entry(it->name, it->id)))
			ret = -ENOMEM;
	}
	/* the same object in both answers is one sibling, not two */
	for (i = col.n; ret == 0 && i < all; i++)
		for (j = 0; j < col.n; j++)
			if (ids[i] && !strcmp(ids[i], ids[j])) {
				free(entries[i]);
				entries[i] = entries[--all];
				ids[i] = ids[all];
				entries[all] = NULL;
				i--;
				break;
			}
	if (ret == 0 && named && dsfs_names_dedupe(entries, ids, all, reserved_entries))
		ret = -ENOMEM;
	for (i = 0; ret == 0 && i < col.n; i++) {
		char *url = cache_join_url(coll->url, "", col.items[i].id);

		if (!url) {
			ret = -ENOMEM;
			break;
		}
		(*out)[i].ino = hash_ino(url, NULL, NULL);
		free(url);
		(*out)[i].entry = entries[i];
		entries[i] = NULL;
		(*out)[i].mtime = col.items[i].has_mtime ? col.items[i].mtime : coll->mtime;
		(*out)[i].blob = col.items[i].blob;
		col.items[i].blob = NULL;
		(*n)++;
	}
	for (i = 0; entries && i < all; i++)
		free(entries[i]);
	free(entries);
	free(ids);
	items_free(col.items, col.n);
	items_free(same.items, same.n);
	if (ret) {
		cache_found_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ret;
}
