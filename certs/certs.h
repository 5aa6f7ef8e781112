/*
 * dockgate TLS material: contexts, checks, peer identity, generation.
 *
 * Pure OpenSSL: no libevent, no logging, no global state of our own. A
 * function that can fail takes "char *err, size_t errlen" and, on failure,
 * writes one line of text there that names the file at fault (err may be
 * NULL). Every function leaves the thread's OpenSSL error queue empty, so
 * that stale entries never confuse a later SSL_get_error().
 *
 * SSL_CTX objects follow OpenSSL's reference counting: a returned context
 * holds one reference for the caller (SSL_CTX_free() drops it, and each SSL
 * made from it holds its own), so the daemon can swap in a new context on
 * reload while connections in flight keep the old one alive.
 */
#ifndef DOCKGATE_CERTS_H
#define DOCKGATE_CERTS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CERTS_CN_MAX		256	/* bytes for the CN, NUL included */
#define CERTS_SAN_MAX		16	/* SANs kept; further ones are ignored */
#define CERTS_SAN_LEN		256	/* bytes for one SAN, NUL included */
#define CERTS_VERIFY_DEPTH	4	/* intermediate CAs allowed in a chain */

/* Subject alternative name kinds kept in an identity. */
enum certs_san_type {
	CERTS_SAN_DNS = 1,
	CERTS_SAN_IP = 2
};

/* One subject alternative name, as text ("host.example", "10.0.0.1", "::1"). */
struct certs_san {
	enum certs_san_type	 type;
	char			 value[CERTS_SAN_LEN];
};

/* Who a verified peer certificate names. */
struct certs_identity {
	char			 cn[CERTS_CN_MAX];	/* "" when the subject has no CN */
	size_t			 nsan;
	struct certs_san	 san[CERTS_SAN_MAX];
};

/*
 * Server context for tcp listeners: TLS 1.2 and 1.3 only, ECDHE with AEAD
 * ciphers for 1.2, no renegotiation, a peer FIN without close_notify read
 * as a plain EOF (SSL_OP_IGNORE_UNEXPECTED_EOF). cert may hold a chain
 * (leaf first). The certificate must be valid now and match key. With ca,
 * clients must present a certificate that chains to it (purpose sslclient);
 * without, no client certificate is requested. Returns a new context, or
 * NULL with err filled.
 */
SSL_CTX	*certs_server_ctx(const char *cert, const char *key, const char *ca,
	    char *err, size_t errlen);

/*
 * Client context for dockgate's own connection to a TLS engine. The server
 * is always verified (purpose sslserver): against ca when given, else
 * against the system trust store. cert and key (a client certificate) are
 * optional but go together. Call certs_client_set_host() on each SSL.
 * Returns a new context, or NULL with err filled.
 */
SSL_CTX	*certs_client_ctx(const char *ca, const char *cert, const char *key,
	    char *err, size_t errlen);

/*
 * Make an SSL from a certs_client_ctx() context check the server's name:
 * a DNS name (also sent as SNI) or an IP address literal ("[::1]" allowed).
 * Returns 0, or -1 with err filled.
 */
int	 certs_client_set_host(SSL *ssl, const char *host, char *err,
	    size_t errlen);

/*
 * Identity of the peer of a finished handshake: only when the peer sent a
 * certificate and it verified (SSL_get_verify_result() == X509_V_OK).
 * Returns 0 with id filled, -1 otherwise (id is then zeroed).
 */
int	 certs_peer_identity(SSL *ssl, struct certs_identity *id);

/*
 * Identity named by a certificate, without any verification (for tests and
 * for callers that verified it). Returns -1 (id zeroed) when the subject
 * has several CNs, or a CN that is not printable UTF-8 or too long.
 * SANs that are not DNS or IP, or are malformed, are skipped.
 */
int	 certs_x509_identity(X509 *x, struct certs_identity *id);

/*
 * What `dockgate --check` does with the TLS options: load cert and key
 * (and ca when not NULL) exactly as certs_server_ctx() would. Returns 0,
 * or -1 with err filled.
 */
int	 certs_check_files(const char *cert, const char *key, const char *ca,
	    char *err, size_t errlen);

/*
 * One line about a certificate file for a --check summary, e.g.
 * "CN=dockgate.example, expires Mar  1 12:00:00 2028 GMT". Returns 0, or
 * -1 with err filled.
 */
int	 certs_describe(const char *cert, char *out, size_t outlen, char *err,
	    size_t errlen);

/*
 * Certificate generation (the dockgate-certs tool). Output files: a CA
 * directory gets ca.pem and ca-key.pem; a leaf directory gets ca.pem,
 * cert.pem and key.pem (the docker CLI's DOCKER_CERT_PATH layout). Keys
 * are written 0600, certificates 0644; directories are created (0700 for
 * a CA, 0755 otherwise) when missing.
 */
enum certs_kind {
	CERTS_KIND_CA = 1,
	CERTS_KIND_SERVER,
	CERTS_KIND_CLIENT
};

struct certs_genopts {
	enum certs_kind	 kind;
	const char	*cn;		/* subject CN; server: first name if NULL */
	const char	*const *names;	/* server: DNS names (IP literals move to ips) */
	size_t		 nnames;
	const char	*const *ips;	/* server: IP addresses */
	size_t		 nips;
	int		 days;		/* validity; 0 = default (3650 CA, 825 leaf) */
	long		 offset_secs;	/* shift of the validity window (tests) */
	int		 rsa;		/* RSA 3072 instead of EC P-256 */
	int		 force;		/* replace existing files */
};

#define CERTS_CA_DAYS		3650
#define CERTS_LEAF_DAYS		825
#define CERTS_MAX_DAYS		36500

/* Make a CA in outdir. Returns 0, or -1 with err filled. */
int	 certs_gen_ca(const char *outdir, const struct certs_genopts *o,
	    char *err, size_t errlen);

/*
 * Make a server or client certificate signed by the CA in cadir (ca.pem,
 * ca-key.pem) in outdir. Returns 0, or -1 with err filled.
 */
int	 certs_gen_leaf(const char *cadir, const char *outdir,
	    const struct certs_genopts *o, char *err, size_t errlen);

#endif /* DOCKGATE_CERTS_H */
