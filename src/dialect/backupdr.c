// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Google Cloud Backup and DR management console API (the Actifio Global
 * Manager API, under /actifio) as a table and its hooks: appliances, hosts,
 * applications with their backups, disk pools, templates, profiles and
 * SLAs, and jobs as the tasks view. A client logs in with POST /session,
 * with a Google bearer token (pasted, or obtained by signing a JWT with a
 * service account's key) or HTTP Basic (on-premises AGM), and carries the
 * session in the backupdr-management-session header. Actions answer 204 and
 * name no job: the job is looked up in /jobstatus.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/errmap.h"
#include "util/log.h"
#include "format/names.h"
#include "util/privfile.h"
#include "net/session.h"


/* Every list answers {"items": [...], "count": <items in this answer>}. */
#define BDR_LIST .list_key = "items", .id_field = "id", .get_one = true

#define SESSION_HEADER "backupdr-management-session: Actifio "
#define GOOGLE_TOKEN_URL "https://oauth2.googleapis.com/token"
#define CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"

/* ---- the tree --------------------------------------------------------------------- */

static const struct dsfs_file_desc backup_files[] = { DSFS_OBJECT_FILE("backup.json") };

/* From a backup's directory: the hosts at the top of the tree. */
#define HOSTS_FROM_BACKUP "../../../../hosts"

/*
 * The bodies' fields (BackupNowRest, MountRest, RestoreRest, the clone's),
 * with the types of the published API (V11.0.4): its ids are strings, so
 * policy.id=4006 is sent as "4006". The optional fields are the ones the
 * management console's own PowerShell clients (AGMPowerCLI, AGMPowerLib)
 * send: poweronvm and migratevm with a mount, restoreoptions (restore and
 * mount), provisioningoptions (mount and clone), selectedobjects (mount).
 * Options lists are taken as written.
 */
// clang-format off
#define IMAGE_OPTIONS { "restoreoptions", DSFS_T_ARRAY }, { "provisioningoptions", DSFS_T_ARRAY }, \
	{ "selectedobjects", DSFS_T_ARRAY }
// clang-format on

// clang-format off
static const struct dsfs_action backup_actions[] = {
	{ .verb = "mount", .subpath = "/mount", .required = DSFS_REQUIRE("host.id"),
	  .fields = DSFS_FIELDS({ "host.id", DSFS_T_STRING }, { "label", DSFS_T_STRING }, { "poweronvm", DSFS_T_BOOLEAN },
				{ "migratevm", DSFS_T_BOOLEAN }, IMAGE_OPTIONS),
	  .refs = DSFS_REFS({ "host.id", HOSTS_FROM_BACKUP }) },
	{ .verb = "unmount", .subpath = "/unmount", .no_body = true },
	/* restore writes the image back over the application; expire deletes the image */
	{ .verb = "restore", .subpath = "/restore", .fields = DSFS_FIELDS({ "label", DSFS_T_STRING }, IMAGE_OPTIONS),
	  .destroys = true },
	{ .verb = "expire", .subpath = "/expire", .no_body = true, .destroys = true },
	{ .verb = "clone", .subpath = "/clone",
	  .fields = DSFS_FIELDS({ "host.id", DSFS_T_STRING }, { "appname", DSFS_T_STRING }, { "label", DSFS_T_STRING },
				IMAGE_OPTIONS),
	  .refs = DSFS_REFS({ "host.id", HOSTS_FROM_BACKUP }) },
};
// clang-format on

/* backups/new: back up now, with a policy of the application's template. */
// clang-format off
static const struct dsfs_action backup_create = {
	.fields = DSFS_FIELDS({ "policy.id", DSFS_T_STRING }, { "label", DSFS_T_STRING }, { "backuptype", DSFS_T_STRING }),
	.required = DSFS_REQUIRE("policy.id"), .bare_field = "label", .target = "/application/{id}/backup",
};
// clang-format on

/*
 * Objects say when they last changed in "modifydate" (epoch microseconds,
 * like every time of the API): their files' mtime, so rsync -a sees a change.
 */
// clang-format off
static const struct dsfs_kind backup = {
	.name = "backup", .dir_name = "backups", .segment = "/backup?filter=appid:%3D{id}", BDR_LIST,
	.scope_field = "appid",
	.name_field = "backupname", .time_field = "backupdate", DSFS_FILES(backup_files), DSFS_ACTIONS(backup_actions),
	.update_field = "modifydate",
	.create = &backup_create,
};
// clang-format on

static const struct dsfs_file_desc application_files[] = { DSFS_OBJECT_FILE("application.json") };
static const struct dsfs_kind *const application_children[] = { &backup };

// clang-format off
static const struct dsfs_edit_field application_edit[] = {
	{ .field = "description" }, { .field = "friendlytype" }, { .field = "pathname" },
};
// clang-format on

// clang-format off
static const struct dsfs_kind application = {
	.name = "application", .dir_name = "applications", .segment = "application", BDR_LIST,
	.name_field = "appname", .time_field = "modifydate", DSFS_FILES(application_files),
	.update_field = "modifydate",
	DSFS_CHILDREN(application_children), DSFS_EDIT(application_edit),
};
// clang-format on

static const struct dsfs_file_desc appliance_files[] = { DSFS_OBJECT_FILE("appliance.json") };
// clang-format off
static const struct dsfs_kind appliance = {
	.name = "appliance", .dir_name = "appliances", .segment = "cluster", BDR_LIST,
	.name_field = "name", .time_field = "syncdate", DSFS_FILES(appliance_files),
	.update_field = "modifydate",
};
// clang-format on

static const struct dsfs_file_desc host_files[] = { DSFS_OBJECT_FILE("host.json") };
/* PUT is an incremental update (the management API's general concepts, 3.2): the body carries only what changed. */
// clang-format off
static const struct dsfs_edit_field host_edit[] = {
	{ .field = "name" }, { .field = "hostname" }, { .field = "friendlypath" }, { .field = "description" },
	{ .field = "ipaddress" },
};
// clang-format on
// clang-format off
static const struct dsfs_kind host = {
	.name = "host", .dir_name = "hosts", .segment = "host", BDR_LIST,
	.name_field = "name", .time_field = "modifydate", DSFS_FILES(host_files), DSFS_EDIT(host_edit),
	.update_field = "modifydate",
};
// clang-format on

static const struct dsfs_file_desc diskpool_files[] = { DSFS_OBJECT_FILE("diskpool.json") };
static const struct dsfs_capacity diskpool_capacity[] = {
	{ .total_field = "capacity_mb", .free_field = "free_mb", .unit = 1024 * 1024 },
};
// clang-format off
static const struct dsfs_kind diskpool = {
	.name = "disk pool", .dir_name = "diskpools", .segment = "diskpool", BDR_LIST,
	.name_field = "name", .time_field = "modifydate", DSFS_FILES(diskpool_files),
	.update_field = "modifydate",
	DSFS_CAPACITY(diskpool_capacity),
};
// clang-format on

static const struct dsfs_file_desc template_files[] = { DSFS_OBJECT_FILE("template.json") };
static const struct dsfs_edit_field template_edit[] = { { .field = "name" }, { .field = "description" } };
// clang-format off
static const struct dsfs_kind template = {
	.name = "template", .dir_name = "templates", .segment = "slt", BDR_LIST,
	.name_field = "name", DSFS_FILES(template_files), DSFS_EDIT(template_edit),
};
// clang-format on

static const struct dsfs_file_desc profile_files[] = { DSFS_OBJECT_FILE("profile.json") };
// clang-format off
static const struct dsfs_edit_field profile_edit[] = {
	{ .field = "name" }, { .field = "description" }, { .field = "performancepool" },
};
// clang-format on
// clang-format off
static const struct dsfs_kind profile = {
	.name = "profile", .dir_name = "profiles", .segment = "slp", BDR_LIST,
	.name_field = "name", .time_field = "modifydate", DSFS_FILES(profile_files), DSFS_EDIT(profile_edit),
	.update_field = "modifydate",
};
// clang-format on

/* An SLA has no name of its own: it is named by its id. */
static const struct dsfs_file_desc sla_files[] = { DSFS_OBJECT_FILE("sla.json") };
// clang-format off
static const struct dsfs_kind sla = {
	.name = "SLA", .dir_name = "slas", .segment = "sla", BDR_LIST,
	.name_field = "id", .time_field = "modifydate", DSFS_FILES(sla_files),
	.update_field = "modifydate",
};
// clang-format on

static int job_fetch(struct dsfs_session *s, const char *url, json_object **out);

/* jobs/<job>/: the job object and its state, progress, log and error lines, read through the list. */
static const struct dsfs_file_desc job_files[] = {
	{ .name = "job.json", .flags = DSFS_FILE_DIRECT, .fetch = job_fetch },
	{ .name = "state", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_state, .fetch = job_fetch },
	{ .name = "progress", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_progress, .fetch = job_fetch },
	{ .name = "log", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_log, .fetch = job_fetch },
	{ .name = "error", .flags = DSFS_FILE_DIRECT, .derive = dsfs_task_error, .fetch = job_fetch },
};

/*
 * Jobs are named by their ids, as tasks are, so jobs/latest and a job's id
 * agree. The published API (V11.0.4) has GET /jobstatus, a list, and no
 * GET /jobstatus/{id}: one job is read through the list (job_read).
 */
// clang-format off
static const struct dsfs_kind job = {
	.name = "job", .dir_name = "jobs", .segment = "jobstatus", BDR_LIST,
	.name_field = "id", .time_field = "queuedate", DSFS_FILES(job_files), .is_task = true,
};
// clang-format on

static const struct dsfs_kind *const root_children[] = {
	&appliance, &host, &application, &diskpool, &template, &profile, &sla, &job,
};

/* The console's own audit records; dates are microseconds, filtered as numbers. */
// clang-format off
static const struct dsfs_events_desc events = {
	.url = "/localaudit", .list_key = "items", .id_field = "id", .time_field = "issuedate",
	.newest_query = "sort=issuedate:desc&limit=100&offset=0",
	.since_query = "filter=issuedate:%3E%3D{since}&sort=issuedate:asc&limit=1000&offset={offset}",
	.since_page = 1000,
};
// clang-format on

// clang-format off
static const struct dsfs_kind root = {
	.name = "root", DSFS_CHILDREN(root_children),
};
// clang-format on

/* ---- logging in --------------------------------------------------------------------- */

static const char *const auth_keys[] = { "token", "key_file", "token_url", "username", "password", NULL };

static int check_credentials(const struct dsfs_credentials *c, char *err, size_t errlen)
{
	const char *key = dsfs_credentials_get(c, "key_file");

	if (key && key[0] != '/') {
		/* it is read again at every login, after the daemon has left its directory */
		snprintf(err, errlen, "key_file=%s: give the key file's absolute path", key);
		return -EINVAL;
	}
	if (dsfs_credentials_get(c, "token") || key ||
	    (dsfs_credentials_get(c, "username") && dsfs_credentials_get(c, "password")))
		return 0;
	snprintf(err, errlen,
		 "Backup and DR needs a credentials file (-o credentials=FILE, mode 0600) with a "
		 "key_file=... line (a service account's JSON key, mode 0600), or token=... (an access token, "
		 "e.g. from gcloud auth print-access-token), or username=... and password=... (on-premises)");
	return -EINVAL;
}

/* base64url without padding, as JWTs are written. malloc'd, or NULL. */
static char *b64url(const unsigned char *data, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	int len;

	if (!out)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

/* header.claims signed with RS256 by the PEM private key pem. malloc'd, or NULL with err set. */
static char *sign_jwt(const char *claims, const char *pem, char *err, size_t errlen)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	char *h = b64url((const unsigned char *)header, strlen(header));
	char *c = b64url((const unsigned char *)claims, strlen(claims));
	char *input = NULL, *sig64 = NULL, *jwt = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!key) {
		snprintf(err, errlen, "the key file's private_key is not a PEM private key");
		goto out;
	}
	if (!h || !c || !md || asprintf(&input, "%s.%s", h, c) < 0) {
		input = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = malloc(siglen)) ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
		snprintf(err, errlen, "signing the JWT with the key file's private_key failed");
		goto out;
	}
	sig64 = b64url(sig, siglen);
	if (!sig64 || asprintf(&jwt, "%s.%s", input, sig64) < 0)
		jwt = NULL;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	BIO_free(bio);
	free(h);
	free(c);
	free(input);
	free(sig);
	free(sig64);
	return jwt;
}

