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
#include <pthread.h>
#include <limits.h>
#include <stdint.h>

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

/* The hash of an upper-case name (for struct jf_lookup). */
static inline unsigned int
jf_hash_step(unsigned int h, unsigned char c)
{
	return ((h ^ c) * 16777619u);
}

/* Build a schema's lookup: each field's upper-cased name hashed. */
static void
jf_lookup_build(const struct jf_schema *s)
{
	struct jf_lookup	*lk = s->lookup;
	const char		*n;
	unsigned int		 h, slot;
	size_t			 i, l;

	memset(lk->slot, 0, sizeof(lk->slot));
	memset(lk->exact, 0, sizeof(lk->exact));
	lk->exact_ok = 0;
	if (s->nfields > 128)
		return;
	lk->exact_ok = 1;
	for (i = 0; i < s->nfields; i++)
		for (l = i + 1; l < s->nfields; l++)
			if (strcasecmp(s->fields[i].name,
			    s->fields[l].name) == 0)
				lk->exact_ok = 0;
	for (i = 0; i < s->nfields; i++) {
		n = s->fields[i].name;
		h = 2166136261u;
		for (l = 0; n[l] != '\0'; l++)
			h = jf_hash_step(h, (n[l] >= 'a' && n[l] <= 'z') ?
			    n[l] - 32 : n[l]);
		lk->len[i] = (unsigned char)l;
		for (slot = h & (JF_LOOKUP_SLOTS - 1); lk->slot[slot] != 0;
		    slot = (slot + 1) & (JF_LOOKUP_SLOTS - 1))
			;
		lk->slot[slot] = (unsigned char)(i + 1);
		h = jn_hash(n, strlen(n));
		for (slot = h & (JF_LOOKUP_SLOTS - 1); lk->exact[slot] != 0;
		    slot = (slot + 1) & (JF_LOOKUP_SLOTS - 1))
			;
		lk->exact[slot] = (unsigned char)(i + 1);
		lk->hash[i] = h;
	}
}

static pthread_once_t	jf_lookup_once = PTHREAD_ONCE_INIT;
static int		jf_lookup_built;	/* set last, with release */

/* Every schema with a lookup, built once per process. */
static void
jf_lookup_init(void)
{
	size_t	i;

	for (i = 0; schema_indexed[i] != NULL; i++)
		jf_lookup_build(schema_indexed[i]);
	__atomic_store_n(&jf_lookup_built, 1, __ATOMIC_RELEASE);
}

/* The lookups, built: a load once they are (a decision looks up a few
 * hundred keys), pthread_once() the first time. */
static inline void
jf_lookup_ready(void)
{
	if (!__atomic_load_n(&jf_lookup_built, __ATOMIC_ACQUIRE))
		pthread_once(&jf_lookup_once, jf_lookup_init);
}

/* Fold a key (jf_fold()) and hash it, once for any number of lookups. */
void
jf_key_fold(const char *key, struct jf_key *k)
{
	const unsigned char	*p = (const unsigned char *)key;
	unsigned int		 h = 2166136261u;
	size_t			 o = 0;
	unsigned char		 c;

	k->ok = 0;
	while (*p != '\0') {
		if (o + 1 >= sizeof(k->f))
			return;
		if (*p < 0x80) {
			c = (*p >= 'a' && *p <= 'z') ? *p - 32 : *p;
			p++;
		} else if (p[0] == 0xc5 && p[1] == 0xbf) {
			c = 'S';		/* U+017F */
			p += 2;
		} else if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
			c = 'K';		/* U+212A */
			p += 3;
		} else
			c = *p++;		/* not ASCII: no match */
		k->f[o++] = c;
		h = jf_hash_step(h, c);
	}
	k->f[o] = '\0';
	k->len = o;
	k->hash = h;
	k->ok = 1;
}

/* The index of the field a folded key lands on, or -1. */
int
jf_field_index_key(const struct jf_schema *s, const struct jf_key *k)
{
	const unsigned char	*n;
	const struct jf_lookup	*lk = s->lookup;
	unsigned int		 slot;
	size_t			 i, l;

	if (!k->ok)
		return (-1);
	if (lk == NULL || s->nfields > 128) {
		for (i = 0; i < s->nfields; i++)
			if (strcasecmp(k->f, s->fields[i].name) == 0)
				return ((int)i);
		return (-1);
	}
	jf_lookup_ready();
	/* f is upper case: it equals a name exactly when it equals the
	 * name upper-cased (strcasecmp() in the C locale). */
	for (slot = k->hash & (JF_LOOKUP_SLOTS - 1); lk->slot[slot] != 0;
	    slot = (slot + 1) & (JF_LOOKUP_SLOTS - 1)) {
		i = lk->slot[slot] - 1;
		if (lk->len[i] != k->len)
			continue;
		n = (const unsigned char *)s->fields[i].name;
		for (l = 0; l < k->len; l++)
			if ((unsigned char)k->f[l] != ((n[l] >= 'a' &&
			    n[l] <= 'z') ? n[l] - 32 : n[l]))
				break;
		if (l == k->len)
			return ((int)i);
	}
	return (-1);
}

