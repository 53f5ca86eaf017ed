// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Questions asked of a collection without listing it by hand: `.count`
 * (how many entries; a HEAD or a one-item page where the API answers it),
 * `.where/<condition>` (the entries whose object meets a condition: a
 * filtered list where the dialect's filter can say it and the listing is
 * not fresh, named as the listing names them; else the collection's own
 * nodes, filtered from its listing). The capacity statfs reports is in
 * cache/space.c. Conditions are "<field><op><value>" with op one of = != >= <= > <,
 * the value escaped like an entry name; with = and != a value holding
 * * ? or [ is a shell pattern (fnmatch). A condition on a field no object
 * of the collection has is refused, naming the nearest field it has.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/locks.h"
#include "util/log.h"
#include "format/names.h"
#include "util/nearest.h"
#include "format/numbers.h"

/* ---- conditions ------------------------------------------------------------ */

enum op { OP_EQ, OP_NE, OP_GE, OP_LE, OP_GT, OP_LT };

struct cond {
	char *field, *value; /* malloc'd: one buffer, field first */
	enum op op;
	bool pattern; /* = or != with * ? or [ in the value: a shell pattern */
};

/*
 * Splits one condition into c (one malloc'd buffer: free(c->field)). 0, or
 * -EINVAL with *why saying what is wrong (nothing allocated then), or -ENOMEM.
 */
static int cond_parse(const char *text, struct cond *c, const char **why)
{
	size_t at = strcspn(text, "=!<>"), oplen = 1;
	char *value;
	int ret;

	*why = "not a condition: write <field><op><value>, op one of = != >= <= > < (docs/tree.md)";
	if (at == 0 || !text[at])
		return -EINVAL;
	switch (text[at]) {
	case '=':
		c->op = OP_EQ;
		break;
	case '!':
		if (text[at + 1] != '=')
			return -EINVAL;
		c->op = OP_NE;
		oplen = 2;
		break;
	case '>':
		c->op = text[at + 1] == '=' ? OP_GE : OP_GT;
		oplen = text[at + 1] == '=' ? 2 : 1;
		break;
	default:
		c->op = text[at + 1] == '=' ? OP_LE : OP_LT;
		oplen = text[at + 1] == '=' ? 2 : 1;
		break;
	}
	/* the value escaped like an entry name; a %00 would cut it short and ask for less than was written */
	ret = dsfs_names_unescape(text + at + oplen, &value);
	if (ret == -EINVAL)
		*why = "the value holds %00, a byte no field's text can be compared with";
	if (ret)
		return ret;
	if (!(c->field = malloc(at + 1 + strlen(value) + 1))) {
		free(value);
		return -ENOMEM;
	}
	memcpy(c->field, text, at);
	c->field[at] = '\0';
	c->value = c->field + at + 1;
	strcpy(c->value, value);
	free(value);
	c->pattern = (c->op == OP_EQ || c->op == OP_NE) && strpbrk(c->value, "*?[");
	return 0;
}

char *cache_where_join(const char *where, const char *cond)
{
	char *s;

	if (!cond)
		return where ? strdup(where) : NULL;
	if (!where)
		return strdup(cond);
	if ((s = malloc(strlen(where) + strlen(cond) + 2)))
		sprintf(s, "%s/%s", where, cond);
	return s;
}

int cache_query_lookup(struct dsfs_node *n, const char *where, const char *name, struct dsfs_loc *out)
{
	if (strcmp(name, WHERE_DIR) && strcmp(name, COUNT_FILE))
		return 0;
	out->type = strcmp(name, WHERE_DIR) ? DSFS_LOC_COUNT : DSFS_LOC_WHERE_DIR;
	if (where && !(out->where = strdup(where)))
		return -ENOMEM;
	out->node = cache_node_ref(n);
	return 1;
}

int cache_where_check(const char *text, const char **why)
{
	struct cond c;
	int ret = cond_parse(text, &c, why);

	if (ret == 0)
		free(c.field);
	return ret;
}

static bool ordered(int cmp, enum op op)
{
	switch (op) {
	case OP_EQ:
		return cmp == 0;
	case OP_NE:
		return cmp != 0;
	case OP_GE:
		return cmp >= 0;
	case OP_LE:
		return cmp <= 0;
	case OP_GT:
		return cmp > 0;
	default:
		return cmp < 0;
	}
}

/* Does value v (NULL: absent or null) meet c? An array meets it when one of its elements does. */
static bool value_meets(json_object *v, const struct cond *c)
{
	char *end;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return ordered(strcmp(c->value, "null") ? 1 : 0, c->op) && (c->op == OP_EQ || c->op == OP_NE);
	case json_type_string:
		if (c->pattern)
			return ordered(fnmatch(c->value, json_object_get_string(v), 0) ? 1 : 0, c->op);
		return ordered(strcmp(json_object_get_string(v), c->value), c->op);
	case json_type_boolean: {
		const char *s = json_object_get_boolean(v) ? "true" : "false";

		return (c->op == OP_EQ || c->op == OP_NE) && ordered(strcmp(s, c->value), c->op);
	}
	case json_type_int: {
		long long want;

		if (!dsfs_numbers_is_json(c->value, strlen(c->value)))
			return c->op == OP_NE; /* a number is never equal to, or ordered with, a text */
		errno = 0;
		want = strtoll(c->value, &end, 10);
		if (!errno && *c->value && !*end) { /* whole numbers compare exactly */
			int64_t have = json_object_get_int64(v);

			return ordered(have < want ? -1 : have > want, c->op);
		}
		/* a value with a fraction: compare as real numbers */
	}
	/* fall through */
	case json_type_double: {
		double want = strtod(c->value, &end), have = json_object_get_double(v);

		if (!dsfs_numbers_is_json(c->value, strlen(c->value)) || *end)
			return c->op == OP_NE;
		return ordered(have < want ? -1 : have > want, c->op);
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (value_meets(json_object_array_get_idx(v, i), c))
				return true;
		return false;
	default:
		return c->op == OP_NE;
	}
}

/* Does the object b (its JSON text) meet every condition of where? */
static bool blob_meets(const struct dsfs_blob *b, const char *where)
{
	json_object *o;
	bool ok = true;
	char *all, *part, *save = NULL;

	if (!where)
		return true;
	if (!b || !(o = json_tokener_parse(b->data)))
		return false;
	if (!(all = strdup(where))) {
		json_object_put(o);
		return false;
	}
	for (part = strtok_r(all, "/", &save); part && ok; part = strtok_r(NULL, "/", &save)) {
		struct cond cd;
		const char *why;

		if (cond_parse(part, &cd, &why)) {
			ok = false;
			break;
		}
		ok = value_meets(dsfs_dialect_field(o, cd.field), &cd);
		free(cd.field);
	}
	free(all);
	json_object_put(o);
	return ok;
}

/* ---- known fields ------------------------------------------------------------------ */

/*
 * What a collection's objects say of the fields of where: a condition's
 * field is known once one object has it, or once the API's filter took
 * it (an API refuses a filter on a field it does not have).
 */
struct known {
	struct cond *conds;
	bool *seen;     /* per condition: its field is known */
	size_t n, left; /* conditions, and those whose field is not known yet */
	size_t objects; /* objects looked at */
};

static void known_free(struct known *k)
{
	for (size_t i = 0; k->conds && i < k->n; i++)
		free(k->conds[i].field);
	free(k->conds);
	free(k->seen);
}

static int known_init(struct known *k, const char *where)
{
	char *all = strdup(where), *part, *save = NULL;
	size_t cap = 1;
	int ret = 0;

	memset(k, 0, sizeof(*k));
	for (const char *p = where; *p; p++)
		cap += *p == '/';
	k->conds = calloc(cap, sizeof(*k->conds));
	k->seen = calloc(cap, sizeof(*k->seen));
	if (!all || !k->conds || !k->seen)
		ret = -ENOMEM;
	for (part = all ? strtok_r(all, "/", &save) : NULL; part && !ret; part = strtok_r(NULL, "/", &save)) {
		const char *why;

		if ((ret = cond_parse(part, &k->conds[k->n], &why)) == 0)
			k->n++;
	}
	free(all);
	if (ret) {
		known_free(k);
		memset(k, 0, sizeof(*k)); /* known_free of it again does nothing */
	}
	k->left = k->n;
	return ret;
}

static void known_mark(struct known *k, size_t i)
{
	if (i < k->n && !k->seen[i]) {
		k->seen[i] = true;
		k->left--;
	}
}

/* Notes the fields of object b (its JSON text; NULL: dropped for memory, not looked at). */
static void known_note(struct known *k, const struct dsfs_blob *b)
{
	json_object *o;

	if (!k->left || !b || !(o = json_tokener_parse(b->data)))
		return;
	k->objects++;
	for (size_t i = 0; i < k->n; i++)
		if (!k->seen[i] && dsfs_dialect_has_field(o, k->conds[i].field))
			known_mark(k, i);
	json_object_put(o);
}

/* The field path of o nearest to typed, for "did you mean". */
struct near {
	const char *typed;
	char *best; /* malloc'd */
	size_t d;
};

static void near_walk(struct near *nr, json_object *o, char *path, size_t plen, int depth)
{
	json_object_object_foreach(o, key, val) {
		size_t kl = strlen(key), d;

		if (plen + kl + 2 > 256)
			continue;
		if (plen)
			path[plen] = '.';
		memcpy(path + plen + !!plen, key, kl + 1);
		d = dsfs_nearest_distance(nr->typed, path);
		if (d < nr->d) {
			char *best = strdup(path);

			if (best) {
				free(nr->best);
				nr->best = best;
				nr->d = d;
			}
		}
		if (depth < 4 && json_object_is_type(val, json_type_object))
			near_walk(nr, val, path, plen + !!plen + kl, depth + 1);
		path[plen] = '\0';
	}
}

/* The object of item i of collection src's listing, or NULL. */
static const struct dsfs_blob *listed_blob(const void *src, size_t i)
{
	const struct dsfs_node *r = ((const struct dsfs_node *)src)->items[i];

	return r->kind->nfiles && !r->kind->files[0].subpath && !r->kind->files[0].derive ? r->slots[0].blob : NULL;
}

/* "servers/a/volumes": where collection coll is, from the mount's root (or its member's), into buf. */
static void coll_path(const struct dsfs_node *coll, char *buf, size_t len)
{
	const char *parts[32];
	size_t n = 0, o = 0;

	for (const struct dsfs_node *x = coll; x && n < 32; x = x->attached ? x->parent : NULL) {
		const char *part = x->is_coll ? x->kind->dir_name : x->entry;

		if (part)
			parts[n++] = part;
	}
	buf[0] = '\0';
	while (n-- && o < len)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "/" : "", parts[n]);
}

