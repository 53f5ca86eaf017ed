/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an API dialect is: the declarative description of its resources
 * (which kinds exist, the URL segment and list key of each collection, the
 * id, name and time fields of its objects, the files each resource
 * directory holds and the collections below it), and the few hooks where
 * its API behaves differently: how a client logs in and authenticates a
 * call, how a list is paged, how an action's task is found, the words of
 * its tasks and the fields of its error bodies. A NULL hook or field means
 * the default behaviour, named at each one. Adding an API is adding a
 * file in src/dialect/ and its line in the registry (src/dialect/registry.c).
 * Everything here is constant data.
 */
#ifndef DSFS_DIALECT_H
#define DSFS_DIALECT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "format/command.h"
#include "net/session.h"
#include "util/blob.h"

/* File flags. */
#define DSFS_FILE_DIRECT 0x1    /* content changes between reads: direct I/O, read through */
#define DSFS_FILE_ANONYMOUS 0x2 /* fetched without a session */
#define DSFS_FILE_BINARY 0x4    /* served as received, not rendered as JSON */

struct dsfs_dialect;
struct dsfs_session;

/* One file in a resource directory. */
struct dsfs_file_desc {
	const char *name;     /* entry name, e.g. "volume.json" */
	const char *subpath;  /* appended to the resource URL; NULL: the resource object itself */
	const char *list_key; /* when subpath is a list: its key; every page is merged into one file */
	const char *accept;   /* Accept header; NULL for JSON */
	unsigned flags;
	/* When set, the file is this text made from the resource object (subpath is NULL). */
	struct dsfs_blob *(*derive)(json_object *obj, const struct dsfs_dialect *d);
	/*
	 * When set, the file's JSON comes from this hook instead of a GET of its
	 * URL (the resource's URL + subpath): for answers that arrive another
	 * way. 0 with *out set, or -errno with the reason recorded.
	 */
	int (*fetch)(struct dsfs_session *s, const char *url, json_object **out);
};

/*
 * Where a kind's objects state their capacity (for statfs, so `df` works):
 * dotted fields of the object, or of one of its files, in the API's unit.
 * A kind may list several shapes (device types); the first whose fields
 * the object has counts. A figure not given here is the sum of the
 * resources below (a server's free space is its pools').
 */
struct dsfs_capacity {
	const char *file;        /* the resource's file holding the fields ("system.json"); NULL: the object */
	const char *total_field; /* NULL: not stated here */
	const char *free_field;  /* NULL: total less used_field, or not stated */
	const char *used_field;
	unsigned long unit; /* bytes per unit of the fields: 1, 1048576 */
};

