// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/names.c: entry escaping, collisions, URL segments. */
#include <stdlib.h>

#include "names.h"
#include "tap.h"

static void entry(const char *name, const char *id, const char *want)
{
	char *e = dsfs_names_entry(name, id);
	char label[256];

	snprintf(label, sizeof(label), "entry for name '%s' id '%s'", name ? name : "(null)", id);
	is_str(e, want, label);
	free(e);
}

static void segment(const char *id, const char *want)
{
	char *s = dsfs_names_url_segment(id);
	char label[256];

	snprintf(label, sizeof(label), "URL segment for '%s'", id);
	is_str(s, want, label);
	free(s);
}

static void dedupe(void)
{
	static const char *const reserved[] = { ".by-id", "new", NULL };
	const char *names[] = { "a", "a", "b", "a@2", "new", ".by-id", "x@y" };
	char *ids[] = { "1", "2", "3", "4", "5", "6", "id@7" };
	size_t n = sizeof(names) / sizeof(names[0]), i, j;
	char *e[7];
	int unique = 1;

	for (i = 0; i < n; i++)
		e[i] = dsfs_names_entry(names[i], ids[i]);
	is_int(dsfs_names_dedupe(e, ids, n, reserved), 0, "dedupe succeeds");
	is_str(e[0], "a@1", "first duplicate gets its id");
	is_str(e[1], "a@2", "second duplicate gets its id");
	is_str(e[2], "b", "a unique name stays");
	is_str(e[3], "a@2@4", "a real name colliding with a suffixed one is suffixed");
	is_str(e[4], "new@5", "a reserved name is suffixed");
	is_str(e[5], ".by-id@6", ".by-id is reserved");
	is_str(e[6], "x@y", "names containing @ stay when unique");
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (!strcmp(e[i], e[j]))
				unique = 0;
	ok(unique, "all entries unique");
	for (i = 0; i < n; i++)
		free(e[i]);
}

static void dedupe_same_ids(void)
{
	char *ids[] = { "7", "7", "7" };
	char *e[3];
	size_t i;

	for (i = 0; i < 3; i++)
		e[i] = dsfs_names_entry("dup", ids[i]);
	is_int(dsfs_names_dedupe(e, ids, 3, NULL), 0, "dedupe with repeated ids succeeds");
	ok(strcmp(e[0], e[1]) && strcmp(e[1], e[2]) && strcmp(e[0], e[2]), "repeated ids still give unique entries (%s %s %s)",
	   e[0], e[1], e[2]);
	for (i = 0; i < 3; i++)
		free(e[i]);
}

int main(void)
{
	entry("vol1", "v1", "vol1");
	entry("a/b", "v1", "a%2Fb");
	entry("100%", "v1", "100%25");
	entry(".", "v1", "%2E");
	entry("..", "v1", "%2E%2E");
	entry("...", "v1", "...");
	entry("line\nbreak\ttab", "v1", "line%0Abreak%09tab");
	entry("", "v-9", "v-9");
	entry(NULL, "a/b", "a%2Fb");
	entry("Żółw ünïcode", "v1", "Żółw ünïcode");
	entry("del\x7f", "v1", "del%7F");
	entry("sp ace", "v1", "sp ace");

	segment("v1", "v1");
	segment("a/b", "a%2Fb");
	segment("..", "%2E%2E");
	segment(".", "%2E");
	segment("a.b", "a.b");
	segment("x?y#z%", "x%3Fy%23z%25");
	segment("sp ace", "sp%20ace");
	segment("nl\n", "nl%0A");

	dedupe();
	dedupe_same_ids();
	return done_testing();
}
