/*
 * dockgate: a Docker Engine API authorization proxy. Options, start-up,
 * signals, and the event loop.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif

#include "certs.h"
#include "proxy.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

struct proxy	*proxy;

static void	 usage(FILE *);
static int	 parse_uint(const char *, const char *, unsigned long long,
		    unsigned long long, unsigned long long *);
static void	 sig_term(evutil_socket_t, short, void *);
static void	 sig_hup(evutil_socket_t, short, void *);
static void	 grace_over(evutil_socket_t, short, void *);
static struct policy *load_policy(const char *, int);
static int	 check_main(const char *);
static void	 protect_paths(void);

/*
 * The sockets this daemon uses (the engine's, its own unix listeners), as
 * given and as real paths: the policy never lets a container bind them.
 */
static void
protect_paths(void)
{
	struct listener	*l;
	const char	*p[8];
	size_t		 n = 0, i, k = 0;

	if (proxy->upstream.kind == ADDR_UNIX)
		p[n++] = proxy->upstream.path;
	TAILQ_FOREACH(l, &proxy->listeners, entry)
		if (l->addr.kind == ADDR_UNIX && n < 7)
			p[n++] = l->addr.path;
	for (i = 0; i < n && k + 2 < 16; i++) {
		proxy->protected_paths[k++] = p[i];
		if (i < 8 && realpath(p[i], proxy->protected_buf[i]) != NULL &&
		    strcmp(proxy->protected_buf[i], p[i]) != 0)
			proxy->protected_paths[k++] = proxy->protected_buf[i];
	}
	proxy->protected_paths[k] = NULL;
}

enum {
	OPT_TLS_CERT = 256, OPT_TLS_KEY, OPT_TLS_CA, OPT_INSECURE_TCP,
	OPT_SOCKET_MODE, OPT_SOCKET_GROUP, OPT_AUDIT, OPT_DRY_RUN, OPT_METRICS,
	OPT_USER, OPT_UP_CA, OPT_UP_CERT, OPT_UP_KEY, OPT_MAX_CONN,
	OPT_MAX_HEADER, OPT_MAX_BODY, OPT_T_HEADER, OPT_T_BODY, OPT_T_CONNECT,
	OPT_T_IDLE, OPT_EVAL, OPT_AS, OPT_VERSION, OPT_HELP, OPT_SYSLOG,
	OPT_SHOW_PRESET,
};

static const struct option longopts[] = {
	{ "listen",		required_argument,	NULL, 'l' },
	{ "upstream",		required_argument,	NULL, 'u' },
	{ "policy",		required_argument,	NULL, 'p' },
	{ "tls-cert",		required_argument,	NULL, OPT_TLS_CERT },
	{ "tls-key",		required_argument,	NULL, OPT_TLS_KEY },
	{ "tls-ca",		required_argument,	NULL, OPT_TLS_CA },
	{ "insecure-tcp",	no_argument,		NULL, OPT_INSECURE_TCP },
	{ "socket-mode",	required_argument,	NULL, OPT_SOCKET_MODE },
	{ "socket-group",	required_argument,	NULL, OPT_SOCKET_GROUP },
	{ "audit",		required_argument,	NULL, OPT_AUDIT },
	{ "dry-run",		no_argument,		NULL, OPT_DRY_RUN },
	{ "metrics",		required_argument,	NULL, OPT_METRICS },
	{ "user",		required_argument,	NULL, OPT_USER },
	{ "upstream-tls-ca",	required_argument,	NULL, OPT_UP_CA },
	{ "upstream-tls-cert",	required_argument,	NULL, OPT_UP_CERT },
	{ "upstream-tls-key",	required_argument,	NULL, OPT_UP_KEY },
	{ "max-connections",	required_argument,	NULL, OPT_MAX_CONN },
	{ "max-header-bytes",	required_argument,	NULL, OPT_MAX_HEADER },
	{ "max-body-bytes",	required_argument,	NULL, OPT_MAX_BODY },
	{ "timeout-header",	required_argument,	NULL, OPT_T_HEADER },
	{ "timeout-body",	required_argument,	NULL, OPT_T_BODY },
	{ "timeout-connect",	required_argument,	NULL, OPT_T_CONNECT },
	{ "timeout-idle",	required_argument,	NULL, OPT_T_IDLE },
	{ "check",		no_argument,		NULL, 'n' },
	{ "eval",		no_argument,		NULL, OPT_EVAL },
	{ "as",			required_argument,	NULL, OPT_AS },
	{ "foreground",		no_argument,		NULL, 'd' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "syslog",		no_argument,		NULL, OPT_SYSLOG },
	{ "show-preset",	required_argument,	NULL, OPT_SHOW_PRESET },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ "help",		no_argument,		NULL, OPT_HELP },
	{ NULL,			0,			NULL, 0 }
};

