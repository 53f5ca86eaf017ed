// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Two hash tables over one set of nodes: by id (every kernel request names
 * one) and by parent and name (every LOOKUP). A node keeps its parent
 * alive, so a path can always be rebuilt by walking up; it goes when the
 * kernel has forgotten every lookup of it and it has no children left.
 * Each node also sits in its parent's list of children and in one list by
 * last LOOKUP, which say what to ask the kernel to drop (dsfs_nodes_oldest,
 * dsfs_nodes_held_except). A file's node also says what its pages in the
 * kernel were given (dsfs_nodes_opened): a digest always, the content
 * itself while a descriptor is open. That state is allocated on a file's
 * first open and only then: a walk that never opens (find, ls -l) makes
 * hundreds of thousands of nodes, and each carries one pointer for it.
 */
#include "fuse/nodes.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/locks.h"

#define DIGEST_LEN 32 /* SHA-256: a hostile server cannot make two versions look alike */

struct node {
	uint64_t id;
	uint64_t nlookup;
	struct node *parent; /* NULL for the root */
	bool named;          /* in the name table (not unlinked) */
	uint64_t listed;     /* a directory: digest of the listing the kernel may cache (0: none) */
	struct node *id_next, *name_next;
	struct node *older, *newer;              /* in the table's recency list (not the root) */
	struct node *kids, *next_kid, *prev_kid; /* its children; its siblings */
	struct pages *pages;                     /* a file opened at least once: what its pages were given */
	size_t len;
	char name[];
};

/* A file's pages in the kernel, from its first open until the node goes. */
struct pages {
	unsigned opens;           /* open descriptors counted by dsfs_nodes_opened */
	bool paged;               /* the kernel's pages may hold content: the one digest names */
	struct dsfs_blob *newest; /* while opens: the newest content an open handed out */
	unsigned char digest[DIGEST_LEN];
};

static void pages_free(struct pages *pg)
{
	if (!pg)
		return;
	dsfs_blob_unref(pg->newest);
	free(pg);
}

struct dsfs_nodes {
	struct dsfs_mutex lock;
	struct node **by_id, **by_name;
	size_t buckets, count, bytes;
	uint64_t next_id;
	struct node *root;
	struct node *newest, *oldest; /* looked up last, and longest ago */
};

static size_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

static size_t name_hash(const struct node *parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ parent->id;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
	return id_hash(h);
}

static struct node *find_id(struct dsfs_nodes *n, uint64_t id)
{
	struct node *x = n->by_id[id_hash(id) & (n->buckets - 1)];

	while (x && x->id != id)
		x = x->id_next;
	return x;
}

static struct node **name_slot(struct dsfs_nodes *n, const struct node *parent, const char *name, size_t len)
{
	struct node **p = &n->by_name[name_hash(parent, name, len) & (n->buckets - 1)];

	while (*p && !((*p)->parent == parent && (*p)->len == len && !memcmp((*p)->name, name, len)))
		p = &(*p)->name_next;
	return p;
}

static void insert(struct dsfs_nodes *n, struct node *x)
{
	struct node **b = &n->by_id[id_hash(x->id) & (n->buckets - 1)];

	x->id_next = *b;
	*b = x;
	if (x->named) {
		b = &n->by_name[name_hash(x->parent, x->name, x->len) & (n->buckets - 1)];
		x->name_next = *b;
		*b = x;
	}
}

/* Recency: a node looked up goes to the new end. Lock held. */
static void unlist(struct dsfs_nodes *n, struct node *x)
{
	if (x->older)
		x->older->newer = x->newer;
	else if (n->oldest == x)
		n->oldest = x->newer;
	if (x->newer)
		x->newer->older = x->older;
	else if (n->newest == x)
		n->newest = x->older;
	x->older = x->newer = NULL;
}

static void make_newest(struct dsfs_nodes *n, struct node *x)
{
	unlist(n, x);
	x->older = n->newest;
	if (n->newest)
		n->newest->newer = x;
	else
		n->oldest = x;
	n->newest = x;
}

static void adopt(struct node *parent, struct node *x)
{
	x->parent = parent;
	x->prev_kid = NULL;
	x->next_kid = parent->kids;
	if (parent->kids)
		parent->kids->prev_kid = x;
	parent->kids = x;
}

static void disown(struct node *x)
{
	if (x->prev_kid)
		x->prev_kid->next_kid = x->next_kid;
	else
		x->parent->kids = x->next_kid;
	if (x->next_kid)
		x->next_kid->prev_kid = x->prev_kid;
	x->next_kid = x->prev_kid = NULL;
}

