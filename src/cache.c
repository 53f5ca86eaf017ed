// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Nodes, listings, freshness and the memory bound. Resources and collections
 * are nodes; files, .by-id and its links are views of them. A node is
 * reference-counted: the tree holds one reference while the node is attached,
 * and each location handed out holds another, so eviction or a vanished
 * resource never frees memory a FUSE thread is still using. Requests run
 * with the lock dropped; a fetch in flight is marked on the node, and other
 * threads wanting the same thing wait for it instead of sending their own.
 */
#include "cache.h"

#include <errno.h>
#include <json-c/json.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"
#include "log.h"
#include "names.h"
#include "pages.h"
#include "render.h"

#define BYID_DIR ".by-id"

/* Prefetching starts once a walker has gone into this many resources of a directory ... */
#define WALK_THRESHOLD 3
/* ... and stays at most this many resources ahead of it per worker. */
#define WALK_LEAD 8
/* File slots a walk can prefetch (kinds have fewer files than this). */
#define WALK_FILES 8
/*
 * Bytes a node costs beyond what it holds: malloc's headers for its strings
 * and arrays, and libfuse's node for each inode the kernel has looked up
 * (measured: RSS grows about 2.2 times what the cache itself holds).
 */
#define NODE_OVERHEAD 512

#define CTL_NEW "new"
#define CTL_ACTION "action"
#define TASK_WAIT "wait"

/* Entry names a collection keeps for itself. */
static const char *const reserved_entries[] = { BYID_DIR, CTL_NEW, "latest", NULL };

struct slot {
	struct dsfs_blob *blob;
	double at;          /* monotonic time of the fetch */
	size_t reported;    /* size last reported by getattr */
	bool fetching;
	bool fresh_for_open; /* fetched by getattr: the next open may use it */
	bool kept;          /* the kernel may hold this very content from an earlier open */
};

struct dsfs_node {
	int refs;
	bool is_coll;
	bool attached;
	const struct dsfs_kind *kind; /* resource: its kind; collection: the kind listed */
	struct dsfs_node *parent;     /* valid while attached */
	char *url;                    /* resource URL, or collection list URL */
	char *base, *base_id;         /* collection: its resource's URL and id (where other sources hang) */
	uint64_t ino;
	time_t mtime;
	size_t bytes;                 /* accounted to the cache */

	/* resource */
	char *id, *entry;
	struct slot *slots;           /* kind->nfiles */
	struct dsfs_node **colls;     /* kind->nchildren, created on first lookup */

	/* collection */
	struct dsfs_node **items;     /* sorted by entry */
	struct dsfs_node **by_id;     /* sorted by id */
	size_t nitems;
	double listed_at;
	bool listed, listing;
	struct dsfs_node *lru_prev, *lru_next;

	/* collection: signs of a recursive walk through its resources (see note_walk) */
	double walk_at;               /* the listing these counts are about */
	size_t walk_pos;              /* furthest item the walker has reached */
	unsigned walk_dirs;           /* distinct resources whose directory was listed */
	unsigned walk_files[WALK_FILES]; /* distinct resources whose file i was fetched */
	size_t walk_last_dir, walk_last_file[WALK_FILES]; /* index counted last, +1 (0: none yet) */
	struct walk *walk;            /* the prefetch under way, or NULL */
};

/* A prefetch that runs ahead of a walker through one collection. */
struct walk {
	struct dsfs_node *coll;       /* referenced */
	double listed_at;             /* the listing walked; another one ends the walk */
	size_t next;                  /* next item to prefetch */
	bool dirs;                    /* the items' child listings */
	unsigned files;               /* bit i: the items' file i */
	struct walk *next_walk;
};

struct dsfs_cache {
	const struct dsfs_dialect *dialect;
	struct dsfs_session *session;
	struct dsfs_cache_opts o;
	pthread_mutex_t lock;
	pthread_cond_t done; /* broadcast when any fetch ends */
	struct dsfs_node *root;
	struct dsfs_node lru; /* sentinel: most recent after it */
	size_t bytes, nodes;
	unsigned long hits, misses, evictions;
	unsigned long page_cap_seen; /* largest page any list answered */
	double stale_before; /* anything fetched before this is stale (set by actions) */

	struct walk *walks;  /* prefetches under way */
	pthread_cond_t work; /* a walk started or a walker moved on */
	pthread_t *workers;
	unsigned nworkers;
	bool stopping;
	unsigned long prefetched;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash_ino(const char *a, const char *b, const char *d)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[3] = { a, b, d };

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; p && *p; p++) {
			h ^= (unsigned char)*p;
			h *= 0x100000001b3ull;
		}
		h ^= 0xff;
		h *= 0x100000001b3ull;
	}
	/* splitmix64 finaliser: spread FNV's weak low bits */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h < 2 ? h + 2 : h;
}

static bool fresh(const struct dsfs_cache *c, double at)
{
	return at > 0 && at > c->stale_before && mono_now() - at < c->o.ttl;
}

/*
 * Read-through files (tasks, split status) show the server's state "now":
 * an answer at most this old still counts, so the files of one task opened
 * together, or a crawler right behind a listing, cost one request, not one
 * per open.
 */
static double direct_window(const struct dsfs_cache *c)
{
	return c->o.ttl < 1.0 ? c->o.ttl : 1.0;
}

static bool direct_fresh(const struct dsfs_cache *c, double at)
{
	return at > 0 && at > c->stale_before && mono_now() - at < direct_window(c);
}

/* ---- nodes -------------------------------------------------------------- */

static void account(struct dsfs_cache *c, struct dsfs_node *n, ssize_t delta)
{
	n->bytes = (size_t)((ssize_t)n->bytes + delta);
	c->bytes = (size_t)((ssize_t)c->bytes + delta);
}

