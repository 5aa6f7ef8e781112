/*
 * Container create, update and exec create: the engine's view of the
 * body (wrapper with deprecated top-level host fields), every check of
 * the profile, injected defaults, one canonical body forwarded.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-int.h"

/* The engine's default capability set (moby oci/caps/defaults.go). */
static const char *const create_default_caps[] = {
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
	"SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
	"SYS_CHROOT", "KILL", "AUDIT_WRITE", NULL
};

/* The engine's default masked and read-only paths (moby oci/defaults). */
static const char *const create_masked[] = {
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/sys/firmware", NULL
};
static const char *const create_readonly[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
	"/proc/sysrq-trigger", NULL
};

/* Host-config fields the wrapper copies from the top level when the
 * inner HostConfig leaves them zero (runconfig getHostConfig). */
static const char *const create_wrapper_merge[] = {
	"Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver",
	NULL
};

/* Is a JSON value absent or Go's zero value (0, "", false, null)? */
static int
create_zero(json_t *v)
{
	if (v == NULL || json_is_null(v) || json_is_false(v))
		return (1);
	if (json_is_integer(v))
		return (json_integer_value(v) == 0);
	if (json_is_string(v))
		return (json_string_length(v) == 0);
	return (0);
}

/* A string field's value, or "" when absent. */
static const char *
create_str(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	return (json_is_string(v) ? json_string_value(v) : "");
}

/* Is a list-ish field present and non-empty? */
static int
create_nonempty(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	if (v == NULL || json_is_null(v))
		return (0);
	if (json_is_array(v))
		return (json_array_size(v) > 0);
	if (json_is_object(v))
		return (json_object_size(v) > 0);
	return (1);
}

/* host, container:<id> or ns:<path>: a namespace shared with others. */
static int
create_ns_shared(const char *v)
{
	return (strcasecmp(v, "host") == 0 ||
	    strncasecmp(v, "container:", 10) == 0 ||
	    strncasecmp(v, "ns:", 3) == 0);
}

/*
 * CgroupnsMode "host" on an engine whose cgroup version is 1, where host is
 * the engine's own default mode (what an empty value gets, and what tools
 * that recreate containers from inspect, such as watchtower, copy back):
 * EV_OK with *same set when that is so (the engine's /info says).
 */
static int
create_cgroupns_default(struct eval *ev, int *same)
{
	const struct policy_fact	*f;
	json_t				*j, *v;

	*same = 0;
	if (ev_fact(ev, "/info", &f) != EV_OK)
		return (EV_DONE);
	if (f->status != 200)
		return (EV_OK);
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	v = json_object_get(j, "CgroupVersion");
	*same = json_is_string(v) && strcmp(json_string_value(v), "1") == 0;
	json_decref(j);
	return (EV_OK);
}

/* Namespace modes. */
static int
create_namespaces(struct eval *ev, json_t *hc, json_t *net)
{
	static const char *const modes[] = { "NetworkMode", "PidMode",
	    "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", NULL };
	const char	*v, *k;
	json_t		*eps, *e;
	size_t		 i;
	int		 same;

	if (ev->pr->host_namespaces)
		return (EV_OK);
	for (i = 0; modes[i] != NULL; i++) {
		v = create_str(hc, modes[i]);
		if (strcmp(modes[i], "CgroupnsMode") == 0 &&
		    strcmp(v, "host") == 0) {
			if (create_cgroupns_default(ev, &same) != EV_OK)
				return (EV_DONE);
			if (same)
				continue;
		}
		if (create_ns_shared(v))
			return (ev_deny(ev, 403, "host_namespaces",
			    "HostConfig.%s \"%s\" shares a namespace with the"
			    " host or another container (profile key"
			    " \"host_namespaces\")", modes[i], v));
	}
	if ((v = create_str(hc, "Cgroup"))[0] != '\0')
		return (ev_deny(ev, 403, "host_namespaces", "HostConfig.Cgroup"
		    " \"%s\" shares a cgroup (profile key"
		    " \"host_namespaces\")", v));
	eps = net != NULL ? json_object_get(net, "EndpointsConfig") : NULL;
	if (json_is_object(eps))
		json_object_foreach(eps, k, e)
			if (create_ns_shared(k))
				return (ev_deny(ev, 403, "host_namespaces",
				    "NetworkingConfig.EndpointsConfig \"%s\""
				    " joins a host namespace (profile key"
				    " \"host_namespaces\")", k));
	return (EV_OK);
}

/* Normalise a capability name: upper case, no CAP_ prefix. */
static void
create_cap_name(const char *in, char *out, size_t len)
{
	size_t	i;

	if (strncasecmp(in, "CAP_", 4) == 0)
		in += 4;
	for (i = 0; in[i] != '\0' && i + 1 < len; i++)
		out[i] = toupper((unsigned char)in[i]);
	out[i] = '\0';
}

