// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libfuse low-level callbacks. Each converts its arguments (node ids to
 * paths through the node table), calls one estate function and replies;
 * policy lives in fs/fs.c. Operations that may wait for the server run within
 * each user's fair share of threads (fuse/queue.c); a read of
 * tasks/<id>/wait or an rmdir deleted by a task is answered later
 * (fuse/pending.c), and holds no thread while it waits.
 */
#include "fuse/fuse_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/caller.h"

/* The process the request came from (util/caller.h); 0 when unknown. */
static pid_t caller_pid(fuse_req_t req)
{
	return dsfs_caller_process(fuse_req_ctx(req)->pid);
}

/*
 * At a FLUSH: whether the closing process still holds another descriptor
 * of the file at path (a dup, or the copy a shell saved around a
 * redirection), so this close is not its last. The descriptor being closed
 * is already gone from /proc/<pid>/fd.
 */
static bool caller_keeps_open(fuse_req_t req, const char *path)
{
	return dsfs_caller_holds(fuse_req_ctx(req)->pid, dsfs_fuse.mount_dir, path);
}

static struct dsfs_ehandle *handle_of(const struct fuse_file_info *fi)
{
	return (struct dsfs_ehandle *)(uintptr_t)fi->fh;
}

static int path_of(fuse_ino_t ino, char **path)
{
	return dsfs_nodes_path(dsfs_fuse.nodes, ino, path);
}

/* ---- the operations --------------------------------------------------------------- */

static void do_lookup(struct dsfs_fuse_op *o)
{
	struct fuse_entry_param e;
	int ret = dsfs_fuse_entry(o->ino, o->name, &e);

	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_entry(o->req, &e);
}

static void do_getattr(struct dsfs_fuse_op *o)
{
	unsigned flags = 0;
	struct stat st;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_getattr(dsfs_fuse.e, path, &st, &flags);
	free(path);
	if (ret) {
		fuse_reply_err(o->req, -ret);
		return;
	}
	dsfs_fuse_own(&st);
	fuse_reply_attr(o->req, &st, dsfs_fuse_attr_ttl(&st, flags));
}

