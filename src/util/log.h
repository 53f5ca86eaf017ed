/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the daemon: to stderr while in the foreground, to syslog once
 * detached, and always into a bounded ring of the most recent lines (read
 * as MOUNT/.dsfs/log) and, with -o log=FILE, appended to a file rotated at
 * a size bound. Every line is one event; nothing logged may contain a
 * secret. An error or warning repeated word for word within a minute is
 * shown once, so a script looping on a dead server cannot flood the log.
 */
#ifndef DSFS_LOG_H
#define DSFS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dsfs_log_level { DSFS_LOG_ERR, DSFS_LOG_WARN, DSFS_LOG_INFO, DSFS_LOG_DEBUG };

/* The ring's bounds: the most recent lines, at most this many and this many bytes. */
#define DSFS_LOG_RING_LINES 1000
#define DSFS_LOG_RING_BYTES (256 * 1024)

/* Seconds within which a repeated error or warning line is counted rather than shown again. */
#define DSFS_LOG_REPEAT_WINDOW 60

/* Sets where lines go and the most verbose level kept. Not thread-safe: call before threads start. */
void dsfs_log_setup(bool use_syslog, enum dsfs_log_level max_level);

/*
 * Also appends every line, with its time, to the file at path (absolute:
 * the daemon changes to / when it detaches), created 0600 when absent.
 * Before a line would take it past max_bytes, the file is renamed to
 * path.1 (replacing an older one) and a new one started, so the two hold
 * at most twice max_bytes. 0, or -errno with err naming the file and the
 * reason. Not thread-safe: call before threads start.
 */
int dsfs_log_to_file(const char *path, size_t max_bytes, char *err, size_t errlen);

/*
 * The estate member the calling thread works in, or NULL: its lines start
 * with "<member>: ", so that a path in one names the directory it is in.
 * Thread-local; the estate sets it as it dispatches.
 */
void dsfs_log_set_member(const char *name);

/* Logs one line (no trailing newline needed). Thread-safe. */
void dsfs_log(enum dsfs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when lines of this level are kept, to skip building costly messages. */
bool dsfs_log_enabled(enum dsfs_log_level level);

/*
 * The ring, as a file whose offsets are positions in everything ever
 * logged (so tail -f follows it): dsfs_log_end is the position after the
 * newest byte, and dsfs_log_read copies up to size bytes from position
 * pos into buf, *at set to where they start: pos, or the oldest byte still
 * kept when the lines at pos have been dropped. Returns the bytes copied
 * (0 at the end). Thread-safe.
 */
uint64_t dsfs_log_end(void);
size_t dsfs_log_read(uint64_t pos, char *buf, size_t size, uint64_t *at);

/* Closes the file and empties the ring (at exit, for leak checkers). */
void dsfs_log_close(void);

#endif
