// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libfuse low-level callbacks. Each converts its arguments (node ids to
 * paths through the node table), calls one estate function and replies;
 * policy lives in fs.c. Operations that may wait for the server run within
 * each user's fair share of threads (admit.h); a read of tasks/<id>/wait or
 * an rmdir deleted by a task is answered later, from the task poller, and
 * holds no thread while it waits.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "fuse_ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "caller.h"
#include "log.h"
#include "nodes.h"

/* A wait answered later: a read of tasks/<id>/wait, or an rmdir. */
struct pending {
	fuse_req_t req;
	struct dsfs_ehandle *h;     /* read: the handle, and what was asked */
	size_t size;
	off_t off;
	fuse_ino_t parent;          /* rmdir: the entry removed, and its path */
	char *name, *path;
	struct dsfs_fs_wait *w;     /* the wait, once started */
	pthread_mutex_t lock;
	bool interrupted, finished; /* finished: its reply is claimed */
	int refs;
	struct pending *prev, *next; /* in the mount's list */
};

static struct {
	struct dsfs_estate *e;
	struct dsfs_nodes *nodes;
	struct dsfs_admit *admit;
	struct fuse_session *se;
	double entry_ttl, attr_ttl;
	char mount_dir[PATH_MAX]; /* the mountpoint, absolute; "" for "/" */
	/* -o uid=, gid=, umask= */
	unsigned uid, gid, umask;
	int set_uid, set_gid, set_umask;
	pthread_mutex_t lock;     /* guards pending */
	struct pending *pending;
	/* the pruner: keeps the kernel's inodes within node_bytes, and drops names listings lost */
	size_t node_bytes;
	pthread_t pruner;
	bool pruning, prune_stop;
	pthread_mutex_t prune_lock;
	pthread_cond_t prune_cond;
	struct dsfs_nodes_entry *lost; /* names to drop (prune_lock) */
	size_t nlost;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .prune_lock = PTHREAD_MUTEX_INITIALIZER,
	.prune_cond = PTHREAD_COND_INITIALIZER };

/* ---- the caller ------------------------------------------------------------------ */

static bool req_gone(void *req)
{
	return fuse_req_interrupted(req) || fuse_session_exited(g.se);
}

/*
 * The process the request came from: the kernel names the thread, and the
 * threads of one program are one writer. 0 when unknown (another pid
 * namespace).
 */
static pid_t caller_pid(fuse_req_t req)
{
	pid_t tid = fuse_req_ctx(req)->pid, tgid = tid;
	char path[64], line[128];
	FILE *f;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/*
 * At a FLUSH: whether the closing process still holds another descriptor
 * of the file at path (a dup, or the copy a shell saved around a
 * redirection), so this close is not its last. The descriptor being closed
 * is already gone from /proc/<pid>/fd. False when that cannot be read.
 */
static bool caller_keeps_open(fuse_req_t req, const char *path)
{
	pid_t tid = fuse_req_ctx(req)->pid;
	char dir[64], link[320], want[PATH_MAX], got[PATH_MAX];
	bool found = false;
	struct dirent *d;
	DIR *fds;

	if (tid <= 0 || (size_t)snprintf(want, sizeof(want), "%s%s", g.mount_dir, path) >= sizeof(want))
		return false;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)tid);
	fds = opendir(dir);
	if (!fds)
		return false;
	while (!found && (d = readdir(fds))) {
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, d->d_name);
		n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = '\0';
			found = !strcmp(got, want);
		}
	}
	closedir(fds);
	return found;
}

/* ---- attributes ------------------------------------------------------------------ */

/* The -o uid, gid and umask overrides. */
static void own(struct stat *st)
{
	if (g.set_uid)
		st->st_uid = g.uid;
	if (g.set_gid)
		st->st_gid = g.gid;
	if (g.set_umask)
		st->st_mode &= ~(mode_t)g.umask | S_IFMT;
}

/* Resolves name in parent into e (counting one lookup); 0 or a negative errno. */
/*
 * How long the kernel may keep attributes: a live file's never, so that
 * `tail -f tasks/<id>/log` sees its size grow as the server's log does;
 * a directory's as long as its name (nothing in them a reader relies on
 * changes), so that with cache_ttl=0 opening a file does not cost a
 * GETATTR per path component; an object's file's as long too, since its
 * size changes only when it is fetched, and an open that fetched another
 * size tells the kernel at once (do_open) as does a listing (do_opendir);
 * the rest for cache_ttl (a link such as tasks/latest can go or change at
 * any action, a control file's result at any write).
 */
