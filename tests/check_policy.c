/*
 * Unit suites for the policy library: strict loader, identities,
 * inheritance, image references, host paths, endpoint patterns, key
 * folding, sizes, body modes, shipped policy files.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"
#include "body_parse.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

/* Load a policy text; NULL on error (err filled). */
static struct policy *
load(const char *text, struct policy_error *err)
{
	return (policy_load_buffer(text, strlen(text), "test.json", err));
}

/* Bad policies and a fragment each message must hold. */
static const struct {
	const char	*text;
	const char	*frag;
	int		 line, column;
	const char	*path;
} bad_policies[] = {
	{ "", "test.json:1:0:", 1, 0, "" },
	{ "{", "test.json:1:1:", 1, 1, "" },
	{ "{\"version\":1,}", "test.json:1:", 1, 0, NULL },
	{ "{\"version\":1,\n \"version\":1}", "test.json:2:10: version:"
	    " duplicate", 2, 10, "version" },
	{ "{\"version\":1,\"profiles\":{\n\"a\":{},\n\"a\":{}}}",
	    "test.json:3:3: profiles.a: duplicate", 3, 3, "profiles.a" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"build\":true,\n"
	    "  \"build\":false}}}", "test.json:2:9: profiles.a.build:", 2, 9,
	    "profiles.a.build" },
	{ "{\"version\":1,\"identities\":[{\"match\":{\"uid\":1,\"uid\":2},"
	    "\"profile\":\"p\"}]}", "identities[0].match.uid: duplicate", 1,
	    0, "identities[0].match.uid" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"max\":\"1g\""
	    " \"default\":1}}}}", "profiles.a.memory.max: '}' expected", 1, 0,
	    "profiles.a.memory.max" },
	{ "[]", "must be a JSON object", 0, 0, "" },
	{ "{}", "version: missing", 0, 0, "version" },
	{ "{\"version\":2}", "version: must be 1", 0, 0, "version" },
	{ "{\"version\":\"1\"}", "version: must be 1", 0, 0, "version" },
	{ "{\"version\":1,\"extra\":1}", "extra: unknown key", 0, 0, "extra" },
	{ "{\"version\":1,\"profiles\":[]}", "profiles: must be an object", 0,
	    0, "profiles" },
	{ "{\"version\":1,\"profiles\":{\"a\":[]}}", "profiles.a: must be an"
	    " object", 0, 0, "profiles.a" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"privilegd\":true}}}",
	    "profiles.a.privilegd: unknown key", 0, 0, "profiles.a.privilegd" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"privileged\":1}}}",
	    "profiles.a.privileged: must be true or false", 0, 0,
	    "profiles.a.privileged" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"privileged\":\"true\"}}}",
	    "must be true or false, not a string", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"trusted_registries\":"
	    "\"docker.io\"}}}", "profiles.a.trusted_registries: must be an"
	    " array", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"trusted_registries\":[1]}}}",
	    "profiles.a.trusted_registries[0]: must be a string", 0, 0,
	    "profiles.a.trusted_registries[0]" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"trusted_registries\":"
	    "[\"Bad Name\"]}}}", "trusted_registries[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"host_paths\":[\"srv\"]}}}",
	    "profiles.a.host_paths[0]: \"srv\": not a clean absolute path", 0,
	    0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"host_paths\":[\"/srv/../"
	    "etc\"]}}}", "host_paths[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"capabilities\":[\"SYS"
	    " ADMIN\"]}}}", "capabilities[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"redact\":[\"secrets\"]}}}",
	    "profiles.a.redact[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"max\":\"8x\"}}}}",
	    "profiles.a.memory.max: bad size \"8x\"", 0, 0,
	    "profiles.a.memory.max" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"max\":\"\"}}}}",
	    "bad size", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"max\":-1}}}}",
	    "profiles.a.memory.max", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"limit\":1}}}}",
	    "profiles.a.memory.limit: unknown key", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":\"1g\"}}}",
	    "profiles.a.memory: must be an object", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"memory\":{\"default\":\"4g\","
	    "\"max\":\"2g\"}}}}", "default 4g is above max 2g", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"pids\":{\"max\":1.5}}}}",
	    "profiles.a.pids.max: must be a positive integer", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"pids\":{\"default\":0}}}}",
	    "profiles.a.pids.default", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"cpus\":{\"max\":0}}}}",
	    "profiles.a.cpus.max: must be a positive number", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"cpus\":{\"max\":true}}}}",
	    "profiles.a.cpus.max", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"published_ports\":"
	    "\"public\"}}}", "profiles.a.published_ports: must be \"any\"", 0,
	    0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"rate\":{\"burst\":0}}}}",
	    "profiles.a.rate.burst", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"rate\":{\"rps\":1}}}}",
	    "profiles.a.rate.rps: unknown key", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"endpoints\":{\"allow\":"
	    "[\"get /x\"]}}}}", "profiles.a.endpoints.allow[0]", 0, 0,
	    "profiles.a.endpoints.allow[0]" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"endpoints\":{\"allow\":"
	    "[\"GET x\"]}}}}", "endpoints.allow[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"endpoints\":{\"deny\":"
	    "[\"GET /a*\"]}}}}", "endpoints.deny[0]", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"endpoints\":{\"allow\":"
	    "[\"GET /a//b\"]}}}}", "empty path segment", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"endpoints\":{\"permit\":"
	    "[]}}}}", "profiles.a.endpoints.permit: unknown key", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":\"b\"}}}",
	    "profiles.a.extends: unknown profile \"b\"", 0, 0,
	    "profiles.a.extends" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":1}}}",
	    "profiles.a.extends: must be a profile name", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":\"a\"}}}",
	    "extends cycle", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":\"b\"},\"b\":"
	    "{\"extends\":\"c\"},\"c\":{\"extends\":\"a\"}}}", "extends cycle",
	    0, 0, NULL },
	{ "{\"version\":1,\"default_profile\":\"x\"}", "default_profile:"
	    " unknown profile \"x\"", 0, 0, "default_profile" },
	{ "{\"version\":1,\"default_profile\":1,\"profiles\":{}}",
	    "default_profile: must be a profile name", 0, 0, NULL },
	{ "{\"version\":1,\"identities\":{}}", "identities: must be an array",
	    0, 0, "identities" },
	{ "{\"version\":1,\"identities\":[{\"match\":{\"uid\":1000},"
	    "\"profile\":\"x\"}]}", "identities[0].profile: unknown profile", 0,
	    0, "identities[0].profile" },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{\"user\":1},\"profile\":\"p\"}]}", "identities[0].match.user:"
	    " unknown key", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{\"uid\":\"1000\"},\"profile\":\"p\"}]}",
	    "identities[0].match.uid: must be a numeric id", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{\"uid\":-1},\"profile\":\"p\"}]}", "identities[0].match.uid", 0,
	    0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{\"cert_cn\":\"\"},\"profile\":\"p\"}]}",
	    "identities[0].match.cert_cn", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"profile\":"
	    "\"p\"}]}", "identities[0].match: missing", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{}}]}", "identities[0].profile: missing", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"p\":{}},\"identities\":[{\"match\":"
	    "{},\"profile\":\"p\",\"comment\":\"x\"}]}",
	    "identities[0].comment: unknown key", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"\":{}}}", "profile names", 0, 0,
	    NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":"
	    "\"preset:nginx\"}}}", "profiles.a.extends: unknown preset"
	    " \"nginx\" (presets: traefik, watchtower", 0, 0,
	    "profiles.a.extends" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":"
	    "\"preset:\"}}}", "unknown preset \"\"", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"extends\":"
	    "\"Preset:traefik\"}}}", "unknown profile \"Preset:traefik\"", 0,
	    0, NULL },
	{ "{\"version\":1,\"profiles\":{\"preset:traefik\":{}}}",
	    "profiles.preset:traefik: names starting with \"preset:\" are"
	    " reserved", 0, 0, "profiles.preset:traefik" },
	{ "{\"version\":1,\"default_profile\":\"preset:none\"}",
	    "default_profile: unknown preset \"none\"", 0, 0,
	    "default_profile" },
	{ "{\"version\":1,\"identities\":[{\"match\":{\"uid\":1},"
	    "\"profile\":\"preset:x\"}]}", "identities[0].profile: unknown"
	    " preset \"x\"", 0, 0, "identities[0].profile" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"read_others\":true,"
	    "\"read_exfiltration\":true}}}", "profiles.a.read_exfiltration: is"
	    " another name for \"read_others\"", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"owner_sees\":[\"b\"]}}}",
	    "profiles.a.owner_sees: unknown profile \"b\"", 0, 0,
	    "profiles.a.owner_sees" },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"owner_sees\":\"a\"}}}",
	    "profiles.a.owner_sees: must be an array", 0, 0, NULL },
	{ "{\"version\":1,\"profiles\":{\"a\":{\"read_exfiltration\":1}}}",
	    "profiles.a.read_exfiltration: must be true or false", 0, 0, NULL },
};

