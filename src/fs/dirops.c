// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Directory operations on the server's objects: mkdir in a collection
 * with `new` creates a resource of that name (as `echo name > new`),
 * rmdir of an object's directory deletes the object (-o allow_delete),
 * waiting, like rmdir(2), until a task that deletes it has ended.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/caller.h"
#include "fs/fs_int.h"
#include "util/log.h"
#include "format/names.h"
#include "fs/waiters.h"

/*
 * mkdir creates a resource and then must find it under the name it was
 * given. A name the tree would show otherwise (escaped: '%', control
 * characters, "." and "..") or that the API cannot carry (not UTF-8) is
 * refused before anything is sent, rather than created and reported as
 * missing. Returns 0 or -EINVAL.
 */
static int mkdir_name_ok(const char *parent, const char *name)
{
	size_t len = strlen(name);
	char *entry;
	int ret = 0;

	if (dsfs_ctl_utf8_prefix(name, len) < len) {
		dsfs_log(DSFS_LOG_WARN, "mkdir in %s: refused: the name is not valid UTF-8; nothing sent", parent);
		return -EINVAL;
	}
	entry = dsfs_names_entry(name, NULL);
	if (!entry)
		return -ENOMEM;
	if (strcmp(entry, name)) {
		/* the log gets the escaped form: the raw name may hold a newline */
		dsfs_log(DSFS_LOG_WARN,
			 "mkdir %s/%s: refused: the tree would show the new entry as '%s', not under the "
			 "name given, so mkdir could not find what it made; nothing sent (to create it anyway: "
			 "echo 'NAME' > new)",
			 parent, entry, entry);
		ret = -EINVAL;
	}
	free(entry);
	return ret;
}

int dsfs_fs_mkdir(struct dsfs_fs *fs, const char *path)
{
	const struct dsfs_action *create, *actions;
	struct dsfs_post_result res = { 0 };
	struct dsfs_loc dir, ctl = { 0 };
	json_object *body = NULL;
	const char *name;
	char *parent = fs_split_parent(path, &name);
	size_t n;
	int ret;

	dsfs_err_clear();
	if (!parent)
		return -ENOMEM;
	ret = mkdir_name_ok(parent, name);
	if (ret) {
		free(parent);
		return ret;
	}
	/* as `echo name=NAME > new`, with the name taken literally */
	ret = fs_resolve(fs, parent, &dir);
	if (ret == 0) {
		ret = dsfs_cache_lookup(fs->cache, &dir, "new", &ctl);
		dsfs_cache_put(fs->cache, &dir);
		if (ret == -ENOENT || (ret == 0 && ctl.type != DSFS_LOC_CTL)) /* nothing can be created here */
			ret = fs_refuse("mkdir", path, -EPERM,
					"nothing can be created here (only in a collection "
					"with a new file)");
	}
	if (ret == 0) {
		dsfs_cache_ctl_actions(&ctl, &create, &actions, &n);
		if (!create || !create->bare_field) {
			/* what is created here takes more than a name (a JSON body): only `new` can */
			dsfs_log(DSFS_LOG_WARN,
				 "mkdir %s: refused: what is made here takes more than a name; write it "
				 "to %s/new",
				 path, parent);
			ret = -EPERM;
		} else {
			body = json_object_new_object();
			if (!body || json_object_object_add(body, create->bare_field, json_object_new_string(name)))
				ret = -ENOMEM;
		}
	}
	if (ret == 0) {
		ret = dsfs_cache_post(fs->cache, &ctl, create, body, &res);
		if (ret == 0 || res.task_id)
			dsfs_tasks_set_latest(fs->tasks, res.task_id);
	}
	if (ret == 0 && res.request) {
		/* a dry run's request shows where `echo NAME > new` would show it: the file is there to read */
		char *new_path = NULL;

		fs_log_dry_run("mkdir", path, &res);
		if (asprintf(&new_path, "%s/new", strcmp(parent, "/") ? parent : "") >= 0)
			fs_record(fs, new_path, name, strlen(name), &res, NULL, NULL);
		free(new_path);
		ret = DSFS_FS_DRY_RUN;
	}
	dsfs_post_result_clear(&res);
	json_object_put(body);
	dsfs_cache_put(fs->cache, &ctl);
	free(parent);
	return ret > 0 ? ret : fs_done("mkdir", path, ret);
}

int dsfs_fs_rmdir(struct dsfs_fs *fs, const char *path, dsfs_fs_done_fn fn, void *arg, struct dsfs_fs_wait **w)
{
	struct dsfs_loc loc;
	int ret;

	dsfs_err_clear();
	ret = fs_resolve(fs, path, &loc);
	if (ret)
		return fs_done("rmdir", path, ret);
	if (loc.type != DSFS_LOC_RESOURCE || !loc.node) {
		ret = fs_refuse("rmdir", path, -EPERM, "only an object's directory can be removed");
	} else {
		char *id = dsfs_cache_resource_id(fs->cache, &loc);

		if (!id) {
			ret = fs_refuse("rmdir", path, -EPERM, "the mount's root is not an object"); /* the root */
		} else if (!fs->o.allow_delete) {
			ret = fs_refuse("rmdir", path, -EPERM, "deleting needs the mount option allow_delete");
		} else if ((ret = dsfs_waiters_enter(fs->o.waiters, dsfs_caller_uid())) == 0) {
			/* the waiting place is taken first: a refusal must come before the DELETE */
			struct dsfs_post_result res;
			char *url = NULL;

			ret = dsfs_cache_delete(fs->cache, &loc, &res);
			if (ret == -EPERM) /* refused before a request */
				fs_refuse("rmdir", path, ret,
					  "the API deletes none of these: dsfs deletes only what "
					  "docs/control.md lists");
			if (ret == 0 && res.task_id) {
				/* deleted by a task: rmdir returns when it is gone, like rmdir(2) */
				dsfs_tasks_set_latest(fs->tasks, res.task_id);
				url = dsfs_cache_task_url(fs->cache, res.task_id);
				ret = url ? fs_wait_start(fs, url, NULL, path, id, fn, arg, w) : -ENOMEM;
			} else if (ret == 0 && res.request) {
				fs_log_dry_run("rmdir", path, &res); /* the directory stays: nothing was deleted */
			} else if (ret == 0) {
				dsfs_log(DSFS_LOG_INFO, "rmdir %s: deleted %s", path, id);
			}
			if (ret != DSFS_FS_WAITING)
				dsfs_waiters_leave(fs->o.waiters, dsfs_caller_uid());
			free(url);
			dsfs_post_result_clear(&res);
		}
		free(id);
	}
	dsfs_cache_put(fs->cache, &loc);
	return ret == DSFS_FS_WAITING ? ret : fs_done("rmdir", path, ret);
}
