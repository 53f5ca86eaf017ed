// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The HPE GreenLake APIs for data services, revision v1beta1, as a table and
 * its hooks: the async-operations of every data service as the tasks view
 * (each with its child operations below it), the issues, and the
 * data-services, virtualization and backup-recovery families as folders
 * of their collections. Lists answer {"items", "count", "offset", "total"}
 * ("items" null when empty) with limits of their own per collection; a
 * change answers 202 with a Location naming the async-operation that
 * carries it out, which becomes tasks/latest; edits are merge-patches
 * (PATCH, application/merge-patch+json) of the changed fields. A client
 * authenticates with an OAuth2 bearer token from the client-credentials
 * grant at HPE's SSO endpoint or at its workspace's, renewed before
 * expires_in runs out. Answers recorded in 2024 spell some fields
 * otherwise (logMessages[].timestampAt; errors {error, errorCode,
 * traceId}): both are read. The facts are those of HPE's OpenAPI
 * descriptions (Data Services 1.3.0, Virtualization 1.2.0, Backup and
 * Recovery 1.1.0) as docs/greenlake.md states them.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/names.h"
#include "net/session.h"

#define DS "data-services/v1beta1"
#define VZ "virtualization/v1beta1"
#define BR "backup-recovery/v1beta1"
#define OPS "/" DS "/async-operations"
#define DS_ESC "data-services%2Fv1beta1" /* DS in a filter's literal */
#define MERGE_PATCH "application/merge-patch+json"

/* Every object carries id, createdAt and updatedAt; most a name; a GET of one answers the listing's shape. */
#define GL_LIST .list_key = "items", .id_field = "id", .update_field = "updatedAt"
#define GL_NAMED GL_LIST, .name_field = "name", .time_field = "createdAt", .get_one = true
#define GL_BY_ID GL_LIST, .name_field = "id", .time_field = "createdAt", .get_one = true

/* ---- async-operations: the tasks view ------------------------------------------------ */

/*
 * The log file in either spelling: logMessages[].timestamp, or the
 * timestampAt of answers recorded in 2024.
 */
static struct dsfs_blob *op_log(json_object *op, const struct dsfs_dialect *d)
{
	json_object *msgs = dsfs_dialect_field(op, d->task.log_field), *first;
	struct dsfs_dialect old = *d;

	first = json_object_is_type(msgs, json_type_array) && json_object_array_length(msgs)
		? json_object_array_get_idx(msgs, 0)
		: NULL;
	if (first && !dsfs_dialect_has_field(first, d->task.log_time_field) &&
	    dsfs_dialect_has_field(first, "timestampAt")) {
		old.task.log_time_field = "timestampAt";
		return dsfs_task_log(op, &old);
	}
	return dsfs_task_log(op, d);
}

static const struct dsfs_file_desc op_files[] = {
	{ .name = "task.json", .flags = DSFS_FILE_DIRECT },
	{ .name = "state", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_state },
	{ .name = "progress", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_progress },
	{ .name = "log", .flags = DSFS_FILE_DIRECT, .derive = op_log },
	{ .name = "error", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_error },
};

/*
 * An operation's child operations: the operations whose parent it is,
 * each one a task directory of its own (with children/ in turn). Named by
 * their ids; their mtime is when they last changed, so `ls -t` shows the
 * newest first. Only an operation that says it has some shows children/:
 * hasChildOperations, and the operations whose parent/id is its id; in the
 * 2024 spelling a non-empty childTasks, and the operations whose
 * parentTask/resourceUri is its URI (that spelling's parent names no id).
 */
static const struct dsfs_kind child_op, child_op_2024;
static const struct dsfs_kind *const op_children[] = { &child_op, &child_op_2024 };

// clang-format off
#define CHILD_OP                                                                                      \
	.name = "child operation", .dir_name = "children", .list_key = "items", .id_field = "id",    \
	.name_field = "id", .time_field = "updatedAt", .update_field = "updatedAt", .get_one = true, \
	.page_max = 1000, DSFS_FILES(op_files), DSFS_CHILDREN(op_children), .is_task = true
// clang-format on

// clang-format off
static const struct dsfs_kind child_op = {
	CHILD_OP, .segment = OPS "?filter=parent%2Fid%20eq%20%27{id}%27",
	.shown_if = (const char *const[]) { "hasChildOperations", NULL },
};
// clang-format on

