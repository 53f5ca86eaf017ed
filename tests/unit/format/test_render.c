// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/format/render.c: JSON layout and time fields. */
#include <stdlib.h>

#include "format/render.h"
#include "tap.h"

static void render(const char *json, const char *want, const char *label)
{
	json_object *o = json_tokener_parse(json);
	struct dsfs_blob *b = dsfs_render_json(o);

	is_str(b ? b->data : NULL, want, label);
	if (b)
		is_int(b->len, strlen(want), "length matches content");
	dsfs_blob_unref(b);
	json_object_put(o);
}

static void when(const char *json, int want_ret, long long want, const char *label)
{
	json_object *o = json_tokener_parse(json);
	time_t t = 0;
	int ret = dsfs_render_time(o, &t);

	is_int(ret, want_ret, label);
	if (!want_ret)
		is_int((long long)t, want, label);
	json_object_put(o);
}

int main(void)
{
	render("{\"a\":1,\"b\":[1,2],\"c\":{},\"d\":[]}",
	       "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": {},\n  \"d\": []\n}\n",
	       "layout like json.dumps(indent=2)");
	render("{\"s\":\"a/b \\\"q\\\" \\\\ \\n\\t\\u0001 é\"}",
	       "{\n  \"s\": \"a/b \\\"q\\\" \\\\ \\n\\t\\u0001 é\"\n}\n", "string escapes; '/' and UTF-8 kept");
	render("{\"n\":1.10,\"big\":123456789012345678,\"neg\":-5,\"t\":true,\"z\":null}",
	       "{\n  \"n\": 1.10,\n  \"big\": 123456789012345678,\n  \"neg\": -5,\n  \"t\": true,\n  \"z\": null\n}\n",
	       "numbers as the server wrote them");
	render("[]", "[]\n", "empty top-level array");
	render("{\"k\":{\"x\":[{\"y\":1}]}}",
	       "{\n  \"k\": {\n    \"x\": [\n      {\n        \"y\": 1\n      }\n    ]\n  }\n}\n", "nesting");

	when("1700000000", 0, 1700000000, "epoch seconds");
	when("1700000000123", 0, 1700000000, "epoch milliseconds");
	when("1700000000123456", 0, 1700000000, "epoch microseconds (Backup and DR)");
	when("\"1700000000\"", 0, 1700000000, "numeric string");
	when("\"2024-03-24T00:13:52.002673131Z\"", 0, 1711239232, "RFC 3339 with fraction");
	when("\"2024-03-24T02:13:52+02:00\"", 0, 1711239232, "RFC 3339 with offset");
	when("{\"ms\": 1700000000123, \"tz\": \"UTC\"}", 0, 1700000000, "DSCC {ms, tz}");
	when("{\"tz\": \"UTC\"}", -22, 0, "an object without ms is refused");
	when("\"yesterday\"", -22, 0, "nonsense is refused");
	when("null", -22, 0, "null is refused");
	when("\"2024-13-45T99:99:99Z\"", -22, 0, "a date that is none is no time");
	when("\"2023-02-29T00:00:00Z\"", -22, 0, "29 February of a common year is none");
	when("\"2024-02-29T00:00:00Z\"", 0, 1709164800, "29 February of a leap year is");
	when("\"2016-12-31T23:59:60Z\"", 0, 1483228800, "a leap second at a month's end is a time");
	when("\"2024-03-24T02:13:52+24:00\"", -22, 0, "an offset past 23:59 is none");
	return done_testing();
}
