/*
 * Endpoint patterns: "METHOD /pattern", * one segment, ** one or more.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "policy-int.h"


/* The contract's default endpoints.allow list. */
const char *const endpoint_defaults[] = {
	"GET /_ping", "HEAD /_ping", "GET /version", "GET /info",
	"GET /events", "GET /system/df",
	"GET /containers/json", "GET /containers/*/json",
	"GET /containers/*/logs", "GET /containers/*/top",
	"GET /containers/*/stats", "GET /containers/*/changes",
	"GET /containers/*/archive", "HEAD /containers/*/archive",
	"PUT /containers/*/archive", "GET /containers/*/export",
	"POST /containers/create", "DELETE /containers/*",
	"POST /containers/*/start", "POST /containers/*/stop",
	"POST /containers/*/restart", "POST /containers/*/kill",
	"POST /containers/*/wait", "POST /containers/*/pause",
	"POST /containers/*/unpause", "POST /containers/*/rename",
	"POST /containers/*/resize", "POST /containers/*/attach",
	"GET /containers/*/attach/ws", "POST /containers/*/exec",
	"POST /containers/*/update", "POST /containers/prune",
	"POST /exec/*/start", "POST /exec/*/resize", "GET /exec/*/json",
	"GET /images/json", "GET /images/**/json", "GET /images/**/history",
	"GET /images/search", "POST /images/create", "POST /images/**/push",
	"POST /images/**/tag", "DELETE /images/**", "GET /images/**/get",
	"GET /images/get", "POST /images/load", "POST /images/prune",
	"POST /commit",
	"GET /networks", "GET /networks/*", "POST /networks/create",
	"POST /networks/*/connect", "POST /networks/*/disconnect",
	"DELETE /networks/*", "POST /networks/prune",
	"GET /volumes", "GET /volumes/*", "POST /volumes/create",
	"DELETE /volumes/*", "POST /volumes/prune",
	"POST /build", "POST /build/prune", "POST /session", "POST /grpc",
	"POST /auth", "GET /distribution/**/json",
	NULL
};

/* Validate a pattern; -1 with *why set when it is not one. */
int
endpoint_valid(const char *pat, const char **why)
{
	const char	*p = pat, *seg;
	size_t		 n;

	if (strlen(pat) > 256) {
		*why = "too long";
		return (-1);
	}
	if (*p == '*' && p[1] == ' ')
		p++;
	else {
		for (n = 0; isupper((unsigned char)*p); p++)
			n++;
		if (n == 0 || n > 15) {
			*why = "the method must be upper case (or *)";
			return (-1);
		}
	}
	if (*p++ != ' ' || *p != '/') {
		*why = "expected one space, then a path starting with /";
		return (-1);
	}
	if (strcmp(p, "/") == 0)
		return (0);
	while (*p == '/') {
		seg = ++p;
		while (*p != '\0' && *p != '/')
			p++;
		n = p - seg;
		if (n == 0) {
			*why = "empty path segment";
			return (-1);
		}
		if (memchr(seg, '*', n) != NULL && !((n == 1 ||
		    n == 2) && seg[0] == '*' && seg[n - 1] == '*')) {
			*why = "* and ** must be whole segments";
			return (-1);
		}
		if (memchr(seg, ' ', n) != NULL || memchr(seg, '?', n)) {
			*why = "white space or ? in the path";
			return (-1);
		}
	}
	if (*p != '\0') {
		*why = "bad path";
		return (-1);
	}
	return (0);
}

/* Split a path into segments (pointers and lengths); -1 when too many. */
static int
endpoint_split(const char *path, const char **seg, size_t *len, size_t *n)
{
	const char	*p = path, *s;

	*n = 0;
	if (*p != '/')
		return (-1);
	if (strcmp(p, "/") == 0)
		return (0);
	while (*p == '/') {
		s = ++p;
		while (*p != '\0' && *p != '/')
			p++;
		if (*n >= EP_MAX_SEGS)
			return (-1);
		seg[*n] = s;
		len[*n] = p - s;
		(*n)++;
	}
	return (0);
}