// clang-format off
static const struct dsfs_kind child_op_2024 = {
	CHILD_OP,
	.segment = OPS "?filter=parentTask%2FresourceUri%20eq%20%27%2F" DS_ESC "%2Fasync-operations%2F{id}%27",
	.shown_if = (const char *const[]) { "childTasks", NULL },
};
// clang-format on

// clang-format off
static const struct dsfs_kind operation = {
	.name = "async-operation", .dir_name = "tasks", .segment = DS "/async-operations", .list_key = "items",
	.id_field = "id", .name_field = "id", .time_field = "updatedAt", .update_field = "updatedAt",
	.get_one = true, .page_max = 1000, DSFS_FILES(op_files), DSFS_CHILDREN(op_children), .is_task = true,
};
// clang-format on

/* ---- data-services ------------------------------------------------------------------ */

static const struct dsfs_file_desc issue_files[] = { DSFS_OBJECT_FILE("issue.json") };

/* Snoozing: the issue's generation goes with the change, as the API requires. */
// clang-format off
static const struct dsfs_edit_field issue_edit[] = {
	{ .field = "snoozedFor" }, { .field = "generation", .always = true },
};
// clang-format on

// clang-format off
static const struct dsfs_kind issue = {
	.name = "issue", .dir_name = "issues", .segment = DS "/issues", GL_LIST, .name_field = "id",
	.time_field = "lastOccurredAt", .get_one = true,
	.page_max = 100, DSFS_FILES(issue_files), DSFS_EDIT(issue_edit),
};
// clang-format on

static const struct dsfs_file_desc setting_files[] = { DSFS_OBJECT_FILE("setting.json") };
static const struct dsfs_edit_field setting_edit[] = { { .field = "currentValue" } };

// clang-format off
static const struct dsfs_kind setting = {
	.name = "setting", .dir_name = "settings", .segment = "settings", GL_NAMED, .page_max = 100,
	DSFS_FILES(setting_files), DSFS_EDIT(setting_edit),
};
// clang-format on

static const struct dsfs_file_desc secret_files[] = { DSFS_OBJECT_FILE("secret.json") };

/* No secret material is ever answered: the object says what the secret is for. */
// clang-format off
static const struct dsfs_kind secret = {
	.name = "secret", .dir_name = "secrets", .segment = "secrets", GL_NAMED, DSFS_FILES(secret_files),
};
// clang-format on

static const struct dsfs_file_desc release_files[] = { DSFS_OBJECT_FILE("software-release.json") };

// clang-format off
static const struct dsfs_kind release = {
	.name = "software release", .dir_name = "software-releases", .segment = "software-releases", GL_NAMED,
	.page_max = 100, DSFS_FILES(release_files),
};
// clang-format on

static const struct dsfs_file_desc location_files[] = { DSFS_OBJECT_FILE("storage-location.json") };

/* Ids like azure:eastus2; the list takes a filter only and comes whole; no GET of one. */
// clang-format off
static const struct dsfs_kind location = {
	.name = "storage location", .dir_name = "storage-locations", .segment = "storage-locations", GL_LIST,
	.name_field = "id", .time_field = "createdAt", .unpaged = true, DSFS_FILES(location_files),
};
// clang-format on

static const struct dsfs_file_desc tag_files[] = { DSFS_OBJECT_FILE("tag.json") };

/* A tag is a key and a value with no name of its own: named key=value. No GET of one. */
// clang-format off
static const struct dsfs_kind tag = {
	.name = "tag", .dir_name = "tags", .segment = "tags", GL_LIST, .name_field = "key",
	.name_value_field = "value", .time_field = "createdAt",
	DSFS_FILES(tag_files),
};
// clang-format on

static const struct dsfs_file_desc dual_auth_files[] = { DSFS_OBJECT_FILE("dual-auth-operation.json") };

/* Approving or cancelling sets its state: a merge-patch of the operation itself. */
// clang-format off
#define DUAL_AUTH_VERB(v, state)                                                                      \
	{ .verb = v, .method = "PATCH", .content_type = MERGE_PATCH, .target = "/" DS "/dual-auth-operations/{id}", \
	  .fields = DSFS_FIELDS({ "state", DSFS_T_STRING }), .defaults = "{\"state\": \"" state "\"}" }
// clang-format on

// clang-format off
static const struct dsfs_action dual_auth_actions[] = {
	DUAL_AUTH_VERB("approve", "APPROVED"), DUAL_AUTH_VERB("cancel", "CANCELLED"),
};
// clang-format on

