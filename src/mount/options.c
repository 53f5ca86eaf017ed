// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Option parsing with fuse_opt: dsfs's keys are consumed here, the rest are
 * kept for libfuse. Numbers are taken as strings first so a bad value can be
 * reported by name rather than as fuse_opt's generic failure.
 */
#include "mount/options.h"

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_opt.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/nearest.h"
#include "util/privfile.h"

enum { KEY_HELP, KEY_VERSION, KEY_RO };

#define OPT(t, field)                                      \
	{                                                  \
		t, offsetof(struct dsfs_options, field), 1 \
	}

// clang-format off
static const struct fuse_opt opt_spec[] = {
	OPT("credentials=%s", credentials),
	OPT("array=%s", array),
	OPT("cacert=%s", cacert),
	OPT("client_cert=%s", client_cert),
	OPT("client_key=%s", client_key),
	OPT("insecure", insecure),
	OPT("allow_delete", allow_delete),
	OPT("allow_edit", allow_edit),
	OPT("allow_other_actions", allow_other_actions),
	OPT("dry_run", dry_run),
	OPT("username=%s", username_opt),
	OPT("api=%s", api),
	OPT("estate=%s", estate),
	OPT("log=%s", log_file),
	OPT("log_size=%s", s_log_size),
	OPT("wait_timeout=%s", s_wait_timeout),
	OPT("cache_ttl=%s", s_cache_ttl),
	OPT("timeout=%s", s_timeout),
	OPT("connect_timeout=%s", s_connect_timeout),
	OPT("page_size=%s", s_page_size),
	OPT("retries=%s", s_retries),
	OPT("max_conns=%s", s_max_conns),
	OPT("prefetch=%s", s_prefetch),
	OPT("cache_size=%s", s_cache_size),
	OPT("max_body=%s", s_max_body),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};
// clang-format on

/*
 * The -o keys libfuse 3.14 and the kernel take (lib/fuse.c, lib/mount.c,
 * lib/helper.c, lib/fuse_lowlevel.c): anything neither dsfs's nor these is a
 * mistake, named before any file is read or any request sent.
 */
// clang-format off
static const char *const fuse_keys[] = {
	"allow_other", "allow_root", "auto_unmount", "blkdev", "blksize", "default_permissions",
	"context", "fscontext", "defcontext", "rootcontext", "max_read", "user", "rw", "suid", "nosuid",
	"dev", "nodev", "exec", "noexec", "async", "sync", "dirsync", "atime", "noatime", "fsname",
	"subtype", "debug", "kernel_cache", "auto_cache", "noauto_cache", "no_rofd_flush", "umask",
	"uid", "gid", "entry_timeout", "attr_timeout", "ac_attr_timeout", "negative_timeout",
	"noforget", "remember", "clone_fd", "max_idle_threads", "max_threads",
};
// clang-format on

/* Length of an option's key: "cache_ttl=%s" and "cache_ttl=5" both give 9. */
static size_t key_len(const char *opt)
{
	return strcspn(opt, "=");
}

static bool known_key(const char *arg, size_t n)
{
	for (size_t i = 0; opt_spec[i].templ; i++)
		if (key_len(opt_spec[i].templ) == n && !strncmp(opt_spec[i].templ, arg, n))
			return true;
	for (size_t i = 0; i < sizeof(fuse_keys) / sizeof(fuse_keys[0]); i++)
		if (strlen(fuse_keys[i]) == n && !strncmp(fuse_keys[i], arg, n))
			return true;
	return false;
}

/* How far a typo may be from what was meant: one edit in a short word, two in a longer one. */
static size_t typo_bound(size_t n)
{
	return n < 5 ? 2 : 3;
}

/* The known key nearest to the n bytes of arg, or NULL when none is close. */
static const char *nearest_key(const char *arg, size_t n, size_t *len)
{
	struct dsfs_nearest near = { .typed = arg, .len = n, .d = typo_bound(n) };

	for (size_t i = 0; opt_spec[i].templ; i++)
		if (opt_spec[i].templ[0] != '-')
			dsfs_nearest_offer(&near, opt_spec[i].templ, key_len(opt_spec[i].templ));
	for (size_t i = 0; i < sizeof(fuse_keys) / sizeof(fuse_keys[0]); i++)
		dsfs_nearest_offer(&near, fuse_keys[i], strlen(fuse_keys[i]));
	*len = near.best_len;
	return near.best;
}

