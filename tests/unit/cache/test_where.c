// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for .where (src/cache/query.c) through the transport seam:
 * the filter each dialect asks its list for, per condition (or the plain
 * listing, where its filter cannot say it), and that what is shown meets
 * the condition whatever the server answered: the fake ignores filters, as
 * a server that does not know one may.
 */
#include <errno.h>

#include "fakeapi.h"
#include "tap.h"

/* One .where directory read on a fresh cache, and what it must ask and show. */
struct case_ {
	const char *dialect;
	const char *dir;   /* the collection in the tree */
	const char *route; /* its list's path */
	const char *key;   /* its list's key */
	const char *cond;  /* the .where entry */
	const char *asked; /* the first GET of route, whole */
	const char *shows; /* the entries shown, ' '-separated */
};

// clang-format off
static const struct case_ cases[] = {
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "name=h1",
	  "/api/v1/host-initiators?filter=name%20eq%20%27h1%27&limit=50&offset=0", "h1" },
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "name!=h1",
	  "/api/v1/host-initiators?filter=name%20ne%20%27h1%27&limit=50&offset=0", "h0 h2 h3" },
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "name>=h2",
	  "/api/v1/host-initiators?filter=name%20ge%20%27h2%27&limit=50&offset=0", "h2 h3" },
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "name=*2",
	  "/api/v1/host-initiators?filter=%272%27%20in%20name&limit=50&offset=0", "h2" },
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "name=it's",
	  "/api/v1/host-initiators?filter=name%20eq%20%27it%27%27s%27&limit=50&offset=0", "" },
	/* a number's literal depends on the field's type, unknown before listing: the listing answers */
	{ "dscc", "hosts", "/api/v1/host-initiators", "items", "size>=20",
	  "/api/v1/host-initiators?limit=50&offset=0", "h2 h3" },
	{ "backupdr", "applications", "/application", "items", "appname=h1",
	  "/application?filter=appname%3A%3Dh1&limit=50&offset=0", "h1" },
	{ "backupdr", "applications", "/application", "items", "appname<=h1",
	  "/application?filter=appname%3A%3C%3Dh1&limit=50&offset=0", "h0 h1" },
	{ "backupdr", "applications", "/application", "items", "appname=h*",
	  "/application?filter=appname%3A%3D%7Ch&limit=50&offset=0", "h0 h1 h2 h3" },
	/* no "not equal" in its filters, and a value that would read as another operator: listed */
	{ "backupdr", "applications", "/application", "items", "appname!=h1",
	  "/application?limit=50&offset=0", "h0 h2 h3" },
	{ "backupdr", "applications", "/application", "items", "appname==h1",
	  "/application?limit=50&offset=0", "" },
	{ "storageplugin", "servers", "/server", "servers", "name=h1", "/server?limit=50&start=0", "h1" },
	{ "cloudsync", "data-brokers", "/data-brokers", NULL, "name=h1", "/data-brokers", "h1" },
};
// clang-format on

/* A list of 4 objects h0..h3 (ids h-000..), with a size of 0, 10, 20, 30 and the name also as appname. */
static json_object *items(void)
{
	json_object *arr = fake_items("h", 4, 1), *v;

	for (size_t i = 0; i < 4; i++) {
		json_object *o = json_object_array_get_idx(arr, i);

		json_object_object_add(o, "size", json_object_new_int((int)i * 10));
		json_object_object_get_ex(o, "name", &v);
		json_object_object_add(o, "appname", json_object_get(v));
	}
	return arr;
}

static void run(const struct case_ *k)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, k->dialect);
	struct dsfs_cache *c = dsfs_cache_new(dsfs_dialect_named(k->dialect), s,
					      &(struct dsfs_cache_opts){ .ttl = 60, .page_size = 50 });
	const struct fake_req *first;
	char path[256], names[1024];
	int ret;

	fake_list(f, k->route, &(struct fake_list_opts){ .key = k->key }, items());
	snprintf(path, sizeof(path), "%s/.where/%s", k->dir, k->cond);
	ret = fake_listdir(c, path, names, sizeof(names));
	first = fake_find(f, "GET", k->route);
	ok(ret == 0 && first && !strcmp(first->path, k->asked), "%s: %s/.where/%s asks %s", k->dialect, k->dir, k->cond,
	   first ? first->path : "nothing");
	if (ret)
		printf("#   listing it failed: %s\n", strerror(-ret));
	ok(ret == 0 && !strcmp(names, k->shows), "%s: %s shows \"%s\" (got \"%s\")", k->dialect, k->cond, k->shows,
	   names);
	dsfs_cache_free(c);
	dsfs_session_free(s);
	fake_free(f);
}

/* A condition on the field that scopes a collection is never asked: a server may OR two filters of one field. */
static void test_scope_field(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "backupdr");
	struct dsfs_cache *c = dsfs_cache_new(dsfs_dialect_named("backupdr"), s,
					      &(struct dsfs_cache_opts){ .ttl = 60, .page_size = 50 });
	json_object *backups = items();
	char names[1024];

	for (size_t i = 0; i < 4; i++)
		json_object_object_add(json_object_array_get_idx(backups, i), "appid", json_object_new_string("h-000"));
	fake_list(f, "/application", &(struct fake_list_opts){ .key = "items" }, items());
	fake_list(f, "/backup", &(struct fake_list_opts){ .key = "items" }, backups);
	is_int(fake_listdir(c, "applications/h0/backups/.where/appid=h-000", names, sizeof(names)), 0,
	       "backupdr: a condition on a backup's appid is answered");
	ok(fake_count(f, "GET", "/backup?filter=appid:%3Dh-000&limit", -1) == fake_count(f, "GET", "/backup", -1),
	   "by the collection's own list, with no second appid filter: %s", fake_find(f, "GET", "/backup")->path);
	dsfs_cache_free(c);
	dsfs_session_free(s);
	fake_free(f);
}

/* A fresh listing answers .where itself: nothing is asked. */
static void test_fresh_listing(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "dscc");
	struct dsfs_cache *c =
		dsfs_cache_new(dsfs_dialect_named("dscc"), s, &(struct dsfs_cache_opts){ .ttl = 60, .page_size = 50 });
	char names[1024];
	size_t asked;

	fake_list(f, "/api/v1/host-initiators", &(struct fake_list_opts){ .key = "items" }, items());
	fake_listdir(c, "hosts", names, sizeof(names));
	asked = fake_log_n(f);
	is_int(fake_listdir(c, "hosts/.where/name=h3", names, sizeof(names)), 0, "dscc: .where of a fresh listing");
	ok(fake_log_n(f) == asked && !strcmp(names, "h3"), "is answered from it, asking nothing: %s", names);
	is_int(fake_listdir(c, "hosts/.where/colour=red", names, sizeof(names)), -EINVAL,
	       "a condition on a field no object has is EINVAL");
	dsfs_cache_free(c);
	dsfs_session_free(s);
	fake_free(f);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run(&cases[i]);
	test_scope_field();
	test_fresh_listing();
	return done_testing();
}
