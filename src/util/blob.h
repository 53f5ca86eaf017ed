/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An immutable, reference-counted byte string: the rendered content of one
 * file. The cache holds one reference and each open handle another, so a
 * reader keeps the bytes it opened even if the cache replaces them.
 */
#ifndef DSFS_BLOB_H
#define DSFS_BLOB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dsfs_blob {
	int refs;         /* atomic */
	uint64_t version; /* the order in which the cache took it in (larger: newer); 0 for other content */
	size_t len;
	char data[]; /* len bytes, then a NUL for convenience */
};

/* A new blob holding a copy of len bytes, with one reference; NULL on ENOMEM. */
static inline struct dsfs_blob *dsfs_blob_new(const void *data, size_t len)
{
	struct dsfs_blob *b = malloc(sizeof(*b) + len + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->version = 0;
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	b->data[len] = '\0';
	return b;
}

/*
 * A 64-bit sum of len bytes at p, to tell one content from another cheaply
 * (a file's mtime moves when its content's sum does). Not a digest: a
 * server could make two contents sum alike, and then an mtime would not
 * move; nothing else depends on it.
 */
static inline uint64_t dsfs_blob_sum(const void *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* Takes a reference; thread-safe. Returns b. */
static inline struct dsfs_blob *dsfs_blob_ref(struct dsfs_blob *b)
{
	if (b)
		__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

/* Drops a reference, freeing on the last; dsfs_blob_unref(NULL) does nothing. Thread-safe. */
static inline void dsfs_blob_unref(struct dsfs_blob *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(b);
}

/*
 * A reader past the end of *held (tail -f): newer (a reference, taken;
 * NULL is fine) replaces it only when it is *held with bytes appended, so
 * a document that changed is never spliced onto the old one.
 */
static inline void dsfs_blob_take_grown(struct dsfs_blob **held, struct dsfs_blob *newer)
{
	if (newer && newer->len > (*held)->len && !memcmp(newer->data, (*held)->data, (*held)->len)) {
		dsfs_blob_unref(*held);
		*held = newer;
	} else {
		dsfs_blob_unref(newer);
	}
}

#endif