const char *dsfs_options_nearest(const char *word, const char *const *cands)
{
	struct dsfs_nearest near = { .typed = word, .len = strlen(word), .d = typo_bound(strlen(word)) };

	for (size_t i = 0; cands[i]; i++)
		dsfs_nearest_offer(&near, cands[i], strlen(cands[i]));
	return near.best;
}

/*
 * The options libfuse takes that start with '-' (lib/helper.c, lib/mount.c,
 * lib/fuse_lowlevel.c of 3.14), beside -o, -h and -V: any other is a
 * mistake, such as --credentials=FILE for -o credentials=FILE.
 */
static const char *const fuse_dash_options[] = { "-f", "-d", "--debug", "-s", "-r", "-n" };

static bool known_dash_option(const char *arg)
{
	for (size_t i = 0; i < sizeof(fuse_dash_options) / sizeof(fuse_dash_options[0]); i++)
		if (!strcmp(arg, fuse_dash_options[i]))
			return true;
	return false;
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct dsfs_options *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_OPT:
		/* -f, -d, -s and the like are libfuse's; a -o key must be someone's */
		if (arg[0] == '-' && !o->unknown_dash && !known_dash_option(arg)) {
			o->unknown_dash = strndup(arg, key_len(arg)); /* not its value: --password=... is a secret */
			o->unknown_dash_valued = arg[key_len(arg)] == '=';
		} else if (arg[0] != '-' && !o->unknown && !known_key(arg, key_len(arg))) {
			o->unknown = strndup(arg, key_len(arg));
		}
		return 1;
	case KEY_HELP:
		o->show_help = true;
		return 1; /* libfuse prints its part too */
	case KEY_VERSION:
		o->show_version = true;
		return 1;
	case KEY_RO:
		o->ro = true;
		return 1; /* the kernel enforces it */
	case FUSE_OPT_KEY_NONOPT:
		if (o->nonopts++ == 0) {
			o->url = strdup(arg);
			return 0;
		}
		if (o->nonopts == 2)
			o->mountpoint = strdup(arg);
		else if (!o->extra)
			o->extra = strdup(arg);
		return 1; /* the mountpoint, for fuse_parse_cmdline */
	default:
		return 1;
	}
}