/* Doubles the tables when they fill; on ENOMEM they stay as they are, only slower. */
static void grow(struct dsfs_nodes *n)
{
	size_t old = n->buckets;
	struct node **oid = n->by_id, *next;
	struct node **nid = calloc(old * 2, sizeof(*nid)), **nname = calloc(old * 2, sizeof(*nname));

	if (!nid || !nname) {
		free(nid);
		free(nname);
		return;
	}
	free(n->by_name);
	n->by_id = nid;
	n->by_name = nname;
	n->buckets = old * 2;
	for (size_t i = 0; i < old; i++)
		for (struct node *y = oid[i]; y; y = next) {
			next = y->id_next;
			insert(n, y);
		}
	free(oid);
}

struct dsfs_nodes *dsfs_nodes_new(void)
{
	struct dsfs_nodes *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->buckets = 1024;
	n->by_id = calloc(n->buckets, sizeof(*n->by_id));
	n->by_name = calloc(n->buckets, sizeof(*n->by_name));
	n->root = calloc(1, sizeof(*n->root));
	if (!n->by_id || !n->by_name || !n->root) {
		free(n->by_id);
		free(n->by_name);
		free(n->root);
		free(n);
		return NULL;
	}
	n->root->id = DSFS_NODES_ROOT;
	n->next_id = DSFS_NODES_ROOT + 1;
	insert(n, n->root);
	n->count = 1;
	dsfs_mutex_init(&n->lock, DSFS_LOCK_NODES);
	return n;
}

void dsfs_nodes_free(struct dsfs_nodes *n)
{
	struct node *x, *next;

	if (!n)
		return;
	for (size_t i = 0; i < n->buckets; i++)
		for (x = n->by_id[i]; x; x = next) {
			next = x->id_next;
			pages_free(x->pages);
			free(x);
		}
	free(n->by_id);
	free(n->by_name);
	dsfs_mutex_destroy(&n->lock);
	free(n);
}

static void unname(struct dsfs_nodes *n, struct node *x)
{
	struct node **p;

	if (!x->named)
		return;
	p = name_slot(n, x->parent, x->name, x->len);
	while (*p && *p != x)
		p = &(*p)->name_next;
	if (*p)
		*p = x->name_next;
	x->named = false;
}

/* Removes x, and its parent in turn when x held it last. Lock held. */
static void drop(struct dsfs_nodes *n, struct node *x)
{
	while (x && x != n->root && x->nlookup == 0 && !x->kids) {
		struct node **p = &n->by_id[id_hash(x->id) & (n->buckets - 1)], *parent = x->parent;

		while (*p != x)
			p = &(*p)->id_next;
		*p = x->id_next;
		unname(n, x);
		unlist(n, x);
		disown(x);
		n->count--;
		n->bytes -= sizeof(*x) + x->len + 1 + (x->pages ? sizeof(*x->pages) : 0);
		pages_free(x->pages);
		free(x);
		x = parent;
	}
}

uint64_t dsfs_nodes_lookup(struct dsfs_nodes *n, uint64_t parent_id, const char *name)
{
	size_t len = strlen(name);
	struct node *parent, **slot, *x;
	uint64_t id = 0;

	dsfs_lock(&n->lock);
	parent = find_id(n, parent_id);
	if (!parent)
		goto out;
	slot = name_slot(n, parent, name, len);
	if (*slot) {
		x = *slot;
	} else {
		x = calloc(1, sizeof(*x) + len + 1);
		if (!x)
			goto out;
		memcpy(x->name, name, len);
		x->len = len;
		adopt(parent, x);
		x->named = true;
		x->id = n->next_id++;
		x->name_next = NULL;
		*slot = x; /* the end of its chain */
		x->id_next = n->by_id[id_hash(x->id) & (n->buckets - 1)];
		n->by_id[id_hash(x->id) & (n->buckets - 1)] = x;
		n->count++;
		n->bytes += sizeof(*x) + len + 1;
		if (n->count > n->buckets)
			grow(n);
	}
	x->nlookup++;
	make_newest(n, x);
	id = x->id;
out:
	dsfs_unlock(&n->lock);
	return id;
}

void dsfs_nodes_forget(struct dsfs_nodes *n, uint64_t id, uint64_t nlookup)
{
	struct node *x;

	dsfs_lock(&n->lock);
	x = find_id(n, id);
	if (x && x != n->root) {
		x->nlookup = nlookup < x->nlookup ? x->nlookup - nlookup : 0;
		drop(n, x);
	}
	dsfs_unlock(&n->lock);
}

