// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The storage-plugin API as a table: the tree under the mount follows from
 * these kinds. Host groups have no GET of one group, so they refresh by
 * listing. A client logs in with POST /session and HTTP Basic, bound to one
 * array, and carries the session id in its own header.
 */
#include "dialect/dialect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"
#include "util/log.h"
#include "net/session.h"

#define SESSION_HEADER "x-storageplugin-sessionid"


/*
 * The bodies' fields and their types are the storage-plugin API
 * reference's (its IDs are opaque strings); a field a body does not list
 * is refused.
 */

/* Creating by name: `echo NAME > new`, `mkdir NAME`. */
// clang-format off
static const struct dsfs_action snapshot_create = {
	.fields = DSFS_FIELDS({ "name", DSFS_T_STRING }, { "poolId", DSFS_T_STRING }, { "replicate", DSFS_T_BOOLEAN },
			      { "isAutoDelete", DSFS_T_BOOLEAN }),
	.required = DSFS_REQUIRE("name"), .bare_field = "name",
};
// clang-format on

// clang-format off
static const struct dsfs_action host_create = {
	.fields = DSFS_FIELDS({ "name", DSFS_T_STRING }, { "iqns", DSFS_T_STRINGS }, { "wwns", DSFS_T_STRINGS }),
	.required = DSFS_REQUIRE("name"), .bare_field = "name",
};
// clang-format on

static const struct dsfs_file_desc snapshot_files[] = { DSFS_OBJECT_FILE("snapshot.json") };

// clang-format off
static const struct dsfs_action snapshot_actions[] = {
	{ .verb = "get-Progress", .fields = DSFS_FIELDS({ "destinationSnapshotId", DSFS_T_STRING },
							{ "destinationServerId", DSFS_T_STRING }) },
};
// clang-format on

// clang-format off
static const struct dsfs_kind snapshot = {
	.name = "snapshot", .dir_name = "snapshots", .segment = "snapshot", .list_key = "snapshots",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(snapshot_files), DSFS_ACTIONS(snapshot_actions), .create = &snapshot_create, .deletable = true,
};
// clang-format on

static const struct dsfs_file_desc volume_files[] = {
	DSFS_OBJECT_FILE("volume.json"),
	{ .name = "splitstatus.json", .subpath = "/splitstatus", .flags = DSFS_FILE_DIRECT },
};
static const struct dsfs_kind *const volume_children[] = { &snapshot };

// clang-format off
static const struct dsfs_action volume_actions[] = {
	{ .verb = "clone", .required = DSFS_REQUIRE("name"),
	  .fields = DSFS_FIELDS({ "snapshot.id", DSFS_T_STRING }, { "snapshot.name", DSFS_T_STRING },
				{ "name", DSFS_T_STRING }, { "serverGroupKeys", DSFS_T_STRINGS },
				{ "instantSplit", DSFS_T_BOOLEAN }),
	  .refs = DSFS_REFS({ "snapshot.id", "snapshots" }) },
	{ .verb = "mount", .required = DSFS_REQUIRE("path"), .fields = DSFS_FIELDS({ "path", DSFS_T_STRING }) },
	{ .verb = "split", .no_body = true },
	/* the volume's data becomes the snapshot's: what was written since is gone */
	{ .verb = "restore", .required = DSFS_REQUIRE("snapshotId"), .fields = DSFS_FIELDS({ "snapshotId", DSFS_T_STRING }),
	  .refs = DSFS_REFS({ "snapshotId", "snapshots" }), .destroys = true },
	/* the same, over another volume (the API reference: "restores a snapshot to a different volume") */
	{ .verb = "restore-to-alternate", .required = DSFS_REQUIRE("sourceSnapshotId", "targetVolumeId"),
	  .fields = DSFS_FIELDS({ "sourceSnapshotId", DSFS_T_STRING }, { "targetVolumeId", DSFS_T_STRING }),
	  .refs = DSFS_REFS({ "sourceSnapshotId", "snapshots" }, { "targetVolumeId", ".." }), .destroys = true },
	{ .verb = "restore-to-new", .required = DSFS_REQUIRE("sourceSnapshotId", "targetVolumeName"),
	  .fields = DSFS_FIELDS({ "sourceSnapshotId", DSFS_T_STRING }, { "targetVolumeName", DSFS_T_STRING },
				{ "targetPoolIds", DSFS_T_STRINGS }),
	  .refs = DSFS_REFS({ "sourceSnapshotId", "snapshots" }, { "targetPoolIds", "../../pools" }) },
};
// clang-format on