/* CapAdd beyond the default set, and drop_all_capabilities. */
static int
create_caps(struct eval *ev, json_t *hc)
{
	json_t		*add, *drop, *e;
	char		 c[64];
	size_t		 i, j;
	int		 dflt;

	add = json_object_get(hc, "CapAdd");
	json_array_foreach(add, i, e) {
		create_cap_name(json_string_value(e), c, sizeof(c));
		if (strcmp(c, "ALL") == 0) {
			if (strlist_has(&ev->pr->capabilities, "ALL"))
				continue;
			return (ev_deny(ev, 403, "capabilities", "CapAdd ALL"
			    " is not allowed (add \"ALL\" to the profile key"
			    " \"capabilities\")"));
		}
		for (dflt = 0, j = 0; create_default_caps[j] != NULL; j++)
			if (strcmp(create_default_caps[j], c) == 0)
				dflt = 1;
		if (dflt || strlist_has(&ev->pr->capabilities, c) ||
		    strlist_has(&ev->pr->capabilities, "ALL"))
			continue;
		return (ev_deny(ev, 403, "capabilities", "capability %s is"
		    " not allowed (add it to the profile key"
		    " \"capabilities\")", c));
	}
	if (!ev->pr->drop_all_capabilities)
		return (EV_OK);
	drop = json_object_get(hc, "CapDrop");
	if (json_array_size(drop) == 1) {
		create_cap_name(json_string_value(json_array_get(drop, 0)), c,
		    sizeof(c));
		if (strcmp(c, "ALL") == 0)
			return (EV_OK);
	}
	if ((drop = json_array()) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	if (json_array_append_new(drop, json_string("ALL")) == -1) {
		json_decref(drop);
		return (ev_deny(ev, 500, "internal", "out of memory"));
	}
	/* json_object_set_new() takes drop even when it fails. */
	if (json_object_set_new(hc, "CapDrop", drop) == -1)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	return (ev_mutation(ev, "drop_all_capabilities",
	    "HostConfig.CapDrop set to [\"ALL\"]"));
}

/* Does list hold every string of want? */
static int
create_superset(json_t *list, const char *const *want)
{
	json_t	*e;
	size_t	 i, j;
	int	 found;

	for (j = 0; want[j] != NULL; j++) {
		found = 0;
		json_array_foreach(list, i, e)
			if (strcmp(json_string_value(e), want[j]) == 0)
				found = 1;
		if (!found)
			return (0);
	}
	return (1);
}

/* Go's strconv.ParseBool: 1 true, 0 false, -1 not a boolean. */
static int
create_parse_bool(const char *s)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true",
	    "True", NULL };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false",
	    "False", NULL };
	size_t	i;

	for (i = 0; t[i] != NULL; i++)
		if (strcmp(s, t[i]) == 0)
			return (1);
	for (i = 0; f[i] != NULL; i++)
		if (strcmp(s, f[i]) == 0)
			return (0);
	return (-1);
}

/*
 * SecurityOpt as the engine parses it (daemon parseSecurityOpt): "=" is
 * the separator when present, else ":". Confinement-lowering entries
 * need "unconfined"; no_new_privileges makes "no-new-privileges:true"
 * the only no-new-privileges entry.
 */
