// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One mount, one or many members. A single array's tree sits at the root
 * and every call passes straight through. In an estate the first path
 * component names the member and the rest goes to that member's fs, so a
 * member whose server is down fails only under its own directory; the
 * estate answers for the root, tasks/ (a link per member to its tasks,
 * and latest) itself. .dsfs/status (one line per member) and .dsfs/log
 * (the log's recent lines) are the mount's, however many members it has.
 */
#include "mount/estate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/blob.h"
#include "util/caller.h"
#include "format/ctl.h"
#include "fs/events.h"
#include "util/locks.h"
#include "util/log.h"
#include "format/names.h"
#include "mount/options.h"

#include "mount/estate_int.h"

/* ---- dispatch ------------------------------------------------------------------- */

struct dsfs_estate *dsfs_estate_new(bool estate, time_t mounted, uid_t uid, gid_t gid)
{
	struct dsfs_estate *e = calloc(1, sizeof(*e));

	if (e) {
		e->estate = estate;
		e->mounted = mounted;
		e->uid = uid;
		e->gid = gid;
		dsfs_mutex_init(&e->lock, DSFS_LOCK_ESTATE);
		pthread_cond_init(&e->sized, NULL);
	}
	return e;
}

int dsfs_estate_add(struct dsfs_estate *e, const char *name, const char *url, struct dsfs_fs *fs,
		    struct dsfs_session *session, struct dsfs_tasks *tasks, const char *tasks_dir,
		    struct dsfs_events *events)
{
	struct member *m;

	if (e->n >= DSFS_ESTATE_MAX_MEMBERS || (!e->estate && e->n))
		return -EINVAL;
	m = &e->m[e->n];
	m->name = strdup(name ? name : "");
	m->url = strdup(url);
	if (!m->name || !m->url) {
		free(m->name);
		free(m->url);
		return -ENOMEM;
	}
	m->fs = fs;
	m->session = session;
	m->tasks = tasks;
	m->tasks_dir = tasks_dir;
	m->events = events;
	if (e->estate && events &&
	    ((!e->feed && !(e->feed = dsfs_events_merge_new())) || dsfs_events_merge_add(e->feed, m->name, events))) {
		free(m->name);
		free(m->url);
		return -ENOMEM;
	}
	e->n++;
	return 0;
}

void dsfs_estate_free(struct dsfs_estate *e)
{
	size_t n = 0;

	if (!e)
		return;
	for (; e->open; n++)
		dsfs_estate_release(e->open);
	if (n)
		dsfs_log(DSFS_LOG_INFO, "unmounted with %zu file%s still open", n, n == 1 ? "" : "s");
	dsfs_lock(&e->lock);
	while (e->sizers) /* a df that gave up on a member left its thread running: it uses e to its end */
		dsfs_cond_wait(&e->sized, &e->lock);
	dsfs_unlock(&e->lock);
	pthread_cond_destroy(&e->sized);
	dsfs_mutex_destroy(&e->lock);
	dsfs_events_merge_free(e->feed);
	for (size_t i = 0; i < e->n; i++) {
		free(e->m[i].name);
		free(e->m[i].url);
	}
	free(e);
}

enum place {
	P_MEMBER,
	P_ROOT,
	P_TASKS,
	P_TASK_LINK,
	P_LATEST,
	P_DSFS,
	P_STATUS,
	P_LOG,
	P_EVENTS,
	P_EVENTS_LOG,
	P_NONE
};

/*
 * Where a path is: in a member (*m and *rest, the path inside it) or one of
 * the estate's own entries.
 */
static enum place locate(struct dsfs_estate *e, const char *path, struct member **m, const char **rest)
{
	const char *p = path + 1, *slash;
	size_t len;

	dsfs_log_set_member(NULL); /* until the path is found in a member */
	/* .dsfs/status and .dsfs/log are the mount's, one API or many; a single API's .dsfs/stats is its own */
	if (!strncmp(path, "/.dsfs", 6) && (!path[6] || path[6] == '/')) {
		if (!path[6])
			return P_DSFS;
		if (!strcmp(path + 6, "/status"))
			return P_STATUS;
		if (!strcmp(path + 6, "/log"))
			return P_LOG;
		if (e->estate)
			return P_NONE;
	}
	if (!e->estate) {
		*m = &e->m[0];
		*rest = path;
		return P_MEMBER;
	}
	if (!*p)
		return P_ROOT;
	slash = strchr(p, '/');
	len = slash ? (size_t)(slash - p) : strlen(p);
	if (len == 6 && !strncmp(p, "events", 6) && e->feed) {
		if (!slash)
			return P_EVENTS;
		return !strcmp(slash, "/log") ? P_EVENTS_LOG : P_NONE;
	}
	if (len == 5 && !strncmp(p, "tasks", 5)) {
		if (!slash)
			return P_TASKS;
		if (!strcmp(slash, "/latest"))
			return P_LATEST;
		for (size_t i = 0; i < e->n; i++)
			if (e->m[i].tasks_dir && !strcmp(slash + 1, e->m[i].name)) {
				*m = &e->m[i]; /* a member whose dialect has no tasks has no link */
				return P_TASK_LINK;
			}
		return P_NONE;
	}
	for (size_t i = 0; i < e->n; i++) {
		if (strlen(e->m[i].name) == len && !strncmp(p, e->m[i].name, len)) {
			*m = &e->m[i];
			*rest = slash ? slash : "/";
			dsfs_log_set_member(e->m[i].name); /* what is logged from here on is about its tree */
			return P_MEMBER;
		}
	}
	return P_NONE;
}

/*
 * One line per member: name (a single API's is "-"), URL, whether its last
 * request was answered, whether it holds a session, and its last error.
 */
static struct dsfs_blob *status_blob(struct dsfs_estate *e)
{
	size_t cap = 2048 * (e->n + 1), o = 0;
	char *buf = malloc(cap), line[2048];
	struct dsfs_blob *b;
	int n;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < e->n; i++) {
		struct dsfs_session_health h;

		dsfs_session_health(e->m[i].session, &h);
		n = snprintf(line, sizeof(line), "%s %s %s %s", *e->m[i].name ? e->m[i].name : "-", e->m[i].url,
			     h.reachable ? "reachable" : "unreachable", h.logged_in ? "logged-in" : "logged-out");
		if (h.last_error[0] && n >= 0 && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - (size_t)n, " last-error=\"%.0fs ago: %s\"",
				      h.since_error, h.last_error);
		if (n < 0)
			continue;
		if ((size_t)n >= sizeof(line) - 1)
			n = (int)sizeof(line) - 2; /* a URL that long is cut, never the buffer overrun */
		line[n++] = '\n';
		memcpy(buf + o, line, (size_t)n);
		o += (size_t)n;
	}
	b = dsfs_blob_new(buf, o);
	free(buf);
	return b;
}

