/*
 * Unit tests for libcerts and the dockgate-certs tool: generated chains
 * verify, file modes, server/client contexts and their error messages,
 * peer identity from certificates and from a real in-memory handshake.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

#ifndef TOP_BUILDDIR
#define TOP_BUILDDIR	"."
#endif
#define TOOL		TOP_BUILDDIR "/certs/dockgate-certs"
#define DAY		(24L * 60 * 60)

static char	 tmpdir[64];		/* made by the unchecked fixture */
static char	 err[1024];

/* tmpdir/rel into a static buffer (one of a few, used round robin). */
static const char *
P(const char *rel)
{
	static char	 buf[8][PATH_MAX];
	static int	 n;
	char		*p = buf[n++ % 8];

	(void)snprintf(p, PATH_MAX, "%s/%s", tmpdir, rel);
	return p;
}

/* nftw() callback removing one entry. */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Generation options of a kind, everything else zero. */
static struct certs_genopts
opts(enum certs_kind kind)
{
	struct certs_genopts	 o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	return o;
}

/* Generate a leaf or fail the test. */
static void
gen_leaf(const char *cadir, const char *out, struct certs_genopts *o)
{
	err[0] = '\0';
	ck_assert_msg(certs_gen_leaf(P(cadir), P(out), o, err,
	    sizeof(err)) == 0, "gen %s: %s", out, err);
}

/*
 * Fixture, run once in the parent: a CA (ca), a server certificate for
 * localhost, 127.0.0.1 and ::1 (srv), a client "build-runner" (cli), an
 * expired server certificate (old), a not yet valid one (new) and an RSA
 * CA with an RSA server certificate (rsaca, rsasrv).
 */
static void
setup(void)
{
	static const char	*names[] = { "localhost" };
	static const char	*ips[] = { "127.0.0.1", "::1" };
	static const char	*rnames[] = { "dg.example", "*.dg.example" };
	struct certs_genopts	 o;

	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_certs.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));

	o = opts(CERTS_KIND_CA);
	ck_assert_msg(certs_gen_ca(P("ca"), &o, err, sizeof(err)) == 0,
	    "gen ca: %s", err);
	o = opts(CERTS_KIND_SERVER);
	o.names = names;
	o.nnames = 1;
	o.ips = ips;
	o.nips = 2;
	gen_leaf("ca", "srv", &o);
	o.offset_secs = -30 * DAY;
	o.days = 10;
	gen_leaf("ca", "old", &o);
	o.offset_secs = 2 * DAY;
	gen_leaf("ca", "new", &o);

	o = opts(CERTS_KIND_CLIENT);
	o.cn = "build-runner";
	gen_leaf("ca", "cli", &o);

	o = opts(CERTS_KIND_CA);
	o.rsa = 1;
	o.cn = "RSA test CA";
	ck_assert_msg(certs_gen_ca(P("rsaca"), &o, err, sizeof(err)) == 0,
	    "gen rsaca: %s", err);
	o = opts(CERTS_KIND_SERVER);
	o.rsa = 1;
	o.names = rnames;
	o.nnames = 2;
	gen_leaf("rsaca", "rsasrv", &o);
}