static int
create_security_opt(struct eval *ev, json_t *hc)
{
	json_t		*so, *nso, *e;
	const char	*opt, *sep, *why;
	char		 key[64];
	const char	*val;
	size_t		 i, kl;
	int		 b, changed;

	so = json_object_get(hc, "SecurityOpt");
	json_array_foreach(so, i, e) {
		opt = json_string_value(e);
		why = NULL;
		if (strcmp(opt, "no-new-privileges") == 0)
			continue;
		if (strcmp(opt, "disable") == 0)
			why = "disables labelling";
		else {
			if ((sep = strchr(opt, '=')) == NULL)
				sep = strchr(opt, ':');
			if (sep == NULL)
				return (ev_malformed(ev, "HostConfig."
				    "SecurityOpt \"%s\": not key=value",
				    opt));
			kl = sep - opt;
			if (kl >= sizeof(key))
				kl = sizeof(key) - 1;
			memcpy(key, opt, kl);
			key[kl] = '\0';
			val = sep + 1;
			if (strcmp(key, "label") == 0)
				why = "overrides labels";
			else if (strcmp(key, "apparmor") == 0) {
				if (strcmp(val, "docker-default") != 0)
					why = "sets an AppArmor profile";
			} else if (strcmp(key, "seccomp") == 0) {
				if (strcmp(val, "builtin") != 0)
					why = "sets a seccomp profile";
			} else if (strcmp(key, "no-new-privileges") == 0) {
				if ((b = create_parse_bool(val)) == -1)
					return (ev_malformed(ev, "HostConfig."
					    "SecurityOpt \"%s\": not a"
					    " boolean", opt));
				if (b == 0)
					why = "turns no-new-privileges off";
			} else if (strcmp(key, "systempaths") == 0)
				why = "unmasks system paths";
			else
				why = "is not a known security option";
		}
		if (why != NULL && !ev->pr->unconfined)
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "SecurityOpt \"%s\" %s (profile key"
			    " \"unconfined\")", opt, why));
	}
	if (!ev->pr->unconfined) {
		if ((e = json_object_get(hc, "MaskedPaths")) != NULL &&
		    !create_superset(e, create_masked))
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "MaskedPaths drops paths the engine masks (profile"
			    " key \"unconfined\")"));
		if ((e = json_object_get(hc, "ReadonlyPaths")) != NULL &&
		    !create_superset(e, create_readonly))
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "ReadonlyPaths drops paths the engine keeps"
			    " read-only (profile key \"unconfined\")"));
		if (create_nonempty(hc, "Annotations"))
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "Annotations reach the OCI runtime (profile key"
			    " \"unconfined\")"));
	}
	if (!ev->pr->no_new_privileges)
		return (EV_OK);
	/* Rebuild: every other entry, then the one no-new-privileges. */
	if ((nso = json_array()) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	json_array_foreach(so, i, e) {
		opt = json_string_value(e);
		if (strncmp(opt, "no-new-privileges", 17) == 0 &&
		    (opt[17] == '\0' || opt[17] == '=' || opt[17] == ':'))
			continue;
		if (json_array_append(nso, e) == -1) {
			json_decref(nso);
			return (ev_deny(ev, 500, "internal", "out of memory"));
		}
	}
	if (json_array_append_new(nso,
	    json_string("no-new-privileges:true")) == -1) {
		json_decref(nso);
		return (ev_deny(ev, 500, "internal", "out of memory"));
	}
	changed = so == NULL || !json_equal(so, nso);
	if (json_object_set_new(hc, "SecurityOpt", nso) == -1)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	if (changed)
		return (ev_mutation(ev, "no_new_privileges", "HostConfig."
		    "SecurityOpt: no-new-privileges:true"));
	return (EV_OK);
}

/* Sysctls, devices, cgroup parent, runtime, privileged. */
static int
create_simple(struct eval *ev, json_t *hc)
{
	const char	*k, *v;
	char		 name[256];
	json_t		*e, *v2;
	size_t		 i;

	if (json_is_true(json_object_get(hc, "Privileged")) &&
	    !ev->pr->privileged)
		return (ev_deny(ev, 403, "privileged", "privileged containers"
		    " are not allowed (profile key \"privileged\")"));
	if (!ev->pr->devices) {
		static const char *const dev[] = { "Devices",
		    "DeviceCgroupRules", "DeviceRequests", NULL };

		for (i = 0; dev[i] != NULL; i++)
			if (create_nonempty(hc, dev[i]))
				return (ev_deny(ev, 403, "devices",
				    "HostConfig.%s gives access to host"
				    " devices (profile key \"devices\")",
				    dev[i]));
	}
	if ((v = create_str(hc, "CgroupParent"))[0] != '\0' &&
	    !ev->pr->cgroup_parent)
		return (ev_deny(ev, 403, "cgroup_parent", "HostConfig."
		    "CgroupParent \"%s\" is not allowed (profile key"
		    " \"cgroup_parent\")", v));
	e = json_object_get(json_object_get(hc, "LogConfig"), "Config");
	json_object_foreach(e, k, v2)
		if (strncasecmp(json_string_value(v2), "unix", 4) == 0 &&
		    !ev->pr->unconfined)
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "LogConfig option %s points the log driver at a"
			    " host socket (profile key \"unconfined\")", k));
	if ((v = create_str(hc, "Runtime"))[0] != '\0' &&
	    !strlist_has(&ev->pr->runtimes, v))
		return (ev_deny(ev, 403, "runtimes", "runtime \"%s\" is not"
		    " allowed (profile key \"runtimes\")", v));
	e = json_object_get(hc, "Sysctls");
	json_object_foreach(e, k, v2) {
		for (i = 0; k[i] != '\0' && i + 1 < sizeof(name); i++)
			name[i] = k[i] == '/' ? '.' : k[i];
		name[i] = '\0';
		if (!strlist_has(&ev->pr->sysctls, name))
			return (ev_deny(ev, 403, "sysctls", "sysctl %s is not"
			    " allowed (profile key \"sysctls\")", k));
	}
	return (EV_OK);
}

