// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Data Services Cloud Console v1 API (specs/dscc-storage-api-v1.2.0.json)
 * as a table, mapped onto the same tree as the storage-plugin dialect:
 * storage systems of both device types under servers/, their volumes,
 * snapshots, pools and volume sets below them, and the console-wide host
 * initiators, host groups, tasks and issues at the top. Changes answer
 * 202 with a taskUri and show under tasks/. A client authenticates with an
 * OAuth2 bearer token: from the client-credentials exchange (renewed before
 * expires_in runs out), or pasted from the console.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "format/names.h"
#include "net/session.h"


/*
 * The request bodies' fields and their types are the spec's (createVolumeInput,
 * NimbleCreateVolumeInput, volumePost, vlunsCreateInput, CreateHostInput, ...);
 * a field a body's schema does not list is refused.
 */

/* Every DSCC list answers {"items": [...], "total": N, ...}. */
#define DSCC_LIST .list_key = "items", .id_field = "id", .name_field = "name"

/* From a volume directory: the console's host groups, at the top of the tree. */
#define HOSTGROUPS_FROM_VOLUME "../../../../hostgroups"

/* ---- device-type1 (Primera / Alletra 9000 class) --------------------------------- */

static const struct dsfs_file_desc snapshot_files[] = { DSFS_OBJECT_FILE("snapshot.json") };

/* snapshots/new: the spec requires namePattern; a bare name is a CUSTOM one. */
// clang-format off
static const struct dsfs_action snapshot1_create = {
	.fields = DSFS_FIELDS({ "comment", DSFS_T_STRING }, { "customName", DSFS_T_STRING }, { "expireSecs", DSFS_T_INTEGER },
			      { "namePattern", DSFS_T_STRING }, { "readOnly", DSFS_T_BOOLEAN }, { "retainSecs", DSFS_T_INTEGER }),
	.required = DSFS_REQUIRE("namePattern"), .bare_field = "customName",
	.defaults = "{\"namePattern\": \"CUSTOM\"}",
};
// clang-format on

// clang-format off
static const struct dsfs_kind snapshot1 = {
	.name = "snapshot", .dir_name = "snapshots", .segment = "snapshots", DSCC_LIST,
	.time_field = "creationTime", .get_one = true, DSFS_FILES(snapshot_files),
	.create = &snapshot1_create, .deletable = true,
};
// clang-format on

static const struct dsfs_file_desc volume_files[] = { DSFS_OBJECT_FILE("volume.json") };
static const struct dsfs_kind *const volume1_children[] = { &snapshot1 };

// clang-format off
static const struct dsfs_action volume1_actions[] = {
	{ .verb = "clone", .subpath = "/clone", .required = DSFS_REQUIRE("destinationVolume"),
	  .fields = DSFS_FIELDS({ "destinationVolume", DSFS_T_STRING }, { "offlineClone", DSFS_T_ARRAY },
				{ "online", DSFS_T_BOOLEAN }, { "onlineClone", DSFS_T_ARRAY }, { "priority", DSFS_T_STRING }) },
	{ .verb = "export", .subpath = "/export",
	  .fields = DSFS_FIELDS({ "autoLun", DSFS_T_BOOLEAN }, { "hostGroupIds", DSFS_T_STRINGS },
				{ "maxAutoLun", DSFS_T_INTEGER }, { "noVcn", DSFS_T_BOOLEAN }, { "override", DSFS_T_BOOLEAN },
				{ "position", DSFS_T_STRING }, { "proximity", DSFS_T_STRING }),
	  .refs = DSFS_REFS({ "hostGroupIds", HOSTGROUPS_FROM_VOLUME }) },
	{ .verb = "un-export", .subpath = "/un-export", .required = DSFS_REQUIRE("hostGroupIds"),
	  .fields = DSFS_FIELDS({ "hostGroupIds", DSFS_T_STRINGS }),
	  .refs = DSFS_REFS({ "hostGroupIds", HOSTGROUPS_FROM_VOLUME }) },
};
// clang-format on

// clang-format off
static const struct dsfs_action volume1_create = {
	.fields = DSFS_FIELDS({ "comments", DSFS_T_STRING }, { "count", DSFS_T_INTEGER }, { "dataReduction", DSFS_T_BOOLEAN },
			      { "name", DSFS_T_STRING }, { "sizeMib", DSFS_T_INTEGER }, { "snapCpg", DSFS_T_STRING },
			      { "snapshotAllocWarning", DSFS_T_INTEGER }, { "userAllocWarning", DSFS_T_INTEGER },
			      { "userCpg", DSFS_T_STRING }),
	.required = DSFS_REQUIRE("name", "userCpg", "sizeMib"), .bare_field = "name",
};
// clang-format on

