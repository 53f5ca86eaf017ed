// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dsfs: mounts a storage management REST API as a directory tree. This file
 * owns start-up: options, credentials, the first login (so that a wrong URL
 * or password fails here, before anything is mounted), and shutdown with
 * logout.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_opt.h>

#include "cache.h"
#include "errmap.h"
#include "fs.h"
#include "fuse_ops.h"
#include "http.h"
#include "log.h"
#include "options.h"
#include "resources.h"
#include "session.h"
#include "tasks.h"
#include "tls.h"

static void usage(const char *prog)
{
	printf("usage: %s [options] URL MOUNTPOINT\n"
	       "\n"
	       "Mounts the storage management API at URL on MOUNTPOINT as a tree of JSON files:\n"
	       "a storage-plugin API base (https://array1:8443/storageplugin/api) or the Data\n"
	       "Services Cloud Console (https://us1.data.cloud.hpe.com, with -o api=dscc).\n"
	       "\n"
	       "dsfs options:\n"
	       "    -o api=DIALECT         storageplugin or dscc (default: recognised from the URL)\n"
	       "    -o credentials=FILE    storage-plugin: username=... and password=... lines;\n"
	       "                           dscc: client_id=... and client_secret=... (optional\n"
	       "                           token_url=...), or token=... (a pasted access token).\n"
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
	       "    -o max_conns=N         concurrent requests and connections (default 8)\n"
	       "    -o prefetch=N          workers that fetch ahead of find, tar, rsync and the\n"
	       "                           like once they walk a directory (default: max_conns;\n"
	       "                           0 turns it off; needs cache_ttl of 1 s or more)\n"
	       "    -o cache_size=MIB      memory bound of the cache in MiB (default 512; 0: none)\n"
	       "    -o max_body=MIB        largest answer accepted, in MiB (default 64)\n"
	       "    -o cacert=FILE         also trust the CA certificates in FILE (PEM)\n"
	       "    -o client_cert=FILE,client_key=FILE  mutual TLS with this certificate and key\n"
	       "    -o insecure            do not verify the server's TLS certificate (unsafe)\n"
	       "    -o wait_timeout=SECONDS  bound on reading tasks/<id>/wait (default 3600)\n"
	       "    -o allow_delete        let rmdir delete snapshots and volumes (otherwise EPERM)\n"
	       "    -o allow_other_actions with allow_other: other users may also write control\n"
	       "                           files and mkdir/rmdir (default: only the owner acts)\n"
	       "    -o ro                  mount read-only: every change fails with EROFS\n"
	       "    -f                     stay in the foreground (log to stderr)\n"
	       "    -d                     debug: foreground, log every request (never secrets)\n"
	       "    -s                     single-threaded\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          versions of dsfs and libfuse\n"
	       "\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n",
	       prog);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct dsfs_options o = { 0 };
	struct dsfs_mount_opts mo = { 0 };
	struct dsfs_http *http = NULL;
	struct dsfs_session *session = NULL;
	struct dsfs_cache *cache = NULL;
	struct dsfs_tasks *tasks = NULL;
	struct dsfs_fs *fs = NULL;
	char err[1024], why[1200], *mountpoint = NULL, *array = NULL, *fsname = NULL;
	const struct dsfs_dialect *dialect;
	const char *api;
	bool foreground = false, debug = false, single = false;
	const char *herr;
	int ret = 1;

	dsfs_log_setup(false, DSFS_LOG_INFO);
	if (dsfs_options_parse(&args, &o, err, sizeof(err))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	if (o.show_help) {
		usage(argv[0]);
		dsfs_fuse_print_help(&args);
		ret = 0;
		goto out;
	}
	if (o.show_version) {
		printf("dsfs %s\nlibfuse %s\n", PACKAGE_VERSION, dsfs_fuse_version());
		ret = 0;
		goto out;
	}
	if (dsfs_fuse_parse_cmdline(&args, &mountpoint, &foreground, &debug, &single)) {
		fprintf(stderr, "dsfs: no mountpoint given: usage is dsfs [options] URL MOUNTPOINT "
			"(dsfs --help lists the options)\n");
		goto out;
	}
	dsfs_log_setup(false, debug ? DSFS_LOG_DEBUG : DSFS_LOG_INFO);
	if (!(api = dsfs_options_dialect(&o, err, sizeof(err)))) {
		fprintf(stderr, "dsfs: %s\n", err);
		goto out;
	}
	dialect = !strcmp(api, "dscc") ? &dsfs_dialect_dscc : &dsfs_dialect_storageplugin;
	if (dsfs_options_load_credentials(&o, dialect->auth == DSFS_AUTH_BEARER, err, sizeof(err))) {
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
		fprintf(stderr, "dsfs: warning: -o insecure: the server's TLS certificate is not "
			"verified; anyone on the network path can read the password\n");

	if (dsfs_http_global_init()) {
		fprintf(stderr, "dsfs: cannot initialise libcurl\n");
		goto out;
	}
	http = dsfs_http_new(&(struct dsfs_http_opts){
		.base_url = o.url, .timeout = o.timeout, .connect_timeout = o.connect_timeout,
		.cacert = o.cacert, .client_cert = o.client_cert, .client_key = o.client_key,
		.insecure = o.insecure, .max_body = o.max_body, .retries = o.retries,
		.max_conns = o.max_conns }, &herr);
	if (!http) {
		fprintf(stderr, "dsfs: %s\n", herr);
		goto out_curl;
	}
	if (dialect->auth == DSFS_AUTH_SESSION)
		array = o.array ? strdup(o.array) : dsfs_options_url_host(o.url);
	session = dsfs_session_new(http, dialect, &(struct dsfs_credentials){
		.username = o.username, .password = o.password, .client_id = o.client_id,
		.client_secret = o.client_secret, .token_url = o.token_url, .token = o.token }, array);
	if (!session) {
		fprintf(stderr, "dsfs: out of memory\n");
		goto out_http;
	}
	dsfs_err_clear();
	if ((ret = dsfs_session_login(session)) != 0) {
		fprintf(stderr, "dsfs: cannot log in to %s: %s\n", o.url,
			dsfs_err_describe(why, sizeof(why)) ?: strerror(-ret));
		ret = 1;
		goto out_session;
	}
	ret = 1;
	cache = dsfs_cache_new(dialect, session, &(struct dsfs_cache_opts){
		.ttl = o.cache_ttl, .max_bytes = o.cache_size, .page_size = o.page_size,
		.prefetch = o.prefetch });
	tasks = dsfs_tasks_new(dialect, session);
	fs = cache && tasks ? dsfs_fs_new(cache, http, session, tasks, &(struct dsfs_fs_opts){
		.uid = getuid(), .gid = getgid(), .mounted = time(NULL), .ttl = o.cache_ttl,
		.wait_timeout = o.wait_timeout, .allow_delete = o.allow_delete,
		.allow_other_actions = o.allow_other_actions,
		.tasks_dir = dialect->tasks_dir,
		.interrupted = dsfs_fuse_interrupted }) : NULL;
	if (!fs) {
		fprintf(stderr, "dsfs: out of memory\n");
		goto out_cache;
	}

	/* The URL names the mount in /proc/mounts; commas would split the option. */
	if (asprintf(&fsname, "-ofsname=%s", o.url) < 0)
		goto out_cache;
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
	ret = dsfs_fuse_run(fs, &args, &mo);

out_cache:
	dsfs_fs_free(fs);
	dsfs_tasks_free(tasks);
	dsfs_cache_free(cache);
out_session:
	dsfs_session_free(session); /* logs out */
out_http:
	dsfs_http_free(http);
out_curl:
	dsfs_http_global_cleanup();
out:
	free(fsname);
	free(array);
	free(mountpoint);
	dsfs_options_free(&o);
	fuse_opt_free_args(&args);
	return ret;
}
