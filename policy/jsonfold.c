/*
 * Go's JSON view of a body: keys match struct fields case-insensitively
 * with Unicode simple folding (U+017F folds to s, U+212A to k), as in
 * Go's encoding/json fold.go. Bodies are re-built with each field once,
 * under its canonical name; two keys landing on one field are refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-int.h"

/*
 * Fold a key the way Go compares it with an ASCII field name: ASCII
 * letters to upper case, U+017F (long s) to S, U+212A (Kelvin) to K;
 * any other non-ASCII rune is kept (it cannot equal an ASCII name).
 */
int
jf_fold(const char *key, char *out, size_t len)
{
	const unsigned char	*p = (const unsigned char *)key;
	size_t			 o = 0;

	while (*p != '\0') {
		if (o + 1 >= len)
			return (-1);
		if (*p < 0x80) {
			out[o++] = (*p >= 'a' && *p <= 'z') ? *p - 32 : *p;
			p++;
		} else if (p[0] == 0xc5 && p[1] == 0xbf) {
			out[o++] = 'S';		/* U+017F */
			p += 2;
		} else if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
			out[o++] = 'K';		/* U+212A */
			p += 3;
		} else {
			out[o++] = (char)*p++;	/* not ASCII: no match */
		}
	}
	out[o] = '\0';
	return (0);
}

/* The index of the field key lands on, or -1. */
int
jf_field_index(const struct jf_schema *s, const char *key)
{
	char	f[JF_KEY_MAX];
	size_t	i;

	if (jf_fold(key, f, sizeof(f)) == -1)
		return (-1);
	for (i = 0; i < s->nfields; i++)
		if (strcasecmp(f, s->fields[i].name) == 0)
			return ((int)i);
	return (-1);
}

/* Parse the request body strictly (exact duplicates and trailing bytes
 * refused); an empty body is JSON null when allowed. */
json_t *
jf_parse(struct eval *ev, int allow_empty)
{
	const struct policy_req	*req = ev->req;
	json_error_t		 jerr;
	json_t			*j;
	size_t			 i;

	for (i = 0; req->body != NULL && i < req->body_len; i++)
		if (req->body[i] != ' ' && req->body[i] != '\t' &&
		    req->body[i] != '\r' && req->body[i] != '\n')
			break;
	if (req->body == NULL || i == req->body_len) {
		if (allow_empty)
			return (json_null());
		ev_malformed(ev, "the request body is empty");
		return (NULL);
	}
	j = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		ev_malformed(ev, "bad JSON body at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return (NULL);
	}
	return (j);
}

/* Type mismatch: the engine's decoder would fail; refuse as malformed. */
static int
jf_type_error(struct eval *ev, const char *path, const char *want)
{
	return (ev_malformed(ev, "%s: expected %s", path, want));
}

