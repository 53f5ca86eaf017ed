/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Files an editor writes beside an object file (-o allow_edit): sed -i's
 * and an atomic save's temporary file, vim's swap and backup files. They
 * live in memory only, under the path they were created at, until they
 * are unlinked, renamed over the object file (which sends the edit) or
 * the mount ends; each remembers the object it was made beside (its API
 * URL) and that object as it was shown when it was created (the base its
 * edit is compared with). A file can also be
 * private: the buffer of an object file open for writing, in no table.
 * Bounded: DSFS_SCRATCH_FILES files, each at most DSFS_SCRATCH_MAX bytes.
 * Thread-safe; files are reference-counted.
 */
#ifndef DSFS_SCRATCH_H
#define DSFS_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "util/blob.h"

#define DSFS_SCRATCH_FILES 256
#define DSFS_SCRATCH_MAX (1u << 20)

struct dsfs_scratch;
struct dsfs_scratch_file;

struct dsfs_scratch *dsfs_scratch_new(void);
void dsfs_scratch_free(struct dsfs_scratch *st);

/*
 * A new empty file; at path in st's table (st NULL: private). base is the
 * object as shown (a reference is taken; NULL: none), object its API URL
 * (copied; NULL: none). -EEXIST, -ENOSPC past the bound, -ENOMEM.
 */
int dsfs_scratch_create(struct dsfs_scratch *st, const char *path, struct dsfs_blob *base, const char *object,
			struct dsfs_scratch_file **out);

/* The API URL of the object f was made beside (NULL: none); it never changes. */
const char *dsfs_scratch_object(const struct dsfs_scratch_file *f);

/* The file at path (a reference), or NULL. */
struct dsfs_scratch_file *dsfs_scratch_get(struct dsfs_scratch *st, const char *path);
void dsfs_scratch_put(struct dsfs_scratch_file *f);

/* Takes path out of the table: 0 or -ENOENT. Open handles keep their file. */
int dsfs_scratch_unlink(struct dsfs_scratch *st, const char *path);

/* Moves from to to (replacing a file there): 0 or -ENOENT. */
int dsfs_scratch_rename(struct dsfs_scratch *st, const char *from, const char *to);

/*
 * Calls fill with the name of every file directly in directory dir ("/a/b")
 * and the file (borrowed; fill must not call into st); a non-zero return stops.
 */
int dsfs_scratch_list(struct dsfs_scratch *st, const char *dir,
		      int (*fill)(void *ctx, const char *name, struct dsfs_scratch_file *f), void *ctx);

/* Reads, writes and sizes: write and truncate -EFBIG past DSFS_SCRATCH_MAX. */
int dsfs_scratch_read(struct dsfs_scratch_file *f, char *buf, size_t size, off_t off);
int dsfs_scratch_write(struct dsfs_scratch_file *f, const char *buf, size_t size, off_t off);
int dsfs_scratch_truncate(struct dsfs_scratch_file *f, off_t size);

/* Sets f's bytes to base's (an object opened for writing without O_TRUNC). */
int dsfs_scratch_fill(struct dsfs_scratch_file *f, const struct dsfs_blob *b);

/* Its size, modification time and stable inode number. */
void dsfs_scratch_stat(struct dsfs_scratch_file *f, size_t *size, time_t *mtime, uint64_t *ino);

/* Its bytes now (a new blob: the caller drops it) and its base (a reference, or NULL). */
struct dsfs_blob *dsfs_scratch_bytes(struct dsfs_scratch_file *f);
struct dsfs_blob *dsfs_scratch_base(struct dsfs_scratch_file *f);

#endif
