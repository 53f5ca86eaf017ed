// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Opening a root-only private file (util/privfile.h): the checks a file
 * holding secrets must pass, made on the open descriptor so that what is
 * checked is what is read.
 */
#include "util/privfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *dsfs_privfile_open(const char *path, const char *what, char *err, size_t errlen, int *ret)
{
	struct stat sb;
	FILE *f;
	int fd;

	/* O_NONBLOCK: a FIFO or a device must not hold start-up in open(2) */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		*ret = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	*ret = -EPERM;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen,
			 "%s %s: not a regular file (a FIFO, device or directory cannot "
			 "hold it)",
			 what, path);
		*ret = -EINVAL;
	} else if (fcntl(fd, F_SETFL, 0) < 0) {
		*ret = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	} else if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "%s %s is readable or writable by group or others (mode %04o), so its "
			 "secrets may have leaked: change them if needed and run chmod 600 %s",
			 what, path, (unsigned)(sb.st_mode & 07777), path);
	} else if (sb.st_uid != getuid() && sb.st_uid != 0) {
		snprintf(err, errlen, "%s %s belongs to another user (uid %u): it must be yours or root's", what, path,
			 (unsigned)sb.st_uid);
	} else if (!(f = fdopen(fd, "r"))) {
		*ret = -ENOMEM;
	} else {
		*ret = 0;
		return f;
	}
	close(fd);
	return NULL;
}