/* A strict dotted quad (no leading zeros, as Go's net.ParseIP). */
static int
create_ipv4(const char *s, unsigned char ip[4])
{
	int	 i, n, d;

	for (i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)*s))
			return (-1);
		if (s[0] == '0' && isdigit((unsigned char)s[1]))
			return (-1);
		for (n = 0, d = 0; isdigit((unsigned char)*s); s++, d++) {
			n = n * 10 + (*s - '0');
			if (n > 255 || d > 2)
				return (-1);
		}
		ip[i] = n;
		if (i < 3 && *s++ != '.')
			return (-1);
	}
	return (*s == '\0' ? 0 : -1);
}

/* Classify a HostIp: 0 wildcard, 1 loopback, 2 other, -1 unparseable. */
static int
create_host_ip(const char *s)
{
	unsigned char	ip[16];
	static const unsigned char any6[16], lo6[16] = { [15] = 1 };

	if (s[0] == '\0')
		return (0);
	if (create_ipv4(s, ip) == 0) {
		if (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == 0)
			return (0);
		return (ip[0] == 127 ? 1 : 2);
	}
	if (strchr(s, '%') != NULL || strchr(s, '.') != NULL ||
	    inet_pton(AF_INET6, s, ip) != 1)
		return (-1);
	if (memcmp(ip, any6, 16) == 0)
		return (0);
	return (memcmp(ip, lo6, 16) == 0 ? 1 : 2);
}

/* PortBindings and PublishAllPorts against published_ports. */
static int
create_ports(struct eval *ev, json_t *hc)
{
	json_t		*pb, *list, *b, *ip;
	const char	*port, *s;
	size_t		 i;
	int		 c, rewrote;

	if (ev->pr->ports == PORTS_ANY)
		return (EV_OK);
	if (json_is_true(json_object_get(hc, "PublishAllPorts")))
		return (ev_deny(ev, 403, "published_ports", "PublishAllPorts"
		    " publishes on every host address (profile key"
		    " \"published_ports\" is \"%s\")",
		    ev->pr->ports == PORTS_NONE ? "none" : "loopback"));
	pb = json_object_get(hc, "PortBindings");
	json_object_foreach(pb, port, list) {
		rewrote = 0;
		json_array_foreach(list, i, b) {
			if (ev->pr->ports == PORTS_NONE)
				return (ev_deny(ev, 403, "published_ports",
				    "publishing port %s is not allowed"
				    " (profile key \"published_ports\" is"
				    " \"none\")", port));
			ip = json_object_get(b, "HostIp");
			s = json_is_string(ip) ? json_string_value(ip) : "";
			c = create_host_ip(s);
			if (c == 1)
				continue;
			if (c != 0)
				return (ev_deny(ev, 403, "published_ports",
				    "port %s on host address \"%s\" is not"
				    " allowed: only loopback (profile key"
				    " \"published_ports\")", port, s));
			if (json_object_set_new(b, "HostIp",
			    json_string("127.0.0.1")) == -1)
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			rewrote = 1;
		}
		if (rewrote && ev_mutation(ev, "published_ports", "HostConfig."
		    "PortBindings %s: HostIp 127.0.0.1", port) != EV_OK)
			return (EV_DONE);
	}
	return (EV_OK);
}

/* An integer field, 0 when absent or null. */
static json_int_t
create_int(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	return (json_is_integer(v) ? json_integer_value(v) : 0);
}

/*
 * Effective CPUs in nano CPUs the way the engine programs the CFS
 * bandwidth (daemon getCPUResources): NanoCpus gives a quota over a
 * 100 ms period, then a non-zero CpuPeriod or CpuQuota replaces its part
 * (so a negative CpuQuota beside NanoCpus is unlimited). Never below
 * NanoCpus. 0 means no limit, -1 unlimited.
 */
static long long
create_cpus_of(long long nano, long long quota, long long period)
{
	long long	 p = 100000, q = 0, e;

	if (nano < 0 || quota < 0)
		return (-1);
	if (nano > 0)
		q = nano / 10000;
	if (period > 0)
		p = period;
	if (quota > 0)
		q = quota;
	if (q > LLONG_MAX / 1000000000LL)
		return (LLONG_MAX);
	e = q * 1000000000LL / p;
	return (nano > e ? nano : e);
}

/*
 * Effective CPUs of a create's host config, or of an update merged onto
 * the container's current host config cur (the engine keeps each of
 * NanoCpus, CpuQuota and CpuPeriod that an update leaves 0); see
 * create_cpus_of().
 */
static long long
create_cpus(json_t *o, json_t *cur)
{
	static const char *const k[] = { "NanoCpus", "CpuQuota", "CpuPeriod" };
	long long	 v[3];
	size_t		 i;

	for (i = 0; i < 3; i++)
		if ((v[i] = create_int(o, k[i])) == 0 && cur != NULL)
			v[i] = create_int(cur, k[i]);
	return (create_cpus_of(v[0], v[1], v[2]));
}

