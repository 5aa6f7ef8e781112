/*
 * Host paths: normalisation and component-boundary prefix matching.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "policy-int.h"

/*
 * The engine's sockets (and containerd's, and ours): never a bind source,
 * nor any directory above them.
 */
static const char *const hostpath_sockets[] = {
	"/var/run/docker.sock",
	"/run/docker.sock",
	"/var/run/containerd/containerd.sock",
	"/run/containerd/containerd.sock",
	"/var/run/dockgate.sock",
	"/run/dockgate.sock",
	NULL
};

/*
 * Clean an absolute path: collapse "//", drop a trailing "/". A "." or
 * ".." component is refused (-1): symlinks make lexical cleaning unsafe.
 */
int
hostpath_clean(const char *in, char *out, size_t len)
{
	const char	*p = in, *s;
	size_t		 o = 0, n;

	if (in[0] != '/')
		return (-1);
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		s = p;
		while (*p != '\0' && *p != '/')
			p++;
		n = p - s;
		if ((n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return (-1);
		if (o + n + 2 > len)
			return (-1);
		out[o++] = '/';
		memcpy(out + o, s, n);
		o += n;
	}
	if (o == 0) {
		if (len < 2)
			return (-1);
		out[o++] = '/';
	}
	out[o] = '\0';
	return (0);
}

/* Is clean path p equal to or below clean prefix pre? */
int
hostpath_under(const char *p, const char *pre)
{
	size_t	n = strlen(pre);

	if (strcmp(pre, "/") == 0)
		return (1);
	return (strncmp(p, pre, n) == 0 && (p[n] == '\0' || p[n] == '/'));
}

/* The allowed prefix p falls under, or NULL. */
const char *
hostpath_allowed(const char *p, const struct strlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (hostpath_under(p, l->v[i]))
			return (l->v[i]);
	return (NULL);
}

/* Is clean path p the engine socket or a directory that holds it? */
int
hostpath_is_engine_socket(const char *p, const char *const *extra)
{
	size_t	i;

	for (i = 0; hostpath_sockets[i] != NULL; i++)
		if (hostpath_under(hostpath_sockets[i], p) ||
		    hostpath_under(p, hostpath_sockets[i]))
			return (1);
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		if (hostpath_under(extra[i], p) || hostpath_under(p, extra[i]))
			return (1);
	return (0);
}