/* A kind of resource and the collection directory that lists it. */
struct dsfs_kind {
	const char *name;       /* for logs: "volume" */
	const char *dir_name;   /* collection directory: "volumes" */
	const char *segment;    /* URL segment under the parent resource: "volume" */
	const char *list_key;   /* key of the array in a list answer: "volumes" */
	const char *id_field;   /* "id" */
	const char *name_field; /* "name" */
	/*
	 * For objects named by two fields, a key and its value: the entry is
	 * name_field's text, '=' and this field's ("env=prod"). NULL: the
	 * name is name_field's alone. GreenLake's tags are such pairs, as are
	 * the tags and labels of most cloud APIs.
	 */
	const char *name_value_field;
	const char *time_field; /* field giving the directory's mtime (its creation), or NULL */
	/*
	 * Dotted field giving when the object last changed, or NULL: the mtime
	 * of its object file, which rsync -a compares. Without it (or where an
	 * object lacks it) a file's mtime is when dsfs first took in its bytes.
	 */
	const char *update_field;
	bool get_one; /* GET <segment>/<id> exists (else refresh by listing) */
	/*
	 * The largest page the collection serves, where it is below what
	 * other lists take: its pages ask for no more (-o page_size may ask
	 * for fewer). 0: page_size. GreenLake's limits differ per collection
	 * (issues 100, async-operations 1000); any API whose list limits do
	 * says them here.
	 */
	unsigned page_max;
	/*
	 * The collection comes whole in one answer and takes no paging
	 * parameters (GreenLake's storage-locations refuse offset and limit),
	 * in an API whose other lists are paged; .count then counts its listing.
	 */
	bool unpaged;
	/*
	 * One shape per kind: an object file shows the listing's shape however
	 * it was fetched, so fields only a GET of one object carries are left
	 * out of its answer (NULL-terminated, or NULL: the shapes agree). A kind
	 * whose listing carries fields a GET lacks has no get_one.
	 */
	const char *const *get_only;
	/*
	 * The field every item carries equal to its parent resource's id when the
	 * segment's query selects the items by it (a backup's "appid"), or NULL. A
	 * listed item not carrying it is not the collection's; a condition on it
	 * is never asked of the server, whose filters on one field may be OR-ed.
	 */
	const char *scope_field;
	const struct dsfs_file_desc *files; /* files[0] is the object itself when its subpath is NULL */
	size_t nfiles;
	const struct dsfs_kind *const *children; /* collections inside each resource */
	size_t nchildren;
	const struct dsfs_action *actions; /* verbs of the resource's `action` file */
	size_t nactions;
	const struct dsfs_action *create; /* the collection's `new` file (POST to the list URL), or NULL */
	bool deletable;                   /* rmdir sends DELETE (with -o allow_delete) */
	const char *delete_target;        /* DELETE here instead of the object's URL: a path from the API
	                                     * root, "{id}" standing for its id ("/relationships/{id}") */
	bool is_task;                     /* resources are API tasks (tasks/ semantics) */
	/* Other kinds listed into the same directory from their own segment (DSCC device types). */
	const struct dsfs_kind *const *also;
	const struct dsfs_capacity *capacity; /* shapes of its capacity, or NULL (df sums what is below) */
	size_t ncapacity;
	const struct dsfs_edit_field *edit; /* what editing files[0] may change (a PUT); NULL: not editable */
	size_t nedit;
	/*
	 * The kind is a folder, not a collection: a plain directory named
	 * dir_name that groups the collections (children) and files of one part
	 * of the API, and lists nothing itself. Its URL is its parent's joined
	 * with segment ("data-services/v1beta1"), which its children's segments
	 * hang off. For an API whose services each have their own prefix
	 * (GreenLake's data-services, virtualization and backup-recovery; DSCC's
	 * block and file services would fit the same way).
	 */
	bool folder;
	/*
	 * As a collection inside a resource: shown only where the resource's
	 * object says it holds something, one of these dotted fields being
	 * true, a number other than 0 or a non-empty list (NULL-terminated;
	 * NULL: always shown). Where the object is not at hand it is shown. A
	 * crawl then asks nothing of the resources that have none: GreenLake's
	 * and DSCC's tasks say whether they have child tasks
	 * (hasChildOperations, childTasks). Two kinds of one resource may
	 * have one dir_name where their shown_if tell them apart (an API's two
	 * spellings, each listed its own way): the first shown is the
	 * directory, the first of them where the object is not at hand.
	 */
	const char *const *shown_if;
};

/*
 * How lists are paged: limit/start or offset/limit parameters, appended to
 * the collection's URL (which may carry a filter query of its own); a page
 * shorter than the largest seen, an empty one, or one reaching total_field
 * ends the list. With no limit_param, a list comes whole in one answer. A
 * kind's list_key names the array in an answer; NULL: the answer is the
 * array itself.
 */
struct dsfs_paging {
	const char *limit_param;  /* "limit"; NULL: lists are not paged */
	const char *start_param;  /* "start" or "offset" */
	const char *total_field;  /* the answer's count of all items ("total"), or NULL when the API gives none */
	const char *count_header; /* a HEAD of a list answers its item count in this header ("Actifio-Count") */
	/*
	 * A list key whose value is null is an empty page, not a malformed
	 * answer: GreenLake answers "items": null when nothing matches, as any
	 * API whose OpenAPI marks its arrays nullable may.
	 */
	bool null_is_empty;
};

/* The words of a dialect's tasks (jobs), read from the task object; a field may be dotted ("activity.status"). */
struct dsfs_task_words {
	const char *state_field;    /* "state" */
	const char *progress_field; /* "progressPercent" */
	const char *error_field;    /* "error": why a task failed */
	const char *poll_field;     /* seconds to wait between polls, or NULL (1 s) */
	const char *log_field;      /* an array of {time, message} objects, or NULL: the log is the error */
	const char *log_time_field, *log_message_field;
	/* The states in which a task has ended, each NULL-terminated list one word of dsfs's own (below). */
	const char *const *succeeded; /* SUCCEEDED */
	const char *const *failed;    /* FAILED */
	const char *const *cancelled; /* CANCELLED: stopped by someone, or NULL */
	const char *const *timedout;  /* TIMEDOUT: the server gave up on it, or NULL */
};

