// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The calling thread's caller, kept thread-local so the layers between the
 * FUSE glue and the transport need not pass it through every call; and
 * what /proc tells of the process behind a request.
 */
#include "util/caller.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static __thread struct {
	bool set;
	uid_t uid;
	void *req;
} caller;

static bool (*check)(void *req);
static uid_t owner_uid;
static bool owner_known;

void dsfs_caller_set(uid_t uid, void *req)
{
	caller.set = true;
	caller.uid = uid;
	caller.req = req;
}

void dsfs_caller_clear(void)
{
	caller.set = false;
	caller.req = NULL;
}

void dsfs_caller_set_check(bool (*gone)(void *req), uid_t owner)
{
	check = gone;
	owner_uid = owner;
	owner_known = true;
}

uid_t dsfs_caller_uid(void)
{
	return caller.set ? caller.uid : getuid();
}

bool dsfs_caller_is_owner(void)
{
	return caller.set && (!owner_known || caller.uid == owner_uid || caller.uid == 0);
}

bool dsfs_caller_gone(void)
{
	return caller.set && check && check(caller.req);
}

pid_t dsfs_caller_process(pid_t tid)
{
	pid_t tgid = tid;
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

bool dsfs_caller_holds(pid_t tid, const char *dir, const char *path)
{
	char fd_dir[64], link[320], want[PATH_MAX], got[PATH_MAX];
	bool found = false;
	struct dirent *d;
	DIR *fds;

	if (tid <= 0 || (size_t)snprintf(want, sizeof(want), "%s%s", dir, path) >= sizeof(want))
		return false;
	snprintf(fd_dir, sizeof(fd_dir), "/proc/%d/fd", (int)tid);
	fds = opendir(fd_dir);
	if (!fds)
		return false;
	while (!found && (d = readdir(fds))) {
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", fd_dir, d->d_name);
		n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = '\0';
			found = !strcmp(got, want);
		}
	}
	closedir(fds);
	return found;
}
