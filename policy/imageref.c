/*
 * Image references, normalised the way Docker does
 * (distribution/reference ParseNormalizedNamed): busybox is
 * docker.io/library/busybox:latest.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy-int.h"

/*
 * Is this first component a registry host? As splitDockerDomain() in
 * distribution/reference: "localhost", or it has a '.' or ':', or it has
 * an upper-case letter (names are lower case, so that is a host).
 */
static int
imageref_is_domain(const char *s, size_t n)
{
	size_t	i;

	if (n == 9 && memcmp(s, "localhost", 9) == 0)
		return (1);
	for (i = 0; i < n; i++)
		if (s[i] == '.' || s[i] == ':' || isupper((unsigned char)s[i]))
			return (1);
	return (0);
}

/*
 * Validate a registry host[:port] as distribution/reference's
 * domainAndPort: dot-separated components of letters, digits and inner
 * '-', or an IPv6 address in brackets; then an optional :digits.
 */
static int
imageref_domain_ok(const char *s, size_t n)
{
	size_t	i = 0, start;

	if (n == 0)
		return (0);
	if (s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
				return (0);
		if (i == n || i == 1)
			return (0);
		i++;
	} else {
		for (;;) {
			start = i;
			while (i < n && (isalnum((unsigned char)s[i]) ||
			    s[i] == '-'))
				i++;
			if (i == start || s[start] == '-' || s[i - 1] == '-')
				return (0);
			if (i == n || s[i] != '.')
				break;
			i++;
		}
	}
	if (i == n)
		return (1);
	if (s[i] != ':' || ++i == n)
		return (0);
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return (0);
	return (1);
}

/* Validate a path component: [a-z0-9]+ separated by ., _, __ or -+. */
static int
imageref_comp_ok(const char *s, size_t n)
{
	size_t	i = 0, sep;

	if (n == 0)
		return (0);
	for (;;) {
		if (i >= n || !(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i])))
			return (0);
		while (i < n && (islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i])))
			i++;
		if (i == n)
			return (1);
		sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else
			return (0);
		if (i == sep)
			return (0);
	}
}

/*
 * Write the normalised domain: as given (distribution/reference keeps
 * its case), Docker Hub's other names as docker.io.
 */
static int
imageref_domain(const char *s, size_t n, char *out, size_t len)
{
	if (n >= len)
		return (-1);
	memcpy(out, s, n);
	out[n] = '\0';
	if (strcmp(out, "index.docker.io") == 0 ||
	    strcmp(out, "registry-1.docker.io") == 0 ||
	    strcmp(out, "registry.hub.docker.com") == 0)
		snprintf(out, len, "docker.io");
	return (0);
}

/*
 * Parse a reference into its normalised repository, tag and digest.
 * An empty tag with no digest gets "latest". -1 when it is not a
 * reference Docker would accept.
 */
