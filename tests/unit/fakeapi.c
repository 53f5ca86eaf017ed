// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fake API behind the transport seam (fakeapi.h). It keeps routes in a
 * list, answers each request under one lock, and logs it; tokens are
 * numbered, so refusing every token handed out so far is one number.
 */
#include "fakeapi.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEQ_MAX 16

enum route_kind { ROUTE_LIST, ROUTE_ANSWER, ROUTE_SEQUENCE };

struct route {
	enum route_kind kind;
	char *method, *path;
	bool whole;             /* path has a query: it must match whole */
	long status;            /* ROUTE_ANSWER */
	char *body[SEQ_MAX];    /* ROUTE_ANSWER: body[0]; ROUTE_SEQUENCE: each answer */
	long statuses[SEQ_MAX]; /* ROUTE_SEQUENCE: each answer's */
	size_t nbodies, next;
	json_object *items;      /* ROUTE_LIST */
	struct fake_list_opts o; /* ROUTE_LIST, its strings owned */
	struct route *next_r;
};

struct fake_api {
	pthread_mutex_t lock;
	struct route *routes;
	struct fake_req *log;
	size_t nlog, caplog;
	unsigned tokens;       /* handed out: tok-1 .. tok-<tokens> */
	unsigned expired_upto; /* tokens up to this one are refused */
	unsigned revoked[64];  /* logged out */
	size_t nrevoked;
	bool refuse_logins;
	double expires_in;
};

struct fake_api *fake_new(void)
{
	struct fake_api *f = calloc(1, sizeof(*f));

	/* a listing or a wait that never ends fails its test (SIGALRM) instead of hanging make check */
	alarm(30);
	if (f)
		pthread_mutex_init(&f->lock, NULL);
	return f;
}

static void route_free(struct route *r)
{
	free(r->method);
	free(r->path);
	for (size_t i = 0; i < r->nbodies; i++)
		free(r->body[i]);
	json_object_put(r->items);
	free((char *)r->o.key);
	free((char *)r->o.total_field);
	free(r);
}

void fake_log_clear(struct fake_api *f)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nlog; i++) {
		free(f->log[i].method);
		free(f->log[i].path);
		free(f->log[i].body);
		free(f->log[i].content_type);
	}
	f->nlog = 0;
	pthread_mutex_unlock(&f->lock);
}