static struct dsfs_node *node_new(struct dsfs_cache *c, bool is_coll, const struct dsfs_kind *kind, char *url)
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
	account(c, n, (ssize_t)(NODE_OVERHEAD + sizeof(*n) + strlen(url) + 1 +
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

static void lru_touch(struct dsfs_cache *c, struct dsfs_node *n)
{
	lru_unlink(n);
	n->lru_next = c->lru.lru_next;
	n->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = n;
	c->lru.lru_next = n;
}

static void node_unref(struct dsfs_cache *c, struct dsfs_node *n);

static void set_slot(struct dsfs_cache *c, struct dsfs_node *n, int i, struct dsfs_blob *b, double at)
{
	struct slot *s = &n->slots[i];

	if (s->blob)
		account(c, n, -(ssize_t)s->blob->len);
	/* a refetch that brought the same bytes leaves the kernel's copy good */
	if (!s->blob || !b || s->blob->len != b->len || memcmp(s->blob->data, b->data, b->len))
		s->kept = false;
	dsfs_blob_unref(s->blob);
	s->blob = b;
	s->at = at;
	if (b)
		account(c, n, (ssize_t)b->len);
}

static void drop_listing(struct dsfs_cache *c, struct dsfs_node *coll);

/* Takes n out of the tree and drops the tree's reference. */
static void detach(struct dsfs_cache *c, struct dsfs_node *n)
{
	size_t i;

	if (!n->attached)
		return;
	n->attached = false;
	n->parent = NULL;
	if (n->is_coll) {
		drop_listing(c, n);
	} else {
		for (i = 0; n->colls && i < n->kind->nchildren; i++) {
			if (n->colls[i]) {
				detach(c, n->colls[i]);
				n->colls[i] = NULL;
			}
		}
		for (i = 0; n->slots && i < n->kind->nfiles; i++)
			if (!n->slots[i].fetching)
				set_slot(c, n, (int)i, NULL, 0);
	}
	node_unref(c, n);
}

/* Forgets a collection's listing and detaches every resource in it. */
static void drop_listing(struct dsfs_cache *c, struct dsfs_node *coll)
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
	account(c, coll, -(ssize_t)(2 * n * sizeof(void *)));
	for (i = 0; i < n; i++)
		detach(c, items[i]);
	free(items);
}

static void node_free(struct dsfs_cache *c, struct dsfs_node *n)
{
	size_t i;

	if (n->is_coll) {
		drop_listing(c, n);
	} else {
		for (i = 0; n->colls && i < n->kind->nchildren; i++)
			if (n->colls[i])
				detach(c, n->colls[i]);
		for (i = 0; n->slots && i < n->kind->nfiles; i++)
			set_slot(c, n, (int)i, NULL, 0);
	}
	c->bytes -= n->bytes;
	c->nodes--;
	free(n->slots);
	free(n->colls);
	free(n->url);
	free(n->base);
	free(n->base_id);
	free(n->id);
	free(n->entry);
	free(n);
}

static void node_unref(struct dsfs_cache *c, struct dsfs_node *n)
{
	if (n && --n->refs == 0)
		node_free(c, n);
}

static struct dsfs_node *node_ref(struct dsfs_node *n)
{
	if (n)
		n->refs++;
	return n;
}

/* Evicts least recently used listings until the cache fits its bound. */
static void enforce_bound(struct dsfs_cache *c, struct dsfs_node *keep)
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
		/* Never evict a listing above keep: keep's node lives in it. */
		bool ancestor = false;
		for (struct dsfs_node *p = keep; p; p = p->parent)
			if (p == n)
				ancestor = true;
		if (ancestor)
			continue;
		drop_listing(c, n);
		c->evictions++;
		evicted = true;
		/* drop_listing may have unlinked prev (a listing below n): restart from the tail. */
		prev = c->lru.lru_prev;
	}
	if (evicted && mono_now() - trimmed_at > 1.0) {
		/* glibc keeps freed memory; hand it back so the bound shows in RSS too */
		malloc_trim(0);
		trimmed_at = mono_now();
	}
}

/* ---- fetching ----------------------------------------------------------- */

struct item {
	char *id, *name;
	time_t mtime;
	bool has_mtime;
	struct dsfs_blob *blob;
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

static int protocol_error(const char *path, const char *what)
{
	dsfs_err_record("GET", path, 0, what);
	return -EIO;
}

/* GETs path and parses the answer as JSON; *len (when not NULL) gets the answer's size. */
static int get_json(struct dsfs_cache *c, const char *path, bool anonymous, json_object **out, size_t *len)
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
			ret = protocol_error(path, msg);
		}
	}
	dsfs_response_clear(&resp);
	return ret;
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
	if (json_object_object_get_ex(o, kind->name_field, &v) && json_object_is_type(v, json_type_string))
		it->name = strdup(json_object_get_string(v));
	else
		it->name = strdup("");
	if (kind->time_field && json_object_object_get_ex(o, kind->time_field, &v))
		it->has_mtime = dsfs_render_time(v, &it->mtime) == 0;
	it->blob = dsfs_render_json(o);
	if (!it->id || !it->name || !it->blob)
		return -ENOMEM;
	return 0;
}

typedef int (*page_fn)(void *ctx, json_object *array);

/*
 * Asks for every page of a list. A page shorter than the largest page the
 * server has ever answered proves the end (the server's cap is then known
 * to be larger), as does an empty page. Items are identified by id_field
 * (NULL: by their text); a guard ends the listing with EIO when the server
 * is not paging or the list outgrows the memory bound (src/pages.h).
 */