/* .dsfs/log: the mount's owner's and root's only, whoever else the mount lets in (allow_other) */
static int log_open(const struct dsfs_estate *e, int flags, struct dsfs_ehandle *h)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	if (dsfs_caller_uid() != e->uid && dsfs_caller_uid() != 0) {
		dsfs_log(DSFS_LOG_WARN,
			 "open /.dsfs/log: refused to uid %u: only the mount's owner and root read "
			 "its log",
			 (unsigned)dsfs_caller_uid());
		return -EACCES;
	}
	h->log = true;
	return 0;
}

/* A read of .dsfs/log at offset off: the log's position off, or as near after it as is still kept. */
static int log_read(struct dsfs_ehandle *h, char *buf, size_t size, off_t off)
{
	uint64_t skew = __atomic_load_n(&h->log_skew, __ATOMIC_RELAXED), pos = (uint64_t)off + skew, at;
	size_t n = dsfs_log_read(pos, buf, size, &at);

	/* a reader that starts at 0 (cat), or fell behind, reads on from the oldest line kept */
	if (at > pos)
		__atomic_store_n(&h->log_skew, skew + (at - pos), __ATOMIC_RELAXED);
	return (int)n;
}

/* tasks/latest: "<member>/<entry>" of the task this mount started last. */
static char *latest_target(struct dsfs_estate *e)
{
	struct member *best = NULL;
	unsigned long seq = 0;
	char *id, *entry, *out = NULL;

	for (size_t i = 0; i < e->n; i++) {
		unsigned long s = dsfs_tasks_latest_seq(e->m[i].tasks);

		if (s > seq) {
			seq = s;
			best = &e->m[i];
		}
	}
	if (!best || !(id = dsfs_tasks_latest(best->tasks)))
		return NULL;
	entry = dsfs_names_entry(id, id);
	if (entry && asprintf(&out, "%s/%s", best->name, entry) < 0)
		out = NULL;
	free(entry);
	free(id);
	return out;
}

static void own_stat(struct dsfs_estate *e, mode_t mode, size_t size, ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_size = (off_t)size;
	st->st_ino = ino;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_mtime = st->st_ctime = st->st_atime = e->mounted;
	st->st_blksize = 4096;
}