void fake_free(struct fake_api *f)
{
	struct route *r, *next;

	if (!f)
		return;
	fake_log_clear(f);
	free(f->log);
	for (r = f->routes; r; r = next) {
		next = r->next_r;
		route_free(r);
	}
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void fake_set_expires_in(struct fake_api *f, double seconds)
{
	pthread_mutex_lock(&f->lock);
	f->expires_in = seconds;
	pthread_mutex_unlock(&f->lock);
}

void fake_expire(struct fake_api *f)
{
	pthread_mutex_lock(&f->lock);
	f->expired_upto = f->tokens;
	pthread_mutex_unlock(&f->lock);
}

void fake_refuse_logins(struct fake_api *f, bool refuse)
{
	pthread_mutex_lock(&f->lock);
	f->refuse_logins = refuse;
	pthread_mutex_unlock(&f->lock);
}

/* The route for method and path (replacing one of the same), made empty of kind. Lock held. */
static struct route *route_for(struct fake_api *f, enum route_kind kind, const char *method, const char *path)
{
	struct route *r, **p;

	for (p = &f->routes; *p; p = &(*p)->next_r) {
		if (!strcmp((*p)->method, method) && !strcmp((*p)->path, path)) {
			r = *p;
			*p = r->next_r;
			route_free(r);
			break;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		abort(); /* a test without memory has nothing to say */
	r->kind = kind;
	r->method = strdup(method);
	r->path = strdup(path);
	r->whole = strchr(path, '?') != NULL;
	r->next_r = f->routes;
	f->routes = r;
	return r;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void fake_list(struct fake_api *f, const char *path, const struct fake_list_opts *o, json_object *items)
{
	struct route *r;

	pthread_mutex_lock(&f->lock);
	r = route_for(f, ROUTE_LIST, "GET", path);
	r->items = items;
	if (o)
		r->o = *o;
	r->o.key = dup_or_null(r->o.key);
	r->o.total_field = dup_or_null(r->o.total_field);
	pthread_mutex_unlock(&f->lock);
}

json_object *fake_items(const char *prefix, int n, size_t pad)
{
	json_object *arr = json_object_new_array();
	char *fill = malloc(pad + 1);

	memset(fill, 'x', pad);
	fill[pad] = '\0';
	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		char buf[128];

		snprintf(buf, sizeof(buf), "%s-%03d", prefix, i);
		json_object_object_add(o, "id", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "%s%d", prefix, i);
		json_object_object_add(o, "name", json_object_new_string(buf));
		json_object_object_add(o, "creationTime", json_object_new_string("2024-01-01T00:00:00Z"));
		json_object_object_add(o, "pad", json_object_new_string(fill));
		json_object_array_add(arr, o);
	}
	free(fill);
	return arr;
}

void fake_answer(struct fake_api *f, const char *method, const char *path, long status, const char *body)
{
	struct route *r;

	pthread_mutex_lock(&f->lock);
	r = route_for(f, ROUTE_ANSWER, method, path);
	r->status = status;
	r->body[0] = dup_or_null(body);
	r->nbodies = 1;
	pthread_mutex_unlock(&f->lock);
}

void fake_sequence(struct fake_api *f, const char *method, const char *path, const char *const *bodies,
		   const long *statuses, size_t n)
{
	struct route *r;

	pthread_mutex_lock(&f->lock);
	r = route_for(f, ROUTE_SEQUENCE, method, path);
	for (size_t i = 0; i < n && i < SEQ_MAX; i++) {
		r->statuses[r->nbodies] = statuses ? statuses[i] : 200;
		r->body[r->nbodies++] = strdup(bodies[i]);
	}
	pthread_mutex_unlock(&f->lock);
}

/* ---- answering ------------------------------------------------------------ */

/* The value of query parameter name in path, or def. */
static unsigned long query_ul(const char *path, const char *name, unsigned long def)
{
	const char *q = strchr(path, '?');
	size_t n = strlen(name);

	while (q && *q) {
		q++;
		if (!strncmp(q, name, n) && q[n] == '=')
			return strtoul(q + n + 1, NULL, 10);
		q = strchr(q, '&');
	}
	return def;
}

/* The token number a request carries (0: none), and whether it carried one at all. */
static unsigned token_of(const struct dsfs_request *req, bool *carried)
{
	static const char *const prefixes[] = {
		"x-storageplugin-sessionid: tok-",
		"Authorization: Bearer tok-",
		"backupdr-management-session: Actifio tok-",
	};

	*carried = false;
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
			size_t n = strlen(prefixes[k]);

			if (!strncmp(req->headers[i], prefixes[k], n)) {
				*carried = true;
				return (unsigned)strtoul(req->headers[i] + n, NULL, 10);
			}
		}
	}
	return 0;
}

static bool token_valid(const struct fake_api *f, unsigned t)
{
	if (t == 0 || t <= f->expired_upto || t > f->tokens)
		return false;
	for (size_t i = 0; i < f->nrevoked; i++)
		if (f->revoked[i] == t)
			return false;
	return true;
}

static void set_body(struct dsfs_response *resp, long status, const char *body)
{
	resp->status = status;
	resp->attempts = 1;
	if (body) {
		resp->body = strdup(body);
		resp->len = strlen(body);
		resp->content_type = strdup("application/json");
	}
}

/* A page of a list route, as path asks for it. */
static void answer_list(const struct route *r, const char *path, struct dsfs_response *resp)
{
	size_t len = json_object_array_length(r->items);
	unsigned long start = query_ul(path, "start", query_ul(path, "offset", 0)),
		      limit = query_ul(path, "limit", len);
	json_object *page = json_object_new_array(), *answer = page;

	if (r->o.ignore_start)
		start = 0;
	if (r->o.cap && limit > r->o.cap)
		limit = r->o.cap;
	for (unsigned long i = start; i < len && i < start + limit; i++)
		json_object_array_add(page, json_object_get(json_object_array_get_idx(r->items, i)));
	if (r->o.key) {
		answer = json_object_new_object();
		json_object_object_add(answer, r->o.key, page);
		if (r->o.total_field)
			json_object_object_add(answer, r->o.total_field,
					       json_object_new_int64(r->o.total > 0 ? r->o.total : (int64_t)len));
	}
	set_body(resp, 200, json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN));
	json_object_put(answer);
}

static bool path_matches(const struct route *r, const char *path)
{
	size_t n = strcspn(path, "?");

	return r->whole ? !strcmp(r->path, path) : strlen(r->path) == n && !strncmp(r->path, path, n);
}

/* The item of a list route whose URL is path (the list's path, '/', its id), or NULL. */
static json_object *item_at(const struct route *r, const char *path)
{
	size_t n = strlen(r->path);
	const char *id = path + n + 1;
	json_object *v;

	if (r->kind != ROUTE_LIST || r->whole || strncmp(r->path, path, n) || path[n] != '/' || strpbrk(id, "/?"))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(r->items); i++) {
		json_object *o = json_object_array_get_idx(r->items, i);

		if (json_object_object_get_ex(o, "id", &v) && !strcmp(json_object_get_string(v), id))
			return o;
	}
	return NULL;
}

