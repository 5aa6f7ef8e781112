/*
 * fuzz_eval: arbitrary bodies (and queries) for every inspected endpoint
 * against a fixed policy.
 *
 * Input: byte 0 picks the endpoint, byte 1 the profile (low 3 bits) and
 * the engine's answers to lookups (high bits: does the container / image /
 * volume / real path exist); the rest is the JSON body, or the query for
 * the endpoints decided on their query, or a Dockerfile.
 *
 * Invariants (abort() on violation):
 *  E1 policy_eval() returns 0 and a known verdict; DENY/MALFORMED carry a
 *     4xx/5xx status and no body, target or mutations;
 *  E2 idempotence: when the verdict is ALLOW or MUTATE, the request as it
 *     is forwarded (result.body or the body as sent; result.target or the
 *     target as sent) evaluated again is ALLOW or MUTATE, and what it
 *     would forward is byte for byte the same body and target;
 *  E3 a forwarded body is valid JSON;
 *  E4 a MUTATE names at least one mutation.
 */
#include "config.h"

#include <stdint.h>

#include <jansson.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char policy_text[] =
"{\n"
" \"version\": 1,\n"
" \"default_profile\": \"baseline\",\n"
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
"   \"ownership\": true\n"
"  },\n"
"  \"ci\": {\n"
"   \"extends\": \"baseline\",\n"
"   \"build\": true,\n"
"   \"image_import\": true,\n"
"   \"host_paths\": [\"/srv/ci\", \"/tmp\"],\n"
"   \"sysctls\": [\"net.ipv4.ip_forward\"],\n"
"   \"runtimes\": [\"runc\", \"runsc\"],\n"
"   \"network_drivers\": [\"bridge\", \"overlay\"],\n"
"   \"published_ports\": \"any\",\n"
"   \"cpus\": { \"default\": 2, \"max\": 4 }\n"
"  },\n"
"  \"shared\": {\n"
"   \"extends\": \"baseline\",\n"
"   \"ownership\": true,\n"
"   \"read_others\": true,\n"
"   \"redact\": [\"env\", \"mounts\"],\n"
"   \"host_paths\": [\"/srv\"],\n"
"   \"devices\": true,\n"
"   \"capabilities\": [\"NET_ADMIN\"]\n"
"  },\n"
"  \"power\": {\n"
"   \"privileged\": true, \"host_namespaces\": true, \"devices\": true,\n"
"   \"unconfined\": true, \"cgroup_parent\": true, \"build\": true,\n"
"   \"no_new_privileges\": false,\n"
"   \"host_paths\": [\"/\"],\n"
"   \"trusted_registries\": [\"docker.io\"]\n"
"  }\n"
" }\n"
"}\n";

static const char *const profiles[] = {
	"baseline", "strict", "ci", "shared", "power", NULL, "strict", "ci",
};

enum kind { K_BODY, K_QUERY, K_DOCKERFILE };