/* volumePut: the object's names for its fields differ from the body's in two places. */
// clang-format off
static const struct dsfs_edit_field volume1_edit[] = {
	{ .field = "name" }, { .field = "sizeMiB", .put_as = "sizeMib" }, { .field = "userCpgName" },
	{ .field = "snapshotAllocWarning" }, { .field = "userAllocWarning" }, { .field = "conversionType" },
	{ .field = "dataReduction", .yes = "ON", .no = "OFF" },
};
// clang-format on

// clang-format off
static const struct dsfs_kind volume1 = {
	.name = "volume", .dir_name = "volumes", .segment = "volumes", DSCC_LIST,
	.time_field = "creationTime", .get_one = true, DSFS_GET_ONLY("consoleUri", "requestUri", "volumePerformance"),
	DSFS_FILES(volume_files), DSFS_CHILDREN(volume1_children),
	DSFS_ACTIONS(volume1_actions), .create = &volume1_create, .deletable = true, DSFS_EDIT(volume1_edit),
};
// clang-format on

static const struct dsfs_file_desc pool_files[] = { DSFS_OBJECT_FILE("pool.json") };

/* Device-type1 pools count in MiB, device-type2 pools in bytes. */
static const struct dsfs_capacity pool_capacity[] = {
	{ .total_field = "totalSizeMiB", .free_field = "freeSizeMiB", .unit = 1024 * 1024 },
	{ .total_field = "capacity", .free_field = "free_space", .unit = 1 },
};

// clang-format off
static const struct dsfs_kind pool = {
	.name = "storage pool", .dir_name = "pools", .segment = "storage-pools", DSCC_LIST,
	/* device-type2 objects say when they last changed (the v1.2.0 reference's Nimble*
	 * schemas: last_modified, epoch seconds); device-type1 ones say no update time */
	.update_field = "last_modified",
	.get_one = true, DSFS_GET_ONLY("associatedLinks", "requestUri"), DSFS_FILES(pool_files),
	DSFS_CAPACITY(pool_capacity),
};
// clang-format on

static const struct dsfs_file_desc volumeset_files[] = { DSFS_OBJECT_FILE("volumeset.json") };

/*
 * Volume sets hang off the device-independent storage-systems path. Their
 * listing carries members and application, which a GET of one lacks: the
 * listing is their only source, so the file has one shape.
 */
// clang-format off
static const struct dsfs_kind volumeset = {
	.name = "volume set", .dir_name = "volumesets", .segment = "/api/v1/storage-systems/{id}/volume-sets",
	DSCC_LIST, .get_one = false, DSFS_FILES(volumeset_files),
};
// clang-format on

static const struct dsfs_file_desc system_files[] = { DSFS_OBJECT_FILE("system.json") };
static const struct dsfs_kind *const system1_children[] = { &volume1, &pool, &volumeset };

/* ---- device-type2 (Nimble / Alletra 6000 class) ------------------------------------ */

// clang-format off
static const struct dsfs_action snapshot2_create = {
	.fields = DSFS_FIELDS({ "app_uuid", DSFS_T_STRING }, { "description", DSFS_T_STRING }, { "metadata", DSFS_T_ARRAY },
			      { "name", DSFS_T_STRING }, { "online", DSFS_T_BOOLEAN }, { "writable", DSFS_T_BOOLEAN }),
	.required = DSFS_REQUIRE("name"), .bare_field = "name",
};
// clang-format on

// clang-format off
static const struct dsfs_kind snapshot2 = {
	.name = "snapshot", .dir_name = "snapshots", .segment = "snapshots", DSCC_LIST,
	.time_field = "creation_time", .update_field = "last_modified", .get_one = true, DSFS_GET_ONLY("requestUri"),
	DSFS_FILES(snapshot_files),
	.create = &snapshot2_create, .deletable = true,
};
// clang-format on

static const struct dsfs_kind *const volume2_children[] = { &snapshot2 };

