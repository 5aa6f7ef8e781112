/*
 * Allocation failure: every allocation the policy library makes fails in
 * turn. For each scenario the call is first made normally (the baseline),
 * then again with allocation N failing, for N = 1, 2, ... until a call
 * makes fewer than N allocations; a second pass makes allocation N and all
 * after it fail. Each outcome must be the baseline exactly, or a refusal
 * for want of memory (an error return, or a DENY with a 5xx status):
 * never an allow the baseline does not give, never a MUTATE that lost a
 * mutation, never a 4xx the baseline does not give (a 400 would tell the
 * client its request was bad). Under ASan (--enable-sanitizers) every
 * iteration is also checked for leaks (LeakSanitizer prints where the
 * leaked memory was allocated).
 *
 * How allocations are made to fail, without a hook in policy/: the test is
 * linked with -Wl,--wrap for malloc, calloc, realloc, strdup, strndup,
 * vasprintf, __vasprintf_chk and open_memstream, so the library's own
 * calls go through the __wrap_ functions below; jansson's allocations go
 * through json_set_alloc_funcs(). Allocations inside libc (the buffer an
 * open_memstream grows) are not counted: their failure shows as an error
 * of the call that made them (fclose), which the library checks.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#if defined(__SANITIZE_ADDRESS__)
#define CHAOS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHAOS_ASAN 1
#endif
#endif
#ifdef CHAOS_ASAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

/* ------------------------------------------------------------------ */
/* The allocation hook.                                                */

static int	 chaos_armed;		/* count allocations now */
static long	 chaos_count;		/* allocations seen while armed */
static long	 chaos_fail_at;		/* fail this one (1-based); 0: none */
static int	 chaos_sticky;		/* ...and every one after it */
static long	 chaos_failed;		/* how many were failed */
static long	 chaos_trace;		/* CHAOS_TRACE: print its stack */

void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
void	*__real_realloc(void *, size_t);
char	*__real_strdup(const char *);
char	*__real_strndup(const char *, size_t);
int	 __real_vasprintf(char **, const char *, va_list);
int	 __real___vasprintf_chk(char **, int, const char *, va_list);
FILE	*__real_open_memstream(char **, size_t *);

void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);
char	*__wrap_strdup(const char *);
char	*__wrap_strndup(const char *, size_t);
int	 __wrap_vasprintf(char **, const char *, va_list);
int	 __wrap___vasprintf_chk(char **, int, const char *, va_list);
FILE	*__wrap_open_memstream(char **, size_t *);

static int
chaos_fail(void)
{
	if (!chaos_armed)
		return 0;
	chaos_count++;
	if (chaos_fail_at != 0 && (chaos_count == chaos_fail_at ||
	    (chaos_sticky && chaos_count > chaos_fail_at))) {
		chaos_failed++;
#ifdef CHAOS_ASAN
		/* CHAOS_TRACE=N: where allocation N is made */
		if (chaos_trace == chaos_count && chaos_failed == 1) {
			fprintf(stderr, "check_chaos: allocation %ld:\n",
			    chaos_count);
			__sanitizer_print_stack_trace();
		}
#endif
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *
__wrap_malloc(size_t n)
{
	return chaos_fail() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return chaos_fail() ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return chaos_fail() ? NULL : __real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
	return chaos_fail() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	return chaos_fail() ? NULL : __real_strndup(s, n);
}

int
__wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (chaos_fail())
		return -1;
	return __real_vasprintf(out, fmt, ap);
}

int
__wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
{
	if (chaos_fail())
		return -1;
	return __real___vasprintf_chk(out, flag, fmt, ap);
}

FILE *
__wrap_open_memstream(char **buf, size_t *len)
{
	return chaos_fail() ? NULL : __real_open_memstream(buf, len);
}

static void *
chaos_json_malloc(size_t n)
{
	return chaos_fail() ? NULL : __real_malloc(n);
}

static void
chaos_json_free(void *p)
{
	free(p);
}

static void
chaos_arm(long fail_at, int sticky)
{
	chaos_count = 0;
	chaos_failed = 0;
	chaos_fail_at = fail_at;
	chaos_sticky = sticky;
	chaos_armed = 1;
}

static void
chaos_disarm(void)
{
	chaos_armed = 0;
}

static void
chaos_leak_check(const char *what, long n, int sticky)
{
#ifdef CHAOS_ASAN
	ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
	    "%s: leak with allocation %ld failing%s (report above)", what, n,
	    sticky ? " and all after it" : "");
#else
	(void)what;
	(void)n;
	(void)sticky;
#endif
}

