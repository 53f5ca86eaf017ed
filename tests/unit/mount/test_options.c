// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/mount/options.c: option values, URL checks, credentials files. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_opt.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount/options.h"
#include "tap.h"

static int parse(struct dsfs_options *o, char *err, size_t len, int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int ret;

	memset(o, 0, sizeof(*o));
	args.allocated = 0;
	ret = dsfs_options_parse(&args, o, err, len);
	fuse_opt_free_args(&args);
	return ret;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
	chmod(path, mode);
}

/* The credentials file at path holding text is refused for d, the message saying want. */
static void cred_refused(struct dsfs_options *o, const struct dsfs_dialect *d, const char *path, const char *text,
			 const char *what, const char *want)
{
	char err[1024];

	write_file(path, text, 0600);
	is_int(dsfs_options_load_credentials(o, d, err, sizeof(err)), -EINVAL, what);
	ok(strstr(err, want) != NULL, "%s: the message says '%s': %s", what, want, err);
	ok(!strstr(err, "pw-Zq"), "%s: no value is shown", what);
	dsfs_credentials_clear(&o->cred);
}

int main(void)
{
	const struct dsfs_dialect *sp = dsfs_dialect_named("storageplugin"), *dscc = dsfs_dialect_named("dscc");
	struct dsfs_options o;
	char err[1024], path[] = "/tmp/dsfs-test-cred-XXXXXX";
	bool guessed;
	int fd;

	{
		char *argv[] = { "dsfs", "-o", "cache_ttl=0.5,timeout=7,page_size=50,retries=0,allow_other",
				 "http://h:1/storageplugin/api/", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), 0, "valid options parse");
		ok(o.cache_ttl == 0.5, "cache_ttl read");
		ok(o.timeout == 7, "timeout read");
		is_int(o.page_size, 50, "page_size read");
		is_int(o.retries, 0, "retries read");
		is_str(o.url, "http://h:1/storageplugin/api", "trailing slash dropped from URL");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 3, argv), 0, "defaults parse");
		ok(o.cache_ttl == 2 && o.timeout == 30 && o.connect_timeout == 10, "time defaults");
		is_int(o.page_size, 1000, "page_size default");
		is_int(o.retries, 3, "retries default");
		is_int((long long)o.max_body, 64LL << 20, "max_body default 64 MiB");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "cache_ttl=soon", "http://h/x", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "non-numeric value refused");
		ok(strstr(err, "cache_ttl=soon") != NULL, "message names the option: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "ftp://h/x", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 3, argv), -EINVAL, "non-HTTP URL refused");
		ok(strstr(err, "http://") != NULL, "message says what is expected: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "http://admin:pw@h/x", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 3, argv), -EINVAL, "credentials in the URL refused");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "insecure", "http://h/x", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "TLS option on http:// refused");
		dsfs_options_free(&o);
	}
	{
		char *u = dsfs_options_url_host("https://array1.example.com:8443/storageplugin/api");
		is_str(u, "array1.example.com", "host of a URL");
		free(u);
		u = dsfs_options_url_host("http://[::1]:80/x");
		is_str(u, "::1", "host of an IPv6 URL");
		free(u);
	}

	fd = mkstemp(path);
	close(fd);
	memset(&o, 0, sizeof(o));
	o.credentials = strdup(path);
	write_file(path, "# comment\nusername=admin\npassword=s3cr et\n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), 0, "0600 credentials file loads");
	is_str(dsfs_credentials_get(&o.cred, "username"), "admin", "username read");
	is_str(dsfs_credentials_get(&o.cred, "password"), "s3cr et", "password read with inner space");
	dsfs_credentials_clear(&o.cred);

	write_file(path, "username=admin\npassword=x\n", 0644);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), -EPERM, "group/other-readable file refused");
	ok(strstr(err, "chmod 600") != NULL, "message gives the fix: %s", err);

	write_file(path, "username = admin\npassword =  s3cr et \n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), 0, "key = value with blanks loads");
	is_str(dsfs_credentials_get(&o.cred, "username"), "admin", "blanks around = are not the value's");
	is_str(dsfs_credentials_get(&o.cred, "password"), "s3cr et", "inner blanks are");
	dsfs_credentials_clear(&o.cred);

	write_file(path, "username=\"admin\"\npassword=' pw\"x '\n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), 0, "quoted values load");
	is_str(dsfs_credentials_get(&o.cred, "username"), "admin", "double quotes taken off");
	is_str(dsfs_credentials_get(&o.cred, "password"), " pw\"x ", "single quotes taken off, all inside kept");
	dsfs_credentials_clear(&o.cred);

	cred_refused(&o, sp, path, "username=\"admin\npassword=x\n", "an unclosed quote",
		     "line 1: username= opens a quote");
	cred_refused(&o, sp, path, "username=admin\npassword=\n", "an empty value",
		     "line 2: password= has an empty value");
	cred_refused(&o, sp, path, "username: admin\npassword: pw-Zq\n", "key: value", "not key: value");
	cred_refused(&o, sp, path, "usernme=admin\npassword=x\n", "a misspelt key", "did you mean username=?");

	write_file(path, "username=admin\n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), -EINVAL, "file without password refused");
	ok(strstr(err, "password") != NULL, "message names what is missing: %s", err);
	dsfs_credentials_clear(&o.cred);

	write_file(path, "user admin\n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), -EINVAL, "malformed line refused");
	ok(strstr(err, "line 1") != NULL, "message names the line: %s", err);

	write_file(path, "username=admin\nclient_id=abc\n", 0600);
	is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), -EINVAL, "another dialect's key refused");
	ok(strstr(err, "line 2") && strstr(err, "username=, password= or array="),
	   "message names the line and the dialect's keys: %s", err);
	dsfs_credentials_clear(&o.cred);

	write_file(path, "client_id=abc\nclient_secret=s3\ntoken_url=https://sso.example.com/as/token.oauth2\n", 0600);
	is_int(dsfs_options_load_credentials(&o, dscc, err, sizeof(err)), 0, "DSCC client credentials load");
	is_str(dsfs_credentials_get(&o.cred, "client_id"), "abc", "client_id read");
	is_str(dsfs_credentials_get(&o.cred, "token_url"), "https://sso.example.com/as/token.oauth2", "token_url read");
	dsfs_credentials_clear(&o.cred);
	write_file(path, "client_id=abc\n", 0600);
	is_int(dsfs_options_load_credentials(&o, dscc, err, sizeof(err)), -EINVAL, "DSCC without a secret refused");
	ok(strstr(err, "client_secret") != NULL, "message names what is missing: %s", err);

	unlink(path);
	dsfs_options_free(&o);

	{
		char *argv[] = { "dsfs", "https://us1.data.cloud.hpe.com", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 3, argv), 0, "DSCC URL parses");
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == dscc, "DSCC recognised from the host");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "api=dscc", "http://127.0.0.1:8080", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), 0, "api= parses");
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == dscc, "api=dscc wins");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "api=s3", "http://h/x", "/mnt" };
		parse(&o, err, sizeof(err), 5, argv);
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == NULL && strstr(err, "api=s3") &&
			   strstr(err, "storageplugin, dscc"),
		   "unknown api refused, the known ones listed: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "http://h:1/storageplugin/api", "/mnt" };
		parse(&o, err, sizeof(err), 3, argv);
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == sp && !guessed,
		   "storage-plugin recognised from the path");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "http://127.0.0.1:8080", "/mnt" };
		parse(&o, err, sizeof(err), 3, argv);
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == sp && guessed,
		   "a URL no dialect claims: the first, said to be a guess");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "api=storage-plugin", "http://127.0.0.1:8080", "/mnt" };
		parse(&o, err, sizeof(err), 5, argv);
		ok(dsfs_options_dialect(&o, &guessed, err, sizeof(err)) == sp && !guessed,
		   "api=storage-plugin is storageplugin");
		dsfs_options_free(&o);
		ok(dsfs_dialect_named("Cloud_Sync") == dsfs_dialect_named("cloudsync"), "case and _ do not count");
	}
	{
		char *argv[] = { "dsfs", "--credentials=/etc/dsfs/a.cred", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 4, argv), -EINVAL, "--credentials=FILE is refused");
		ok(strstr(err, "unknown option --credentials=...") && strstr(err, "did you mean -o credentials=...?") &&
			   !strstr(err, "a.cred"),
		   "named, with the -o form, without its value: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-x", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 4, argv), -EINVAL, "an unknown -x is refused");
		ok(strstr(err, "unknown option -x ") != NULL, "named: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "http://h/storageplugin/api", "/mnt", "/other" };
		is_int(parse(&o, err, sizeof(err), 4, argv), -EINVAL, "an argument past the mountpoint is refused");
		ok(strstr(err, "'/other'") != NULL, "named: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-d", "--debug", "-o", "estate=/e.conf", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 6, argv), 0, "libfuse's own dash options pass");
		is_str(o.mountpoint, "/mnt", "an estate's one argument is the mountpoint");
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "credentails=/etc/dsfs/a.cred", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "a misspelt key is refused");
		ok(strstr(err, "-o credentails") && strstr(err, "did you mean -o credentials?"),
		   "the misspelt key and the nearest known one are named: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "allow_other,cache_tll=4", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "a typo after a valid key is refused");
		ok(strstr(err, "cache_tll") && strstr(err, "-o cache_ttl?"), "nearest: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "alow_other", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "a libfuse key misspelt is refused");
		ok(strstr(err, "did you mean -o allow_other?"), "libfuse's keys are suggested too: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs", "-o", "frobnicate=3", "http://h/storageplugin/api", "/mnt" };
		is_int(parse(&o, err, sizeof(err), 5, argv), -EINVAL, "an unknown key is refused");
		ok(strstr(err, "-o frobnicate ") && !strstr(err, "did you mean"), "no far-fetched suggestion: %s", err);
		dsfs_options_free(&o);
	}
	{
		char *argv[] = { "dsfs",
				 "-f",
				 "-s",
				 "-o",
				 "allow_other,default_permissions,nodev,nosuid,noatime,"
				 "max_threads=8,fsname=x,auto_unmount,ro,uid=0,umask=022",
				 "http://h/storageplugin/api",
				 "/mnt" };
		ok(parse(&o, err, sizeof(err), 7, argv) == 0, "libfuse's and the kernel's keys pass: %s", err);
		dsfs_options_free(&o);
	}
	{
		char fifo[] = "/tmp/dsfs-test-fifo-XXXXXX";
		char *argv[] = { "dsfs", "http://h/storageplugin/api", "/mnt" };
		int r = mkstemp(fifo);

		if (r >= 0)
			close(r);
		unlink(fifo);
		ok(mkfifo(fifo, 0600) == 0, "a FIFO made");
		parse(&o, err, sizeof(err), 3, argv);
		o.credentials = strdup(fifo);
		/* were it opened blocking, this would never return: no writer ever comes */
		is_int(dsfs_options_load_credentials(&o, sp, err, sizeof(err)), -EINVAL, "a FIFO is refused");
		ok(strstr(err, "not a regular file") != NULL, "and the message says why: %s", err);
		dsfs_options_free(&o);
		unlink(fifo);
	}
	return done_testing();
}