/* Logging in and out. True when req was one (resp filled). Lock held. */
static bool answer_login(struct fake_api *f, const struct dsfs_request *req, struct dsfs_response *resp)
{
	bool grant = !strcmp(req->method, "POST") && strstr(req->path, "token");
	char body[256];

	if (!strcmp(req->method, "DELETE") &&
	    (!strcmp(req->path, "/session") || !strcmp(req->path, "/session/current"))) {
		bool carried;
		unsigned t = token_of(req, &carried);

		if (t && f->nrevoked < sizeof(f->revoked) / sizeof(f->revoked[0]))
			f->revoked[f->nrevoked++] = t;
		set_body(resp, 204, NULL);
		return true;
	}
	if (!grant && !(!strcmp(req->method, "POST") && !strcmp(req->path, "/session")))
		return false;
	if (f->refuse_logins) {
		set_body(resp, 401, "{\"error\":\"the credentials were refused\"}");
		return true;
	}
	f->tokens++;
	if (grant)
		snprintf(body, sizeof(body), "{\"access_token\":\"tok-%u\",\"expires_in\":%g}", f->tokens,
			 f->expires_in);
	else
		snprintf(body, sizeof(body), "{\"sessionId\":\"tok-%u\",\"session_id\":\"tok-%u\"}", f->tokens,
			 f->tokens);
	set_body(resp, 200, body);
	return true;
}

/* Lock held. */
static void answer(struct fake_api *f, const struct dsfs_request *req, struct dsfs_response *resp, bool *carried)
{
	unsigned t = token_of(req, carried);
	json_object *item = NULL;
	struct route *r;

	if (answer_login(f, req, resp))
		return;
	if (!token_valid(f, t)) {
		set_body(resp, 401, "{\"error\":\"the session has ended\"}");
		return;
	}
	if (!strcmp(req->method, "GET") && !strcmp(req->path, "/accounts")) {
		set_body(resp, 200, "[{\"accountId\":\"acc-1\"}]");
		return;
	}
	for (r = f->routes; r; r = r->next_r)
		if (!strcmp(r->method, req->method) && (path_matches(r, req->path) || (item = item_at(r, req->path))))
			break;
	if (item) {
		set_body(resp, 200, json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN));
	} else if (!r) {
		set_body(resp, 404, "{\"error\":\"no such path\"}");
	} else if (r->kind == ROUTE_LIST) {
		answer_list(r, req->path, resp);
	} else if (r->kind == ROUTE_SEQUENCE) {
		set_body(resp, r->statuses[r->next], r->body[r->next]);
		if (r->next + 1 < r->nbodies)
			r->next++;
	} else if (r->status) {
		set_body(resp, r->status, r->body[0]);
	}
	/* status 0: the request went out and no answer came back */
}

static void log_request(struct fake_api *f, const struct dsfs_request *req, long status, bool carried)
{
	struct fake_req *e;

	if (f->nlog == f->caplog) {
		f->caplog = f->caplog ? 2 * f->caplog : 64;
		f->log = realloc(f->log, f->caplog * sizeof(*f->log));
		if (!f->log)
			abort();
	}
	e = &f->log[f->nlog++];
	e->method = strdup(req->method);
	e->path = strdup(req->path);
	e->body = req->body ? strndup(req->body, req->body_len) : NULL;
	e->content_type = req->body ? strdup(req->content_type ? req->content_type : "application/json") : NULL;
	e->authenticated = carried;
	e->status = status;
}

static int fake_request(void *ctx, const struct dsfs_request *req, struct dsfs_response *resp)
{
	struct fake_api *f = ctx;
	struct dsfs_request r = *req;
	bool carried = false;

	/* a whole URL of the API (the probe's) is its path; other whole URLs stay whole */
	if (!strncmp(r.path, FAKE_BASE, strlen(FAKE_BASE)) && strchr("/?", r.path[strlen(FAKE_BASE)]))
		r.path += strlen(FAKE_BASE);
	req = &r;
	dsfs_response_clear(resp);
	pthread_mutex_lock(&f->lock);
	answer(f, req, resp, &carried);
	log_request(f, req, resp->status, carried);
	pthread_mutex_unlock(&f->lock);
	if (resp->status)
		return 0;
	resp->attempts = 1;
	resp->net = DSFS_NET_RECV;
	snprintf(resp->message, sizeof(resp->message), "the fake dropped the connection");
	return dsfs_errmap_net(DSFS_NET_RECV);
}

static const char *fake_base(const void *ctx)
{
	(void)ctx;
	return FAKE_BASE;
}

static double fake_timeout(const void *ctx)
{
	(void)ctx;
	return 5;
}

