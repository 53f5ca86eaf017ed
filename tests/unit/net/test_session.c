// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for src/net/session.c through the transport seam: logging in,
 * logging in again exactly once on 401 (a change resent only when the
 * server refused it unseen), renewal before a token runs out, logout, and
 * the reasons recorded.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "fakeapi.h"
#include "tap.h"

static int call(struct dsfs_session *s, const char *method, const char *path, const char *body)
{
	struct dsfs_request req = { .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0 };
	struct dsfs_response resp = { 0 };
	int ret = dsfs_session_call(s, &req, &resp, false);

	dsfs_response_clear(&resp);
	return ret;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static void test_login_and_calls(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");
	struct dsfs_session_health h;

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	is_int(dsfs_session_login(s), 0, "a login succeeds");
	is_int(fake_count(f, "POST", "/session", 200), 1, "it is one POST /session");
	is_int(call(s, "GET", "/server", NULL), 0, "a call after it succeeds");
	is_int(call(s, "GET", "/server", NULL), 0, "and another");
	ok(fake_log_at(f, 1)->authenticated && fake_log_at(f, 2)->authenticated, "each carries the session's header");
	is_int(fake_count(f, "POST", "/session", -1), 1, "calls reuse the login: no second POST /session");
	is_int(dsfs_session_logins(s), 1, "the session counts one login");
	dsfs_session_health(s, &h);
	ok(h.logged_in && h.reachable && !h.last_error[0], "health: logged in, reachable, no error");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_first_call_logs_in(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	is_int(call(s, "GET", "/server", NULL), 0, "a call with no login yet logs in first");
	ok(fake_log_n(f) == 2 && !strcmp(fake_log_at(f, 0)->path, "/session") &&
		   !strcmp(fake_log_at(f, 1)->path, "/server"),
	   "the login goes before the call, which is sent once");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_relogin_on_401(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");
	char why[600];

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	fake_answer(f, "POST", "/server/s1?action=split", 202, "{\"taskUri\":\"/tasks/t1\"}");
	dsfs_session_login(s);
	fake_expire(f);
	fake_log_clear(f);
	is_int(call(s, "GET", "/server", NULL), 0, "a GET answered 401 succeeds after logging in again");
	is_int(fake_count(f, "POST", "/session", 200), 1, "one login again");
	ok(fake_count(f, "GET", "/server", 401) == 1 && fake_count(f, "GET", "/server", 200) == 1,
	   "the GET is sent twice: refused, then answered");

	fake_expire(f);
	fake_log_clear(f);
	is_int(call(s, "POST", "/server/s1?action=split", "{}"), 0,
	       "an action answered 401 succeeds after logging in again");
	is_int(fake_count(f, "POST", "/server/s1", 202), 1, "the server acts on the action exactly once");
	is_int(fake_count(f, "POST", "/server/s1", 401), 1, "the one it refused unseen (401) is the only other send");
	is_int(fake_count(f, "POST", "/session", -1), 1, "one login again for it");

	/* a 401 the new login does not cure: no loop */
	fake_answer(f, "GET", "/forbidden", 401, "{\"error\":\"not for you\"}");
	fake_log_clear(f);
	dsfs_err_clear();
	is_int(call(s, "GET", "/forbidden", NULL), -EACCES, "a 401 after logging in again is EACCES");
	ok(fake_count(f, "GET", "/forbidden", -1) == 2 && fake_count(f, "POST", "/session", -1) == 1,
	   "sent twice with one login between, never a third time");
	ok(dsfs_err_describe(why, sizeof(why)) && strstr(why, "not for you") && strstr(why, "/forbidden"),
	   "the reason names the path and the server's message: %s", why);
	dsfs_session_free(s);
	fake_free(f);
}

static void test_changes_never_resent(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");

	dsfs_session_login(s);
	fake_answer(f, "POST", "/server/s1?action=split", 0, NULL);
	fake_answer(f, "DELETE", "/server/s1/volume/v1", 500, "{\"error\":\"internal\"}");
	ok(call(s, "POST", "/server/s1?action=split", "{}") < 0, "an action whose answer never came fails");
	is_int(fake_count(f, "POST", "/server/s1", -1), 1, "and is not sent again");
	is_int(call(s, "DELETE", "/server/s1/volume/v1", NULL), -EIO, "a DELETE answered 500 is EIO");
	is_int(fake_count(f, "DELETE", "/server/s1/volume/v1", -1), 1, "and is not sent again");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_refused_relogin(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");
	struct dsfs_session_health h;
	char why[600];

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	dsfs_session_login(s);
	fake_expire(f);
	fake_refuse_logins(f, true);
	fake_log_clear(f);
	dsfs_err_clear();
	is_int(call(s, "GET", "/server", NULL), -EACCES, "a refused login again (changed password) is EACCES");
	ok(dsfs_err_describe(why, sizeof(why)) && strstr(why, "credentials were refused"),
	   "with the server's reason: %s", why);
	dsfs_session_health(s, &h);
	ok(strstr(h.last_error, "POST /session: HTTP 401"), "health shows the refused login: %s", h.last_error);
	is_int(call(s, "GET", "/server", NULL), -EACCES, "a call right after it is EACCES too");
	is_int(fake_count(f, "POST", "/session", -1), 1,
	       "without another login: one just refused holds the next off, never a storm of them");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_logout(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	dsfs_session_login(s);
	dsfs_session_logout(s);
	ok(fake_count(f, "DELETE", "/session", 204) == 1 && fake_log_at(f, 1)->authenticated,
	   "logout sends DELETE /session with the session's header");
	is_int(call(s, "GET", "/server", NULL), 0, "a call after logout logs in anew");
	ok(fake_count(f, "POST", "/session", -1) == 2 && fake_count(f, "GET", "/server", 401) == 0,
	   "with a new login first, not a 401 of the ended one");
	dsfs_session_free(s);
	is_int(fake_count(f, "DELETE", "/session", -1), 2, "freeing a logged-in session logs it out");
	fake_free(f);

	f = fake_new();
	s = fake_session(f, "backupdr");
	dsfs_session_login(s);
	dsfs_session_free(s);
	ok(fake_count(f, "DELETE", "/session/current", 204) == 1, "backupdr logs out with DELETE /session/current");
	fake_free(f);
}

static void test_probe(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	dsfs_session_login(s);
	is_int(dsfs_session_probe(s), 0, "the probe after a login succeeds");
	ok(fake_count(f, "GET", "/server?limit=1&start=0", 200) == 1, "it is one GET of the smallest page");

	fake_expire(f);
	fake_log_clear(f);
	is_int(dsfs_session_probe(s), -EACCES, "a probe answered 401 is EACCES");
	is_int(fake_count(f, "POST", "/session", -1), 0, "and is not followed by another login");
	dsfs_session_free(s);
	fake_free(f);
}

static void test_tokens(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "dscc");
	const struct fake_req *grant;

	fake_answer(f, "GET", "/api/v1/tasks", 200, "{\"items\":[]}");
	fake_set_expires_in(f, 0.3);
	is_int(dsfs_session_login(s), 0, "dscc logs in with a client-credentials grant");
	grant = fake_log_at(f, 0);
	ok(grant && !strncmp(grant->path, "https://", 8) && grant->body &&
		   strstr(grant->body, "grant_type=client_credentials") && strstr(grant->body, "client_id=client"),
	   "the grant is a form POSTed to the token service");
	is_int(call(s, "GET", "/api/v1/tasks", NULL), 0, "a call carries the bearer token");
	sleep_s(0.3);
	is_int(call(s, "GET", "/api/v1/tasks", NULL), 0, "a call as the token runs out succeeds");
	ok(fake_count(f, "POST", NULL, 200) == 2 && fake_count(f, NULL, NULL, 401) == 0,
	   "the token was renewed before the call: no 401 seen");
	dsfs_session_free(s);
	fake_free(f);
}

struct racer {
	struct dsfs_session *s;
	int ret;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	r->ret = call(r->s, "GET", "/server", NULL);
	return NULL;
}

static void test_concurrent_401s(void)
{
	struct fake_api *f = fake_new();
	struct dsfs_session *s = fake_session(f, "storageplugin");
	struct racer r[8];
	pthread_t th[8];
	int failed = 0;

	fake_answer(f, "GET", "/server", 200, "{\"servers\":[]}");
	dsfs_session_login(s);
	fake_expire(f);
	fake_log_clear(f);
	for (int i = 0; i < 8; i++) {
		r[i].s = s;
		pthread_create(&th[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		failed += r[i].ret != 0;
	}
	is_int(failed, 0, "eight threads meeting 401 at once all succeed");
	is_int(fake_count(f, "POST", "/session", -1), 1, "with one login again between them");
	dsfs_session_free(s);
	fake_free(f);
}

int main(void)
{
	test_login_and_calls();
	test_first_call_logs_in();
	test_relogin_on_401();
	test_changes_never_resent();
	test_refused_relogin();
	test_logout();
	test_probe();
	test_tokens();
	test_concurrent_401s();
	return done_testing();
}
