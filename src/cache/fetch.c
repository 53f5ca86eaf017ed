// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fetching one file of a resource: a GET of the object or of a file's own
 * URL (a paged list, a binary answer, or a dialect's own fetch), a view
 * derived from the object, or, where no GET of one exists, the listing
 * again (cache/listing.c). The request runs with the lock dropped; a
 * fetch in flight is marked on its slot, and other threads wanting the
 * same file wait for it instead of sending their own.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"
#include "format/render.h"

struct merge {
	json_object *all;
};

static int merge_page(void *ctx, json_object *arr)
{
	struct merge *m = ctx;
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++)
		if (json_object_array_add(m->all, json_object_get(json_object_array_get_idx(arr, i))))
			return -ENOMEM;
	return 0;
}

/* True when a walk through collection coll's current listing has been noticed (see note_walk). */
bool cache_walked(const struct dsfs_node *coll)
{
	if (!coll->is_coll || coll->walk_at != coll->listed_at)
		return false;
	if (coll->walk_dirs >= WALK_THRESHOLD)
		return true;
	for (int i = 0; i < WALK_FILES; i++)
		if (coll->walk_files[i] >= WALK_THRESHOLD)
			return true;
	return false;
}

/* The name object o of kind k has, as a listing would read it ("" when none), or NULL when k names none. */
static char *name_of(const struct dsfs_kind *k, json_object *o)
{
	char *name;

	if (!k->name_field)
		return NULL;
	name = cache_kind_name(k, o);
	return name ? name : strdup("");
}