// clang-format off
static const struct dsfs_kind dual_auth = {
	.name = "dual-auth operation", .dir_name = "dual-auth-operations", .segment = "dual-auth-operations",
	GL_BY_ID, .page_max = 100, DSFS_FILES(dual_auth_files), DSFS_ACTIONS(dual_auth_actions),
};
// clang-format on

static const struct dsfs_kind *const data_services_children[] = {
	&setting, &secret, &release, &location, &tag, &dual_auth,
};

// clang-format off
static const struct dsfs_kind data_services = {
	.name = "data services", .dir_name = "data-services", .segment = DS, .folder = true,
	DSFS_CHILDREN(data_services_children),
};
// clang-format on

/* ---- backups and snapshots of a virtual machine (backup-recovery) ---------------------- */

// clang-format off
static const struct dsfs_edit_field copy_edit[] = {
	{ .field = "name" }, { .field = "description" }, { .field = "expiresAt" }, { .field = "lockedUntil" },
};
// clang-format on

static const struct dsfs_file_desc backup_files[] = { DSFS_OBJECT_FILE("backup.json") };

// clang-format off
static const struct dsfs_kind backup = {
	.name = "backup", .dir_name = "backups", .segment = "/" BR "/virtual-machines/{id}/backups", GL_NAMED,
	DSFS_FILES(backup_files), .deletable = true, DSFS_EDIT(copy_edit),
};
// clang-format on

static const struct dsfs_file_desc snapshot_files[] = { DSFS_OBJECT_FILE("snapshot.json") };

// clang-format off
static const struct dsfs_kind snapshot = {
	.name = "snapshot", .dir_name = "snapshots", .segment = "/" BR "/virtual-machines/{id}/snapshots",
	GL_NAMED, DSFS_FILES(snapshot_files), .deletable = true, DSFS_EDIT(copy_edit),
};
// clang-format on

/* ---- virtualization ------------------------------------------------------------------ */

static const struct dsfs_file_desc vm_files[] = { DSFS_OBJECT_FILE("virtual-machine.json") };
static const struct dsfs_kind *const vm_children[] = { &backup, &snapshot };

#define POWER_VERB(v)                                        \
	{                                                    \
		.verb = v, .subpath = "/" v, .no_body = true \
	}

/*
 * restore: from one backup or snapshot of the machine (named by its entry
 * in backups/ or snapshots/), over the machine itself (PARENT, the
 * default: it destroys what the machine holds now) or as a new one
 * (ALTERNATE, targetVmInfo naming it).
 */
// clang-format off
static const struct dsfs_action vm_actions[] = {
	POWER_VERB("power-on"), POWER_VERB("power-off"), POWER_VERB("reset"), POWER_VERB("restart-guest-os"),
	POWER_VERB("shutdown-guest-os"), POWER_VERB("refresh"),
	{ .verb = "restore", .target = "/" BR "/virtual-machines/{id}/restore",
	  .fields = DSFS_FIELDS({ "backupId", DSFS_T_STRING }, { "snapshotId", DSFS_T_STRING },
				{ "restoreType", DSFS_T_STRING }, { "targetVmInfo", DSFS_T_OBJECT }),
	  .required = DSFS_REQUIRE("backupId|snapshotId", "restoreType"),
	  .refs = DSFS_REFS({ "backupId", "backups" }, { "snapshotId", "snapshots" }),
	  .defaults = "{\"restoreType\": \"PARENT\"}", .destroys = true },
};
// clang-format on

// clang-format off
static const struct dsfs_kind vm = {
	.name = "virtual machine", .dir_name = "virtual-machines", .segment = "virtual-machines", GL_NAMED,
	DSFS_FILES(vm_files), DSFS_CHILDREN(vm_children), DSFS_ACTIONS(vm_actions),
};
// clang-format on

static const struct dsfs_file_desc datastore_files[] = { DSFS_OBJECT_FILE("datastore.json") };

// clang-format off
static const struct dsfs_action datastore_create = {
	.fields = DSFS_FIELDS({ "name", DSFS_T_STRING }, { "sizeInBytes", DSFS_T_INTEGER },
			      { "storageSystemId", DSFS_T_STRING }, { "targetHypervisorClusterId", DSFS_T_STRING },
			      { "datastoreType", DSFS_T_STRING }, { "hostIds", DSFS_T_STRINGS }),
	.required = DSFS_REQUIRE("name", "sizeInBytes", "storageSystemId", "targetHypervisorClusterId"),
	.bare_field = "name", .defaults = "{\"datastoreType\": \"VMFS\"}",
	.refs = DSFS_REFS({ "targetHypervisorClusterId", "../hypervisor-clusters" }),
};
// clang-format on

