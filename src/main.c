// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dsfs: mounts a storage management REST API as a directory tree. This file
 * owns start-up: options, the mount point, credentials, the first login and
 * the API's probe (so that a wrong URL or password fails here, in one line,
 * before anything is mounted), and shutdown with logout.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_opt.h>

#include "cache/cache.h"
#include "net/errmap.h"
#include "fs/events.h"
#include "fs/fs.h"
#include "fuse/loop.h"
#include "net/http.h"
#include "util/locks.h"
#include "util/log.h"
#include "mount/estate.h"
#include "mount/options.h"
#include "dialect/dialect.h"
#include "net/session.h"
#include "fs/tasks.h"
#include "net/tls.h"
#include "fs/waiters.h"
#include "mount/waitcmd.h"

static void usage(const char *prog)
{
	printf("usage: %s [options] URL MOUNTPOINT\n"
	       "       %s [options] -o estate=FILE MOUNTPOINT\n"
	       "       dsfs wait [--timeout=SECONDS] TASK...   (waits for tasks of a mount: dsfs wait --help)\n"
	       "\n"
	       "Mounts the storage management API at URL on MOUNTPOINT as a tree of JSON files,\n"
	       "in any of the dialects listed below.\n"
	       "\n"
	       "dsfs options:\n"
	       "    -o estate=FILE         mount several arrays and consoles at once, each under\n"
	       "                           MOUNTPOINT/<member>/ (the file: man dsfs); then no URL is\n"
	       "                           given (or give estate:FILE as the URL, e.g. in fstab)\n"
	       "    -o api=DIALECT         one of the dialects below (default: recognised from the URL;\n"
	       "                           when it names none, storageplugin, with a warning)\n"
	       "    -o credentials=FILE    key=value lines, the keys the dialect reads (below).\n"
	       "                           FILE must not be readable or writable by group or others\n"
	       "                           (chmod 600). Without it, DSFS_USERNAME and DSFS_PASSWORD.\n"
	       "    -o username=NAME       user name, when the credentials file has none\n"
	       "                           (DSFS_PASSWORD then gives the password, e.g. from a\n"
	       "                           systemd unit's root-only EnvironmentFile)\n"
	       "    -o array=NAME          storage array (host name or IP) to log in to\n"
	       "                           (default: the URL's host)\n"
	       "    -o cache_ttl=SECONDS   how long listings and files stay fresh (default 2;\n"
	       "                           0 reads through on every open)\n"
	       "    -o timeout=SECONDS     bound on a whole request, retries included (default 30)\n"
	       "    -o connect_timeout=SECONDS  bound on connecting (default 10)\n"
	       "    -o retries=N           retries of a failed GET, and of any request the server\n"
	       "                           provably did not act on (default 3)\n"
	       "    -o page_size=N         items asked for per list request (default 1000)\n"
	       "    -o max_conns=N         concurrent requests and connections per endpoint (default 16)\n"
	       "    -o prefetch=N          workers that fetch ahead of find, tar, rsync and the\n"
	       "                           like once they walk a directory (default: max_conns;\n"
	       "                           0 turns it off; needs cache_ttl of 1 s or more)\n"
	       "    -o cache_size=MIB      memory bound in MiB: the cache and the kernel's inodes (default 512; 0: none)\n"
	       "    -o max_body=MIB        largest answer accepted, in MiB (default 64)\n"
	       "    -o cacert=FILE         also trust the CA certificates in FILE (PEM)\n"
	       "    -o client_cert=FILE,client_key=FILE  mutual TLS with this certificate and key\n"
	       "    -o insecure            do not verify the server's TLS certificate (unsafe)\n"
	       "    -o wait_timeout=SECONDS  bound on reading tasks/<id>/wait (default 3600)\n"
	       "    -o allow_delete        let rmdir delete snapshots and volumes, and the verbs that\n"
	       "                           destroy or overwrite data (restore, expire, ...) act\n"
	       "                           (otherwise EPERM; dsfs(1) lists them)\n"
	       "    -o allow_edit          let a write of an object file (volume.json) update the\n"
	       "                           object: one PUT of the changed fields (otherwise EPERM)\n"
	       "    -o allow_other_actions with allow_other: other users may also write control\n"
	       "                           files and mkdir/rmdir (default: only the owner acts)\n"
	       "    -o dry_run             check every change (control files, mkdir, rmdir, edits) and\n"
	       "                           show the request it would send, in the control file's result\n"
	       "                           and the log, without sending it (the call succeeds)\n"
	       "    -o ro                  mount read-only: every change fails with EROFS\n"
	       "    -o log=FILE            also append the daemon's log lines, with their time, to\n"
	       "                           FILE (created 0600); MOUNTPOINT/.dsfs/log always holds\n"
	       "                           the most recent ones\n"
	       "    -o log_size=MIB        rotate the log file to FILE.1 when it would pass this\n"
	       "                           size (default 10)\n"
	       "    -f                     stay in the foreground (log to stderr)\n"
	       "    -d                     debug: foreground, log every request (never secrets)\n"
	       "    -s                     single-threaded\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          versions of dsfs and libfuse\n"
	       "\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n"
	       "The tree, the control files and an example per API: man dsfs (dsfs(1)).\n",
	       prog, prog);
	printf("\nDialects (-o api=) and the keys of their credentials files:\n");
	for (size_t i = 0; dsfs_dialects[i]; i++) {
		const struct dsfs_dialect *d = dsfs_dialects[i];

		printf("    %-22s %s (%s)\n", d->name, d->summary, d->url_example);
		printf("    %-22s keys:", "");
		for (size_t k = 0; d->auth->keys[k]; k++)
			printf(" %s=", d->auth->keys[k]);
		printf("\n");
	}
}

