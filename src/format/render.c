// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * JSON pretty-printer and time-field parser. json-c's own pretty mode
 * differs from what jq and Python print (no space after ':', "[\n]" for
 * empty arrays), so the layout is written here; numbers keep json-c's text.
 */
#include "format/render.h"
#include "util/grow.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		char *p = dsfs_grow(b->p, &b->cap, b->len + n + 1, 1, 256, 0);

		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void indent(struct buf *b, int depth)
{
	static const char spaces[] = "                                ";

	put(b, "\n", 1);
	for (depth *= 2; depth > 0; depth -= 32)
		put(b, spaces, depth < 32 ? (size_t)depth : 32);
}

static void put_string(struct buf *b, const char *s, size_t n)
{
	size_t i, start = 0;

	put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];

		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof(u), "\\u%04x", c);
				esc = u;
			}
		}
		if (esc) {
			put(b, s + start, i - start);
			puts_(b, esc);
			start = i + 1;
		}
	}
	put(b, s + start, n - start);
	put(b, "\"", 1);
}

static void put_value(struct buf *b, json_object *v, int depth)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		puts_(b, "null");
		break;
	case json_type_boolean:
		puts_(b, json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_int:
	case json_type_double:
		puts_(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		break;
	case json_type_string:
		put_string(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		break;
	case json_type_array: {
		size_t i, n = json_object_array_length(v);

		if (n == 0) {
			puts_(b, "[]");
			break;
		}
		put(b, "[", 1);
		for (i = 0; i < n; i++) {
			if (i)
				put(b, ",", 1);
			indent(b, depth + 1);
			put_value(b, json_object_array_get_idx(v, i), depth + 1);
		}
		indent(b, depth);
		put(b, "]", 1);
		break;
	}
	case json_type_object: {
		bool first = true;

		if (json_object_object_length(v) == 0) {
			puts_(b, "{}");
			break;
		}
		put(b, "{", 1);
		json_object_object_foreach(v, key, val) {
			if (!first)
				put(b, ",", 1);
			first = false;
			indent(b, depth + 1);
			put_string(b, key, strlen(key));
			put(b, ": ", 2);
			put_value(b, val, depth + 1);
		}
		indent(b, depth);
		put(b, "}", 1);
		break;
	}
	}
}

struct dsfs_blob *dsfs_render_json(json_object *v)
{
	struct buf b = { 0 };
	struct dsfs_blob *blob = NULL;

	put_value(&b, v, 0);
	put(&b, "\n", 1);
	if (!b.failed) {
		blob = dsfs_blob_new(b.p, b.len);
	}
	free(b.p);
	return blob;
}

static int days_in_month(int y, int mo)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[mo - 1] + (mo == 2 && leap);
}

static int parse_iso8601(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	const char *p;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -EINVAL;
	p = s + n;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3)
			return -EINVAL;
		p += 1 + n;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	/* a date that is none (month 13, 30 February, 25:00) is no time, not the one timegm would make of it */
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
	    sec > 60) /* 60: a leap second */
		return -EINVAL;
	*out = timegm(&tm);
	if (*p == '+' || *p == '-') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
			if (oh < 0 || oh > 23 || om < 0 || om > 59)
				return -EINVAL;
			*out -= (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
		}
	}
	return 0;
}

int dsfs_render_time(json_object *v, time_t *out)
{
	double t;

	switch (json_object_get_type(v)) {
	case json_type_int:
	case json_type_double:
		t = json_object_get_double(v);
		break;
	case json_type_object: {
		/* DSCC device-type1 times: {"ms": <epoch milliseconds>, "tz": "..."} */
		json_object *ms;

		if (!json_object_object_get_ex(v, "ms", &ms) || json_object_is_type(ms, json_type_object))
			return -EINVAL;
		if (dsfs_render_time(ms, out))
			return -EINVAL;
		t = (double)*out;
		break;
	}
	case json_type_string: {
		const char *s = json_object_get_string(v);
		char *end;

		t = strtod(s, &end);
		if (end == s || *end)
			return parse_iso8601(s, out);
		break;
	}
	default:
		return -EINVAL;
	}
	if (t < 0)
		return -EINVAL;
	if (t > 1e14) /* later than year 5138 in milliseconds: microseconds (Backup and DR) */
		t /= 1e6;
	else if (t > 1e11) /* later than year 5138 in seconds: milliseconds */
		t /= 1000;
	*out = (time_t)t;
	return 0;
}
