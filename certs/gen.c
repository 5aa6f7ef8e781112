/*
 * Certificate generation for dockgate-certs: a CA, server certificates and
 * client certificates in the docker CLI's DOCKER_CERT_PATH layout.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "certs_impl.h"

#define CN_MAX		64		/* ub-common-name (RFC 5280) */
#define DNS_MAX		253
#define BACKDATE_SECS	300		/* tolerate clocks a little behind */
#define NFILES		3

/* One file to write: its name in the output directory and its bytes. */
struct outfile {
	const char	*name;
	mode_t		 mode;
	BIO		*data;		/* memory BIO holding the PEM */
	char		 path[PATH_MAX];
	char		 tmp[PATH_MAX];
	int		 skip;		/* identical file already there */
};

/* A fresh key pair: EC P-256, or RSA 3072. */
static EVP_PKEY *
gen_key(int rsa, char *err, size_t errlen)
{
	EVP_PKEY	*pk;

	pk = rsa ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256");
	if (pk == NULL)
		certs_setsslerr(err, errlen, "cannot generate %s key",
		    rsa ? "RSA 3072" : "EC P-256");
	return pk;
}

/* A random positive 127-bit serial number (fits 16 DER bytes). */
static int
set_serial(X509 *x, char *err, size_t errlen)
{
	unsigned char	 buf[16];
	BIGNUM		*bn;
	int		 rv = -1;

	if (RAND_bytes(buf, sizeof(buf)) != 1) {
		certs_setsslerr(err, errlen, "cannot get random bytes");
		return -1;
	}
	buf[0] &= 0x7f;
	buf[0] |= 0x40;		/* never zero, always 16 bytes */
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		certs_setsslerr(err, errlen, "cannot set serial number");
	else
		rv = 0;
	BN_free(bn);
	return rv;
}

/* Whether s is safe text for a subject CN. */
static int
valid_cn(const char *s)
{
	const unsigned char	*p;

	if (s == NULL || *s == '\0' || strlen(s) > CN_MAX)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* Whether s is a DNS name for a SAN: LDH labels, an optional "*." first. */
static int
valid_dns(const char *s)
{
	size_t	 label = 0, len = strlen(s);
	size_t	 i;

	if (len == 0 || len > DNS_MAX)
		return 0;
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '_')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[i - 1] != '-';
}

/* Whether s is an IPv4 or IPv6 address literal. */
static int
is_ip(const char *s)
{
	unsigned char	 buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* Add one extension written in openssl.cnf syntax (fixed strings only). */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value, char *err,
    size_t errlen)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 rv = 0;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value)) == NULL) {
		certs_setsslerr(err, errlen, "cannot make extension %s",
		    OBJ_nid2sn(nid));
		return -1;
	}
	if (X509_add_ext(x, ext, -1) != 1) {
		certs_setsslerr(err, errlen, "cannot add extension %s",
		    OBJ_nid2sn(nid));
		rv = -1;
	}
	X509_EXTENSION_free(ext);
	return rv;
}

/* Push one DNS or IP general name; built directly, never parsed. */
static int
push_name(GENERAL_NAMES *gens, const char *s, int ip)
{
	GENERAL_NAME	*g;
	ASN1_IA5STRING	*ia5;
	ASN1_OCTET_STRING *oct;

	if ((g = GENERAL_NAME_new()) == NULL)
		return -1;
	if (ip) {
		if ((oct = a2i_IPADDRESS(s)) == NULL) {
			GENERAL_NAME_free(g);
			return -1;
		}
		GENERAL_NAME_set0_value(g, GEN_IPADD, oct);
	} else {
		if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(ia5, s, -1) != 1) {
			ASN1_IA5STRING_free(ia5);
			GENERAL_NAME_free(g);
			return -1;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
	}
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

/* The server's subjectAltName: every name, then every address. */
static int
add_san(X509 *x, const struct certs_genopts *o, char *err, size_t errlen)
{
	GENERAL_NAMES	*gens;
	size_t		 i;
	int		 rv = -1;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL) {
		certs_setsslerr(err, errlen, "cannot make subjectAltName");
		return -1;
	}
	for (i = 0; i < o->nnames; i++)
		if (push_name(gens, o->names[i], is_ip(o->names[i])) == -1) {
			certs_setsslerr(err, errlen, "%s: cannot add name",
			    o->names[i]);
			goto out;
		}
	for (i = 0; i < o->nips; i++)
		if (push_name(gens, o->ips[i], 1) == -1) {
			certs_setsslerr(err, errlen, "%s: cannot add address",
			    o->ips[i]);
			goto out;
		}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1) {
		certs_setsslerr(err, errlen, "cannot add subjectAltName");
		goto out;
	}
	rv = 0;
