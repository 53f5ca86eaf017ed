/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache's insides, shared by its files and by nothing else. The files,
 * from the bottom up; each uses only those below it:
 *   cache/lookup.c, cache/pages.c  searches of a listing by id, entry and
 *                                  position, URL joins; the paging guard
 *   cache/store.c     the node tree, references, accounting, the LRU and
 *                     the memory bound (it sends no request)
 *   cache/listing.c   GETs, every page of a list, listings installed into
 *                     the tree, lists the server filters
 *   cache/fetch.c     one file of a resource
 *   cache/prefetch.c, cache/query.c, cache/space.c, cache/actions.c
 *                     running ahead of walkers; .where and .count; statfs;
 *                     POST, PUT and DELETE
 *   cache/cache.c     the entry points that resolve names and report
 *                     attributes, listings and contents
 * Every function here expects c->lock held unless it says otherwise; one
 * that sends a request drops it while the request runs (it says so).
 */
#ifndef DSFS_CACHE_INT_H
#define DSFS_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "cache/cache.h"
#include "util/clock.h"
#include "util/locks.h"

#define BYID_DIR ".by-id"

/* Prefetching starts once a walker has gone into this many resources of a directory ... */
#define WALK_THRESHOLD 3
/* ... and stays at most this many resources ahead of it per worker. */
#define WALK_LEAD 8
/* File slots a walk can prefetch (kinds have fewer files than this). */
#define WALK_FILES 8
/*
 * Bytes a node costs beyond what it holds: malloc's headers for its strings
 * and arrays (measured with libfuse's high-level node table beside it: RSS
 * grew about 2.2 times what the cache itself holds; the FUSE glue's own
 * node table, fuse/nodes.c, is not counted here).
 */
#define NODE_OVERHEAD 512

#define WHERE_DIR ".where"
#define COUNT_FILE ".count"
#define CTL_NEW "new"
#define CTL_ACTION "action"
#define TASK_WAIT "wait"


struct slot {
	struct dsfs_blob *blob;
	double at;    /* monotonic time of the fetch */
	uint64_t sum; /* dsfs_blob_sum of the content, once summed (it outlives a drop for memory) */
	/* 32 bits each, so that a slot costs no more than it did: answers are far below 4 GiB (max_body) */
	uint32_t reported; /* size last reported by getattr */
	uint32_t dropped_len;
	/*
	 * The file's mtime, seconds since the epoch (to 2106): when its content
	 * last changed (the object's update time where the API gives one, else
	 * when dsfs took in those bytes), told by the content's sum.
	 */
	uint32_t mtime;
	bool fetching;
	bool fresh_for_open; /* fetched by getattr: the next open may use it */
	bool dropped;        /* blob dropped for memory (cache_drop_content): dropped_len bytes, fetched at `at` */
	bool summed;         /* sum and mtime are set */
};

struct dsfs_node {
	int refs;
	bool is_coll;
	bool attached;
	/*
	 * collection: listed by the prefetcher for a walker that had not
	 * reached it yet; the bound keeps it until the walker gets there
	 * (cache_walk_ahead), so no directory is listed twice by one walk
	 */
	bool ahead;
	const struct dsfs_kind *kind; /* resource: its kind; collection: the kind listed */
	struct dsfs_node *parent;     /* valid while attached */
	char *url;                    /* resource URL, or collection list URL */
	char *base, *base_id;         /* collection: its resource's URL and id (where other sources hang) */
	uint64_t ino;
	time_t mtime;
	size_t bytes; /* accounted to the cache */

	/* resource */
	char *id, *entry;
	char *name;         /* the name the listing gave it (before entry escaping), or NULL; == entry when the same */
	struct slot *slots; /* kind->nfiles */
	struct dsfs_node **colls; /* kind->nchildren, created on first lookup */

	/* collection */
	struct dsfs_node **items; /* sorted by entry */
	struct dsfs_node **by_id; /* sorted by id */
	size_t nitems;
	double listed_at;
	bool listed, listing;
	long count; /* the server's count of the items (.count), when count_at */
	double count_at;
	/*
	 * The LRU of what the memory bound may drop: a collection while it
	 * holds a listing (dropping it forgets the listing), a resource while
	 * it holds content a GET can bring back (dropping it forgets only that
	 * content, so a listing larger than the bound stays walkable).
	 */
	struct dsfs_node *lru_prev, *lru_next;

