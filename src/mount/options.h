/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dsfs's own mount options (-o cache_ttl=..., credentials=..., ...), their
 * defaults and validation, and the credentials file. Options dsfs does not
 * know are left in the argument list for libfuse and the kernel.
 */
#ifndef DSFS_OPTIONS_H
#define DSFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dialect/dialect.h"
#include "net/session.h"

struct fuse_args;

struct dsfs_options {
	char *url;         /* API base URL, trailing '/' removed */
	char *credentials; /* path of the credentials file */
	char *array;       /* array to log in to (default: the URL's host) */
	char *cacert, *client_cert, *client_key;
	double cache_ttl, timeout, connect_timeout, wait_timeout;
	int allow_delete; /* set through fuse_opt */
	int allow_edit;
	int allow_other_actions; /* others may write control files and mkdir/rmdir (with allow_other) */
	int dry_run;             /* changes are checked and shown, never sent */
	char *username_opt;      /* -o username=NAME */
	unsigned page_size;
	int retries, max_conns, prefetch;
	size_t cache_size; /* bytes; 0 = unbounded */
	size_t max_body;   /* bytes */
	int insecure;      /* set through fuse_opt, which writes an int */
	bool ro, show_help, show_version;
	struct dsfs_credentials cred; /* from the credentials file or the environment */
	char *api;                    /* -o api=DIALECT (a name of the registry); NULL: recognised from the URL */
	char *estate;                 /* -o estate=FILE, or a URL "estate:FILE" */
	char *log_file;               /* -o log=FILE: the log's lines also appended there (absolute once parsed) */
	size_t log_size;              /* bytes past which the log file is rotated to FILE.1 */
	int nonopts;                  /* positional arguments seen while parsing */
	char *mountpoint;             /* the MOUNTPOINT argument as given (libfuse takes its own copy) */
	char *extra;                  /* the first positional argument past the mountpoint, or NULL */
	char *unknown;                /* the first -o key neither dsfs nor libfuse knows */
	char *unknown_dash;           /* the first -x or --name option libfuse does not take (without its value) */
	bool unknown_dash_valued;     /* it was given a value (--name=...) */

	/* raw option strings, validated by dsfs_options_parse */
	char *s_cache_ttl, *s_timeout, *s_wait_timeout, *s_prefetch, *s_connect_timeout, *s_page_size, *s_retries,
		*s_max_conns, *s_cache_size, *s_max_body, *s_log_size;
};

/*
 * Takes dsfs's options and the URL out of args (the mountpoint and every
 * other option stay for libfuse), applies defaults and checks values. A -o
 * key neither dsfs nor libfuse knows is refused by name, with the nearest
 * known key when one is close, and so is an option starting with '-' that
 * libfuse does not take (--credentials=FILE) or an argument past the
 * mountpoint. Returns 0, or -EINVAL with a message in err
 * naming the problem and the fix.
 */
int dsfs_options_parse(struct fuse_args *args, struct dsfs_options *o, char *err, size_t errlen);

/*
 * Loads credentials for dialect d into o->cred: the key=value lines of
 * o->credentials, which must be a regular file that neither group nor others
 * may read or write, and whose keys must be ones d's auth reads. Where d
 * reads username and password, a username missing there comes from -o
 * username= or DSFS_USERNAME, a password from DSFS_PASSWORD (for systemd
 * units), which is then removed from the environment. Then d's auth checks
 * that logging in has what it needs. 0 or -errno with err set.
 */
int dsfs_options_load_credentials(struct dsfs_options *o, const struct dsfs_dialect *d, char *err, size_t errlen);

/*
 * The dialect: -o api=, else recognised from the URL (dsfs_dialect_for_url;
 * *guessed set when the URL says nothing and the first was taken). NULL
 * with err listing the known names for an unknown api=.
 */
const struct dsfs_dialect *dsfs_options_dialect(const struct dsfs_options *o, bool *guessed, char *err, size_t errlen);

/*
 * The word of cands (NULL-terminated) that word is a typo of (the nearest,
 * within an edit or two), or NULL: for "did you mean" in messages.
 */
const char *dsfs_options_nearest(const char *word, const char *const *cands);

/*
 * The value of a key=value line, in place: blanks around it dropped, and
 * one pair of quotes ("..." or '...') around the whole of it taken off, as
 * shells and systemd's EnvironmentFile= write them (nothing inside is an
 * escape). NULL with *why set for a value that opens a quote and does not
 * close it, or is empty.
 */
char *dsfs_options_value(char *v, const char **why);

/* True when dialect d's auth reads credentials key. */
bool dsfs_options_dialect_reads(const struct dsfs_dialect *d, const char *key);

/* Strips leading blanks and trailing blanks and line ends, in place; returns the start. */
char *dsfs_options_trim(char *s);

/* The host part of a URL, malloc'd; NULL if there is none. */
char *dsfs_options_url_host(const char *url);

/* Frees what parse and load allocated (wiping the password). */
void dsfs_options_free(struct dsfs_options *o);

#endif
