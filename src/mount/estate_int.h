/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside the estate: its members and handles, shared by mount/estate.c (the
 * dispatch and the estate's own files) and mount/estate_space.c (df of an
 * estate). Nothing outside those files includes this.
 */
#ifndef DSFS_ESTATE_INT_H
#define DSFS_ESTATE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "util/blob.h"
#include "mount/estate.h"
#include "mount/estate_conf.h"
#include "fs/events.h"
#include "util/locks.h"

struct member {
	char *name, *url;
	struct dsfs_fs *fs;
	struct dsfs_session *session;
	struct dsfs_tasks *tasks;
	const char *tasks_dir;      /* its dialect's tasks collection ("tasks", "jobs") */
	struct dsfs_events *events; /* its events/log, or NULL */
	bool sizing;                /* a df of it runs in the background (e->lock) */
};

struct dsfs_estate {
	bool estate;
	time_t mounted;
	uid_t uid;
	gid_t gid;
	struct member m[DSFS_ESTATE_MAX_MEMBERS];
	size_t n;
	/*
	 * Open handles. The kernel sends RELEASE asynchronously and may still
	 * owe some when it unmounts; those are released when the estate goes.
	 */
	struct dsfs_mutex lock;
	struct dsfs_ehandle *open;
	struct dsfs_events_merge *feed; /* events/log of an estate: every member's, or NULL */
	size_t sizers;                  /* df threads still running (e->lock) */
	pthread_cond_t sized;           /* broadcast when one ends */
};

struct dsfs_ehandle {
	struct dsfs_fs *fs; /* the member's, or NULL for the estate's own file */
	struct dsfs_handle *h;
	struct dsfs_blob *own; /* .dsfs/status, events/log */
	bool feed;             /* events/log: read past its end asks for more */
	const char *member;    /* the member's name in an estate (its lines are named so), or NULL */
	bool log;              /* .dsfs/log: read from the log's ring */
	uint64_t log_skew;     /* .dsfs/log: log position minus file offset (atomic) */
	struct dsfs_estate *e;
	struct dsfs_ehandle *prev, *next;
};

/* The sum of every member's space that arrives within one timeout; 0 or -ENOMEM. */
int dsfs_estate_space_sum(struct dsfs_estate *e, struct dsfs_space *sum);

#endif