/* Every bad policy fails with its message, path and position. */
START_TEST(test_loader_errors)
{
	struct policy_error	 err;
	struct policy		*pol;

	pol = load(bad_policies[_i].text, &err);
	ck_assert_msg(pol == NULL, "loaded: %s", bad_policies[_i].text);
	ck_assert_msg(strstr(err.text, bad_policies[_i].frag) != NULL,
	    "message \"%s\" lacks \"%s\"", err.text, bad_policies[_i].frag);
	if (bad_policies[_i].line != 0)
		ck_assert_int_eq(err.line, bad_policies[_i].line);
	if (bad_policies[_i].column != 0)
		ck_assert_int_eq(err.column, bad_policies[_i].column);
	if (bad_policies[_i].path != NULL)
		ck_assert_str_eq(err.path, bad_policies[_i].path);
}
END_TEST

/* Good policies load; sizes and inheritance come out right. */
START_TEST(test_loader_good)
{
	struct policy_error		 err;
	struct policy			*pol;
	const struct policy_profile	*p;
	struct policy_rate		 rate;
	const char *text =
	    "{\"version\":1,\"default_profile\":\"baseline\",\n"
	    " \"profiles\":{\n"
	    "  \"baseline\":{\"trusted_registries\":[\"docker.io/library\","
	    "\"registry.example.com:5000\"]},\n"
	    "  \"ci\":{\"extends\":\"baseline\",\"build\":true,"
	    "\"local_images\":[\"ci/\"],\"host_paths\":[\"/srv/ci-cache/\"],"
	    "\"memory\":{\"max\":\"16g\"},\"capabilities\":[\"cap_net_admin\"],"
	    "\"cpus\":{\"max\":1.5},\"rate\":{\"requests_per_second\":5,"
	    "\"burst\":10}},\n"
	    "  \"ci2\":{\"extends\":\"ci\",\"memory\":{\"default\":\"512mb\"},"
	    "\"pids\":{\"max\":100},\"published_ports\":\"none\"}}}";

	pol = load(text, &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	p = policy_profile_find(pol, "ci");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(policy_profile_name(p), "ci");
	ck_assert_int_eq(p->build, 1);
	ck_assert_int_eq(p->no_new_privileges, 1);
	ck_assert_uint_eq(p->trusted_registries.n, 2);
	ck_assert_str_eq(p->trusted_registries.v[0], "docker.io/library");
	ck_assert_str_eq(p->local_images.v[0], "docker.io/ci");
	ck_assert_str_eq(p->host_paths.v[0], "/srv/ci-cache");
	ck_assert_str_eq(p->capabilities.v[0], "NET_ADMIN");
	ck_assert(p->mem_default == (1LL << 30));
	ck_assert(p->mem_max == (16LL << 30));
	ck_assert(p->cpus_max == 1500000000LL);
	ck_assert(p->cpus_default == 1500000000LL);
	ck_assert(p->pids_default == 1024 && p->pids_max == 8192);
	ck_assert(p->rate_rps == 5 && p->rate_burst == 10);
	ck_assert_int_eq(policy_profile_flag(p, "build"), 1);
	ck_assert_int_eq(policy_profile_flag(p, "privileged"), 0);
	ck_assert_int_eq(policy_profile_flag(p, "nonsense"), -1);
	ck_assert_int_eq(policy_profile_flag(p, "trusted_registries"), -1);
	ck_assert_int_eq(policy_profile_rate(p, &rate), 1);
	ck_assert(rate.requests_per_second == 5 && rate.burst == 10 &&
	    rate.concurrent == 0);
	ck_assert_int_eq(policy_profile_redacts(p, "env"), 0);
	p = policy_profile_find(pol, "ci2");
	ck_assert(p->mem_default == (512LL << 20));
	ck_assert(p->mem_max == (16LL << 30));
	ck_assert(p->pids_default == 100 && p->pids_max == 100);
	ck_assert_int_eq(p->ports, PORTS_NONE);
	ck_assert_int_eq(p->build, 1);
	ck_assert_uint_eq(p->sysctls.n, 10);
	ck_assert_str_eq(p->runtimes.v[0], "runc");
	ck_assert_str_eq(p->network_drivers.v[0], "bridge");
	p = policy_profile_find(pol, "baseline");
	ck_assert_int_eq(p->build, 0);
	ck_assert_int_eq(policy_profile_rate(p, &rate), 0);
	ck_assert(p->mem_max == (8LL << 30));
	ck_assert_ptr_null(policy_profile_find(pol, "nope"));
	ck_assert_ptr_eq(policy_ref(pol), pol);
	policy_unref(pol);
	policy_unref(pol);
}
END_TEST

/* Presets: extends, identities and default_profile name them. */
START_TEST(test_presets)
{
	struct policy_error		 err;
	struct policy			*pol;
	const struct policy_profile	*p;
	struct policy_identity		 id;
	const char			*n;
	char				*s;
	size_t				 i, k;
	const char *text =
	    "{\"version\":1,\"default_profile\":\"preset:read-only\",\n"
	    " \"identities\":[{\"match\":{\"uid\":7},\"profile\":"
	    "\"preset:cis-baseline\"}],\n"
	    " \"profiles\":{\n"
	    "  \"proxy\":{\"extends\":\"preset:traefik\"},\n"
	    "  \"ui\":{\"extends\":\"preset:portainer\"},\n"
	    "  \"wt\":{\"extends\":\"mid\",\"read_exfiltration\":true},\n"
	    "  \"mid\":{\"extends\":\"preset:watchtower\",\n"
	    "    \"trusted_registries\":[\"127.0.0.1:5000\"]},\n"
	    "  \"cis\":{\"extends\":\"preset:cis-baseline\","
	    "\"memory\":{\"max\":\"8g\"}},\n"
	    "  \"ci\":{\"extends\":\"preset:ci-runner\"}}}";

	pol = load(text, &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	p = policy_profile_find(pol, "proxy");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->ep_allow_set, 1);
	ck_assert(strlist_has(&p->ep_allow, "GET /containers/*/json"));
	ck_assert(!strlist_has(&p->ep_allow, "POST /containers/create"));
	ck_assert_int_eq(policy_profile_redacts(p, "env"), 1);
	ck_assert_int_eq(policy_profile_redacts(p, "network"), 0);
	/* portainer: the whole default list, then its extras. */
	p = policy_profile_find(pol, "ui");
	for (i = 0; endpoint_defaults[i] != NULL; i++)
		ck_assert_str_eq(p->ep_allow.v[i], endpoint_defaults[i]);
	ck_assert(strlist_has(&p->ep_allow, "GET /services"));
	ck_assert_int_eq(p->build, 1);
	ck_assert_int_eq(p->swarm, 0);
	/* A chain through a user profile into a preset. */
	p = policy_profile_find(pol, "wt");
	ck_assert_int_eq(p->read_others, 1);
	ck_assert_str_eq(p->trusted_registries.v[0], "127.0.0.1:5000");
	ck_assert(strlist_has(&p->ep_allow, "POST /images/create"));
	ck_assert(!strlist_has(&p->ep_allow, "POST /build"));
	/* memory merges per sub-key over the preset's. */
	p = policy_profile_find(pol, "cis");
	ck_assert(p->mem_default == (512LL << 20) && p->mem_max == (8LL << 30));
	ck_assert(p->drop_all_capabilities && p->run_as_non_root &&
	    p->read_only_rootfs && p->no_new_privileges);
	ck_assert(p->cpus_default == 1000000000LL);
	p = policy_profile_find(pol, "ci");
	ck_assert(p->ownership && p->build && p->ports == PORTS_NONE);
	ck_assert(strlist_has(&p->ep_deny, "GET /containers/*/export"));
	/* Presets named directly are profiles too. */
	memset(&id, 0, sizeof(id));
	id.listener = "unix:/x";
	id.has_cred = 1;
	id.uid = 7;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)),
	    "preset:cis-baseline");
	id.uid = 8;
	p = policy_resolve(pol, &id);
	ck_assert_str_eq(policy_profile_name(p), "preset:read-only");
	ck_assert(!strlist_has(&p->ep_allow, "GET /containers/*/logs"));
	ck_assert(!strlist_has(&p->ep_allow, "GET /containers/*/attach/ws"));
	ck_assert(!strlist_has(&p->ep_allow, "GET /images/get"));
	ck_assert_ptr_null(policy_profile_find(pol, "preset:nothing"));
	policy_unref(pol);

	/* Every preset loads alone and prints. */
	for (k = 0; (n = policy_preset_name(k)) != NULL; k++) {
		char	buf[256];

		snprintf(buf, sizeof(buf), "{\"version\":1,\"profiles\":{\"x\":"
		    "{\"extends\":\"preset:%s\"}}}", n);
		pol = load(buf, &err);
		ck_assert_msg(pol != NULL, "%s: %s", n, err.text);
		policy_unref(pol);
		s = policy_preset_text(n);
		ck_assert_ptr_nonnull(s);
		ck_assert(s[0] == '{');
		free(s);
	}
	ck_assert_uint_eq(k, 6);
	ck_assert_ptr_null(policy_preset_text("nginx"));
	s = policy_preset_text("preset:traefik");
	ck_assert_ptr_nonnull(s);
	free(s);
}
END_TEST