#define CHAOS_MAX_N	200000

/* ------------------------------------------------------------------ */
/* The policy the scenarios run against.                               */

static const char chaos_policy[] =
"{\n"
" \"version\": 1,\n"
" \"default_profile\": \"baseline\",\n"
" \"identities\": [\n"
"  { \"match\": { \"uid\": 1000 }, \"profile\": \"strict\" },\n"
"  { \"match\": { \"cert_cn\": \"ci\" }, \"profile\": \"ci\" },\n"
"  { \"match\": { \"listener\": \"unix:/run/x.sock\", \"gid\": 5 },"
"    \"profile\": \"shared\" }\n"
" ],\n"
" \"profiles\": {\n"
"  \"baseline\": {\n"
"   \"trusted_registries\": [\"docker.io/library\", \"localhost:5000\"],\n"
"   \"local_images\": [\"local/\"],\n"
"   \"no_new_privileges\": true,\n"
"   \"memory\": { \"default\": \"1g\", \"max\": \"8g\" },\n"
"   \"pids\": { \"default\": 1024, \"max\": 8192 }\n"
"  },\n"
"  \"strict\": {\n"
"   \"extends\": \"baseline\",\n"
"   \"drop_all_capabilities\": true,\n"
"   \"capabilities\": [\"CHOWN\", \"NET_BIND_SERVICE\"],\n"
"   \"run_as_non_root\": true,\n"
"   \"read_only_rootfs\": true,\n"
"   \"published_ports\": \"none\",\n"
"   \"cpus\": { \"default\": 1, \"max\": 2 },\n"
"   \"ownership\": true,\n"
"   \"rate\": { \"requests_per_second\": 5, \"burst\": 10 }\n"
"  },\n"
"  \"ci\": {\n"
"   \"extends\": \"baseline\",\n"
"   \"build\": true,\n"
"   \"host_paths\": [\"/srv/ci\", \"/tmp\"],\n"
"   \"sysctls\": [\"net.ipv4.ip_forward\"],\n"
"   \"network_drivers\": [\"bridge\", \"overlay\"],\n"
"   \"endpoints\": { \"deny\": [\"POST /commit\"] }\n"
"  },\n"
"  \"shared\": {\n"
"   \"extends\": \"baseline\",\n"
"   \"ownership\": true,\n"
"   \"read_others\": true,\n"
"   \"redact\": [\"env\"]\n"
"  }\n"
" }\n"
"}\n";

static struct policy	*pol;

/* ------------------------------------------------------------------ */
/* Scenarios: one request each, with the engine facts it needs.        */

struct chaos_fact {
	const char	*path;
	int		 status;
	const char	*body;
};

struct scenario {
	const char		*name;
	const char		*profile;	/* NULL: the built-in one */
	const char		*method;
	const char		*target;
	const char		*body;		/* NULL: none */
	const char		*dockerfile;	/* policy_eval_dockerfile */
	struct chaos_fact	 facts[4];	/* answered lookups */
	int			 partial;	/* give no facts: LOOKUP */
	const char		*expect;	/* baseline verdict name */
};

