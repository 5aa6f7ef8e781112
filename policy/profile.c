/*
 * Profiles: safe values, string lists, sizes and the --check summary.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

/* The Kubernetes baseline set of safe sysctls. */
static const char *const profile_safe_sysctls[] = {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	NULL
};

/* Return 1 when the list holds s exactly. */
int
strlist_has(const struct strlist *l, const char *s)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return (1);
	return (0);
}

/* Append a copy of s; -1 on allocation failure or when full. */
int
strlist_add(struct strlist *l, const char *s)
{
	char	**nv, *c;

	if (l->n >= POLICY_MAX_LIST)
		return (-1);
	if ((c = strdup(s)) == NULL)
		return (-1);
	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		free(c);
		return (-1);
	}
	nv[l->n++] = c;
	l->v = nv;
	return (0);
}

/* Free every string and the array. */
void
strlist_free(struct strlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Fill a profile with the safe value of every key (lists left empty). */
void
profile_safe(struct policy_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->no_new_privileges = 1;
	p->mem_default = 1LL << 30;
	p->mem_max = 8LL << 30;
	p->pids_default = 1024;
	p->pids_max = 8192;
	p->ports = PORTS_LOOPBACK;
}

/* Add the safe lists (sysctls, runtimes, network drivers). */
static int
profile_safe_lists(struct policy_profile *p)
{
	size_t	i;

	for (i = 0; profile_safe_sysctls[i] != NULL; i++)
		if (strlist_add(&p->sysctls, profile_safe_sysctls[i]) == -1)
			return (-1);
	if (strlist_add(&p->runtimes, "runc") == -1 ||
	    strlist_add(&p->network_drivers, "bridge") == -1)
		return (-1);
	return (0);
}

/* The lists of a profile, to free them in one loop. */
static struct strlist *
profile_list(struct policy_profile *p, size_t i)
{
	struct strlist	*l[] = {
		&p->trusted_registries, &p->local_images, &p->capabilities,
		&p->host_paths, &p->sysctls, &p->runtimes,
		&p->network_drivers, &p->redact, &p->ep_allow, &p->ep_deny,
		&p->owner_sees,
	};

	if (i >= sizeof(l) / sizeof(l[0]))
		return (NULL);
	return (l[i]);
}

/* Free the lists of a profile. */
void
profile_free(struct policy_profile *p)
{
	struct strlist	*l;
	size_t		 i;

	for (i = 0; (l = profile_list(p, i)) != NULL; i++)
		strlist_free(l);
}

/* A profile with every key at its safe value, lists included. */
int
profile_builtin(struct policy_profile *p, const char *name)
{
	profile_safe(p);
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (profile_safe_lists(p) == -1) {
		profile_free(p);
		return (-1);
	}
	return (0);
}

/*
 * Parse a size in the docker CLI's grammar: digits, an optional fraction,
 * an optional unit k, m, g or t (powers of 1024), an optional b.
 */
int
profile_parse_size(const char *s, int64_t *out)
{
	const char	*p = s;
	long double	 v = 0, frac = 0.1L, mult = 1;
	int		 digits = 0;

	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		digits++;
		if (digits > 19)
			return (-1);
	}
	if (digits == 0)
		return (-1);
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return (-1);
		while (isdigit((unsigned char)*p)) {
			v += (*p++ - '0') * frac;
			frac /= 10;
		}
	}
	switch (*p) {
	case 'k': case 'K':
		mult = 1024.0L;
		p++;
		break;
	case 'm': case 'M':
		mult = 1024.0L * 1024;
		p++;
		break;
	case 'g': case 'G':
		mult = 1024.0L * 1024 * 1024;
		p++;
		break;
	case 't': case 'T':
		mult = 1024.0L * 1024 * 1024 * 1024;
		p++;
		break;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0')
		return (-1);
	v *= mult;
	if (v >= 9.2e18L)
		return (-1);
	*out = (int64_t)v;
	return (0);
}

/* Format a byte count for people. */
void
profile_fmt_size(char *buf, size_t len, int64_t v)
{
	static const char	 units[] = "kmgt";
	int			 i;

	if (v == 0) {
		snprintf(buf, len, "none");
		return;
	}
	for (i = 3; i >= 0; i--) {
		int64_t	 m = 1LL << (10 * (i + 1));
		if (v % m == 0) {
			snprintf(buf, len, "%lld%c", (long long)(v / m),
			    units[i]);
			return;
		}
	}
	snprintf(buf, len, "%lld", (long long)v);
}

