// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/format/edit.c: which edits become which PUT body, and which are refused. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format/edit.h"
#include "tap.h"

// clang-format off
static const struct dsfs_edit_field fields[] = {
	{ .field = "name" }, { .field = "sizeMiB", .put_as = "sizeMib" },
	{ .field = "dataReduction", .yes = "ON", .no = "OFF" },
};
// clang-format on
static const struct dsfs_edits edits = { fields, sizeof(fields) / sizeof(fields[0]) }; /* a volume's */

// clang-format off
#define BASE "{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", " \
	     "\"stats\": {\"used\": 5}}"
// clang-format on

/* The body for text as a compact string ("" for none), or the errno as "-N"; why gets the reason. */
static const char *edit(const char *text, const char *server, char *why)
{
	static char out[512];
	json_object *base = json_tokener_parse(BASE), *srv = server ? json_tokener_parse(server) : NULL, *body;
	int ret = dsfs_edit_body(&edits, base, text, strlen(text), srv, &body, why, 256);

	if (ret)
		snprintf(out, sizeof(out), "%d", ret);
	else
		snprintf(out, sizeof(out), "%s",
			 body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "");
	json_object_put(body);
	json_object_put(base);
	json_object_put(srv);
	return out;
}

/* The edit of sizeMiB to the number spelt n, the rest as BASE. */
static const char *size_to(const char *n, char *why)
{
	static char text[512];

	snprintf(text, sizeof(text),
		 "{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": %s, "
		 "\"dataReduction\": \"OFF\", \"stats\": {\"used\": 5}}",
		 n);
	return edit(text, NULL, why);
}

/* Every number sent is the one written, or the edit is refused (json-c clamps, rounds, reads NaN). */
static void numbers(const char *minus_inval)
{
	static const char *const refused[] = {
		"99999999999999999999",
		"-99999999999999999999",
		"18446744073709551616",
		"-9223372036854775809",
		"1e400",
		"-1e400",
		"1e-400",
		"4.9e-324",
		"NaN",
		"Infinity",
		"-Infinity",
		"01",
		"00",
		"1.",
		"1.00000000000000000001",
		"9007199254740993.0",
		"1e20",
		"123456789012345678e0",
	};
	static const char *const sent[][2] = {
		{ "18446744073709551615", "{\"sizeMib\":18446744073709551615}" },
		{ "9223372036854775808", "{\"sizeMib\":9223372036854775808}" },
		{ "-9223372036854775808", "{\"sizeMib\":-9223372036854775808}" },
		{ "2048.5", "{\"sizeMib\":2048.5}" },
		{ "2E3", "{\"sizeMib\":2E3}" },
		{ "0.1", "{\"sizeMib\":0.1}" },
		{ "-0", "{\"sizeMib\":0}" },
		{ "1024.000000000000000000000", "" },
	};
	char why[256], label[128];

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(label, sizeof(label), "sizeMiB %s is refused", refused[i]);
		is_str(size_to(refused[i], why), minus_inval, label);
		ok(strstr(why, refused[i]) || strstr(why, "not valid JSON"), "the reason names it: %s", why);
	}
	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		snprintf(label, sizeof(label), "sizeMiB %s is sent as written", sent[i][0]);
		is_str(size_to(sent[i][0], why), sent[i][1], label);
	}
	/* two uint64 values json-c would both read as INT64_MAX through get_int64 are two values */
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 9223372036854775809, "
		    "\"dataReduction\": \"OFF\", \"stats\": {\"used\": 5}}",
		    NULL, why),
	       "{\"sizeMib\":9223372036854775809}", "a uint64 beyond INT64_MAX is a change");
	/* a number the file showed (a server's 17 digits) goes back as it came */
	{
		const char *base = "{\"id\": \"v1\", \"name\": \"db\", \"ratio\": 0.30000000000000004}";
		json_object *b = json_tokener_parse(base), *body = NULL;
		int ret = dsfs_edit_body(&edits, b,
					 "{\"id\": \"v1\", \"name\": \"web\", "
					 "\"ratio\": 0.30000000000000004}",
					 strlen(base) + 1, NULL, &body, why, sizeof(why));

		is_int(ret, 0, "a shown number left alone does not stop an edit");
		json_object_put(body);
		json_object_put(b);
	}
}

