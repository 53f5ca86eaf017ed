/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The API session: the credentials, one login at a time (the dialect's
 * auth hooks say how), the authentication headers on every call, renewal
 * before a token or an idle session runs out and when the server answers
 * 401, and logout. Also the single place where a failed call is turned into
 * an errno and recorded with the server's message.
 */
#ifndef DSFS_SESSION_H
#define DSFS_SESSION_H

#include <stdbool.h>

#include "net/transport.h"

struct dsfs_session;

#define DSFS_CRED_MAX 16

/*
 * What a client proves itself with: key=value pairs from a credentials file,
 * an estate member or the environment; which keys count is the dialect's
 * (auth->keys). Values are secrets: wiped when cleared.
 */
struct dsfs_credentials {
	size_t n;
	char *key[DSFS_CRED_MAX], *value[DSFS_CRED_MAX];
};

/* The value of key, or NULL. */
const char *dsfs_credentials_get(const struct dsfs_credentials *c, const char *key);

/* Sets key to a copy of value (replacing it). 0, -ENOMEM, or -E2BIG past DSFS_CRED_MAX keys. */
int dsfs_credentials_set(struct dsfs_credentials *c, const char *key, const char *value);

/* Wipes and frees every value; c is then empty. */
void dsfs_credentials_clear(struct dsfs_credentials *c);

/* What a login produced: the secrets that authenticate later calls (wiped when dropped). */
struct dsfs_login {
	char *id;          /* session id or access token */
	char *token;       /* a bearer token sent beside the session id, or NULL */
	double expires_in; /* seconds id lives (0: until a 401) */
	bool proven;       /* the login itself made an authenticated call of the API: no probe is needed */
};

/* How a client proves who it is. */
struct dsfs_auth {
	/* The credentials-file keys it reads, NULL-terminated (dsfs_credentials). */
	const char *const *keys;
	/* Says whether c holds what logging in needs: 0, or -EINVAL with err naming what to give. */
	int (*check)(const struct dsfs_credentials *c, char *err, size_t errlen);
	/*
	 * Logs in with c, sending through dsfs_session_send (s's connection,
	 * no authentication). 0 with *out filled, or -errno with the reason
	 * recorded (dsfs_err_record).
	 */
	int (*login)(struct dsfs_session *s, const struct dsfs_credentials *c, struct dsfs_login *out);
	/* Writes the header lines that authenticate a call into buf; hdrs[i] point into it. Returns how many (<= 2). */
	size_t (*headers)(const struct dsfs_login *l, char *buf, size_t len, const char **hdrs);
	/* Ends the session on the server; NULL: it simply lapses. */
	void (*logout)(struct dsfs_session *s, const struct dsfs_login *l);
	/* The server ends a session idle this many seconds: log in again before that (0: no idle end). */
	double idle_expiry;
};

/*
 * What a session knows of its API: how to log in (auth), what to ask once
 * after the first login to be sure the URL is the API's root (probe: a
 * cheap authenticated GET from the API root that only this API answers
 * with 2xx; NULL: the login alone tells), and the message fields of its
 * error bodies, tried in order (error_fields; NULL: "error"). A dialect
 * gives these (dialect/dialect.h); the session calls back into auth.
 */
struct dsfs_session_api {
	const struct dsfs_auth *auth;
	const char *probe;
	const char *const *error_fields;
};

/*
 * A session over transport net (copied; its context must outlive the
 * session: dsfs_http_transport in the daemon, a fake API in unit tests)
 * for the API api describes (copied), with a copy of cred. NULL on ENOMEM.
 */
struct dsfs_session *dsfs_session_new(const struct dsfs_transport *net, const struct dsfs_session_api *api,
				      const struct dsfs_credentials *cred);

/* Logs out if logged in, then frees; NULL does nothing. */
void dsfs_session_free(struct dsfs_session *s);

/*
 * Logs in now, as the dialect's auth->login does. 0, or a negative errno
 * with the reason recorded (dsfs_err_describe). Thread-safe.
 */
int dsfs_session_login(struct dsfs_session *s);

/*
 * Right after a login: one GET of the dialect's probe (a list's smallest
 * page) with the login's authentication, unless the login itself made
 * such a call or the dialect has no probe. Tells a URL that is not the
 * API's root, or a login the API does not honour, at mount time. 0, or
 * -errno with the failure recorded, naming the whole URL asked (a 401 is
 * not followed by another login). Thread-safe.
 */
int dsfs_session_probe(struct dsfs_session *s);

/* Ends the session on the server (auth->logout), if it has one. Thread-safe. */
void dsfs_session_logout(struct dsfs_session *s);

/*
 * For auth hooks: sends req on the session's connection without any
 * authentication of the session's own, notes the endpoint's health and
 * records a failure like dsfs_session_call. 0 for a 2xx answer, else
 * -errno; resp holds the answer either way. Thread-safe.
 */
int dsfs_session_send(struct dsfs_session *s, const struct dsfs_request *req, struct dsfs_response *resp);

/* For dialect hooks: the value of credentials key (what the session was made with), or NULL. */
const char *dsfs_session_credential(struct dsfs_session *s, const char *key);

/* For dialect hooks: the bound on one request (-o timeout), in seconds. */
double dsfs_session_timeout(struct dsfs_session *s);

/* The API base URL the session's requests go to (what a request's path is relative to). */
const char *dsfs_session_base(struct dsfs_session *s);

/* Appends name=value, form-encoded (application/x-www-form-urlencoded), to buf of size len. */
void dsfs_session_form_add(char *buf, size_t len, const char *name, const char *value);

/*
 * For auth hooks: an OAuth2 token request. POSTs form (form-encoded; a
 * secret: wiped here) to url and takes the answer's access_token into
 * *token (malloc'd) and expires_in into *expires_in (0 when absent). 0, or
 * -errno with the reason recorded. Thread-safe.
 */
int dsfs_session_token_grant(struct dsfs_session *s, const char *url, char *form, char **token, double *expires_in);

/*
 * Sends req with the session header or bearer token (unless anonymous) and
 * waits for the answer. A token about to expire is renewed first. On 401 it
 * logs in again and resends once: the server never acts on a request it
 * answers 401. Returns 0 for a 2xx answer, else a negative
 * errno with the failure recorded for the calling thread. resp holds the
 * answer either way; the caller clears it. Thread-safe.
 */
int dsfs_session_call(struct dsfs_session *s, const struct dsfs_request *req, struct dsfs_response *resp,
		      bool anonymous);

/*
 * Copies the message of an error body into buf: the first of error_fields
 * it has ("error" when NULL), else a printable excerpt.
 */
void dsfs_session_error_message(const char *const *error_fields, const struct dsfs_response *resp, char *buf,
				size_t len);

/* Counts of logins made, for .dsfs/stats. */
unsigned long dsfs_session_logins(struct dsfs_session *s);

/* How the endpoint is doing, for .dsfs/status. Thread-safe. */
struct dsfs_session_health {
	bool reachable;       /* the last request got an HTTP answer (or none was sent yet) */
	bool logged_in;       /* a session or token is held */
	char last_error[300]; /* the last failure ("" if none): request, status, message */
	double since_error;   /* seconds since it, or -1 */
};
void dsfs_session_health(struct dsfs_session *s, struct dsfs_session_health *out);

#endif
