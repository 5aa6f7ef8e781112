/*
 * Legacy-builder Dockerfiles: FROM and COPY --from name images, which
 * must pass trusted_registries (or be local_images the engine has).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-int.h"

#define BUILD_MAX_TEXT		(1024 * 1024)
#define BUILD_MAX_LINE		8192
#define BUILD_MAX_STAGES	64
#define BUILD_MAX_ARGS		64

/* Meta ARGs (before the first FROM) and stage names. */
struct build_state {
	char	*arg_name[BUILD_MAX_ARGS];
	char	*arg_val[BUILD_MAX_ARGS];
	size_t	 nargs;
	char	*stage[BUILD_MAX_STAGES];
	size_t	 nstages;
	json_t	*buildargs;
	char	 escape;
};

/* The Dockerfile's path inside the context: dockerfile= or Dockerfile. */
const char *
policy_build_dockerfile(const struct policy_req *req)
{
	size_t	i;

	for (i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, "dockerfile") == 0 &&
		    req->params[i].value != NULL &&
		    req->params[i].value[0] != '\0')
			return (req->params[i].value);
	return ("Dockerfile");
}

/* Free what the state owns. */
static void
build_state_free(struct build_state *st)
{
	size_t	i;

	for (i = 0; i < st->nargs; i++) {
		free(st->arg_name[i]);
		free(st->arg_val[i]);
	}
	for (i = 0; i < st->nstages; i++)
		free(st->stage[i]);
	json_decref(st->buildargs);
}

/* A meta ARG's value: build-arg first, then its default; NULL unset. */
static const char *
build_arg(struct build_state *st, const char *name, size_t n)
{
	json_t	*v;
	size_t	 i;

	for (i = 0; i < st->nargs; i++) {
		if (strlen(st->arg_name[i]) != n ||
		    strncmp(st->arg_name[i], name, n) != 0)
			continue;
		v = json_object_get(st->buildargs, st->arg_name[i]);
		if (json_is_string(v))
			return (json_string_value(v));
		return (st->arg_val[i]);
	}
	return (NULL);
}

/* Expand $VAR, ${VAR}, ${VAR:-w}, ${VAR:+w} with the meta ARGs. */
static int
build_expand(struct build_state *st, const char *in, char *out, size_t len)
{
	const char	*p = in, *name, *val, *word = NULL;
	size_t		 o = 0, n, wn = 0;
	int		 brace, op;

	while (*p != '\0') {
		if (*p == st->escape && p[1] == '$') {
			if (o + 1 >= len)
				return (-1);
			out[o++] = '$';
			p += 2;
			continue;
		}
		if (*p != '$') {
			if (o + 1 >= len)
				return (-1);
			out[o++] = *p++;
			continue;
		}
		p++;
		brace = (*p == '{');
		if (brace)
			p++;
		name = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		n = p - name;
		op = 0;
		if (brace) {
			if (*p == ':' && (p[1] == '-' || p[1] == '+')) {
				op = p[1];
				word = p + 2;
				p = strchr(word, '}');
				if (p == NULL)
					return (-1);
				wn = p - word;
			}
			if (*p != '}')
				return (-1);
			p++;
		}
		if (n == 0)
			return (-1);
		val = build_arg(st, name, n);
		if (op != 0) {
			int use_word = op == '-' ? (val == NULL ||
			    val[0] == '\0') : (val != NULL && val[0] != '\0');

			if (op == '+' || use_word) {
				if (!use_word)
					continue;
				if (o + wn >= len)
					return (-1);
				memcpy(out + o, word, wn);
				o += wn;
				continue;
			}
		}
		if (val == NULL)
			val = "";
		if (o + strlen(val) >= len)
			return (-1);
		memcpy(out + o, val, strlen(val));
		o += strlen(val);
	}
	out[o] = '\0';
	return (0);
}

/* Is name a stage defined so far (or a stage index)? */
static int
build_is_stage(struct build_state *st, const char *name)
{
	size_t	i;

	for (i = 0; name[i] != '\0'; i++)
		if (!isdigit((unsigned char)name[i]))
			break;
	if (name[0] != '\0' && name[i] == '\0')
		return (1);
	for (i = 0; i < st->nstages; i++)
		if (strcasecmp(st->stage[i], name) == 0)
			return (1);
	return (0);
}

