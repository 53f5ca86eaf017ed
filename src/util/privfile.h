/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening a file that holds secrets: a credentials file, an estate file,
 * a service account's key. Whoever reads one (options, the estate, a
 * dialect's login) opens it here, so the checks and their messages are one
 * wherever a secret comes from. It owns nothing: the caller owns the FILE
 * it gets and the err buffer it passes. Thread-safe (no state).
 */
#ifndef DSFS_PRIVFILE_H
#define DSFS_PRIVFILE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Opens path for reading: it must be a regular file of the user's or
 * root's that group and others can neither read nor write (a symbolic
 * link is not followed; a FIFO or device is refused without blocking).
 * NULL with *ret (-errno) and err (naming `what`, e.g. "credentials file",
 * the path and the fix) otherwise. The caller fcloses.
 */
FILE *dsfs_privfile_open(const char *path, const char *what, char *err, size_t errlen, int *ret);

#endif
