// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The estate file (docs/estate.md): [member] sections of key = value lines,
 * read once at start-up into struct dsfs_member_conf. Every mistake is one
 * line naming the file, the line and what is wrong, with the key meant
 * when a key is a typo of one; values are unquoted as in credentials files.
 */
#include "mount/estate_conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/ctl.h"
#include "mount/options.h"
#include "util/privfile.h"

/*
 * Why n cannot name a member, or NULL when it can. A member's name is a
 * directory of the mount and a word of every log line and .dsfs/status
 * line about it: printable UTF-8, none of the names the tree gives meaning
 * to (tasks/<member> sits beside tasks/latest; .where, .count, .by-id and
 * new are the names of a collection's own entries).
 */
static const char *member_name_fault(const char *n)
{
	static const char *const reserved[] = {
		".", "..", "tasks", "latest", ".dsfs", "events", ".where", ".count", ".by-id", "new",
	};

	if (!*n)
		return "a member needs a name";
	if (strlen(n) >= 200)
		return "a member's name is at most 199 bytes";
	if (strchr(n, '/'))
		return "a member's name holds no '/'";
	for (const char *p = n; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "a member's name holds no tab or other control character";
	if (dsfs_ctl_utf8_prefix(n, strlen(n)) != strlen(n))
		return "a member's name is valid UTF-8";
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (!strcmp(n, reserved[i]))
			return "the name is reserved (not ., .., tasks, latest, events, .dsfs, .where, .count, "
			       ".by-id or new)";
	return NULL;
}

/* True when some dialect's auth reads key: it may stand inline in a member's section. */
static bool credential_key(const char *key)
{
	for (size_t i = 0; dsfs_dialects[i]; i++)
		for (size_t k = 0; dsfs_dialects[i]->auth->keys[k]; k++)
			if (!strcmp(dsfs_dialects[i]->auth->keys[k], key))
				return true;
	return false;
}

void dsfs_estate_conf_free(struct dsfs_member_conf *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		dsfs_credentials_clear(&m[i].cred);
		free(m[i].name);
		free(m[i].url);
		free(m[i].api);
		free(m[i].array);
		free(m[i].credentials);
		free(m[i].cacert);
	}
	free(m);
}

/* The keys of a member's own (credentials keys aside), and where each goes. */
static const struct {
	const char *key;
	size_t off;
} member_keys[] = {
	{ "url", offsetof(struct dsfs_member_conf, url) },
	{ "api", offsetof(struct dsfs_member_conf, api) },
	{ "array", offsetof(struct dsfs_member_conf, array) },
	{ "credentials", offsetof(struct dsfs_member_conf, credentials) },
	{ "cacert", offsetof(struct dsfs_member_conf, cacert) },
};

/* The known key word is a typo of, or NULL: every member key and every dialect's credentials key. */
static const char *nearest_key(const char *word)
{
	const char *cands[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(member_keys) / sizeof(member_keys[0]); i++)
		cands[n++] = member_keys[i].key;
	for (size_t i = 0; dsfs_dialects[i]; i++)
		for (size_t k = 0; dsfs_dialects[i]->auth->keys[k] && n + 1 < sizeof(cands) / sizeof(cands[0]); k++)
			cands[n++] = dsfs_dialects[i]->auth->keys[k];
	cands[n] = NULL;
	return dsfs_options_nearest(word, cands);
}

/* True when key is a member's own or some dialect's credentials key. */
static bool known_key(const char *key)
{
	for (size_t i = 0; i < sizeof(member_keys) / sizeof(member_keys[0]); i++)
		if (!strcmp(key, member_keys[i].key))
			return true;
	return credential_key(key);
}

/*
 * Takes the [name] line l (its brackets still on) as the start of member m[*n].
 * 0, or -errno with err set.
 */