/*
 * 0 when each condition's field is known after the objects src holds (n
 * of them, at(src, i) each) are looked at, or when there is no object to
 * tell; else -EINVAL, logged with the nearest field the objects have.
 */
static int known_check(struct known *k, const struct dsfs_node *coll,
		       const struct dsfs_blob *(*at)(const void *src, size_t i), const void *src, size_t n)
{
	struct near nr = { .d = (size_t)-1 };
	char path[256], where[1024];
	size_t u = 0;

	for (size_t i = 0; i < n && k->left; i++)
		known_note(k, at(src, i));
	if (!k->left || !k->objects)
		return 0;
	while (k->seen[u])
		u++;
	nr.typed = k->conds[u].field;
	for (size_t i = 0; i < n; i++) {
		const struct dsfs_blob *b = at(src, i);
		json_object *o = b ? json_tokener_parse(b->data) : NULL;

		path[0] = '\0';
		if (json_object_is_type(o, json_type_object))
			near_walk(&nr, o, path, 0, 0);
		json_object_put(o);
	}
	coll_path(coll, where, sizeof(where));
	if (nr.best && dsfs_nearest_close(nr.typed, nr.d))
		dsfs_log(DSFS_LOG_ERR, "%s/.where: no %s has the field %s; did you mean %s?", where, coll->kind->name,
			 nr.typed, nr.best);
	else
		dsfs_log(DSFS_LOG_ERR, "%s/.where: no %s has the field %s", where, coll->kind->name, nr.typed);
	free(nr.best);
	return -EINVAL;
}

