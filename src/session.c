// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Sessions and tokens. The storage-plugin session id, or the DSCC bearer
 * token, lives only in memory and only in its request header; it is never
 * logged. Concurrent 401s renew once: a generation number tells a thread
 * whether someone else has already logged in again since it sent its
 * request. Tokens from the client-credentials exchange are renewed shortly
 * before expires_in runs out.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define SESSION_HEADER "x-storageplugin-sessionid"

struct dsfs_session {
	struct dsfs_http *http;
	const struct dsfs_dialect *dialect;
	char *username, *password, *array;
	char *client_id, *client_secret, *token_url, *pasted_token;
	pthread_mutex_t lock;
	char *id;               /* current session id or bearer token, or NULL */
	double expires_at;      /* BEARER: monotonic time the token expires, 0 if unknown */
	double lifetime;        /* BEARER: its expires_in */
	unsigned long gen;      /* bumped by every successful login */
	unsigned long logins;
	struct timespec failed_at; /* last failed login, to hold off a storm of them */
	int failed_err;
	bool logging_in;        /* a login request is under way (the lock is not held meanwhile) */
	pthread_cond_t login_done;
	/* health, for .dsfs/status */
	bool unreachable;
	char last_error[300];
	double last_error_at;
};

static double mono_now(void);

/* Notes how a request went, for dsfs_session_health. Takes the lock. */
static void note_health(struct dsfs_session *s, const struct dsfs_request *req, const struct dsfs_response *resp,
			int ret)
{
	char msg[200];

	pthread_mutex_lock(&s->lock);
	s->unreachable = ret < 0 && resp->status == 0;
	if (ret < 0 || resp->status >= 400) {
		if (resp->status) {
			dsfs_session_error_message(resp, msg, sizeof(msg));
			snprintf(s->last_error, sizeof(s->last_error), "%s %s: HTTP %ld: %s", req->method,
				 req->path, resp->status, msg);
		} else {
			snprintf(s->last_error, sizeof(s->last_error), "%s %s: %s", req->method, req->path,
				 resp->message);
		}
		s->last_error_at = mono_now();
	}
	pthread_mutex_unlock(&s->lock);
}

static bool copy(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

struct dsfs_session *dsfs_session_new(struct dsfs_http *http, const struct dsfs_dialect *dialect,
				      const struct dsfs_credentials *cred, const char *array)
{
	struct dsfs_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->http = http;
	s->dialect = dialect;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->login_done, NULL);
	if (!copy(&s->username, cred->username ? cred->username : "") ||
	    !copy(&s->password, cred->password ? cred->password : "") || !copy(&s->array, array) ||
	    !copy(&s->client_id, cred->client_id) || !copy(&s->client_secret, cred->client_secret) ||
	    !copy(&s->token_url, cred->token_url) || !copy(&s->pasted_token, cred->token)) {
		dsfs_session_free(s);
		return NULL;
	}
	return s;
}

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

void dsfs_session_free(struct dsfs_session *s)
{
	if (!s)
		return;
	dsfs_session_logout(s);
	free(s->username);
	wipe_free(s->password);
	free(s->array);
	free(s->client_id);
	wipe_free(s->client_secret);
	free(s->token_url);
	wipe_free(s->pasted_token);
	wipe_free(s->id);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->login_done);
	free(s);
}

void dsfs_session_error_message(const struct dsfs_response *resp, char *buf, size_t len)
{
	json_object *o, *e;
	size_t i;

	if (!resp->body || !resp->len) {
		snprintf(buf, len, "(no message)");
		return;
	}
	o = json_tokener_parse(resp->body);
	if (o && json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_string))
			snprintf(buf, len, "%s", json_object_get_string(e));
		else /* DSCC-style error objects */
			snprintf(buf, len, "%s", json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return;
	}
	json_object_put(o);
	/* Not the CONTRACT body: keep a short, printable excerpt. */
	for (i = 0; i + 1 < len && i < resp->len && i < 160; i++)
		buf[i] = (resp->body[i] >= 0x20 && resp->body[i] < 0x7f) ? resp->body[i] : ' ';
	buf[i] = '\0';
}

static int record_failure(const struct dsfs_request *req, const struct dsfs_response *resp, int ret)
{
	char msg[600], tries[64] = "";

	if (resp->attempts > 1)
		snprintf(tries, sizeof(tries), " (gave up after %d attempts)", resp->attempts);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s%s", resp->message, tries);
		dsfs_err_record(req->method, req->path, 0, msg);
		return ret;
	}
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	dsfs_session_error_message(resp, msg, sizeof(msg) - sizeof(tries));
	strcat(msg, tries);
	dsfs_err_record(req->method, req->path, resp->status, msg);
	ret = dsfs_errmap_status(resp->status);
	return ret ? ret : -EIO; /* 1xx and 3xx are not answers the API gives */
}

static double mono_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Appends name=value, form-encoded, to buf (of size len). */
static void form_add(char *buf, size_t len, const char *name, const char *value)
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

