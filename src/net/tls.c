// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * OpenSSL checks of certificate files given on the command line. The
 * transfers themselves use libcurl's OpenSSL build (net/http.c).
 */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ssl_reason(void)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "not PEM";
}

/*
 * Opens a certificate or key file for reading, refusing anything but a
 * regular file: a FIFO or a device named by mistake would otherwise hold
 * start-up in open(2) or read(2) for ever.
 */
static FILE *open_regular(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat sb;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "%s%s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s%s: not a regular file (a FIFO, device or directory cannot hold it)", what,
			 path);
	} else if (fcntl(fd, F_SETFL, 0) < 0 || !(f = fdopen(fd, "r"))) {
		snprintf(err, errlen, "%s%s: %s", what, path, strerror(errno));
	} else {
		return f;
	}
	close(fd);
	return NULL;
}

static X509 *load_cert(const char *path, char *err, size_t errlen)
{
	FILE *f = open_regular(path, "", err, errlen);
	X509 *x;

	if (!f)
		return NULL;
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
	f = open_regular(key, "client key ", err, errlen);
	if (!f)
		goto out;
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
