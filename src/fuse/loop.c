// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The mount: libfuse's command line and options, the session and its
 * loop (one thread, or workers started as they are needed), and the order
 * in which the rest of the glue starts and ends around it.
 */
#include "fuse/fuse_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/caller.h"
#include "util/log.h"

static bool req_gone(void *req)
{
	return fuse_req_interrupted(req) || fuse_session_exited(dsfs_fuse.se);
}

/*
 * Options of libfuse's high-level library that a low-level file system
 * does not get: uid, gid and umask are applied here; the rest concern
 * caches and inode handling dsfs does itself, and are accepted and
 * ignored so that existing fstab lines keep working.
 */
#define GLUE_OPT(t, p)                              \
	{                                           \
		t, offsetof(struct dsfs_fuse, p), 1 \
	}
// clang-format off
static const struct fuse_opt glue_opts[] = {
	{ "uid=%u", offsetof(struct dsfs_fuse, uid), 0 },
	{ "gid=%u", offsetof(struct dsfs_fuse, gid), 0 },
	{ "umask=%o", offsetof(struct dsfs_fuse, umask), 0 },
	GLUE_OPT("uid=", set_uid),
	GLUE_OPT("gid=", set_gid),
	GLUE_OPT("umask=", set_umask),
	FUSE_OPT_KEY("entry_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("attr_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("ac_attr_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("negative_timeout=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("kernel_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("no_rofd_flush", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noforget", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("remember=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("use_ino", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("readdir_ino", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("hard_remove", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("intr", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("intr_signal=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};
// clang-format on

void dsfs_fuse_print_help(struct fuse_args *args)
{
	(void)args;
	fuse_lowlevel_help();
	printf("    -o uid=N               owner of every file (default: the user who mounted)\n"
	       "    -o gid=N               group of every file\n"
	       "    -o umask=M             permission bits to clear (octal)\n"
	       "    -o entry_timeout=T, -o attr_timeout=T, -o ac_attr_timeout=T, -o negative_timeout=T\n"
	       "                           accepted; dsfs derives them from cache_ttl\n"
	       "    -o kernel_cache, -o auto_cache, -o noauto_cache, -o no_rofd_flush, -o noforget, -o remember=T\n"
	       "                           accepted; dsfs manages the kernel's caches and inodes itself\n");
}

const char *dsfs_fuse_version(void)
{
	return fuse_pkgversion();
}

int dsfs_fuse_parse_cmdline(struct fuse_args *args, char **mountpoint, bool *foreground, bool *debug,
			    bool *single_thread)
{
	struct fuse_cmdline_opts co = { 0 };

	if (fuse_parse_cmdline(args, &co) != 0)
		return -EINVAL;
	*mountpoint = co.mountpoint;
	*foreground = co.foreground || co.debug;
	*debug = co.debug;
	*single_thread = co.singlethread;
	if (co.debug) /* fuse_parse_cmdline consumed -d; the session wants it too */
		fuse_opt_add_arg(args, "-odebug");
	return co.mountpoint ? 0 : -EINVAL;
}

int dsfs_fuse_run(struct dsfs_estate *e, struct fuse_args *args, const struct dsfs_mount_opts *mo)
{
	struct fuse_loop_config *lc = NULL;
	int ret = 1;

	dsfs_fuse.e = e;
	/*
	 * Names change rarely and a stale one costs only an ENOENT at open, so
	 * the kernel keeps them at least a second even with cache_ttl=0 (and
	 * objects' sizes, see attr_ttl); contents still follow cache_ttl. No
	 * negative entries: a name created through the mount must show at once.
	 */
	dsfs_fuse.entry_ttl = mo->cache_ttl > 1.0 ? mo->cache_ttl : 1.0;
	dsfs_fuse.attr_ttl = mo->cache_ttl;
	if (!realpath(mo->mountpoint, dsfs_fuse.mount_dir) || !strcmp(dsfs_fuse.mount_dir, "/"))
		dsfs_fuse.mount_dir[0] = '\0';
	if (fuse_opt_parse(args, &dsfs_fuse, glue_opts, NULL) != 0)
		return 1;
	dsfs_fuse.nodes = dsfs_nodes_new();
	if (!dsfs_fuse.nodes || dsfs_fuse_queue_start() != 0) {
		fprintf(stderr, "dsfs: out of memory\n");
		goto out_free;
	}
	dsfs_fuse.se = fuse_session_new(args, &dsfs_fuse_ll_ops, sizeof(dsfs_fuse_ll_ops), NULL);
	if (!dsfs_fuse.se)
		goto out_free; /* libfuse printed why */
	dsfs_caller_set_check(req_gone, getuid());
	if (fuse_session_mount(dsfs_fuse.se, mo->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(mo->foreground) != 0)
		goto out_unmount;
	if (!mo->foreground)
		dsfs_log_setup(true, mo->debug ? DSFS_LOG_DEBUG : DSFS_LOG_INFO);
	if (fuse_set_signal_handlers(dsfs_fuse.se) != 0)
		goto out_unmount;
	dsfs_fuse_prune_start(mo->node_bytes);
	if (mo->single_thread) {
		ret = fuse_session_loop(dsfs_fuse.se) < 0;
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_signals;
		fuse_loop_cfg_set_max_threads(lc, DSFS_FUSE_MAX_THREADS);
		fuse_loop_cfg_set_idle_threads(lc, DSFS_FUSE_IDLE_THREADS);
		ret = fuse_session_loop_mt(dsfs_fuse.se, lc) < 0;
		fuse_loop_cfg_destroy(lc);
	}
	dsfs_fuse_pending_end();
out_signals:
	dsfs_fuse_prune_stop();
	fuse_remove_signal_handlers(dsfs_fuse.se);
out_unmount:
	fuse_session_unmount(dsfs_fuse.se);
out_destroy:
	fuse_session_destroy(dsfs_fuse.se);
out_free:
	dsfs_fuse_queue_stop();
	dsfs_fuse_dirs_end();
	dsfs_nodes_free(dsfs_fuse.nodes);
	return ret;
}
