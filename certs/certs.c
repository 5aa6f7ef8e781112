/*
 * TLS contexts for dockgate's listeners and for its upstream connection,
 * and the file checks behind `dockgate --check`.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "certs_impl.h"

/* TLS 1.2: forward secrecy and AEAD only (Mozilla "intermediate", no DHE). */
#define CERTS_CIPHERS_12						\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CERTS_CIPHERS_13						\
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"		\
	"TLS_CHACHA20_POLY1305_SHA256"
#define CERTS_GROUPS	"X25519:P-256:P-384"
#define CERTS_SID_CTX	"dockgate"

/* Settings common to both sides: versions, ciphers, options. */
static int
ctx_common(SSL_CTX *ctx, char *err, size_t errlen)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		certs_setsslerr(err, errlen, "cannot restrict TLS versions");
		return -1;
	}
	if (SSL_CTX_set_cipher_list(ctx, CERTS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, CERTS_CIPHERS_13) != 1) {
		certs_setsslerr(err, errlen, "cannot set cipher list");
		return -1;
	}
	if (SSL_CTX_set1_groups_list(ctx, CERTS_GROUPS) != 1) {
		certs_setsslerr(err, errlen, "cannot set key exchange groups");
		return -1;
	}
	/*
	 * A client's FIN without close_notify (the docker CLI half-closing a
	 * hijacked stream) must read as EOF, not as an error.
	 */
	(void)SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	(void)SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* Reject a certificate that is not valid at this moment. */
static int
check_validity(X509 *x, const char *path, char *err, size_t errlen)
{
	char	 when[64];

	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		(void)certs_time_str(X509_get0_notBefore(x), when,
		    sizeof(when));
		certs_seterr(err, errlen, "%s: certificate is not valid "
		    "before %s", path, when);
		ERR_clear_error();
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		(void)certs_time_str(X509_get0_notAfter(x), when, sizeof(when));
		certs_seterr(err, errlen, "%s: certificate expired on %s",
		    path, when);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/*
 * Install cert (leaf first, then its chain) and key into ctx, after checking
 * the leaf's validity period, its purpose and that the key matches it.
 */
static int
ctx_use_pair(SSL_CTX *ctx, const char *cert, const char *key, int purpose,
    char *err, size_t errlen)
{
	STACK_OF(X509)	*sk;
	EVP_PKEY	*pk = NULL;
	X509		*leaf;
	int		 i, rv = -1;

	if (cert == NULL || key == NULL) {
		certs_seterr(err, errlen, "a certificate needs its key (and a "
		    "key its certificate)");
		return -1;
	}
	if ((sk = certs_load_certs(cert, err, errlen)) == NULL)
		return -1;
	leaf = sk_X509_value(sk, 0);
	if (check_validity(leaf, cert, err, errlen) == -1)
		goto out;
	if (X509_check_purpose(leaf, purpose, 0) != 1) {
		certs_seterr(err, errlen, "%s: certificate is not usable for "
		    "a TLS %s (keyUsage/extendedKeyUsage)", cert,
		    purpose == X509_PURPOSE_SSL_SERVER ? "server" : "client");
		ERR_clear_error();
		goto out;
	}
	if ((pk = certs_load_key(key, err, errlen)) == NULL)
		goto out;
	if (X509_check_private_key(leaf, pk) != 1) {
		certs_seterr(err, errlen, "%s: private key does not match "
		    "certificate %s", key, cert);
		ERR_clear_error();
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
		certs_setsslerr(err, errlen, "%s: certificate rejected", cert);
		goto out;
	}
	/* As SSL_CTX_use_certificate_chain_file() does, from our one read. */
	if (SSL_CTX_clear_chain_certs(ctx) != 1) {
		certs_setsslerr(err, errlen, "%s", cert);
		goto out;
	}
	for (i = 1; i < sk_X509_num(sk); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(sk, i)) != 1) {
			certs_setsslerr(err, errlen, "%s: chain certificate "
			    "#%d rejected", cert, i + 1);
			goto out;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		certs_setsslerr(err, errlen, "%s: private key rejected", key);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		certs_setsslerr(err, errlen, "%s: private key does not match "
		    "certificate %s", key, cert);
		goto out;
	}
	rv = 0;
out:
	EVP_PKEY_free(pk);
	sk_X509_pop_free(sk, X509_free);
	ERR_clear_error();
	return rv;
}