out:
	GENERAL_NAMES_free(gens);
	return rv;
}

/* Check the options of a generation request; also picks the CN. */
static int
check_opts(const struct certs_genopts *o, const char **cnp, int *daysp,
    char *err, size_t errlen)
{
	size_t	 i;

	*cnp = o->cn;
	*daysp = o->days != 0 ? o->days :
	    o->kind == CERTS_KIND_CA ? CERTS_CA_DAYS : CERTS_LEAF_DAYS;
	if (*daysp < 1 || *daysp > CERTS_MAX_DAYS) {
		certs_seterr(err, errlen, "days must be 1 to %d",
		    CERTS_MAX_DAYS);
		return -1;
	}
	for (i = 0; i < o->nnames; i++)
		if (!is_ip(o->names[i]) && !valid_dns(o->names[i])) {
			certs_seterr(err, errlen, "%s: not a valid DNS name",
			    o->names[i]);
			return -1;
		}
	for (i = 0; i < o->nips; i++)
		if (!is_ip(o->ips[i])) {
			certs_seterr(err, errlen, "%s: not an IP address",
			    o->ips[i]);
			return -1;
		}
	switch (o->kind) {
	case CERTS_KIND_CA:
		if (o->nnames > 0 || o->nips > 0) {
			certs_seterr(err, errlen, "names and addresses are for "
			    "server certificates");
			return -1;
		}
		if (*cnp == NULL)
			*cnp = "dockgate CA";
		break;
	case CERTS_KIND_SERVER:
		if (o->nnames == 0 && o->nips == 0) {
			certs_seterr(err, errlen, "a server certificate needs "
			    "at least one name or address");
			return -1;
		}
		if (*cnp == NULL)
			*cnp = o->nnames > 0 ? o->names[0] : o->ips[0];
		break;
	case CERTS_KIND_CLIENT:
		if (*cnp == NULL) {
			certs_seterr(err, errlen, "a client certificate needs "
			    "a CN");
			return -1;
		}
		if (o->nnames > 0 || o->nips > 0) {
			certs_seterr(err, errlen, "names and addresses are for "
			    "server certificates");
			return -1;
		}
		break;
	default:
		certs_seterr(err, errlen, "unknown certificate kind");
		return -1;
	}
	if (!valid_cn(*cnp)) {
		certs_seterr(err, errlen, "\"%s\": a CN must be 1 to %d "
		    "printable characters", *cnp, CN_MAX);
		return -1;
	}
	return 0;
}

/*
 * A new unsigned certificate for pk: version 3, random serial, subject CN,
 * the issuer's name (its own when issuer is NULL), validity window.
 */
static X509 *
new_cert(EVP_PKEY *pk, X509 *issuer, const char *cn, int days, long offset,
    char *err, size_t errlen)
{
	X509		*x;
	X509_NAME	*name;

	if ((x = X509_new()) == NULL) {
		certs_setsslerr(err, errlen, "cannot make certificate");
		return NULL;
	}
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    set_serial(x, err, errlen) == -1)
		goto fail;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1) {
		certs_setsslerr(err, errlen, "\"%s\": cannot set CN", cn);
		goto fail;
	}
	if (X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name) != 1 ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0,
	    offset - BACKDATE_SECS, NULL) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, offset,
	    NULL) == NULL ||
	    X509_set_pubkey(x, pk) != 1) {
		certs_setsslerr(err, errlen, "cannot fill certificate");
		goto fail;
	}
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Free the buffers of the output files and remove leftover temp files. */
static void
outfiles_free(struct outfile *f, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (f[i].tmp[0] != '\0')
			(void)unlink(f[i].tmp);
		BIO_free(f[i].data);
		f[i].data = NULL;
	}
}