// clang-format off
static const struct dsfs_action volume2_actions[] = {
	{ .verb = "clone", .subpath = "/clone", .required = DSFS_REQUIRE("clone_volume_name"),
	  .fields = DSFS_FIELDS({ "clone_volume_name", DSFS_T_STRING }, { "host_group_id", DSFS_T_STRING },
				{ "lun", DSFS_T_INTEGER }) },
	{ .verb = "export", .subpath = "/export", .fields = DSFS_FIELDS({ "hostGroups", DSFS_T_STRINGS }),
	  .refs = DSFS_REFS({ "hostGroups", HOSTGROUPS_FROM_VOLUME }) },
	{ .verb = "un-export", .subpath = "/un-export", .fields = DSFS_FIELDS({ "hostGroups", DSFS_T_STRINGS }),
	  .refs = DSFS_REFS({ "hostGroups", HOSTGROUPS_FROM_VOLUME }) },
	{ .verb = "restore", .subpath = "/actions/restore", .required = DSFS_REQUIRE("base_snap_id"),
	  .fields = DSFS_FIELDS({ "base_snap_id", DSFS_T_STRING }, { "enable_vol_offline", DSFS_T_BOOLEAN }),
	  .refs = DSFS_REFS({ "base_snap_id", "snapshots" }), .destroys = true }, /* the volume becomes the snapshot */
};
// clang-format on

/* The spec requires only a name; an array needs a size too (MiB), unless it is a clone. */
// clang-format off
static const struct dsfs_action volume2_create = {
	.fields = DSFS_FIELDS({ "agent_type", DSFS_T_STRING }, { "app_uuid", DSFS_T_STRING }, { "base_snap_id", DSFS_T_STRING },
			      { "block_size", DSFS_T_INTEGER }, { "cache_pinned", DSFS_T_BOOLEAN }, { "clone", DSFS_T_BOOLEAN },
			      { "dedupe_enabled", DSFS_T_BOOLEAN }, { "description", DSFS_T_STRING },
			      { "dest_pool_id", DSFS_T_STRING }, { "encryption_cipher", DSFS_T_STRING },
			      { "folder_id", DSFS_T_STRING }, { "limit", DSFS_T_INTEGER }, { "limit_iops", DSFS_T_INTEGER },
			      { "limit_mbps", DSFS_T_INTEGER }, { "metadata", DSFS_T_ARRAY }, { "multi_initiator", DSFS_T_BOOLEAN },
			      { "name", DSFS_T_STRING }, { "online", DSFS_T_BOOLEAN }, { "owned_by_group_id", DSFS_T_STRING },
			      { "perfpolicy_id", DSFS_T_STRING }, { "pool_id", DSFS_T_STRING }, { "read_only", DSFS_T_BOOLEAN },
			      { "reserve", DSFS_T_INTEGER }, { "size", DSFS_T_INTEGER }, { "snap_reserve", DSFS_T_INTEGER },
			      { "snap_warn_level", DSFS_T_INTEGER }, { "suffix", DSFS_T_INTEGER }, { "warn_level", DSFS_T_INTEGER }),
	.required = DSFS_REQUIRE("name", "size|clone"), .bare_field = "name",
	.refs = DSFS_REFS({ "pool_id", "../pools" }),
};
// clang-format on

/* NimbleEditVolumeInput: the fields an array volume's edit may change (size in MiB). */
// clang-format off
static const struct dsfs_edit_field volume2_edit[] = {
	{ .field = "name" }, { .field = "size" }, { .field = "description" }, { .field = "online" },
	{ .field = "caching_enabled" }, { .field = "dedupe_enabled" }, { .field = "limit_iops" },
	{ .field = "limit_mbps" }, { .field = "limit" },
};
// clang-format on

// clang-format off
static const struct dsfs_kind volume2 = {
	.name = "volume", .dir_name = "volumes", .segment = "volumes", DSCC_LIST,
	.time_field = "creation_time", .update_field = "last_modified", .get_one = true, DSFS_GET_ONLY("requestUri"),
	DSFS_FILES(volume_files),
	DSFS_CHILDREN(volume2_children),
	DSFS_ACTIONS(volume2_actions), .create = &volume2_create, .deletable = true, DSFS_EDIT(volume2_edit),
};
// clang-format on

static const struct dsfs_kind *const system2_children[] = { &volume2, &pool, &volumeset };

// clang-format off
static const struct dsfs_kind system2 = {
	.name = "storage system", .dir_name = "servers", .segment = "api/v1/storage-systems/device-type2",
	DSCC_LIST, .get_one = false, DSFS_FILES(system_files), DSFS_CHILDREN(system2_children),
};
// clang-format on

static const struct dsfs_kind *const system_also[] = { &system2, NULL };

/* Its listing carries overallState, which a GET of one lacks: the listing is its only source. */
// clang-format off
static const struct dsfs_kind system1 = {
	.name = "storage system", .dir_name = "servers", .segment = "api/v1/storage-systems/device-type1",
	DSCC_LIST, .get_one = false, DSFS_FILES(system_files), DSFS_CHILDREN(system1_children), .also = system_also,
};
// clang-format on

