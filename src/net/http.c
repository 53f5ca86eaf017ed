// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libcurl behind a small request/response interface. Handles come from a
 * pool capped at max_conns and share one connection cache, so FUSE threads
 * reuse keep-alive connections. Retries live here and nowhere else: GETs on
 * transport failures, 429 and 503; other methods only when the server
 * provably never acted (connection refused, 429, 503), and always on a
 * fresh connection so curl itself never resends them on a stale one.
 */
#include "net/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"
#include "util/caller.h"
#include "util/grow.h"
#include "util/locks.h"
#include "util/log.h"

struct dsfs_http {
	struct dsfs_http_opts o;
	char *base, *cacert, *client_cert, *client_key;
	CURLSH *share;
	struct dsfs_mutex share_locks[CURL_LOCK_DATA_LAST];
	struct dsfs_mutex pool_lock;
	pthread_cond_t pool_cond;
	CURL **idle;
	int nidle, created;
	int others_busy; /* connections held by callers other than the mount's owner (pool_lock) */
	int others_max;  /* the most they may hold: the rest are kept for the owner */
	int user_max;    /* the most one of them may hold, so that two users always share */
	struct {
		uid_t uid;
		int busy;
	} users[64];                  /* connections each other user holds (pool_lock); busy 0 is a free slot */
	struct dsfs_http_stats stats; /* updated atomically */
};

struct xfer {
	struct dsfs_response *resp;
	size_t cap, max;
	bool toobig, failed, cancelled;
	bool (*cancel)(void);
	double retry_after;  /* seconds, <0 when absent */
	const char *capture; /* a header the answer keeps (the request's), or NULL */
};

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static double jitter(void)
{
	static __thread uint64_t x;

	if (!x)
		x = (uint64_t)dsfs_clock_now() * 1000003u ^ (uint64_t)pthread_self() ^ 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return 0.5 + (double)(x % 1000) / 1000.0; /* 0.5 .. 1.5 */
}

static void lock_cb(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct dsfs_http *h = userp;

	(void)handle;
	(void)access;
	dsfs_lock(&h->share_locks[data]);
}

static void unlock_cb(CURL *handle, curl_lock_data data, void *userp)
{
	struct dsfs_http *h = userp;

	(void)handle;
	dsfs_unlock(&h->share_locks[data]);
}

