/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resource cache: a tree of nodes (the root, collections, resources)
 * built from the dialect's tables and filled from list and GET answers,
 * with entry names, stable inode numbers, freshness (cache_ttl) and a
 * memory bound. Each listing renders every object it received once, so
 * `ls -l` and a following `cat` cost no further request. Thread-safe: one
 * lock guards the tree and is never held across a request; concurrent
 * misses on the same thing wait for one fetch rather than sending another.
 */
#ifndef DSFS_CACHE_H
#define DSFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/blob.h"
#include "dialect/dialect.h"
#include "net/session.h"

struct dsfs_cache;
struct dsfs_node;

struct dsfs_cache_opts {
	double ttl;         /* seconds a fetched answer stays fresh; 0 reads through on every open */
	size_t max_bytes;   /* memory bound of cached content and nodes; 0 = unbounded */
	unsigned page_size; /* items asked for per list request */
	unsigned prefetch;  /* workers that fetch ahead of a recursive walk (0: none) */
	bool dry_run;       /* changes (POST, PUT, DELETE) are described in their result, never sent */
};

/* What a path names. */
enum dsfs_loc_type {
	DSFS_LOC_RESOURCE,   /* a resource directory (the root is one) */
	DSFS_LOC_COLLECTION, /* a directory listing resources of one kind */
	DSFS_LOC_FILE,       /* a file of a resource */
	DSFS_LOC_BYID,       /* a collection's .by-id directory */
	DSFS_LOC_LINK,       /* a symlink in .by-id */
	DSFS_LOC_CTL,        /* a control file: `action` of a resource, `new` of a collection */
	DSFS_LOC_WAIT,       /* a task's hidden `wait` file */
	DSFS_LOC_WHERE_DIR,  /* a collection's .where directory (of a filtered view too) */
	DSFS_LOC_WHERE,      /* .where/<condition>: the collection's entries that meet where */
	DSFS_LOC_COUNT,      /* a collection's .count file (of a filtered view too) */
};

/* A located entry. Holds references: release with dsfs_cache_put(). */
struct dsfs_loc {
	enum dsfs_loc_type type;
	struct dsfs_node *node;   /* the resource (RESOURCE, FILE) or collection (COLLECTION, BYID, LINK) */
	struct dsfs_node *target; /* LINK: the resource it points to */
	int file;                 /* FILE: index into the kind's files */
	char *where;              /* WHERE_DIR, WHERE, COUNT: the conditions so far, '/'-separated, or NULL (owned) */
};

struct dsfs_attr {
	enum dsfs_loc_type type;
	uint64_t ino;
	time_t mtime;
	size_t size;
	bool direct;   /* FILE: content may change between reads */
	bool writable; /* directory: mkdir (a collection with `new`) or rmdir of entries (deletable kind) act in it */
	bool editable; /* FILE: an object file an edit may change (dsfs_cache_editable); RESOURCE: it has one */
};

struct dsfs_cache_stats {
	unsigned long hits, misses, evictions, prefetched;
	size_t bytes, nodes;
	unsigned long page_cap_seen;
};

/* A cache over session (borrowed) for dialect. NULL on ENOMEM. */
struct dsfs_cache *dsfs_cache_new(const struct dsfs_dialect *dialect, struct dsfs_session *session,
				  const struct dsfs_cache_opts *opts);

/* Frees the cache; every location must have been put. NULL does nothing. */
void dsfs_cache_free(struct dsfs_cache *c);

/* The root directory. Never fails. */
void dsfs_cache_root(struct dsfs_cache *c, struct dsfs_loc *out);

/*
 * The entry name inside directory dir. May list dir's collection when the
 * name is not known yet. 0 or a negative errno (failures recorded).
 */
int dsfs_cache_lookup(struct dsfs_cache *c, const struct dsfs_loc *dir, const char *name, struct dsfs_loc *out);

/* Releases a location's references; a zeroed location is fine. */
void dsfs_cache_put(struct dsfs_cache *c, struct dsfs_loc *loc);

/*
 * Attributes of loc. A file never fetched is fetched once to know its size.
 * -ESTALE (here and from dsfs_cache_open, dsfs_cache_shown): the object
 * came back under another name than loc's entry, whose listing was taken
 * again: resolve the path anew.
 */
int dsfs_cache_getattr(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_attr *out);

/*
 * Calls fill for every entry of directory dir, listing it first when the
 * listing is missing or stale. complete is false for a file whose size
 * would cost a request (attr then holds only its type and inode number).
 * fill runs under the cache lock and must not call back into the cache; a
 * non-zero return stops the walk.
 */
typedef int (*dsfs_fill_fn)(void *ctx, const char *name, const struct dsfs_attr *attr, bool complete);
int dsfs_cache_readdir(struct dsfs_cache *c, const struct dsfs_loc *dir, dsfs_fill_fn fill, void *ctx);

/* What the kernel's page cache may do with an opened file's content. */
enum dsfs_caching {
	DSFS_CACHING_DIRECT,  /* bypass it: the content changes between reads */
	DSFS_CACHING_RESIZED, /* bypass it: the size the kernel was last told is no longer the content's */
	DSFS_CACHING_PAGED,   /* cache it (whether its pages already hold it is the kernel glue's to tell) */
};

/*
 * The content of file loc for a new open handle, fetched unless fresh.
 * *content gets a reference the caller drops; its version orders it among
 * every content the cache took in. *caching says how the kernel may cache
 * it: RESIZED when a refetch changed its size since getattr last reported one.
 */
