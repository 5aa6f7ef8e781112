/*
 * Policy loading: strict JSON, validation, extends chains, identities.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

#define LOAD_MAX_FILE	(4 * 1024 * 1024)

/* What the chain set explicitly, for the default-above-max rule. */
struct load_seen {
	int	 mem_default, pids_default, cpus_default;
};

enum load_ktype {
	K_BOOL,
	K_LIST,
	K_SIZES,
	K_PIDS,
	K_CPUS,
	K_PORTS,
	K_RATE,
	K_ENDPOINTS,
	K_EXTENDS,
};

enum load_lkind {
	L_PLAIN,
	L_IMAGE,
	L_CAP,
	L_PATH,
	L_REDACT,
};

struct load_key {
	const char	*name;
	enum load_ktype	 type;
	size_t		 off;
	enum load_lkind	 kind;
};

#define PB(f)	K_BOOL, offsetof(struct policy_profile, f), L_PLAIN
#define PL(f, k) K_LIST, offsetof(struct policy_profile, f), k

static const struct load_key load_keys[] = {
	{ "extends", K_EXTENDS, 0, L_PLAIN },
	{ "unrestricted", PB(unrestricted) },
	{ "privileged", PB(privileged) },
	{ "host_namespaces", PB(host_namespaces) },
	{ "devices", PB(devices) },
	{ "unconfined", PB(unconfined) },
	{ "cgroup_parent", PB(cgroup_parent) },
	{ "build", PB(build) },
	{ "buildkit", PB(buildkit) },
	{ "image_import", PB(image_import) },
	{ "image_load", PB(image_load) },
	{ "plugins", PB(plugins) },
	{ "swarm", PB(swarm) },
	{ "read_others", PB(read_others) },
	{ "read_exfiltration", PB(read_others) },	/* the name */
	{ "drop_all_capabilities", PB(drop_all_capabilities) },
	{ "run_as_non_root", PB(run_as_non_root) },
	{ "no_new_privileges", PB(no_new_privileges) },
	{ "read_only_rootfs", PB(read_only_rootfs) },
	{ "ownership", PB(ownership) },
	{ "trusted_registries", PL(trusted_registries, L_IMAGE) },
	{ "local_images", PL(local_images, L_IMAGE) },
	{ "capabilities", PL(capabilities, L_CAP) },
	{ "host_paths", PL(host_paths, L_PATH) },
	{ "sysctls", PL(sysctls, L_PLAIN) },
	{ "runtimes", PL(runtimes, L_PLAIN) },
	{ "network_drivers", PL(network_drivers, L_PLAIN) },
	{ "redact", PL(redact, L_REDACT) },
	{ "owner_sees", PL(owner_sees, L_PLAIN) },
	{ "memory", K_SIZES, 0, L_PLAIN },
	{ "pids", K_PIDS, 0, L_PLAIN },
	{ "cpus", K_CPUS, 0, L_PLAIN },
	{ "published_ports", K_PORTS, 0, L_PLAIN },
	{ "rate", K_RATE, 0, L_PLAIN },
	{ "endpoints", K_ENDPOINTS, 0, L_PLAIN },
};

/* Format a key path (vsnprintf: truncation is fine, paths are bounded). */
static void __attribute__((__format__(__printf__, 3, 4)))
load_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Fill err with a key path error. */
static void __attribute__((__format__(__printf__, 4, 5)))
load_err(struct policy_error *err, const char *src, const char *path,
    const char *fmt, ...)
{
	char	msg[384];
	va_list	ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err->line = err->column = 0;
	snprintf(err->path, sizeof(err->path), "%s", path);
	if (path[0] != '\0')
		snprintf(err->text, sizeof(err->text), "%s: %s: %s", src,
		    path, msg);
	else
		snprintf(err->text, sizeof(err->text), "%s: %s", src, msg);
}

/* The name of a JSON type for messages. */
static const char *
load_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return ("an object");
	case JSON_ARRAY:
		return ("an array");
	case JSON_STRING:
		return ("a string");
	case JSON_INTEGER:
		return ("an integer");
	case JSON_REAL:
		return ("a number");
	case JSON_TRUE:
	case JSON_FALSE:
		return ("a boolean");
	case JSON_NULL:
		return ("null");
	}
	return ("unknown");
}

/* Normalise and validate one list entry. */
static int
load_list_entry(enum load_lkind kind, const char *s, char *out, size_t len,
    const char **why)
{
	size_t	i;

	if (s[0] == '\0' || strlen(s) >= POLICY_MAX_STRING) {
		*why = "empty or too long";
		return (-1);
	}
	switch (kind) {
	case L_PLAIN:
		for (i = 0; s[i] != '\0'; i++)
			if (isspace((unsigned char)s[i]) ||
			    iscntrl((unsigned char)s[i])) {
				*why = "contains white space";
				return (-1);
			}
		snprintf(out, len, "%s", s);
		return (0);
	case L_IMAGE:
		if (imageref_prefix(s, out, len) == -1) {
			*why = "not a registry or repository prefix";
			return (-1);
		}
		return (0);
	case L_CAP:
		if (strncasecmp(s, "CAP_", 4) == 0)
			s += 4;
		if (s[0] == '\0' || strlen(s) >= len) {
			*why = "not a capability name";
			return (-1);
		}
		for (i = 0; s[i] != '\0'; i++) {
			if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
				*why = "not a capability name";
				return (-1);
			}
			out[i] = toupper((unsigned char)s[i]);
		}
		out[i] = '\0';
		return (0);
	case L_PATH:
		if (hostpath_clean(s, out, len) == -1) {
			*why = "not a clean absolute path";
			return (-1);
		}
		return (0);
	case L_REDACT:
		if (strcmp(s, "env") != 0 && strcmp(s, "mounts") != 0 &&
		    strcmp(s, "network") != 0) {
			*why = "must be \"env\", \"mounts\" or \"network\"";
			return (-1);
		}
		snprintf(out, len, "%s", s);
		return (0);
	}
	return (-1);
}

