/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A member's event feed, the content of MOUNT/events/log: the API's audit
 * events (or, for an API without them, its tasks), one JSON object a line,
 * oldest first, growing as the server has more. It asks the server only
 * while someone has the file open, at most once per interval: first for
 * the newest page, then for what came since the newest time seen. Owns its
 * text (bounded: past DSFS_EVENTS_MAX bytes the oldest half is dropped, as
 * a log rotation would) and the ids it has shown. Thread-safe.
 */
#ifndef DSFS_EVENTS_H
#define DSFS_EVENTS_H

#include <stdbool.h>

#include "util/blob.h"
#include "dialect/dialect.h"
#include "net/session.h"

#define DSFS_EVENTS_MAX (16u << 20)

struct dsfs_events;

/* A feed of desc's list on session (borrowed), asking at most every interval seconds (at least 1). */
struct dsfs_events *dsfs_events_new(struct dsfs_session *session, const struct dsfs_events_desc *desc, double interval);
void dsfs_events_free(struct dsfs_events *ev);

/* A reader opens and closes the feed: it is followed only while one has it open. */
void dsfs_events_open(struct dsfs_events *ev);
void dsfs_events_close(struct dsfs_events *ev);

/*
 * The feed's text now (a reference the caller drops; NULL on ENOMEM). With
 * ask, and a reader open, and the last question an interval old, it asks
 * the server first; a failure is logged and what is held is returned.
 */
struct dsfs_blob *dsfs_events_text(struct dsfs_events *ev, bool ask);

/*
 * An estate's feed (MOUNT/events/log): the lines of its members' feeds as
 * they arrive, each object gaining "member": its member's name first.
 * Opening it opens every member's feed. Bounded like a member's feed.
 */
struct dsfs_events_merge;

struct dsfs_events_merge *dsfs_events_merge_new(void);
void dsfs_events_merge_free(struct dsfs_events_merge *mg);

/* Adds member name's feed ev (borrowed): 0, or -ENOMEM. */
int dsfs_events_merge_add(struct dsfs_events_merge *mg, const char *name, struct dsfs_events *ev);

void dsfs_events_merge_open(struct dsfs_events_merge *mg);
void dsfs_events_merge_close(struct dsfs_events_merge *mg);

/*
 * As dsfs_events_text, over every member: with ask, the members due a
 * question are asked side by side in the background and waited for one
 * timeout (their session's) at most; a member still asking then shows what
 * it has, and its answer joins a later read. No lock is held across a
 * request.
 */
struct dsfs_blob *dsfs_events_merge_text(struct dsfs_events_merge *mg, bool ask);

#endif
