// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Sessions and tokens, whatever the dialect: what a login produced (a
 * session id, a token, or both) lives only in memory and only in its
 * request headers; it is never logged. How to log in, which headers carry
 * it and how to log out are the dialect's auth hooks; this file owns when:
 * one login at a time, concurrent 401s renewing once (a generation number
 * tells a thread whether someone else has already logged in again since it
 * sent its request), renewal shortly before expires_in or the server's
 * idle expiry runs out, and the one probe of the API after the first login.
 */
#include "net/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/locks.h"
#include "util/log.h"

struct dsfs_session {
	struct dsfs_transport net; /* where requests go (src/net/transport.h) */
	struct dsfs_session_api api;
	struct dsfs_credentials cred;
	struct dsfs_mutex lock;
	struct dsfs_login cur; /* what the current login produced; cur.id NULL when logged out */
	double expires_at;     /* monotonic time cur.id expires, 0 if unknown */
	double lifetime;       /* its expires_in */
	double last_call;      /* monotonic time of the last authenticated call, for idle expiry */
	unsigned long gen;     /* bumped by every successful login */
	unsigned long logins;
	struct timespec failed_at; /* last failed login, to hold off a storm of them */
	int failed_err;
	bool logging_in; /* a login request is under way (the lock is not held meanwhile) */
	pthread_cond_t login_done;
	/* health, for .dsfs/status */
	bool unreachable;
	char last_error[300];
	double last_error_at;
};


/* Notes how a request went, for dsfs_session_health. Takes the lock. */
static void note_health(struct dsfs_session *s, const struct dsfs_request *req, const struct dsfs_response *resp,
			int ret)
{
	char msg[200];

	dsfs_lock(&s->lock);
	s->unreachable = ret < 0 && resp->status == 0;
	if (ret < 0 || resp->status >= 400) {
		if (resp->status) {
			dsfs_session_error_message(s->api.error_fields, resp, msg, sizeof(msg));
			snprintf(s->last_error, sizeof(s->last_error), "%s %s: HTTP %ld: %s", req->method, req->path,
				 resp->status, msg);
		} else {
			snprintf(s->last_error, sizeof(s->last_error), "%s %s: %s", req->method, req->path,
				 resp->message);
		}
		s->last_error_at = dsfs_clock_now();
	}
	dsfs_unlock(&s->lock);
}

const char *dsfs_credentials_get(const struct dsfs_credentials *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->key[i], key))
			return c->value[i];
	return NULL;
}

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

int dsfs_credentials_set(struct dsfs_credentials *c, const char *key, const char *value)
{
	char *v = strdup(value);
	size_t i;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < c->n && strcmp(c->key[i], key); i++)
		;
	if (i == c->n) {
		if (c->n == DSFS_CRED_MAX || !(c->key[i] = strdup(key))) {
			wipe_free(v);
			return c->n == DSFS_CRED_MAX ? -E2BIG : -ENOMEM;
		}
		c->value[i] = NULL;
		c->n++;
	}
	wipe_free(c->value[i]);
	c->value[i] = v;
	return 0;
}

void dsfs_credentials_clear(struct dsfs_credentials *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->key[i]);
		wipe_free(c->value[i]);
	}
	memset(c, 0, sizeof(*c));
}

static void login_clear(struct dsfs_login *l)
{
	wipe_free(l->id);
	wipe_free(l->token);
	memset(l, 0, sizeof(*l));
}

struct dsfs_session *dsfs_session_new(const struct dsfs_transport *net, const struct dsfs_session_api *api,
				      const struct dsfs_credentials *cred)
{
	struct dsfs_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->net = *net;
	s->api = *api;
	dsfs_mutex_init(&s->lock, DSFS_LOCK_SESSION);
	pthread_cond_init(&s->login_done, NULL);
	for (size_t i = 0; i < cred->n; i++) {
		if (dsfs_credentials_set(&s->cred, cred->key[i], cred->value[i])) {
			dsfs_session_free(s);
			return NULL;
		}
	}
	return s;
}

