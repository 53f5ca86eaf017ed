// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/format/ctl.c: the control-file command grammar. */
#include <errno.h>

#include "format/ctl.h"
#include "format/secret.h"
#include "tap.h"

// clang-format off
static const struct dsfs_action create = {
	.required = (const char *const[]){ "name", NULL }, .bare_field = "name",
};
// clang-format on
static const struct dsfs_action verbs[] = {
	{ .verb = "clone", .required = (const char *const[]){ "name", NULL } },
	{ .verb = "split", .no_body = true },
	{ .verb = "restore", .required = (const char *const[]){ "snapshotId|snapshot.id", NULL } },
};

static void parses(const struct dsfs_action *c, const char *line, const char *want_verb, const char *want)
{
	const struct dsfs_action *a;
	json_object *body;
	char err[256] = "", label[512];
	int ret = dsfs_ctl_parse(line, strlen(line), c, c ? NULL : verbs, c ? 0 : 3, &a, &body, err, sizeof(err));

	snprintf(label, sizeof(label), "'%s' parses", line);
	if (!ok(ret == 0, "%s", label)) {
		printf("#   error: %s\n", err);
		return;
	}
	if (want_verb)
		is_str(a->verb, want_verb, "verb");
	is_str(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), want,
	       "body");
	json_object_put(body);
}

static void refuses(const struct dsfs_action *c, const char *line, const char *why)
{
	const struct dsfs_action *a;
	json_object *body = NULL;
	char err[256] = "";
	int ret = dsfs_ctl_parse(line, strlen(line), c, c ? NULL : verbs, c ? 0 : 3, &a, &body, err, sizeof(err));

	is_int(ret, -EINVAL, line);
	ok(body == NULL, "no body for a refused command");
	ok(strstr(err, why) != NULL, "reason mentions '%s': %s", why, err);
}

/*
 * Splits text, written whole, into the commands dsfs_ctl_scan finds (each
 * without the newline that ends it) and checks them against want ("|"
 * between commands); rest is what is left unended.
 */
static void scans(bool verb, const char *text, const char *want, const char *rest)
{
	struct dsfs_ctl_scan s;
	char got[1024] = "", label[600];
	size_t n = strlen(text), off = 0, k, count = 0;
	bool ended;

	dsfs_ctl_scan_init(&s, verb);
	while (off < n) {
		k = dsfs_ctl_scan(&s, text + off, n - off, &ended);
		if (!ended)
			break;
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%.*s", count++ ? "|" : "", (int)(k - 1),
			 text + off);
		off += k;
	}
	snprintf(label, sizeof(label), "commands of '%s'", text);
	is_str(got, want, label);
	is_str(text + off, rest, "what is left");
	ok(dsfs_ctl_scan_open(&s) == (*rest && strchr(rest, '{') != NULL), "an object is left open: '%s'", rest);
}

/* The same text written a byte at a time ends its commands at the same places. */
static void scans_bytewise(bool verb, const char *text, size_t want_commands)
{
	struct dsfs_ctl_scan s;
	size_t commands = 0;
	bool ended;

	dsfs_ctl_scan_init(&s, verb);
	for (size_t i = 0; text[i]; i++) {
		is_int(dsfs_ctl_scan(&s, text + i, 1, &ended), 1, "one byte read");
		commands += ended;
	}
	is_int(commands, want_commands, "commands, a byte at a time");
}