static int number(const char *name, const char *s, double min, double max, double *out, char *err, size_t len)
{
	char *end;
	double v;

	if (!s)
		return 0;
	v = strtod(s, &end);
	if (end == s || *end || isnan(v) || v < min || v > max) {
		snprintf(err, len, "-o %s=%s: expected a number from %g to %g", name, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* -o log=FILE relative to where dsfs was started: the daemon changes to / when it detaches. */
static int absolute_log_path(struct dsfs_options *o, char *err, size_t errlen)
{
	char cwd[4096], *abs;

	if (!o->log_file || o->log_file[0] == '/')
		return 0;
	if (!*o->log_file) {
		snprintf(err, errlen, "-o log= needs a file name");
		return -EINVAL;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		snprintf(err, errlen, "-o log=%s: cannot tell the current directory (%s): give an absolute path",
			 o->log_file, strerror(errno));
		return -EINVAL;
	}
	if (asprintf(&abs, "%s/%s", strcmp(cwd, "/") ? cwd : "", o->log_file) < 0)
		return -ENOMEM;
	free(o->log_file);
	o->log_file = abs;
	return 0;
}

int dsfs_options_parse(struct fuse_args *args, struct dsfs_options *o, char *err, size_t errlen)
{
	double page = 1000, retries = 3, conns = 16, cache_mb = 512, body_mb = 64, prefetch = -1, log_mb = 10;
	size_t n;
	int ret = 0;

	o->cache_ttl = 2;
	o->timeout = 30;
	o->connect_timeout = 10;
	o->wait_timeout = 3600;
	if (fuse_opt_parse(args, o, opt_spec, proc) == -1) {
		snprintf(err, errlen, "cannot parse the options");
		return -EINVAL;
	}
	if (o->show_help || o->show_version)
		return 0;
	if (o->unknown_dash) {
		/* --credentials=FILE: said as dsfs takes it; the value is not shown (--password=... is a secret) */
		const char *key = o->unknown_dash + strspn(o->unknown_dash, "-"),
			   *v = o->unknown_dash_valued ? "=..." : "";
		size_t l;
		const char *near = *key ? nearest_key(key, strlen(key), &l) : NULL;

		if (near)
			snprintf(err, errlen,
				 "unknown option %s%s: dsfs takes its options as -o NAME[=VALUE]: did you "
				 "mean -o %.*s%s? (dsfs --help lists the options)",
				 o->unknown_dash, v, (int)l, near, v);
		else
			snprintf(err, errlen, "unknown option %s%s (dsfs --help lists the options)", o->unknown_dash,
				 v);
		return -EINVAL;
	}
	if (o->unknown) {
		size_t l;
		const char *near = nearest_key(o->unknown, strlen(o->unknown), &l);

		if (near)
			snprintf(err, errlen,
				 "unknown option -o %s: did you mean -o %.*s? (dsfs --help lists "
				 "the options)",
				 o->unknown, (int)l, near);
		else
			snprintf(err, errlen, "unknown option -o %s (dsfs --help lists the options)", o->unknown);
		return -EINVAL;
	}
	if (o->extra) {
		snprintf(err, errlen,
			 "unexpected argument '%s' after the mountpoint: usage is dsfs [options] URL "
			 "MOUNTPOINT (an option's value with spaces needs quotes)",
			 o->extra);
		return -EINVAL;
	}
	ret = ret ?: number("cache_ttl", o->s_cache_ttl, 0, 86400 * 365, &o->cache_ttl, err, errlen);
	ret = ret ?: number("timeout", o->s_timeout, 0.1, 86400, &o->timeout, err, errlen);
	ret = ret ?: number("connect_timeout", o->s_connect_timeout, 0.1, 86400, &o->connect_timeout, err, errlen);
	ret = ret ?: number("wait_timeout", o->s_wait_timeout, 0, 86400 * 7, &o->wait_timeout, err, errlen);
	ret = ret ?: number("page_size", o->s_page_size, 1, 1000000, &page, err, errlen);
	ret = ret ?: number("retries", o->s_retries, 0, 100, &retries, err, errlen);
	ret = ret ?: number("max_conns", o->s_max_conns, 1, 256, &conns, err, errlen);
	ret = ret ?: number("prefetch", o->s_prefetch, 0, 256, &prefetch, err, errlen);
	ret = ret ?: number("cache_size", o->s_cache_size, 0, 1024 * 1024, &cache_mb, err, errlen);
	ret = ret ?: number("max_body", o->s_max_body, 1, 64 * 1024, &body_mb, err, errlen);
	ret = ret ?: number("log_size", o->s_log_size, 0.01, 1024 * 1024, &log_mb, err, errlen);
	if (ret)
		return ret;
	ret = absolute_log_path(o, err, errlen);
	if (ret)
		return ret;
	o->page_size = (unsigned)page;
	o->retries = (int)retries;
	o->max_conns = (int)conns;
	o->prefetch = prefetch < 0 ? o->max_conns : (int)prefetch;
	o->cache_size = (size_t)(cache_mb * 1024 * 1024);
	o->max_body = (size_t)(body_mb * 1024 * 1024);
	o->log_size = (size_t)(log_mb * 1024 * 1024);
	if (o->connect_timeout > o->timeout)
		o->connect_timeout = o->timeout;

	if (o->url && !strncmp(o->url, "estate:", 7)) {
		/* mount.dsfs and fstab give the estate as the source: estate:/etc/dsfs/estate.conf */
		free(o->estate);
		o->estate = strdup(o->url + 7);
		free(o->url);
		o->url = NULL;
		return o->estate ? 0 : -ENOMEM;
	}
	if (o->estate) {
		if (o->url && o->nonopts == 1) {
			/* dsfs -o estate=FILE MOUNTPOINT: the one argument is the mountpoint */
			if (fuse_opt_add_arg(args, o->url))
				return -ENOMEM;
			o->mountpoint = o->url;
			o->url = NULL;
		} else if (o->url) {
			snprintf(err, errlen, "-o estate= names every URL: give only the mountpoint");
			return -EINVAL;
		}
		return 0;
	}
	if (!o->url) {
		snprintf(
			err, errlen,
			"no URL given: usage is dsfs [options] URL MOUNTPOINT, "
			"e.g. dsfs -o credentials=/etc/dsfs/array1.cred https://array1:8443/storageplugin/api /mnt/dsfs");
		return -EINVAL;
	}
	if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
		snprintf(err, errlen, "URL '%s' must start with http:// or https://", o->url);
		return -EINVAL;
	}
	if (strchr(o->url, '@')) {
		snprintf(err, errlen,
			 "URL must not carry credentials: put them in a credentials file "
			 "(-o credentials=FILE)");
		return -EINVAL;
	}
	n = strlen(o->url);
	while (n > 8 && o->url[n - 1] == '/')
		o->url[--n] = '\0';
	if (!strncmp(o->url, "http://", 7) && (o->insecure || o->cacert || o->client_cert)) {
		snprintf(err, errlen, "TLS options (insecure, cacert, client_cert) need an https:// URL");
		return -EINVAL;
	}
	if (!o->client_cert != !o->client_key) {
		snprintf(err, errlen, "mutual TLS needs both -o client_cert=FILE and -o client_key=FILE");
		return -EINVAL;
	}
	return 0;
}

char *dsfs_options_url_host(const char *url)
{
	const char *p = strstr(url, "://"), *end;

	if (!p)
		return NULL;
	p += 3;
	if (*p == '[') { /* IPv6 literal */
		end = strchr(p, ']');
		return end ? strndup(p + 1, (size_t)(end - p - 1)) : NULL;
	}
	end = p + strcspn(p, ":/?#");
	return end > p ? strndup(p, (size_t)(end - p)) : NULL;
}

char *dsfs_options_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

bool dsfs_options_dialect_reads(const struct dsfs_dialect *d, const char *key)
{
	for (size_t i = 0; d->auth->keys[i]; i++)
		if (!strcmp(d->auth->keys[i], key))
			return true;
	return false;
}

/* "username=, password= or array=": the keys d reads, for messages. */
static void key_list(const struct dsfs_dialect *d, char *buf, size_t len)
{
	size_t o = 0, n = 0;

	while (d->auth->keys[n])
		n++;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s=",
				      i == 0               ? ""
					      : i + 1 == n ? " or "
							   : ", ",
				      d->auth->keys[i]);
}

char *dsfs_options_value(char *v, const char **why)
{
	size_t n;

	v = dsfs_options_trim(v);
	n = strlen(v);
	if (n && (*v == '"' || *v == '\'')) {
		if (n < 2 || v[n - 1] != *v) {
			*why = *v == '"' ? "opens a quote (\") it does not close: quote the whole value, or none of it"
					 : "opens a quote (') it does not close: quote the whole value, or none of it";
			return NULL;
		}
		v[n - 1] = '\0';
		v++;
		n -= 2;
	}
	if (!n) {
		*why = "has an empty value";
		return NULL;
	}
	return v;
}

/* Reads the key=value lines of the credentials file. */
static int read_credentials_file(struct dsfs_options *o, const struct dsfs_dialect *d, char *err, size_t errlen)
{
	char line[4096], keys[256];
	FILE *f;
	int lineno = 0, ret = 0;

	f = dsfs_privfile_open(o->credentials, "credentials file", err, errlen, &ret);
	if (!f)
		return ret;
	while (ret == 0 && fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') || feof(f);
		char *l = dsfs_options_trim(line), *eq, *key, *value;
		const char *why = NULL;

		lineno++;
		if (!whole) {
			snprintf(err, errlen, "credentials file %s, line %d: longer than %zu bytes", o->credentials,
				 lineno, sizeof(line) - 2);
			ret = -EINVAL;
			break;
		}
		if (lineno == 1 && !strncmp(l, "\xef\xbb\xbf", 3))
			l += 3; /* a byte-order mark some editors write */
		if (!*l || *l == '#')
			continue;
		eq = strchr(l, '=');
		if (eq)
			*eq = '\0';
		key = dsfs_options_trim(l);
		key_list(d, keys, sizeof(keys));
		if (!eq && strchr(key, ':')) {
			/* "username: admin": the value is not shown, it may be the secret */
			snprintf(err, errlen,
				 "credentials file %s, line %d: write key=value lines, not key: value "
				 "(expected %s)",
				 o->credentials, lineno, keys);
			ret = -EINVAL;
		} else if (eq && dsfs_credentials_get(&o->cred, key)) {
			snprintf(err, errlen, "credentials file %s, line %d: %s= is given twice", o->credentials,
				 lineno, key);
			ret = -EINVAL;
		} else if (!eq || !dsfs_options_dialect_reads(d, key)) {
			const char *near = eq ? dsfs_options_nearest(key, d->auth->keys) : NULL;

			snprintf(err, errlen, "credentials file %s, line %d: expected %s (the %s dialect's keys)%s%s%s",
				 o->credentials, lineno, keys, d->name, near ? "; did you mean " : "", near ? near : "",
				 near ? "=?" : "");
			ret = -EINVAL;
		} else if (!(value = dsfs_options_value(eq + 1, &why))) {
			snprintf(err, errlen, "credentials file %s, line %d: %s= %s", o->credentials, lineno, key, why);
			ret = -EINVAL;
		} else {
			ret = dsfs_credentials_set(&o->cred, key, value); /* a password keeps its inner spaces */
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return ret;
}

int dsfs_options_load_credentials(struct dsfs_options *o, const struct dsfs_dialect *d, char *err, size_t errlen)
{
	const char *env_user = getenv("DSFS_USERNAME"), *env_pw = getenv("DSFS_PASSWORD");
	int ret;

	if (o->credentials && (ret = read_credentials_file(o, d, err, errlen)))
		return ret;
	if (dsfs_options_dialect_reads(d, "username") && !dsfs_credentials_get(&o->cred, "username") &&
	    (o->username_opt || env_user) &&
	    dsfs_credentials_set(&o->cred, "username", o->username_opt ? o->username_opt : env_user))
		return -ENOMEM;
	if (dsfs_options_dialect_reads(d, "password") && !dsfs_credentials_get(&o->cred, "password") && env_pw &&
	    dsfs_credentials_set(&o->cred, "password", env_pw))
		return -ENOMEM;
	if (env_pw) {
		/* no longer needed: keep it out of /proc/PID/environ */
		explicit_bzero((char *)env_pw, strlen(env_pw));
		unsetenv("DSFS_PASSWORD");
	}
	ret = d->auth->check(&o->cred, err, errlen);
	if (ret && o->credentials) {
		char why[768];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "credentials file %s: %s", o->credentials, why);
	}
	return ret;
}

const struct dsfs_dialect *dsfs_options_dialect(const struct dsfs_options *o, bool *guessed, char *err, size_t errlen)
{
	const struct dsfs_dialect *d;
	char names[256];

	*guessed = false;
	if (!o->api)
		return dsfs_dialect_for_url(o->url, guessed);
	d = dsfs_dialect_named(o->api);
	if (!d) {
		dsfs_dialect_names(names, sizeof(names));
		snprintf(err, errlen, "-o api=%s: unknown dialect; dsfs speaks %s", o->api, names);
	}
	return d;
}

void dsfs_options_free(struct dsfs_options *o)
{
	free(o->url);
	free(o->credentials);
	free(o->array);
	free(o->cacert);
	free(o->client_cert);
	free(o->client_key);
	free(o->username_opt);
	free(o->api);
	free(o->estate);
	dsfs_credentials_clear(&o->cred);
	free(o->s_cache_ttl);
	free(o->s_timeout);
	free(o->s_wait_timeout);
	free(o->s_connect_timeout);
	free(o->s_page_size);
	free(o->s_retries);
	free(o->s_max_conns);
	free(o->s_prefetch);
	free(o->s_cache_size);
	free(o->s_max_body);
	free(o->log_file);
	free(o->s_log_size);
	free(o->unknown);
	free(o->unknown_dash);
	free(o->mountpoint);
	free(o->extra);
	memset(o, 0, sizeof(*o));
}
