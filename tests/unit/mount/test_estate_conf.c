// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the estate file's parser (src/mount/estate_conf.c, dsfs_estate_parse):
 * every mistake is refused with a line naming the file, the line and the
 * reason, a repeated key as much as an unknown one, and a member's name is
 * one the tree can show.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount/estate_conf.h"
#include "tap.h"

static char path[] = "/tmp/dsfs-test-estate-XXXXXX";

static int parse(const char *text, char *err, size_t errlen, size_t *n)
{
	struct dsfs_member_conf *m = NULL;
	FILE *f = fopen(path, "w");
	int ret;

	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	err[0] = '\0';
	*n = 0;
	ret = dsfs_estate_parse(path, &m, n, err, errlen);
	dsfs_estate_conf_free(m, *n);
	return ret;
}

/* text is refused at line (with path and why in the message). */
static void refused(const char *what, const char *text, int line, const char *why)
{
	char err[1024], want[256];
	size_t n;
	int ret = parse(text, err, sizeof(err), &n);

	is_int(ret, -EINVAL, what);
	snprintf(want, sizeof(want), "estate file %s, line %d:", path, line);
	ok(strstr(err, want) != NULL, "%s: names the file and line %d: %s", what, line, err);
	ok(strstr(err, why) != NULL, "%s: says '%s'", what, why);
}

int main(void)
{
	char err[1024];
	size_t n;
	int fd = mkstemp(path);

	if (fd < 0)
		return 1;
	close(fd);

	is_int(parse("[a1]\nurl = http://h/a\n\n[b\xc3\xa9]\nurl = http://h/b\napi = dscc\n", err, sizeof(err), &n), 0,
	       "a good file parses");
	is_int(n, 2, "two members");

	/* a repeated url (or any key) is a mistake, not "the last wins" */
	refused("url twice", "[a1]\nurl = http://h/a\nurl = http://h/b\n", 3, "'url' is given twice in [a1]");
	refused("api twice", "[a1]\nurl = http://h/a\napi = dscc\napi = dscc\n", 4, "'api' is given twice");
	refused("cacert twice", "[a1]\ncacert = /x\nurl = http://h/a\ncacert = /y\n", 4, "'cacert' is given twice");
	refused("password twice", "[a1]\nurl = http://h/a\npassword = a\npassword = b\n", 4, "is given twice");

	/* member names the tree cannot show */
	refused("a tab", "[a\tb]\nurl = http://h/a\n", 1, "no tab or other control character");
	refused("a control character", "[a\x01]\nurl = http://h/a\n", 1, "control character");
	refused("invalid UTF-8", "[a\xff]\nurl = http://h/a\n", 1, "valid UTF-8");
	refused("a cut UTF-8 sequence", "[a\xc3]\nurl = http://h/a\n", 1, "valid UTF-8");
	refused(".where", "[a1]\nurl = http://h/a\n[.where]\nurl = http://h/b\n", 3, "reserved");
	refused(".count", "[.count]\nurl = http://h/a\n", 1, "reserved");
	refused(".by-id", "[.by-id]\nurl = http://h/a\n", 1, "reserved");
	refused("new", "[new]\nurl = http://h/a\n", 1, "reserved");
	refused("tasks", "[tasks]\nurl = http://h/a\n", 1, "reserved");
	refused("a slash", "[a/b]\nurl = http://h/a\n", 1, "no '/'");
	refused("twice", "[a1]\nurl = http://h/a\n[a1]\nurl = http://h/b\n", 3, "named twice");
	refused("unknown key", "[a1]\nurl = http://h/a\ncolour = red\n", 3, "unknown key 'colour'");

	/* typos and other shapes of a line get the key meant */
	refused("a misspelt key", "[a1]\nurl = http://h/a\ncredentails = /x\n", 3, "did you mean 'credentials'?");
	refused("a misspelt credentials key", "[a1]\nurl = http://h/a\npasword = x\n", 3, "did you mean 'password'?");
	refused("url: x", "[a1]\nurl: http://h/a\n", 2, "write url = ..., with '='");
	refused("passwrd: x", "[a1]\nurl = http://h/a\npasswrd: s3cret\n", 3, "write password = ...");
	{
		char e[1024];
		size_t k;

		parse("[a1]\nurl = http://h/a\npasswrd: s3cret\n", e, sizeof(e), &k);
		ok(!strstr(e, "s3cret"), "the value of a key: value line is not shown: %s", e);
	}
	refused("an unclosed quote", "[a1]\nurl = \"http://h/a\n", 2, "does not close");
	refused("an empty value", "[a1]\nurl =\n", 2, "'url' has an empty value");
	{
		struct dsfs_member_conf *m = NULL;
		FILE *f = fopen(path, "w");

		fputs("\xef\xbb\xbf[a1]\nurl = \"http://h/a\"\npassword = ' s3 '\nusername=admin\n", f);
		fclose(f);
		is_int(dsfs_estate_parse(path, &m, &n, err, sizeof(err)), 0, "quotes, blanks and a BOM");
		ok(n == 1 && !strcmp(m[0].url, "http://h/a"), "a quoted url is unquoted");
		ok(n == 1 && !strcmp(dsfs_credentials_get(&m[0].cred, "password"), " s3 "),
		   "a quoted password keeps its blanks, not its quotes");
		ok(n == 1 && !strcmp(dsfs_credentials_get(&m[0].cred, "username"), "admin"),
		   "key=value without blanks");
		dsfs_estate_conf_free(m, n);
	}

	unlink(path);
	return done_testing();
}