	/* collection: signs of a recursive walk through its resources (see note_walk) */
	double walk_at;                                   /* the listing these counts are about */
	size_t walk_pos;                                  /* furthest item the walker has reached */
	unsigned walk_dirs;                               /* distinct resources whose directory was listed */
	unsigned walk_files[WALK_FILES];                  /* distinct resources whose file i was fetched */
	size_t walk_last_dir, walk_last_file[WALK_FILES]; /* index counted last, +1 (0: none yet) */
	struct walk *walk;                                /* the prefetch under way, or NULL */
};

/* A prefetch that runs ahead of a walker through one collection. */
struct walk {
	struct dsfs_node *coll; /* referenced */
	double listed_at;       /* the listing walked; another one ends the walk */
	size_t next;            /* next item to prefetch */
	bool dirs;              /* the items' child listings */
	unsigned files;         /* bit i: the items' file i */
	unsigned back;          /* steps the walker took back in the listing */
	struct walk *next_walk;
};

struct dsfs_cache {
	const struct dsfs_dialect *dialect;
	struct dsfs_session *session;
	struct dsfs_cache_opts o;
	struct dsfs_mutex lock;
	pthread_cond_t done; /* broadcast when any fetch ends */
	struct dsfs_node *root;
	struct dsfs_node lru; /* sentinel: most recent after it */
	size_t bytes, nodes;
	unsigned long hits, misses, evictions;
	unsigned long page_cap_seen; /* largest page any list answered */
	double stale_before;         /* anything fetched before this is stale (set by actions) */

	struct walk *walks;  /* prefetches under way */
	pthread_cond_t work; /* a walk started or a walker moved on */
	pthread_t *workers;
	unsigned nworkers;
	bool stopping;
	unsigned long prefetched;
};
static inline uint64_t hash_ino(const char *a, const char *b, const char *d)
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

static inline bool fresh(const struct dsfs_cache *c, double at)
{
	return at > 0 && at > c->stale_before && dsfs_clock_now() - at < c->o.ttl;
}

/*
 * Read-through files (tasks, split status) show the server's state "now":
 * an answer at most this old still counts, so the files of one task opened
 * together, or a crawler right behind a listing, cost one request, not one
 * per open.
 */
static inline double direct_window(const struct dsfs_cache *c)
{
	return c->o.ttl < 1.0 ? c->o.ttl : 1.0;
}

static inline bool direct_fresh(const struct dsfs_cache *c, double at)
{
	return at > 0 && at > c->stale_before && dsfs_clock_now() - at < direct_window(c);
}

/* ---- across the cache's files (cache_ prefix: internal), by the file that has them ---- */

/* ---- cache/store.c: nodes, references, accounting, the LRU and the bound --- */

void cache_account(struct dsfs_cache *c, struct dsfs_node *n, ssize_t delta);

/* A node for url (taken), with one reference held by the caller; NULL on ENOMEM. */
struct dsfs_node *cache_node_new(struct dsfs_cache *c, bool is_coll, const struct dsfs_kind *kind, char *url);

/* Frees resource n's entry and name (which may be one string), leaving both NULL. */
static inline void cache_free_names(struct dsfs_node *n)
{
	if (n->name != n->entry)
		free(n->name);
	free(n->entry);
	n->name = n->entry = NULL;
}

/* The bytes resource n's entry and name take. */
static inline size_t cache_names_cost(const struct dsfs_node *n)
{
	return (n->entry ? strlen(n->entry) + 1 : 0) + (n->name && n->name != n->entry ? strlen(n->name) + 1 : 0);
}

/* Marks collection n as the most recently used listing, or resource n's content as the most recently used. */
void cache_lru_touch(struct dsfs_cache *c, struct dsfs_node *n);

/*
 * True when file i of resource r can be fetched again on its own (a GET
 * of its own URL or of the object), so its content may be dropped for
 * memory while r stays listed. Content only a listing brings goes with
 * the listing.
 */
bool cache_slot_droppable(const struct dsfs_node *r, int i);

/*
 * The bytes a listed resource of kind k costs in the tree without its
 * content (node, slots, names, its place in the listing): what the
 * listing itself takes when its objects are dropped.
 */
size_t cache_index_cost(const struct dsfs_kind *k);

/*
 * Puts blob b (taken), fetched at at, in file slot i of n, accounting its
 * bytes. updated: when the object says it last changed (its kind's
 * update_field), or 0; the slot's mtime moves only when b's bytes differ
 * from what the slot held (cache_slot_took).
 */
void cache_set_slot(struct dsfs_cache *c, struct dsfs_node *n, int i, struct dsfs_blob *b, double at, time_t updated);

/*
 * Notes that slot s now holds content summing to sum (dsfs_blob_sum):
 * when it differs from the last, the file's mtime becomes updated where
 * that is later than the mtime it had, else now (or, within the same
 * second, a second later: an mtime moves with every new content).
 */
