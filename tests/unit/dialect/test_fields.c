// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the fields each dialect's commands take (the files of src/dialect/)
 * and how src/format/ctl.c types a control file's values by them: a value is sent
 * with the JSON type the API gives its field, a field a command does not
 * take is refused before anything is sent, and lists are written a,b or
 * [a,b].
 */
#include <errno.h>
#include <string.h>

#include "format/ctl.h"
#include "dialect/dialect.h"
#include "tap.h"

/* The kind reached from d's root through the directory names of path ("servers/volumes"). */
static const struct dsfs_kind *kind_at(const char *dialect, const char *path)
{
	const struct dsfs_dialect *d = dsfs_dialect_named(dialect);
	const struct dsfs_kind *k = d ? d->root : NULL;
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *part = strtok_r(buf, "/", &save); k && part; part = strtok_r(NULL, "/", &save)) {
		int i = dsfs_kind_child(k, part);

		k = i < 0 ? NULL : k->children[i];
	}
	return k;
}

/* Parses line for a kind's `new` (verbs false) or `action` file; the body as JSON text, or the error. */
static int parse(const struct dsfs_kind *k, bool verbs, const char *line, char *out, size_t len)
{
	const struct dsfs_action *a;
	json_object *body = NULL;
	int ret;

	out[0] = '\0';
	if (!k)
		return snprintf(out, len, "no such kind"), -ENOENT;
	ret = dsfs_ctl_parse(line, strlen(line), verbs ? NULL : k->create, verbs ? k->actions : NULL,
			     verbs ? k->nactions : 0, &a, &body, out, len);
	if (ret == 0)
		snprintf(out, len, "%s", json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	json_object_put(body);
	return ret;
}

static void sends(const struct dsfs_kind *k, bool verbs, const char *line, const char *want)
{
	char got[512];
	int ret = parse(k, verbs, line, got, sizeof(got));

	if (!ok(ret == 0, "'%s' parses", line))
		printf("#   error: %s\n", got);
	else
		is_str(got, want, line);
}

static void refuses(const struct dsfs_kind *k, bool verbs, const char *line, const char *why)
{
	char got[512];
	int ret = parse(k, verbs, line, got, sizeof(got));

	is_int(ret, -EINVAL, line);
	ok(strstr(got, why) != NULL, "reason says '%s': %s", why, got);
}

/* True when name is one of a's fields, or lies in an object of them taken as written. */
static bool declared(const struct dsfs_action *a, const char *name)
{
	for (const struct dsfs_field *f = a->fields; f && f->name; f++) {
		size_t n = strlen(f->name);

		if (!strcmp(f->name, name) ||
		    (f->type == DSFS_T_OBJECT && !strncmp(f->name, name, n) && name[n] == '.'))
			return true;
	}
	return false;
}

static int nchecked;

/* Every command of every kind below k declares the fields it takes, its required ones and refs among them. */
static void check_action(const char *dialect, const struct dsfs_kind *k, const struct dsfs_action *a)
{
	char what[160];

	snprintf(what, sizeof(what), "%s %s %s", dialect, k->dir_name ? k->dir_name : "root",
		 a->verb ? a->verb : "new");
	nchecked++;
	if (a->no_body)
		return;
	if (!ok(a->fields != NULL, "%s declares its fields", what))
		return;
	for (const char *const *r = a->required; r && *r; r++) {
		char alt[256], *save = NULL;

		snprintf(alt, sizeof(alt), "%s", *r);
		for (char *t = strtok_r(alt, "|", &save); t; t = strtok_r(NULL, "|", &save))
			ok(declared(a, t), "%s: required %s is declared", what, t);
	}
	for (const struct dsfs_ref *r = a->refs; r && r->field; r++)
		ok(declared(a, r->field), "%s: reference %s is declared", what, r->field);
	if (a->bare_field)
		ok(declared(a, a->bare_field), "%s: bare field %s is declared", what, a->bare_field);
	if (a->defaults) {
		json_object *d = json_tokener_parse(a->defaults);

		json_object_object_foreach(d, key, val) {
			(void)val;
			ok(declared(a, key), "%s: default %s is declared", what, key);
		}
		json_object_put(d);
	}
}

static void check_kind(const char *dialect, const struct dsfs_kind *k, int depth)
{
	if (!k || depth > 8)
		return;
	for (size_t i = 0; i < k->nactions; i++)
		check_action(dialect, k, &k->actions[i]);
	if (k->create)
		check_action(dialect, k, k->create);
	for (size_t i = 0; i < k->nchildren; i++)
		check_kind(dialect, k->children[i], depth + 1);
	for (const struct dsfs_kind *const *o = k->also; o && *o; o++)
		check_kind(dialect, *o, depth + 1);
}

int main(void)
{
	const struct dsfs_kind *backups = kind_at("backupdr", "applications/backups");
	const struct dsfs_kind *sp_volumes = kind_at("storageplugin", "servers/volumes");
	const struct dsfs_kind *sp_hosts = kind_at("storageplugin", "servers/hosts");
	const struct dsfs_kind *sp_cgs = kind_at("storageplugin", "servers/consistencygroups");
	const struct dsfs_kind *dscc_volumes = kind_at("dscc", "servers/volumes");

	/* every dialect's tables */
	for (size_t i = 0; dsfs_dialects[i]; i++)
		check_kind(dsfs_dialects[i]->name, dsfs_dialects[i]->root, 0);
	ok(nchecked > 30, "every dialect's commands were checked (%d)", nchecked);

	/* Backup and DR ids are strings, whatever their spelling */
	sends(backups, false, "policy.id=4006", "{\"policy\":{\"id\":\"4006\"}}");
	sends(backups, false, "{\"policy\": {\"id\": 4006}, \"label\": \"n\"}",
	      "{\"policy\":{\"id\":\"4006\"},\"label\":\"n\"}");
	sends(backups, false, "policy={\"id\":4006} label=1.50", "{\"policy\":{\"id\":\"4006\"},\"label\":\"1.50\"}");
	sends(backups, false, "policy.id=\"4006\" label=true", "{\"policy\":{\"id\":\"4006\"},\"label\":\"true\"}");
	sends(backups, false, "policy.id=4006 label=null", "{\"policy\":{\"id\":\"4006\"},\"label\":null}");
	refuses(backups, false, "{\"policy\": {\"id\": 4006.5}}", "policy.id takes a string");
	refuses(backups, false, "{\"policy\": {\"id\": 99999999999999999999}}", "cannot be sent as written");
	sends(backups, false, "policy.id=[1]", "{\"policy\":{\"id\":\"[1]\"}}"); /* text is a string's */
	refuses(backups, false, "policy=4006", "unknown field policy; did you mean policy.id?");
	sends(kind_at("backupdr", "applications/backups"), true, "mount host.id=4101", "{\"host\":{\"id\":\"4101\"}}");

	/* integers and booleans where the API says so */
	sends(sp_hosts, true, "map lunId=12 volumeId=7 lunNumber=3",
	      "{\"lunId\":\"12\",\"volumeId\":\"7\",\"lunNumber\":3}");
	sends(sp_hosts, true, "map {\"lunId\": 12, \"lunNumber\": \"3\"}", "{\"lunId\":\"12\",\"lunNumber\":3}");
	refuses(sp_hosts, true, "map lunId=l lunNumber=three", "lunNumber takes an integer, not 'three'");
	refuses(sp_hosts, true, "map lunId=l lunNumber=1.5", "lunNumber takes an integer");
	refuses(sp_hosts, true, "map lunId=l lunNumber=99999999999999999999", "lunNumber takes an integer");
	refuses(sp_hosts, true, "map {\"lunId\": \"l\", \"lunNumber\": 99999999999999999999}",
		"cannot be sent as written");
	sends(sp_cgs, true, "take-snapshot prefix=007 replicate=false", "{\"prefix\":\"007\",\"replicate\":false}");
	refuses(sp_cgs, true, "take-snapshot replicate=yes", "replicate takes true or false");

	/* lists: a,b or [a,b] or JSON */
	sends(dscc_volumes, true, "export hostGroupIds=hg-1,hg-2", "{\"hostGroupIds\":[\"hg-1\",\"hg-2\"]}");
	sends(dscc_volumes, true, "export hostGroupIds=[hg-1,hg-2]", "{\"hostGroupIds\":[\"hg-1\",\"hg-2\"]}");
	sends(dscc_volumes, true, "export hostGroupIds=hg-1", "{\"hostGroupIds\":[\"hg-1\"]}");
	sends(dscc_volumes, true, "export hostGroupIds=[\"a,b\",\"c\"]", "{\"hostGroupIds\":[\"a,b\",\"c\"]}");
	sends(dscc_volumes, true, "export {\"hostGroupIds\": [\"a\", 12]}", "{\"hostGroupIds\":[\"a\",\"12\"]}");
	sends(dscc_volumes, true, "export hostGroupIds=[]", "{\"hostGroupIds\":[]}");
	refuses(dscc_volumes, true, "export hostGroupIds=a,,b", "empty element");
	refuses(dscc_volumes, true, "export hostGroupIds=[a,b", "no closing");
	refuses(dscc_volumes, true, "export {\"hostGroupIds\": [\"a\", {}]}", "list of strings");
	sends(sp_volumes, true, "restore-to-new sourceSnapshotId=s targetVolumeName=7 targetPoolIds=p1,p2",
	      "{\"sourceSnapshotId\":\"s\",\"targetVolumeName\":\"7\",\"targetPoolIds\":[\"p1\",\"p2\"]}");

	/* a field a command does not take is refused, naming the nearest */
	refuses(sp_volumes, true, "clone name=db-test snapshot.idd=nightly",
		"unknown field snapshot.idd; did you mean snapshot.id?");
	refuses(sp_volumes, true, "clone {\"name\": \"x\", \"snapshot\": {\"idd\": \"n\"}}",
		"did you mean snapshot.id?");
	refuses(sp_volumes, true, "clone name=x zzzzzzzzzz=1", "unknown field zzzzzzzzzz; 'clone' takes: snapshot.id,");
	refuses(sp_volumes, true, "clone name=x snapshot=nightly", "unknown field snapshot;");
	refuses(kind_at("storageplugin", "servers/luns"), true, "online force=true", "'online' takes no fields");
	refuses(sp_hosts, false, "name=h iqn=x", "did you mean iqns?");
	/* an object the API leaves open is taken as written */
	sends(kind_at("cloudsync", "relationships"), false,
	      "{\"source\": {\"protocol\": \"nfs\", \"nfs\": {\"port\": 2049}}, \"target\": {}, \"dataBroker\": \"b1\"}",
	      "{\"source\":{\"protocol\":\"nfs\",\"nfs\":{\"port\":2049}},\"target\":{},\"dataBroker\":\"b1\"}");
	sends(kind_at("cloudsync", "relationships"), false, "source.nfs.port=2049 target.s3.bucket=b group=7",
	      "{\"source\":{\"nfs\":{\"port\":2049}},\"target\":{\"s3\":{\"bucket\":\"b\"}},\"group\":\"7\"}");
	refuses(kind_at("cloudsync", "relationships"), false, "source={} target={} dataBrokr=b",
		"did you mean dataBroker?");
	return done_testing();
}