/* ---- console-wide resources --------------------------------------------------------------- */

static const struct dsfs_file_desc host_files[] = { DSFS_OBJECT_FILE("host.json") };

// clang-format off
static const struct dsfs_action host_create = {
	.fields = DSFS_FIELDS({ "comment", DSFS_T_STRING }, { "contact", DSFS_T_STRING }, { "fqdn", DSFS_T_STRING },
			      { "hostGroupIds", DSFS_T_STRINGS }, { "initiatorIds", DSFS_T_STRINGS },
			      { "initiatorsToCreate", DSFS_T_ARRAY }, { "ipAddress", DSFS_T_STRING }, { "location", DSFS_T_STRING },
			      { "model", DSFS_T_STRING }, { "name", DSFS_T_STRING }, { "operatingSystem", DSFS_T_STRING },
			      { "persona", DSFS_T_STRING }, { "protocol", DSFS_T_STRING }, { "subnet", DSFS_T_STRING },
			      { "userCreated", DSFS_T_BOOLEAN }),
	.required = DSFS_REQUIRE("name", "operatingSystem", "userCreated"), .bare_field = "name",
	.defaults = "{\"userCreated\": true}",
	.refs = DSFS_REFS({ "hostGroupIds", "../hostgroups" }),
};
// clang-format on

// clang-format off
static const struct dsfs_kind host = {
	.name = "host initiator", .dir_name = "hosts", .segment = "api/v1/host-initiators", DSCC_LIST,
	.get_one = true, DSFS_GET_ONLY("requestUri"), DSFS_FILES(host_files), .create = &host_create,
	.deletable = true,
};
// clang-format on

static const struct dsfs_file_desc hostgroup_files[] = { DSFS_OBJECT_FILE("hostgroup.json") };

// clang-format off
static const struct dsfs_kind hostgroup = {
	.name = "host initiator group", .dir_name = "hostgroups", .segment = "api/v1/host-initiator-groups",
	DSCC_LIST, .get_one = true, DSFS_GET_ONLY("requestUri"), DSFS_FILES(hostgroup_files),
};
// clang-format on

static const struct dsfs_file_desc issue_files[] = { DSFS_OBJECT_FILE("issue.json") };

// clang-format off
static const struct dsfs_kind issue = {
	.name = "issue", .dir_name = "issues", .segment = "api/v1/issues", .list_key = "items",
	.id_field = "id", .name_field = "id", .time_field = "lastOccurredAt", .get_one = true,
	DSFS_FILES(issue_files),
};
// clang-format on


// clang-format off
static const struct dsfs_kind task = {
	.name = "task", .dir_name = "tasks", .segment = "api/v1/tasks", .list_key = "items",
	.id_field = "id", .name_field = "id", .time_field = "updatedAt", .get_one = true,
	.update_field = "updatedAt",
	.files = dsfs_task_files, .nfiles = DSFS_TASK_NFILES, .is_task = true,
};
// clang-format on

/* The console's audit log; a filter's time is a quoted literal. */
// clang-format off
static const struct dsfs_events_desc events = {
	.url = "/api/v1/audit-events", .list_key = "items", .id_field = "id", .time_field = "occurredAt",
	.newest_query = "sort=occurredAt%20desc&limit=100&offset=0",
	.since_query = "filter=occurredAt%20ge%20%27{since}%27&sort=occurredAt%20asc&limit=1000&offset={offset}",
	.since_page = 1000,
};
// clang-format on

static const struct dsfs_kind *const root_children[] = { &system1, &host, &hostgroup, &task, &issue };

// clang-format off
static const struct dsfs_kind root = {
	.name = "root", DSFS_CHILDREN(root_children),
};
// clang-format on

#define TOKEN_URL "https://sso.common.cloud.hpe.com/as/token.oauth2"
/*
 * The probe (struct dsfs_dialect), and what tells whether a pasted token is
 * accepted: one task. The spec sets no lower bound on limit; 1 is a page
 * every console serves.
 */
#define PROBE_PATH "/api/v1/tasks?limit=1"

static const char *const auth_keys[] = { "client_id", "client_secret", "token_url", "token", NULL };