// clang-format off
static const struct dsfs_transport_ops fake_ops = {
	.request = fake_request, .base = fake_base, .timeout = fake_timeout,
};
// clang-format on

struct dsfs_transport fake_transport(struct fake_api *f)
{
	return (struct dsfs_transport){ .ops = &fake_ops, .ctx = f };
}

/* ---- the log ---------------------------------------------------------------- */

size_t fake_count(struct fake_api *f, const char *method, const char *prefix, long status)
{
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nlog; i++) {
		const struct fake_req *e = &f->log[i];

		n += (!method || !strcmp(e->method, method)) &&
			(!prefix || !strncmp(e->path, prefix, strlen(prefix))) && (status < 0 || e->status == status);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

const struct fake_req *fake_find(struct fake_api *f, const char *method, const char *prefix)
{
	const struct fake_req *e = NULL;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nlog && !e; i++)
		if (!strcmp(f->log[i].method, method) && !strncmp(f->log[i].path, prefix, strlen(prefix)))
			e = &f->log[i];
	pthread_mutex_unlock(&f->lock);
	return e;
}

size_t fake_log_n(struct fake_api *f)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = f->nlog;
	pthread_mutex_unlock(&f->lock);
	return n;
}

const struct fake_req *fake_log_at(struct fake_api *f, size_t i)
{
	const struct fake_req *e;

	pthread_mutex_lock(&f->lock);
	e = i < f->nlog ? &f->log[i] : NULL;
	pthread_mutex_unlock(&f->lock);
	return e;
}

/* ---- sessions and paths ------------------------------------------------------- */

struct dsfs_session *fake_session(struct fake_api *f, const char *dialect)
{
	const struct dsfs_dialect *d = dsfs_dialect_named(dialect);
	struct dsfs_transport net = fake_transport(f);
	struct dsfs_credentials cred = { 0 };
	struct dsfs_session_api api;
	struct dsfs_session *s;

	if (!d)
		return NULL;
	if (!strcmp(d->name, "dscc") || !strcmp(d->name, "greenlake")) {
		dsfs_credentials_set(&cred, "client_id", "client");
		dsfs_credentials_set(&cred, "client_secret", "secret");
	} else if (!strcmp(d->name, "cloudsync")) {
		dsfs_credentials_set(&cred, "refresh_token", "refresh");
		dsfs_credentials_set(&cred, "client_id", "client");
		dsfs_credentials_set(&cred, "account", "acc-1");
	} else {
		dsfs_credentials_set(&cred, "username", "admin");
		dsfs_credentials_set(&cred, "password", "secret");
	}
	api = dsfs_dialect_session_api(d);
	s = dsfs_session_new(&net, &api, &cred);
	dsfs_credentials_clear(&cred);
	return s;
}

int fake_resolve(struct dsfs_cache *c, const char *path, struct dsfs_loc *out)
{
	char *copy = strdup(path), *part, *save = NULL;
	struct dsfs_loc cur, next;
	int ret = 0;

	dsfs_cache_root(c, &cur);
	for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		memset(&next, 0, sizeof(next));
		ret = dsfs_cache_lookup(c, &cur, part, &next);
		dsfs_cache_put(c, &cur);
		if (ret)
			break;
		cur = next;
	}
	free(copy);
	if (ret == 0)
		*out = cur;
	else
		memset(out, 0, sizeof(*out));
	return ret;
}

struct names {
	char *buf;
	size_t len, used;
};

static int add_name(void *ctx, const char *name, const struct dsfs_attr *attr, bool complete)
{
	struct names *n = ctx;
	int w = snprintf(n->buf + n->used, n->len - n->used, "%s%s", n->used ? " " : "", name);

	(void)attr;
	(void)complete;
	if (w < 0 || (size_t)w >= n->len - n->used)
		return -ENAMETOOLONG;
	n->used += (size_t)w;
	return 0;
}

int fake_listdir(struct dsfs_cache *c, const char *path, char *buf, size_t len)
{
	struct names n = { .buf = buf, .len = len };
	struct dsfs_loc loc;
	int ret = fake_resolve(c, path, &loc);

	buf[0] = '\0';
	if (ret)
		return ret;
	ret = dsfs_cache_readdir(c, &loc, add_name, &n);
	dsfs_cache_put(c, &loc);
	return ret;
}

int fake_open(struct dsfs_cache *c, const char *path, struct dsfs_blob **out)
{
	enum dsfs_caching caching;
	struct dsfs_loc loc;
	int ret = fake_resolve(c, path, &loc);

	*out = NULL;
	if (ret)
		return ret;
	ret = dsfs_cache_open(c, &loc, out, &caching);
	dsfs_cache_put(c, &loc);
	return ret;
}
