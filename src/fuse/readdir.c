// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Directories: a listing is taken at opendir (and rewinddir) and handed
 * out in READDIRPLUS pieces with every entry's attributes. The kernel
 * keeps the listing it cached exactly when it is the one dsfs would hand
 * out; the names a changed listing lost are queued for the pruner.
 */
#include "fuse/fuse_int.h"
#include "util/grow.h"
#include "util/locks.h"
#include "util/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A listing taken at opendir (or rewinddir) and handed out in pieces. */
struct dir_entry {
	struct stat st;
	unsigned flags; /* DSFS_FS_COMPLETE: st holds every attribute, not only the type and inode */
	char *name;
};

struct dir {
	struct dir *prev, *next; /* in open_dirs */
	struct dir_entry *e;
	size_t n, cap;
	bool listed;
	bool opened; /* listed at opendir, not yet read: the first read hands that listing out */
};

/*
 * Listings the kernel has not released. It sends RELEASEDIR asynchronously
 * and may still owe some when the mount ends; those are freed then.
 */
static struct dsfs_mutex open_lock = DSFS_MUTEX_INITIALIZER(DSFS_LOCK_FUSE_DIRS);
static struct dir open_dirs = { .prev = &open_dirs, .next = &open_dirs };

static void dir_open(struct dir *d)
{
	dsfs_lock(&open_lock);
	d->next = &open_dirs;
	d->prev = open_dirs.prev;
	d->prev->next = d;
	open_dirs.prev = d;
	dsfs_unlock(&open_lock);
}

static int collect(void *ctx, const char *name, const struct stat *st, unsigned flags)
{
	struct dir *d = ctx;

	if (d->n == d->cap) {
		struct dir_entry *e = dsfs_grow(d->e, &d->cap, d->n + 1, sizeof(*e), 64, 0);

		if (!e)
			return -ENOMEM;
		d->e = e;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].st = *st;
	d->e[d->n].flags = flags;
	dsfs_fuse_own(&d->e[d->n].st);
	d->n++;
	return 0;
}

static void dir_clear(struct dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	d->n = 0;
	d->listed = false;
}

static void dir_free(struct dir *d)
{
	if (!d)
		return;
	if (d->next) {
		dsfs_lock(&open_lock);
		d->prev->next = d->next;
		d->next->prev = d->prev;
		dsfs_unlock(&open_lock);
	}
	dir_clear(d);
	free(d->e);
	free(d);
}

/*
 * FNV-1a over a listing as the kernel caches it (names, inode numbers and
 * types, in order) and the attributes a READDIRPLUS of it would give: a
 * listing whose entries changed size is handed out again. Never 0.
 */
static uint64_t listing_digest(const struct dir *d)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < d->n; i++) {
		const struct dir_entry *x = &d->e[i];
		uint64_t words[5] = { (uint64_t)x->st.st_ino, (uint64_t)x->st.st_mode, (uint64_t)x->st.st_size,
				      (uint64_t)x->st.st_mtime, x->flags };
		const unsigned char *p = (const unsigned char *)x->name;

		for (; *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
		p = (const unsigned char *)words;
		for (size_t j = 0; j <= sizeof(words); j++) /* the words and a separator */
			h = (h ^ (j < sizeof(words) ? p[j] : 0xff)) * 1099511628211ULL;
	}
	return h ? h : 1;
}

/* Names one listing may drop at once; more lost in one go wait for their entry timeout. */
#define LOST_AT_ONCE 512

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
	char **v;
	size_t n;
};

static bool listed(void *ctx, const char *name)
{
	const struct names *s = ctx;

	return bsearch(&name, s->v, s->n, sizeof(*s->v), name_cmp) != NULL;
}

/*
 * A listing that changed may have lost names the kernel still holds (it
 * would go on finding them until their entry timeout, up to cache_ttl):
 * they are queued for the pruner thread to drop.
 */