/* True when a setattr would change the mode or owner the file shows (a change dsfs cannot keep). */
static bool changes_meta(const struct dsfs_fuse_op *o, const char *path)
{
	unsigned flags = 0;
	struct stat st;

	if (!(o->to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		return false;
	if (dsfs_estate_getattr(dsfs_fuse.e, path, &st, &flags))
		return true;
	dsfs_fuse_own(&st);
	return ((o->to_set & FUSE_SET_ATTR_MODE) && (st.st_mode & 07777) != (o->mode & 07777)) ||
		((o->to_set & FUSE_SET_ATTR_UID) && st.st_uid != o->uid) ||
		((o->to_set & FUSE_SET_ATTR_GID) && st.st_gid != o->gid);
}

static void do_setattr(struct dsfs_fuse_op *o)
{
	char *path;
	int ret;

	/*
	 * A size can be set on a control file (so that `>` works) and on a file
	 * being edited; mode, owner and times on editors' files, where they are
	 * accepted and ignored (sed -i copies them), and on editable object
	 * files only when they change nothing shown (EPERM otherwise).
	 */
	ret = path_of(o->ino, &path);
	if (!ret && (o->to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME)))
		ret = dsfs_estate_chmeta(dsfs_fuse.e, path, changes_meta(o, path));
	if (!ret && (o->to_set & FUSE_SET_ATTR_SIZE))
		ret = o->fi.fh ? dsfs_estate_ftruncate(handle_of(&o->fi), (off_t)o->size)
			       : dsfs_estate_truncate(dsfs_fuse.e, path, (off_t)o->size);
	free(path);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		do_getattr(o);
}

static void do_readlink(struct dsfs_fuse_op *o)
{
	char *path, buf[PATH_MAX];
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_readlink(dsfs_fuse.e, path, buf, sizeof(buf));
	free(path);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_readlink(o->req, buf);
}

/*
 * What a dry-run mkdir answers (the kernel wants an entry): a directory
 * that is never kept, looked up again at its next use and not there, for
 * nothing was made.
 */
static int dry_run_entry(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = dsfs_nodes_lookup(dsfs_fuse.nodes, parent, name);
	if (!e->ino)
		return -ENOMEM;
	e->attr.st_ino = e->ino;
	e->attr.st_mode = S_IFDIR | 0555;
	e->attr.st_nlink = 2;
	e->attr.st_uid = getuid();
	e->attr.st_gid = getgid();
	dsfs_fuse_own(&e->attr);
	return 0; /* attr_timeout and entry_timeout 0: nothing of it is kept */
}

static void do_mkdir(struct dsfs_fuse_op *o)
{
	struct fuse_entry_param e;
	char *path;
	int ret = dsfs_nodes_child_path(dsfs_fuse.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_mkdir(dsfs_fuse.e, path);
	free(path);
	if (ret == DSFS_FS_DRY_RUN)
		ret = dry_run_entry(o->ino, o->name, &e);
	else if (!ret)
		ret = dsfs_fuse_entry(o->ino, o->name, &e);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_entry(o->req, &e);
}

static void do_rmdir(struct dsfs_fuse_op *o)
{
	int ret;

	if (dsfs_fuse_pending_rmdir(o->req, o->ino, o->name, &ret))
		return;
	if (!ret)
		dsfs_nodes_unlink(dsfs_fuse.nodes, o->ino, o->name);
	fuse_reply_err(o->req, -ret);
}

static void do_unlink(struct dsfs_fuse_op *o)
{
	char *path;
	int ret = dsfs_nodes_child_path(dsfs_fuse.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_unlink(dsfs_fuse.e, path);
	free(path);
	if (!ret)
		dsfs_nodes_unlink(dsfs_fuse.nodes, o->ino, o->name);
	fuse_reply_err(o->req, -ret);
}

static void do_create(struct dsfs_fuse_op *o)
{
	struct fuse_entry_param e;
	struct dsfs_ehandle *h = NULL;
	char *path;
	int ret = dsfs_nodes_child_path(dsfs_fuse.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_create(dsfs_fuse.e, path, o->fi.flags, caller_pid(o->req), &h);
	free(path);
	if (!ret)
		ret = dsfs_fuse_entry(o->ino, o->name, &e);
	if (ret) {
		if (h)
			dsfs_estate_release(h);
		fuse_reply_err(o->req, -ret);
		return;
	}
	o->fi.fh = (uint64_t)(uintptr_t)h;
	o->fi.direct_io = 1;
	if (fuse_reply_create(o->req, &e, &o->fi) != 0) {
		dsfs_estate_release(h); /* the creator is gone; the file stays until unlinked */
		dsfs_nodes_forget(dsfs_fuse.nodes, e.ino, 1);
	}
}

static void do_rename(struct dsfs_fuse_op *o)
{
	char *from = NULL, *to = NULL;
	int ret = dsfs_nodes_child_path(dsfs_fuse.nodes, o->ino, o->name, &from);

	if (!ret)
		ret = dsfs_nodes_child_path(dsfs_fuse.nodes, o->newparent, o->newname, &to);
	if (!ret)
		ret = dsfs_estate_rename(dsfs_fuse.e, from, to, (unsigned)o->to_set);
	free(from);
	free(to);
	if (!ret)
		dsfs_nodes_rename(dsfs_fuse.nodes, o->ino, o->name, o->newparent, o->newname);
	fuse_reply_err(o->req, -ret);
}

/*
 * Hands content b to the kernel's page cache of ino before its open is
 * answered, so that reading it costs no READ (and on a read-write mount no
 * GETATTR after one, which a read's atime update would cause). Whether the
 * kernel now holds it.
 */
static bool store(fuse_ino_t ino, struct dsfs_blob *b)
{
	struct fuse_bufvec v = FUSE_BUFVEC_INIT(b->len);

	v.buf[0].mem = b->data;
	return fuse_lowlevel_notify_store(dsfs_fuse.se, ino, 0, &v, 0) == 0;
}

/*
 * Whether the kernel may keep ino's pages for an open of content b: they
 * are shared by every descriptor, so they only ever get the newest content
 * an open showed (fuse/nodes.h), whatever older descriptors, evictions and
 * concurrent opens do.
 */
static bool keep_pages(fuse_ino_t ino, struct dsfs_blob *b)
{
	switch (dsfs_nodes_opened(dsfs_fuse.nodes, ino, b, true)) {
	case DSFS_PAGES_KEEP:
		return true;
	case DSFS_PAGES_STORE:
		return store(ino, b);
	default:
		return false; /* the kernel drops what it has: reads come here, and get the newest */
	}
}

/* Counts h's open of ino (a handle with content: what reads fill pages from); the release uncounts it. */
static bool opened(fuse_ino_t ino, struct dsfs_ehandle *h, enum dsfs_caching caching)
{
	struct dsfs_blob *b = dsfs_estate_content(h);
	bool keep = false;

	if (!b)
		return false;
	if (caching == DSFS_CACHING_PAGED) {
		keep = keep_pages(ino, b);
	} else if (caching == DSFS_CACHING_RESIZED) {
		/* the newest, though this handle bypasses the pages; the size and the pages the kernel holds go */
		dsfs_nodes_opened(dsfs_fuse.nodes, ino, b, false);
		fuse_lowlevel_notify_inval_inode(dsfs_fuse.se, ino, 0, 0);
	} else {
		dsfs_nodes_opened(dsfs_fuse.nodes, ino, NULL, false);
	}
	dsfs_blob_unref(b);
	return keep;
}

static void closed(fuse_ino_t ino, struct dsfs_ehandle *h)
{
	struct dsfs_blob *b = dsfs_estate_content(h);

	if (b)
		dsfs_nodes_closed(dsfs_fuse.nodes, ino);
	dsfs_blob_unref(b);
}

static void do_open(struct dsfs_fuse_op *o)
{
	struct dsfs_ehandle *h;
	enum dsfs_caching caching;
	bool writing = (o->fi.flags & O_ACCMODE) != O_RDONLY;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_open(dsfs_fuse.e, path, o->fi.flags, writing ? caller_pid(o->req) : 0, &h, &caching);
	free(path);
	if (ret) {
		fuse_reply_err(o->req, -ret);
		return;
	}
	o->fi.fh = (uint64_t)(uintptr_t)h;
	o->fi.direct_io = caching != DSFS_CACHING_PAGED;
	/* the kernel's pages of an unchanged file serve the next reader: no READ at all */
	o->fi.keep_cache = opened(o->ino, h, caching);
	/* a reader's close has nothing to send: spare the kernel the FLUSH round trip */
	o->fi.noflush = !writing;
	if (fuse_reply_open(o->req, &o->fi) != 0) {
		closed(o->ino, h);
		dsfs_estate_release(h); /* the opener is gone */
	}
}

static void do_read(struct dsfs_fuse_op *o)
{
	struct dsfs_blob *newest;
	int ret = 0;

	/* only a read that may wait (tasks/<id>/wait) is answered later: others go straight on */
	if (dsfs_estate_read_waits(handle_of(&o->fi)) &&
	    dsfs_fuse_pending_read(o->req, handle_of(&o->fi), o->size, o->off, &ret))
		return;
	if (ret) {
		fuse_reply_err(o->req, -ret);
		return;
	}
	newest = dsfs_nodes_newest(dsfs_fuse.nodes, o->ino);
	dsfs_fuse_reply_read(o->req, handle_of(&o->fi), newest, o->size, o->off);
	dsfs_blob_unref(newest);
}

static void do_write(struct dsfs_fuse_op *o)
{
	int ret = dsfs_estate_write(handle_of(&o->fi), o->data, o->size, o->off, caller_pid(o->req));

	if (ret < 0)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_write(o->req, (size_t)ret);
}

static void do_flush(struct dsfs_fuse_op *o)
{
	char *path = NULL;
	bool keeps;

	keeps = path_of(o->ino, &path) == 0 && caller_keeps_open(o->req, path);
	free(path);
	fuse_reply_err(o->req, -dsfs_estate_flush(handle_of(&o->fi), caller_pid(o->req), keeps));
}

static void do_statfs(struct dsfs_fuse_op *o)
{
	struct statvfs sv;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_statfs(dsfs_fuse.e, path, &sv);
	free(path);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_statfs(o->req, &sv);
}

/*
 * The operations that may wait for the server, as libfuse's fuse_ll_ops[]:
 * each callback below copies its arguments into an operation of one of
 * these, which runs in its user's fair share (fuse/queue.c). FORGET,
 * RELEASE and RELEASEDIR never wait, and run in the callback.
 */
enum op_kind {
	OP_LOOKUP,
	OP_GETATTR,
	OP_SETATTR,
	OP_READLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_UNLINK,
	OP_OPEN,
	OP_READ,
	OP_WRITE,
	OP_FLUSH,
	OP_OPENDIR,
	OP_READDIRPLUS,
	OP_STATFS,
	OP_CREATE,
	OP_RENAME
};

// clang-format off
static const struct dsfs_fuse_op_def op_table[] = {
	[OP_LOOKUP]      = { do_lookup,             "LOOKUP" },
	[OP_GETATTR]     = { do_getattr,            "GETATTR" },
	[OP_SETATTR]     = { do_setattr,            "SETATTR" },
	[OP_READLINK]    = { do_readlink,           "READLINK" },
	[OP_MKDIR]       = { do_mkdir,              "MKDIR" },
	[OP_RMDIR]       = { do_rmdir,              "RMDIR" },
	[OP_UNLINK]      = { do_unlink,             "UNLINK" },
	[OP_OPEN]        = { do_open,               "OPEN" },
	[OP_READ]        = { do_read,               "READ" },
	[OP_WRITE]       = { do_write,              "WRITE" },
	[OP_FLUSH]       = { do_flush,              "FLUSH" },
	[OP_OPENDIR]     = { dsfs_fuse_opendir,     "OPENDIR" },
	[OP_READDIRPLUS] = { dsfs_fuse_readdirplus, "READDIRPLUS" },
	[OP_STATFS]      = { do_statfs,             "STATFS" },
	[OP_CREATE]      = { do_create,             "CREATE" },
	[OP_RENAME]      = { do_rename,             "RENAME" },
};
// clang-format on

static void submit(fuse_req_t req, enum op_kind kind, fuse_ino_t ino, const struct fuse_file_info *fi, const char *name)
{
	dsfs_fuse_submit(req, &op_table[kind], ino, fi, name, 0, 0, NULL, 0, NULL);
}

static void submit_io(fuse_req_t req, enum op_kind kind, fuse_ino_t ino, const struct fuse_file_info *fi, size_t size,
		      off_t off, const char *data, int to_set, const struct stat *attr)
{
	dsfs_fuse_submit(req, &op_table[kind], ino, fi, NULL, size, off, data, to_set, attr);
}

/* ---- libfuse's entry points ------------------------------------------------------- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* READDIRPLUS always, so a listing brings every entry's attributes and `ls -l` needs no lookups */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* exact writes: control files see each write(2) as it was made */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* `>` of an edited object file arrives as an open with O_TRUNC, not a truncate before it */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	submit(req, OP_LOOKUP, parent, NULL, name);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	dsfs_nodes_forget(dsfs_fuse.nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		dsfs_nodes_forget(dsfs_fuse.nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	submit(req, OP_GETATTR, ino, NULL, NULL);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	submit_io(req, OP_SETATTR, ino, fi, (size_t)attr->st_size, 0, NULL, to_set, attr);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	submit(req, OP_READLINK, ino, NULL, NULL);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	submit(req, OP_MKDIR, parent, NULL, name);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	submit(req, OP_RMDIR, parent, NULL, name);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	submit(req, OP_UNLINK, parent, NULL, name);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode; /* editors' files are the owner's, 0644 */
	submit(req, OP_CREATE, parent, fi, name);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct dsfs_fuse_op *o = calloc(1, sizeof(*o));

	if (!o || !(o->name = strdup(name)) || !(o->newname = strdup(newname))) {
		dsfs_fuse_op_free(o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->def = &op_table[OP_RENAME];
	o->req = req;
	o->ino = parent;
	o->newparent = newparent;
	o->to_set = (int)flags;
	dsfs_fuse_queue(o);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	submit(req, OP_OPEN, ino, fi, NULL);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	submit_io(req, OP_READ, ino, fi, size, off, NULL, 0, NULL);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)off; /* commands are appended: `>` and `>>` both work */
	submit_io(req, OP_WRITE, ino, fi, size, off, buf, 0, NULL);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	submit(req, OP_FLUSH, ino, fi, NULL);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	closed(ino, handle_of(fi));
	dsfs_estate_release(handle_of(fi)); /* sends nothing: a command without its newline is discarded */
	fuse_reply_err(req, 0);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	submit(req, OP_OPENDIR, ino, fi, NULL);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	submit_io(req, OP_READDIRPLUS, ino, fi, size, off, NULL, 0, NULL);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dsfs_fuse_releasedir(fi);
	fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	submit(req, OP_STATFS, ino, NULL, NULL);
}

const struct fuse_lowlevel_ops dsfs_fuse_ll_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mkdir = ll_mkdir,
	.rmdir = ll_rmdir,
	.unlink = ll_unlink,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.flush = ll_flush,
	.release = ll_release,
	.opendir = ll_opendir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.statfs = ll_statfs,
	.create = ll_create,
	.rename = ll_rename,
};