/*
 * Load the trusted certificates of a PEM bundle into ctx's store. For a
 * server (client certificates) they must be CAs and their names are sent
 * to clients; an upstream engine's self-signed certificate may be pinned.
 */
static int
ctx_load_ca(SSL_CTX *ctx, const char *ca, int server, char *err,
    size_t errlen)
{
	STACK_OF(X509)		*sk;
	STACK_OF(X509_NAME)	*cas = NULL;
	X509_STORE		*store;
	X509			*x;
	int			 i, rv = -1;

	if ((sk = certs_load_certs(ca, err, errlen)) == NULL)
		return -1;
	if ((store = SSL_CTX_get_cert_store(ctx)) == NULL) {
		certs_setsslerr(err, errlen, "%s: no certificate store", ca);
		goto out;
	}
	if (server && (cas = sk_X509_NAME_new_null()) == NULL) {
		certs_setsslerr(err, errlen, "%s", ca);
		goto out;
	}
	for (i = 0; i < sk_X509_num(sk); i++) {
		x = sk_X509_value(sk, i);
		if (server && X509_check_ca(x) == 0) {
			certs_seterr(err, errlen, "%s: certificate #%d is not "
			    "a CA certificate", ca, i + 1);
			ERR_clear_error();
			goto out;
		}
		if (X509_STORE_add_cert(store, x) != 1) {
			unsigned long e = ERR_peek_last_error();

			/* A repeated certificate is harmless. */
			if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
				certs_setsslerr(err, errlen, "%s: certificate "
				    "#%d rejected", ca, i + 1);
				goto out;
			}
			ERR_clear_error();
		}
		if (cas != NULL) {
			X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));

			if (n == NULL || sk_X509_NAME_push(cas, n) <= 0) {
				X509_NAME_free(n);
				certs_setsslerr(err, errlen, "%s", ca);
				goto out;
			}
		}
	}
	if (cas != NULL) {
		/* The acceptable CA names sent in the CertificateRequest. */
		SSL_CTX_set_client_CA_list(ctx, cas);
		cas = NULL;
	}
	rv = 0;
out:
	sk_X509_NAME_pop_free(cas, X509_NAME_free);
	sk_X509_pop_free(sk, X509_free);
	ERR_clear_error();
	return rv;
}