// clang-format off
static const struct dsfs_kind volume = {
	.name = "volume", .dir_name = "volumes", .segment = "volume", .list_key = "volumes",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(volume_files), DSFS_CHILDREN(volume_children), DSFS_ACTIONS(volume_actions), .deletable = true,
};
// clang-format on

static const struct dsfs_file_desc lun_files[] = { DSFS_OBJECT_FILE("lun.json") };

static const struct dsfs_action lun_actions[] = {
	{ .verb = "online", .fields = DSFS_NO_FIELDS }, /* the API reference gives it no body; {} is sent, as before */
};

// clang-format off
static const struct dsfs_kind lun = {
	.name = "lun", .dir_name = "luns", .segment = "lun", .list_key = "luns",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(lun_files), DSFS_ACTIONS(lun_actions),
};
// clang-format on

/* Mapping a LUN: to a host or to every host of a group. */
#define MAP_REFS DSFS_REFS({ "lunId", "../../luns" }, { "volumeId", "../../volumes" })
#define MAP_FIELDS \
	DSFS_FIELDS({ "volumeId", DSFS_T_STRING }, { "lunId", DSFS_T_STRING }, { "lunNumber", DSFS_T_INTEGER })

static const struct dsfs_file_desc host_files[] = {
	DSFS_OBJECT_FILE("host.json"),
	{ .name = "luns.json", .subpath = "/lun", .list_key = "luns" },
};

/* unmap takes a LUN from a host, whose data stays (map gives it back): not a destroying verb */
// clang-format off
static const struct dsfs_action host_actions[] = {
	{ .verb = "map", .required = DSFS_REQUIRE("lunId"), .fields = MAP_FIELDS, .refs = MAP_REFS },
	{ .verb = "unmap", .required = DSFS_REQUIRE("lunId"), .fields = DSFS_FIELDS({ "lunId", DSFS_T_STRING }),
	  .refs = DSFS_REFS({ "lunId", "../../luns" }) },
};
// clang-format on

// clang-format off
static const struct dsfs_kind host = {
	.name = "host", .dir_name = "hosts", .segment = "host", .list_key = "hosts",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(host_files), DSFS_ACTIONS(host_actions), .create = &host_create,
};
// clang-format on

static const struct dsfs_file_desc hostgroup_files[] = { DSFS_OBJECT_FILE("hostgroup.json") };

static const struct dsfs_action hostgroup_actions[] = {
	{ .verb = "map", .required = DSFS_REQUIRE("lunId"), .fields = MAP_FIELDS, .refs = MAP_REFS },
};

// clang-format off
static const struct dsfs_kind hostgroup = {
	.name = "hostgroup", .dir_name = "hostgroups", .segment = "hostgroup", .list_key = "groups",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = false,
	DSFS_FILES(hostgroup_files), DSFS_ACTIONS(hostgroup_actions),
};
// clang-format on

static const struct dsfs_file_desc network_files[] = { DSFS_OBJECT_FILE("network.json") };

// clang-format off
static const struct dsfs_kind network = {
	.name = "network", .dir_name = "networks", .segment = "network", .list_key = "networks",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(network_files),
};
// clang-format on

static const struct dsfs_file_desc pool_files[] = { DSFS_OBJECT_FILE("pool.json") };

/* A pool states only its free space; the server's system states its capacity. */
static const struct dsfs_capacity pool_capacity[] = { { .free_field = "freeSpace", .unit = 1 } };

// clang-format off
static const struct dsfs_kind pool = {
	.name = "pool", .dir_name = "pools", .segment = "pool", .list_key = "pools",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(pool_files), DSFS_CAPACITY(pool_capacity),
};
// clang-format on

// clang-format off
static const struct dsfs_kind cg_snapshot = {
	.name = "consistency-group snapshot", .dir_name = "snapshots", .segment = "snapshot",
	.list_key = "snapshots", .id_field = "id", .name_field = "name", .time_field = "creationTime",
	.get_one = false, DSFS_FILES(snapshot_files),
};
// clang-format on