/* Print the option summary. */
static void
usage(FILE *f)
{
	fprintf(f,
"usage: dockgate [options]\n"
"  -l, --listen ADDR     where clients connect; repeatable;\n"
"                        default unix:/run/dockgate.sock\n"
"  -u, --upstream ADDR   the real engine; default unix:/var/run/docker.sock\n"
"  -p, --policy FILE     default %s/dockgate/policy.json\n"
"      --tls-cert FILE   server certificate (PEM) for tcp listeners\n"
"      --tls-key FILE    its private key\n"
"      --tls-ca FILE     CA bundle: clients must present a certificate\n"
"                        signed by it (mutual TLS); its CN is their identity\n"
"      --insecure-tcp    allow a tcp listener without TLS (loopback tests only)\n"
"      --socket-mode MODE, --socket-group GROUP\n"
"                        for unix listeners (default 0660)\n"
"      --audit FILE      one JSON line per decided request (\"-\" = stdout)\n"
"      --dry-run         decide and audit, but forward denied requests too\n"
"      --metrics ADDR    Prometheus text at /metrics, health at /healthz\n"
"      --user USER       drop to USER after binding\n"
"      --upstream-tls-ca FILE, --upstream-tls-cert FILE,\n"
"      --upstream-tls-key FILE   for a tcp: upstream engine that needs TLS\n"
"      --max-connections N     (default 4096)\n"
"      --max-header-bytes N    request line + headers (default 65536)\n"
"      --max-body-bytes N      inspected JSON bodies (default 1048576)\n"
"      --timeout-header S, --timeout-body S, --timeout-connect S,\n"
"      --timeout-idle S        (defaults 30, 60, 10, 120; streams and\n"
"                              tunnels have none)\n"
"  -n, --check           validate the policy, print a summary, exit 0 or 1\n"
"      --eval            decide one request offline:\n"
"                        dockgate --eval --policy FILE --as uid=N,gid=N|cn=NAME\n"
"                          [--upstream ADDR] METHOD PATH[?QUERY] [BODY.json]\n"
"      --show-preset NAME  print a built-in preset (\"extends\":\n"
"                        \"preset:NAME\") as JSON; \"list\" names them\n"
"  -d, --foreground      accepted; dockgate always runs in the foreground\n"
"  -v, --verbose         more logging (repeat for debug)\n"
"      --syslog          log to syslog (daemon facility) instead of stderr\n"
"      --version, --help\n"
"ADDR: unix:/path, unix:///path, tcp:HOST:PORT, tcp://HOST:PORT ([::1] for\n"
"IPv6), or systemd (sockets passed in LISTEN_FDS).\n"
"Signals: SIGHUP reloads the policy and reopens the audit log; SIGTERM and\n"
"SIGINT stop accepting and exit once requests in flight end (at most %ds).\n",
	    SYSCONFDIR, DOCKGATE_SHUTDOWN_GRACE);
}