/* known_check of where against coll's listing (present). */
static int listing_knows(const struct dsfs_node *coll, const char *where)
{
	struct known k;
	int ret = known_init(&k, where);

	if (ret == 0)
		ret = known_check(&k, coll, listed_blob, coll, coll->nitems);
	known_free(&k);
	return ret;
}

bool cache_where_match(const struct dsfs_node *r, const char *where)
{
	if (!r->kind->nfiles || r->kind->files[0].subpath || r->kind->files[0].derive)
		return !where;
	return blob_meets(r->slots[0].blob, where);
}

int cache_where_meets(struct dsfs_cache *c, struct dsfs_node *r, const char *where, bool *match)
{
	int ret = 0;

	if (where && r->kind->nfiles && !r->slots[0].blob && r->slots[0].dropped) {
		/* an object the memory bound dropped: its fields are asked for again */
		ret = cache_fetch_slot(c, r, 0);
		if (ret == -ENOENT || ret == -ESTALE)
			ret = 0; /* gone: it meets nothing; renamed: its fields are here, and it meets them */
	}
	*match = ret == 0 && r->attached && cache_where_match(r, where);
	return ret;
}

void cache_nodes_put(struct dsfs_cache *c, struct dsfs_node **nodes, size_t n)
{
	for (size_t i = 0; nodes && i < n; i++)
		cache_node_unref(c, nodes[i]);
	free(nodes);
}