static const struct dsfs_file_desc cg_files[] = { DSFS_OBJECT_FILE("consistencygroup.json") };
static const struct dsfs_kind *const cg_children[] = { &cg_snapshot };

// clang-format off
static const struct dsfs_action cg_actions[] = {
	{ .verb = "add-volume", .required = DSFS_REQUIRE("volumeId"),
	  .fields = DSFS_FIELDS({ "snapshotName", DSFS_T_STRING }, { "volumeId", DSFS_T_STRING },
				{ "poolId", DSFS_T_STRING }, { "isIncremental", DSFS_T_BOOLEAN }),
	  .refs = DSFS_REFS({ "volumeId", "../../volumes" }) },
	{ .verb = "remove-volume", .required = DSFS_REQUIRE("volumeIds"), .fields = DSFS_FIELDS({ "volumeIds", DSFS_T_STRINGS }),
	  .refs = DSFS_REFS({ "volumeIds", "../../volumes" }) },
	/* deletes the group's snapshots but the newest numberOfInstances older than ageInDays */
	{ .verb = "condense", .fields = DSFS_FIELDS({ "ageInDays", DSFS_T_INTEGER }, { "numberOfInstances", DSFS_T_INTEGER },
						   { "snapshotPrefixes", DSFS_T_STRINGS }), .destroys = true },
	{ .verb = "take-snapshot", .fields = DSFS_FIELDS({ "prefix", DSFS_T_STRING }, { "replicate", DSFS_T_BOOLEAN },
							 { "isAutoDelete", DSFS_T_BOOLEAN }, { "isIncremental", DSFS_T_BOOLEAN }) },
	{ .verb = "add-replication-target", .required = DSFS_REQUIRE("targetName"),
	  .fields = DSFS_FIELDS({ "targetName", DSFS_T_STRING }) },
};
// clang-format on

// clang-format off
static const struct dsfs_kind consistencygroup = {
	.name = "consistencygroup", .dir_name = "consistencygroups", .segment = "consistencygroup",
	.list_key = "consistencyGroups", .id_field = "id", .name_field = "name",
	.time_field = "creationTime", .get_one = true, DSFS_FILES(cg_files), DSFS_CHILDREN(cg_children),
	DSFS_ACTIONS(cg_actions),
};
// clang-format on

static const struct dsfs_file_desc server_files[] = {
	DSFS_OBJECT_FILE("server.json"),
	{ .name = "system.json", .subpath = "/system" },
	{ .name = "remotearrays.json", .subpath = "/remotearray", .list_key = "remoteArrays" },
};
static const struct dsfs_kind *const server_children[] = {
	&volume, &lun, &host, &hostgroup, &network, &pool, &consistencygroup,
};

static const struct dsfs_capacity server_capacity[] = {
	{ .file = "system.json", .total_field = "capacityInBytes", .unit = 1 },
};

// clang-format off
static const struct dsfs_kind server = {
	.name = "server", .dir_name = "servers", .segment = "server", .list_key = "servers",
	.id_field = "id", .name_field = "name", .time_field = "creationTime", .get_one = true,
	DSFS_FILES(server_files), DSFS_CHILDREN(server_children), DSFS_CAPACITY(server_capacity),
};
// clang-format on


// clang-format off
static const struct dsfs_kind task = {
	.name = "task", .dir_name = "tasks", .segment = "tasks", .list_key = "tasks",
	.id_field = "id", .name_field = "id", .time_field = "updatedAt", .get_one = true,
	.update_field = "updatedAt",
	.files = dsfs_task_files, .nfiles = DSFS_TASK_NFILES, .is_task = true,
};
// clang-format on

static const struct dsfs_file_desc root_files[] = {
	{ .name = "info.json", .subpath = "/info", .flags = DSFS_FILE_ANONYMOUS },
	{ .name = "storage.json", .subpath = "/storage" },
	{ .name = "log.zip", .subpath = "/log", .accept = "application/zip", .flags = DSFS_FILE_BINARY },
};
static const struct dsfs_kind *const root_children[] = { &server, &task };

