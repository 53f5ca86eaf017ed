/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The API session: login (POST /session with HTTP Basic credentials, bound
 * to one array), the session header on every call, renewal when the server
 * answers 401, and logout. Also the single place where a failed call is
 * turned into an errno and recorded with the server's message.
 */
#ifndef DSFS_SESSION_H
#define DSFS_SESSION_H

#include <stdbool.h>

#include "http.h"
#include "resources.h"

struct dsfs_session;

/* What a client proves itself with; which fields count depends on the dialect's auth. */
struct dsfs_credentials {
	const char *username, *password;       /* SESSION */
	const char *client_id, *client_secret; /* BEARER: OAuth2 client credentials */
	const char *token_url;                 /* BEARER: token endpoint, overriding the dialect's */
	const char *token;                     /* BEARER: an access token pasted from the console */
};

/*
 * A session over http (borrowed; must outlive the session) for dialect's
 * way of authenticating, with cred, and array (storage-plugin: hostname or
 * IP address to log in to; NULL sends an empty login body). Strings are
 * copied; secret copies are wiped on free. NULL on ENOMEM.
 */
struct dsfs_session *dsfs_session_new(struct dsfs_http *http, const struct dsfs_dialect *dialect,
				      const struct dsfs_credentials *cred, const char *array);

/* Logs out if logged in, then frees; NULL does nothing. */
void dsfs_session_free(struct dsfs_session *s);

/*
 * Logs in now (SESSION: POST /session; BEARER: gets a token, or checks a
 * pasted one with one GET). 0, or a negative errno with the reason recorded
 * (dsfs_err_describe). Thread-safe.
 */
int dsfs_session_login(struct dsfs_session *s);

/* Ends the session on the server (DELETE /session). Thread-safe. */
void dsfs_session_logout(struct dsfs_session *s);

/*
 * Sends req with the session header or bearer token (unless anonymous) and
 * waits for the answer. A token about to expire is renewed first. On 401 it
 * logs in again and resends once: the server never acts on a request it
 * answers 401. Returns 0 for a 2xx answer, else a negative
 * errno with the failure recorded for the calling thread. resp holds the
 * answer either way; the caller clears it. Thread-safe.
 */
int dsfs_session_call(struct dsfs_session *s, const struct dsfs_request *req,
		      struct dsfs_response *resp, bool anonymous);

/* Copies the "error" message of a CONTRACT error body into buf (or a summary of the body). */
void dsfs_session_error_message(const struct dsfs_response *resp, char *buf, size_t len);

/* Counts of logins made, for .dsfs/stats. */
unsigned long dsfs_session_logins(struct dsfs_session *s);

/* How the endpoint is doing, for .dsfs/status. Thread-safe. */
struct dsfs_session_health {
	bool reachable;        /* the last request got an HTTP answer (or none was sent yet) */
	bool logged_in;        /* a session or token is held */
	char last_error[300];  /* the last failure ("" if none): request, status, message */
	double since_error;    /* seconds since it, or -1 */
};
void dsfs_session_health(struct dsfs_session *s, struct dsfs_session_health *out);

#endif
