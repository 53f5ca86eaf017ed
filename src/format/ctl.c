// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control-file commands → request bodies. A command is checked completely
 * (syntax, verb, required fields) before anything is sent, so a malformed
 * line never reaches the server. Where, in what is written, one command
 * ends and the next begins is ctl_scan.c's.
 */
#include "format/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "util/nearest.h"
#include "format/numbers.h"
#include "format/secret.h"

/* Sets body[dotted key] = v (consumed), creating nested objects. */
static int set_dotted(json_object *body, const char *key, size_t klen, json_object *v, char *err, size_t errlen)
{
	const char *dot;
	char part[256];

	while ((dot = memchr(key, '.', klen))) {
		size_t n = (size_t)(dot - key);
		json_object *child;

		if (n == 0 || n >= sizeof(part))
			goto bad;
		memcpy(part, key, n);
		part[n] = '\0';
		if (!json_object_object_get_ex(body, part, &child)) {
			child = json_object_new_object();
			if (!child || json_object_object_add(body, part, child)) {
				json_object_put(v);
				return -ENOMEM;
			}
		} else if (!json_object_is_type(child, json_type_object)) {
			snprintf(err, errlen, "key '%.*s': '%s' is already a value, not an object", (int)klen, key,
				 part);
			json_object_put(v);
			return -EINVAL;
		}
		body = child;
		key = dot + 1;
		klen -= n + 1;
	}
	if (klen == 0 || klen >= sizeof(part))
		goto bad;
	memcpy(part, key, klen);
	part[klen] = '\0';
	if (json_object_object_add(body, part, v)) { /* v may be NULL: JSON null */
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad key '%.*s'", (int)klen, key);
	json_object_put(v);
	return -EINVAL;
}

/* ---- fields and their types ------------------------------------------------------ */

/* The declared field called name[0..n), or NULL. */
static const struct dsfs_field *field_named(const struct dsfs_field *fields, const char *name, size_t n)
{
	for (; fields && fields->name; fields++)
		if (strlen(fields->name) == n && !strncmp(fields->name, name, n))
			return fields;
	return NULL;
}

/* True when a declared field lies below name[0..n): "policy" for "policy.id". */
static bool fields_below(const struct dsfs_field *fields, const char *name, size_t n)
{
	for (; fields && fields->name; fields++)
		if (strlen(fields->name) > n && !strncmp(fields->name, name, n) && fields->name[n] == '.')
			return true;
	return false;
}

/* True when name[0..n) lies below a field declared DSFS_T_OBJECT (taken as written). */
static bool inside_object(const struct dsfs_field *fields, const char *name, size_t n)
{
	for (; fields && fields->name; fields++) {
		size_t k = strlen(fields->name);

		if (fields->type == DSFS_T_OBJECT && k < n && !strncmp(fields->name, name, k) && name[k] == '.')
			return true;
	}
	return false;
}

static const char *type_name(enum dsfs_type t)
{
	switch (t) {
	case DSFS_T_STRING:
		return "a string";
	case DSFS_T_INTEGER:
		return "an integer";
	case DSFS_T_NUMBER:
		return "a number";
	case DSFS_T_BOOLEAN:
		return "true or false";
	case DSFS_T_STRINGS:
		return "a list of strings (a,b or [a,b])";
	case DSFS_T_ARRAY:
		return "a JSON array";
	case DSFS_T_OBJECT:
		return "a JSON object";
	}
	return "?";
}

/* n bytes at p as an int64 (an optional '-', then digits): false when not one, or out of range. */
static bool parse_int64(const char *p, size_t n, int64_t *out)
{
	char buf[32], *end;
	long long v;
	size_t i = n && p[0] == '-';

	if (n == i || n >= sizeof(buf))
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno == ERANGE || *end)
		return false;
	*out = v;
	return true;
}

/*
 * A JSON integer json-c may have clamped (it stores a literal past int64 as
 * its bound): such a number cannot be sent as the user wrote it.
 */
static bool clamped(json_object *v)
{
	int64_t i = json_object_get_int64(v);

	return i == INT64_MAX || i == INT64_MIN;
}