/* The API keeps no audit log: its events are its tasks, each shown again when its state changes. */
// clang-format off
static const struct dsfs_events_desc events = {
	.url = "/tasks", .list_key = "tasks", .id_field = "id", .time_field = "updatedAt",
	.newest_query = "limit=1000&start=0", .state_field = "state",
};
// clang-format on

// clang-format off
static const struct dsfs_kind root = {
	.name = "root", DSFS_FILES(root_files), DSFS_CHILDREN(root_children),
};
// clang-format on

static const char *const auth_keys[] = { "username", "password", "array", NULL };

static int check_credentials(const struct dsfs_credentials *c, char *err, size_t errlen)
{
	if (dsfs_credentials_get(c, "username") && dsfs_credentials_get(c, "password"))
		return 0;
	snprintf(err, errlen,
		 "the storage-plugin API needs a user name and a password: a credentials file "
		 "(-o credentials=FILE, mode 0600) with lines username=... and password=..., or "
		 "DSFS_USERNAME (or -o username=NAME) and DSFS_PASSWORD in the environment");
	return -EINVAL;
}

/* POST /session with HTTP Basic credentials and the array to log in to. */
static int login(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out)
{
	const char *array = dsfs_credentials_get(c, "array");
	struct dsfs_request req = {
		.method = "POST",
		.path = "/session",
		.username = dsfs_credentials_get(c, "username"),
		.password = dsfs_credentials_get(c, "password"),
	};
	struct dsfs_response resp = { 0 };
	json_object *body, *o = NULL, *sid;
	int ret;

	body = json_object_new_object();
	if (!body)
		return -ENOMEM;
	if (array) {
		unsigned char tmp[sizeof(struct in6_addr)];
		bool is_ip = inet_pton(AF_INET, array, tmp) == 1 || inet_pton(AF_INET6, array, tmp) == 1;

		json_object_object_add(body, is_ip ? "ipAddress" : "hostname", json_object_new_string(array));
	}
	req.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	req.body_len = strlen(req.body);
	ret = dsfs_session_send(s, &req, &resp);
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		if (!o || !json_object_object_get_ex(o, "sessionId", &sid) ||
		    !json_object_is_type(sid, json_type_string)) {
			dsfs_err_record("POST", "/session", resp.status, "answer has no sessionId");
			ret = -EIO;
		} else {
			out->id = strdup(json_object_get_string(sid));
			ret = out->id ? 0 : -ENOMEM;
		}
	}
	json_object_put(o);
	json_object_put(body);
	dsfs_response_clear(&resp);
	return ret;
}

static size_t headers(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs)
{
	snprintf(buf, len, SESSION_HEADER ": %s", l->id);
	hdrs[0] = buf;
	return 1;
}

static void logout(struct dsfs_session *s, const struct dsfs_login *l)
{
	char hdr[512];
	const char *hdrs[] = { hdr, NULL };
	struct dsfs_request req = { .method = "DELETE", .path = "/session", .headers = hdrs };
	struct dsfs_response resp = { 0 };

	headers(l, hdr, sizeof(hdr), hdrs);
	if (dsfs_session_send(s, &req, &resp) < 0)
		dsfs_log(DSFS_LOG_DEBUG, "logout: %s", resp.status ? "refused" : resp.message);
	explicit_bzero(hdr, sizeof(hdr));
	dsfs_response_clear(&resp);
}

// clang-format off
static const struct dsfs_auth auth = {
	.keys = auth_keys, .check = check_credentials, .login = login, .headers = headers, .logout = logout,
};
// clang-format on

static bool claims_url(const char *url)
{
	return strstr(url, "/storageplugin/api") != NULL;
}

const struct dsfs_dialect dsfs_dialect_storageplugin = {
	.name = "storageplugin",
	.summary = "the storage-plugin REST API of an array",
	.url_example = "https://array1:8443/storageplugin/api",
	.url_path = "/storageplugin/api",
	.probe = "/server?limit=1&start=0",
	.root = &root,
	.auth = &auth,
	.paging = { .limit_param = "limit", .start_param = "start" },
	.tasks_dir = "tasks",
	.events = &events,
	.task = DSFS_TASK_WORDS_STORAGE,
	.claims_url = claims_url,
};