/* A service account's key is a few KiB: a larger file is not one (and is not read whole). */
#define KEY_FILE_MAX (1 << 20)

/* Reads a service account's JSON key file (private like a credentials file). NULL with err set. */
static json_object *read_key_file(const char *path, char *err, size_t errlen)
{
	json_object *o = NULL, *v;
	char *text;
	size_t len = 0, n;
	int ret;
	FILE *f = dsfs_privfile_open(path, "key file", err, errlen, &ret);

	if (!f)
		return NULL;
	/* one buffer, never grown: a realloc would leave copies of the key behind */
	text = malloc(KEY_FILE_MAX + 2);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "key file %s: out of memory", path);
		return NULL;
	}
	while (len <= KEY_FILE_MAX && (n = fread(text + len, 1, KEY_FILE_MAX + 1 - len, f)) > 0)
		len += n;
	fclose(f);
	if (len > KEY_FILE_MAX) {
		snprintf(err, errlen,
			 "key file %s is too large (over %d MiB): a service account's JSON key is a "
			 "few KiB",
			 path, KEY_FILE_MAX >> 20);
		goto out;
	}
	text[len] = '\0';
	o = json_tokener_parse(text);
	if (!o || !json_object_object_get_ex(o, "client_email", &v) || !json_object_is_type(v, json_type_string) ||
	    !json_object_object_get_ex(o, "private_key", &v) || !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen,
			 "key file %s is not a service account's JSON key (client_email and "
			 "private_key)",
			 path);
		json_object_put(o);
		o = NULL;
	}