/* Server context for tcp listeners (see certs.h). */
SSL_CTX *
certs_server_ctx(const char *cert, const char *key, const char *ca,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		certs_setsslerr(err, errlen, "cannot create TLS context");
		return NULL;
	}
	if (ctx_common(ctx, err, errlen) == -1)
		goto fail;
	(void)SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (ctx_use_pair(ctx, cert, key, X509_PURPOSE_SSL_SERVER, err,
	    errlen) == -1)
		goto fail;
	/* Without it, resuming a session that carried a client cert fails. */
	if (SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)CERTS_SID_CTX,
	    sizeof(CERTS_SID_CTX) - 1) != 1) {
		certs_setsslerr(err, errlen, "cannot set session id context");
		goto fail;
	}
	if (ca != NULL) {
		if (ctx_load_ca(ctx, ca, 1, err, errlen) == -1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		SSL_CTX_set_verify_depth(ctx, CERTS_VERIFY_DEPTH);
		if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
			certs_setsslerr(err, errlen, "cannot set purpose");
			goto fail;
		}
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Client context for the upstream engine (see certs.h). */
SSL_CTX *
certs_client_ctx(const char *ca, const char *cert, const char *key,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		certs_setsslerr(err, errlen, "cannot create TLS context");
		return NULL;
	}
	if (ctx_common(ctx, err, errlen) == -1)
		goto fail;
	if (ca != NULL) {
		if (ctx_load_ca(ctx, ca, 0, err, errlen) == -1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		certs_setsslerr(err, errlen, "cannot load the system trust "
		    "store");
		goto fail;
	}
	if ((cert != NULL || key != NULL) &&
	    ctx_use_pair(ctx, cert, key, X509_PURPOSE_SSL_CLIENT, err,
	    errlen) == -1)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, CERTS_VERIFY_DEPTH);
	if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) != 1) {
		certs_setsslerr(err, errlen, "cannot set purpose");
		goto fail;
	}
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Name the server an upstream SSL must find in the certificate. */
int
certs_client_set_host(SSL *ssl, const char *host, char *err, size_t errlen)
{
	X509_VERIFY_PARAM	*vp;
	struct in6_addr		 a6;
	struct in_addr		 a4;
	char			 buf[256];
	size_t			 len;

	if (host == NULL || *host == '\0') {
		certs_seterr(err, errlen, "empty upstream host name");
		return -1;
	}
	len = strlen(host);
	if (host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
	} else if (len < sizeof(buf))
		memcpy(buf, host, len + 1);
	else {
		certs_seterr(err, errlen, "%s: host name too long", host);
		return -1;
	}
	if (buf[0] == '\0') {
		certs_seterr(err, errlen, "%s: empty host name", host);
		return -1;
	}
	vp = SSL_get0_param(ssl);
	if (inet_pton(AF_INET, buf, &a4) == 1 ||
	    inet_pton(AF_INET6, buf, &a6) == 1) {
		/* No SNI for addresses (RFC 6066, section 3). */
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, buf) != 1) {
			certs_setsslerr(err, errlen, "%s: bad address", host);
			return -1;
		}
		ERR_clear_error();
		return 0;
	}
	X509_VERIFY_PARAM_set_hostflags(vp,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_host(vp, buf, 0) != 1 ||
	    SSL_set_tlsext_host_name(ssl, buf) != 1) {
		certs_setsslerr(err, errlen, "%s: bad host name", host);
		return -1;
	}
	ERR_clear_error();
	return 0;
}

/* Load the files as certs_server_ctx() would, for `dockgate --check`. */
int
certs_check_files(const char *cert, const char *key, const char *ca,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if (cert == NULL || key == NULL) {
		certs_seterr(err, errlen, "--tls-cert and --tls-key go "
		    "together");
		return -1;
	}
	if ((ctx = certs_server_ctx(cert, key, ca, err, errlen)) == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

/* One line about a certificate file: its CN and expiry. */
int
certs_describe(const char *cert, char *out, size_t outlen, char *err,
    size_t errlen)
{
	STACK_OF(X509)		*sk;
	struct certs_identity	 id;
	char			 when[64], sans[512];
	X509			*x;
	size_t			 i, n;
	int			 r;

	if (outlen > 0)
		out[0] = '\0';
	if ((sk = certs_load_certs(cert, err, errlen)) == NULL)
		return -1;
	x = sk_X509_value(sk, 0);
	if (certs_x509_identity(x, &id) == -1)
		(void)snprintf(id.cn, sizeof(id.cn), "?");
	if (certs_time_str(X509_get0_notAfter(x), when, sizeof(when)) == -1)
		(void)snprintf(when, sizeof(when), "?");
	sans[0] = '\0';
	for (i = 0, n = 0; i < id.nsan && n < sizeof(sans); i++) {
		r = snprintf(sans + n, sizeof(sans) - n, "%s%s",
		    i == 0 ? ", SAN " : ",", id.san[i].value);
		if (r < 0)
			break;
		n += (size_t)r;
	}
	(void)snprintf(out, outlen, "CN=%s%s, %s %s", id.cn, sans,
	    X509_cmp_current_time(X509_get0_notAfter(x)) <= 0 ?
	    "expired" : "expires", when);
	sk_X509_pop_free(sk, X509_free);
	ERR_clear_error();
	return 0;
}
