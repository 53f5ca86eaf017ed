// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the greenlake dialect (src/dialect/greenlake.c) and the
 * general hooks it is the first to use, through the transport seam: the
 * service folders (dsfs_kind.folder), "items": null (null_is_empty), a
 * collection's own page limit and one that comes whole (page_max,
 * unpaged), edits sent as merge-patches with the version that must go
 * with them (edit_method, edit_type, dsfs_edit_field.always), an action's
 * media type (dsfs_action.content_type), tags named key=value
 * (name_value_field), children/ only where an operation has some
 * (shown_if), the filter it writes, the hosts
 * it claims (and the ones it shares with DSCC), the workspace's token
 * endpoint, both spellings of an operation's log, and df from folders.
 */
#include <errno.h>

#include "fakeapi.h"
#include "format/ctl.h"
#include "tap.h"

#define DS "/data-services/v1beta1"
#define VZ "/virtualization/v1beta1"
#define BR "/backup-recovery/v1beta1"

static const struct fake_list_opts envelope = { .key = "items", .total_field = "total" };

struct env {
	struct fake_api *f;
	struct dsfs_session *s;
	struct dsfs_cache *c;
	const struct dsfs_dialect *d;
	char names[8192];
};

static void env_start(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->f = fake_new();
	e->s = fake_session(e->f, "greenlake");
	e->d = dsfs_dialect_named("greenlake");
	e->c = dsfs_cache_new(e->d, e->s,
			      &(struct dsfs_cache_opts){ .ttl = 60, .page_size = 1000, .max_bytes = 64 << 20 });
}

static void env_stop(struct env *e)
{
	dsfs_cache_free(e->c);
	dsfs_session_free(e->s);
	fake_free(e->f);
}

static void test_tree(void)
{
	struct env e;

	env_start(&e);
	is_int(fake_listdir(e.c, "", e.names, sizeof(e.names)), 0, "the root lists");
	is_str(e.names, "tasks issues data-services virtualization backup-recovery",
	       "tasks/, issues/ and a folder per service");
	is_int(fake_listdir(e.c, "virtualization", e.names, sizeof(e.names)), 0, "a folder lists");
	is_str(e.names, "virtual-machines datastores hypervisor-clusters hypervisor-hosts hypervisor-managers",
	       "its collections, without a request");
	is_int(fake_log_n(e.f), 0, "listing the root and a folder asks nothing (no login either)");
	fake_list(e.f, VZ "/virtual-machines", &envelope, fake_items("vm", 3, 0));
	is_int(fake_listdir(e.c, "virtualization/virtual-machines", e.names, sizeof(e.names)), 0,
	       "a collection in a folder lists");
	is_str(e.names, "vm0 vm1 vm2", "its objects by name");
	ok(fake_find(e.f, "GET", VZ "/virtual-machines?limit=1000&offset=0") != NULL,
	   "from the family's path, a page of the largest size");
	fake_list(e.f, BR "/virtual-machines/vm-001/backups", &envelope, fake_items("b", 2, 0));
	is_int(fake_listdir(e.c, "virtualization/virtual-machines/vm1/backups", e.names, sizeof(e.names)), 0,
	       "a machine's backups list");
	is_str(e.names, "b0 b1", "from the backup-recovery family's path of that machine");
	env_stop(&e);
}