out:
	explicit_bzero(text, len);
	free(text);
	return o;
}

static const char *string_of(json_object *o, const char *field)
{
	json_object *v;

	return json_object_object_get_ex(o, field, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v)
		: NULL;
}

/* A Google access token for the service account of key_file: a signed JWT exchanged at the token endpoint. */
static int service_account_token(struct dsfs_session *s, const struct dsfs_credentials *c, char **token,
				 double *expires_in)
{
	const char *url = dsfs_credentials_get(c, "token_url");
	json_object *key, *claims = NULL;
	char err[300], *jwt = NULL, *form = NULL;
	time_t now = time(NULL);
	int ret = -ENOMEM;

	key = read_key_file(dsfs_credentials_get(c, "key_file"), err, sizeof(err));
	if (!key) {
		dsfs_err_record("read", dsfs_credentials_get(c, "key_file"), 0, err);
		return -EACCES; /* no way to log in: as a refused login */
	}
	if (!url)
		url = string_of(key, "token_uri") ?: GOOGLE_TOKEN_URL;
	claims = json_object_new_object();
	if (claims) {
		json_object_object_add(claims, "iss", json_object_new_string(string_of(key, "client_email")));
		json_object_object_add(claims, "scope", json_object_new_string(CLOUD_PLATFORM));
		/* the audience is Google's endpoint, whichever endpoint is asked */
		json_object_object_add(claims, "aud",
				       json_object_new_string(string_of(key, "token_uri") ?: GOOGLE_TOKEN_URL));
		json_object_object_add(claims, "iat", json_object_new_int64(now));
		json_object_object_add(claims, "exp", json_object_new_int64(now + 3600));
		jwt = sign_jwt(
			json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			string_of(key, "private_key"), err, sizeof(err));
		if (!jwt) {
			dsfs_err_record("POST", url, 0, err);
			ret = -EINVAL;
		}
	}
	if (jwt && (form = malloc(strlen(jwt) * 3 + 256))) {
		form[0] = '\0';
		dsfs_session_form_add(form, strlen(jwt) * 3 + 256, "grant_type", JWT_BEARER);
		dsfs_session_form_add(form, strlen(jwt) * 3 + 256, "assertion", jwt);
		ret = dsfs_session_token_grant(s, url, form, token, expires_in);
	}
	free(form); /* wiped by the grant */
	free(jwt);
	json_object_put(claims);
	json_object_put(key);
	return ret;
}