/* An image a build uses: allowed like a run, and a local name must exist
 * (else the builder would pull it from a registry). */
static int
build_image(struct eval *ev, struct build_state *st, const char *image,
    const char *what)
{
	const struct policy_fact	*f;
	struct imageref			 r;

	if (strcasecmp(image, "scratch") == 0 || build_is_stage(st, image))
		return (EV_OK);
	if (ev_image_allowed(ev, image, "run") != EV_OK)
		return (EV_DONE);
	if (imageref_parse(image, &r) == -1 ||
	    imageref_under(r.repo, &ev->pr->trusted_registries))
		return (EV_OK);
	if (ev_fact_of(ev, "/images/", image, 1, "/json", &f) != EV_OK)
		return (EV_DONE);
	if (f->status != 200)
		return (ev_deny(ev, 403, "local_images", "%s %s: a local image"
		    " the engine does not have would be pulled from a"
		    " registry", what, image));
	return (EV_OK);
}

/* Split the next word off *p (white space separated). */
static char *
build_word(char **p)
{
	char	*w;

	while (isspace((unsigned char)**p))
		(*p)++;
	if (**p == '\0')
		return (NULL);
	w = *p;
	while (**p != '\0' && !isspace((unsigned char)**p))
		(*p)++;
	if (**p != '\0')
		*(*p)++ = '\0';
	return (w);
}

