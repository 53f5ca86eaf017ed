// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/util/log.c: the ring behind .dsfs/log, repeats shown once, and the -o log= file's bound. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "tap.h"

static char buf[DSFS_LOG_RING_BYTES + 1];

static size_t count_lines(const char *s, size_t n)
{
	size_t lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += s[i] == '\n';
	return lines;
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

int main(void)
{
	char dir[] = "/tmp/dsfs-test-log-XXXXXX", path[256], old[300], err[512];
	uint64_t at, end;
	size_t n;
	struct stat st;

	dsfs_log_setup(false, DSFS_LOG_INFO);
	if (!freopen("/dev/null", "w", stderr)) /* the thousands of lines below also go to stderr */
		return 1;
	is_int((long long)dsfs_log_end(), 0, "the ring starts empty");

	dsfs_log(DSFS_LOG_ERR, "rmdir /servers/a: refused");
	dsfs_log(DSFS_LOG_DEBUG, "not kept at the info level");
	end = dsfs_log_end();
	n = dsfs_log_read(0, buf, sizeof(buf), &at);
	buf[n] = '\0';
	is_int((long long)n, (long long)end, "a read from 0 gives the whole ring");
	ok(count_lines(buf, n) == 1 && strstr(buf, "Z error: rmdir /servers/a: refused\n"),
	   "one line, with its level: %s", buf);
	ok(n > 24 && buf[4] == '-' && buf[10] == 'T' && buf[19] == '.', "the line starts with its UTC time: %s", buf);

	dsfs_log(DSFS_LOG_ERR, "rmdir /servers/a: refused");
	dsfs_log(DSFS_LOG_WARN, "rmdir /servers/a: refused");
	is_int((long long)dsfs_log_end(),
	       (long long)(end + n + strlen("2026-01-01T00:00:00.000Z warning: ") -
			   strlen("2026-01-01T00:00:00.000Z error: ")),
	       "a repeated error is not shown again; a warning of the same words is");
	end = dsfs_log_end();
	dsfs_log(DSFS_LOG_INFO, "an info line");
	dsfs_log(DSFS_LOG_INFO, "an info line");
	n = dsfs_log_read(end, buf, sizeof(buf), &at);
	buf[n] = '\0';
	is_int((long long)count_lines(buf, n), 2, "info lines are never counted as repeats");
	is_int((long long)at, (long long)end, "a read from a kept position starts there");
	n = dsfs_log_read(end + 3, buf, 5, &at);
	is_int((long long)n, 5, "a read takes at most what was asked");
	is_int((long long)dsfs_log_read(dsfs_log_end(), buf, sizeof(buf), &at), 0, "nothing past the end");

	for (int i = 0; i < 3 * DSFS_LOG_RING_LINES; i++)
		dsfs_log(DSFS_LOG_INFO, "line %d of many, padded to be long enough to pass the byte bound: %0200d", i,
			 i);
	n = dsfs_log_read(0, buf, sizeof(buf), &at);
	buf[n] = '\0';
	ok(at > 0, "the oldest lines were dropped: a read from 0 starts at the oldest kept (%llu)",
	   (unsigned long long)at);
	ok(n <= DSFS_LOG_RING_BYTES && count_lines(buf, n) <= DSFS_LOG_RING_LINES,
	   "the ring keeps its bounds (%zu bytes, "
	   "%zu lines)",
	   n, count_lines(buf, n));
	is_int((long long)(at + n), (long long)dsfs_log_end(), "what is kept ends at the end");
	ok(strstr(buf, "line 2999 of many") && !strstr(buf, "line 0 of many"), "the newest kept, the oldest gone");
	ok(buf[0] == '2' && buf[n - 1] == '\n', "whole lines only");

	ok(mkdtemp(dir) != NULL, "a temporary directory");
	is_int(dsfs_log_to_file("relative.log", 4096, err, sizeof(err)), -EINVAL, "a relative path is refused");
	snprintf(path, sizeof(path), "%s/no-such-dir/dsfs.log", dir);
	is_int(dsfs_log_to_file(path, 4096, err, sizeof(err)), -ENOENT, "a file that cannot be made is refused");
	ok(strstr(err, path) && strstr(err, "No such file"), "naming it and why: %s", err);
	snprintf(path, sizeof(path), "%s/dsfs.log", dir);
	snprintf(old, sizeof(old), "%s.1", path);
	is_int(dsfs_log_to_file(path, 4096, err, sizeof(err)), 0, "a new log file");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "made 0600 (%o)", st.st_mode & 0777);
	for (int i = 0; i < 500; i++)
		dsfs_log(DSFS_LOG_WARN, "write /servers/x/action: refused: unknown verb 'v%d'", i);
	ok(file_size(path) > 0 && file_size(path) <= 4096, "the file keeps its bound (%ld)", file_size(path));
	ok(file_size(old) > 4096 - 200 && file_size(old) <= 4096, "the older lines are in FILE.1 (%ld)",
	   file_size(old));
	n = dsfs_log_read(0, buf, sizeof(buf), &at);
	buf[n] = '\0';
	{
		FILE *f = fopen(path, "r");
		char line[512] = "";

		while (f && fgets(line, sizeof(line), f))
			;
		if (f)
			fclose(f);
		ok(strstr(line, "unknown verb 'v499'") && strstr(buf, line),
		   "the file and the ring end with the same line");
	}
	dsfs_log_close();
	unlink(path);
	unlink(old);
	rmdir(dir);
	return done_testing();
}
