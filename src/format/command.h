/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a command of a control file and an edit of an object file may say:
 * the tables a dialect fills in (dialect/dialect.h) and the pure code of
 * this folder checks text against (ctl.h, edit.h). Types only.
 */
#ifndef DSFS_COMMAND_H
#define DSFS_COMMAND_H

#include <stdbool.h>

/*
 * The JSON type the API gives a field of a request body. A control-file
 * value is sent with its field's type, whatever its spelling: "4006" is a
 * string where the API takes a string (docs/control.md).
 */
enum dsfs_type {
	DSFS_T_STRING = 1, /* a string: key=4006 sends "4006" */
	DSFS_T_INTEGER,    /* an integer JSON carries exactly (int64) */
	DSFS_T_NUMBER,     /* an integer or a fraction */
	DSFS_T_BOOLEAN,    /* true or false */
	DSFS_T_STRINGS,    /* a list of strings: key=a,b, key=[a,b], or a JSON array */
	DSFS_T_ARRAY,      /* a list the API describes no further: a JSON array, taken as written */
	DSFS_T_OBJECT,     /* an object the API describes no further: it and every field below it as written */
};

/* A field a command takes. */
struct dsfs_field {
	const char *name; /* dotted path in the body: "policy.id" */
	enum dsfs_type type;
};

/* A body field that names another resource: an entry name there is replaced by its id. */
struct dsfs_ref {
	const char *field; /* dotted path in the body; a string or a list of strings */
	const char *scope; /* directory of candidates, relative to the control file's directory */
};

/* A command of a control file: a verb of `action`, or the creation of `new`. */
struct dsfs_action {
	const char *verb; /* "clone"; NULL for a `new` file */
	/*
	 * Every field the command takes, with its type, {NULL}-terminated
	 * (required ones, refs, bare_field and defaults among them). Any other
	 * field is refused before anything is sent. NULL only with no_body.
	 */
	const struct dsfs_field *fields;
	const char *const *required; /* fields that must be present ("a|b": one of them), NULL-terminated */
	const struct dsfs_ref *refs; /* NULL-terminated (field NULL) */
	const char *bare_field;      /* `new`: the field a bare value sets ("name") */
	bool no_body;                /* the request carries no body */
	const char *method;          /* "PUT"; NULL: POST */
	/*
	 * The body's media type; NULL: application/json. GreenLake's state
	 * changes (a dual-auth operation's approval) are PATCHes of
	 * application/merge-patch+json; any API that takes RFC 7396 patches
	 * (or JSON Patch, application/json-patch+json) says it here.
	 */
	const char *content_type;
	const char *subpath;  /* POST to the resource URL + subpath ("/clone"); NULL: ?action=VERB */
	const char *target;   /* POST here instead: a path from the API root, "{id}" standing
	                              * for the id of the resource the file acts on (for `new`, the
	                              * collection's owner): "/application/{id}/backup" */
	const char *defaults; /* JSON object merged under the user's fields ({"namePattern": ...}) */
	/*
	 * The command destroys or overwrites data (a backup image expired, a
	 * volume restored over from a snapshot): like rmdir, it is sent only on
	 * a mount with -o allow_delete, and is EPERM before anything is sent
	 * otherwise (docs/control.md lists these verbs).
	 */
	bool destroys;
};

/*
 * A top-level field of an object file that an edit may change (-o
 * allow_edit), and how the API's update (PUT to the object's URL) names it.
 */
struct dsfs_edit_field {
	const char *field;  /* in the object file: "sizeMiB" */
	const char *put_as; /* in the PUT body: "sizeMib"; NULL: the same */
	const char *yes,
		*no; /* a text the API shows as these words and takes as true/false ("ON", "OFF"); NULL: none */
	/*
	 * Sent with every edit, changed or not, as the object was read: a
	 * version the API checks the change against (GreenLake's issues take
	 * their generation beside the change; an API with ETag-like version
	 * fields in its bodies would say so the same way). Changing it by
	 * hand is refused like any field outside the edit table.
	 */
	bool always;
};

#endif