/* Make dir (and missing parents, 0755); dir itself gets mode when made. */
static int
make_dir(const char *dir, mode_t mode, char *err, size_t errlen)
{
	struct stat	 st;
	char		 buf[PATH_MAX];
	char		*p;

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
		certs_seterr(err, errlen, "%s: path too long", dir);
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST) {
			certs_seterr(err, errlen, "%s: %s", buf,
			    strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST) {
		certs_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1) {
		certs_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		certs_seterr(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}

/* Whether the file at path holds exactly the bytes of data. */
static int
same_content(const char *path, BIO *data)
{
	char	*buf, *p;
	size_t	 len;
	long	 n;
	int	 same;

	if (certs_read_file(path, &buf, &len, NULL, 0) == -1)
		return 0;
	n = BIO_get_mem_data(data, &p);
	same = n >= 0 && (size_t)n == len && memcmp(buf, p, len) == 0;
	free(buf);
	return same;
}

/* Write all bytes of buf to fd. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write the files into dir, all or (as far as the file system lets us)
 * none: refuse existing files unless force (an identical one is kept),
 * stage each in a temporary file with its final mode, then move them in.
 */
static int
write_files(const char *dir, struct outfile *f, size_t n, int force,
    char *err, size_t errlen)
{
	struct stat	 st;
	char		*p;
	long		 len;
	size_t		 i;
	int		 fd;

	for (i = 0; i < n; i++) {
		if (snprintf(f[i].path, sizeof(f[i].path), "%s/%s", dir,
		    f[i].name) >= (int)sizeof(f[i].path) ||
		    snprintf(f[i].tmp, sizeof(f[i].tmp), "%s/.%s.XXXXXX", dir,
		    f[i].name) >= (int)sizeof(f[i].tmp)) {
			f[i].tmp[0] = '\0';
			certs_seterr(err, errlen, "%s: path too long", dir);
			return -1;
		}
		f[i].tmp[0] = '\0';
		if (lstat(f[i].path, &st) == -1) {
			if (errno == ENOENT)
				continue;
			certs_seterr(err, errlen, "%s: %s", f[i].path,
			    strerror(errno));
			return -1;
		}
		if (f[i].mode != 0600 && S_ISREG(st.st_mode) &&
		    same_content(f[i].path, f[i].data)) {
			f[i].skip = 1;
			continue;
		}
		if (!force) {
			certs_seterr(err, errlen, "%s: already exists (use "
			    "--force to replace it)", f[i].path);
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			certs_seterr(err, errlen, "%s: exists and is not a "
			    "regular file", f[i].path);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (f[i].skip)
			continue;
		(void)snprintf(f[i].tmp, sizeof(f[i].tmp), "%s/.%s.XXXXXX",
		    dir, f[i].name);
		/* mkstemp() creates it 0600, exclusively. */
		if ((fd = mkstemp(f[i].tmp)) == -1) {
			certs_seterr(err, errlen, "%s: %s", f[i].tmp,
			    strerror(errno));
			f[i].tmp[0] = '\0';
			return -1;
		}
		len = BIO_get_mem_data(f[i].data, &p);
		if (len <= 0 || fchmod(fd, f[i].mode) == -1 ||
		    write_all(fd, p, (size_t)len) == -1 || fsync(fd) == -1) {
			certs_seterr(err, errlen, "%s: %s", f[i].tmp,
			    len <= 0 ? "nothing to write" : strerror(errno));
			(void)close(fd);
			return -1;
		}
		if (close(fd) == -1) {
			certs_seterr(err, errlen, "%s: %s", f[i].tmp,
			    strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (f[i].skip)
			continue;
		if (force) {
			if (rename(f[i].tmp, f[i].path) == -1) {
				certs_seterr(err, errlen, "%s: %s", f[i].path,
				    strerror(errno));
				return -1;
			}
		} else {
			/* link() fails if a file appeared meanwhile. */
			if (link(f[i].tmp, f[i].path) == -1) {
				certs_seterr(err, errlen, "%s: %s", f[i].path,
				    strerror(errno));
				return -1;
			}
			(void)unlink(f[i].tmp);
		}
		f[i].tmp[0] = '\0';
	}
	return 0;
}

/* A memory BIO with the certificate in PEM. */
static BIO *
pem_cert(X509 *x, char *err, size_t errlen)
{
	BIO	*bio;

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, x) != 1) {
		certs_setsslerr(err, errlen, "cannot encode certificate");
		BIO_free(bio);
		return NULL;
	}
	return bio;
}

/* A memory BIO (cleansed on free) with the private key in PKCS#8 PEM. */
static BIO *
pem_key(EVP_PKEY *pk, char *err, size_t errlen)
{
	BIO	*bio;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL,
	    NULL) != 1) {
		certs_setsslerr(err, errlen, "cannot encode private key");
		BIO_free(bio);
		return NULL;
	}
	return bio;
}

/* Make a CA in outdir (see certs.h). */
int
certs_gen_ca(const char *outdir, const struct certs_genopts *o, char *err,
    size_t errlen)
{
	struct outfile	 f[2];
	EVP_PKEY	*pk = NULL;
	X509		*x = NULL;
	const char	*cn;
	int		 days, rv = -1;

	memset(f, 0, sizeof(f));
	f[0].name = "ca.pem";
	f[0].mode = 0644;
	f[1].name = "ca-key.pem";
	f[1].mode = 0600;
	ERR_clear_error();
	if (o->kind != CERTS_KIND_CA) {
		certs_seterr(err, errlen, "not a CA request");
		return -1;
	}
	if (check_opts(o, &cn, &days, err, errlen) == -1)
		return -1;
	if ((pk = gen_key(o->rsa, err, errlen)) == NULL)
		goto out;
	if ((x = new_cert(pk, NULL, cn, days, o->offset_secs, err,
	    errlen)) == NULL)
		goto out;
	if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0",
	    err, errlen) == -1 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign",
	    err, errlen) == -1 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash", err,
	    errlen) == -1)
		goto out;
	if (X509_sign(x, pk, EVP_sha256()) <= 0) {
		certs_setsslerr(err, errlen, "cannot sign CA certificate");
		goto out;
	}
	if ((f[0].data = pem_cert(x, err, errlen)) == NULL ||
	    (f[1].data = pem_key(pk, err, errlen)) == NULL)
		goto out;
	if (make_dir(outdir, 0700, err, errlen) == -1 ||
	    write_files(outdir, f, 2, o->force, err, errlen) == -1)
		goto out;
	rv = 0;