/*
 * How a task ended, in the one vocabulary every dialect's tasks/<id>/wait
 * and tasks/<id>/error use, whatever the API calls it.
 */
enum dsfs_task_end {
	DSFS_TASK_RUNNING,
	DSFS_TASK_SUCCEEDED,
	DSFS_TASK_FAILED,
	DSFS_TASK_CANCELLED,
	DSFS_TASK_TIMEDOUT
};

/*
 * Where a dialect's events come from (MOUNT/events/log): a list of objects
 * with an id and a time. The first question asks for its newest page, the
 * later ones for what came since the newest time seen.
 */
struct dsfs_events_desc {
	const char *url;      /* the list, from the API root: "/api/v1/audit-events" */
	const char *list_key; /* the array in an answer; NULL: the answer is the array */
	const char *id_field;
	const char *time_field;   /* orders the events: an ISO-8601 string or a number */
	const char *newest_query; /* the first question's query: the newest page, in any order */
	/*
	 * Later questions' query, "{since}" standing for the newest time seen
	 * (percent-encoded) and "{offset}" for how many events at that time to
	 * skip; NULL: newest_query. since_page is its page size (its limit).
	 */
	const char *since_query;
	unsigned since_page;
	const char *state_field; /* an object seen again is shown again when this has changed (tasks); NULL: never */
};

/* The task words of the storage APIs (the storage plugin's and DSCC's tasks). */
// clang-format off
#define DSFS_TASK_WORDS_STORAGE {                                                                  \
	.state_field = "state", .progress_field = "progressPercent", .error_field = "error",      \
	.poll_field = "suggestedPollingIntervalSeconds", .log_field = "logMessages",               \
	.log_time_field = "timestampAt", .log_message_field = "message",                           \
	.succeeded = (const char *const[]) { "SUCCEEDED", NULL },                                  \
	.failed = (const char *const[]) { "FAILED", NULL },                                        \
	.cancelled = (const char *const[]) { "CANCELLED", NULL },                                  \
	.timedout = (const char *const[]) { "TIMEDOUT", NULL },                                    \
}
// clang-format on

/* An API dialect. */
struct dsfs_dialect {
	const char *name;        /* for -o api= and estate files: "storageplugin" */
	const char *summary;     /* one line for --help */
	const char *url_example; /* what its base URL looks like, for --help and hints */
	/*
	 * How the path of its base URL ends ("/actifio"; "" for an API whose
	 * base is the host's root): a URL that ends otherwise gets a hint when
	 * logging in or the probe fails (dsfs_dialect_url_hint). NULL: any.
	 */
	const char *url_path;
	/*
	 * A cheap authenticated GET from the API root that only this API
	 * answers with 2xx: the smallest page of a list every client may read.
	 * Sent once right after the first login (dsfs_session_probe), so that a
	 * URL that is not the API's root fails the mount instead of every
	 * directory of it. NULL: the login alone tells.
	 */
	const char *probe;
	const struct dsfs_kind *root; /* the mount's root: files and top collections, URL "" */
	const struct dsfs_auth *auth;
	struct dsfs_paging paging;
	const char *tasks_dir;                 /* the root collection of tasks ("tasks"); NULL: no tasks view */
	const struct dsfs_events_desc *events; /* MOUNT/events/log; NULL: no events/ */
	struct dsfs_task_words task;
	const char *const *error_fields; /* message fields of an error body, tried in order (NULL: "error") */
	/*
	 * How an edit of an object file (struct dsfs_edit_field) is sent: the
	 * method ("PATCH"; NULL: PUT) and the body's media type
	 * ("application/merge-patch+json"; NULL: application/json). The body
	 * holds the changed fields only, whichever the method: a merge-patch
	 * as RFC 7396 has it. GreenLake takes merge-patches; any API whose
	 * updates are PATCHes (NetApp's ONTAP REST, Kubernetes) would say so
	 * here.
	 */
	const char *edit_method;
	const char *edit_type;
	/*
	 * Writes into buf the query parameter (percent-encoded: "filter=...")
	 * that asks a list for the items whose field op value holds (op one of
	 * "=", "!=", ">=", "<=", ">", "<", or "~": the field's text contains
	 * value), or, with n > 1 and op "=", whose
	 * field is any of values. False when its filter cannot say it (dsfs
	 * then filters the listing itself); NULL: lists are never filtered by
	 * the server.
	 */
	bool (*filter)(const char *field, const char *op, const char *const *values, size_t n, char *buf, size_t len);
	/* True when url is this dialect's by its look (a path or host); NULL: never sniffed. */
	bool (*claims_url)(const char *url);
	/*
	 * The id of the task an action started, from its answer (resp, to the
	 * POST at url); NULL when it started none. Default: on 202, the last
	 * segment of the body's taskUri or of the Location header. malloc'd.
	 */
	char *(*task_of)(struct dsfs_session *s, const struct dsfs_action *a, const char *url,
			 const struct dsfs_response *resp);
	/*
	 * Reads the task at url (a task's URL in tasks_dir) for an API that
	 * has no GET of one task. cancelled, when set, is asked while the
	 * request runs. 0 with *out set (a new reference), or -errno with the
	 * reason recorded. NULL: a GET of url.
	 */
	int (*task_get)(struct dsfs_session *s, const char *url, bool (*cancelled)(void), json_object **out);
};