static double attr_ttl(const struct stat *st, unsigned flags)
{
	if (flags & DSFS_FS_LIVE)
		return 0;
	return S_ISDIR(st->st_mode) || (flags & DSFS_FS_FETCHED) ? g.entry_ttl : g.attr_ttl;
}

static int entry_of(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	unsigned flags;
	char *path;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = dsfs_nodes_child_path(g.nodes, parent, name, &path);
	if (ret)
		return ret;
	ret = dsfs_estate_getattr(g.e, path, &e->attr, &flags);
	free(path);
	if (ret)
		return ret;
	own(&e->attr);
	e->ino = dsfs_nodes_lookup(g.nodes, parent, name);
	if (!e->ino)
		return -ENOMEM;
	e->attr_timeout = attr_ttl(&e->attr, flags);
	e->entry_timeout = g.entry_ttl;
	return 0;
}

/* ---- operations in fair shares --------------------------------------------------- */

enum op_kind { OP_LOOKUP, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKDIR, OP_RMDIR, OP_UNLINK, OP_OPEN,
	       OP_READ, OP_WRITE, OP_FLUSH, OP_OPENDIR, OP_READDIRPLUS, OP_STATFS, OP_CREATE, OP_RENAME };

/* One operation, as the kernel asked for it, for running now or in its turn. */
struct op {
	enum op_kind kind;
	fuse_req_t req;
	fuse_ino_t ino;
	struct fuse_file_info fi;
	char *name;        /* LOOKUP, MKDIR, RMDIR, UNLINK, CREATE, RENAME */
	fuse_ino_t newparent; /* RENAME */
	char *newname;     /* RENAME */
	size_t size;       /* READ, WRITE, READDIRPLUS, SETATTR's new size */
	off_t off;
	int to_set;        /* SETATTR */
	mode_t mode;       /* SETATTR's new mode, uid and gid, as to_set says */
	uid_t uid;
	gid_t gid;
	char *data;        /* WRITE: a copy of the bytes */
};

static void run_op(struct op *o);

static void op_free(struct op *o)
{
	free(o->name);
	free(o->newname);
	free(o->data);
	free(o);
}

static void job(void *arg, bool run)
{
	struct op *o = arg;

	/* from here on no interrupt callback can come for o (one running is waited for) */
	fuse_req_interrupt_func(o->req, NULL, NULL);
	if (run && !fuse_req_interrupted(o->req)) {
		dsfs_caller_set(fuse_req_ctx(o->req)->uid, o->req);
		run_op(o);
		dsfs_caller_clear();
	} else {
		fuse_reply_err(o->req, EINTR);
	}
	op_free(o);
}

/* A reader interrupted (or killed) while its operation waits its turn: it is answered at once. */
static void queued_interrupt(fuse_req_t req, void *arg)
{
	if (dsfs_admit_withdraw(g.admit, arg)) {
		fuse_reply_err(req, EINTR);
		op_free(arg);
	}
}

static void admit(struct op *o)
{
	fuse_req_interrupt_func(o->req, queued_interrupt, o);
	dsfs_admit_run(g.admit, fuse_req_ctx(o->req)->uid, job, o);
}

