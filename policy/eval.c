/*
 * Decisions: endpoint matching, dispatch to the body checks, results,
 * engine facts (the LOOKUP protocol).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

/*
 * snprintf(dst, size, "%s%s%s", a, b, c) without printf's machinery: the
 * allow path fills four result strings for every request.
 */
static void
res_set(char *dst, size_t size, const char *a, const char *b, const char *c)
{
	const char	*p[3] = { a, b, c };
	size_t		 o = 0, n, i;

	for (i = 0; i < 3 && o + 1 < size; i++) {
		n = strlen(p[i]);
		if (n > size - 1 - o)
			n = size - 1 - o;
		memcpy(dst + o, p[i], n);
		o += n;
	}
	dst[o] = '\0';
}

/* Set a denial (403, or status) with its rule and reason. */
int
ev_deny(struct eval *ev, int status, const char *rule, const char *fmt, ...)
{
	struct policy_result	*res = ev->res;
	va_list			 ap;

	res->verdict = POLICY_DENY;
	res->status = status;
	snprintf(res->rule, sizeof(res->rule), "%s", rule);
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
	res->lookup[0] = '\0';
	return (EV_DONE);
}

/* Set a 400: malformed or ambiguous input. */
int
ev_malformed(struct eval *ev, const char *fmt, ...)
{
	struct policy_result	*res = ev->res;
	va_list			 ap;

	res->verdict = POLICY_MALFORMED;
	res->status = 400;
	snprintf(res->rule, sizeof(res->rule), "malformed");
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
	res->lookup[0] = '\0';
	return (EV_DONE);
}

/* Record one injected change (its text cut at 1 KiB); the first one names
 * the rule. */
