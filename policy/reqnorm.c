/*
 * Request-target normalisation the way the engine routes it: Go's URL
 * parsing percent-decodes the path (%2F included) before gorilla/mux matches
 * it, unclean paths only get a redirect, the /v[0-9.]+ prefix is optional,
 * and the query is read by url.ParseQuery. dockgate decides on the decoded
 * form and forwards it re-encoded, so both sides see one meaning.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

#define REQNORM_MAX_PARAMS	256

static int	 hexval(int);
static int	 unescape(const char *, size_t, int, char **, const char **);
static int	 path_clean(const char *);
static int	 parse_query(struct policy_req *, const char *, size_t,
		    const char **);

/* Value of one hex digit, or -1. */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode len bytes of s into a new string; in a query, '+' is a
 * space. A bad escape or a decoded NUL is an error, as a C string could not
 * carry what the engine would see.
 */
static int
unescape(const char *s, size_t len, int query, char **out, const char **why)
{
	char	*d;
	size_t	 i, o = 0;
	int	 hi, lo;

	if ((d = malloc(len + 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (i + 2 >= len) {
				free(d);
				*why = "bad percent-encoding";
				return -1;
			}
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(d);
				*why = hi < 0 || lo < 0 ?
				    "bad percent-encoding" :
				    "encoded NUL byte";
				return -1;
			}
			d[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (query && s[i] == '+')
			d[o++] = ' ';
		else
			d[o++] = s[i];
	}
	d[o] = '\0';
	*out = d;
	return 0;
}

/*
 * Is a decoded path clean in the sense of gorilla/mux's cleanPath (Go's
 * path.Clean with a trailing slash kept)? No "//", "/./", "/../", and no
 * trailing "/." or "/..".
 */
static int
path_clean(const char *p)
{
	const char	*seg;
	size_t		 n;

	if (p[0] != '/')
		return 0;
	for (seg = p + 1;; seg += n + 1) {
		n = strcspn(seg, "/");
		if (n == 0 && seg[0] == '/')
			return 0;		/* "//" */
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		if (seg[n] == '\0')
			break;
	}
	return 1;
}

/* Percent-decode a path and require it to be clean. */
int
policy_path_decode(const char *raw, size_t len, char **out, const char **why)
{
	char	*p;

	if (unescape(raw, len, 0, &p, why) == -1)
		return -1;
	if (!path_clean(p)) {
		free(p);
		*why = "path is not clean after percent-decoding";
		return -1;
	}
	*out = p;
	return 0;
}

/* Split a query as url.ParseQuery does, refusing what Go would drop. */
static int
parse_query(struct policy_req *req, const char *q, size_t len,
    const char **why)
{
	const char	*seg, *end = q + len, *eq;
	size_t		 n;
	struct policy_param *pp;

	for (seg = q; seg < end; seg += n + 1) {
		const char *amp = memchr(seg, '&', (size_t)(end - seg));

		n = amp != NULL ? (size_t)(amp - seg) : (size_t)(end - seg);
		if (memchr(seg, '\0', n) != NULL) {
			*why = "NUL byte in query";
			return -1;
		}
		if (n == 0)
			continue;
		if (memchr(seg, ';', n) != NULL) {
			*why = "semicolon in query";
			return -1;
		}
		if (req->nparams == REQNORM_MAX_PARAMS) {
			*why = "too many query parameters";
			return -1;
		}
		pp = realloc(req->params,
		    (req->nparams + 1) * sizeof(*req->params));
		if (pp == NULL) {
			*why = "out of memory";
			return -1;
		}
		req->params = pp;
		pp = &req->params[req->nparams];
		pp->name = pp->value = NULL;
		eq = memchr(seg, '=', n);
		if (unescape(seg, eq ? (size_t)(eq - seg) : n, 1, &pp->name,
		    why) == -1)
			return -1;
		if (unescape(eq ? eq + 1 : seg + n,
		    eq ? n - (size_t)(eq - seg) - 1 : 0, 1, &pp->value,
		    why) == -1) {
			free(pp->name);
			return -1;
		}
		req->nparams++;
	}
	return 0;
}

/*
 * Fill req from a method and a raw request target (origin or absolute form).
 * Returns 0, or -1 with *why saying what makes the target malformed.
 */
int
policy_req_parse(struct policy_req *req, const char *method,
    const char *target, size_t len, const char **why)
{
	const char	*path, *q, *end = target + len, *r;
	size_t		 plen;

	memset(req, 0, sizeof(*req));
	if (strlen(method) >= sizeof(req->method) || method[0] == '\0') {
		*why = "bad method";
		return -1;
	}
	strcpy(req->method, method);
	if (memchr(target, '#', len) != NULL) {
		*why = "fragment in request target";
		return -1;
	}
	path = target;
	/* An absolute form: past the scheme and authority (target is len
	 * bytes, not a C string). */
	if (len > 7 && strncasecmp(target, "http://", 7) == 0)
		path = target + 7;
	else if (len > 8 && strncasecmp(target, "https://", 8) == 0)
		path = target + 8;
	if (path != target)
		while (path < end && *path != '/' && *path != '?')
			path++;
	if (path >= end || *path != '/') {
		*why = "request target is not an absolute path";
		return -1;
	}
	q = memchr(path, '?', (size_t)(end - path));
	plen = q ? (size_t)(q - path) : (size_t)(end - path);
	if (policy_path_decode(path, plen, &req->path, why) == -1)
		goto fail;
	req->route = req->path;
	/* The engine's optional version prefix: /v[0-9.]+ then a slash. */
	if (req->path[1] == 'v') {
		r = req->path + 2;
		while (*r != '\0' && (isdigit((unsigned char)*r) || *r == '.'))
			r++;
		if (r > req->path + 2 && *r == '/' &&
		    (size_t)(r - req->path - 2) < sizeof(req->version)) {
			memcpy(req->version, req->path + 2,
			    (size_t)(r - req->path - 2));
			req->route = r;
		} else if (r > req->path + 2 && *r == '/') {
			*why = "API version too long";
			goto fail;
		}
	}
	if (q != NULL && parse_query(req, q + 1, (size_t)(end - q - 1),
	    why) == -1)
		goto fail;
	return 0;
 fail:
	policy_req_clear(req);
	return -1;
}

/* Release what policy_req_parse() allocated. */
void
policy_req_clear(struct policy_req *req)
{
	size_t	 i;

	for (i = 0; i < req->nparams; i++) {
		free(req->params[i].name);
		free(req->params[i].value);
	}
	free(req->params);
	free(req->path);
	req->params = NULL;
	req->nparams = 0;
	req->path = NULL;
	req->route = NULL;
}

/* First value of a query parameter; *count gets how many times it came. */
const char *
policy_req_param(const struct policy_req *req, const char *name, int *count)
{
	const char	*v = NULL;
	size_t		 i;
	int		 n = 0;

	for (i = 0; i < req->nparams; i++) {
		if (strcmp(req->params[i].name, name) != 0)
			continue;
		if (n++ == 0)
			v = req->params[i].value;
	}
	if (count != NULL)
		*count = n;
	return v;
}

/*
 * Percent-encode s for a path (query == 0: '/' and sub-delims kept) or a
 * query component (only unreserved kept). Returns a new string.
 */
char *
policy_encode(const char *s, int query)
{
	static const char hex[] = "0123456789ABCDEF";
	const char	*keep = query ? "-._~" : "-._~/!$&'()*+,;=:@";
	size_t		 len = strlen(s), o = 0;
	char		*d;

	if ((d = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr(keep, c) != NULL)
			d[o++] = (char)c;
		else {
			d[o++] = '%';
			d[o++] = hex[c >> 4];
			d[o++] = hex[c & 15];
		}
	}
	d[o] = '\0';
	return d;
}

/* The target dockgate forwards: the decoded path and query, re-encoded. */
char *
policy_req_target(const struct policy_req *req)
{
	char	*out, *p, *n, *v, *t;
	size_t	 i, len, cap;

	if ((p = policy_encode(req->path, 0)) == NULL)
		return NULL;
	len = strlen(p);
	cap = len + 1;
	out = p;
	for (i = 0; i < req->nparams; i++) {
		n = policy_encode(req->params[i].name, 1);
		v = policy_encode(req->params[i].value, 1);
		if (n == NULL || v == NULL ||
		    (t = realloc(out, cap + strlen(n) + strlen(v) + 2)) == NULL) {
			free(n);
			free(v);
			free(out);
			return NULL;
		}
		out = t;
		cap += strlen(n) + strlen(v) + 2;
		len += (size_t)sprintf(out + len, "%c%s=%s", i ? '&' : '?', n,
		    v);
		free(n);
		free(v);
	}
	return out;
}
