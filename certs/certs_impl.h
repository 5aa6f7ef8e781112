/*
 * Helpers shared by the files of libcerts. Not part of the API.
 */
#ifndef DOCKGATE_CERTS_IMPL_H
#define DOCKGATE_CERTS_IMPL_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CERTS_FILE_MAX	(1024 * 1024)	/* largest PEM file we read */

void	 certs_seterr(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	 certs_setsslerr(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	 certs_read_file(const char *, char **, size_t *, char *, size_t);
STACK_OF(X509) *certs_load_certs(const char *, char *, size_t);
EVP_PKEY *certs_load_key(const char *, char *, size_t);
int	 certs_time_str(const ASN1_TIME *, char *, size_t);

#endif /* DOCKGATE_CERTS_IMPL_H */