/* owner_sees: list answers keep the caller's and the seen profiles'. */
START_TEST(test_filter_owned)
{
	struct policy_error		 err;
	struct policy			*pol;
	const struct policy_profile	*p;
	char				*out;
	size_t				 len;
	const char *list =
	    "[{\"Id\":\"a\",\"Labels\":{\"dockgate.owner\":\"uid:1\"}},"
	    "{\"Id\":\"b\",\"Labels\":{\"dockgate.owner\":\"uid:9\","
	    "\"dockgate.profile\":\"t\"}},"
	    "{\"Id\":\"c\",\"Labels\":{\"dockgate.owner\":\"uid:8\","
	    "\"dockgate.profile\":\"o\"}},"
	    "{\"Id\":\"d\",\"Labels\":{}},{\"Id\":\"e\"},"
	    "{\"Id\":\"f\",\"Labels\":{\"dockgate.profile\":\"t\"}}]";
	const char *vols =
	    "{\"Volumes\":[{\"Name\":\"x\",\"Labels\":null},{\"Name\":"
	    "\"y\",\"Labels\":{\"dockgate.owner\":\"uid:1\"}}],"
	    "\"Warnings\":null}";
	const char *df =
	    "{\"LayersSize\":5,\"Containers\":[{\"Id\":\"k\",\"Labels\":"
	    "{\"dockgate.owner\":\"uid:1\"}},{\"Id\":\"l\",\"Labels\":{}}],"
	    "\"Volumes\":null,\"BuildCache\":[{\"ID\":\"x\",\"Description\":"
	    "\"RUN secret\"}]}";

	pol = load("{\"version\":1,\"profiles\":{\"t\":{\"ownership\":true},"
	    "\"o\":{},\"a\":{\"ownership\":true,\"owner_sees\":[\"t\"]}}}",
	    &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	p = policy_profile_find(pol, "a");
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", list, strlen(list),
	    &out, &len), 0);
	ck_assert_str_eq(out, "[{\"Id\":\"a\",\"Labels\":{\"dockgate.owner\":"
	    "\"uid:1\"}},{\"Id\":\"b\",\"Labels\":{\"dockgate.owner\":"
	    "\"uid:9\",\"dockgate.profile\":\"t\"}}]");
	ck_assert_uint_eq(len, strlen(out));
	free(out);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", vols, strlen(vols),
	    &out, &len), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"y\""));
	ck_assert_ptr_null(strstr(out, "\"x\""));
	free(out);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", "{\"Volumes\":null}",
	    17, &out, &len), 0);
	free(out);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", df, strlen(df), &out,
	    &len), 0);
	ck_assert_str_eq(out, "{\"LayersSize\":5,\"Containers\":[{\"Id\":"
	    "\"k\",\"Labels\":{\"dockgate.owner\":\"uid:1\"}}],\"Volumes\":"
	    "null,\"BuildCache\":[]}");
	free(out);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", "{\"a\":1}", 7, &out,
	    &len), -1);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", "{\"Volumes\":1}", 13,
	    &out, &len), -1);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(policy_filter_owned(p, "uid:1", "[", 1, &out, &len),
	    -1);
	ck_assert_int_eq(policy_filter_owned(p, NULL, "[]", 2, &out, &len),
	    -1);
	policy_unref(pol);
}
END_TEST

