// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bottom of the file system, which every other part of it uses and
 * which uses none of them (as the kernel's VFS helpers under each file
 * system's file_operations): resolving a path through the cache, the
 * attributes of a location, the one log line of a failed or refused
 * operation, and open handles: making and freeing one, the close that
 * ends what it holds, and reading the content it holds. The kinds of open
 * file (fs/own.c, fs/ctlfile.c, fs/editfile.c, fs/wait.c) and mkdir/rmdir
 * (fs/dirops.c) are built on it; the entry points (fs/fs.c) sit on top.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "fs/fs_int.h"
#include "util/locks.h"
#include "util/log.h"

/* ---- logs, resolution, attributes ------------------------------------------------ */

int fs_done(const char *op, const char *path, int ret)
{
	char why[1200];
	bool quiet;

	if (ret < 0 && dsfs_err_describe(why, sizeof(why))) {
		/* A GET answered 404 is a name that went away: routine. A refused change never is. */
		quiet = (ret == -ENOENT && !strncmp(why, "GET ", 4)) || ret == -EINTR; /* or a reader that went */
		dsfs_log(quiet ? DSFS_LOG_DEBUG : DSFS_LOG_ERR, "%s %s: %s (%s)", op, path, why, strerror(-ret));
	}
	return ret;
}

int fs_refuse(const char *op, const char *path, int ret, const char *why)
{
	dsfs_log(DSFS_LOG_WARN, "%s %s: refused: %s (%s)", op, path, why, strerror(-ret));
	return ret;
}

int fs_resolve(struct dsfs_fs *fs, const char *path, struct dsfs_loc *out)
{
	char name[4096];
	const char *p = path, *end;
	struct dsfs_loc cur, next;
	int ret;

	dsfs_cache_root(fs->cache, &cur);
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchr(p, '/');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof(name)) {
			dsfs_cache_put(fs->cache, &cur);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, (size_t)(end - p));
		name[end - p] = '\0';
		ret = dsfs_cache_lookup(fs->cache, &cur, name, &next);
		dsfs_cache_put(fs->cache, &cur);
		if (ret)
			return ret;
		cur = next;
		p = end;
	}
	*out = cur;
	return 0;
}

int fs_resolve_again(struct dsfs_fs *fs, const char *path, struct dsfs_loc *loc)
{
	int ret;

	dsfs_cache_put(fs->cache, loc);
	ret = fs_resolve(fs, path, loc);
	if (ret)
		memset(loc, 0, sizeof(*loc));
	return ret ? ret : -ESTALE;
}

void fs_fill_stat(const struct dsfs_fs *fs, const struct dsfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_mtime = st->st_ctime = st->st_atime = a->mtime;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	switch (a->type) {
	case DSFS_LOC_RESOURCE:
	case DSFS_LOC_COLLECTION:
	case DSFS_LOC_BYID:
	case DSFS_LOC_WHERE_DIR:
	case DSFS_LOC_WHERE:
		/* writable where mkdir, rmdir or an editor acts, so that default_permissions lets the owner act */
		st->st_mode = S_IFDIR |
			(a->writable                               ? (fs->o.allow_other_actions ? 0777 : 0755)
				 : a->editable && fs->o.allow_edit ? 0755
								   : 0555);
		st->st_nlink = 2;
		return;
	case DSFS_LOC_LINK:
		st->st_mode = S_IFLNK | 0777;
		break;
	case DSFS_LOC_FILE:
	case DSFS_LOC_WAIT:
	case DSFS_LOC_COUNT:
		st->st_mode = S_IFREG | (a->editable && fs->o.allow_edit ? 0644 : 0444);
		break;
	case DSFS_LOC_CTL:
		st->st_mode = S_IFREG | (fs->o.allow_other_actions ? 0666 : 0600); /* by default only the owner acts */
		break;
	}
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
}

char *fs_split_parent(const char *path, const char **name)
{
	char *parent = strdup(path), *slash;

	if (!parent)
		return NULL;
	slash = strrchr(parent, '/');
	*name = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return parent;
}

void fs_log_dry_run(const char *op, const char *path, const struct dsfs_post_result *res)
{
	json_object *body;

	if (!res->request)
		return;
	body = dsfs_dialect_field(res->request, "body");
	dsfs_log(DSFS_LOG_INFO, "%s %s: dry run: would send %s %s%s%s; nothing sent", op, path,
		 json_object_get_string(dsfs_dialect_field(res->request, "method")),
		 json_object_get_string(dsfs_dialect_field(res->request, "url")), body ? " " : "",
		 body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
		      : "");
}

/* ---- open handles: what every kind shares ---------------------------------------- */

struct dsfs_handle *fs_handle_new(const struct fs_handle_ops *ops)
{
	struct dsfs_handle *h = calloc(1, sizeof(*h));

	if (h) {
		h->ops = ops;
		dsfs_mutex_init(&h->lock, DSFS_LOCK_FS_HANDLE);
	}
	return h;
}

void fs_handle_free(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	if (!h)
		return;
	dsfs_scratch_put(h->file);
	dsfs_cache_put(fs->cache, &h->loc);
	dsfs_blob_unref(h->content);
	free(h->path);
	free(h->buf);
	dsfs_mutex_destroy(&h->lock);
	free(h);
}

bool fs_last_close(struct dsfs_handle *h, pid_t pid)
{
	/*
	 * Every close() flushes, the close of a copy a child inherited (a
	 * command substitution, any program run in between) included. Only
	 * the last close of the process that opened the file, or, once it has
	 * gone, of the process that wrote the pending bytes, ends the line.
	 */
	if (pid == h->opener)
		h->opener_closed = true;
	return pid == h->opener || (h->opener_closed && pid == h->writer);
}

int fs_copy_out(const struct dsfs_blob *b, char *buf, size_t size, off_t off)
{
	if (!b || (size_t)off >= b->len)
		return 0;
	if (size > b->len - (size_t)off)
		size = b->len - (size_t)off;
	memcpy(buf, b->data + off, size);
	return (int)size;
}

int fs_read_content(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		    off_t off)
{
	int ret;

	dsfs_lock(&h->lock);
	ret = fs_copy_out(h->content, buf, size, off);
	dsfs_unlock(&h->lock);
	return ret;
}

struct dsfs_blob *fs_handle_content(struct dsfs_handle *h)
{
	struct dsfs_blob *b;

	dsfs_lock(&h->lock);
	b = dsfs_blob_ref(h->content);
	dsfs_unlock(&h->lock);
	return b;
}