/* Append "name: a, b" to a growing buffer. */
static int
profile_sum_list(FILE *f, const char *name, const struct strlist *l)
{
	size_t	i;

	fprintf(f, "    %s:", name);
	if (l->n == 0)
		fprintf(f, " (none)");
	for (i = 0; i < l->n; i++)
		fprintf(f, "%s %s", i ? "," : "", l->v[i]);
	fprintf(f, "\n");
	return (0);
}

/* A readable multi-line summary of one effective profile. */
char *
profile_summary(const struct policy_profile *p)
{
	static const char *const ports[] = { "loopback", "any", "none" };
	char		*buf = NULL, a[32], b[32];
	size_t		 len = 0;
	FILE		*f;
	size_t		 i;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return (NULL);
	if (p->unrestricted) {
		fprintf(f, "profile %s (UNRESTRICTED: everything is forwarded,"
		    " nothing is checked)\n", p->name);
		goto done;
	}
	fprintf(f, "profile %s\n", p->name);
	fprintf(f, "    allows:");
	{
		const struct { const char *n; int v; } perm[] = {
			{ "privileged", p->privileged },
			{ "host_namespaces", p->host_namespaces },
			{ "devices", p->devices },
			{ "unconfined", p->unconfined },
			{ "cgroup_parent", p->cgroup_parent },
			{ "build", p->build },
			{ "buildkit", p->buildkit },
			{ "image_import", p->image_import },
			{ "image_load", p->image_load },
			{ "plugins", p->plugins },
			{ "swarm", p->swarm },
			{ "read_others", p->read_others },
		};
		int	 any = 0;

		for (i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
			if (perm[i].v) {
				fprintf(f, " %s", perm[i].n);
				any = 1;
			}
		if (!any)
			fprintf(f, " (nothing beyond the baseline)");
	}
	fprintf(f, "\n    enforces:");
	if (p->drop_all_capabilities)
		fprintf(f, " drop_all_capabilities");
	if (p->run_as_non_root)
		fprintf(f, " run_as_non_root");
	if (p->no_new_privileges)
		fprintf(f, " no_new_privileges");
	if (p->read_only_rootfs)
		fprintf(f, " read_only_rootfs");
	if (p->ownership)
		fprintf(f, " ownership");
	fprintf(f, "\n");
	profile_sum_list(f, "trusted_registries", &p->trusted_registries);
	profile_sum_list(f, "local_images", &p->local_images);
	profile_sum_list(f, "capabilities", &p->capabilities);
	profile_sum_list(f, "host_paths", &p->host_paths);
	if (p->host_paths.n > 0)
		fprintf(f, "      (real paths are checked with a local engine;"
		    " with a tcp upstream matching is textual only)\n");
	profile_sum_list(f, "sysctls", &p->sysctls);
	profile_sum_list(f, "runtimes", &p->runtimes);
	profile_sum_list(f, "network_drivers", &p->network_drivers);
	profile_fmt_size(a, sizeof(a), p->mem_default);
	profile_fmt_size(b, sizeof(b), p->mem_max);
	fprintf(f, "    memory: default %s, max %s\n", a, b);
	fprintf(f, "    pids: default %lld, max %lld\n",
	    (long long)p->pids_default, (long long)p->pids_max);
	if (p->cpus_default || p->cpus_max)
		fprintf(f, "    cpus: default %.3f, max %.3f\n",
		    p->cpus_default / 1e9, p->cpus_max / 1e9);
	else
		fprintf(f, "    cpus: no limit\n");
	fprintf(f, "    published_ports: %s\n", ports[p->ports]);
	if (p->rate_rps > 0 || p->rate_concurrent > 0)
		fprintf(f, "    rate: %.2f/s burst %lld concurrent %lld\n",
		    p->rate_rps, (long long)p->rate_burst,
		    (long long)p->rate_concurrent);
	if (p->redact.n > 0)
		profile_sum_list(f, "redact", &p->redact);
	if (p->owner_sees.n > 0)
		profile_sum_list(f, "owner_sees", &p->owner_sees);
	if (p->ep_allow_set)
		profile_sum_list(f, "endpoints.allow", &p->ep_allow);
	else
		fprintf(f, "    endpoints.allow: the default list\n");
	if (p->ep_deny.n > 0)
		profile_sum_list(f, "endpoints.deny", &p->ep_deny);
	if (p->buildkit)
		fprintf(f, "      (buildkit: BuildKit builds are not"
		    " inspected)\n");
done:
	if (fclose(f) != 0) {
		free(buf);
		return (NULL);
	}
	return (buf);
}