/* Installs a new session id or token (taking ownership of id). Lock held. */
static void set_id(struct dsfs_session *s, char *id, double expires_in)
{
	wipe_free(s->id);
	s->id = id;
	s->lifetime = expires_in;
	s->expires_at = expires_in > 0 ? mono_now() + expires_in : 0;
	s->gen++;
	s->logins++;
}

/*
 * BEARER: the OAuth2 client-credentials exchange, or a check of a pasted
 * token. Lock not held: it reads only what never changes. On success *id
 * gets the token (malloc'd) and *expires_in its lifetime (0: unknown).
 */
static int exchange_token(struct dsfs_session *s, char **id, double *expires_in)
{
	struct dsfs_response resp = { 0 };
	json_object *o = NULL, *tok, *exp;
	int ret;

	if (s->pasted_token) {
		/* Nothing to exchange: one cheap call tells whether the console still accepts it. */
		char hdr[4096];
		const char *hdrs[] = { hdr, NULL };
		struct dsfs_request req = { .method = "GET", .path = s->dialect->probe_path, .headers = hdrs };

		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", s->pasted_token);
		ret = dsfs_http_do(s->http, &req, &resp);
		explicit_bzero(hdr, sizeof(hdr));
		note_health(s, &req, &resp, ret);
		if (ret == 0 && resp.status == 401) {
			dsfs_err_record("GET", req.path, 401, "the access token was refused: it has expired or is "
				       "wrong; paste a new one (token=) into the credentials file and mount again");
			ret = -EACCES;
		} else {
			ret = record_failure(&req, &resp, ret);
		}
		if (ret == 0 && !(*id = strdup(s->pasted_token)))
			ret = -ENOMEM;
		*expires_in = 0;
		dsfs_response_clear(&resp);
		return ret;
	}
	{
		char form[2048] = "";
		struct dsfs_request req = {
			.method = "POST", .content_type = "application/x-www-form-urlencoded",
			.path = s->token_url ? s->token_url : s->dialect->token_path,
		};

		form_add(form, sizeof(form), "grant_type", "client_credentials");
		form_add(form, sizeof(form), "client_id", s->client_id ? s->client_id : "");
		form_add(form, sizeof(form), "client_secret", s->client_secret ? s->client_secret : "");
		req.body = form;
		req.body_len = strlen(form);
		ret = dsfs_http_do(s->http, &req, &resp);
		explicit_bzero(form, sizeof(form));
		note_health(s, &req, &resp, ret);
		ret = record_failure(&req, &resp, ret);
		if (ret == 0) {
			o = json_tokener_parse(resp.body ? resp.body : "");
			if (!o || !json_object_object_get_ex(o, "access_token", &tok) ||
			    !json_object_is_type(tok, json_type_string)) {
				dsfs_err_record("POST", req.path, resp.status, "answer has no access_token");
				ret = -EIO;
			} else {
				*expires_in = json_object_object_get_ex(o, "expires_in", &exp) ? json_object_get_double(exp) : 0;
				*id = strdup(json_object_get_string(tok));
				ret = *id ? 0 : -ENOMEM;
			}
		}
		json_object_put(o);
		dsfs_response_clear(&resp);
		return ret;
	}
}

/* SESSION: POST /session with HTTP Basic credentials. Lock not held. On success *id is malloc'd. */
static int exchange_session(struct dsfs_session *s, char **id)
{
	struct dsfs_request req = {
		.method = "POST", .path = "/session",
		.username = s->username, .password = s->password,
	};
	struct dsfs_response resp = { 0 };
	json_object *body, *o = NULL, *sid;
	int ret;

	body = json_object_new_object();
	if (!body)
		return -ENOMEM;
	if (s->array) {
		unsigned char tmp[sizeof(struct in6_addr)];
		bool is_ip = inet_pton(AF_INET, s->array, tmp) == 1 || inet_pton(AF_INET6, s->array, tmp) == 1;

		json_object_object_add(body, is_ip ? "ipAddress" : "hostname", json_object_new_string(s->array));
	}
	req.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	req.body_len = strlen(req.body);
	ret = dsfs_http_do(s->http, &req, &resp);
	note_health(s, &req, &resp, ret);
	ret = record_failure(&req, &resp, ret);
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		if (!o || !json_object_object_get_ex(o, "sessionId", &sid) ||
		    !json_object_is_type(sid, json_type_string)) {
			dsfs_err_record("POST", "/session", resp.status, "answer has no sessionId");
			ret = -EIO;
		} else {
			*id = strdup(json_object_get_string(sid));
			ret = *id ? 0 : -ENOMEM;
		}
	}
	json_object_put(o);
	json_object_put(body);
	dsfs_response_clear(&resp);
	return ret;
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
	double expires_in = 0;
	char *id = NULL;
	int ret;

	for (;;) {
		if (s->gen != seen_gen && s->id)
			return 0; /* another thread has renewed it meanwhile */
		if (s->failed_err && since(&s->failed_at) < 1.0)
			return s->failed_err; /* a login just failed: do not hammer the server */
		if (!s->logging_in)
			break;
		pthread_cond_wait(&s->login_done, &s->lock);
	}
	s->logging_in = true;
	pthread_mutex_unlock(&s->lock);
	if (s->dialect->auth == DSFS_AUTH_BEARER)
		ret = exchange_token(s, &id, &expires_in);
	else
		ret = exchange_session(s, &id);
	pthread_mutex_lock(&s->lock);
	s->logging_in = false;
	if (ret == 0) {
		set_id(s, id, expires_in);
		s->failed_err = 0;
	} else {
		s->failed_err = ret;
		clock_gettime(CLOCK_MONOTONIC, &s->failed_at);
	}
	pthread_cond_broadcast(&s->login_done);
	return ret;
}

