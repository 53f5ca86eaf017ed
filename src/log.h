/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the daemon: to stderr while in the foreground, to syslog once
 * detached. Every line is one event; nothing logged may contain a secret.
 */
#ifndef DSFS_LOG_H
#define DSFS_LOG_H

#include <stdbool.h>

enum dsfs_log_level { DSFS_LOG_ERR, DSFS_LOG_WARN, DSFS_LOG_INFO, DSFS_LOG_DEBUG };

/* Sets where lines go and the most verbose level kept. Not thread-safe: call before threads start. */
void dsfs_log_setup(bool use_syslog, enum dsfs_log_level max_level);

/* Logs one line (no trailing newline needed). Thread-safe. */
void dsfs_log(enum dsfs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when lines of this level are kept, to skip building costly messages. */
bool dsfs_log_enabled(enum dsfs_log_level level);

#endif
