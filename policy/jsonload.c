/*
 * A JSON reader that answers as jansson's json_loadb() does: the same
 * values, and for what it refuses the same message, line, column and
 * position (jansson 2.14's lexer and parser, step for step). It builds a
 * jn tree in an arena (jsonfold.c).
 *
 * Why not json_loadb() itself: when an allocation fails, jansson 2.14's
 * lexer drops the byte it was saving and goes on, then reads and writes
 * past its buffers (a crash, or a wrong "invalid token" that would turn
 * an out-of-memory into a 400). Here running out of memory is an error
 * of its own (json_error_out_of_memory), so callers answer 500.
 */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "policy-int.h"

#define JL_MAX_DEPTH	2048	/* jansson's JSON_PARSER_MAX_DEPTH */
#define JL_EOF		(-1)	/* stream states, as jansson's */
#define JL_ERR		(-2)
#define JL_CONTEXT	20	/* longest token quoted in a message */

enum {
	T_INVALID = -1,
	T_EOF = 0,
	T_STRING = 256,
	T_INTEGER,
	T_REAL,
	T_TRUE,
	T_FALSE,
	T_NULL
};

struct jl {
	const unsigned char	*buf;
	size_t			 len;
	size_t			 pos;		/* next byte of buf */
	size_t			 dropped;	/* NULs given back, so lost */
	size_t			 seq_end;	/* end of the checked UTF-8 sequence */
	int			 state;		/* 0, JL_EOF or JL_ERR */
	int			 line, column, last_column;
	char			 saved[32];	/* the token's first bytes */
	size_t			 savedlen;	/* and its whole length */
	int			 flags;
	size_t			 depth;
	int			 token;
	const char		*s;		/* T_STRING, in the arena */
	size_t			 slen;
	json_int_t		 i;		/* T_INTEGER */
	double			 r;		/* T_REAL */
	struct jn_arena		*a;
	json_error_t		*err;
	int			 oom;
};

/* Record the first error, with the token read so far as context. */
static void __attribute__((__format__(__printf__, 3, 4)))
jl_error(struct jl *l, enum json_error_code code, const char *fmt, ...)
{
	json_error_t	*e = l->err;
	char		 msg[JSON_ERROR_TEXT_LENGTH];
	char		 ctx[2 * JSON_ERROR_TEXT_LENGTH];
	const char	*res = msg;
	size_t		 n;
	va_list		 ap;

	if (e->text[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->saved[0] != '\0') {
		if (l->savedlen <= JL_CONTEXT) {
			snprintf(ctx, sizeof(ctx), "%s near '%s'", msg,
			    l->saved);
			res = ctx;
		}
	} else {
		if (code == json_error_invalid_syntax)
			code = json_error_premature_end_of_input;
		if (l->state != JL_ERR) {
			snprintf(ctx, sizeof(ctx), "%s near end of file", msg);
			res = ctx;
		}
	}
	e->line = l->line;
	e->column = l->column;
	e->position = (int)(l->pos - l->dropped);
	/* jansson keeps 158 bytes of it */
	if ((n = strlen(res)) > JSON_ERROR_TEXT_LENGTH - 2)
		n = JSON_ERROR_TEXT_LENGTH - 2;
	memcpy(e->text, res, n);
	e->text[n] = '\0';
	e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)code;
}

/* Length of a valid UTF-8 sequence at p (lead byte 0x80 or above), or 0. */
static size_t
jl_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned int	 v, min;
	size_t		 n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		v = p[0] & 0x1f;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		v = p[0] & 0x0f;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		v = p[0] & 0x07;
		min = 0x10000;
	} else
		return (0);
	if ((size_t)(end - p) < n)
		return (0);
	for (i = 1; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return (0);
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return (0);
	return (n);
}

/* The next byte, checking each UTF-8 sequence as it starts. */
static int
jl_get(struct jl *l)
{
	unsigned char	 c;
	size_t		 n;

	if (l->state != 0)
		return (l->state);
	if (l->pos >= l->len) {
		l->state = JL_EOF;
		return (JL_EOF);
	}
	c = l->buf[l->pos];
	if (l->pos >= l->seq_end) {
		if (c >= 0x80) {
			if ((n = jl_utf8(l->buf + l->pos, l->buf + l->len)) ==
			    0) {
				l->state = JL_ERR;
				jl_error(l, json_error_invalid_utf8,
				    "unable to decode byte 0x%x", c);
				return (JL_ERR);
			}
			l->seq_end = l->pos + n;
		} else
			l->seq_end = l->pos + 1;
	}
	l->pos++;
	if (c == '\n') {
		l->line++;
		l->last_column = l->column;
		l->column = 0;
	} else if (c < 0x80 || c > 0xbf)
		l->column++;
	return (c);
}