/*
 * The index of the field a parsed key spelled exactly as a field's name
 * lands on (what clients send), found by the hash the parser took; -1
 * when it is no field's exact spelling (it may still fold to one).
 */
int
jf_field_index_exact(const struct jf_schema *s, const struct jn *v)
{
	const struct jf_lookup	*lk = s->lookup;
	unsigned int		 slot;
	size_t			 i;

	if (lk == NULL || s->nfields > 128)
		return (-1);
	jf_lookup_ready();
	if (!lk->exact_ok)
		return (-1);
	for (slot = v->keyhash & (JF_LOOKUP_SLOTS - 1); lk->exact[slot] != 0;
	    slot = (slot + 1) & (JF_LOOKUP_SLOTS - 1)) {
		i = lk->exact[slot] - 1;
		if (lk->hash[i] == v->keyhash && lk->len[i] == v->keylen &&
		    jf_same(s->fields[i].name, v->key, v->keylen))
			return ((int)i);
	}
	return (-1);
}

/* The index of the field a parsed key lands on, or -1 (the same answer
 * as jf_field_index()). */
int
jf_field_index_jn(const struct jf_schema *s, const struct jn *v)
{
	struct jf_key	k;
	int		idx;

	if ((idx = jf_field_index_exact(s, v)) != -1)
		return (idx);
	jf_key_fold(v->key, &k);
	return (jf_field_index_key(s, &k));
}

/* The length of field idx's name (from the lookup once one is built,
 * as it is once a key was looked up in s). */
size_t
jf_field_len(const struct jf_schema *s, size_t idx)
{
	if (s->lookup != NULL && s->nfields <= 128)
		return (s->lookup->len[idx]);
	return (strlen(s->fields[idx].name));
}

/*
 * Is v the Go zero value of field idx, which the engine cannot tell from
 * an absent key (a plain scalar, not a pointer, of a zero_drop schema)? Such
 * a value is left out of the canonical body: the engine decodes the same
 * struct, and the body decided on and forwarded is smaller.
 */
int
jf_zero_dropped(const struct jf_schema *s, size_t idx, const struct jn *v)
{
	if (!s->zero_drop)
		return (0);
	switch (s->fields[idx].type) {
	case JF_BOOL:
		return (v->type == JN_FALSE);
	case JF_INT:
	case JF_UINT:
		return (v->type == JN_INT && v->u.i == 0);
	case JF_STR:
		return (v->type == JN_STR && v->n == 0);
	default:
		return (0);
	}
}

