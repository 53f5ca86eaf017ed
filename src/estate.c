// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One mount, one or many members. A single array's tree sits at the root
 * and every call passes straight through. In an estate the first path
 * component names the member and the rest goes to that member's fs, so a
 * member whose server is down fails only under its own directory; the
 * estate answers for the root, tasks/ (a link per member to its tasks,
 * and latest) and .dsfs/status (one line per member) itself.
 */
#include "estate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "events.h"
#include "log.h"
#include "names.h"

struct member {
	char *name, *url;
	struct dsfs_fs *fs;
	struct dsfs_session *session;
	struct dsfs_tasks *tasks;
	const char *tasks_dir;  /* its dialect's tasks collection ("tasks", "jobs") */
	struct dsfs_events *events; /* its events/log, or NULL */
	bool sizing;                /* a df of it runs in the background (e->lock) */
};

struct dsfs_estate {
	bool estate;
	time_t mounted;
	uid_t uid;
	gid_t gid;
	struct member m[DSFS_ESTATE_MAX_MEMBERS];
	size_t n;
	/*
	 * Open handles. The kernel sends RELEASE asynchronously and may still
	 * owe some when it unmounts; those are released when the estate goes.
	 */
	pthread_mutex_t lock;
	struct dsfs_ehandle *open;
	struct dsfs_events_merge *feed; /* events/log of an estate: every member's, or NULL */
	size_t sizers;                  /* df threads still running (e->lock) */
	pthread_cond_t sized;           /* broadcast when one ends */
};

struct dsfs_ehandle {
	struct dsfs_fs *fs;       /* the member's, or NULL for the estate's own file */
	struct dsfs_handle *h;
	struct dsfs_blob *own;    /* .dsfs/status, events/log */
	bool feed;                /* events/log: read past its end asks for more */
	struct dsfs_estate *e;
	struct dsfs_ehandle *prev, *next;
};

/* ---- dispatch ------------------------------------------------------------------- */

struct dsfs_estate *dsfs_estate_new(bool estate, time_t mounted, uid_t uid, gid_t gid)
{
	struct dsfs_estate *e = calloc(1, sizeof(*e));

	if (e) {
		e->estate = estate;
		e->mounted = mounted;
		e->uid = uid;
		e->gid = gid;
		pthread_mutex_init(&e->lock, NULL);
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
	if (e->estate && events && ((!e->feed && !(e->feed = dsfs_events_merge_new())) ||
				    dsfs_events_merge_add(e->feed, m->name, events))) {
		free(m->name);
		free(m->url);
		return -ENOMEM;
	}
	e->n++;
	return 0;
}

void dsfs_estate_free(struct dsfs_estate *e)
{
	if (!e)
		return;
	while (e->open)
		dsfs_estate_release(e->open);
	pthread_mutex_lock(&e->lock);
	while (e->sizers) /* a df that gave up on a member left its thread running: it uses e to its end */
		pthread_cond_wait(&e->sized, &e->lock);
	pthread_mutex_unlock(&e->lock);
	pthread_cond_destroy(&e->sized);
	pthread_mutex_destroy(&e->lock);
	dsfs_events_merge_free(e->feed);
	for (size_t i = 0; i < e->n; i++) {
		free(e->m[i].name);
		free(e->m[i].url);
	}
	free(e);
}

enum place { P_MEMBER, P_ROOT, P_TASKS, P_TASK_LINK, P_LATEST, P_DSFS, P_STATUS, P_EVENTS, P_EVENTS_LOG, P_NONE };

/*
 * Where a path is: in a member (*m and *rest, the path inside it) or one of
 * the estate's own entries.
 */
static enum place locate(struct dsfs_estate *e, const char *path, struct member **m, const char **rest)
{
	const char *p = path + 1, *slash;
	size_t len;

	if (!e->estate) {
		*m = &e->m[0];
		*rest = path;
		return P_MEMBER;
	}
	if (!*p)
		return P_ROOT;
	slash = strchr(p, '/');
	len = slash ? (size_t)(slash - p) : strlen(p);
	if (len == 5 && !strncmp(p, ".dsfs", 5)) {
		if (!slash)
			return P_DSFS;
		return !strcmp(slash, "/status") ? P_STATUS : P_NONE;
	}
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
			return P_MEMBER;
		}
	}
	return P_NONE;
}