static int parse_section(char *l, struct dsfs_member_conf **m, size_t *n, const char *path, int lineno, char *err,
			 size_t errlen)
{
	char *end = strchr(l, ']');
	struct dsfs_member_conf *p;

	if (!end || end[1]) {
		snprintf(err, errlen, "estate file %s, line %d: expected [member-name]", path, lineno);
		return -EINVAL;
	}
	*end = '\0';
	l = dsfs_options_trim(l + 1);
	if (member_name_fault(l)) {
		/* the name itself may not print: %.*s of it up to its first fault would mislead */
		snprintf(err, errlen,
			 "estate file %s, line %d: this section's name cannot name a member "
			 "(it becomes a directory): %s",
			 path, lineno, member_name_fault(l));
		return -EINVAL;
	}
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*m)[i].name, l)) {
			snprintf(err, errlen, "estate file %s, line %d: member '%s' is named twice", path, lineno, l);
			return -EINVAL;
		}
	if (*n >= DSFS_ESTATE_MAX_MEMBERS) {
		snprintf(err, errlen, "estate file %s: more than %d members", path, DSFS_ESTATE_MAX_MEMBERS);
		return -EINVAL;
	}
	p = realloc(*m, (*n + 1) * sizeof(**m));
	if (!p)
		return -ENOMEM;
	*m = p;
	memset(&p[*n], 0, sizeof(p[*n]));
	if (!(p[*n].name = strdup(l)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Takes the line l, not a section's, into member mc (NULL before the first section). 0, or -errno with err set. */
static int parse_pair(char *l, struct dsfs_member_conf *mc, const char *path, int lineno, char *err, size_t errlen)
{
	char *eq = strchr(l, '='), *colon = strchr(l, ':'), *key, *val, **dst = NULL;
	const char *why = NULL, *near;

	if (colon && (!eq || colon < eq) && mc) {
		/* "url: http://..." as in YAML: say what the line should be (not its value: it may be a secret) */
		*colon = '\0';
		key = dsfs_options_trim(l);
		near = known_key(key) ? key : nearest_key(key);
		if (near) {
			snprintf(err, errlen,
				 "estate file %s, line %d: write %s = ..., with '=' (key = value lines), "
				 "not '%s:'",
				 path, lineno, near, key);
			return -EINVAL;
		}
		eq = NULL; /* whatever follows, not a key = value line */
	}
	if (!eq || !mc) {
		snprintf(err, errlen, "estate file %s, line %d: expected key = value inside a [member] section", path,
			 lineno);
		return -EINVAL;
	}
	*eq = '\0';
	key = dsfs_options_trim(l);
	if (!known_key(key)) {
		near = nearest_key(key);
		snprintf(err, errlen, "estate file %s, line %d: unknown key '%s'%s%s%s", path, lineno, key,
			 near ? ": did you mean '" : "", near ? near : "", near ? "'?" : "");
		return -EINVAL;
	}
	if (!(val = dsfs_options_value(eq + 1, &why))) {
		snprintf(err, errlen, "estate file %s, line %d: '%s' %s", path, lineno, key, why);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(member_keys) / sizeof(member_keys[0]); i++)
		if (!strcmp(key, member_keys[i].key))
			dst = (char **)((char *)mc + member_keys[i].off);
	if (!dst) {
		/* a credentials key: which of them the member's dialect reads is checked when it is started */
		if (dsfs_credentials_get(&mc->cred, key)) {
			snprintf(err, errlen, "estate file %s, line %d: '%s' is given twice", path, lineno, key);
			return -EINVAL;
		}
		return dsfs_credentials_set(&mc->cred, key, val);
	}
	if (*dst) {
		/* which one was meant cannot be known: the last winning silently would hide the other */
		snprintf(err, errlen, "estate file %s, line %d: '%s' is given twice in [%s]", path, lineno, key,
			 mc->name);
		return -EINVAL;
	}
	return (*dst = strdup(val)) ? 0 : -ENOMEM;
}

int dsfs_estate_parse(const char *path, struct dsfs_member_conf **out, size_t *nout, char *err, size_t errlen)
{
	struct dsfs_member_conf *m = NULL;
	char line[4096];
	size_t n = 0, i;
	int lineno = 0, ret;
	FILE *f;

	*out = NULL;
	*nout = 0;
	f = dsfs_privfile_open(path, "estate file", err, errlen, &ret);
	if (!f)
		return ret;
	ret = 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		char *l = dsfs_options_trim(line);

		lineno++;
		if (lineno == 1 && !strncmp(l, "\xef\xbb\xbf", 3))
			l += 3; /* a byte-order mark some editors write */
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[')
			ret = parse_section(l, &m, &n, path, lineno, err, errlen);
		else
			ret = parse_pair(l, n ? &m[n - 1] : NULL, path, lineno, err, errlen);
	}
	if (ret)
		goto out;
	ret = -EINVAL;
	for (i = 0; i < n; i++) {
		if (!m[i].url) {
			snprintf(err, errlen, "estate file %s: member '%s' has no url", path, m[i].name);
			goto out;
		}
	}
	if (!n) {
		snprintf(err, errlen, "estate file %s names no member ([name] sections)", path);
		goto out;
	}
	*out = m;
	*nout = n;
	m = NULL;
	ret = 0;
out:
	explicit_bzero(line, sizeof(line));
	fclose(f);
	dsfs_estate_conf_free(m, n);
	return ret;
}
