// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control-file commands → request bodies. A command is checked completely
 * (syntax, verb, required fields) before anything is sent, so a malformed
 * line never reaches the server.
 */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numbers.h"

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

size_t dsfs_ctl_utf8_prefix(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
			hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
		} else {
			return i;
		}
		if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (size_t k = 2; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += n;
	}
	return len;
}

/*
 * Parses exactly n bytes at p as one JSON value. Returns true and sets *out
 * (NULL for JSON null) when all of it is one value; false otherwise.
 */
static bool parse_exact(const char *p, size_t n, json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *o;
	bool whole;

	*out = NULL;
	if (n == 0)
		return false;
	tok = json_tokener_new();
	if (!tok)
		return false;
	o = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		/* A bare number ("12") waits for more input: end it. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		whole = jerr == json_tokener_success;
	} else {
		whole = jerr == json_tokener_success &&
			skip_space(p + json_tokener_get_parse_end(tok), p + n) == p + n;
	}
	json_tokener_free(tok);
	if (!whole) {
		json_object_put(o);
		return false;
	}
	*out = o;
	return true;
}

/* End of a value starting at p: a JSON string or bracketed value is scanned whole, else up to a space. */
static const char *value_end(const char *p, const char *end)
{
	int depth = 0;
	bool in_str = false;

	if (p >= end || (*p != '"' && *p != '[' && *p != '{')) {
		while (p < end && !isspace((unsigned char)*p))
			p++;
		return p;
	}
	for (; p < end; p++) {
		if (in_str) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				in_str = false;
			if (!in_str && depth == 0)
				return p + 1;
			continue;
		}
		if (*p == '"')
			in_str = true;
		else if (*p == '[' || *p == '{')
			depth++;
		else if ((*p == ']' || *p == '}') && --depth == 0)
			return p + 1;
	}
	return end;
}

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
			snprintf(err, errlen, "key '%.*s': '%s' is already a value, not an object", (int)klen, key, part);
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

/* key=value pairs in [p, end) into a new object. */
static int parse_pairs(const char *p, const char *end, json_object **out, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	int ret;

	if (!body)
		return -ENOMEM;
	for (p = skip_space(p, end); p < end; p = skip_space(p, end)) {
		const char *key = p, *eq, *vend;
		json_object *v;
		bool json;

		while (p < end && *p != '=' && !isspace((unsigned char)*p))
			p++;
		if (p >= end || *p != '=') {
			snprintf(err, errlen, "expected key=value, got '%.*s'", (int)(p - key), key);
			json_object_put(body);
			return -EINVAL;
		}
		eq = p;
		vend = value_end(eq + 1, end);
		json = parse_exact(eq + 1, (size_t)(vend - eq - 1), &v);
		if (json && (ret = exact_numbers(eq + 1, (size_t)(vend - eq - 1), &v, &json, err, errlen)) != 0) {
			json_object_put(body);
			return ret;
		}
		if (!json) {
			v = json_object_new_string_len(eq + 1, (int)(vend - eq - 1));
			if (!v) {
				json_object_put(body);
				return -ENOMEM;
			}
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
	if (!body || !json_object_is_type(body, json_type_object) ||
	    !json_object_object_get_ex(body, dotted, &body))
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
			snprintf(err, errlen, "%s%s%s needs %s%s", a->verb ? "'" : "", a->verb ? a->verb : "a new entry",
				 a->verb ? "'" : "", strchr(*f, '|') ? "one of " : "the field ", *f);
			return -EINVAL;
		}
	}
	return 0;
}

int dsfs_ctl_parse(const char *line, size_t len, const struct dsfs_action *create,
		   const struct dsfs_action *actions, size_t nactions,
		   const struct dsfs_action **action, json_object **body, char *err, size_t errlen)
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
		snprintf(err, errlen, "command is not valid UTF-8 (byte %zu is 0x%02x)", i + 1,
			 (unsigned char)line[i]);
		return -EINVAL;
	}
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	p = skip_space(p, end);
	if (p == end) {
		snprintf(err, errlen, "empty command");
		return -EINVAL;
	}
	if (create) {
		a = create;
		if (*p == '{') {
			if (!parse_exact(p, (size_t)(end - p), &b) || !json_object_is_type(b, json_type_object)) {
				json_object_put(b);
				snprintf(err, errlen, "not a valid JSON object");
				return -EINVAL;
			}
			if ((ret = exact_numbers(p, (size_t)(end - p), &b, NULL, err, errlen)) != 0)
				return ret;
		} else if (memchr(p, '=', (size_t)(end - p)) && create->bare_field) {
			ret = parse_pairs(p, end, &b, err, errlen);
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
			ret = parse_pairs(p, end, &b, err, errlen);
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
		p = skip_space(verb_end, end);
		if (p < end && *p == '{') {
			if (!parse_exact(p, (size_t)(end - p), &b) || !json_object_is_type(b, json_type_object)) {
				json_object_put(b);
				snprintf(err, errlen, "'%s': not a valid JSON object", a->verb);
				return -EINVAL;
			}
			if ((ret = exact_numbers(p, (size_t)(end - p), &b, NULL, err, errlen)) != 0)
				return ret;
		} else {
			ret = parse_pairs(p, end, &b, err, errlen);
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
	ret = check_required(a, b, err, errlen);
	if (ret) {
		json_object_put(b);
		return ret;
	}
	*action = a;
	*body = b;
	return 0;
}