int cache_where_items(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, struct dsfs_node ***out,
		      size_t *n)
{
	size_t all = coll->nitems, i, got = 0;
	struct dsfs_node **items = malloc((all ? all : 1) * sizeof(*items));
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!items)
		return -ENOMEM;
	/* the listing may change while a dropped object is fetched: walk the one asked about */
	for (i = 0; i < all; i++)
		items[i] = cache_node_ref(coll->items[i]);
	for (i = 0; i < all && ret == 0; i++) {
		bool match;

		ret = cache_where_meets(c, items[i], where, &match);
		if (ret == 0 && match)
			items[got++] = items[i];
		else
			cache_node_unref(c, items[i]);
	}
	if (ret) {
		for (; i < all; i++)
			cache_node_unref(c, items[i]);
	}
	if (ret == 0 && where)
		ret = listing_knows(coll, where);
	if (ret) {
		cache_nodes_put(c, items, got);
		return ret;
	}
	*out = items;
	*n = got;
	return 0;
}

/* ---- asking the server to filter ------------------------------------------------------ */

static const char *const op_words[] = { "=", "!=", ">=", "<=", ">", "<" };

/*
 * The longest run of pattern p that every text it matches holds as it is
 * (no wildcard, bracket or escaped character in it), into buf; its length
 * (0: none, as for "*").
 */
static size_t pattern_run(const char *p, char *buf, size_t len)
{
	const char *start = p, *best = p;
	size_t n = 0;

	for (;;) {
		if (*p && !strchr("*?[\\", *p)) {
			p++;
			continue;
		}
		if ((size_t)(p - start) > n) {
			best = start;
			n = (size_t)(p - start);
		}
		if (!*p)
			break;
		if (*p == '[') { /* a bracket expression: one character of a set, never a run */
			const char *q = p + 1 + (p[1] == '!' || p[1] == '^');

			q += *q == ']';
			q += strcspn(q, "]");
			p = *q ? q + 1 : p + 1;
		} else {
			p += *p == '\\' && p[1] ? 2 : 1;
		}
		start = p;
	}
	if (n >= len)
		n = len - 1;
	memcpy(buf, best, n);
	buf[n] = '\0';
	return n;
}

