// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whether a number a user wrote can be sent as written (format/numbers.h): the
 * JSON grammar, the range json-c carries integers in without clamping,
 * and the doubles that keep a value apart from its neighbours; and an
 * exact comparison of two json-c numbers.
 */
#include "format/numbers.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole doubles beyond this are not every integer: 2^53 + 1 reads as 2^53. */
#define DOUBLE_EXACT_MAX 9007199254740992.0

/* DBL_DIG: a decimal of this many significant digits survives a double and back. */
#define DOUBLE_DIGITS 15

static size_t digits(const char *s, size_t i, size_t n)
{
	size_t j = i;

	while (j < n && s[j] >= '0' && s[j] <= '9')
		j++;
	return j - i;
}

bool dsfs_numbers_is_json(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (!(d = digits(s, i, n)) || (s[i] == '0' && d > 1))
		return false;
	i += d;
	if (i < n && s[i] == '.') {
		if (!(d = digits(s, ++i, n)))
			return false;
		i += d;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!(d = digits(s, i, n)))
			return false;
		i += d;
	}
	return i == n;
}

/* Significant digits of a JSON number's mantissa: leading and trailing zeros do not count. */
static size_t significant(const char *s, size_t n)
{
	size_t first = 0, last = 0, pos = 0;

	for (size_t i = 0; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] < '0' || s[i] > '9')
			continue;
		pos++;
		if (s[i] != '0') {
			if (!first)
				first = pos;
			last = pos;
		}
	}
	return first ? last - first + 1 : 0;
}

int dsfs_numbers_exact(const char *s, size_t n, char *why, size_t whylen)
{
	char buf[512], *end;
	bool whole;
	double d;

	if (!dsfs_numbers_is_json(s, n)) {
		snprintf(why, whylen, "%.*s is not a JSON number", (int)(n < 64 ? n : 64), s);
		return -EINVAL;
	}
	if (n >= sizeof(buf)) {
		snprintf(why, whylen, "a number of %zu characters cannot be sent as written", n);
		return -EINVAL;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	whole = !strpbrk(buf, ".eE");
	errno = 0;
	if (whole) {
		/* json-c keeps integers as int64 or uint64, and clamps the others to the nearest end */
		if (buf[0] == '-')
			(void)strtoll(buf, &end, 10);
		else
			(void)strtoull(buf, &end, 10);
		if (errno == ERANGE) {
			snprintf(why, whylen,
				 "%s is beyond what a 64-bit integer holds (-9223372036854775808 to "
				 "18446744073709551615): it cannot be sent as written",
				 buf);
			return -EINVAL;
		}
		return 0;
	}
	d = strtod(buf, &end);

	if (errno == ERANGE || !isfinite(d)) {
		snprintf(why, whylen, "%s is beyond what a double holds: it cannot be sent as written", buf);
		return -EINVAL;
	}
	if (significant(buf, n) > DOUBLE_DIGITS) {
		snprintf(why, whylen, "%s has more than %d significant digits, more than a double keeps apart", buf,
			 DOUBLE_DIGITS);
		return -EINVAL;
	}
	if (d == floor(d) && fabs(d) > DOUBLE_EXACT_MAX) {
		snprintf(why, whylen, "%s is a whole number beyond 2^53 written as a double: write its digits", buf);
		return -EINVAL;
	}
	return 0;
}

/* Does shown spell a number exactly as [s, s + n)? */
static bool shown_spells(json_object *shown, const char *s, size_t n)
{
	switch (json_object_get_type(shown)) {
	case json_type_int:
	case json_type_double: {
		const char *t = json_object_to_json_string_ext(shown, JSON_C_TO_STRING_PLAIN);

		return t && strlen(t) == n && !memcmp(t, s, n);
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(shown); i++)
			if (shown_spells(json_object_array_get_idx(shown, i), s, n))
				return true;
		return false;
	case json_type_object: {
		json_object_object_foreach(shown, k, v) {
			(void)k;
			if (shown_spells(v, s, n))
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

int dsfs_numbers_check_text(const char *text, size_t len, json_object *shown, char *why, size_t whylen)
{
	for (size_t i = 0; i < len; i++) {
		size_t n;
		int ret;

		if (text[i] == '"') { /* a string: its contents are not numbers */
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			continue;
		}
		if (!strchr("-+.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", text[i]) || !text[i])
			continue;
		for (n = 0; i + n < len && text[i + n] &&
		     strchr("-+.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz",
			    text[i + n]);
		     n++)
			;
		if ((n == 4 && (!memcmp(text + i, "true", 4) || !memcmp(text + i, "null", 4))) ||
		    (n == 5 && !memcmp(text + i, "false", 5))) {
			i += n - 1;
			continue;
		}
		if (!shown_spells(shown, text + i, n) && (ret = dsfs_numbers_exact(text + i, n, why, whylen)))
			return ret;
		i += n - 1;
	}
	return 0;
}

/* A json-c integer as a sign and a magnitude: int64 and uint64 alike. */
static void int_parts(json_object *v, bool *neg, uint64_t *mag)
{
	int64_t i = json_object_get_int64(v);

	*neg = i < 0;
	*mag = i < 0 ? (uint64_t)(-(i + 1)) + 1 : json_object_get_uint64(v);
}

bool dsfs_numbers_same(json_object *a, json_object *b)
{
	bool an, bn;
	uint64_t am, bm;
	double d;

	if (json_object_is_type(a, json_type_double) && json_object_is_type(b, json_type_double))
		return json_object_get_double(a) == json_object_get_double(b);
	if (json_object_is_type(a, json_type_double)) {
		json_object *t = a;

		a = b;
		b = t;
	}
	int_parts(a, &an, &am);
	if (json_object_is_type(b, json_type_int)) {
		int_parts(b, &bn, &bm);
		return an == bn && am == bm;
	}
	/* an integer and a double: the same when the double is that whole number exactly */
	d = json_object_get_double(b);
	if (d != floor(d) || fabs(d) > DOUBLE_EXACT_MAX)
		return false;
	return (d < 0) == an && (uint64_t)fabs(d) == am;
}