int dsfs_estate_getattr(struct dsfs_estate *e, const char *path, struct stat *st, unsigned *flags)
{
	struct member *m = NULL;
	const char *rest;
	char *t;
	int ret;

	if (flags)
		*flags = 0;
	switch (locate(e, path, &m, &rest)) {
	case P_MEMBER:
		ret = dsfs_fs_getattr(m->fs, rest, st, flags);
		if (ret == 0 && e->estate && !strcmp(rest, "/"))
			st->st_ino = 100 + (ino_t)(m - e->m); /* each member's root its own inode */
		return ret;
	case P_ROOT:
		own_stat(e, S_IFDIR | 0555, 0, 1, st);
		return 0;
	case P_TASKS:
		own_stat(e, S_IFDIR | 0555, 0, 5, st);
		return 0;
	case P_DSFS:
		own_stat(e, S_IFDIR | 0555, 0, 2, st);
		return 0;
	case P_STATUS: {
		struct dsfs_blob *b = status_blob(e);

		own_stat(e, S_IFREG | 0444, b ? b->len : 0, 9, st); /* not 3: a single API's .dsfs/stats */
		dsfs_blob_unref(b);
		if (flags)
			*flags = DSFS_FS_LIVE;
		return 0;
	}
	case P_LOG:
		/* its size is every byte logged since the mount: offsets stay put as old lines go (tail -f) */
		own_stat(e, S_IFREG | 0600, (size_t)dsfs_log_end(), 8, st);
		if (flags)
			*flags = DSFS_FS_LIVE;
		return 0;
	case P_TASK_LINK:
		own_stat(e, S_IFLNK | 0777, strlen(m->name) + 9, 200 + (ino_t)(m - e->m), st);
		return 0;
	case P_EVENTS:
		own_stat(e, S_IFDIR | 0555, 0, 6, st);
		return 0;
	case P_EVENTS_LOG: {
		struct dsfs_blob *b = dsfs_events_merge_text(e->feed, true);

		own_stat(e, S_IFREG | 0444, b ? b->len : 0, 7, st);
		dsfs_blob_unref(b);
		if (flags)
			*flags = DSFS_FS_LIVE;
		return 0;
	}
	case P_LATEST:
		t = latest_target(e);
		if (!t)
			return -ENOENT;
		own_stat(e, S_IFLNK | 0777, strlen(t), 4, st);
		free(t);
		return 0;
	default:
		return -ENOENT;
	}
}

