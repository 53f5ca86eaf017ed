/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one clock of dsfs's timeouts, intervals and ages: monotonic, so a
 * step of the wall clock neither ends a wait early nor makes it last.
 */
#ifndef DSFS_CLOCK_H
#define DSFS_CLOCK_H

#include <time.h>

/* Seconds since an arbitrary point, monotonic. */
static inline double dsfs_clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
