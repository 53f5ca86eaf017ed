// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for paging (src/cache/listing.c within src/cache/pages.c's guard)
 * through the transport seam: which page ends a listing (a short one, an
 * empty one, one reaching the stated total), the bounds a server that
 * does not page properly meets, and the parameters each dialect sends.
 */
#include <errno.h>

#include "fakeapi.h"
#include "tap.h"

struct env {
	struct fake_api *f;
	struct dsfs_session *s;
	struct dsfs_cache *c;
	char names[4096];
	char why[600];
};

static void env_start(struct env *e, const char *dialect, unsigned page_size, size_t max_bytes)
{
	memset(e, 0, sizeof(*e));
	e->f = fake_new();
	e->s = fake_session(e->f, dialect);
	e->c = dsfs_cache_new(dsfs_dialect_named(dialect), e->s,
			      &(struct dsfs_cache_opts){ .ttl = 60, .page_size = page_size, .max_bytes = max_bytes });
	dsfs_session_login(e->s);
	fake_log_clear(e->f);
	dsfs_err_clear();
}

static void env_stop(struct env *e)
{
	dsfs_cache_free(e->c);
	dsfs_session_free(e->s);
	fake_free(e->f);
}

/* Lists path; its -errno, with the entries in e->names and the reason of a failure in e->why. */
static int list(struct env *e, const char *path)
{
	int ret = fake_listdir(e->c, path, e->names, sizeof(e->names));

	if (ret && !dsfs_err_describe(e->why, sizeof(e->why)))
		e->why[0] = '\0';
	return ret;
}

/* True when names (' '-separated) holds every one of want's, and only those of its prefix. */
static bool lists(const char *names, const char *prefix, int n)
{
	char copy[4096], *p, *save = NULL;
	int seen = 0;

	snprintf(copy, sizeof(copy), "%s", names);
	for (p = strtok_r(copy, " ", &save); p; p = strtok_r(NULL, " ", &save))
		seen += !strncmp(p, prefix, strlen(prefix)) && p[strlen(prefix)] >= '0' && p[strlen(prefix)] <= '9';
	return seen == n;
}

static void test_storageplugin_pages(void)
{
	struct env e;

	env_start(&e, "storageplugin", 2, 0);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers" }, fake_items("s", 5, 10));
	is_int(list(&e, "servers"), 0, "a list of 5 in pages of 2 is listed");
	ok(lists(e.names, "s", 5), "with all 5 entries: %s", e.names);
	is_int(fake_count(e.f, "GET", "/server?", -1), 3, "in 3 GETs: the short third page ends it");
	ok(!strcmp(fake_log_at(e.f, 0)->path, "/server?limit=2&start=0") &&
		   !strcmp(fake_log_at(e.f, 2)->path, "/server?limit=2&start=4"),
	   "asked with limit and start, start moving by what came");
	is_int(list(&e, "servers"), 0, "listing it again within cache_ttl succeeds");
	is_int(fake_count(e.f, "GET", "/server?", -1), 3, "and asks nothing");
	env_stop(&e);

	env_start(&e, "storageplugin", 2, 0);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers" }, fake_items("s", 4, 10));
	is_int(list(&e, "servers"), 0, "a list of 4 in pages of 2 is listed");
	ok(fake_count(e.f, "GET", "/server?", -1) == 3 && lists(e.names, "s", 4),
	   "the empty third page ends it, with 4 entries");
	env_stop(&e);

	env_start(&e, "storageplugin", 2, 0);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers" }, json_object_new_array());
	is_int(list(&e, "servers"), 0, "an empty list is listed");
	is_int(fake_count(e.f, "GET", "/server?", -1), 1, "with one GET");
	env_stop(&e);

	/* pages capped below page_size: a short page is short only against the largest seen */
	env_start(&e, "storageplugin", 10, 0);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers", .cap = 3 }, fake_items("s", 10, 10));
	is_int(list(&e, "servers"), 0, "a server capping pages at 3 of the 10 asked is listed");
	ok(fake_count(e.f, "GET", "/server?", -1) == 4 && lists(e.names, "s", 10),
	   "to the end (pages of 3, 3, 3, 1): 4 GETs, 10 entries");
	env_stop(&e);
}

static void test_broken_paging_is_bounded(void)
{
	struct env e;

	env_start(&e, "storageplugin", 2, 0);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers", .ignore_start = true },
		  fake_items("s", 5, 10));
	is_int(list(&e, "servers"), -EIO, "a server that ignores start (pages add nothing) is EIO");
	is_int(fake_count(e.f, "GET", "/server?", -1), 2, "after 2 GETs: the first page that adds nothing");
	ok(strstr(e.why, "nothing new") && strstr(e.why, "/server?limit=2&start=2"),
	   "the reason names the page and says why: %s", e.why);
	env_stop(&e);

	/* a listing that would outgrow cache_size: host groups are not fetched alone, so they cost in full */
	env_start(&e, "storageplugin", 5, 8192);
	fake_list(e.f, "/server", &(struct fake_list_opts){ .key = "servers" }, fake_items("s", 1, 10));
	fake_list(e.f, "/server/s-000/hostgroup", &(struct fake_list_opts){ .key = "groups" },
		  fake_items("g", 40, 300));
	is_int(list(&e, "servers/s0/hostgroups"), -EIO, "a listing outgrowing cache_size is EIO");
	ok(fake_count(e.f, "GET", "/server/s-000/hostgroup?", -1) < 8 && strstr(e.why, "cache_size"),
	   "stopped before its end (%zu GETs of 8), saying why: %s",
	   fake_count(e.f, "GET", "/server/s-000/hostgroup?", -1), e.why);
	env_stop(&e);
}