void cache_slot_took(struct slot *s, uint64_t sum, time_t updated);

/* Takes n out of the tree and drops the tree's reference. */
void cache_detach(struct dsfs_cache *c, struct dsfs_node *n);

/* Forgets a collection's listing and detaches every resource in it. */
void cache_drop_listing(struct dsfs_cache *c, struct dsfs_node *coll);

/* Drops a reference to n; the last one frees it. */
void cache_node_unref(struct dsfs_cache *c, struct dsfs_node *n);

/* Takes a reference to n; returns n. */
struct dsfs_node *cache_node_ref(struct dsfs_node *n);

/*
 * Drops the least recently used listings and contents until the cache
 * fits its bound. keep (a collection or resource) and the listings above
 * it stay.
 */
void cache_enforce_bound(struct dsfs_cache *c, struct dsfs_node *keep);

/* Collection idx of resource r, made on first use; NULL on ENOMEM. */
struct dsfs_node *cache_child_collection(struct dsfs_cache *c, struct dsfs_node *r, int idx);

/*
 * Whether collection idx of resource r is shown: its kind's shown_if, asked
 * of r's object at hand, and no collection of the same name before it shown.
 */
bool cache_child_shown(const struct dsfs_node *r, int idx);

/* Removes one resource from its collection's listing (it has vanished on the server). */
void cache_forget_resource(struct dsfs_cache *c, struct dsfs_node *r);

/* ---- cache/lookup.c: searches of a listing, URLs -------------------------- */

/* The resource of collection coll with id id, or NULL (binary search of the listing). */
struct dsfs_node *cache_find_by_id(struct dsfs_node *coll, const char *id);

/* The resource of collection coll with entry name entry, or NULL. */
struct dsfs_node *cache_find_by_entry(struct dsfs_node *coll, const char *entry);

/*
 * The resource of coll's listing whose .by-id entry is name (id: name
 * unescaped): exactly what readdir lists; a shortened entry is found by
 * comparing. NULL when none.
 */
struct dsfs_node *cache_find_by_id_entry(struct dsfs_node *coll, const char *name, const char *id);

/*
 * base + "/" + the escaped id (or segment). A list URL's own query (a filter,
 * as in "/backup?filter=appid:%3D7") is not part of its objects' URLs.
 */
char *cache_join_url(const char *base, const char *segment, const char *id);

/*
 * URL of the collection of segment under the resource at base (with id
 * base_id). A segment starting with '/' hangs off the API root instead, with
 * "{id}" standing for the resource's id (DSCC volume sets, say).
 */
char *cache_collection_url(const char *base, const char *base_id, const char *segment);

/* Index of resource r in collection coll's listing (sorted by entry), or SIZE_MAX when r is not in it. */
size_t cache_item_index(const struct dsfs_node *coll, const struct dsfs_node *r);

/* ---- cache/listing.c: GETs, pages, listings, filtered lists --------------- */

/* Records a protocol error of a GET of path (what: what was wrong) and returns -EIO. */
int cache_protocol_error(const char *path, const char *what);

/* GETs path and parses the answer as JSON; *len (when not NULL) gets the answer's size. No lock held. */
int cache_get_json(struct dsfs_cache *c, const char *path, bool anonymous, json_object **out, size_t *len);

/* When object o says it last changed (kind's update_field), or 0 when it does not say. */
time_t cache_updated_of(const struct dsfs_kind *kind, json_object *o);

typedef int (*cache_page_fn)(void *ctx, json_object *array);

/*
 * Asks for every page of the list at url, handing each page's array (key:
 * its member in the answer; NULL: the answer) to fn, within the paging
 * guard of cache/pages.c (id_field and item_cost: what it identifies and
 * counts items by). Pages are kind k's (page_max, unpaged; NULL: a file's
 * list). Called without the lock: it takes it only to note the largest
 * page seen.
 */
int cache_each_page(struct dsfs_cache *c, const char *url, const struct dsfs_kind *k, const char *key,
		    const char *id_field, size_t item_cost, bool anonymous, cache_page_fn fn, void *ctx);

/*
 * The name object o of kind k has: its name_field's text, and, for a kind
 * named by two fields, '=' and its name_value_field's ("env=prod"). NULL
 * when a field is absent or not text (or on ENOMEM). malloc'd.
 */
char *cache_kind_name(const struct dsfs_kind *k, json_object *o);

/*
 * Makes coll's listing present (and fresh, when want_fresh), fetching it if
 * needed. Called with the lock held; drops it while the requests run.
 */