int dsfs_http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void dsfs_http_global_cleanup(void)
{
	curl_global_cleanup();
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct dsfs_http *dsfs_http_new(const struct dsfs_http_opts *opts, const char **err)
{
	struct dsfs_http *h = calloc(1, sizeof(*h));
	int i;

	*err = "out of memory";
	if (!h)
		return NULL;
	h->o = *opts;
	if (h->o.max_conns < 1)
		h->o.max_conns = 1;
	/* a quarter of the connections (at least one, when there are two) only the mount's owner uses */
	h->others_max = h->o.max_conns - (h->o.max_conns >= 8 ? h->o.max_conns / 4 : h->o.max_conns >= 2);
	h->user_max = h->others_max >= 2 ? h->others_max / 2 : 1;
	h->base = strdup(opts->base_url);
	h->cacert = dup_or_null(opts->cacert);
	h->client_cert = dup_or_null(opts->client_cert);
	h->client_key = dup_or_null(opts->client_key);
	h->idle = calloc((size_t)h->o.max_conns, sizeof(*h->idle));
	if (!h->base || !h->idle || (opts->cacert && !h->cacert) || (opts->client_cert && !h->client_cert) ||
	    (opts->client_key && !h->client_key))
		goto out_free;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		dsfs_mutex_init(&h->share_locks[i], DSFS_LOCK_HTTP_SHARE);
	dsfs_mutex_init(&h->pool_lock, DSFS_LOCK_HTTP_POOL);
	pthread_cond_init(&h->pool_cond, NULL);
	h->share = curl_share_init();
	if (!h->share) {
		*err = "cannot create a curl share handle";
		goto out_free;
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, lock_cb);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*err = NULL;
	return h;

out_free:
	dsfs_http_free(h);
	return NULL;
}

void dsfs_http_free(struct dsfs_http *h)
{
	int i;

	if (!h)
		return;
	for (i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	free(h->idle);
	free(h->base);
	free(h->cacert);
	free(h->client_cert);
	free(h->client_key);
	free(h);
}

const char *dsfs_http_base(const struct dsfs_http *h)
{
	return h->base;
}

double dsfs_http_timeout(const struct dsfs_http *h)
{
	return h->o.timeout;
}

void dsfs_http_stats(struct dsfs_http *h, struct dsfs_http_stats *out)
{
	out->get = __atomic_load_n(&h->stats.get, __ATOMIC_RELAXED);
	out->post = __atomic_load_n(&h->stats.post, __ATOMIC_RELAXED);
	out->put = __atomic_load_n(&h->stats.put, __ATOMIC_RELAXED);
	out->del = __atomic_load_n(&h->stats.del, __ATOMIC_RELAXED);
	out->other = __atomic_load_n(&h->stats.other, __ATOMIC_RELAXED);
	out->retries = __atomic_load_n(&h->stats.retries, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&h->stats.errors, __ATOMIC_RELAXED);
}

static void count(unsigned long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* A handle, waiting no later than deadline (monotonic seconds) for one to be free. */
/*
 * A free connection, waiting for one until deadline (then *timed_out), or
 * until cancel() says the caller gave up (then *cancelled); checked every
 * 100 ms.
 */
/* A connection another user held is free again. pool_lock held. */
static void give_back(struct dsfs_http *h, uid_t uid)
{
	h->others_busy--;
	for (size_t i = 0; i < sizeof(h->users) / sizeof(h->users[0]); i++)
		if (h->users[i].busy && h->users[i].uid == uid) {
			h->users[i].busy--;
			break;
		}
}

/* The count of connections uid holds, or NULL when every slot is taken (then only the total bounds it). */
static int *user_busy(struct dsfs_http *h, uid_t uid)
{
	int *spare = NULL;

	for (size_t i = 0; i < sizeof(h->users) / sizeof(h->users[0]); i++) {
		if (h->users[i].busy && h->users[i].uid == uid)
			return &h->users[i].busy;
		if (!h->users[i].busy && !spare) {
			spare = &h->users[i].busy;
			h->users[i].uid = uid;
		}
	}
	return spare;
}

static bool may_connect(struct dsfs_http *h, bool owner, uid_t uid)
{
	int *busy;

	if (h->nidle == 0 && h->created >= h->o.max_conns)
		return false;
	if (owner)
		return true;
	busy = user_busy(h, uid);
	if (busy && !*busy && h->others_busy < h->o.max_conns - 1)
		return true; /* a user's first connection: one stays free for the owner */
	return h->others_busy < h->others_max && (!busy || *busy < h->user_max);
}

static CURL *get_handle(struct dsfs_http *h, double deadline, bool (*cancel)(void), bool owner, bool *timed_out,
			bool *cancelled)
{
	uid_t uid = dsfs_caller_uid();
	struct timespec ts;
	CURL *c = NULL;
	int *busy;

	*timed_out = *cancelled = false;
	dsfs_lock(&h->pool_lock);
	while (!may_connect(h, owner, uid)) {
		/* condition variables wait on the real-time clock: convert the next check */
		double wait = deadline - dsfs_clock_now(), abs_s;

		if (wait <= 0 || (cancel && cancel())) {
			*timed_out = wait <= 0;
			*cancelled = !*timed_out;
			dsfs_unlock(&h->pool_lock);
			return NULL;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		abs_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (wait < 0.1 ? wait : 0.1);
		ts.tv_sec = (time_t)abs_s;
		ts.tv_nsec = (long)((abs_s - (double)ts.tv_sec) * 1e9);
		dsfs_cond_timedwait(&h->pool_cond, &h->pool_lock, &ts);
	}
	if (!owner) {
		h->others_busy++;
		if ((busy = user_busy(h, uid)))
			++*busy;
	}
	if (h->nidle > 0) {
		c = h->idle[--h->nidle];
	} else {
		c = curl_easy_init();
		if (c)
			h->created++;
		else if (!owner)
			give_back(h, uid);
	}
	dsfs_unlock(&h->pool_lock);
	return c;
}

static void put_handle(struct dsfs_http *h, CURL *c, bool owner)
{
	dsfs_lock(&h->pool_lock);
	h->idle[h->nidle++] = c;
	if (!owner)
		give_back(h, dsfs_caller_uid());
	/* waiters differ (the owner's may take what others' may not): wake them all */
	pthread_cond_broadcast(&h->pool_cond);
	dsfs_unlock(&h->pool_lock);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	struct dsfs_response *r = x->resp;
	size_t n = size * nmemb;

	if (r->len + n > x->max) {
		x->toobig = true;
		return 0;
	}
	if (r->len + n + 1 > x->cap) {
		char *p = dsfs_grow(r->body, &x->cap, r->len + n + 1, 1, 4096, 0);

		if (!p) {
			x->failed = true;
			return 0;
		}
		r->body = p;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Copies a header's value, trimmed, if the line is "name: value". */
static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	const char *v, *end = line + n;

	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return NULL;
	for (v = line + k + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	char *v;

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new status line (after a 100 Continue, say): forget earlier headers. */
		free(x->resp->location);
		free(x->resp->content_type);
		free(x->resp->captured);
		x->resp->location = x->resp->content_type = x->resp->captured = NULL;
		x->retry_after = -1;
	} else if (x->capture && (v = header_value(line, n, x->capture))) {
		free(x->resp->captured);
		x->resp->captured = v;
	} else if ((v = header_value(line, n, "location"))) {
		free(x->resp->location);
		x->resp->location = v;
	} else if ((v = header_value(line, n, "content-type"))) {
		free(x->resp->content_type);
		x->resp->content_type = v;
	} else if ((v = header_value(line, n, "retry-after"))) {
		char *end;
		double s = strtod(v, &end);

		if (end != v && *end == '\0' && s >= 0)
			x->retry_after = s;
		free(v);
	}
	return n;
}

/* libcurl's progress callback: a non-zero return abandons the transfer. */
static int progress_cb(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = data;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (x->cancel && x->cancel())
		x->cancelled = true;
	return x->cancelled;
}

static enum dsfs_net_error classify(CURLcode rc, const struct xfer *x)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK && x->cancelled)
		return DSFS_NET_CANCELLED;
	switch (rc) {
	case CURLE_OK:
		return DSFS_NET_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return DSFS_NET_TIMEOUT;
	case CURLE_COULDNT_CONNECT:
		return DSFS_NET_CONNECT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return DSFS_NET_RESOLVE;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
		return DSFS_NET_TLS;
	case CURLE_SEND_ERROR:
		return DSFS_NET_SEND;
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
		return DSFS_NET_RECV;
	case CURLE_WRITE_ERROR:
		if (x->toobig)
			return DSFS_NET_TOOBIG;
		return x->failed ? DSFS_NET_NOMEM : DSFS_NET_OTHER;
	case CURLE_OUT_OF_MEMORY:
		return DSFS_NET_NOMEM;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_CONTENT_ENCODING:
		return DSFS_NET_PROTOCOL;
	default:
		return DSFS_NET_OTHER;
	}
}

static void set_options(struct dsfs_http *h, CURL *c, const struct dsfs_request *req, struct curl_slist *hdrs,
			const char *url, struct xfer *x, long timeout_ms, bool fresh, char *errbuf)
{
	long connect_ms = (long)(h->o.connect_timeout * 1000);

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms < timeout_ms ? connect_ms : timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (x->cancel) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	}
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXCONNECTS, (long)h->o.max_conns);
	if (h->o.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
	if (h->client_cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
	if (h->client_key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
	if (req->username) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, req->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, req->password ? req->password : "");
	}
	if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_NOBODY, 0L); /* a handle that sent a HEAD before */
		if (strcmp(req->method, "POST"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
		if (req->body || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
	}
}

static struct curl_slist *build_headers(const struct dsfs_request *req)
{
	struct curl_slist *l = NULL, *t;
	char accept[128];
	const char *const *p;

	snprintf(accept, sizeof(accept), "Accept: %s", req->accept ? req->accept : "application/json");
	if (!(t = curl_slist_append(l, accept)))
		goto fail;
	l = t;
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		char ct[128];

		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
		if (!(t = curl_slist_append(l, ct)))
			goto fail;
		l = t;
		if (!(t = curl_slist_append(l, "Expect:")))
			goto fail;
		l = t;
	}
	for (p = req->headers; p && *p; p++) {
		if (!(t = curl_slist_append(l, *p)))
			goto fail;
		l = t;
	}
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

static void count_method(struct dsfs_http *h, const char *m)
{
	if (!strcmp(m, "GET"))
		count(&h->stats.get);
	else if (!strcmp(m, "POST"))
		count(&h->stats.post);
	else if (!strcmp(m, "PUT"))
		count(&h->stats.put);
	else if (!strcmp(m, "DELETE"))
		count(&h->stats.del);
	else
		count(&h->stats.other);
}

/*
 * curl's reasons say how long they took ("... after 3 ms: ..."): left out,
 * so that a reason that repeats is the same line, which the log shows once
 * a minute however often it comes.
 */
static void drop_elapsed(char *s)
{
	char *p = s, *q;

	while ((p = strstr(p, " after "))) {
		q = p + 7;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q > p + 7 && !strncmp(q, " ms", 3))
			memmove(p, q + 3, strlen(q + 3) + 1);
		else
			p += 7;
	}
}

int dsfs_http_do(struct dsfs_http *h, const struct dsfs_request *req, struct dsfs_response *resp)
{
	bool idempotent = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"), owner = dsfs_caller_is_owner();
	/*
	 * A request whose reader has gone is abandoned: before it is sent,
	 * whatever it is; a GET also while it runs (whoever still needs the
	 * answer asks again). A change once sent runs to its answer.
	 */
	bool (*queued_cancel)(void) = req->cancelled ? req->cancelled : dsfs_caller_gone;
	bool (*in_flight_cancel)(void) = req->cancelled ? req->cancelled : idempotent ? dsfs_caller_gone : NULL;
	double start = dsfs_clock_now(), deadline = start + h->o.timeout;
	struct curl_slist *hdrs = NULL;
	char *url = NULL, errbuf[CURL_ERROR_SIZE];
	int attempt, ret = 0;
	CURL *c = NULL;

	dsfs_response_clear(resp);
	url = malloc(strlen(h->base) + strlen(req->path) + 1);
	hdrs = build_headers(req);
	if (!url || !hdrs) {
		resp->net = DSFS_NET_NOMEM;
		snprintf(resp->message, sizeof(resp->message), "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (!strncmp(req->path, "http://", 7) || !strncmp(req->path, "https://", 8)) {
		strcpy(url, req->path); /* an endpoint elsewhere, e.g. an OAuth2 token service */
	} else {
		strcpy(url, h->base);
		strcat(url, req->path);
	}

	for (attempt = 0;; attempt++) {
		int tries = resp->attempts;
		struct xfer x = { .resp = resp,
				  .max = h->o.max_body,
				  .retry_after = -1,
				  .cancel = in_flight_cancel,
				  .capture = req->capture };
		double remaining = deadline - dsfs_clock_now(), wait;
		bool retryable, waited_out, gave_up;
		CURLcode rc;

		if (remaining <= 0.001) {
			dsfs_response_clear(resp);
			resp->attempts = tries;
			resp->net = DSFS_NET_TIMEOUT;
			snprintf(resp->message, sizeof(resp->message), "timed out after %.0f s", h->o.timeout);
			ret = dsfs_errmap_net(DSFS_NET_TIMEOUT);
			break;
		}
		dsfs_response_clear(resp);
		resp->attempts = attempt;
		c = get_handle(h, deadline, queued_cancel, owner, &waited_out, &gave_up);
		if (!c && gave_up) {
			resp->net = DSFS_NET_CANCELLED;
			snprintf(resp->message, sizeof(resp->message), "interrupted waiting for a connection");
			ret = dsfs_errmap_net(DSFS_NET_CANCELLED);
			goto out;
		}
		if (!c && waited_out) {
			resp->net = DSFS_NET_TIMEOUT;
			snprintf(resp->message, sizeof(resp->message),
				 "timed out after %.0f s waiting for one of %d connections", h->o.timeout,
				 h->o.max_conns);
			ret = dsfs_errmap_net(DSFS_NET_TIMEOUT);
			goto out;
		}
		if (!c) {
			resp->net = DSFS_NET_NOMEM;
			snprintf(resp->message, sizeof(resp->message), "cannot create a curl handle");
			ret = -ENOMEM;
			goto out;
		}
		resp->attempts = attempt + 1;
		errbuf[0] = '\0';
		set_options(h, c, req, hdrs, url, &x, (long)(remaining * 1000) + 1, !idempotent, errbuf);
		count_method(h, req->method);
		rc = curl_easy_perform(c);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		put_handle(h, c, owner);
		c = NULL;

		resp->net = classify(rc, &x);
		if (rc != CURLE_OK) {
			resp->status = 0;
			snprintf(resp->message, sizeof(resp->message), "%s",
				 errbuf[0] ? errbuf : curl_easy_strerror(rc));
			drop_elapsed(resp->message);
			if (resp->net == DSFS_NET_TOOBIG)
				snprintf(resp->message, sizeof(resp->message), "answer larger than %zu bytes",
					 h->o.max_body);
			ret = dsfs_errmap_net(resp->net);
			retryable = idempotent ? (resp->net != DSFS_NET_TOOBIG && resp->net != DSFS_NET_TLS &&
						  resp->net != DSFS_NET_NOMEM && resp->net != DSFS_NET_TIMEOUT &&
						  resp->net != DSFS_NET_CANCELLED)
					       : resp->net == DSFS_NET_CONNECT;
		} else {
			ret = 0;
			retryable = resp->status == 429 || resp->status == 503;
		}
		if (!retryable || attempt >= h->o.retries)
			break;

		wait = 0.1 * (double)(1 << (attempt < 6 ? attempt : 6)) * jitter();
		if (wait > 5)
			wait = 5;
		if (x.retry_after >= 0 && x.retry_after > wait)
			wait = x.retry_after;
		if (dsfs_clock_now() + wait >= deadline) {
			dsfs_log(DSFS_LOG_DEBUG, "%s %s: not retrying: the wait (%.1f s) passes the deadline",
				 req->method, req->path, wait);
			break;
		}
		count(&h->stats.retries);
		if (resp->status)
			dsfs_log(DSFS_LOG_DEBUG, "%s %s: HTTP %ld, retrying in %.2f s (attempt %d of %d)", req->method,
				 req->path, resp->status, wait, attempt + 2, h->o.retries + 1);
		else
			dsfs_log(DSFS_LOG_DEBUG, "%s %s: %s, retrying in %.2f s (attempt %d of %d)", req->method,
				 req->path, resp->message, wait, attempt + 2, h->o.retries + 1);
		sleep_s(wait);
	}
	if (ret < 0 || resp->status >= 400)
		count(&h->stats.errors);
	if (dsfs_log_enabled(DSFS_LOG_DEBUG))
		dsfs_log(DSFS_LOG_DEBUG, "%s %s -> %ld (%zu bytes, %.1f ms)", req->method, req->path, resp->status,
			 resp->len, (dsfs_clock_now() - start) * 1000);
out:
	curl_slist_free_all(hdrs);
	free(url);
	return ret;
}

static int transport_request(void *ctx, const struct dsfs_request *req, struct dsfs_response *resp)
{
	return dsfs_http_do(ctx, req, resp);
}

static const char *transport_base(const void *ctx)
{
	return dsfs_http_base(ctx);
}

static double transport_timeout(const void *ctx)
{
	return dsfs_http_timeout(ctx);
}

// clang-format off
static const struct dsfs_transport_ops http_ops = {
	.request = transport_request, .base = transport_base, .timeout = transport_timeout,
};
// clang-format on

struct dsfs_transport dsfs_http_transport(struct dsfs_http *h)
{
	return (struct dsfs_transport){ .ops = &http_ops, .ctx = h };
}