/* Parse a list key into l (replacing it). */
static int
load_list(struct strlist *l, enum load_lkind kind, json_t *v,
    const char *src, const char *path, struct policy_error *err)
{
	char		 buf[POLICY_MAX_STRING], p[256];
	const char	*why;
	size_t		 i;
	json_t		*e;

	if (!json_is_array(v)) {
		load_err(err, src, path, "must be an array of strings, not %s",
		    load_type(v));
		return (-1);
	}
	if (json_array_size(v) > POLICY_MAX_LIST) {
		load_err(err, src, path, "more than %d entries",
		    POLICY_MAX_LIST);
		return (-1);
	}
	strlist_free(l);
	json_array_foreach(v, i, e) {
		load_path(p, sizeof(p), "%s[%zu]", path, i);
		if (!json_is_string(e)) {
			load_err(err, src, p, "must be a string, not %s",
			    load_type(e));
			return (-1);
		}
		why = "invalid";
		if (load_list_entry(kind, json_string_value(e), buf,
		    sizeof(buf), &why) == -1) {
			load_err(err, src, p, "\"%s\": %s",
			    json_string_value(e), why);
			return (-1);
		}
		if (strlist_add(l, buf) == -1) {
			load_err(err, src, p, "out of memory");
			return (-1);
		}
	}
	return (0);
}

/* Parse a size: an integer of bytes or a size string. */
static int
load_size(json_t *v, int64_t *out, const char *src, const char *path,
    struct policy_error *err)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return (0);
	}
	if (json_is_string(v) &&
	    profile_parse_size(json_string_value(v), out) == 0)
		return (0);
	if (json_is_string(v))
		load_err(err, src, path, "bad size \"%s\" (use bytes or a"
		    " number with k, m, g or t)", json_string_value(v));
	else
		load_err(err, src, path, "must be a size (integer or string),"
		    " not %s", load_type(v));
	return (-1);
}

/* Parse a CPU count into nano CPUs. */
static int
load_cpus(json_t *v, int64_t *out, const char *src, const char *path,
    struct policy_error *err)
{
	double	 d;
	char	*end;

	if (json_is_number(v))
		d = json_number_value(v);
	else if (json_is_string(v)) {
		errno = 0;
		d = strtod(json_string_value(v), &end);
		if (errno != 0 || end == json_string_value(v) || *end != '\0')
			d = -1;
	} else {
		load_err(err, src, path, "must be a number of CPUs, not %s",
		    load_type(v));
		return (-1);
	}
	if (!(d > 0) || d > 1e6) {
		load_err(err, src, path, "must be a positive number of CPUs");
		return (-1);
	}
	*out = (int64_t)(d * 1e9 + 0.5);
	return (0);
}

/* Check an object's keys against a list of names. */
static int
load_keys_only(json_t *o, const char *const *names, const char *src,
    const char *path, struct policy_error *err)
{
	const char	*k;
	json_t		*v;
	size_t		 i;
	char		 p[256];

	json_object_foreach(o, k, v) {
		for (i = 0; names[i] != NULL; i++)
			if (strcmp(names[i], k) == 0)
				break;
		if (names[i] == NULL) {
			load_path(p, sizeof(p), "%s%s%s", path,
			    path[0] != '\0' ? "." : "", k);
			load_err(err, src, p, "unknown key");
			return (-1);
		}
	}
	return (0);
}

/* Apply the {default,max} sub-keys of memory, pids or cpus. */
static int
load_limits(struct policy_profile *p, enum load_ktype t, json_t *v,
    struct load_seen *seen, const char *src, const char *path,
    struct policy_error *err)
{
	static const char *const names[] = { "default", "max", NULL };
	int64_t		*dp, *mp, val;
	int		*sp;
	const char	*k;
	json_t		*e;
	char		 pp[256];

	if (!json_is_object(v)) {
		load_err(err, src, path, "must be an object with \"default\""
		    " and/or \"max\", not %s", load_type(v));
		return (-1);
	}
	if (load_keys_only(v, names, src, path, err) == -1)
		return (-1);
	switch (t) {
	case K_SIZES:
		dp = &p->mem_default;
		mp = &p->mem_max;
		sp = &seen->mem_default;
		break;
	case K_PIDS:
		dp = &p->pids_default;
		mp = &p->pids_max;
		sp = &seen->pids_default;
		break;
	default:
		dp = &p->cpus_default;
		mp = &p->cpus_max;
		sp = &seen->cpus_default;
		break;
	}
	json_object_foreach(v, k, e) {
		load_path(pp, sizeof(pp), "%s.%s", path, k);
		if (t == K_SIZES) {
			if (load_size(e, &val, src, pp, err) == -1)
				return (-1);
			if (val == 0) {
				load_err(err, src, pp, "must be above 0");
				return (-1);
			}
		} else if (t == K_PIDS) {
			if (!json_is_integer(e) || json_integer_value(e) <= 0) {
				load_err(err, src, pp, "must be a positive"
				    " integer");
				return (-1);
			}
			val = json_integer_value(e);
		} else if (load_cpus(e, &val, src, pp, err) == -1)
			return (-1);
		if (strcmp(k, "default") == 0) {
			*dp = val;
			*sp = 1;
		} else
			*mp = val;
	}
	return (0);
}

