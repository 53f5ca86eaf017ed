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

#include "cache/cache.h"
#include "net/http.h"
#include "net/session.h"
#include "fs/tasks.h"

struct dsfs_fs;
struct dsfs_handle;

struct dsfs_fs_opts {
	uid_t uid; /* owner of every entry */
	gid_t gid;
	time_t mounted;               /* mtime of the synthetic entries */
	double ttl;                   /* cache_ttl: how stale a read-through file may be for a reader */
	double wait_timeout;          /* bound on tasks/<id>/wait */
	bool allow_delete;            /* rmdir deletes snapshots and volumes */
	bool allow_edit;              /* object files whose API has an update can be edited */
	bool allow_other_actions;     /* control files and creatable directories writable by all */
	const char *tasks_dir;        /* the dialect's tasks collection ("tasks") */
	struct dsfs_waiters *waiters; /* bounds on waiting readers, shared by the estate (borrowed) */
	struct dsfs_events *events;   /* the feed of events/log (borrowed), or NULL: no events/ */
};

/* A file system over the given parts (all borrowed). NULL on ENOMEM. */
struct dsfs_fs *dsfs_fs_new(struct dsfs_cache *cache, struct dsfs_http *http, struct dsfs_session *session,
			    struct dsfs_tasks *tasks, const struct dsfs_fs_opts *opts);
void dsfs_fs_free(struct dsfs_fs *fs);

/* What a struct stat cannot say about an entry (flags of getattr and of readdir's fill). */
#define DSFS_FS_COMPLETE 0x1 /* every attribute is known, not only the type and inode number */
#define DSFS_FS_LIVE 0x2     /* its content and size change between reads (task files): not to be cached */
#define DSFS_FS_FETCHED 0x4  /* an object's file: its size changes only by a fetch, and an open says when */

/* Attributes of path; *flags (when non-NULL) gets DSFS_FS_LIVE for a live file. */
int dsfs_fs_getattr(struct dsfs_fs *fs, const char *path, struct stat *st, unsigned *flags);

/*
 * Waiting without a thread. A call that must wait for a task starts the
 * wait, returns DSFS_FS_WAITING and sets *w; fn(arg, ret) then follows
 * exactly once, from another thread, when the task ends (a read of wait:
 * 0 once its line is there, whatever the task's outcome, or the poll's
 * -errno when the wait could not see it end; an rmdir: 0, or -EIO,
 * -ETIMEDOUT after wait_timeout, the poll's -errno), unless
 * dsfs_fs_wait_cancel took the wait back first. Waits are bounded per
 * user (EAGAIN past the bound, before anything is sent).
 */
#define DSFS_FS_WAITING 1
struct dsfs_fs_wait;
typedef void (*dsfs_fs_done_fn)(void *arg, int ret);

/* True when a read of h may have to wait for the server (then dsfs_fs_read_wait comes first). */
bool dsfs_fs_read_waits(struct dsfs_handle *h);

/*
 * Before reading h: when the read would wait for the server (tasks/<id>/wait
 * of a task not known to have ended), starts the wait (DSFS_FS_WAITING);
 * 0 when the read can go ahead now; or a negative errno.
 */
int dsfs_fs_read_wait(struct dsfs_fs *fs, struct dsfs_handle *h, dsfs_fs_done_fn fn, void *arg,
		      struct dsfs_fs_wait **w);

/*
 * Takes back wait w unless it has ended: true when taken back (fn will
 * never be called), false when fn has been or is being called. Never waits
 * for fn, so it may be called under a lock fn takes.
 */
bool dsfs_fs_wait_cancel(struct dsfs_fs_wait *w);

/*
 * fill gets each entry with its attributes and DSFS_FS_* flags: without
 * DSFS_FS_COMPLETE only the file type is known (the rest would cost a
 * request).
 */
typedef int (*dsfs_fs_fill_fn)(void *ctx, const char *name, const struct stat *st, unsigned flags);
int dsfs_fs_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx);

/*
 * Opens a file. Only control files open for writing. *caching says how the
 * kernel may cache what it reads (dsfs_cache_open; DSFS_CACHING_DIRECT for
 * everything but object files). Freed by dsfs_fs_release. pid is the
 * opening process (0 when unknown: then every close counts as its close).
 */
int dsfs_fs_open(struct dsfs_fs *fs, const char *path, int flags, pid_t pid, struct dsfs_handle **h,
		 enum dsfs_caching *caching);