static void drop_lost(fuse_ino_t ino, const struct dir *d)
{
	struct dsfs_nodes_entry *out = malloc(LOST_AT_ONCE * sizeof(*out));
	struct names s = { malloc((d->n ? d->n : 1) * sizeof(char *)), d->n };
	size_t got;

	if (out && s.v) { /* else the names expire by themselves */
		for (size_t i = 0; i < d->n; i++)
			s.v[i] = d->e[i].name;
		qsort(s.v, s.n, sizeof(*s.v), name_cmp);
		got = dsfs_nodes_held_except(dsfs_fuse.nodes, ino, listed, &s, out, LOST_AT_ONCE);
		if (got)
			dsfs_fuse_prune_lost(out, got);
	}
	free(out);
	free(s.v);
}

static int list(struct dsfs_fuse_op *o, struct dir *d)
{
	char *path;
	int ret;

	dir_clear(d);
	ret = dsfs_nodes_path(dsfs_fuse.nodes, o->ino, &path);
	if (!ret)
		ret = dsfs_estate_readdir(dsfs_fuse.e, path, collect, d);
	free(path);
	d->listed = ret == 0;
	return ret;
}

/*
 * A directory is listed when it is opened, so that the kernel may keep
 * the listing it cached (cache_readdir) exactly when dsfs would hand out
 * the same one: a repeated walk then reads no directory at all, while a
 * listing that changed (or went stale and was fetched again) is handed
 * out afresh.
 */
void dsfs_fuse_opendir(struct dsfs_fuse_op *o)
{
	struct dir *d = calloc(1, sizeof(*d));
	int ret = d ? list(o, d) : -ENOMEM;

	if (ret) {
		dir_free(d);
		fuse_reply_err(o->req, -ret);
		return;
	}
	d->opened = true;
	dir_open(d);
	o->fi.fh = (uint64_t)(uintptr_t)d;
	o->fi.cache_readdir = 1;
	o->fi.keep_cache = dsfs_nodes_listed(dsfs_fuse.nodes, o->ino, listing_digest(d));
	if (!o->fi.keep_cache)
		drop_lost(o->ino, d);
	if (fuse_reply_open(o->req, &o->fi) != 0)
		dir_free(d);
}

void dsfs_fuse_readdirplus(struct dsfs_fuse_op *o)
{
	struct dir *d = (struct dir *)(uintptr_t)o->fi.fh;
	char *buf;
	size_t used = 0;
	int ret = 0;

	if ((o->off == 0 && !d->opened) || !d->listed) { /* rewinddir: list afresh */
		ret = list(o, d);
		if (ret) {
			fuse_reply_err(o->req, -ret);
			return;
		}
		/* what the kernel caches from here on is this listing */
		if (!dsfs_nodes_listed(dsfs_fuse.nodes, o->ino, listing_digest(d)))
			drop_lost(o->ino, d);
	}
	d->opened = false;
	buf = malloc(o->size);
	if (!buf) {
		fuse_reply_err(o->req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)o->off; i < d->n + 2; i++) {
		struct fuse_entry_param e = { 0 };
		const char *name;
		size_t need;

		if (i < 2) {
			name = i ? ".." : ".";
			e.attr.st_mode = S_IFDIR;
		} else {
			name = d->e[i - 2].name;
			e.attr = d->e[i - 2].st;
		}
		need = fuse_add_direntry_plus(o->req, NULL, 0, name, &e, (off_t)i + 1);
		if (need > o->size - used)
			break;
		/* an entry with all its attributes counts as a lookup the kernel will forget */
		if (i >= 2 && (d->e[i - 2].flags & DSFS_FS_COMPLETE) &&
		    (e.ino = dsfs_nodes_lookup(dsfs_fuse.nodes, o->ino, name))) {
			e.attr_timeout = dsfs_fuse_attr_ttl(&e.attr, d->e[i - 2].flags);
			e.entry_timeout = dsfs_fuse.entry_ttl;
		}
		used += fuse_add_direntry_plus(o->req, buf + used, o->size - used, name, &e, (off_t)i + 1);
	}
	fuse_reply_buf(o->req, buf, used);
	free(buf);
}

void dsfs_fuse_releasedir(struct fuse_file_info *fi)
{
	dir_free((struct dir *)(uintptr_t)fi->fh);
}

void dsfs_fuse_dirs_end(void)
{
	size_t n = 0;

	for (; open_dirs.next != &open_dirs; n++)
		dir_free(open_dirs.next);
	if (n)
		dsfs_log(DSFS_LOG_INFO, "unmounted with %zu director%s still open", n, n == 1 ? "y" : "ies");
}
