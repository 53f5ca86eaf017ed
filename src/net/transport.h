/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The seam under the session: one request out, its answer back. The
 * session reaches the API only through a struct dsfs_transport chosen when
 * it is made: src/net/http.c (libcurl, dsfs_http_transport) in the daemon, an
 * in-memory fake API in the unit tests (tests/unit/fakeapi.h), so that
 * paging, eviction, re-login and task polling can be tested without a
 * server. Requests and answers pass by pointer: the seam costs one
 * indirect call and no copy.
 */
#ifndef DSFS_TRANSPORT_H
#define DSFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "net/errmap.h"

struct dsfs_request {
	const char *method; /* "GET", "HEAD", "POST", "PUT", "DELETE" */
	const char *path;   /* relative to the base (or an absolute http(s) URL), escaped, may carry a query */
	const char *body;   /* request body or NULL */
	size_t body_len;
	const char *accept;         /* Accept value; NULL means application/json */
	const char *content_type;   /* of the body; NULL means application/json */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
	const char *username;       /* HTTP Basic credentials, or NULL */
	const char *password;
	const char *capture; /* a header whose value the answer keeps in captured, or NULL */
	/* Polled while the request runs (about once a second); true abandons it (EINTR), never retried. */
	bool (*cancelled)(void);
};

struct dsfs_response {
	long status;             /* 0 when no HTTP answer arrived */
	enum dsfs_net_error net; /* why no answer arrived */
	char *body;              /* NUL-terminated; owned, freed by dsfs_response_clear */
	size_t len;
	char *location;     /* Location header or NULL; owned */
	char *content_type; /* Content-Type header or NULL; owned */
	char *captured;     /* the value of the request's capture header, or NULL; owned */
	char message[256];  /* transport reason when status is 0 */
	int attempts;       /* how many times the request was sent */
};

/* Frees what a response holds (malloc'd strings, whoever filled it) and zeroes it. */
static inline void dsfs_response_clear(struct dsfs_response *resp)
{
	free(resp->body);
	free(resp->location);
	free(resp->content_type);
	free(resp->captured);
	memset(resp, 0, sizeof(*resp));
}

/* What a transport does; ctx is the struct dsfs_transport's. Every op is thread-safe. */
struct dsfs_transport_ops {
	/*
	 * Sends req and waits for its answer into resp (zeroed or cleared;
	 * the caller clears it). 0 when an HTTP answer arrived, whatever its
	 * status; else a negative errno with resp->net and resp->message
	 * saying why. Retrying is the transport's own business: a POST, PUT
	 * or DELETE is never sent twice unless the server provably did not
	 * act on it.
	 */
	int (*request)(void *ctx, const struct dsfs_request *req, struct dsfs_response *resp);
	/* The base URL a request's path is relative to (no trailing '/'); lives as long as ctx. */
	const char *(*base)(const void *ctx);
	/* The bound on one request (-o timeout), in seconds. */
	double (*timeout)(const void *ctx);
};

/* A transport: its operations and their context (borrowed; outlives every user). */
struct dsfs_transport {
	const struct dsfs_transport_ops *ops;
	void *ctx;
};

#endif
