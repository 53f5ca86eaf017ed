// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Path resolution and POSIX semantics. A path is resolved component by
 * component through the cache. A read handle keeps the bytes it opened, so
 * a reader sees one consistent version of a file; read-through files fetch
 * what was added when read past their end (tail -f). Control files take
 * one command per line and send it inside write(); a line is ended by its
 * newline or by the close of the process that wrote it, never by another
 * process closing an inherited copy. .dsfs/ and tasks/latest
 * are the mount's own state, resolved here before the cache, and so is
 * events/log (events.h); .dsfs/ and events/ are left out of the root
 * listing so crawlers see only the estate.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caller.h"
#include "ctl.h"
#include "errmap.h"
#include "events.h"
#include "scratch.h"
#include "log.h"
#include "names.h"
#include "waiters.h"

#define DSFS_DIR "/.dsfs"
#define DSFS_STATS DSFS_DIR "/stats"
#define LATEST "latest"
#define EVENTS_DIR "/events"
#define EVENTS_LOG EVENTS_DIR "/log"
#define MAX_RESULTS 1024

struct result {
	char *path;
	struct dsfs_blob *blob;
	struct result *next;
};

struct dsfs_fs {
	struct dsfs_cache *cache;
	struct dsfs_http *http;
	struct dsfs_session *session;
	struct dsfs_tasks *tasks;
	struct dsfs_fs_opts o;
	char *tasks_path;   /* "/tasks" */
	char *latest_path;  /* "/tasks/latest" */
	pthread_mutex_t lock; /* guards results */
	struct result *results; /* last command's result per control file, newest first */
	size_t nresults;
	struct dsfs_scratch *scratch; /* editors' files beside object files (allow_edit) */
	pthread_mutex_t edit_lock;    /* one edit at a time: each sees the one before it */
	struct edit_record *edits;    /* edits whose task may still run, newest first */
};

/* An edit the server carries out in a task: until it ends, the object's next edit would land on a guess. */
struct edit_record {
	char *url, *task;
	struct edit_record *next;
};

/* Edit records kept at most; an older one is forgotten (its task has long ended in practice). */
#define EDIT_RECORDS 256

static void edit_record_free(struct edit_record *e)
{
	free(e->url);
	free(e->task);
	free(e);
}

enum handle_type { H_READ, H_CTL, H_WAIT, H_EVENTS, H_EDIT };

struct dsfs_handle {
	enum handle_type type;
	struct dsfs_blob *content; /* READ: bytes opened; CTL: result at open; WAIT: the outcome's line */
	int end_err;               /* WAIT: -errno of a read past that line: the task did not succeed */
	struct dsfs_loc loc;       /* direct READ, CTL and WAIT: where (references held) */
	bool direct;
	char *path;                /* CTL: the control file */
	char *buf;                 /* CTL: bytes of a command not yet ended by a newline (at most DSFS_CTL_MAX) */
	size_t len;
	struct dsfs_ctl_scan scan; /* CTL: where the command being written ends (a JSON object may span lines) */
	int refused;               /* CTL: -errno of a refused line whose rest, up to its newline, is discarded */
	pid_t opener;              /* CTL: the process that opened the file */
	pid_t writer;              /* CTL: the process that wrote the last bytes of buf */
	bool opener_closed;        /* CTL: the opener has made its last close */
	struct dsfs_scratch_file *file; /* EDIT: the bytes written: an editor's file, or an object's own buffer */
	bool object;               /* EDIT: file is the buffer of the object file at loc (sent at close) */
	bool dirty;                /* EDIT: written since it was opened or last sent */
	int failed;                /* EDIT: -errno of a write that failed: the edit is never sent */
	pthread_mutex_t lock;      /* a handle can be used by several threads (dup, fork) */
};

struct dsfs_fs *dsfs_fs_new(struct dsfs_cache *cache, struct dsfs_http *http, struct dsfs_session *session,
			    struct dsfs_tasks *tasks, const struct dsfs_fs_opts *opts)
{
	struct dsfs_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->cache = cache;
	fs->http = http;
	fs->session = session;
	fs->tasks = tasks;
	fs->o = *opts;
	if (opts->tasks_dir) {
		if (asprintf(&fs->tasks_path, "/%s", opts->tasks_dir) < 0 ||
		    asprintf(&fs->latest_path, "/%s/" LATEST, opts->tasks_dir) < 0) {
			fs->tasks_path = fs->latest_path = NULL;
			dsfs_fs_free(fs);
			return NULL;
		}
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->edit_lock, NULL);
	if (!(fs->scratch = dsfs_scratch_new())) {
		dsfs_fs_free(fs);
		return NULL;
	}
	return fs;
}