/*
 * The query asking coll's list for the first condition of where the
 * dialect's filter can say (malloc'd; *asked: its index), or NULL when it
 * can say none. The others, and that one again, are checked here on what
 * comes back: APIs differ in how several filters combine. A pattern is
 * asked as the text every match contains (its longest literal run), where
 * the filter has "contains". A condition on the kind's scope
 * field is never asked: the collection's URL already filters on it, and a
 * server that ORs two filters on one field would widen the list.
 */
static char *where_query(const struct dsfs_dialect *d, const struct dsfs_kind *k, const char *where, size_t *asked)
{
	char *all = strdup(where), *part, *save = NULL, *q = NULL, buf[4096], run[1024];
	size_t i = 0;

	if (!all || !d->filter) {
		free(all);
		return NULL;
	}
	for (part = strtok_r(all, "/", &save); part && !q; part = strtok_r(NULL, "/", &save), i++) {
		struct cond cd;
		const char *value, *op, *why;

		if (cond_parse(part, &cd, &why))
			break;
		value = cd.value;
		op = op_words[cd.op];
		if (cd.pattern) {
			op = cd.op == OP_EQ && pattern_run(cd.value, run, sizeof(run)) ? "~" : NULL;
			value = run;
		}
		if (op && (!k->scope_field || strcmp(cd.field, k->scope_field)) &&
		    d->filter(cd.field, op, &value, 1, buf, sizeof(buf))) {
			q = strdup(buf);
			*asked = i;
		}
		free(cd.field);
	}
	free(all);
	return q;
}

/*
 * 0 when every field of where is known from what a filtered list answered
 * (f, n items; the field asked was taken by the API's filter), else from
 * coll's listing (listed now if need be); -EINVAL (logged) when not.
 */
static int answer_knows(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, size_t asked,
			const struct cache_found *f, size_t n)
{
	struct known k;
	int ret = known_init(&k, where);

	known_mark(&k, asked);
	for (size_t i = 0; ret == 0 && i < n && k.left; i++)
		known_note(&k, f[i].blob);
	if (ret == 0 && k.left) { /* a field the answer does not show: the listing tells */
		ret = cache_ensure_listing(c, coll, true);
		if (ret == 0)
			ret = known_check(&k, coll, listed_blob, coll, coll->nitems);
	}
	known_free(&k);
	return ret;
}

/*
 * The entries of coll meeting where, asked of the server when its listing
 * is not fresh (a filtered list, checked here against every condition too).
 * -ENOTSUP when the server is not to be asked: the listing then answers.
 */
static int where_fetch(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, bool named,
		       struct cache_found **out, size_t *n)
{
	char *q;
	size_t o = 0, asked = 0;
	int ret;