static const struct scenario scenarios[] = {
	{ "create with mutations", "strict", "POST",
	    "/v1.41/containers/create?name=web&platform=linux",
	    "{\"Image\":\"busybox:1.36\",\"Cmd\":[\"sh\",\"-c\",\"id\"],"
	    "\"Env\":[\"A=1\"],\"Labels\":{\"x\":\"y\"},"
	    "\"HostConfig\":{\"CapAdd\":[\"CHOWN\"],\"Memory\":0,"
	    "\"Binds\":[],\"PortBindings\":{},\"Tmpfs\":{\"/run\":\"\"}},"
	    "\"User\":\"1000:1000\",\"NetworkingConfig\":"
	    "{\"EndpointsConfig\":{\"bridge\":{}}}}",
	    NULL, { { NULL, 0, NULL } }, 0, "mutate" },
	{ "create, top-level host fields", "baseline", "POST",
	    "/containers/create",
	    "{\"Image\":\"local/app\",\"Memory\":1048576,\"CpuShares\":2,"
	    "\"Binds\":[\"v1:/data\"],\"Mounts\":[{\"Type\":\"volume\","
	    "\"Source\":\"v2\",\"Target\":\"/v2\"}]}",
	    NULL, { { "/volumes/v1", 404, "" },
	    { "/volumes/v2", 200, "{\"Driver\":\"local\",\"Labels\":{}}" } },
	    0, NULL },
	{ "create denied (privileged)", "baseline", "POST",
	    "/v1.41/containers/create",
	    "{\"Image\":\"busybox\",\"HostConfig\":{\"Privileged\":true}}",
	    NULL, { { NULL, 0, NULL } }, 0, "deny" },
	{ "create with a bind under host_paths", "ci", "POST",
	    "/v1.41/containers/create",
	    "{\"Image\":\"busybox\",\"HostConfig\":{\"Binds\":"
	    "[\"/srv/ci/cache:/cache:ro\"],\"Sysctls\":"
	    "{\"net.ipv4.ip_forward\":\"1\"}}}",
	    NULL, { { "realpath:/srv/ci/cache", 200, "\"/srv/ci/cache\"" } },
	    0, NULL },
	{ "create by image ID (lookup)", "baseline", "POST",
	    "/v1.41/containers/create",
	    "{\"Image\":\"sha256:0123456789abcdef0123456789abcdef0123456789"
	    "abcdef0123456789abcdef\"}", NULL,
	    { { "/images/sha256:0123456789abcdef0123456789abcdef0123456789"
	    "abcdef0123456789abcdef/json", 200,
	    "{\"RepoTags\":[\"busybox:latest\"]}" } }, 0, NULL },
	{ "create by image ID, lookup asked", "baseline", "POST",
	    "/v1.41/containers/create",
	    "{\"Image\":\"0123456789ab\"}", NULL, { { NULL, 0, NULL } }, 1,
	    "lookup" },
	{ "update with limits", "strict", "POST",
	    "/v1.41/containers/abc/update",
	    "{\"Memory\":2147483648,\"NanoCpus\":0,\"PidsLimit\":0}",
	    NULL, { { "/containers/abc/json", 200, "{\"Config\":{\"Labels\":"
	    "{\"dockgate.owner\":\"uid:1000\"}}}" } }, 0, NULL },
	{ "exec create", "strict", "POST", "/v1.41/containers/abc/exec",
	    "{\"Cmd\":[\"sh\"],\"Privileged\":false,\"User\":\"1000\"}",
	    NULL, { { "/containers/abc/json", 200, "{\"Config\":{\"Labels\":"
	    "{\"dockgate.owner\":\"uid:1000\"}}}" } }, 0, NULL },
	{ "start, owned container", "strict", "POST",
	    "/v1.41/containers/abc/start", NULL, NULL,
	    { { "/containers/abc/json", 200, "{\"Config\":{\"Labels\":"
	    "{\"dockgate.owner\":\"uid:1000\"}},\"HostConfig\":{}}" } }, 0,
	    NULL },
	{ "start, someone else's", "strict", "POST",
	    "/v1.41/containers/abc/start", NULL, NULL,
	    { { "/containers/abc/json", 200, "{\"Config\":{\"Labels\":"
	    "{\"dockgate.owner\":\"uid:7\"}},\"HostConfig\":{}}" } }, 0,
	    "deny" },
	{ "volume create", "strict", "POST", "/v1.41/volumes/create",
	    "{\"Name\":\"data\",\"Driver\":\"local\",\"DriverOpts\":{},"
	    "\"Labels\":{\"a\":\"b\"}}", NULL, { { NULL, 0, NULL } }, 0,
	    "mutate" },
	{ "volume create with a bind option", "ci", "POST",
	    "/v1.41/volumes/create",
	    "{\"Name\":\"data\",\"DriverOpts\":{\"type\":\"none\","
	    "\"o\":\"bind\",\"device\":\"/etc\"}}", NULL,
	    { { "realpath:/etc", 200, "\"/etc\"" } }, 0, NULL },
	{ "volume create, bad JSON", "strict", "POST",
	    "/v1.41/volumes/create",
	    "{\"Name\":\"a-rather-long-volume-name\",\"Labels\":"
	    "{\"com.example.some-label\":\"some-value\",}}", NULL,
	    { { NULL, 0, NULL } }, 0, "malformed" },
	{ "create, a real number (full reader)", "baseline",
	    "POST", "/v1.41/containers/create",
	    "{\"Image\":\"busybox\",\"Labels\":{\"com.example.long-"
	    "label\":\"a value longer than sixteen bytes\"},\"Healthcheck"
	    "\":{\"Test\":[\"CMD\",\"true\"],\"Interval\":1.5e9}}",
	    NULL, { { NULL, 0, NULL } }, 0, "mutate" },
	{ "network create", "ci", "POST", "/v1.41/networks/create",
	    "{\"Name\":\"n1\",\"Driver\":\"overlay\",\"Options\":{},"
	    "\"Labels\":{}}", NULL, { { NULL, 0, NULL } }, 0, NULL },
	{ "image pull (query)", "baseline", "POST",
	    "/v1.41/images/create?fromImage=docker.io%2Flibrary%2Fbusybox"
	    "&tag=1.36", NULL, NULL, { { NULL, 0, NULL } }, 0, "allow" },
	{ "image pull denied", "baseline", "POST",
	    "/v1.41/images/create?fromImage=evil.example%2Fx&tag=1", NULL,
	    NULL, { { NULL, 0, NULL } }, 0, "deny" },
	{ "list with owner filter", "shared", "GET",
	    "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a"
	    "%3Db%22%5D%7D", NULL, NULL, { { NULL, 0, NULL } }, 0, NULL },
	{ "prune with owner filter", "strict", "POST",
	    "/v1.41/containers/prune?filters=%7B%22until%22%3A%5B%2210m%22"
	    "%5D%7D", NULL, NULL, { { NULL, 0, NULL } }, 0, NULL },
	{ "inspect (read_others)", "shared", "GET",
	    "/v1.41/containers/abc/json", NULL, NULL,
	    { { "/containers/abc/json", 200, "{\"Config\":{\"Labels\":"
	    "{\"dockgate.owner\":\"uid:9\"}}}" } }, 0, NULL },
	{ "commit (denied endpoint)", "ci", "POST",
	    "/v1.41/commit?container=abc&repo=local%2Fx", "{}", NULL,
	    { { NULL, 0, NULL } }, 0, "deny" },
	{ "Dockerfile", "ci", "POST",
	    "/v1.41/build?t=local%2Fx&buildargs=%7B%22V%22%3A%221%22%7D",
	    NULL, "# syntax=docker/dockerfile:1\nARG V\n"
	    "FROM busybox:${V} AS a\nFROM a\nCOPY --from=alpine:3 /x /x\n"
	    "RUN echo \\\n  hi\n", { { NULL, 0, NULL } }, 0, NULL },
};
#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

