/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an edit of an object file asks the server: the text a writer left,
 * compared with the object as it was read and as the server has it now,
 * becomes the body of one PUT carrying only the fields that changed, or a
 * refusal naming the field (a field the API does not let one edit, a
 * wrong type, invalid JSON) or the conflict (an editable field that
 * changed on the server since it was read). Pure: no requests, no state.
 */
#ifndef DSFS_EDIT_H
#define DSFS_EDIT_H

#include <json-c/json.h>
#include <stddef.h>

#include "format/command.h"

/* The fields of a kind's objects that an edit may change. */
struct dsfs_edits {
	const struct dsfs_edit_field *field;
	size_t n;
};

/*
 * The PUT body for an object whose editable fields are k, edited from base (what was read) to text
 * (len bytes, what the writer left), server being the object now (NULL:
 * not asked). 0 with *body set, or NULL when nothing changed; -EINVAL or
 * -EBUSY with why saying which field and what to do.
 */
int dsfs_edit_body(const struct dsfs_edits *k, json_object *base, const char *text, size_t len, json_object *server,
		   json_object **body, char *why, size_t whylen);

#endif
