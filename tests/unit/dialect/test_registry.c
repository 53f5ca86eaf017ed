// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for src/dialect/registry.c: finding a dialect by name and by
 * URL, the hint a URL that looks wrong gets, and the names messages list.
 */
#include <string.h>

#include "dialect/dialect.h"
#include "tap.h"

int main(void)
{
	const struct dsfs_dialect *sp = dsfs_dialect_named("storageplugin"), *dscc = dsfs_dialect_named("dscc");
	char names[256];
	bool guessed;

	ok(sp && dscc && sp != dscc, "storageplugin and dscc are found by name");
	ok(dsfs_dialect_named("Storage-Plugin") == sp, "case and '-' do not count");
	ok(!dsfs_dialect_named("storage") && !dsfs_dialect_named(""), "a name no dialect has finds none");
	ok(dsfs_dialect_for_url("https://array1:8443/storageplugin/api", &guessed) == sp && !guessed,
	   "a plugin URL is the plugin's");
	ok(dsfs_dialect_for_url("https://cloudsync.netapp.com/api", &guessed) == dsfs_dialect_named("cloudsync") &&
		   !guessed,
	   "Cloud Sync's host is Cloud Sync's");
	ok(dsfs_dialect_for_url("http://127.0.0.1:8080", &guessed) == dsfs_dialects[0] && guessed,
	   "a URL no dialect claims: the first, said to be a guess");
	dsfs_dialect_names(names, sizeof(names));
	is_str(names, "storageplugin, dscc, backupdr, cloudsync, greenlake", "the names, in the registry's order");
	{
		char hint[400];
		const struct dsfs_dialect *bdr = dsfs_dialect_named("backupdr");

		ok(dsfs_dialect_url_hint(dscc, "http://h:1/api/v1", hint, sizeof(hint)) && strstr(hint, "adds /api/v1"),
		   "a DSCC URL with a path gets a hint: %s", hint);
		ok(!dsfs_dialect_url_hint(dscc, "https://us1.data.cloud.hpe.com/", hint, sizeof(hint)),
		   "its root none");
		ok(dsfs_dialect_url_hint(bdr, "https://bmc-1.backupdr.googleusercontent.com", hint, sizeof(hint)) &&
			   strstr(hint, "/actifio"),
		   "a Backup and DR URL without /actifio gets one: %s", hint);
		ok(!dsfs_dialect_url_hint(bdr, "https://h/actifio", hint, sizeof(hint)), "one with it none");
		ok(!dsfs_dialect_url_hint(sp, "http://h:1/storageplugin/api", hint, sizeof(hint)), "nor a plugin URL");
	}
	return done_testing();
}