/* Fixture teardown: remove the temporary directory. */
static void
teardown(void)
{
	if (tmpdir[0] != '\0')
		(void)nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The first certificate of a PEM file. */
static X509 *
load_x509(const char *path)
{
	X509	*x;
	FILE	*fp;

	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	(void)fclose(fp);
	ck_assert_msg(x != NULL, "%s: no certificate", path);
	return x;
}

/* Verify cert against cafile for purpose; returns the X509_V_ code. */
static int
verify(const char *cafile, const char *cert, int purpose)
{
	X509_STORE	*store;
	X509_STORE_CTX	*sctx;
	X509		*ca, *x;
	int		 rv;

	ca = load_x509(cafile);
	x = load_x509(cert);
	ck_assert_ptr_nonnull(store = X509_STORE_new());
	ck_assert_int_eq(X509_STORE_add_cert(store, ca), 1);
	ck_assert_ptr_nonnull(sctx = X509_STORE_CTX_new());
	ck_assert_int_eq(X509_STORE_CTX_init(sctx, store, x, NULL), 1);
	ck_assert_int_eq(X509_STORE_CTX_set_purpose(sctx, purpose), 1);
	rv = X509_verify_cert(sctx) == 1 ? X509_V_OK :
	    X509_STORE_CTX_get_error(sctx);
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_free(x);
	X509_free(ca);
	ERR_clear_error();
	return rv;
}

/* The permission bits of a file. */
static mode_t
mode_of(const char *path)
{
	struct stat	 st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* Write text to a file (0644). */
static void
write_text(const char *path, const char *text)
{
	FILE	*fp;

	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Concatenate two files into a third. */
static void
concat(const char *a, const char *b, const char *out)
{
	char	 cmd[3 * PATH_MAX + 32];

	(void)snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, out);
	ck_assert_int_eq(system(cmd), 0);
}

/* Run the built tool with up to 12 arguments; returns its exit status. */
static int
run_tool(const char *a0, ...)
{
	const char	*argv[16];
	va_list		 ap;
	pid_t		 pid;
	int		 i = 0, st, fd;

	argv[i++] = TOOL;
	argv[i++] = a0;
	va_start(ap, a0);
	while (i < 15 && (argv[i] = va_arg(ap, const char *)) != NULL)
		i++;
	va_end(ap);
	argv[i] = NULL;
	ck_assert_msg(access(TOOL, X_OK) == 0, "%s: %s (build certs/ "
	    "first)", TOOL, strerror(errno));
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) != -1) {
			(void)dup2(fd, STDOUT_FILENO);
			(void)dup2(fd, STDERR_FILENO);
		}
		execv(TOOL, (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/*
 * Run an in-memory handshake between client c and server s.
 * Returns 0 when both sides finished it, -1 when either failed.
 */
static int
handshake(SSL *c, SSL *s)
{
	int	 cdone = 0, sdone = 0, i, r, e;

	for (i = 0; i < 64 && !(cdone && sdone); i++) {
		if (!cdone) {
			if ((r = SSL_do_handshake(c)) == 1)
				cdone = 1;
			else if ((e = SSL_get_error(c, r)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return -1;
		}
		if (!sdone) {
			if ((r = SSL_do_handshake(s)) == 1)
				sdone = 1;
			else if ((e = SSL_get_error(s, r)) !=
			    SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return -1;
		}
	}
	/* TLS 1.3: the client learns of a rejected certificate late. */
	if (cdone && sdone) {
		char	 b;

		r = SSL_read(c, &b, 1);
		e = SSL_get_error(c, r);
		if (e != SSL_ERROR_WANT_READ)
			return -1;
	}
	return cdone && sdone ? 0 : -1;
}

/* A client/server SSL pair joined by a BIO pair. */
static void
pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **c, SSL **s)
{
	BIO	*b1, *b2;

	ck_assert_int_eq(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
	ck_assert_ptr_nonnull(*s = SSL_new(sctx));
	ck_assert_ptr_nonnull(*c = SSL_new(cctx));
	SSL_set_bio(*s, b1, b1);
	SSL_set_bio(*c, b2, b2);
	SSL_set_accept_state(*s);
	SSL_set_connect_state(*c);
}

START_TEST(test_chains_verify)
{
	ck_assert_int_eq(verify(P("ca/ca.pem"), P("srv/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	ck_assert_int_eq(verify(P("srv/ca.pem"), P("srv/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	ck_assert_int_eq(verify(P("cli/ca.pem"), P("cli/cert.pem"),
	    X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	ck_assert_int_eq(verify(P("rsaca/ca.pem"), P("rsasrv/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	/* Purposes are not interchangeable. */
	ck_assert_int_eq(verify(P("ca/ca.pem"), P("cli/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);
	ck_assert_int_eq(verify(P("ca/ca.pem"), P("srv/cert.pem"),
	    X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
	/* Another CA does not vouch for them. */
	ck_assert_int_ne(verify(P("rsaca/ca.pem"), P("srv/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	ck_assert_int_eq(verify(P("ca/ca.pem"), P("old/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_ERR_CERT_HAS_EXPIRED);
}
END_TEST

/* Whether x has extension nid, marked critical. */
static int
critical(X509 *x, int nid)
{
	int	 i;

	if ((i = X509_get_ext_by_NID(x, nid, -1)) < 0)
		return 0;
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

START_TEST(test_cert_contents)
{
	X509		*x;
	ASN1_INTEGER	*sn;
	BIGNUM		*bn;
	EVP_PKEY	*pk;

	x = load_x509(P("ca/ca.pem"));
	ck_assert_int_ne(X509_check_ca(x), 0);
	ck_assert(critical(x, NID_basic_constraints));
	ck_assert(critical(x, NID_key_usage));
	ck_assert(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	X509_free(x);

	x = load_x509(P("srv/cert.pem"));
	ck_assert_int_eq(X509_check_ca(x), 0);
	ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
	ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	ck_assert(!(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT));
	ck_assert(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	ck_assert(!(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT));
	ck_assert_int_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "::1", 0), 1);
	ck_assert_int_eq(X509_check_host(x, "example.com", 0, 0, NULL), 0);
	/* 128-bit random serial: positive, 16 bytes. */
	ck_assert_ptr_nonnull(sn = (ASN1_INTEGER *)X509_get0_serialNumber(x));
	ck_assert_ptr_nonnull(bn = ASN1_INTEGER_to_BN(sn, NULL));
	ck_assert(!BN_is_negative(bn));
	ck_assert_int_eq(BN_num_bytes(bn), 16);
	BN_free(bn);
	ck_assert_ptr_nonnull(pk = X509_get0_pubkey(x));
	ck_assert_int_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
	ck_assert_int_eq(EVP_PKEY_get_bits(pk), 256);
	X509_free(x);

	x = load_x509(P("cli/cert.pem"));
	ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	ck_assert(!(X509_get_extended_key_usage(x) & XKU_SSL_SERVER));
	X509_free(x);

	x = load_x509(P("rsasrv/cert.pem"));
	ck_assert_ptr_nonnull(pk = X509_get0_pubkey(x));
	ck_assert_int_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
	ck_assert_int_eq(EVP_PKEY_get_bits(pk), 3072);
	ck_assert(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(X509_check_host(x, "a.dg.example", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	X509_free(x);
}
END_TEST

START_TEST(test_file_modes)
{
	ck_assert_int_eq(mode_of(P("ca")), 0700);
	ck_assert_int_eq(mode_of(P("ca/ca-key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("ca/ca.pem")), 0644);
	ck_assert_int_eq(mode_of(P("srv/key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("srv/cert.pem")), 0644);
	ck_assert_int_eq(mode_of(P("srv/ca.pem")), 0644);
	ck_assert_int_eq(mode_of(P("cli/key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("rsasrv/key.pem")), 0600);
}
END_TEST

START_TEST(test_no_overwrite)
{
	struct certs_genopts	 o = opts(CERTS_KIND_CLIENT);
	X509			*a, *b;

	o.cn = "again";
	gen_leaf("ca", "again", &o);
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("again"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "already exists"));
	ck_assert_ptr_nonnull(strstr(err, "--force"));
	ck_assert_int_eq(ERR_peek_error(), 0);

	/* --force replaces, and a key that was loosened is 0600 again. */
	a = load_x509(P("again/cert.pem"));
	ck_assert_int_eq(chmod(P("again/key.pem"), 0644), 0);
	o.force = 1;
	gen_leaf("ca", "again", &o);
	b = load_x509(P("again/cert.pem"));
	ck_assert_int_ne(X509_cmp(a, b), 0);
	ck_assert_int_eq(mode_of(P("again/key.pem")), 0600);
	X509_free(a);
	X509_free(b);

	/* A CA is not overwritten either. */
	o = opts(CERTS_KIND_CA);
	ck_assert_int_eq(certs_gen_ca(P("ca"), &o, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "ca.pem: already exists"));
}
END_TEST

START_TEST(test_gen_rejects)
{
	static const char	*bad[] = { "a,IP:1.2.3.4" };
	static const char	*badip[] = { "300.1.1.1" };
	struct certs_genopts	 o;

	o = opts(CERTS_KIND_SERVER);
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at least one name"));
	o.names = bad;
	o.nnames = 1;
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a valid DNS name"));
	o.nnames = 0;
	o.ips = badip;
	o.nips = 1;
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an IP address"));

	o = opts(CERTS_KIND_CLIENT);
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs a CN"));
	o.cn = "bad\ncn";
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	o.cn = "ok";
	o.days = CERTS_MAX_DAYS + 1;
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	/* Longer than the CA. */
	o.days = CERTS_CA_DAYS + 10;
	ck_assert_int_eq(certs_gen_leaf(P("ca"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "outlive"));
	/* Signing needs a CA directory. */
	o.days = 0;
	ck_assert_int_eq(certs_gen_leaf(P("nothing"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "nothing/ca.pem"));
	/* A leaf is not a CA. */
	ck_assert_int_eq(certs_gen_leaf(P("srv"), P("x"), &o, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(access(P("x"), F_OK), -1);
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_server_ctx_ok)
{
	SSL_CTX	*ctx;

	ctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	ck_assert_int_eq(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
	ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
	/* Reference semantics are OpenSSL's. */
	ck_assert_int_eq(SSL_CTX_up_ref(ctx), 1);
	SSL_CTX_free(ctx);
	SSL_CTX_free(ctx);

	ctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"),
	    P("ca/ca.pem"), err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	ck_assert_int_eq(SSL_CTX_get_verify_depth(ctx), CERTS_VERIFY_DEPTH);
	ck_assert_int_eq(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(ctx)), 1);
	SSL_CTX_free(ctx);

	ctx = certs_server_ctx(P("rsasrv/cert.pem"), P("rsasrv/key.pem"),
	    P("rsaca/ca.pem"), err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	SSL_CTX_free(ctx);
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_server_ctx_chain)
{
	STACK_OF(X509)	*chain = NULL;
	SSL_CTX		*ctx;

	concat(P("srv/cert.pem"), P("srv/ca.pem"), P("chain.pem"));
	ctx = certs_server_ctx(P("chain.pem"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_server_ctx_errors)
{
	SSL_CTX	*ctx;

	/* Key of another certificate. */
	ctx = certs_server_ctx(P("srv/cert.pem"), P("rsasrv/key.pem"), NULL,
	    err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "rsasrv/key.pem: private key does not "
	    "match certificate") != NULL, "%s", err);
	ck_assert_int_eq(ERR_peek_error(), 0);

	/* Missing files. */
	ctx = certs_server_ctx(P("nope.pem"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "nope.pem: No such file or directory") !=
	    NULL, "%s", err);
	ctx = certs_server_ctx(P("srv/cert.pem"), P("nokey.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "nokey.pem: No such file"));
	ctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"),
	    P("noca.pem"), err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "noca.pem: No such file"));

	/* Not PEM, not regular, empty. */
	write_text(P("junk.pem"), "this is not a certificate\n");
	ctx = certs_server_ctx(P("junk.pem"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "junk.pem: no PEM certificate") != NULL,
	    "%s", err);
	ctx = certs_server_ctx(P("srv/cert.pem"), P("junk.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "junk.pem: not a PEM file") != NULL, "%s",
	    err);
	/* A certificate where the key should be. */
	ctx = certs_server_ctx(P("srv/cert.pem"), P("srv/cert.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "srv/cert.pem: no PEM private key") != NULL,
	    "%s", err);
	ctx = certs_server_ctx(P("srv"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	write_text(P("broken.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n");
	ctx = certs_server_ctx(P("broken.pem"), P("srv/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "broken.pem: invalid certificate") != NULL,
	    "%s", err);

	/* Expired, not yet valid. */
	ctx = certs_server_ctx(P("old/cert.pem"), P("old/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "old/cert.pem: certificate expired on") !=
	    NULL, "%s", err);
	ctx = certs_server_ctx(P("new/cert.pem"), P("new/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "new/cert.pem: certificate is not valid "
	    "before") != NULL, "%s", err);

	/* A client certificate cannot serve. */
	ctx = certs_server_ctx(P("cli/cert.pem"), P("cli/key.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "not usable for a TLS server") != NULL, "%s",
	    err);

	/* A leaf is no CA bundle. */
	ctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"),
	    P("cli/cert.pem"), err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, "cli/cert.pem: certificate #1 is not a CA")
	    != NULL, "%s", err);

	/* Encrypted keys are refused, not prompted for. */
	write_text(P("enc.pem"), "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
	    "AAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
	ctx = certs_server_ctx(P("srv/cert.pem"), P("enc.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "encrypted private keys"));

	ctx = certs_server_ctx(P("srv/cert.pem"), NULL, NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_check_files)
{
	char	 desc[512];

	ck_assert_int_eq(certs_check_files(P("srv/cert.pem"), P("srv/key.pem"),
	    P("ca/ca.pem"), err, sizeof(err)), 0);
	ck_assert_int_eq(certs_check_files(P("srv/cert.pem"), P("srv/key.pem"),
	    NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(certs_check_files(P("srv/cert.pem"), NULL, NULL, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(certs_check_files(P("old/cert.pem"), P("old/key.pem"),
	    NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "expired"));
	ck_assert_int_eq(certs_check_files(P("srv/cert.pem"), P("cli/key.pem"),
	    NULL, NULL, 0), -1);

	ck_assert_int_eq(certs_describe(P("srv/cert.pem"), desc, sizeof(desc),
	    err, sizeof(err)), 0);
	ck_assert_msg(strncmp(desc, "CN=localhost, SAN localhost,127.0.0.1,"
	    "::1, expires ", 43) == 0, "%s", desc);
	ck_assert_int_eq(certs_describe(P("old/cert.pem"), desc, sizeof(desc),
	    err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(desc, "expired"));
}
END_TEST

START_TEST(test_client_ctx)
{
	SSL_CTX	*ctx;

	ctx = certs_client_ctx(P("ca/ca.pem"), NULL, NULL, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_free(ctx);

	ctx = certs_client_ctx(P("ca/ca.pem"), P("cli/cert.pem"),
	    P("cli/key.pem"), err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	SSL_CTX_free(ctx);

	/* System trust store when no CA is given. */
	ctx = certs_client_ctx(NULL, NULL, NULL, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	SSL_CTX_free(ctx);

	ctx = certs_client_ctx(P("ca/ca.pem"), P("cli/cert.pem"), NULL, err,
	    sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "needs its key"));
	ctx = certs_client_ctx(P("noca.pem"), NULL, NULL, err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "noca.pem: No such file"));
	ctx = certs_client_ctx(P("ca/ca.pem"), P("cli/cert.pem"),
	    P("srv/key.pem"), err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "does not match"));
	/* A server certificate is no client certificate. */
	ctx = certs_client_ctx(P("ca/ca.pem"), P("srv/cert.pem"),
	    P("srv/key.pem"), err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "not usable for a TLS client"));
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_identity_x509)
{
	struct certs_identity	 id;
	X509			*x;

	x = load_x509(P("srv/cert.pem"));
	ck_assert_int_eq(certs_x509_identity(x, &id), 0);
	ck_assert_str_eq(id.cn, "localhost");
	ck_assert_uint_eq(id.nsan, 3);
	ck_assert_int_eq(id.san[0].type, CERTS_SAN_DNS);
	ck_assert_str_eq(id.san[0].value, "localhost");
	ck_assert_int_eq(id.san[1].type, CERTS_SAN_IP);
	ck_assert_str_eq(id.san[1].value, "127.0.0.1");
	ck_assert_int_eq(id.san[2].type, CERTS_SAN_IP);
	ck_assert_str_eq(id.san[2].value, "::1");
	X509_free(x);

	x = load_x509(P("cli/cert.pem"));
	ck_assert_int_eq(certs_x509_identity(x, &id), 0);
	ck_assert_str_eq(id.cn, "build-runner");
	ck_assert_uint_eq(id.nsan, 0);
	X509_free(x);

	x = load_x509(P("rsasrv/cert.pem"));
	ck_assert_int_eq(certs_x509_identity(x, &id), 0);
	ck_assert_str_eq(id.cn, "dg.example");
	ck_assert_uint_eq(id.nsan, 2);
	ck_assert_str_eq(id.san[1].value, "*.dg.example");
	X509_free(x);

	ck_assert_int_eq(certs_x509_identity(NULL, &id), -1);
}
END_TEST

/* A certificate whose subject is built by the test; unsigned. */
static X509 *
subject_cert(const char *cn1, const char *cn2)
{
	X509		*x;
	X509_NAME	*n;

	ck_assert_ptr_nonnull(x = X509_new());
	n = X509_get_subject_name(x);
	if (cn1 != NULL)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN",
		    MBSTRING_UTF8, (const unsigned char *)cn1, -1, -1, 0), 1);
	if (cn2 != NULL)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN",
		    MBSTRING_UTF8, (const unsigned char *)cn2, -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	    (const unsigned char *)"org", -1, -1, 0), 1);
	return x;
}

START_TEST(test_identity_odd_subjects)
{
	struct certs_identity	 id;
	X509			*x;

	/* Two CNs: ambiguous, no identity. */
	x = subject_cert("alice", "admin");
	ck_assert_int_eq(certs_x509_identity(x, &id), -1);
	ck_assert_str_eq(id.cn, "");
	X509_free(x);
	/* Control characters would forge log lines and labels. */
	x = subject_cert("eve\nadmin", NULL);
	ck_assert_int_eq(certs_x509_identity(x, &id), -1);
	X509_free(x);
	/* No CN at all: an identity with an empty CN. */
	x = subject_cert(NULL, NULL);
	ck_assert_int_eq(certs_x509_identity(x, &id), 0);
	ck_assert_str_eq(id.cn, "");
	X509_free(x);
	/* UTF-8 is kept as UTF-8. */
	x = subject_cert("caf\xc3\xa9", NULL);
	ck_assert_int_eq(certs_x509_identity(x, &id), 0);
	ck_assert_str_eq(id.cn, "caf\xc3\xa9");
	X509_free(x);
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_handshake_identity)
{
	struct certs_identity	 id;
	SSL_CTX			*sctx, *cctx;
	SSL			*s, *c;
	char			 buf[16];
	int			 r;

	sctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"),
	    P("ca/ca.pem"), err, sizeof(err));
	ck_assert_msg(sctx != NULL, "%s", err);
	cctx = certs_client_ctx(P("cli/ca.pem"), P("cli/cert.pem"),
	    P("cli/key.pem"), err, sizeof(err));
	ck_assert_msg(cctx != NULL, "%s", err);

	pair(cctx, sctx, &c, &s);
	ck_assert_int_eq(certs_client_set_host(c, "localhost", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(certs_peer_identity(s, &id), -1);
	ck_assert_int_eq(handshake(c, s), 0);
	ck_assert_int_eq(SSL_version(s), TLS1_3_VERSION);
	ck_assert_int_eq(certs_peer_identity(s, &id), 0);
	ck_assert_str_eq(id.cn, "build-runner");
	ck_assert_int_eq(certs_peer_identity(c, &id), 0);
	ck_assert_str_eq(id.cn, "localhost");
	ck_assert_uint_eq(id.nsan, 3);

	/* A FIN without close_notify reads as EOF, not as an error. */
	ck_assert_int_eq(SSL_write(c, "ping", 4), 4);
	ck_assert_int_eq(BIO_shutdown_wr(SSL_get_wbio(c)), 1);
	ck_assert_int_eq(SSL_read(s, buf, sizeof(buf)), 4);
	r = SSL_read(s, buf, sizeof(buf));
	ck_assert_int_le(r, 0);
	ck_assert_int_eq(SSL_get_error(s, r), SSL_ERROR_ZERO_RETURN);
	/* ...and the server may still write after the client's EOF. */
	ck_assert_int_eq(SSL_write(s, "pong", 4), 4);
	ck_assert_int_eq(SSL_read(c, buf, sizeof(buf)), 4);
	SSL_free(c);
	SSL_free(s);

	/* By address, over TLS 1.2. */
	pair(cctx, sctx, &c, &s);
	ck_assert_int_eq(SSL_set_max_proto_version(c, TLS1_2_VERSION), 1);
	ck_assert_int_eq(certs_client_set_host(c, "[::1]", err, sizeof(err)),
	    0);
	ck_assert_int_eq(handshake(c, s), 0);
	ck_assert_int_eq(SSL_version(s), TLS1_2_VERSION);
	ck_assert_int_eq(certs_peer_identity(s, &id), 0);
	ck_assert_str_eq(id.cn, "build-runner");
	SSL_free(c);
	SSL_free(s);

	/* Wrong name: the client refuses the server. */
	pair(cctx, sctx, &c, &s);
	ck_assert_int_eq(certs_client_set_host(c, "other.example", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(handshake(c, s), -1);
	ck_assert_int_eq(SSL_get_verify_result(c),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	ck_assert_int_eq(certs_peer_identity(c, &id), -1);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);

	/* No client certificate: the server refuses the client. */
	cctx = certs_client_ctx(P("cli/ca.pem"), NULL, NULL, err, sizeof(err));
	ck_assert_msg(cctx != NULL, "%s", err);
	pair(cctx, sctx, &c, &s);
	ck_assert_int_eq(certs_client_set_host(c, "127.0.0.1", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(handshake(c, s), -1);
	ck_assert_int_eq(certs_peer_identity(s, &id), -1);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);

	/* A client certificate from another CA: refused too. */
	cctx = certs_client_ctx(P("cli/ca.pem"), P("cli/cert.pem"),
	    P("cli/key.pem"), err, sizeof(err));
	ck_assert_msg(cctx != NULL, "%s", err);
	SSL_CTX_free(sctx);
	sctx = certs_server_ctx(P("srv/cert.pem"), P("srv/key.pem"),
	    P("rsaca/ca.pem"), err, sizeof(err));
	ck_assert_msg(sctx != NULL, "%s", err);
	pair(cctx, sctx, &c, &s);
	ck_assert_int_eq(handshake(c, s), -1);
	ck_assert_int_eq(certs_peer_identity(s, &id), -1);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	ERR_clear_error();
}
END_TEST

START_TEST(test_set_host)
{
	SSL_CTX	*ctx;
	SSL	*ssl;

	ctx = certs_client_ctx(P("ca/ca.pem"), NULL, NULL, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_ptr_nonnull(ssl = SSL_new(ctx));
	ck_assert_int_eq(certs_client_set_host(ssl, "[]", err, sizeof(err)),
	    -1);
	ck_assert_int_eq(certs_client_set_host(ssl, "", err, sizeof(err)), -1);
	ck_assert_int_eq(certs_client_set_host(ssl, "[::1]", err,
	    sizeof(err)), 0);
	ck_assert_ptr_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	SSL_free(ssl);
	ck_assert_ptr_nonnull(ssl = SSL_new(ctx));
	ck_assert_int_eq(certs_client_set_host(ssl, "engine.example", err,
	    sizeof(err)), 0);
	ck_assert_str_eq(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
	    "engine.example");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_tool)
{
	ck_assert_int_eq(run_tool("--help", NULL), 0);
	ck_assert_int_eq(run_tool("bogus", NULL), 2);
	ck_assert_int_eq(run_tool("ca", NULL), 2);
	ck_assert_int_eq(run_tool("ca", "--days", "x", P("t"), NULL), 2);
	ck_assert_int_eq(run_tool("client", "--ca", P("tool/ca"), "--out",
	    P("t"), NULL), 2);

	/* The positional form of --out. */
	ck_assert_int_eq(run_tool("ca", P("tool/ca"), NULL), 0);
	ck_assert_int_eq(run_tool("ca", P("tool/ca"), NULL), 1);
	ck_assert_int_eq(run_tool("server", "--ca", P("tool/ca"), "--out",
	    P("tool/srv"), "--name", "localhost", "--ip", "127.0.0.1",
	    "--name", "127.0.0.2", NULL), 0);
	ck_assert_int_eq(run_tool("client", "--ca", P("tool/ca"), "--out",
	    P("tool/cli"), "--cn", "ci", "--days", "30", "--rsa", NULL), 0);
	ck_assert_int_eq(run_tool("client", "--ca", P("tool/ca"), "--out",
	    P("tool/cli"), "--cn", "ci", NULL), 1);
	ck_assert_int_eq(run_tool("client", "--ca", P("tool/ca"), "--out",
	    P("tool/cli"), "--cn", "ci", "--force", NULL), 0);

	ck_assert_int_eq(mode_of(P("tool/ca/ca-key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("tool/srv/key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("tool/cli/key.pem")), 0600);
	ck_assert_int_eq(mode_of(P("tool/cli/cert.pem")), 0644);
	ck_assert_int_eq(verify(P("tool/cli/ca.pem"), P("tool/srv/cert.pem"),
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	ck_assert_int_eq(verify(P("tool/srv/ca.pem"), P("tool/cli/cert.pem"),
	    X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	ck_assert_int_eq(certs_check_files(P("tool/srv/cert.pem"),
	    P("tool/srv/key.pem"), P("tool/srv/ca.pem"), err, sizeof(err)),
	    0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("certs");
	TCase	*tc = tcase_create("certs");
	SRunner	*sr;
	int	 nf;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_chains_verify);
	tcase_add_test(tc, test_cert_contents);
	tcase_add_test(tc, test_file_modes);
	tcase_add_test(tc, test_no_overwrite);
	tcase_add_test(tc, test_gen_rejects);
	tcase_add_test(tc, test_server_ctx_ok);
	tcase_add_test(tc, test_server_ctx_chain);
	tcase_add_test(tc, test_server_ctx_errors);
	tcase_add_test(tc, test_check_files);
	tcase_add_test(tc, test_client_ctx);
	tcase_add_test(tc, test_identity_x509);
	tcase_add_test(tc, test_identity_odd_subjects);
	tcase_add_test(tc, test_handshake_identity);
	tcase_add_test(tc, test_set_host);
	tcase_add_test(tc, test_tool);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
