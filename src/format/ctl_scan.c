// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reading what is written to a control file, before any of it is parsed:
 * where one command ends and the next begins (a line, or the lines of a
 * JSON object, braces inside strings not counting), and how much of it is
 * valid UTF-8. It sees bytes as they come, in writes of any size, keeps
 * its state in the caller's struct dsfs_ctl_scan and allocates nothing;
 * what a command means is ctl.c's. And, within one command, where its
 * words and values end, which the grammar and the shown command share.
 */
#include "format/ctl.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* Stages of a command's opening, as dsfs_ctl_scan reads it. */
enum { SCAN_LEAD, SCAN_VERB, SCAN_GAP, SCAN_OBJECT, SCAN_LINE };

void dsfs_ctl_scan_init(struct dsfs_ctl_scan *s, bool verb)
{
	memset(s, 0, sizeof(*s));
	s->verb = verb;
	s->stage = SCAN_LEAD;
}

bool dsfs_ctl_scan_open(const struct dsfs_ctl_scan *s)
{
	return s->stage == SCAN_OBJECT && s->depth > 0;
}

size_t dsfs_ctl_scan(struct dsfs_ctl_scan *s, const char *p, size_t n, bool *ended)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool blank = c == ' ' || c == '\t' || c == '\r';

		if (c == '\n' && !dsfs_ctl_scan_open(s)) {
			dsfs_ctl_scan_init(s, s->verb);
			*ended = true;
			return i + 1;
		}
		switch (s->stage) {
		case SCAN_LEAD:
			if (!blank)
				s->stage = s->verb ? SCAN_VERB : c == '{' ? SCAN_OBJECT : SCAN_LINE;
			s->depth = s->stage == SCAN_OBJECT;
			break;
		case SCAN_VERB:
			if (blank)
				s->stage = SCAN_GAP;
			break;
		case SCAN_GAP:
			if (!blank)
				s->stage = c == '{' ? SCAN_OBJECT : SCAN_LINE;
			s->depth = s->stage == SCAN_OBJECT;
			break;
		case SCAN_OBJECT:
			if (s->escaped)
				s->escaped = false;
			else if (s->in_string)
				s->escaped = c == '\\', s->in_string = c != '"';
			else if (c == '"')
				s->in_string = true;
			else if (c == '{')
				s->depth++;
			else if (c == '}')
				s->depth--;
			break;
		default:
			break;
		}
	}
	*ended = false;
	return n;
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

const char *dsfs_ctl_skip_space(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

bool dsfs_ctl_json_exact(const char *p, size_t n, json_object **out)
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
			dsfs_ctl_skip_space(p + json_tokener_get_parse_end(tok), p + n) == p + n;
	}
	json_tokener_free(tok);
	if (!whole) {
		json_object_put(o);
		return false;
	}
	*out = o;
	return true;
}

const char *dsfs_ctl_value_end(const char *p, const char *end)
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