/* Apply the rate sub-keys. */
static int
load_rate(struct policy_profile *p, json_t *v, const char *src,
    const char *path, struct policy_error *err)
{
	static const char *const names[] = { "requests_per_second", "burst",
	    "concurrent", NULL };
	const char	*k;
	json_t		*e;
	char		 pp[256];

	if (!json_is_object(v)) {
		load_err(err, src, path, "must be an object, not %s",
		    load_type(v));
		return (-1);
	}
	if (load_keys_only(v, names, src, path, err) == -1)
		return (-1);
	json_object_foreach(v, k, e) {
		load_path(pp, sizeof(pp), "%s.%s", path, k);
		if (strcmp(k, "requests_per_second") == 0) {
			if (!json_is_number(e) || !(json_number_value(e) > 0)) {
				load_err(err, src, pp, "must be a positive"
				    " number");
				return (-1);
			}
			p->rate_rps = json_number_value(e);
		} else {
			if (!json_is_integer(e) || json_integer_value(e) <= 0) {
				load_err(err, src, pp, "must be a positive"
				    " integer");
				return (-1);
			}
			if (strcmp(k, "burst") == 0)
				p->rate_burst = json_integer_value(e);
			else
				p->rate_concurrent = json_integer_value(e);
		}
	}
	return (0);
}

/* Apply the endpoints sub-keys, validating each pattern. */
static int
load_endpoints(struct policy_profile *p, json_t *v, const char *src,
    const char *path, struct policy_error *err)
{
	static const char *const names[] = { "allow", "deny", NULL };
	const char	*k, *why;
	json_t		*e;
	char		 pp[256], ep[256];
	struct strlist	*l;
	size_t		 i;

	if (!json_is_object(v)) {
		load_err(err, src, path, "must be an object with \"allow\""
		    " and/or \"deny\", not %s", load_type(v));
		return (-1);
	}
	if (load_keys_only(v, names, src, path, err) == -1)
		return (-1);
	json_object_foreach(v, k, e) {
		load_path(pp, sizeof(pp), "%s.%s", path, k);
		l = strcmp(k, "allow") == 0 ? &p->ep_allow : &p->ep_deny;
		if (!json_is_array(e)) {
			load_err(err, src, pp, "must be an array of strings,"
			    " not %s", load_type(e));
			return (-1);
		}
		strlist_free(l);
		for (i = 0; i < json_array_size(e); i++) {
			json_t	*s = json_array_get(e, i);

			load_path(ep, sizeof(ep), "%s[%zu]", pp, i);
			if (!json_is_string(s)) {
				load_err(err, src, ep, "must be a string, not"
				    " %s", load_type(s));
				return (-1);
			}
			why = "invalid";
			if (endpoint_valid(json_string_value(s), &why) == -1) {
				load_err(err, src, ep, "\"%s\": %s (use"
				    " \"METHOD /path\" with * and **)",
				    json_string_value(s), why);
				return (-1);
			}
			if (strlist_add(l, json_string_value(s)) == -1) {
				load_err(err, src, ep, "out of memory");
				return (-1);
			}
		}
		if (l == &p->ep_allow)
			p->ep_allow_set = 1;
	}
	return (0);
}

/* Validate one profile object and apply its keys onto p. */
static int
load_apply(struct policy_profile *p, json_t *o, const char *pname,
    struct load_seen *seen, const char *src, struct policy_error *err)
{
	const struct load_key	*lk;
	const char		*k, *s;
	json_t			*v;
	size_t			 i;
	char			 path[256];