static const struct dsfs_capacity datastore_capacity[] = {
	{ .total_field = "capacityInBytes", .free_field = "capacityFree", .unit = 1 },
};

// clang-format off
static const struct dsfs_kind datastore = {
	.name = "datastore", .dir_name = "datastores", .segment = "datastores", GL_NAMED,
	DSFS_FILES(datastore_files), .create = &datastore_create, DSFS_CAPACITY(datastore_capacity),
};
// clang-format on

static const struct dsfs_file_desc cluster_files[] = { DSFS_OBJECT_FILE("hypervisor-cluster.json") };
// clang-format off
static const struct dsfs_kind cluster = {
	.name = "hypervisor cluster", .dir_name = "hypervisor-clusters", .segment = "hypervisor-clusters",
	GL_NAMED, DSFS_FILES(cluster_files),
};
// clang-format on

static const struct dsfs_file_desc host_files[] = { DSFS_OBJECT_FILE("hypervisor-host.json") };
// clang-format off
static const struct dsfs_kind host = {
	.name = "hypervisor host", .dir_name = "hypervisor-hosts", .segment = "hypervisor-hosts", GL_NAMED,
	DSFS_FILES(host_files),
};
// clang-format on

static const struct dsfs_file_desc manager_files[] = { DSFS_OBJECT_FILE("hypervisor-manager.json") };
static const struct dsfs_action manager_actions[] = { POWER_VERB("refresh") };
// clang-format off
static const struct dsfs_kind manager = {
	.name = "hypervisor manager", .dir_name = "hypervisor-managers", .segment = "hypervisor-managers",
	GL_NAMED, DSFS_FILES(manager_files), DSFS_ACTIONS(manager_actions),
};
// clang-format on

static const struct dsfs_kind *const virtualization_children[] = { &vm, &datastore, &cluster, &host, &manager };

// clang-format off
static const struct dsfs_kind virtualization = {
	.name = "virtualization", .dir_name = "virtualization", .segment = VZ, .folder = true,
	DSFS_CHILDREN(virtualization_children),
};
// clang-format on

/* ---- backup-recovery ------------------------------------------------------------------ */

static const struct dsfs_file_desc policy_files[] = { DSFS_OBJECT_FILE("protection-policy.json") };

/* protection-policies/new answers 200 with the policy: no operation. */
// clang-format off
static const struct dsfs_action policy_create = {
	.fields = DSFS_FIELDS({ "name", DSFS_T_STRING }, { "description", DSFS_T_STRING },
			      { "protections", DSFS_T_ARRAY }),
	.required = DSFS_REQUIRE("name", "protections"), .bare_field = "name",
};
// clang-format on

// clang-format off
static const struct dsfs_edit_field policy_edit[] = {
	{ .field = "name" }, { .field = "description" }, { .field = "protections" },
};
// clang-format on

// clang-format off
static const struct dsfs_kind policy = {
	.name = "protection policy", .dir_name = "protection-policies", .segment = "protection-policies",
	GL_NAMED, DSFS_FILES(policy_files), .create = &policy_create, DSFS_EDIT(policy_edit),
};
// clang-format on

static const struct dsfs_file_desc job_files[] = { DSFS_OBJECT_FILE("protection-job.json") };

/* run names the schedules of the job's policy to run (their ids, numbers in the policy: a JSON array). */
// clang-format off
static const struct dsfs_action job_actions[] = {
	{ .verb = "run", .subpath = "/run", .required = DSFS_REQUIRE("scheduleIds"),
	  .fields = DSFS_FIELDS({ "scheduleIds", DSFS_T_ARRAY }, { "fullBackup", DSFS_T_BOOLEAN }) },
	{ .verb = "suspend", .subpath = "/suspend", .no_body = true },
	{ .verb = "resume", .subpath = "/resume", .no_body = true },
};
// clang-format on

// clang-format off
static const struct dsfs_kind job = {
	.name = "protection job", .dir_name = "protection-jobs", .segment = "protection-jobs", GL_BY_ID,
	DSFS_FILES(job_files), DSFS_ACTIONS(job_actions),
};
// clang-format on

static const struct dsfs_file_desc group_files[] = { DSFS_OBJECT_FILE("virtual-machine-protection-group.json") };
// clang-format off
static const struct dsfs_kind group = {
	.name = "protection group", .dir_name = "virtual-machine-protection-groups",
	.segment = "virtual-machine-protection-groups", GL_NAMED, DSFS_FILES(group_files),
};
// clang-format on

