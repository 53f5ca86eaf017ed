/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control-file command grammar (docs/control.md): one line in, a verb
 * and a JSON request body out, or a clear reason why not (ctl.c); and,
 * before that, where in what is written each command ends and whether its
 * bytes are UTF-8 (ctl_scan.c). Pure and thread-safe: nothing here touches
 * the network.
 */
#ifndef DSFS_CTL_H
#define DSFS_CTL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "format/command.h"

/*
 * Longest command accepted: one line, in bytes, its newline not counted. A
 * longer line fails with EFBIG, however it was split into writes; the
 * limit is per line, not per write.
 */
#define DSFS_CTL_MAX 65536

/* ---- what is written: where commands end, and UTF-8 (ctl_scan.c) ---- */

/*
 * Where a command written to a control file ends. A command is one line,
 * unless it opens a JSON object (a `new` file's "{...", an action file's
 * "VERB {..."): then it runs on to the newline at which its braces balance,
 * braces inside JSON strings (escapes included) not counting, so that JSON
 * printed over several lines (`jq .`) is one command. Fields are the
 * scanner's own.
 */
struct dsfs_ctl_scan {
	bool verb;      /* an action file: the command starts with a verb */
	int stage;      /* how far into the command's opening the scan is */
	long depth;     /* '{' less '}' seen outside strings, once an object opened */
	bool in_string; /* inside a JSON string */
	bool escaped;   /* the byte before was a backslash inside a string */
};

/* Starts scanning the commands of an action file (verb true) or of a `new` file. */
void dsfs_ctl_scan_init(struct dsfs_ctl_scan *s, bool verb);

/*
 * Reads p[0..n): returns how many bytes belong to the command being
 * written, up to and including the newline that ends it (*ended true; the
 * scan is then at the start of the next command), or n when the command
 * goes on past them (*ended false).
 */
size_t dsfs_ctl_scan(struct dsfs_ctl_scan *s, const char *p, size_t n, bool *ended);

/* True when the command so far opened a JSON object whose braces do not balance yet. */
bool dsfs_ctl_scan_open(const struct dsfs_ctl_scan *s);

/*
 * Length of the longest prefix of s[0..len) that is valid UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF): len when all
 * of it is.
 */
size_t dsfs_ctl_utf8_prefix(const char *s, size_t len);

/* The first byte at or after p (before end) that is not white space. */
const char *dsfs_ctl_skip_space(const char *p, const char *end);

/* End of a value starting at p: a JSON string or bracketed value is scanned whole, else up to a space. */
const char *dsfs_ctl_value_end(const char *p, const char *end);

/*
 * Parses exactly n bytes at p as one JSON value. Returns true and sets *out
 * (NULL for JSON null) when all of it is one value; false otherwise.
 */
bool dsfs_ctl_json_exact(const char *p, size_t n, json_object **out);

/* ---- one command: its verb and its body (ctl.c) ---- */

/*
 * Parses one command line (no newline) written to a control file.
 * For a `new` file (create != NULL): a JSON object, key=value pairs, or a
 * bare value that becomes create->bare_field. For an `action` file
 * (actions != NULL): "VERB {json}" or "VERB key=value ...", VERB one of
 * actions[0..nactions). In key=value, a value that parses as a JSON literal
 * is that literal, anything else a string; dotted keys nest. A line that
 * holds a NUL byte or is not valid UTF-8 is refused.
 * On success returns 0, sets *action (the matched entry) and *body (new
 * reference, caller puts). On failure returns -EINVAL with err set.
 */
int dsfs_ctl_parse(const char *line, size_t len, const struct dsfs_action *create, const struct dsfs_action *actions,
		   size_t nactions, const struct dsfs_action **action, json_object **body, char *err, size_t errlen);

/*
 * A command as it may be shown (a control file's result, the log): the len
 * bytes at line as written, but with the value of every key=value pair and
 * JSON field whose name says it is a secret replaced by DSFS_SECRET_SHOWN
 * (format/secret.h), at any depth (a JSON value that held one is written
 * compact). malloc'd, NUL-terminated; NULL on ENOMEM.
 */
char *dsfs_ctl_shown(const char *line, size_t len);

/*
 * The value at a dotted path in body (e.g. "snapshot.id"), or NULL.
 * The reference is borrowed.
 */
json_object *dsfs_ctl_get(json_object *body, const char *dotted);

#endif
