/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP transport: one client per API endpoint, a bounded pool of curl handles
 * sharing one connection cache (keep-alive across FUSE threads), whole-request
 * deadlines, TLS verification, and the retry policy that keeps every POST,
 * PUT and DELETE at most once. A quarter of the connections are kept for the
 * mount's owner and root, and no other user may hold more than half of the
 * rest (caller.h says whose request it is). The only module that sees libcurl.
 */
#ifndef DSFS_HTTP_H
#define DSFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "errmap.h"

struct dsfs_http;

struct dsfs_http_opts {
	const char *base_url;     /* API base, no trailing '/' */
	double timeout;           /* seconds for a whole request, retries included */
	double connect_timeout;   /* seconds for one connection attempt */
	const char *cacert;       /* extra CA bundle, or NULL */
	const char *client_cert;  /* PEM certificate for mutual TLS, or NULL */
	const char *client_key;   /* its PEM key, or NULL */
	bool insecure;            /* skip TLS verification (explicit opt-in) */
	size_t max_body;          /* largest answer accepted, bytes */
	int retries;              /* extra attempts for a retryable failure */
	int max_conns;            /* concurrent requests (and connections) */
};

struct dsfs_request {
	const char *method;         /* "GET", "HEAD", "POST", "PUT", "DELETE" */
	const char *path;           /* relative to the base (or an absolute http(s) URL), escaped, may carry a query */
	const char *body;           /* request body or NULL */
	size_t body_len;
	const char *accept;         /* Accept value; NULL means application/json */
	const char *content_type;   /* of the body; NULL means application/json */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
	const char *username;       /* HTTP Basic credentials, or NULL */
	const char *password;
	const char *capture;        /* a header whose value the answer keeps in captured, or NULL */
	/* Polled while the request runs (about once a second); true abandons it (EINTR), never retried. */
	bool (*cancelled)(void);
};

struct dsfs_response {
	long status;                  /* 0 when no HTTP answer arrived */
	enum dsfs_net_error net;      /* why no answer arrived */
	char *body;                   /* NUL-terminated; owned, freed by dsfs_response_clear */
	size_t len;
	char *location;               /* Location header or NULL; owned */
	char *content_type;           /* Content-Type header or NULL; owned */
	char *captured;               /* the value of the request's capture header, or NULL; owned */
	char message[256];            /* transport reason when status is 0 */
	int attempts;                 /* how many times the request was sent */
};

/* Counters, read with dsfs_http_stats(). */
struct dsfs_http_stats {
	unsigned long get, post, put, del, other;
	unsigned long retries, errors;
};

/* Creates a client; copies what it needs from opts. NULL on failure with *err set to a reason. */
struct dsfs_http *dsfs_http_new(const struct dsfs_http_opts *opts, const char **err);

/* Frees the client and closes its connections; NULL does nothing. No request may be in flight. */
void dsfs_http_free(struct dsfs_http *h);

/*
 * Sends one request and waits for its answer, within the timeout. GETs are
 * retried on transport failures, 429 and 503 (honouring Retry-After) with
 * capped, jittered backoff; other methods only when the connection was
 * refused or the server answered 429/503. Returns 0 when an HTTP answer
 * arrived (whatever its status), or a negative errno with resp->net and
 * resp->message saying why. resp must be zeroed or cleared; caller clears.
 * Thread-safe; blocks while max_conns requests are already in flight.
 */
int dsfs_http_do(struct dsfs_http *h, const struct dsfs_request *req, struct dsfs_response *resp);

/* Frees what a response holds and zeroes it. */
void dsfs_response_clear(struct dsfs_response *resp);

/* Copies the counters. Thread-safe. */
void dsfs_http_stats(struct dsfs_http *h, struct dsfs_http_stats *out);

/* The bound on one request (-o timeout), in seconds. */
double dsfs_http_timeout(const struct dsfs_http *h);

/* The base URL the client was made with. */
const char *dsfs_http_base(const struct dsfs_http *h);

/* Process-wide set-up and tear-down of libcurl; call once from main. */
int dsfs_http_global_init(void);
void dsfs_http_global_cleanup(void);

#endif