static const struct dsfs_file_desc store_files[] = { DSFS_OBJECT_FILE("protection-store.json") };
static const struct dsfs_capacity store_capacity[] = {
	{ .total_field = "maxCapacityInBytes", .used_field = "sizeOnDiskInBytes", .unit = 1 },
};
// clang-format off
static const struct dsfs_kind store = {
	.name = "protection store", .dir_name = "protection-stores", .segment = "protection-stores", GL_NAMED,
	DSFS_FILES(store_files), DSFS_CAPACITY(store_capacity),
};
// clang-format on

static const struct dsfs_file_desc gateway_files[] = { DSFS_OBJECT_FILE("protection-store-gateway.json") };
// clang-format off
static const struct dsfs_kind gateway = {
	.name = "protection store gateway", .dir_name = "protection-store-gateways",
	.segment = "protection-store-gateways", GL_NAMED, DSFS_FILES(gateway_files),
};
// clang-format on

static const struct dsfs_file_desc orchestrator_files[] = { DSFS_OBJECT_FILE("data-orchestrator.json") };
// clang-format off
static const struct dsfs_kind orchestrator = {
	.name = "data orchestrator", .dir_name = "data-orchestrators", .segment = "data-orchestrators", GL_NAMED,
	DSFS_FILES(orchestrator_files),
};
// clang-format on

static const struct dsfs_file_desc storeonce_files[] = { DSFS_OBJECT_FILE("storeonce.json") };
// clang-format off
static const struct dsfs_kind storeonce = {
	.name = "StoreOnce", .dir_name = "storeonces", .segment = "storeonces", GL_NAMED,
	DSFS_FILES(storeonce_files),
};
// clang-format on

static const struct dsfs_kind *const backup_recovery_children[] = {
	&policy, &job, &group, &store, &gateway, &orchestrator, &storeonce,
};

// clang-format off
static const struct dsfs_kind backup_recovery = {
	.name = "backup and recovery", .dir_name = "backup-recovery", .segment = BR, .folder = true,
	DSFS_CHILDREN(backup_recovery_children),
};
// clang-format on

static const struct dsfs_kind *const root_children[] = {
	&operation, &issue, &data_services, &virtualization, &backup_recovery,
};

// clang-format off
static const struct dsfs_kind root = {
	.name = "root", DSFS_CHILDREN(root_children),
};
// clang-format on

/*
 * events/log: async-operations is the audit of every data service, so an
 * event is an operation's change of state. The API's filter has no ge:
 * "at or after" is gt or eq, which async-operations takes (its filter
 * joins with or), so the operations at the newest time seen are asked
 * again and skipped by offset, as for the other dialects.
 */
// clang-format off
static const struct dsfs_events_desc events = {
	.url = OPS, .list_key = "items", .id_field = "id", .time_field = "updatedAt", .state_field = "state",
	.newest_query = "sort=updatedAt%20desc&limit=100&offset=0",
	.since_query = "filter=updatedAt%20gt%20%27{since}%27%20or%20updatedAt%20eq%20%27{since}%27"
		       "&sort=updatedAt%20asc&limit=1000&offset={offset}",
	.since_page = 1000,
};
// clang-format on

/* ---- logging in ---------------------------------------------------------------------- */

#define TOKEN_URL "https://sso.common.cloud.hpe.com/as/token.oauth2"
#define WORKSPACE_TOKEN_URL "https://global.api.greenlake.hpe.com/authorization/v2/oauth2/%s/token"

static const char *const auth_keys[] = { "client_id", "client_secret", "token_url", "workspace", NULL };

static int check_credentials(const struct dsfs_credentials *c, char *err, size_t errlen)
{
	if (dsfs_credentials_get(c, "client_id") && dsfs_credentials_get(c, "client_secret"))
		return 0;
	snprintf(err, errlen,
		 "GreenLake needs a credentials file (-o credentials=FILE, mode 0600) with "
		 "client_id=... and client_secret=... lines (an API client of the workspace; optional "
		 "workspace=ID for a workspace-scoped client, or token_url=...)");
	return -EINVAL;
}

/*
 * The OAuth2 client-credentials grant: at token_url when given, else at
 * the workspace's endpoint when a workspace is named, else at HPE's SSO.
 */