int cache_ensure_listing(struct dsfs_cache *c, struct dsfs_node *coll, bool want_fresh);

/* An entry a filtered list answered (.where), named as the collection's listing names it. */
struct cache_found {
	char *entry;
	uint64_t ino;
	time_t mtime;
	struct dsfs_blob *blob; /* the object */
};
void cache_found_free(struct cache_found *f, size_t n);

/*
 * The items the server lists for coll's URL with query (a filter), in
 * *out (n of them). With named, each gets the entry coll's listing would
 * give it: the objects sharing their names are asked for too (one more
 * filtered list, through the dialect's filter). -ENOTSUP when the server
 * refuses the filter (400) or the names cannot be asked for. Lock held
 * (dropped while asking).
 */
int cache_fetch_filtered(struct dsfs_cache *c, struct dsfs_node *coll, const char *query, bool named,
			 struct cache_found **out, size_t *n);

/* ---- cache/fetch.c: one resource's file ----------------------------------- */

/* True when a walk through collection coll's current listing has been noticed (see note_walk). */
bool cache_walked(const struct dsfs_node *coll);

/*
 * Fetches one file of resource r. Called with the lock held; drops it
 * meanwhile. -ESTALE when the object came back under another name than its
 * entry was made from: it is kept in r, and r's collection was listed
 * again, so a caller that found r by a path resolves the path anew.
 */
int cache_fetch_slot(struct dsfs_cache *c, struct dsfs_node *r, int i);

/* ---- cache/prefetch.c: running ahead of walkers --------------------------- */

/*
 * Notes that the walker went into resource r: listed one of its
 * collections (file < 0) or had file `file` fetched. Once it has done so for WALK_THRESHOLD
 * resources of one listing, workers fetch the same for the resources that
 * follow, a few ahead of it, so a crawl over a distant API waits for
 * several requests at once instead of one after another. A walker that
 * stops early wastes at most the lead. Lock held.
 */
void cache_note_walk(struct dsfs_cache *c, struct dsfs_node *r, int file);

/* True when walk w is over: its listing was replaced, or it has gone past the last item. */
static inline bool cache_walk_done(const struct walk *w)
{
	return w->coll->listed_at != w->listed_at || w->next >= w->coll->nitems;
}

/* ---- cache/query.c: .where and .count ------------------------------------- */

/* where + "/" + cond (either may be NULL), malloc'd; NULL on ENOMEM. */
char *cache_where_join(const char *where, const char *cond);

/*
 * .where and .count of collection n, in a view filtered by where, into out:
 * 1 when name is one of them, else 0 or -ENOMEM.
 */
int cache_query_lookup(struct dsfs_node *n, const char *where, const char *name, struct dsfs_loc *out);

/* 0 when text is one condition of .where ("<field><op><value>"); else -EINVAL (*why says why) or -ENOMEM. */
int cache_where_check(const char *text, const char **why);

/*
 * fill with the entries of coll meeting where, asked of the server (a
 * filtered list) because coll's listing is not fresh; -ENOTSUP when the
 * dialect's filter cannot say it or the server refuses it (the listing
 * answers then). Lock held (dropped while asking).
 */
int cache_where_readdir(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, dsfs_fill_fn fill, void *ctx);

/* True when resource r's object meets every condition of where ('/'-separated; NULL: none). */
bool cache_where_match(const struct dsfs_node *r, const char *where);

/*
 * Whether resource r (referenced by the caller) meets where, in *match:
 * an object dropped for memory is fetched again first (one GET). Lock
 * held (dropped while fetching). 0 or -errno.
 */
int cache_where_meets(struct dsfs_cache *c, struct dsfs_node *r, const char *where, bool *match);

/*
 * The resources of coll's listing that meet where, each referenced (drop
 * with cache_nodes_put), in *out (n of them); objects dropped for memory
 * are fetched again (one GET each). The listing must be present. Lock
 * held (dropped while fetching).
 */
int cache_where_items(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, struct dsfs_node ***out,
		      size_t *n);

/* Drops the references of n nodes and frees the array. */
void cache_nodes_put(struct dsfs_cache *c, struct dsfs_node **nodes, size_t n);

/*
 * How many entries of coll meet where (NULL: all): from a fresh listing,
 * else (with no conditions) from the server's count where the API gives
 * one, else from the listing. Lock held (dropped while asking).
 */
int cache_count(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, long *out);

/* ---- cache/actions.c ------------------------------------------------------ */

/* The URL of an action's target template: "{id}" is the acted-on resource's id (for `new`, the owner's). */
char *cache_target_url(const struct dsfs_loc *loc, const char *tmpl);

#endif