/* POST /session, with the bearer token (Backup and DR) or HTTP Basic (on-premises AGM). */
static int login(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out)
{
	struct dsfs_request req = { .method = "POST", .path = "/session" };
	struct dsfs_response resp = { 0 };
	const char *hdrs[] = { NULL, NULL };
	char *token = NULL, *hdr = NULL;
	double expires_in = 0;
	json_object *o = NULL;
	int ret = 0;

	if (dsfs_credentials_get(c, "token"))
		token = strdup(dsfs_credentials_get(c, "token"));
	else if (dsfs_credentials_get(c, "key_file"))
		ret = service_account_token(s, c, &token, &expires_in);
	if (ret)
		return ret;
	if (token) {
		if (asprintf(&hdr, "Authorization: Bearer %s", token) < 0) {
			hdr = NULL;
			ret = -ENOMEM;
			goto out;
		}
		hdrs[0] = hdr;
		req.headers = hdrs;
	} else {
		req.username = dsfs_credentials_get(c, "username");
		req.password = dsfs_credentials_get(c, "password");
	}
	ret = dsfs_session_send(s, &req, &resp);
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		if (!string_of(o, "session_id")) {
			dsfs_err_record("POST", "/session", resp.status, "answer has no session_id");
			ret = -EIO;
		} else if (!(out->id = strdup(string_of(o, "session_id")))) {
			ret = -ENOMEM;
		} else {
			out->token = token;
			out->expires_in = expires_in; /* the token's: a new one brings a new session */
			token = NULL;
		}
	}