int dsfs_cache_open(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_blob **content,
		    enum dsfs_caching *caching);

/*
 * The content of file loc as dsfs last showed it (what an editor read),
 * fetched only when it holds none: the base an edit is compared with.
 */
int dsfs_cache_shown(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_blob **content);

/* The target of symlink loc, NUL-terminated in buf. */
int dsfs_cache_readlink(struct dsfs_cache *c, const struct dsfs_loc *loc, char *buf, size_t len);

/* The action table of control file loc: the resource's verbs, or the collection's `new`. */
void dsfs_cache_ctl_actions(const struct dsfs_loc *loc, const struct dsfs_action **create,
			    const struct dsfs_action **actions, size_t *nactions);

/* The id of resource loc (malloc'd, caller frees), or NULL on ENOMEM or when loc is not a resource. */
char *dsfs_cache_resource_id(struct dsfs_cache *c, const struct dsfs_loc *loc);

/* The API path of resource loc (malloc'd), or NULL. */
char *dsfs_cache_resource_url(struct dsfs_cache *c, const struct dsfs_loc *loc);

/* What an action answered. */
struct dsfs_post_result {
	long status;   /* HTTP status, 0 when none arrived */
	char *body;    /* answer body (malloc'd) or NULL */
	char *task_id; /* the task an asynchronous action started (malloc'd) or NULL */
	char *error;   /* a refusal's message, from the dialect's error fields (malloc'd) or NULL */
	/*
	 * -o dry_run: the request that would have been sent, {"method", "url",
	 * "body"} (a value of a field named like a secret hidden), and nothing
	 * was sent; NULL otherwise. Owned.
	 */
	json_object *request;
};

/*
 * Sends action (with body, unless the action takes none) for control file
 * loc: a `new` POSTs to the collection, a verb POSTs to the resource with
 * ?action=VERB. Sent at most once. Any success marks the whole cache stale
 * so the next listing shows the effect. 0 or a negative errno (recorded).
 * res is filled either way; free it with dsfs_post_result_clear.
 */
int dsfs_cache_post(struct dsfs_cache *c, const struct dsfs_loc *loc, const struct dsfs_action *action,
		    json_object *body, struct dsfs_post_result *res);
void dsfs_post_result_clear(struct dsfs_post_result *res);

/* True when file loc is an object file an edit may change (its kind has an edit table). */
bool dsfs_cache_editable(const struct dsfs_loc *loc);

/* The object file of resource dir when an edit may change it (references held): 0, or -EPERM. */
int dsfs_cache_edit_target(struct dsfs_cache *c, const struct dsfs_loc *dir, struct dsfs_loc *out);

/*
 * Edits object file loc from base (the bytes the writer started from) to
 * text (len bytes): asks the server for the object as it is now, then
 * sends one PUT of the fields that changed (src/format/edit.h), or nothing when
 * none did. A refusal sends nothing: -EINVAL (invalid JSON, a field the API
 * does not let one edit, a wrong type) or -EBUSY (an editable field changed
 * on the server since it was read), the reason recorded and in res->error.
 * before_put (when set) may still refuse a PUT there is to send: its
 * -errno is returned, nothing sent. A PUT that reached the server marks
 * the cache stale. res as for dsfs_cache_post.
 */
int dsfs_cache_edit(struct dsfs_cache *c, const struct dsfs_loc *loc, const struct dsfs_blob *base, const char *text,
		    size_t len, int (*before_put)(void *ctx), void *ctx, struct dsfs_post_result *res);

/*
 * Sends DELETE for resource loc (once); on success it leaves the tree. When
 * the server answers 202, res->task_id is the task doing it. With dry_run,
 * res->request says what would have been sent, and the tree keeps it.
 * res is filled either way; free it with dsfs_post_result_clear.
 */
int dsfs_cache_delete(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_post_result *res);

/* Whether task id has ended (in a succeeded or failed state, or gone), asked of the server. 0 or -errno. */
int dsfs_cache_task_ended(struct dsfs_cache *c, const char *id, bool *ended);

/* The API path of task id (malloc'd), or NULL when the dialect has no tasks or on ENOMEM. */
char *dsfs_cache_task_url(struct dsfs_cache *c, const char *id);

/* Marks everything cached as stale: the next use of anything fetches it again. */
void dsfs_cache_invalidate(struct dsfs_cache *c);

/*
 * The current content of file loc, fetched if older than max_age seconds:
 * how a reader of a read-through file sees what was added since it opened.
 */
int dsfs_cache_reread(struct dsfs_cache *c, const struct dsfs_loc *loc, double max_age, struct dsfs_blob **content);

/* What statfs reports: byte counts, and the API's own unit for them. */
struct dsfs_space {
	uint64_t total, free; /* bytes */
	unsigned long unit;   /* bytes per unit of the API's figures (1 when parts differ); 0: nothing known */
	bool has_total, has_free;
};

/* Adds a part's space to s: byte counts add up; a unit the parts do not share becomes 1. */
void dsfs_space_add(struct dsfs_space *s, const struct dsfs_space *add);

/*
 * The capacity of the nearest thing at or above loc that has one: a pool's
 * own figures, a server's sum of its pools, the root's sum over everything
 * (the dialect's capacity tables). Costs listings the cache holds within
 * cache_ttl, and fetches them otherwise. A zeroed *out when nothing states
 * a capacity.
 */
int dsfs_cache_space(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_space *out);

/* Counters for .dsfs/stats. */
void dsfs_cache_stats(struct dsfs_cache *c, struct dsfs_cache_stats *out);

#endif