out:
	outfiles_free(f, 2);
	X509_free(x);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rv;
}

/* Load the CA of cadir: its certificate and the matching key. */
static int
load_ca(const char *cadir, X509 **cap, EVP_PKEY **keyp, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*sk;
	EVP_PKEY	*pk;
	X509		*x;
	char		 cpath[PATH_MAX], kpath[PATH_MAX];

	*cap = NULL;
	*keyp = NULL;
	if (snprintf(cpath, sizeof(cpath), "%s/ca.pem", cadir) >=
	    (int)sizeof(cpath) ||
	    snprintf(kpath, sizeof(kpath), "%s/ca-key.pem", cadir) >=
	    (int)sizeof(kpath)) {
		certs_seterr(err, errlen, "%s: path too long", cadir);
		return -1;
	}
	if ((sk = certs_load_certs(cpath, err, errlen)) == NULL)
		return -1;
	x = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	if (X509_check_ca(x) == 0) {
		certs_seterr(err, errlen, "%s: not a CA certificate", cpath);
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		certs_seterr(err, errlen, "%s: the CA certificate expired",
		    cpath);
		goto fail;
	}
	if ((pk = certs_load_key(kpath, err, errlen)) == NULL)
		goto fail;
	if (X509_check_private_key(x, pk) != 1) {
		certs_seterr(err, errlen, "%s: private key does not match "
		    "certificate %s", kpath, cpath);
		EVP_PKEY_free(pk);
		goto fail;
	}
	ERR_clear_error();
	*cap = x;
	*keyp = pk;
	return 0;
fail:
	ERR_clear_error();
	X509_free(x);
	return -1;
}