/* The elements of a list written as a,b or [a,b] (elements may be JSON strings: "a,b"). */
static int string_list(const char *p, size_t n, json_object **out, char *err, size_t errlen)
{
	json_object *arr = NULL;
	size_t i = 0;

	if (n && p[0] == '[') {
		if (dsfs_ctl_json_exact(p, n, &arr) && json_object_is_type(arr, json_type_array)) {
			*out = arr; /* its elements are checked with the body */
			return 0;
		}
		json_object_put(arr);
		if (p[n - 1] != ']') {
			snprintf(err, errlen, "list '%.*s' has no closing ']'", (int)n, p);
			return -EINVAL;
		}
		p++;
		n -= 2;
	}
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	while (n && i <= n) {
		size_t start = i, a, b;
		bool in_str = false;
		json_object *e = NULL;

		for (; i < n && (in_str || p[i] != ','); i++) {
			if (in_str && p[i] == '\\' && i + 1 < n)
				i++;
			else if (p[i] == '"')
				in_str = !in_str;
		}
		for (a = start; a < i && isspace((unsigned char)p[a]); a++)
			;
		for (b = i; b > a && isspace((unsigned char)p[b - 1]); b--)
			;
		if (a == b) {
			snprintf(err, errlen, "list '%.*s' has an empty element", (int)n, p);
			json_object_put(arr);
			return -EINVAL;
		}
		if (p[a] != '"' || !dsfs_ctl_json_exact(p + a, b - a, &e) ||
		    !json_object_is_type(e, json_type_string)) {
			json_object_put(e);
			e = json_object_new_string_len(p + a, (int)(b - a));
		}
		if (!e || json_object_array_add(arr, e)) {
			json_object_put(e);
			json_object_put(arr);
			return -ENOMEM;
		}
		i++; /* past the comma */
	}
	*out = arr;
	return 0;
}

/*
 * The numbers in the JSON value [p, p + n) json-c read into *v must be the
 * ones written (json-c clamps 99999999999999999999, reads 1e400 as an
 * infinity): else -EINVAL, nothing sent. With json (a key=value's value),
 * a lone word JSON does not spell as a number ("01", "NaN", json-c's
 * leniencies) is text: *v is dropped and *json cleared.
 */