static const struct {
	const char	*method;
	const char	*target;	/* K_QUERY: the query is appended */
	enum kind	 kind;
} endpoints[] = {
	{ "POST", "/v1.41/containers/create", K_BODY },
	{ "POST", "/containers/create?name=web", K_BODY },
	{ "POST", "/v1.41/containers/abc/update", K_BODY },
	{ "POST", "/v1.41/containers/abc/exec", K_BODY },
	{ "POST", "/v1.41/containers/abc/start", K_BODY },
	{ "POST", "/v1.41/exec/e1/start", K_BODY },
	{ "POST", "/v1.41/volumes/create", K_BODY },
	{ "POST", "/v1.41/networks/create", K_BODY },
	{ "POST", "/v1.41/commit?container=abc&repo=local/x", K_BODY },
	{ "POST", "/v1.41/images/create?", K_QUERY },
	{ "POST", "/v1.41/commit?", K_QUERY },
	{ "POST", "/v1.41/images/busybox/tag?", K_QUERY },
	{ "POST", "/v1.41/build?", K_QUERY },
	{ "GET", "/v1.41/containers/json?", K_QUERY },
	{ "POST", "/v1.41/containers/prune?", K_QUERY },
	{ "POST", "/v1.41/build?t=local/x", K_DOCKERFILE },
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

static struct policy	*pol;

/* The engine, as this input's world has it. */
static void
oracle(const char *path, unsigned world, int *status, char **body)
{
	*status = 404;
	*body = NULL;
	if (strncmp(path, "realpath:", 9) == 0) {
		if (world & 1) {
			json_t *j = json_string(path + 9);

			*status = 200;
			*body = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
			json_decref(j);
		}
	} else if (strncmp(path, "/containers/", 12) == 0) {
		if (world & 2) {
			*status = 200;
			*body = strdup(world & 16 ?
			    "{\"Id\":\"abc\",\"Config\":{\"Labels\":"
			    "{\"dockgate.owner\":\"uid:1000\"}},"
			    "\"HostConfig\":{\"Privileged\":false},"
			    "\"Mounts\":[{\"Type\":\"bind\",\"Source\":"
			    "\"/srv/ci/a\",\"Destination\":\"/a\"}]}" :
			    "{\"Id\":\"abc\",\"Config\":{\"Labels\":"
			    "{\"dockgate.owner\":\"uid:2\"}},"
			    "\"Mounts\":[{\"Type\":\"volume\",\"Name\":\"v\","
			    "\"Driver\":\"local\"}]}");
		}
	} else if (strncmp(path, "/images/", 8) == 0) {
		if (world & 4) {
			*status = 200;
			*body = strdup(world & 16 ?
			    "{\"RepoTags\":[\"busybox:latest\"],"
			    "\"RepoDigests\":[]}" :
			    "{\"RepoTags\":[\"evil.example/x:1\"]}");
		}
	} else if (strncmp(path, "/volumes/", 9) == 0) {
		if (world & 8) {
			*status = 200;
			*body = strdup(world & 16 ?
			    "{\"Driver\":\"local\",\"Labels\":"
			    "{\"dockgate.owner\":\"uid:1000\"}}" :
			    "{\"Driver\":\"nfs\",\"Labels\":{}}");
		}
	} else if (strncmp(path, "/exec/", 6) == 0) {
		*status = 200;
		*body = strdup("{\"ContainerID\":\"abc\"}");
	} else if (strncmp(path, "/networks/", 10) == 0) {
		*status = 200;
		*body = strdup("{\"Labels\":{\"dockgate.owner\":\"uid:1000\"}}");
	}
	if (*status == 200 && *body == NULL)
		*status = 500;
}

struct factset {
	struct policy_facts	 f;
	char			*path[POLICY_MAX_FACTS];
	char			*body[POLICY_MAX_FACTS];
};

static void
factset_free(struct factset *fs)
{
	size_t	i;

	for (i = 0; i < POLICY_MAX_FACTS; i++) {
		free(fs->path[i]);
		free(fs->body[i]);
	}
	memset(fs, 0, sizeof(*fs));
}

/* Decide like decide_request(): answer lookups until a verdict. */
static void
decide(const struct policy_profile *pp, const struct policy_req *req,
    const char *dockerfile, size_t dflen, unsigned world,
    struct factset *fs, struct policy_result *res)
{
	size_t	i;
	int	rv;

	memset(fs, 0, sizeof(*fs));
	for (;;) {
		if (dockerfile != NULL)
			rv = policy_eval_dockerfile(pol, pp, req, dockerfile,
			    dflen, &fs->f, res);
		else
			rv = policy_eval(pol, pp, req, &fs->f, res);
		FCHECK(rv == 0, "policy_eval returned %d (%s: %s)", rv,
		    res->rule, res->reason);
		if (res->verdict != POLICY_LOOKUP)
			break;
		FCHECK(res->lookup[0] != '\0', "empty lookup");
		for (i = 0; i < fs->f.n; i++)
			FCHECK(strcmp(fs->f.fact[i].path, res->lookup) != 0,
			    "lookup %s asked again after its answer",
			    res->lookup);
		if (fs->f.n >= POLICY_MAX_FACTS) {
			/* the daemon refuses: 403 lookup-limit */
			policy_result_clear(res);
			res->verdict = POLICY_DENY;
			res->status = 403;
			break;
		}
		i = fs->f.n;
		fs->path[i] = strdup(res->lookup);
		FCHECK(fs->path[i] != NULL, "oom");
		oracle(res->lookup, world, &fs->f.fact[i].status, &fs->body[i]);
		fs->f.fact[i].path = fs->path[i];
		fs->f.fact[i].body = fs->body[i] ? fs->body[i] : "";
		fs->f.fact[i].body_len = fs->body[i] ? strlen(fs->body[i]) : 0;
		fs->f.n++;
		policy_result_clear(res);
	}
	switch (res->verdict) {
	case POLICY_ALLOW:
	case POLICY_MUTATE:
		if (res->body != NULL) {
			json_t *j = json_loadb(res->body, res->body_len,
			    JSON_DECODE_ANY, NULL);

			FCHECK(j != NULL, "forwarded body is not JSON: %s",
			    res->body);
			FCHECK(strlen(res->body) == res->body_len,
			    "body_len");
			json_decref(j);
		}
		if (res->verdict == POLICY_MUTATE)
			FCHECK(res->nmutations > 0, "MUTATE without a "
			    "mutation (rule %s)", res->rule);
		break;
	case POLICY_DENY:
	case POLICY_MALFORMED:
		FCHECK(res->status >= 400 && res->status < 600,
		    "status %d", res->status);
		FCHECK(res->body == NULL && res->target == NULL &&
		    res->nmutations == 0, "refusal carries a body/target/"
		    "mutations (rule %s)", res->rule);
		break;
	default:
		FCHECK(0, "verdict %d", (int)res->verdict);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_req	 req, req2;
	struct policy_result	 res, res2;
	struct factset		 fs, fs2;
	const struct policy_profile *pp;
	const char		*why, *pname;
	char			*target = NULL, *body1 = NULL, *target1 = NULL;
	const char		*fwd_body;
	size_t			 e, tlen, fwd_len;
	unsigned		 world;

	if (pol == NULL) {
		struct policy_error err;

		pol = policy_load_buffer(policy_text, sizeof(policy_text) - 1,
		    "fuzz", &err);
		if (pol == NULL) {
			fprintf(stderr, "fuzz_eval: policy: %s\n", err.text);
			abort();
		}
	}
	if (size < 2 || size > 65536)
		return 0;
	e = data[0] % NENDPOINTS;
	pname = profiles[data[1] & 7];
	world = data[1] >> 3;
	pp = pname ? policy_profile_find(pol, pname) : NULL;
	data += 2;
	size -= 2;

	tlen = strlen(endpoints[e].target);
	if (endpoints[e].kind == K_QUERY) {
		if ((target = malloc(tlen + size + 1)) == NULL)
			return 0;
		memcpy(target, endpoints[e].target, tlen);
		memcpy(target + tlen, data, size);
		tlen += size;
		target[tlen] = '\0';
	} else if ((target = strdup(endpoints[e].target)) == NULL)
		return 0;
	if (policy_req_parse(&req, endpoints[e].method, target, tlen,
	    &why) == -1) {
		free(target);
		return 0;
	}
	req.owner = "uid:1000";
	if (endpoints[e].kind == K_BODY && size > 0) {
		req.body = data;
		req.body_len = size;
		req.has_body = 1;
		req.content_type = "application/json";
	}
	if (endpoints[e].kind == K_DOCKERFILE) {
		decide(pp, &req, (const char *)data, size, world, &fs, &res);
		policy_result_clear(&res);
		factset_free(&fs);
		policy_req_clear(&req);
		free(target);
		return 0;
	}
	decide(pp, &req, NULL, 0, world, &fs, &res);
	if (res.verdict == POLICY_ALLOW || res.verdict == POLICY_MUTATE) {
		/* E2: what is forwarded is decided the same way again. */
		if (res.body != NULL) {
			fwd_body = res.body;
			fwd_len = res.body_len;
		} else {
			fwd_body = (const char *)req.body;
			fwd_len = req.body_len;
		}
		if (fwd_len > 0 && (body1 = malloc(fwd_len)) != NULL)
			memcpy(body1, fwd_body, fwd_len);
		/* as upstream_start(): result.target, else the re-encoded one */
		if (res.target != NULL)
			target1 = strdup(res.target);
		else
			target1 = policy_req_target(&req);
		if (target1 == NULL || (fwd_len > 0 && body1 == NULL))
			goto out;
		FCHECK(policy_req_parse(&req2, req.method, target1,
		    strlen(target1), &why) == 0, "forwarded target \"%s\" "
		    "does not parse: %s", target1, why);
		req2.owner = req.owner;
		req2.content_type = req.content_type;
		req2.has_body = fwd_len > 0;
		req2.body = (const unsigned char *)body1;
		req2.body_len = fwd_len;
		decide(pp, &req2, NULL, 0, world, &fs2, &res2);
		FCHECK(res2.verdict == POLICY_ALLOW ||
		    res2.verdict == POLICY_MUTATE, "forwarded request "
		    "re-evaluated to %s %d (rule %s: %s); first %s (rule %s); "
		    "target %s body %.*s",
		    policy_verdict_name(res2.verdict), res2.status, res2.rule,
		    res2.reason, policy_verdict_name(res.verdict), res.rule,
		    target1, (int)fwd_len, body1 ? body1 : "");
		if (res2.body != NULL && !fuzz_lenient("eval-body"))
			FCHECK(res2.body_len == fwd_len &&
			    memcmp(res2.body, body1, fwd_len) == 0,
			    "not idempotent: forwarded body %.*s re-evaluates"
			    " to %s (rule %s, %zu mutations%s%s)",
			    (int)fwd_len, body1 ? body1 : "", res2.body,
			    res2.rule, res2.nmutations,
			    res2.nmutations ? ": " : "",
			    res2.nmutations ? res2.mutations[0] : "");
		if (res2.target != NULL && !fuzz_lenient("eval-target"))
			FCHECK(strcmp(res2.target, target1) == 0, "target "
			    "%s re-evaluates to %s", target1, res2.target);
		FCHECK(res2.not_owned == res.not_owned, "not_owned");
		policy_result_clear(&res2);
		factset_free(&fs2);
		policy_req_clear(&req2);
	}
 out:
	free(body1);
	free(target1);
	policy_result_clear(&res);
	factset_free(&fs);
	policy_req_clear(&req);
	free(target);
	return 0;
}