/* The path of x followed by "/name" when name is non-NULL. Lock held. */
static int build(struct node *x, const char *name, char **out)
{
	size_t len = name ? strlen(name) + 1 : 0, pos;
	char *p;

	for (struct node *y = x; y->parent; y = y->parent)
		len += y->len + 1;
	if (len > PATH_MAX)
		return -ENAMETOOLONG;
	p = malloc(len + 2);
	if (!p)
		return -ENOMEM;
	pos = len;
	p[pos] = '\0';
	if (name) {
		pos -= strlen(name);
		memcpy(p + pos, name, strlen(name));
		p[--pos] = '/';
	}
	for (struct node *y = x; y->parent; y = y->parent) {
		pos -= y->len;
		memcpy(p + pos, y->name, y->len);
		p[--pos] = '/';
	}
	if (len == 0) {
		p[0] = '/';
		p[1] = '\0';
	}
	*out = p;
	return 0;
}

int dsfs_nodes_path(struct dsfs_nodes *n, uint64_t id, char **path)
{
	struct node *x;
	int ret;

	*path = NULL;
	dsfs_lock(&n->lock);
	x = find_id(n, id);
	ret = x ? build(x, NULL, path) : -ESTALE;
	dsfs_unlock(&n->lock);
	return ret;
}

int dsfs_nodes_child_path(struct dsfs_nodes *n, uint64_t parent, const char *name, char **path)
{
	struct node *x;
	int ret;

	*path = NULL;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	dsfs_lock(&n->lock);
	x = find_id(n, parent);
	ret = x ? build(x, name, path) : -ESTALE;
	dsfs_unlock(&n->lock);
	return ret;
}

uint64_t dsfs_nodes_find(struct dsfs_nodes *n, uint64_t parent_id, const char *name)
{
	struct node *parent, *x;
	uint64_t id = 0;

	dsfs_lock(&n->lock);
	parent = find_id(n, parent_id);
	if (parent && (x = *name_slot(n, parent, name, strlen(name))))
		id = x->id;
	dsfs_unlock(&n->lock);
	return id;
}

bool dsfs_nodes_listed(struct dsfs_nodes *n, uint64_t id, uint64_t digest)
{
	struct node *x;
	bool same = false;

	dsfs_lock(&n->lock);
	x = find_id(n, id);
	if (x) {
		same = digest && x->listed == digest;
		x->listed = digest;
	}
	dsfs_unlock(&n->lock);
	return same;
}

size_t dsfs_nodes_oldest(struct dsfs_nodes *n, struct dsfs_nodes_entry *out, size_t max)
{
	size_t got = 0;

	dsfs_lock(&n->lock);
	/* each node once at most: all but the root are in the recency list */
	for (size_t seen = 0, listed = n->count - 1; got < max && seen < listed && n->oldest; seen++) {
		struct node *x = n->oldest;

		make_newest(n, x); /* asked once: one the kernel cannot drop (in use) is not asked again at once */
		/*
		 * Leaves only: a directory's last lookup says nothing of how recently
		 * the names below it were used, and dropping it drops them all; it
		 * becomes a leaf once they are forgotten.
		 */
		if (!x->named || !x->nlookup || x->kids || x->parent->nlookup + (x->parent == n->root) == 0)
			continue;
		out[got].parent = x->parent->id;
		memcpy(out[got].name, x->name, x->len);
		out[got].name[x->len] = '\0';
		got++;
	}
	dsfs_unlock(&n->lock);
	return got;
}

size_t dsfs_nodes_held_except(struct dsfs_nodes *n, uint64_t dir, bool (*listed)(void *ctx, const char *name),
			      void *ctx, struct dsfs_nodes_entry *out, size_t max)
{
	struct node *parent, *x;
	size_t got = 0;

	dsfs_lock(&n->lock);
	parent = find_id(n, dir);
	for (x = parent ? parent->kids : NULL; x && got < max; x = x->next_kid) {
		if (!x->named || !x->nlookup || x->name[0] == '.' || listed(ctx, x->name))
			continue;
		out[got].parent = dir;
		memcpy(out[got].name, x->name, x->len + 1);
		got++;
	}
	dsfs_unlock(&n->lock);
	return got;
}

void dsfs_nodes_unlink(struct dsfs_nodes *n, uint64_t parent_id, const char *name)
{
	struct node *parent, *x;

	dsfs_lock(&n->lock);
	parent = find_id(n, parent_id);
	if (parent && (x = *name_slot(n, parent, name, strlen(name))))
		unname(n, x);
	dsfs_unlock(&n->lock);
}