static struct dsfs_blob *status_blob(struct dsfs_estate *e)
{
	size_t cap = 512 * (e->n + 1), o = 0;
	char *buf = malloc(cap);
	struct dsfs_blob *b;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < e->n; i++) {
		struct dsfs_session_health h;

		dsfs_session_health(e->m[i].session, &h);
		o += (size_t)snprintf(buf + o, cap - o, "%s %s %s %s", e->m[i].name, e->m[i].url,
				      h.reachable ? "reachable" : "unreachable",
				      h.logged_in ? "logged-in" : "logged-out");
		if (h.last_error[0])
			o += (size_t)snprintf(buf + o, cap - o, " last-error=\"%.0fs ago: %s\"", h.since_error,
					      h.last_error);
		o += (size_t)snprintf(buf + o, cap - o, "\n");
	}
	b = dsfs_blob_new(buf, o);
	free(buf);
	return b;
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

		own_stat(e, S_IFREG | 0444, b ? b->len : 0, 3, st);
		dsfs_blob_unref(b);
		if (flags)
			*flags = DSFS_FS_LIVE;
		return 0;
	}
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
		if (dsfs_estate_getattr(e, "/tasks/latest", &st, NULL) == 0 && fill(ctx, "latest", &st, DSFS_FS_COMPLETE))
			return -ENOMEM;
		return 0;
	case P_DSFS:
		dsfs_estate_getattr(e, "/.dsfs/status", &st, NULL);
		return fill(ctx, "status", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
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
		ret = create ? dsfs_fs_create(m->fs, rest, flags, &h->h)
			     : dsfs_fs_open(m->fs, rest, flags, pid, &h->h, caching);
		break;
	case P_STATUS:
		ret = (flags & O_ACCMODE) != O_RDONLY ? -EACCES : (h->own = status_blob(e)) ? 0 : -ENOMEM;
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
	pthread_mutex_lock(&e->lock);
	h->next = e->open;
	if (e->open)
		e->open->prev = h;
	e->open = h;
	pthread_mutex_unlock(&e->lock);
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
	if (h->fs)
		return dsfs_fs_read(h->fs, h->h, newest, buf, size, off);
	if (off < 0)
		return -EINVAL;
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
	return h->fs ? dsfs_fs_read_wait(h->fs, h->h, fn, arg, w) : 0;
}

int dsfs_estate_write(struct dsfs_ehandle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	return h->fs ? dsfs_fs_write(h->fs, h->h, buf, size, off, pid) : -EBADF;
}

int dsfs_estate_flush(struct dsfs_ehandle *h, pid_t pid, bool keeps_open)
{
	return h->fs ? dsfs_fs_flush(h->fs, h->h, pid, keeps_open) : 0;
}

void dsfs_estate_release(struct dsfs_ehandle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->e->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		h->e->open = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&h->e->lock);
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
#define MEMBER_ONLY(call, ...)                                            \
	do {                                                              \
		struct member *m = NULL;                                  \
		const char *rest;                                         \
		enum place pl = locate(e, path, &m, &rest);               \
		if (pl == P_MEMBER)                                       \
			return call(m->fs, rest, ##__VA_ARGS__);          \
		return pl == P_NONE ? -ENOENT : -EPERM;                   \
	} while (0)

int dsfs_estate_truncate(struct dsfs_estate *e, const char *path, off_t size)
{
	MEMBER_ONLY(dsfs_fs_truncate, size);
}

int dsfs_estate_mkdir(struct dsfs_estate *e, const char *path)
{
	MEMBER_ONLY(dsfs_fs_mkdir);
}

int dsfs_estate_rmdir(struct dsfs_estate *e, const char *path, dsfs_fs_done_fn fn, void *arg,
		      struct dsfs_fs_wait **w)
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
	return h->fs ? dsfs_fs_ftruncate(h->fs, h->h, size) : -EACCES;
}

/* ---- df of the estate ------------------------------------------------------------ */

/*
 * A df of the estate asks every member at once, each in a thread of its
 * own, and waits one timeout at most: a member that hangs would otherwise
 * hold the df for its timeout, and n of them for n timeouts. A member that
 * has not answered by then is left out of the sum (logged); its thread
 * ends with its request, and until then the next df does not ask it again.
 */
struct sizing {
	pthread_mutex_t lock;
	pthread_cond_t answered;   /* monotonic clock */
	size_t refs;               /* the df and each of its threads still running */
	size_t left;               /* members yet to answer */
	struct dsfs_estate *e;
	struct sized { struct dsfs_space s; int ret; bool started, done; } *r;
};

struct sizer {
	struct sizing *job;
	size_t i;
};