/* --show-preset: print one preset's JSON, or the names; the exit code. */
static int
show_preset(const char *name)
{
	const char	*n;
	char		*text;
	size_t		 i;

	if (strcmp(name, "list") != 0 &&
	    (text = policy_preset_text(name)) != NULL) {
		printf("%s\n", text);
		free(text);
		return 0;
	}
	if (strcmp(name, "list") != 0)
		fprintf(stderr, "dockgate: no preset \"%s\"; presets:\n", name);
	for (i = 0; (n = policy_preset_name(i)) != NULL; i++)
		fprintf(strcmp(name, "list") == 0 ? stdout : stderr,
		    "%s%s\n", POLICY_PRESET_PREFIX, n);
	return strcmp(name, "list") == 0 ? 0 : 1;
}

/* Parse an unsigned option value within [min, max]. */
static int
parse_uint(const char *name, const char *s, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
 bad:
	fprintf(stderr, "dockgate: --%s: '%s' is not a number from %llu to "
	    "%llu\n", name, s, min, max);
	return -1;
}

/* Load a policy file; report errors on stderr or in the log. */
static struct policy *
load_policy(const char *file, int to_log)
{
	struct policy_error	 err;
	struct policy		*p;

	memset(&err, 0, sizeof(err));
	if ((p = policy_load_file(file, &err)) == NULL) {
		if (to_log)
			log_warnx("policy %s: %s", file, err.text[0] ? err.text :
			    "cannot load");
		else
			fprintf(stderr, "dockgate: policy %s: %s\n", file,
			    err.text[0] ? err.text : "cannot load");
	}
	return p;
}

/* --check: validate the policy and print its summary. */
static int
check_main(const char *file)
{
	struct policy	*p;
	char		*s;

	if ((p = load_policy(file, 0)) == NULL)
		return 1;
	if ((s = policy_summary(p)) != NULL) {
		fputs(s, stdout);
		free(s);
	}
	if (proxy->tls_cert != NULL) {
		char err[512], desc[512];

		if (certs_check_files(proxy->tls_cert, proxy->tls_key,
		    proxy->tls_ca, err, sizeof(err)) == -1) {
			fprintf(stderr, "dockgate: %s\n", err);
			policy_unref(p);
			return 1;
		}
		if (certs_describe(proxy->tls_cert, desc, sizeof(desc), err,
		    sizeof(err)) == 0)
			printf("tls: %s\n", desc);
	}
	if (proxy->upstream.kind == ADDR_TCP)
		printf("upstream %s: tcp engine; host_paths are matched "
		    "textually only (no real-path check)\n",
		    proxy->upstream.spec);
	printf("policy %s: OK\n", file);
	policy_unref(p);
	return 0;
}

/* SIGTERM/SIGINT: stop accepting; exit when requests in flight end. */
static void
sig_term(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval	 tv = { DOCKGATE_SHUTDOWN_GRACE, 0 };

	if (proxy->stopping) {
		event_base_loopexit(proxy->base, NULL);
		return;
	}
	log_info("signal %d: shutting down", (int)sig);
	proxy->stopping = 1;
	listener_close_all();
	metrics_close();
	conn_shutdown_idle();
	if (proxy->nconns == 0) {
		event_base_loopexit(proxy->base, NULL);
		return;
	}
	evtimer_add(proxy->ev_grace, &tv);
}

/*
 * Hand freed heap pages back to the system. glibc keeps them, so a burst
 * (a large upload, many connections at once) would otherwise stay in the
 * resident size for good: a long-running daemon's memory should follow
 * what it holds, not what it once held.
 */
static void
trim_memory(evutil_socket_t fd, short ev, void *arg)
{
#ifdef HAVE_MALLOC_TRIM
	malloc_trim(0);
#endif
}

/* The grace period for in-flight requests is over. */
static void
grace_over(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("shutdown: %u connection(s) still open after %ds; closing",
	    proxy->nconns, DOCKGATE_SHUTDOWN_GRACE);
	event_base_loopexit(proxy->base, NULL);
}