/* The index of the field key lands on, or -1. */
int
jf_field_index(const struct jf_schema *s, const char *key)
{
	struct jf_key	k;

	jf_key_fold(key, &k);
	return (jf_field_index_key(s, &k));
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
	j = jf_loadb(req->body, req->body_len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (j == NULL && jf_oom_error(&jerr))
		ev_deny(ev, 500, "internal", "out of memory");
	else if (j == NULL)
		ev_malformed(ev, "bad JSON body at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	return (j);
}

/*
 * The arena a parsed body lives in: a first block inside the struct (on
 * the caller's stack), then malloc'd chunks, all freed at once.
 */
struct jn_chunk {
	struct jn_chunk	*next;
};

void
jn_arena_init(struct jn_arena *a)
{
	a->cur = a->first;
	a->end = a->first + sizeof(a->first);
	a->chunks = NULL;
}

void
jn_arena_free(struct jn_arena *a)
{
	struct jn_chunk	*c, *n;

	for (c = a->chunks; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	jn_arena_init(a);
}

/* jn_alloc() when the current block is full: n (8-aligned) bytes from
 * a new chunk; NULL when memory ran out. */
void *
jn_alloc_chunk(struct jn_arena *a, size_t n)
{
	struct jn_chunk	*c;
	size_t		 sz;
	void		*p;

	sz = n + 16 > 32768 ? n + 16 : 32768;
	if ((c = malloc(sz + sizeof(*c) + 16)) == NULL)
		return (NULL);
	c->next = a->chunks;
	a->chunks = c;
	a->cur = (char *)(((uintptr_t)(c + 1) + 15) & ~(uintptr_t)15);
	a->end = a->cur + sz;
	p = a->cur;
	a->cur += n;
	return (p);
}

/*
 * The hash of a key, for duplicate checks and exact field lookups: its
 * length and its first and last eight bytes mixed (keys are short; a
 * collision only costs a comparison).
 */
unsigned int
jn_hash(const char *s, size_t n)
{
	uint64_t	a = 0, b = 0, h;

	if (n >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
	} else
		memcpy(&a, s, n);
	h = (a ^ (b * 0x9e3779b97f4a7c15ULL) ^ n) * 0xff51afd7ed558ccdULL;
	return ((unsigned int)(h >> 32));
}

/* A jansson tree as a jn tree (for jf_canon()). */
struct jn *
jn_from_json(struct jn_arena *a, json_t *j)
{
	struct jn_members m;
	struct jn	*n, *c, **tail;
	const char	*k;
	char		*s;
	json_t		*v;
	size_t		 i, l;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		n = jn_new(a, JN_OBJ);
		if (n == NULL)
			return (NULL);
		jn_members_init(&m, n);
		json_object_foreach(j, k, v) {
			if ((c = jn_from_json(a, v)) == NULL)
				return (NULL);
			l = strlen(k);
			if ((s = jn_alloc(a, l + 1)) == NULL)
				return (NULL);
			memcpy(s, k, l + 1);
			jn_members_add(&m, c, s, l, jn_hash(s, l));
		}
		return (n);
	case JSON_ARRAY:
		n = jn_new(a, JN_ARR);
		if (n == NULL)
			return (NULL);
		tail = &n->u.kid;
		json_array_foreach(j, i, v) {
			if ((c = jn_from_json(a, v)) == NULL)
				return (NULL);
			*tail = c;
			tail = &c->next;
			n->n++;
		}
		return (n);
	case JSON_STRING:
		if ((n = jn_new(a, JN_STR)) == NULL)
			return (NULL);
		n->n = json_string_length(j);
		if ((s = jn_alloc(a, n->n + 1)) == NULL)
			return (NULL);
		memcpy(s, json_string_value(j), n->n);
		s[n->n] = '\0';
		n->u.s = s;
		return (n);
	case JSON_INTEGER:
		if ((n = jn_new(a, JN_INT)) != NULL)
			n->u.i = json_integer_value(j);
		return (n);
	case JSON_REAL:
		if ((n = jn_new(a, JN_REAL)) != NULL)
			n->u.r = json_real_value(j);
		return (n);
	case JSON_TRUE:
		return (jn_new(a, JN_TRUE));
	case JSON_FALSE:
		return (jn_new(a, JN_FALSE));
	case JSON_NULL:
	default:
		return (jn_new(a, JN_NULL));
	}
}

/* A deep copy of a jn tree as jansson values. */
json_t *
jn_to_json(const struct jn *n)
{
	const struct jn	*c;
	json_t		*o, *v;

	switch (n->type) {
	case JN_OBJ:
		if ((o = json_object()) == NULL)
			return (NULL);
		for (c = n->u.kid; c != NULL; c = c->next)
			if ((v = jn_to_json(c)) == NULL ||
			    json_object_setn_new_nocheck(o, c->key, c->keylen,
			    v) == -1) {
				json_decref(o);
				return (NULL);
			}
		return (o);
	case JN_ARR:
		if ((o = json_array()) == NULL)
			return (NULL);
		for (c = n->u.kid; c != NULL; c = c->next)
			if ((v = jn_to_json(c)) == NULL ||
			    json_array_append_new(o, v) == -1) {
				json_decref(o);
				return (NULL);
			}
		return (o);
	case JN_STR:
		return (json_stringn_nocheck(n->u.s, n->n));
	case JN_INT:
		return (json_integer(n->u.i));
	case JN_REAL:
		return (json_real(n->u.r));
	case JN_TRUE:
		return (json_true());
	case JN_FALSE:
		return (json_false());
	default:
		return (json_null());
	}
}

/* A node of the given type (shallow copy of v: its value, its kids
 * shared), outside any list. */
struct jn *
jn_dup(struct jn_arena *a, const struct jn *v)
{
	struct jn	*n;

	if ((n = jn_alloc(a, sizeof(*n))) == NULL)
		return (NULL);
	n->next = NULL;
	n->key = NULL;
	n->keylen = 0;
	n->keyhash = 0;
	n->type = v->type;
	n->n = v->n;
	n->u = v->u;
	return (n);
}

/* A new integer node. */
struct jn *
jn_new_int(struct jn_arena *a, json_int_t i)
{
	struct jn	*n;

	if ((n = jn_new(a, JN_INT)) != NULL)
		n->u.i = i;
	return (n);
}

/* A new string node for s, which must outlive the tree (not copied). */
struct jn *
jn_new_str(struct jn_arena *a, const char *s)
{
	struct jn	*n;

	if ((n = jn_new(a, JN_STR)) != NULL) {
		n->u.s = s;
		n->n = strlen(s);
	}
	return (n);
}

/* A new true or false node. */
struct jn *
jn_new_bool(struct jn_arena *a, int b)
{
	return (jn_new(a, b ? JN_TRUE : JN_FALSE));
}

/* The first kid of v when v has the given type (JN_ARR or JN_OBJ), else
 * NULL: what a json_*_foreach() visits. */
struct jn *
jn_kids(const struct jn *v, int type)
{
	return (v != NULL && v->type == type ? v->u.kid : NULL);
}

/* The member of obj under exactly key (length l), or NULL (obj NULL or
 * not an object included). */
struct jn *
jn_getn(const struct jn *obj, const char *key, size_t l)
{
	struct jn	*c;

	if (obj == NULL || obj->type != JN_OBJ)
		return (NULL);
	for (c = obj->u.kid; c != NULL; c = c->next)
		if (c->keylen == l && jf_same(c->key, key, l))
			return (c);
	return (NULL);
}

/* Append v (in no list) to the array or object p, under key k (length
 * kl) when p is an object; k must outlive the tree. */
void
jn_append(struct jn *p, struct jn *v, const char *k, size_t kl)
{
	struct jn	**tail;

	for (tail = &p->u.kid; *tail != NULL; tail = &(*tail)->next)
		;
	v->next = NULL;
	v->key = k;
	v->keylen = kl;
	*tail = v;
	p->n++;
}

/* Set obj[key] to v (in no list): an existing member takes v's value in
 * place, else v is appended (jansson's order). */
void
jn_set(struct jn *obj, const char *key, struct jn *v)
{
	struct jn	*c;

	if ((c = jn_get(obj, key)) != NULL) {
		c->type = v->type;
		c->n = v->n;
		c->u = v->u;
		return;
	}
	jn_append(obj, v, key, strlen(key));
}

/*
 * The fast parser. It accepts only what json_loadb() accepts, as the same
 * values (strict UTF-8, no NUL, no duplicate key, integers in range); on
 * anything else (errors, reals, very deep nesting) it gives up and the
 * body goes to json_loadb(), whose tree or message then counts.
 */
struct jp {
	unsigned char		*p, *end;	/* the body's copy */
	struct jn_arena		*a;
	int			 depth;
};

#define JP_MAX_DEPTH	256

static inline void
jp_ws(struct jp *jp)
{
	while (jp->p < jp->end && *jp->p <= ' ' && (*jp->p == ' ' ||
	    *jp->p == '\n' || *jp->p == '\r' || *jp->p == '\t'))
		jp->p++;
}


static int
jp_hex4(const unsigned char *p, unsigned int *v)
{
	unsigned int	 c, i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		c = p[i];
		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return (-1);
		*v = (*v << 4) | c;
	}
	return (0);
}

/* Length of a valid UTF-8 sequence at p (non-ASCII lead), or 0. */
static size_t
jp_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned char	c = p[0];
	size_t		n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return (0);
	if ((size_t)(end - p) < n)
		return (0);
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return (0);
	if (c == 0xe0 && p[1] < 0xa0)
		return (0);		/* overlong */
	if (c == 0xed && p[1] >= 0xa0)
		return (0);		/* surrogate */
	if (c == 0xf0 && p[1] < 0x90)
		return (0);		/* overlong */
	if (c == 0xf4 && p[1] >= 0x90)
		return (0);		/* above U+10FFFF */
	return (n);
}

