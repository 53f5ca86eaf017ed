/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The declarative description of an API: which kinds of resource exist, the
 * URL segment and list key of each collection, the id, name and time fields
 * of its objects, the files each resource directory holds and the
 * collections below it. The cache walks these tables; adding an API is
 * adding a table (src/dialect_*.c). Everything here is constant data.
 */
#ifndef DSFS_RESOURCES_H
#define DSFS_RESOURCES_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "blob.h"

/* File flags. */
#define DSFS_FILE_DIRECT    0x1 /* content changes between reads: direct I/O, read through */
#define DSFS_FILE_ANONYMOUS 0x2 /* fetched without a session */
#define DSFS_FILE_BINARY    0x4 /* served as received, not rendered as JSON */

/* One file in a resource directory. */
struct dsfs_file_desc {
	const char *name;     /* entry name, e.g. "volume.json" */
	const char *subpath;  /* appended to the resource URL; NULL: the resource object itself */
	const char *list_key; /* when subpath is a list: its key; every page is merged into one file */
	const char *accept;   /* Accept header; NULL for JSON */
	unsigned flags;
	/* When set, the file is this text made from the resource object (subpath is NULL). */
	struct dsfs_blob *(*derive)(json_object *obj);
};

/* A body field that names another resource: an entry name there is replaced by its id. */
struct dsfs_ref {
	const char *field; /* dotted path in the body; a string or a list of strings */
	const char *scope; /* directory of candidates, relative to the control file's directory */
};

/* A command of a control file: a verb of `action`, or the creation of `new`. */
struct dsfs_action {
	const char *verb;            /* "clone"; NULL for a `new` file */
	const char *const *required; /* fields that must be present ("a|b": one of them), NULL-terminated */
	const struct dsfs_ref *refs; /* NULL-terminated (field NULL) */
	const char *bare_field;      /* `new`: the field a bare value sets ("name") */
	bool no_body;                /* the request carries no body */
	const char *subpath;         /* POST to the resource URL + subpath ("/clone"); NULL: ?action=VERB */
	const char *defaults;        /* JSON object merged under the user's fields ({"namePattern": ...}) */
};

/* A kind of resource and the collection directory that lists it. */
struct dsfs_kind {
	const char *name;        /* for logs: "volume" */
	const char *dir_name;    /* collection directory: "volumes" */
	const char *segment;     /* URL segment under the parent resource: "volume" */
	const char *list_key;    /* key of the array in a list answer: "volumes" */
	const char *id_field;    /* "id" */
	const char *name_field;  /* "name" */
	const char *time_field;  /* field giving mtime, or NULL */
	bool get_one;            /* GET <segment>/<id> exists (else refresh by listing) */
	const struct dsfs_file_desc *files; /* files[0] is the object itself when its subpath is NULL */
	size_t nfiles;
	const struct dsfs_kind *const *children; /* collections inside each resource */
	size_t nchildren;
	const struct dsfs_action *actions;  /* verbs of the resource's `action` file */
	size_t nactions;
	const struct dsfs_action *create;   /* the collection's `new` file (POST to the list URL), or NULL */
	bool deletable;                     /* rmdir sends DELETE (with -o allow_delete) */
	bool is_task;                       /* resources are API tasks (tasks/ semantics) */
	/* Other kinds listed into the same directory from their own segment (DSCC device types). */
	const struct dsfs_kind *const *also;
};

/* How lists are paged. */
struct dsfs_paging {
	const char *limit_param; /* "limit" */
	const char *start_param; /* "start" or "offset" */
	const char *total_field; /* the answer's item count ("total"), or NULL when the API gives none */
};

/* How a client proves who it is. */
enum dsfs_auth {
	DSFS_AUTH_SESSION, /* POST /session with HTTP Basic; a session id header on every call */
	DSFS_AUTH_BEARER,  /* OAuth2 client credentials or a pasted token: Authorization: Bearer */
};

/* An API dialect. */
struct dsfs_dialect {
	const char *name;             /* "storageplugin" */
	const struct dsfs_kind *root; /* the mount's root: files and top collections, URL "" */
	struct dsfs_paging paging;
	const char *tasks_dir;        /* the root collection of tasks ("tasks") */
	const char *task_state_field; /* "state" */
	const char *task_error_field; /* "error" */
	const char *task_poll_field;  /* "suggestedPollingIntervalSeconds" */
	enum dsfs_auth auth;
	const char *token_path;       /* BEARER: default token endpoint (relative to the base, or absolute) */
	const char *probe_path;       /* BEARER: a cheap GET that tells whether a pasted token is accepted */
};

/* The Data Services Cloud Console v1 dialect (specs/dscc-storage-api-v1.2.0.json). */
extern const struct dsfs_dialect dsfs_dialect_dscc;

/* The storage-plugin dialect of CONTRACT.md (seed 003). */
extern const struct dsfs_dialect dsfs_dialect_storageplugin;

/* The files of a task directory: task.json, state, progress and log (read through). */
#define DSFS_TASK_NFILES 4
extern const struct dsfs_file_desc dsfs_task_files[DSFS_TASK_NFILES];

/* Index of the file called name in kind, or -1. */
int dsfs_kind_file(const struct dsfs_kind *kind, const char *name);

/* Index of the child collection called name in kind, or -1. */
int dsfs_kind_child(const struct dsfs_kind *kind, const char *name);

#endif