/* Identities: first full match, default, built-in. */
START_TEST(test_identities)
{
	struct policy_error		 err;
	struct policy			*pol;
	struct policy_identity		 id;
	const char *text =
	    "{\"version\":1,\"default_profile\":\"base\","
	    "\"identities\":["
	    "{\"match\":{\"listener\":\"unix:/run/ro.sock\"},"
	    "\"profile\":\"ro\"},"
	    "{\"match\":{\"uid\":1000,\"gid\":1000},\"profile\":\"ci\"},"
	    "{\"match\":{\"gid\":998},\"profile\":\"ci\"},"
	    "{\"match\":{\"cert_cn\":\"runner\"},\"profile\":\"ci\"},"
	    "{\"match\":{},\"profile\":\"all\"}],"
	    "\"profiles\":{\"base\":{},\"ro\":{},\"ci\":{},\"all\":{}}}";

	pol = load(text, &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	memset(&id, 0, sizeof(id));
	id.listener = "unix:/run/ro.sock";
	id.has_cred = 1;
	id.uid = 1000;
	id.gid = 1000;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "ro");
	id.listener = "unix:/run/dockgate.sock";
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "ci");
	id.gid = 5;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "all");
	id.gid = 998;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "ci");
	id.has_cred = 0;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "all");
	id.cert_cn = "runner";
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "ci");
	policy_unref(pol);

	pol = load("{\"version\":1,\"identities\":[{\"match\":{\"uid\":0},"
	    "\"profile\":\"p\"}],\"profiles\":{\"p\":{}}}", &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	memset(&id, 0, sizeof(id));
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)),
	    "builtin-safe");
	id.has_cred = 1;
	ck_assert_str_eq(policy_profile_name(policy_resolve(pol, &id)), "p");
	policy_unref(pol);
}
END_TEST

/* Image references and their normalised repositories. */
static const struct {
	const char	*in;
	const char	*repo;	/* NULL: invalid */
	const char	*tag;
} refs[] = {
	{ "busybox", "docker.io/library/busybox", "latest" },
	{ "busybox:1.36", "docker.io/library/busybox", "1.36" },
	{ "library/busybox", "docker.io/library/busybox", "latest" },
	{ "docker.io/busybox", "docker.io/library/busybox", "latest" },
	{ "index.docker.io/busybox", "docker.io/library/busybox", "latest" },
	{ "registry-1.docker.io/alice/x", "docker.io/alice/x", "latest" },
	{ "alice/x:v1", "docker.io/alice/x", "v1" },
	{ "localhost/x", "localhost/x", "latest" },
	{ "localhost:5000/x", "localhost:5000/x", "latest" },
	{ "127.0.0.1:5000/library/tiny", "127.0.0.1:5000/library/tiny",
	    "latest" },
	{ "registry.example.com:5000/a/b/c:tag", "registry.example.com:5000/"
	    "a/b/c", "tag" },
	{ "Registry.Example.com/x", "Registry.Example.com/x", "latest" },
	/* a host told by upper case only stays one, its case kept */
	{ "FOO/x", "FOO/x", "latest" },
	{ "Foo/bar/x:1", "Foo/bar/x", "1" },
	{ "LOCALHOST/x", "LOCALHOST/x", "latest" },
	{ "INDEX.DOCKER.IO/x", "INDEX.DOCKER.IO/x", "latest" },
	{ "host:123456/x", "host:123456/x", "latest" },
	{ "a-b.c-d/x", "a-b.c-d/x", "latest" },
	{ "FOO_BAR/x", NULL, NULL },
	{ "a.-b/x", NULL, NULL },
	{ "-a.b/x", NULL, NULL },
	{ "a-.b/x", NULL, NULL },
	{ "a..b/x", NULL, NULL },
	{ "a.b./x", NULL, NULL },
	{ "[1.2.3.4]/x", NULL, NULL },
	{ "[]/x", NULL, NULL },
	{ "[::1/x", NULL, NULL },
	{ "host:/x", NULL, NULL },
	{ "FOO/X", NULL, NULL },
	{ "[::1]:5000/x", "[::1]:5000/x", "latest" },
	{ "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef", "docker.io/library/busybox", "" },
	{ "a__b/c.d-e", "docker.io/a__b/c.d-e", "latest" },
	{ "Busybox", NULL, NULL },
	{ "busy box", NULL, NULL },
	{ "", NULL, NULL },
	{ ":tag", NULL, NULL },
	{ "busybox:", NULL, NULL },
	{ "busybox:-x", NULL, NULL },
	{ "a/", NULL, NULL },
	{ "/a", NULL, NULL },
	{ "a//b", NULL, NULL },
	{ "a..b", NULL, NULL },
	{ "-a", NULL, NULL },
	{ "a___b", NULL, NULL },
	{ "busybox@sha256:short", NULL, NULL },
	{ "busybox@", NULL, NULL },
	{ "host:port/x", NULL, NULL },
	{ "exa_mple.com/x", NULL, NULL },
};

/* One image reference. */
START_TEST(test_imageref)
{
	struct imageref	r;
	int		rc;

	rc = imageref_parse(refs[_i].in, &r);
	if (refs[_i].repo == NULL) {
		ck_assert_msg(rc == -1, "%s parsed as %s", refs[_i].in, r.repo);
		return;
	}
	ck_assert_msg(rc == 0, "%s refused", refs[_i].in);
	ck_assert_str_eq(r.repo, refs[_i].repo);
	ck_assert_str_eq(r.tag, refs[_i].tag);
}
END_TEST

/*
 * The 255-byte limit is on the path after normalisation (library/
 * counts), not on the domain: distribution/reference's
 * RepositoryNameTotalLengthMax.
 */
START_TEST(test_imageref_len)
{
	struct imageref	 r;
	char		 s[600], again[800];
	size_t		 n;

	for (n = 240; n <= 260; n++) {
		memset(s, 'a', n);
		s[n] = '\0';
		/* busybox-like: docker.io/library/<n a> */
		ck_assert_int_eq(imageref_parse(s, &r), n + 8 <= 255 ? 0 : -1);
		snprintf(s, sizeof(s), "docker.io/%0*d", (int)n, 0);
		ck_assert_int_eq(imageref_parse(s, &r), n + 8 <= 255 ? 0 : -1);
		/* a long host does not count */
		snprintf(s, sizeof(s), "registry.%0*d.example.com:5000/a/%0*d",
		    100, 0, (int)n - 2, 0);
		ck_assert_int_eq(imageref_parse(s, &r), n <= 255 ? 0 : -1);
		if (n <= 255) {
			/* and the normal form reads back the same */
			snprintf(again, sizeof(again), "%s:%s", r.repo, r.tag);
			ck_assert_int_eq(imageref_parse(again, &r), 0);
			ck_assert_str_eq(r.repo, s);
		}
	}
}
END_TEST