void dsfs_session_free(struct dsfs_session *s)
{
	if (!s)
		return;
	dsfs_session_logout(s);
	dsfs_credentials_clear(&s->cred);
	login_clear(&s->cur);
	dsfs_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->login_done);
	free(s);
}

void dsfs_session_error_message(const char *const *error_fields, const struct dsfs_response *resp, char *buf,
				size_t len)
{
	static const char *const fallback[] = { "error", NULL };
	const char *const *fields = error_fields ? error_fields : fallback;
	json_object *o, *e;
	size_t i;

	if (!resp->body || !resp->len) {
		snprintf(buf, len, "(no message)");
		return;
	}
	o = json_tokener_parse(resp->body);
	for (i = 0; o && fields[i]; i++) {
		if (!json_object_object_get_ex(o, fields[i], &e) || json_object_is_type(e, json_type_null))
			continue;
		if (json_object_is_type(e, json_type_string))
			snprintf(buf, len, "%s", json_object_get_string(e));
		else /* error objects and codes */
			snprintf(buf, len, "%s", json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return;
	}
	json_object_put(o);
	/* Not the error body the API documents: keep a short, printable excerpt. */
	for (i = 0; i + 1 < len && i < resp->len && i < 160; i++)
		buf[i] = (resp->body[i] >= 0x20 && resp->body[i] < 0x7f) ? resp->body[i] : ' ';
	buf[i] = '\0';
}

/*
 * The URL a request went to, for a log line about a server that did not
 * answer: where it could not be reached, with any user:password@ of the
 * base URL left out.
 */
static void shown_url(const char *base, const char *path, char *buf, size_t len)
{
	const char *scheme_end, *host, *at, *slash;

	if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8)) {
		base = path;
		path = "";
	}
	scheme_end = strstr(base, "://");
	host = scheme_end ? scheme_end + 3 : base;
	slash = strchr(host, '/');
	at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
	snprintf(buf, len, "%.*s%s%s", (int)(host - base), base, at ? at + 1 : host, path);
}

static int record_failure(struct dsfs_session *s, const struct dsfs_request *req, const struct dsfs_response *resp,
			  int ret)
{
	char msg[600], tries[64] = "", url[1024];

	if (resp->attempts > 1)
		snprintf(tries, sizeof(tries), " (gave up after %d attempts)", resp->attempts);
	if (ret < 0) {
		/* no answer: the log names the whole URL, so a wrong host or port shows */
		shown_url(s->net.ops->base(s->net.ctx), req->path, url, sizeof(url));
		snprintf(msg, sizeof(msg), "%s%s", resp->message, tries);
		dsfs_err_record(req->method, url, 0, msg);
		return ret;
	}
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	dsfs_session_error_message(s->api.error_fields, resp, msg, sizeof(msg) - sizeof(tries));
	strcat(msg, tries);
	dsfs_err_record(req->method, req->path, resp->status, msg);
	ret = dsfs_errmap_status(resp->status);
	return ret ? ret : -EIO; /* 1xx and 3xx are not answers the API gives */
}

void dsfs_session_form_add(char *buf, size_t len, const char *name, const char *value)
{
	size_t o = strlen(buf);

	o += (size_t)snprintf(buf + o, len - o, "%s%s=", o ? "&" : "", name);
	for (const unsigned char *p = (const unsigned char *)value; *p && o + 4 < len; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "%%%02X", *p);
	}
	buf[o] = '\0';
}

int dsfs_session_token_grant(struct dsfs_session *s, const char *url, char *form, char **token, double *expires_in)
{
	struct dsfs_request req = {
		.method = "POST",
		.content_type = "application/x-www-form-urlencoded",
		.path = url,
		.body = form,
		.body_len = strlen(form),
	};
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *tok, *exp;
	int ret = dsfs_session_send(s, &req, &resp);

	explicit_bzero(form, strlen(form));
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		if (!o || !json_object_object_get_ex(o, "access_token", &tok) ||
		    !json_object_is_type(tok, json_type_string)) {
			dsfs_err_record("POST", url, resp.status, "answer has no access_token");
			ret = -EIO;
		} else {
			*expires_in =
				json_object_object_get_ex(o, "expires_in", &exp) ? json_object_get_double(exp) : 0;
			*token = strdup(json_object_get_string(tok));
			ret = *token ? 0 : -ENOMEM;
		}
	}
	json_object_put(o);
	dsfs_response_clear(&resp);
	return ret;
}

