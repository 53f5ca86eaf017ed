// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Log sink: stderr in the foreground, syslog(3) when daemonised. Lines are
 * written with one call each so concurrent threads never interleave them.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static bool to_syslog;
static enum dsfs_log_level max_level = DSFS_LOG_INFO;

void dsfs_log_setup(bool use_syslog, enum dsfs_log_level level)
{
	to_syslog = use_syslog;
	max_level = level;
	if (use_syslog)
		openlog("dsfs", LOG_PID, LOG_DAEMON);
}

bool dsfs_log_enabled(enum dsfs_log_level level)
{
	return level <= max_level;
}

void dsfs_log(enum dsfs_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char line[2048];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to_syslog)
		syslog(prio[level], "%s", line);
	else
		fprintf(stderr, "dsfs: %s: %s\n", tag[level], line);
}