/*
 * The default CPU limit for a create that sets none: NanoCpus, or a
 * CpuQuota over the CpuPeriod given (the engine refuses NanoCpus beside
 * a CpuPeriod).
 */
static int
create_cpus_default(struct eval *ev, json_t *hc)
{
	const struct policy_profile	*pr = ev->pr;
	long long			 period;

	period = create_int(hc, "CpuPeriod");
	if (period <= 0) {
		if (json_object_set_new(hc, "NanoCpus",
		    json_integer(pr->cpus_default)) == -1)
			return (ev_deny(ev, 500, "internal", "out of memory"));
	} else if (json_object_set_new(hc, "CpuQuota",
	    json_integer(pr->cpus_default / 1000 * period / 1000000)) == -1)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	return (ev_mutation(ev, "cpus", "HostConfig.%s set to the default"
	    " %.3f CPUs", period <= 0 ? "NanoCpus" : "CpuQuota",
	    pr->cpus_default / 1e9));
}

/* Memory, pids and CPUs: create injects defaults, update only caps (its
 * CPU limit merged onto cur, the container's current host config). */
static int
create_limits(struct eval *ev, json_t *hc, int update, json_t *cur)
{
	const struct policy_profile	*pr = ev->pr;
	char				 a[32], b[32];
	json_t				*v;
	long long			 m, p, c;

	m = create_int(hc, "Memory");
	if (m < 0)
		return (ev_deny(ev, 403, "memory", "a negative Memory is not"
		    " allowed (profile key \"memory\")"));
	if (m == 0 && !update && pr->mem_default > 0) {
		if (json_object_set_new(hc, "Memory",
		    json_integer(pr->mem_default)) == -1)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		profile_fmt_size(a, sizeof(a), pr->mem_default);
		if (ev_mutation(ev, "memory", "HostConfig.Memory set to"
		    " the default %s", a) != EV_OK)
			return (EV_DONE);
	} else if (pr->mem_max > 0 && m > pr->mem_max) {
		profile_fmt_size(b, sizeof(b), pr->mem_max);
		return (ev_deny(ev, 403, "memory", "Memory %lld is above the"
		    " profile's memory.max %s (profile key \"memory\")", m,
		    b));
	}
	v = json_object_get(hc, "PidsLimit");
	p = json_is_integer(v) ? json_integer_value(v) : 0;
	if (update) {
		if (v != NULL && pr->pids_max > 0 &&
		    (p <= 0 || p > pr->pids_max))
			return (ev_deny(ev, 403, "pids", "PidsLimit %lld is"
			    " above the profile's pids.max %lld (0 and -1 are"
			    " unlimited; profile key \"pids\")", p,
			    (long long)pr->pids_max));
	} else if (p <= 0 && pr->pids_default > 0) {
		if (json_object_set_new(hc, "PidsLimit",
		    json_integer(pr->pids_default)) == -1)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		if (ev_mutation(ev, "pids", "HostConfig.PidsLimit set to the"
		    " default %lld", (long long)pr->pids_default) != EV_OK)
			return (EV_DONE);
	} else if (pr->pids_max > 0 && p > pr->pids_max)
		return (ev_deny(ev, 403, "pids", "PidsLimit %lld is above the"
		    " profile's pids.max %lld (profile key \"pids\")", p,
		    (long long)pr->pids_max));
	if (pr->cpus_max == 0 && pr->cpus_default == 0)
		return (EV_OK);
	if (update) {
		if (create_int(hc, "NanoCpus") == 0 &&
		    create_int(hc, "CpuQuota") == 0 &&
		    create_int(hc, "CpuPeriod") == 0)
			return (EV_OK);
		c = create_cpus(hc, cur);
	} else if ((c = create_cpus(hc, NULL)) == 0 && pr->cpus_default > 0)
		return (create_cpus_default(ev, hc));
	if (pr->cpus_max > 0 && (c < 0 || c > pr->cpus_max))
		return (ev_deny(ev, 403, "cpus", "the CPU limit is above the"
		    " profile's cpus.max %.3f (profile key \"cpus\")",
		    pr->cpus_max / 1e9));
	return (EV_OK);
}

/* A user spec must be a numeric non-zero UID. */
static int
create_user_check(struct eval *ev, const char *user, const char *where)
{
	int	root;

	if (user[0] == '\0')
		return (ev_deny(ev, 403, "run_as_non_root", "%s is not set,"
		    " so the process runs as root (profile key"
		    " \"run_as_non_root\")", where));
	if (ev_user_nonroot(user, &root) == -1)
		return (ev_deny(ev, 403, "run_as_non_root", "%s \"%s\" is a"
		    " user name: give a numeric UID (profile key"
		    " \"run_as_non_root\" requires it)", where, user));
	if (root)
		return (ev_deny(ev, 403, "run_as_non_root", "%s \"%s\" runs"
		    " as root (profile key \"run_as_non_root\")", where,
		    user[0] ? user : "(empty)"));
	return (EV_OK);
}