static void test_tags_and_children(void)
{
	struct dsfs_loc loc;
	struct env e;

	env_start(&e);
	fake_list(e.f, DS "/tags", &envelope,
		  json_tokener_parse("[{\"id\": \"t1\", \"key\": \"env\", \"value\": \"prod\"},"
				     " {\"id\": \"t2\", \"key\": \"env\", \"value\": \"dev\"},"
				     " {\"id\": \"t3\", \"key\": \"owner\", \"value\": \"a/b\"}]"));
	is_int(fake_listdir(e.c, "data-services/tags", e.names, sizeof(e.names)), 0, "tags list");
	is_str(e.names, "env=dev env=prod owner=a%2Fb", "named key=value (name_value_field), escaped as names are");
	fake_list(e.f, DS "/async-operations", &envelope,
		  json_tokener_parse("[{\"id\": \"op1\", \"state\": \"RUNNING\", \"hasChildOperations\": true},"
				     " {\"id\": \"op2\", \"state\": \"RUNNING\", \"hasChildOperations\": false},"
				     " {\"id\": \"op3\", \"state\": \"RUNNING\", \"childTasks\": [{\"name\": \"x\"}]},"
				     " {\"id\": \"op4\", \"state\": \"RUNNING\", \"childTasks\": []}]"));
	is_int(fake_listdir(e.c, "tasks", e.names, sizeof(e.names)), 0, "operations list");
	fake_log_clear(e.f);
	is_int(fake_listdir(e.c, "tasks/op1", e.names, sizeof(e.names)), 0, "an operation's directory lists");
	is_str(e.names, "task.json state progress log error children", "children/ where it says it has some");
	is_int(fake_listdir(e.c, "tasks/op3", e.names, sizeof(e.names)), 0, "and in the 2024 spelling");
	is_str(e.names, "task.json state progress log error children", "(a non-empty childTasks)");
	is_int(fake_listdir(e.c, "tasks/op2", e.names, sizeof(e.names)), 0, "one without children lists");
	is_str(e.names, "task.json state progress log error", "without children/ (shown_if)");
	is_int(fake_listdir(e.c, "tasks/op4", e.names, sizeof(e.names)), 0, "an empty childTasks");
	is_str(e.names, "task.json state progress log error", "is none either");
	is_int(fake_resolve(e.c, "tasks/op2/children", &loc), -ENOENT, "and its children/ is not there");
	is_int(fake_log_n(e.f), 0, "telling costs no request: the listing's objects say it");
	fake_listdir(e.c, "tasks/op1/children", e.names, sizeof(e.names));
	ok(fake_find(e.f, "GET", DS "/async-operations?filter=parent%2Fid%20eq%20%27op1%27&limit=1000&offset=0") !=
		   NULL,
	   "the children of one are the operations whose parent/id is its id");
	fake_listdir(e.c, "tasks/op3/children", e.names, sizeof(e.names));
	ok(fake_find(e.f, "GET",
		     DS "/async-operations?filter=parentTask%2FresourceUri%20eq%20%27%2Fdata-services"
			"%2Fv1beta1%2Fasync-operations%2Fop3%27&limit=1000&offset=0") != NULL,
	   "in the 2024 spelling, those whose parentTask/resourceUri is its URI (one name, two kinds)");
	env_stop(&e);
}

static void test_items_null(void)
{
	struct env e;

	env_start(&e);
	fake_answer(e.f, "GET", DS "/tags", 200, "{\"items\": null, \"count\": 0, \"offset\": 0, \"total\": 0}");
	is_int(fake_listdir(e.c, "data-services/tags", e.names, sizeof(e.names)), 0,
	       "\"items\": null is an empty list, not a malformed answer");
	is_str(e.names, "", "with nothing in it");
	fake_answer(e.f, "GET", DS "/settings", 200, "{\"count\": 0}");
	is_int(fake_listdir(e.c, "data-services/settings", e.names, sizeof(e.names)), -EIO,
	       "an answer without items at all is still malformed");
	env_stop(&e);
}