out:
	if (hdr)
		explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	if (token)
		explicit_bzero(token, strlen(token));
	free(token);
	json_object_put(o);
	dsfs_response_clear(&resp);
	return ret;
}

static size_t headers(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs)
{
	int n = snprintf(buf, len, SESSION_HEADER "%s", l->id);

	hdrs[0] = buf;
	if (!l->token || n < 0 || (size_t)n + 1 >= len)
		return 1;
	snprintf(buf + n + 1, len - (size_t)n - 1, "Authorization: Bearer %s", l->token);
	hdrs[1] = buf + n + 1;
	return 2;
}

static void logout(struct dsfs_session *s, const struct dsfs_login *l)
{
	char buf[8192];
	const char *hdrs[3] = { NULL, NULL, NULL };
	struct dsfs_request req = { .method = "DELETE", .path = "/session/current", .headers = hdrs };
	struct dsfs_response resp = { 0 };

	headers(l, buf, sizeof(buf), hdrs);
	if (dsfs_session_send(s, &req, &resp) < 0)
		dsfs_log(DSFS_LOG_DEBUG, "logout: %s", resp.status ? "refused" : resp.message);
	explicit_bzero(buf, sizeof(buf));
	dsfs_response_clear(&resp);
}

// clang-format off
static const struct dsfs_auth auth = {
	.keys = auth_keys, .check = check_credentials, .login = login, .headers = headers, .logout = logout,
	.idle_expiry = 3600, /* a session ends after an hour without calls */
};
// clang-format on

/* ---- finding an action's job --------------------------------------------------------- */

/* The job class each action starts. */
static const char *job_class(const struct dsfs_action *a)
{
	static const struct {
		const char *verb, *class;
	} classes[] = {
		{ "mount", "mount" },       { "unmount", "unmount" }, { "restore", "restore" },
		{ "expire", "expiration" }, { "clone", "clone" },
	};

	for (size_t i = 0; a && a->verb && i < DSFS_ARRAY_LEN(classes); i++)
		if (!strcmp(a->verb, classes[i].verb))
			return classes[i].class;
	return "snapshot"; /* backups/new */
}