/* Fetches one file of resource r. Called with the lock held; drops it meanwhile. */
int cache_fetch_slot(struct dsfs_cache *c, struct dsfs_node *r, int i)
{
	const struct dsfs_file_desc *f = &r->kind->files[i];
	bool anonymous = f->flags & DSFS_FILE_ANONYMOUS;
	struct dsfs_blob *blob = NULL, *obj_blob = NULL;
	struct slot *s = &r->slots[i];
	json_object *o = NULL;
	bool relisted = false;
	char *url, *got_name = NULL;
	time_t updated = 0; /* the object's update time, for the object file (slot 0) */
	double at;
	int ret;

again:
	while (s->fetching) {
		dsfs_cond_wait(&c->done, &c->lock);
		if (!s->fetching && s->blob && dsfs_clock_now() - s->at < 1.0 + c->o.ttl)
			return 0;
	}
	if (f->derive && i > 0 && r->slots[0].blob && direct_fresh(c, r->slots[0].at)) {
		/* A view of the object: made from the copy just fetched, no request. */
		json_object *obj = json_tokener_parse(r->slots[0].blob->data);
		struct dsfs_blob *b = obj ? f->derive(obj, c->dialect) : NULL;

		json_object_put(obj);
		if (!b)
			return obj ? -ENOMEM : -EIO;
		cache_set_slot(c, r, i, b, r->slots[0].at, 0);
		return 0;
	}
	if (!relisted && !f->subpath &&
	    (!r->kind->get_one || (r->parent && cache_walked(r->parent) && !fresh(c, r->parent->listed_at)))) {
		/*
		 * No GET of one: the listing is the only source. Or a walker is going
		 * through the listing after it went stale: listing it again costs a
		 * page per thousand resources, a GET each costs one per resource.
		 * (Content dropped for memory from a fresh listing is a GET: listing
		 * again would bring back what the bound just dropped.)
		 */
		struct dsfs_node *coll = r->parent;

		if (!coll)
			return -ENOENT;
		cache_node_ref(coll);
		coll->listed_at = 0;
		ret = cache_ensure_listing(c, coll, true);
		cache_node_unref(c, coll);
		if (ret == 0 && !r->attached)
			ret = -ENOENT;
		if (ret || s->blob || !r->kind->get_one)
			return ret;
		/* the listing came back without this object (larger than the bound holds): a GET of it */
		relisted = true;
		goto again;
	}

	s->fetching = true;
	cache_node_ref(r);
	c->misses++;
	at = dsfs_clock_now();
	dsfs_unlock(&c->lock);

	url = malloc(strlen(r->url) + (f->subpath ? strlen(f->subpath) : 0) + 1);
	if (!url) {
		ret = -ENOMEM;
	} else {
		strcpy(url, r->url);
		if (f->subpath)
			strcat(url, f->subpath);
		if (f->list_key) {
			struct merge m = { .all = json_object_new_array() };

			ret = m.all ? cache_each_page(c, url, NULL, f->list_key, NULL, 0, anonymous, merge_page, &m)
				    : -ENOMEM;
			o = json_object_new_object();
			if (ret == 0 && (!o || json_object_object_add(o, f->list_key, m.all)))
				ret = -ENOMEM;
			else if (ret == 0)
				m.all = NULL;
			json_object_put(m.all);
		} else if (f->fetch) {
			ret = f->fetch(c->session, url, &o);
			at = dsfs_clock_now(); /* an answer that took its time is as old as its arrival */
		} else if (f->flags & DSFS_FILE_BINARY) {
			struct dsfs_request req = { .method = "GET", .path = url, .accept = f->accept };
			struct dsfs_response resp = { 0 };

			ret = dsfs_session_call(c->session, &req, &resp, anonymous);
			if (ret == 0 && !(blob = dsfs_blob_new(resp.body ? resp.body : "", resp.len)))
				ret = -ENOMEM;
			dsfs_response_clear(&resp);
		} else {
			ret = cache_get_json(c, url, anonymous, &o, NULL);
			if (ret == 0 && !f->subpath && !json_object_is_type(o, json_type_object))
				ret = cache_protocol_error(url, "answer is not a JSON object");
			if (ret == 0 && !f->subpath) {
				got_name = name_of(r->kind, o);
				for (const char *const *g = r->kind->get_only; g && *g; g++)
					json_object_object_del(o, *g); /* the file has the listing's shape */
			}
		}
		if (ret == 0 && !f->subpath && !f->list_key && o)
			updated = cache_updated_of(r->kind, o);
		if (ret == 0 && f->derive) {
			/* The object came with it: keep it as the object file too. */
			obj_blob = dsfs_render_json(o);
			blob = f->derive(o, c->dialect);
			if (!blob || !obj_blob)
				ret = -ENOMEM;
		}
		if (ret == 0 && !blob && !(blob = dsfs_render_json(o)))
			ret = -ENOMEM;
	}
	json_object_put(o);
	free(url);

	dsfs_lock(&c->lock);
	s->fetching = false;
	if (ret == 0 && got_name && r->name && strcmp(got_name, r->name)) {
		/*
		 * The object no longer has the name its entry was made from: the
		 * listing is stale, and the entry may now be another object's.
		 * The object is kept (it is this node's); the listing is taken
		 * again, and the caller resolves its path again.
		 */
		struct dsfs_node *coll = r->parent;

		cache_set_slot(c, r, i, blob, at, f->derive ? 0 : updated);
		blob = NULL;
		if (coll) {
			cache_node_ref(coll);
			coll->listed_at = 0;
			ret = cache_ensure_listing(c, coll, true);
			cache_node_unref(c, coll);
		}
		ret = ret ? ret : -ESTALE;
	}
	if (ret == 0) {
		cache_set_slot(c, r, i, blob, at, f->derive ? 0 : updated);
		if (obj_blob && !r->slots[0].fetching)
			cache_set_slot(c, r, 0, obj_blob, at, updated);
		else
			dsfs_blob_unref(obj_blob);
		if (r->parent)
			cache_enforce_bound(c, r); /* not what was just fetched: the caller is about to use it */
	} else {
		dsfs_blob_unref(blob);
		dsfs_blob_unref(obj_blob);
		if (ret == -ENOENT && !f->subpath)
			cache_forget_resource(c, r);
	}
	pthread_cond_broadcast(&c->done);
	cache_node_unref(c, r);
	free(got_name);
	return ret;
}