static void sizing_unref(struct sizing *job)
{
	bool last;

	pthread_mutex_lock(&job->lock);
	last = !--job->refs;
	pthread_mutex_unlock(&job->lock);
	if (!last)
		return;
	pthread_cond_destroy(&job->answered);
	pthread_mutex_destroy(&job->lock);
	free(job->r);
	free(job);
}

static void *size_member(void *arg)
{
	struct sizer *a = arg;
	struct sizing *job = a->job;
	struct dsfs_estate *e = job->e;
	struct member *m = &e->m[a->i];
	struct dsfs_space s;
	int ret = dsfs_fs_statfs(m->fs, "/", &s); /* its failure is logged */

	pthread_mutex_lock(&job->lock);
	job->r[a->i] = (struct sized){ .s = s, .ret = ret, .started = true, .done = true };
	job->left--;
	pthread_cond_broadcast(&job->answered);
	pthread_mutex_unlock(&job->lock);
	sizing_unref(job);
	free(a);
	pthread_mutex_lock(&e->lock); /* last: once sizers drops, e may go */
	m->sizing = false;
	e->sizers--;
	pthread_cond_broadcast(&e->sized);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* Starts member i's df in the background: 0, -EBUSY (one from an earlier df runs), -ENOMEM. */
static int start_sizing(struct sizing *job, size_t i)
{
	struct dsfs_estate *e = job->e;
	struct sizer *a = malloc(sizeof(*a));
	pthread_attr_t attr;
	pthread_t t;
	bool busy;
	int ret;

	pthread_mutex_lock(&e->lock);
	busy = e->m[i].sizing;
	if (!busy && a) {
		e->m[i].sizing = true;
		e->sizers++;
	}
	pthread_mutex_unlock(&e->lock);
	if (busy || !a) {
		free(a);
		return busy ? -EBUSY : -ENOMEM;
	}
	*a = (struct sizer){ .job = job, .i = i };
	pthread_mutex_lock(&job->lock);
	job->refs++;
	job->left++;
	job->r[i].started = true;
	pthread_mutex_unlock(&job->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, size_member, a);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		return 0;
	dsfs_log(DSFS_LOG_WARN, "df: no thread to ask member %s (%s): asking it in turn", e->m[i].name,
		 strerror(ret));
	size_member(a); /* as a thread would: the answer, and the counts undone */
	return 0;
}

/* The sum of every member's space that arrives within one timeout; 0 or -ENOMEM. */
static int estate_space(struct dsfs_estate *e, struct dsfs_space *sum)
{
	struct sizing *job = calloc(1, sizeof(*job));
	double timeout = 0, deadline;
	pthread_condattr_t ca;
	struct timespec now, until;

	if (!job || !(job->r = calloc(e->n ? e->n : 1, sizeof(*job->r)))) {
		free(job);
		return -ENOMEM;
	}
	job->e = e;
	job->refs = 1;
	pthread_mutex_init(&job->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&job->answered, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < e->n; i++) {
		double t = dsfs_session_timeout(e->m[i].session);
		int ret = start_sizing(job, i);

		timeout = t > timeout ? t : timeout;
		if (ret)
			dsfs_log(DSFS_LOG_WARN, "df: member %s left out of the sum: %s", e->m[i].name,
				 ret == -EBUSY ? "it has not answered an earlier df yet" : strerror(-ret));
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = (double)now.tv_sec + (double)now.tv_nsec / 1e9 + timeout;
	until.tv_sec = (time_t)deadline;
	until.tv_nsec = (long)((deadline - (double)until.tv_sec) * 1e9);
	pthread_mutex_lock(&job->lock);
	while (job->left && pthread_cond_timedwait(&job->answered, &job->lock, &until) != ETIMEDOUT)
		;
	for (size_t i = 0; i < e->n; i++) {
		if (job->r[i].done && job->r[i].ret == 0 && job->r[i].s.unit)
			dsfs_space_add(sum, &job->r[i].s);
		else if (job->r[i].done && job->r[i].ret)
			dsfs_log(DSFS_LOG_WARN, "df: member %s left out of the sum: %s", e->m[i].name,
				 strerror(-job->r[i].ret)); /* its request's own failure is logged without its name */
		else if (!job->r[i].done && job->r[i].started)
			dsfs_log(DSFS_LOG_WARN, "df: member %s did not answer within %.0f s: left out of the sum",
				 e->m[i].name, timeout);
	}
	pthread_mutex_unlock(&job->lock);
	sizing_unref(job);
	return 0;
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
	else
		ret = estate_space(e, &sum); /* a member that cannot say, or not in time, is left out (logged) */
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