/*
 * A string (jp->p at its opening quote), in place: the body is a copy of
 * our own, its closing quote becomes the NUL, and escapes are decoded over
 * the source (never longer than it).
 */
static int
jp_string(struct jp *jp, const char **out, size_t *len)
{
	unsigned char	*p = jp->p + 1, *start = p, *end = jp->end;
	unsigned char	*o, *d;
	unsigned int	 u, u2;
	size_t		 n;

	p += jf_plain_run(p, end, 1);
	if (p < end && *p == '"') {
		*p = '\0';
		*out = (const char *)start;
		*len = p - start;
		jp->p = p + 1;
		return (0);
	}
	/* Escapes or UTF-8: the plain run before them stays where it is. */
	o = start;
	d = p;
	for (;;) {
		if (p >= end)
			return (-1);
		if (*p == '"')
			break;
		if (*p < 0x20)
			return (-1);
		if (*p < 0x80 && *p != '\\') {
			*d++ = *p++;
			continue;
		}
		if (*p >= 0x80) {
			if ((n = jp_utf8(p, end)) == 0)
				return (-1);
			memmove(d, p, n);
			d += n;
			p += n;
			continue;
		}
		if (end - p < 2)
			return (-1);
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
			*d++ = p[1];
			p += 2;
			continue;
		case 'b':
			*d++ = '\b';
			p += 2;
			continue;
		case 'f':
			*d++ = '\f';
			p += 2;
			continue;
		case 'n':
			*d++ = '\n';
			p += 2;
			continue;
		case 'r':
			*d++ = '\r';
			p += 2;
			continue;
		case 't':
			*d++ = '\t';
			p += 2;
			continue;
		case 'u':
			break;
		default:
			return (-1);
		}
		if (end - p < 6 || jp_hex4(p + 2, &u) == -1 || u == 0)
			return (-1);
		p += 6;
		if (u >= 0xdc00 && u <= 0xdfff)
			return (-1);
		if (u >= 0xd800 && u <= 0xdbff) {
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
			    jp_hex4(p + 2, &u2) == -1 || u2 < 0xdc00 ||
			    u2 > 0xdfff)
				return (-1);
			p += 6;
			u = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
		}
		if (u < 0x80)
			*d++ = u;
		else if (u < 0x800) {
			*d++ = 0xc0 | (u >> 6);
			*d++ = 0x80 | (u & 0x3f);
		} else if (u < 0x10000) {
			*d++ = 0xe0 | (u >> 12);
			*d++ = 0x80 | ((u >> 6) & 0x3f);
			*d++ = 0x80 | (u & 0x3f);
		} else {
			*d++ = 0xf0 | (u >> 18);
			*d++ = 0x80 | ((u >> 12) & 0x3f);
			*d++ = 0x80 | ((u >> 6) & 0x3f);
			*d++ = 0x80 | (u & 0x3f);
		}
	}
	*d = '\0';
	*out = (const char *)o;
	*len = d - o;
	jp->p = p + 1;
	return (0);
}