/* GETs path and returns its parsed answer, or NULL. */
static json_object *get(struct dsfs_session *s, const char *path)
{
	struct dsfs_request req = { .method = "GET", .path = path };
	struct dsfs_response resp = { 0 };
	json_object *o = NULL;

	if (dsfs_session_call(s, &req, &resp, false) == 0)
		o = json_tokener_parse(resp.body ? resp.body : "");
	dsfs_response_clear(&resp);
	return o;
}

/*
 * An action answers 204 and names no job: the job is the newest one of the
 * action's class for the application acted on, and, for a backup's action,
 * for that backup where jobs say which backup they act on (backupid). A
 * backup's action finds the application through the backup. A DELETE
 * starts no job.
 */
static char *job_of(struct dsfs_session *s, const struct dsfs_action *a, const char *url,
		    const struct dsfs_response *resp)
{
	char id[128] = "", bid[128] = "", path[512], *out = NULL;
	json_object *o = NULL, *items;
	const char *appid = NULL;

	if (!a || resp->status < 200 || resp->status >= 300)
		return NULL;
	if (sscanf(url, "/application/%127[^/]/backup", id) == 1) {
		appid = id;
	} else if (sscanf(url, "/backup/%127[^/]/", bid) == 1) {
		snprintf(path, sizeof(path), "/backup/%s", bid);
		o = get(s, path);
		if (string_of(o, "appid") && strlen(string_of(o, "appid")) < sizeof(id)) {
			strcpy(id, string_of(o, "appid"));
			appid = id;
		}
		json_object_put(o);
		o = NULL;
	}
	if (!appid)
		goto out;
	snprintf(path, sizeof(path),
		 "/jobstatus?filter=appid:%%3D%s&filter=jobclass:%%3D%s&sort=queuedate:desc"
		 "&limit=20",
		 appid, job_class(a));
	o = get(s, path);
	if (o && json_object_object_get_ex(o, "items", &items) && json_object_is_type(items, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(items) && !out; i++) {
			json_object *j = json_object_array_get_idx(items, i), *b;

			/* a job that says it acts on another backup is another action's */
			if (bid[0] && json_object_object_get_ex(j, "backupid", &b) &&
			    !json_object_is_type(b, json_type_null) && strcmp(json_object_get_string(b), bid))
				continue;
			if (string_of(j, "id"))
				out = strdup(string_of(j, "id"));
		}
	}
	if (!out)
		dsfs_log(DSFS_LOG_WARN,
			 "POST %s: accepted, but no %s job for it is listed; jobs/latest names "
			 "nothing",
			 url, job_class(a));
out:
	json_object_put(o);
	return out;
}

/*
 * One job, from the list: /jobstatus/<id> (a job's URL in the tree) is asked
 * as /jobstatus?filter=id:=<id>, and the answer's item with that id is the
 * job. None: the job is gone (ENOENT). The console answers 404 to a GET of
 * /jobstatus/<id>, so that URL is never sent.
 */
static int job_read(struct dsfs_session *s, const char *url, bool (*cancelled)(void), json_object **out)
{
	static const char prefix[] = "/jobstatus/";
	struct dsfs_request req = { .method = "GET", .cancelled = cancelled };
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *items;
	char *path = NULL, *id = NULL, *enc = NULL, *text = NULL;
	int ret;

	*out = NULL;
	if (strncmp(url, prefix, sizeof(prefix) - 1) || !url[sizeof(prefix) - 1] ||
	    strchr(url + sizeof(prefix) - 1, '/')) {
		dsfs_err_record("GET", url, 0, "not a job's URL");
		return -EINVAL;
	}
	/* the URL holds the id as a path segment; the filter holds it as a query value */
	id = dsfs_names_url_unescape(url + sizeof(prefix) - 1);
	if (!id || asprintf(&text, "id:=%s", id) < 0) {
		text = NULL;
		ret = -ENOMEM;
		goto out;
	}
	enc = dsfs_names_url_segment(text);
	if (!enc || asprintf(&path, "/jobstatus?filter=%s", enc) < 0) {
		path = NULL;
		ret = -ENOMEM;
		goto out;
	}
	req.path = path;
	ret = dsfs_session_call(s, &req, &resp, false);
	if (ret)
		goto out;
	o = json_tokener_parse(resp.body ? resp.body : "");
	if (!o || !json_object_object_get_ex(o, "items", &items) || !json_object_is_type(items, json_type_array)) {
		dsfs_err_record("GET", path, resp.status, "the answer is not a list of jobs");
		ret = -EIO;
		goto out;
	}
	ret = -ENOENT;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *j = json_object_array_get_idx(items, i);

		/* a server that ignored the filter lists other jobs too: only this id is this job */
		if (string_of(j, "id") && !strcmp(string_of(j, "id"), id) && json_object_is_type(j, json_type_object)) {
			*out = json_object_get(j);
			ret = 0;
			break;
		}
	}
	if (ret)
		dsfs_err_record("GET", path, resp.status, "no job with this id is listed");