void dsfs_fs_free(struct dsfs_fs *fs)
{
	struct result *r, *next;

	if (!fs)
		return;
	for (r = fs->results; r; r = next) {
		next = r->next;
		free(r->path);
		dsfs_blob_unref(r->blob);
		free(r);
	}
	dsfs_scratch_free(fs->scratch);
	while (fs->edits) {
		struct edit_record *e = fs->edits;

		fs->edits = e->next;
		edit_record_free(e);
	}
	pthread_mutex_destroy(&fs->edit_lock);
	free(fs->tasks_path);
	free(fs->latest_path);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

/* Logs a failed operation once, if a request caused it. Returns ret. */
static int done(const char *op, const char *path, int ret)
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

/* A refusal of dsfs's own, before any request: one log line naming the path and why. Returns ret. */
static int refuse(const char *op, const char *path, int ret, const char *why)
{
	dsfs_log(DSFS_LOG_WARN, "%s %s: refused: %s (%s)", op, path, why, strerror(-ret));
	return ret;
}

/* Why an object file at loc cannot be written here, for the log. */
static const char *not_editable(const struct dsfs_fs *fs, const struct dsfs_loc *loc)
{
	if (loc->type == DSFS_LOC_FILE && dsfs_cache_editable(loc))
		return "editing objects needs the mount option allow_edit";
	return "the server's files are read-only here: the API has no update of them (docs/tree.md, Editing)";
}

/* Resolves an absolute path to a location (references held: put it). */
static int resolve(struct dsfs_fs *fs, const char *path, struct dsfs_loc *out)
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

/*
 * After a cache call answered -ESTALE for *loc (the object its name was
 * made from is now called otherwise, and the listing was taken again):
 * resolves path anew into *loc. -ESTALE when it resolved (try the call
 * again on the new location), or the lookup's errno; *loc is always one
 * to put.
 */
static int resolve_again(struct dsfs_fs *fs, const char *path, struct dsfs_loc *loc)
{
	int ret;

	dsfs_cache_put(fs->cache, loc);
	ret = resolve(fs, path, loc);
	if (ret)
		memset(loc, 0, sizeof(*loc));
	return ret ? ret : -ESTALE;
}

static void fill_stat(const struct dsfs_fs *fs, const struct dsfs_attr *a, struct stat *st)
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
		st->st_mode = S_IFDIR | (a->writable ? (fs->o.allow_other_actions ? 0777 : 0755) :
					 a->editable && fs->o.allow_edit ? 0755 : 0555);
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

/* ---- the mount's own state ------------------------------------------------ */

static struct dsfs_blob *stats_blob(struct dsfs_fs *fs)
{
	struct dsfs_http_stats h;
	struct dsfs_cache_stats c;
	char buf[1024];
	int n;

	dsfs_http_stats(fs->http, &h);
	dsfs_cache_stats(fs->cache, &c);
	n = snprintf(buf, sizeof(buf),
		     "{\n  \"requests\": {\n    \"GET\": %lu,\n    \"POST\": %lu,\n    \"PUT\": %lu,\n"
		     "    \"DELETE\": %lu,\n    \"other\": %lu,\n    \"total\": %lu\n  },\n"
		     "  \"retries\": %lu,\n  \"errors\": %lu,\n  \"logins\": %lu,\n"
		     "  \"cache\": {\n    \"hits\": %lu,\n    \"misses\": %lu,\n    \"evictions\": %lu,\n"
		     "    \"prefetched\": %lu,\n"
		     "    \"nodes\": %zu,\n    \"bytes\": %zu\n  },\n  \"page_cap_seen\": %lu\n}\n",
		     h.get, h.post, h.put, h.del, h.other, h.get + h.post + h.put + h.del + h.other,
		     h.retries, h.errors, dsfs_session_logins(fs->session), c.hits, c.misses,
		     c.evictions, c.prefetched, c.nodes, c.bytes, c.page_cap_seen);
	return dsfs_blob_new(buf, (size_t)n);
}

static bool is_latest(struct dsfs_fs *fs, const char *path)
{
	return fs->latest_path && !strcmp(path, fs->latest_path);
}

/* Target of tasks/latest (malloc'd), or NULL when no task was started here. */
static char *latest_target(struct dsfs_fs *fs)
{
	char *id = dsfs_tasks_latest(fs->tasks), *entry;

	if (!id)
		return NULL;
	entry = dsfs_names_entry(id, id);
	free(id);
	return entry;
}

/* Attributes of .dsfs/, .dsfs/stats and tasks/latest. 1 if path is one of them, 0 if not, or -errno. */
static int synthetic_stat(struct dsfs_fs *fs, const char *path, struct stat *st)
{
	struct dsfs_attr a = { .mtime = fs->o.mounted };

	if (!strcmp(path, DSFS_DIR)) {
		a.type = DSFS_LOC_BYID; /* any directory type */
		a.ino = 2;
	} else if (!strcmp(path, DSFS_STATS)) {
		struct dsfs_blob *b = stats_blob(fs);

		a.type = DSFS_LOC_FILE;
		a.ino = 3;
		a.size = b ? b->len : 0;
		dsfs_blob_unref(b);
	} else if (fs->o.events && !strcmp(path, EVENTS_DIR)) {
		a.type = DSFS_LOC_BYID; /* any directory type */
		a.ino = 5;
	} else if (fs->o.events && !strcmp(path, EVENTS_LOG)) {
		struct dsfs_blob *b = dsfs_events_text(fs->o.events, true);

		a.type = DSFS_LOC_FILE;
		a.ino = 6;
		a.size = b ? b->len : 0;
		dsfs_blob_unref(b);
	} else if (is_latest(fs, path)) {
		char *t = latest_target(fs);

		if (!t)
			return -ENOENT;
		a.type = DSFS_LOC_LINK;
		a.ino = 4;
		a.size = strlen(t);
		free(t);
	} else {
		return 0;
	}
	fill_stat(fs, &a, st);
	return 1;
}

/* ---- control-file results --------------------------------------------------- */

static struct dsfs_blob *result_get(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_blob *b = NULL;
	struct result *r;

	pthread_mutex_lock(&fs->lock);
	for (r = fs->results; r; r = r->next)
		if (!strcmp(r->path, path)) {
			b = dsfs_blob_ref(r->blob);
			break;
		}
	pthread_mutex_unlock(&fs->lock);
	return b;
}

static void result_set(struct dsfs_fs *fs, const char *path, struct dsfs_blob *blob)
{
	struct result *r, **pp;

	if (!blob)
		return;
	pthread_mutex_lock(&fs->lock);
	for (pp = &fs->results; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->path, path)) {
			r = *pp;
			*pp = r->next;
			dsfs_blob_unref(r->blob);
			fs->nresults--;
			goto insert;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		dsfs_blob_unref(blob);
		pthread_mutex_unlock(&fs->lock);
		return;
	}
insert:
	r->blob = blob;
	r->next = fs->results;
	fs->results = r;
	if (++fs->nresults > MAX_RESULTS) {
		/* forget the oldest */
		for (pp = &fs->results; (*pp)->next; pp = &(*pp)->next)
			;
		free((*pp)->path);
		dsfs_blob_unref((*pp)->blob);
		free(*pp);
		*pp = NULL;
		fs->nresults--;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* s[0..len) as a JSON string, each byte that is not valid UTF-8 shown as U+FFFD: the result stays JSON. */
static json_object *text_of(const char *s, size_t len)
{
	size_t ok = dsfs_ctl_utf8_prefix(s, len), o = 0;
	json_object *j;
	char *clean;

	if (ok == len)
		return json_object_new_string_len(s, (int)len);
	clean = malloc(len * 3 + 1);
	if (!clean)
		return NULL;
	while (len) {
		memcpy(clean + o, s, ok);
		o += ok;
		if (ok == len)
			break;
		memcpy(clean + o, "\xef\xbf\xbd", 3);
		o += 3;
		s += ok + 1;
		len -= ok + 1;
		ok = dsfs_ctl_utf8_prefix(s, len);
	}
	j = json_object_new_string_len(clean, (int)o);
	free(clean);
	return j;
}

/*
 * Records what a command did, as the JSON a read of its control file
 * returns; note (or NULL) says more about how it came (AT_CLOSE).
 */
static void record(struct dsfs_fs *fs, const char *path, const char *command, size_t len,
		   const struct dsfs_post_result *res, const char *error, const char *note)
{
	json_object *o = json_object_new_object(), *resp = NULL;
	const char *text;

	if (!o)
		return;
	json_object_object_add(o, "command", text_of(command, len));
	if (res && res->status)
		json_object_object_add(o, "status", json_object_new_int64(res->status));
	if (res && res->body && *res->body) {
		resp = json_tokener_parse(res->body);
		if (!resp)
			resp = json_object_new_string(res->body);
	}
	if (res && res->error && !error)
		error = res->error;
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	if (resp)
		json_object_object_add(o, "response", resp);
	if (res && res->task_id)
		json_object_object_add(o, "task", json_object_new_string(res->task_id));
	if (res && res->request)
		json_object_object_add(o, "dry_run", json_object_get(res->request));
	if (note)
		json_object_object_add(o, "note", json_object_new_string(note));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text) {
		size_t n = strlen(text);
		struct dsfs_blob *b = dsfs_blob_new(text, n + 1);

		if (b) {
			b->data[n] = '\n';
			result_set(fs, path, b);
		}
	}
	json_object_put(o);
}

/* ---- editors' files ------------------------------------------------------------- */

/* Inode numbers of editors' files: apart from the cache's hashes and the synthetic entries. */
#define SCRATCH_INO_BASE 0x5c5c000000000000ull

static void scratch_fill_stat(const struct dsfs_fs *fs, struct dsfs_scratch_file *f, struct stat *st)
{
	size_t size;
	time_t mtime;
	uint64_t ino;

	dsfs_scratch_stat(f, &size, &mtime, &ino);
	memset(st, 0, sizeof(*st));
	st->st_ino = SCRATCH_INO_BASE | ino;
	st->st_uid = fs->o.uid;
	st->st_gid = fs->o.gid;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_mode = S_IFREG | 0644;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

static int edit_target_of(struct dsfs_fs *fs, const char *path, struct dsfs_loc *obj);

/* The API URL of the object an editor's file at path would edit now (malloc'd), or NULL. */
static char *object_beside(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_loc obj;
	char *url = NULL;

	if (edit_target_of(fs, path, &obj) == 0)
		url = dsfs_cache_resource_url(fs->cache, &obj);
	dsfs_cache_put(fs->cache, &obj);
	return url;
}

/*
 * The editor's file at path (a reference), or NULL. A file made beside one
 * object is not there once its directory's name is another object's (the
 * server renamed them): it never shows in, or edits, another object's
 * directory.
 */
static struct dsfs_scratch_file *scratch_find(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_scratch_file *f = fs->o.allow_edit ? dsfs_scratch_get(fs->scratch, path) : NULL;
	char *url;

	if (!f)
		return NULL;
	url = object_beside(fs, path);
	if (!url || !dsfs_scratch_object(f) || strcmp(url, dsfs_scratch_object(f))) {
		dsfs_scratch_put(f);
		f = NULL;
	}
	free(url);
	return f;
}

/* True (with *st filled) when path is an editor's file. */
static bool scratch_stat(struct dsfs_fs *fs, const char *path, struct stat *st)
{
	struct dsfs_scratch_file *f = scratch_find(fs, path);

	if (!f)
		return false;
	scratch_fill_stat(fs, f, st);
	dsfs_scratch_put(f);
	return true;
}

struct scratch_fill {
	struct dsfs_fs *fs;
	const char *object; /* the API URL of the directory's object */
	dsfs_fs_fill_fn fill;
	void *ctx;
};

static int scratch_fill_one(void *ctx, const char *name, struct dsfs_scratch_file *f)
{
	struct scratch_fill *sf = ctx;
	struct stat st;

	if (!dsfs_scratch_object(f) || strcmp(dsfs_scratch_object(f), sf->object))
		return 0; /* made beside the object that had this directory's name before */

	scratch_fill_stat(sf->fs, f, &st);
	return sf->fill(sf->ctx, name, &st, DSFS_FS_COMPLETE);
}

/* ---- reading ------------------------------------------------------------------ */

int dsfs_fs_getattr(struct dsfs_fs *fs, const char *path, struct stat *st, unsigned *flags)
{
	struct dsfs_loc loc;
	struct dsfs_attr a;
	int ret;

	if (flags)
		*flags = 0;
	dsfs_err_clear();
	ret = synthetic_stat(fs, path, st);
	if (ret > 0 && flags && (!strcmp(path, DSFS_STATS) || !strcmp(path, EVENTS_LOG)))
		*flags = DSFS_FS_LIVE;
	if (ret)
		return ret < 0 ? ret : 0;
	if (scratch_stat(fs, path, st))
		return 0;
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_getattr(fs->cache, &loc, &a);
		if (ret == -ESTALE) /* the name is now another object's (the listing was taken again) */
			ret = resolve_again(fs, path, &loc);
		if (ret == -ESTALE)
			ret = dsfs_cache_getattr(fs->cache, &loc, &a);
		if (ret == -ESTALE)
			ret = -ENOENT; /* renamed under us twice: the name is not to be trusted now */
		if (ret == 0 && loc.type == DSFS_LOC_CTL) {
			struct dsfs_blob *b = result_get(fs, path);

			a.size = b ? b->len : 0;
			dsfs_blob_unref(b);
		}
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0)
		fill_stat(fs, &a, st);
	if (ret == 0 && flags && (a.type == DSFS_LOC_FILE || a.type == DSFS_LOC_COUNT))
		*flags = a.direct ? DSFS_FS_LIVE : a.type == DSFS_LOC_FILE ? DSFS_FS_FETCHED : 0;
	return done("stat", path, ret);
}

struct fill_ctx {
	struct dsfs_fs *fs;
	const char *dir;
	dsfs_fs_fill_fn fill;
	void *ctx;
};

/* The size of control file name in dir: its last result's, or 0. */
static size_t ctl_size(struct dsfs_fs *fs, const char *dir, const char *name)
{
	struct dsfs_blob *b;
	size_t size;
	char *path;

	pthread_mutex_lock(&fs->lock);
	size = fs->nresults;
	pthread_mutex_unlock(&fs->lock);
	if (!size || asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0)
		return 0;
	b = result_get(fs, path);
	size = b ? b->len : 0;
	dsfs_blob_unref(b);
	free(path);
	return size;
}

static int fill_one(void *ctx, const char *name, const struct dsfs_attr *attr, bool complete)
{
	struct fill_ctx *f = ctx;
	struct dsfs_attr ctl;
	struct stat st;

	if (attr->type == DSFS_LOC_CTL) { /* its size is dsfs's own: a listing gives it whole */
		ctl = *attr;
		ctl.size = ctl_size(f->fs, f->dir, name);
		attr = &ctl;
		complete = true;
	}
	fill_stat(f->fs, attr, &st);
	return f->fill(f->ctx, name, &st, (complete ? DSFS_FS_COMPLETE : 0) |
					     (attr->type != DSFS_LOC_FILE ? 0 : attr->direct ? DSFS_FS_LIVE : DSFS_FS_FETCHED));
}

int dsfs_fs_readdir(struct dsfs_fs *fs, const char *path, dsfs_fs_fill_fn fill, void *ctx)
{
	struct fill_ctx f = { fs, path, fill, ctx };
	char *object = NULL;
	struct dsfs_loc loc;
	struct stat st;
	int ret;

	dsfs_err_clear();
	if (!strcmp(path, DSFS_DIR)) {
		synthetic_stat(fs, DSFS_STATS, &st);
		return fill(ctx, "stats", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
	}
	if (fs->o.events && !strcmp(path, EVENTS_DIR)) {
		synthetic_stat(fs, EVENTS_LOG, &st);
		return fill(ctx, "log", &st, DSFS_FS_COMPLETE | DSFS_FS_LIVE) ? -ENOMEM : 0;
	}
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readdir(fs->cache, &loc, fill_one, &f);
		if (fs->o.allow_edit && loc.type == DSFS_LOC_RESOURCE && !(object = dsfs_cache_resource_url(fs->cache, &loc)))
			ret = -ENOMEM;
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0 && fs->tasks_path && !strcmp(path, fs->tasks_path) &&
	    synthetic_stat(fs, fs->latest_path, &st) == 1)
		ret = fill(ctx, LATEST, &st, DSFS_FS_COMPLETE) ? -ENOMEM : 0;
	if (ret == 0 && object) {
		struct scratch_fill sf = { fs, object, fill, ctx };

		ret = dsfs_scratch_list(fs->scratch, path, scratch_fill_one, &sf) ? -ENOMEM : 0;
	}
	free(object);
	return done("readdir", path, ret);
}

static struct dsfs_handle *handle_new(enum handle_type type)
{
	struct dsfs_handle *h = calloc(1, sizeof(*h));

	if (h) {
		h->type = type;
		pthread_mutex_init(&h->lock, NULL);
	}
	return h;
}

/* Whether control file loc is an action file, whose commands start with a verb, rather than a `new`. */
static bool takes_verbs(const struct dsfs_loc *loc)
{
	const struct dsfs_action *create, *actions;
	size_t n;

	dsfs_cache_ctl_actions(loc, &create, &actions, &n);
	return !create;
}

/*
 * An object file opened for writing (-o allow_edit): its handle holds a
 * buffer that starts as the object was shown (empty with O_TRUNC) and is
 * sent as an edit at its writer's close.
 */
static int open_edit(struct dsfs_fs *fs, const struct dsfs_loc *loc, int flags, struct dsfs_handle **out)
{
	struct dsfs_blob *base = NULL;
	struct dsfs_handle *h = NULL;
	int ret;

	*out = NULL;
	if (!fs->o.allow_edit || !dsfs_cache_editable(loc))
		return -EPERM; /* the API has no update for it, or the mount does not allow edits */
	ret = dsfs_cache_shown(fs->cache, loc, &base);
	if (ret == -ESTALE)
		ret = -ENOENT; /* the name is another object's now: an edit of it starts from a fresh open */
	if (ret == 0 && !(h = handle_new(H_EDIT)))
		ret = -ENOMEM;
	if (ret == 0)
		ret = dsfs_scratch_create(NULL, NULL, base, NULL, &h->file);
	if (ret == 0 && !(flags & O_TRUNC))
		ret = dsfs_scratch_fill(h->file, base);
	dsfs_blob_unref(base);
	if (ret) {
		dsfs_fs_release(fs, h);
		return ret;
	}
	h->object = true;
	*out = h;
	return 0;
}

int dsfs_fs_open(struct dsfs_fs *fs, const char *path, int flags, pid_t pid, struct dsfs_handle **out,
		 enum dsfs_caching *caching)
{
	struct dsfs_scratch_file *f;
	struct dsfs_handle *h = NULL;
	struct dsfs_loc loc = { 0 };
	bool writing = (flags & O_ACCMODE) != O_RDONLY;
	int ret;

	dsfs_err_clear();
	*out = NULL;
	*caching = DSFS_CACHING_DIRECT;
	if (!strcmp(path, DSFS_STATS)) {
		if (writing)
			return -EACCES;
		h = handle_new(H_READ);
		if (!h || !(h->content = stats_blob(fs))) {
			dsfs_fs_release(fs, h);
			return -ENOMEM;
		}
		*out = h;
		return 0;
	}
	if (fs->o.events && !strcmp(path, EVENTS_LOG)) {
		if (writing)
			return -EACCES;
		if (!(h = handle_new(H_EVENTS)))
			return -ENOMEM;
		dsfs_events_open(fs->o.events);
		if (!(h->content = dsfs_events_text(fs->o.events, true))) {
			dsfs_fs_release(fs, h);
			return -ENOMEM;
		}
		*out = h;
		return 0;
	}
	if ((f = scratch_find(fs, path))) {
		if (!(h = handle_new(H_EDIT))) {
			dsfs_scratch_put(f);
			return -ENOMEM;
		}
		h->file = f;
		ret = !(h->path = strdup(path)) ? -ENOMEM : writing && (flags & O_TRUNC) ? dsfs_scratch_truncate(f, 0) : 0;
		if (ret)
			dsfs_fs_release(fs, h);
		else
			*out = h;
		return ret;
	}
	ret = resolve(fs, path, &loc);
	if (ret)
		return done("open", path, ret);
	switch (loc.type) {
	case DSFS_LOC_COUNT:
		h = handle_new(H_READ);
		ret = !h ? -ENOMEM : writing ? refuse("open", path, -EACCES, "a count is read-only")
					     : dsfs_cache_open(fs->cache, &loc, &h->content, caching);
		break;
	case DSFS_LOC_FILE:
		if (writing) {
			ret = open_edit(fs, &loc, flags, &h);
			if (ret == -EPERM)
				refuse("open for writing", path, ret, not_editable(fs, &loc));
			if (ret == 0 && !(h->path = strdup(path)))
				ret = -ENOMEM;
			if (ret == 0)
				h->opener = pid; /* its close, not a child's that inherited the file, sends the edit */
			break;
		}
		h = handle_new(H_READ);
		if (!h) {
			ret = -ENOMEM;
			break;
		}
		ret = dsfs_cache_open(fs->cache, &loc, &h->content, caching);
		if (ret == -ESTALE) /* the name is now another object's (the listing was taken again) */
			ret = resolve_again(fs, path, &loc);
		if (ret == -ESTALE)
			ret = loc.type == DSFS_LOC_FILE ? dsfs_cache_open(fs->cache, &loc, &h->content, caching) : -ENOENT;
		if (ret == -ESTALE)
			ret = -ENOENT;
		h->direct = loc.node && *caching != DSFS_CACHING_PAGED;
		break;
	case DSFS_LOC_CTL:
		h = handle_new(H_CTL);
		if (!h || !(h->path = strdup(path))) {
			ret = -ENOMEM;
			break;
		}
		h->content = result_get(fs, path);
		h->opener = pid;
		dsfs_ctl_scan_init(&h->scan, takes_verbs(&loc));
		break;
	case DSFS_LOC_WAIT:
		h = handle_new(H_WAIT);
		ret = !h ? -ENOMEM : writing ? refuse("open", path, -EACCES, "a task's wait is read-only") : 0;
		break;
	default:
		ret = -EISDIR;
	}
	if (ret) {
		dsfs_cache_put(fs->cache, &loc);
		dsfs_fs_release(fs, h);
		return done("open", path, ret);
	}
	h->loc = loc; /* keeps the references */
	*out = h;
	return 0;
}

/* ---- waiting for tasks --------------------------------------------------------- */

struct dsfs_fs_wait {
	struct dsfs_fs *fs;
	struct dsfs_task_watch *watch;
	struct dsfs_handle *h;   /* a read of tasks/<id>/wait, or NULL for an rmdir */
	char *what;              /* the path (rmdir) or the task's URL (wait), for the log */
	char *id;                /* rmdir: the object deleted */
	uid_t uid;               /* holds a waiting place */
	dsfs_fs_done_fn done;
	void *arg;
};

static void wait_free(struct dsfs_fs_wait *w)
{
	dsfs_waiters_leave(w->fs->o.waiters, w->uid);
	free(w->what);
	free(w->id);
	free(w);
}

/*
 * The task ended (on the tasks' poller thread): its effect shows, and the
 * caller hears. A reader of wait gets one line in dsfs's words, whatever
 * the API calls the end ("SUCCEEDED", "FAILED: <reason>"), and, after it,
 * the errno of a task that did not succeed: cat prints the line and fails.
 */
static void wait_ended(void *arg, int ret, const char *end, const char *why)
{
	struct dsfs_fs_wait *w = arg;
	struct dsfs_fs *fs = w->fs;
	char line[700];

	if (ret == 0 || ret == -EIO)
		dsfs_cache_invalidate(fs->cache);
	dsfs_err_clear();
	if (ret && why)
		dsfs_err_record("GET", w->what, 0, why);
	if (w->h && end) {
		if (ret)
			snprintf(line, sizeof(line), "%s: %s\n", end, why ? why : "the server gave no reason");
		else
			snprintf(line, sizeof(line), "%s\n", end);
		pthread_mutex_lock(&w->h->lock);
		if (!w->h->content && !(w->h->content = dsfs_blob_new(line, strlen(line))))
			ret = -ENOMEM;
		w->h->end_err = ret;
		pthread_mutex_unlock(&w->h->lock);
		if (ret == -ETIMEDOUT)
			done("read", w->what, ret); /* the task's own end is logged once, by its poller */
		ret = ret == -ENOMEM ? ret : 0; /* the line first; the errno at its end */
	}
	if (!w->h && ret == 0)
		dsfs_log(DSFS_LOG_INFO, "rmdir %s: deleted %s", w->what, w->id);
	if (!w->h || !end)
		done(w->h ? "read" : "rmdir", w->what, ret);
	w->done(w->arg, ret);
	wait_free(w);
}

/* Starts watching the task at url for the caller, within the waiting bounds. */
static int wait_start(struct dsfs_fs *fs, const char *url, struct dsfs_handle *h, const char *what,
		      const char *id, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **out)
{
	struct dsfs_fs_wait *w = calloc(1, sizeof(*w));

	if (!w || !(w->what = strdup(what)) || (id && !(w->id = strdup(id)))) {
		if (w)
			free(w->what);
		free(w);
		return -ENOMEM;
	}
	w->fs = fs;
	w->h = h;
	w->uid = dsfs_caller_uid();
	w->done = fn;
	w->arg = arg;
	*out = w;
	w->watch = dsfs_tasks_watch(fs->tasks, url, fs->o.wait_timeout, wait_ended, w);
	if (!w->watch) {
		free(w->what);
		free(w->id);
		free(w);
		return -ENOMEM;
	}
	return DSFS_FS_WAITING;
}

bool dsfs_fs_read_waits(struct dsfs_handle *h)
{
	bool waits;

	pthread_mutex_lock(&h->lock);
	waits = h->type == H_WAIT && !h->content;
	pthread_mutex_unlock(&h->lock);
	return waits;
}

int dsfs_fs_read_wait(struct dsfs_fs *fs, struct dsfs_handle *h, dsfs_fs_done_fn fn, void *arg,
		      struct dsfs_fs_wait **out)
{
	char *url;
	int ret;

	if (!dsfs_fs_read_waits(h))
		return 0;
	/* a reader past its user's or the mount's bound gets EAGAIN */
	ret = dsfs_waiters_enter(fs->o.waiters, dsfs_caller_uid());
	if (ret)
		return ret;
	url = dsfs_cache_resource_url(fs->cache, &h->loc);
	ret = url ? wait_start(fs, url, h, url, NULL, fn, arg, out) : -ENOMEM;
	if (ret < 0)
		dsfs_waiters_leave(fs->o.waiters, dsfs_caller_uid());
	free(url);
	return ret;
}

bool dsfs_fs_wait_cancel(struct dsfs_fs_wait *w)
{
	if (!dsfs_tasks_unwatch(w->fs->tasks, w->watch))
		return false;
	wait_free(w);
	return true;
}

int dsfs_fs_read(struct dsfs_fs *fs, struct dsfs_handle *h, struct dsfs_blob *newest, char *buf, size_t size,
		 off_t off)
{
	struct dsfs_blob *b;
	int ret = 0;

	if (off < 0)
		return -EINVAL;
	if (h->type == H_EDIT)
		return dsfs_scratch_read(h->file, buf, size, off);
	dsfs_err_clear();
	pthread_mutex_lock(&h->lock);
	if (h->type == H_WAIT && !h->content)
		ret = -EAGAIN; /* dsfs_fs_read_wait comes first */
	else if (h->type == H_WAIT && (size_t)off >= h->content->len)
		ret = h->end_err;
	if (h->type == H_READ && h->direct && h->content && (size_t)off >= h->content->len) {
		/* Past what it held: fetch what was added since (tail -f on a task's log). */
		double age = fs->o.ttl < 1.0 ? fs->o.ttl : 1.0;

		if (dsfs_cache_reread(fs->cache, &h->loc, age, &b) == 0)
			dsfs_blob_take_grown(&h->content, b);
	}
	if (h->type == H_READ && newest && h->content && newest->version > h->content->version) {
		dsfs_blob_unref(h->content); /* the kernel's shared pages never go back to older bytes */
		h->content = dsfs_blob_ref(newest);
	}
	if (h->type == H_EVENTS && (size_t)off >= h->content->len) /* what the feed has gained since */
		dsfs_blob_take_grown(&h->content, dsfs_events_text(fs->o.events, true));
	b = h->content;
	if (ret == 0 && b && (size_t)off < b->len) {
		if (size > b->len - (size_t)off)
			size = b->len - (size_t)off;
		memcpy(buf, b->data + off, size);
		ret = (int)size;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

struct dsfs_blob *dsfs_fs_content(struct dsfs_handle *h)
{
	struct dsfs_blob *b = NULL;

	if (h->type != H_READ)
		return NULL;
	pthread_mutex_lock(&h->lock);
	b = dsfs_blob_ref(h->content);
	pthread_mutex_unlock(&h->lock);
	return b;
}

/* ---- control files ------------------------------------------------------------ */

/* dir/scope/name with "." and ".." resolved, or NULL. */
static char *scoped_path(const char *dir, const char *scope, const char *name)
{
	char *joined, *out, *save = NULL, *tok;
	size_t n;

	if (asprintf(&joined, "%s/%s/%s", dir, scope, name) < 0)
		return NULL;
	out = calloc(1, strlen(joined) + 2);
	if (!out) {
		free(joined);
		return NULL;
	}
	for (tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			char *slash = strrchr(out, '/');

			if (slash)
				*slash = '\0';
			continue;
		}
		n = strlen(out);
		out[n] = '/';
		strcpy(out + n + 1, tok);
	}
	if (!*out)
		strcpy(out, "/");
	free(joined);
	return out;
}

/* Replaces v (a JSON string) by the id of the entry it names in dir/scope, if it names one. */
static int name_to_id(struct dsfs_fs *fs, const char *dir, const char *scope, json_object *v)
{
	const char *name = json_object_get_string(v);
	struct dsfs_loc loc;
	char *path, *id;
	int ret;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0; /* not an entry name: taken as an id */
	path = scoped_path(dir, scope, name);
	if (!path)
		return -ENOMEM;
	ret = resolve(fs, path, &loc);
	free(path);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	id = dsfs_cache_resource_id(fs->cache, &loc);
	dsfs_cache_put(fs->cache, &loc);
	if (id) {
		json_object_set_string(v, id);
		free(id);
	}
	return 0;
}

static int resolve_refs(struct dsfs_fs *fs, const char *ctl_path, const struct dsfs_action *a, json_object *body)
{
	char *dir = strdup(ctl_path), *slash;
	const struct dsfs_ref *ref;
	int ret = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	for (ref = a->refs; ref && ref->field && !ret; ref++) {
		json_object *v = dsfs_ctl_get(body, ref->field);

		if (v && json_object_is_type(v, json_type_string)) {
			ret = name_to_id(fs, dir, ref->scope, v);
		} else if (v && json_object_is_type(v, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(v) && !ret; i++) {
				json_object *e = json_object_array_get_idx(v, i);

				if (json_object_is_type(e, json_type_string))
					ret = name_to_id(fs, dir, ref->scope, e);
			}
		}
	}
	free(dir);
	return ret;
}

/* -o dry_run: the request a change would have sent, logged (a control file's result shows it too). */
static void log_dry_run(const char *op, const char *path, const struct dsfs_post_result *res)
{
	json_object *body;

	if (!res->request)
		return;
	body = dsfs_dialect_field(res->request, "body");
	dsfs_log(DSFS_LOG_INFO, "%s %s: dry run: would send %s %s%s%s; nothing sent", op, path,
		 json_object_get_string(dsfs_dialect_field(res->request, "method")),
		 json_object_get_string(dsfs_dialect_field(res->request, "url")), body ? " " : "",
		 body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "");
}

/* Parses, checks and sends one command; records what happened (and, if it failed, note) for a read of the file. */
static int run_command(struct dsfs_fs *fs, struct dsfs_handle *h, const char *line, size_t len, const char *note)
{
	const struct dsfs_action *create, *actions, *a;
	struct dsfs_post_result res = { 0 };
	json_object *body = NULL;
	size_t nactions;
	char err[512];
	int ret;

	dsfs_cache_ctl_actions(&h->loc, &create, &actions, &nactions);
	ret = dsfs_ctl_parse(line, len, create, actions, nactions, &a, &body, err, sizeof(err));
	if (ret == 0 && a->destroys && !fs->o.allow_delete) {
		/* like rmdir: what cannot be undone is asked for by the mount, not by a line alone */
		snprintf(err, sizeof(err), "'%s' destroys or overwrites data: it needs the mount option "
			 "allow_delete (-o allow_delete)", a->verb ? a->verb : "new");
		ret = -EPERM;
	}
	if (ret) {
		dsfs_log(DSFS_LOG_WARN, "write %s: %s; nothing sent", h->path, err);
		record(fs, h->path, line, len, NULL, err, note);
		json_object_put(body);
		return ret;
	}
	ret = resolve_refs(fs, h->path, a, body);
	if (ret == 0) {
		ret = dsfs_cache_post(fs->cache, &h->loc, a, body, &res);
		/* an action that started no task (or none that could be found) clears tasks/latest:
		 * it must never show another action's outcome */
		if (ret == 0 || res.task_id)
			dsfs_tasks_set_latest(fs->tasks, res.task_id);
		done("write", h->path, ret);
		log_dry_run("write", h->path, &res);
	}
	record(fs, h->path, line, len, &res, ret && !res.status ? strerror(-ret) : NULL, ret ? note : NULL);
	dsfs_post_result_clear(&res);
	json_object_put(body);
	return ret;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* A line past DSFS_CTL_MAX: refused, with its first bytes recorded. Returns -EFBIG. */
static int refuse_long(struct dsfs_fs *fs, struct dsfs_handle *h, const char *more, size_t n)
{
	char why[160], head[80];
	size_t k = h->len < sizeof(head) ? h->len : sizeof(head);

	if (k)
		memcpy(head, h->buf, k); /* h->buf is NULL until a first partial line */
	if (k < sizeof(head)) {
		size_t m = n < sizeof(head) - k ? n : sizeof(head) - k;

		memcpy(head + k, more, m);
		k += m;
	}
	snprintf(why, sizeof(why), "command longer than %d bytes; nothing sent, and the rest of the line is discarded",
		 DSFS_CTL_MAX);
	dsfs_log(DSFS_LOG_WARN, "write %s: %s", h->path, why);
	record(fs, h->path, head, k, NULL, why, NULL);
	return -EFBIG;
}

/* The result's note on a command that ran at close(): a shell may never have said that it failed. */
#define AT_CLOSE "no newline: ran at close(), whose error most shells do not report; end each command with a newline"

/* At close, a JSON object whose braces never balanced: refused whole, nothing sent. Returns -EINVAL. */
static int refuse_unclosed(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	static const char why[] = "the JSON object is not closed: more '{' than '}' (outside strings); nothing sent";

	dsfs_log(DSFS_LOG_WARN, "close %s: %s", h->path, why);
	record(fs, h->path, h->buf, h->len, NULL, why, AT_CLOSE);
	return -EINVAL;
}

/* Appends n bytes to the pending line. */
static int append(struct dsfs_handle *h, const char *p, size_t n)
{
	char *b;

	if (!h->buf) {
		b = malloc(DSFS_CTL_MAX + 1); /* the bound: a line never grows past it */
		if (!b)
			return -ENOMEM;
		h->buf = b;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	h->buf[h->len] = '\0';
	return 0;
}

int dsfs_fs_write(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	const char *p = buf, *end = buf + size;
	bool ended = false;
	size_t k;
	int ret = 0;

	dsfs_err_clear();
	if (h->type == H_EDIT) {
		ret = dsfs_scratch_write(h->file, buf, size, off);
		pthread_mutex_lock(&h->lock);
		h->dirty |= ret > 0;
		h->writer = pid;
		if (ret < 0 && h->object)
			h->failed = ret; /* a file missing part of what was written is never sent */
		pthread_mutex_unlock(&h->lock);
		return ret;
	}
	if (h->type != H_CTL)
		return -EBADF;
	pthread_mutex_lock(&h->lock);
	if (h->refused) {
		/* the rest of a refused command: never a command of its own */
		k = dsfs_ctl_scan(&h->scan, p, size, &ended);
		if (!ended || k == size) {
			ret = h->refused; /* nothing in this write but the refused command */
			if (ended)
				h->refused = 0;
			goto out;
		}
		h->refused = 0;
		p += k;
	}
	/*
	 * Every complete command (a line, or a JSON object's lines) is sent; a
	 * partial one waits for more or for its writer's close.
	 */
	while (ret == 0 && p < end) {
		size_t n;

		k = dsfs_ctl_scan(&h->scan, p, (size_t)(end - p), &ended);
		n = ended ? k - 1 : k; /* its newline is no part of it */
		ret = h->len + n > DSFS_CTL_MAX ? refuse_long(fs, h, p, n) : append(h, p, n);
		p += k;
		if (ret == 0 && !ended) {
			h->writer = pid;
			break;
		}
		if (ret == 0 && !blank(h->buf, h->len))
			ret = run_command(fs, h, h->buf, h->len, NULL);
		h->len = 0;
	}
	/*
	 * A failed command takes the rest of the write with it. When the
	 * refused command, or that rest, ends short of a command's end, the
	 * bytes of later writes up to one belong to it: discarded too.
	 */
	while (ret && p < end) {
		k = dsfs_ctl_scan(&h->scan, p, (size_t)(end - p), &ended);
		p += k;
	}
	if (ret && !ended)
		h->refused = ret;
out:
	pthread_mutex_unlock(&h->lock);
	return ret ? ret : (int)size;
}

struct edit_check {
	struct dsfs_fs *fs;
	const char *url;
};

/*
 * Before a PUT: an earlier edit of the object whose task still runs is not
 * yet in what the server shows, so the edit would land on a guess: EBUSY.
 * fs->edit_lock held.
 */
static int earlier_edit_ended(void *ctx)
{
	struct edit_check *ck = ctx;
	struct edit_record **pp, *e;
	char why[300];
	bool ended;
	int ret;

	for (pp = &ck->fs->edits; *pp && strcmp((*pp)->url, ck->url); pp = &(*pp)->next)
		;
	if (!(e = *pp))
		return 0;
	ret = dsfs_cache_task_ended(ck->fs->cache, e->task, &ended);
	if (ret == 0 && ended) {
		*pp = e->next;
		edit_record_free(e);
	} else if (ret == 0) {
		snprintf(why, sizeof(why), "an earlier edit of this object (task %s) is still being carried out: "
			 "edit it again once that task has ended", e->task);
		dsfs_err_record("PUT", ck->url, 0, why);
		ret = -EBUSY;
	}
	return ret;
}

/* An edit's task has ended: what the server now holds shows at the next read. */
static void edit_task_ended(void *arg, int ret, const char *end, const char *why)
{
	(void)ret;
	(void)end;
	(void)why;
	dsfs_cache_invalidate(arg);
}

/*
 * Sends an edit: base (what the writer started from) to now, for object
 * file loc (path for the log). 0 when sent or when nothing changed. An
 * edit the server carries out in a task marks the cache stale again when
 * the task ends (tasks/latest/wait waits for it).
 */
static int edit_object(struct dsfs_fs *fs, const char *path, const struct dsfs_loc *loc, struct dsfs_blob *base,
		       struct dsfs_blob *now)
{
	struct dsfs_post_result res = { 0 };
	struct edit_record **pp, *e;
	char *url = dsfs_cache_resource_url(fs->cache, loc);
	size_t kept;
	int ret = 0;

	if (!base || !now || !url) {
		free(url);
		return -ENOMEM;
	}
	pthread_mutex_lock(&fs->edit_lock);
	ret = dsfs_cache_edit(fs->cache, loc, base, now->data, now->len, earlier_edit_ended,
			      &(struct edit_check){ fs, url }, &res);
	if (ret == 0 && res.task_id && (e = calloc(1, sizeof(*e)))) {
		e->url = url;
		url = NULL;
		e->next = fs->edits;
		fs->edits = e;
		if (!(e->task = strdup(res.task_id))) {
			fs->edits = e->next;
			edit_record_free(e);
		}
	}
	for (pp = &fs->edits, kept = 0; *pp && kept < EDIT_RECORDS; pp = &(*pp)->next, kept++)
		;
	while ((e = *pp)) { /* a bounded memory of them */
		*pp = e->next;
		edit_record_free(e);
	}
	pthread_mutex_unlock(&fs->edit_lock);
	free(url);
	if (ret == 0 && res.status) {
		dsfs_log(DSFS_LOG_INFO, "edit %s: sent (HTTP %ld)%s%s", path, res.status,
			 res.task_id ? ", task " : "", res.task_id ? res.task_id : "");
		dsfs_tasks_set_latest(fs->tasks, res.task_id); /* tasks/latest never shows an older action's */
	}
	log_dry_run("edit", path, &res); /* the file goes on showing the server's object, which nothing changed */
	if (ret == 0 && res.task_id) {
		char *task_url = dsfs_cache_task_url(fs->cache, res.task_id);

		if (!task_url || !dsfs_tasks_watch(fs->tasks, task_url, fs->o.wait_timeout, edit_task_ended, fs->cache))
			dsfs_log(DSFS_LOG_WARN, "edit %s: cannot follow task %s: read the file again once it has "
				 "ended", path, res.task_id);
		free(task_url);
	}
	dsfs_post_result_clear(&res);
	return done("edit", path, ret);
}

/* An object file's buffer at its writer's close: sent once, unless nothing was written. */
static int send_edit(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	struct dsfs_blob *base, *now;
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	if (h->object && h->failed) {
		dsfs_log(DSFS_LOG_ERR, "edit %s: a write failed (%s): nothing sent", h->path, strerror(-h->failed));
		ret = h->failed;
		h->dirty = false;
		h->failed = 0;
	} else if (h->object && h->dirty) {
		base = dsfs_scratch_base(h->file);
		now = dsfs_scratch_bytes(h->file);
		ret = edit_object(fs, h->path, &h->loc, base, now);
		dsfs_blob_unref(base);
		dsfs_blob_unref(now);
		if (ret != -EINTR)
			h->dirty = false; /* sent or refused: another close sends nothing again */
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

int dsfs_fs_flush(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open)
{
	int ret = 0;

	if (h->type != H_CTL && h->type != H_EDIT)
		return 0;
	dsfs_err_clear();
	pthread_mutex_lock(&h->lock);
	/*
	 * Every close() flushes, the close of a copy a child inherited (a
	 * command substitution, any program run in between) included. Only
	 * the last close of the process that opened the file, or, once it has
	 * gone, of the process that wrote the pending bytes, ends the line.
	 */
	/* an edit's handle is its own buffer: another descriptor of the file is another edit */
	if (keeps_open && h->type != H_EDIT)
		goto out;
	if (pid == h->opener)
		h->opener_closed = true;
	if (pid != h->opener && !(h->opener_closed && pid == h->writer))
		goto out;
	if (h->type == H_EDIT) {
		pthread_mutex_unlock(&h->lock);
		return send_edit(fs, h);
	}
	h->refused = 0;
	if (h->len && !blank(h->buf, h->len)) {
		ret = dsfs_ctl_scan_open(&h->scan) ? refuse_unclosed(fs, h) : run_command(fs, h, h->buf, h->len, AT_CLOSE);
		if (ret)
			dsfs_log(DSFS_LOG_WARN, "close %s: the command had no newline, so it ran at close(), whose error (%s) "
				 "most shells do not report; a read of the file returns its result", h->path,
				 strerror(-ret));
	}
	h->len = 0;
	dsfs_ctl_scan_init(&h->scan, h->scan.verb); /* what follows starts a command */
out:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

void dsfs_fs_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	if (!h)
		return;
	if (h->type == H_CTL && h->len && !blank(h->buf, h->len)) {
		static const char why[] = "unfinished command discarded: no newline, and the process that wrote it "
					  "did not close the file; nothing sent";

		dsfs_log(DSFS_LOG_WARN, "close %s: %s ('%.*s')", h->path, why, h->len < 80 ? (int)h->len : 80, h->buf);
		record(fs, h->path, h->buf, h->len, NULL, why, NULL);
	}
	if (h->type == H_EVENTS)
		dsfs_events_close(fs->o.events);
	if (h->type == H_EDIT && h->object && h->dirty)
		dsfs_log(DSFS_LOG_WARN, "edit discarded: its writer never closed the file; nothing sent");
	dsfs_scratch_put(h->file);
	dsfs_cache_put(fs->cache, &h->loc);
	dsfs_blob_unref(h->content);
	free(h->path);
	free(h->buf);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int dsfs_fs_statfs(struct dsfs_fs *fs, const char *path, struct dsfs_space *out)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	if (!strncmp(path, DSFS_DIR, strlen(DSFS_DIR)) || is_latest(fs, path) ||
	    (fs->o.events && !strncmp(path, EVENTS_DIR, strlen(EVENTS_DIR))))
		path = "/";
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_space(fs->cache, &loc, out);
		dsfs_cache_put(fs->cache, &loc);
	}
	return done("statfs", path, ret);
}

int dsfs_fs_readlink(struct dsfs_fs *fs, const char *path, char *buf, size_t size)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	if (is_latest(fs, path)) {
		char *t = latest_target(fs);

		if (!t)
			return -ENOENT;
		snprintf(buf, size, "%s", t);
		free(t);
		return 0;
	}
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		ret = dsfs_cache_readlink(fs->cache, &loc, buf, size);
		dsfs_cache_put(fs->cache, &loc);
	}
	return done("readlink", path, ret);
}

/*
 * truncate(2) of an editable object file: the same edit as opening it for
 * writing, cutting it to size and closing it (an in-place write), so its
 * checks, its one PUT and its refusals are an edit's own: a cut that
 * leaves no JSON object is EINVAL, nothing sent; one that changes nothing
 * sends nothing.
 */
static int truncate_object(struct dsfs_fs *fs, const char *path, off_t size)
{
	enum dsfs_caching caching;
	struct dsfs_handle *h;
	int ret = dsfs_fs_open(fs, path, O_WRONLY, 0, &h, &caching);

	if (ret)
		return ret;
	ret = dsfs_fs_ftruncate(fs, h, size);
	if (ret == 0)
		ret = dsfs_fs_flush(fs, h, 0, false); /* opened by pid 0: this close is the opener's */
	dsfs_fs_release(fs, h);
	return ret;
}

int dsfs_fs_truncate(struct dsfs_fs *fs, const char *path, off_t size)
{
	struct dsfs_scratch_file *f = scratch_find(fs, path);
	struct dsfs_loc loc;
	bool edit = false;
	int ret;

	dsfs_err_clear();
	if (f) {
		ret = dsfs_scratch_truncate(f, size);
		dsfs_scratch_put(f);
		return ret;
	}
	ret = resolve(fs, path, &loc);
	if (ret == 0) {
		edit = fs->o.allow_edit && dsfs_cache_editable(&loc);
		ret = edit || (loc.type == DSFS_LOC_CTL && size == 0) ? 0 : -EACCES;
		if (ret)
			refuse("truncate", path, ret, loc.type == DSFS_LOC_CTL ? "a control file takes commands, not a size"
										  : not_editable(fs, &loc));
		dsfs_cache_put(fs->cache, &loc);
	}
	if (ret == 0 && edit)
		return truncate_object(fs, path, size); /* the edit logs its own outcome */
	return done("truncate", path, ret);
}

static char *split_parent(const char *path, const char **name)
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

/*
 * mkdir creates a resource and then must find it under the name it was
 * given. A name the tree would show otherwise (escaped: '%', control
 * characters, "." and "..") or that the API cannot carry (not UTF-8) is
 * refused before anything is sent, rather than created and reported as
 * missing. Returns 0 or -EINVAL.
 */
static int mkdir_name_ok(const char *parent, const char *name)
{
	size_t len = strlen(name);
	char *entry;
	int ret = 0;

	if (dsfs_ctl_utf8_prefix(name, len) < len) {
		dsfs_log(DSFS_LOG_WARN, "mkdir in %s: refused: the name is not valid UTF-8; nothing sent", parent);
		return -EINVAL;
	}
	entry = dsfs_names_entry(name, NULL);
	if (!entry)
		return -ENOMEM;
	if (strcmp(entry, name)) {
		/* the log gets the escaped form: the raw name may hold a newline */
		dsfs_log(DSFS_LOG_WARN, "mkdir %s/%s: refused: the tree would show the new entry as '%s', not under the "
			 "name given, so mkdir could not find what it made; nothing sent (to create it anyway: "
			 "echo 'NAME' > new)", parent, entry, entry);
		ret = -EINVAL;
	}
	free(entry);
	return ret;
}

int dsfs_fs_mkdir(struct dsfs_fs *fs, const char *path)
{
	const struct dsfs_action *create, *actions;
	struct dsfs_post_result res = { 0 };
	struct dsfs_loc dir, ctl = { 0 };
	json_object *body = NULL;
	const char *name;
	char *parent = split_parent(path, &name);
	size_t n;
	int ret;

	dsfs_err_clear();
	if (!parent)
		return -ENOMEM;
	ret = mkdir_name_ok(parent, name);
	if (ret) {
		free(parent);
		return ret;
	}
	/* as `echo name=NAME > new`, with the name taken literally */
	ret = resolve(fs, parent, &dir);
	if (ret == 0) {
		ret = dsfs_cache_lookup(fs->cache, &dir, "new", &ctl);
		dsfs_cache_put(fs->cache, &dir);
		if (ret == -ENOENT || (ret == 0 && ctl.type != DSFS_LOC_CTL)) /* nothing can be created here */
			ret = refuse("mkdir", path, -EPERM, "nothing can be created here (only in a collection "
				     "with a new file)");
	}
	if (ret == 0) {
		dsfs_cache_ctl_actions(&ctl, &create, &actions, &n);
		if (!create || !create->bare_field) {
			/* what is created here takes more than a name (a JSON body): only `new` can */
			dsfs_log(DSFS_LOG_WARN, "mkdir %s: refused: what is made here takes more than a name; write it "
				 "to %s/new", path, parent);
			ret = -EPERM;
		} else {
			body = json_object_new_object();
			if (!body || json_object_object_add(body, create->bare_field, json_object_new_string(name)))
				ret = -ENOMEM;
		}
	}
	if (ret == 0) {
		ret = dsfs_cache_post(fs->cache, &ctl, create, body, &res);
		if (ret == 0 || res.task_id)
			dsfs_tasks_set_latest(fs->tasks, res.task_id);
	}
	if (ret == 0 && res.request) {
		/* a dry run's request shows where `echo NAME > new` would show it: the file is there to read */
		char *new_path = NULL;

		log_dry_run("mkdir", path, &res);
		if (asprintf(&new_path, "%s/new", strcmp(parent, "/") ? parent : "") >= 0)
			record(fs, new_path, name, strlen(name), &res, NULL, NULL);
		free(new_path);
		ret = DSFS_FS_DRY_RUN;
	}
	dsfs_post_result_clear(&res);
	json_object_put(body);
	dsfs_cache_put(fs->cache, &ctl);
	free(parent);
	return ret > 0 ? ret : done("mkdir", path, ret);
}

int dsfs_fs_rmdir(struct dsfs_fs *fs, const char *path, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	ret = resolve(fs, path, &loc);
	if (ret)
		return done("rmdir", path, ret);
	if (loc.type != DSFS_LOC_RESOURCE || !loc.node) {
		ret = refuse("rmdir", path, -EPERM, "only an object's directory can be removed");
	} else {
		char *id = dsfs_cache_resource_id(fs->cache, &loc);

		if (!id) {
			ret = refuse("rmdir", path, -EPERM, "the mount's root is not an object"); /* the root */
		} else if (!fs->o.allow_delete) {
			ret = refuse("rmdir", path, -EPERM, "deleting needs the mount option allow_delete");
		} else if ((ret = dsfs_waiters_enter(fs->o.waiters, dsfs_caller_uid())) == 0) {
			/* the waiting place is taken first: a refusal must come before the DELETE */
			struct dsfs_post_result res;
			char *url = NULL;

			ret = dsfs_cache_delete(fs->cache, &loc, &res);
			if (ret == -EPERM) /* refused before a request */
				refuse("rmdir", path, ret, "the API deletes none of these: dsfs deletes only what "
				       "docs/control.md lists");
			if (ret == 0 && res.task_id) {
				/* deleted by a task: rmdir returns when it is gone, like rmdir(2) */
				dsfs_tasks_set_latest(fs->tasks, res.task_id);
				url = dsfs_cache_task_url(fs->cache, res.task_id);
				ret = url ? wait_start(fs, url, NULL, path, id, fn, arg, w) : -ENOMEM;
			} else if (ret == 0 && res.request) {
				log_dry_run("rmdir", path, &res); /* the directory stays: nothing was deleted */
			} else if (ret == 0) {
				dsfs_log(DSFS_LOG_INFO, "rmdir %s: deleted %s", path, id);
			}
			if (ret != DSFS_FS_WAITING)
				dsfs_waiters_leave(fs->o.waiters, dsfs_caller_uid());
			free(url);
			dsfs_post_result_clear(&res);
		}
		free(id);
	}
	dsfs_cache_put(fs->cache, &loc);
	return ret == DSFS_FS_WAITING ? ret : done("rmdir", path, ret);
}

int dsfs_fs_unlink(struct dsfs_fs *fs, const char *path)
{
	/* only an editor's file goes: everything else is the server's */
	if (fs->o.allow_edit && dsfs_scratch_unlink(fs->scratch, path) == 0)
		return 0;
	return refuse("unlink", path, -EPERM, "the server's files cannot be removed (an object goes with rmdir of "
		      "its directory, with the mount option allow_delete)");
}

/* The object file an editor's file at path would edit, i.e. of path's directory (references held). */
static int edit_target_of(struct dsfs_fs *fs, const char *path, struct dsfs_loc *obj)
{
	struct dsfs_loc dir;
	const char *name;
	char *parent = split_parent(path, &name);
	int ret;

	memset(obj, 0, sizeof(*obj));
	if (!parent)
		return -ENOMEM;
	/* one name for each editor's file: beside the object in its collection, not under a .where view of it */
	ret = fs->o.allow_edit && !strstr(parent, "/.where/") ? resolve(fs, parent, &dir) : -EPERM;
	free(parent);
	if (ret == 0) {
		ret = dsfs_cache_edit_target(fs->cache, &dir, obj);
		dsfs_cache_put(fs->cache, &dir);
	}
	return ret == -ENOENT ? -ENOENT : ret ? -EPERM : 0;
}

int dsfs_fs_create(struct dsfs_fs *fs, const char *path, int flags, struct dsfs_handle **out)
{
	struct dsfs_loc obj, there;
	struct dsfs_blob *base = NULL;
	struct dsfs_handle *h = NULL;
	char *object = NULL;
	int ret;

	dsfs_err_clear();
	*out = NULL;
	(void)flags;
	ret = edit_target_of(fs, path, &obj);
	if (ret == -EPERM)
		refuse("create", path, ret, "a new file can only be an editor's, beside an editable object, with the "
		       "mount option allow_edit");
	if (ret == 0 && resolve(fs, path, &there) == 0) {
		dsfs_cache_put(fs->cache, &there);
		ret = -EEXIST; /* the server's entries are never replaced by a new file */
	}
	/* the object as it was shown: what the editor read, and what its edit is compared with */
	if (ret == 0 && (ret = dsfs_cache_shown(fs->cache, &obj, &base)) == -ESTALE)
		ret = -ENOENT; /* the directory's name is another object's now */
	if (ret == 0 && !(object = dsfs_cache_resource_url(fs->cache, &obj)))
		ret = -ENOMEM;
	dsfs_cache_put(fs->cache, &obj);
	if (ret == 0 && (!(h = handle_new(H_EDIT)) || !(h->path = strdup(path))))
		ret = -ENOMEM;
	if (ret == 0)
		ret = dsfs_scratch_create(fs->scratch, path, base, object, &h->file);
	dsfs_blob_unref(base);
	free(object);
	if (ret) {
		dsfs_fs_release(fs, h);
		return done("create", path, ret);
	}
	*out = h;
	return 0;
}

/* Whether editor's file f was made beside the object of object file loc. */
static bool made_for(struct dsfs_fs *fs, struct dsfs_scratch_file *f, const struct dsfs_loc *loc)
{
	char *url = dsfs_cache_resource_url(fs->cache, loc);
	bool same = url && dsfs_scratch_object(f) && !strcmp(url, dsfs_scratch_object(f));

	free(url);
	return same;
}

static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	return sa - a == sb - b && !strncmp(a, b, (size_t)(sa - a));
}

int dsfs_fs_rename(struct dsfs_fs *fs, const char *from, const char *to, unsigned flags)
{
	struct dsfs_scratch_file *f = scratch_find(fs, from);
	struct dsfs_blob *base, *now;
	struct dsfs_loc obj, there;
	int ret;

	dsfs_err_clear();
	if (!f) /* only an editor's file moves: the server's entries are named by the server */
		return refuse("rename", from, -EPERM, "the server's entries are named by the server");
	if (flags & ~RENAME_NOREPLACE) {
		dsfs_scratch_put(f);
		return -EINVAL;
	}
	if (!same_dir(from, to)) {
		/* its edit is of the object beside it: mv elsewhere copies, and the copy is an edit of that object */
		dsfs_scratch_put(f);
		return refuse("rename", from, -EXDEV, "an editor's file is an edit of the object beside it: it stays "
			      "in its directory");
	}
	ret = edit_target_of(fs, to, &obj);
	if (ret == 0 && resolve(fs, to, &there) == 0) {
		/* onto the object file: the edit, sent now */
		if (flags & RENAME_NOREPLACE)
			ret = -EEXIST;
		else if (there.type != DSFS_LOC_FILE || !dsfs_cache_editable(&there))
			ret = refuse("rename", to, -EPERM, "only an object file takes an edit");
		else if (!made_for(fs, f, &there)) /* its edit is of the one it was made beside */
			ret = refuse("rename", to, -EXDEV, "the name is now another object's");
		if (ret == 0) {
			base = dsfs_scratch_base(f);
			now = dsfs_scratch_bytes(f);
			ret = edit_object(fs, to, &there, base, now);
			dsfs_blob_unref(base);
			dsfs_blob_unref(now);
		}
		if (ret == 0)
			dsfs_scratch_unlink(fs->scratch, from);
		dsfs_cache_put(fs->cache, &there);
	} else if (ret == 0) {
		/* to another editor's name */
		struct dsfs_scratch_file *g = dsfs_scratch_get(fs->scratch, to);

		ret = g && (flags & RENAME_NOREPLACE) ? -EEXIST : dsfs_scratch_rename(fs->scratch, from, to);
		dsfs_scratch_put(g);
	}
	dsfs_cache_put(fs->cache, &obj);
	dsfs_scratch_put(f);
	return ret;
}

int dsfs_fs_ftruncate(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size)
{
	int ret;

	(void)fs;
	if (h->type == H_CTL)
		return size == 0 ? 0 : -EACCES;
	if (h->type != H_EDIT)
		return -EACCES;
	ret = dsfs_scratch_truncate(h->file, size);
	pthread_mutex_lock(&h->lock);
	h->dirty |= ret == 0;
	if (ret && h->object)
		h->failed = ret;
	pthread_mutex_unlock(&h->lock);
	return ret;
}

int dsfs_fs_chmeta(struct dsfs_fs *fs, const char *path, bool changes)
{
	struct dsfs_scratch_file *f;
	struct dsfs_loc loc;
	int ret = -EPERM;

	if (!fs->o.allow_edit)
		return refuse("chmod/chown/touch", path, -EPERM, "the server's files keep the mount's mode, owner "
			      "and times");
	if ((f = scratch_find(fs, path))) {
		dsfs_scratch_put(f);
		return 0;
	}
	if (resolve(fs, path, &loc) == 0) {
		/* an object file's mode and owner are the mount's: a change that would be dropped is refused */
		ret = dsfs_cache_editable(&loc) && !changes ? 0 : -EPERM;
		if (ret && changes && dsfs_cache_editable(&loc))
			dsfs_log(DSFS_LOG_WARN, "chmod/chown %s: an object file's mode and owner are the mount's; "
				 "nothing changed", path);
		else if (ret)
			refuse("chmod/chown/touch", path, ret, "only an editable object file or an editor's file takes them");
		dsfs_cache_put(fs->cache, &loc);
	}
	return ret;
}
