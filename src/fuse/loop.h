/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE glue (the fuse_*.c files, fuse/fuse_int.h inside): low-level
 * callbacks that convert arguments, call the estate and reply; this is
 * what the rest of dsfs sees of it, the mount and its loop. The glue is
 * the only part that includes libfuse's headers.
 */
#ifndef DSFS_FUSE_LOOP_H
#define DSFS_FUSE_LOOP_H

#include "mount/estate.h"

struct fuse_args;

struct dsfs_mount_opts {
	const char *mountpoint;
	double cache_ttl; /* kernel entry and attribute timeouts */
	bool foreground;
	bool single_thread;
	bool debug;        /* keep debug lines in the log */
	size_t node_bytes; /* the kernel's inodes may take this much of dsfs's memory (0: no bound) */
};

/*
 * Mounts the estate (one member or several) at the mountpoint, detaches unless foreground (logging to
 * syslog from then on), and serves requests until unmounted or signalled.
 * Returns 0 after a clean unmount, or 1 with the reason printed when the
 * mount failed.
 */
int dsfs_fuse_run(struct dsfs_estate *estate, struct fuse_args *args, const struct dsfs_mount_opts *mo);

/* Prints libfuse's own option help (after dsfs's and main.c's lines on its threads). */
void dsfs_fuse_print_help(struct fuse_args *args);

/*
 * Fair shares (fuse/admit.h): operations one user may have running at once, and
 * all users but the mount's owner and root together (each further user
 * may run one more); the threads allow both, and one more for each of a
 * hundred further users, with some to spare for reading the kernel's
 * requests. Threads start only as they are needed.
 */
#define DSFS_FUSE_SHARE_PER_USER 32
#define DSFS_FUSE_SHARE_OTHERS 48
#define DSFS_FUSE_MAX_THREADS (DSFS_FUSE_SHARE_PER_USER + DSFS_FUSE_SHARE_OTHERS + 128)
/* Worker threads the FUSE loop keeps when idle; -o max_idle_threads does not change it. */
#define DSFS_FUSE_IDLE_THREADS 10

/*
 * The share of cache_size the kernel's inodes may take (1/N), the cache
 * the rest: the node table counts in the bound.
 */
#define DSFS_FUSE_NODE_SHARE 8

/*
 * Bounds on waits in progress (fs/waiters.h): they hold no thread, only a
 * little memory each, so these bound memory, not the threads.
 */
#define DSFS_FUSE_MAX_WAITERS_PER_USER 256
#define DSFS_FUSE_MAX_WAITERS 2048

/* libfuse's version string. */
const char *dsfs_fuse_version(void);

/*
 * Splits the generic command line (-f, -d, -s, mountpoint) off args.
 * Returns 0, or -EINVAL when there is no mountpoint. *mountpoint is malloc'd.
 */
int dsfs_fuse_parse_cmdline(struct fuse_args *args, char **mountpoint, bool *foreground, bool *debug,
			    bool *single_thread);

#endif
