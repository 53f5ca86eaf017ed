// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * HTTP status and transport failure → errno, in one place, so every path
 * through dsfs reports the same errno for the same cause. Also keeps the
 * per-thread description of the last failed request for the boundary log.
 */
#include "net/errmap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	long status;
	int err;
} status_table[] = {
	{ 400, EINVAL }, { 401, EACCES }, { 403, EACCES }, { 404, ENOENT }, { 405, EOPNOTSUPP }, { 409, EEXIST },
	{ 410, ENOENT }, { 413, EFBIG },  { 422, EINVAL }, { 429, EAGAIN }, { 503, EAGAIN },     { 504, ETIMEDOUT },
};

static const struct {
	enum dsfs_net_error net;
	int err;
	const char *what;
} net_table[] = {
	{ DSFS_NET_OK, 0, "no error" },
	{ DSFS_NET_TIMEOUT, ETIMEDOUT, "timed out" },
	{ DSFS_NET_CONNECT, EIO, "could not connect" },
	{ DSFS_NET_RESOLVE, EIO, "could not resolve host" },
	{ DSFS_NET_TLS, EIO, "TLS failure" },
	{ DSFS_NET_SEND, EIO, "connection lost while sending" },
	{ DSFS_NET_RECV, EIO, "connection lost while receiving" },
	{ DSFS_NET_TOOBIG, EIO, "answer larger than the size limit" },
	{ DSFS_NET_PROTOCOL, EIO, "malformed answer" },
	{ DSFS_NET_NOMEM, ENOMEM, "out of memory" },
	{ DSFS_NET_OTHER, EIO, "transfer failed" },
	{ DSFS_NET_CANCELLED, EINTR, "interrupted" },
};

int dsfs_errmap_status(long status)
{
	size_t i;

	if (status >= 100 && status < 400)
		return 0;
	for (i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++)
		if (status_table[i].status == status)
			return -status_table[i].err;
	return -EIO;
}

int dsfs_errmap_net(enum dsfs_net_error err)
{
	size_t i;

	for (i = 0; i < sizeof(net_table) / sizeof(net_table[0]); i++)
		if (net_table[i].net == err)
			return -net_table[i].err;
	return -EIO;
}

const char *dsfs_errmap_net_str(enum dsfs_net_error err)
{
	size_t i;

	for (i = 0; i < sizeof(net_table) / sizeof(net_table[0]); i++)
		if (net_table[i].net == err)
			return net_table[i].what;
	return "transfer failed";
}

static __thread struct {
	int set;
	long status;
	char what[512];
	char message[512];
} last;

void dsfs_err_record(const char *method, const char *path, long status, const char *message)
{
	last.set = 1;
	last.status = status;
	snprintf(last.what, sizeof(last.what), "%s %s", method, path);
	snprintf(last.message, sizeof(last.message), "%s", message ? message : "");
}

void dsfs_err_clear(void)
{
	last.set = 0;
}

const char *dsfs_err_describe(char *buf, size_t len)
{
	if (!last.set)
		return NULL;
	if (last.status)
		snprintf(buf, len, "%s: HTTP %ld: %s", last.what, last.status, last.message);
	else
		snprintf(buf, len, "%s: %s", last.what, last.message);
	return buf;
}
