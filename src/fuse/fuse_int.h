/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the files of the FUSE glue share, and nothing outside them sees:
 * the mount's state, an operation as the kernel asked for it, and each
 * part's entry points. From the top down: fuse/loop.c (the mount and
 * libfuse's entry points) -> fuse/ops.c (the callbacks and the table of
 * operations) -> fuse/readdir.c, fuse/pending.c, fuse/queue.c ->
 * fuse/prune.c, fuse/attr.c; no file calls one above it (the queue runs an
 * operation through its entry of the table, scripts/deps checks).
 */
#ifndef DSFS_FUSE_INT_H
#define DSFS_FUSE_INT_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "fuse/loop.h"
#include "fuse/nodes.h"

/* The mount, as every part of the glue sees it; set before the session starts, read-only after. */
struct dsfs_fuse {
	struct dsfs_estate *e;
	struct dsfs_nodes *nodes;
	struct fuse_session *se;
	double entry_ttl, attr_ttl;
	char mount_dir[PATH_MAX]; /* the mountpoint, absolute; "" for "/" */
	/* -o uid=, gid=, umask= */
	unsigned uid, gid, umask;
	int set_uid, set_gid, set_umask;
};

extern struct dsfs_fuse dsfs_fuse;

/* ---- fuse/attr.c: what the kernel is told of a file -------------------------------- */

/* Applies the -o uid, gid and umask overrides to st. */
void dsfs_fuse_own(struct stat *st);

/* How long the kernel may keep the attributes st of a file with DSFS_FS_* flags. */
double dsfs_fuse_attr_ttl(const struct stat *st, unsigned flags);

/* Resolves name in parent into e (counting one lookup); 0 or a negative errno. */
int dsfs_fuse_entry(fuse_ino_t parent, const char *name, struct fuse_entry_param *e);

/* ---- fuse/queue.c: operations in fair shares --------------------------------------- */

struct dsfs_fuse_op;

/*
 * An operation of the table (fuse/ops.c, as libfuse's fuse_ll_ops[]): the
 * function that runs it and replies, and its name for logs.
 */
struct dsfs_fuse_op_def {
	void (*run)(struct dsfs_fuse_op *o);
	const char *name;
};

/* One operation, as the kernel asked for it, for running now or in its turn. */
struct dsfs_fuse_op {
	const struct dsfs_fuse_op_def *def;
	fuse_req_t req;
	fuse_ino_t ino;
	struct fuse_file_info fi;
	char *name;           /* LOOKUP, MKDIR, RMDIR, UNLINK, CREATE, RENAME */
	fuse_ino_t newparent; /* RENAME */
	char *newname;        /* RENAME */
	size_t size;          /* READ, WRITE, READDIRPLUS, SETATTR's new size */
	off_t off;
	int to_set;  /* SETATTR; RENAME's flags */
	mode_t mode; /* SETATTR's new mode, uid and gid, as to_set says */
	uid_t uid;
	gid_t gid;
	char *data; /* WRITE: a copy of the bytes */
};

/* Makes the fair shares; 0 or -ENOMEM. */
int dsfs_fuse_queue_start(void);

/* Drops every operation still queued (answered EINTR) and frees the shares. */
void dsfs_fuse_queue_stop(void);

/*
 * Runs o now or queues it in its user's turn; the queue owns o from here
 * on, and frees it once it ran or was answered.
 */
void dsfs_fuse_queue(struct dsfs_fuse_op *o);

/*
 * Runs or queues an operation of def; name, size, offset, bytes (copied)
 * and to_set as it has them. Replies ENOMEM when it cannot be copied.
 */
void dsfs_fuse_submit(fuse_req_t req, const struct dsfs_fuse_op_def *def, fuse_ino_t ino,
		      const struct fuse_file_info *fi, const char *name, size_t size, off_t off, const char *data,
		      int to_set, const struct stat *attr);

/* Frees an operation that was never queued. NULL does nothing. */
void dsfs_fuse_op_free(struct dsfs_fuse_op *o);

/* ---- fuse/pending.c: waits answered later ------------------------------------------ */

/*
 * Starts a read of h (a wait file) that may wait: true when its reply is
 * taken care of (now or later, from the task poller), false when there
 * was nothing to wait for and the caller reads now (*ret 0) or replies
 * with the error *ret.
 */
bool dsfs_fuse_pending_read(fuse_req_t req, struct dsfs_ehandle *h, size_t size, off_t off, int *ret);

/*
 * Starts an rmdir of name in parent, which may wait for the task the
 * delete started: true when its reply is taken care of, false when the
 * caller replies now with *ret (0: removed, and its name drops).
 */
bool dsfs_fuse_pending_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name, int *ret);

/*
 * Reads size bytes of h at off (newest: the content the kernel's pages
 * hold, or NULL) and replies with them or the error: a read answered now
 * and one whose wait ended reply alike.
 */
void dsfs_fuse_reply_read(fuse_req_t req, struct dsfs_ehandle *h, struct dsfs_blob *newest, size_t size, off_t off);

/* Answers every wait still pending (EINTR), and waits for those whose end is being told: the mount is ending. */
void dsfs_fuse_pending_end(void);

/* ---- fuse/readdir.c: directories --------------------------------------------------- */

void dsfs_fuse_opendir(struct dsfs_fuse_op *o);
void dsfs_fuse_readdirplus(struct dsfs_fuse_op *o);

/* Frees the listing an opendir put in fi. */
void dsfs_fuse_releasedir(struct fuse_file_info *fi);
/* At the mount's end, once no operation runs: frees the listings the kernel never released. */
void dsfs_fuse_dirs_end(void);

/* ---- fuse/prune.c: names the kernel is asked to drop -------------------------------- */

/* Starts the pruner, which keeps the kernel's inodes within node_bytes (0: no bound). */
void dsfs_fuse_prune_start(size_t node_bytes);

/* Stops and joins it. Does nothing when it did not start. */
void dsfs_fuse_prune_stop(void);

/* Queues n names a listing lost, for the pruner to drop (as many as it has room for). */
void dsfs_fuse_prune_lost(const struct dsfs_nodes_entry *e, size_t n);

/* ---- fuse/ops.c: the callbacks ------------------------------------------------------- */

extern const struct fuse_lowlevel_ops dsfs_fuse_ll_ops;

#endif