/*
 * Give back the byte just read. A NUL byte given back is lost, as in
 * jansson (its stream buffer reads as empty at a NUL): the next read is
 * the byte after it, and the NUL does not count in the position.
 */
static void
jl_unget(struct jl *l, int c)
{
	if (c == JL_EOF || c == JL_ERR)
		return;
	if (c == 0)
		l->dropped++;
	else
		l->pos--;
	if (c == '\n') {
		l->line--;
		l->column = l->last_column;
	} else if (c < 0x80 || c > 0xbf)
		l->column--;
}

/* Add a byte to the token's saved text. */
static void
jl_save(struct jl *l, int c)
{
	if (l->savedlen < sizeof(l->saved) - 1) {
		l->saved[l->savedlen] = (char)c;
		l->saved[l->savedlen + 1] = '\0';
	}
	l->savedlen++;
}

/* Read a byte and save it. */
static int
jl_get_save(struct jl *l)
{
	int	c = jl_get(l);

	if (c != JL_EOF && c != JL_ERR)
		jl_save(l, c);
	return (c);
}

/* Give back the byte just read and saved. */
static void
jl_unget_unsave(struct jl *l, int c)
{
	if (c == JL_EOF || c == JL_ERR)
		return;
	jl_unget(l, c);
	if (l->savedlen > 0) {
		l->savedlen--;
		if (l->savedlen < sizeof(l->saved) - 1)
			l->saved[l->savedlen] = '\0';
	}
}

/* Save the rest of the UTF-8 sequence just started (column unchanged). */
static void
jl_save_cached(struct jl *l)
{
	while (l->pos < l->seq_end)
		jl_save(l, l->buf[l->pos++]);
}

