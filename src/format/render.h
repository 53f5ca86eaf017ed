/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How a JSON value becomes file content: pretty-printed with two-space
 * indentation and a trailing newline, the same bytes as Python's
 * json.dumps(value, indent=2, ensure_ascii=False), numbers exactly as the
 * server wrote them. Also reads the time fields that give files their mtime.
 */
#ifndef DSFS_RENDER_H
#define DSFS_RENDER_H

#include <json-c/json.h>
#include <time.h>

#include "util/blob.h"

/* Renders v (NULL renders "null"). Returns a new blob the caller unrefs, or NULL on ENOMEM. Thread-safe. */
struct dsfs_blob *dsfs_render_json(json_object *v);

/*
 * Reads a time: an epoch number (seconds; milliseconds when too large for
 * seconds, microseconds when too large for milliseconds), a numeric string, an ISO 8601 / RFC 3339 UTC string, or an
 * object {"ms": epoch milliseconds} as DSCC device-type1 objects carry.
 * Returns 0 and sets *out, or -EINVAL when v is none of these.
 */
int dsfs_render_time(json_object *v, time_t *out);

#endif