/* Canonicalise a []string. */
static int
jf_strlist(struct eval *ev, json_t *v, const char *path, json_t **out)
{
	json_t	*a, *e;
	size_t	 i;

	if (!json_is_array(v))
		return (jf_type_error(ev, path, "a list of strings"));
	json_array_foreach(v, i, e)
		if (!json_is_string(e))
			return (jf_type_error(ev, path, "a list of strings"));
	if ((a = json_deep_copy(v)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	*out = a;
	return (EV_OK);
}

/* Canonicalise an object of string values. */
static int
jf_strmap(struct eval *ev, json_t *v, const char *path, json_t **out)
{
	const char	*k;
	json_t		*e;

	if (!json_is_object(v))
		return (jf_type_error(ev, path, "an object of strings"));
	json_object_foreach(v, k, e)
		if (!json_is_string(e))
			return (jf_type_error(ev, path,
			    "an object of strings"));
	if ((*out = json_deep_copy(v)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	return (EV_OK);
}

/* Canonicalise one value of a field; *out is NULL for a JSON null. */
int
jf_canon_value(struct eval *ev, const struct jf_field *f, json_t *v,
    const char *path, json_t **out)
{
	char		 p[300];
	const char	*k;
	json_t		*o = NULL, *e, *c;
	size_t		 i;

	*out = NULL;
	if (json_is_null(v))
		return (EV_OK);
	switch (f->type) {
	case JF_BOOL:
		if (!json_is_boolean(v))
			return (jf_type_error(ev, path, "true or false"));
		*out = json_boolean(json_is_true(v));
		return (EV_OK);
	case JF_INT:
	case JF_UINT:
		if (!json_is_integer(v) || (f->type == JF_UINT &&
		    json_integer_value(v) < 0))
			return (jf_type_error(ev, path, "an integer"));
		*out = json_integer(json_integer_value(v));
		break;
	case JF_STR:
		if (!json_is_string(v))
			return (jf_type_error(ev, path, "a string"));
		*out = json_stringn(json_string_value(v),
		    json_string_length(v));
		break;
	case JF_STRLIST:
		return (jf_strlist(ev, v, path, out));
	case JF_STRSLICE:
		if (json_is_string(v)) {
			if ((o = json_array()) == NULL ||
			    json_array_append(o, v) == -1) {
				json_decref(o);
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			}
			*out = o;
			return (EV_OK);
		}
		return (jf_strlist(ev, v, path, out));
	case JF_STRMAP:
		return (jf_strmap(ev, v, path, out));
	case JF_SET:
		if (!json_is_object(v))
			return (jf_type_error(ev, path, "an object"));
		if ((o = json_object()) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		json_object_foreach(v, k, e) {
			if (!json_is_object(e) && !json_is_null(e)) {
				json_decref(o);
				return (jf_type_error(ev, path,
				    "an object of {}"));
			}
			if (json_object_set_new(o, k, json_object()) == -1) {
				json_decref(o);
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			}
		}
		*out = o;
		return (EV_OK);
	case JF_OBJ:
		if (!json_is_object(v))
			return (jf_type_error(ev, path, "an object"));
		return (jf_canon(ev, f->sub, v, path, out));
	case JF_OBJLIST:
		if (!json_is_array(v))
			return (jf_type_error(ev, path, "a list of objects"));
		if ((o = json_array()) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		json_array_foreach(v, i, e) {
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			if (!json_is_object(e)) {
				json_decref(o);
				return (jf_type_error(ev, p, "an object"));
			}
			if (jf_canon(ev, f->sub, e, p, &c) != EV_OK) {
				json_decref(o);
				return (EV_DONE);
			}
			if (json_array_append_new(o, c) == -1) {
				json_decref(o);
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			}
		}
		*out = o;
		return (EV_OK);
	case JF_OBJMAP:
	case JF_OBJLISTMAP:
		if (!json_is_object(v))
			return (jf_type_error(ev, path, "an object"));
		if ((o = json_object()) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		json_object_foreach(v, k, e) {
			struct jf_field	 sub = { k, JF_OBJ, f->sub };

			snprintf(p, sizeof(p), "%s.%s", path, k);
			if (f->type == JF_OBJLISTMAP)
				sub.type = JF_OBJLIST;
			if (json_is_null(e))
				c = json_null();
			else if (jf_canon_value(ev, &sub, e, p, &c) != EV_OK) {
				json_decref(o);
				return (EV_DONE);
			}
			if (json_object_set_new(o, k, c) == -1) {
				json_decref(o);
				return (ev_deny(ev, 500, "internal",
				    "out of memory"));
			}
		}
		*out = o;
		return (EV_OK);
	case JF_UINT2:
		if (!json_is_array(v) || json_array_size(v) > 2)
			return (jf_type_error(ev, path, "[height, width]"));
		json_array_foreach(v, i, e)
			if (!json_is_integer(e) || json_integer_value(e) < 0)
				return (jf_type_error(ev, path,
				    "[height, width]"));
		*out = json_deep_copy(v);
		break;
	case JF_ANY:
		*out = json_deep_copy(v);
		break;
	}
	if (*out == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	return (EV_OK);
}

/*
 * Canonicalise an object against a schema: each field once, under its
 * canonical name, nulls dropped. Two keys on one field: 400. An unknown
 * key: 403 when the schema says so, else dropped (the engine ignores it).
 */
int
jf_canon(struct eval *ev, const struct jf_schema *s, json_t *in,
    const char *path, json_t **out)
{
	const char	*seen[128], *k;
	char		 p[300];
	json_t		*o, *v, *c;
	int		 idx;

	*out = NULL;
	if (s->nfields > sizeof(seen) / sizeof(seen[0]))
		return (ev_deny(ev, 500, "internal", "schema too large"));
	memset(seen, 0, sizeof(seen));
	if ((o = json_object()) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	json_object_foreach(in, k, v) {
		snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", k);
		if ((idx = jf_field_index(s, k)) == -1) {
			if (!s->unknown_deny)
				continue;
			json_decref(o);
			return (ev_deny(ev, 403, "unknown_field", "unknown"
			    " field %s: not on dockgate's list of known"
			    " fields (only \"unrestricted\" forwards it)", p));
		}
		if (seen[idx] != NULL) {
			json_decref(o);
			return (ev_malformed(ev, "%s%s\"%s\" and \"%s\" are one"
			    " field (%s) to the engine: a JSON key given twice"
			    " or in two spellings", path, path[0] ? ": " : "",
			    seen[idx], k, s->fields[idx].name));
		}
		seen[idx] = k;
		if (jf_canon_value(ev, &s->fields[idx], v, p, &c) != EV_OK) {
			json_decref(o);
			return (EV_DONE);
		}
		if (c != NULL &&
		    json_object_set_new(o, s->fields[idx].name, c) == -1) {
			json_decref(o);
			return (ev_deny(ev, 500, "internal", "out of memory"));
		}
	}
	*out = o;
	return (EV_OK);
}