/* Bounds on readers waiting for the server, shared by every member: they share the threads. */
static struct dsfs_waiters *waiters;

/* Everything one member of the mount needs, built by start_member. */
struct member {
	const struct dsfs_dialect *dialect;
	struct dsfs_http *http;
	bool shared_http; /* borrowed from an earlier member on the same endpoint */
	struct dsfs_session *session;
	struct dsfs_cache *cache;
	struct dsfs_tasks *tasks;
	struct dsfs_events *events;
	struct dsfs_fs *fs;
};

static void stop_member(struct member *m)
{
	/* the tasks' poller first: a task's end it is telling reaches into the file system */
	dsfs_tasks_free(m->tasks);
	dsfs_fs_free(m->fs);
	dsfs_events_free(m->events);
	dsfs_cache_free(m->cache);
	dsfs_session_free(m->session); /* logs out */
	if (!m->shared_http)
		dsfs_http_free(m->http);
	memset(m, 0, sizeof(*m));
}

/*
 * Logs member m (of url) in and asks the API the dialect's probe, so that
 * a URL that is not the API's root fails here rather than in every
 * directory: 0, or 1 with why saying why not in one line (what answered,
 * and a hint when the URL does not look like the dialect's).
 */
static int login_member(struct member *m, const char *url, char *why, size_t whylen)
{
	char desc[1200], hint[400];
	bool probing = false;
	int ret;

	dsfs_err_clear();
	ret = dsfs_session_login(m->session);
	if (!ret) {
		probing = true;
		ret = dsfs_session_probe(m->session);
	}
	if (!ret)
		return 0;
	if (!dsfs_err_describe(desc, sizeof(desc)))
		snprintf(desc, sizeof(desc), "%s", strerror(-ret));
	if (probing)
		snprintf(why, whylen, "%s does not answer as the %s API: %s", url, m->dialect->name, desc);
	else
		snprintf(why, whylen, "cannot log in to %s: %s", url, desc);
	if (dsfs_dialect_url_hint(m->dialect, url, hint, sizeof(hint)) && strlen(why) + strlen(hint) + 4 < whylen)
		sprintf(why + strlen(why), " (%s)", hint);
	return 1;
}