/* Match pattern segments against path segments (** is one or more). */
static int
endpoint_segs(const char *const *ps, const size_t *pl, size_t pn,
    const char *const *rs, const size_t *rl, size_t rn)
{
	size_t	k;

	if (pn == 0)
		return (rn == 0);
	if (pl[0] == 2 && ps[0][0] == '*' && ps[0][1] == '*') {
		for (k = 1; k <= rn; k++)
			if (endpoint_segs(ps + 1, pl + 1, pn - 1, rs + k,
			    rl + k, rn - k))
				return (1);
		return (0);
	}
	if (rn == 0)
		return (0);
	if (pl[0] == 1 && ps[0][0] == '*') {
		if (rl[0] == 0)
			return (0);
	} else if (pl[0] != rl[0] || memcmp(ps[0], rs[0], pl[0]) != 0)
		return (0);
	return (endpoint_segs(ps + 1, pl + 1, pn - 1, rs + 1, rl + 1,
	    rn - 1));
}

/* Split a request's route once, for every pattern it is matched with. */
void
endpoint_route(struct ep_route *r, const char *method, const char *route)
{
	r->method = method;
	r->mlen = strlen(method);
	r->ok = endpoint_split(route, r->seg, r->len, &r->n) == 0;
}

/* Does "METHOD /pattern" match a split route? */
int
endpoint_match_route(const char *pat, const struct ep_route *r)
{
	const char	*sp, *ps[EP_MAX_SEGS];
	size_t		 pl[EP_MAX_SEGS], pn, ml;

	if ((sp = strchr(pat, ' ')) == NULL)
		return (0);
	ml = sp - pat;
	if (!(ml == 1 && pat[0] == '*') &&
	    (r->mlen != ml || memcmp(pat, r->method, ml) != 0))
		return (0);
	/* Most patterns differ from the route in a literal first segment:
	 * tell that before splitting the pattern. */
	if (r->ok && r->n > 0 && sp[1] == '/' && sp[2] != '*') {
		for (pn = 0; sp[2 + pn] != '\0' && sp[2 + pn] != '/'; pn++)
			;
		if (pn != r->len[0] || memcmp(sp + 2, r->seg[0], pn) != 0)
			return (0);
	}
	if (!r->ok || endpoint_split(sp + 1, ps, pl, &pn) == -1)
		return (0);
	return (endpoint_segs(ps, pl, pn, r->seg, r->len, r->n));
}

/* Does "METHOD /pattern" match method and route? */
int
endpoint_match(const char *pat, const char *method, const char *route)
{
	struct ep_route	r;

	endpoint_route(&r, method, route);
	return (endpoint_match_route(pat, &r));
}

/* The first pattern of a list that matches, or NULL. */
const char *
endpoint_find_route(const struct strlist *l, const struct ep_route *r)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (endpoint_match_route(l->v[i], r))
			return (l->v[i]);
	return (NULL);
}

/* The first default pattern that matches, or NULL. */
const char *
endpoint_find_default_route(const struct ep_route *r)
{
	size_t	i;

	for (i = 0; endpoint_defaults[i] != NULL; i++)
		if (endpoint_match_route(endpoint_defaults[i], r))
			return (endpoint_defaults[i]);
	return (NULL);
}

/* The first pattern of a list that matches, or NULL. */
const char *
endpoint_find(const struct strlist *l, const char *method, const char *route)
{
	struct ep_route	r;

	endpoint_route(&r, method, route);
	return (endpoint_find_route(l, &r));
}

/* The first default pattern that matches, or NULL. */
const char *
endpoint_find_default(const char *method, const char *route)
{
	struct ep_route	r;

	endpoint_route(&r, method, route);
	return (endpoint_find_default_route(&r));
}
