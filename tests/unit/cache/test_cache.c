// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the cache (src/cache/) through the transport seam: the
 * memory bound while a walk reads more than it holds, what an evicted
 * file costs when read again, and version coherence: every content the
 * cache takes in is newer than the last, and with src/fuse/nodes.c no open
 * after one that showed a version shows an older one.
 */
#include <errno.h>

#include "fakeapi.h"
#include "fuse/nodes.h"
#include "tap.h"

#define BOUND (64 * 1024)
#define NVOL 40

struct env {
	struct fake_api *f;
	struct dsfs_session *s;
	struct dsfs_cache *c;
};

static void env_start(struct env *e, size_t max_bytes, int nvol, size_t pad)
{
	char names[8192];

	e->f = fake_new();
	e->s = fake_session(e->f, "storageplugin");
	e->c = dsfs_cache_new(dsfs_dialect_named("storageplugin"), e->s,
			      &(struct dsfs_cache_opts){ .ttl = 60, .page_size = 100, .max_bytes = max_bytes });
	fake_list(e->f, "/server", &(struct fake_list_opts){ .key = "servers" }, fake_items("s", 1, 10));
	fake_list(e->f, "/server/s-000/volume", &(struct fake_list_opts){ .key = "volumes" },
		  fake_items("v", nvol, pad));
	fake_listdir(e->c, "servers/s0/volumes", names, sizeof(names));
	fake_log_clear(e->f);
}

static void env_stop(struct env *e)
{
	dsfs_cache_free(e->c);
	dsfs_session_free(e->s);
	fake_free(e->f);
}

static size_t cached_bytes(struct dsfs_cache *c)
{
	struct dsfs_cache_stats st;

	dsfs_cache_stats(c, &st);
	return st.bytes;
}

static void test_bound(void)
{
	struct dsfs_blob *first = NULL, *again = NULL, *b;
	struct dsfs_cache_stats st;
	size_t most = 0, gets;
	int failed = 0;
	struct env e;
	char path[128];

	env_start(&e, BOUND, NVOL, 2000);
	ok(cached_bytes(e.c) <= BOUND, "a listing of %d objects of 2 KB (80 KB) fits a 64 KiB bound: %zu bytes", NVOL,
	   cached_bytes(e.c));
	for (int i = 0; i < NVOL; i++) {
		snprintf(path, sizeof(path), "servers/s0/volumes/v%d/volume.json", i);
		failed += fake_open(e.c, path, &b) != 0;
		if (i == 0)
			first = dsfs_blob_ref(b);
		dsfs_blob_unref(b);
		if (cached_bytes(e.c) > most)
			most = cached_bytes(e.c);
	}
	is_int(failed, 0, "a walk reading every object file succeeds");
	ok(most <= BOUND, "the cache never held more than the bound during it: at most %zu bytes", most);
	dsfs_cache_stats(e.c, &st);
	ok(st.evictions > 0, "contents were evicted to stay within it (%lu)", st.evictions);
	is_int(fake_count(e.f, "GET", "/server/s-000/volume?", -1), 0, "the listing was not asked again: it stayed");

	fake_log_clear(e.f);
	is_int(fake_open(e.c, "servers/s0/volumes/v0/volume.json", &again), 0, "an evicted file opens again");
	is_int(fake_count(e.f, "GET", "/server/s-000/volume/v-000", -1), 1, "with one GET of its object");
	is_int(fake_log_n(e.f), 1, "and no other request");
	ok(first && again && first->len == again->len && !memcmp(first->data, again->data, again->len),
	   "showing the same bytes as before");
	ok(again->version > first->version, "as a newer version (%llu > %llu)", (unsigned long long)again->version,
	   (unsigned long long)first->version);
	dsfs_blob_unref(again);
	gets = fake_log_n(e.f);
	is_int(fake_open(e.c, "servers/s0/volumes/v0/volume.json", &again), 0, "opening it once more succeeds");
	is_int(fake_log_n(e.f), gets, "from the cache: no request");
	dsfs_blob_unref(again);
	dsfs_blob_unref(first);
	env_stop(&e);

	env_start(&e, 0, NVOL, 2000);
	for (int i = 0; i < NVOL; i++) {
		snprintf(path, sizeof(path), "servers/s0/volumes/v%d/volume.json", i);
		fake_open(e.c, path, &b);
		dsfs_blob_unref(b);
	}
	ok(cached_bytes(e.c) > BOUND && fake_log_n(e.f) == 0,
	   "without a bound the same walk keeps everything (%zu bytes) and asks nothing", cached_bytes(e.c));
	env_stop(&e);
}

