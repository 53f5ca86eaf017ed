/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file system's insides, shared by its files and by nothing else. Its
 * files call one way, as the kernel's VFS and each file system's
 * file_operations: at the bottom fs/core.c (resolution, attributes, the
 * logs of failures, open handles and their content); on it the kinds of
 * open file and the operations on the server's objects: the mount's own
 * entries (fs/own.c), control files and their results (fs/ctlfile.c),
 * editors' files and in-place edits (fs/editfile.c), waiting on tasks
 * (fs/wait.c) and mkdir/rmdir (fs/dirops.c); on top the entry points that
 * open each kind and dispatch to its table (fs/fs.c), which nothing here
 * calls. Below them all, fs/scratch.h, fs/tasks.h, fs/events.h and
 * fs/waiters.h know nothing of this header.
 */
#ifndef DSFS_FS_INT_H
#define DSFS_FS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "format/ctl.h"
#include "fs/fs.h"
#include "util/locks.h"
#include "fs/scratch.h"

#define DSFS_DIR "/.dsfs"
#define DSFS_STATS DSFS_DIR "/stats"
#define LATEST "latest"
#define EVENTS_DIR "/events"
#define EVENTS_LOG EVENTS_DIR "/log"

struct fs_result;
struct fs_edit_record;

struct dsfs_fs {
	struct dsfs_cache *cache;
	struct dsfs_http *http;
	struct dsfs_session *session;
	struct dsfs_tasks *tasks;
	struct dsfs_fs_opts o;
	char *tasks_path;          /* "/tasks" */
	char *latest_path;         /* "/tasks/latest" */
	struct dsfs_mutex lock;    /* guards results */
	struct fs_result *results; /* last command's result per control file, newest first */
	size_t nresults;
	struct dsfs_scratch *scratch; /* editors' files beside object files (allow_edit) */
	struct dsfs_mutex edit_lock;  /* one edit at a time: each sees the one before it */
	struct fs_edit_record *edits; /* edits whose task may still run, newest first */
};

/*
 * What one kind of open file does, as the kernel's struct file_operations.
 * Each kind has one table, beside the code of that kind: read-through files
 * (fs/fs.c), .dsfs/stats and events/log (fs/own.c), control files
 * (fs/ctlfile.c), editors' files and object files open for writing
 * (fs/editfile.c), tasks' wait files (fs/wait.c). A NULL member is the default
 * named beside it. Every member but open is called with h->lock not held.
 */
struct fs_handle_ops {
	const char *name; /* the kind, for logs */
	/*
	 * Fills in a new handle whose loc (resolved kinds) or file (editors'
	 * files) is already set. 0, or -errno: then h is freed without
	 * release, so open undoes what it did itself (as the kernel's).
	 */
	int (*open)(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		    enum dsfs_caching *caching);
	/* True when a read must first wait for the server (dsfs_fs_read_wait). NULL: never. */
	bool (*read_waits)(struct dsfs_handle *h);
	/* dsfs_fs_read, off >= 0. Required. */
	int (*read)(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		    off_t off);
	/* dsfs_fs_write. NULL: -EBADF (opened read-only). */
	int (*write)(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid);
	/* dsfs_fs_flush. NULL: 0 (nothing is pending at a close). */
	int (*flush)(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open);
	/* dsfs_fs_ftruncate. NULL: -EACCES. */
	int (*ftruncate)(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size);
	/* What the kind holds beyond the common fields, let go before h is freed. NULL: nothing. */
	void (*release)(struct dsfs_fs *fs, struct dsfs_handle *h);
	/* dsfs_fs_content: the whole of what h reads (a reference). NULL: NULL. */
	struct dsfs_blob *(*content)(struct dsfs_handle *h);
};

struct dsfs_handle {
	const struct fs_handle_ops *ops; /* its kind */
	struct dsfs_blob *content;       /* READ: bytes opened; CTL: result at open; WAIT: the outcome's line */
	int end_err;                     /* WAIT: -errno of a read past that line: the task did not succeed */
	struct dsfs_loc loc;             /* direct READ, CTL and WAIT: where (references held) */
	bool direct;
	char *path; /* CTL: the control file */
	char *buf;  /* CTL: bytes of a command not yet ended by a newline (at most DSFS_CTL_MAX) */
	size_t len;
	struct dsfs_ctl_scan scan;      /* CTL: where the command being written ends (a JSON object may span lines) */
	int refused;                    /* CTL: -errno of a refused line whose rest, up to its newline, is discarded */
	pid_t opener;                   /* CTL: the process that opened the file */
	pid_t writer;                   /* CTL: the process that wrote the last bytes of buf */
	bool opener_closed;             /* CTL: the opener has made its last close */
	struct dsfs_scratch_file *file; /* EDIT: the bytes written: an editor's file, or an object's own buffer */
	bool object;                    /* EDIT: file is the buffer of the object file at loc (sent at close) */
	bool dirty;                     /* EDIT: written since it was opened or last sent */
	int failed;                     /* EDIT: -errno of a write that failed: the edit is never sent */
	struct dsfs_mutex lock;         /* a handle can be used by several threads (dup, fork) */
};

/* ---- fs/core.c: shared by every part -------------------------------------------- */

/* Logs a failed operation once, if a request caused it. Returns ret. */
int fs_done(const char *op, const char *path, int ret);

/* A refusal of dsfs's own, before any request: one log line naming the path and why. Returns ret. */
int fs_refuse(const char *op, const char *path, int ret, const char *why);