static struct jn	*jp_value(struct jp *);

static struct jn *
jp_object(struct jp *jp)
{
	struct jn_members	 m;
	struct jn		*n, *c;
	const char		*k;
	size_t			 kl;
	unsigned int		 h;

	if ((n = jn_new(jp->a, JN_OBJ)) == NULL)
		return (NULL);
	jn_members_init(&m, n);
	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
		return (n);
	}
	for (;;) {
		if (jp->p >= jp->end || *jp->p != '"' ||
		    jp_string(jp, &k, &kl) == -1)
			return (NULL);
		jp_ws(jp);
		if (jp->p >= jp->end || *jp->p != ':')
			return (NULL);
		jp->p++;
		if ((c = jp_value(jp)) == NULL)
			return (NULL);
		h = jn_hash(k, kl);
		if (jn_members_find(&m, k, kl, h) != NULL)
			return (NULL);	/* duplicate key */
		jn_members_add(&m, c, k, kl, h);
		jp_ws(jp);
		if (jp->p >= jp->end)
			return (NULL);
		if (*jp->p == '}') {
			jp->p++;
			return (n);
		}
		if (*jp->p != ',')
			return (NULL);
		jp->p++;
		jp_ws(jp);
	}
}

static struct jn *
jp_array(struct jp *jp)
{
	struct jn	*n, *c, **tail;

	if ((n = jn_new(jp->a, JN_ARR)) == NULL)
		return (NULL);
	tail = &n->u.kid;
	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == ']') {
		jp->p++;
		return (n);
	}
	for (;;) {
		if ((c = jp_value(jp)) == NULL)
			return (NULL);
		*tail = c;
		tail = &c->next;
		n->n++;
		jp_ws(jp);
		if (jp->p >= jp->end)
			return (NULL);
		if (*jp->p == ']') {
			jp->p++;
			return (n);
		}
		if (*jp->p != ',')
			return (NULL);
		jp->p++;
	}
}

static struct jn *
jp_number(struct jp *jp)
{
	unsigned char		*p = jp->p, *end = jp->end;
	unsigned long long	 v = 0, lim;
	struct jn		*n;
	int			 neg = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return (NULL);
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return (NULL);
	} else
		while (p < end && *p >= '0' && *p <= '9') {
			if (v > (lim - (*p - '0')) / 10)
				return (NULL);	/* out of range */
			v = v * 10 + (*p++ - '0');
		}
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return (NULL);			/* a real: jansson's */
	if ((n = jn_new(jp->a, JN_INT)) == NULL)
		return (NULL);
	n->u.i = neg ? (json_int_t)(0 - v) : (json_int_t)v;
	jp->p = p;
	return (n);
}