/* An ASCII hex digit's value, or -1. */
static int
jl_hex(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/* The four hex digits after a \u (already checked). */
static unsigned int
jl_hex4(const unsigned char *p)
{
	return ((jl_hex(p[0]) << 12) | (jl_hex(p[1]) << 8) |
	    (jl_hex(p[2]) << 4) | jl_hex(p[3]));
}

/* A string token: scanned for errors, then decoded into the arena. */
static void
jl_scan_string(struct jl *l)
{
	const unsigned char	*p;
	unsigned char		*t, *o;
	unsigned int		 v, v2;
	size_t			 start = l->pos - 1;
	int			 c, i;

	l->token = T_INVALID;
	c = jl_get_save(l);
	while (c != '"') {
		if (c == JL_ERR)
			return;
		if (c == JL_EOF) {
			jl_error(l, json_error_premature_end_of_input,
			    "premature end of input");
			return;
		}
		if (c >= 0 && c <= 0x1f) {
			jl_unget_unsave(l, c);
			if (c == '\n')
				jl_error(l, json_error_invalid_syntax,
				    "unexpected newline");
			else
				jl_error(l, json_error_invalid_syntax,
				    "control character 0x%x", c);
			return;
		}
		if (c == '\\') {
			c = jl_get_save(l);
			if (c == 'u') {
				c = jl_get_save(l);
				for (i = 0; i < 4; i++) {
					if (c < 0 || jl_hex(c) < 0) {
						jl_error(l,
						    json_error_invalid_syntax,
						    "invalid escape");
						return;
					}
					c = jl_get_save(l);
				}
			} else if (c == '"' || c == '\\' || c == '/' ||
			    c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
			    c == 't')
				c = jl_get_save(l);
			else {
				jl_error(l, json_error_invalid_syntax,
				    "invalid escape");
				return;
			}
		} else
			c = jl_get_save(l);
	}
	/* The raw token is buf[start, pos): decoding never makes it longer. */
	if ((t = jn_alloc(l->a, l->pos - start)) == NULL) {
		l->oom = 1;
		return;
	}
	o = t;
	p = l->buf + start + 1;
	while (*p != '"') {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		if (*p != 'u') {
			switch (*p) {
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			default:	/* " \ / */
				*o++ = *p;
				break;
			}
			p++;
			continue;
		}
		v = jl_hex4(p + 1);
		p += 5;
		if (v >= 0xd800 && v <= 0xdbff) {
			if (p[0] != '\\' || p[1] != 'u') {
				jl_error(l, json_error_invalid_syntax,
				    "invalid Unicode '\\u%04X'", v);
				return;
			}
			v2 = jl_hex4(p + 2);
			p += 6;
			if (v2 < 0xdc00 || v2 > 0xdfff) {
				jl_error(l, json_error_invalid_syntax,
				    "invalid Unicode '\\u%04X\\u%04X'", v, v2);
				return;
			}
			v = ((v - 0xd800) << 10) + (v2 - 0xdc00) + 0x10000;
		} else if (v >= 0xdc00 && v <= 0xdfff) {
			jl_error(l, json_error_invalid_syntax,
			    "invalid Unicode '\\u%04X'", v);
			return;
		}
		if (v < 0x80)
			*o++ = v;
		else if (v < 0x800) {
			*o++ = 0xc0 | (v >> 6);
			*o++ = 0x80 | (v & 0x3f);
		} else if (v < 0x10000) {
			*o++ = 0xe0 | (v >> 12);
			*o++ = 0x80 | ((v >> 6) & 0x3f);
			*o++ = 0x80 | (v & 0x3f);
		} else {
			*o++ = 0xf0 | (v >> 18);
			*o++ = 0x80 | ((v >> 12) & 0x3f);
			*o++ = 0x80 | ((v >> 6) & 0x3f);
			*o++ = 0x80 | (v & 0x3f);
		}
	}
	*o = '\0';
	l->s = (const char *)t;
	l->slen = o - t;
	l->token = T_STRING;
}

/* A number token; -1 (token invalid) when it is not one. */
static int
jl_scan_number(struct jl *l, int c)
{
	const unsigned char	*p, *end;
	unsigned long long	 v = 0, lim;
	size_t			 start = l->pos - 1, n;
	char			 small[64], *txt, *e;
	const char		*dp;
	double			 d;
	int			 neg = 0;

	l->token = T_INVALID;
	if (c == '-') {
		neg = 1;
		c = jl_get_save(l);
	}
	if (c == '0') {
		c = jl_get_save(l);
		if (c >= '0' && c <= '9') {
			jl_unget_unsave(l, c);
			return (-1);
		}
	} else if (c >= '0' && c <= '9') {
		do
			c = jl_get_save(l);
		while (c >= '0' && c <= '9');
	} else {
		jl_unget_unsave(l, c);
		return (-1);
	}
	if (c != '.' && c != 'E' && c != 'e') {
		jl_unget_unsave(l, c);
		/* the saved text is the token (pos may be past a lost NUL) */
		p = l->buf + start + neg;
		end = l->buf + start + l->savedlen;
		lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
		for (; p < end; p++) {
			if (v > (lim - (*p - '0')) / 10) {
				/* strtoll's ERANGE */
				if (neg)
					jl_error(l, json_error_numeric_overflow,
					    "too big negative integer");
				else
					jl_error(l, json_error_numeric_overflow,
					    "too big integer");
				return (-1);
			}
			v = v * 10 + (*p - '0');
		}
		l->i = neg ? (json_int_t)(0 - v) : (json_int_t)v;
		l->token = T_INTEGER;
		return (0);
	}
	if (c == '.') {
		c = jl_get(l);
		if (c < '0' || c > '9') {
			jl_unget(l, c);
			return (-1);
		}
		jl_save(l, c);
		do
			c = jl_get_save(l);
		while (c >= '0' && c <= '9');
	}
	if (c == 'E' || c == 'e') {
		c = jl_get_save(l);
		if (c == '+' || c == '-')
			c = jl_get_save(l);
		if (c < '0' || c > '9') {
			jl_unget_unsave(l, c);
			return (-1);
		}
		do
			c = jl_get_save(l);
		while (c >= '0' && c <= '9');
	}
	jl_unget_unsave(l, c);
	/* strtod() as jansson calls it: the locale's decimal point. */
	n = l->savedlen;
	if (n < sizeof(small))
		txt = small;
	else if ((txt = jn_alloc(l->a, n + 1)) == NULL) {
		l->oom = 1;
		return (-1);
	}
	memcpy(txt, l->buf + start, n);
	txt[n] = '\0';
	dp = localeconv()->decimal_point;
	if (dp != NULL && dp[0] != '.' && dp[0] != '\0' && dp[1] == '\0' &&
	    (e = strchr(txt, '.')) != NULL)
		*e = dp[0];
	errno = 0;
	d = strtod(txt, NULL);
	if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE) {
		jl_error(l, json_error_numeric_overflow,
		    "real number overflow");
		return (-1);
	}
	l->r = d;
	l->token = T_REAL;
	return (0);
}

