/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny TAP producer for the unit tests: ok(), is_str(), is_int() and
 * done_testing(), which returns the exit status automake's test driver reads.
 */
#ifndef DSFS_TAP_H
#define DSFS_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	return pass;
}

// clang-format off
#define is_str(got, want, name)                                                                  \
	do {                                                                                     \
		const char *g_ = (got), *w_ = (want);                                            \
		if (!ok(g_ && w_ && !strcmp(g_, w_), "%s", name))                                \
			printf("#   got:  '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)", w_);          \
	} while (0)
// clang-format on

// clang-format off
#define is_int(got, want, name)                                                                  \
	do {                                                                                     \
		long long g_ = (got), w_ = (want);                                               \
		if (!ok(g_ == w_, "%s", name))                                                   \
			printf("#   got:  %lld\n#   want: %lld\n", g_, w_);                          \
	} while (0)
// clang-format on

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	printf("# %d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