int dsfs_estate_readdir(struct dsfs_estate *e, const char *path, dsfs_fs_fill_fn fill, void *ctx)
{
	struct member *m = NULL;
	const char *rest;
	struct stat st;
	char p[300];

	switch (locate(e, path, &m, &rest)) {
	case P_MEMBER:
		return dsfs_fs_readdir(m->fs, rest, fill, ctx);
	case P_ROOT:
		for (size_t i = 0; i < e->n; i++) {
			/* no request: the member may be down, and its entry must still show */
			own_stat(e, S_IFDIR | 0555, 0, 100 + i, &st);
			if (fill(ctx, e->m[i].name, &st, 0))
				return -ENOMEM;
		}
		own_stat(e, S_IFDIR | 0555, 0, 5, &st);
		return fill(ctx, "tasks", &st, DSFS_FS_COMPLETE) ? -ENOMEM : 0;
	case P_TASKS:
		for (size_t i = 0; i < e->n; i++) {
			if (!e->m[i].tasks_dir)
				continue;
			snprintf(p, sizeof(p), "/tasks/%s", e->m[i].name);
			dsfs_estate_getattr(e, p, &st, NULL);
			if (fill(ctx, e->m[i].name, &st, DSFS_FS_COMPLETE))
				return -ENOMEM;
		}
		if (dsfs_estate_getattr(e, "/tasks/latest", &st, NULL) == 0 &&
		    fill(ctx, "latest", &st, DSFS_FS_COMPLETE))
			return -ENOMEM;
		return 0;
	case P_DSFS:
		if (!e->estate && dsfs_fs_readdir(e->m[0].fs, path, fill, ctx))
			return -ENOMEM; /* a single API's .dsfs/stats */
		dsfs_estate_getattr(e, "/.dsfs/status", &st, NULL);
		if (fill(ctx, "status", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE))
			return -ENOMEM;
		dsfs_estate_getattr(e, "/.dsfs/log", &st, NULL);
		return fill(ctx, "log", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
	case P_EVENTS:
		dsfs_estate_getattr(e, "/events/log", &st, NULL);
		return fill(ctx, "log", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
	case P_NONE:
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

/* An open, or with create a new editor's file (dsfs_fs_create), wrapped in an estate handle. */
static int open_or_create(struct dsfs_estate *e, const char *path, int flags, pid_t pid, bool create,
			  struct dsfs_ehandle **out, enum dsfs_caching *caching)
{
	struct dsfs_ehandle *h = calloc(1, sizeof(*h));
	struct member *m = NULL;
	const char *rest;
	int ret;

	*out = NULL;
	*caching = DSFS_CACHING_DIRECT;
	if (!h)
		return -ENOMEM;
	switch (locate(e, path, &m, &rest)) {
	case P_MEMBER:
		h->fs = m->fs;
		h->member = e->estate ? m->name : NULL;
		ret = create ? dsfs_fs_create(m->fs, rest, flags, &h->h)
			     : dsfs_fs_open(m->fs, rest, flags, pid, &h->h, caching);
		break;
	case P_STATUS:
		ret = (flags & O_ACCMODE) != O_RDONLY ? -EACCES : (h->own = status_blob(e)) ? 0 : -ENOMEM;
		*caching = DSFS_CACHING_DIRECT;
		break;
	case P_LOG:
		ret = create ? -EACCES : log_open(e, flags, h);
		*caching = DSFS_CACHING_DIRECT;
		break;
	case P_EVENTS_LOG:
		ret = (flags & O_ACCMODE) != O_RDONLY || create ? -EACCES : 0;
		if (ret == 0) {
			dsfs_events_merge_open(e->feed);
			h->feed = true;
			if (!(h->own = dsfs_events_merge_text(e->feed, true)))
				ret = -ENOMEM;
		}
		if (ret && h->feed)
			dsfs_events_merge_close(e->feed);
		*caching = DSFS_CACHING_DIRECT;
		break;
	case P_NONE:
		ret = -ENOENT;
		break;
	default:
		ret = -EISDIR;
	}
	if (ret) {
		free(h);
		return ret;
	}
	h->e = e;
	dsfs_lock(&e->lock);
	h->next = e->open;
	if (e->open)
		e->open->prev = h;
	e->open = h;
	dsfs_unlock(&e->lock);
	*out = h;
	return 0;
}

int dsfs_estate_open(struct dsfs_estate *e, const char *path, int flags, pid_t pid, struct dsfs_ehandle **out,
		     enum dsfs_caching *caching)
{
	return open_or_create(e, path, flags, pid, false, out, caching);
}

int dsfs_estate_create(struct dsfs_estate *e, const char *path, int flags, pid_t pid, struct dsfs_ehandle **out)
{
	enum dsfs_caching caching;

	return open_or_create(e, path, flags, pid, true, out, &caching);
}

int dsfs_estate_read(struct dsfs_ehandle *h, struct dsfs_blob *newest, char *buf, size_t size, off_t off)
{
	dsfs_log_set_member(h->member);
	if (h->fs)
		return dsfs_fs_read(h->fs, h->h, newest, buf, size, off);
	if (off < 0)
		return -EINVAL;
	if (h->log)
		return log_read(h, buf, size, off);
	if (h->feed && h->own && (size_t)off >= h->own->len) /* what the members' feeds have gained since */
		dsfs_blob_take_grown(&h->own, dsfs_events_merge_text(h->e->feed, true));
	if (!h->own || (size_t)off >= h->own->len)
		return 0;
	if (size > h->own->len - (size_t)off)
		size = h->own->len - (size_t)off;
	memcpy(buf, h->own->data + off, size);
	return (int)size;
}

struct dsfs_blob *dsfs_estate_content(struct dsfs_ehandle *h)
{
	return h->fs ? dsfs_fs_content(h->h) : NULL;
}

bool dsfs_estate_read_waits(struct dsfs_ehandle *h)
{
	return h->fs && dsfs_fs_read_waits(h->h);
}

int dsfs_estate_read_wait(struct dsfs_ehandle *h, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w)
{
	dsfs_log_set_member(h->member);
	return h->fs ? dsfs_fs_read_wait(h->fs, h->h, fn, arg, w) : 0;
}

int dsfs_estate_write(struct dsfs_ehandle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	dsfs_log_set_member(h->member);
	return h->fs ? dsfs_fs_write(h->fs, h->h, buf, size, off, pid) : -EBADF;
}

int dsfs_estate_flush(struct dsfs_ehandle *h, pid_t pid, bool keeps_open)
{
	dsfs_log_set_member(h->member);
	return h->fs ? dsfs_fs_flush(h->fs, h->h, pid, keeps_open) : 0;
}

void dsfs_estate_release(struct dsfs_ehandle *h)
{
	if (!h)
		return;
	dsfs_log_set_member(h->member);
	dsfs_lock(&h->e->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		h->e->open = h->next;
	if (h->next)
		h->next->prev = h->prev;
	dsfs_unlock(&h->e->lock);
	if (h->fs)
		dsfs_fs_release(h->fs, h->h);
	if (h->feed)
		dsfs_events_merge_close(h->e->feed);
	dsfs_blob_unref(h->own);
	free(h);
}

int dsfs_estate_readlink(struct dsfs_estate *e, const char *path, char *buf, size_t size)
{
	struct member *m = NULL;
	const char *rest;
	char *t;

	switch (locate(e, path, &m, &rest)) {
	case P_MEMBER:
		return dsfs_fs_readlink(m->fs, rest, buf, size);
	case P_TASK_LINK:
		snprintf(buf, size, "../%s/%s", m->name, m->tasks_dir);
		return 0;
	case P_LATEST:
		t = latest_target(e);
		if (!t)
			return -ENOENT;
		snprintf(buf, size, "%s", t);
		free(t);
		return 0;
	case P_NONE:
		return -ENOENT;
	default:
		return -EINVAL;
	}
}

/* The calls that change things: only inside a member. */
// clang-format off
#define MEMBER_ONLY(call, ...)                                            \
	do {                                                              \
		struct member *m = NULL;                                  \
		const char *rest;                                         \
		enum place pl = locate(e, path, &m, &rest);               \
		if (pl == P_MEMBER)                                       \
			return call(m->fs, rest, ##__VA_ARGS__);          \
		return pl == P_NONE ? -ENOENT : -EPERM;                   \
	} while (0)
// clang-format on

int dsfs_estate_truncate(struct dsfs_estate *e, const char *path, off_t size)
{
	MEMBER_ONLY(dsfs_fs_truncate, size);
}

int dsfs_estate_mkdir(struct dsfs_estate *e, const char *path)
{
	MEMBER_ONLY(dsfs_fs_mkdir);
}

int dsfs_estate_rmdir(struct dsfs_estate *e, const char *path, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w)
{
	MEMBER_ONLY(dsfs_fs_rmdir, fn, arg, w);
}

int dsfs_estate_unlink(struct dsfs_estate *e, const char *path)
{
	MEMBER_ONLY(dsfs_fs_unlink);
}

int dsfs_estate_chmeta(struct dsfs_estate *e, const char *path, bool changes)
{
	MEMBER_ONLY(dsfs_fs_chmeta, changes);
}

int dsfs_estate_rename(struct dsfs_estate *e, const char *from, const char *to, unsigned flags)
{
	struct member *m = NULL, *n = NULL;
	const char *rf, *rt;

	if (locate(e, from, &m, &rf) != P_MEMBER || locate(e, to, &n, &rt) != P_MEMBER)
		return -EPERM;
	if (m != n)
		return -EXDEV; /* mv copies across members, as across file systems */
	return dsfs_fs_rename(m->fs, rf, rt, flags);
}

int dsfs_estate_ftruncate(struct dsfs_ehandle *h, off_t size)
{
	dsfs_log_set_member(h->member);
	return h->fs ? dsfs_fs_ftruncate(h->fs, h->h, size) : -EACCES;
}

int dsfs_estate_statfs(struct dsfs_estate *e, const char *path, struct statvfs *out)
{
	struct dsfs_space sum = { 0 };
	struct member *m = NULL;
	const char *rest;
	unsigned long unit;
	int ret;

	if (locate(e, path, &m, &rest) == P_MEMBER)
		ret = dsfs_fs_statfs(m->fs, rest, &sum);
	else if (!e->estate)
		ret = dsfs_fs_statfs(e->m[0].fs, "/", &sum); /* .dsfs/ of a single API */
	else
		ret = dsfs_estate_space_sum(e,
					    &sum); /* a member that cannot say, or not in time, is left out (logged) */
	if (ret)
		return ret;
	unit = sum.unit ? sum.unit : 4096;
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = unit; /* df's blocks are the API's units: no rounding between df and the JSON */
	out->f_blocks = (fsblkcnt_t)(sum.total / unit);
	out->f_bfree = out->f_bavail = (fsblkcnt_t)(sum.free / unit);
	out->f_namemax = NAME_MAX;
	return 0;
}
