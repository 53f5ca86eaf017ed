// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Storage-plugin sessions. The session id lives only in memory and only in
 * the x-storageplugin-sessionid header; it is never logged. Concurrent 401s
 * renew once: a generation number tells a thread whether someone else has
 * already logged in again since it sent its request.
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
	char *username, *password, *array;
	pthread_mutex_t lock;
	char *id;               /* current session id, or NULL */
	unsigned long gen;      /* bumped by every successful login */
	unsigned long logins;
	struct timespec failed_at; /* last failed login, to hold off a storm of them */
	int failed_err;
};

struct dsfs_session *dsfs_session_new(struct dsfs_http *http, const char *username,
				      const char *password, const char *array)
{
	struct dsfs_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->http = http;
	s->username = strdup(username ? username : "");
	s->password = strdup(password ? password : "");
	s->array = array ? strdup(array) : NULL;
	pthread_mutex_init(&s->lock, NULL);
	if (!s->username || !s->password || (array && !s->array)) {
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
	pthread_mutex_destroy(&s->lock);
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

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Logs in if the session generation is still seen_gen. Called with s->lock held. */
static int login_locked(struct dsfs_session *s, unsigned long seen_gen)
{
	struct dsfs_request req = {
		.method = "POST", .path = "/session",
		.username = s->username, .password = s->password,
	};
	struct dsfs_response resp = { 0 };
	json_object *body, *o = NULL, *sid;
	int ret;

	if (s->gen != seen_gen && s->id)
		return 0; /* another thread has renewed it meanwhile */
	if (s->failed_err && since(&s->failed_at) < 1.0)
		return s->failed_err; /* a login just failed: do not hammer the server */
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
	ret = record_failure(&req, &resp, ret);
	if (ret == 0) {
		o = json_tokener_parse(resp.body ? resp.body : "");
		if (!o || !json_object_object_get_ex(o, "sessionId", &sid) ||
		    !json_object_is_type(sid, json_type_string)) {
			dsfs_err_record("POST", "/session", resp.status, "answer has no sessionId");
			ret = -EIO;
		} else {
			wipe_free(s->id);
			s->id = strdup(json_object_get_string(sid));
			ret = s->id ? 0 : -ENOMEM;
			s->gen++;
			s->logins++;
		}
	}
	if (ret == 0) {
		s->failed_err = 0;
	} else {
		s->failed_err = ret;
		clock_gettime(CLOCK_MONOTONIC, &s->failed_at);
	}
	json_object_put(o);
	json_object_put(body);
	dsfs_response_clear(&resp);
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
	if (s->id) {
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
	char hdr[512];
	unsigned long gen = 0;
	int attempt, ret = 0, i;

	for (attempt = 0; attempt < 2; attempt++) {
		hdr[0] = '\0';
		if (!anonymous) {
			pthread_mutex_lock(&s->lock);
			if (!s->id)
				ret = login_locked(s, s->gen);
			if (s->id)
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

unsigned long dsfs_session_logins(struct dsfs_session *s)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = s->logins;
	pthread_mutex_unlock(&s->lock);
	return n;
}