/* Prefixes and component-boundary matching; IDs. */
START_TEST(test_imageref_prefix)
{
	struct strlist	l = { NULL, 0 };
	char		buf[REF_MAX];

	ck_assert_int_eq(imageref_prefix("docker.io/library", buf,
	    sizeof(buf)), 0);
	ck_assert_str_eq(buf, "docker.io/library");
	ck_assert_int_eq(imageref_prefix("ci/", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "docker.io/ci");
	ck_assert_int_eq(imageref_prefix("index.docker.io/alice", buf,
	    sizeof(buf)), 0);
	ck_assert_str_eq(buf, "docker.io/alice");
	ck_assert_int_eq(imageref_prefix("registry.example.com:5000", buf,
	    sizeof(buf)), 0);
	ck_assert_str_eq(buf, "registry.example.com:5000");
	ck_assert_int_eq(imageref_prefix("Bad/Prefix", buf, sizeof(buf)), -1);
	ck_assert_int_eq(imageref_prefix("a@b", buf, sizeof(buf)), -1);
	ck_assert_int_eq(imageref_prefix("/", buf, sizeof(buf)), -1);

	ck_assert_int_eq(strlist_add(&l, "docker.io/library"), 0);
	ck_assert_int_eq(strlist_add(&l, "registry.example.com:5000"), 0);
	ck_assert(imageref_under("docker.io/library/busybox", &l));
	ck_assert(imageref_under("docker.io/library", &l));
	ck_assert(!imageref_under("docker.io/libraryx/busybox", &l));
	ck_assert(!imageref_under("docker.io/alice/busybox", &l));
	ck_assert(imageref_under("registry.example.com:5000/a/b", &l));
	ck_assert(!imageref_under("registry.example.com:50001/a", &l));
	ck_assert(!imageref_under("registry.example.com/a", &l));
	/* a host compares without case, a path exactly */
	ck_assert(imageref_under("REGISTRY.example.com:5000/app", &l));
	ck_assert(imageref_under("Docker.IO/library/busybox", &l));
	ck_assert(!imageref_under("docker.io/LIBRARY/busybox", &l));
	ck_assert(!imageref_under("REGISTRY.example.com:50001/a", &l));
	strlist_free(&l);
	ck_assert_int_eq(imageref_prefix("FOO/bar", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "FOO/bar");
	ck_assert_int_eq(imageref_prefix("FOO", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "FOO");
	ck_assert_int_eq(imageref_prefix("foo", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "docker.io/foo");

	ck_assert(imageref_is_id("sha256:abc"));
	ck_assert(imageref_is_id("deadbeef"));
	ck_assert(imageref_is_id("0123"));
	ck_assert(!imageref_is_id("busybox"));
	ck_assert(!imageref_is_id("DEADBEEF"));
	ck_assert(!imageref_is_id("abc:1"));
	ck_assert(!imageref_is_id(""));
}
END_TEST

/* Host path cleaning and matching. */
static const struct {
	const char	*in;
	const char	*clean;	/* NULL: refused */
} paths[] = {
	{ "/", "/" },
	{ "/srv", "/srv" },
	{ "/srv/", "/srv" },
	{ "//srv//ci-cache///x/", "/srv/ci-cache/x" },
	{ "/srv/./x", NULL },
	{ "/srv/../etc", NULL },
	{ "/..", NULL },
	{ "/srv/..", NULL },
	{ "/srv/...", "/srv/..." },
	{ "/srv/.hidden", "/srv/.hidden" },
	{ "srv", NULL },
	{ "", NULL },
	{ "./x", NULL },
};

/* One path. */
START_TEST(test_hostpath_clean)
{
	char	buf[256];
	int	rc;

	rc = hostpath_clean(paths[_i].in, buf, sizeof(buf));
	if (paths[_i].clean == NULL)
		ck_assert_msg(rc == -1, "%s cleaned to %s", paths[_i].in, buf);
	else {
		ck_assert_msg(rc == 0, "%s refused", paths[_i].in);
		ck_assert_str_eq(buf, paths[_i].clean);
	}
}
END_TEST

/* Prefix matching on component boundaries; the engine socket. */
START_TEST(test_hostpath_match)
{
	struct strlist	l = { NULL, 0 };

	ck_assert(hostpath_under("/srv/ci-cache", "/srv/ci-cache"));
	ck_assert(hostpath_under("/srv/ci-cache/x", "/srv/ci-cache"));
	ck_assert(!hostpath_under("/srv/ci-cache2", "/srv/ci-cache"));
	ck_assert(!hostpath_under("/srv", "/srv/ci-cache"));
	ck_assert(hostpath_under("/anything", "/"));
	ck_assert_int_eq(strlist_add(&l, "/srv/ci-cache"), 0);
	ck_assert_int_eq(strlist_add(&l, "/data"), 0);
	ck_assert_str_eq(hostpath_allowed("/data/x", &l), "/data");
	ck_assert_ptr_null(hostpath_allowed("/datax", &l));
	ck_assert_ptr_null(hostpath_allowed("/etc", &l));
	strlist_free(&l);
	ck_assert(hostpath_is_engine_socket("/var/run/docker.sock", NULL));
	ck_assert(hostpath_is_engine_socket("/run/docker.sock", NULL));
	ck_assert(hostpath_is_engine_socket("/var/run", NULL));
	ck_assert(hostpath_is_engine_socket("/run", NULL));
	ck_assert(hostpath_is_engine_socket("/var", NULL));
	ck_assert(hostpath_is_engine_socket("/", NULL));
	ck_assert(hostpath_is_engine_socket("/run/containerd/containerd.sock", NULL));
	ck_assert(!hostpath_is_engine_socket("/run/user", NULL));
	ck_assert(!hostpath_is_engine_socket("/var/run/docker.sock.bak", NULL));
	ck_assert(!hostpath_is_engine_socket("/srv", NULL));
	{
		/* The daemon's own sockets (its --upstream, its listeners). */
		static const char *const extra[] = { "/tmp/e/docker.sock",
		    "/srv/dg/admin.sock", NULL };

		ck_assert(hostpath_is_engine_socket("/tmp/e/docker.sock",
		    extra));
		ck_assert(hostpath_is_engine_socket("/tmp/e", extra));
		ck_assert(hostpath_is_engine_socket("/tmp", extra));
		ck_assert(hostpath_is_engine_socket("/srv/dg", extra));
		ck_assert(!hostpath_is_engine_socket("/tmp/f", extra));
		ck_assert(!hostpath_is_engine_socket("/srv/dgx", extra));
	}
}
END_TEST

/* Endpoint patterns: (pattern, method, route, match). */
static const struct {
	const char	*pat, *method, *route;
	int		 match;
} eps[] = {
	{ "GET /_ping", "GET", "/_ping", 1 },
	{ "GET /_ping", "HEAD", "/_ping", 0 },
	{ "GET /_ping", "GET", "/_ping/", 0 },
	{ "GET /containers/*/json", "GET", "/containers/abc/json", 1 },
	{ "GET /containers/*/json", "GET", "/containers/json", 0 },
	{ "GET /containers/*/json", "GET", "/containers/a/b/json", 0 },
	{ "GET /containers/*/json", "GET", "/containers//json", 0 },
	{ "GET /images/**/json", "GET", "/images/a/json", 1 },
	{ "GET /images/**/json", "GET", "/images/a/b/c/json", 1 },
	{ "GET /images/**/json", "GET", "/images/json", 0 },
	{ "DELETE /images/**", "DELETE", "/images/a/b", 1 },
	{ "DELETE /images/**", "DELETE", "/images", 0 },
	{ "GET /**", "GET", "/anything/at/all", 1 },
	{ "GET /**", "GET", "/", 0 },
	{ "* /volumes/*", "PUT", "/volumes/x", 1 },
	{ "GET /**/json", "GET", "/a/b/json", 1 },
	{ "GET /**/x/**", "GET", "/a/x/b", 1 },
	{ "GET /**/x/**", "GET", "/a/x", 0 },
	{ "POST /containers/create", "POST", "/containers/create", 1 },
	{ "POST /containers/create", "POST", "/containers/Create", 0 },
	{ "POST /containers/create", "post", "/containers/create", 0 },
};

/* One endpoint pattern. */
START_TEST(test_endpoint)
{
	const char	*why;

	ck_assert_int_eq(endpoint_valid(eps[_i].pat, &why), 0);
	ck_assert_msg(endpoint_match(eps[_i].pat, eps[_i].method,
	    eps[_i].route) == eps[_i].match, "%s vs %s %s", eps[_i].pat,
	    eps[_i].method, eps[_i].route);
}
END_TEST

/* Pattern validation and the default list. */
START_TEST(test_endpoint_valid)
{
	static const char *const bad[] = { "", "GET", "GET ", "GET x",
	    "get /x", "GET  /x", "GET /a//b", "GET /a*", "GET /***",
	    "GET /a b", "GET /a?b", "VERYLONGMETHODNAME /x", NULL };
	const char	*why;
	size_t		 i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(endpoint_valid(bad[i], &why) == -1, "%s", bad[i]);
	ck_assert_int_eq(endpoint_valid("GET /", &why), 0);
	for (i = 0; endpoint_defaults[i] != NULL; i++)
		ck_assert_msg(endpoint_valid(endpoint_defaults[i], &why) == 0,
		    "%s", endpoint_defaults[i]);
	ck_assert_str_eq(endpoint_find_default("GET", "/images/a/b/json"),
	    "GET /images/**/json");
	ck_assert_ptr_null(endpoint_find_default("POST", "/plugins/pull"));
	ck_assert_ptr_null(endpoint_find_default("POST", "/swarm/init"));
}
END_TEST

/* Go's key folding. */
/* create_split() takes an exact spelling in any of its three schemas
 * as the field: that holds only while no field of one folds like a field
 * of another. */
START_TEST(test_create_split_schemas)
{
	const struct jf_schema	*sch[3] = { &schema_create_wrapper,
	    &schema_config, &schema_hostconfig };
	size_t			 a, b, i;

	for (a = 0; a < 3; a++)
		for (b = 0; b < 3; b++) {
			if (a == b)
				continue;
			for (i = 0; i < sch[a]->nfields; i++)
				ck_assert_msg(jf_field_index(sch[b],
				    sch[a]->fields[i].name) == -1,
				    "%s.%s folds like a field of %s",
				    sch[a]->name, sch[a]->fields[i].name,
				    sch[b]->name);
		}
}
END_TEST

START_TEST(test_fold)
{
	char	buf[JF_KEY_MAX];

	ck_assert_int_eq(jf_fold("Privileged", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "PRIVILEGED");
	ck_assert_int_eq(jf_fold("ho\xc5\xbftconfig", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "HOSTCONFIG");
	ck_assert_int_eq(jf_fold("Networ\xe2\x84\xaaMode", buf, sizeof(buf)),
	    0);
	ck_assert_str_eq(buf, "NETWORKMODE");
	ck_assert_int_eq(jf_field_index(&schema_hostconfig, "privileged"),
	    jf_field_index(&schema_hostconfig, "Privileged"));
	ck_assert_int_ge(jf_field_index(&schema_hostconfig,
	    "\xc5\xbf" "ecurityopt"), 0);
	ck_assert_int_ge(jf_field_index(&schema_hostconfig,
	    "Networ\xe2\x84\xaamode"), 0);
	/* Dotless i and other non-ASCII letters do not fold to ASCII. */
	ck_assert_int_eq(jf_field_index(&schema_hostconfig,
	    "Pr\xc4\xb1vileged"), -1);
	ck_assert_int_eq(jf_field_index(&schema_hostconfig, "Privileged "),
	    -1);
	ck_assert_int_eq(jf_field_index(&schema_hostconfig, "Privilege"), -1);
	ck_assert_int_eq(jf_fold("01234567890123456789012345678901234567890"
	    "123456789012345678901234567890123456789012345678901234567890123"
	    "456789012345678901234567890", buf, sizeof(buf)), -1);
}
END_TEST

/* JSON texts the library's reader must answer as json_loadb() does. */
static const char *const json_texts[] = {
	"", " ", "{", "}", "[", "]", "{}", "[]", " [ ] ", "[1,]", "[,1]",
	"{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{\"a\":}", "{1:2}",
	"{\"a\":1 \"b\":2}", "[1 2]", "[1", "[1,", "{\"a\":1", "{\"a\":",
	"\"str\"", "1", "-1", "0", "-0", "01", "-01", "1.", "1.5", "-1.5e3",
	"1e", "1e+", "1E-2", ".5", "-", "-a", "+1", "1x", "[1.5e400]",
	"[-1.5e400]", "[1e-400]", "[9223372036854775807]",
	"[9223372036854775808]", "[-9223372036854775808]",
	"[-9223372036854775809]", "[123456789012345678901234567890]",
	"[true]", "[false]", "[null]", "[tru]", "[truex]", "[True]",
	"[nul]", "[nulll]", "[x]", "[@]", "[#]", "['a']",
	"[\"a\\u0041\"]", "[\"\\u00e9\\u20ac\\ud83d\\ude00\"]",
	"[\"\\ud83d\"]", "[\"\\ud83dx\"]", "[\"\\ud83d\\u0041\"]",
	"[\"\\ude00\"]", "[\"\\u12\"]", "[\"\\u12g4\"]", "[\"\\x\"]",
	"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"a\nb\"]", "[\"a\tb\"]",
	"[\"\\u0000\"]", "{\"\\u0000\":1}", "{\"a\\u0000b\":1}", "[\"abc",
	"[\"abc\\", "[\"abc\\u12", "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2,"
	"\"a\":3}", "{\"a\":{\"b\":1},\"a\":[2]}",
	"[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xc3(\"]", "[\"\xe0\x80\x80\"]",
	"[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xff\"]",
	"[\xc3\xa9]", "[1\xc3\xa9]", "[1\xff]", "\xef\xbb\xbf[]",
	"[\"0123456789012345678\"]", "[\"01234567890123456789\"",
	"[\"012345678901234567890\"", "[1]x", "[1] [2]", "[1]\n\n x",
	"{\n\"a\":1,\n\"a\":2}", "[\n\"\xc3\xa9\xc3\xa9\",\n x]",
	"[\"\xc3\xa9\xc3\xa9\" x]", "{\"k\":[1,{\"z\":[true,null]}],\"j\":-0.0}",
	"\t\r\n[\t\r\n1\t\r\n]\t\r\n", "[1,\x01]", "[\x7f]",
	/* NUL bytes (lengths in json_nul_len): jansson loses one it gives
	 * back after a number or a word */
	"{\"a\"\x00:1}", "0\x00" "f", "[1\x00]", "[1.5\x00,2]", "[tru\x00e]",
	"[\"a\x00\"]", "\x00[]", "[1e5\x00\x00]", "[-\x00" "1]",
};

/* The length of each text with a NUL byte in it (0: strlen). */
static size_t
json_nul_len(const char *t)
{
	static const struct {
		const char	*t;
		size_t		 len;
	} nul[] = {
		{ "{\"a\"", 8 }, { "0", 3 }, { "[1", 4 }, { "[1.5", 8 },
		{ "[tru", 7 }, { "[\"a", 6 }, { "", 3 }, { "[1e5", 7 },
		{ "[-", 5 },
	};
	size_t	i;

	for (i = 0; i < sizeof(nul) / sizeof(nul[0]); i++)
		if (strcmp(t, nul[i].t) == 0)
			return (nul[i].len);
	return (0);
}

/* The reader against json_loadb(): values, messages and positions. */
static void
json_same(const char *t, size_t len, int flags)
{
	json_error_t	 ea, eb;
	json_t		*a, *b;
	char		*da, *db;

	a = json_loadb(t, len, flags, &ea);
	b = jf_loadb(t, len, flags, &eb);
	ck_assert_msg((a == NULL) == (b == NULL), "\"%s\" (flags %d): %s vs "
	    "%s", t, flags, a ? "ok" : ea.text, b ? "ok" : eb.text);
	if (a != NULL) {
		da = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
		db = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
		ck_assert_str_eq(db, da);
		free(da);
		free(db);
	} else {
		ck_assert_msg(strcmp(ea.text, eb.text) == 0, "\"%s\" (flags "
		    "%d): \"%s\" vs \"%s\"", t, flags, ea.text, eb.text);
		ck_assert_int_eq(json_error_code(&eb), json_error_code(&ea));
		ck_assert_int_eq(eb.line, ea.line);
		ck_assert_int_eq(eb.column, ea.column);
	}
	ck_assert_msg(eb.position == ea.position, "\"%s\" (flags %d): "
	    "position %d vs %d", t, flags, eb.position, ea.position);
	json_decref(a);
	json_decref(b);
}

/* Each text, with each set of flags the library uses. */
START_TEST(test_json_reader)
{
	static const int	 flags[] = { 0, JSON_REJECT_DUPLICATES,
	    JSON_DECODE_ANY, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY };
	const char		*t = json_texts[_i];
	size_t			 f, len = strlen(t);

	if ((size_t)_i >= sizeof(json_texts) / sizeof(json_texts[0]) - 9 &&
	    json_nul_len(t) != 0)
		len = json_nul_len(t);
	for (f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
		json_same(t, len, flags[f]);
}
END_TEST

/* The body parser against jansson (tests/body_parse.h). */
static void
body_same(const char *t, size_t len)
{
	char	why[1024];

	ck_assert_msg(!body_parser_differs(t, len, why, sizeof(why)),
	    "\"%s\": %s", t, why);
}

/* Strings the in-place parse must decode: escapes and UTF-8 after plain
 * runs of every length around the eight-byte scan, in keys and values. */
static const char *const body_texts[] = {
	"{\"k\\u0041y\":\"v\\u00e9x\",\"plain\":\"0123456789abcdef\\n\"}",
	"[\"abcdefghij\\\"klm\",\"\\\\\\\\\",\"\\/\"]",
	"{\"ab\":1,\"a\\u0062\":2}", "{\"a\":\"x\",\"a\\u0000\":1}",
	"[\"\xc3\xa9" "abcdefgh\\t\xe2\x82\xac\",\"\\ud83d\\ude00z\"]",
	"{\"HostConfig\":{\"Binds\":[\"/a\\/b:/c\"],\"Privil\\u0065ged\""
	":true}}", "{\"a\":\"abcdefg\\\"\",\"b\":\"abcdefgh\\\"\"}",
	"[\"0123456\\u00e9\", \"01234567\\u00e9\", \"012345678\\u00e9\"]",
};

START_TEST(test_body_parser)
{
	char	 t[64];
	size_t	 i, pos;

	for (i = 0; i < sizeof(json_texts) / sizeof(json_texts[0]); i++)
		body_same(json_texts[i], i >= sizeof(json_texts) /
		    sizeof(json_texts[0]) - 9 && json_nul_len(json_texts[i]) ?
		    json_nul_len(json_texts[i]) : strlen(json_texts[i]));
	for (i = 0; i < sizeof(body_texts) / sizeof(body_texts[0]); i++)
		body_same(body_texts[i], strlen(body_texts[i]));
	for (pos = 0; pos <= 20; pos++) {
		snprintf(t, sizeof(t), "{\"%.*s\\n%s\":\"%.*s\\u20ac%s\"}",
		    (int)pos, "aaaaaaaaaaaaaaaaaaaa", "bb", (int)pos,
		    "cccccccccccccccccccc", "dd");
		body_same(t, strlen(t));
	}
}
END_TEST

/* Deep nesting: jansson's limit, its message. */
START_TEST(test_json_reader_depth)
{
	char	*t;
	size_t	 n;

	for (n = 2040; n <= 2056; n += 8) {
		t = malloc(2 * n + 1);
		ck_assert_ptr_nonnull(t);
		memset(t, '[', n);
		memset(t + n, ']', n);
		t[2 * n] = '\0';
		json_same(t, 2 * n, 0);
		json_same(t, n, 0);
		free(t);
	}
}
END_TEST

/* Sizes in the docker CLI's grammar. */
START_TEST(test_sizes)
{
	static const struct {
		const char	*s;
		int64_t		 v;
	} good[] = {
		{ "0", 0 }, { "1024", 1024 }, { "1k", 1024 }, { "1kb", 1024 },
		{ "1K", 1024 }, { "512m", 512LL << 20 },
		{ "512MB", 512LL << 20 },
		{ "1g", 1LL << 30 }, { "1.5g", 3LL << 29 }, { "2t", 2LL << 40 },
		{ "100b", 100 },
	};
	static const char *const bad[] = { "", "g", "1x", "1gg", "-1",
	    "1.g", ".5g", "1 g", "99999999999999999999", "1e3", NULL };
	int64_t	 v;
	size_t	 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(profile_parse_size(good[i].s, &v) == 0, "%s",
		    good[i].s);
		ck_assert_msg(v == good[i].v, "%s = %lld", good[i].s,
		    (long long)v);
	}
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(profile_parse_size(bad[i], &v) == -1, "%s",
		    bad[i]);
}
END_TEST

/* Which bodies stream. */
START_TEST(test_body_mode)
{
	static const struct {
		const char		*method, *target;
		enum policy_body_mode	 mode;
	} t[] = {
		{ "POST", "/v1.41/build?t=x", POLICY_BODY_STREAM },
		{ "POST", "/build", POLICY_BODY_STREAM },
		{ "PUT", "/v1.41/containers/abc/archive?path=/",
		    POLICY_BODY_STREAM },
		{ "POST", "/images/load", POLICY_BODY_STREAM },
		{ "POST", "/images/create?fromSrc=-", POLICY_BODY_STREAM },
		{ "POST", "/session", POLICY_BODY_STREAM },
		{ "POST", "/grpc", POLICY_BODY_STREAM },
		{ "POST", "/plugins/create?name=x", POLICY_BODY_STREAM },
		{ "POST", "/containers/create", POLICY_BODY_BUFFER },
		{ "POST", "/containers/abc/start", POLICY_BODY_BUFFER },
		{ "POST", "/exec/abc/start", POLICY_BODY_BUFFER },
		{ "GET", "/containers/abc/archive", POLICY_BODY_BUFFER },
		{ "POST", "/build/prune", POLICY_BODY_BUFFER },
		{ "POST", "/volumes/create", POLICY_BODY_BUFFER },
	};
	struct policy_req	 req;
	const char		*why;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_int_eq(policy_req_parse(&req, t[i].method,
		    t[i].target, strlen(t[i].target), &why), 0);
		ck_assert_msg(policy_body_mode(&req) == t[i].mode, "%s %s",
		    t[i].method, t[i].target);
		policy_req_clear(&req);
	}
	ck_assert_str_eq(policy_verdict_name(POLICY_MUTATE), "mutate");
	ck_assert_str_eq(policy_verdict_name(POLICY_MALFORMED), "malformed");
	ck_assert_str_eq(policy_verdict_name(POLICY_LOOKUP), "lookup");
}
END_TEST

/* The shipped policy files load, and --check's summary reads well. */
START_TEST(test_shipped)
{
	static const char *const files[] = { "/policy/default.json",
	    "/policy/examples/ci-runner.json", "/policy/examples/gateway.json",
	    NULL };
	struct policy_error	 err;
	struct policy		*pol;
	char			 path[1024], *s;
	size_t			 i;

	for (i = 0; files[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s%s", TOP_SRCDIR, files[i]);
		pol = policy_load_file(path, &err);
		ck_assert_msg(pol != NULL, "%s", err.text);
		s = policy_summary(pol);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strstr(s, "profile ") != NULL, "%s", s);
		free(s);
		policy_unref(pol);
	}
	pol = policy_load_file("/nonexistent/policy.json", &err);
	ck_assert_ptr_null(pol);
	ck_assert_msg(strstr(err.text, "/nonexistent/policy.json") != NULL,
	    "%s", err.text);
}
END_TEST

/* The summary names profiles, identities and keys. */
START_TEST(test_summary)
{
	struct policy_error	 err;
	struct policy		*pol;
	char			*s;

	pol = load("{\"version\":1,\"identities\":[{\"match\":{\"uid\":1000},"
	    "\"profile\":\"ci\"}],\"profiles\":{\"ci\":{\"build\":true,"
	    "\"host_paths\":[\"/srv\"],\"memory\":{\"max\":\"16g\"}},"
	    "\"root\":{\"unrestricted\":true}}}", &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	s = policy_summary(pol);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "profile ci") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "uid=1000 -> ci") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "build") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "max 16g") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "UNRESTRICTED") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "textual only") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "built-in profile") != NULL, "%s", s);
	free(s);
	policy_unref(pol);
}
END_TEST

