// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The registry of dialects: the one list that -o api=, URL sniffing,
 * estate files and --help use. A new API adds its name to DSFS_DIALECTS.
 */
#include "dialect/dialect.h"

#define DSFS_DIALECTS(X) X(storageplugin) X(dscc) X(backupdr) X(cloudsync) X(greenlake)

#define DECLARE(n) extern const struct dsfs_dialect dsfs_dialect_##n;
#define ENTRY(n) &dsfs_dialect_##n,

DSFS_DIALECTS(DECLARE)

const struct dsfs_dialect *const dsfs_dialects[] = { DSFS_DIALECTS(ENTRY) NULL };
