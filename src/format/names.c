// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Entry-name escaping, collision resolution among siblings, shortening to
 * NAME_MAX, and URL segment encoding. This is the only place that decides
 * what a name looks like in the tree, so the rule documented in
 * docs/tree.md lives here.
 */
#include "format/names.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hex[] = "0123456789ABCDEF";

static char *escape(const char *s, const char *also)
{
	size_t len = strlen(s), i, o = 0;
	char *out = malloc(len * 3 + 1);

	if (!out)
		return NULL;
	if (!strcmp(s, ".") || !strcmp(s, "..")) {
		for (i = 0; i < len; i++)
			o += (size_t)sprintf(out + o, "%%2E");
		return out;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c == '%' || c < 0x20 || c == 0x7f || (also && strchr(also, c))) {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

/* The value of hex digit c, or -1 (sscanf's %x would also take a space or a sign). */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dsfs_names_unescape(const char *s, char **out)
{
	char *o = malloc(strlen(s) + 1), *w = o;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	for (; *s; s++) {
		int hi = *s == '%' ? hex_value(s[1]) : -1, lo = hi >= 0 ? hex_value(s[2]) : -1;

		if (lo < 0) {
			*w++ = *s;
			continue;
		}
		if (hi == 0 && lo == 0) {
			free(o);
			return -EINVAL;
		}
		*w++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*w = '\0';
	*out = o;
	return 0;
}

/* Escaped ids longer than this are represented by a hash in suffixes (rule 5 of docs/tree.md). */
#define ID_TAG_MAX 128

/* The suffix that names resource id after an '@': its escaped id, or "%~" and a hash of it. */
static char *id_tag(const char *id)
{
	char *t = escape(id, "@");
	uint64_t h = 0xcbf29ce484222325ull;

	if (!t || strlen(t) <= ID_TAG_MAX)
		return t;
	/* "%~" never comes out of escape(), so a hashed tag is never an escaped id */
	for (const char *p = id; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ull;
	}
	snprintf(t, strlen(t) + 1, "%%~%016" PRIx64, h);
	return t;
}

/* Bytes of s up to at most max that end on a character: never inside a %XX or a UTF-8 sequence. */
static size_t cut(const char *s, size_t max)
{
	size_t i = 0, keep = 0;

	while (s[i]) {
		unsigned char c = (unsigned char)s[i];
		size_t w = 1;

		if (c == '%' && s[i + 1] && s[i + 2])
			w = 3;
		else if (c >= 0xc0)
			for (w = 1; w < 4 && ((unsigned char)s[i + w] & 0xc0) == 0x80; w++)
				;
		if (i + w > max)
			break;
		i += w;
		keep = i;
	}
	return keep;
}

/* "<entry>@<suffix>", the entry cut so that the whole fits DSFS_NAMES_MAX. */
static char *with_suffix(const char *entry, const char *suffix)
{
	size_t b = strlen(suffix), a = strlen(entry);
	char *s;

	if (a + 1 + b > DSFS_NAMES_MAX)
		a = cut(entry, DSFS_NAMES_MAX - 1 - b);
	s = malloc(a + b + 2);
	if (!s)
		return NULL;
	memcpy(s, entry, a);
	s[a] = '@';
	memcpy(s + a + 1, suffix, b + 1);
	return s;
}

char *dsfs_names_by_id(const char *id)
{
	char *e, *tag, *out;

	if (!*id)
		return strdup("");
	e = escape(id, NULL);
	if (!e || strlen(e) <= DSFS_NAMES_MAX)
		return e;
	tag = id_tag(id);
	out = tag ? with_suffix(e, tag) : NULL;
	free(tag);
	free(e);
	return out;
}

char *dsfs_names_entry(const char *name, const char *id)
{
	if (!name || !*name)
		return escape(id && *id ? id : "%", NULL);
	return escape(name, NULL);
}

char *dsfs_names_url_segment(const char *s)
{
	size_t len = strlen(s), i, o = 0;
	bool dots = !strcmp(s, ".") || !strcmp(s, "..");
	char *out = malloc(len * 3 + 1);

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			c == '_' || c == '~' || (c == '.' && !dots);

		if (keep) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9'    ? c - '0'
		: c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10
				       : -1;
}

char *dsfs_names_url_unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *w = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		int hi = s[0] == '%' ? hex_digit(s[1]) : -1, lo = hi >= 0 ? hex_digit(s[2]) : -1;

		if (lo >= 0) {
			if (!(*w++ = (char)(hi << 4 | lo))) {
				free(out);
				return NULL;
			}
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return out;
}

struct slot {
	char *entry;
	size_t idx;
};

static int cmp_slot(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	int c = strcmp(x->entry, y->entry);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool is_reserved(const char *e, const char *const *reserved)
{
	for (; reserved && *reserved; reserved++)
		if (!strcmp(e, *reserved))
			return true;
	return false;
}

/* Replaces entries[i] by entries[i]@suffix. */
static int suffix_entry(char **entries, size_t i, const char *suffix)
{
	char *s = with_suffix(entries[i], suffix);

	if (!s)
		return -ENOMEM;
	free(entries[i]);
	entries[i] = s;
	return 0;
}

int dsfs_names_dedupe(char **entries, char *const *ids, size_t n, const char *const *reserved)
{
	struct slot *slots;
	bool *suffixed;
	int round, ret = 0;
	size_t i, j;

	if (n == 0)
		return 0;
	slots = malloc(n * sizeof(*slots));
	suffixed = calloc(n, sizeof(*suffixed));
	if (!slots || !suffixed) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (is_reserved(entries[i], reserved) || strlen(entries[i]) > DSFS_NAMES_MAX) {
			char *id = id_tag(ids[i]);

			if (!id || suffix_entry(entries, i, id)) {
				free(id);
				ret = -ENOMEM;
				goto out;
			}
			free(id);
			suffixed[i] = true;
		}
	}
	/*
	 * Each round suffixes every unsuffixed member of a collision. Suffixed
	 * entries are unique whenever ids are; a run made only of suffixed
	 * entries means duplicate ids, and its members are numbered instead.
	 */
	for (round = 0; round < 4; round++) {
		bool changed = false;

		for (i = 0; i < n; i++) {
			slots[i].entry = entries[i];
			slots[i].idx = i;
		}
		qsort(slots, n, sizeof(*slots), cmp_slot);
		for (i = 0; i < n; i = j) {
			size_t plain = 0;

			for (j = i + 1; j < n && !strcmp(slots[i].entry, slots[j].entry); j++)
				;
			if (j - i < 2)
				continue;
			for (size_t k = i; k < j; k++)
				plain += !suffixed[slots[k].idx];
			for (size_t k = i; k < j; k++) {
				size_t idx = slots[k].idx;
				char num[32];
				char *id;

				if (plain && suffixed[idx])
					continue;
				if (!plain) {
					snprintf(num, sizeof(num), "%zu", k - i + 1);
					id = strdup(num);
				} else {
					id = id_tag(ids[idx]);
				}
				if (!id || suffix_entry(entries, idx, id)) {
					free(id);
					ret = -ENOMEM;
					goto out;
				}
				free(id);
				suffixed[idx] = true;
				changed = true;
			}
		}
		if (!changed)
			break;
	}
out:
	free(slots);
	free(suffixed);
	return ret;
}
