// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The benchmark's floor: a minimal read-only passthrough over a local
 * directory with libfuse's low-level interface, the way libfuse's own
 * example/passthrough_ll.c serves one (an inode table keyed by the source's
 * inode numbers, the kernel's READDIRPLUS chosen adaptively, one-second
 * entry and attribute timeouts), except that an inode keeps its path, not
 * an O_PATH descriptor, so a tree of any size fits the descriptor limit. tests/bench/run mounts it over a tmpfs copy of the tree dsfs
 * shows and times the same tar over both. Not part of dsfs.
 *
 *     floor [-s] SOURCE MOUNTPOINT
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct inode {
	char *path;      /* relative to the source, "." for its root */
	ino_t ino;
	uint64_t nlookup;
	struct inode *next;
};

#define BUCKETS 65536
static struct inode *table[BUCKETS];
static struct inode root = { .path = "." };
static int root_fd;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const double timeout = 1.0;

static struct inode *inode_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &root : (struct inode *)(uintptr_t)ino;
}

static fuse_ino_t id_of(struct inode *i)
{
	return i == &root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

/* parent's path joined with name (malloc'd). */
static char *join(struct inode *parent, const char *name)
{
	char *p;

	if (parent == &root)
		return strdup(name);
	if (asprintf(&p, "%s/%s", parent->path, name) < 0)
		return NULL;
	return p;
}

/* The inode at path with attributes st, counted once more; path is kept or freed. */
static struct inode *hold(char *path, const struct stat *st)
{
	struct inode *i;

	pthread_mutex_lock(&lock);
	for (i = table[st->st_ino % BUCKETS]; i && i->ino != st->st_ino; i = i->next)
		;
	if (i) {
		free(path);
	} else {
		i = calloc(1, sizeof(*i));
		i->path = path;
		i->ino = st->st_ino;
		i->next = table[i->ino % BUCKETS];
		table[i->ino % BUCKETS] = i;
	}
	i->nlookup++;
	pthread_mutex_unlock(&lock);
	return i;
}

static void fl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .attr_timeout = timeout, .entry_timeout = timeout };
	char *path = join(inode_of(parent), name);

	if (!path || fstatat(root_fd, path, &e.attr, AT_SYMLINK_NOFOLLOW) < 0) {
		fuse_reply_err(req, path ? errno : ENOMEM);
		free(path);
		return;
	}
	e.ino = id_of(hold(path, &e.attr));
	fuse_reply_entry(req, &e);
}

static void forget_one(fuse_ino_t ino, uint64_t n)
{
	struct inode *i = inode_of(ino), **p;

	if (i == &root)
		return;
	pthread_mutex_lock(&lock);
	i->nlookup -= n < i->nlookup ? n : i->nlookup;
	if (!i->nlookup) {
		for (p = &table[i->ino % BUCKETS]; *p != i; p = &(*p)->next)
			;
		*p = i->next;
		free(i->path);
		free(i);
	}
	pthread_mutex_unlock(&lock);
}

static void fl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	forget_one(ino, n);
	fuse_reply_none(req);
}

static void fl_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t k = 0; k < count; k++)
		forget_one(f[k].ino, f[k].nlookup);
	fuse_reply_none(req);
}

static void fl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fstatat(root_fd, inode_of(ino)->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, timeout);
}

static void fl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(root_fd, inode_of(ino)->path, buf, PATH_MAX);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

struct dir {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

static void fl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir *d = calloc(1, sizeof(*d));
	int fd = openat(root_fd, inode_of(ino)->path, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		fuse_reply_err(req, errno);
		free(d);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
		       int plus)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size), *p = buf;
	size_t rem = size;

	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		struct fuse_entry_param e = { 0 };
		size_t n;

		if (!d->entry && !(d->entry = readdir(d->dp)))
			break;
		if (plus && strcmp(d->entry->d_name, ".") && strcmp(d->entry->d_name, "..")) {
			/* a lookup, as the kernel counts it */
			char *path = join(inode_of(ino), d->entry->d_name);

			if (!path || fstatat(root_fd, path, &e.attr, AT_SYMLINK_NOFOLLOW) < 0) {
				free(path);
				d->entry = NULL;
				continue;
			}
			n = fuse_add_direntry_plus(req, NULL, 0, d->entry->d_name, &e, 0);
			if (n > rem) {
				free(path);
				break;
			}
			e.ino = id_of(hold(path, &e.attr));
			e.attr_timeout = e.entry_timeout = timeout;
			n = fuse_add_direntry_plus(req, p, rem, d->entry->d_name, &e, d->entry->d_off);
		} else {
			e.attr.st_ino = d->entry->d_ino;
			e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			n = plus ? fuse_add_direntry_plus(req, p, rem, d->entry->d_name, &e, d->entry->d_off)
				 : fuse_add_direntry(req, p, rem, d->entry->d_name, &e.attr, d->entry->d_off);
			if (n > rem)
				break;
		}
		p += n;
		rem -= n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void fl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void fl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void fl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir *d = (struct dir *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void fl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = openat(root_fd, inode_of(ino)->path, fi->flags & ~O_NOFOLLOW);

	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

static void fl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void fl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void fl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(root_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = fl_lookup,
	.forget = fl_forget,
	.forget_multi = fl_forget_multi,
	.getattr = fl_getattr,
	.readlink = fl_readlink,
	.opendir = fl_opendir,
	.readdir = fl_readdir,
	.readdirplus = fl_readdirplus,
	.releasedir = fl_releasedir,
	.open = fl_open,
	.read = fl_read,
	.release = fl_release,
	.statfs = fl_statfs,
};

int main(int argc, char *argv[])
{
	char *fargv[] = { argv[0], "-o", "ro,default_permissions,fsname=floor", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	bool single = argc == 4 && !strcmp(argv[1], "-s");
	int ret;

	if (argc != 3 + single) {
		fprintf(stderr, "usage: floor [-s] SOURCE MOUNTPOINT\n");
		return 2;
	}
	root_fd = open(argv[1 + single], O_PATH | O_DIRECTORY);
	root.nlookup = 2;
	if (root_fd < 0) {
		perror(argv[1 + single]);
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) || fuse_session_mount(se, argv[2 + single]))
		return 1;
	if (single) {
		ret = fuse_session_loop(se);
	} else {
		lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(lc, 64);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