	if (json_object_get(o, "read_others") != NULL &&
	    json_object_get(o, "read_exfiltration") != NULL) {
		load_path(path, sizeof(path), "profiles.%s.read_exfiltration",
		    pname);
		load_err(err, src, path, "is another name for \"read_others\";"
		    " set one of them");
		return (-1);
	}
	json_object_foreach(o, k, v) {
		load_path(path, sizeof(path), "profiles.%s.%s", pname, k);
		lk = NULL;
		for (i = 0; i < sizeof(load_keys) / sizeof(load_keys[0]); i++)
			if (strcmp(load_keys[i].name, k) == 0)
				lk = &load_keys[i];
		if (lk == NULL) {
			load_err(err, src, path, "unknown key");
			return (-1);
		}
		switch (lk->type) {
		case K_EXTENDS:
			if (!json_is_string(v)) {
				load_err(err, src, path, "must be a profile"
				    " name (string), not %s", load_type(v));
				return (-1);
			}
			break;
		case K_BOOL:
			if (!json_is_boolean(v)) {
				load_err(err, src, path, "must be true or"
				    " false, not %s", load_type(v));
				return (-1);
			}
			*(int *)((char *)p + lk->off) = json_is_true(v);
			break;
		case K_LIST:
			if (load_list((struct strlist *)((char *)p + lk->off),
			    lk->kind, v, src, path, err) == -1)
				return (-1);
			break;
		case K_SIZES:
		case K_PIDS:
		case K_CPUS:
			if (load_limits(p, lk->type, v, seen, src, path,
			    err) == -1)
				return (-1);
			break;
		case K_PORTS:
			s = json_is_string(v) ? json_string_value(v) : "";
			if (strcmp(s, "any") == 0)
				p->ports = PORTS_ANY;
			else if (strcmp(s, "loopback") == 0)
				p->ports = PORTS_LOOPBACK;
			else if (strcmp(s, "none") == 0)
				p->ports = PORTS_NONE;
			else {
				load_err(err, src, path, "must be \"any\","
				    " \"loopback\" or \"none\"");
				return (-1);
			}
			break;
		case K_RATE:
			if (load_rate(p, v, src, path, err) == -1)
				return (-1);
			break;
		case K_ENDPOINTS:
			if (load_endpoints(p, v, src, path, err) == -1)
				return (-1);
			break;
		}
	}
	return (0);
}

/* Find a profile by name in the raw profiles object; its index or -1. */
static ssize_t
load_profile_index(json_t *profiles, const char *name)
{
	const char	*k;
	json_t		*v;
	ssize_t		 i = 0;

	json_object_foreach(profiles, k, v) {
		if (strcmp(k, name) == 0)
			return (i);
		i++;
	}
	return (-1);
}

/* Resolve the effective profile idx: walk to the root, apply root first. */
static int
load_resolve(struct policy *pol, json_t *profiles, json_t **raw,
    const char **names, size_t idx, const char *src, struct policy_error *err)
{
	struct policy_profile	*p = &pol->profiles[idx];
	struct load_seen	 seen;
	size_t			 chain[POLICY_MAX_PROFILES], n = 0, i;
	ssize_t			 cur = idx, parent;
	json_t			*ext;
	char			 path[256];
	char			 a[32], b[32];

	for (;;) {
		for (i = 0; i < n; i++)
			if (chain[i] == (size_t)cur) {
				load_path(path, sizeof(path),
				    "profiles.%s.extends", names[idx]);
				load_err(err, src, path, "extends cycle"
				    " through profile \"%s\"", names[cur]);
				return (-1);
			}
		if (n >= POLICY_MAX_PROFILES)
			return (-1);
		chain[n++] = cur;
		ext = json_object_get(raw[cur], "extends");
		if (ext == NULL)
			break;
		parent = load_profile_index(profiles, json_string_value(ext));
		if (parent < 0) {
			load_path(path, sizeof(path), "profiles.%s.extends",
			    names[cur]);
			load_err(err, src, path, "unknown profile \"%s\"",
			    json_string_value(ext));
			return (-1);
		}
		cur = parent;
	}
	if (profile_builtin(p, names[idx]) == -1) {
		load_err(err, src, "", "out of memory");
		return (-1);
	}
	memset(&seen, 0, sizeof(seen));
	while (n > 0) {
		n--;
		if (load_apply(p, raw[chain[n]], names[chain[n]], &seen, src,
		    err) == -1)
			return (-1);
	}
	snprintf(p->name, sizeof(p->name), "%s", names[idx]);
	if (p->mem_default > p->mem_max) {
		if (seen.mem_default) {
			profile_fmt_size(a, sizeof(a), p->mem_default);
			profile_fmt_size(b, sizeof(b), p->mem_max);
			load_path(path, sizeof(path), "profiles.%s.memory",
			    names[idx]);
			load_err(err, src, path, "default %s is above max %s",
			    a, b);
			return (-1);
		}
		p->mem_default = p->mem_max;
	}
	if (p->pids_default > p->pids_max) {
		if (seen.pids_default) {
			load_path(path, sizeof(path), "profiles.%s.pids",
			    names[idx]);
			load_err(err, src, path, "default %lld is above max"
			    " %lld", (long long)p->pids_default,
			    (long long)p->pids_max);
			return (-1);
		}
		p->pids_default = p->pids_max;
	}
	if (p->cpus_max != 0 && (p->cpus_default == 0 ||
	    p->cpus_default > p->cpus_max)) {
		if (seen.cpus_default && p->cpus_default != 0) {
			load_path(path, sizeof(path), "profiles.%s.cpus",
			    names[idx]);
			load_err(err, src, path, "default is above max");
			return (-1);
		}
		p->cpus_default = p->cpus_max;
	}
	return (0);
}