static int login(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out)
{
	const char *url = dsfs_credentials_get(c, "token_url"), *ws = dsfs_credentials_get(c, "workspace");
	char *ws_url = NULL, *seg = NULL;
	int ret;

	if (!url && ws) {
		seg = dsfs_names_url_segment(ws);
		if (!seg || asprintf(&ws_url, WORKSPACE_TOKEN_URL, seg) < 0) {
			free(seg);
			return -ENOMEM;
		}
		url = ws_url;
	}
	ret = dsfs_dialect_client_grant(s, c, url ? url : TOKEN_URL, out);
	free(ws_url);
	free(seg);
	return ret;
}

/* Tokens simply lapse: no logout. */
// clang-format off
static const struct dsfs_auth auth = {
	.keys = auth_keys, .check = check_credentials, .login = login, .headers = dsfs_dialect_bearer_headers,
};
// clang-format on

/* ---- filter and URLs ------------------------------------------------------------------ */

/*
 * filter= (OData-like): "a/b eq 'text'" (ne, gt, lt too; the API has no
 * ge or le), "a in ('x','y')", "contains(a,'text')"; a dotted field is a
 * nested property, written with '/'. Only text values are asked for: a
 * number's or a boolean's literal depends on the field's type.
 */
static bool filter(const char *field, const char *op, const char *const *values, size_t n, char *buf, size_t len)
{
	static const char *const ops[][2] = { { "=", "eq" }, { "!=", "ne" }, { ">", "gt" }, { "<", "lt" } };
	const char *word = NULL;
	char prop[520], expr[4096], *enc;
	size_t o = 0;
	int w;

	for (size_t i = 0; i < DSFS_ARRAY_LEN(ops); i++)
		if (!strcmp(op, ops[i][0]))
			word = ops[i][1];
	if ((!word && strcmp(op, "~")) || !*field || strlen(field) >= sizeof(prop) || n == 0 ||
	    strspn(field, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") < strlen(field) ||
	    (n > 1 && (!word || strcmp(word, "eq"))))
		return false;
	for (size_t i = 0; field[i]; i++)
		prop[i] = field[i] == '.' ? '/' : field[i];
	prop[strlen(field)] = '\0';
	for (size_t i = 0; i < n; i++)
		if (word && dsfs_dialect_typed_literal(values[i]))
			return false;
	if (!word)
		w = snprintf(expr, sizeof(expr), "contains(%s,", prop);
	else
		w = snprintf(expr, sizeof(expr), n > 1 ? "%s in (" : "%s %s ", prop, word);
	o = (size_t)w;
	if (!dsfs_dialect_odata_literals(expr, sizeof(expr), &o, values, n))
		return false;
	if (!word || n > 1) {
		expr[o++] = ')';
		expr[o] = '\0';
	}
	if (!(enc = dsfs_names_url_segment(expr)))
		return false;
	w = snprintf(buf, len, "filter=%s", enc);
	free(enc);
	return w > 0 && (size_t)w < len;
}

/* The regional hosts; the older *.data.cloud.hpe.com also serve DSCC's /api/v1 (-o api= decides). */
static bool claims_url(const char *url)
{
	return dsfs_dialect_host_ends(url, ".api.greenlake.hpe.com") ||
		dsfs_dialect_host_ends(url, ".data.cloud.hpe.com");
}

const struct dsfs_dialect dsfs_dialect_greenlake = {
	.name = "greenlake",
	.summary = "HPE GreenLake APIs for data services, virtualization and backup (v1beta1)",
	.url_example = "https://us-west.api.greenlake.hpe.com",
	.url_path = "",
	.probe = OPS "?limit=1",
	.root = &root,
	.auth = &auth,
	.paging = { .limit_param = "limit", .start_param = "offset", .total_field = "total", .null_is_empty = true },
	.tasks_dir = "tasks",
	.events = &events,
	.task = {
		.state_field = "state", .progress_field = "progressPercent", .error_field = "error",
		.poll_field = "suggestedPollingIntervalSeconds", .log_field = "logMessages",
		.log_time_field = "timestamp", .log_message_field = "message",
		.succeeded = (const char *const[]) { "SUCCEEDED", NULL },
		.failed = (const char *const[]) { "FAILED", NULL },
		.cancelled = (const char *const[]) { "CANCELLED", NULL },
		.timedout = (const char *const[]) { "TIMEDOUT", NULL },
	},
	/* the current {httpStatusCode, message, errorCode, debugId}, or 2024's {error, errorCode, traceId} */
	.error_fields = (const char *const[]) { "message", "error", NULL },
	.edit_method = "PATCH",
	.edit_type = MERGE_PATCH,
	.filter = filter,
	.claims_url = claims_url,
};
