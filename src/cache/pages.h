/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bounds a paged listing must stay within, whatever the server answers:
 * every page must bring something new, the items may not outnumber the
 * server's own total, and the listing may not outgrow the memory bound. A
 * server that ignores `start` or invents items therefore ends the listing
 * with an error instead of looping or growing. Not thread-safe: one guard
 * belongs to one listing in one thread.
 */
#ifndef DSFS_PAGES_H
#define DSFS_PAGES_H

#include <json-c/json.h>
#include <stddef.h>

struct dsfs_pages;

/*
 * A guard for one listing. max_bytes bounds the bytes it may cost (0: no
 * bound); id_field names what identifies an item ("id"), NULL to identify
 * items by their whole JSON text. NULL on ENOMEM. Free with dsfs_pages_free.
 */
struct dsfs_pages *dsfs_pages_new(size_t max_bytes, const char *id_field);

/* Frees the guard. NULL does nothing. */
void dsfs_pages_free(struct dsfs_pages *p);

/*
 * Checks the next page, items arr, which costs bytes; total is the item
 * count the server announced (-1: none). Returns 0, -ENOMEM, or -EIO with
 * the reason in why (NUL-terminated, at most whylen bytes) when the page
 * repeats only items already listed, the items outnumber total, or the
 * listing outgrows the bound.
 */
int dsfs_pages_add(struct dsfs_pages *p, json_object *arr, size_t bytes, long total, char *why, size_t whylen);

#endif