static int check_credentials(const struct dsfs_credentials *c, char *err, size_t errlen)
{
	if (dsfs_credentials_get(c, "token") ||
	    (dsfs_credentials_get(c, "client_id") && dsfs_credentials_get(c, "client_secret")))
		return 0;
	snprintf(err, errlen,
		 "DSCC needs a credentials file (-o credentials=FILE, mode 0600) with "
		 "client_id=... and client_secret=... lines (API client credentials from the console; "
		 "optional token_url=...), or a token=... line with an access token");
	return -EINVAL;
}

/* Nothing to exchange for a pasted token: one cheap call tells whether the console still accepts it. */
static int check_pasted(struct dsfs_session *s, const char *token, struct dsfs_login *out)
{
	char hdr[8192];
	const char *hdrs[] = { hdr, NULL };
	struct dsfs_request req = { .method = "GET", .path = PROBE_PATH, .headers = hdrs };
	struct dsfs_response resp = { 0 };
	int ret;

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
	ret = dsfs_session_send(s, &req, &resp);
	explicit_bzero(hdr, sizeof(hdr));
	if (ret == -EACCES && resp.status == 401)
		dsfs_err_record("GET", req.path, 401,
				"the access token was refused: it has expired or is "
				"wrong; paste a new one (token=) into the credentials file and mount again");
	if (ret == 0 && !(out->id = strdup(token)))
		ret = -ENOMEM;
	out->proven = ret == 0; /* that call was the probe's */
	dsfs_response_clear(&resp);
	return ret;
}

/* The OAuth2 client-credentials exchange at the token endpoint. */
static int login(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out)
{
	const char *pasted = dsfs_credentials_get(c, "token"), *url = dsfs_credentials_get(c, "token_url");

	if (pasted)
		return check_pasted(s, pasted, out);
	return dsfs_dialect_client_grant(s, c, url ? url : TOKEN_URL, out);
}

/* Tokens simply lapse: no logout. */
// clang-format off
static const struct dsfs_auth auth = {
	.keys = auth_keys, .check = check_credentials, .login = login, .headers = dsfs_dialect_bearer_headers,
};
// clang-format on

/*
 * filter= (OData-like): "field eq 'text'", "field in ('a','b')", and
 * "'text' in field" (the field's text contains it). Only text
 * values are asked for: a number's or a boolean's literal depends on the
 * field's type, which dsfs does not know before listing.
 */
static bool filter(const char *field, const char *op, const char *const *values, size_t n, char *buf, size_t len)
{
	static const char *const ops[][2] = {
		{ "=", "eq" }, { "!=", "ne" }, { ">=", "ge" }, { "<=", "le" },
		{ ">", "gt" }, { "<", "lt" },  { "~", "in" },
	};
	const char *word = NULL;
	char expr[4096], *enc;
	bool contains = !strcmp(op, "~");
	size_t o = 0;
	int w;

	for (size_t i = 0; i < DSFS_ARRAY_LEN(ops); i++)
		if (!strcmp(op, ops[i][0]))
			word = ops[i][1];
	if (!word || !*field ||
	    strspn(field, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") < strlen(field) ||
	    (n > 1 && strcmp(word, "eq")) || (contains && n != 1) || strlen(field) > 512)
		return false;
	if (!contains) {
		w = snprintf(expr, sizeof(expr), n > 1 ? "%s in (" : "%s %s ", field, word);
		o = (size_t)w;
	}
	for (size_t i = 0; i < n; i++)
		if (!contains && dsfs_dialect_typed_literal(values[i]))
			return false;
	/* room for " in <field>" after a contains literal */
	if (!dsfs_dialect_odata_literals(expr, sizeof(expr) - 520, &o, values, n))
		return false;
	if (n > 1)
		expr[o++] = ')';
	expr[o] = '\0';
	if (contains)
		snprintf(expr + o, sizeof(expr) - o, " in %s", field);
	if (!(enc = dsfs_names_url_segment(expr)))
		return false;
	w = snprintf(buf, len, "filter=%s", enc);
	free(enc);
	return w > 0 && (size_t)w < len;
}

static bool claims_url(const char *url)
{
	return dsfs_dialect_host_ends(url, ".data.cloud.hpe.com");
}

const struct dsfs_dialect dsfs_dialect_dscc = {
	.name = "dscc",
	.summary = "HPE Data Services Cloud Console v1",
	.url_example = "https://us1.data.cloud.hpe.com",
	.url_path = "",
	.probe = PROBE_PATH,
	.root = &root,
	.auth = &auth,
	.paging = { .limit_param = "limit", .start_param = "offset", .total_field = "total" },
	.tasks_dir = "tasks",
	.events = &events,
	.task = DSFS_TASK_WORDS_STORAGE,
	.claims_url = claims_url,
	.filter = filter,
};
