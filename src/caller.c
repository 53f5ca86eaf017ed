// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The calling thread's caller, kept thread-local so the layers between the
 * FUSE glue and the transport need not pass it through every call.
 */
#include "caller.h"

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