/* One outcome, copied out of a result. */
struct outcome {
	int		 rv;
	enum policy_verdict verdict;
	int		 status;
	char		 rule[64];
	char		*body;
	char		*target;
	char		 lookup[512];
	char		*muts;		/* mutations joined by '\n' */
	size_t		 nmut;
	int		 not_owned;
};

static void
outcome_free(struct outcome *o)
{
	free(o->body);
	free(o->target);
	free(o->muts);
	memset(o, 0, sizeof(*o));
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Evaluate one scenario (armed or not); -1 when a setup step failed. */
static int
run_scenario(const struct scenario *s, struct outcome *o)
{
	struct policy_req	 req;
	struct policy_result	 res;
	struct policy_facts	 facts;
	const struct policy_profile *pp;
	const char		*why;
	size_t			 i, len;
	int			 rv;

	memset(o, 0, sizeof(*o));
	memset(&facts, 0, sizeof(facts));
	pp = s->profile != NULL ? policy_profile_find(pol, s->profile) : NULL;
	if (policy_req_parse(&req, s->method, s->target, strlen(s->target),
	    &why) == -1) {
		/* only out of memory can make these targets fail */
		o->rv = -2;
		return 0;
	}
	req.owner = "uid:1000";
	if (s->body != NULL) {
		req.body = (const unsigned char *)s->body;
		req.body_len = strlen(s->body);
		req.has_body = 1;
		req.content_type = "application/json";
	}
	for (i = 0; !s->partial && i < 4 && s->facts[i].path != NULL; i++) {
		facts.fact[i].path = s->facts[i].path;
		facts.fact[i].status = s->facts[i].status;
		facts.fact[i].body = s->facts[i].body;
		facts.fact[i].body_len = strlen(s->facts[i].body);
		facts.n = i + 1;
	}
	if (s->dockerfile != NULL)
		rv = policy_eval_dockerfile(pol, pp, &req, s->dockerfile,
		    strlen(s->dockerfile), &facts, &res);
	else
		rv = policy_eval(pol, pp, &req, &facts, &res);
	policy_req_clear(&req);
	o->rv = rv;
	o->verdict = res.verdict;
	o->status = res.status;
	o->not_owned = res.not_owned;
	snprintf(o->rule, sizeof(o->rule), "%s", res.rule);
	snprintf(o->lookup, sizeof(o->lookup), "%s", res.lookup);
	/* copies are made unarmed so the comparison cannot fail */
	chaos_armed = 0;
	o->body = res.body ? __real_strdup(res.body) : NULL;
	o->target = res.target ? __real_strdup(res.target) : NULL;
	o->nmut = res.nmutations;
	for (i = 0, len = 1; i < res.nmutations; i++)
		len += strlen(res.mutations[i]) + 1;
	o->muts = __real_calloc(1, len);
	for (i = 0; i < res.nmutations; i++) {
		strcat(o->muts, res.mutations[i]);
		strcat(o->muts, "\n");
	}
	policy_result_clear(&res);
	return 0;
}

/* Outcome tallies for the summary line. */
struct tally {
	long	same, err, deny500, lookup;
};

/* Is outcome o (under failure) acceptable against the baseline b? */
static void
judge(const struct scenario *s, const struct outcome *b,
    const struct outcome *o, long n, int sticky, struct tally *t)
{
	const char	*how = sticky ? " and all after it" : "";

	if (o->rv == -2 || o->rv == -1) {
		t->err++;
		return;
	}
	ck_assert_msg(o->rv == 0, "%s: allocation %ld%s: rv %d", s->name, n,
	    how, o->rv);
	switch (o->verdict) {
	case POLICY_LOOKUP:
		if (b->verdict != POLICY_LOOKUP) {
			/* asks the engine again: no allow, but counted */
			if (t->lookup++ == 0)
				fprintf(stderr, "check_chaos: %s: allocation "
				    "%ld failing%s: lookup %s (baseline %s; first "
				    "of its kind)\n", s->name, n, how, o->lookup,
				    policy_verdict_name(b->verdict));
			return;
		}
		/* FALLTHROUGH */
	case POLICY_ALLOW:
	case POLICY_MUTATE:
		ck_assert_msg(o->verdict == b->verdict, "%s: allocation %ld "
		    "failing%s turns %s into %s (rule %s)", s->name, n, how,
		    policy_verdict_name(b->verdict),
		    policy_verdict_name(o->verdict), o->rule);
		ck_assert_msg(str_eq(o->body, b->body), "%s: allocation %ld "
		    "failing%s: %s with body\n  %s\ninstead of\n  %s", s->name,
		    n, how, policy_verdict_name(o->verdict),
		    o->body ? o->body : "(none)", b->body ? b->body : "(none)");
		ck_assert_msg(str_eq(o->target, b->target), "%s: allocation "
		    "%ld failing%s: target %s instead of %s", s->name, n, how,
		    o->target ? o->target : "(none)",
		    b->target ? b->target : "(none)");
		ck_assert_msg(o->nmut == b->nmut && str_eq(o->muts, b->muts),
		    "%s: allocation %ld failing%s: mutations\n%s instead of\n"
		    "%s", s->name, n, how, o->muts, b->muts);
		ck_assert_msg(strcmp(o->lookup, b->lookup) == 0, "%s: "
		    "allocation %ld failing%s: lookup %s instead of %s",
		    s->name, n, how, o->lookup, b->lookup);
		ck_assert_msg(o->not_owned == b->not_owned, "%s: allocation "
		    "%ld failing%s: not_owned %d", s->name, n, how,
		    o->not_owned);
		t->same++;
		return;
	case POLICY_DENY:
		ck_assert_msg(o->body == NULL && o->target == NULL &&
		    o->nmut == 0, "%s: deny with a body", s->name);
		if (o->status >= 500) {
			t->deny500++;
			return;
		}
		ck_assert_msg(b->verdict == POLICY_DENY &&
		    o->status == b->status && strcmp(o->rule, b->rule) == 0,
		    "%s: allocation %ld failing%s: deny %d rule %s (baseline "
		    "%s %d %s)", s->name, n, how, o->status, o->rule,
		    policy_verdict_name(b->verdict), b->status, b->rule);
		t->same++;
		return;
	case POLICY_MALFORMED:
		ck_assert_msg(o->body == NULL && o->target == NULL &&
		    o->nmut == 0, "%s: malformed with a body", s->name);
		ck_assert_msg(b->verdict == POLICY_MALFORMED, "%s: "
		    "allocation %ld failing%s: malformed %d (%s) instead of "
		    "%s", s->name, n, how, o->status, o->rule,
		    policy_verdict_name(b->verdict));
		t->same++;
		return;
	}
	ck_abort_msg("%s: verdict %d", s->name, (int)o->verdict);
}

START_TEST(test_scenario)
{
	const struct scenario	*s = &scenarios[_i];
	struct outcome		 b, o;
	struct tally		 t;
	long			 n, calls;
	int			 sticky;

	ck_assert(run_scenario(s, &b) == 0);
	ck_assert_msg(b.rv == 0, "%s: baseline rv %d", s->name, b.rv);
	if (s->expect != NULL)
		ck_assert_msg(strcmp(policy_verdict_name(b.verdict),
		    s->expect) == 0, "%s: baseline %s (rule %s), expected %s",
		    s->name, policy_verdict_name(b.verdict), b.rule,
		    s->expect);
	for (sticky = 0; sticky <= 1; sticky++) {
		memset(&t, 0, sizeof(t));
		for (n = 1; n < CHAOS_MAX_N; n++) {
			chaos_arm(n, sticky);
			run_scenario(s, &o);
			chaos_disarm();
			calls = chaos_count;
			if (chaos_failed == 0) {
				/* fewer than n allocations: nothing failed */
				ck_assert_msg(o.rv == b.rv &&
				    o.verdict == b.verdict &&
				    str_eq(o.body, b.body), "%s: not "
				    "deterministic", s->name);
				outcome_free(&o);
				break;
			}
			judge(s, &b, &o, n, sticky, &t);
			outcome_free(&o);
			chaos_leak_check(s->name, n, sticky);
		}
		printf("check_chaos: %-36s %s: %4ld allocations; %ld same, "
		    "%ld error, %ld deny 5xx, %ld lookup\n", s->name,
		    sticky ? "from N on" : "only N   ", calls, t.same, t.err,
		    t.deny500, t.lookup);
	}
	outcome_free(&b);
}
END_TEST

/* The loader: NULL with a message, or the same policy. */
START_TEST(test_load)
{
	struct policy_error	 err;
	struct policy		*p;
	char			*base, *sum;
	long			 n, nul = 0, ok = 0;
	int			 sticky;

	base = policy_summary(pol);
	ck_assert(base != NULL);
	for (sticky = 0; sticky <= 1; sticky++)
		for (n = 1; n < CHAOS_MAX_N; n++) {
			chaos_arm(n, sticky);
			p = policy_load_buffer(chaos_policy,
			    sizeof(chaos_policy) - 1, "chaos", &err);
			sum = p != NULL ? policy_summary(p) : NULL;
			chaos_disarm();
			if (p == NULL) {
				ck_assert_msg(err.text[0] != '\0', "load: "
				    "allocation %ld: NULL without a message",
				    n);
				nul++;
			} else {
				/* a summary can fail for want of memory */
				if (sum != NULL)
					ck_assert_msg(strcmp(sum, base) == 0,
					    "load: allocation %ld failing%s: "
					    "a different policy:\n%s", n,
					    sticky ? " and all after" : "", sum);
				ok++;
			}
			free(sum);
			if (p != NULL)
				policy_unref(p);
			chaos_leak_check("load", n, sticky);
			if (chaos_failed == 0)
				break;
		}
	printf("check_chaos: %-36s %ld refused, %ld loaded\n", "policy load",
	    nul, ok);
	free(base);
}
END_TEST

/* Request parsing and the forwarded target. */
START_TEST(test_reqparse)
{
	static const char	 t[] = "http://docker/v1.41/containers/x%2Fy/"
	    "json?a=1&b=%C3%A9+x&filters=%7B%7D&c";
	struct policy_req	 req, base;
	const char		*why;
	char			*bt, *tt;
	long			 n;
	size_t			 i;

	ck_assert(policy_req_parse(&base, "GET", t, strlen(t), &why) == 0);
	bt = policy_req_target(&base);
	ck_assert(bt != NULL);
	for (n = 1; n < CHAOS_MAX_N; n++) {
		chaos_arm(n, 0);
		if (policy_req_parse(&req, "GET", t, strlen(t), &why) == 0) {
			tt = policy_req_target(&req);
			chaos_disarm();
			ck_assert_str_eq(req.path, base.path);
			ck_assert_uint_eq(req.nparams, base.nparams);
			for (i = 0; i < req.nparams; i++) {
				ck_assert_str_eq(req.params[i].name,
				    base.params[i].name);
				ck_assert_str_eq(req.params[i].value,
				    base.params[i].value);
			}
			if (tt != NULL)
				ck_assert_str_eq(tt, bt);
			free(tt);
			policy_req_clear(&req);
		} else {
			chaos_disarm();
			ck_assert(why != NULL);
		}
		chaos_leak_check("request parse", n, 0);
		if (chaos_failed == 0)
			break;
	}
	free(bt);
	policy_req_clear(&base);
}
END_TEST

int
main(void)
{
	struct policy_error	 err;
	Suite			*s;
	TCase			*tc;
	SRunner			*sr;
	int			 nf;

	if (getenv("CHAOS_TRACE") != NULL)
		chaos_trace = strtol(getenv("CHAOS_TRACE"), NULL, 10);
	/* Before any JSON value exists. */
	json_set_alloc_funcs(chaos_json_malloc, chaos_json_free);
	pol = policy_load_buffer(chaos_policy, sizeof(chaos_policy) - 1,
	    "chaos", &err);
	if (pol == NULL) {
		fprintf(stderr, "check_chaos: %s\n", err.text);
		return EXIT_FAILURE;
	}
	s = suite_create("chaos");
	tc = tcase_create("allocation failure");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_reqparse);
	tcase_add_loop_test(tc, test_scenario, 0, NSCENARIOS);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/*
	 * Each test in its own process (Check's default, CK_FORK=no to
	 * debug): a leak found in one is not found again in the next.
	 */
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	policy_unref(pol);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
