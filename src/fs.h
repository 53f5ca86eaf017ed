/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File-system semantics on top of the cache: path resolution, attributes
 * (modes, owners, sizes), directory listings, open handles and reads, and
 * the hidden .dsfs/ directory. Knows nothing of FUSE: paths in, struct stat
 * and negative errnos out. Every function is thread-safe and logs a failed
 * request once, with the path, the HTTP status and the server's message.
 */
#ifndef DSFS_FS_H
#define DSFS_FS_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache.h"
#include "http.h"
#include "session.h"

struct dsfs_fs;
struct dsfs_handle;

struct dsfs_fs_opts {
	uid_t uid;      /* owner of every entry */
	gid_t gid;
	time_t mounted; /* mtime of the synthetic entries */
};

/* A file system over the given parts (all borrowed). NULL on ENOMEM. */
struct dsfs_fs *dsfs_fs_new(struct dsfs_cache *cache, struct dsfs_http *http,
			    struct dsfs_session *session, const struct dsfs_fs_opts *opts);
void dsfs_fs_free(struct dsfs_fs *fs);

int dsfs_fs_getattr(struct dsfs_fs *fs, const char *path, struct stat *st);

/*
 * fill gets each entry with its attributes; complete is false when only the
 * file type is known (the rest would cost a request).
 */
typedef int (*dsfs_fs_fill_fn)(void *ctx, const char *name, const struct stat *st, bool complete);
int dsfs_fs_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx);

/*
 * Opens a file for reading. *direct_io is set when reads must bypass the
 * kernel's page cache (content that changes, or a size the kernel may have
 * cached wrongly). The handle is freed by dsfs_fs_release.
 */
int dsfs_fs_open(struct dsfs_fs *fs, const char *path, int flags, struct dsfs_handle **h, bool *direct_io);

/* Reads from an open handle; returns the byte count (0 at the end). */
int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, char *buf, size_t size, off_t off);

void dsfs_fs_release(struct dsfs_fs *fs, struct dsfs_handle *h);

int dsfs_fs_readlink(struct dsfs_fs *fs, const char *path, char *buf, size_t size);

#endif