/* Where the Dockerfile is in a build context. */
START_TEST(test_dockerfile_name)
{
	struct policy_req	 req;
	const char		*why, *t1 = "/build?t=x&dockerfile=ci%2FDockerfile";
	const char		*t2 = "/build?dockerfile=";

	ck_assert_int_eq(policy_req_parse(&req, "POST", t1, strlen(t1), &why),
	    0);
	ck_assert_str_eq(policy_build_dockerfile(&req), "ci/Dockerfile");
	policy_req_clear(&req);
	ck_assert_int_eq(policy_req_parse(&req, "POST", t2, strlen(t2), &why),
	    0);
	ck_assert_str_eq(policy_build_dockerfile(&req), "Dockerfile");
	policy_req_clear(&req);
}
END_TEST

/* A LOOKUP round trip, as the daemon drives it. */
START_TEST(test_lookup_protocol)
{
	struct policy_error	 err;
	struct policy		*pol;
	struct policy_req	 req;
	struct policy_result	 res;
	struct policy_facts	 facts;
	const char		*why, *t = "/v1.41/containers/create";
	const char		*body = "{\"Image\":\"busybox\"}";
	const char		*img = "{\"Config\":{\"User\":\"1000\"}}";

	pol = load("{\"version\":1,\"default_profile\":\"p\",\"profiles\":"
	    "{\"p\":{\"trusted_registries\":[\"docker.io/library\"],"
	    "\"run_as_non_root\":true}}}", &err);
	ck_assert_msg(pol != NULL, "%s", err.text);
	ck_assert_int_eq(policy_req_parse(&req, "POST", t, strlen(t), &why),
	    0);
	req.body = (const unsigned char *)body;
	req.body_len = strlen(body);
	req.has_body = 1;
	memset(&facts, 0, sizeof(facts));
	policy_eval(pol, policy_resolve(pol, &(struct policy_identity){ 0 }),
	    &req, &facts, &res);
	ck_assert_int_eq(res.verdict, POLICY_LOOKUP);
	ck_assert_str_eq(res.lookup, "/images/busybox/json");
	ck_assert_ptr_null(res.body);
	facts.fact[0].path = "/images/busybox/json";
	facts.fact[0].status = 200;
	facts.fact[0].body = img;
	facts.fact[0].body_len = strlen(img);
	facts.n = 1;
	policy_result_clear(&res);
	policy_eval(pol, NULL, &req, &facts, &res);
	/* The built-in profile trusts no registry. */
	ck_assert_int_eq(res.verdict, POLICY_DENY);
	policy_result_clear(&res);
	policy_eval(pol, policy_profile_find(pol, "p"), &req, &facts, &res);
	ck_assert_int_eq(res.verdict, POLICY_MUTATE);
	ck_assert_ptr_nonnull(res.body);
	ck_assert_uint_eq(res.body_len, strlen(res.body));
	ck_assert_uint_eq(res.nmutations, 3);
	ck_assert_str_eq(res.profile, "p");
	policy_result_clear(&res);
	ck_assert_ptr_null(res.body);
	policy_req_clear(&req);
	policy_unref(pol);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("policy");
	TCase	*tc;
	SRunner	*sr;
	int	 nf;

	tc = tcase_create("loader");
	tcase_add_loop_test(tc, test_loader_errors, 0,
	    sizeof(bad_policies) / sizeof(bad_policies[0]));
	tcase_add_test(tc, test_loader_good);
	tcase_add_test(tc, test_presets);
	tcase_add_test(tc, test_filter_owned);
	tcase_add_test(tc, test_shipped);
	tcase_add_test(tc, test_summary);
	suite_add_tcase(s, tc);

	tc = tcase_create("identities");
	tcase_add_test(tc, test_identities);
	suite_add_tcase(s, tc);

	tc = tcase_create("imageref");
	tcase_add_loop_test(tc, test_imageref, 0, sizeof(refs) /
	    sizeof(refs[0]));
	tcase_add_test(tc, test_imageref_prefix);
	tcase_add_test(tc, test_imageref_len);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostpath");
	tcase_add_loop_test(tc, test_hostpath_clean, 0, sizeof(paths) /
	    sizeof(paths[0]));
	tcase_add_test(tc, test_hostpath_match);
	suite_add_tcase(s, tc);

	tc = tcase_create("endpoints");
	tcase_add_loop_test(tc, test_endpoint, 0, sizeof(eps) /
	    sizeof(eps[0]));
	tcase_add_test(tc, test_endpoint_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("misc");
	tcase_add_test(tc, test_fold);
	tcase_add_test(tc, test_create_split_schemas);
	tcase_add_loop_test(tc, test_json_reader, 0, sizeof(json_texts) /
	    sizeof(json_texts[0]));
	tcase_add_test(tc, test_json_reader_depth);
	tcase_add_test(tc, test_body_parser);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_body_mode);
	tcase_add_test(tc, test_lookup_protocol);
	tcase_add_test(tc, test_dockerfile_name);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
