/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE glue: callbacks that convert arguments, call the fs layer and
 * return. The only module that includes fuse.h.
 */
#ifndef DSFS_FUSE_OPS_H
#define DSFS_FUSE_OPS_H

#include "estate.h"

struct fuse_args;

struct dsfs_mount_opts {
	const char *mountpoint;
	double cache_ttl;     /* kernel entry and attribute timeouts */
	bool foreground;
	bool single_thread;
	bool debug;           /* keep debug lines in the log */
};

/*
 * Mounts the estate (one member or several) at the mountpoint, detaches unless foreground (logging to
 * syslog from then on), and serves requests until unmounted or signalled.
 * Returns 0 after a clean unmount, or 1 with the reason printed when the
 * mount failed.
 */
int dsfs_fuse_run(struct dsfs_estate *estate, struct fuse_args *args, const struct dsfs_mount_opts *mo);

/* Prints libfuse's own option help (after dsfs's). */
void dsfs_fuse_print_help(struct fuse_args *args);

/*
 * Worker threads serving requests at most. Readers that wait for the server
 * may hold DSFS_FUSE_MAX_WAITERS of them, DSFS_FUSE_MAX_WAITERS_PER_USER of
 * those one user's (waiters.h): the rest always serve everyone else.
 */
#define DSFS_FUSE_MAX_THREADS 256
#define DSFS_FUSE_MAX_WAITERS_PER_USER 32
/* others' waiters; the owner's 32 come on top, and 32 threads stay for everything else */
#define DSFS_FUSE_MAX_WAITERS (DSFS_FUSE_MAX_THREADS - 2 * DSFS_FUSE_MAX_WAITERS_PER_USER)

/*
 * True when the FUSE request the calling thread serves was interrupted
 * (Ctrl-C, or the reader killed), or when the mount is ending.
 */
bool dsfs_fuse_interrupted(void);

/* The uid of the process whose request the calling thread serves. */
uid_t dsfs_fuse_caller_uid(void);

/* libfuse's version string. */
const char *dsfs_fuse_version(void);

/*
 * Splits the generic command line (-f, -d, -s, mountpoint) off args.
 * Returns 0, or -EINVAL when there is no mountpoint. *mountpoint is malloc'd.
 */
int dsfs_fuse_parse_cmdline(struct fuse_args *args, char **mountpoint, bool *foreground,
			    bool *debug, bool *single_thread);

#endif