/* The volume list with v-000's object carrying size (its content changes with it). */
static void set_size(struct env *e, int size)
{
	json_object *items = fake_items("v", 3, 10);

	json_object_object_add(json_object_array_get_idx(items, 0), "size", json_object_new_int(size));
	fake_list(e->f, "/server/s-000/volume", &(struct fake_list_opts){ .key = "volumes" }, items);
}

/* The "size" of the object a blob shows, or -1. */
static int size_of(const struct dsfs_blob *b)
{
	json_object *o = b ? json_tokener_parse(b->data) : NULL, *v;
	int size = o && json_object_object_get_ex(o, "size", &v) ? json_object_get_int(v) : -1;

	json_object_put(o);
	return size;
}

static void test_versions(void)
{
	struct dsfs_blob *b1, *b2, *b3, *b4, *newest;
	struct dsfs_nodes *nodes = dsfs_nodes_new();
	uint64_t id;
	struct env e;

	env_start(&e, 0, 3, 10);
	set_size(&e, 1);
	dsfs_cache_invalidate(e.c);
	fake_open(e.c, "servers/s0/volumes/v0/volume.json", &b1);
	is_int(size_of(b1), 1, "an open shows the object as listed");
	fake_log_clear(e.f);
	fake_open(e.c, "servers/s0/volumes/v0/volume.json", &b2);
	ok(b2 == b1 && fake_log_n(e.f) == 0, "a second open within cache_ttl shows the same version, asking nothing");
	dsfs_blob_unref(b2);

	set_size(&e, 2);
	dsfs_cache_invalidate(e.c);
	fake_open(e.c, "servers/s0/volumes/v0/volume.json", &b2);
	is_int(size_of(b2), 2, "once stale, an open shows the server's change");
	ok(b2->version > b1->version, "as a newer version than the one shown before");

	dsfs_cache_invalidate(e.c);
	fake_open(e.c, "servers/s0/volumes/v0/volume.json", &b3);
	ok(b3->version > b2->version && b3->len == b2->len && !memcmp(b3->data, b2->data, b3->len),
	   "fetched again unchanged, it is a newer version of the same bytes");

	/* the kernel's pages of the file: what src/fuse/nodes.c lets each open do */
	id = dsfs_nodes_lookup(nodes, DSFS_NODES_ROOT, "volume.json");
	is_int(dsfs_nodes_opened(nodes, id, b1, true), DSFS_PAGES_STORE,
	       "the first open stores its content in the pages");
	is_int(dsfs_nodes_opened(nodes, id, b2, true), DSFS_PAGES_STORE, "an open of a newer version stores it");
	is_int(dsfs_nodes_opened(nodes, id, b1, true), DSFS_PAGES_DROP,
	       "an open handing out an older version (fetched before it) makes the kernel drop its pages");
	newest = dsfs_nodes_newest(nodes, id);
	ok(newest == b2, "and reads are served the newest version shown, never the older one");
	dsfs_blob_unref(newest);
	is_int(dsfs_nodes_opened(nodes, id, b3, true), DSFS_PAGES_STORE,
	       "after a drop the pages hold nothing known: the next open stores again");
	fake_open(e.c, "servers/s0/volumes/v0/volume.json", &b4);
	is_int(dsfs_nodes_opened(nodes, id, b4, true), DSFS_PAGES_KEEP,
	       "an open of what the pages hold already keeps them");
	for (int i = 0; i < 5; i++)
		dsfs_nodes_closed(nodes, id);
	newest = dsfs_nodes_newest(nodes, id);
	ok(!newest, "once every open is closed, no content is held for the file");
	dsfs_nodes_free(nodes);
	dsfs_blob_unref(b1);
	dsfs_blob_unref(b2);
	dsfs_blob_unref(b3);
	dsfs_blob_unref(b4);
	env_stop(&e);
}

int main(void)
{
	test_bound();
	test_versions();
	return done_testing();
}