void dsfs_nodes_rename(struct dsfs_nodes *n, uint64_t parent_id, const char *name, uint64_t newparent_id,
		       const char *newname)
{
	struct node *parent, *newparent, *x, *y, *moved, **p;
	size_t len = strlen(newname);

	dsfs_lock(&n->lock);
	parent = find_id(n, parent_id);
	newparent = find_id(n, newparent_id);
	x = parent ? *name_slot(n, parent, name, strlen(name)) : NULL;
	if (!x || !newparent)
		goto out;
	if ((y = *name_slot(n, newparent, newname, len)) && y != x)
		unname(n, y); /* the replaced file: its open descriptors live on, unnamed */
	unname(n, x);
	if (x->kids || !(moved = malloc(sizeof(*x) + len + 1)))
		goto out; /* a directory is never renamed here; on ENOMEM the next lookup makes a new node */
	/* x's id stays (the kernel's inode), at its new name */
	for (p = &n->by_id[id_hash(x->id) & (n->buckets - 1)]; *p != x; p = &(*p)->id_next)
		;
	*p = x->id_next;
	unlist(n, x);
	disown(x);
	*moved = *x;
	memcpy(moved->name, newname, len + 1);
	moved->len = len;
	moved->named = true;
	adopt(newparent, moved);
	n->bytes += len - x->len;
	free(x);
	insert(n, moved);
	make_newest(n, moved);
out:
	dsfs_unlock(&n->lock);
}

static bool digest_of(const struct dsfs_blob *b, unsigned char *out)
{
	unsigned int len = 0;

	return EVP_Digest(b->data, b->len, out, &len, EVP_sha256(), NULL) == 1 && len == DIGEST_LEN;
}

enum dsfs_nodes_pages dsfs_nodes_opened(struct dsfs_nodes *n, uint64_t id, struct dsfs_blob *content, bool paged)
{
	enum dsfs_nodes_pages verdict = DSFS_PAGES_DROP;
	unsigned char d[DIGEST_LEN];
	bool digested = content && paged && digest_of(content, d);
	struct pages *pg;
	struct node *x;

	dsfs_lock(&n->lock);
	x = find_id(n, id);
	if (!x)
		goto out;
	if (!x->pages) {
		/* without it the open is counted nowhere: the kernel drops what it holds */
		if (!(x->pages = calloc(1, sizeof(*x->pages))))
			goto out;
		n->bytes += sizeof(*x->pages);
	}
	pg = x->pages;
	pg->opens++;
	if (!content)
		goto out;
	if (pg->newest && pg->newest->version > content->version) {
		pg->paged = false; /* a concurrent open showed newer bytes: neither may stay */
		goto out;
	}
	dsfs_blob_unref(pg->newest);
	pg->newest = dsfs_blob_ref(content);
	if (!digested) {
		pg->paged = false;
		goto out;
	}
	verdict = pg->paged && !memcmp(pg->digest, d, DIGEST_LEN) ? DSFS_PAGES_KEEP : DSFS_PAGES_STORE;
	memcpy(pg->digest, d, DIGEST_LEN);
	pg->paged = true;
out:
	dsfs_unlock(&n->lock);
	return verdict;
}

void dsfs_nodes_closed(struct dsfs_nodes *n, uint64_t id)
{
	struct dsfs_blob *old = NULL;
	struct node *x;

	dsfs_lock(&n->lock);
	x = find_id(n, id);
	if (x && x->pages && x->pages->opens && --x->pages->opens == 0) {
		old = x->pages->newest; /* the digest stays: it says what the pages hold */
		x->pages->newest = NULL;
	}
	dsfs_unlock(&n->lock);
	dsfs_blob_unref(old);
}

struct dsfs_blob *dsfs_nodes_newest(struct dsfs_nodes *n, uint64_t id)
{
	struct dsfs_blob *b = NULL;
	struct node *x;

	dsfs_lock(&n->lock);
	x = find_id(n, id);
	if (x && x->pages)
		b = dsfs_blob_ref(x->pages->newest);
	dsfs_unlock(&n->lock);
	return b;
}

void dsfs_nodes_stats(struct dsfs_nodes *n, size_t *count, size_t *bytes)
{
	dsfs_lock(&n->lock);
	*count = n->count;
	*bytes = n->bytes + 2 * n->buckets * sizeof(struct node *);
	dsfs_unlock(&n->lock);
}
