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

#include <stdbool.h>
#include <stddef.h>

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
};

/* How lists are paged. */
struct dsfs_paging {
	const char *limit_param; /* "limit" */
	const char *start_param; /* "start" */
};

/* An API dialect. */
struct dsfs_dialect {
	const char *name;             /* "storageplugin" */
	const struct dsfs_kind *root; /* the mount's root: files and top collections, URL "" */
	struct dsfs_paging paging;
};

/* The storage-plugin dialect of CONTRACT.md (seed 003). */
extern const struct dsfs_dialect dsfs_dialect_storageplugin;

/* Index of the file called name in kind, or -1. */
int dsfs_kind_file(const struct dsfs_kind *kind, const char *name);

/* Index of the child collection called name in kind, or -1. */
int dsfs_kind_child(const struct dsfs_kind *kind, const char *name);

#endif
