// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libfuse high-level callbacks. Each converts its arguments, calls one fs
 * function and returns; policy lives in fs.c. Kernel caching follows
 * cache_ttl, and readdir hands the kernel each entry's attributes where
 * they are known (READDIRPLUS) so `ls -l` needs no lookups.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "fuse_ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

static double kernel_ttl;
static char mount_dir[PATH_MAX]; /* the mountpoint, absolute; "" for "/" */

static struct dsfs_estate *fs_of(void)
{
	return fuse_get_context()->private_data;
}

static struct dsfs_ehandle *handle_of(const struct fuse_file_info *fi)
{
	return (struct dsfs_ehandle *)(uintptr_t)fi->fh;
}

/*
 * The process the calling thread belongs to: the kernel names the thread,
 * and the threads of one program are one writer. 0 when unknown (another
 * pid namespace).
 */
static pid_t caller_pid(void)
{
	pid_t tid = fuse_get_context()->pid, tgid = tid;
	char path[64], line[128];
	FILE *f;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/*
 * At a FLUSH: whether the closing process still holds another descriptor
 * of the file at path (a dup, or the copy a shell saved around a
 * redirection), so this close is not its last. The descriptor being closed
 * is already gone from /proc/<pid>/fd. False when that cannot be read.
 */
static bool caller_keeps_open(const char *path)
{
	pid_t tid = fuse_get_context()->pid;
	char dir[64], link[320], want[PATH_MAX], got[PATH_MAX];
	bool found = false;
	struct dirent *d;
	DIR *fds;

	if (tid <= 0 || (size_t)snprintf(want, sizeof(want), "%s%s", mount_dir, path) >= sizeof(want))
		return false;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)tid);
	fds = opendir(dir);
	if (!fds)
		return false;
	while (!found && (d = readdir(fds))) {
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, d->d_name);
		n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = '\0';
			found = !strcmp(got, want);
		}
	}
	closedir(fds);
	return found;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	/*
	 * Names change rarely and a stale one costs only an ENOENT at open, so
	 * the kernel keeps them at least a second even with cache_ttl=0; sizes
	 * and contents still follow cache_ttl.
	 */
	cfg->entry_timeout = kernel_ttl > 1.0 ? kernel_ttl : 1.0;
	cfg->attr_timeout = kernel_ttl;
	cfg->negative_timeout = 0; /* a name created through the mount must show at once */
	return fs_of();
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	return dsfs_estate_getattr(fs_of(), path, st);
}

struct dir_fill {
	void *buf;
	fuse_fill_dir_t filler;
	bool plus;
};

static int fill_entry(void *ctx, const char *name, const struct stat *st, bool complete)
{
	struct dir_fill *d = ctx;

	return d->filler(d->buf, name, st, 0, d->plus && complete ? FUSE_FILL_DIR_PLUS : 0) ? -ENOMEM : 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dir_fill d = { buf, filler, flags & FUSE_READDIR_PLUS };

	(void)off;
	(void)fi;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	return dsfs_estate_readdir(fs_of(), path, fill_entry, &d);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct dsfs_ehandle *h;
	bool direct;
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	int ret = dsfs_estate_open(fs_of(), path, fi->flags, writing ? caller_pid() : 0, &h, &direct);

	if (ret)
		return ret;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct;
	fi->keep_cache = 0;
	/* a reader's close has nothing to send: spare the kernel the FLUSH round trip */
	fi->noflush = !writing;
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	return dsfs_estate_read(handle_of(fi), buf, size, off);
}

static int op_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)off; /* commands are appended: `>` and `>>` both work */
	return dsfs_estate_write(handle_of(fi), buf, size, caller_pid());
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	return dsfs_estate_flush(handle_of(fi), caller_pid(), path && caller_keeps_open(path));
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	return dsfs_estate_truncate(fs_of(), path, size);
}

static int op_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return dsfs_estate_mkdir(fs_of(), path);
}

static int op_rmdir(const char *path)
{
	return dsfs_estate_rmdir(fs_of(), path);
}

static int op_unlink(const char *path)
{
	return dsfs_estate_unlink(fs_of(), path);
}

bool dsfs_fuse_interrupted(void)
{
	struct fuse_context *ctx = fuse_get_context();

	/* an interrupted reader, or the mount ending (unmount, SIGTERM): libfuse joins its workers */
	return fuse_interrupted() || (ctx && ctx->fuse && fuse_session_exited(fuse_get_session(ctx->fuse)));
}

uid_t dsfs_fuse_caller_uid(void)
{
	struct fuse_context *ctx = fuse_get_context();

	return ctx ? ctx->uid : getuid();
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	dsfs_estate_release(handle_of(fi));
	return 0;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	return dsfs_estate_readlink(fs_of(), path, buf, size);
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_namemax = 255;
	return 0;
}

static const struct fuse_operations ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.truncate = op_truncate,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.unlink = op_unlink,
	.release = op_release,
	.readlink = op_readlink,
	.statfs = op_statfs,
};

void dsfs_fuse_print_help(struct fuse_args *args)
{
	printf("\nFUSE options:\n");
	fuse_cmdline_help();
	fuse_lib_help(args);
}

const char *dsfs_fuse_version(void)
{
	return fuse_pkgversion();
}

int dsfs_fuse_parse_cmdline(struct fuse_args *args, char **mountpoint, bool *foreground,
			    bool *debug, bool *single_thread)
{
	struct fuse_cmdline_opts co = { 0 };

	if (fuse_parse_cmdline(args, &co) != 0)
		return -EINVAL;
	*mountpoint = co.mountpoint;
	*foreground = co.foreground || co.debug;
	*debug = co.debug;
	*single_thread = co.singlethread;
	if (co.debug) /* fuse_parse_cmdline consumed -d; libfuse's lib wants it too */
		fuse_opt_add_arg(args, "-odebug");
	return co.mountpoint ? 0 : -EINVAL;
}

int dsfs_fuse_run(struct dsfs_estate *fs, struct fuse_args *args, const struct dsfs_mount_opts *mo)
{
	struct fuse_loop_config *lc = NULL;
	struct fuse *f;
	int ret = 1;

	kernel_ttl = mo->cache_ttl;
	if (!realpath(mo->mountpoint, mount_dir) || !strcmp(mount_dir, "/"))
		mount_dir[0] = '\0';
	f = fuse_new(args, &ops, sizeof(ops), fs);
	if (!f)
		return 1; /* libfuse printed why */
	if (fuse_mount(f, mo->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(mo->foreground) != 0)
		goto out_unmount;
	if (!mo->foreground)
		dsfs_log_setup(true, mo->debug ? DSFS_LOG_DEBUG : DSFS_LOG_INFO);
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		goto out_unmount;
	if (mo->single_thread) {
		ret = fuse_loop(f) < 0;
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_signals;
		fuse_loop_cfg_set_max_threads(lc, DSFS_FUSE_MAX_THREADS);
		fuse_loop_cfg_set_idle_threads(lc, 10);
		ret = fuse_loop_mt(f, lc) < 0;
		fuse_loop_cfg_destroy(lc);
	}
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
	return ret;
}