/* run_as_non_root for create: User, else the image's configured user. */
static int
create_user(struct eval *ev, json_t *cfg)
{
	const struct policy_fact	*f;
	const char			*user, *image;
	json_t				*j, *c;
	int				 rc;

	if (!ev->pr->run_as_non_root)
		return (EV_OK);
	user = create_str(cfg, "User");
	if (user[0] != '\0')
		return (create_user_check(ev, user, "User"));
	image = create_str(cfg, "Image");
	if (ev_fact_of(ev, "/images/", image, 1, "/json", &f) != EV_OK)
		return (EV_DONE);
	if (f->status == 404)
		return (ev_deny(ev, 403, "run_as_non_root", "image %s is not"
		    " known to the engine, so its user cannot be checked"
		    " (profile key \"run_as_non_root\")", image));
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the engine did not answer"
		    " the image lookup for %s (status %d)", image, f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	c = json_object_get(j, "Config");
	user = create_str(c, "User");
	rc = create_user_check(ev, user, "the image's user");
	json_decref(j);
	return (rc);
}

/*
 * Split the create body the way the engine decodes it: Config fields,
 * the wrapper's fields, deprecated host-config fields at the top level.
 * Each field once, whatever the spelling.
 */
static int
create_split(struct eval *ev, const struct jn *body, json_t *cfg, json_t *top,
    json_t **inner, json_t **net, json_t **cpuset)
{
	const char		*seen[3][128], *k, *prev;
	const struct jf_schema	*sch[3] = { &schema_create_wrapper,
	    &schema_config, &schema_hostconfig };
	const struct jn		*v;
	struct jf_path		 root;
	struct jf_key		 fk;
	json_t			*c, *dst;
	size_t			 s;
	int			 idx = -1;

	memset(seen, 0, sizeof(seen));
	for (v = body->u.kid; v != NULL; v = v->next) {
		k = v->key;
		/* No two fields of the three fold alike (check_policy), so
		 * an exact spelling anywhere is the field; else fold once. */
		for (s = 0; s < 3; s++)
			if ((idx = jf_field_index_exact(sch[s], v)) != -1)
				break;
		if (s == 3) {
			jf_key_fold(k, &fk);
			for (s = 0; s < 3; s++)
				if ((idx = jf_field_index_key(sch[s],
				    &fk)) != -1)
					break;
		}
		if (s == 3)
			return (ev_deny(ev, 403, "unknown_field", "unknown"
			    " field %s: not on dockgate's list of known"
			    " fields (only \"unrestricted\" forwards it)", k));
		if ((prev = seen[s][idx]) != NULL)
			return (ev_malformed(ev, "\"%s\" and \"%s\" are one"
			    " field (%s) to the engine: a JSON key given twice"
			    " or in two spellings", prev, k,
			    sch[s]->fields[idx].name));
		seen[s][idx] = k;
		if (jf_zero_dropped(sch[s], idx, v))
			continue;
		root.up = NULL;
		root.s = sch[s]->fields[idx].name;
		root.idx = 0;
		root.kind = JFP_ROOT;
		if (jf_canon_value(ev, &sch[s]->fields[idx], v, &root,
		    &c) != EV_OK)
			return (EV_DONE);
		if (c == NULL)
			continue;
		dst = s == 1 ? cfg : top;
		if (s == 0) {
			if (idx == 0)
				*inner = c;
			else if (idx == 1)
				*net = c;
			else
				*cpuset = c;
			continue;
		}
		if (json_object_set_new_nocheck(dst, sch[s]->fields[idx].name,
		    c) == -1)
			return (ev_deny(ev, 500, "internal", "out of memory"));
	}
	return (EV_OK);
}

/* The host config the engine would use (getHostConfig). */
static json_t *
create_effective(json_t *inner, json_t *top, json_t *cpuset)
{
	json_t	*hc, *v;
	size_t	 i;

	if (inner == NULL)
		hc = json_incref(top);
	else {
		hc = json_incref(inner);
		for (i = 0; create_wrapper_merge[i] != NULL; i++) {
			v = json_object_get(top, create_wrapper_merge[i]);
			if (!create_zero(v) && create_zero(json_object_get(hc,
			    create_wrapper_merge[i])))
				json_object_set(hc, create_wrapper_merge[i],
				    v);
		}
	}
	if (json_is_string(cpuset) && json_string_length(cpuset) > 0 &&
	    create_str(hc, "CpusetCpus")[0] == '\0')
		json_object_set(hc, "CpusetCpus", cpuset);
	return (hc);
}