/* Make a server or client certificate signed by the CA (see certs.h). */
int
certs_gen_leaf(const char *cadir, const char *outdir,
    const struct certs_genopts *o, char *err, size_t errlen)
{
	struct outfile	 f[NFILES];
	EVP_PKEY	*pk = NULL, *cakey = NULL;
	X509		*x = NULL, *ca = NULL;
	const char	*cn, *ku, *eku;
	char		 when[64], cerr[512];
	int		 days, rv = -1;

	memset(f, 0, sizeof(f));
	f[0].name = "ca.pem";
	f[0].mode = 0644;
	f[1].name = "cert.pem";
	f[1].mode = 0644;
	f[2].name = "key.pem";
	f[2].mode = 0600;
	ERR_clear_error();
	if (o->kind != CERTS_KIND_SERVER && o->kind != CERTS_KIND_CLIENT) {
		certs_seterr(err, errlen, "not a server or client request");
		return -1;
	}
	if (check_opts(o, &cn, &days, err, errlen) == -1)
		return -1;
	if (load_ca(cadir, &ca, &cakey, cerr, sizeof(cerr)) == -1) {
		certs_seterr(err, errlen, "cannot use the CA in %s: %s", cadir,
		    cerr);
		return -1;
	}
	if ((pk = gen_key(o->rsa, err, errlen)) == NULL)
		goto out;
	if ((x = new_cert(pk, ca, cn, days, o->offset_secs, err,
	    errlen)) == NULL)
		goto out;
	if (ASN1_TIME_compare(X509_get0_notAfter(x),
	    X509_get0_notAfter(ca)) > 0) {
		(void)certs_time_str(X509_get0_notAfter(ca), when,
		    sizeof(when));
		certs_seterr(err, errlen, "the certificate would outlive its "
		    "CA (which expires %s): use fewer --days", when);
		goto out;
	}
	if (o->kind == CERTS_KIND_SERVER) {
		ku = o->rsa ? "critical,digitalSignature,keyEncipherment" :
		    "critical,digitalSignature";
		eku = "serverAuth";
	} else {
		ku = "critical,digitalSignature";
		eku = "clientAuth";
	}
	if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", err,
	    errlen) == -1 ||
	    add_ext(x, ca, NID_key_usage, ku, err, errlen) == -1 ||
	    add_ext(x, ca, NID_ext_key_usage, eku, err, errlen) == -1 ||
	    add_ext(x, ca, NID_subject_key_identifier, "hash", err,
	    errlen) == -1 ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid", err,
	    errlen) == -1)
		goto out;
	if (o->kind == CERTS_KIND_SERVER && add_san(x, o, err, errlen) == -1)
		goto out;
	if (X509_sign(x, cakey, EVP_sha256()) <= 0) {
		certs_setsslerr(err, errlen, "cannot sign certificate");
		goto out;
	}
	if ((f[0].data = pem_cert(ca, err, errlen)) == NULL ||
	    (f[1].data = pem_cert(x, err, errlen)) == NULL ||
	    (f[2].data = pem_key(pk, err, errlen)) == NULL)
		goto out;
	if (make_dir(outdir, 0755, err, errlen) == -1 ||
	    write_files(outdir, f, NFILES, o->force, err, errlen) == -1)
		goto out;
	rv = 0;
out:
	outfiles_free(f, NFILES);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(cakey);
	ERR_clear_error();
	return rv;
}
