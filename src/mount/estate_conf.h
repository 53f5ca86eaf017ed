/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The estate file: which members an estate mount has, and how each logs
 * in. Read once at start-up; nothing here is shared between threads.
 */
#ifndef DSFS_ESTATE_CONF_H
#define DSFS_ESTATE_CONF_H

#include <stddef.h>

#include "net/session.h"

/* Members an estate may have. */
#define DSFS_ESTATE_MAX_MEMBERS 256

/* One member as the estate file describes it. Strings are malloc'd. */
struct dsfs_member_conf {
	char *name;                   /* its directory under the mount */
	char *url;                    /* API base */
	char *api;                    /* a dialect's name, or NULL: from the URL */
	char *array;                  /* storage-plugin array to log in to, or NULL */
	char *credentials;            /* path of a credentials file, or NULL when inline */
	struct dsfs_credentials cred; /* inline credentials: keys some dialect's auth reads */
	char *cacert;                 /* extra CA for this member, or NULL */
};

/*
 * Reads an estate file (docs/estate.md): [member] sections of key = value
 * lines, a value unquoted as dsfs_options_value does. The file is refused,
 * like a credentials file, when group or others may read or write it; a key
 * that is a typo of a known one is named with it ("did you mean"). On
 * success *members (n entries) is malloc'd; free with
 * dsfs_estate_conf_free. -errno with err set otherwise.
 */
int dsfs_estate_parse(const char *path, struct dsfs_member_conf **members, size_t *n, char *err, size_t errlen);

/* Frees members (n of them), wiping inline credentials; NULL does nothing. */
void dsfs_estate_conf_free(struct dsfs_member_conf *members, size_t n);

#endif
