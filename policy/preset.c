/*
 * Built-in presets: `"extends": "preset:NAME"` profiles for well-known tools.
 *
 * Each preset is the minimum its tool needs: the endpoints it calls (read off
 * the tool's source, replayed by tests/e2e/test_presets.py) and body rules.
 * A preset is an ordinary profile at the root of a chain: keys it omits take
 * their safe values, and a profile extending it overrides any key. Presets
 * whose allow list is "the default list plus a few" get the default list
 * from endpoint_defaults[], so the two never drift apart.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

struct preset {
	const char		*name;
	const char		*text;		/* the profile, as JSON */
	const char *const	*extra;		/* appended to the default allow
						   list; NULL: text decides */
};

/* Traefik's docker and swarm providers: discovery reads only. */
static const char preset_traefik[] =
    "{ \"endpoints\": { \"allow\": ["
    " \"GET /_ping\", \"HEAD /_ping\", \"GET /version\","
    " \"GET /containers/json\", \"GET /containers/*/json\", \"GET /events\","
    " \"GET /services\", \"GET /tasks\", \"GET /networks\", \"GET /nodes/*\""
    " ] },"
    " \"read_others\": false,"
    " \"redact\": [\"env\", \"mounts\"] }";

/* Watchtower: list, inspect, pull, stop, recreate, start, clean up, hooks. */
static const char preset_watchtower[] =
    "{ \"endpoints\": { \"allow\": ["
    " \"GET /_ping\", \"HEAD /_ping\", \"GET /version\", \"GET /info\","
    " \"GET /containers/json\", \"GET /containers/*/json\","
    " \"GET /images/**/json\", \"POST /images/create\","
    " \"POST /containers/create\", \"POST /containers/*/start\","
    " \"POST /containers/*/stop\", \"POST /containers/*/kill\","
    " \"POST /containers/*/rename\", \"DELETE /containers/*\","
    " \"DELETE /images/**\", \"POST /networks/*/connect\","
    " \"POST /networks/*/disconnect\", \"POST /containers/*/exec\","
    " \"POST /exec/*/start\", \"GET /exec/*/json\""
    " ] },"
    " \"read_others\": false }";

/* Portainer: the CLI's calls plus the swarm and plugin views it shows. */
static const char *const preset_portainer_extra[] = {
	"GET /plugins", "GET /swarm", "GET /services", "GET /services/*",
	"GET /tasks", "GET /tasks/*", "GET /nodes", "GET /nodes/*",
	"GET /secrets", "GET /configs", NULL
};
static const char preset_portainer[] =
    "{ \"build\": true, \"read_others\": false }";

/* CI runners (GitLab Runner's docker executor, jobs' docker CLI). */
static const char preset_ci_runner[] =
    "{ \"build\": true, \"ownership\": true, \"read_others\": false,"
    " \"published_ports\": \"none\","
    " \"endpoints\": { \"deny\": [\"POST /commit\","
    " \"GET /containers/*/export\", \"GET /images/get\","
    " \"GET /images/**/get\"] } }";

/* Monitoring and dashboards: state and metadata, never contents. */
static const char preset_read_only[] =
    "{ \"endpoints\": { \"allow\": ["
    " \"GET /_ping\", \"HEAD /_ping\", \"GET /version\", \"GET /info\","
    " \"GET /events\", \"GET /system/df\", \"GET /containers/json\","
    " \"GET /containers/*/json\", \"GET /containers/*/top\","
    " \"GET /containers/*/stats\", \"GET /containers/*/changes\","
    " \"GET /exec/*/json\", \"GET /images/json\", \"GET /images/**/json\","
    " \"GET /images/**/history\", \"GET /networks\", \"GET /networks/*\","
    " \"GET /volumes\", \"GET /volumes/*\""
    " ] },"
    " \"read_others\": false,"
    " \"redact\": [\"env\"] }";

/* The CIS Docker Benchmark's container runtime rules (section 5). */
static const char preset_cis_baseline[] =
    "{ \"drop_all_capabilities\": true, \"run_as_non_root\": true,"
    " \"no_new_privileges\": true, \"read_only_rootfs\": true,"
    " \"published_ports\": \"loopback\", \"read_others\": false,"
    " \"memory\": { \"default\": \"512m\", \"max\": \"4g\" },"
    " \"pids\": { \"default\": 512, \"max\": 4096 },"
    " \"cpus\": { \"default\": 1, \"max\": 4 } }";

static const struct preset presets[] = {
	{ "traefik", preset_traefik, NULL },
	{ "watchtower", preset_watchtower, NULL },
	{ "portainer", preset_portainer, preset_portainer_extra },
	{ "ci-runner", preset_ci_runner, NULL },
	{ "read-only", preset_read_only, NULL },
	{ "cis-baseline", preset_cis_baseline, NULL },
};

#define NPRESETS	(sizeof(presets) / sizeof(presets[0]))

/* The preset called name (without "preset:"), or NULL. */
static const struct preset *
preset_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NPRESETS; i++)
		if (strcmp(presets[i].name, name) == 0)
			return (&presets[i]);
	return (NULL);
}

/* Set endpoints.allow to the default list plus extra. */
static int
preset_extend_allow(json_t *prof, const char *const *extra)
{
	json_t	*eps, *allow;
	size_t	 i;

	if ((allow = json_array()) == NULL)
		return (-1);
	for (i = 0; endpoint_defaults[i] != NULL; i++)
		if (json_array_append_new(allow,
		    json_string(endpoint_defaults[i])) == -1)
			goto fail;
	for (i = 0; extra[i] != NULL; i++)
		if (json_array_append_new(allow, json_string(extra[i])) == -1)
			goto fail;
	if ((eps = json_object_get(prof, "endpoints")) == NULL) {
		if ((eps = json_object()) == NULL ||
		    json_object_set_new(prof, "endpoints", eps) == -1)
			goto fail;
	}
	return (json_object_set_new(eps, "allow", allow));
fail:
	json_decref(allow);
	return (-1);
}

/*
 * The profile object of preset name (without "preset:"): a new reference.
 * NULL with *unknown set when there is no such preset, else out of memory.
 */
json_t *
preset_profile(const char *name, int *unknown)
{
	const struct preset	*ps;
	json_t			*prof;

	*unknown = 0;
	if ((ps = preset_find(name)) == NULL) {
		*unknown = 1;
		return (NULL);
	}
	if ((prof = jf_loadb(ps->text, strlen(ps->text),
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return (NULL);
	if (ps->extra != NULL && preset_extend_allow(prof, ps->extra) == -1) {
		json_decref(prof);
		return (NULL);
	}
	return (prof);
}

/* The names of the presets, for messages: "a, b, c". */
void
preset_names(char *buf, size_t len)
{
	size_t	i, o = 0;
	int	n;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < NPRESETS && o < len; i++) {
		n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "",
		    presets[i].name);
		if (n < 0)
			return;
		o += n;
	}
}

/* The preset's profile as indented JSON (malloc'd), or NULL. */
char *
policy_preset_text(const char *name)
{
	json_t	*prof;
	char	*s;
	int	 unknown;

	if (strncmp(name, POLICY_PRESET_PREFIX,
	    sizeof(POLICY_PRESET_PREFIX) - 1) == 0)
		name += sizeof(POLICY_PRESET_PREFIX) - 1;
	if ((prof = preset_profile(name, &unknown)) == NULL)
		return (NULL);
	s = json_dumps(prof, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(prof);
	return (s);
}

/* The name of preset i (0-based), or NULL past the last. */
const char *
policy_preset_name(size_t i)
{
	return (i < NPRESETS ? presets[i].name : NULL);
}
