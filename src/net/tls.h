/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Start-up checks of TLS material with OpenSSL, so that a wrong file is
 * reported by name before anything is mounted rather than as a handshake
 * failure later.
 */
#ifndef DSFS_TLS_H
#define DSFS_TLS_H

#include <stddef.h>

/*
 * Checks that cert (PEM) and key (PEM) load and that the key belongs to the
 * certificate. 0, or -EINVAL with err saying which file is wrong and why.
 */
int dsfs_tls_check_keypair(const char *cert, const char *key, char *err, size_t errlen);

/* Checks that a CA file loads as at least one PEM certificate. 0 or -EINVAL with err. */
int dsfs_tls_check_ca(const char *cafile, char *err, size_t errlen);

#endif
