/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which values are secrets, and hiding them: a field whose name says so
 * ("password", "clientSecret", "refresh_token") never reaches a file of
 * the tree or the log with its value, wherever it stands in what a user
 * wrote or dsfs would send. Pure and thread-safe.
 */
#ifndef DSFS_SECRET_H
#define DSFS_SECRET_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* What a hidden value is shown as. */
#define DSFS_SECRET_SHOWN "(hidden)"

/* True when the len bytes of a field's name at key say its value is a secret. */
bool dsfs_secret_name(const char *key, size_t len);

/*
 * Replaces, in place, the value of every field of o (at any depth) whose
 * name says it is a secret. True when it replaced any.
 */
bool dsfs_secrets_hide(json_object *o);

#endif