int main(void)
{
	char why[256], minus_inval[8], minus_busy[8];

	snprintf(minus_inval, sizeof(minus_inval), "%d", -EINVAL);
	snprintf(minus_busy, sizeof(minus_busy), "%d", -EBUSY);
	numbers(minus_inval);
	is_str(edit(BASE, NULL, why), "", "an unchanged object sends nothing");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 2048, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}}\n\n",
		    NULL, why),
	       "{\"sizeMib\":2048}", "a changed field goes alone, under the PUT's name; white space after it is fine");
	is_str(edit("{\"id\": \"v1\", \"name\": \"web\", \"sizeMiB\": 1024, \"dataReduction\": \"ON\", "
		    "\"stats\": {\"used\": 5}}",
		    BASE, why),
	       "{\"name\":\"web\",\"dataReduction\":true}", "two fields, a word turned into the boolean the API takes");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024.0, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5.0}}",
		    NULL, why),
	       "", "numbers spelt otherwise (jq's 5 for 5.0) are no change");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}, \"sizeMib\": 4096}",
		    NULL, why),
	       "{\"sizeMib\":4096}", "the field added under the PUT's name (jq '.sizeMib = N') is that edit");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 2048, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}, \"sizeMib\": 4096}",
		    NULL, why),
	       minus_inval, "both names with two values: refused");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 6}}",
		    NULL, why),
	       minus_inval, "a nested field the API does not edit");
	ok(strstr(why, "field 'stats' cannot be edited (editable: name, sizeMiB, dataReduction)"), "named: %s", why);
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\"}", NULL, why),
	       minus_inval, "a field taken away");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}, \"x\": 1}",
		    NULL, why),
	       minus_inval, "a field added");
	ok(strstr(why, "'x' is not one of the object's"), "named: %s", why);
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": \"big\", \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}}",
		    NULL, why),
	       minus_inval, "a wrong type");
	ok(strstr(why, "'sizeMiB' must be a number, as it was, not a string"), "said: %s", why);
	is_str(edit("{\"id\": \"v1\", \"name\": null, \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}}",
		    NULL, why),
	       minus_inval, "null cannot unset a field");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"MAYBE\", "
		    "\"stats\": {\"used\": 5}}",
		    NULL, why),
	       minus_inval, "a word the field does not take");
	is_str(edit("{\"id\": \"v1\", \"name\": \"db\"", NULL, why), minus_inval, "cut short: not JSON");
	is_str(edit(BASE "x", NULL, why), minus_inval, "text after the object");
	{
		/* NUL bytes after the object (a truncate past its end) are not white space */
		json_object *base = json_tokener_parse(BASE), *body = NULL;
		char text[sizeof(BASE) + 4] = BASE;

		is_int(dsfs_edit_body(&edits, base, text, sizeof(text), NULL, &body, why, sizeof(why)), -EINVAL,
		       "NUL bytes after the object are refused");
		ok(strstr(why, "text after the object") != NULL, "and say so: %s", why);
		json_object_put(body);
		json_object_put(base);
	}
	is_str(edit("[1]", NULL, why), minus_inval, "not an object");
	is_str(edit("{\"id\": \"v1\", \"name\": \"web\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}}",
		    "{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 4096, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 9}}",
		    why),
	       minus_busy, "an editable field changed on the server meanwhile");
	ok(strstr(why, "'sizeMiB' changed on the server"), "named: %s", why);
	is_str(edit("{\"id\": \"v1\", \"name\": \"web\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 5}}",
		    "{\"id\": \"v1\", \"name\": \"db\", \"sizeMiB\": 1024, \"dataReduction\": \"OFF\", "
		    "\"stats\": {\"used\": 9}}",
		    why),
	       "{\"name\":\"web\"}", "a counter the API moves is no conflict");
	return done_testing();
}
