// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Actions: the control files' verbs and `new` (POST), rmdir (DELETE),
 * edits of object files (PUT, or the dialect's edit_method), the URLs
 * they go to, and marking the cache stale after a change so the next read
 * shows its effect. Each request is sent at most once; with -o dry_run,
 * none is, and each is described in its result instead.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/secret.h"
#include "format/edit.h"
#include "net/errmap.h"
#include "util/locks.h"

void dsfs_cache_ctl_actions(const struct dsfs_loc *loc, const struct dsfs_action **create,
			    const struct dsfs_action **actions, size_t *nactions)
{
	const struct dsfs_node *n = loc->node;

	*create = NULL;
	*actions = NULL;
	*nactions = 0;
	if (loc->type != DSFS_LOC_CTL)
		return;
	if (n->is_coll) {
		*create = n->kind->create;
	} else {
		*actions = n->kind->actions;
		*nactions = n->kind->nactions;
	}
}

char *dsfs_cache_resource_id(struct dsfs_cache *c, const struct dsfs_loc *loc)
{
	char *id = NULL;

	dsfs_lock(&c->lock);
	if (loc->type == DSFS_LOC_RESOURCE && loc->node->id)
		id = strdup(loc->node->id);
	dsfs_unlock(&c->lock);
	return id;
}

char *dsfs_cache_resource_url(struct dsfs_cache *c, const struct dsfs_loc *loc)
{
	(void)c;
	return loc->node ? strdup(loc->node->url) : NULL; /* url never changes */
}

void dsfs_cache_invalidate(struct dsfs_cache *c)
{
	dsfs_lock(&c->lock);
	c->stale_before = dsfs_clock_now();
	dsfs_unlock(&c->lock);
}

void dsfs_post_result_clear(struct dsfs_post_result *res)
{
	free(res->body);
	free(res->error);
	free(res->task_id);
	json_object_put(res->request);
	memset(res, 0, sizeof(*res));
}

/* The URL of an action's target template: "{id}" is the acted-on resource's id (for `new`, the owner's). */
char *cache_target_url(const struct dsfs_loc *loc, const char *tmpl)
{
	const struct dsfs_node *n = loc->node;

	return cache_collection_url("", n->is_coll ? n->base_id : n->id, tmpl);
}

/*
 * -o dry_run: what req would have been (method, URL, body), into
 * res->request, for the control file's result and the log; nothing is sent
 * and nothing is marked stale, for nothing changed. No header goes in: the
 * session's are secrets, and a value the body names a secret is hidden.
 */
static int describe(struct dsfs_cache *c, const struct dsfs_request *req, struct dsfs_post_result *res)
{
	bool absolute = !strncmp(req->path, "http://", 7) || !strncmp(req->path, "https://", 8);
	json_object *o = json_object_new_object(), *body = NULL;
	char *url = NULL;

	if (!o || asprintf(&url, "%s%s", absolute ? "" : dsfs_session_base(c->session), req->path) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	if (req->body) {
		body = json_tokener_parse(req->body);
		if (!body)
			body = json_object_new_string_len(req->body, (int)req->body_len);
		dsfs_secrets_hide(body);
	}
	json_object_object_add(o, "method", json_object_new_string(req->method));
	json_object_object_add(o, "url", json_object_new_string(url));
	json_object_object_add(o, "body", body);
	free(url);
	res->request = o;
	return 0;
}

/*
 * Sends a change (once) and fills res from its answer: status, body, the
 * server's message of a refusal, the task it started. Any answer marks the
 * cache stale: even a refusal can follow a change made elsewhere.
 */
static int send_change(struct dsfs_cache *c, const struct dsfs_request *req, const struct dsfs_action *action,
		       struct dsfs_post_result *res)
{
	struct dsfs_response resp = { 0 };
	int ret;

	if (c->o.dry_run)
		return describe(c, req, res);
	ret = dsfs_session_call(c->session, req, &resp, false);
	res->status = resp.status;
	if (resp.body)
		res->body = strdup(resp.body);
	if (resp.status >= 300) {
		char msg[512];

		dsfs_session_error_message(c->dialect->error_fields, &resp, msg, sizeof(msg));
		res->error = strdup(msg);
	}
	if (ret == 0)
		res->task_id = c->dialect->task_of ? c->dialect->task_of(c->session, action, req->path, &resp)
						   : dsfs_dialect_task_uri(&resp);
	if (ret == 0 || resp.status)
		dsfs_cache_invalidate(c);
	dsfs_response_clear(&resp);
	return ret;
}

int dsfs_cache_post(struct dsfs_cache *c, const struct dsfs_loc *loc, const struct dsfs_action *action,
		    json_object *body, struct dsfs_post_result *res)
{
	struct dsfs_request req = { .method = action->method ? action->method : "POST",
				    .content_type = action->content_type };
	const char *url = loc->node->url;
	char *path;
	int ret;

	memset(res, 0, sizeof(*res));
	if (loc->type != DSFS_LOC_CTL)
		return -EINVAL;
	path = malloc(strlen(url) + (action->verb ? strlen(action->verb) : 0) +
		      (action->subpath ? strlen(action->subpath) : 0) + 16);
	if (!path)
		return -ENOMEM;
	if (action->target) {
		free(path);
		path = cache_target_url(loc, action->target);
		if (!path)
			return -ENOMEM;
	} else if (action->subpath)
		sprintf(path, "%s%s", url, action->subpath);
	else if (action->verb)
		sprintf(path, "%s?action=%s", url, action->verb);
	else
		strcpy(path, url);
	req.path = path;
	if (!action->no_body) {
		req.body =
			json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		req.body_len = strlen(req.body);
	}
	ret = send_change(c, &req, action, res);
	free(path);
	return ret;
}

bool dsfs_cache_editable(const struct dsfs_loc *loc)
{
	return loc->type == DSFS_LOC_FILE && loc->file == 0 && loc->node->kind->nedit &&
		!loc->node->kind->files[0].subpath && !loc->node->kind->files[0].derive;
}

int dsfs_cache_edit_target(struct dsfs_cache *c, const struct dsfs_loc *dir, struct dsfs_loc *out)
{
	memset(out, 0, sizeof(*out));
	if (dir->type != DSFS_LOC_RESOURCE || !dir->node->kind->nedit)
		return -EPERM;
	dsfs_lock(&c->lock);
	out->type = DSFS_LOC_FILE;
	out->node = cache_node_ref(dir->node);
	out->file = 0;
	dsfs_unlock(&c->lock);
	return dsfs_cache_editable(out) ? 0 : (dsfs_cache_put(c, out), -EPERM);
}

int dsfs_cache_edit(struct dsfs_cache *c, const struct dsfs_loc *loc, const struct dsfs_blob *base, const char *text,
		    size_t len, int (*before_put)(void *ctx), void *ctx, struct dsfs_post_result *res)
{
	const char *url = loc->node->url;
	struct dsfs_request get = { .method = "GET", .path = url };
	struct dsfs_request put = { .method = c->dialect->edit_method ? c->dialect->edit_method : "PUT",
				    .path = url,
				    .content_type = c->dialect->edit_type };
	struct dsfs_response resp = { 0 };
	json_object *was = NULL, *now = NULL, *body = NULL;
	char why[600];
	int ret;

	memset(res, 0, sizeof(*res));
	if (!dsfs_cache_editable(loc))
		return -EPERM;
	if (!base || !(was = json_tokener_parse(base->data)))
		return -EIO;
	/* the object as the server has it now: an edit never lands on someone else's */
	ret = dsfs_session_call(c->session, &get, &resp, false);
	if (ret == 0 && !(now = json_tokener_parse(resp.body ? resp.body : ""))) {
		dsfs_err_record("GET", url, resp.status, "the answer is not JSON");
		ret = -EIO;
	}
	dsfs_response_clear(&resp);
	if (ret == 0) {
		ret = dsfs_edit_body(&(struct dsfs_edits){ loc->node->kind->edit, loc->node->kind->nedit }, was, text,
				     len, now, &body, why, sizeof(why));
		if (ret == -EINVAL || ret == -EBUSY) {
			dsfs_err_record(put.method, url, 0, why);
			res->error = strdup(why);
		}
	}
	if (ret == 0 && body && before_put)
		ret = before_put(ctx);
	if (ret == 0 && body) {
		put.body =
			json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		put.body_len = strlen(put.body);
		ret = send_change(c, &put, NULL, res);
	}
	json_object_put(body);
	json_object_put(now);
	json_object_put(was);
	return ret;
}

int dsfs_cache_delete(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_post_result *res)
{
	struct dsfs_response resp = { 0 };
	struct dsfs_request req = { .method = "DELETE", .path = loc->node->url };
	char *target = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	if (loc->type != DSFS_LOC_RESOURCE || !loc->node->kind->deletable)
		return -EPERM;
	if (loc->node->kind->delete_target) {
		target = cache_target_url(loc, loc->node->kind->delete_target);
		if (!target)
			return -ENOMEM;
		req.path = target;
	}
	if (c->o.dry_run) {
		ret = describe(c, &req, res); /* and the resource stays in the tree: it is still there */
		free(target);
		return ret;
	}
	ret = dsfs_session_call(c->session, &req, &resp, false);
	res->status = resp.status;
	if (ret == 0)
		res->task_id = c->dialect->task_of ? c->dialect->task_of(c->session, NULL, req.path, &resp)
						   : dsfs_dialect_task_uri(&resp);
	dsfs_response_clear(&resp);
	dsfs_lock(&c->lock);
	if (ret == 0 || ret == -ENOENT)
		cache_forget_resource(c, loc->node);
	if (ret == 0)
		c->stale_before = dsfs_clock_now();
	dsfs_unlock(&c->lock);
	free(target);
	return ret;
}

int dsfs_cache_task_ended(struct dsfs_cache *c, const char *id, bool *ended)
{
	const struct dsfs_task_words *w = &c->dialect->task;
	struct dsfs_response resp = { 0 };
	char *url = dsfs_cache_task_url(c, id);
	json_object *o = NULL, *s;
	int ret;

	*ended = true;
	if (!url)
		return c->dialect->tasks_dir ? -ENOMEM : 0;
	if (c->dialect->task_get) {
		ret = c->dialect->task_get(c->session, url, NULL, &o);
	} else {
		ret = dsfs_session_call(c->session, &(struct dsfs_request){ .method = "GET", .path = url }, &resp,
					false);
		if (ret == 0)
			o = json_tokener_parse(resp.body ? resp.body : "");
	}
	if (ret == 0 && o && json_object_is_type(s = dsfs_dialect_field(o, w->state_field), json_type_string))
		*ended = dsfs_task_outcome(w, json_object_get_string(s)) != DSFS_TASK_RUNNING;
	if (ret == -ENOENT)
		ret = 0; /* a task the server no longer has has ended */
	json_object_put(o);
	dsfs_response_clear(&resp);
	free(url);
	return ret;
}

char *dsfs_cache_task_url(struct dsfs_cache *c, const char *id)
{
	const struct dsfs_kind *root = c->dialect->root;
	char *coll, *url = NULL;

	for (size_t i = 0; i < root->nchildren; i++) {
		if (!root->children[i]->is_task)
			continue;
		coll = cache_collection_url("", NULL, root->children[i]->segment);
		url = coll ? cache_join_url(coll, "", id) : NULL;
		free(coll);
		break;
	}
	return url;
}
