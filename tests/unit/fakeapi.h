/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An in-memory fake of the APIs dsfs speaks, behind the transport seam
 * (src/net/transport.h), for unit tests of the session, the cache and the task
 * poller: logins that hand out tokens it can later refuse (401), lists
 * paged by their limit/start or offset parameters (with a server's quirks
 * on request), objects, answers given in sequence (a task that
 * progresses), and a log of every request. Thread-safe: the task poller
 * sends from its own thread.
 */
#ifndef DSFS_FAKEAPI_H
#define DSFS_FAKEAPI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "cache/cache.h"
#include "dialect/dialect.h"
#include "net/session.h"
#include "net/transport.h"

#define FAKE_BASE "http://fake.invalid/api"

struct fake_api;

/*
 * An empty API. It answers logins whatever the dialect: POST /session
 * ({"sessionId", "session_id"}), a POST to a URL with "token" in it (an
 * OAuth2 grant: {"access_token", "expires_in"}), GET /accounts (cloudsync's
 * account), DELETE /session[/current] (logout). Any other request must
 * carry a token it handed out and has not refused since (in any dialect's
 * header), else it answers 401. Each call gives the test 30 more seconds
 * (alarm): one that would hang is killed instead. NULL on ENOMEM.
 */
struct fake_api *fake_new(void);
void fake_free(struct fake_api *f);

/* The transport that sends to f: what dsfs_session_new takes. */
struct dsfs_transport fake_transport(struct fake_api *f);

/* Seconds a token lives, answered by a grant as expires_in (0, the default: not said). */
void fake_set_expires_in(struct fake_api *f, double seconds);

/* Every token handed out so far is refused (401) from now on: a session that ended on the server. */
void fake_expire(struct fake_api *f);

/* While set, every login is refused with 401 (a changed password). */
void fake_refuse_logins(struct fake_api *f, bool refuse);

/* How a list route pages. Zeroed: pages as asked, the answer an object holding the array at key. */
struct fake_list_opts {
	const char *key;         /* the array's key in the answer; NULL: the answer is the array */
	const char *total_field; /* the answer states the item count in this field; NULL: it does not */
	long total;              /* the count it states, when > 0 (a server that miscounts); else the real one */
	unsigned cap;            /* the most items a page holds, whatever the limit asked (0: no cap) */
	bool ignore_start;       /* every page starts at the first item (a server that ignores start) */
};

/*
 * GET path (any query; its limit and start or offset parameters page it)
 * answers items (an array, taken; replaces an earlier list of path), and
 * GET path/<id> the item whose "id" is <id>.
 */
void fake_list(struct fake_api *f, const char *path, const struct fake_list_opts *o, json_object *items);

/*
 * An array of n objects {"id": "<prefix>-<i>", "name": "<prefix><i>",
 * "creationTime": "2024-01-01T00:00:00Z", "pad": <pad bytes of 'x'>},
 * i from 0, ids zero-padded to three digits so they sort as numbers.
 */
json_object *fake_items(const char *prefix, int n, size_t pad);

/*
 * method path answers status with body (copied; NULL: none). A path with
 * a '?' must match whole; one without matches whatever the query. A later
 * answer for the same method and path replaces it. Status 0: no HTTP
 * answer arrives (the connection dropped after the request was sent).
 */
void fake_answer(struct fake_api *f, const char *method, const char *path, long status, const char *body);

/*
 * method path answers bodies[0] with statuses[0], then bodies[1] with
 * statuses[1] ... (statuses NULL: all 200), the last one repeated: a task
 * that progresses. n at most 16.
 */
void fake_sequence(struct fake_api *f, const char *method, const char *path, const char *const *bodies,
		   const long *statuses, size_t n);

/* One logged request. */
struct fake_req {
	char *method, *path, *body;
	char *content_type; /* of the body, as the transport would send it (NULL: no body) */
	bool authenticated; /* it carried a token the fake had handed out (valid or not) */
	long status;        /* what the fake answered (0: no answer) */
};

/*
 * How many logged requests have method (NULL: any) and a path starting
 * with prefix (NULL: any) and, when status >= 0, were answered with it.
 */
size_t fake_count(struct fake_api *f, const char *method, const char *prefix, long status);

/* How many requests are logged, and the i-th (valid until fake_log_clear or fake_free). */
size_t fake_log_n(struct fake_api *f);
const struct fake_req *fake_log_at(struct fake_api *f, size_t i);

/* The first logged request with method and a path starting with prefix, or NULL. */
const struct fake_req *fake_find(struct fake_api *f, const char *method, const char *prefix);

/* Forgets the log. */
void fake_log_clear(struct fake_api *f);

/*
 * A session of dialect (named as -o api=) over f, with credentials that
 * dialect's login takes from f (a user and password, or a client id and
 * secret). NULL on failure.
 */
struct dsfs_session *fake_session(struct fake_api *f, const char *dialect);

/*
 * The location of path ("servers/s1/volumes", '/'-separated, from the
 * root) in c: 0 or the lookup's -errno. Put *out with dsfs_cache_put.
 */
int fake_resolve(struct dsfs_cache *c, const char *path, struct dsfs_loc *out);

/* The entries of directory path, ' '-separated in listing order, into buf: 0 or -errno. */
int fake_listdir(struct dsfs_cache *c, const char *path, char *buf, size_t len);

/* The content of file path (a reference to drop) in *out: 0 or -errno. */
int fake_open(struct dsfs_cache *c, const char *path, struct dsfs_blob **out);

#endif
