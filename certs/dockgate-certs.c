/*
 * dockgate-certs: make a CA, server certificates and client certificates
 * for dockgate's TLS listeners, in the docker CLI's DOCKER_CERT_PATH layout.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"

#define EXIT_USAGE	2

enum {
	OPT_CN = 256,
	OPT_RSA,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "out",	required_argument,	NULL,	'o' },
	{ "ca",		required_argument,	NULL,	'c' },
	{ "name",	required_argument,	NULL,	'n' },
	{ "ip",		required_argument,	NULL,	'i' },
	{ "cn",		required_argument,	NULL,	OPT_CN },
	{ "days",	required_argument,	NULL,	'd' },
	{ "rsa",	no_argument,		NULL,	OPT_RSA },
	{ "force",	no_argument,		NULL,	'f' },
	{ "help",	no_argument,		NULL,	'h' },
	{ "version",	no_argument,		NULL,	OPT_VERSION },
	{ NULL,		0,			NULL,	0 }
};

/* Print the usage text to fp. */
static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: dockgate-certs ca --out CADIR [--cn NAME] [options]\n"
"       dockgate-certs server --ca CADIR --out DIR --name HOST... [--ip ADDR...] [options]\n"
"       dockgate-certs client --ca CADIR --out DIR --cn NAME [options]\n"
"\n"
"  ca       make a certificate authority: CADIR/ca.pem, CADIR/ca-key.pem\n"
"  server   make a server certificate signed by the CA in CADIR:\n"
"           DIR/ca.pem, DIR/cert.pem, DIR/key.pem (for --tls-cert/--tls-key/--tls-ca)\n"
"  client   make a client certificate; DIR is usable as DOCKER_CERT_PATH\n"
"\n"
"  -o, --out DIR     output directory (also accepted as the last argument)\n"
"  -c, --ca CADIR    directory with the CA's ca.pem and ca-key.pem\n"
"  -n, --name HOST   server DNS name (repeatable; the first one is the CN)\n"
"  -i, --ip ADDR     server IP address (repeatable)\n"
"      --cn NAME     subject CN: a client's identity (cert_cn in the policy)\n"
"  -d, --days N      validity in days (default %d for a CA, %d otherwise)\n"
"      --rsa         RSA 3072 keys instead of EC P-256\n"
"  -f, --force       replace existing files\n"
"  -h, --help        this text\n"
"\n"
"Keys are written 0600, certificates 0644. Exit status: 0 done, 1 error,\n"
"2 usage error.\n", CERTS_CA_DAYS, CERTS_LEAF_DAYS);
}

static int	usage_error(const char *, ...)
		    __attribute__((format(printf, 1, 2)));

/* Report a usage error and return the usage exit status. */
static int
usage_error(const char *fmt, ...)
{
	va_list	 ap;

	fputs("dockgate-certs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(try dockgate-certs --help)\n", stderr);
	return EXIT_USAGE;
}

/* Parse a --days value. */
static int
parse_days(const char *s, int *days)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 ||
	    v > CERTS_MAX_DAYS)
		return -1;
	*days = (int)v;
	return 0;
}

/* Print what was written, and how to use it. */
static void
report(const char *cmd, const char *dir)
{
	char	 path[PATH_MAX], desc[512], err[512];
	int	 ca = strcmp(cmd, "ca") == 0;

	(void)snprintf(path, sizeof(path), "%s/%s", dir,
	    ca ? "ca.pem" : "cert.pem");
	if (certs_describe(path, desc, sizeof(desc), err, sizeof(err)) == -1)
		(void)snprintf(desc, sizeof(desc), "%s", err);
	if (ca) {
		printf("wrote %s/ca.pem and %s/ca-key.pem (%s)\n", dir, dir,
		    desc);
		printf("keep ca-key.pem secret; it signs every certificate\n");
	} else if (strcmp(cmd, "server") == 0) {
		printf("wrote %s/ca.pem, %s/cert.pem and %s/key.pem (%s)\n",
		    dir, dir, dir, desc);
		printf("use: dockgate --tls-cert %s/cert.pem --tls-key "
		    "%s/key.pem --tls-ca %s/ca.pem\n", dir, dir, dir);
	} else {
		printf("wrote %s/ca.pem, %s/cert.pem and %s/key.pem (%s)\n",
		    dir, dir, dir, desc);
		printf("use: DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%s "
		    "DOCKER_HOST=tcp://HOST:PORT docker ...\n", dir);
	}
}