out:
	json_object_put(o);
	dsfs_response_clear(&resp);
	free(path);
	free(enc);
	free(text);
	free(id);
	return ret;
}

static int job_fetch(struct dsfs_session *s, const char *url, json_object **out)
{
	return job_read(s, url, NULL, out);
}

/*
 * filter= (the management API's general concepts, section 5): "field:=value" (several of one field are
 * any of them), "field:>=value", "field:<=value", "field:=|value" (the
 * text contains value; strings only); the server says which
 * fields it filters (400 for others: dsfs lists instead). A value starting
 * with '=', '|' or 'b' would read as another operator after "=": not asked.
 */
static bool filter(const char *field, const char *op, const char *const *values, size_t n, char *buf, size_t len)
{
	const char *sep = !strcmp(op, "=") ? ":="
		: !strcmp(op, ">=")        ? ":>="
		: !strcmp(op, "<=")        ? ":<="
		: !strcmp(op, "~")         ? ":=|"
					   : NULL;
	size_t o = 0;

	if (!sep || !*field || strchr(field, ':') || (n > 1 && strcmp(op, "=")))
		return false;
	for (size_t i = 0; i < n; i++) {
		char *text, *enc;
		int w;

		if (strchr("=|b", values[i][0]) && values[i][0] && strcmp(op, "~"))
			return false;
		if (asprintf(&text, "%s%s%s", field, sep, values[i]) < 0)
			return false;
		enc = dsfs_names_url_segment(text);
		free(text);
		w = enc ? snprintf(buf + o, len - o, "%sfilter=%s", i ? "&" : "", enc) : -1;
		free(enc);
		if (w < 0 || (size_t)w >= len - o)
			return false;
		o += (size_t)w;
	}
	return n > 0;
}

static bool claims_url(const char *url)
{
	const char *p = strstr(url, "://"), *end;
	size_t n = strlen(url);

	if (n >= 8 && !strcmp(url + n - 8, "/actifio"))
		return true;
	if (!p)
		return false;
	p += 3;
	end = p + strcspn(p, ":/?#");
	return end - p >= 31 && !strncmp(end - 31, ".backupdr.googleusercontent.com", 31);
}

const struct dsfs_dialect dsfs_dialect_backupdr = {
	.name = "backupdr",
	.summary = "Google Cloud Backup and DR management console",
	.url_example = "https://bmc-...googleusercontent.com/actifio",
	.url_path = "/actifio",
	.probe = "/host?limit=1&offset=0",
	.root = &root,
	.auth = &auth,
	/* "count" is the page's length; HEAD answers the list's (the management API's general concepts, 3.3) */
	.paging = { .limit_param = "limit", .start_param = "offset", .count_header = "Actifio-Count" },
	.tasks_dir = "jobs",
	.events = &events,
	.task = {
		.state_field = "status", .progress_field = "progress", .error_field = "message",
		.succeeded = (const char *const[]) { "succeeded", NULL },
		.failed = (const char *const[]) { "failed", NULL },
		.cancelled = (const char *const[]) { "canceled", "cancelled", NULL },
	},
	.error_fields = (const char *const[]) { "err_message", "err_code", NULL },
	.claims_url = claims_url,
	.filter = filter,
	.task_of = job_of,
	.task_get = job_read,
};
