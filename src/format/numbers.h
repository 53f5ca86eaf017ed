/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Numbers a user wrote, as they will reach the server. json-c reads
 * 99999999999999999999 as 18446744073709551615, "01" as 1 and 1e400 as an
 * infinity it then writes back as "1e400": a number dsfs sends must mean
 * what the user wrote, or the write is refused. Pure and thread-safe.
 */
#ifndef DSFS_NUMBERS_H
#define DSFS_NUMBERS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Is [s, s + n) a number as JSON (RFC 8259) spells one: no '+', no leading zero, no "1.", no NaN? */
bool dsfs_numbers_is_json(const char *s, size_t n);

/*
 * 0 when the JSON number [s, s + n) reaches the server as written and
 * compares exactly: an integer from -2^63 to 2^64-1; a number with a
 * fraction or exponent that is finite, not an underflow, has at most 15
 * significant digits (two such spellings of different values are two
 * different doubles) and, when whole, is at most 2^53. Else -EINVAL, why
 * saying which number and why.
 */
int dsfs_numbers_exact(const char *s, size_t n, char *why, size_t whylen);

/*
 * Checks every number in the JSON text [text, text + len) (already parsed
 * by json-c): each must be a JSON number that dsfs_numbers_exact takes,
 * unless it is spelt as one of the numbers of shown (the object the file
 * showed, NULL for none) spells it: what was shown and left alone goes
 * back as it came. 0, or -EINVAL with why.
 */
int dsfs_numbers_check_text(const char *text, size_t len, json_object *shown, char *why, size_t whylen);

/* Are a and b (json-c numbers) the same number? Exactly, across int64, uint64 and double. */
bool dsfs_numbers_same(json_object *a, json_object *b);

#endif
