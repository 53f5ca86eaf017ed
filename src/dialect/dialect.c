// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What every dialect shares: lookups by name in a kind, the default rule
 * for finding an action's task, the files of a task directory (task.json,
 * and state, progress, log and error made from it in the dialect's own task
 * words), and the one vocabulary of how tasks end; and what the OAuth2
 * APIs share: the client-credentials grant, the bearer header, and which
 * values an OData-like filter cannot quote. The dialects use these, so
 * nothing here may use the registry of them (registry.c, which holds the
 * lookups by name and URL): the dialects would then call themselves.
 */
#include "dialect/dialect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/session.h"
#include "util/grow.h"

/* Walks the dotted path down o: true, with *out the value there (a JSON null is NULL), when o has it. */
static bool walk(json_object *o, const char *path, json_object **out)
{
	char part[128];

	while (o && path && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part) || !json_object_is_type(o, json_type_object))
			return false;
		memcpy(part, path, n);
		part[n] = '\0';
		if (!json_object_object_get_ex(o, part, &o))
			return false;
		path += n + (path[n] == '.');
	}
	*out = o;
	return o || !path || !*path;
}

/* tasks/<id>/state, progress and log: one line each of the task object, read through. */
json_object *dsfs_dialect_field(json_object *o, const char *path)
{
	json_object *v = NULL;

	return walk(o, path, &v) && !json_object_is_type(v, json_type_null) ? v : NULL;
}

bool dsfs_dialect_has_field(json_object *o, const char *path)
{
	json_object *v;

	return o && walk(o, path, &v);
}

static struct dsfs_blob *line_of(json_object *o, const char *field)
{
	json_object *v;
	char buf[64];
	const char *s = "";

	if ((v = dsfs_dialect_field(o, field))) {
		if (json_object_is_type(v, json_type_string)) {
			s = json_object_get_string(v);
		} else {
			snprintf(buf, sizeof(buf), "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
			s = buf;
		}
	}
	{
		size_t n = strlen(s);
		struct dsfs_blob *b = dsfs_blob_new(s, n + 1);

		if (b)
			b->data[n] = '\n';
		return b;
	}
}

struct dsfs_blob *dsfs_task_state(json_object *o, const struct dsfs_dialect *d)
{
	return line_of(o, d->task.state_field);
}

struct dsfs_blob *dsfs_task_progress(json_object *o, const struct dsfs_dialect *d)
{
	return line_of(o, d->task.progress_field);
}

/* One "<time> <message>" line per log entry; without a log list, the task's error (if any). */
struct dsfs_blob *dsfs_task_log(json_object *o, const struct dsfs_dialect *d)
{
	const struct dsfs_task_words *w = &d->task;
	json_object *msgs = NULL, *m, *v;
	size_t i, n, len = 0, cap = 256;
	char *buf = malloc(cap);
	struct dsfs_blob *b;

	if (!buf)
		return NULL;
	if (!w->log_field) {
		free(buf);
		if ((v = dsfs_dialect_field(o, w->error_field)) && json_object_is_type(v, json_type_string) &&
		    *json_object_get_string(v))
			return line_of(o, w->error_field);
		return dsfs_blob_new("", 0);
	}
	if (!json_object_object_get_ex(o, w->log_field, &msgs) || !json_object_is_type(msgs, json_type_array))
		msgs = NULL;
	n = msgs ? json_object_array_length(msgs) : 0;
	for (i = 0; i < n; i++) {
		const char *ts = "", *msg = "";
		size_t need;

		m = json_object_array_get_idx(msgs, i);
		if (json_object_object_get_ex(m, w->log_time_field, &v) && json_object_is_type(v, json_type_string))
			ts = json_object_get_string(v);
		if (json_object_object_get_ex(m, w->log_message_field, &v) && json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
		need = strlen(ts) + strlen(msg) + 3;
		if (len + need > cap) {
			char *p = dsfs_grow(buf, &cap, len + need, 1, 0, 0);

			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
		}
		len += (size_t)sprintf(buf + len, "%s %s\n", ts, msg);
		/* one entry is one line: a newline inside a message would split it */
		for (char *q = buf + len - 1 - strlen(msg); q < buf + len - 1; q++)
			if (*q == '\n' || *q == '\r')
				*q = ' ';
	}
	b = dsfs_blob_new(buf, len);
	free(buf);
	return b;
}

enum dsfs_task_end dsfs_task_outcome(const struct dsfs_task_words *w, const char *state)
{
	if (dsfs_dialect_state_in(state, w->succeeded))
		return DSFS_TASK_SUCCEEDED;
	if (dsfs_dialect_state_in(state, w->failed))
		return DSFS_TASK_FAILED;
	if (dsfs_dialect_state_in(state, w->cancelled))
		return DSFS_TASK_CANCELLED;
	if (dsfs_dialect_state_in(state, w->timedout))
		return DSFS_TASK_TIMEDOUT;
	return DSFS_TASK_RUNNING;
}

const char *dsfs_task_end_word(enum dsfs_task_end end)
{
	static const char *const words[] = {
		[DSFS_TASK_RUNNING] = "RUNNING",     [DSFS_TASK_SUCCEEDED] = "SUCCEEDED", [DSFS_TASK_FAILED] = "FAILED",
		[DSFS_TASK_CANCELLED] = "CANCELLED", [DSFS_TASK_TIMEDOUT] = "TIMEDOUT",
	};

	return words[end];
}

const char *dsfs_task_reason(json_object *o, const struct dsfs_task_words *w, char *buf, size_t len)
{
	json_object *why = dsfs_dialect_field(o, w->error_field), *v;
	const char *st;

	/* an error object (DSCC's {"error": ..., "errorCode": ...}): its message */
	if (why && json_object_is_type(why, json_type_object) &&
	    ((json_object_object_get_ex(why, "error", &v) && json_object_is_type(v, json_type_string)) ||
	     (json_object_object_get_ex(why, "message", &v) && json_object_is_type(v, json_type_string))))
		why = v;
	if (why && json_object_is_type(why, json_type_string) && *json_object_get_string(why))
		snprintf(buf, len, "%s", json_object_get_string(why));
	else if (why && !json_object_is_type(why, json_type_string))
		snprintf(buf, len, "%s", json_object_to_json_string_ext(why, JSON_C_TO_STRING_PLAIN));
	else if ((v = dsfs_dialect_field(o, w->state_field)) && (st = json_object_get_string(v)) &&
		 dsfs_task_outcome(w, st) > DSFS_TASK_SUCCEEDED)
		snprintf(buf, len, "ended %s; the server gave no reason", st);
	else
		return NULL;
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' '; /* one line, whatever the server wrote */
	return buf;
}

struct dsfs_blob *dsfs_task_error(json_object *o, const struct dsfs_dialect *d)
{
	const struct dsfs_task_words *w = &d->task;
	json_object *st = dsfs_dialect_field(o, w->state_field);
	const char *state = st && json_object_is_type(st, json_type_string) ? json_object_get_string(st) : NULL;
	enum dsfs_task_end end = dsfs_task_outcome(w, state);
	struct dsfs_blob *b;
	char why[1024];
	size_t n;