/* One logical instruction line. */
static int
build_instruction(struct eval *ev, struct build_state *st, char *line)
{
	char	*p = line, *ins, *w, *eq, exp[BUILD_MAX_LINE];

	if ((ins = build_word(&p)) == NULL)
		return (EV_OK);
	if (strcasecmp(ins, "ARG") == 0 && st->nstages == 0) {
		while ((w = build_word(&p)) != NULL) {
			if (st->nargs >= BUILD_MAX_ARGS)
				return (ev_deny(ev, 403, "build", "too many"
				    " ARGs before FROM"));
			eq = strchr(w, '=');
			if (eq != NULL)
				*eq++ = '\0';
			if (eq != NULL && eq[0] == '"' && strlen(eq) >= 2 &&
			    eq[strlen(eq) - 1] == '"') {
				eq[strlen(eq) - 1] = '\0';
				eq++;
			}
			st->arg_name[st->nargs] = strdup(w);
			st->arg_val[st->nargs] = eq != NULL ? strdup(eq) : NULL;
			if (st->arg_name[st->nargs] == NULL ||
			    (eq != NULL && st->arg_val[st->nargs] == NULL)) {
				free(st->arg_name[st->nargs]);
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			}
			st->nargs++;
		}
		return (EV_OK);
	}
	if (strcasecmp(ins, "FROM") == 0) {
		while ((w = build_word(&p)) != NULL && strncmp(w, "--", 2) == 0)
			;
		if (w == NULL)
			return (ev_malformed(ev, "Dockerfile: FROM without an"
			    " image"));
		if (build_expand(st, w, exp, sizeof(exp)) == -1 ||
		    exp[0] == '\0')
			return (ev_deny(ev, 403, "trusted_registries",
			    "Dockerfile: FROM %s cannot be resolved", w));
		if (build_image(ev, st, exp, "FROM") != EV_OK)
			return (EV_DONE);
		if (st->nstages >= BUILD_MAX_STAGES)
			return (ev_deny(ev, 403, "build", "too many stages"));
		w = build_word(&p);
		if (w != NULL && strcasecmp(w, "AS") == 0)
			w = build_word(&p);
		else
			w = NULL;
		if ((st->stage[st->nstages] = strdup(w != NULL ? w :
		    "")) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		st->nstages++;
		return (EV_OK);
	}
	if (strcasecmp(ins, "COPY") == 0 || strcasecmp(ins, "ADD") == 0) {
		while ((w = build_word(&p)) != NULL &&
		    strncmp(w, "--", 2) == 0) {
			if (strncasecmp(w, "--from=", 7) != 0)
				continue;
			w += 7;
			if (strchr(w, '$') != NULL)
				return (ev_deny(ev, 403, "trusted_registries",
				    "Dockerfile: COPY --from=%s cannot be"
				    " resolved", w));
			if (build_image(ev, st, w, "COPY --from") != EV_OK)
				return (EV_DONE);
		}
	}
	return (EV_OK);
}

/* Read the parser directives (escape) at the top. */
static void
build_directives(struct build_state *st, const char *text, size_t len)
{
	const char	*p = text, *end = text + len, *e;
	char		 line[128];
	size_t		 n;

	while (p < end) {
		e = memchr(p, '\n', end - p);
		n = e != NULL ? (size_t)(e - p) : (size_t)(end - p);
		if (n == 0 || n >= sizeof(line) || *p != '#')
			return;
		memcpy(line, p, n);
		line[n] = '\0';
		if (strncasecmp(line, "# escape=", 9) == 0 ||
		    strncasecmp(line, "#escape=", 8) == 0) {
			const char *v = strchr(line, '=') + 1;

			if (v[0] == '`' || v[0] == '\\')
				st->escape = v[0];
		}
		p += n + 1;
	}
}

/*
 * Decide a legacy build's Dockerfile (the daemon scans it out of the
 * tar context): every FROM and COPY --from image must pass. The result
 * is ALLOW, DENY, MALFORMED or a LOOKUP (as for policy_eval()).
 */
int
policy_eval_dockerfile(const struct policy *pol,
    const struct policy_profile *pr, const struct policy_req *req,
    const char *text, size_t len, const struct policy_facts *facts,
    struct policy_result *res)
{
	struct build_state	 st;
	struct eval		 ev;
	const char		*ba = NULL, *p, *end, *e;
	json_error_t		 jerr;
	char			*logical;
	size_t			 n, o = 0, i;
	int			 rc = EV_OK, cont = 0;

	memset(res, 0, sizeof(*res));
	memset(&ev, 0, sizeof(ev));
	memset(&st, 0, sizeof(st));
	if (pr == NULL)
		pr = &pol->builtin;
	ev.pol = pol;
	ev.pr = pr;
	ev.req = req;
	ev.facts = facts;
	ev.res = res;
	res->verdict = POLICY_ALLOW;
	snprintf(res->profile, sizeof(res->profile), "%s", pr->name);
	snprintf(res->rule, sizeof(res->rule), "build");
	if (pr->unrestricted) {
		snprintf(res->rule, sizeof(res->rule), "unrestricted");
		return (0);
	}
	if (len > BUILD_MAX_TEXT) {
		ev_deny(&ev, 413, "build", "Dockerfile too large");
		return (0);
	}
	st.escape = '\\';
	for (i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, "buildargs") == 0) {
			if (ba != NULL) {
				ev_malformed(&ev, "buildargs given twice");
				return (0);
			}
			ba = req->params[i].value;
		}
	if (ba != NULL && ba[0] != '\0' &&
	    (st.buildargs = jf_loadb(ba, strlen(ba), JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		if (jf_oom_error(&jerr))
			ev_deny(&ev, 500, "internal", "out of memory");
		else
			ev_malformed(&ev, "buildargs is not JSON");
		return (0);
	}
	build_directives(&st, text, len);
	if ((logical = malloc(BUILD_MAX_LINE)) == NULL) {
		build_state_free(&st);
		ev_deny(&ev, 500, "internal", "out of memory");
		return (0);
	}
	for (p = text, end = text + len; p < end && rc == EV_OK; p = e + 1) {
		if ((e = memchr(p, '\n', end - p)) == NULL)
			e = end;
		n = e - p;
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' ||
		    p[n - 1] == '\t'))
			n--;
		i = 0;
		while (i < n && isspace((unsigned char)p[i]))
			i++;
		if (i < n && p[i] == '#')
			continue;	/* a comment, even in a continuation */
		if (i == n && cont)
			continue;
		if (!cont)
			o = 0;
		cont = n > 0 && p[n - 1] == st.escape;
		if (cont)
			n--;
		if (o + n + 2 > BUILD_MAX_LINE) {
			rc = ev_deny(&ev, 403, "build", "Dockerfile line too"
			    " long");
			break;
		}
		memcpy(logical + o, p, n);
		o += n;
		logical[o] = '\0';
		if (cont) {
			logical[o++] = ' ';
			logical[o] = '\0';
			continue;
		}
		rc = build_instruction(&ev, &st, logical);
	}
	if (rc == EV_OK && cont)
		rc = build_instruction(&ev, &st, logical);
	if (rc == EV_OK && st.nstages == 0)
		ev_malformed(&ev, "Dockerfile: no FROM");
	free(logical);
	build_state_free(&st);
	return (0);
}