const char *dsfs_session_credential(struct dsfs_session *s, const char *key)
{
	return dsfs_credentials_get(&s->cred, key); /* never changed after dsfs_session_new */
}

double dsfs_session_timeout(struct dsfs_session *s)
{
	return s->net.ops->timeout(s->net.ctx);
}

const char *dsfs_session_base(struct dsfs_session *s)
{
	return s->net.ops->base(s->net.ctx);
}

int dsfs_session_send(struct dsfs_session *s, const struct dsfs_request *req, struct dsfs_response *resp)
{
	int ret = s->net.ops->request(s->net.ctx, req, resp);

	note_health(s, req, resp, ret);
	return record_failure(s, req, resp, ret);
}

/* Installs what a login produced (taking ownership of l's strings). Lock held. */
static void set_login(struct dsfs_session *s, struct dsfs_login *l)
{
	login_clear(&s->cur);
	s->cur = *l;
	memset(l, 0, sizeof(*l));
	s->lifetime = s->cur.expires_in;
	s->expires_at = s->cur.expires_in > 0 ? dsfs_clock_now() + s->cur.expires_in : 0;
	s->last_call = dsfs_clock_now();
	s->gen++;
	s->logins++;
}

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/*
 * Logs in if the session generation is still seen_gen. Called with s->lock
 * held; drops it while the request runs, so other threads (and
 * .dsfs/status) are not stuck behind a slow login. Threads that want a
 * login while one is under way wait for its outcome instead of sending
 * their own.
 */
static int login_locked(struct dsfs_session *s, unsigned long seen_gen)
{
	struct dsfs_login l = { 0 };
	int ret;

	for (;;) {
		if (s->gen != seen_gen && s->cur.id)
			return 0; /* another thread has renewed it meanwhile */
		if (s->failed_err && since(&s->failed_at) < 1.0)
			return s->failed_err; /* a login just failed: do not hammer the server */
		if (!s->logging_in)
			break;
		dsfs_cond_wait(&s->login_done, &s->lock);
	}
	s->logging_in = true;
	dsfs_unlock(&s->lock);
	ret = s->api.auth->login(s, &s->cred, &l);
	dsfs_lock(&s->lock);
	s->logging_in = false;
	if (ret == 0) {
		set_login(s, &l);
		s->failed_err = 0;
	} else {
		login_clear(&l);
		s->failed_err = ret;
		clock_gettime(CLOCK_MONOTONIC, &s->failed_at);
	}
	pthread_cond_broadcast(&s->login_done);
	return ret;
}

int dsfs_session_login(struct dsfs_session *s)
{
	int ret;

	dsfs_lock(&s->lock);
	s->failed_err = 0;
	ret = login_locked(s, s->gen);
	dsfs_unlock(&s->lock);
	return ret;
}

int dsfs_session_probe(struct dsfs_session *s)
{
	const char *probe = s->api.probe, *hdrs[3] = { NULL, NULL, NULL };
	const char *base = s->net.ops->base(s->net.ctx);
	struct dsfs_request req = { .method = "GET" };
	struct dsfs_response resp = { 0 };
	char hdr[12288], *url;
	bool proven;
	int ret;

	dsfs_lock(&s->lock);
	proven = s->cur.proven;
	if (probe && !proven && s->cur.id) {
		s->api.auth->headers(&s->cur, hdr, sizeof(hdr), hdrs);
		s->last_call = dsfs_clock_now();
	}
	dsfs_unlock(&s->lock);
	if (!probe || proven)
		return 0;
	/* the whole URL, so that the line reporting a failure shows where the API was looked for */
	if (asprintf(&url, "%s%s", base, probe) < 0) {
		explicit_bzero(hdr, sizeof(hdr));
		return -ENOMEM;
	}
	if (!hdrs[0]) {
		dsfs_err_record("GET", url, 0, "not logged in");
		ret = -EACCES;
	} else {
		/* sent once, without a login again on 401: a login that just succeeded and a 401 is an answer */
		req.path = url;
		req.headers = hdrs;
		ret = dsfs_session_send(s, &req, &resp);
	}
	explicit_bzero(hdr, sizeof(hdr));
	dsfs_response_clear(&resp);
	free(url);
	return ret;
}