static int exact_numbers(const char *p, size_t n, json_object **v, bool *json, char *err, size_t errlen)
{
	char why[192];

	if (dsfs_numbers_check_text(p, n, NULL, why, sizeof(why)) == 0)
		return 0;
	if (json && *p != '[' && *p != '{' && *p != '"' && !dsfs_numbers_is_json(p, n)) {
		json_object_put(*v);
		*v = NULL;
		*json = false;
		return 0;
	}
	json_object_put(*v);
	*v = NULL;
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/*
 * The value of key=value text p[0..n) for field f: of f's type, whatever
 * its spelling; "null" is JSON null for any field. Without f (a field below
 * an object taken as written, or one the command does not take), a JSON
 * literal is that literal and anything else a string.
 */
/*
 * p[0..n) as a JSON value of type t whose numbers are the ones written: 0
 * with *v set; 1 when it is no such value; -EINVAL when a number would not
 * be sent as written (err says which).
 */
static int parse_as(const char *p, size_t n, json_type t, json_object **v, char *err, size_t errlen)
{
	if (!dsfs_ctl_json_exact(p, n, v) || !json_object_is_type(*v, t)) {
		json_object_put(*v);
		*v = NULL;
		return 1;
	}
	return exact_numbers(p, n, v, NULL, err, errlen);
}

static int typed_value(const struct dsfs_field *f, const char *key, size_t klen, const char *p, size_t n,
		       json_object **out, char *err, size_t errlen)
{
	int64_t i;
	int r;
	json_object *v = NULL;

	*out = NULL;
	if (n == 4 && !memcmp(p, "null", 4))
		return 0;
	switch (f ? f->type : DSFS_T_OBJECT) {
	case DSFS_T_STRING:
		/* a quoted JSON string is that string ("a b"); anything else is the text itself */
		if (n && p[0] == '"' && dsfs_ctl_json_exact(p, n, &v) && json_object_is_type(v, json_type_string))
			break;
		json_object_put(v);
		v = json_object_new_string_len(p, (int)n);
		break;
	case DSFS_T_INTEGER:
		if (!parse_int64(p, n, &i))
			goto bad;
		v = json_object_new_int64(i);
		break;
	case DSFS_T_NUMBER:
		if (parse_int64(p, n, &i)) {
			v = json_object_new_int64(i);
			break;
		}
		if ((r = parse_as(p, n, json_type_double, &v, err, errlen)) != 0)
			goto refused;
		break;
	case DSFS_T_BOOLEAN:
		if ((n == 4 && !memcmp(p, "true", 4)) || (n == 5 && !memcmp(p, "false", 5)))
			v = json_object_new_boolean(n == 4);
		else
			goto bad;
		break;
	case DSFS_T_STRINGS:
		return string_list(p, n, out, err, errlen);
	case DSFS_T_ARRAY:
		if ((r = parse_as(p, n, json_type_array, &v, err, errlen)) != 0)
			goto refused;
		break;
	case DSFS_T_OBJECT: {
		bool json = dsfs_ctl_json_exact(p, n, &v);

		if (json && exact_numbers(p, n, &v, &json, err, errlen))
			return -EINVAL;
		if (!json)
			v = json_object_new_string_len(p, (int)n);
		break;
	}
	}
	if (!v)
		return -ENOMEM;
	*out = v;
	return 0;
refused:
	if (r < 0)
		return r; /* err says why */
bad:
	snprintf(err, errlen, "field %.*s takes %s, not '%.*s'", (int)klen, key, type_name(f->type), (int)n, p);
	return -EINVAL;
}

/*
 * Checks v (a JSON value of field f in a body) against f's type: 0 with
 * *out NULL when it is one, with *out a new value of f's type when v says
 * one exactly (4006 for a string is "4006"), -EINVAL otherwise.
 */
static int coerce(const struct dsfs_field *f, json_object *v, json_object **out, char *err, size_t errlen)
{
	enum json_type t = json_object_get_type(v);
	int ret;

	*out = NULL;
	if (!v || f->type == DSFS_T_OBJECT)
		return 0;
	switch (f->type) {
	case DSFS_T_STRING:
		if (t == json_type_string)
			return 0;
		if (t == json_type_int && !clamped(v)) {
			*out = json_object_new_string(json_object_to_json_string(v));
			return *out ? 0 : -ENOMEM;
		}
		break;
	case DSFS_T_INTEGER:
	case DSFS_T_NUMBER:
	case DSFS_T_BOOLEAN:
		if ((t == json_type_int && !clamped(v) && f->type != DSFS_T_BOOLEAN) ||
		    (t == json_type_double && f->type == DSFS_T_NUMBER) ||
		    (t == json_type_boolean && f->type == DSFS_T_BOOLEAN))
			return 0;
		/* "3" for an integer, "true" for a boolean: read as key=value text is */
		if (t == json_type_string && strcmp(json_object_get_string(v), "null")) {
			const char *s = json_object_get_string(v);

			return typed_value(f, f->name, strlen(f->name), s, strlen(s), out, err, errlen);
		}
		break;
	case DSFS_T_STRINGS:
		if (t == json_type_string) {
			const char *s = json_object_get_string(v);

			return string_list(s, strlen(s), out, err, errlen);
		}
		if (t != json_type_array)
			break;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			static const struct dsfs_field elem = { "", DSFS_T_STRING };
			json_object *e = json_object_array_get_idx(v, i), *ne;

			if (!e) {
				snprintf(err, errlen, "field %s takes a list of strings, not a null in it", f->name);
				return -EINVAL;
			}
			ret = coerce(&elem, e, &ne, err, errlen);
			if (ret == -EINVAL)
				snprintf(err, errlen, "field %s takes a list of strings, not '%s' in it", f->name,
					 json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			if (ret)
				return ret;
			if (ne && json_object_array_put_idx(v, i, ne)) {
				json_object_put(ne);
				return -ENOMEM;
			}
		}
		return 0;
	case DSFS_T_ARRAY:
		if (t == json_type_array)
			return 0;
		break;
	case DSFS_T_OBJECT:
		return 0;
	}
	snprintf(err, errlen, "field %s takes %s, not %s", f->name, type_name(f->type),
		 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return -EINVAL;
}

/* The reason a command does not take the field name: the nearest field it takes, or the list of them. */
static int unknown_field(const struct dsfs_action *a, const char *name, char *err, size_t errlen)
{
	struct dsfs_nearest near = { .typed = name, .len = strlen(name), .d = (size_t)-1 };
	const struct dsfs_field *f;
	int o;

	for (f = a->fields; f && f->name; f++)
		dsfs_nearest_offer(&near, f->name, strlen(f->name));
	/* near enough by the field's length: policy is a typo of policy.id */
	if (near.best && dsfs_nearest_close(near.best, near.d)) {
		snprintf(err, errlen, "unknown field %s; did you mean %s?", name, near.best);
		return -EINVAL;
	}
	o = snprintf(err, errlen, "unknown field %s; %s%s%s takes", name, a->verb ? "'" : "",
		     a->verb ? a->verb : "a new entry", a->verb ? "'" : "");
	for (f = a->fields; f && f->name && o > 0 && (size_t)o < errlen; f++)
		o += snprintf(err + o, errlen - (size_t)o, "%s %s", f == a->fields ? ":" : ",", f->name);
	if (a->fields && !a->fields[0].name && o > 0 && (size_t)o < errlen)
		snprintf(err + o, errlen - (size_t)o, " no fields");
	return -EINVAL;
}

/*
 * Checks every field of obj (at the dotted path[0..plen)) against a's
 * fields: each is one a takes, of its type (converted where a value says
 * one exactly), or lies in an object taken as written.
 */
static int check_fields(const struct dsfs_action *a, json_object *obj, char *path, size_t plen, char *err,
			size_t errlen)
{
	json_object_object_foreach(obj, key, val) {
		size_t n = plen + (plen ? 1 : 0) + strlen(key);
		const struct dsfs_field *f;
		json_object *nv;
		int ret;

		if (n >= 256) {
			snprintf(err, errlen, "field %.*s...: name too long", (int)plen, path);
			return -EINVAL;
		}
		sprintf(path + plen, "%s%s", plen ? "." : "", key);
		f = field_named(a->fields, path, n);
		if (f) {
			ret = coerce(f, val, &nv, err, errlen);
			if (ret)
				return ret;
			if (nv && json_object_object_add(obj, key, nv)) /* replaces val in its place */
				return -ENOMEM;
		} else if (inside_object(a->fields, path, n)) {
			/* as written */
		} else if (fields_below(a->fields, path, n) && (!val || json_object_is_type(val, json_type_object))) {
			ret = val ? check_fields(a, val, path, n, err, errlen) : 0;
			if (ret)
				return ret;
		} else {
			return unknown_field(a, path, err, errlen);
		}
		path[plen] = '\0';
	}
	return 0;
}

/* key=value pairs in [p, end) into a new object, each value of its field's type. */
static int parse_pairs(const char *p, const char *end, const struct dsfs_field *fields, json_object **out, char *err,
		       size_t errlen)
{
	json_object *body = json_object_new_object();
	int ret;

	if (!body)
		return -ENOMEM;
	for (p = dsfs_ctl_skip_space(p, end); p < end; p = dsfs_ctl_skip_space(p, end)) {
		const char *key = p, *eq, *vend;
		json_object *v;

		while (p < end && *p != '=' && !isspace((unsigned char)*p))
			p++;
		if (p >= end || *p != '=') {
			snprintf(err, errlen, "expected key=value, got '%.*s'", (int)(p - key), key);
			json_object_put(body);
			return -EINVAL;
		}
		eq = p;
		vend = dsfs_ctl_value_end(eq + 1, end);
		ret = typed_value(field_named(fields, key, (size_t)(eq - key)), key, (size_t)(eq - key), eq + 1,
				  (size_t)(vend - eq - 1), &v, err, errlen);
		if (ret) {
			json_object_put(body);
			return ret;
		}
		ret = set_dotted(body, key, (size_t)(eq - key), v, err, errlen);
		if (ret) {
			json_object_put(body);
			return ret;
		}
		p = vend;
	}
	*out = body;
	return 0;
}

/* Appends n bytes at p to *out (of *len bytes, room for cap); false on ENOMEM. */
static bool shown_add(char **out, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		char *q = dsfs_grow(*out, cap, *len + n + 1, 1, 64, 0);

		if (!q)
			return false;
		*out = q;
	}
	memcpy(*out + *len, p, n);
	*len += n;
	(*out)[*len] = '\0';
	return true;
}

/*
 * Appends the n bytes of a value at p: as written, or, for a JSON object or
 * array holding a secret, written compact with its secrets hidden.
 */
static bool shown_value(char **out, size_t *len, size_t *cap, const char *p, size_t n)
{
	json_object *v;
	const char *text;
	bool ok;

	if (!n || (*p != '{' && *p != '[') || !dsfs_ctl_json_exact(p, n, &v) || !v)
		return shown_add(out, len, cap, p, n);
	if (!dsfs_secrets_hide(v)) {
		json_object_put(v);
		return shown_add(out, len, cap, p, n);
	}
	text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	ok = text && shown_add(out, len, cap, text, strlen(text));
	json_object_put(v);
	return ok;
}

char *dsfs_ctl_shown(const char *line, size_t len)
{
	const char *p = line, *end = line + len;
	size_t n = 0, cap = 0;
	char *out = NULL;

	if (!shown_add(&out, &n, &cap, "", 0))
		return NULL;
	while (p < end) {
		const char *tok = dsfs_ctl_skip_space(p, end), *eq = NULL, *vend;
		bool ok = shown_add(&out, &n, &cap, p, (size_t)(tok - p)); /* the space as written */

		if (tok == end) {
			if (ok)
				break;
			free(out);
			return NULL;
		}
		for (p = tok; p < end && *p != '=' && *p != '{' && *p != '[' && !isspace((unsigned char)*p); p++)
			;
		if (p < end && *p == '=')
			eq = p;
		vend = eq ? dsfs_ctl_value_end(eq + 1, end) : dsfs_ctl_value_end(tok, end);
		if (ok && eq && dsfs_secret_name(tok, (size_t)(eq - tok)))
			ok = shown_add(&out, &n, &cap, tok, (size_t)(eq + 1 - tok)) &&
				shown_add(&out, &n, &cap, DSFS_SECRET_SHOWN, strlen(DSFS_SECRET_SHOWN));
		else if (ok && eq)
			ok = shown_add(&out, &n, &cap, tok, (size_t)(eq + 1 - tok)) &&
				shown_value(&out, &n, &cap, eq + 1, (size_t)(vend - eq - 1));
		else if (ok)
			ok = shown_value(&out, &n, &cap, tok, (size_t)(vend - tok));
		if (!ok) {
			free(out);
			return NULL;
		}
		p = vend > tok ? vend : tok + 1;
	}
	return out;
}

json_object *dsfs_ctl_get(json_object *body, const char *dotted)
{
	char part[256];
	const char *dot;

	while (body && (dot = strchr(dotted, '.'))) {
		size_t n = (size_t)(dot - dotted);

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, dotted, n);
		part[n] = '\0';
		if (!json_object_object_get_ex(body, part, &body))
			return NULL;
		dotted = dot + 1;
	}
	if (!body || !json_object_is_type(body, json_type_object) || !json_object_object_get_ex(body, dotted, &body))
		return NULL;
	return body;
}

