// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The NetApp Cloud Sync API (under /api) as a table and its hooks: data
 * brokers, broker groups and sync relationships, with a relationship's
 * activity as a file of its own and its sync as a task, sync and abort
 * through its `action`, new relationships through `relationships/new`, and
 * the brokers' bucket and export lists, which arrive as messages. A client trades a refresh
 * token for a user token (renewed before expires_in), and names its Cloud
 * Central account in x-account-id on every call. Lists come whole.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/errmap.h"
#include "net/session.h"
#include "util/clock.h"

#define TOKEN_URL "https://netapp-cloud-account.auth0.com/oauth/token"

/* Cloud Sync's lists are whole JSON arrays of objects with these fields. */
#define SYNC_LIST .list_key = NULL, .id_field = "id", .name_field = "name", .get_one = false

/* ---- answers that arrive as messages ------------------------------------------------ */

static const char *string_of(json_object *o, const char *field)
{
	json_object *v;

	return json_object_object_get_ex(o, field, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v)
		: NULL;
}

/* GETs path; its parsed answer, or NULL (the failure recorded, *err its errno). */
static json_object *get(struct dsfs_session *s, const char *path, int *err)
{
	struct dsfs_request req = { .method = "GET", .path = path };
	struct dsfs_response resp = { 0 };
	json_object *o = NULL;

	*err = dsfs_session_call(s, &req, &resp, false);
	if (*err == 0 && !(o = json_tokener_parse(resp.body ? resp.body : ""))) {
		dsfs_err_record("GET", path, resp.status, "answer is not JSON");
		*err = -EIO;
	}
	dsfs_response_clear(&resp);
	return o;
}

/* Undoes %XX escapes in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		unsigned v;

		if (s[0] == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] && s[2]) {
			*w++ = (char)v;
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/*
 * The stream's cursor is a message id: a decimal number that grows along
 * the stream (the Cloud Sync API: "its id is a cursor"; the
 * reference server's ids are 1, 2, ...). An id that is not one cannot be
 * placed in the stream: it is never sent back as a cursor (it would be
 * pasted into the query) and the message is never taken as an answer.
 */
#define ID_MAX 128

/* msg's id copied into buf, when it is a decimal number shorter than ID_MAX; NULL otherwise. */
static const char *id_of(json_object *msg, char *buf)
{
	json_object *id;
	const char *s;
	size_t len;

	if (!json_object_object_get_ex(msg, "id", &id) ||
	    !(json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int)))
		return NULL;
	s = json_object_get_string(id);
	len = strspn(s, "0123456789");
	if (!len || s[len] || len >= ID_MAX)
		return NULL;
	memcpy(buf, s, len + 1);
	return buf;
}

/* <0, 0, >0 as decimal id a is below, equal to, above b ("" below every id). */
static int id_cmp(const char *a, const char *b)
{
	size_t la, lb;

	while (a[0] == '0' && a[1])
		a++;
	while (b[0] == '0' && b[1])
		b++;
	la = strlen(a);
	lb = strlen(b);

	return la != lb ? (la < lb ? -1 : 1) : strcmp(a, b);
}

/* The result in msg, when it answers op on broker for client; NULL otherwise (not ours, or malformed). */
static json_object *answer_in(json_object *msg, const char *op, const char *broker, const char *client)
{
	json_object *payload, *header, *result;
	const char *agent, *cid;

	if (!json_object_object_get_ex(msg, "payload", &payload) || !json_object_is_type(payload, json_type_object) ||
	    !json_object_object_get_ex(payload, op, &result) || !json_object_object_get_ex(msg, "header", &header) ||
	    !json_object_is_type(header, json_type_object))
		return NULL;
	agent = string_of(header, "agentId");
	cid = string_of(header, "clientId");
	/* a list answer is an array: anything else is not the answer, whoever it claims to be from */
	return agent && cid && !strcmp(agent, broker) && !strcmp(cid, client) &&
			json_object_is_type(result, json_type_array)
		? result
		: NULL;
}

/*
 * A list call the API answers 202 (GET /data-brokers/{id}/list-s3-buckets):
 * the cursor of /messages/client is taken first, the call is sent once,
 * then the messages after the cursor are read until the one naming this
 * operation, this broker and this client arrives, within the mount's
 * timeout. Other messages are left where they are, for their own readers:
 * reading the stream takes nothing from it. Only a message whose id is a
 * decimal number above the cursor taken before the call can be its answer
 * (a stream replayed from its start holds the answers to earlier calls),
 * and the cursor only grows.
 */