void dsfs_session_logout(struct dsfs_session *s)
{
	struct dsfs_login l;

	dsfs_lock(&s->lock);
	l = s->cur;
	memset(&s->cur, 0, sizeof(s->cur));
	dsfs_unlock(&s->lock);
	if (l.id && s->api.auth->logout)
		s->api.auth->logout(s, &l);
	login_clear(&l);
}

/* True when the current login is about to run out (its lifetime, or the server's idle expiry). Lock held. */
static bool running_out(struct dsfs_session *s)
{
	double now = dsfs_clock_now(), idle = s->api.auth->idle_expiry;

	if (s->cur.id && s->expires_at > 0 && now > s->expires_at - (s->lifetime > 600 ? 60 : s->lifetime / 10))
		return true;
	return s->cur.id && idle > 0 && now - s->last_call > idle - (idle > 600 ? 60 : idle / 10);
}

int dsfs_session_call(struct dsfs_session *s, const struct dsfs_request *req, struct dsfs_response *resp,
		      bool anonymous)
{
	struct dsfs_request r = *req;
	const char *hdrs[10] = { 0 };
	char hdr[12288]; /* bearer tokens (JWTs) run to kilobytes */
	unsigned long gen = 0;
	int attempt, ret = 0, i;

	for (attempt = 0; attempt < 2; attempt++) {
		size_t nauth = 0;
		const char *auth[3] = { 0 };

		hdr[0] = '\0';
		if (!anonymous) {
			dsfs_lock(&s->lock);
			if (running_out(s) && login_locked(s, s->gen) < 0)
				dsfs_log(DSFS_LOG_WARN, "renewing the login early failed; using it until it ends");
			if (!s->cur.id)
				ret = login_locked(s, s->gen);
			if (s->cur.id) {
				nauth = s->api.auth->headers(&s->cur, hdr, sizeof(hdr), auth);
				s->last_call = dsfs_clock_now();
			}
			gen = s->gen;
			dsfs_unlock(&s->lock);
			if (!nauth)
				return ret ? ret : -EACCES;
			for (i = 0; req->headers && req->headers[i] && i < 6; i++)
				hdrs[i] = req->headers[i];
			for (size_t k = 0; k < nauth && k < 2; k++)
				hdrs[i++] = auth[k];
			hdrs[i] = NULL;
			r.headers = hdrs;
		}
		ret = s->net.ops->request(s->net.ctx, &r, resp);
		note_health(s, req, resp, ret);
		if (ret < 0 || resp->status != 401 || anonymous || attempt > 0)
			break;
		/* Expired or ended session: log in again (once for all threads) and resend. */
		dsfs_lock(&s->lock);
		ret = login_locked(s, gen);
		dsfs_unlock(&s->lock);
		if (ret < 0) {
			explicit_bzero(hdr, sizeof(hdr));
			dsfs_log(DSFS_LOG_ERR,
				 "%s %s: the session ended and logging in again failed; check the credentials",
				 req->method, req->path);
			return ret;
		}
		dsfs_response_clear(resp);
		dsfs_log(DSFS_LOG_DEBUG, "session renewed after 401 on %s %s", req->method, req->path);
	}
	explicit_bzero(hdr, sizeof(hdr));
	return record_failure(s, req, resp, ret);
}

void dsfs_session_health(struct dsfs_session *s, struct dsfs_session_health *out)
{
	dsfs_lock(&s->lock);
	out->reachable = !s->unreachable;
	out->logged_in = s->cur.id != NULL;
	snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
	out->since_error = s->last_error_at > 0 ? dsfs_clock_now() - s->last_error_at : -1;
	dsfs_unlock(&s->lock);
}

unsigned long dsfs_session_logins(struct dsfs_session *s)
{
	unsigned long n;

	dsfs_lock(&s->lock);
	n = s->logins;
	dsfs_unlock(&s->lock);
	return n;
}
