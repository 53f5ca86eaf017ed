// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the kernel is told of a file: its owner and mode after the -o uid,
 * gid and umask overrides, and how long it may keep its entry and
 * attributes. Holds the mount's state every part of the glue reads.
 */
#include "fuse/fuse_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dsfs_fuse dsfs_fuse;

void dsfs_fuse_own(struct stat *st)
{
	if (dsfs_fuse.set_uid)
		st->st_uid = dsfs_fuse.uid;
	if (dsfs_fuse.set_gid)
		st->st_gid = dsfs_fuse.gid;
	if (dsfs_fuse.set_umask)
		st->st_mode &= ~(mode_t)dsfs_fuse.umask | S_IFMT;
}

/*
 * How long the kernel may keep attributes: a live file's never, so that
 * `tail -f tasks/<id>/log` sees its size grow as the server's log does;
 * a directory's as long as its name (nothing in them a reader relies on
 * changes), so that with cache_ttl=0 opening a file does not cost a
 * GETATTR per path component; an object's file's as long too, since its
 * size changes only when it is fetched, and an open that fetched another
 * size tells the kernel at once (do_open, fuse/ops.c) as does a listing
 * (fuse/readdir.c); the rest for cache_ttl (a link such as tasks/latest can go or change at
 * any action, a control file's result at any write).
 */
double dsfs_fuse_attr_ttl(const struct stat *st, unsigned flags)
{
	if (flags & DSFS_FS_LIVE)
		return 0;
	return S_ISDIR(st->st_mode) || (flags & DSFS_FS_FETCHED) ? dsfs_fuse.entry_ttl : dsfs_fuse.attr_ttl;
}

int dsfs_fuse_entry(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	unsigned flags;
	char *path;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = dsfs_nodes_child_path(dsfs_fuse.nodes, parent, name, &path);
	if (ret)
		return ret;
	ret = dsfs_estate_getattr(dsfs_fuse.e, path, &e->attr, &flags);
	free(path);
	if (ret)
		return ret;
	dsfs_fuse_own(&e->attr);
	e->ino = dsfs_nodes_lookup(dsfs_fuse.nodes, parent, name);
	if (!e->ino)
		return -ENOMEM;
	e->attr_timeout = dsfs_fuse_attr_ttl(&e->attr, flags);
	e->entry_timeout = dsfs_fuse.entry_ttl;
	return 0;
}