static void test_total(void)
{
	static const char hosts[] = "/api/v1/host-initiators";
	struct env e;

	env_start(&e, "dscc", 2, 0);
	fake_list(e.f, hosts, &(struct fake_list_opts){ .key = "items", .total_field = "total" },
		  fake_items("h", 4, 10));
	is_int(list(&e, "hosts"), 0, "dscc: a list of 4 (total 4) in pages of 2 is listed");
	ok(fake_count(e.f, "GET", hosts, -1) == 2 && lists(e.names, "h", 4),
	   "in 2 GETs: reaching total ends it, no empty page asked");
	ok(!strcmp(fake_log_at(e.f, 1)->path, "/api/v1/host-initiators?limit=2&offset=2"),
	   "asked with limit and offset: %s", fake_log_at(e.f, 1)->path);
	env_stop(&e);

	env_start(&e, "dscc", 10, 0);
	fake_list(e.f, hosts, &(struct fake_list_opts){ .key = "items", .total_field = "total" },
		  fake_items("h", 3, 10));
	is_int(list(&e, "hosts"), 0, "dscc: a first page holding the whole total is listed");
	is_int(fake_count(e.f, "GET", hosts, -1), 1, "in 1 GET");
	env_stop(&e);

	env_start(&e, "dscc", 2, 0);
	fake_list(e.f, hosts, &(struct fake_list_opts){ .key = "items", .total_field = "total", .total = 3 },
		  fake_items("h", 6, 10));
	is_int(list(&e, "hosts"), -EIO, "items outnumbering the stated total are EIO");
	ok(strstr(e.why, "total is 3"), "saying so: %s", e.why);
	env_stop(&e);

	env_start(&e, "dscc", 2, 0);
	fake_list(e.f, hosts, &(struct fake_list_opts){ .key = "items", .total_field = "total", .total = 50 },
		  fake_items("h", 3, 10));
	is_int(list(&e, "hosts"), 0, "a total larger than the items: the empty page still ends it");
	ok(fake_count(e.f, "GET", hosts, -1) == 3 && lists(e.names, "h", 3), "after 3 GETs, with the 3 items");
	env_stop(&e);
}

/* items, with each one's "name" also under field (a dialect's name field); returns items. */
static json_object *named(json_object *items, const char *field)
{
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *o = json_object_array_get_idx(items, i), *v;

		json_object_object_get_ex(o, "name", &v);
		json_object_object_add(o, field, json_object_get(v));
	}
	return items;
}

static void test_unpaged_and_filtered_urls(void)
{
	struct env e;
	json_object *backups;

	env_start(&e, "cloudsync", 2, 0);
	fake_list(e.f, "/data-brokers", NULL, fake_items("b", 5, 10));
	is_int(list(&e, "data-brokers"), 0, "cloudsync: a list that comes whole is listed");
	ok(fake_count(e.f, "GET", "/data-brokers", -1) == 1 && !strcmp(fake_log_at(e.f, 0)->path, "/data-brokers") &&
		   lists(e.names, "b", 5),
	   "in one GET without paging parameters, with all 5 items");
	env_stop(&e);

	/* a collection URL with a query of its own, and an item of another parent in the answer */
	env_start(&e, "backupdr", 2, 0);
	fake_list(e.f, "/application", &(struct fake_list_opts){ .key = "items" },
		  named(fake_items("a", 1, 10), "appname"));
	backups = named(fake_items("k", 3, 10), "backupname");
	for (int i = 0; i < 3; i++)
		json_object_object_add(json_object_array_get_idx(backups, (size_t)i), "appid",
				       json_object_new_string(i == 1 ? "a-999" : "a-000"));
	fake_list(e.f, "/backup", &(struct fake_list_opts){ .key = "items" }, backups);
	is_int(list(&e, "applications/a0/backups"), 0, "backupdr: a filtered collection is listed");
	ok(!strcmp(fake_find(e.f, "GET", "/backup")->path, "/backup?filter=appid:%3Da-000&limit=2&offset=0"),
	   "its paging parameters follow its own query: %s", fake_find(e.f, "GET", "/backup")->path);
	ok(strstr(e.names, "k0") && strstr(e.names, "k2") && !strstr(e.names, "k1"),
	   "an item of another application is left out: %s", e.names);
	env_stop(&e);
}

int main(void)
{
	test_storageplugin_pages();
	test_broken_paging_is_bounded();
	test_total();
	test_unpaged_and_filtered_urls();
	return done_testing();
}
