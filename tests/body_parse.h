/*
 * The create path's body parser (jn_parse(): in place on a copy of the
 * body, errors handed to the full reader) against json_loadb() as the
 * policy calls it. Shared by check_policy and fuzz_policy.
 */
#ifndef BODY_PARSE_H
#define BODY_PARSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

/*
 * Does jn_parse() answer data differently from json_loadb()? It must give
 * the same value, or refuse with jansson's message in its reason; a body
 * of white space only is the policy's own "empty" refusal. 1 and why
 * filled in when it differs.
 */
static int
body_parser_differs(const void *data, size_t size, char *why, size_t len)
{
	const unsigned char	*t = data;
	struct policy_req	 req;
	struct policy_result	 res;
	struct eval		 ev;
	struct jn_arena		*a;
	struct jn		*n;
	json_error_t		 e;
	json_t			*j, *k = NULL;
	char			*dj = NULL, *dk = NULL;
	size_t			 i;
	int			 differs = 0;

	if ((a = malloc(sizeof(*a))) == NULL) {
		snprintf(why, len, "out of memory");
		return (1);
	}
	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	memset(&ev, 0, sizeof(ev));
	req.body = t;
	req.body_len = size;
	ev.req = &req;
	ev.res = &res;
	jn_arena_init(a);
	n = jn_parse(&ev, a, 0);
	j = json_loadb(data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &e);
	for (i = 0; i < size && t[i] != '\0' && strchr(" \t\r\n", t[i]); i++)
		;
	if (i == size) {
		if ((differs = n != NULL || strcmp(res.reason,
		    "the request body is empty") != 0))
			snprintf(why, len, "white space: %s", n != NULL ?
			    "parsed" : res.reason);
	} else if (j == NULL) {
		if ((differs = n != NULL || strstr(res.reason, e.text) == NULL))
			snprintf(why, len, "jansson refuses (%s), the parser %s",
			    e.text, n != NULL ? "parses" : res.reason);
	} else if (n == NULL) {
		differs = 1;
		snprintf(why, len, "jansson loads, the parser refuses (%s)",
		    res.reason);
	} else {
		k = jn_to_json(n);
		dj = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		dk = k != NULL ? json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY) :
		    NULL;
		if ((differs = dj == NULL || dk == NULL || strcmp(dj, dk) != 0))
			snprintf(why, len, "values %s (parser) vs %s (jansson)",
			    dk ? dk : "-", dj ? dj : "-");
	}
	free(dj);
	free(dk);
	json_decref(k);
	json_decref(j);
	jn_arena_free(a);
	free(a);
	return (differs);
}

#endif
