/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel's inodes: which node id the kernel holds for which name in
 * which directory, and how many lookups it will FORGET. Node ids are never
 * reused, so a stale one can only be unknown (ESTALE), never another file.
 * Knows nothing of FUSE; thread-safe.
 */
#ifndef DSFS_NODES_H
#define DSFS_NODES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/blob.h"

#define DSFS_NODES_ROOT 1 /* the root's id; it is never forgotten */

struct dsfs_nodes;

/* An empty table holding the root. NULL on ENOMEM. */
struct dsfs_nodes *dsfs_nodes_new(void);
void dsfs_nodes_free(struct dsfs_nodes *n);

/*
 * Counts one lookup of name in directory parent and returns the node's id
 * (the same id as long as the kernel holds it), or 0 on ENOMEM or when
 * parent is unknown.
 */
uint64_t dsfs_nodes_lookup(struct dsfs_nodes *n, uint64_t parent, const char *name);

/* The kernel forgot nlookup lookups of id; the node goes when it holds none and has no children. */
void dsfs_nodes_forget(struct dsfs_nodes *n, uint64_t id, uint64_t nlookup);

/*
 * The path of id ("/" for the root, "/a/b" below it) in *path (malloc'd,
 * caller frees). 0, -ESTALE for an id the table does not hold, or -ENOMEM.
 */
int dsfs_nodes_path(struct dsfs_nodes *n, uint64_t id, char **path);

/*
 * The path of name in directory parent, as dsfs_nodes_path. -ENAMETOOLONG
 * for a name past NAME_MAX.
 */
int dsfs_nodes_child_path(struct dsfs_nodes *n, uint64_t parent, const char *name, char **path);

/* Whether the node of name in parent exists, and its id (0 when none). */
uint64_t dsfs_nodes_find(struct dsfs_nodes *n, uint64_t parent, const char *name);

/*
 * Records digest as the listing of directory id the kernel is about to be
 * given (and may cache); true when it is the one recorded before, so the
 * kernel's cached listing is still right. A digest of 0 says the kernel
 * must not keep what it has.
 */
bool dsfs_nodes_listed(struct dsfs_nodes *n, uint64_t id, uint64_t digest);

/*
 * Detaches name from parent (after rmdir): the next lookup makes a new
 * node, while the kernel's old one stays valid until forgotten.
 */
void dsfs_nodes_unlink(struct dsfs_nodes *n, uint64_t parent, const char *name);

/*
 * After a rename: the node of name in parent (a file) is now newname in
 * newparent, keeping its id; a node that had that name is detached.
 */
void dsfs_nodes_rename(struct dsfs_nodes *n, uint64_t parent, const char *name, uint64_t newparent,
		       const char *newname);

/* A name the kernel holds: the directory's id and the name in it. */
struct dsfs_nodes_entry {
	uint64_t parent;
	char name[NAME_MAX + 1];
};

/*
 * Up to max of the names the kernel holds that were looked up longest ago
 * and have none held below them, into out, for asking the kernel to let go
 * of them; each counts as looked up now, so names the kernel keeps (in
 * use) are not asked for again at once. Returns how many.
 */
size_t dsfs_nodes_oldest(struct dsfs_nodes *n, struct dsfs_nodes_entry *out, size_t max);

/*
 * Up to max of the names the kernel holds in directory dir that listed()
 * says a listing no longer has, into out (for asking the kernel to drop
 * them); names beginning with '.' (reachable, never listed: .by-id, .where)
 * are left out. listed is called under the table's lock. Returns how many.
 */
size_t dsfs_nodes_held_except(struct dsfs_nodes *n, uint64_t dir, bool (*listed)(void *ctx, const char *name),
			      void *ctx, struct dsfs_nodes_entry *out, size_t max);

/*
 * The kernel's page cache of a file. Its pages are shared by every
 * descriptor of the inode, so the rule "once an open has shown version N,
 * no later open shows an older one" is kept here, per inode: pages are
 * only ever given the newest content any open of the inode handed out
 * (blob versions order them), and an open may let the kernel keep its
 * pages only when they hold exactly what it hands out.
 */
enum dsfs_nodes_pages {
	DSFS_PAGES_KEEP,  /* the pages (if any) hold exactly this content: keep them */
	DSFS_PAGES_STORE, /* this content is the newest: hand it to the pages, then keep them */
	DSFS_PAGES_DROP,  /* an open already showed newer content: the kernel must drop its pages */
};

/*
 * Counts an open of file id; content (may be NULL: content that changes
 * between reads) is what the open hands out, and becomes the newest unless
 * an open already handed out newer. paged: the open goes through the
 * pages (false: it bypasses them, and they are not known to hold anything
 * until an open stores again). Says what the kernel's pages may do.
 * Thread-safe.
 */
enum dsfs_nodes_pages dsfs_nodes_opened(struct dsfs_nodes *n, uint64_t id, struct dsfs_blob *content, bool paged);

/* The close of an open counted by dsfs_nodes_opened; the last one lets go of the content. */
void dsfs_nodes_closed(struct dsfs_nodes *n, uint64_t id);

/*
 * The newest content an open of file id handed out, while it is open (a
 * reference the caller drops), or NULL: what a read that fills the
 * kernel's pages must serve rather than an older descriptor's copy.
 */
struct dsfs_blob *dsfs_nodes_newest(struct dsfs_nodes *n, uint64_t id);

/* Nodes held, and the bytes they take. */
void dsfs_nodes_stats(struct dsfs_nodes *n, size_t *count, size_t *bytes);

#endif
