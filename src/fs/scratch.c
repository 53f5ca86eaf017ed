// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Editors' files beside object files (fs/scratch.h): a small table of
 * in-memory files keyed by path, one lock for the table and one per file.
 */
#include "fs/scratch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"

struct dsfs_scratch_file {
	int refs; /* under the file's lock */
	struct dsfs_mutex lock;
	char *data;
	size_t len;
	time_t mtime;
	uint64_t ino;
	struct dsfs_blob *base;
	char *object; /* the API URL of the object it was made beside (immutable), or NULL */
};

struct entry {
	char *path;
	struct dsfs_scratch_file *f;
};

struct dsfs_scratch {
	struct dsfs_mutex lock;
	struct entry e[DSFS_SCRATCH_FILES];
	size_t n;
	uint64_t next_ino;
};

struct dsfs_scratch *dsfs_scratch_new(void)
{
	struct dsfs_scratch *st = calloc(1, sizeof(*st));

	if (st) {
		dsfs_mutex_init(&st->lock, DSFS_LOCK_SCRATCH);
		st->next_ino = 1;
	}
	return st;
}

void dsfs_scratch_put(struct dsfs_scratch_file *f)
{
	int left;

	if (!f)
		return;
	dsfs_lock(&f->lock);
	left = --f->refs;
	dsfs_unlock(&f->lock);
	if (left)
		return;
	dsfs_blob_unref(f->base);
	free(f->object);
	free(f->data);
	dsfs_mutex_destroy(&f->lock);
	free(f);
}

static struct dsfs_scratch_file *ref(struct dsfs_scratch_file *f)
{
	dsfs_lock(&f->lock);
	f->refs++;
	dsfs_unlock(&f->lock);
	return f;
}

void dsfs_scratch_free(struct dsfs_scratch *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		free(st->e[i].path);
		dsfs_scratch_put(st->e[i].f);
	}
	dsfs_mutex_destroy(&st->lock);
	free(st);
}

static ssize_t find(struct dsfs_scratch *st, const char *path)
{
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->e[i].path, path))
			return (ssize_t)i;
	return -1;
}

int dsfs_scratch_create(struct dsfs_scratch *st, const char *path, struct dsfs_blob *base, const char *object,
			struct dsfs_scratch_file **out)
{
	struct dsfs_scratch_file *f = calloc(1, sizeof(*f));
	char *p = st ? strdup(path) : NULL;
	char *obj = object ? strdup(object) : NULL;
	int ret = 0;

	*out = NULL;
	if (!f || (st && !p) || (object && !obj)) {
		free(f);
		free(p);
		free(obj);
		return -ENOMEM;
	}
	f->object = obj;
	dsfs_mutex_init(&f->lock, DSFS_LOCK_SCRATCH_FILE);
	f->refs = 1;
	f->mtime = time(NULL);
	f->base = base ? dsfs_blob_ref(base) : NULL;
	if (st) {
		dsfs_lock(&st->lock);
		if (find(st, path) >= 0)
			ret = -EEXIST;
		else if (st->n == DSFS_SCRATCH_FILES)
			ret = -ENOSPC;
		if (ret == 0) {
			f->ino = st->next_ino++;
			st->e[st->n].path = p;
			st->e[st->n++].f = ref(f);
		}
		dsfs_unlock(&st->lock);
	}
	if (ret) {
		free(p);
		dsfs_scratch_put(f);
		return ret;
	}
	*out = f;
	return 0;
}

struct dsfs_scratch_file *dsfs_scratch_get(struct dsfs_scratch *st, const char *path)
{
	struct dsfs_scratch_file *f = NULL;
	ssize_t i;

	dsfs_lock(&st->lock);
	if ((i = find(st, path)) >= 0)
		f = ref(st->e[i].f);
	dsfs_unlock(&st->lock);
	return f;
}

static void remove_at(struct dsfs_scratch *st, size_t i)
{
	free(st->e[i].path);
	dsfs_scratch_put(st->e[i].f);
	st->e[i] = st->e[--st->n];
}

int dsfs_scratch_unlink(struct dsfs_scratch *st, const char *path)
{
	ssize_t i;

	dsfs_lock(&st->lock);
	i = find(st, path);
	if (i >= 0)
		remove_at(st, (size_t)i);
	dsfs_unlock(&st->lock);
	return i >= 0 ? 0 : -ENOENT;
}

