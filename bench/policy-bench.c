/*
 * Policy decision micro-benchmark: policy_eval() + policy_result_clear()
 * on a docker CLI (API 1.41) create body, GET /containers/json and
 * HEAD /_ping, under the inspecting bench policy. Not part of the build:
 *
 *   cc -O2 -Ipolicy bench/policy-bench.c policy/libpolicy.a -ljansson \
 *       -o /tmp/pb
 *   /tmp/pb [-n ITERATIONS] [-r ROUNDS] [-v] [create|list|ping ...]
 *
 * Each scenario: a warm-up, then ROUNDS rounds of ITERATIONS decisions;
 * the best and the median round are reported in ns per decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"

static const char bench_policy[] =
    "{\"version\":1,\"default_profile\":\"p\",\"profiles\":{\"p\":"
    "{\"trusted_registries\":[\"docker.io/library\"]}}}";

/* What `docker run --rm -m 512m busybox echo hi` sends (API 1.41). */
static const char bench_create_body[] =
    "{\"Hostname\":\"\",\"Domainname\":\"\",\"User\":\"\","
    "\"AttachStdin\":false,\"AttachStdout\":true,\"AttachStderr\":true,"
    "\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[],"
    "\"Cmd\":[\"echo\",\"hi\"],\"Image\":\"busybox\",\"Volumes\":null,"
    "\"WorkingDir\":\"\",\"Entrypoint\":null,\"OnBuild\":null,"
    "\"Labels\":{},\"HostConfig\":{\"Binds\":null,\"ContainerIDFile\":\"\","
    "\"LogConfig\":{\"Type\":\"\",\"Config\":{}},"
    "\"NetworkMode\":\"default\",\"PortBindings\":{},"
    "\"RestartPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},"
    "\"AutoRemove\":true,\"VolumeDriver\":\"\",\"VolumesFrom\":null,"
    "\"CapAdd\":null,\"CapDrop\":null,\"CgroupnsMode\":\"\",\"Dns\":[],"
    "\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,"
    "\"GroupAdd\":null,\"IpcMode\":\"\",\"Cgroup\":\"\",\"Links\":null,"
    "\"OomScoreAdj\":0,\"PidMode\":\"\",\"Privileged\":false,"
    "\"PublishAllPorts\":false,\"ReadonlyRootfs\":false,"
    "\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\","
    "\"ShmSize\":0,\"ConsoleSize\":[0,0],\"Isolation\":\"\","
    "\"CpuShares\":0,\"Memory\":536870912,\"NanoCpus\":0,"
    "\"CgroupParent\":\"\",\"BlkioWeight\":0,\"BlkioWeightDevice\":[],"
    "\"BlkioDeviceReadBps\":null,\"BlkioDeviceWriteBps\":null,"
    "\"BlkioDeviceReadIOps\":null,\"BlkioDeviceWriteIOps\":null,"
    "\"CpuPeriod\":0,\"CpuQuota\":0,\"CpuRealtimePeriod\":0,"
    "\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"CpusetMems\":\"\","
    "\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":null,"
    "\"KernelMemory\":0,\"KernelMemoryTCP\":0,\"MemoryReservation\":0,"
    "\"MemorySwap\":0,\"MemorySwappiness\":-1,\"OomKillDisable\":false,"
    "\"PidsLimit\":0,\"Ulimits\":null,\"CpuCount\":0,\"CpuPercent\":0,"
    "\"IOMaximumIOps\":0,\"IOMaximumBandwidth\":0,\"MaskedPaths\":null,"
    "\"ReadonlyPaths\":null},"
    "\"NetworkingConfig\":{\"EndpointsConfig\":{}}}";

struct scenario {
	const char	*name;
	const char	*method;
	const char	*target;
	const char	*body;
};

static const struct scenario scenarios[] = {
	{ "create", "POST", "/v1.41/containers/create", bench_create_body },
	{ "list", "GET", "/v1.41/containers/json", NULL },
	{ "ping", "HEAD", "/_ping", NULL },
};

static double
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec * 1e9 + ts.tv_nsec);
}

static int
dcmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

static void
run(const struct policy *pol, const struct scenario *sc, long n, int rounds,
    int verbose)
{
	const struct policy_profile	*pr;
	struct policy_identity		 id;
	struct policy_req		 req;
	struct policy_result		 res;
	const char			*why;
	double				 t0, ns[64];
	long				 i;
	int				 r;

	memset(&id, 0, sizeof(id));
	pr = policy_resolve(pol, &id);
	if (policy_req_parse(&req, sc->method, sc->target,
	    strlen(sc->target), &why) == -1) {
		fprintf(stderr, "%s: %s\n", sc->name, why);
		exit(1);
	}
	if (sc->body != NULL) {
		req.has_body = 1;
		req.content_type = "application/json";
		req.body = (const unsigned char *)sc->body;
		req.body_len = strlen(sc->body);
	}
	policy_eval(pol, pr, &req, NULL, &res);
	printf("%-7s %s %s: %s (%s), body in %zu B, forwarded %zu B\n",
	    sc->name, sc->method, sc->target, policy_verdict_name(res.verdict),
	    res.rule, req.body_len, res.body_len);
	if (verbose && res.body != NULL)
		printf("%.*s\n", (int)res.body_len, res.body);
	policy_result_clear(&res);
	for (i = 0; i < n / 10 + 1; i++) {		/* warm-up */
		policy_eval(pol, pr, &req, NULL, &res);
		policy_result_clear(&res);
	}
	for (r = 0; r < rounds; r++) {
		t0 = now_ns();
		for (i = 0; i < n; i++) {
			policy_eval(pol, pr, &req, NULL, &res);
			policy_result_clear(&res);
		}
		ns[r] = (now_ns() - t0) / n;
	}
	qsort(ns, rounds, sizeof(ns[0]), dcmp);
	printf("%-7s %ld x %d rounds: best %.0f ns, median %.0f ns per"
	    " decision\n", sc->name, n, rounds, ns[0], ns[rounds / 2]);
	policy_req_clear(&req);
}

int
main(int argc, char **argv)
{
	struct policy_error	 err;
	struct policy		*pol;
	long			 n = 20000;
	int			 rounds = 5, verbose = 0, c, any = 0;
	size_t			 i;

	while ((c = getopt(argc, argv, "n:r:v")) != -1)
		switch (c) {
		case 'n':
			n = atol(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: policy-bench [-n N] [-r R]"
			    " [-v] [create|list|ping ...]\n");
			return (2);
		}
	if (n < 1)
		n = 1;
	if (rounds < 1 || rounds > 64)
		rounds = 5;
	pol = policy_load_buffer(bench_policy, strlen(bench_policy), "bench",
	    &err);
	if (pol == NULL) {
		fprintf(stderr, "policy: %s\n", err.text);
		return (1);
	}
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (optind < argc) {
			for (c = optind; c < argc; c++)
				if (strcmp(argv[c], scenarios[i].name) == 0)
					break;
			if (c == argc)
				continue;
		}
		run(pol, &scenarios[i], n, rounds, verbose);
		any = 1;
	}
	policy_unref(pol);
	return (any ? 0 : 2);
}