int
ev_mutation(struct eval *ev, const char *rule, const char *fmt, ...)
{
	struct policy_result	*res = ev->res;
	va_list			 ap;
	char			 buf[POLICY_MAX_STRING], *s;

	if (!ev->mutated)
		snprintf(res->rule, sizeof(res->rule), "%s", rule);
	ev->mutated = 1;
	if (res->nmutations >= POLICY_MAX_MUTATIONS)
		return (EV_OK);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((s = strdup(buf)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	res->mutations[res->nmutations++] = s;
	return (EV_OK);
}

/*
 * A query parameter a decision reads: NULL when absent. Given twice, the
 * engine and others disagree on which counts: 400.
 */
int
ev_param(struct eval *ev, const char *name, const char **val)
{
	const struct policy_req	*req = ev->req;
	size_t			 i;

	*val = NULL;
	for (i = 0; i < req->nparams; i++) {
		if (strcmp(req->params[i].name, name) != 0)
			continue;
		if (*val != NULL)
			return (ev_malformed(ev, "query parameter \"%s\" given"
			    " twice", name));
		*val = req->params[i].value != NULL ?
		    req->params[i].value : "";
	}
	return (EV_OK);
}

/*
 * ev_fact() for the engine path base + name + suffix, name percent-encoded
 * (slash: keep '/', as image names need).
 */
int
ev_fact_of(struct eval *ev, const char *base, const char *name, int slash,
    const char *suffix, const struct policy_fact **f)
{
	char	*enc, path[1024];
	int	 n;

	*f = NULL;
	if ((enc = ev_encode(name, slash)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	n = snprintf(path, sizeof(path), "%s%s%s", base, enc, suffix);
	free(enc);
	if (n < 0 || (size_t)n >= sizeof(path))
		return (ev_deny(ev, 403, "lookup_limit", "engine lookup path"
		    " too long"));
	return (ev_fact(ev, path, f));
}

/*
 * An engine fact: EV_OK with *f when the daemon supplied it, else a
 * POLICY_LOOKUP for it (or a denial when too many were needed).
 */
int
ev_fact(struct eval *ev, const char *path, const struct policy_fact **f)
{
	const struct policy_facts	*facts = ev->facts;
	size_t				 i;

	*f = NULL;
	for (i = 0; facts != NULL && i < facts->n && i < POLICY_MAX_FACTS;
	    i++)
		if (facts->fact[i].path != NULL &&
		    strcmp(facts->fact[i].path, path) == 0) {
			*f = &facts->fact[i];
			return (EV_OK);
		}
	if (facts != NULL && facts->n >= POLICY_MAX_FACTS)
		return (ev_deny(ev, 403, "lookup_limit", "the decision needs"
		    " more than %d engine lookups", POLICY_MAX_FACTS));
	if (strlen(path) >= sizeof(ev->res->lookup))
		return (ev_deny(ev, 403, "lookup_limit", "engine lookup path"
		    " too long"));
	ev->res->verdict = POLICY_LOOKUP;
	ev->res->status = 0;
	snprintf(ev->res->lookup, sizeof(ev->res->lookup), "%s", path);
	snprintf(ev->res->rule, sizeof(ev->res->rule), "lookup");
	snprintf(ev->res->reason, sizeof(ev->res->reason), "the decision"
	    " needs the engine's answer to GET %s", path);
	return (EV_DONE);
}

/* Parse a 200 fact's body as JSON; NULL (and 502, or 500 when memory
 * ran out) when unusable. */
json_t *
ev_fact_json(struct eval *ev, const struct policy_fact *f)
{
	json_error_t	 jerr;
	json_t		*j = NULL;

	if (f->body != NULL &&
	    (j = jf_loadb(f->body, f->body_len, 0, &jerr)) == NULL &&
	    jf_oom_error(&jerr)) {
		ev_deny(ev, 500, "internal", "out of memory");
		return (NULL);
	}
	if (j == NULL)
		ev_deny(ev, 502, "engine", "the engine's answer to %s is not"
		    " JSON", f->path);
	return (j);
}

/* Percent-encode a name for a lookup path; '/' kept when asked. */
char *
ev_encode(const char *s, int keep_slash)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 n = strlen(s), i, o = 0;
	char			*out;

	if (n > 1024 || (out = malloc(n * 3 + 1)) == NULL)
		return (NULL);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~' || c == ':' || c == '@' ||
		    (c == '/' && keep_slash))
			out[o++] = c;
		else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return (out);
}

/* A growing output buffer for ev_dump(). */
struct ev_buf {
	char	*b;
	size_t	 n, cap;
	int	 err;
};

static void
ev_buf_grow(struct ev_buf *o, size_t more)
{
	size_t	 cap;
	char	*nb;

	if (o->err)
		return;
	for (cap = o->cap ? o->cap : 256; cap < o->n + more + 1; cap *= 2)
		;
	if ((nb = realloc(o->b, cap)) == NULL) {
		o->err = 1;
		return;
	}
	o->b = nb;
	o->cap = cap;
}

static inline void
ev_buf_put(struct ev_buf *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		ev_buf_grow(o, n);
		if (o->err)
			return;
	}
	memcpy(o->b + o->n, s, n);
	o->n += n;
}

static inline void
ev_buf_putc(struct ev_buf *o, char c)
{
	if (o->n + 2 > o->cap) {
		ev_buf_grow(o, 1);
		if (o->err)
			return;
	}
	o->b[o->n++] = c;
}

/* A string as jansson's dump_string() writes it (no flags): ", \ and
 * control characters escaped, everything else (UTF-8) as it is. */
static void
ev_dump_string(struct ev_buf *o, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;
	const unsigned char	*run;
	char			 seq[6];

	ev_buf_putc(o, '"');
	while (p < end) {
		run = p;
		p += jf_plain_run(p, end, 0);
		if (p > run)
			ev_buf_put(o, (const char *)run, p - run);
		if (p == end)
			break;
		switch (*p) {
		case '"':
			ev_buf_put(o, "\\\"", 2);
			break;
		case '\\':
			ev_buf_put(o, "\\\\", 2);
			break;
		case '\b':
			ev_buf_put(o, "\\b", 2);
			break;
		case '\f':
			ev_buf_put(o, "\\f", 2);
			break;
		case '\n':
			ev_buf_put(o, "\\n", 2);
			break;
		case '\r':
			ev_buf_put(o, "\\r", 2);
			break;
		case '\t':
			ev_buf_put(o, "\\t", 2);
			break;
		default:
			seq[0] = '\\';
			seq[1] = 'u';
			seq[2] = '0';
			seq[3] = '0';
			seq[4] = hex[*p >> 4];
			seq[5] = hex[*p & 15];
			ev_buf_put(o, seq, 6);
			break;
		}
		p++;
	}
	ev_buf_putc(o, '"');
}

/* An integer as "%lld" writes it. */
static void
ev_dump_int(struct ev_buf *o, json_int_t v)
{
	char			 num[24], *p = num + sizeof(num);
	unsigned long long	 u;

	u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
	do {
		*--p = '0' + u % 10;
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	ev_buf_put(o, p, num + sizeof(num) - p);
}

/* json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) of the tree as jansson
 * holds it, byte for byte. */
static void
ev_dump(struct ev_buf *o, const struct jn *j)
{
	const struct jn	*c;
	json_t		*r;
	char		*s;

	switch (j->type) {
	case JN_OBJ:
		ev_buf_putc(o, '{');
		for (c = j->u.kid; c != NULL; c = c->next) {
			if (c != j->u.kid)
				ev_buf_putc(o, ',');
			ev_dump_string(o, c->key, c->keylen);
			ev_buf_putc(o, ':');
			ev_dump(o, c);
		}
		ev_buf_putc(o, '}');
		break;
	case JN_ARR:
		ev_buf_putc(o, '[');
		for (c = j->u.kid; c != NULL; c = c->next) {
			if (c != j->u.kid)
				ev_buf_putc(o, ',');
			ev_dump(o, c);
		}
		ev_buf_putc(o, ']');
		break;
	case JN_STR:
		ev_dump_string(o, j->u.s, j->n);
		break;
	case JN_INT:
		ev_dump_int(o, j->u.i);
		break;
	case JN_REAL:
		r = json_real(j->u.r);
		if (r == NULL || (s = json_dumps(r, JSON_COMPACT |
		    JSON_ENCODE_ANY)) == NULL) {
			json_decref(r);
			o->err = 1;
			break;
		}
		json_decref(r);
		ev_buf_put(o, s, strlen(s));
		free(s);
		break;
	case JN_TRUE:
		ev_buf_put(o, "true", 4);
		break;
	case JN_FALSE:
		ev_buf_put(o, "false", 5);
		break;
	default:
		ev_buf_put(o, "null", 4);
		break;
	}
}

/* Serialise a body to forward into the result (replacing any). */
int
ev_set_body_jn(struct eval *ev, const struct jn *j)
{
	struct ev_buf	o;

	memset(&o, 0, sizeof(o));
	ev_buf_grow(&o, ev->req->body_len + 256);
	ev_dump(&o, j);
	if (o.err) {
		free(o.b);
		return (ev_deny(ev, 500, "internal", "out of memory"));
	}
	o.b[o.n] = '\0';
	free(ev->res->body);
	ev->res->body = o.b;
	ev->res->body_len = o.n;
	return (EV_OK);
}

/* ev_set_body_jn() of a jansson body, labelled first (owner_label())
 * when label is set. */
int
ev_set_body(struct eval *ev, json_t *j, int label)
{
	struct jn_arena	*a, *save = ev->arena;
	struct jn	*n;
	int		 rc;

	if ((a = malloc(sizeof(*a))) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	jn_arena_init(a);
	ev->arena = a;
	if ((n = jn_from_json(a, j)) == NULL)
		rc = ev_deny(ev, 500, "internal", "out of memory");
	else if (label && owner_label(ev, n) != EV_OK)
		rc = EV_DONE;
	else
		rc = ev_set_body_jn(ev, n);
	ev->arena = save;
	jn_arena_free(a);
	free(a);
	return (rc);
}

/*
 * Parse a user spec ("UID" or "UID:GID", leading zeros allowed). -1 when
 * it is a name (or not a valid number); *root says whether UID is 0.
 */
int
ev_user_nonroot(const char *user, int *root)
{
	unsigned long long	 v = 0;
	const char		*p = user;

	if (!isdigit((unsigned char)*p))
		return (-1);
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > 0xffffffffULL)
			return (-1);
	}
	if (*p != '\0' && *p != ':')
		return (-1);
	*root = (v == 0);
	return (0);
}

/* Does an image list (RepoTags or RepoDigests) hold an allowed name? */
static int
ev_image_names_ok(struct eval *ev, json_t *names, int allow_local)
{
	struct imageref	 r;
	json_t		*e;
	size_t		 i;

	if (!json_is_array(names))
		return (0);
	json_array_foreach(names, i, e) {
		if (!json_is_string(e) ||
		    imageref_parse(json_string_value(e), &r) == -1)
			continue;
		if (imageref_under(r.repo, &ev->pr->trusted_registries) ||
		    (allow_local && imageref_under(r.repo,
		    &ev->pr->local_images)))
			return (1);
	}
	return (0);
}

/*
 * May this image be run (allow_local) or pulled? A name must be under
 * trusted_registries (or local_images to run); something the engine may
 * read as an image ID is looked up, and one of its names must pass.
 */
int
ev_image_allowed(struct eval *ev, const char *image, const char *what)
{
	const struct policy_fact	*f;
	struct imageref			 r;
	json_t				*j;
	int				 ok, allow_local;

	allow_local = strcmp(what, "pull") != 0;
	if (allow_local && imageref_is_id(image)) {
		if (ev_fact_of(ev, "/images/", image, 1, "/json", &f) != EV_OK)
			return (EV_DONE);
		if (f->status == 200) {
			if ((j = ev_fact_json(ev, f)) == NULL)
				return (EV_DONE);
			ok = ev_image_names_ok(ev, json_object_get(j,
			    "RepoTags"), 1) || ev_image_names_ok(ev,
			    json_object_get(j, "RepoDigests"), 1);
			json_decref(j);
			if (ok)
				return (EV_OK);
			return (ev_deny(ev, 403, "trusted_registries", "image"
			    " %s is known to the engine by ID only, with no"
			    " name under trusted_registries or local_images",
			    image));
		}
		if (f->status != 404)
			return (ev_deny(ev, 502, "engine", "the engine did"
			    " not answer the image lookup for %s (status %d)",
			    image, f->status));
		/* No such image: judge the string as a name below. */
	}
	if (imageref_parse(image, &r) == -1)
		return (ev_malformed(ev, "invalid image reference \"%s\"",
		    image));
	if (imageref_under(r.repo, &ev->pr->trusted_registries))
		return (EV_OK);
	if (allow_local && imageref_under(r.repo, &ev->pr->local_images))
		return (EV_OK);
	if (!allow_local)
		return (ev_deny(ev, 403, "trusted_registries", "pulling %s"
		    " (%s) is not allowed: add its registry or repository"
		    " to trusted_registries", image, r.repo));
	return (ev_deny(ev, 403, "trusted_registries", "image %s (%s) is"
	    " not under trusted_registries or local_images", image, r.repo));
}

/* /images/load: the image_load key. */
static int
eval_image_load(struct eval *ev)
{
	if (!ev->pr->image_load)
		return (ev_deny(ev, 403, "image_load", "loading image tar"
		    " archives is not allowed (profile key \"image_load\")"));
	return (EV_OK);
}

/* /session and /grpc: BuildKit, not inspected. */
static int
eval_buildkit(struct eval *ev)
{
	if (!ev->pr->buildkit)
		return (ev_deny(ev, 403, "buildkit", "BuildKit sessions are"
		    " not allowed (profile key \"buildkit\")"));
	return (EV_OK);
}

/* Is the method a read (GET, HEAD)? */
static int
eval_is_read(const struct eval *ev)
{
	return (strcmp(ev->req->method, "GET") == 0 ||
	    strcmp(ev->req->method, "HEAD") == 0);
}

/* Plugin writes: the plugins key. */
static int
eval_plugins(struct eval *ev)
{
	if (!eval_is_read(ev) && !ev->pr->plugins)
		return (ev_deny(ev, 403, "plugins", "plugin changes are not"
		    " allowed (profile key \"plugins\")"));
	return (EV_OK);
}

/* Swarm, service, secret, config and node writes: the swarm key. */
static int
eval_swarm(struct eval *ev)
{
	if (!eval_is_read(ev) && !ev->pr->swarm)
		return (ev_deny(ev, 403, "swarm", "swarm changes are not"
		    " allowed (profile key \"swarm\")"));
	return (EV_OK);
}

/* Exec start: the body must be JSON (or empty); forwarded as it came. */
static int
eval_json_body(struct eval *ev)
{
	json_t	*j;

	if ((j = jf_parse(ev, 1)) == NULL)
		return (EV_DONE);
	if (!json_is_object(j) && !json_is_null(j)) {
		json_decref(j);
		return (ev_malformed(ev, "the body must be a JSON object"));
	}
	json_decref(j);
	return (EV_OK);
}

/* Which check applies to which endpoint. */
static const struct {
	const char	*pat;
	int		(*fn)(struct eval *);
} eval_handlers[] = {
	{ "POST /containers/create", create_eval },
	{ "POST /containers/*/start", objects_start },
	{ "POST /containers/*/update", update_eval },
	{ "POST /containers/*/exec", exec_eval },
	{ "POST /exec/*/start", eval_json_body },
	{ "POST /commit", objects_commit },
	{ "POST /images/create", objects_image_create },
	{ "POST /images/**/tag", objects_tag },
	{ "POST /images/load", eval_image_load },
	{ "POST /build", objects_build },
	{ "POST /session", eval_buildkit },
	{ "POST /grpc", eval_buildkit },
	{ "POST /volumes/create", objects_volume_create },
	{ "POST /networks/create", objects_network_create },
	{ "* /plugins", eval_plugins },
	{ "* /plugins/**", eval_plugins },
	{ "* /swarm", eval_swarm },
	{ "* /swarm/**", eval_swarm },
	{ "* /services", eval_swarm },
	{ "* /services/**", eval_swarm },
	{ "* /secrets", eval_swarm },
	{ "* /secrets/**", eval_swarm },
	{ "* /configs", eval_swarm },
	{ "* /configs/**", eval_swarm },
	{ "* /nodes", eval_swarm },
	{ "* /nodes/**", eval_swarm },
	{ "* /tasks", eval_swarm },
	{ "* /tasks/**", eval_swarm },
};

/* Streamed bodies: tar and octet streams, relayed as they come. */
static const char *const eval_streams[] = {
	"POST /build",
	"PUT /containers/*/archive",
	"POST /images/load",
	"POST /images/create",
	"POST /session",
	"POST /grpc",
	"POST /plugins/create",
	"POST /plugins/*/push",
	NULL
};

/* How the daemon must read this request's body. */
enum policy_body_mode
policy_body_mode(const struct policy_req *req)
{
	struct ep_route	r;
	size_t		i;

	if (req->route == NULL)
		return (POLICY_BODY_BUFFER);
	endpoint_route(&r, req->method, req->route);
	for (i = 0; eval_streams[i] != NULL; i++)
		if (endpoint_match_route(eval_streams[i], &r))
			return (POLICY_BODY_STREAM);
	return (POLICY_BODY_BUFFER);
}

/* Decide one request. */
int
policy_eval(const struct policy *pol, const struct policy_profile *pr,
    const struct policy_req *req, const struct policy_facts *facts,
    struct policy_result *res)
{
	struct eval	 ev;
	struct ep_route	 route;
	const char	*pat, *allow;
	size_t		 i;
	int		 rc = EV_OK;

	memset(res, 0, sizeof(*res));
	if (pol == NULL || req == NULL) {
		res->verdict = POLICY_DENY;
		res->status = 500;
		snprintf(res->rule, sizeof(res->rule), "internal");
		snprintf(res->reason, sizeof(res->reason), "no policy");
		return (-1);
	}
	if (pr == NULL)
		pr = &pol->builtin;
	memset(&ev, 0, sizeof(ev));
	ev.pol = pol;
	ev.pr = pr;
	ev.req = req;
	ev.facts = facts;
	ev.res = res;
	res_set(res->profile, sizeof(res->profile), pr->name, "", "");
	res->verdict = POLICY_ALLOW;

	if (req->route == NULL || req->route[0] != '/') {
		ev_malformed(&ev, "bad request path");
		return (0);
	}
	endpoint_route(&route, req->method, req->route);
	pat = allow = pr->ep_allow_set ? endpoint_find_route(&pr->ep_allow,
	    &route) : endpoint_find_default_route(&route);
	if (pr->unrestricted) {
		if (pat != NULL)
			res_set(res->endpoint, sizeof(res->endpoint), pat, "",
			    "");
		res_set(res->rule, sizeof(res->rule), "unrestricted", "", "");
		res_set(res->reason, sizeof(res->reason), "profile ",
		    pr->name, " is unrestricted");
		return (0);
	}
	if ((pat = endpoint_find_route(&pr->ep_deny, &route)) != NULL) {
		snprintf(res->endpoint, sizeof(res->endpoint), "%s", pat);
		ev_deny(&ev, 403, "endpoints", "%s %s is denied by"
		    " endpoints.deny \"%s\"", req->method, req->route, pat);
		return (0);
	}
	pat = allow;
	if (pat == NULL) {
		ev_deny(&ev, 403, "endpoints", "%s %s is not in"
		    " endpoints.allow", req->method, req->route);
		return (0);
	}
	res_set(res->endpoint, sizeof(res->endpoint), pat, "", "");
	res_set(res->rule, sizeof(res->rule), "endpoints", "", "");
	res_set(res->reason, sizeof(res->reason),
	    "allowed by endpoints.allow \"", pat, "\"");
	rc = owner_eval(&ev);
	for (i = 0; rc == EV_OK &&
	    i < sizeof(eval_handlers) / sizeof(eval_handlers[0]); i++)
		if (endpoint_match_route(eval_handlers[i].pat, &route)) {
			rc = eval_handlers[i].fn(&ev);
			break;
		}
	if (rc == EV_OK && ev.mutated) {
		res->verdict = POLICY_MUTATE;
		snprintf(res->reason, sizeof(res->reason), "allowed with"
		    " changes the profile requires");
	}
	if (rc != EV_OK || res->verdict == POLICY_LOOKUP) {
		/* Nothing of a body half-built survives a refusal. */
		if (res->verdict != POLICY_ALLOW &&
		    res->verdict != POLICY_MUTATE) {
			free(res->body);
			res->body = NULL;
			res->body_len = 0;
			free(res->target);
			res->target = NULL;
			res->not_owned = 0;
			for (i = 0; i < res->nmutations; i++)
				free(res->mutations[i]);
			res->nmutations = 0;
		}
	}
	return (0);
}

/* Free what a result owns and clear it. */
void
policy_result_clear(struct policy_result *res)
{
	size_t	i;

	free(res->body);
	free(res->target);
	for (i = 0; i < res->nmutations && i < POLICY_MAX_MUTATIONS; i++)
		free(res->mutations[i]);
	memset(res, 0, sizeof(*res));
}

/* The audit word for a verdict. */
const char *
policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_ALLOW:
		return ("allow");
	case POLICY_MUTATE:
		return ("mutate");
	case POLICY_DENY:
		return ("deny");
	case POLICY_MALFORMED:
		return ("malformed");
	case POLICY_LOOKUP:
		return ("lookup");
	}
	return ("unknown");
}