static void test_page_limits(void)
{
	struct env e;
	size_t before;

	env_start(&e);
	fake_list(e.f, DS "/issues", &envelope, fake_items("i", 150, 0));
	is_int(fake_listdir(e.c, "issues", e.names, sizeof(e.names)), 0, "150 issues list");
	ok(fake_find(e.f, "GET", DS "/issues?limit=100&offset=0") &&
		   fake_find(e.f, "GET", DS "/issues?limit=100&offset=100"),
	   "in pages of 100, the most issues serves, though page_size is 1000");
	is_int(fake_count(e.f, "GET", DS "/issues", -1), 2, "two pages in all");
	fake_list(e.f, DS "/storage-locations", &envelope, fake_items("loc", 4, 0));
	before = fake_count(e.f, "GET", NULL, -1);
	is_int(fake_listdir(e.c, "data-services/storage-locations", e.names, sizeof(e.names)), 0,
	       "storage locations list");
	is_int(fake_count(e.f, "GET", DS "/storage-locations", -1), 1, "in one request");
	ok(fake_find(e.f, "GET", DS "/storage-locations?") == NULL, "with no paging parameters (they take none)");
	is_int(fake_count(e.f, "GET", NULL, -1) - before, 1, "and nothing else");
	env_stop(&e);
}

static void test_edit(void)
{
	struct dsfs_post_result res = { 0 };
	struct dsfs_blob *base = NULL;
	const struct fake_req *r;
	struct dsfs_loc loc;
	json_object *o, *body;
	const char *text;
	struct env e;

	env_start(&e);
	o = json_tokener_parse("[{\"id\": \"i-1\", \"name\": \"Datastore full\", \"generation\": 3, "
			       "\"snoozedFor\": \"NONE\", \"updatedAt\": \"2024-06-01T00:00:00Z\"}]");
	fake_list(e.f, DS "/issues", &envelope, o);
	ok(fake_open(e.c, "issues/i-1/issue.json", &base) == 0 && base, "an issue's file reads");
	is_int(fake_resolve(e.c, "issues/i-1/issue.json", &loc), 0, "and resolves");
	fake_answer(e.f, "PATCH", DS "/issues/i-1", 202, NULL);
	o = json_tokener_parse(base ? base->data : "{}");
	json_object_object_add(o, "snoozedFor", json_object_new_string("DAY"));
	text = json_object_to_json_string(o);
	is_int(dsfs_cache_edit(e.c, &loc, base, text, strlen(text), NULL, NULL, &res), 0, "a snooze is sent");
	is_int(fake_count(e.f, "PATCH", NULL, -1), 1, "as one PATCH");
	is_int(fake_count(e.f, "PUT", NULL, -1), 0, "never a PUT");
	r = fake_find(e.f, "PATCH", DS "/issues/i-1");
	ok(r && r->content_type && !strcmp(r->content_type, "application/merge-patch+json"),
	   "Content-Type application/merge-patch+json (%s)", r && r->content_type ? r->content_type : "none");
	body = json_tokener_parse(r && r->body ? r->body : "");
	is_str(body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "",
	       "{\"snoozedFor\":\"DAY\",\"generation\":3}",
	       "only the changed field, and the generation it was read at");
	json_object_put(body);
	dsfs_post_result_clear(&res);
	json_object_object_add(o, "snoozedFor", json_object_new_string("NONE"));
	json_object_object_add(o, "generation", json_object_new_int(4));
	text = json_object_to_json_string(o);
	fake_log_clear(e.f);
	is_int(dsfs_cache_edit(e.c, &loc, base, text, strlen(text), NULL, NULL, &res), -EINVAL,
	       "editing the generation itself is refused");
	ok(res.error && strstr(res.error, "generation"), "saying which field (%s)", res.error ? res.error : "");
	is_int(fake_count(e.f, "PATCH", NULL, -1), 0, "and nothing is sent");
	dsfs_post_result_clear(&res);
	json_object_put(o);
	dsfs_blob_unref(base);
	dsfs_cache_put(e.c, &loc);
	env_stop(&e);
}