/* SIGHUP: reload the policy (the old one stays on error); reopen logs. */
static void
sig_hup(evutil_socket_t sig, short ev, void *arg)
{
	struct policy	*p;

	char		 err[512];
	int		 ok = 1;

	audit_reopen();
	if (tls_load(err, sizeof(err)) == -1) {
		log_warnx("TLS reload failed, the old certificates stay: %s",
		    err);
		ok = 0;
	}
	if ((p = load_policy(proxy->policy_file, 1)) == NULL) {
		log_warnx("reload failed; the old policy stays in force");
		ok = 0;
	} else {
		policy_unref(proxy->policy);
		proxy->policy = p;
		log_warnx("policy %s reloaded", proxy->policy_file);
	}
	metrics_reload(ok);
}

int
main(int argc, char *argv[])
{
	static struct proxy	 px;
	char			 err[1024];
	const char		*metrics_addr = NULL, *audit = NULL;
	unsigned long long	 v;
	int			 ch, check = 0, eval = 0, nlisten = 0;
	int			 use_syslog = 0;
	const char		*as = NULL, *user = NULL;
	uid_t			 uid = 0;
	gid_t			 gid = 0;
	struct conn		*c;
	struct group		*gr;
	char			*end;

	proxy = &px;
	TAILQ_INIT(&px.listeners);
	TAILQ_INIT(&px.conns);
	TAILQ_INIT(&px.flushq);
	px.max_connections = 4096;
	px.max_header_bytes = 65536;
	px.max_body_bytes = 1048576;
	px.timeout_header = 30;
	px.timeout_body = 60;
	px.timeout_connect = 10;
	px.timeout_idle = 120;
	px.socket_mode = 0660;
	px.policy_file = (char *)SYSCONFDIR "/dockgate/policy.json";
	if (addr_parse("unix:/var/run/docker.sock", &px.upstream, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);

	while ((ch = getopt_long(argc, argv, "l:u:p:ndv", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'l':
			if (listener_add(optarg, err, sizeof(err)) == -1) {
				fprintf(stderr, "dockgate: --listen %s\n", err);
				return 2;
			}
			nlisten++;
			break;
		case 'u':
			if (addr_parse(optarg, &px.upstream, err,
			    sizeof(err)) == -1 ||
			    px.upstream.kind == ADDR_SYSTEMD) {
				fprintf(stderr, "dockgate: --upstream %s\n",
				    px.upstream.kind == ADDR_SYSTEMD ?
				    "cannot be systemd" : err);
				return 2;
			}
			px.upstream_given = 1;
			break;
		case 'p':
			px.policy_file = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'd':
			break;
		case 'v':
			px.verbose++;
			break;
		case OPT_INSECURE_TCP:
			px.insecure_tcp = 1;
			break;
		case OPT_SOCKET_MODE:
			v = strtoull(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || v > 0777) {
				fprintf(stderr, "dockgate: --socket-mode: '%s' "
				    "is not an octal mode\n", optarg);
				return 2;
			}
			px.socket_mode = (int)v;
			break;
		case OPT_SOCKET_GROUP:
			if ((gr = getgrnam(optarg)) != NULL)
				px.socket_gid = gr->gr_gid;
			else if (parse_uint("socket-group", optarg, 0,
			    UINT_MAX - 1, &v) == 0)
				px.socket_gid = (gid_t)v;
			else
				return 2;
			px.socket_gid_set = 1;
			break;
		case OPT_AUDIT:
			audit = optarg;
			break;
		case OPT_DRY_RUN:
			px.dry_run = 1;
			break;
		case OPT_METRICS:
			metrics_addr = optarg;
			break;
		case OPT_MAX_CONN:
			if (parse_uint("max-connections", optarg, 1, 1000000,
			    &v) == -1)
				return 2;
			px.max_connections = (unsigned)v;
			break;
		case OPT_MAX_HEADER:
			if (parse_uint("max-header-bytes", optarg, 256,
			    16 * 1024 * 1024, &v) == -1)
				return 2;
			px.max_header_bytes = (size_t)v;
			break;
		case OPT_MAX_BODY:
			if (parse_uint("max-body-bytes", optarg, 1,
			    1024ULL * 1024 * 1024, &v) == -1)
				return 2;
			px.max_body_bytes = (size_t)v;
			break;
		case OPT_T_HEADER:
		case OPT_T_BODY:
		case OPT_T_CONNECT:
		case OPT_T_IDLE:
			if (parse_uint(longopts[0].name, optarg, 1, 86400,
			    &v) == -1)
				return 2;
			if (ch == OPT_T_HEADER)
				px.timeout_header = (int)v;
			else if (ch == OPT_T_BODY)
				px.timeout_body = (int)v;
			else if (ch == OPT_T_CONNECT)
				px.timeout_connect = (int)v;
			else
				px.timeout_idle = (int)v;
			break;
		case OPT_EVAL:
			eval = 1;
			break;
		case OPT_AS:
			as = optarg;
			break;
		case OPT_SYSLOG:
			use_syslog = 1;
			break;
		case OPT_SHOW_PRESET:
			exit(show_preset(optarg));
		case OPT_VERSION:
			printf("dockgate %s\n", PACKAGE_VERSION);
			/* What this build enforces (tests read this line). */
			printf("sandbox: %s\n",
#if defined(HAVE_SECCOMP) && !defined(DOCKGATE_SANITIZERS)
			    "seccomp"
#elif defined(DOCKGATE_SANITIZERS)
			    "none (sanitizer build: LeakSanitizer needs ptrace)"
#else
			    "none (built without libseccomp)"
#endif
			    );
			return 0;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_TLS_CERT:
			px.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			px.tls_key = optarg;
			break;
		case OPT_TLS_CA:
			px.tls_ca = optarg;
			break;
		case OPT_UP_CA:
			px.up_tls_ca = optarg;
			px.up_tls = 1;
			break;
		case OPT_UP_CERT:
			px.up_tls_cert = optarg;
			px.up_tls = 1;
			break;
		case OPT_UP_KEY:
			px.up_tls_key = optarg;
			px.up_tls = 1;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;

	if ((px.tls_cert == NULL) != (px.tls_key == NULL)) {
		fprintf(stderr, "dockgate: --tls-cert and --tls-key go "
		    "together\n");
		return 2;
	}
	if (px.tls_ca != NULL && px.tls_cert == NULL) {
		fprintf(stderr, "dockgate: --tls-ca needs --tls-cert and "
		    "--tls-key\n");
		return 2;
	}
	if (px.up_tls && px.upstream.kind != ADDR_TCP) {
		fprintf(stderr, "dockgate: --upstream-tls-* need a tcp: "
		    "--upstream\n");
		return 2;
	}
	if ((px.up_tls_cert == NULL) != (px.up_tls_key == NULL)) {
		fprintf(stderr, "dockgate: --upstream-tls-cert and "
		    "--upstream-tls-key go together\n");
		return 2;
	}
	if (check)
		return check_main(px.policy_file);
	if (eval)
		return eval_main(px.policy_file, as,
		    px.upstream_given ? &px.upstream : NULL, argc, argv);
	if (argc != 0) {
		usage(stderr);
		return 2;
	}

	log_init(use_syslog, px.verbose);
	signal(SIGPIPE, SIG_IGN);
	if (user != NULL && privdrop_lookup(user, &uid, &gid, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: %s\n", err);
		return 2;
	}
	if ((px.policy = load_policy(px.policy_file, 0)) == NULL)
		return 1;
	if (nlisten == 0 && listener_add("unix:/run/dockgate.sock", err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	{
		struct listener *l;

		TAILQ_FOREACH(l, &px.listeners, entry)
			if (l->addr.kind == ADDR_TCP && !px.insecure_tcp &&
			    px.tls_cert == NULL) {
				fprintf(stderr, "dockgate: --listen %s: a tcp "
				    "listener needs --tls-cert and --tls-key "
				    "(or --insecure-tcp for loopback tests)\n",
				    l->addr.spec);
				return 2;
			}
	}
	if (tls_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: %s\n", err);
		return 1;
	}
	if ((px.base = event_base_new()) == NULL ||
	    (px.scratch = evbuffer_new()) == NULL)
		fatalx("event_base_new failed");
	if (audit != NULL && audit_open(audit, err, sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: --audit %s\n", err);
		return 1;
	}
	if (metrics_addr != NULL && metrics_listen(metrics_addr, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: --metrics %s\n", err);
		return 1;
	}
	px.ev_sigterm = evsignal_new(px.base, SIGTERM, sig_term, NULL);
	px.ev_sigint = evsignal_new(px.base, SIGINT, sig_term, NULL);
	px.ev_sighup = evsignal_new(px.base, SIGHUP, sig_hup, NULL);
	px.ev_grace = evtimer_new(px.base, grace_over, NULL);
	px.ev_trim = event_new(px.base, -1, EV_PERSIST, trim_memory, NULL);
	px.ev_accept_resume = listener_resume_event(px.base);
	if (px.ev_sigterm == NULL || px.ev_sigint == NULL ||
	    px.ev_sighup == NULL || px.ev_grace == NULL ||
	    px.ev_trim == NULL || px.ev_accept_resume == NULL)
		fatalx("cannot set up events");
	{
		struct timeval	trim_every = { DOCKGATE_TRIM_INTERVAL, 0 };

		evtimer_add(px.ev_trim, &trim_every);
	}
	evsignal_add(px.ev_sigterm, NULL);
	evsignal_add(px.ev_sigint, NULL);
	evsignal_add(px.ev_sighup, NULL);
	if (listener_bind_all(err, sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: %s\n", err);
		listener_close_all();
		return 1;
	}
	protect_paths();
	if (user != NULL) {
		if (privdrop_apply(uid, gid, px.upstream.kind == ADDR_UNIX ?
		    px.upstream.path : NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "dockgate: %s\n", err);
			listener_close_all();
			return 1;
		}
		log_info("running as uid %u gid %u", (unsigned)uid,
		    (unsigned)gid);
	}
	if (privdrop_sandbox(err, sizeof(err)) == -1) {
		fprintf(stderr, "dockgate: sandbox: %s\n", err);
		listener_close_all();
		return 1;
	}
	listener_enable_all();
	{
		struct listener *l;

		TAILQ_FOREACH(l, &px.listeners, entry)
			log_info("listening on %s", l->addr.spec);
	}
	log_info("engine at %s, policy %s", px.upstream.spec, px.policy_file);

	/* One turn of the loop at a time: held engine writes go out at its
	 * end (io_flush()). */
	while (event_base_loop(px.base, EVLOOP_ONCE) == 0 &&
	    !event_base_got_exit(px.base) && !event_base_got_break(px.base))
		io_flush();

	/* Orderly exit: nothing left behind for LeakSanitizer to find. */
	listener_close_all();
	while ((c = TAILQ_FIRST(&px.conns)) != NULL)
		conn_close(c, "shutting down");
	event_base_loop(px.base, EVLOOP_NONBLOCK);
	conn_spare_free();
	metrics_close();
	audit_close();
	event_free(px.ev_sigterm);
	event_free(px.ev_sigint);
	event_free(px.ev_sighup);
	event_free(px.ev_grace);
	event_free(px.ev_trim);
	event_free(px.ev_accept_resume);
	policy_unref(px.policy);
	ratelimit_free();
	tls_free();
	upstream_pool_free();
	evbuffer_free(px.scratch);
	event_base_free(px.base);
	return 0;
}
