// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The registry of dialects: the one list that -o api=, URL sniffing,
 * estate files and --help use, and the lookups over it (by name, by URL,
 * the hint a URL that looks wrong gets, the names for messages). A new API
 * adds its name to DSFS_DIALECTS. This file sits above every dialect file
 * (it names them all); they use only dialect.c's shared helpers, never it.
 */
#include "dialect/dialect.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DSFS_DIALECTS(X) X(storageplugin) X(dscc) X(backupdr) X(cloudsync) X(greenlake)

#define DECLARE(n) extern const struct dsfs_dialect dsfs_dialect_##n;
#define ENTRY(n) &dsfs_dialect_##n,

DSFS_DIALECTS(DECLARE)

const struct dsfs_dialect *const dsfs_dialects[] = { DSFS_DIALECTS(ENTRY) NULL };

/* a and b are one name whatever their case and their '-' and '_' ("storage-plugin", "Cloud_Sync"). */
static bool same_name(const char *a, const char *b)
{
	for (;;) {
		while (*a == '-' || *a == '_')
			a++;
		while (*b == '-' || *b == '_')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		if (tolower((unsigned char)*a++) != tolower((unsigned char)*b++))
			return false;
	}
}

const struct dsfs_dialect *dsfs_dialect_named(const char *name)
{
	for (size_t i = 0; dsfs_dialects[i]; i++)
		if (same_name(dsfs_dialects[i]->name, name))
			return dsfs_dialects[i];
	return NULL;
}

const struct dsfs_dialect *dsfs_dialect_for_url(const char *url, bool *guessed)
{
	const struct dsfs_dialect *found = NULL;

	*guessed = false;
	for (size_t i = 0; dsfs_dialects[i]; i++) {
		if (!dsfs_dialects[i]->claims_url || !dsfs_dialects[i]->claims_url(url))
			continue;
		if (found) { /* a host that serves two APIs (DSCC's and GreenLake's): -o api= decides */
			*guessed = true;
			return found;
		}
		found = dsfs_dialects[i];
	}
	*guessed = !found;
	return found ? found : dsfs_dialects[0];
}

bool dsfs_dialect_url_hint(const struct dsfs_dialect *d, const char *url, char *buf, size_t len)
{
	const char *host = strstr(url, "://"), *path;
	size_t n, want;

	if (!d->url_path || !host)
		return false;
	path = host + 3 + strcspn(host + 3, "/?#");
	n = strcspn(path, "?#");
	while (n > 0 && path[n - 1] == '/')
		n--;
	want = strlen(d->url_path);
	if (want ? n >= want && !strncmp(path + n - want, d->url_path, want) : n == 0)
		return false;
	if (!want)
		snprintf(buf, len,
			 "the %s API's URL is its host's root, like %s: dsfs adds %.*s and every other "
			 "path itself",
			 d->name, d->url_example, (int)n, path);
	else
		snprintf(buf, len, "the %s API's URL ends in %s, like %s", d->name, d->url_path, d->url_example);
	return true;
}

void dsfs_dialect_names(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; dsfs_dialects[i] && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", dsfs_dialects[i]->name);
}