static struct jn *
jp_value(struct jp *jp)
{
	struct jn	*n;
	const char	*s;
	size_t		 len, left;

	jp_ws(jp);
	if (jp->p >= jp->end)
		return (NULL);
	left = jp->end - jp->p;
	switch (*jp->p) {
	case '{':
		if (++jp->depth > JP_MAX_DEPTH)
			return (NULL);
		n = jp_object(jp);
		jp->depth--;
		return (n);
	case '[':
		if (++jp->depth > JP_MAX_DEPTH)
			return (NULL);
		n = jp_array(jp);
		jp->depth--;
		return (n);
	case '"':
		if (jp_string(jp, &s, &len) == -1 ||
		    (n = jn_new(jp->a, JN_STR)) == NULL)
			return (NULL);
		n->u.s = s;
		n->n = len;
		return (n);
	case 't':
		if (left < 4 || memcmp(jp->p, "true", 4) != 0)
			return (NULL);
		jp->p += 4;
		return (jn_new(jp->a, JN_TRUE));
	case 'f':
		if (left < 5 || memcmp(jp->p, "false", 5) != 0)
			return (NULL);
		jp->p += 5;
		return (jn_new(jp->a, JN_FALSE));
	case 'n':
		if (left < 4 || memcmp(jp->p, "null", 4) != 0)
			return (NULL);
		jp->p += 4;
		return (jn_new(jp->a, JN_NULL));
	default:
		return (jp_number(jp));
	}
}

/*
 * Parse the request body strictly, as jf_parse() does, into an arena:
 * NULL (and a 400) when it is refused.
 */
