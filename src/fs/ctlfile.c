// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control files: each takes one command per line (or one JSON object over
 * several lines) and sends it inside write(); a line is ended by its
 * newline or by the close of the process that wrote it, never by another
 * process closing an inherited copy. What the last command did is kept per
 * control file, as the JSON a read of the file returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "util/locks.h"
#include "util/log.h"
#include "format/secret.h"
#include "fs/tasks.h"

#define MAX_RESULTS 1024

struct fs_result {
	char *path;
	struct dsfs_blob *blob;
	struct fs_result *next;
};

void fs_results_free(struct dsfs_fs *fs)
{
	struct fs_result *r, *next;

	for (r = fs->results; r; r = next) {
		next = r->next;
		free(r->path);
		dsfs_blob_unref(r->blob);
		free(r);
	}
}

struct dsfs_blob *fs_result_get(struct dsfs_fs *fs, const char *path)
{
	struct dsfs_blob *b = NULL;
	struct fs_result *r;

	dsfs_lock(&fs->lock);
	for (r = fs->results; r; r = r->next)
		if (!strcmp(r->path, path)) {
			b = dsfs_blob_ref(r->blob);
			break;
		}
	dsfs_unlock(&fs->lock);
	return b;
}

static void result_set(struct dsfs_fs *fs, const char *path, struct dsfs_blob *blob)
{
	struct fs_result *r, **pp;

	if (!blob)
		return;
	dsfs_lock(&fs->lock);
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
		dsfs_unlock(&fs->lock);
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
	dsfs_unlock(&fs->lock);
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

void fs_record(struct dsfs_fs *fs, const char *path, const char *command, size_t len,
	       const struct dsfs_post_result *res, const char *error, const char *note)
{
	json_object *o = json_object_new_object(), *resp = NULL;
	char *shown = dsfs_ctl_shown(command, len); /* secrets hidden: others may read the result */
	const char *text;

	if (!o || !shown) {
		json_object_put(o);
		free(shown);
		return;
	}
	json_object_object_add(o, "command", text_of(shown, strlen(shown)));
	free(shown);
	if (res && res->status)
		json_object_object_add(o, "status", json_object_new_int64(res->status));
	if (res && res->body && *res->body) {
		resp = json_tokener_parse(res->body);
		if (!resp)
			resp = json_object_new_string(res->body);
		dsfs_secrets_hide(resp); /* an answer may echo what the command sent */
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
	text = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
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
	ret = fs_resolve(fs, path, &loc);
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
		snprintf(err, sizeof(err),
			 "'%s' destroys or overwrites data: it needs the mount option "
			 "allow_delete (-o allow_delete)",
			 a->verb ? a->verb : "new");
		ret = -EPERM;
	}
	if (ret) {
		dsfs_log(DSFS_LOG_WARN, "write %s: %s; nothing sent", h->path, err);
		fs_record(fs, h->path, line, len, NULL, err, note);
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
		fs_done("write", h->path, ret);
		fs_log_dry_run("write", h->path, &res);
	}
	fs_record(fs, h->path, line, len, &res, ret && !res.status ? strerror(-ret) : NULL, ret ? note : NULL);
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
	fs_record(fs, h->path, head, k, NULL, why, NULL);
	return -EFBIG;
}

/* The result's note on a command that ran at close(): a shell may never have said that it failed. */
#define AT_CLOSE "no newline: ran at close(), whose error most shells do not report; end each command with a newline"

/* At close, a JSON object whose braces never balanced: refused whole, nothing sent. Returns -EINVAL. */
static int refuse_unclosed(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	static const char why[] = "the JSON object is not closed: more '{' than '}' (outside strings); nothing sent";

	dsfs_log(DSFS_LOG_WARN, "close %s: %s", h->path, why);
	fs_record(fs, h->path, h->buf, h->len, NULL, why, AT_CLOSE);
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

static int ctl_write(struct dsfs_fs *fs, struct dsfs_handle *h, const char *buf, size_t size, off_t off, pid_t pid)
{
	const char *p = buf, *end = buf + size;
	bool ended = false;
	size_t k;
	int ret = 0;

	dsfs_lock(&h->lock);
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
	dsfs_unlock(&h->lock);
	return ret ? ret : (int)size;
}


size_t fs_ctl_size(struct dsfs_fs *fs, const char *dir, const char *name)
{
	struct dsfs_blob *b;
	size_t size;
	char *path;

	dsfs_lock(&fs->lock);
	size = fs->nresults;
	dsfs_unlock(&fs->lock);
	if (!size || asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0)
		return 0;
	b = fs_result_get(fs, path);
	size = b ? b->len : 0;
	dsfs_blob_unref(b);
	free(path);
	return size;
}

/* Whether control file loc is an action file, whose commands start with a verb, rather than a `new`. */
static bool takes_verbs(const struct dsfs_loc *loc)
{
	const struct dsfs_action *create, *actions;
	size_t n;

	dsfs_cache_ctl_actions(loc, &create, &actions, &n);
	return !create;
}

static int ctl_flush(struct dsfs_fs *fs, struct dsfs_handle *h, pid_t pid, bool keeps_open)
{
	int ret = 0;

	dsfs_lock(&h->lock);
	if (keeps_open || !fs_last_close(h, pid))
		goto out;
	h->refused = 0;
	if (h->len && !blank(h->buf, h->len)) {
		ret = dsfs_ctl_scan_open(&h->scan) ? refuse_unclosed(fs, h)
						   : run_command(fs, h, h->buf, h->len, AT_CLOSE);
		if (ret)
			dsfs_log(DSFS_LOG_WARN,
				 "close %s: the command had no newline, so it ran at close(), whose error (%s) "
				 "most shells do not report; a read of the file returns its result",
				 h->path, strerror(-ret));
	}
	h->len = 0;
	dsfs_ctl_scan_init(&h->scan, h->scan.verb); /* what follows starts a command */
out:
	dsfs_unlock(&h->lock);
	return ret;
}

static void ctl_release(struct dsfs_fs *fs, struct dsfs_handle *h)
{
	static const char why[] = "unfinished command discarded: no newline, and the process that wrote it "
				  "did not close the file; nothing sent";

	char *shown;

	if (!h->len || blank(h->buf, h->len))
		return;
	shown = dsfs_ctl_shown(h->buf, h->len);
	dsfs_log(DSFS_LOG_WARN, "close %s: %s ('%.80s')", h->path, why, shown ? shown : "");
	free(shown);
	fs_record(fs, h->path, h->buf, h->len, NULL, why, NULL);
}

static int ctl_open(struct dsfs_fs *fs, struct dsfs_handle *h, const char *path, int flags, pid_t pid,
		    enum dsfs_caching *caching)
{
	if (!(h->path = strdup(path)))
		return -ENOMEM;
	h->content = fs_result_get(fs, path);
	h->opener = pid;
	dsfs_ctl_scan_init(&h->scan, takes_verbs(&h->loc));
	return 0;
}

/* `> file` truncates before writing: accepted; a file of commands has no other size. */
static int ctl_ftruncate(struct dsfs_fs *fs, struct dsfs_handle *h, off_t size)
{
	return size == 0 ? 0 : -EACCES;
}

const struct fs_handle_ops fs_ctl_ops = {
	.name = "control file",
	.open = ctl_open,
	.read = fs_read_content,
	.write = ctl_write,
	.flush = ctl_flush,
	.ftruncate = ctl_ftruncate,
	.release = ctl_release,
};
