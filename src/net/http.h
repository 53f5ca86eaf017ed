/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP transport: one client per API endpoint, a bounded pool of curl handles
 * sharing one connection cache (keep-alive across FUSE threads), whole-request
 * deadlines, TLS verification, and the retry policy that keeps every POST,
 * PUT and DELETE at most once. A quarter of the connections are kept for the
 * mount's owner and root, and no other user may hold more than half of the
 * rest (util/caller.h says whose request it is). The only module that sees libcurl;
 * the session reaches it through the transport seam (net/transport.h).
 */
#ifndef DSFS_HTTP_H
#define DSFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "net/transport.h"

struct dsfs_http;

struct dsfs_http_opts {
	const char *base_url;    /* API base, no trailing '/' */
	double timeout;          /* seconds for a whole request, retries included */
	double connect_timeout;  /* seconds for one connection attempt */
	const char *cacert;      /* extra CA bundle, or NULL */
	const char *client_cert; /* PEM certificate for mutual TLS, or NULL */
	const char *client_key;  /* its PEM key, or NULL */
	bool insecure;           /* skip TLS verification (explicit opt-in) */
	size_t max_body;         /* largest answer accepted, bytes */
	int retries;             /* extra attempts for a retryable failure */
	int max_conns;           /* concurrent requests (and connections) */
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

/* Copies the counters. Thread-safe. */
void dsfs_http_stats(struct dsfs_http *h, struct dsfs_http_stats *out);

/* The bound on one request (-o timeout), in seconds. */
double dsfs_http_timeout(const struct dsfs_http *h);

/* The base URL the client was made with. */
const char *dsfs_http_base(const struct dsfs_http *h);

/*
 * The client as the session's transport (src/net/transport.h): requests go to
 * dsfs_http_do. h must outlive every session made over it.
 */
struct dsfs_transport dsfs_http_transport(struct dsfs_http *h);

/* Process-wide set-up and tear-down of libcurl; call once from main. */
int dsfs_http_global_init(void);
void dsfs_http_global_cleanup(void);

#endif
