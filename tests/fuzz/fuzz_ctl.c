// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the control-file parser (src/format/ctl.c). The first byte
 * picks `new` or `action` grammar; the rest is the command line. The parser
 * must never crash, read out of bounds or leak, and must either refuse the
 * input or return a body that serialises. The same bytes, as a stream
 * written to the file, are split into commands by the scanner, which must
 * read each byte exactly once; and the command as a result shows it
 * (secrets hidden) must come out NUL-terminated, whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/ctl.h"

static const struct dsfs_action create = {
	.required = (const char *const[]){ "name", NULL }, .bare_field = "name",
};
static const struct dsfs_action verbs[] = {
	/* every type of field, so typing, lists and unknown fields are fuzzed too */
	{ .verb = "clone", .required = (const char *const[]){ "name", NULL },
	  .fields = (const struct dsfs_field[]){ { "name", DSFS_T_STRING }, { "snapshot.id", DSFS_T_STRING },
						 { "n", DSFS_T_INTEGER }, { "f", DSFS_T_NUMBER },
						 { "b", DSFS_T_BOOLEAN }, { "ids", DSFS_T_STRINGS },
						 { "a", DSFS_T_ARRAY }, { "o", DSFS_T_OBJECT }, { NULL, 0 } } },
	{ .verb = "mount", .required = (const char *const[]){ "path", NULL } },
	{ .verb = "split", .no_body = true },
	{ .verb = "restore", .required = (const char *const[]){ "snapshotId|snapshot.id", NULL } },
	{ .verb = "map", .required = (const char *const[]){ "lunId", NULL } },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dsfs_action *a;
	json_object *body = NULL;
	char err[512];
	int ret;

	if (size < 1)
		return 0;
	{
		struct dsfs_ctl_scan s;
		size_t off = 1, k;
		bool ended;

		dsfs_ctl_scan_init(&s, !(data[0] & 1));
		while (off < size) {
			k = dsfs_ctl_scan(&s, (const char *)data + off, size - off, &ended);
			if (k == 0 || k > size - off || (ended && data[off + k - 1] != '\n'))
				__builtin_trap(); /* progress, in bounds, and a command ends at a newline */
			off += k;
		}
	}
	if (data[0] & 1)
		ret = dsfs_ctl_parse((const char *)data + 1, size - 1, &create, NULL, 0, &a, &body, err, sizeof(err));
	else
		ret = dsfs_ctl_parse((const char *)data + 1, size - 1, NULL, verbs, 5, &a, &body, err, sizeof(err));
	if (ret == 0) {
		const char *s = json_object_to_json_string(body);

		if (!s || !a)
			__builtin_trap(); /* success means a serialisable body and a matched action */
		(void)dsfs_ctl_get(body, "snapshot.id");
		json_object_put(body);
	} else if (body || strnlen(err, sizeof(err)) == 0) {
		__builtin_trap(); /* a refusal must say why and return no body */
	}
	{
		char *shown = dsfs_ctl_shown((const char *)data + 1, size - 1);

		if (shown)
			(void)strlen(shown);
		free(shown);
	}
	return 0;
}
