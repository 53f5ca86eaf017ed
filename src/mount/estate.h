/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mount as a whole: one member (a single array, its tree at the mount's
 * root) or an estate of several (MOUNT/<member>/..., each an independent
 * failure domain with its own connections and session), plus what belongs
 * to the whole: tasks/ gathering every member's tasks, tasks/latest,
 * .dsfs/status and .dsfs/log (the estate file is mount/estate_conf.h's). Paths in,
 * negative errnos out; every function is thread-safe.
 */
#ifndef DSFS_ESTATE_H
#define DSFS_ESTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "mount/estate_conf.h"
#include "fs/fs.h"
#include "net/session.h"
#include "fs/tasks.h"

struct dsfs_estate;
struct dsfs_ehandle;

/* An empty mount; estate true gives MOUNT/<member>/ trees. NULL on ENOMEM. */
struct dsfs_estate *dsfs_estate_new(bool estate, time_t mounted, uid_t uid, gid_t gid);

/*
 * Adds a member (its parts are borrowed: the caller frees them after the
 * estate); tasks_dir is its dialect's tasks collection, where tasks/<member>
 * points; events its feed (NULL: none), merged into an estate's events/log.
 */
int dsfs_estate_add(struct dsfs_estate *e, const char *name, const char *url, struct dsfs_fs *fs,
		    struct dsfs_session *session, struct dsfs_tasks *tasks, const char *tasks_dir,
		    struct dsfs_events *events);

void dsfs_estate_free(struct dsfs_estate *e);

/*
 * The file-system calls, as in fs/fs.h, dispatched to the member a path is in;
 * a wait they start is taken back with dsfs_fs_wait_cancel.
 */
int dsfs_estate_getattr(struct dsfs_estate *e, const char *path, struct stat *st, unsigned *flags);
int dsfs_estate_readdir(struct dsfs_estate *e, const char *path, dsfs_fs_fill_fn fill, void *ctx);
int dsfs_estate_open(struct dsfs_estate *e, const char *path, int flags, pid_t pid, struct dsfs_ehandle **h,
		     enum dsfs_caching *caching);
int dsfs_estate_read(struct dsfs_ehandle *h, struct dsfs_blob *newest, char *buf, size_t size, off_t off);
struct dsfs_blob *dsfs_estate_content(struct dsfs_ehandle *h);
bool dsfs_estate_read_waits(struct dsfs_ehandle *h);
int dsfs_estate_read_wait(struct dsfs_ehandle *h, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w);
int dsfs_estate_write(struct dsfs_ehandle *h, const char *buf, size_t size, off_t off, pid_t pid);
int dsfs_estate_flush(struct dsfs_ehandle *h, pid_t pid, bool keeps_open);
void dsfs_estate_release(struct dsfs_ehandle *h);
int dsfs_estate_readlink(struct dsfs_estate *e, const char *path, char *buf, size_t size);
int dsfs_estate_truncate(struct dsfs_estate *e, const char *path, off_t size);
int dsfs_estate_mkdir(struct dsfs_estate *e, const char *path);
int dsfs_estate_rmdir(struct dsfs_estate *e, const char *path, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w);
int dsfs_estate_unlink(struct dsfs_estate *e, const char *path);
int dsfs_estate_create(struct dsfs_estate *e, const char *path, int flags, pid_t pid, struct dsfs_ehandle **h);
int dsfs_estate_rename(struct dsfs_estate *e, const char *from, const char *to, unsigned flags);
int dsfs_estate_ftruncate(struct dsfs_ehandle *h, off_t size);
int dsfs_estate_chmeta(struct dsfs_estate *e, const char *path, bool changes);

/*
 * What df shows at path: a member's capacity (dsfs_fs_statfs), or at the
 * estate's own entries the sum over every member that answers (one that
 * fails is left out and logged). Blocks are the API's unit where every
 * part shares it, else bytes.
 */
int dsfs_estate_statfs(struct dsfs_estate *e, const char *path, struct statvfs *out);

#endif
