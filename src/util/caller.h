/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who the calling thread works for: the FUSE request it serves, as the
 * FUSE glue sets it, or nobody (a prefetcher, start-up, the task poller).
 * The layers below read it to keep connections for the mount's owner and
 * to stop work whose reader has gone. Thread-local; no locks.
 */
#ifndef DSFS_CALLER_H
#define DSFS_CALLER_H

#include <stdbool.h>
#include <sys/types.h>

/* Sets the calling thread's caller: its uid, and req, the glue's token for gone(). */
void dsfs_caller_set(uid_t uid, void *req);

/* Clears it: the thread works for nobody. */
void dsfs_caller_clear(void);

/* Process-wide, once: how to tell that req's reader was interrupted or the mount is ending. */
void dsfs_caller_set_check(bool (*gone)(void *req), uid_t owner);

/* The caller's uid, or the process's own when nobody's. */
uid_t dsfs_caller_uid(void);

/* True for the mount's owner (and root): it may use the connections kept for it. Nobody's work is not. */
bool dsfs_caller_is_owner(void);

/* True when the caller's reader was interrupted (Ctrl-C, killed) or the mount is ending. */
bool dsfs_caller_gone(void);

/*
 * The process thread tid belongs to (the kernel names the thread of a
 * request, and the threads of one program are one writer): tid when
 * /proc does not say, 0 when tid is unknown (<= 0: another pid namespace).
 */
pid_t dsfs_caller_process(pid_t tid);

/*
 * Whether thread tid's process holds a descriptor open on the file at
 * dir followed by path (absolute, as /proc/<tid>/fd shows it). False when
 * that cannot be read.
 */
bool dsfs_caller_holds(pid_t tid, const char *dir, const char *path);

#endif