/* Parse the identities array. */
static int
load_identities(struct policy *pol, json_t *ids, json_t *profiles,
    const char *src, struct policy_error *err)
{
	static const char *const keys[] = { "match", "profile", NULL };
	static const char *const mkeys[] = { "listener", "uid", "gid",
	    "cert_cn", NULL };
	struct policy_ident	*id;
	json_t			*e, *m, *v;
	const char		*k;
	char			 path[256], pp[256];
	size_t			 i;
	ssize_t			 pi;

	if (!json_is_array(ids)) {
		load_err(err, src, "identities", "must be an array, not %s",
		    load_type(ids));
		return (-1);
	}
	if (json_array_size(ids) > POLICY_MAX_IDENTITIES) {
		load_err(err, src, "identities", "too many entries");
		return (-1);
	}
	if (json_array_size(ids) > 0 && (pol->idents = calloc(
	    json_array_size(ids), sizeof(*pol->idents))) == NULL) {
		load_err(err, src, "identities", "out of memory");
		return (-1);
	}
	json_array_foreach(ids, i, e) {
		load_path(path, sizeof(path), "identities[%zu]", i);
		if (!json_is_object(e)) {
			load_err(err, src, path, "must be an object, not %s",
			    load_type(e));
			return (-1);
		}
		if (load_keys_only(e, keys, src, path, err) == -1)
			return (-1);
		id = &pol->idents[pol->nidents++];
		m = json_object_get(e, "match");
		load_path(pp, sizeof(pp), "%s.match", path);
		if (m == NULL || !json_is_object(m)) {
			load_err(err, src, pp, m == NULL ? "missing" :
			    "must be an object");
			return (-1);
		}
		if (load_keys_only(m, mkeys, src, pp, err) == -1)
			return (-1);
		json_object_foreach(m, k, v) {
			load_path(pp, sizeof(pp), "%s.match.%s", path, k);
			if (strcmp(k, "uid") == 0 || strcmp(k, "gid") == 0) {
				if (!json_is_integer(v) ||
				    json_integer_value(v) < 0 ||
				    json_integer_value(v) > 4294967294LL) {
					load_err(err, src, pp, "must be a"
					    " numeric id, not %s",
					    load_type(v));
					return (-1);
				}
				if (k[0] == 'u') {
					id->has_uid = 1;
					id->uid = json_integer_value(v);
				} else {
					id->has_gid = 1;
					id->gid = json_integer_value(v);
				}
				continue;
			}
			if (!json_is_string(v) ||
			    json_string_length(v) == 0) {
				load_err(err, src, pp, "must be a non-empty"
				    " string");
				return (-1);
			}
			if ((k[0] == 'l' ? (id->listener =
			    strdup(json_string_value(v))) : (id->cert_cn =
			    strdup(json_string_value(v)))) == NULL) {
				load_err(err, src, pp, "out of memory");
				return (-1);
			}
		}
		v = json_object_get(e, "profile");
		load_path(pp, sizeof(pp), "%s.profile", path);
		if (v == NULL || !json_is_string(v)) {
			load_err(err, src, pp, v == NULL ? "missing" :
			    "must be a profile name (string)");
			return (-1);
		}
		if ((pi = load_profile_index(profiles,
		    json_string_value(v))) < 0) {
			load_err(err, src, pp, "unknown profile \"%s\"",
			    json_string_value(v));
			return (-1);
		}
		id->profile = pi;
	}
	return (0);
}

/* Free a policy and everything it owns. */
static void
load_free(struct policy *pol)
{
	size_t	i;

	for (i = 0; i < pol->nprofiles; i++)
		profile_free(&pol->profiles[i]);
	free(pol->profiles);
	for (i = 0; i < pol->nidents; i++) {
		free(pol->idents[i].listener);
		free(pol->idents[i].cert_cn);
	}
	free(pol->idents);
	profile_free(&pol->builtin);
	free(pol->source);
	free(pol);
}

/* A preset name when s is "preset:NAME", else NULL. */
static const char *
load_preset_name(const json_t *s)
{
	const char	*v;

	if (s == NULL || !json_is_string(s))
		return (NULL);
	v = json_string_value(s);
	if (strncmp(v, POLICY_PRESET_PREFIX,
	    sizeof(POLICY_PRESET_PREFIX) - 1) != 0)
		return (NULL);
	return (v + sizeof(POLICY_PRESET_PREFIX) - 1);
}

/* Add the preset ref names (at path) to profiles unless it is there. */
static int
load_add_preset(json_t *profiles, const json_t *ref, const char *src,
    const char *path, struct policy_error *err)
{
	const char	*name = load_preset_name(ref);
	json_t		*prof;
	char		 known[256];
	int		 unknown;

	if (name == NULL ||
	    json_object_get(profiles, json_string_value(ref)) != NULL)
		return (0);
	if ((prof = preset_profile(name, &unknown)) == NULL) {
		if (unknown) {
			preset_names(known, sizeof(known));
			load_err(err, src, path, "unknown preset \"%s\""
			    " (presets: %s)", name, known);
		} else
			load_err(err, src, path, "out of memory");
		return (-1);
	}
	if (json_object_size(profiles) >= POLICY_MAX_PROFILES) {
		json_decref(prof);
		load_err(err, src, "profiles", "too many profiles");
		return (-1);
	}
	if (json_object_set_new(profiles, json_string_value(ref), prof) ==
	    -1) {
		load_err(err, src, path, "out of memory");
		return (-1);
	}
	return (0);
}

/*
 * The user's profiles plus every built-in preset the policy names (in
 * extends, default_profile or an identity), appended in order of first
 * use: a new reference. Presets are ordinary profiles from then on.
 */
static json_t *
load_with_presets(json_t *root, json_t *user, const char *src,
    struct policy_error *err)
{
	json_t		*all, *v, *ids, *e;
	const char	*k;
	char		 path[256];
	size_t		 i, before;