/* The daemon's resident bytes now (0 when /proc cannot say). */
static size_t resident_bytes(void)
{
	unsigned long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * What of cache_size (bytes) the cache and the kernel's inodes may take:
 * cache_size bounds the daemon's RSS, so what it holds before caching
 * anything (its libraries, TLS, the threads and buffers of a mount, about
 * RESIDENT_MOUNTED more than at start) comes off first, up to half the
 * bound. 0 (no bound) stays 0.
 */
#define RESIDENT_MOUNTED (2u << 20)
static size_t cache_share(size_t cache_size)
{
	size_t base = resident_bytes() + RESIDENT_MOUNTED;

	if (base > cache_size / 2)
		base = cache_size / 2;
	return cache_size - base;
}

/*
 * Builds a member for the API at url with credentials cred (loaded for
 * dialect), then logs in when login is set. Returns 0 when built (and
 * logged in), 1 when built but the login failed (why says so), -1 when it
 * could not be built (why says so).
 */
static int start_member(const struct dsfs_options *o, struct dsfs_credentials *cred, const char *url,
			const struct dsfs_dialect *dialect, const char *array, const char *cacert,
			struct dsfs_http *shared, bool login, struct member *m, char *why, size_t whylen)
{
	struct dsfs_transport net;
	struct dsfs_session_api api = dsfs_dialect_session_api(dialect);
	struct dsfs_http_opts http_opts = {
		.base_url = url,
		.timeout = o->timeout,
		.connect_timeout = o->connect_timeout,
		.cacert = cacert,
		.client_cert = o->client_cert,
		.client_key = o->client_key,
		.insecure = o->insecure,
		.max_body = o->max_body,
		.retries = o->retries,
		.max_conns = o->max_conns,
	};
	struct dsfs_cache_opts cache_opts = {
		.ttl = o->cache_ttl,
		.page_size = o->page_size,
		/* the kernel's inodes take the rest of cache_size (dsfs_mount_opts.node_bytes) */
		.max_bytes = o->cache_size - o->cache_size / DSFS_FUSE_NODE_SHARE,
		.prefetch = o->prefetch,
		.dry_run = o->dry_run,
	};
	struct dsfs_fs_opts fs_opts = {
		.uid = getuid(),
		.gid = getgid(),
		.mounted = time(NULL),
		.ttl = o->cache_ttl,
		.wait_timeout = o->wait_timeout,
		.allow_delete = o->allow_delete,
		.allow_edit = o->allow_edit,
		.allow_other_actions = o->allow_other_actions,
		.tasks_dir = dialect->tasks_dir,
		.waiters = waiters,
	};
	char *host = NULL;
	const char *herr;

	memset(m, 0, sizeof(*m));
	m->dialect = dialect;
	m->shared_http = shared != NULL;
	m->http = shared ? shared : dsfs_http_new(&http_opts, &herr);
	if (!m->http) {
		snprintf(why, whylen, "%s", herr);
		return -1;
	}
	if (array && !dsfs_options_dialect_reads(dialect, "array")) {
		snprintf(why, whylen, "array=%s: the %s dialect logs in to no array", array, dialect->name);
		stop_member(m);
		return -1;
	}
	/* an API that logs in to one array of several: by default, the URL's host */
	if (dsfs_options_dialect_reads(dialect, "array") && !dsfs_credentials_get(cred, "array")) {
		if (!array)
			array = host = dsfs_options_url_host(url);
		if (array && dsfs_credentials_set(cred, "array", array)) {
			free(host);
			snprintf(why, whylen, "out of memory");
			stop_member(m);
			return -1;
		}
	}
	free(host);
	net = dsfs_http_transport(m->http);
	m->session = dsfs_session_new(&net, &api, cred);
	m->cache = m->session ? dsfs_cache_new(dialect, m->session, &cache_opts) : NULL;
	m->tasks = m->session ? dsfs_tasks_new(dialect, m->session) : NULL;
	m->events = m->session && dialect->events ? dsfs_events_new(m->session, dialect->events, o->cache_ttl) : NULL;
	fs_opts.events = m->events;
	m->fs = m->cache && m->tasks ? dsfs_fs_new(m->cache, m->http, m->session, m->tasks, &fs_opts) : NULL;
	if (!m->fs || (dialect->events && !m->events)) {
		snprintf(why, whylen, "out of memory");
		stop_member(m);
		return -1;
	}
	return login ? login_member(m, url, why, whylen) : 0;
}

struct login_job {
	const struct dsfs_member_conf *confs;
	struct member *members;
	size_t n, next;    /* the next member to log in (under lock) */
	size_t logged_in;  /* under lock */
	char (*why)[1400]; /* each member's failure, "" when it logged in */
	struct dsfs_mutex lock;
};

static void *login_worker(void *arg)
{
	struct login_job *j = arg;

	for (;;) {
		size_t i;

		dsfs_lock(&j->lock);
		i = j->next++;
		dsfs_unlock(&j->lock);
		if (i >= j->n)
			return NULL;
		if (login_member(&j->members[i], j->confs[i].url, j->why[i], sizeof(j->why[i])) == 0) {
			j->why[i][0] = '\0';
			dsfs_lock(&j->lock);
			j->logged_in++;
			dsfs_unlock(&j->lock);
		}
	}
}

/*
 * Logs every member of an estate in, LOGIN_WORKERS at a time, so that
 * mounting many members takes about as long as the slowest login, not the
 * sum of them, and a member that hangs delays the mount by one timeout at
 * most. Warns about each member that could not log in; returns how many did.
 */
#define LOGIN_WORKERS 16
static size_t login_members(const struct dsfs_member_conf *confs, struct member *members, size_t n)
{
	struct login_job j = { .confs = confs, .members = members, .n = n };
	pthread_t t[LOGIN_WORKERS];
	size_t started = 0;

	j.why = calloc(n ? n : 1, sizeof(*j.why));
	if (!j.why)
		return 0;
	dsfs_mutex_init(&j.lock, DSFS_LOCK_LOGIN_JOB);
	while (started < LOGIN_WORKERS && started < n && pthread_create(&t[started], NULL, login_worker, &j) == 0)
		started++;
	if (!started)
		login_worker(&j);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	for (size_t i = 0; i < n; i++)
		if (j.why[i][0])
			fprintf(stderr,
				"dsfs: warning: estate member %s: %s; its directory will answer with "
				"errors until it answers as its API (see .dsfs/status)\n",
				confs[i].name, j.why[i]);
	dsfs_mutex_destroy(&j.lock);
	free(j.why);
	return j.logged_in;
}

/* Undoes /proc/self/mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/*
 * Refuses a mountpoint that does not exist or is not a directory, one where
 * a dsfs is already mounted (a second daemon would silently cover the
 * first, as mount(8) refuses for fstab entries), or where a dead FUSE mount
 * is left. 0, or -1 with err naming it and the fix.
 */
static int check_mountpoint(const char *mountpoint, char *err, size_t errlen)
{
	char real[PATH_MAX], line[3 * PATH_MAX];
	struct statfs sf;
	struct stat sb;
	FILE *f;
	int ret = 0;

	if (!strncmp(mountpoint, "/dev/fd/", 8))
		return 0; /* a /dev/fuse descriptor mount.fuse3 opened: libfuse checks it */
	/* each said here in one line: libfuse would print "bad mount point" and dsfs a second, false line */
	if (stat(mountpoint, &sb)) {
		if (errno == ENOTCONN)
			snprintf(err, errlen,
				 "%s: a FUSE file system whose daemon has gone is still mounted "
				 "there: unmount it first with fusermount3 -u %s",
				 mountpoint, mountpoint);
		else if (errno == ENOENT)
			snprintf(err, errlen,
				 "mount point %s does not exist: create the directory first "
				 "(mkdir -p %s)",
				 mountpoint, mountpoint);
		else
			snprintf(err, errlen, "mount point %s: %s", mountpoint, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		/* the kernel would mount a directory tree on a file, and every tool would be confused */
		snprintf(err, errlen, "mount point %s is %s, not a directory: dsfs mounts on a directory", mountpoint,
			 S_ISREG(sb.st_mode) ? "a regular file" : "a special file");
		return -1;
	}
	if (!realpath(mountpoint, real))
		return 0; /* libfuse names what is wrong with it */
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *fields[5], *sep = strstr(line, " - "), *save = NULL, *type, *source;
		int n = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
			fields[n++] = t;
		type = strtok_r(sep + 3, " ", &save);
		source = strtok_r(NULL, " \n", &save);
		if (n < 5 || !type || !source || strcmp(type, "fuse.dsfs"))
			continue;
		unescape_mountinfo(fields[4]);
		if (strcmp(fields[4], real))
			continue;
		unescape_mountinfo(source);
		if (statfs(real, &sf) && errno == ENOTCONN) /* statfs is never answered from a cache */
			snprintf(err, errlen,
				 "%s: %s is still mounted there, but its daemon has gone: unmount "
				 "it first with fusermount3 -u %s",
				 mountpoint, source, mountpoint);
		else
			snprintf(err, errlen,
				 "%s: already mounted: %s (fuse.dsfs); unmount it first with "
				 "fusermount3 -u %s",
				 mountpoint, source, mountpoint);
		ret = -1;
	}
	fclose(f);
	return ret;
}

/*
 * The daemon holds passwords, tokens and session ids: a core dump must not
 * carry them to disk, nor another process of the same user read them
 * through ptrace. Dumps are off for the whole process, before any secret
 * is read.
 */
static void protect_secrets(void)
{
	struct rlimit none = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fprintf(stderr, "dsfs: warning: cannot turn core dumps off: %s\n", strerror(errno));
	setrlimit(RLIMIT_CORE, &none);
}

/*
 * Loads a member's credentials for dialect d into c: its inline keys (each
 * one d reads), then its credentials file, if it names one.
 */
static int member_credentials(const struct dsfs_member_conf *mc, const struct dsfs_dialect *d, struct dsfs_options *c,
			      char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < mc->cred.n; i++) {
		if (!dsfs_options_dialect_reads(d, mc->cred.key[i])) {
			snprintf(err, errlen, "key '%s' is not one the %s dialect reads", mc->cred.key[i], d->name);
			return -EINVAL;
		}
		if (dsfs_credentials_set(&c->cred, mc->cred.key[i], mc->cred.value[i]))
			return -ENOMEM;
	}
	if (mc->credentials && !(c->credentials = strdup(mc->credentials)))
		return -ENOMEM;
	return dsfs_options_load_credentials(c, d, err, errlen);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct dsfs_options o = { 0 };
	struct dsfs_mount_opts mo = { 0 };
	struct dsfs_member_conf *confs = NULL;
	struct member *members = NULL;
	struct dsfs_estate *estate = NULL;
	char err[1024], why[1400], names[256], *mountpoint = NULL, *fsname = NULL;
	bool foreground = false, debug = false, single = false;
	size_t nconfs = 0, nmembers = 0, logged_in = 0;
	int ret = 1;

	if (argc > 1 && !strcmp(argv[1], "wait")) /* a command of its own: no mount, no secrets */
		return dsfs_waitcmd_main(argc - 1, argv + 1);
	protect_secrets();
	dsfs_log_setup(false, DSFS_LOG_INFO);
	dsfs_dialect_names(names, sizeof(names));
	if (dsfs_options_parse(&args, &o, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (o.show_help) {
		usage(argv[0]);
		/* Not libfuse's fuse_cmdline_help(): its -h, -V, -d, -f and -s are in usage(),
		 * and it gives libfuse's max_threads default, which dsfs does not use. */
		printf("\nFUSE options:\n"
		       "    -o debug               the same as -d\n"
		       "    -o clone_fd            a separate /dev/fuse file descriptor per thread\n"
		       "    -o max_idle_threads=N, -o max_threads=N\n"
		       "                           accepted; no effect: dsfs bounds its FUSE loop at %d\n"
		       "                           worker threads (default %d; %d kept idle), started as needed\n",
		       DSFS_FUSE_MAX_THREADS, DSFS_FUSE_MAX_THREADS, DSFS_FUSE_IDLE_THREADS);
		dsfs_fuse_print_help(&args);
		ret = 0;
		goto out;
	}
	if (o.show_version) {
		printf("dsfs %s\nlibfuse %s\n", PACKAGE_VERSION, dsfs_fuse_version());
		ret = 0;
		goto out;
	}
	if (!o.mountpoint) {
		fprintf(stderr,
			"dsfs: no mountpoint given: usage is dsfs [options] URL MOUNTPOINT, or "
			"dsfs -o estate=FILE MOUNTPOINT (dsfs --help lists the options)\n");
		goto out;
	}
	if (check_mountpoint(o.mountpoint, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (dsfs_fuse_parse_cmdline(&args, &mountpoint, &foreground, &debug, &single))
		goto out; /* libfuse has said what is wrong, in a line of its own */
	dsfs_log_setup(false, debug ? DSFS_LOG_DEBUG : DSFS_LOG_INFO);
	/* before anything is sent: a log that cannot be kept is a mistake named now, not a loss found later */
	if (o.log_file && dsfs_log_to_file(o.log_file, o.log_size, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (o.client_cert && dsfs_tls_check_keypair(o.client_cert, o.client_key, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (o.cacert && dsfs_tls_check_ca(o.cacert, err, sizeof(err))) {
		fprintf(stderr, "dsfs: -o cacert: %s\n", err);
		goto out;
	}
	if (o.insecure)
		fprintf(stderr,
			"dsfs: warning: -o insecure: the server's TLS certificate is not "
			"verified; anyone on the network path can read the password\n");
	if (o.dry_run)
		dsfs_log(DSFS_LOG_INFO,
			 "-o dry_run: every change is checked and answered with the request it would "
			 "send (in the control file's result and this log); none is sent");
	if (o.estate && dsfs_estate_parse(o.estate, &confs, &nconfs, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (dsfs_http_global_init()) {
		fprintf(stderr, "dsfs: cannot initialise libcurl\n");
		goto out;
	}
	o.cache_size = cache_share(o.cache_size);
	members = calloc(o.estate ? nconfs : 1, sizeof(*members));
	waiters = dsfs_waiters_new(DSFS_FUSE_MAX_WAITERS, DSFS_FUSE_MAX_WAITERS_PER_USER, getuid());
	estate = dsfs_estate_new(o.estate != NULL, time(NULL), getuid(), getgid());
	if (!members || !estate || !waiters) {
		fprintf(stderr, "dsfs: out of memory\n");
		goto out_members;
	}
	if (!o.estate) {
		bool guessed;
		const struct dsfs_dialect *d = dsfs_options_dialect(&o, &guessed, err, sizeof(err));
		int r;

		if (!d) {
			fprintf(stderr, "dsfs: %s\n", err);
			goto out_members;
		}
		if (guessed && d->claims_url && d->claims_url(o.url)) /* claimed by two: a host serving both */
			fprintf(stderr,
				"dsfs: warning: %s is a host of more than one API; assumed %s; give "
				"-o api=NAME (%s)\n",
				o.url, d->name, names);
		else if (guessed)
			fprintf(stderr,
				"dsfs: warning: cannot tell the API of %s from its URL; assumed %s; give "
				"-o api=NAME (%s)\n",
				o.url, d->name, names);
		if (dsfs_options_load_credentials(&o, d, err, sizeof(err))) {
			fprintf(stderr, "dsfs: %s\n", err);
			goto out_members;
		}
		r = start_member(&o, &o.cred, o.url, d, o.array, o.cacert, NULL, true, &members[0], why, sizeof(why));
		if (r < 0 || r > 0) {
			/* one array: a failed login ends it here, with nothing mounted */
			fprintf(stderr, "dsfs: %s\n", why);
			if (r > 0)
				nmembers = 1;
			goto out_members;
		}
		nmembers = logged_in = 1;
		dsfs_estate_add(estate, NULL, o.url, members[0].fs, members[0].session, members[0].tasks, d->tasks_dir,
				members[0].events);
	}
	for (size_t i = 0; o.estate && i < nconfs; i++) {
		/* an estate: every member is its own failure domain, so one that is down now is mounted anyway */
		struct dsfs_member_conf *mc = &confs[i];
		struct dsfs_options sel = { .url = mc->url, .api = mc->api }, cred;
		bool guessed;
		const struct dsfs_dialect *d = dsfs_options_dialect(&sel, &guessed, err, sizeof(err));
		struct dsfs_http *shared;
		int r;

		if (!d) {
			fprintf(stderr, "dsfs: estate member %s: %s\n", mc->name, err);
			goto out_members;
		}
		if (guessed && d->claims_url && d->claims_url(mc->url))
			fprintf(stderr,
				"dsfs: warning: estate member %s: %s is a host of more than one API; "
				"assumed %s; give api = NAME in its section (%s)\n",
				mc->name, mc->url, d->name, names);
		else if (guessed)
			fprintf(stderr,
				"dsfs: warning: estate member %s: cannot tell the API of %s from its URL; "
				"assumed %s; give api = NAME in its section (%s)\n",
				mc->name, mc->url, d->name, names);
		if (mc->cacert && dsfs_tls_check_ca(mc->cacert, err, sizeof(err))) {
			fprintf(stderr, "dsfs: estate member %s: cacert: %s\n", mc->name, err);
			goto out_members;
		}
		if (member_credentials(mc, d, &cred, err, sizeof(err))) {
			fprintf(stderr, "dsfs: estate member %s: %s\n", mc->name, err);
			dsfs_options_free(&cred);
			goto out_members;
		}
		/* members on one endpoint share its connections, so max_conns holds per endpoint */
		shared = NULL;
		for (size_t j = 0; j < i && !shared; j++)
			if (j < nmembers && !strcmp(confs[j].url, mc->url) &&
			    !strcmp(confs[j].cacert ? confs[j].cacert : "", mc->cacert ? mc->cacert : ""))
				shared = members[j].http;
		r = start_member(&o, &cred.cred, mc->url, d, mc->array, mc->cacert ? mc->cacert : o.cacert, shared,
				 false, &members[nmembers], why, sizeof(why));
		dsfs_options_free(&cred);
		if (r < 0) {
			fprintf(stderr, "dsfs: estate member %s: %s\n", mc->name, why);
			goto out_members;
		}
		dsfs_estate_add(estate, mc->name, mc->url, members[nmembers].fs, members[nmembers].session,
				members[nmembers].tasks, d->tasks_dir, members[nmembers].events);
		nmembers++;
	}
	if (o.estate)
		logged_in = login_members(confs, members, nmembers);
	if (!logged_in) {
		fprintf(stderr,
			"dsfs: no member of estate %s could be used: each was out of reach, refused the login "
			"or did not answer as its API (the warnings above say which); nothing mounted\n",
			o.estate);
		goto out_members;
	}

	/* The URL names the mount in /proc/mounts; commas would split the option. */
	if (asprintf(&fsname, "-ofsname=%s%s", o.estate ? "estate:" : "", o.estate ? o.estate : o.url) < 0) {
		fsname = NULL;
		goto out_members;
	}
	for (char *p = fsname; *p; p++)
		if (*p == ',')
			*p = '_';
	fuse_opt_add_arg(&args, fsname);
	fuse_opt_add_arg(&args, "-osubtype=dsfs");
	fuse_opt_add_arg(&args, "-odefault_permissions");

	mo.mountpoint = mountpoint;
	mo.cache_ttl = o.cache_ttl;
	mo.foreground = foreground;
	mo.single_thread = single;
	mo.debug = debug;
	mo.node_bytes = o.cache_size / DSFS_FUSE_NODE_SHARE;
	ret = dsfs_fuse_run(estate, &args, &mo);

out_members:
	dsfs_estate_free(estate);
	for (size_t i = nmembers; members && i-- > 0;)
		stop_member(&members[i]); /* last first: a shared connection pool outlives its borrowers */
	free(members);
	dsfs_waiters_free(waiters);
	dsfs_estate_conf_free(confs, nconfs);
	dsfs_http_global_cleanup();
out:
	free(fsname);
	free(mountpoint);
	dsfs_options_free(&o);
	fuse_opt_free_args(&args);
	dsfs_log_close();
	return ret;
}