int dsfs_scratch_rename(struct dsfs_scratch *st, const char *from, const char *to)
{
	char *p = strdup(to);
	ssize_t i, j;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	dsfs_lock(&st->lock);
	i = find(st, from);
	if (i < 0) {
		ret = -ENOENT;
	} else if (strcmp(from, to)) {
		if ((j = find(st, to)) >= 0) {
			remove_at(st, (size_t)j);
			if (i == (ssize_t)st->n) /* the last entry moved into j's place */
				i = j;
		}
		free(st->e[i].path);
		st->e[i].path = p;
		p = NULL;
	}
	dsfs_unlock(&st->lock);
	free(p);
	return ret;
}

int dsfs_scratch_list(struct dsfs_scratch *st, const char *dir,
		      int (*fill)(void *ctx, const char *name, struct dsfs_scratch_file *f), void *ctx)
{
	size_t dlen = strlen(dir);
	int ret = 0;

	if (dlen == 1)
		dlen = 0; /* "/": names start right after it */
	dsfs_lock(&st->lock);
	for (size_t i = 0; i < st->n && !ret; i++) {
		const char *p = st->e[i].path;

		if (!strncmp(p, dir, dlen) && p[dlen] == '/' && !strchr(p + dlen + 1, '/'))
			ret = fill(ctx, p + dlen + 1, st->e[i].f);
	}
	dsfs_unlock(&st->lock);
	return ret;
}

int dsfs_scratch_read(struct dsfs_scratch_file *f, char *buf, size_t size, off_t off)
{
	int n = 0;

	dsfs_lock(&f->lock);
	if (off >= 0 && (size_t)off < f->len) {
		if (size > f->len - (size_t)off)
			size = f->len - (size_t)off;
		memcpy(buf, f->data + off, size);
		n = (int)size;
	}
	dsfs_unlock(&f->lock);
	return n;
}

/* Makes f len bytes long, zero-filling what grows. Lock held. */
static int resize(struct dsfs_scratch_file *f, size_t len)
{
	char *d;

	if (len > DSFS_SCRATCH_MAX)
		return -EFBIG;
	if (len > f->len) {
		if (!(d = realloc(f->data, len)))
			return -ENOMEM;
		memset(d + f->len, 0, len - f->len);
		f->data = d;
	}
	f->len = len;
	f->mtime = time(NULL);
	return 0;
}

int dsfs_scratch_write(struct dsfs_scratch_file *f, const char *buf, size_t size, off_t off)
{
	int ret = 0;

	if (off < 0 || size > DSFS_SCRATCH_MAX || (size_t)off > DSFS_SCRATCH_MAX - size)
		return -EFBIG;
	dsfs_lock(&f->lock);
	if ((size_t)off + size > f->len)
		ret = resize(f, (size_t)off + size);
	if (ret == 0) {
		memcpy(f->data + off, buf, size);
		f->mtime = time(NULL);
		ret = (int)size;
	}
	dsfs_unlock(&f->lock);
	return ret;
}

int dsfs_scratch_truncate(struct dsfs_scratch_file *f, off_t size)
{
	int ret;

	if (size < 0)
		return -EINVAL;
	dsfs_lock(&f->lock);
	ret = resize(f, (size_t)size);
	dsfs_unlock(&f->lock);
	return ret;
}

int dsfs_scratch_fill(struct dsfs_scratch_file *f, const struct dsfs_blob *b)
{
	int ret;

	dsfs_lock(&f->lock);
	f->len = 0;
	ret = resize(f, b->len);
	if (ret == 0 && b->len)
		memcpy(f->data, b->data, b->len);
	dsfs_unlock(&f->lock);
	return ret;
}

void dsfs_scratch_stat(struct dsfs_scratch_file *f, size_t *size, time_t *mtime, uint64_t *ino)
{
	dsfs_lock(&f->lock);
	*size = f->len;
	*mtime = f->mtime;
	*ino = f->ino;
	dsfs_unlock(&f->lock);
}

struct dsfs_blob *dsfs_scratch_bytes(struct dsfs_scratch_file *f)
{
	struct dsfs_blob *b;

	dsfs_lock(&f->lock);
	b = dsfs_blob_new(f->data ? f->data : "", f->len);
	dsfs_unlock(&f->lock);
	return b;
}

struct dsfs_blob *dsfs_scratch_base(struct dsfs_scratch_file *f)
{
	struct dsfs_blob *b;

	dsfs_lock(&f->lock);
	b = f->base ? dsfs_blob_ref(f->base) : NULL;
	dsfs_unlock(&f->lock);
	return b;
}

const char *dsfs_scratch_object(const struct dsfs_scratch_file *f)
{
	return f->object;
}