/* Resolves an absolute path to a location (references held: put it). */
int fs_resolve(struct dsfs_fs *fs, const char *path, struct dsfs_loc *out);

/*
 * After a cache call answered -ESTALE for *loc (the object its name was
 * made from is now called otherwise, and the listing was taken again):
 * resolves path anew into *loc. -ESTALE when it resolved (try the call
 * again on the new location), or the lookup's errno; *loc is always one
 * to put.
 */
int fs_resolve_again(struct dsfs_fs *fs, const char *path, struct dsfs_loc *loc);

/* The parent of path (malloc'd), *name pointing at path's last component; NULL on ENOMEM. */
char *fs_split_parent(const char *path, const char **name);

void fs_fill_stat(const struct dsfs_fs *fs, const struct dsfs_attr *a, struct stat *st);

/* -o dry_run: the request a change would have sent, logged (a control file's result shows it too). */
void fs_log_dry_run(const char *op, const char *path, const struct dsfs_post_result *res);

/* A new handle of kind ops, or NULL on ENOMEM. */
struct dsfs_handle *fs_handle_new(const struct fs_handle_ops *ops);

/*
 * Frees what every kind of handle may hold (NULL: nothing). The kind's own
 * part goes first, in its release, unless its open failed (dsfs_fs_release).
 */
void fs_handle_free(struct dsfs_fs *fs, struct dsfs_handle *h);

/* The bytes of b from off (0 past its end, or when b is NULL): the read of an open file's content. */
int fs_copy_out(const struct dsfs_blob *b, char *buf, size_t size, off_t off);

/* fs_handle_ops.read of a handle that reads its content as it was at open (h->content). */
int fs_read_content(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		    off_t off);

/* fs_handle_ops.content: h->content. */
struct dsfs_blob *fs_handle_content(struct dsfs_handle *h);

/*
 * Whether pid's close ends what h holds (h->lock held): the last close of
 * the process that opened the file, or, once it has gone, of the process
 * that wrote the pending bytes.
 */
bool fs_last_close(struct dsfs_handle *h, pid_t pid);

/* ---- fs/own.c: .dsfs/, events/ and tasks/latest ---------------------------------- */

/* Attributes of .dsfs/, .dsfs/stats, events/ and tasks/latest. 1 if path is one of them, 0 if not, or -errno. */
int fs_own_stat(struct dsfs_fs *fs, const char *path, struct stat *st);

/* True when path is tasks/latest. */
bool fs_is_latest(struct dsfs_fs *fs, const char *path);

/* Target of tasks/latest (malloc'd), or NULL when no task was started here. */
char *fs_latest_target(struct dsfs_fs *fs);

/* Whether path is the mount's own (.dsfs/, events/, tasks/latest): df shows the root's capacity there. */
bool fs_is_own(struct dsfs_fs *fs, const char *path);

/* A listing of .dsfs/ or events/: true, with *ret set, when path is one of them. */
bool fs_own_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx, int *ret);

/* The kind of open file path is when it is one of the mount's own (.dsfs/stats, events/log), or NULL. */
const struct fs_handle_ops *fs_own_ops(struct dsfs_fs *fs, const char *path);

/* ---- fs/ctlfile.c: control files and their results ------------------------------ */

/* The last result of the control file at path (a reference), or NULL. */
struct dsfs_blob *fs_result_get(struct dsfs_fs *fs, const char *path);

/* The size of control file name in dir: its last result's, or 0. */
size_t fs_ctl_size(struct dsfs_fs *fs, const char *dir, const char *name);

/*
 * Records what a command did, as the JSON a read of its control file
 * returns; note (or NULL) says more about how it came (AT_CLOSE).
 */
void fs_record(struct dsfs_fs *fs, const char *path, const char *command, size_t len,
	       const struct dsfs_post_result *res, const char *error, const char *note);

void fs_results_free(struct dsfs_fs *fs);

extern const struct fs_handle_ops fs_ctl_ops;

/* ---- fs/editfile.c: editors' files and in-place edits ----------------------------- */

/* The editor's file at path (a reference), or NULL. */
struct dsfs_scratch_file *fs_scratch_find(struct dsfs_fs *fs, const char *path);

/* True (with *st filled) when path is an editor's file. */
bool fs_scratch_stat(struct dsfs_fs *fs, const char *path, struct stat *st);

/* Lists the editors' files made beside object (its API URL) in directory path. */
int fs_scratch_list(struct dsfs_fs *fs, const char *path, const char *object, dsfs_fs_fill_fn fill, void *ctx);

/* Why an object file at loc cannot be written here, for the log. */
const char *fs_not_editable(const struct dsfs_fs *fs, const struct dsfs_loc *loc);

/* An editor's file (h->file set at open), and an object file open for writing (-o allow_edit). */
extern const struct fs_handle_ops fs_editor_ops;
extern const struct fs_handle_ops fs_object_edit_ops;

void fs_edits_free(struct dsfs_fs *fs);

/* ---- fs/wait.c: waiting for tasks ----------------------------------------------- */

/* tasks/<id>/wait: a read waits for the task, then gives its outcome's line. */
extern const struct fs_handle_ops fs_wait_ops;

/* Starts watching the task at url for the caller, within the waiting bounds. */
int fs_wait_start(struct dsfs_fs *fs, const char *url, struct dsfs_handle *h, const char *what, const char *id,
		  dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **out);

#endif