struct jn *
jn_parse(struct eval *ev, struct jn_arena *a, int allow_empty)
{
	const struct policy_req	*req = ev->req;
	struct jp		 jp;
	json_error_t		 jerr;
	struct jn		*n;
	char			*save;
	size_t			 i;

	for (i = 0; req->body != NULL && i < req->body_len; i++)
		if (req->body[i] != ' ' && req->body[i] != '\t' &&
		    req->body[i] != '\r' && req->body[i] != '\n')
			break;
	if (req->body == NULL || i == req->body_len) {
		if (allow_empty)
			return (jn_new(a, JN_NULL));
		ev_malformed(ev, "the request body is empty");
		return (NULL);
	}
	save = a->cur;
	/* A copy to parse in place (jp_string()); the body stays as sent
	 * for the full reader. */
	if ((jp.p = jn_alloc(a, req->body_len + 1)) == NULL)
		n = NULL;
	else {
		memcpy(jp.p, req->body, req->body_len);
		jp.end = jp.p + req->body_len;
		*jp.end = '\0';
		jp.a = a;
		jp.depth = 0;
		n = jp_value(&jp);
	}
	if (n != NULL) {
		jp_ws(&jp);
		if (jp.p == jp.end)
			return (n);
	}
	/* Left to the full reader: jansson's verdict, its message. */
	if (a->chunks == NULL)
		a->cur = save;
	n = jn_load(a, req->body, req->body_len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (n == NULL && jf_oom_error(&jerr))
		ev_deny(ev, 500, "internal", "out of memory");
	else if (n == NULL)
		ev_malformed(ev, "bad JSON body at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	return (n);
}

/* A key path as the error messages spell it (each level cut at 299
 * bytes, as the fixed buffers it was built in did). */
static const char *
jf_path_fmt(const struct jf_path *p, char *buf, size_t len)
{
	char		 up[300];
	const char	*u;

	if (p->kind == JFP_ROOT)
		return (p->s);
	u = jf_path_fmt(p->up, up, sizeof(up));
	switch (p->kind) {
	case JFP_FIELD:
		snprintf(buf, len, "%s%s%s", u, u[0] ? "." : "", p->s);
		break;
	case JFP_INDEX:
		snprintf(buf, len, "%s[%zu]", u, p->idx);
		break;
	default:
		snprintf(buf, len, "%s.%s", u, p->s);
		break;
	}
	return (buf);
}

/* Type mismatch: the engine's decoder would fail; refuse as malformed. */
static int
jf_type_error(struct eval *ev, const struct jf_path *path, const char *want)
{
	char	buf[300];

	return (ev_malformed(ev, "%s: expected %s", jf_path_fmt(path, buf,
	    sizeof(buf)), want));
}

static int
jf_oom(struct eval *ev)
{
	return (ev_deny(ev, 500, "internal", "out of memory"));
}

/* Canonicalise a []string. */
static int
jf_strlist(struct eval *ev, const struct jn *v, const struct jf_path *path,
    struct jn **out)
{
	const struct jn	*e;
	struct jn	*o, *c, **tail;

	if (v->type != JN_ARR)
		return (jf_type_error(ev, path, "a list of strings"));
	for (e = v->u.kid; e != NULL; e = e->next)
		if (e->type != JN_STR)
			return (jf_type_error(ev, path, "a list of strings"));
	if ((o = jn_new(ev->arena, JN_ARR)) == NULL)
		return (jf_oom(ev));
	tail = &o->u.kid;
	for (e = v->u.kid; e != NULL; e = e->next) {
		if ((c = jn_dup(ev->arena, e)) == NULL)
			return (jf_oom(ev));
		*tail = c;
		tail = &c->next;
		o->n++;
	}
	*out = o;
	return (EV_OK);
}

/* A copy of an object's members, each value v made by a copier: (the
 * arena, v) to its copy, NULL when memory ran out. */
static int
jf_members(struct eval *ev, const struct jn *v, struct jn **out,
    struct jn *(*copy)(struct jn_arena *, const struct jn *))
{
	struct jn_members m;
	const struct jn	*e;
	struct jn	*o, *c;

	if ((o = jn_new(ev->arena, JN_OBJ)) == NULL)
		return (jf_oom(ev));
	jn_members_init(&m, o);
	for (e = v->u.kid; e != NULL; e = e->next) {
		if ((c = copy(ev->arena, e)) == NULL)
			return (jf_oom(ev));
		jn_members_add(&m, c, e->key, e->keylen, e->keyhash);
	}
	*out = o;
	return (EV_OK);
}

/* An empty object, whatever v (a JF_SET member's value). */
static struct jn *
jf_empty_obj(struct jn_arena *a, const struct jn *v)
{
	(void)v;
	return (jn_new(a, JN_OBJ));
}

/* Canonicalise an object of string values. */
static int
jf_strmap(struct eval *ev, const struct jn *v, const struct jf_path *path,
    struct jn **out)
{
	const struct jn	*e;

	if (v->type != JN_OBJ)
		return (jf_type_error(ev, path, "an object of strings"));
	for (e = v->u.kid; e != NULL; e = e->next)
		if (e->type != JN_STR)
			return (jf_type_error(ev, path,
			    "an object of strings"));
	return (jf_members(ev, v, out, jn_dup));
}

/* Canonicalise one value of a field into ev's arena; *out is NULL for a
 * JSON null. */
int
jf_canon_value(struct eval *ev, const struct jf_field *f, const struct jn *v,
    const struct jf_path *path, struct jn **out)
{
	struct jn_members m;
	const struct jn	*e;
	struct jf_path	 p;
	struct jn	*o = NULL, *c, **tail;
	size_t		 i;

	*out = NULL;
	if (v->type == JN_NULL)
		return (EV_OK);
	switch (f->type) {
	case JF_BOOL:
	case JF_PBOOL:
		if (v->type != JN_TRUE && v->type != JN_FALSE)
			return (jf_type_error(ev, path, "true or false"));
		break;
	case JF_INT:
	case JF_PINT:
	case JF_UINT:
		if (v->type != JN_INT || (f->type == JF_UINT && v->u.i < 0))
			return (jf_type_error(ev, path, "an integer"));
		break;
	case JF_STR:
		if (v->type != JN_STR)
			return (jf_type_error(ev, path, "a string"));
		break;
	case JF_STRLIST:
		return (jf_strlist(ev, v, path, out));
	case JF_STRSLICE:
		if (v->type == JN_STR) {
			if ((o = jn_new(ev->arena, JN_ARR)) == NULL ||
			    (c = jn_dup(ev->arena, v)) == NULL)
				return (jf_oom(ev));
			jn_append(o, c, NULL, 0);
			*out = o;
			return (EV_OK);
		}
		return (jf_strlist(ev, v, path, out));
	case JF_STRMAP:
		return (jf_strmap(ev, v, path, out));
	case JF_SET:
		if (v->type != JN_OBJ)
			return (jf_type_error(ev, path, "an object"));
		for (e = v->u.kid; e != NULL; e = e->next)
			if (e->type != JN_OBJ && e->type != JN_NULL)
				return (jf_type_error(ev, path,
				    "an object of {}"));
		return (jf_members(ev, v, out, jf_empty_obj));
	case JF_OBJ:
		if (v->type != JN_OBJ)
			return (jf_type_error(ev, path, "an object"));
		return (jf_canon_jn(ev, f->sub, v, path, out));
	case JF_OBJLIST:
		if (v->type != JN_ARR)
			return (jf_type_error(ev, path, "a list of objects"));
		if ((o = jn_new(ev->arena, JN_ARR)) == NULL)
			return (jf_oom(ev));
		tail = &o->u.kid;
		p.up = path;
		p.s = NULL;
		p.kind = JFP_INDEX;
		for (i = 0, e = v->u.kid; e != NULL; e = e->next, i++) {
			p.idx = i;
			if (e->type != JN_OBJ)
				return (jf_type_error(ev, &p, "an object"));
			if (jf_canon_jn(ev, f->sub, e, &p, &c) != EV_OK)
				return (EV_DONE);
			*tail = c;
			tail = &c->next;
			o->n++;
		}
		*out = o;
		return (EV_OK);
	case JF_OBJMAP:
	case JF_OBJLISTMAP:
		if (v->type != JN_OBJ)
			return (jf_type_error(ev, path, "an object"));
		if ((o = jn_new(ev->arena, JN_OBJ)) == NULL)
			return (jf_oom(ev));
		jn_members_init(&m, o);
		p.up = path;
		p.kind = JFP_MAPKEY;
		p.idx = 0;
		for (e = v->u.kid; e != NULL; e = e->next) {
			struct jf_field	 sub = { e->key, JF_OBJ, f->sub };

			p.s = e->key;
			if (f->type == JF_OBJLISTMAP)
				sub.type = JF_OBJLIST;
			if (e->type == JN_NULL)
				c = jn_new(ev->arena, JN_NULL);
			else if (jf_canon_value(ev, &sub, e, &p, &c) != EV_OK)
				return (EV_DONE);
			if (c == NULL)
				return (jf_oom(ev));
			jn_members_add(&m, c, e->key, e->keylen, e->keyhash);
		}
		*out = o;
		return (EV_OK);
	case JF_UINT2:
		if (v->type != JN_ARR || v->n > 2)
			return (jf_type_error(ev, path, "[height, width]"));
		for (e = v->u.kid; e != NULL; e = e->next)
			if (e->type != JN_INT || e->u.i < 0)
				return (jf_type_error(ev, path,
				    "[height, width]"));
		break;
	case JF_ANY:
		break;
	}
	/* A leaf, or a value nothing changes: shared with the input. */
	if ((*out = jn_dup(ev->arena, v)) == NULL)
		return (jf_oom(ev));
	return (EV_OK);
}

/*
 * Canonicalise an object against a schema into ev's arena: each field
 * once, under its canonical name, nulls dropped. Two keys on one field:
 * 400. An unknown key: 403 when the schema says so, else dropped (the
 * engine ignores it).
 */
int
jf_canon_jn(struct eval *ev, const struct jf_schema *s, const struct jn *in,
    const struct jf_path *path, struct jn **out)
{
	struct jn_members m;
	const char	*seen[128];
	const struct jn	*v;
	struct jf_path	 p;
	char		 buf[300], pbuf[300];
	struct jn	*o, *c;
	int		 idx;

	*out = NULL;
	if (s->nfields > sizeof(seen) / sizeof(seen[0]))
		return (ev_deny(ev, 500, "internal", "schema too large"));
	memset(seen, 0, s->nfields * sizeof(seen[0]));
	if ((o = jn_new(ev->arena, JN_OBJ)) == NULL)
		return (jf_oom(ev));
	jn_members_init(&m, o);
	p.up = path;
	p.kind = JFP_FIELD;
	p.idx = 0;
	for (v = in->u.kid; v != NULL; v = v->next) {
		p.s = v->key;
		if ((idx = jf_field_index_jn(s, v)) == -1) {
			if (!s->unknown_deny)
				continue;
			return (ev_deny(ev, 403, "unknown_field", "unknown"
			    " field %s: not on dockgate's list of known"
			    " fields (only \"unrestricted\" forwards it)",
			    jf_path_fmt(&p, buf, sizeof(buf))));
		}
		if (seen[idx] != NULL) {
			const char *up = jf_path_fmt(path, pbuf, sizeof(pbuf));

			return (ev_malformed(ev, "%s%s\"%s\" and \"%s\" are one"
			    " field (%s) to the engine: a JSON key given twice"
			    " or in two spellings", up, up[0] ? ": " : "",
			    seen[idx], v->key, s->fields[idx].name));
		}
		seen[idx] = v->key;
		if (jf_zero_dropped(s, idx, v))
			continue;
		if (jf_canon_value(ev, &s->fields[idx], v, &p, &c) != EV_OK)
			return (EV_DONE);
		if (c == NULL)
			continue;
		jn_members_add(&m, c, s->fields[idx].name,
		    jf_field_len(s, idx), 0);
	}
	*out = o;
	return (EV_OK);
}

/* jf_canon_jn() on a jansson object, as a jansson object (path: the
 * root's name, or ""). */
int
jf_canon(struct eval *ev, const struct jf_schema *s, json_t *in,
    const char *path, json_t **out)
{
	struct jn_arena	*a, *save = ev->arena;
	struct jn	*n, *c;
	struct jf_path	 root = { NULL, path, 0, JFP_ROOT };
	int		 rc;

	*out = NULL;
	if ((a = malloc(sizeof(*a))) == NULL)
		return (jf_oom(ev));
	jn_arena_init(a);
	ev->arena = a;
	if ((n = jn_from_json(a, in)) == NULL)
		rc = jf_oom(ev);
	else if ((rc = jf_canon_jn(ev, s, n, &root, &c)) == EV_OK &&
	    (*out = jn_to_json(c)) == NULL)
		rc = jf_oom(ev);
	ev->arena = save;
	jn_arena_free(a);
	free(a);
	return (rc);
}
