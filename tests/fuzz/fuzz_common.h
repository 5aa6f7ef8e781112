/*
 * Helpers shared by the policy fuzz targets (header-only: each target is
 * one program).
 */
#ifndef DOCKGATE_FUZZ_COMMON_H
#define DOCKGATE_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define FCHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s: invariant failed: %s: ", __FILE__,	\
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/*
 * Known, reported findings can be skipped to fuzz past them:
 * DOCKGATE_FUZZ_LENIENT="token,token" (tokens are listed in README.md).
 */
static inline int
fuzz_lenient(const char *tok)
{
	static const char	*env;
	static int		 init;
	const char		*p;
	size_t			 n = strlen(tok);

	if (!init) {
		env = getenv("DOCKGATE_FUZZ_LENIENT");
		init = 1;
	}
	for (p = env; p != NULL && (p = strstr(p, tok)) != NULL; p += n)
		if ((p == env || p[-1] == ',') && (p[n] == '\0' ||
		    p[n] == ','))
			return 1;
	return 0;
}

/* Two parsed requests carry the same meaning. */
static inline void
fuzz_req_same(const struct policy_req *a, const struct policy_req *b,
    const char *what)
{
	size_t	i;

	FCHECK(strcmp(a->method, b->method) == 0, "%s: method", what);
	FCHECK(strcmp(a->path, b->path) == 0, "%s: path \"%s\" vs \"%s\"",
	    what, a->path, b->path);
	FCHECK(strcmp(a->route, b->route) == 0, "%s: route \"%s\" vs \"%s\"",
	    what, a->route, b->route);
	FCHECK(strcmp(a->version, b->version) == 0, "%s: version", what);
	FCHECK(a->nparams == b->nparams, "%s: %zu vs %zu params", what,
	    a->nparams, b->nparams);
	for (i = 0; i < a->nparams; i++) {
		FCHECK(strcmp(a->params[i].name, b->params[i].name) == 0,
		    "%s: param %zu name \"%s\" vs \"%s\"", what, i,
		    a->params[i].name, b->params[i].name);
		FCHECK(strcmp(a->params[i].value, b->params[i].value) == 0,
		    "%s: param %zu value \"%s\" vs \"%s\"", what, i,
		    a->params[i].value, b->params[i].value);
	}
}

/*
 * The forwarded target of a parsed request parses back to the same
 * request, and is itself a fixed point of target(parse()).
 */
static inline void
fuzz_target_fixed_point(const struct policy_req *req)
{
	struct policy_req	 r2;
	const char		*why = "?";
	char			*t, *t2;

	if ((t = policy_req_target(req)) == NULL)
		return;		/* out of memory */
	FCHECK(policy_req_parse(&r2, req->method, t, strlen(t), &why) == 0,
	    "target \"%s\" (path \"%s\") does not parse again: %s", t,
	    req->path, why);
	fuzz_req_same(req, &r2, t);
	if ((t2 = policy_req_target(&r2)) != NULL)
		FCHECK(strcmp(t, t2) == 0, "target \"%s\" -> \"%s\"", t, t2);
	free(t2);
	free(t);
	policy_req_clear(&r2);
}

#endif /* DOCKGATE_FUZZ_COMMON_H */
