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
create_zero(const struct jn *v)
{
	if (v == NULL || v->type == JN_NULL || v->type == JN_FALSE)
		return (1);
	if (v->type == JN_INT)
		return (v->u.i == 0);
	if (v->type == JN_STR)
		return (v->n == 0);
	return (0);
}

/* A string field of an engine answer, or "" when absent. */
static const char *
create_json_str(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	return (json_is_string(v) ? json_string_value(v) : "");
}

/* Is a list-ish field present and non-empty? */
static int
create_nonempty(const struct jn *o, const char *k)
{
	const struct jn	*v = jn_get(o, k);

	if (v == NULL || v->type == JN_NULL)
		return (0);
	if (v->type == JN_ARR || v->type == JN_OBJ)
		return (v->n > 0);
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
create_namespaces(struct eval *ev, const struct jn *hc, const struct jn *net)
{
	static const char *const modes[] = { "NetworkMode", "PidMode",
	    "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", NULL };
	const char	*v;
	const struct jn	*e;
	size_t		 i;
	int		 same;

	if (ev->pr->host_namespaces)
		return (EV_OK);
	for (i = 0; modes[i] != NULL; i++) {
		v = jn_str(hc, modes[i]);
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
	if ((v = jn_str(hc, "Cgroup"))[0] != '\0')
		return (ev_deny(ev, 403, "host_namespaces", "HostConfig.Cgroup"
		    " \"%s\" shares a cgroup (profile key"
		    " \"host_namespaces\")", v));
	for (e = jn_kids(jn_get(net, "EndpointsConfig"), JN_OBJ); e != NULL;
	    e = e->next)
		if (create_ns_shared(e->key))
			return (ev_deny(ev, 403, "host_namespaces",
			    "NetworkingConfig.EndpointsConfig \"%s\""
			    " joins a host namespace (profile key"
			    " \"host_namespaces\")", e->key));
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
create_caps(struct eval *ev, struct jn *hc)
{
	struct jn	*drop, *e;
	char		 c[64];
	size_t		 j;
	int		 dflt;

	for (e = jn_kids(jn_get(hc, "CapAdd"), JN_ARR); e != NULL;
	    e = e->next) {
		create_cap_name(e->u.s, c, sizeof(c));
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
	drop = jn_get(hc, "CapDrop");
	if (drop != NULL && drop->type == JN_ARR && drop->n == 1) {
		create_cap_name(drop->u.kid->u.s, c, sizeof(c));
		if (strcmp(c, "ALL") == 0)
			return (EV_OK);
	}
	if ((drop = jn_new(ev->arena, JN_ARR)) == NULL ||
	    (e = jn_new_str(ev->arena, "ALL")) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	jn_append(drop, e, NULL, 0);
	jn_set(hc, "CapDrop", drop);
	return (ev_mutation(ev, "drop_all_capabilities",
	    "HostConfig.CapDrop set to [\"ALL\"]"));
}

/* Does list hold every string of want? */
static int
create_superset(const struct jn *list, const char *const *want)
{
	const struct jn	*e;
	size_t		 j;
	int		 found;

	for (j = 0; want[j] != NULL; j++) {
		found = 0;
		for (e = jn_kids(list, JN_ARR); e != NULL; e = e->next)
			if (strcmp(e->u.s, want[j]) == 0)
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
create_security_opt(struct eval *ev, struct jn *hc)
{
	struct jn	*so, *nso, *e, *c;
	const struct jn	*o;
	const char	*opt, *sep, *why;
	char		 key[64];
	const char	*val;
	size_t		 kl;
	int		 b, changed;

	so = jn_get(hc, "SecurityOpt");
	for (e = jn_kids(so, JN_ARR); e != NULL; e = e->next) {
		opt = e->u.s;
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
		if ((e = jn_get(hc, "MaskedPaths")) != NULL &&
		    !create_superset(e, create_masked))
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "MaskedPaths drops paths the engine masks (profile"
			    " key \"unconfined\")"));
		if ((e = jn_get(hc, "ReadonlyPaths")) != NULL &&
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
	if ((nso = jn_new(ev->arena, JN_ARR)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	for (e = jn_kids(so, JN_ARR); e != NULL; e = e->next) {
		opt = e->u.s;
		if (strncmp(opt, "no-new-privileges", 17) == 0 &&
		    (opt[17] == '\0' || opt[17] == '=' || opt[17] == ':'))
			continue;
		if ((c = jn_dup(ev->arena, e)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_append(nso, c, NULL, 0);
	}
	if ((c = jn_new_str(ev->arena, "no-new-privileges:true")) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	jn_append(nso, c, NULL, 0);
	/* Changed unless so held exactly these strings. */
	changed = so == NULL || so->type != JN_ARR || so->n != nso->n;
	for (e = nso->u.kid, o = jn_kids(so, JN_ARR); !changed && e != NULL;
	    e = e->next, o = o->next)
		changed = o->n != e->n || memcmp(o->u.s, e->u.s, e->n) != 0;
	jn_set(hc, "SecurityOpt", nso);
	if (changed)
		return (ev_mutation(ev, "no_new_privileges", "HostConfig."
		    "SecurityOpt: no-new-privileges:true"));
	return (EV_OK);
}

/* Sysctls, devices, cgroup parent, runtime, privileged. */
static int
create_simple(struct eval *ev, const struct jn *hc)
{
	const char	*k, *v;
	char		 name[256];
	const struct jn	*e;
	size_t		 i;

	if (jn_true(hc, "Privileged") &&
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
	if ((v = jn_str(hc, "CgroupParent"))[0] != '\0' &&
	    !ev->pr->cgroup_parent)
		return (ev_deny(ev, 403, "cgroup_parent", "HostConfig."
		    "CgroupParent \"%s\" is not allowed (profile key"
		    " \"cgroup_parent\")", v));
	for (e = jn_kids(jn_get(jn_get(hc, "LogConfig"), "Config"), JN_OBJ);
	    e != NULL; e = e->next)
		if (strncasecmp(e->u.s, "unix", 4) == 0 &&
		    !ev->pr->unconfined)
			return (ev_deny(ev, 403, "unconfined", "HostConfig."
			    "LogConfig option %s points the log driver at a"
			    " host socket (profile key \"unconfined\")",
			    e->key));
	if ((v = jn_str(hc, "Runtime"))[0] != '\0' &&
	    !strlist_has(&ev->pr->runtimes, v))
		return (ev_deny(ev, 403, "runtimes", "runtime \"%s\" is not"
		    " allowed (profile key \"runtimes\")", v));
	for (e = jn_kids(jn_get(hc, "Sysctls"), JN_OBJ); e != NULL;
	    e = e->next) {
		k = e->key;
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
create_ports(struct eval *ev, const struct jn *hc)
{
	const struct jn	*list;
	struct jn	*b, *ip;
	const char	*port, *s;
	int		 c, rewrote;

	if (ev->pr->ports == PORTS_ANY)
		return (EV_OK);
	if (jn_true(hc, "PublishAllPorts"))
		return (ev_deny(ev, 403, "published_ports", "PublishAllPorts"
		    " publishes on every host address (profile key"
		    " \"published_ports\" is \"%s\")",
		    ev->pr->ports == PORTS_NONE ? "none" : "loopback"));
	for (list = jn_kids(jn_get(hc, "PortBindings"), JN_OBJ); list != NULL;
	    list = list->next) {
		port = list->key;
		rewrote = 0;
		for (b = jn_kids(list, JN_ARR); b != NULL; b = b->next) {
			if (ev->pr->ports == PORTS_NONE)
				return (ev_deny(ev, 403, "published_ports",
				    "publishing port %s is not allowed"
				    " (profile key \"published_ports\" is"
				    " \"none\")", port));
			s = jn_str(b, "HostIp");
			c = create_host_ip(s);
			if (c == 1)
				continue;
			if (c != 0)
				return (ev_deny(ev, 403, "published_ports",
				    "port %s on host address \"%s\" is not"
				    " allowed: only loopback (profile key"
				    " \"published_ports\")", port, s));
			if ((ip = jn_new_str(ev->arena, "127.0.0.1")) == NULL)
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			jn_set(b, "HostIp", ip);
			rewrote = 1;
		}
		if (rewrote && ev_mutation(ev, "published_ports", "HostConfig."
		    "PortBindings %s: HostIp 127.0.0.1", port) != EV_OK)
			return (EV_DONE);
	}
	return (EV_OK);
}

/* An integer field of an engine answer, 0 when absent or null. */
static json_int_t
create_json_int(json_t *o, const char *k)
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

/* The CPU limit fields, in the order create_cpus() reads them. */
static const char *const create_cpu_keys[] = { "NanoCpus", "CpuQuota",
	"CpuPeriod" };

/*
 * Effective CPUs of a create's host config, or of an update merged onto
 * the container's current host config cur (the engine keeps each of
 * NanoCpus, CpuQuota and CpuPeriod that an update leaves 0); see
 * create_cpus_of().
 */
static long long
create_cpus(const struct jn *o, const json_int_t *cur)
{
	long long	 v[3];
	size_t		 i;

	for (i = 0; i < 3; i++)
		if ((v[i] = jn_int(o, create_cpu_keys[i])) == 0 && cur != NULL)
			v[i] = cur[i];
	return (create_cpus_of(v[0], v[1], v[2]));
}

/*
 * The default CPU limit for a create that sets none: NanoCpus, or a
 * CpuQuota over the CpuPeriod given (the engine refuses NanoCpus beside
 * a CpuPeriod).
 */
static int
create_cpus_default(struct eval *ev, struct jn *hc)
{
	const struct policy_profile	*pr = ev->pr;
	long long			 period;
	struct jn			*v;

	period = jn_int(hc, "CpuPeriod");
	v = jn_new_int(ev->arena, period <= 0 ? pr->cpus_default :
	    pr->cpus_default / 1000 * period / 1000000);
	if (v == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	jn_set(hc, period <= 0 ? "NanoCpus" : "CpuQuota", v);
	return (ev_mutation(ev, "cpus", "HostConfig.%s set to the default"
	    " %.3f CPUs", period <= 0 ? "NanoCpus" : "CpuQuota",
	    pr->cpus_default / 1e9));
}

/* Memory, pids and CPUs: create injects defaults, update only caps (its
 * CPU limit merged onto cur, the container's current host config). */
static int
create_limits(struct eval *ev, struct jn *hc, int update,
    const json_int_t *cur)
{
	const struct policy_profile	*pr = ev->pr;
	char				 a[32], b[32];
	struct jn			*v;
	long long			 m, p, c;

	m = jn_int(hc, "Memory");
	if (m < 0)
		return (ev_deny(ev, 403, "memory", "a negative Memory is not"
		    " allowed (profile key \"memory\")"));
	if (m == 0 && !update && pr->mem_default > 0) {
		if ((v = jn_new_int(ev->arena, pr->mem_default)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_set(hc, "Memory", v);
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
	p = jn_int(hc, "PidsLimit");
	if (update) {
		if (jn_get(hc, "PidsLimit") != NULL && pr->pids_max > 0 &&
		    (p <= 0 || p > pr->pids_max))
			return (ev_deny(ev, 403, "pids", "PidsLimit %lld is"
			    " above the profile's pids.max %lld (0 and -1 are"
			    " unlimited; profile key \"pids\")", p,
			    (long long)pr->pids_max));
	} else if (p <= 0 && pr->pids_default > 0) {
		if ((v = jn_new_int(ev->arena, pr->pids_default)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_set(hc, "PidsLimit", v);
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
		if (jn_int(hc, "NanoCpus") == 0 &&
		    jn_int(hc, "CpuQuota") == 0 &&
		    jn_int(hc, "CpuPeriod") == 0)
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
create_user(struct eval *ev, const struct jn *cfg)
{
	const struct policy_fact	*f;
	const char			*user, *image;
	json_t				*j, *c;
	int				 rc;

	if (!ev->pr->run_as_non_root)
		return (EV_OK);
	user = jn_str(cfg, "User");
	if (user[0] != '\0')
		return (create_user_check(ev, user, "User"));
	image = jn_str(cfg, "Image");
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
	user = create_json_str(c, "User");
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
create_split(struct eval *ev, const struct jn *body, struct jn *cfg,
    struct jn *top, struct jn **inner, struct jn **net, struct jn **cpuset)
{
	const char		*seen[3][128], *k, *prev;
	const struct jf_schema	*sch[3] = { &schema_create_wrapper,
	    &schema_config, &schema_hostconfig };
	const struct jn		*v;
	struct jf_path		 root;
	struct jf_key		 fk;
	struct jn_members	 m[3];	/* [0] unused: wrapper fields apart */
	struct jn		*c;
	size_t			 s;
	int			 idx = -1;

	memset(seen, 0, sizeof(seen));
	jn_members_init(&m[1], cfg);
	jn_members_init(&m[2], top);
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
		if (s == 0) {
			if (idx == 0)
				*inner = c;
			else if (idx == 1)
				*net = c;
			else
				*cpuset = c;
			continue;
		}
		jn_members_add(&m[s], c, sch[s]->fields[idx].name,
		    jf_field_len(sch[s], idx), 0);
	}
	return (EV_OK);
}

/* The host config the engine would use (getHostConfig); NULL when
 * memory ran out. */
static struct jn *
create_effective(struct eval *ev, struct jn *inner, struct jn *top,
    const struct jn *cpuset)
{
	struct jn	*hc, *v;
	size_t		 i;

	if (inner == NULL)
		hc = top;
	else {
		hc = inner;
		for (i = 0; create_wrapper_merge[i] != NULL; i++) {
			v = jn_get(top, create_wrapper_merge[i]);
			if (create_zero(v) || !create_zero(jn_get(hc,
			    create_wrapper_merge[i])))
				continue;
			if ((v = jn_dup(ev->arena, v)) == NULL)
				return (NULL);
			jn_set(hc, create_wrapper_merge[i], v);
		}
	}
	if (cpuset != NULL && cpuset->type == JN_STR && cpuset->n > 0 &&
	    jn_str(hc, "CpusetCpus")[0] == '\0') {
		if ((v = jn_dup(ev->arena, cpuset)) == NULL)
			return (NULL);
		jn_set(hc, "CpusetCpus", v);
	}
	return (hc);
}

/* Every check on the effective host config and container config. */
static int
create_checks(struct eval *ev, const struct jn *cfg, struct jn *hc,
    const struct jn *net)
{
	const char	*image;
	struct jn	*v;

	if (create_simple(ev, hc) != EV_OK ||
	    create_namespaces(ev, hc, net) != EV_OK ||
	    create_caps(ev, hc) != EV_OK ||
	    create_security_opt(ev, hc) != EV_OK ||
	    create_ports(ev, hc) != EV_OK ||
	    create_limits(ev, hc, 0, NULL) != EV_OK)
		return (EV_DONE);
	if (ev->pr->read_only_rootfs && !jn_true(hc, "ReadonlyRootfs")) {
		if ((v = jn_new_bool(ev->arena, 1)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_set(hc, "ReadonlyRootfs", v);
		if (ev_mutation(ev, "read_only_rootfs", "HostConfig."
		    "ReadonlyRootfs set to true") != EV_OK)
			return (EV_DONE);
	}
	image = jn_str(cfg, "Image");
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
create_owner(struct eval *ev, struct jn *cfg, const struct jn *hc,
    const struct jn *net)
{
	static const char *const builtin[] = { "", "default", "bridge",
	    "none", "host", NULL };
	const char	*mode;
	const struct jn	*e;
	size_t		 i;

	if (!ev->pr->ownership)
		return (EV_OK);
	mode = jn_str(hc, "NetworkMode");
	for (i = 0; builtin[i] != NULL; i++)
		if (strcmp(mode, builtin[i]) == 0)
			break;
	if (builtin[i] == NULL && strncmp(mode, "container:", 10) != 0 &&
	    owner_network(ev, mode, 0) != EV_OK)
		return (EV_DONE);
	for (e = jn_kids(jn_get(net, "EndpointsConfig"), JN_OBJ); e != NULL;
	    e = e->next) {
		for (i = 0; builtin[i] != NULL; i++)
			if (strcmp(e->key, builtin[i]) == 0)
				break;
		if (builtin[i] == NULL && owner_network(ev, e->key,
		    0) != EV_OK)
			return (EV_DONE);
	}
	return (owner_label(ev, cfg));
}

/* POST /containers/create. */
int
create_eval(struct eval *ev)
{
	struct jn_arena	 arena;
	struct jn	*body, *cfg, *top, *inner = NULL, *net = NULL;
	struct jn	*cpuset = NULL, *hc;
	int		 rc = EV_DONE;

	jn_arena_init(&arena);
	ev->arena = &arena;
	if ((body = jn_parse(ev, &arena, 0)) == NULL)
		goto out;
	cfg = jn_new(&arena, JN_OBJ);
	top = jn_new(&arena, JN_OBJ);
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
	if ((hc = create_effective(ev, inner, top, cpuset)) == NULL) {
		ev_deny(ev, 500, "internal", "out of memory");
		goto out;
	}
	if (create_checks(ev, cfg, hc, net) != EV_OK ||
	    create_owner(ev, cfg, hc, net) != EV_OK)
		goto out;
	jn_set(cfg, "HostConfig", hc);
	if (net != NULL)
		jn_set(cfg, "NetworkingConfig", net);
	rc = ev_set_body_jn(ev, cfg);
out:
	ev->arena = NULL;
	jn_arena_free(&arena);
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
 * The container's current CPU limit fields (cur, in create_cpu_keys'
 * order; 0 when not set) when an update's CPU limit depends on them: a
 * CpuQuota or CpuPeriod of its own is combined with the other one
 * already set (an engine lookup). *have is 0 when nothing is needed.
 */
static int
update_current(struct eval *ev, const struct jn *u, json_int_t cur[3],
    int *have)
{
	const struct policy_fact	*f;
	char				 id[256];
	json_t				*j, *hc;
	size_t				 i;

	*have = 0;
	if (ev->pr->cpus_max == 0 || (jn_int(u, "CpuQuota") <= 0 &&
	    jn_int(u, "CpuPeriod") <= 0))
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
	hc = json_object_get(j, "HostConfig");
	for (i = 0; i < 3; i++)
		cur[i] = create_json_int(hc, create_cpu_keys[i]);
	*have = 1;
	json_decref(j);
	return (EV_OK);
}

/* POST /containers/{id}/update: caps only, nothing injected. */
int
update_eval(struct eval *ev)
{
	struct jn_arena	 arena;
	struct jn	*body, *u;
	struct jf_path	 root = { NULL, "", 0, JFP_ROOT };
	json_int_t	 cur[3];
	const char	*v;
	int		 rc = EV_DONE, have;
	size_t		 i;
	static const char *const dev[] = { "Devices", "DeviceCgroupRules",
	    "DeviceRequests", NULL };

	jn_arena_init(&arena);
	ev->arena = &arena;
	if ((body = jn_parse(ev, &arena, 0)) == NULL)
		goto out;
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
	if ((v = jn_str(u, "CgroupParent"))[0] != '\0' &&
	    !ev->pr->cgroup_parent) {
		ev_deny(ev, 403, "cgroup_parent", "CgroupParent \"%s\" is not"
		    " allowed (profile key \"cgroup_parent\")", v);
		goto out;
	}
	if (update_current(ev, u, cur, &have) != EV_OK ||
	    create_limits(ev, u, 1, have ? cur : NULL) != EV_OK)
		goto out;
	rc = ev_set_body_jn(ev, u);
out:
	ev->arena = NULL;
	jn_arena_free(&arena);
	return (rc);
}

/* POST /containers/{id}/exec: Privileged and User. */
int
exec_eval(struct eval *ev)
{
	const struct policy_fact	*f;
	struct jn_arena			 arena;
	struct jn			*body, *x;
	struct jf_path			 root = { NULL, "", 0, JFP_ROOT };
	json_t				*j;
	const char			*user;
	char				 id[256];
	int				 rc = EV_DONE;

	jn_arena_init(&arena);
	ev->arena = &arena;
	if ((body = jn_parse(ev, &arena, 0)) == NULL)
		goto out;
	if (body->type != JN_OBJ) {
		ev_malformed(ev, "the exec body must be a JSON object");
		goto out;
	}
	if (jf_canon_jn(ev, &schema_exec, body, &root, &x) != EV_OK)
		goto out;
	if (jn_true(x, "Privileged") && !ev->pr->privileged) {
		ev_deny(ev, 403, "privileged", "privileged exec is not allowed"
		    " (profile key \"privileged\")");
		goto out;
	}
	if (ev->pr->run_as_non_root) {
		user = jn_str(x, "User");
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
			user = create_json_str(json_object_get(j, "Config"),
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
	rc = ev_set_body_jn(ev, x);
out:
	ev->arena = NULL;
	jn_arena_free(&arena);
	return (rc);
}