/* What a session over d's API needs of it (net/session.h). */
static inline struct dsfs_session_api dsfs_dialect_session_api(const struct dsfs_dialect *d)
{
	return (struct dsfs_session_api){ .auth = d->auth, .probe = d->probe, .error_fields = d->error_fields };
}

/* Shorthands for writing a dialect's tables. */
#define DSFS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define DSFS_FILES(a) .files = (a), .nfiles = DSFS_ARRAY_LEN(a)
#define DSFS_CHILDREN(a) .children = (a), .nchildren = DSFS_ARRAY_LEN(a)
#define DSFS_ACTIONS(a) .actions = (a), .nactions = DSFS_ARRAY_LEN(a)
#define DSFS_CAPACITY(a) .capacity = (a), .ncapacity = DSFS_ARRAY_LEN(a)
#define DSFS_EDIT(a) .edit = (a), .nedit = DSFS_ARRAY_LEN(a)
#define DSFS_OBJECT_FILE(fname) \
	{                       \
		.name = fname   \
	}
#define DSFS_REQUIRE(...)         \
	(const char *const[])     \
	{                         \
		__VA_ARGS__, NULL \
	}
#define DSFS_GET_ONLY(...)                \
	.get_only = (const char *const[]) \
	{                                 \
		__VA_ARGS__, NULL         \
	}
#define DSFS_REFS(...)             \
	(const struct dsfs_ref[])  \
	{                          \
		__VA_ARGS__,       \
		{                  \
			NULL, NULL \
		}                  \
	}
#define DSFS_FIELDS(...)            \
	(const struct dsfs_field[]) \
	{                           \
		__VA_ARGS__,        \
		{                   \
			NULL, 0     \
		}                   \
	}
#define DSFS_NO_FIELDS              \
	(const struct dsfs_field[]) \
	{                           \
		{                   \
			NULL, 0     \
		}                   \
	}

/*
 * The registry (src/dialect/registry.c): dsfs_dialects[] and the lookups
 * over it, down to dsfs_dialect_names. They are for the layers above
 * (options, estates, --help); a dialect file never calls them, since the
 * registry names every dialect file and the two would then use each other.
 * They stay declared here, beside the types they return, so that their
 * callers need one header for a dialect and for finding one.
 */

/* Every dialect dsfs speaks, NULL-terminated, in the order --help lists them. */
extern const struct dsfs_dialect *const dsfs_dialects[];

/*
 * The dialect called name, or NULL. Case, '-' and '_' do not count, so
 * "storage-plugin" (as the reference server spells it) is storageplugin.
 */
const struct dsfs_dialect *dsfs_dialect_named(const char *name);

/*
 * The dialect whose claims_url takes url, or, when none does, the first of
 * the registry with *guessed set (the caller says so: the URL may be wrong).
 * When several take it (a host serving two APIs, as HPE's
 * *.data.cloud.hpe.com hosts serve DSCC's and GreenLake's), the first of
 * the registry, with *guessed set too: -o api= decides.
 */
const struct dsfs_dialect *dsfs_dialect_for_url(const char *url, bool *guessed);