	json_object_foreach(user, k, v)
		if (strncmp(k, POLICY_PRESET_PREFIX,
		    sizeof(POLICY_PRESET_PREFIX) - 1) == 0) {
			load_path(path, sizeof(path), "profiles.%s", k);
			load_err(err, src, path, "names starting with \""
			    POLICY_PRESET_PREFIX "\" are reserved for the"
			    " built-in presets");
			return (NULL);
		}
	if ((all = json_object()) == NULL ||
	    json_object_update(all, user) == -1) {
		json_decref(all);
		load_err(err, src, "", "out of memory");
		return (NULL);
	}
	if (load_add_preset(all, json_object_get(root, "default_profile"),
	    src, "default_profile", err) == -1)
		goto fail;
	ids = json_object_get(root, "identities");
	if (json_is_array(ids))
		json_array_foreach(ids, i, e) {
			load_path(path, sizeof(path), "identities[%zu].profile",
			    i);
			if (json_is_object(e) && load_add_preset(all,
			    json_object_get(e, "profile"), src, path,
			    err) == -1)
				goto fail;
		}
	/* Presets may extend presets: repeat until nothing is added. */
	do {
		before = json_object_size(all);
		json_object_foreach(all, k, v) {
			load_path(path, sizeof(path), "profiles.%s.extends", k);
			if (json_is_object(v) && load_add_preset(all,
			    json_object_get(v, "extends"), src, path,
			    err) == -1)
				goto fail;
			if (json_object_size(all) != before)
				break;
		}
	} while (json_object_size(all) != before);
	return (all);
fail:
	json_decref(all);
	return (NULL);
}

/* Every name in an owner_sees list is a profile of the policy. */
static int
load_owner_sees(struct policy *pol, json_t *profiles, const char *src,
    struct policy_error *err)
{
	const struct policy_profile	*p;
	char				 path[256];
	size_t				 i, k;

	for (i = 0; i < pol->nprofiles; i++) {
		p = &pol->profiles[i];
		for (k = 0; k < p->owner_sees.n; k++) {
			if (load_profile_index(profiles, p->owner_sees.v[k]) >=
			    0)
				continue;
			load_path(path, sizeof(path), "profiles.%s.owner_sees",
			    p->name);
			load_err(err, src, path, "unknown profile \"%s\"",
			    p->owner_sees.v[k]);
			return (-1);
		}
	}
	return (0);
}

/* Build a policy from its parsed root object. */
static int
load_root(struct policy *pol, json_t *root, const char *src,
    struct policy_error *err)
{
	static const char *const keys[] = { "version", "default_profile",
	    "identities", "profiles", NULL };
	json_t			*profiles, *v, *empty = NULL, **raw = NULL;
	const char		**names = NULL, *k;
	size_t			 n, i;
	char			 path[256];
	struct policy_profile	 scratch;
	struct load_seen	 seen;
	ssize_t			 di;
	int			 rc = -1;

	if (!json_is_object(root)) {
		load_err(err, src, "", "the policy must be a JSON object");
		return (-1);
	}
	if (load_keys_only(root, keys, src, "", err) == -1)
		return (-1);
	v = json_object_get(root, "version");
	if (v == NULL || !json_is_integer(v) || json_integer_value(v) != 1) {
		load_err(err, src, "version", v == NULL ? "missing (must be"
		    " 1)" : "must be 1");
		return (-1);
	}
	v = json_object_get(root, "profiles");
	if (v != NULL && !json_is_object(v)) {
		load_err(err, src, "profiles", "must be an object, not %s",
		    load_type(v));
		return (-1);
	}
	if (v == NULL && (v = empty = json_object()) == NULL) {
		load_err(err, src, "", "out of memory");
		return (-1);
	}
	profiles = load_with_presets(root, v, src, err);
	json_decref(empty);
	if (profiles == NULL)
		return (-1);
	n = json_object_size(profiles);
	if (n > POLICY_MAX_PROFILES) {
		load_err(err, src, "profiles", "too many profiles");
		goto out;
	}
	if (n > 0 && ((raw = calloc(n, sizeof(*raw))) == NULL ||
	    (names = calloc(n, sizeof(*names))) == NULL ||
	    (pol->profiles = calloc(n, sizeof(*pol->profiles))) == NULL)) {
		load_err(err, src, "", "out of memory");
		goto out;
	}
	i = 0;
	json_object_foreach(profiles, k, v) {
		load_path(path, sizeof(path), "profiles.%s", k);
		if (k[0] == '\0' || strlen(k) >= PROFILE_NAME_MAX) {
			load_err(err, src, path, "profile names are 1 to %d"
			    " characters", PROFILE_NAME_MAX - 1);
			goto out;
		}
		if (!json_is_object(v)) {
			load_err(err, src, path, "must be an object, not %s",
			    load_type(v));
			goto out;
		}
		raw[i] = v;
		names[i] = k;
		/* Validate every profile in file order. */
		profile_safe(&scratch);
		memset(&seen, 0, sizeof(seen));
		if (load_apply(&scratch, v, k, &seen, src, err) == -1) {
			profile_free(&scratch);
			goto out;
		}
		profile_free(&scratch);
		i++;
	}
	for (i = 0; i < n; i++) {
		pol->nprofiles = i + 1;
		if (load_resolve(pol, profiles, raw, names, i, src, err) == -1)
			goto out;
	}
	if (load_owner_sees(pol, profiles, src, err) == -1)
		goto out;
	if ((v = json_object_get(root, "default_profile")) != NULL) {
		if (!json_is_string(v)) {
			load_err(err, src, "default_profile", "must be a"
			    " profile name (string), not %s", load_type(v));
			goto out;
		}
		if ((di = load_profile_index(profiles,
		    json_string_value(v))) < 0) {
			load_err(err, src, "default_profile", "unknown"
			    " profile \"%s\"", json_string_value(v));
			goto out;
		}
		pol->has_default = 1;
		pol->default_profile = di;
	}
	if ((v = json_object_get(root, "identities")) != NULL &&
	    load_identities(pol, v, profiles, src, err) == -1)
		goto out;
	rc = 0;
out:
	free(raw);
	free(names);
	json_decref(profiles);
	return (rc);
}

