// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Operations in fair shares: each request that may wait for the server is
 * copied into an operation and run within its user's share of threads
 * (fuse/admit.h), or queued, holding no thread, until its turn. A reader
 * interrupted while its operation waits its turn is answered at once.
 */
#include "fuse/fuse_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse/admit.h"
#include "util/caller.h"
#include "util/log.h"

static struct dsfs_admit *admit;

int dsfs_fuse_queue_start(void)
{
	admit = dsfs_admit_new(DSFS_FUSE_SHARE_PER_USER, DSFS_FUSE_SHARE_OTHERS, getuid());
	return admit ? 0 : -ENOMEM;
}

void dsfs_fuse_queue_stop(void)
{
	dsfs_admit_free(admit);
	admit = NULL;
}

void dsfs_fuse_op_free(struct dsfs_fuse_op *o)
{
	if (!o)
		return;
	free(o->name);
	free(o->newname);
	free(o->data);
	free(o);
}

static void job(void *arg, bool run)
{
	struct dsfs_fuse_op *o = arg;

	/* from here on no interrupt callback can come for o (one running is waited for) */
	fuse_req_interrupt_func(o->req, NULL, NULL);
	if (run && !fuse_req_interrupted(o->req)) {
		dsfs_caller_set(fuse_req_ctx(o->req)->uid, o->req);
		o->def->run(o);
		dsfs_caller_clear();
	} else {
		dsfs_log(DSFS_LOG_DEBUG, "%s of node %llu: %s", o->def->name, (unsigned long long)o->ino,
			 run ? "interrupted before it ran" : "not run: the mount is ending");
		fuse_reply_err(o->req, EINTR);
	}
	dsfs_fuse_op_free(o);
}

/* A reader interrupted (or killed) while its operation waits its turn: it is answered at once. */
static void queued_interrupt(fuse_req_t req, void *arg)
{
	struct dsfs_fuse_op *o = arg;

	if (dsfs_admit_withdraw(admit, arg)) {
		dsfs_log(DSFS_LOG_DEBUG, "%s of node %llu: interrupted while waiting its turn", o->def->name,
			 (unsigned long long)o->ino);
		fuse_reply_err(req, EINTR);
		dsfs_fuse_op_free(arg);
	}
}

void dsfs_fuse_queue(struct dsfs_fuse_op *o)
{
	fuse_req_interrupt_func(o->req, queued_interrupt, o);
	dsfs_admit_run(admit, fuse_req_ctx(o->req)->uid, job, o);
}

void dsfs_fuse_submit(fuse_req_t req, const struct dsfs_fuse_op_def *def, fuse_ino_t ino,
		      const struct fuse_file_info *fi, const char *name, size_t size, off_t off, const char *data,
		      int to_set, const struct stat *attr)
{
	struct dsfs_fuse_op *o = calloc(1, sizeof(*o));

	if (!o || (name && !(o->name = strdup(name))) || (data && !(o->data = malloc(size ? size : 1)))) {
		dsfs_fuse_op_free(o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (data)
		memcpy(o->data, data, size);
	o->def = def;
	o->req = req;
	o->ino = ino;
	o->size = size;
	o->off = off;
	o->to_set = to_set;
	if (attr) {
		o->mode = attr->st_mode;
		o->uid = attr->st_uid;
		o->gid = attr->st_gid;
	}
	if (fi)
		o->fi = *fi;
	dsfs_fuse_queue(o);
}