int main(void)
{
	/* lines are commands; a JSON object runs to the newline that balances it (jq's print) */
	scans(false, "a\nb\n", "a|b", "");
	scans(false, "{\n  \"name\": \"x\",\n  \"o\": {\"k\": 1}\n}\nnext\n",
	      "{\n  \"name\": \"x\",\n  \"o\": {\"k\": 1}\n}|next", "");
	scans(false, "{\"name\": \"a}\\\"}\",\n\"b\": 1}\n", "{\"name\": \"a}\\\"}\",\n\"b\": 1}", "");
	scans(false, "  {\"a\": {\n", "", "  {\"a\": {\n");
	scans(false, "name={x\nsnap{\n", "name={x|snap{", ""); /* not an object: a line each */
	scans(false, "{\"a\": 1}} extra\nb\n", "{\"a\": 1}} extra|b", "");
	scans(true, "clone {\n \"name\": \"c\"\n}\nsplit\n", "clone {\n \"name\": \"c\"\n}|split", "");
	scans(true, "{\nsplit\n", "{|split", ""); /* a verb comes first in an action file */
	scans(true, "clone name={\nsplit", "clone name={", "split");
	scans(true, "\n\nsplit\n", "||split", "");
	scans_bytewise(false, "{\n\"a\": \"{\",\n\"b\": [{}]\n}\nx\n", 2);
	scans_bytewise(true, "restore {\"label\":\n\"l\"}\nexpire\n", 2);

	parses(&create, "snap1", NULL, "{\"name\":\"snap1\"}");
	parses(&create, "  snap with spaces  ", NULL, "{\"name\":\"snap with spaces\"}");
	parses(&create, "name=n poolId=p-1 isAutoDelete=true", NULL,
	       "{\"name\":\"n\",\"poolId\":\"p-1\",\"isAutoDelete\":true}");
	parses(&create, "{\"name\": \"j\", \"replicate\": false}", NULL, "{\"name\":\"j\",\"replicate\":false}");
	parses(&create, "name=\"with space\" n=12 f=1.5 z=null", NULL,
	       "{\"name\":\"with space\",\"n\":12,\"f\":1.5,\"z\":null}");
	/* a number json-c would carry as another is refused; a word JSON does not spell as one is text */
	refuses(&create, "name=n size=99999999999999999999", "99999999999999999999 is beyond");
	refuses(&create, "name=n size=-99999999999999999999", "-99999999999999999999 is beyond");
	refuses(&create, "name=n size=1e400", "1e400 is beyond");
	refuses(&create, "name=n size=[1,1e400]", "1e400 is beyond");
	refuses(&create, "{\"name\": \"n\", \"size\": 99999999999999999999}", "99999999999999999999 is beyond");
	refuses(&create, "{\"name\": \"n\", \"size\": NaN}", "NaN is not a JSON number");
	refuses(NULL, "clone name=c size=18446744073709551616", "18446744073709551616 is beyond");
	parses(&create, "name=007 size=18446744073709551615 r=NaN z=-0", NULL,
	       "{\"name\":\"007\",\"size\":18446744073709551615,\"r\":\"NaN\",\"z\":0}");
	parses(&create, "name=x iqns=[\"a b\",\"c\"] o={\"k\":[1,{\"x\":\"}\"}]}", NULL,
	       "{\"name\":\"x\",\"iqns\":[\"a b\",\"c\"],\"o\":{\"k\":[1,{\"x\":\"}\"}]}}");
	parses(NULL, "clone name=c1 snapshot.id=abc snapshot.name=s", "clone",
	       "{\"name\":\"c1\",\"snapshot\":{\"id\":\"abc\",\"name\":\"s\"}}");
	parses(NULL, "clone {\"name\": \"c2\"}", "clone", "{\"name\":\"c2\"}");
	parses(NULL, "split", "split", "{}");
	parses(NULL, "  split  \r", "split", "{}");
	parses(NULL, "restore snapshot.id=s", "restore", "{\"snapshot\":{\"id\":\"s\"}}");
	parses(NULL, "clone name=/a/b?c#d%", "clone", "{\"name\":\"/a/b?c#d%\"}");
	parses(NULL, "clone name=tru", "clone", "{\"name\":\"tru\"}");

	refuses(NULL, "explode", "unknown verb");
	refuses(NULL, "clone", "needs the field name");
	refuses(NULL, "restore", "one of snapshotId|snapshot.id");
	refuses(NULL, "clone {nope", "JSON");
	refuses(NULL, "clone [1]", "expected key=value");
	refuses(NULL, "clone name", "expected key=value");
	refuses(NULL, "split x=1", "takes no arguments");
	refuses(NULL, "clone name=a name.x=1", "already a value");
	refuses(NULL, "clone =v name=a", "bad key");
	refuses(&create, "", "empty");
	refuses(&create, "   ", "empty");
	refuses(&create, "{\"name\": 1", "JSON");
	parses(&create, "[\"name\"]", NULL, "{\"name\":\"[\\\"name\\\"]\"}");
	refuses(&create, "poolId=p", "needs the field name");
	{
		const struct dsfs_action *a;
		json_object *body = NULL;
		char err[128];
		int ret = dsfs_ctl_parse("cl\0ne", 5, NULL, verbs, 3, &a, &body, err, sizeof(err));

		is_int(ret, -EINVAL, "a NUL byte is refused");
	}
	/* UTF-8: what the API's JSON can carry goes through; anything else is refused before sending */
	parses(&create, "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x93\xb8", NULL,
	       "{\"name\":\"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x93\xb8\"}");
	refuses(&create, "bad-\xff\xfe", "not valid UTF-8 (byte 5 is 0xff)");
	refuses(NULL, "clone name=\xc3", "not valid UTF-8");     /* cut short */
	refuses(NULL, "clone name=\xc0\xaf", "not valid UTF-8"); /* overlong '/' */
	refuses(&create, "\xe0\x80\xaf", "not valid UTF-8");     /* overlong, three bytes */
	refuses(&create, "\xed\xa0\x80", "not valid UTF-8");     /* a surrogate */
	refuses(&create, "\xf4\x90\x80\x80", "not valid UTF-8"); /* past U+10FFFF */
	refuses(&create, "\xf5\x80\x80\x80", "not valid UTF-8");
	refuses(&create, "a\xe2\x82z", "not valid UTF-8 (byte 2 is 0xe2)");
	refuses(&create, "{\"name\": \"\x80\"}", "not valid UTF-8");
	is_int(dsfs_ctl_utf8_prefix("ok\xe2\x82", 4), 2, "the valid prefix stops before a cut sequence");
	is_int(dsfs_ctl_utf8_prefix("\xf4\x8f\xbf\xbf", 4), 4, "U+10FFFF is valid");
	is_int(dsfs_ctl_utf8_prefix("\xef\xbf\xbd", 3), 3, "U+FFFD is valid");
	is_int(dsfs_ctl_utf8_prefix("", 0), 0, "empty is valid");
	{
		json_object *o = json_tokener_parse("{\"a\":{\"b\":{\"c\":1}}}");

		ok(dsfs_ctl_get(o, "a.b.c") && json_object_get_int(dsfs_ctl_get(o, "a.b.c")) == 1, "dotted get");
		ok(dsfs_ctl_get(o, "a.x") == NULL, "missing dotted get");
		ok(dsfs_ctl_get(o, "a.b.c.d") == NULL, "dotted get through a value");
		json_object_put(o);
	}
	{
		static const struct {
			const char *in, *shown, *name;
		} cases[] = {
			{ "clone name=db password=hunter2", "clone name=db password=(hidden)",
			  "a secret pair's value" },
			{ "new  adminPassword=\"a b\"   x=1", "new  adminPassword=(hidden)   x=1",
			  "a quoted value, whole; the spaces as written" },
			{ "clone {\"name\": \"x\",\n \"size\": 2}  ", "clone {\"name\": \"x\",\n \"size\": 2}  ",
			  "without a secret: as written, to the byte" },
			{ "{\"name\": \"n\", \"auth\": {\"clientSecret\": \"s\", \"id\": [1, 2]}}",
			  "{\"name\":\"n\",\"auth\":{\"clientSecret\":\"(hidden)\",\"id\":[1,2]}}",
			  "JSON, at any depth" },
			{ "run src={\"token\":\"t\",\"p\":\"q\"} n=2",
			  "run src={\"token\":\"(hidden)\",\"p\":\"q\"} n=2", "JSON a pair holds" },
			{ "run x={broken password=p", "run x={broken password=p",
			  "what is not JSON is shown as written" },
			{ "snap1", "snap1", "a bare value" },
			{ "", "", "nothing" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char *got = dsfs_ctl_shown(cases[i].in, strlen(cases[i].in));

			is_str(got, cases[i].shown, cases[i].name);
			free(got);
		}
		ok(dsfs_secret_name("refresh_token", 13) && dsfs_secret_name("PassPhrase", 10) &&
			   dsfs_secret_name("client_secretX", 13) && !dsfs_secret_name("name", 4) &&
			   !dsfs_secret_name("password", 4),
		   "secret names, by the bytes given");
		ok(dsfs_secret_name("apiKey", 6) && dsfs_secret_name("x-api-key", 9) &&
			   dsfs_secret_name("Authorization", 13),
		   "API keys and authorization headers are secrets");
	}
	return done_testing();
}