int
main(int argc, char *argv[])
{
	struct certs_genopts	 o;
	const char		**names = NULL, **ips = NULL;
	const char		*cmd, *out = NULL, *cadir = NULL;
	char			 err[1024];
	int			 ch, rv;

	if (argc < 2)
		return usage_error("%s", "missing command (ca, server, client)");
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("dockgate-certs %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	memset(&o, 0, sizeof(o));
	if (strcmp(cmd, "ca") == 0)
		o.kind = CERTS_KIND_CA;
	else if (strcmp(cmd, "server") == 0)
		o.kind = CERTS_KIND_SERVER;
	else if (strcmp(cmd, "client") == 0)
		o.kind = CERTS_KIND_CLIENT;
	else
		return usage_error("unknown command \"%s\" (ca, server, "
		    "client)", cmd);

	if ((names = calloc((size_t)argc, sizeof(*names))) == NULL ||
	    (ips = calloc((size_t)argc, sizeof(*ips))) == NULL) {
		fprintf(stderr, "dockgate-certs: out of memory\n");
		free(names);
		return EXIT_FAILURE;
	}
	rv = EXIT_USAGE;
	opterr = 0;
	optind = 1;
	/* argv[1] (the command) stands in for the program name. */
	while ((ch = getopt_long(argc - 1, argv + 1, ":o:c:n:i:d:fh",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'c':
			cadir = optarg;
			break;
		case 'n':
			names[o.nnames++] = optarg;
			break;
		case 'i':
			ips[o.nips++] = optarg;
			break;
		case OPT_CN:
			o.cn = optarg;
			break;
		case 'd':
			if (parse_days(optarg, &o.days) == -1) {
				rv = usage_error("--days %s: expected a number "
				    "of days from 1 to 36500", optarg);
				goto done;
			}
			break;
		case OPT_RSA:
			o.rsa = 1;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'h':
			usage(stdout);
			rv = EXIT_SUCCESS;
			goto done;
		case OPT_VERSION:
			printf("dockgate-certs %s\n", PACKAGE_VERSION);
			rv = EXIT_SUCCESS;
			goto done;
		case ':':
			rv = usage_error("%s: missing argument",
			    argv[optind]);
			goto done;
		default:
			rv = usage_error("%s: unknown option", argv[optind]);
			goto done;
		}
	}
	/* optind counts within argv + 1. */
	if (optind < argc - 1) {
		if (out != NULL || optind + 1 < argc - 1) {
			rv = usage_error("unexpected argument \"%s\"",
			    argv[1 + optind + (out == NULL)]);
			goto done;
		}
		out = argv[1 + optind];
	}
	if (out == NULL || *out == '\0') {
		rv = usage_error("%s: missing --out DIR", cmd);
		goto done;
	}
	o.names = names;
	o.ips = ips;
	switch (o.kind) {
	case CERTS_KIND_CA:
		if (cadir != NULL || o.nnames > 0 || o.nips > 0) {
			rv = usage_error("%s", "ca: --ca, --name and --ip are "
			    "for server and client certificates");
			goto done;
		}
		break;
	case CERTS_KIND_SERVER:
		if (o.nnames == 0 && o.nips == 0) {
			rv = usage_error("%s", "server: give at least one "
			    "--name HOST or --ip ADDR");
			goto done;
		}
		break;
	case CERTS_KIND_CLIENT:
		if (o.cn == NULL) {
			rv = usage_error("%s", "client: missing --cn NAME (the "
			    "client's identity)");
			goto done;
		}
		if (o.nnames > 0 || o.nips > 0) {
			rv = usage_error("%s", "client: --name and --ip are "
			    "for server certificates");
			goto done;
		}
		break;
	}
	if (o.kind != CERTS_KIND_CA && (cadir == NULL || *cadir == '\0')) {
		rv = usage_error("%s: missing --ca CADIR", cmd);
		goto done;
	}

	err[0] = '\0';
	if (o.kind == CERTS_KIND_CA)
		rv = certs_gen_ca(out, &o, err, sizeof(err));
	else
		rv = certs_gen_leaf(cadir, out, &o, err, sizeof(err));
	if (rv == -1) {
		fprintf(stderr, "dockgate-certs: %s\n", err);
		rv = EXIT_FAILURE;
		goto done;
	}
	report(cmd, out);
	rv = EXIT_SUCCESS;
done:
	free(names);
	free(ips);
	if (fflush(stdout) == EOF && rv == EXIT_SUCCESS) {
		fprintf(stderr, "dockgate-certs: stdout: %s\n",
		    strerror(errno));
		rv = EXIT_FAILURE;
	}
	return rv;
}