/* Every check on the effective host config and container config. */
static int
create_checks(struct eval *ev, json_t *cfg, json_t *hc, json_t *net)
{
	const char	*image;

	if (create_simple(ev, hc) != EV_OK ||
	    create_namespaces(ev, hc, net) != EV_OK ||
	    create_caps(ev, hc) != EV_OK ||
	    create_security_opt(ev, hc) != EV_OK ||
	    create_ports(ev, hc) != EV_OK ||
	    create_limits(ev, hc, 0, NULL) != EV_OK)
		return (EV_DONE);
	if (ev->pr->read_only_rootfs &&
	    !json_is_true(json_object_get(hc, "ReadonlyRootfs"))) {
		if (json_object_set_new(hc, "ReadonlyRootfs",
		    json_true()) == -1)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		if (ev_mutation(ev, "read_only_rootfs", "HostConfig."
		    "ReadonlyRootfs set to true") != EV_OK)
			return (EV_DONE);
	}
	image = create_str(cfg, "Image");
	if (image[0] == '\0')
		return (ev_malformed(ev, "the create body names no Image"));
	/* Checks that may need the engine come last. */
	if (mounts_check(ev, hc) != EV_OK ||
	    ev_image_allowed(ev, image, "run") != EV_OK ||
	    create_user(ev, cfg) != EV_OK)
		return (EV_DONE);
	return (EV_OK);
}

/* Under ownership: label the container, join only own or shared
 * networks. */
static int
create_owner(struct eval *ev, json_t *cfg, json_t *hc, json_t *net)
{
	static const char *const builtin[] = { "", "default", "bridge",
	    "none", "host", NULL };
	const char	*mode, *k;
	json_t		*eps, *e;
	size_t		 i;

	if (!ev->pr->ownership)
		return (EV_OK);
	mode = create_str(hc, "NetworkMode");
	for (i = 0; builtin[i] != NULL; i++)
		if (strcmp(mode, builtin[i]) == 0)
			break;
	if (builtin[i] == NULL && strncmp(mode, "container:", 10) != 0 &&
	    owner_network(ev, mode, 0) != EV_OK)
		return (EV_DONE);
	eps = json_object_get(net, "EndpointsConfig");
	json_object_foreach(eps, k, e) {
		for (i = 0; builtin[i] != NULL; i++)
			if (strcmp(k, builtin[i]) == 0)
				break;
		if (builtin[i] == NULL && owner_network(ev, k, 0) != EV_OK)
			return (EV_DONE);
	}
	return (owner_label(ev, cfg));
}

/* POST /containers/create. */
int
create_eval(struct eval *ev)
{
	struct jn_arena	 arena;
	struct jn	*body;
	json_t		*cfg, *top, *inner = NULL, *net = NULL;
	json_t		*cpuset = NULL, *hc = NULL;
	int		 rc = EV_DONE;

	jn_arena_init(&arena);
	if ((body = jn_parse(ev, &arena, 0)) == NULL) {
		jn_arena_free(&arena);
		return (EV_DONE);
	}
	cfg = json_object();
	top = json_object();
	if (cfg == NULL || top == NULL) {
		ev_deny(ev, 500, "internal", "out of memory");
		goto out;
	}
	if (body->type != JN_OBJ) {
		ev_malformed(ev, "the create body must be a JSON object");
		goto out;
	}
	if (create_split(ev, body, cfg, top, &inner, &net, &cpuset) != EV_OK)
		goto out;
	hc = create_effective(inner, top, cpuset);
	if (hc == NULL) {
		ev_deny(ev, 500, "internal", "out of memory");
		goto out;
	}
	if (create_checks(ev, cfg, hc, net) != EV_OK ||
	    create_owner(ev, cfg, hc, net) != EV_OK)
		goto out;
	if (json_object_set(cfg, "HostConfig", hc) == -1 ||
	    (net != NULL && json_object_set(cfg, "NetworkingConfig",
	    net) == -1)) {
		ev_deny(ev, 500, "internal", "out of memory");
		goto out;
	}
	rc = ev_set_body(ev, cfg);
out:
	jf_cache_clear(ev);
	jn_arena_free(&arena);
	json_decref(cfg);
	json_decref(top);
	json_decref(inner);
	json_decref(net);
	json_decref(cpuset);
	json_decref(hc);
	return (rc);
}