/*
 * The key path at byte offset pos of a JSON text (jansson reports only
 * positions for syntax and duplicate errors): a small scanner that keeps
 * the stack of keys and indices up to pos.
 */
static void
load_locate(const char *text, size_t len, size_t pos, char *out, size_t olen)
{
	struct {
		int	 obj;
		size_t	 idx;
		char	 key[64];
	}		 st[32];
	size_t		 depth = 0, i, k, o;
	int		 want_key = 0, n;

	out[0] = '\0';
	if (pos > len)
		pos = len;
	for (i = 0; i < pos; i++) {
		switch (text[i]) {
		case '{':
		case '[':
			if (depth >= sizeof(st) / sizeof(st[0]))
				return;
			st[depth].obj = text[i] == '{';
			st[depth].idx = 0;
			st[depth].key[0] = '\0';
			depth++;
			want_key = text[i] == '{';
			break;
		case '}':
		case ']':
			if (depth > 0)
				depth--;
			want_key = 0;
			break;
		case ',':
			if (depth > 0 && st[depth - 1].obj)
				want_key = 1;
			else if (depth > 0)
				st[depth - 1].idx++;
			break;
		case ':':
			want_key = 0;
			break;
		case '"':
			for (k = 0, i++; i < len && text[i] != '"'; i++) {
				if (text[i] == '\\' && i + 1 < len)
					i++;
				if (want_key && depth > 0 &&
				    k + 1 < sizeof(st[0].key))
					st[depth - 1].key[k++] = text[i];
			}
			if (want_key && depth > 0)
				st[depth - 1].key[k] = '\0';
			break;
		}
	}
	for (i = 0, o = 0; i < depth && o < olen; i++) {
		if (st[i].obj && st[i].key[0] != '\0')
			n = snprintf(out + o, olen - o, "%s%s", o ? "." : "",
			    st[i].key);
		else if (!st[i].obj)
			n = snprintf(out + o, olen - o, "[%zu]", st[i].idx);
		else
			n = 0;
		if (n < 0)
			return;
		o += n;
	}
}

/* Load a policy from a buffer; name is used in messages. */
struct policy *
policy_load_buffer(const char *buf, size_t len, const char *name,
    struct policy_error *err)
{
	struct policy	*pol;
	json_t		*root;
	json_error_t	 jerr;
	const char	*src = name != NULL ? name : "policy";

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (buf == NULL || len > LOAD_MAX_FILE) {
		load_err(err, src, "", buf == NULL ? "no policy text" :
		    "policy file too large");
		return (NULL);
	}
	root = jf_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL && jf_oom_error(&jerr)) {
		load_err(err, src, "", "out of memory");
		return (NULL);
	}
	if (root == NULL) {
		if (err != NULL) {
			err->line = jerr.line > 0 ? jerr.line : 0;
			err->column = jerr.column > 0 ? jerr.column : 0;
			load_locate(buf, len, jerr.position > 0 ?
			    (size_t)jerr.position : 0, err->path,
			    sizeof(err->path));
			if (err->path[0] != '\0')
				snprintf(err->text, sizeof(err->text),
				    "%s:%d:%d: %s: %s", src, err->line,
				    err->column, err->path, jerr.text);
			else
				snprintf(err->text, sizeof(err->text),
				    "%s:%d:%d: %s", src, err->line,
				    err->column, jerr.text);
		}
		return (NULL);
	}
	if ((pol = calloc(1, sizeof(*pol))) == NULL ||
	    (pol->source = strdup(src)) == NULL) {
		free(pol);
		json_decref(root);
		load_err(err, src, "", "out of memory");
		return (NULL);
	}
	pol->refs = 1;
	if (profile_builtin(&pol->builtin, "builtin-safe") == -1 ||
	    load_root(pol, root, src, err) == -1) {
		if (err != NULL && err->text[0] == '\0')
			load_err(err, src, "", "out of memory");
		json_decref(root);
		load_free(pol);
		return (NULL);
	}
	json_decref(root);
	return (pol);
}