	*out = NULL;
	*n = 0;
	if ((coll->listed && fresh(c, coll->listed_at)) || coll->kind->also ||
	    !(q = where_query(c->dialect, coll->kind, where, &asked)))
		return -ENOTSUP;
	ret = cache_fetch_filtered(c, coll, q, named, out, n);
	free(q);
	if (ret == 0 && (ret = answer_knows(c, coll, where, asked, *out, *n)) != 0) {
		cache_found_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	for (size_t i = 0; ret == 0 && i < *n; i++) {
		if (blob_meets((*out)[i].blob, where)) {
			(*out)[o++] = (*out)[i];
			continue;
		}
		free((*out)[i].entry);
		dsfs_blob_unref((*out)[i].blob);
	}
	if (ret == 0)
		*n = o;
	return ret;
}

static int cmp_found(const void *a, const void *b)
{
	return strcmp(((const struct cache_found *)a)->entry, ((const struct cache_found *)b)->entry);
}

int cache_where_readdir(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, dsfs_fill_fn fill, void *ctx)
{
	struct cache_found *f;
	struct dsfs_attr a;
	size_t n;
	int ret = where_fetch(c, coll, where, true, &f, &n);

	if (ret)
		return ret;
	qsort(f, n, sizeof(*f), cmp_found);
	for (size_t i = 0; i < n && !ret; i++) {
		memset(&a, 0, sizeof(a));
		a.type = DSFS_LOC_RESOURCE;
		a.ino = f[i].ino;
		a.mtime = f[i].mtime;
		a.editable = coll->kind->nedit;
		ret = fill(ctx, f[i].entry, &a, true);
	}
	cache_found_free(f, n);
	return ret;
}

/* ---- .count ---------------------------------------------------------------- */

/* Asks the server how many items coll's listing has; -ENOTSUP when the API cannot say. Lock dropped. */
static int server_count(struct dsfs_cache *c, struct dsfs_node *coll, long *out)
{
	const struct dsfs_paging *pg = &c->dialect->paging;
	struct dsfs_request req = { .method = "GET" };
	struct dsfs_response resp = { 0 };
	char *path, *end;
	int ret;

	if (coll->kind->also || coll->kind->unpaged || (!pg->count_header && !(pg->total_field && pg->limit_param)))
		return -ENOTSUP;
	if (!(path = malloc(strlen(coll->url) + 64)))
		return -ENOMEM;
	if (pg->count_header) {
		strcpy(path, coll->url);
		req.method = "HEAD";
		req.capture = pg->count_header;
	} else {
		sprintf(path, "%s%c%s=1&%s=0", coll->url, strchr(coll->url, '?') ? '&' : '?', pg->limit_param,
			pg->start_param);
	}
	req.path = path;
	dsfs_unlock(&c->lock);
	ret = dsfs_session_call(c->session, &req, &resp, false);
	dsfs_lock(&c->lock);
	if (ret == 0 && pg->count_header) {
		errno = 0;
		*out = resp.captured ? strtol(resp.captured, &end, 10) : -1;
		if (!resp.captured || errno || end == resp.captured || *end || *out < 0)
			ret = -ENOTSUP; /* no usable count: list instead */
	} else if (ret == 0) {
		json_object *o = json_tokener_parse(resp.body ? resp.body : ""), *t;

		if (o && json_object_object_get_ex(o, pg->total_field, &t) && json_object_is_type(t, json_type_int) &&
		    json_object_get_int64(t) >= 0)
			*out = (long)json_object_get_int64(t);
		else
			ret = -ENOTSUP;
		json_object_put(o);
	}
	if (ret == -ENOTSUP)
		dsfs_log(DSFS_LOG_DEBUG, "%s %s: no count in the answer; listing instead", req.method, path);
	dsfs_response_clear(&resp);
	free(path);
	return ret;
}

int cache_count(struct dsfs_cache *c, struct dsfs_node *coll, const char *where, long *out)
{
	int ret;

	if (!where && !(coll->listed && fresh(c, coll->listed_at))) {
		if (fresh(c, coll->count_at)) {
			*out = coll->count;
			c->hits++;
			return 0;
		}
		ret = server_count(c, coll, out);
		if (ret == 0) {
			coll->count = *out;
			coll->count_at = dsfs_clock_now();
			return 0;
		}
		if (ret != -ENOTSUP)
			return ret;
	}
	if (where) {
		struct cache_found *f;
		size_t n;

		ret = where_fetch(c, coll, where, false, &f, &n);
		cache_found_free(f, n);
		if (ret == 0)
			*out = (long)n;
		if (ret != -ENOTSUP)
			return ret;
	}
	ret = cache_ensure_listing(c, coll, true);
	if (ret)
		return ret;
	if (where) {
		struct dsfs_node **items;
		size_t n;

		ret = cache_where_items(c, coll, where, &items, &n);
		if (ret == 0)
			*out = (long)n;
		cache_nodes_put(c, items, n);
		return ret;
	}
	*out = (long)coll->nitems;
	return 0;
}