/* The container segment of /containers/{id}/...; "" when none. */
static void
create_route_id(const char *route, char *out, size_t len)
{
	const char	*p = route + strlen("/containers/");
	size_t		 n = strcspn(p, "/");

	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/*
 * The container's current host config (*cur, new) when an update's CPU
 * limit depends on it: a CpuQuota or CpuPeriod of its own is combined
 * with the other one already set (an engine lookup). *cur stays NULL
 * when nothing is needed.
 */
static int
update_current(struct eval *ev, json_t *u, json_t **cur)
{
	const struct policy_fact	*f;
	char				 id[256];
	json_t				*j;

	*cur = NULL;
	if (ev->pr->cpus_max == 0 || (create_int(u, "CpuQuota") <= 0 &&
	    create_int(u, "CpuPeriod") <= 0))
		return (EV_OK);
	create_route_id(ev->req->route, id, sizeof(id));
	if (ev_fact_of(ev, "/containers/", id, 0, "/json", &f) != EV_OK)
		return (EV_DONE);
	if (f->status != 200)
		return (ev_deny(ev, f->status == 404 ? 404 : 502,
		    f->status == 404 ? "cpus" : "engine", "container %s could"
		    " not be inspected for its CPU limit (status %d)", id,
		    f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	*cur = json_incref(json_object_get(j, "HostConfig"));
	json_decref(j);
	return (EV_OK);
}

/* POST /containers/{id}/update: caps only, nothing injected. */
int
update_eval(struct eval *ev)
{
	struct jn_arena	 arena;
	struct jn	*body;
	struct jf_path	 root = { NULL, "", 0, JFP_ROOT };
	json_t		*u = NULL, *cur = NULL;
	const char	*v;
	int		 rc = EV_DONE;
	size_t		 i;
	static const char *const dev[] = { "Devices", "DeviceCgroupRules",
	    "DeviceRequests", NULL };

	jn_arena_init(&arena);
	if ((body = jn_parse(ev, &arena, 0)) == NULL) {
		jn_arena_free(&arena);
		return (EV_DONE);
	}
	if (body->type != JN_OBJ) {
		ev_malformed(ev, "the update body must be a JSON object");
		goto out;
	}
	if (jf_canon_jn(ev, &schema_update, body, &root, &u) != EV_OK)
		goto out;
	for (i = 0; dev[i] != NULL; i++)
		if (!ev->pr->devices && create_nonempty(u, dev[i])) {
			ev_deny(ev, 403, "devices", "%s gives access to host"
			    " devices (profile key \"devices\")", dev[i]);
			goto out;
		}
	if ((v = create_str(u, "CgroupParent"))[0] != '\0' &&
	    !ev->pr->cgroup_parent) {
		ev_deny(ev, 403, "cgroup_parent", "CgroupParent \"%s\" is not"
		    " allowed (profile key \"cgroup_parent\")", v);
		goto out;
	}
	if (update_current(ev, u, &cur) != EV_OK ||
	    create_limits(ev, u, 1, cur) != EV_OK)
		goto out;
	rc = ev_set_body(ev, u);
out:
	jf_cache_clear(ev);
	jn_arena_free(&arena);
	json_decref(u);
	json_decref(cur);
	return (rc);
}

/* POST /containers/{id}/exec: Privileged and User. */
int
exec_eval(struct eval *ev)
{
	const struct policy_fact	*f;
	struct jn_arena			 arena;
	struct jn			*body;
	struct jf_path			 root = { NULL, "", 0, JFP_ROOT };
	json_t				*x = NULL, *j;
	const char			*user;
	char				 id[256];
	int				 rc = EV_DONE;

	jn_arena_init(&arena);
	if ((body = jn_parse(ev, &arena, 0)) == NULL) {
		jn_arena_free(&arena);
		return (EV_DONE);
	}
	if (body->type != JN_OBJ) {
		ev_malformed(ev, "the exec body must be a JSON object");
		goto out;
	}
	if (jf_canon_jn(ev, &schema_exec, body, &root, &x) != EV_OK)
		goto out;
	if (json_is_true(json_object_get(x, "Privileged")) &&
	    !ev->pr->privileged) {
		ev_deny(ev, 403, "privileged", "privileged exec is not allowed"
		    " (profile key \"privileged\")");
		goto out;
	}
	if (ev->pr->run_as_non_root) {
		user = create_str(x, "User");
		if (user[0] != '\0') {
			if (create_user_check(ev, user, "User") != EV_OK)
				goto out;
		} else {
			create_route_id(ev->req->route, id, sizeof(id));
			if (ev_fact_of(ev, "/containers/", id, 0, "/json",
			    &f) != EV_OK)
				goto out;
			if (f->status != 200) {
				ev_deny(ev, f->status == 404 ? 403 : 502,
				    f->status == 404 ? "run_as_non_root" :
				    "engine", "container %s could not be"
				    " inspected (status %d)", id, f->status);
				goto out;
			}
			if ((j = ev_fact_json(ev, f)) == NULL)
				goto out;
			user = create_str(json_object_get(j, "Config"),
			    "User");
			rc = create_user_check(ev, user,
			    "the container's user");
			json_decref(j);
			if (rc != EV_OK) {
				rc = EV_DONE;
				goto out;
			}
		}
	}
	rc = ev_set_body(ev, x);
out:
	jf_cache_clear(ev);
	jn_arena_free(&arena);
	json_decref(x);
	return (rc);
}
