// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/format/names.c: entry escaping, collisions, shortening, URL segments. */
#include <errno.h>
#include <stdlib.h>

#include "format/names.h"
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

static void unescape(const char *s, int want_ret, const char *want)
{
	char *out = (char *)"unset", label[256];
	int ret = dsfs_names_unescape(s, &out);

	snprintf(label, sizeof(label), "unescape '%s' answers %d", s, want_ret);
	is_int(ret, want_ret, label);
	snprintf(label, sizeof(label), "unescape '%s'", s);
	if (want)
		is_str(out, want, label);
	else
		ok(out == NULL, "%s", label);
	free(ret ? NULL : out);
}

/* Every byte escaping writes comes back, and nothing else is read as an escape. */
static void unescape_all(void)
{
	unescape("a%2Fb", 0, "a/b");
	unescape("100%25", 0, "100%");
	unescape("%2E%2E", 0, "..");
	unescape("line%0abreak%09tab", 0, "line\nbreak\ttab");
	unescape("%~0123456789abcdef", 0, "%~0123456789abcdef");
	unescape("50%", 0, "50%");
	unescape("5%4", 0, "5%4");
	unescape("% 1x", 0, "% 1x"); /* sscanf's %x would skip the space */
	unescape("%+1", 0, "%+1");
	unescape("%-1", 0, "%-1");
	unescape("%zz", 0, "%zz");
	unescape("vol-mail-0003%00zzz", -EINVAL, NULL);
	unescape("%00", -EINVAL, NULL);
	unescape("", 0, "");
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
	ok(strcmp(e[0], e[1]) && strcmp(e[1], e[2]) && strcmp(e[0], e[2]),
	   "repeated ids still give unique entries (%s %s %s)", e[0], e[1], e[2]);
	for (i = 0; i < 3; i++)
		free(e[i]);
}

/* True when e fits NAME_MAX and its part before the last '@' ends on a character, not inside a %XX or UTF-8. */
static int fits(const char *e)
{
	const char *at = strrchr(e, '@');
	size_t len = at ? (size_t)(at - e) : strlen(e), i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)e[i];

		i += c == '%' ? 3 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	}
	return i == len && strlen(e) <= DSFS_NAMES_MAX;
}

static void long_names(void)
{
	char *big = malloc(5001), *longid = malloc(301), *utf = malloc(401);
	char *ids[4] = { "snap-1", "snap-2", NULL, "u" }, *e[4], *b;
	size_t i;

	memset(big, '%', 5000);
	big[5000] = '\0';
	memset(longid, 'x', 300);
	longid[300] = '\0';
	for (i = 0; i < 200; i++)
		memcpy(utf + 2 * i, "\xc3\xa9", 2); /* é */
	utf[400] = '\0';
	ids[2] = longid;
	e[0] = dsfs_names_entry(big, ids[0]);
	e[1] = dsfs_names_entry(big, ids[1]);
	e[2] = dsfs_names_entry("x", ids[2]);
	e[3] = dsfs_names_entry(utf, ids[3]);
	is_int(strlen(e[0]), 15000, "5000 '%' escape to 15000 bytes");
	is_int(dsfs_names_dedupe(e, ids, 4, NULL), 0, "dedupe of long names succeeds");
	ok(fits(e[0]) && !strncmp(e[0], "%25%25", 6) && strstr(e[0], "@snap-1") == e[0] + strlen(e[0]) - 7,
	   "a long name becomes a prefix and its id (%zu bytes)", strlen(e[0]));
	is_int(strlen(e[0]), 246 + 7, "the prefix is cut at a %%XX, as long as fits");
	ok(strcmp(e[0], e[1]), "two long names sharing a prefix stay unique");
	is_str(e[2], "x", "a short name with a long id stays");
	ok(fits(e[3]) && !strcmp(e[3] + strlen(e[3]) - 2, "@u"), "a long UTF-8 name is cut at a character");
	for (i = 0; i < 4; i++)
		free(e[i]);

	/* a collision whose suffix would make the entry too long: name cut, id kept */
	memset(utf, 'n', 250);
	utf[250] = '\0';
	e[0] = dsfs_names_entry(utf, "id-1");
	e[1] = dsfs_names_entry(utf, "id-2");
	is_int(dsfs_names_dedupe(e, (char *[]){ "id-1", "id-2" }, 2, NULL), 0, "dedupe succeeds");
	ok(fits(e[0]) && fits(e[1]) && strcmp(e[0], e[1]) && strstr(e[1], "@id-2"),
	   "colliding long names fit and keep their ids (%s)", e[1]);
	free(e[0]);
	free(e[1]);

	/* a long id in a suffix is a hash */
	e[0] = dsfs_names_entry("dup", longid);
	longid[0] = 'y';
	e[1] = dsfs_names_entry("dup", longid);
	is_int(dsfs_names_dedupe(e, (char *[]){ "x", longid }, 2, NULL), 0, "dedupe succeeds");
	ok(!strncmp(e[1], "dup@%~", 6) && strlen(e[1]) == 6 + 16, "a long id is named by a hash (%s)", e[1]);
	free(e[0]);
	free(e[1]);

	is_str((b = dsfs_names_by_id("a/b")), "a%2Fb", ".by-id entry of a/b");
	free(b);
	is_str((b = dsfs_names_by_id("")), "", "an empty id has no .by-id entry");
	free(b);
	b = dsfs_names_by_id(big);
	ok(b && strlen(b) <= DSFS_NAMES_MAX && strstr(b, "@%~"), "a long id's .by-id entry fits (%zu bytes)",
	   strlen(b));
	free(b);
	free(big);
	free(longid);
	free(utf);
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

	unescape_all();
	dedupe();
	dedupe_same_ids();
	long_names();
	return done_testing();
}
