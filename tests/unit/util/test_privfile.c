// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for src/util/privfile.c: a file that holds secrets opens only
 * when it is a regular file of the user's or root's that no one else can
 * read or write, and every refusal names the file and the fix.
 */
#include "util/privfile.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A new file under dir holding text with mode; its path into path. */
static void make_file(char *path, size_t len, const char *dir, const char *name, const char *text, mode_t mode)
{
	int fd;

	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
	chmod(path, mode);
}

int main(void)
{
	char dir[] = "/tmp/dsfs-test-privfile-XXXXXX", path[512], link[512], err[1024], line[64];
	int ret;
	FILE *f;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_file(path, sizeof(path), dir, "good", "secret=1\n", 0600);
	f = dsfs_privfile_open(path, "credentials file", err, sizeof(err), &ret);
	ok(f != NULL && ret == 0, "a 0600 file of the user's opens");
	ok(f && fgets(line, sizeof(line), f) && !strcmp(line, "secret=1\n"), "and reads what it holds");
	if (f)
		fclose(f);

	make_file(path, sizeof(path), dir, "shared", "secret=1\n", 0640);
	ret = 0;
	ok(!dsfs_privfile_open(path, "credentials file", err, sizeof(err), &ret), "a group-readable file is refused");
	is_int(ret, -EPERM, "with EPERM");
	ok(strstr(err, "credentials file ") &&
		   strstr(err, "/shared is readable or writable by group or others (mode 0640)") &&
		   strstr(err, "run chmod 600 ") && strstr(err, "secrets may have leaked"),
	   "the message names what, the path, the mode and the fix: %s", err);

	chmod(path, 0602);
	ok(!dsfs_privfile_open(path, "estate file", err, sizeof(err), &ret) && ret == -EPERM &&
		   strstr(err, "estate file ") && strstr(err, "(mode 0602)"),
	   "so is an other-writable one: %s", err);

	snprintf(path, sizeof(path), "%s/absent", dir);
	ok(!dsfs_privfile_open(path, "key file", err, sizeof(err), &ret), "a missing file is refused");
	is_int(ret, -ENOENT, "with ENOENT");
	ok(strstr(err, "key file ") && strstr(err, "/absent: No such file or directory"), "named: %s", err);

	make_file(path, sizeof(path), dir, "target", "secret=1\n", 0600);
	snprintf(link, sizeof(link), "%s/link", dir);
	ok(symlink(path, link) == 0, "a symbolic link to a good file made");
	ok(!dsfs_privfile_open(link, "credentials file", err, sizeof(err), &ret), "a symbolic link is not followed");
	is_int(ret, -ELOOP, "with ELOOP (O_NOFOLLOW)");

	ok(!dsfs_privfile_open(dir, "credentials file", err, sizeof(err), &ret), "a directory is refused");
	is_int(ret, -EINVAL, "with EINVAL");
	ok(strstr(err, "not a regular file (a FIFO, device or directory cannot hold it)") != NULL, "why: %s", err);

	snprintf(path, sizeof(path), "%s/fifo", dir);
	ok(mkfifo(path, 0600) == 0, "a FIFO made");
	/* were it opened blocking, this would never return: no writer ever comes */
	ok(!dsfs_privfile_open(path, "credentials file", err, sizeof(err), &ret) && ret == -EINVAL &&
		   strstr(err, "not a regular file"),
	   "a FIFO is refused at once: %s", err);

	make_file(path, sizeof(path), dir, "theirs", "secret=1\n", 0600);
	if (getuid() == 0) {
		/* only root can hand a file to another user; root's own files are accepted above */
		ok(chown(path, 12345, 12345) == 0, "the file given to uid 12345");
		ok(!dsfs_privfile_open(path, "credentials file", err, sizeof(err), &ret) && ret == -EPERM,
		   "another user's 0600 file is refused");
		ok(strstr(err, "/theirs belongs to another user (uid 12345): it must be yours or root's") != NULL,
		   "named, with its owner: %s", err);
	} else {
		ok(chown(path, 0, 0) != 0, "a file cannot be given away without root (the check is root's case)");
	}

	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return done_testing();
}
