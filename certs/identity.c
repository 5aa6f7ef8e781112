/*
 * Peer identity: the subject CN and the DNS/IP SANs of a certificate.
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

/*
 * Whether s (len bytes) is text safe to log and match: no NUL, no ASCII
 * control character. Bytes >= 0x80 are UTF-8 that OpenSSL produced.
 */
static int
printable(const unsigned char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The subject's single CN as UTF-8 into cn; "" when there is none. */
static int
subject_cn(X509 *x, char *cn, size_t cnlen)
{
	X509_NAME	*name;
	X509_NAME_ENTRY	*ent;
	unsigned char	*utf8 = NULL;
	int		 i, n;

	cn[0] = '\0';
	if ((name = X509_get_subject_name(x)) == NULL)
		return 0;
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return 0;
	/* Two CNs: which one is "the" identity is anyone's guess. */
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return -1;
	if ((ent = X509_NAME_get_entry(name, i)) == NULL)
		return -1;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ent));
	if (n < 0)
		return -1;
	if ((size_t)n >= cnlen || !printable(utf8, (size_t)n)) {
		OPENSSL_free(utf8);
		return -1;
	}
	memcpy(cn, utf8, (size_t)n);
	cn[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

/* Append the DNS and IP SANs of x to id. */
static void
subject_sans(X509 *x, struct certs_identity *id)
{
	GENERAL_NAMES		*gens;
	const GENERAL_NAME	*g;
	const unsigned char	*p;
	struct certs_san	*san;
	int			 i, len;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		if (id->nsan >= CERTS_SAN_MAX)
			break;
		g = sk_GENERAL_NAME_value(gens, i);
		san = &id->san[id->nsan];
		if (g->type == GEN_DNS) {
			p = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			if (len <= 0 || len >= CERTS_SAN_LEN ||
			    !printable(p, (size_t)len))
				continue;
			san->type = CERTS_SAN_DNS;
			memcpy(san->value, p, (size_t)len);
			san->value[len] = '\0';
			id->nsan++;
		} else if (g->type == GEN_IPADD) {
			p = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			if (len == 4 && inet_ntop(AF_INET, p, san->value,
			    sizeof(san->value)) != NULL)
				;
			else if (len == 16 && inet_ntop(AF_INET6, p,
			    san->value, sizeof(san->value)) != NULL)
				;
			else
				continue;
			san->type = CERTS_SAN_IP;
			id->nsan++;
		}
	}
	GENERAL_NAMES_free(gens);
}

/* Identity named by a certificate, unverified (see certs.h). */
int
certs_x509_identity(X509 *x, struct certs_identity *id)
{
	memset(id, 0, sizeof(*id));
	if (x == NULL)
		return -1;
	if (subject_cn(x, id->cn, sizeof(id->cn)) == -1) {
		memset(id, 0, sizeof(*id));
		ERR_clear_error();
		return -1;
	}
	subject_sans(x, id);
	ERR_clear_error();
	return 0;
}

/* Identity of a verified peer (see certs.h). */
int
certs_peer_identity(SSL *ssl, struct certs_identity *id)
{
	X509	*x;

	memset(id, 0, sizeof(*id));
	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return -1;
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL)
		return -1;
	return certs_x509_identity(x, id);
}