/* The next token. */
static void
jl_scan(struct jl *l)
{
	int	c;

	l->savedlen = 0;
	l->saved[0] = '\0';
	do
		c = jl_get(l);
	while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
	if (c == JL_EOF) {
		l->token = T_EOF;
		return;
	}
	if (c == JL_ERR) {
		l->token = T_INVALID;
		return;
	}
	jl_save(l, c);
	if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' ||
	    c == ',')
		l->token = c;
	else if (c == '"')
		jl_scan_string(l);
	else if ((c >= '0' && c <= '9') || c == '-')
		jl_scan_number(l, c);
	else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		/* the whole word, for a clearer message */
		do
			c = jl_get_save(l);
		while ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
		jl_unget_unsave(l, c);
		if (strcmp(l->saved, "true") == 0)
			l->token = T_TRUE;
		else if (strcmp(l->saved, "false") == 0)
			l->token = T_FALSE;
		else if (strcmp(l->saved, "null") == 0)
			l->token = T_NULL;
		else
			l->token = T_INVALID;
	} else {
		/* the whole character, for a message in valid UTF-8 */
		jl_save_cached(l);
		l->token = T_INVALID;
	}
}

/* A new node; out of memory is remembered. */
static struct jn *
jl_new(struct jl *l, int type)
{
	struct jn	*n;

	if ((n = jn_new(l->a, type)) == NULL)
		l->oom = 1;
	return (n);
}

static struct jn	*jl_value(struct jl *);

/* An object, its first token read; a later duplicate replaces the value
 * in place (unless refused), as json_object_set does. */
static struct jn *
jl_object(struct jl *l)
{
	struct jn_members	 m;
	struct jn		*n, *c, *prev;
	const char		*k;
	size_t			 kl;
	unsigned int		 h;

	if ((n = jl_new(l, JN_OBJ)) == NULL)
		return (NULL);
	jn_members_init(&m, n);
	jl_scan(l);
	if (l->token == '}')
		return (n);
	for (;;) {
		if (l->token != T_STRING) {
			jl_error(l, json_error_invalid_syntax,
			    "string or '}' expected");
			return (NULL);
		}
		k = l->s;
		kl = l->slen;
		if (memchr(k, '\0', kl) != NULL) {
			jl_error(l, json_error_null_byte_in_key,
			    "NUL byte in object key not supported");
			return (NULL);
		}
		h = jn_hash(k, kl);
		prev = jn_members_find(&m, k, kl, h);
		if (prev != NULL && (l->flags & JSON_REJECT_DUPLICATES)) {
			jl_error(l, json_error_duplicate_key,
			    "duplicate object key");
			return (NULL);
		}
		jl_scan(l);
		if (l->token != ':') {
			jl_error(l, json_error_invalid_syntax,
			    "':' expected");
			return (NULL);
		}
		jl_scan(l);
		if ((c = jl_value(l)) == NULL)
			return (NULL);
		if (prev != NULL) {
			prev->type = c->type;
			prev->n = c->n;
			prev->u = c->u;
		} else
			jn_members_add(&m, c, k, kl, h);
		jl_scan(l);
		if (l->token != ',')
			break;
		jl_scan(l);
	}
	if (l->token != '}') {
		jl_error(l, json_error_invalid_syntax, "'}' expected");
		return (NULL);
	}
	return (n);
}

/* An array, its first token read. */
static struct jn *
jl_array(struct jl *l)
{
	struct jn	*n, *c, **tail;

	if ((n = jl_new(l, JN_ARR)) == NULL)
		return (NULL);
	tail = &n->u.kid;
	jl_scan(l);
	if (l->token == ']')
		return (n);
	while (l->token != T_EOF) {
		if ((c = jl_value(l)) == NULL)
			return (NULL);
		*tail = c;
		tail = &c->next;
		n->n++;
		jl_scan(l);
		if (l->token != ',')
			break;
		jl_scan(l);
	}
	if (l->token != ']') {
		jl_error(l, json_error_invalid_syntax, "']' expected");
		return (NULL);
	}
	return (n);
}