/*
 * Reads from an open handle; returns the byte count (0 at the end). A
 * read-through file read past what it held fetches what was added since.
 * tasks/<id>/wait reads its task's outcome once dsfs_fs_read_wait has
 * waited for it (EAGAIN before): one line, "SUCCEEDED" or "FAILED: <why>"
 * (CANCELLED, TIMEDOUT), and past it 0, or -EIO (-ETIMEDOUT after
 * wait_timeout) when the task did not succeed. newest (may be NULL) is the newest content
 * any open of the object file handed out (dsfs_nodes_newest): an older
 * handle reads it rather than its own copy, because what it reads may fill
 * pages every descriptor of the file shares, and because no read shows a
 * version older than one an open has shown.
 */
int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		 off_t off);

/*
 * What a read-only handle reads, whole (a reference the caller drops), so
 * that content opened DSFS_CACHING_PAGED can be handed to the kernel's page
 * cache at open; NULL for other handles.
 */
struct dsfs_blob *dsfs_fs_content(struct dsfs_handle *h);

/*
 * Writes to a control file, for process pid: every complete line is a
 * command, sent before write returns. Returns size, or a negative errno
 * (EINVAL for a malformed command, which sends nothing; EFBIG for a line
 * past DSFS_CTL_MAX; the request's errno). A refused line's rest, up to
 * its newline, is discarded; a write holding nothing else fails the same.
 */
int dsfs_fs_write(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid);

/*
 * A close() by process pid; keeps_open when that process still holds
 * another descriptor of the file. Sends a last command that had no newline
 * only at the last close of the opener (or, once it has closed, of the
 * process that wrote it); any other close leaves it pending.
 */
int dsfs_fs_flush(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open);

/* Frees a handle; a command still without its newline is discarded, logged and recorded, never sent. */
void dsfs_fs_release(struct dsfs_fs *fs, struct dsfs_handle *h);

int dsfs_fs_readlink(struct dsfs_fs *fs, const char *path, char *buf, size_t size);

/*
 * The capacity df shows at path: that of the nearest pool, server or
 * member at or above it (dsfs_cache_space); the mount's own entries
 * (.dsfs/, tasks/latest) count as the root.
 */
int dsfs_fs_statfs(struct dsfs_fs *fs, const char *path, struct dsfs_space *out);

/*
 * Truncation: accepted on control files (so `>` works); on an editable
 * object file (-o allow_edit), the same edit as an in-place write cut to
 * size; refused elsewhere.
 */
int dsfs_fs_truncate(struct dsfs_fs *fs, const char *path, off_t size);

/*
 * mkdir in a collection with `new`: creates a resource of that name. With
 * -o dry_run, nothing is made: returns DSFS_FS_DRY_RUN once the request it
 * would send is logged and shown in the collection's `new`.
 */
#define DSFS_FS_DRY_RUN 2
int dsfs_fs_mkdir(struct dsfs_fs *fs, const char *path);

/*
 * rmdir of a snapshot or volume: deletes it, only with allow_delete. When
 * the server deletes it by a task, starts waiting for the task and returns
 * DSFS_FS_WAITING; fn(arg, ret) follows as for dsfs_fs_read_wait.
 */
int dsfs_fs_rmdir(struct dsfs_fs *fs, const char *path, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w);

/* unlink: of an editor's file only (EPERM for everything else). */
int dsfs_fs_unlink(struct dsfs_fs *fs, const char *path);

/*
 * Editing (-o allow_edit; EPERM without it). An object file whose API has
 * an update opens for writing: its buffer is sent as one PUT of the
 * changed fields at its writer's close (dsfs_fs_flush returns the edit's
 * errno: EINVAL, EBUSY, the request's). Beside it an editor may create,
 * write, rename and unlink files of its own (held in memory, src/fs/scratch.h);
 * renaming one over the object file sends the edit, compared with the
 * object as it was shown when that file was created.
 */
int dsfs_fs_create(struct dsfs_fs *fs, const char *path, int flags, struct dsfs_handle **h);
int dsfs_fs_rename(struct dsfs_fs *fs, const char *from, const char *to, unsigned flags);

/* ftruncate of an open file: an edit's buffer, or a control file (to 0). */
int dsfs_fs_ftruncate(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size);

/*
 * chmod, chown, utimes: accepted, and ignored, on editors' files; on
 * editable object files only when changes is false (times, or a mode and
 * owner they already have); EPERM elsewhere.
 */
int dsfs_fs_chmeta(struct dsfs_fs *fs, const char *path, bool changes);

#endif