int
imageref_parse(const char *s, struct imageref *r)
{
	char		 name[REF_MAX], dom[REF_MAX];
	const char	*at, *slash, *colon, *p, *path;
	size_t		 n, i, nl;
	int		 hasdom;

	memset(r, 0, sizeof(*r));
	n = strlen(s);
	if (n == 0 || n >= REF_MAX)
		return (-1);
	at = strchr(s, '@');
	if (at != NULL) {
		p = at + 1;
		if (strlen(p) >= sizeof(r->digest) || strchr(p, ':') == NULL)
			return (-1);
		for (i = 0; p[i] != '\0'; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != ':' &&
			    p[i] != '+' && p[i] != '.' && p[i] != '_' &&
			    p[i] != '-' && p[i] != '=')
				return (-1);
		if (p[0] == ':' || strlen(strchr(p, ':') + 1) < 32)
			return (-1);
		snprintf(r->digest, sizeof(r->digest), "%s", p);
		nl = at - s;
	} else
		nl = n;
	memcpy(name, s, nl);
	name[nl] = '\0';
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (colon != NULL && (slash == NULL || colon > slash)) {
		p = colon + 1;
		if (*p == '\0' || strlen(p) > 128 ||
		    !(isalnum((unsigned char)*p) || *p == '_'))
			return (-1);
		for (i = 0; p[i] != '\0'; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '_' &&
			    p[i] != '.' && p[i] != '-')
				return (-1);
		snprintf(r->tag, sizeof(r->tag), "%s", p);
		name[colon - name] = '\0';
	}
	if (name[0] == '\0')
		return (-1);
	slash = strchr(name, '/');
	hasdom = slash != NULL && imageref_is_domain(name, slash - name);
	if (hasdom) {
		if (!imageref_domain_ok(name, slash - name) ||
		    imageref_domain(name, slash - name, dom, sizeof(dom)) == -1)
			return (-1);
		path = slash + 1;
	} else {
		snprintf(dom, sizeof(dom), "docker.io");
		path = name;
	}
	/* Validate every path component. */
	for (p = path;;) {
		const char *e = strchr(p, '/');

		nl = e != NULL ? (size_t)(e - p) : strlen(p);
		if (!imageref_comp_ok(p, nl))
			return (-1);
		if (e == NULL)
			break;
		p = e + 1;
	}
	if (strcmp(dom, "docker.io") == 0 && strchr(path, '/') == NULL)
		n = snprintf(r->repo, sizeof(r->repo), "%s/library/%s", dom,
		    path);
	else
		n = snprintf(r->repo, sizeof(r->repo), "%s/%s", dom, path);
	if (n >= sizeof(r->repo))
		return (-1);
	/*
	 * RepositoryNameTotalLengthMax: the path as Parse() sees it, after
	 * normalisation (library/ added on Docker Hub), without the domain.
	 * (For registry-1.docker.io and registry.hub.docker.com, which we
	 * take as docker.io, Docker adds no library/: 8 bytes stricter.)
	 */
	if (n - strlen(dom) - 1 > 255)
		return (-1);
	if (r->tag[0] == '\0' && r->digest[0] == '\0')
		snprintf(r->tag, sizeof(r->tag), "latest");
	return (0);
}

/*
 * Could the engine read this string as an image ID (or ID prefix)?
 * "sha256:<hex>" or a bare string of lower-case hex digits.
 */
int
imageref_is_id(const char *s)
{
	size_t	i;

	if (strncmp(s, "sha256:", 7) == 0)
		s += 7;
	if (s[0] == '\0' || strlen(s) > 64)
		return (0);
	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    !(s[i] >= 'a' && s[i] <= 'f'))
			return (0);
	return (1);
}

/*
 * Normalise a policy prefix ("docker.io/library", "ci/",
 * "registry.example.com:5000"): a registry host, optionally followed by
 * path components; without a host, docker.io is assumed.
 */
int
imageref_prefix(const char *s, char *out, size_t len)
{
	char		 buf[REF_MAX], dom[REF_MAX];
	const char	*slash, *path, *p;
	size_t		 n, nl;

	n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return (-1);
	memcpy(buf, s, n + 1);
	while (n > 0 && buf[n - 1] == '/')
		buf[--n] = '\0';
	if (n == 0 || strchr(buf, '@') != NULL)
		return (-1);
	slash = strchr(buf, '/');
	nl = slash != NULL ? (size_t)(slash - buf) : n;
	if (imageref_is_domain(buf, nl)) {
		if (!imageref_domain_ok(buf, nl) ||
		    imageref_domain(buf, nl, dom, sizeof(dom)) == -1)
			return (-1);
		path = slash != NULL ? slash + 1 : NULL;
	} else {
		snprintf(dom, sizeof(dom), "docker.io");
		path = buf;
	}
	for (p = path; p != NULL;) {
		const char *e = strchr(p, '/');

		nl = e != NULL ? (size_t)(e - p) : strlen(p);
		if (!imageref_comp_ok(p, nl))
			return (-1);
		p = e != NULL ? e + 1 : NULL;
	}
	if (path != NULL)
		n = snprintf(out, len, "%s/%s", dom, path);
	else
		n = snprintf(out, len, "%s", dom);
	return (n < len ? 0 : -1);
}

/*
 * Is a normalised repository under one of the prefixes? The registry
 * host (the first component) compares without case, as host names do;
 * the path exactly.
 */
int
imageref_under(const char *repo, const struct strlist *l)
{
	size_t	i, n, d;

	for (i = 0; i < l->n; i++) {
		n = strlen(l->v[i]);
		d = strcspn(l->v[i], "/");
		if (strncasecmp(repo, l->v[i], d) == 0 &&
		    strncmp(repo + d, l->v[i] + d, n - d) == 0 &&
		    (repo[n] == '\0' || repo[n] == '/'))
			return (1);
	}
	return (0);
}