static void test_approve(void)
{
	struct dsfs_post_result res = { 0 };
	const struct dsfs_action *a = NULL, *create, *actions;
	json_object *body = NULL;
	size_t nactions;
	const struct fake_req *r;
	struct dsfs_loc loc;
	char err[256];
	struct env e;

	env_start(&e);
	fake_list(e.f, DS "/dual-auth-operations", &envelope,
		  json_tokener_parse("[{\"id\": \"da-1\", \"name\": \"dual-auth-1\", \"state\": \"PENDING\"}]"));
	is_int(fake_resolve(e.c, "data-services/dual-auth-operations/da-1/action", &loc), 0,
	       "a dual-auth operation has an action file");
	dsfs_cache_ctl_actions(&loc, &create, &actions, &nactions);
	is_int(dsfs_ctl_parse("approve", 7, create, actions, nactions, &a, &body, err, sizeof(err)), 0,
	       "approve parses");
	fake_answer(e.f, "PATCH", DS "/dual-auth-operations/da-1", 202, NULL);
	is_int(a ? dsfs_cache_post(e.c, &loc, a, body, &res) : -1, 0, "approve is sent");
	r = fake_find(e.f, "PATCH", DS "/dual-auth-operations/da-1");
	ok(r && r->body && !strcmp(r->body, "{\"state\":\"APPROVED\"}"), "as a PATCH of its state (%s)",
	   r && r->body ? r->body : "none");
	ok(r && r->content_type && !strcmp(r->content_type, "application/merge-patch+json"), "a merge-patch");
	dsfs_post_result_clear(&res);
	json_object_put(body);
	dsfs_cache_put(e.c, &loc);
	env_stop(&e);
}

static void filter_is(const char *field, const char *op, const char *const *v, size_t n, const char *want,
		      const char *what)
{
	const struct dsfs_dialect *d = dsfs_dialect_named("greenlake");
	char buf[512] = "";
	bool ok_ = d->filter(field, op, v, n, buf, sizeof(buf));

	if (want)
		ok(ok_ && !strcmp(buf, want), "%s: %s", what, ok_ ? buf : "(refused)");
	else
		ok(!ok_, "%s", what);
}

static void test_filter(void)
{
	filter_is("state", "=", (const char *[]){ "RUNNING" }, 1, "filter=state%20eq%20%27RUNNING%27", "eq");
	filter_is("name", "!=", (const char *[]){ "a" }, 1, "filter=name%20ne%20%27a%27", "ne");
	filter_is("updatedAt", ">", (const char *[]){ "2024-01-01T00:00:00Z" }, 1,
		  "filter=updatedAt%20gt%20%272024-01-01T00%3A00%3A00Z%27", "gt");
	filter_is("updatedAt", "<", (const char *[]){ "2024" }, 1, NULL,
		  "a number-looking value is not quoted: refused");
	filter_is("parent.id", "=", (const char *[]){ "x" }, 1, "filter=parent%2Fid%20eq%20%27x%27",
		  "a nested field is written with /");
	filter_is("name", "=", (const char *[]){ "it's" }, 1, "filter=name%20eq%20%27it%27%27s%27",
		  "a quote inside is doubled");
	filter_is("name", "~", (const char *[]){ "db" }, 1, "filter=contains%28name%2C%27db%27%29", "contains()");
	filter_is("severity", "=", (const char *[]){ "CRITICAL", "WARNING" }, 2,
		  "filter=severity%20in%20%28%27CRITICAL%27%2C%27WARNING%27%29", "any of: in (...)");
	filter_is("state", ">=", (const char *[]){ "a" }, 1, NULL, "ge: the API has none, refused");
	filter_is("a b", "=", (const char *[]){ "a" }, 1, NULL, "a field name with a space: refused");
}

static void test_claims(void)
{
	bool guessed = true;
	const struct dsfs_dialect *d = dsfs_dialect_for_url("https://us-west.api.greenlake.hpe.com", &guessed);

	ok(d && !strcmp(d->name, "greenlake") && !guessed, "a GreenLake regional host is greenlake's");
	d = dsfs_dialect_for_url("https://us1.data.cloud.hpe.com", &guessed);
	ok(d && !strcmp(d->name, "dscc") && guessed, "a *.data.cloud.hpe.com host serves both: dscc, as a guess");
	d = dsfs_dialect_for_url("https://example.com/actifio", &guessed);
	ok(d && !strcmp(d->name, "backupdr") && !guessed, "a URL one dialect claims is still no guess");
}