int dsfs_session_login(struct dsfs_session *s)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	s->failed_err = 0;
	ret = login_locked(s, s->gen);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void dsfs_session_logout(struct dsfs_session *s)
{
	struct dsfs_response resp = { 0 };
	char hdr[512];
	const char *hdrs[] = { hdr, NULL };
	struct dsfs_request req = { .method = "DELETE", .path = "/session", .headers = hdrs };

	pthread_mutex_lock(&s->lock);
	if (s->id && s->dialect->auth == DSFS_AUTH_BEARER) {
		wipe_free(s->id); /* tokens simply lapse */
		s->id = NULL;
	} else if (s->id) {
		snprintf(hdr, sizeof(hdr), SESSION_HEADER ": %s", s->id);
		if (dsfs_http_do(s->http, &req, &resp) < 0 || resp.status >= 300)
			dsfs_log(DSFS_LOG_DEBUG, "logout: %s", resp.status ? "refused" : resp.message);
		explicit_bzero(hdr, sizeof(hdr));
		wipe_free(s->id);
		s->id = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	dsfs_response_clear(&resp);
}

int dsfs_session_call(struct dsfs_session *s, const struct dsfs_request *req,
		      struct dsfs_response *resp, bool anonymous)
{
	struct dsfs_request r = *req;
	const char *hdrs[8] = { 0 };
	char hdr[8192]; /* bearer tokens (JWTs) run to kilobytes */
	unsigned long gen = 0;
	int attempt, ret = 0, i;

	for (attempt = 0; attempt < 2; attempt++) {
		hdr[0] = '\0';
		if (!anonymous) {
			pthread_mutex_lock(&s->lock);
			if (s->id && s->expires_at > 0 &&
			    mono_now() > s->expires_at - (s->lifetime > 600 ? 60 : s->lifetime / 10)) {
				/* renew before it runs out rather than after a 401 */
				if (login_locked(s, s->gen) < 0)
					dsfs_log(DSFS_LOG_WARN, "renewing the access token early failed; using it until it expires");
			}
			if (!s->id)
				ret = login_locked(s, s->gen);
			if (s->id && s->dialect->auth == DSFS_AUTH_BEARER)
				snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", s->id);
			else if (s->id)
				snprintf(hdr, sizeof(hdr), SESSION_HEADER ": %s", s->id);
			gen = s->gen;
			pthread_mutex_unlock(&s->lock);
			if (!hdr[0])
				return ret ? ret : -EACCES;
			for (i = 0; req->headers && req->headers[i] && i < 6; i++)
				hdrs[i] = req->headers[i];
			hdrs[i] = hdr;
			hdrs[i + 1] = NULL;
			r.headers = hdrs;
		}
		ret = dsfs_http_do(s->http, &r, resp);
		note_health(s, req, resp, ret);
		if (ret < 0 || resp->status != 401 || anonymous || attempt > 0)
			break;
		/* Expired or ended session: log in again (once for all threads) and resend. */
		pthread_mutex_lock(&s->lock);
		ret = login_locked(s, gen);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0) {
			explicit_bzero(hdr, sizeof(hdr));
			dsfs_log(DSFS_LOG_ERR, "%s %s: the session ended and logging in again failed; check the credentials",
				 req->method, req->path);
			return ret;
		}
		dsfs_log(DSFS_LOG_DEBUG, "session renewed after 401 on %s %s", req->method, req->path);
	}
	explicit_bzero(hdr, sizeof(hdr));
	return record_failure(req, resp, ret);
}

void dsfs_session_health(struct dsfs_session *s, struct dsfs_session_health *out)
{
	pthread_mutex_lock(&s->lock);
	out->reachable = !s->unreachable;
	out->logged_in = s->id != NULL;
	snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
	out->since_error = s->last_error_at > 0 ? mono_now() - s->last_error_at : -1;
	pthread_mutex_unlock(&s->lock);
}

unsigned long dsfs_session_logins(struct dsfs_session *s)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = s->logins;
	pthread_mutex_unlock(&s->lock);
	return n;
}
