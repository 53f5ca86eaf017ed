// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Turning an edited object file into a PUT body (format/edit.h): the kind's edit
 * table says which top-level fields an edit may change and how the PUT
 * names them; every other field must read back as it was.
 */
#include "format/edit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "format/numbers.h"

static const struct dsfs_edit_field *edit_field(const struct dsfs_edits *ed, const char *name)
{
	for (size_t i = 0; i < ed->n; i++)
		if (!strcmp(ed->field[i].field, name))
			return &ed->field[i];
	return NULL;
}

/* The field whose PUT name is name where it differs from the file's ("sizeMib" for "sizeMiB"), or NULL. */
static const struct dsfs_edit_field *put_alias(const struct dsfs_edits *ed, const char *name)
{
	for (size_t i = 0; i < ed->n; i++)
		if (ed->field[i].put_as && !strcmp(ed->field[i].put_as, name))
			return &ed->field[i];
	return NULL;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static bool is_number(json_object *v);

/*
 * Equal as JSON values: numbers by value, whatever their spelling (jq
 * writes 25.0 as 25), objects by their members, lists item by item.
 */
static bool same(json_object *a, json_object *b)
{
	if (is_number(a) && is_number(b))
		return dsfs_numbers_same(a, b);
	if (json_object_get_type(a) != json_object_get_type(b))
		return false;
	if (json_object_is_type(a, json_type_object)) {
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, k, v) {
			json_object *w;

			if (!json_object_object_get_ex(b, k, &w) || !same(v, w))
				return false;
		}
		return true;
	}
	if (json_object_is_type(a, json_type_array)) {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!same(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	}
	return json_object_equal(a, b) != 0;
}

/* "name, sizeMiB, ..." into buf. */
static void editable_list(const struct dsfs_edits *ed, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ed->n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", ed->field[i].field);
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* What a JSON value is, in words: "a number", "a string". */
static const char *kind_of(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_int:
	case json_type_double:
		return "a number";
	case json_type_string:
		return "a string";
	case json_type_boolean:
		return "true or false";
	case json_type_array:
		return "a list";
	case json_type_object:
		return "an object";
	default:
		return "null";
	}
}

/* The value f takes in the PUT for v (a new reference), or NULL when v's type is wrong (why says so). */
static json_object *put_value(const struct dsfs_edit_field *f, json_object *old, json_object *v, char *why,
			      size_t whylen)
{
	if (f->yes) {
		if (json_object_is_type(v, json_type_boolean))
			return json_object_get(v);
		if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), f->yes))
			return json_object_new_boolean(1);
		if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), f->no))
			return json_object_new_boolean(0);
		snprintf(why, whylen, "field '%s' is \"%s\" or \"%s\"", f->field, f->yes, f->no);
		return NULL;
	}
	if (old && !json_object_is_type(old, json_type_null) && !(is_number(old) && is_number(v)) &&
	    json_object_get_type(old) != json_object_get_type(v)) {
		snprintf(why, whylen, "field '%s' must be %s, as it was, not %s", f->field, kind_of(old), kind_of(v));
		return NULL;
	}
	return json_object_get(v);
}

int dsfs_edit_body(const struct dsfs_edits *ed, json_object *base, const char *text, size_t len, json_object *server,
		   json_object **body, char *why, size_t whylen)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *now = NULL, *out = NULL;
	char list[512];
	int ret = 0;

	*body = NULL;
	if (!tok)
		return -ENOMEM;
	now = json_tokener_parse_ex(tok, text, (int)len);
	if (!now || json_tokener_get_parse_end(tok) < len) {
		/* what follows the value may only be white space */
		size_t end = now ? json_tokener_get_parse_end(tok) : 0;

		/* text[end] first: strchr finds a NUL byte in any string, and NULs are not white space */
		while (now && end < len && text[end] && strchr(" \t\r\n", text[end]))
			end++;
		if (!now || end < len) {
			snprintf(why, whylen, "not valid JSON (%s)",
				 now ? "text after the object" : json_tokener_error_desc(json_tokener_get_error(tok)));
			ret = -EINVAL;
			goto out;
		}
	}
	if (!json_object_is_type(now, json_type_object)) {
		snprintf(why, whylen, "not a JSON object");
		ret = -EINVAL;
		goto out;
	}
	/* a number json-c would carry as another one (clamped, rounded, NaN) is refused, not sent */
	if ((ret = dsfs_numbers_check_text(text, len, base, why, whylen)) != 0)
		goto out;
	editable_list(ed, list, sizeof(list));
	/* every field the API does not let one edit reads back as it was */
	json_object_object_foreach(base, bk, bv) {
		if (!edit_field(ed, bk) && !same(bv, get(now, bk))) {
			snprintf(why, whylen, "field '%s' cannot be edited (editable: %s)", bk, list);
			ret = -EINVAL;
			goto out;
		}
	}
	json_object_object_foreach(now, nk, nv) {
		(void)nv;
		if (!edit_field(ed, nk) && !put_alias(ed, nk) && !json_object_object_get_ex(base, nk, NULL)) {
			snprintf(why, whylen, "field '%s' is not one of the object's (editable: %s)", nk, list);
			ret = -EINVAL;
			goto out;
		}
	}
	if (!(out = json_object_new_object())) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ed->n; i++) {
		const struct dsfs_edit_field *f = &ed->field[i];
		json_object *b = get(base, f->field), *n = get(now, f->field), *v;
		json_object *alias = f->put_as && !get(base, f->put_as) ? get(now, f->put_as) : NULL;

		/* the field added under the API's own name (jq '.sizeMib = N') is the same edit */
		if (alias && same(b, n))
			n = alias;
		else if (alias && !same(alias, n)) {
			snprintf(why, whylen, "fields '%s' and '%s' are the same field with two values", f->field,
				 f->put_as);
			ret = -EINVAL;
			goto out;
		}
		if (same(b, n) || f->always)
			continue;
		if (!n || json_object_is_type(n, json_type_null)) {
			snprintf(why, whylen, "field '%s' cannot be removed or set to null (the API keeps its value)",
				 f->field);
			ret = -EINVAL;
			goto out;
		}
		if (!(v = put_value(f, b, n, why, whylen))) {
			ret = -EINVAL;
			goto out;
		}
		json_object_object_add(out, f->put_as ? f->put_as : f->field, v);
	}
	/* someone else's edit is never overwritten: every editable field must be as it was read */
	for (size_t i = 0; server && i < ed->n && json_object_object_length(out); i++) {
		const char *name = ed->field[i].field;

		if (!same(get(base, name), get(server, name))) {
			snprintf(why, whylen,
				 "field '%s' changed on the server since the file was read: read it "
				 "again and redo the edit",
				 name);
			ret = -EBUSY;
			goto out;
		}
	}
	for (size_t i = 0, changed = json_object_object_length(out); i < ed->n; i++) {
		const struct dsfs_edit_field *f = &ed->field[i];
		json_object *b = get(base, f->field);

		if (!f->always)
			continue;
		if (!same(b, get(now, f->field))) {
			snprintf(why, whylen,
				 "field '%s' is the object's version: it is sent as it was read and "
				 "cannot be edited",
				 f->field);
			ret = -EINVAL;
			goto out;
		}
		if (b && changed)
			json_object_object_add(out, f->put_as ? f->put_as : f->field, json_object_get(b));
	}
	if (json_object_object_length(out)) {
		*body = out;
		out = NULL;
	}
out:
	json_object_put(out);
	json_object_put(now);
	json_tokener_free(tok);
	return ret;
}
