// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/net/errmap.c: the status and transport errno table. */
#include <errno.h>

#include "net/errmap.h"
#include "tap.h"

int main(void)
{
	char buf[256];

	is_int(dsfs_errmap_status(200), 0, "200 is success");
	is_int(dsfs_errmap_status(204), 0, "204 is success");
	is_int(dsfs_errmap_status(400), -EINVAL, "400 -> EINVAL");
	is_int(dsfs_errmap_status(401), -EACCES, "401 -> EACCES");
	is_int(dsfs_errmap_status(403), -EACCES, "403 -> EACCES");
	is_int(dsfs_errmap_status(404), -ENOENT, "404 -> ENOENT");
	is_int(dsfs_errmap_status(409), -EEXIST, "409 -> EEXIST");
	is_int(dsfs_errmap_status(422), -EINVAL, "422 -> EINVAL");
	is_int(dsfs_errmap_status(429), -EAGAIN, "429 -> EAGAIN");
	is_int(dsfs_errmap_status(503), -EAGAIN, "503 -> EAGAIN");
	is_int(dsfs_errmap_status(500), -EIO, "500 -> EIO");
	is_int(dsfs_errmap_status(418), -EIO, "unknown status -> EIO");
	is_int(dsfs_errmap_net(DSFS_NET_TIMEOUT), -ETIMEDOUT, "timeout -> ETIMEDOUT");
	is_int(dsfs_errmap_net(DSFS_NET_CONNECT), -EIO, "refused -> EIO");
	is_int(dsfs_errmap_net(DSFS_NET_TOOBIG), -EIO, "too big -> EIO");
	is_int(dsfs_errmap_net(DSFS_NET_NOMEM), -ENOMEM, "no memory -> ENOMEM");

	dsfs_err_clear();
	ok(dsfs_err_describe(buf, sizeof(buf)) == NULL, "nothing recorded after clear");
	dsfs_err_record("GET", "/server/0", 404, "no such server");
	is_str(dsfs_err_describe(buf, sizeof(buf)), "GET /server/0: HTTP 404: no such server",
	       "HTTP failure described");
	dsfs_err_record("GET", "/info", 0, "could not connect");
	is_str(dsfs_err_describe(buf, sizeof(buf)), "GET /info: could not connect", "transport failure described");
	return done_testing();
}
