// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What every dialect's tables share: lookups by name in a kind, and the
 * files of a task directory (task.json, and state, progress and log made
 * from it), which are the same wherever tasks follow seeds 000 and 001.
 */
#include "resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tasks/<id>/state, progress and log: one line each of the task object, read through. */
static struct dsfs_blob *line_of(json_object *o, const char *field)
{
	json_object *v;
	char buf[64];
	const char *s = "";

	if (json_object_object_get_ex(o, field, &v) && !json_object_is_type(v, json_type_null)) {
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

static struct dsfs_blob *task_state(json_object *o)
{
	return line_of(o, "state");
}

static struct dsfs_blob *task_progress(json_object *o)
{
	return line_of(o, "progressPercent");
}

static struct dsfs_blob *task_log(json_object *o)
{
	json_object *msgs, *m, *v;
	size_t i, n, len = 0, cap = 256;
	char *buf = malloc(cap);
	struct dsfs_blob *b;

	if (!buf)
		return NULL;
	if (!json_object_object_get_ex(o, "logMessages", &msgs) || !json_object_is_type(msgs, json_type_array))
		msgs = NULL;
	n = msgs ? json_object_array_length(msgs) : 0;
	for (i = 0; i < n; i++) {
		const char *ts = "", *msg = "";
		size_t need;

		m = json_object_array_get_idx(msgs, i);
		if (json_object_object_get_ex(m, "timestampAt", &v) && json_object_is_type(v, json_type_string))
			ts = json_object_get_string(v);
		if (json_object_object_get_ex(m, "message", &v) && json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
		need = strlen(ts) + strlen(msg) + 3;
		if (len + need > cap) {
			char *p;

			while (len + need > cap)
				cap *= 2;
			p = realloc(buf, cap);
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

const struct dsfs_file_desc dsfs_task_files[DSFS_TASK_NFILES] = {
	{ .name = "task.json", .flags = DSFS_FILE_DIRECT },
	{ .name = "state", .flags = DSFS_FILE_DIRECT, .derive = task_state },
	{ .name = "progress", .flags = DSFS_FILE_DIRECT, .derive = task_progress },
	{ .name = "log", .flags = DSFS_FILE_DIRECT, .derive = task_log },
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