static int check_required(const struct dsfs_action *a, json_object *body, char *err, size_t errlen)
{
	const char *const *f;

	for (f = a->required; f && *f; f++) {
		/* "a|b": one of them */
		char alt[256], *save = NULL, *tok;
		bool found = false;

		snprintf(alt, sizeof(alt), "%s", *f);
		for (tok = strtok_r(alt, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
			if (dsfs_ctl_get(body, tok))
				found = true;
		if (!found) {
			snprintf(err, errlen, "%s%s%s needs %s%s", a->verb ? "'" : "",
				 a->verb ? a->verb : "a new entry", a->verb ? "'" : "",
				 strchr(*f, '|') ? "one of " : "the field ", *f);
			return -EINVAL;
		}
	}
	return 0;
}

int dsfs_ctl_parse(const char *line, size_t len, const struct dsfs_action *create, const struct dsfs_action *actions,
		   size_t nactions, const struct dsfs_action **action, json_object **body, char *err, size_t errlen)
{
	const char *p = line, *end = line + len, *verb_end;
	const struct dsfs_action *a = NULL;
	json_object *b = NULL;
	size_t i;
	int ret;

	*body = NULL;
	*action = NULL;
	if (memchr(line, '\0', len)) {
		snprintf(err, errlen, "command contains a NUL byte");
		return -EINVAL;
	}
	i = dsfs_ctl_utf8_prefix(line, len);
	if (i < len) {
		/* the API takes JSON, which is UTF-8: a server would refuse it, or worse, guess */
		snprintf(err, errlen, "command is not valid UTF-8 (byte %zu is 0x%02x)", i + 1, (unsigned char)line[i]);
		return -EINVAL;
	}
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	p = dsfs_ctl_skip_space(p, end);
	if (p == end) {
		snprintf(err, errlen, "empty command");
		return -EINVAL;
	}
	if (create) {
		a = create;
		if (*p == '{') {
			if (!dsfs_ctl_json_exact(p, (size_t)(end - p), &b) ||
			    !json_object_is_type(b, json_type_object)) {
				json_object_put(b);
				snprintf(err, errlen, "not a valid JSON object");
				return -EINVAL;
			}
			if ((ret = exact_numbers(p, (size_t)(end - p), &b, NULL, err, errlen)) != 0)
				return ret;
		} else if (memchr(p, '=', (size_t)(end - p)) && create->bare_field) {
			ret = parse_pairs(p, end, a->fields, &b, err, errlen);
			if (ret)
				return ret;
		} else if (create->bare_field) {
			json_object *v = json_object_new_string_len(p, (int)(end - p));

			b = json_object_new_object();
			if (!b || !v || json_object_object_add(b, create->bare_field, v)) {
				json_object_put(v);
				json_object_put(b);
				return -ENOMEM;
			}
		} else {
			ret = parse_pairs(p, end, a->fields, &b, err, errlen);
			if (ret)
				return ret;
		}
	} else {
		for (verb_end = p; verb_end < end && !isspace((unsigned char)*verb_end); verb_end++)
			;
		for (i = 0; i < nactions; i++)
			if (strlen(actions[i].verb) == (size_t)(verb_end - p) &&
			    !strncmp(actions[i].verb, p, (size_t)(verb_end - p)))
				a = &actions[i];
		if (!a) {
			int o = snprintf(err, errlen, "unknown verb '%.*s'; this file takes:", (int)(verb_end - p), p);

			for (i = 0; i < nactions && o > 0 && (size_t)o < errlen; i++)
				o += snprintf(err + o, errlen - (size_t)o, " %s", actions[i].verb);
			return -EINVAL;
		}
		p = dsfs_ctl_skip_space(verb_end, end);
		if (p < end && *p == '{') {
			if (!dsfs_ctl_json_exact(p, (size_t)(end - p), &b) ||
			    !json_object_is_type(b, json_type_object)) {
				json_object_put(b);
				snprintf(err, errlen, "'%s': not a valid JSON object", a->verb);
				return -EINVAL;
			}
			if ((ret = exact_numbers(p, (size_t)(end - p), &b, NULL, err, errlen)) != 0)
				return ret;
		} else {
			ret = parse_pairs(p, end, a->fields, &b, err, errlen);
			if (ret)
				return ret;
		}
		if (a->no_body && json_object_object_length(b)) {
			snprintf(err, errlen, "'%s' takes no arguments", a->verb);
			json_object_put(b);
			return -EINVAL;
		}
	}
	if (a->defaults) {
		/* fields the API requires but a user should not have to spell out */
		json_object *d = json_tokener_parse(a->defaults);

		if (d) {
			json_object_object_foreach(d, key, val) {
				if (!json_object_object_get_ex(b, key, NULL))
					json_object_object_add(b, key, json_object_get(val));
			}
			json_object_put(d);
		}
	}
	if (a->fields) {
		char path[256] = "";

		ret = check_fields(a, b, path, 0, err, errlen);
		if (ret) {
			json_object_put(b);
			return ret;
		}
	}
	ret = check_required(a, b, err, errlen);
	if (ret) {
		json_object_put(b);
		return ret;
	}
	*action = a;
	*body = b;
	return 0;
}