/*
 * Writes into buf a hint when url's path does not end as d's base URLs do
 * (d->url_path): "the dscc API's URL is ..., like https://..."; false (buf
 * untouched) when it looks right.
 */
bool dsfs_dialect_url_hint(const struct dsfs_dialect *d, const char *url, char *buf, size_t len);

/* The registry's names, "storageplugin, dscc", into buf (for messages). */
void dsfs_dialect_names(char *buf, size_t len);

/* What every dialect file may use (src/dialect/dialect.c). */

/* The last segment of the body's taskUri or of the Location header: the default task_of's rule. */
char *dsfs_dialect_task_uri(const struct dsfs_response *resp);

/* The value at a dotted field path of o ("activity.status"), or NULL when absent or null. Borrowed. */
json_object *dsfs_dialect_field(json_object *o, const char *path);

/* True when o has the dotted field path, a null value included. */
bool dsfs_dialect_has_field(json_object *o, const char *path);

/* True when state is one of words (a NULL-terminated list). */
bool dsfs_dialect_state_in(const char *state, const char *const *words);

/* How a task in the API's state has ended, or DSFS_TASK_RUNNING (also for a state not known to have ended). */
enum dsfs_task_end dsfs_task_outcome(const struct dsfs_task_words *w, const char *state);

/*
 * Why a task that ended otherwise than in success did, as one line into
 * buf: the server's message (the text of an error object's "error" or
 * "message"), or "ended <state>; the server gave no reason". NULL when
 * the task has no error and has not failed.
 */
const char *dsfs_task_reason(json_object *task, const struct dsfs_task_words *w, char *buf, size_t len);

/* The word of an outcome: "SUCCEEDED", "FAILED", "CANCELLED", "TIMEDOUT" ("RUNNING"). Static. */
const char *dsfs_task_end_word(enum dsfs_task_end end);

/*
 * The state, progress and log files of a task, made from its object in the
 * dialect's task words: for a dialect that names its task files its own
 * way (a derive of struct dsfs_file_desc).
 */
struct dsfs_blob *dsfs_task_state(json_object *task, const struct dsfs_dialect *d);
struct dsfs_blob *dsfs_task_progress(json_object *task, const struct dsfs_dialect *d);
struct dsfs_blob *dsfs_task_log(json_object *task, const struct dsfs_dialect *d);

/*
 * The error file of a task: empty while it runs and once it succeeded;
 * once it failed, was cancelled or timed out, one line: the server's
 * reason, or, when it gave none, the state it ended in ("ended ABORTED;
 * the server gave no reason").
 */
struct dsfs_blob *dsfs_task_error(json_object *task, const struct dsfs_dialect *d);

/* The files of a task directory: task.json, state, progress, log and error (read through). */
#define DSFS_TASK_NFILES 5
extern const struct dsfs_file_desc dsfs_task_files[DSFS_TASK_NFILES];

/*
 * The OAuth2 client-credentials grant at url with c's client_id and
 * client_secret (a form body), its token and expires_in into *out: the
 * login of DSCC and GreenLake. 0, or -errno with the reason recorded.
 */
int dsfs_dialect_client_grant(struct dsfs_session *s, const struct dsfs_credentials *c, const char *url,
			      struct dsfs_login *out);

/* "Authorization: Bearer <l->id>": the headers hook of an API that takes bearer tokens. */
size_t dsfs_dialect_bearer_headers(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs);

/*
 * True when v reads as a number, true, false or null: a value an
 * OData-like filter would write unquoted, as the field's JSON type says,
 * which dsfs does not know before listing (such conditions are checked
 * locally).
 */
bool dsfs_dialect_typed_literal(const char *v);

/*
 * Appends the n values at expr + *o (expr holds size bytes) as an OData
 * list of string literals, 'a','b', a quote inside one doubled, and
 * NUL-terminates it, leaving room for one more byte (a closing
 * parenthesis). False when they do not fit.
 */
bool dsfs_dialect_odata_literals(char *expr, size_t size, size_t *o, const char *const *values, size_t n);

/* True when the host of url ends with suffix (".data.cloud.hpe.com"). */
bool dsfs_dialect_host_ends(const char *url, const char *suffix);

/* Index of the file called name in kind, or -1. */
int dsfs_kind_file(const struct dsfs_kind *kind, const char *name);

/* Index of the child collection called name in kind, or -1. */
int dsfs_kind_child(const struct dsfs_kind *kind, const char *name);

#endif
