// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * OpenSSL checks of certificate files given on the command line. The
 * transfers themselves use libcurl's OpenSSL build (http.c).
 */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>

static const char *ssl_reason(void)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "not PEM";
}

static X509 *load_cert(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (!f) {
		snprintf(err, errlen, "%s: %m", path);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		snprintf(err, errlen, "%s: not a PEM certificate (%s)", path, ssl_reason());
	return x;
}

int dsfs_tls_check_keypair(const char *cert, const char *key, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	X509 *x;
	FILE *f;
	int ret = -EINVAL;

	x = load_cert(cert, err, errlen);
	if (!x)
		return -EINVAL;
	f = fopen(key, "r");
	if (!f) {
		snprintf(err, errlen, "client key %s: %m", key);
		goto out;
	}
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pk) {
		snprintf(err, errlen, "client key %s: not an unencrypted PEM private key (%s)", key, ssl_reason());
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "client key %s does not belong to client certificate %s", key, cert);
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_free(pk);
	X509_free(x);
	return ret;
}

int dsfs_tls_check_ca(const char *cafile, char *err, size_t errlen)
{
	X509 *x = load_cert(cafile, err, errlen);

	if (!x)
		return -EINVAL;
	X509_free(x);
	return 0;
}
