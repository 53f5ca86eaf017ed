// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The capacity statfs reports (`df`): the figures a kind's objects state
 * (its dialect's capacity shapes), and where a resource states none, the
 * sum of the nearest kinds below that do (a server's free space is its
 * pools'), in the API's own unit where every part agrees.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"
#include "util/log.h"

/* Does kind k, or a kind below it within depth levels, state a capacity? */
static bool leads_to_capacity(const struct dsfs_kind *k, int depth)
{
	if (k->ncapacity)
		return true;
	for (size_t i = 0; depth > 0 && i < k->nchildren; i++) {
		const struct dsfs_kind *ck = k->children[i];

		if (leads_to_capacity(ck, depth - 1))
			return true;
		for (size_t j = 0; ck->also && ck->also[j]; j++)
			if (leads_to_capacity(ck->also[j], depth - 1))
				return true;
	}
	return false;
}

/* Byte counts past this are a server's nonsense (an exbibyte is 2^60). */
#define FIGURE_MAX (UINT64_C(1) << 62)

/*
 * The value of field in o in bytes (unit per unit); false when absent, or
 * not a number from 0 to FIGURE_MAX (logged: the figure is left out).
 */
static bool figure(json_object *o, const char *field, unsigned long unit, uint64_t *out)
{
	json_object *v = field ? dsfs_dialect_field(o, field) : NULL;
	double d;

	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return false;
	d = json_object_get_double(v) * (double)unit;
	if (!(d >= 0 && d <= (double)FIGURE_MAX)) {
		dsfs_log(DSFS_LOG_WARN, "statfs: %s = %s is not a capacity; left out", field,
			 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return false;
	}
	*out = json_object_is_type(v, json_type_int) ? (uint64_t)json_object_get_int64(v) * unit : (uint64_t)llround(d);
	return true;
}

/* a + b, at most UINT64_MAX */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void dsfs_space_add(struct dsfs_space *s, const struct dsfs_space *add)
{
	if (!add->unit)
		return;
	s->unit = !s->unit || s->unit == add->unit ? add->unit : 1;
	s->total = sat_add(s->total, add->total);
	s->free = sat_add(s->free, add->free);
	s->has_total |= add->has_total;
	s->has_free |= add->has_free;
}

/* What resource r's own figures state (fetching the file they are in when needed). Lock held. */
static int own_space(struct dsfs_cache *c, struct dsfs_node *r, struct dsfs_space *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < r->kind->ncapacity; i++) {
		const struct dsfs_capacity *cap = &r->kind->capacity[i];
		int f = cap->file ? dsfs_kind_file(r->kind, cap->file) : 0;
		uint64_t used;
		json_object *o;
		int ret;

		if (f < 0)
			continue;
		if (!r->slots[f].blob || !fresh(c, r->slots[f].at)) {
			ret = cache_fetch_slot(c, r, f);
			if (ret && ret != -ESTALE) /* renamed: its own figures still came */
				return ret;
		}
		if (!r->slots[f].blob || !(o = json_tokener_parse(r->slots[f].blob->data)))
			continue;
		out->has_total = figure(o, cap->total_field, cap->unit, &out->total);
		out->has_free = figure(o, cap->free_field, cap->unit, &out->free);
		if (!out->has_free && out->has_total && figure(o, cap->used_field, cap->unit, &used)) {
			out->free = used < out->total ? out->total - used : 0;
			out->has_free = true;
		}
		json_object_put(o);
		if (out->has_total || out->has_free) {
			out->unit = cap->unit;
			return 0;
		}
	}
	return 0;
}

static int resource_space(struct dsfs_cache *c, struct dsfs_node *r, int depth, struct dsfs_space *out);

/* The sum over every resource of collection coll. Lock held (dropped while listing). */
static int collection_space(struct dsfs_cache *c, struct dsfs_node *coll, int depth, struct dsfs_space *out)
{
	struct dsfs_node **items;
	size_t n;
	int ret = cache_ensure_listing(c, coll, true);

	if (ret)
		return ret;
	n = coll->nitems;
	if (!(items = malloc((n ? n : 1) * sizeof(*items))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		items[i] = cache_node_ref(coll->items[i]); /* the listing may change while a figure is fetched */
	for (size_t i = 0; i < n && !ret; i++) {
		struct dsfs_space s;

		ret = resource_space(c, items[i], depth, &s);
		if (ret == 0)
			dsfs_space_add(out, &s);
	}
	for (size_t i = 0; i < n; i++)
		cache_node_unref(c, items[i]);
	free(items);
	return ret;
}

static int resource_space(struct dsfs_cache *c, struct dsfs_node *r, int depth, struct dsfs_space *out)
{
	struct dsfs_space below = { 0 };
	bool direct = false;
	int ret = own_space(c, r, out);

	if (ret || (out->has_total && out->has_free) || depth <= 0)
		goto done;
	/* a figure not stated here: the sum of the nearest kinds below that state it */
	for (size_t i = 0; i < r->kind->nchildren; i++)
		direct |= r->kind->children[i]->ncapacity > 0;
	for (size_t i = 0; i < r->kind->nchildren && !ret; i++) {
		const struct dsfs_kind *k = r->kind->children[i];
		struct dsfs_node *coll;

		if (direct ? !k->ncapacity : !leads_to_capacity(k, depth - 1))
			continue;
		if (!(coll = cache_child_collection(c, r, (int)i)))
			return -ENOMEM;
		cache_node_ref(coll);
		if (coll->is_coll) {
			ret = collection_space(c, coll, depth - 1, &below);
		} else { /* a folder: what its collections sum to */
			struct dsfs_space s = { 0 };

			ret = resource_space(c, coll, depth - 1, &s);
			if (ret == 0)
				dsfs_space_add(&below, &s);
		}
		cache_node_unref(c, coll);
	}
	if (ret)
		return ret;
	if (!below.unit)
		goto done;
	out->unit = !out->unit || out->unit == below.unit ? below.unit : 1;
	if (!out->has_total && below.has_total) {
		out->total = below.total;
		out->has_total = true;
	}
	if (!out->has_free && below.has_free) {
		out->free = below.free;
		out->has_free = true;
	}
done:
	if (out->has_free && !out->has_total) { /* only free space is known: say that much */
		out->total = out->free;
		out->has_total = true;
	}
	if (out->free > out->total) /* more free than there is: df would show a negative use */
		out->free = out->total;
	return ret;
}

int dsfs_cache_space(struct dsfs_cache *c, const struct dsfs_loc *loc, struct dsfs_space *out)
{
	struct dsfs_node *r = loc->node;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	dsfs_lock(&c->lock);
	if (r && r->is_coll)
		r = r->attached ? r->parent : NULL;
	/* the nearest resource at or above loc whose tree states a capacity: a pool, a server, the root */
	while (r && !leads_to_capacity(r->kind, 3)) {
		r = r->attached && r->parent && r->parent->attached ? r->parent : NULL;
		if (r && r->is_coll) /* a resource's parent is its collection, a folder's the resource it is in */
			r = r->attached ? r->parent : NULL;
	}
	if (r) {
		cache_node_ref(r);
		ret = resource_space(c, r, 3, out);
		cache_node_unref(c, r);
	}
	dsfs_unlock(&c->lock);
	return ret;
}