/* The value starting at the current token. */
static struct jn *
jl_value(struct jl *l)
{
	struct jn	*n;

	if (++l->depth > JL_MAX_DEPTH) {
		jl_error(l, json_error_stack_overflow,
		    "maximum parsing depth reached");
		return (NULL);
	}
	switch (l->token) {
	case T_STRING:
		if (memchr(l->s, '\0', l->slen) != NULL) {
			jl_error(l, json_error_null_character,
			    "\\u0000 is not allowed without JSON_ALLOW_NUL");
			return (NULL);
		}
		if ((n = jl_new(l, JN_STR)) != NULL) {
			n->u.s = l->s;
			n->n = l->slen;
		}
		break;
	case T_INTEGER:
		if ((n = jl_new(l, JN_INT)) != NULL)
			n->u.i = l->i;
		break;
	case T_REAL:
		if ((n = jl_new(l, JN_REAL)) != NULL)
			n->u.r = l->r;
		break;
	case T_TRUE:
		n = jl_new(l, JN_TRUE);
		break;
	case T_FALSE:
		n = jl_new(l, JN_FALSE);
		break;
	case T_NULL:
		n = jl_new(l, JN_NULL);
		break;
	case '{':
		n = jl_object(l);
		break;
	case '[':
		n = jl_array(l);
		break;
	case T_INVALID:
		jl_error(l, json_error_invalid_syntax, "invalid token");
		return (NULL);
	default:
		jl_error(l, json_error_invalid_syntax, "unexpected token");
		return (NULL);
	}
	if (n == NULL)
		return (NULL);
	l->depth--;
	return (n);
}

/* jansson's json_error_t as json_loadb() starts it. */
static void
jl_error_init(json_error_t *err)
{
	memset(err, 0, sizeof(*err));
	err->line = -1;
	err->column = -1;
	snprintf(err->source, sizeof(err->source), "<buffer>");
	err->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_unknown;
}

/*
 * Parse buf as json_loadb(buf, len, flags, err) would (flags:
 * JSON_REJECT_DUPLICATES, JSON_DECODE_ANY, JSON_DISABLE_EOF_CHECK) into
 * arena a. NULL with err set when refused; when memory ran out, err says
 * "out of memory" with the code json_error_out_of_memory.
 */
struct jn *
jn_load(struct jn_arena *a, const void *buf, size_t len, int flags,
    json_error_t *err)
{
	struct jl	 l;
	struct jn	*n = NULL;
	json_error_t	 local;

	if (err == NULL)		/* json_loadb() takes NULL too */
		err = &local;
	memset(&l, 0, sizeof(l));
	l.buf = buf;
	l.len = buf != NULL ? len : 0;
	l.line = 1;
	l.flags = flags;
	l.a = a;
	l.err = err;
	jl_error_init(err);
	jl_scan(&l);
	if (!(flags & JSON_DECODE_ANY) && l.token != '[' && l.token != '{')
		jl_error(&l, json_error_invalid_syntax,
		    "'[' or '{' expected");
	else if ((n = jl_value(&l)) != NULL &&
	    !(flags & JSON_DISABLE_EOF_CHECK)) {
		jl_scan(&l);
		if (l.token != T_EOF) {
			jl_error(&l, json_error_end_of_input_expected,
			    "end of file expected");
			n = NULL;
		}
	}
	if (l.oom) {
		jl_error_init(err);
		snprintf(err->text, JSON_ERROR_TEXT_LENGTH - 1,
		    "out of memory");
		err->text[JSON_ERROR_TEXT_LENGTH - 1] =
		    (char)json_error_out_of_memory;
		return (NULL);
	}
	if (n != NULL)
		err->position = (int)(l.pos - l.dropped);
	return (n);
}

/* jn_load() as jansson values: json_loadb() without its failure modes. */
json_t *
jf_loadb(const void *buf, size_t len, int flags, json_error_t *err)
{
	struct jn_arena	*a;
	struct jn	*n;
	json_t		*j = NULL;
	json_error_t	 local;

	if (err == NULL)		/* json_loadb() takes NULL too */
		err = &local;
	/* the arena's first block is large: not on the stack here */
	if ((a = malloc(sizeof(*a))) == NULL) {
		jl_error_init(err);
		snprintf(err->text, JSON_ERROR_TEXT_LENGTH - 1,
		    "out of memory");
		err->text[JSON_ERROR_TEXT_LENGTH - 1] =
		    (char)json_error_out_of_memory;
		return (NULL);
	}
	jn_arena_init(a);
	if ((n = jn_load(a, buf, len, flags, err)) != NULL &&
	    (j = jn_to_json(n)) == NULL) {
		jl_error_init(err);
		snprintf(err->text, JSON_ERROR_TEXT_LENGTH - 1,
		    "out of memory");
		err->text[JSON_ERROR_TEXT_LENGTH - 1] =
		    (char)json_error_out_of_memory;
	}
	jn_arena_free(a);
	free(a);
	return (j);
}

/* Did a jn_load() or jf_loadb() refusal come from want of memory? */
int
jf_oom_error(const json_error_t *err)
{
	return (json_error_code(err) == json_error_out_of_memory);
}