/* Load a policy file. */
struct policy *
policy_load_file(const char *path, struct policy_error *err)
{
	struct policy	*pol;
	FILE		*f;
	char		*buf;
	size_t		 len;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if ((f = fopen(path, "r")) == NULL) {
		load_err(err, path, "", "%s", strerror(errno));
		return (NULL);
	}
	if ((buf = malloc(LOAD_MAX_FILE + 1)) == NULL) {
		fclose(f);
		load_err(err, path, "", "out of memory");
		return (NULL);
	}
	len = fread(buf, 1, LOAD_MAX_FILE + 1, f);
	if (ferror(f)) {
		load_err(err, path, "", "read error");
		fclose(f);
		free(buf);
		return (NULL);
	}
	fclose(f);
	pol = policy_load_buffer(buf, len, path, err);
	free(buf);
	return (pol);
}

/* Take a reference. */
struct policy *
policy_ref(struct policy *pol)
{
	pol->refs++;
	return (pol);
}

/* Drop a reference; the last one frees the policy. */
void
policy_unref(struct policy *pol)
{
	if (pol != NULL && --pol->refs == 0)
		load_free(pol);
}

/* The profile for an identity: first matching entry, default, built-in. */
const struct policy_profile *
policy_resolve(const struct policy *pol, const struct policy_identity *who)
{
	const struct policy_ident	*id;
	struct policy_identity		 none;
	size_t				 i;

	if (who == NULL) {
		memset(&none, 0, sizeof(none));
		who = &none;
	}
	for (i = 0; i < pol->nidents; i++) {
		id = &pol->idents[i];
		if (id->listener != NULL && (who->listener == NULL ||
		    strcmp(id->listener, who->listener) != 0))
			continue;
		if (id->has_uid && (!who->has_cred || who->uid != id->uid))
			continue;
		if (id->has_gid && (!who->has_cred || who->gid != id->gid))
			continue;
		if (id->cert_cn != NULL && (who->cert_cn == NULL ||
		    strcmp(id->cert_cn, who->cert_cn) != 0))
			continue;
		return (&pol->profiles[id->profile]);
	}
	if (pol->has_default)
		return (&pol->profiles[pol->default_profile]);
	return (&pol->builtin);
}

/* A profile's name. */
const char *
policy_profile_name(const struct policy_profile *pp)
{
	return (pp->name);
}

/* Find a profile by name; NULL when the policy has none by that name. */
const struct policy_profile *
policy_profile_find(const struct policy *pol, const char *name)
{
	size_t	i;

	for (i = 0; i < pol->nprofiles; i++)
		if (strcmp(pol->profiles[i].name, name) == 0)
			return (&pol->profiles[i]);
	return (NULL);
}

/* A readable summary of the whole policy for --check. */
char *
policy_summary(const struct policy *pol)
{
	char		*buf = NULL, *s;
	size_t		 len = 0, i;
	FILE		*f;
	const struct policy_ident *id;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return (NULL);
	fprintf(f, "policy %s: %zu profile(s), %zu identity rule(s)\n",
	    pol->source, pol->nprofiles, pol->nidents);
	for (i = 0; i < pol->nidents; i++) {
		id = &pol->idents[i];
		fprintf(f, "  identity %zu:", i);
		if (id->listener != NULL)
			fprintf(f, " listener=%s", id->listener);
		if (id->has_uid)
			fprintf(f, " uid=%lu", (unsigned long)id->uid);
		if (id->has_gid)
			fprintf(f, " gid=%lu", (unsigned long)id->gid);
		if (id->cert_cn != NULL)
			fprintf(f, " cert_cn=%s", id->cert_cn);
		if (id->listener == NULL && !id->has_uid && !id->has_gid &&
		    id->cert_cn == NULL)
			fprintf(f, " (everyone)");
		fprintf(f, " -> %s\n", pol->profiles[id->profile].name);
	}
	fprintf(f, "  no match -> %s\n", pol->has_default ?
	    pol->profiles[pol->default_profile].name :
	    "built-in profile with every key at its safe value");
	for (i = 0; i < pol->nprofiles; i++) {
		if ((s = profile_summary(&pol->profiles[i])) == NULL) {
			fclose(f);
			free(buf);
			return (NULL);
		}
		fprintf(f, "%s", s);
		free(s);
	}
	if (fclose(f) != 0) {
		free(buf);
		return (NULL);
	}
	return (buf);
}

/* A permission or requirement key's value by name; -1 when unknown. */
int
policy_profile_flag(const struct policy_profile *pp, const char *key)
{
	size_t	i;

	for (i = 0; i < sizeof(load_keys) / sizeof(load_keys[0]); i++)
		if (load_keys[i].type == K_BOOL &&
		    strcmp(load_keys[i].name, key) == 0)
			return (*(const int *)((const char *)pp +
			    load_keys[i].off));
	return (-1);
}

/* The rate limits of a profile; 0 when it has none. */
int
policy_profile_rate(const struct policy_profile *pp, struct policy_rate *r)
{
	memset(r, 0, sizeof(*r));
	r->requests_per_second = pp->rate_rps;
	r->burst = pp->rate_burst;
	r->concurrent = pp->rate_concurrent;
	return (pp->rate_rps > 0 || pp->rate_burst > 0 ||
	    pp->rate_concurrent > 0);
}

/* Does the profile redact this part ("env", "mounts", "network")? */
int
policy_profile_redacts(const struct policy_profile *pp, const char *what)
{
	return (strlist_has(&pp->redact, what));
}
