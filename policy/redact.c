/*
 * Redaction of inspect answers about objects the caller does not own
 * (profile key "redact"): environment values, mount sources and network
 * addresses are blanked; the JSON keeps its shape so clients still parse it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy-int.h"

static int	 redact_str(json_t *, const char *);
static void	 redact_env(json_t *);
static void	 redact_mounts(json_t *);
static void	 redact_endpoint(json_t *);
static void	 redact_network(json_t *);

/* Blank a string member if it is there. */
static int
redact_str(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) == 0)
		return 0;
	return json_object_set_new(o, key, json_string(""));
}

/* Config.Env: keep the names, drop the values. */
static void
redact_env(json_t *root)
{
	json_t		*env = json_object_get(json_object_get(root, "Config"),
			    "Env");
	json_t		*v;
	size_t		 i;
	const char	*s, *eq;
	char		*name;

	json_array_foreach(env, i, v) {
		if (!json_is_string(v))
			continue;
		s = json_string_value(v);
		if ((eq = strchr(s, '=')) == NULL)
			continue;
		if ((name = strndup(s, (size_t)(eq - s) + 1)) == NULL)
			continue;
		json_array_set_new(env, i, json_string(name));
		free(name);
	}
}

/* Mount sources of a container, and a volume's mount point. */
static void
redact_mounts(json_t *root)
{
	json_t		*mounts = json_object_get(root, "Mounts");
	json_t		*binds, *m, *v;
	size_t		 i;
	const char	*s, *colon;

	json_array_foreach(mounts, i, m) {
		redact_str(m, "Source");
		redact_str(m, "Name");
	}
	binds = json_object_get(json_object_get(root, "HostConfig"), "Binds");
	json_array_foreach(binds, i, v) {
		if (!json_is_string(v))
			continue;
		s = json_string_value(v);
		colon = strchr(s, ':');
		json_array_set_new(binds, i, json_string(colon ? colon : ""));
	}
	mounts = json_object_get(json_object_get(root, "HostConfig"),
	    "Mounts");
	json_array_foreach(mounts, i, m)
		redact_str(m, "Source");
	redact_str(root, "Mountpoint");		/* volume inspect */
	redact_str(root, "ResolvConfPath");
	redact_str(root, "HostnamePath");
	redact_str(root, "HostsPath");
	redact_str(root, "LogPath");
	if (json_is_object(json_object_get(root, "GraphDriver")))
		json_object_set_new(json_object_get(root, "GraphDriver"),
		    "Data", json_object());
	if (json_is_object(json_object_get(root, "Options")) &&
	    json_object_get(root, "Mountpoint") != NULL)
		json_object_set_new(root, "Options", json_object());
}

/* The address fields of one endpoint. */
static void
redact_endpoint(json_t *ep)
{
	static const char *const keys[] = {
		"IPAddress", "Gateway", "MacAddress", "GlobalIPv6Address",
		"IPv6Gateway", "LinkLocalIPv6Address", "IPv4Address",
		"IPv6Address", "EndpointID", "SandboxKey",
	};
	size_t	 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		redact_str(ep, keys[i]);
	if (json_object_get(ep, "IPAMConfig") != NULL)
		json_object_set_new(ep, "IPAMConfig", json_null());
}

/* Addresses in container and network inspect answers. */
static void
redact_network(json_t *root)
{
	json_t		*ns = json_object_get(root, "NetworkSettings");
	json_t		*nets, *ep, *cfg;
	const char	*k;
	size_t		 i;

	if (json_is_object(ns)) {
		redact_endpoint(ns);
		nets = json_object_get(ns, "Networks");
		json_object_foreach(nets, k, ep)
			redact_endpoint(ep);
		if (json_object_get(ns, "Ports") != NULL)
			json_object_set_new(ns, "Ports", json_object());
	}
	/* Network inspect: its containers' endpoints and its IPAM. */
	nets = json_object_get(root, "Containers");
	if (json_is_object(nets) && json_object_get(root, "IPAM") != NULL) {
		json_object_foreach(nets, k, ep)
			redact_endpoint(ep);
		cfg = json_object_get(json_object_get(root, "IPAM"), "Config");
		json_array_foreach(cfg, i, ep) {
			redact_str(ep, "Subnet");
			redact_str(ep, "Gateway");
			redact_str(ep, "IPRange");
		}
	}
}

/*
 * Redact a JSON inspect answer for profile pp. Returns a new body in *out
 * (and its length), or -1 when the body is not a JSON object (the daemon
 * then withholds it) or nothing needs redacting (*out NULL, 0 returned).
 */
int
policy_redact(const struct policy_profile *pp, const char *body, size_t len,
    char **out, size_t *outlen)
{
	json_t		*root;
	json_error_t	 err;
	int		 env, mounts, net;

	*out = NULL;
	*outlen = 0;
	env = policy_profile_redacts(pp, "env");
	mounts = policy_profile_redacts(pp, "mounts");
	net = policy_profile_redacts(pp, "network");
	if (!env && !mounts && !net)
		return 0;
	root = jf_loadb(body, len, JSON_DISABLE_EOF_CHECK, &err);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	if (env)
		redact_env(root);
	if (mounts)
		redact_mounts(root);
	if (net)
		redact_network(root);
	*out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (*out == NULL)
		return -1;
	*outlen = strlen(*out);
	return 0;
}