static int message_answer(struct dsfs_session *s, const char *url, json_object **out)
{
	const char *op = strrchr(url, '/'), *client = dsfs_session_credential(s, "client_id");
	double timeout = dsfs_session_timeout(s), deadline = dsfs_clock_now() + timeout;
	char broker[128], cursor[ID_MAX] = "", floor[ID_MAX], id[ID_MAX], path[ID_MAX + 32];
	unsigned ignored = 0;
	json_object *msgs;
	size_t n;
	int ret;

	if (!op || sscanf(url, "/data-brokers/%127[^/]/", broker) != 1)
		return -EINVAL;
	op++;
	unescape(broker); /* the URL carries the id percent-encoded; messages carry it as it is */
	msgs = get(s, "/messages/client", &ret);
	if (ret)
		return ret;
	/* an empty stream: every message is after it */
	n = json_object_is_type(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
	if (n && !id_of(json_object_array_get_idx(msgs, n - 1), cursor)) {
		json_object_put(msgs);
		dsfs_err_record("GET", "/messages/client", 200,
				"the newest message's id is not a decimal number: the stream has no cursor to follow");
		return -EIO;
	}
	json_object_put(msgs);
	/* the answer to this call comes after the cursor: nothing at or before it is taken */
	memcpy(floor, cursor, sizeof(floor));
	{
		struct dsfs_request req = { .method = "GET", .path = url };
		struct dsfs_response resp = { 0 };

		ret = dsfs_session_call(s, &req, &resp, false);
		if (ret == 0 && resp.status != 202) {
			dsfs_err_record("GET", url, resp.status, "expected 202 and an answer as a message");
			ret = -EIO;
		}
		dsfs_response_clear(&resp);
		if (ret)
			return ret;
	}
	for (;;) {
		struct timespec pause = { 0, 200 * 1000 * 1000 };

		/* digits only (id_of), so the cursor needs no escaping and cannot add a parameter */
		if (cursor[0])
			snprintf(path, sizeof(path), "/messages/client?last=%s", cursor);
		else
			snprintf(path, sizeof(path), "/messages/client");
		msgs = get(s, path, &ret);
		if (ret)
			return ret;
		n = json_object_is_type(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
		for (size_t i = 0; i < n; i++) {
			json_object *msg = json_object_array_get_idx(msgs, i), *result;

			/* a message without a place in the stream, or at or before the cursor taken before
			 * the call (a replay), is not this call's answer, whatever it says */
			if (!id_of(msg, id) || id_cmp(id, floor) <= 0) {
				ignored++;
				continue;
			}
			if (id_cmp(id, cursor) > 0)
				memcpy(cursor, id, sizeof(cursor));
			result = answer_in(msg, op, broker, client ? client : "");
			if (result) {
				*out = json_object_get(result);
				json_object_put(msgs);
				return 0;
			}
		}
		json_object_put(msgs);
		if (dsfs_clock_now() >= deadline) {
			char why[240];

			snprintf(why, sizeof(why), "no answer to %s arrived on /messages/client within %.0f s", op,
				 timeout);
			if (ignored)
				snprintf(why + strlen(why), sizeof(why) - strlen(why),
					 " (%u messages ignored: ids not decimal or not after the cursor %s)", ignored,
					 floor[0] ? floor : "(none)");
			dsfs_err_record("GET", url, 0, why);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
}

/* ---- the tree --------------------------------------------------------------------- */

static const struct dsfs_file_desc broker_files[] = {
	DSFS_OBJECT_FILE("data-broker.json"),
	{ .name = "s3-buckets.json", .subpath = "/list-s3-buckets", .fetch = message_answer },
	{ .name = "nfs-exports.json", .subpath = "/list-nfs-export-folders", .fetch = message_answer },
};
// clang-format off
static const struct dsfs_kind broker = {
	.name = "data broker", .dir_name = "data-brokers", .segment = "data-brokers", SYNC_LIST,
	.time_field = "lastUpdate", .update_field = "lastUpdate", DSFS_FILES(broker_files),
};
// clang-format on

static const struct dsfs_file_desc group_files[] = { DSFS_OBJECT_FILE("group.json") };
// clang-format off
static const struct dsfs_kind group = {
	.name = "group", .dir_name = "groups", .segment = "groups", SYNC_LIST, DSFS_FILES(group_files),
};
// clang-format on

/* relationships/<r>/activity: the last or current sync, one "field value" line each. */
static struct dsfs_blob *activity(json_object *rel, const struct dsfs_dialect *d)
{
	static const char *const fields[] = {
		"type",        "status",       "progress",  "bytesCopied", "filesCopied",
		"filesFailed", "filesScanned", "startTime", "endTime",     "failureMessage",
	};
	json_object *a, *v;
	char buf[2048];
	size_t o = 0;

	(void)d;
	if (!json_object_object_get_ex(rel, "activity", &a) || !json_object_is_type(a, json_type_object))
		return dsfs_blob_new("", 0);
	for (size_t i = 0; i < DSFS_ARRAY_LEN(fields) && o + 1 < sizeof(buf); i++) {
		const char *s;
		size_t start;

		if (!json_object_object_get_ex(a, fields[i], &v) || json_object_is_type(v, json_type_null))
			continue;
		s = json_object_is_type(v, json_type_string)
			? json_object_get_string(v)
			: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		start = o + strlen(fields[i]) + 1;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s %.*s\n", fields[i], 512, s);
		if (o >= sizeof(buf))
			o = sizeof(buf) - 1;
		for (size_t k = start; k + 1 < o; k++) /* one field is one line, whatever its value holds */
			if (buf[k] == '\n' || buf[k] == '\r')
				buf[k] = ' ';
	}
	return dsfs_blob_new(buf, o);
}

static const struct dsfs_file_desc relationship_files[] = {
	DSFS_OBJECT_FILE("relationship.json"),
	{ .name = "activity", .flags = DSFS_FILE_DIRECT, .derive = activity },
};

/*
 * Neither destroys data of its own accord: a sync copies as the relationship
 * was set up to when it was created, and abort stops it (deleting a
 * relationship is rmdir, with -o allow_delete).
 */
static const struct dsfs_action relationship_actions[] = {
	{ .verb = "sync", .method = "PUT", .target = "/relationships/{id}/sync", .no_body = true },
	{ .verb = "abort", .method = "PUT", .target = "/relationships/{id}/abort", .no_body = true },
};

/* relationships/new: the relationship as JSON, checked before it is sent. */
static const struct dsfs_action relationship_create = {
	/* source, target and settings are objects of many shapes (one per protocol): taken as written */
	.fields = DSFS_FIELDS({ "source", DSFS_T_OBJECT }, { "target", DSFS_T_OBJECT }, { "dataBroker", DSFS_T_STRING },
			      { "group", DSFS_T_STRING }, { "settings", DSFS_T_OBJECT }),
	.required = DSFS_REQUIRE("source", "target", "dataBroker|group"),
	.refs = DSFS_REFS({ "dataBroker", "../data-brokers" }, { "group", "../groups" }),
};

/* A relationship has no name: it is named by its id. */
// clang-format off
static const struct dsfs_kind relationship = {
	.name = "relationship", .dir_name = "relationships", .segment = "relationships-v2",
	.list_key = NULL, .id_field = "relationshipId", .name_field = "relationshipId", .get_one = true,
	.time_field = "createdAt", DSFS_FILES(relationship_files), DSFS_ACTIONS(relationship_actions),
	.create = &relationship_create, .deletable = true, .delete_target = "/relationships/{id}",
};
// clang-format on

/*
 * tasks/<relationship>/: the relationship's last or current sync, as a task
 * (the API keeps no other): task.json is the relationship, state, progress
 * and log come from its activity, and wait follows it to its end.
 */
// clang-format off
static const struct dsfs_kind sync_task = {
	.name = "sync", .dir_name = "tasks", .segment = "relationships-v2", .list_key = NULL,
	.id_field = "relationshipId", .name_field = "relationshipId", .get_one = true,
	.time_field = "createdAt", .files = dsfs_task_files, .nfiles = DSFS_TASK_NFILES, .is_task = true,
};
// clang-format on

static const struct dsfs_file_desc root_files[] = {
	{ .name = "accounts.json", .subpath = "/accounts" },
};
static const struct dsfs_kind *const root_children[] = { &broker, &group, &relationship, &sync_task };

// clang-format off
static const struct dsfs_kind root = {
	.name = "root", DSFS_FILES(root_files), DSFS_CHILDREN(root_children),
};
// clang-format on

/* ---- logging in --------------------------------------------------------------------- */

static const char *const auth_keys[] = { "refresh_token", "client_id", "account", "token_url", NULL };

static int check_credentials(const struct dsfs_credentials *c, char *err, size_t errlen)
{
	if (dsfs_credentials_get(c, "refresh_token") && dsfs_credentials_get(c, "client_id"))
		return 0;
	snprintf(err, errlen,
		 "Cloud Sync needs a credentials file (-o credentials=FILE, mode 0600) with "
		 "refresh_token=... and client_id=... lines (from NetApp Cloud Central; optional account=... "
		 "to use another account than the first, token_url=...)");
	return -EINVAL;
}

/* The first account the token opens (GET /accounts carries no account of its own). */
static int first_account(struct dsfs_session *s, const char *token, char **account)
{
	char hdr[8192];
	const char *hdrs[] = { hdr, NULL };
	struct dsfs_request req = { .method = "GET", .path = "/accounts", .headers = hdrs };
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *first;
	int ret;

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
	ret = dsfs_session_send(s, &req, &resp);
	explicit_bzero(hdr, sizeof(hdr));
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		first = o && json_object_is_type(o, json_type_array) ? json_object_array_get_idx(o, 0) : NULL;
		if (!string_of(first, "accountId")) {
			dsfs_err_record("GET", "/accounts", resp.status, "the token opens no account");
			ret = -EACCES;
		} else if (!(*account = strdup(string_of(first, "accountId")))) {
			ret = -ENOMEM;
		}
	}
	json_object_put(o);
	dsfs_response_clear(&resp);
	return ret;
}

/* The refresh-token grant at the identity service, then the account to act in. */
static int login(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out)
{
	const char *url = dsfs_credentials_get(c, "token_url"), *account = dsfs_credentials_get(c, "account");
	char form[8192] = "";
	int ret;

	dsfs_session_form_add(form, sizeof(form), "grant_type", "refresh_token");
	dsfs_session_form_add(form, sizeof(form), "refresh_token", dsfs_credentials_get(c, "refresh_token"));
	dsfs_session_form_add(form, sizeof(form), "client_id", dsfs_credentials_get(c, "client_id"));
	ret = dsfs_session_token_grant(s, url ? url : TOKEN_URL, form, &out->id, &out->expires_in);
	if (ret)
		return ret;
	/* the account rides in the token slot: sent beside the token on every call */
	if (account)
		return (out->token = strdup(account)) ? 0 : -ENOMEM;
	/* an account the API listed for this token: that call was the probe's */
	ret = first_account(s, out->id, &out->token);
	out->proven = ret == 0;
	return ret;
}

static size_t headers(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs)
{
	int n = snprintf(buf, len, "Authorization: Bearer %s", l->id);

	hdrs[0] = buf;
	if (!l->token || n < 0 || (size_t)n + 1 >= len)
		return 1;
	snprintf(buf + n + 1, len - (size_t)n - 1, "x-account-id: %s", l->token);
	hdrs[1] = buf + n + 1;
	return 2;
}

/* User tokens simply lapse: no logout. */
// clang-format off
static const struct dsfs_auth auth = {
	.keys = auth_keys, .check = check_credentials, .login = login, .headers = headers,
};
// clang-format on

static bool claims_url(const char *url)
{
	const char *p = strstr(url, "://");

	return p && !strncmp(p + 3, "cloudsync.netapp.com", 20) && strchr(":/", p[23] ? p[23] : '/');
}

/*
 * The task an action started: sync runs the relationship's sync, and a new
 * relationship starts its first at once; abort starts none.
 */
static char *sync_of(struct dsfs_session *s, const struct dsfs_action *a, const char *url,
		     const struct dsfs_response *resp)
{
	char id[128];
	json_object *o;
	char *out = NULL;

	(void)s;
	if (!a || resp->status < 200 || resp->status >= 300)
		return NULL;
	if (a->verb && !strcmp(a->verb, "sync") && sscanf(url, "/relationships/%127[^/]/sync", id) == 1)
		return strdup(id);
	if (!a->verb && (o = json_tokener_parse(resp->body ? resp->body : ""))) {
		if (string_of(o, "relationshipId"))
			out = strdup(string_of(o, "relationshipId"));
		json_object_put(o);
	}
	return out;
}

const struct dsfs_dialect dsfs_dialect_cloudsync = {
	.name = "cloudsync",
	.summary = "NetApp Cloud Sync",
	.url_example = "https://cloudsync.netapp.com/api",
	.url_path = "/api",
	.probe = "/data-brokers", /* lists come whole: the smallest is the brokers' */
	.root = &root,
	.auth = &auth,
	.paging = { .limit_param = NULL }, /* lists come whole */
	.tasks_dir = "tasks",
	.task = {
		.state_field = "activity.status", .progress_field = "activity.progress",
		.error_field = "activity.failureMessage",
		.succeeded = (const char *const[]) { "DONE", NULL },
		.failed = (const char *const[]) { "FAILED", NULL },
		.cancelled = (const char *const[]) { "ABORTED", NULL },
	},
	.task_of = sync_of,
	.error_fields = (const char *const[]) { "message", "error", NULL },
	.claims_url = claims_url,
};