/* Runs or queues an operation; name, size, offset, bytes (copied) and to_set as it has them. */
static void submit_io(fuse_req_t req, enum op_kind kind, fuse_ino_t ino, const struct fuse_file_info *fi,
		      const char *name, size_t size, off_t off, const char *data, int to_set, const struct stat *attr)
{
	struct op *o = calloc(1, sizeof(*o));

	if (!o || (name && !(o->name = strdup(name))) || (data && !(o->data = malloc(size ? size : 1)))) {
		if (o)
			op_free(o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (data)
		memcpy(o->data, data, size);
	o->kind = kind;
	o->req = req;
	o->ino = ino;
	o->size = size;
	o->off = off;
	o->to_set = to_set;
	if (attr) {
		o->mode = attr->st_mode;
		o->uid = attr->st_uid;
		o->gid = attr->st_gid;
	}
	if (fi)
		o->fi = *fi;
	admit(o);
}

static void submit(fuse_req_t req, enum op_kind kind, fuse_ino_t ino, const struct fuse_file_info *fi,
		   const char *name)
{
	submit_io(req, kind, ino, fi, name, 0, 0, NULL, 0, NULL);
}

static struct dsfs_ehandle *handle_of(const struct fuse_file_info *fi)
{
	return (struct dsfs_ehandle *)(uintptr_t)fi->fh;
}

/* ---- waits answered later --------------------------------------------------------- */

static void pending_unref(struct pending *p)
{
	bool last;

	pthread_mutex_lock(&p->lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (!last)
		return;
	pthread_mutex_lock(&g.lock);
	if (p->prev)
		p->prev->next = p->next;
	else
		g.pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	pthread_mutex_unlock(&g.lock);
	pthread_mutex_destroy(&p->lock);
	free(p->name);
	free(p->path);
	free(p);
}

/*
 * Replies to a pending request whose reply this thread claimed, from
 * outside its interrupt callback: clearing the callback first waits for
 * one that is running, so none can run once p is gone.
 */
static void pending_reply(struct pending *p, int ret)
{
	fuse_req_interrupt_func(p->req, NULL, NULL);
	if (ret < 0) {
		fuse_reply_err(p->req, -ret);
	} else if (p->h) {
		char *buf = malloc(p->size ? p->size : 1);
		int n = buf ? dsfs_estate_read(p->h, NULL, buf, p->size, p->off) : -ENOMEM; /* a wait file: never paged */

		if (n < 0)
			fuse_reply_err(p->req, -n);
		else
			fuse_reply_buf(p->req, buf, (size_t)n);
		free(buf);
	} else {
		dsfs_nodes_unlink(g.nodes, p->parent, p->name);
		fuse_reply_err(p->req, 0);
	}
}

/* The wait ended (on the task poller's thread). */
static void pending_done(void *arg, int ret)
{
	struct pending *p = arg;
	bool mine;

	pthread_mutex_lock(&p->lock);
	mine = !p->finished;
	p->finished = true;
	pthread_mutex_unlock(&p->lock);
	if (mine)
		pending_reply(p, ret);
	pending_unref(p); /* the wait's */
}

/* The reader was interrupted (under libfuse's lock of the request). */
static void pending_interrupt(fuse_req_t req, void *arg)
{
	struct pending *p = arg;
	bool mine = false;

	pthread_mutex_lock(&p->lock);
	p->interrupted = true;
	if (!p->finished && p->w && dsfs_fs_wait_cancel(p->w))
		mine = p->finished = true;
	pthread_mutex_unlock(&p->lock);
	if (mine) {
		fuse_reply_err(req, EINTR);
		pending_unref(p); /* the wait's: it will not end now */
	}
}

static struct pending *pending_new(fuse_req_t req)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->req = req;
	p->refs = 1; /* the starter's */
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_lock(&g.lock);
	p->next = g.pending;
	if (g.pending)
		g.pending->prev = p;
	g.pending = p;
	pthread_mutex_unlock(&g.lock);
	return p;
}

/*
 * Starts the wait start() begins for p, answering later when it does:
 * returns true when the reply is taken care of, false when start found
 * nothing to wait for (*ret says what to do now).
 */
static bool pending_start(struct pending *p, int (*start)(struct pending *p), int *ret)
{
	bool later = false;

	fuse_req_interrupt_func(p->req, pending_interrupt, p); /* may run at once */
	pthread_mutex_lock(&p->lock);
	if (p->interrupted) {
		*ret = -EINTR;
	} else {
		p->refs++; /* the wait's */
		*ret = start(p);
		later = *ret == DSFS_FS_WAITING;
		if (!later)
			p->refs--;
	}
	if (!later)
		p->finished = true;
	pthread_mutex_unlock(&p->lock);
	if (!later)
		fuse_req_interrupt_func(p->req, NULL, NULL);
	pending_unref(p); /* the starter's */
	return later;
}

static int start_read_wait(struct pending *p)
{
	return dsfs_estate_read_wait(p->h, pending_done, p, &p->w);
}

/* ---- the operations --------------------------------------------------------------- */

static void do_lookup(struct op *o)
{
	struct fuse_entry_param e;
	int ret = entry_of(o->ino, o->name, &e);

	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_entry(o->req, &e);
}

static int path_of(fuse_ino_t ino, char **path)
{
	return dsfs_nodes_path(g.nodes, ino, path);
}

static void do_getattr(struct op *o)
{
	unsigned flags = 0;
	struct stat st;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_getattr(g.e, path, &st, &flags);
	free(path);
	if (ret) {
		fuse_reply_err(o->req, -ret);
		return;
	}
	own(&st);
	fuse_reply_attr(o->req, &st, attr_ttl(&st, flags));
}

/* True when a setattr would change the mode or owner the file shows (a change dsfs cannot keep). */
static bool changes_meta(const struct op *o, const char *path)
{
	unsigned flags = 0;
	struct stat st;

	if (!(o->to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		return false;
	if (dsfs_estate_getattr(g.e, path, &st, &flags))
		return true;
	own(&st);
	return ((o->to_set & FUSE_SET_ATTR_MODE) && (st.st_mode & 07777) != (o->mode & 07777)) ||
	       ((o->to_set & FUSE_SET_ATTR_UID) && st.st_uid != o->uid) ||
	       ((o->to_set & FUSE_SET_ATTR_GID) && st.st_gid != o->gid);
}

static void do_setattr(struct op *o)
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
		ret = dsfs_estate_chmeta(g.e, path, changes_meta(o, path));
	if (!ret && (o->to_set & FUSE_SET_ATTR_SIZE))
		ret = o->fi.fh ? dsfs_estate_ftruncate(handle_of(&o->fi), (off_t)o->size)
			       : dsfs_estate_truncate(g.e, path, (off_t)o->size);
	free(path);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		do_getattr(o);
}

static void do_readlink(struct op *o)
{
	char *path, buf[PATH_MAX];
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_readlink(g.e, path, buf, sizeof(buf));
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
	e->ino = dsfs_nodes_lookup(g.nodes, parent, name);
	if (!e->ino)
		return -ENOMEM;
	e->attr.st_ino = e->ino;
	e->attr.st_mode = S_IFDIR | 0555;
	e->attr.st_nlink = 2;
	e->attr.st_uid = getuid();
	e->attr.st_gid = getgid();
	own(&e->attr);
	return 0; /* attr_timeout and entry_timeout 0: nothing of it is kept */
}

static void do_mkdir(struct op *o)
{
	struct fuse_entry_param e;
	char *path;
	int ret = dsfs_nodes_child_path(g.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_mkdir(g.e, path);
	free(path);
	if (ret == DSFS_FS_DRY_RUN)
		ret = dry_run_entry(o->ino, o->name, &e);
	else if (!ret)
		ret = entry_of(o->ino, o->name, &e);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_entry(o->req, &e);
}

static int start_rmdir(struct pending *p)
{
	return dsfs_estate_rmdir(g.e, p->path, pending_done, p, &p->w);
}

static void do_rmdir(struct op *o)
{
	struct pending *p = pending_new(o->req);
	int ret = p ? dsfs_nodes_child_path(g.nodes, o->ino, o->name, &p->path) : -ENOMEM;

	if (!ret && !(p->name = strdup(o->name)))
		ret = -ENOMEM;
	if (ret) {
		if (p)
			pending_unref(p);
		fuse_reply_err(o->req, -ret);
		return;
	}
	p->parent = o->ino;
	if (!pending_start(p, start_rmdir, &ret)) {
		if (!ret)
			dsfs_nodes_unlink(g.nodes, o->ino, o->name);
		fuse_reply_err(o->req, -ret);
	}
}

static void do_unlink(struct op *o)
{
	char *path;
	int ret = dsfs_nodes_child_path(g.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_unlink(g.e, path);
	free(path);
	if (!ret)
		dsfs_nodes_unlink(g.nodes, o->ino, o->name);
	fuse_reply_err(o->req, -ret);
}

static void do_create(struct op *o)
{
	struct fuse_entry_param e;
	struct dsfs_ehandle *h = NULL;
	char *path;
	int ret = dsfs_nodes_child_path(g.nodes, o->ino, o->name, &path);

	if (!ret)
		ret = dsfs_estate_create(g.e, path, o->fi.flags, caller_pid(o->req), &h);
	free(path);
	if (!ret)
		ret = entry_of(o->ino, o->name, &e);
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
		dsfs_nodes_forget(g.nodes, e.ino, 1);
	}
}

static void do_rename(struct op *o)
{
	char *from = NULL, *to = NULL;
	int ret = dsfs_nodes_child_path(g.nodes, o->ino, o->name, &from);

	if (!ret)
		ret = dsfs_nodes_child_path(g.nodes, o->newparent, o->newname, &to);
	if (!ret)
		ret = dsfs_estate_rename(g.e, from, to, (unsigned)o->to_set);
	free(from);
	free(to);
	if (!ret)
		dsfs_nodes_rename(g.nodes, o->ino, o->name, o->newparent, o->newname);
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
	return fuse_lowlevel_notify_store(g.se, ino, 0, &v, 0) == 0;
}

/*
 * Whether the kernel may keep ino's pages for an open of content b: they
 * are shared by every descriptor, so they only ever get the newest content
 * an open showed (nodes.h), whatever older descriptors, evictions and
 * concurrent opens do.
 */
static bool keep_pages(fuse_ino_t ino, struct dsfs_blob *b)
{
	switch (dsfs_nodes_opened(g.nodes, ino, b, true)) {
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
		dsfs_nodes_opened(g.nodes, ino, b, false);
		fuse_lowlevel_notify_inval_inode(g.se, ino, 0, 0);
	} else {
		dsfs_nodes_opened(g.nodes, ino, NULL, false);
	}
	dsfs_blob_unref(b);
	return keep;
}

static void closed(fuse_ino_t ino, struct dsfs_ehandle *h)
{
	struct dsfs_blob *b = dsfs_estate_content(h);

	if (b)
		dsfs_nodes_closed(g.nodes, ino);
	dsfs_blob_unref(b);
}

static void do_open(struct op *o)
{
	struct dsfs_ehandle *h;
	enum dsfs_caching caching;
	bool writing = (o->fi.flags & O_ACCMODE) != O_RDONLY;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_open(g.e, path, o->fi.flags, writing ? caller_pid(o->req) : 0, &h, &caching);
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

static void do_read(struct op *o)
{
	struct dsfs_blob *newest;
	struct pending *p;
	char *buf;
	int ret = 0;

	/* only a read that may wait (tasks/<id>/wait) is answered later: others go straight on */
	if (dsfs_estate_read_waits(handle_of(&o->fi))) {
		p = pending_new(o->req);
		if (!p) {
			fuse_reply_err(o->req, ENOMEM);
			return;
		}
		p->h = handle_of(&o->fi);
		p->size = o->size;
		p->off = o->off;
		if (pending_start(p, start_read_wait, &ret))
			return;
	}
	if (ret) {
		fuse_reply_err(o->req, -ret);
		return;
	}
	buf = malloc(o->size ? o->size : 1);
	newest = dsfs_nodes_newest(g.nodes, o->ino);
	ret = buf ? dsfs_estate_read(handle_of(&o->fi), newest, buf, o->size, o->off) : -ENOMEM;
	dsfs_blob_unref(newest);
	if (ret < 0)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_buf(o->req, buf, (size_t)ret);
	free(buf);
}

static void do_write(struct op *o)
{
	int ret = dsfs_estate_write(handle_of(&o->fi), o->data, o->size, o->off, caller_pid(o->req));

	if (ret < 0)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_write(o->req, (size_t)ret);
}

static void do_flush(struct op *o)
{
	char *path = NULL;
	bool keeps;

	keeps = path_of(o->ino, &path) == 0 && caller_keeps_open(o->req, path);
	free(path);
	fuse_reply_err(o->req, -dsfs_estate_flush(handle_of(&o->fi), caller_pid(o->req), keeps));
}

/* ---- directories ------------------------------------------------------------------ */

/* A listing taken at opendir (or rewinddir) and handed out in pieces. */
struct dir_entry {
	struct stat st;
	unsigned flags; /* DSFS_FS_COMPLETE: st holds every attribute, not only the type and inode */
	char *name;
};

struct dir {
	struct dir_entry *e;
	size_t n, cap;
	bool listed;
	bool opened;  /* listed at opendir, not yet read: the first read hands that listing out */
};

static int collect(void *ctx, const char *name, const struct stat *st, unsigned flags)
{
	struct dir *d = ctx;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dir_entry *e = realloc(d->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		d->e = e;
		d->cap = cap;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].st = *st;
	d->e[d->n].flags = flags;
	own(&d->e[d->n].st);
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

static void lost_queue(const struct dsfs_nodes_entry *e, size_t n);

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
		got = dsfs_nodes_held_except(g.nodes, ino, listed, &s, out, LOST_AT_ONCE);
		if (got)
			lost_queue(out, got);
	}
	free(out);
	free(s.v);
}

static int list(struct op *o, struct dir *d)
{
	char *path;
	int ret;

	dir_clear(d);
	ret = path_of(o->ino, &path);
	if (!ret)
		ret = dsfs_estate_readdir(g.e, path, collect, d);
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
static void do_opendir(struct op *o)
{
	struct dir *d = calloc(1, sizeof(*d));
	int ret = d ? list(o, d) : -ENOMEM;

	if (ret) {
		dir_free(d);
		fuse_reply_err(o->req, -ret);
		return;
	}
	d->opened = true;
	o->fi.fh = (uint64_t)(uintptr_t)d;
	o->fi.cache_readdir = 1;
	o->fi.keep_cache = dsfs_nodes_listed(g.nodes, o->ino, listing_digest(d));
	if (!o->fi.keep_cache)
		drop_lost(o->ino, d);
	if (fuse_reply_open(o->req, &o->fi) != 0)
		dir_free(d);
}

static void do_readdirplus(struct op *o)
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
		if (!dsfs_nodes_listed(g.nodes, o->ino, listing_digest(d)))
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
		    (e.ino = dsfs_nodes_lookup(g.nodes, o->ino, name))) {
			e.attr_timeout = attr_ttl(&e.attr, d->e[i - 2].flags);
			e.entry_timeout = g.entry_ttl;
		}
		used += fuse_add_direntry_plus(o->req, buf + used, o->size - used, name, &e, (off_t)i + 1);
	}
	fuse_reply_buf(o->req, buf, used);
	free(buf);
}

static void do_statfs(struct op *o)
{
	struct statvfs sv;
	char *path;
	int ret = path_of(o->ino, &path);

	if (!ret)
		ret = dsfs_estate_statfs(g.e, path, &sv);
	free(path);
	if (ret)
		fuse_reply_err(o->req, -ret);
	else
		fuse_reply_statfs(o->req, &sv);
}

static void run_op(struct op *o)
{
	switch (o->kind) {
	case OP_LOOKUP: do_lookup(o); break;
	case OP_GETATTR: do_getattr(o); break;
	case OP_SETATTR: do_setattr(o); break;
	case OP_READLINK: do_readlink(o); break;
	case OP_MKDIR: do_mkdir(o); break;
	case OP_RMDIR: do_rmdir(o); break;
	case OP_UNLINK: do_unlink(o); break;
	case OP_OPEN: do_open(o); break;
	case OP_READ: do_read(o); break;
	case OP_WRITE: do_write(o); break;
	case OP_FLUSH: do_flush(o); break;
	case OP_OPENDIR: do_opendir(o); break;
	case OP_READDIRPLUS: do_readdirplus(o); break;
	case OP_STATFS: do_statfs(o); break;
	case OP_CREATE: do_create(o); break;
	case OP_RENAME: do_rename(o); break;
	}
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
	dsfs_nodes_forget(g.nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		dsfs_nodes_forget(g.nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	submit(req, OP_GETATTR, ino, NULL, NULL);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	submit_io(req, OP_SETATTR, ino, fi, NULL, (size_t)attr->st_size, 0, NULL, to_set, attr);
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

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct op *o = calloc(1, sizeof(*o));

	if (!o || !(o->name = strdup(name)) || !(o->newname = strdup(newname))) {
		if (o)
			op_free(o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	o->kind = OP_RENAME;
	o->req = req;
	o->ino = parent;
	o->newparent = newparent;
	o->to_set = (int)flags;
	admit(o);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	submit(req, OP_OPEN, ino, fi, NULL);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	submit_io(req, OP_READ, ino, fi, NULL, size, off, NULL, 0, NULL);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)off; /* commands are appended: `>` and `>>` both work */
	submit_io(req, OP_WRITE, ino, fi, NULL, size, off, buf, 0, NULL);
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
	submit_io(req, OP_READDIRPLUS, ino, fi, NULL, size, off, NULL, 0, NULL);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;

	(void)ino;
	dir_free(d);
	fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	submit(req, OP_STATFS, ino, NULL, NULL);
}

static const struct fuse_lowlevel_ops ops = {
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

/* ---- the mount --------------------------------------------------------------------- */

/*
 * Options of libfuse's high-level library that a low-level file system
 * does not get: uid, gid and umask are applied here; the rest concern
 * caches and inode handling dsfs does itself, and are accepted and
 * ignored so that existing fstab lines keep working.
 */
#define GLUE_OPT(t, p) { t, offsetof(__typeof__(g), p), 1 }
static const struct fuse_opt glue_opts[] = {
	{ "uid=%u", offsetof(__typeof__(g), uid), 0 },
	{ "gid=%u", offsetof(__typeof__(g), gid), 0 },
	{ "umask=%o", offsetof(__typeof__(g), umask), 0 },
	GLUE_OPT("uid=", set_uid),
	GLUE_OPT("gid=", set_gid),
	GLUE_OPT("umask=", set_umask),
	FUSE_OPT_KEY("entry_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("attr_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("ac_attr_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("negative_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("kernel_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("no_rofd_flush", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noforget", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("remember=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("use_ino", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("readdir_ino", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("hard_remove", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("intr", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("intr_signal=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

void dsfs_fuse_print_help(struct fuse_args *args)
{
	(void)args;
	fuse_lowlevel_help();
	printf("    -o uid=N               owner of every file (default: the user who mounted)\n"
	       "    -o gid=N               group of every file\n"
	       "    -o umask=M             permission bits to clear (octal)\n"
	       "    -o entry_timeout=T, -o attr_timeout=T, -o ac_attr_timeout=T, -o negative_timeout=T\n"
	       "                           accepted; dsfs derives them from cache_ttl\n"
	       "    -o kernel_cache, -o auto_cache, -o noauto_cache, -o no_rofd_flush, -o noforget, -o remember=T\n"
	       "                           accepted; dsfs manages the kernel's caches and inodes itself\n");
}

const char *dsfs_fuse_version(void)
{
	return fuse_pkgversion();
}

int dsfs_fuse_parse_cmdline(struct fuse_args *args, char **mountpoint, bool *foreground,
			    bool *debug, bool *single_thread)
{
	struct fuse_cmdline_opts co = { 0 };

	if (fuse_parse_cmdline(args, &co) != 0)
		return -EINVAL;
	*mountpoint = co.mountpoint;
	*foreground = co.foreground || co.debug;
	*debug = co.debug;
	*single_thread = co.singlethread;
	if (co.debug) /* fuse_parse_cmdline consumed -d; the session wants it too */
		fuse_opt_add_arg(args, "-odebug");
	return co.mountpoint ? 0 : -EINVAL;
}

/* Answers every wait still pending: the mount is ending. */
static void end_pending(void)
{
	for (;;) {
		struct pending *p;
		bool mine = false;

		pthread_mutex_lock(&g.lock);
		for (p = g.pending; p; p = p->next) {
			pthread_mutex_lock(&p->lock);
			if (!p->finished && p->w && dsfs_fs_wait_cancel(p->w))
				mine = p->finished = true;
			pthread_mutex_unlock(&p->lock);
			if (mine)
				break;
		}
		pthread_mutex_unlock(&g.lock);
		if (!p)
			return;
		pending_reply(p, -EINTR);
		pending_unref(p);
	}
}

/* ---- names the kernel is asked to drop ---------------------------------------------- */

#define PRUNE_BATCH 256
#define PRUNE_MAX 16384 /* names asked for at most per round (10 rounds a second) */
#define LOST_MAX 4096   /* lost names waiting to be dropped; more wait for their entry timeout */

static void lost_queue(const struct dsfs_nodes_entry *e, size_t n)
{
	pthread_mutex_lock(&g.prune_lock);
	if (g.pruning && g.lost) {
		if (n > LOST_MAX - g.nlost)
			n = LOST_MAX - g.nlost;
		memcpy(g.lost + g.nlost, e, n * sizeof(*e));
		g.nlost += n;
		pthread_cond_signal(&g.prune_cond);
	}
	pthread_mutex_unlock(&g.prune_lock);
}

static void inval_entries(const struct dsfs_nodes_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_entry(g.se, e[i].parent, e[i].name, strlen(e[i].name));
}

/*
 * The kernel holds an inode, and dsfs a node, for every name it looked up
 * until it forgets it, which it does only under its own memory pressure,
 * and it goes on finding a name until its entry timeout. This thread asks
 * it to drop names (notify_inval_entry): those a listing lost, at once (a
 * directory with everything below it), and past node_bytes the names
 * looked up longest ago that hold none below them; the kernel FORGETs what
 * it drops, and a later path lookup asks again. Its own thread, as dropping
 * a name waits for lookups in its directory, which worker threads answer.
 */
static void *prune(void *arg)
{
	struct dsfs_nodes_entry *batch = malloc(PRUNE_BATCH * sizeof(*batch));
	struct dsfs_nodes_entry *lost = malloc(LOST_MAX * sizeof(*lost));

	(void)arg;
	pthread_mutex_lock(&g.prune_lock);
	while (batch && lost && !g.prune_stop) {
		struct timespec until;
		size_t count, bytes, want, got, nlost;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000 * 1000 * 1000) {
			until.tv_sec++;
			until.tv_nsec -= 1000 * 1000 * 1000;
		}
		if (!g.nlost)
			pthread_cond_timedwait(&g.prune_cond, &g.prune_lock, &until);
		if (g.prune_stop)
			break;
		nlost = g.nlost;
		memcpy(lost, g.lost, nlost * sizeof(*lost));
		g.nlost = 0;
		pthread_mutex_unlock(&g.prune_lock);
		inval_entries(lost, nlost);
		dsfs_nodes_stats(g.nodes, &count, &bytes);
		/* down to 7/8 of the bound, so that one round lasts a while */
		want = g.node_bytes && bytes > g.node_bytes && count ?
			       (bytes - g.node_bytes / 8 * 7) / (bytes / count) + 1 : 0;
		if (want > PRUNE_MAX)
			want = PRUNE_MAX;
		while (want && (got = dsfs_nodes_oldest(g.nodes, batch, want < PRUNE_BATCH ? want : PRUNE_BATCH))) {
			inval_entries(batch, got);
			want -= got;
		}
		pthread_mutex_lock(&g.prune_lock);
	}
	pthread_mutex_unlock(&g.prune_lock);
	free(batch);
	free(lost);
	return NULL;
}

static void prune_start(void)
{
	g.lost = malloc(LOST_MAX * sizeof(*g.lost));
	pthread_mutex_lock(&g.prune_lock);
	g.pruning = g.lost && pthread_create(&g.pruner, NULL, prune, NULL) == 0;
	pthread_mutex_unlock(&g.prune_lock);
}

static void prune_stop(void)
{
	pthread_mutex_lock(&g.prune_lock);
	if (!g.pruning) {
		pthread_mutex_unlock(&g.prune_lock);
		return;
	}
	g.prune_stop = true;
	pthread_cond_signal(&g.prune_cond);
	pthread_mutex_unlock(&g.prune_lock);
	pthread_join(g.pruner, NULL);
	pthread_mutex_lock(&g.prune_lock);
	g.pruning = false;
	pthread_mutex_unlock(&g.prune_lock);
}

int dsfs_fuse_run(struct dsfs_estate *e, struct fuse_args *args, const struct dsfs_mount_opts *mo)
{
	struct fuse_loop_config *lc = NULL;
	int ret = 1;

	g.e = e;
	/*
	 * Names change rarely and a stale one costs only an ENOENT at open, so
	 * the kernel keeps them at least a second even with cache_ttl=0 (and
	 * objects' sizes, see attr_ttl); contents still follow cache_ttl. No
	 * negative entries: a name created through the mount must show at once.
	 */
	g.entry_ttl = mo->cache_ttl > 1.0 ? mo->cache_ttl : 1.0;
	g.attr_ttl = mo->cache_ttl;
	if (!realpath(mo->mountpoint, g.mount_dir) || !strcmp(g.mount_dir, "/"))
		g.mount_dir[0] = '\0';
	if (fuse_opt_parse(args, &g, glue_opts, NULL) != 0)
		return 1;
	g.nodes = dsfs_nodes_new();
	g.admit = dsfs_admit_new(DSFS_FUSE_SHARE_PER_USER, DSFS_FUSE_SHARE_OTHERS, getuid());
	if (!g.nodes || !g.admit) {
		fprintf(stderr, "dsfs: out of memory\n");
		goto out_free;
	}
	g.se = fuse_session_new(args, &ops, sizeof(ops), NULL);
	if (!g.se)
		goto out_free; /* libfuse printed why */
	dsfs_caller_set_check(req_gone, getuid());
	if (fuse_session_mount(g.se, mo->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(mo->foreground) != 0)
		goto out_unmount;
	if (!mo->foreground)
		dsfs_log_setup(true, mo->debug ? DSFS_LOG_DEBUG : DSFS_LOG_INFO);
	if (fuse_set_signal_handlers(g.se) != 0)
		goto out_unmount;
	g.node_bytes = mo->node_bytes;
	prune_start();
	if (mo->single_thread) {
		ret = fuse_session_loop(g.se) < 0;
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_signals;
		fuse_loop_cfg_set_max_threads(lc, DSFS_FUSE_MAX_THREADS);
		fuse_loop_cfg_set_idle_threads(lc, DSFS_FUSE_IDLE_THREADS);
		ret = fuse_session_loop_mt(g.se, lc) < 0;
		fuse_loop_cfg_destroy(lc);
	}
	end_pending();
out_signals:
	prune_stop();
	fuse_remove_signal_handlers(g.se);
out_unmount:
	fuse_session_unmount(g.se);
out_destroy:
	fuse_session_destroy(g.se);
out_free:
	free(g.lost);
	dsfs_admit_free(g.admit);
	dsfs_nodes_free(g.nodes);
	return ret;
}