static void test_workspace(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_transport net = fake_transport(f);
	struct dsfs_credentials cred = { 0 };
	struct dsfs_session_api api = dsfs_dialect_session_api(dsfs_dialect_named("greenlake"));
	struct dsfs_session *s;

	dsfs_credentials_set(&cred, "client_id", "client");
	dsfs_credentials_set(&cred, "client_secret", "secret");
	dsfs_credentials_set(&cred, "workspace", "ws 1");
	s = dsfs_session_new(&net, &api, &cred);
	dsfs_session_login(s);
	ok(fake_find(f, "POST", "https://global.api.greenlake.hpe.com/authorization/v2/oauth2/ws%201/token") != NULL,
	   "with a workspace, the token comes from the workspace's endpoint");
	dsfs_session_free(s);
	dsfs_credentials_clear(&cred);
	fake_free(f);
	f = fake_new();
	s = fake_session(f, "greenlake");
	dsfs_session_login(s);
	ok(fake_find(f, "POST", "https://sso.common.cloud.hpe.com/as/token.oauth2") != NULL,
	   "without one, from HPE's SSO");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_log_spellings(void)
{
	const struct dsfs_dialect *d = dsfs_dialect_named("greenlake");
	const struct dsfs_kind *tasks = d->root->children[0];
	int i = dsfs_kind_file(tasks, "log");
	json_object *now = json_tokener_parse("{\"logMessages\": [{\"timestamp\": \"T1\", \"message\": \"one\"}]}");
	json_object *old = json_tokener_parse("{\"logMessages\": [{\"timestampAt\": \"T2\", \"message\": \"two\"}]}");
	struct dsfs_blob *a = i >= 0 ? tasks->files[i].derive(now, d) : NULL;
	struct dsfs_blob *b = i >= 0 ? tasks->files[i].derive(old, d) : NULL;

	ok(a && a->len == 7 && !memcmp(a->data, "T1 one\n", 7), "the log in the current spelling (timestamp)");
	ok(b && b->len == 7 && !memcmp(b->data, "T2 two\n", 7), "and in 2024's (timestampAt)");
	dsfs_blob_unref(a);
	dsfs_blob_unref(b);
	json_object_put(now);
	json_object_put(old);
}

static void test_space(void)
{
	struct dsfs_space sp = { 0 };
	struct dsfs_loc root;
	struct env e;

	env_start(&e);
	fake_list(e.f, VZ "/datastores", &envelope,
		  json_tokener_parse(
			  "[{\"id\": \"d1\", \"name\": \"ds1\", \"capacityInBytes\": 1000, \"capacityFree\": 400}]"));
	fake_list(e.f, BR "/protection-stores", &envelope,
		  json_tokener_parse("[{\"id\": \"p1\", \"name\": \"ps1\", \"maxCapacityInBytes\": 3000, "
				     "\"sizeOnDiskInBytes\": 1000}]"));
	dsfs_cache_root(e.c, &root);
	is_int(dsfs_cache_space(e.c, &root, &sp), 0, "df at the root");
	ok(sp.has_total && sp.total == 4000 && sp.free == 2400,
	   "sums the datastores and protection stores inside the folders (%llu of %llu free)",
	   (unsigned long long)sp.free, (unsigned long long)sp.total);
	dsfs_cache_put(e.c, &root);
	env_stop(&e);
}

int main(void)
{
	test_tree();
	test_tags_and_children();
	test_items_null();
	test_page_limits();
	test_edit();
	test_approve();
	test_filter();
	test_claims();
	test_workspace();
	test_log_spellings();
	test_space();
	return done_testing();
}