static int each_page(struct dsfs_cache *c, const char *url, const char *key, const char *id_field,
		     bool anonymous, page_fn fn, void *ctx)
{
	const struct dsfs_paging *pg = &c->dialect->paging;
	struct dsfs_pages *guard = dsfs_pages_new(c->o.max_bytes, id_field);
	unsigned long start = 0, cap;
	long total = -1;
	char *path = malloc(strlen(url) + 96);
	int ret = 0;

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
		else /* a collection URL may carry a query of its own (a filter) */
			sprintf(path, "%s%c%s=%u&%s=%lu", url, strchr(url, '?') ? '&' : '?', pg->limit_param,
				c->o.page_size, pg->start_param, start);
		ret = get_json(c, path, anonymous, &o, &len);
		if (ret)
			break;
		arr = o;
		if ((key && !json_object_object_get_ex(o, key, &arr)) || !json_object_is_type(arr, json_type_array)) {
			char msg[128];

			if (key)
				snprintf(msg, sizeof(msg), "answer has no \"%s\" list", key);
			else
				snprintf(msg, sizeof(msg), "answer is not a list");
			json_object_put(o);
			ret = protocol_error(path, msg);
			break;
		}
		n = json_object_array_length(arr);
		if (pg->total_field) {
			json_object *t;

			if (json_object_object_get_ex(o, pg->total_field, &t) && json_object_is_type(t, json_type_int))
				total = (long)json_object_get_int64(t);
		}
		/* what the listing costs once cached: the answer, and each node's overhead */
		ret = dsfs_pages_add(guard, arr, len + n * NODE_OVERHEAD, total, why, sizeof(why));
		if (ret == -EIO)
			protocol_error(path, why);
		if (ret == 0)
			ret = fn(ctx, arr);
		json_object_put(o);
		if (ret || !pg->limit_param)
			break; /* an unpaged list is whole */
		pthread_mutex_lock(&c->lock);
		cap = c->page_cap_seen;
		if (n > c->page_cap_seen)
			c->page_cap_seen = n;
		pthread_mutex_unlock(&c->lock);
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

struct collect {
	const struct dsfs_kind *kind; /* of the source being listed */
	struct item *items;
	size_t n, cap;
	const char *url;              /* of the source being listed */
};

static int collect_page(void *ctx, json_object *arr)
{
	struct collect *col = ctx;
	size_t i, n = json_object_array_length(arr);

	if (col->n + n > col->cap) {
		size_t cap = col->cap ? col->cap : 64;
		struct item *p;

		while (cap < col->n + n)
			cap *= 2;
		p = realloc(col->items, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		col->items = p;
		col->cap = cap;
	}
	for (i = 0; i < n; i++) {
		int ret = parse_item(col->kind, json_object_array_get_idx(arr, i), &col->items[col->n]);

		col->items[col->n].kind = col->kind;
		col->items[col->n].list_url = col->url;
		col->n++;
		if (ret == -EIO) {
			char msg[128];

			snprintf(msg, sizeof(msg), "a listed %s has no usable \"%s\"", col->kind->name,
				 col->kind->id_field);
			return protocol_error(col->url, msg);
		}
		if (ret)
			return ret;
	}
	return 0;
}

struct merge {
	json_object *all;
};

static int merge_page(void *ctx, json_object *arr)
{
	struct merge *m = ctx;
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++)
		if (json_object_array_add(m->all, json_object_get(json_object_array_get_idx(arr, i))))
			return -ENOMEM;
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

static struct dsfs_node *find_by_id(struct dsfs_node *coll, const char *id)
{
	size_t lo = 0, hi = coll->nitems;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(id, coll->by_id[mid]->id);

		if (r == 0)
			return coll->by_id[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static struct dsfs_node *find_by_entry(struct dsfs_node *coll, const char *entry)
{
	size_t lo = 0, hi = coll->nitems;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(entry, coll->items[mid]->entry);

		if (r == 0)
			return coll->items[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * base + "/" + the escaped id (or segment). A list URL's own query (a filter,
 * as in "/backup?filter=appid:%3D7") is not part of its objects' URLs.
 */
static char *join_url(const char *base, const char *segment, const char *id)
{
	char *seg = id ? dsfs_names_url_segment(id) : NULL;
	size_t len = strlen(base) + strlen(segment) + (seg ? strlen(seg) : 0) + 3;
	int blen = (int)strcspn(base, "?");
	char *url = (id && !seg) ? NULL : malloc(len);

	if (url)
		snprintf(url, len, "%.*s/%s", blen, base, seg ? seg : segment);
	free(seg);
	return url;
}

/*
 * URL of the collection of segment under the resource at base (with id
 * base_id). A segment starting with '/' hangs off the API root instead, with
 * "{id}" standing for the resource's id (DSCC volume sets, say).
 */
static char *collection_url(const char *base, const char *base_id, const char *segment)
{
	const char *hole;
	char *seg, *url;

	if (segment[0] != '/')
		return join_url(base, segment, NULL);
	hole = strstr(segment, "{id}");
	if (!hole || !base_id)
		return strdup(segment);
	seg = dsfs_names_url_segment(base_id);
	if (!seg || asprintf(&url, "%.*s%s%s", (int)(hole - segment), segment, seg, hole + 4) < 0)
		url = NULL;
	free(seg);
	return url;
}

/*
 * Replaces coll's listing by items (consumed). Nodes of resources still
 * listed are kept, so their inodes, open handles and sub-listings survive.
 * Ownership: the items array of a collection holds the tree's one reference
 * to each attached resource; detach() drops it.
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
		struct dsfs_node *r = coll->listed ? find_by_id(coll, items[i].id) : NULL;

		if (r && r->kind != items[i].kind)
			r = NULL; /* the same id from another source: not the same resource */
		if (!r) {
			r = node_new(c, false, items[i].kind, join_url(items[i].list_url, "", items[i].id));
			if (!r)
				goto out_nodes;
			created[i] = true;
			r->id = items[i].id;
			items[i].id = NULL;
			r->ino = hash_ino(r->url, NULL, NULL);
			r->parent = coll;
			r->attached = true;
			account(c, r, (ssize_t)strlen(r->id) + 1);
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
		if (r->kind->nfiles && !r->kind->files[0].subpath && !r->slots[0].fetching) {
			set_slot(c, r, 0, items[i].blob, at);
			items[i].blob = NULL;
		}
		if (r->entry)
			account(c, r, -(ssize_t)strlen(r->entry) - 1);
		free(r->entry);
		r->entry = entries[i];
		entries[i] = NULL;
		account(c, r, (ssize_t)strlen(r->entry) + 1);
		by_id[i] = r;
	}
	qsort(nodes, n, sizeof(*nodes), cmp_by_entry);
	qsort(by_id, n, sizeof(*by_id), cmp_by_id);

	/* Swap in the new listing, then let go of resources no longer listed. */
	free(coll->by_id);
	account(c, coll, (ssize_t)(2 * n * sizeof(void *)) - (ssize_t)(2 * old_n * sizeof(void *)));
	coll->items = nodes;
	coll->by_id = by_id;
	coll->nitems = n;
	coll->listed = true;
	coll->listed_at = at;
	lru_touch(c, coll);
	for (i = 0; i < old_n; i++) {
		struct dsfs_node *r = old[i];

		if (n == 0 || !bsearch(&r, by_id, n, sizeof(*by_id), cmp_by_id))
			detach(c, r);
	}
	free(old);
	nodes = by_id = NULL;
	ret = 0;
	goto out;

out_nodes:
	for (i = 0; i < n; i++) {
		if (created[i]) {
			nodes[i]->attached = false;
			node_unref(c, nodes[i]);
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

/* Removes one resource from its collection's listing (it has vanished on the server). */
static void forget_resource(struct dsfs_cache *c, struct dsfs_node *r)
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
	account(c, coll, -(ssize_t)(2 * sizeof(void *)));
	detach(c, r);
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
static int ensure_listing(struct dsfs_cache *c, struct dsfs_node *coll, bool want_fresh)
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
			lru_touch(c, coll);
			return 0;
		}
		if (!coll->listing)
			break;
		pthread_cond_wait(&c->done, &c->lock);
		if (!coll->listing && coll->listed && mono_now() - coll->listed_at < 1.0 + c->o.ttl) {
			/* Just listed by the thread we waited for: that answer is as new as ours would be. */
			lru_touch(c, coll);
			return 0;
		}
	}
	coll->listing = true;
	node_ref(coll);
	c->misses++;
	at = mono_now();
	pthread_mutex_unlock(&c->lock);

	for (i = 0; ret == 0 && i < 8 && (k = source_kind(coll->kind, i)); i++) {
		/* one list per source: device types that share a directory, say */
		urls[i] = i == 0 ? strdup(coll->url) : collection_url(coll->base, coll->base_id, k->segment);
		if (!urls[i]) {
			ret = -ENOMEM;
			break;
		}
		col.kind = k;
		col.url = urls[i];
		ret = each_page(c, urls[i], k->list_key, k->id_field, false, collect_page, &col);
	}
	if (ret == 0)
		col.n = unique_ids(col.items, col.n, coll->url);

	pthread_mutex_lock(&c->lock);
	coll->listing = false;
	if (ret == 0)
		ret = install_listing(c, coll, col.items, col.n, at);
	else
		items_free(col.items, col.n);
	for (i = 0; i < 8; i++)
		free(urls[i]);
	enforce_bound(c, coll);
	pthread_cond_broadcast(&c->done);
	node_unref(c, coll);
	return ret;
}

/* True when a walk through collection coll's current listing has been noticed (see note_walk). */
static bool walked(const struct dsfs_node *coll)
{
	if (!coll->is_coll || coll->walk_at != coll->listed_at)
		return false;
	if (coll->walk_dirs >= WALK_THRESHOLD)
		return true;
	for (int i = 0; i < WALK_FILES; i++)
		if (coll->walk_files[i] >= WALK_THRESHOLD)
			return true;
	return false;
}

/* Fetches one file of resource r. Called with the lock held; drops it meanwhile. */
static int fetch_slot(struct dsfs_cache *c, struct dsfs_node *r, int i)
{
	const struct dsfs_file_desc *f = &r->kind->files[i];
	bool anonymous = f->flags & DSFS_FILE_ANONYMOUS;
	struct dsfs_blob *blob = NULL, *obj_blob = NULL;
	struct slot *s = &r->slots[i];
	json_object *o = NULL;
	char *url;
	double at;
	int ret;

	while (s->fetching) {
		pthread_cond_wait(&c->done, &c->lock);
		if (!s->fetching && s->blob && mono_now() - s->at < 1.0 + c->o.ttl)
			return 0;
	}
	if (f->derive && i > 0 && r->slots[0].blob && direct_fresh(c, r->slots[0].at)) {
		/* A view of the object: made from the copy just fetched, no request. */
		json_object *obj = json_tokener_parse(r->slots[0].blob->data);
		struct dsfs_blob *b = obj ? f->derive(obj, c->dialect) : NULL;

		json_object_put(obj);
		if (!b)
			return obj ? -ENOMEM : -EIO;
		set_slot(c, r, i, b, r->slots[0].at);
		return 0;
	}
	if (!f->subpath && (!r->kind->get_one || (r->parent && walked(r->parent)))) {
		/*
		 * No GET of one: the listing is the only source. Or a walker is going
		 * through the listing after it went stale: listing it again costs a
		 * page per thousand resources, a GET each costs one per resource.
		 */
		struct dsfs_node *coll = r->parent;

		if (!coll)
			return -ENOENT;
		node_ref(coll);
		coll->listed_at = 0;
		ret = ensure_listing(c, coll, true);
		node_unref(c, coll);
		if (ret == 0 && !r->attached)
			ret = -ENOENT;
		return ret;
	}

	s->fetching = true;
	node_ref(r);
	c->misses++;
	at = mono_now();
	pthread_mutex_unlock(&c->lock);

	url = malloc(strlen(r->url) + (f->subpath ? strlen(f->subpath) : 0) + 1);
	if (!url) {
		ret = -ENOMEM;
	} else {
		strcpy(url, r->url);
		if (f->subpath)
			strcat(url, f->subpath);
		if (f->list_key) {
			struct merge m = { .all = json_object_new_array() };

			ret = m.all ? each_page(c, url, f->list_key, NULL, anonymous, merge_page, &m) : -ENOMEM;
			o = json_object_new_object();
			if (ret == 0 && (!o || json_object_object_add(o, f->list_key, m.all)))
				ret = -ENOMEM;
			else if (ret == 0)
				m.all = NULL;
			json_object_put(m.all);
		} else if (f->fetch) {
			ret = f->fetch(c->session, url, &o);
			at = mono_now(); /* an answer that took its time is as old as its arrival */
		} else if (f->flags & DSFS_FILE_BINARY) {
			struct dsfs_request req = { .method = "GET", .path = url, .accept = f->accept };
			struct dsfs_response resp = { 0 };

			ret = dsfs_session_call(c->session, &req, &resp, anonymous);
			if (ret == 0 && !(blob = dsfs_blob_new(resp.body ? resp.body : "", resp.len)))
				ret = -ENOMEM;
			dsfs_response_clear(&resp);
		} else {
			ret = get_json(c, url, anonymous, &o, NULL);
			if (ret == 0 && !f->subpath && !json_object_is_type(o, json_type_object))
				ret = protocol_error(url, "answer is not a JSON object");
		}
		if (ret == 0 && f->derive) {
			/* The object came with it: keep it as the object file too. */
			obj_blob = dsfs_render_json(o);
			blob = f->derive(o, c->dialect);
			if (!blob || !obj_blob)
				ret = -ENOMEM;
		}
		if (ret == 0 && !blob && !(blob = dsfs_render_json(o)))
			ret = -ENOMEM;
	}
	json_object_put(o);
	free(url);

	pthread_mutex_lock(&c->lock);
	s->fetching = false;
	if (ret == 0) {
		set_slot(c, r, i, blob, at);
		if (obj_blob && !r->slots[0].fetching)
			set_slot(c, r, 0, obj_blob, at);
		else
			dsfs_blob_unref(obj_blob);
		if (r->parent)
			enforce_bound(c, r->parent);
	} else {
		dsfs_blob_unref(blob);
		dsfs_blob_unref(obj_blob);
		if (ret == -ENOENT && !f->subpath)
			forget_resource(c, r);
	}
	pthread_cond_broadcast(&c->done);
	node_unref(c, r);
	return ret;
}

/* ---- prefetching ahead of a recursive walk --------------------------------- */

static struct dsfs_node *child_collection(struct dsfs_cache *c, struct dsfs_node *r, int idx);

/* Index of resource r in its collection's listing, or SIZE_MAX. */
static size_t item_index(const struct dsfs_node *coll, const struct dsfs_node *r)
{
	size_t lo = 0, hi = coll->nitems;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(r->entry, coll->items[mid]->entry);

		if (cmp == 0)
			return coll->items[mid] == r ? mid : SIZE_MAX;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

static bool walk_done(const struct walk *w)
{
	return w->coll->listed_at != w->listed_at || w->next >= w->coll->nitems;
}

/* One step of a walk: fetch what the walker will want of item r. Lock held; dropped meanwhile. */
static void prefetch_item(struct dsfs_cache *c, struct dsfs_node *r, bool dirs, unsigned files)
{
	size_t i;

	for (i = 0; dirs && i < r->kind->nchildren && r->attached; i++) {
		struct dsfs_node *cc = child_collection(c, r, (int)i);

		if (!cc || (cc->listed && fresh(c, cc->listed_at)) || cc->listing)
			continue;
		node_ref(cc);
		if (ensure_listing(c, cc, true) == 0)
			c->prefetched++;
		node_unref(c, cc);
	}
	for (i = 0; i < r->kind->nfiles && i < WALK_FILES && r->attached; i++) {
		struct slot *sl = &r->slots[i];

		if (!(files & (1u << i)) || sl->fetching || (sl->blob && direct_fresh(c, sl->at)))
			continue;
		if (fetch_slot(c, r, (int)i) == 0 && sl->blob) {
			sl->fresh_for_open = true;
			c->prefetched++;
		}
	}
}

static void *prefetch_worker(void *arg)
{
	struct dsfs_cache *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct walk *w, **pp;
		struct dsfs_node *r = NULL;
		bool dirs = false;
		unsigned files = 0;

		for (pp = &c->walks; (w = *pp);) {
			if (walk_done(w)) {
				*pp = w->next_walk;
				if (w->coll->walk == w)
					w->coll->walk = NULL;
				node_unref(c, w->coll);
				free(w);
				continue;
			}
			if (w->next <= w->coll->walk_pos + WALK_LEAD * c->nworkers) {
				r = node_ref(w->coll->items[w->next++]);
				dirs = w->dirs;
				files = w->files;
				break;
			}
			pp = &w->next_walk;
		}
		if (!r) {
			pthread_cond_wait(&c->work, &c->lock);
			continue;
		}
		prefetch_item(c, r, dirs, files);
		node_unref(c, r);
	}
	pthread_mutex_unlock(&c->lock);
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
static void note_walk(struct dsfs_cache *c, struct dsfs_node *r, int file)
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
	idx = item_index(coll, r);
	if (idx == SIZE_MAX)
		return;
	if (idx > coll->walk_pos) {
		coll->walk_pos = idx;
		if (coll->walk)
			pthread_cond_broadcast(&c->work);
	}
	hits = file < 0 ? &coll->walk_dirs : &coll->walk_files[file];
	last = file < 0 ? &coll->walk_last_dir : &coll->walk_last_file[file];
	if (idx + 1 <= *last)
		return; /* only a walker moving forward counts: going back to one seen is browsing */
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
		w->coll = node_ref(coll);
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
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	pthread_cond_init(&c->work, NULL);
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->root = node_new(c, false, dialect->root, url);
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
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	free(c->workers);
	pthread_mutex_lock(&c->lock);
	while (c->walks) {
		struct walk *w = c->walks;

		c->walks = w->next_walk;
		node_unref(c, w->coll);
		free(w);
	}
	c->root->attached = false;
	node_unref(c, c->root);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->work);
	free(c);
}

void dsfs_cache_root(struct dsfs_cache *c, struct dsfs_loc *out)
{
	pthread_mutex_lock(&c->lock);
	memset(out, 0, sizeof(*out));
	out->type = DSFS_LOC_RESOURCE;
	out->node = node_ref(c->root);
	pthread_mutex_unlock(&c->lock);
}

void dsfs_cache_put(struct dsfs_cache *c, struct dsfs_loc *loc)
{
	if (!loc->node && !loc->target)
		return;
	pthread_mutex_lock(&c->lock);
	node_unref(c, loc->node);
	node_unref(c, loc->target);
	pthread_mutex_unlock(&c->lock);
	memset(loc, 0, sizeof(*loc));
}

static char *unescape(const char *s)
{
	size_t i, o = 0, len = strlen(s);
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned hi, lo;

		if (s[i] == '%' && i + 2 < len && sscanf(s + i + 1, "%1x%1x", &hi, &lo) == 2) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static struct dsfs_node *child_collection(struct dsfs_cache *c, struct dsfs_node *r, int idx)
{
	const struct dsfs_kind *k = r->kind->children[idx];
	struct dsfs_node *coll = r->colls[idx];

	if (coll)
		return coll;
	coll = node_new(c, true, k, collection_url(r->url, r->id, k->segment));
	if (!coll)
		return NULL;
	coll->ino = hash_ino(coll->url, NULL, NULL);
	coll->mtime = r->mtime;
	coll->base = strdup(r->url);
	coll->base_id = r->id ? strdup(r->id) : NULL;
	if (!coll->base || (r->id && !coll->base_id)) {
		node_unref(c, coll);
		return NULL;
	}
	coll->parent = r;
	coll->attached = r->attached;
	r->colls[idx] = coll; /* the tree's reference */
	return coll;
}

/*
 * The resource whose .by-id entry is name: exactly what readdir lists.
 * A shortened entry (over DSFS_NAMES_MAX escaped) is found by comparing.
 */
static struct dsfs_node *find_by_id_entry(struct dsfs_node *coll, const char *name, const char *id)
{
	struct dsfs_node *r = strstr(name, "%~") ? NULL : find_by_id(coll, id);
	char *e;

	for (size_t i = 0; !r && strstr(name, "%~") && i < coll->nitems; i++) {
		e = dsfs_names_by_id(coll->by_id[i]->id);
		if (e && !strcmp(e, name))
			r = coll->by_id[i];
		free(e);
	}
	if (!r)
		return NULL;
	e = dsfs_names_by_id(r->id);
	if (!e || strcmp(e, name))
		r = NULL; /* "%2e" or an empty id: not an entry readdir shows */
	free(e);
	return r;
}

/* Finds a listed resource by entry name (or, in .by-id, by its .by-id entry), listing if needed. */
static int find_listed(struct dsfs_cache *c, struct dsfs_node *coll, const char *name, bool by_id,
		       struct dsfs_node **out)
{
	char *id = by_id ? unescape(name) : NULL;
	int ret = 0, pass;

	if (by_id && !id)
		return -ENOMEM;
	for (pass = 0; pass < 2; pass++) {
		if (coll->listed) {
			*out = by_id ? find_by_id_entry(coll, name, id) : find_by_entry(coll, name);
			if (*out) {
				c->hits++;
				lru_touch(c, coll); /* a listing walked through is in use: evict others first */
				break;
			}
			if (fresh(c, coll->listed_at) || pass == 1) {
				ret = -ENOENT;
				break;
			}
		}
		ret = ensure_listing(c, coll, true);
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
	int ret = 0, idx;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	switch (dir->type) {
	case DSFS_LOC_RESOURCE:
		if ((idx = dsfs_kind_file(n->kind, name)) >= 0) {
			out->type = DSFS_LOC_FILE;
			out->node = node_ref(n);
			out->file = idx;
		} else if (n->kind->nactions && !strcmp(name, CTL_ACTION)) {
			out->type = DSFS_LOC_CTL;
			out->node = node_ref(n);
		} else if (n->kind->is_task && !strcmp(name, TASK_WAIT)) {
			out->type = DSFS_LOC_WAIT;
			out->node = node_ref(n);
		} else if ((idx = dsfs_kind_child(n->kind, name)) >= 0) {
			struct dsfs_node *coll = child_collection(c, n, idx);

			if (!coll) {
				ret = -ENOMEM;
				break;
			}
			out->type = DSFS_LOC_COLLECTION;
			out->node = node_ref(coll);
		} else {
			ret = -ENOENT;
		}
		break;
	case DSFS_LOC_COLLECTION:
		if (!strcmp(name, BYID_DIR)) {
			out->type = DSFS_LOC_BYID;
			out->node = node_ref(n);
			break;
		}
		if (n->kind->create && !strcmp(name, CTL_NEW)) {
			out->type = DSFS_LOC_CTL;
			out->node = node_ref(n);
			break;
		}
		ret = find_listed(c, n, name, false, &found);
		if (ret == 0) {
			out->type = DSFS_LOC_RESOURCE;
			out->node = node_ref(found);
		}
		break;
	case DSFS_LOC_BYID:
		ret = find_listed(c, n, name, true, &found);
		if (ret == 0) {
			out->type = DSFS_LOC_LINK;
			out->node = node_ref(n);
			out->target = node_ref(found);
		}
		break;
	default:
		ret = -ENOTDIR;
	}
	pthread_mutex_unlock(&c->lock);
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

	if (!s->blob || ((f->flags & DSFS_FILE_DIRECT) && !direct_fresh(c, s->at)))
		return false;
	dir_attr(a, DSFS_LOC_FILE, file_ino(r, i), r->mtime);
	a->size = s->blob->len;
	a->direct = f->flags & DSFS_FILE_DIRECT;
	s->reported = a->size;
	return true;
}

int dsfs_cache_getattr(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_attr *out)
{
	struct dsfs_node *n = loc->node;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	switch (loc->type) {
	case DSFS_LOC_RESOURCE:
	case DSFS_LOC_COLLECTION:
		dir_attr(out, loc->type, n->ino, n->mtime);
		out->writable = loc->type == DSFS_LOC_COLLECTION && (n->kind->create || n->kind->deletable);
		break;
	case DSFS_LOC_BYID:
		dir_attr(out, loc->type, hash_ino(n->url, BYID_DIR, NULL), n->mtime);
		break;
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
			note_walk(c, n, loc->file);
		ret = fetch_slot(c, n, loc->file);
		if (ret == 0 && !n->slots[loc->file].blob)
			ret = -ENOENT;
		if (ret == 0) {
			n->slots[loc->file].fresh_for_open = true;
			dir_attr(out, DSFS_LOC_FILE, file_ino(n, loc->file), n->mtime);
			out->size = n->slots[loc->file].blob->len;
			out->direct = n->kind->files[loc->file].flags & DSFS_FILE_DIRECT;
			n->slots[loc->file].reported = out->size;
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dsfs_cache_readdir(struct dsfs_cache *c, const struct dsfs_loc *dir, dsfs_fill_fn fill, void *ctx)
{
	struct dsfs_node *n = dir->node;
	struct dsfs_attr a;
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	switch (dir->type) {
	case DSFS_LOC_RESOURCE:
		for (i = 0; i < n->kind->nfiles && !ret; i++) {
			bool complete = file_attr_cached(c, n, (int)i, &a);

			if (!complete)
				dir_attr(&a, DSFS_LOC_FILE, file_ino(n, (int)i), n->mtime);
			ret = fill(ctx, n->kind->files[i].name, &a, complete);
		}
		if (n->kind->nactions && !ret) {
			dir_attr(&a, DSFS_LOC_CTL, hash_ino(n->url, CTL_ACTION, NULL), n->mtime);
			ret = fill(ctx, CTL_ACTION, &a, false);
		}
		for (i = 0; i < n->kind->nchildren && !ret; i++) {
			const struct dsfs_kind *k = n->kind->children[i];
			char *url = collection_url(n->url, n->id, k->segment);

			if (!url) {
				ret = -ENOMEM;
				break;
			}
			dir_attr(&a, DSFS_LOC_COLLECTION, hash_ino(url, NULL, NULL), n->mtime);
			a.writable = k->create || k->deletable;
			free(url);
			ret = fill(ctx, k->dir_name, &a, true);
		}
		break;
	case DSFS_LOC_COLLECTION:
		if (n->parent && n->parent->attached)
			note_walk(c, n->parent, -1); /* a walker going into each resource's collections */
		ret = ensure_listing(c, n, true);
		if (ret)
			break;
		/* .by-id is reachable, not listed: find, tar and rsync walk the objects once, not a link farm */
		if (n->kind->create) {
			dir_attr(&a, DSFS_LOC_CTL, hash_ino(n->url, CTL_ACTION, NULL), n->mtime);
			ret = fill(ctx, CTL_NEW, &a, false);
		}
		for (i = 0; i < n->nitems && !ret; i++) {
			dir_attr(&a, DSFS_LOC_RESOURCE, n->items[i]->ino, n->items[i]->mtime);
			ret = fill(ctx, n->items[i]->entry, &a, true);
		}
		break;
	case DSFS_LOC_BYID:
		ret = ensure_listing(c, n, true);
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
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dsfs_cache_open(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_blob **content,
		    bool *direct_io, bool *keep_cache)
{
	struct dsfs_node *r = loc->node;
	struct slot *s;
	bool direct;
	int ret = 0;

	*content = NULL;
	*direct_io = *keep_cache = false;
	if (loc->type != DSFS_LOC_FILE)
		return -EISDIR;
	pthread_mutex_lock(&c->lock);
	s = &r->slots[loc->file];
	direct = r->kind->files[loc->file].flags & DSFS_FILE_DIRECT;
	if (s->blob && (direct ? direct_fresh(c, s->at) : fresh(c, s->at))) {
		c->hits++;
	} else if (s->blob && s->fresh_for_open && mono_now() - s->at < 1.0) {
		c->hits++;
	} else {
		ret = fetch_slot(c, r, loc->file);
		if (ret == 0 && !s->blob)
			ret = -ENOENT;
	}
	if (ret == 0) {
		s->fresh_for_open = false;
		*content = dsfs_blob_ref(s->blob);
		*direct_io = direct || s->blob->len != s->reported;
		s->reported = s->blob->len;
		*keep_cache = !*direct_io && s->kept;
		s->kept = !*direct_io;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dsfs_cache_readlink(struct dsfs_cache *c, const struct dsfs_loc *loc, char *buf, size_t len)
{
	if (loc->type != DSFS_LOC_LINK)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	snprintf(buf, len, "../%s", loc->target->entry);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void dsfs_cache_stats(struct dsfs_cache *c, struct dsfs_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->hits = c->hits;
	out->misses = c->misses;
	out->evictions = c->evictions;
	out->prefetched = c->prefetched;
	out->bytes = c->bytes;
	out->nodes = c->nodes;
	out->page_cap_seen = c->page_cap_seen;
	pthread_mutex_unlock(&c->lock);
}

void dsfs_cache_ctl_actions(const struct dsfs_loc *loc, const struct dsfs_action **create,
			    const struct dsfs_action **actions, size_t *nactions)
{
	const struct dsfs_node *n = loc->node;

	*create = NULL;
	*actions = NULL;
	*nactions = 0;
	if (loc->type != DSFS_LOC_CTL)
		return;
	if (n->is_coll) {
		*create = n->kind->create;
	} else {
		*actions = n->kind->actions;
		*nactions = n->kind->nactions;
	}
}

char *dsfs_cache_resource_id(struct dsfs_cache *c, const struct dsfs_loc *loc)
{
	char *id = NULL;

	pthread_mutex_lock(&c->lock);
	if (loc->type == DSFS_LOC_RESOURCE && loc->node->id)
		id = strdup(loc->node->id);
	pthread_mutex_unlock(&c->lock);
	return id;
}

char *dsfs_cache_resource_url(struct dsfs_cache *c, const struct dsfs_loc *loc)
{
	(void)c;
	return loc->node ? strdup(loc->node->url) : NULL; /* url never changes */
}

void dsfs_cache_invalidate(struct dsfs_cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->stale_before = mono_now();
	pthread_mutex_unlock(&c->lock);
}

void dsfs_post_result_clear(struct dsfs_post_result *res)
{
	free(res->body);
	free(res->error);
	free(res->task_id);
	memset(res, 0, sizeof(*res));
}

/* The URL of an action's target template: "{id}" is the acted-on resource's id (for `new`, the owner's). */
static char *target_url(const struct dsfs_loc *loc, const char *tmpl)
{
	const struct dsfs_node *n = loc->node;

	return collection_url("", n->is_coll ? n->base_id : n->id, tmpl);
}

int dsfs_cache_post(struct dsfs_cache *c, const struct dsfs_loc *loc, const struct dsfs_action *action,
		    json_object *body, struct dsfs_post_result *res)
{
	struct dsfs_response resp = { 0 };
	struct dsfs_request req = { .method = action->method ? action->method : "POST" };
	const char *url = loc->node->url;
	char *path;
	int ret;

	memset(res, 0, sizeof(*res));
	if (loc->type != DSFS_LOC_CTL)
		return -EINVAL;
	path = malloc(strlen(url) + (action->verb ? strlen(action->verb) : 0) +
		      (action->subpath ? strlen(action->subpath) : 0) + 16);
	if (!path)
		return -ENOMEM;
	if (action->target) {
		free(path);
		path = target_url(loc, action->target);
		if (!path)
			return -ENOMEM;
	} else if (action->subpath)
		sprintf(path, "%s%s", url, action->subpath);
	else if (action->verb)
		sprintf(path, "%s?action=%s", url, action->verb);
	else
		strcpy(path, url);
	req.path = path;
	if (!action->no_body) {
		req.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		req.body_len = strlen(req.body);
	}
	ret = dsfs_session_call(c->session, &req, &resp, false);
	res->status = resp.status;
	if (resp.body)
		res->body = strdup(resp.body);
	if (resp.status >= 300) {
		char msg[512];

		dsfs_session_error_message(c->dialect, &resp, msg, sizeof(msg));
		res->error = strdup(msg);
	}
	if (ret == 0)
		res->task_id = c->dialect->task_of ? c->dialect->task_of(c->session, action, path, &resp)
						   : dsfs_dialect_task_uri(&resp);
	if (ret == 0 || resp.status)
		dsfs_cache_invalidate(c); /* even a refusal can follow a change made elsewhere */
	dsfs_response_clear(&resp);
	free(path);
	return ret;
}

int dsfs_cache_delete(struct dsfs_cache *c, const struct dsfs_loc *loc, char **task_id)
{
	struct dsfs_response resp = { 0 };
	struct dsfs_request req = { .method = "DELETE", .path = loc->node->url };
	char *target = NULL;
	int ret;

	*task_id = NULL;
	if (loc->type != DSFS_LOC_RESOURCE || !loc->node->kind->deletable)
		return -EPERM;
	if (loc->node->kind->delete_target) {
		target = target_url(loc, loc->node->kind->delete_target);
		if (!target)
			return -ENOMEM;
		req.path = target;
	}
	ret = dsfs_session_call(c->session, &req, &resp, false);
	if (ret == 0)
		*task_id = c->dialect->task_of ? c->dialect->task_of(c->session, NULL, req.path, &resp)
					       : dsfs_dialect_task_uri(&resp);
	dsfs_response_clear(&resp);
	pthread_mutex_lock(&c->lock);
	if (ret == 0 || ret == -ENOENT)
		forget_resource(c, loc->node);
	if (ret == 0)
		c->stale_before = mono_now();
	pthread_mutex_unlock(&c->lock);
	free(target);
	return ret;
}

char *dsfs_cache_task_url(struct dsfs_cache *c, const char *id)
{
	const struct dsfs_kind *root = c->dialect->root;
	char *coll, *url = NULL;

	for (size_t i = 0; i < root->nchildren; i++) {
		if (!root->children[i]->is_task)
			continue;
		coll = collection_url("", NULL, root->children[i]->segment);
		url = coll ? join_url(coll, "", id) : NULL;
		free(coll);
		break;
	}
	return url;
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
	pthread_mutex_lock(&c->lock);
	s = &r->slots[loc->file];
	if (!s->blob || mono_now() - s->at > max_age || s->at <= c->stale_before)
		ret = fetch_slot(c, r, loc->file);
	if (ret == 0 && !s->blob)
		ret = -ENOENT;
	if (ret == 0) {
		*content = dsfs_blob_ref(s->blob);
		s->reported = s->blob->len;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}
