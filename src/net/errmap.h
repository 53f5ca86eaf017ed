/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one table that turns what went wrong on the wire into an errno, and the
 * per-thread record of the failing request that the FUSE boundary logs once.
 */
#ifndef DSFS_ERRMAP_H
#define DSFS_ERRMAP_H

#include <stddef.h>

/* Transport failures, as the HTTP layer classifies them (no HTTP answer). */
enum dsfs_net_error {
	DSFS_NET_OK = 0,
	DSFS_NET_TIMEOUT,  /* the whole-request or connect timeout ran out */
	DSFS_NET_CONNECT,  /* refused or unreachable */
	DSFS_NET_RESOLVE,  /* host name did not resolve */
	DSFS_NET_TLS,      /* handshake or certificate verification failed */
	DSFS_NET_SEND,     /* connection lost while sending */
	DSFS_NET_RECV,     /* connection lost while receiving, or a truncated answer */
	DSFS_NET_TOOBIG,   /* answer larger than the configured limit */
	DSFS_NET_PROTOCOL, /* not HTTP, or not what the API promises (bad JSON, wrong shape) */
	DSFS_NET_NOMEM,
	DSFS_NET_OTHER,
	DSFS_NET_CANCELLED, /* the caller gave up (its reader was interrupted, or the mount ends) */
};

/* Negative errno for an HTTP status; 0 for 1xx-3xx. Thread-safe. */
int dsfs_errmap_status(long status);

/* Negative errno for a transport failure. Thread-safe. */
int dsfs_errmap_net(enum dsfs_net_error err);

/* Short English phrase for a transport failure ("connection refused", ...). */
const char *dsfs_errmap_net_str(enum dsfs_net_error err);

/*
 * Records, for the calling thread, the request that failed: method and API
 * path, HTTP status (0 for a transport failure) and the server's message or
 * the transport reason. A later record replaces an earlier one.
 */
void dsfs_err_record(const char *method, const char *path, long status, const char *message);

/* Forgets the calling thread's record (call at the start of each operation). */
void dsfs_err_clear(void);

/*
 * Writes the calling thread's record as "GET /server/0: 404: no such server"
 * into buf and returns buf, or returns NULL when nothing was recorded.
 */
const char *dsfs_err_describe(char *buf, size_t len);

#endif
