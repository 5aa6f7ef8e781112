/*
 * Error text and PEM file loading shared by libcerts.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs_impl.h"

/* Write a formatted message into the caller's error buffer. */
void
certs_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Like certs_seterr(), adding OpenSSL's reason; empties the error queue. */
void
certs_setsslerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list		 ap;
	unsigned long	 e;
	size_t		 n;
	char		 reason[256];

	/* The most specific reason is the first one queued. */
	e = ERR_peek_error();
	reason[0] = '\0';
	if (e != 0) {
		const char *r = ERR_reason_error_string(e);

		if (r != NULL)
			(void)snprintf(reason, sizeof(reason), "%s", r);
		else
			ERR_error_string_n(e, reason, sizeof(reason));
	}
	ERR_clear_error();
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (reason[0] != '\0' && n < errlen)
		(void)snprintf(err + n, errlen - n, ": %s", reason);
}

/* Read a whole regular file (at most CERTS_FILE_MAX bytes), NUL-terminated. */
int
certs_read_file(const char *path, char **bufp, size_t *lenp, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	*bufp = NULL;
	*lenp = 0;
	if (path == NULL || *path == '\0') {
		certs_seterr(err, errlen, "empty file name");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		certs_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		certs_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		certs_seterr(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > CERTS_FILE_MAX) {
		certs_seterr(err, errlen, "%s: larger than %d bytes", path,
		    CERTS_FILE_MAX);
		goto fail;
	}
	if ((buf = malloc(CERTS_FILE_MAX + 1)) == NULL) {
		certs_seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	for (;;) {
		n = read(fd, buf + len, CERTS_FILE_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			certs_seterr(err, errlen, "%s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CERTS_FILE_MAX) {
			certs_seterr(err, errlen, "%s: larger than %d bytes",
			    path, CERTS_FILE_MAX);
			goto fail;
		}
	}
	(void)close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	free(buf);
	(void)close(fd);
	return -1;
}

/* Whether the queued OpenSSL error only says "no (more) PEM blocks". */
static int
pem_at_end(void)
{
	unsigned long	 e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Every certificate of a PEM file, in order; at least one. */
STACK_OF(X509) *
certs_load_certs(const char *path, char *err, size_t errlen)
{
	STACK_OF(X509)	*sk = NULL;
	X509		*x;
	BIO		*bio = NULL;
	char		*buf;
	size_t		 len;

	if (certs_read_file(path, &buf, &len, err, errlen) == -1)
		return NULL;
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		certs_setsslerr(err, errlen, "%s", path);
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			certs_setsslerr(err, errlen, "%s", path);
			goto fail;
		}
	}
	if (!pem_at_end()) {
		certs_setsslerr(err, errlen, "%s: invalid certificate #%d",
		    path, sk_X509_num(sk) + 1);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		certs_seterr(err, errlen, "%s: no PEM certificate found "
		    "(expected -----BEGIN CERTIFICATE-----)", path);
		goto fail;
	}
	BIO_free(bio);
	free(buf);
	return sk;
fail:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	free(buf);
	return NULL;
}

/* Passphrase callback that refuses: keys must not be encrypted. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The private key of a PEM file (unencrypted). */
EVP_PKEY *
certs_load_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*pk;
	BIO		*bio;
	char		*buf;
	size_t		 len;

	if (certs_read_file(path, &buf, &len, err, errlen) == -1)
		return NULL;
	ERR_clear_error();
	if (strstr(buf, "-----BEGIN ") == NULL) {
		certs_seterr(err, errlen, "%s: not a PEM file (expected "
		    "-----BEGIN PRIVATE KEY-----)", path);
		OPENSSL_cleanse(buf, len);
		free(buf);
		return NULL;
	}
	if (strstr(buf, "PRIVATE KEY-----") == NULL) {
		certs_seterr(err, errlen, "%s: no PEM private key found "
		    "(expected -----BEGIN PRIVATE KEY-----)", path);
		OPENSSL_cleanse(buf, len);
		free(buf);
		return NULL;
	}
	if (strstr(buf, "ENCRYPTED") != NULL) {
		certs_seterr(err, errlen, "%s: encrypted private keys are "
		    "not supported", path);
		OPENSSL_cleanse(buf, len);
		free(buf);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		certs_setsslerr(err, errlen, "%s", path);
		OPENSSL_cleanse(buf, len);
		free(buf);
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pk == NULL) {
		if (pem_at_end())
			certs_seterr(err, errlen, "%s: no PEM private key "
			    "found", path);
		else
			certs_setsslerr(err, errlen, "%s: invalid private "
			    "key", path);
	}
	ERR_clear_error();
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return pk;
}

/* An ASN1_TIME as text ("Mar  1 12:00:00 2028 GMT"). */
int
certs_time_str(const ASN1_TIME *t, char *out, size_t outlen)
{
	BIO	*bio;
	char	*p;
	long	 n;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return -1;
	}
	if (ASN1_TIME_print(bio, t) != 1 ||
	    (n = BIO_get_mem_data(bio, &p)) <= 0) {
		BIO_free(bio);
		ERR_clear_error();
		return -1;
	}
	(void)snprintf(out, outlen, "%.*s", (int)n, p);
	BIO_free(bio);
	return 0;
}