	if (end == DSFS_TASK_RUNNING || end == DSFS_TASK_SUCCEEDED || !dsfs_task_reason(o, w, why, sizeof(why)))
		return dsfs_blob_new("", 0);
	n = strlen(why);
	b = dsfs_blob_new(why, n + 1);
	if (b)
		b->data[n] = '\n';
	return b;
}

const struct dsfs_file_desc dsfs_task_files[DSFS_TASK_NFILES] = {
	{ .name = "task.json", .flags = DSFS_FILE_DIRECT },
	{ .name = "state", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_state },
	{ .name = "progress", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_progress },
	{ .name = "log", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_log },
	{ .name = "error", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_error },
};

int dsfs_kind_file(const struct dsfs_kind *kind, const char *name)
{
	size_t i;

	for (i = 0; i < kind->nfiles; i++)
		if (!strcmp(kind->files[i].name, name))
			return (int)i;
	return -1;
}

int dsfs_kind_child(const struct dsfs_kind *kind, const char *name)
{
	size_t i;

	for (i = 0; i < kind->nchildren; i++)
		if (!strcmp(kind->children[i]->dir_name, name))
			return (int)i;
	return -1;
}

char *dsfs_dialect_task_uri(const struct dsfs_response *resp)
{
	const char *uri = NULL, *slash;
	json_object *o, *v;
	char *id = NULL;

	if (resp->status != 202)
		return NULL;
	o = resp->body ? json_tokener_parse(resp->body) : NULL;
	if (o && json_object_object_get_ex(o, "taskUri", &v) && json_object_is_type(v, json_type_string))
		uri = json_object_get_string(v);
	else if (resp->location)
		uri = resp->location;
	if (uri) {
		slash = strrchr(uri, '/');
		id = strdup(slash ? slash + 1 : uri);
		if (id && strchr(id, '?'))
			*strchr(id, '?') = '\0';
	}
	json_object_put(o);
	return id;
}

bool dsfs_dialect_state_in(const char *state, const char *const *words)
{
	for (size_t i = 0; state && words && words[i]; i++)
		if (!strcmp(state, words[i]))
			return true;
	return false;
}

int dsfs_dialect_client_grant(struct dsfs_session *s, const struct dsfs_credentials *c, const char *url,
			      struct dsfs_login *out)
{
	char form[2048] = "";

	dsfs_session_form_add(form, sizeof(form), "grant_type", "client_credentials");
	dsfs_session_form_add(form, sizeof(form), "client_id", dsfs_credentials_get(c, "client_id"));
	dsfs_session_form_add(form, sizeof(form), "client_secret", dsfs_credentials_get(c, "client_secret"));
	return dsfs_session_token_grant(s, url, form, &out->id, &out->expires_in);
}

size_t dsfs_dialect_bearer_headers(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs)
{
	snprintf(buf, len, "Authorization: Bearer %s", l->id);
	hdrs[0] = buf;
	return 1;
}

bool dsfs_dialect_odata_literals(char *expr, size_t size, size_t *o, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (*o + 2 * strlen(values[i]) + 5 > size) /* a comma, two quotes, a parenthesis, the NUL */
			return false;
		if (i)
			expr[(*o)++] = ',';
		expr[(*o)++] = '\'';
		for (const char *p = values[i]; *p; p++) {
			if (*p == '\'')
				expr[(*o)++] = '\''; /* a quote inside a literal is doubled */
			expr[(*o)++] = *p;
		}
		expr[(*o)++] = '\'';
	}
	expr[*o] = '\0';
	return true;
}

bool dsfs_dialect_host_ends(const char *url, const char *suffix)
{
	const char *p = strstr(url, "://"), *end;
	size_t n = strlen(suffix);

	if (!p)
		return false;
	p += 3;
	end = p + strcspn(p, ":/?#");
	return (size_t)(end - p) >= n && !strncmp(end - n, suffix, n);
}

bool dsfs_dialect_typed_literal(const char *v)
{
	char *end;

	if (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "null"))
		return true;
	strtod(v, &end);
	return *v && !*end;
}
