/*
 * HTTP message helpers: collect headers from http-parser callbacks, check the
 * framing headers the way a strict peer would, and build refusal replies.
 * No I/O here, so tests/check_http.c exercises all of it.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpmsg.h"

static int	 append(struct httpmsg *, char **, const char *, size_t);
static void	 json_escape(char *, size_t, const char *);

/*
 * Grow *dst, the last string in m's buffer (NULL: start a new one), by len
 * bytes of src, keeping it NUL-terminated. One buffer for all the names and
 * values: a head costs a couple of allocations, not two per header.
 */
static int
append(struct httpmsg *m, char **dst, const char *src, size_t len)
{
	size_t	 need = m->len + len + (*dst == NULL ? 1 : 0), size, i;
	char	*nb;

	if (need > m->size) {
		size = m->size ? m->size : 256;
		while (size < need)
			size *= 2;
		if ((nb = malloc(size)) == NULL)
			return -1;
		if (m->len > 0)
			memcpy(nb, m->buf, m->len);
		for (i = 0; i < m->nhdr; i++) {
			if (m->hdr[i].name != NULL)
				m->hdr[i].name = nb + (m->hdr[i].name - m->buf);
			if (m->hdr[i].value != NULL)
				m->hdr[i].value = nb +
				    (m->hdr[i].value - m->buf);
		}
		free(m->buf);
		m->buf = nb;
		m->size = size;
	}
	if (*dst == NULL)
		*dst = m->buf + m->len;
	else
		m->len--;	/* over the NUL */
	memcpy(m->buf + m->len, src, len);
	m->len += len;
	m->buf[m->len++] = '\0';
	return 0;
}

/* Take a header-name fragment; a new name starts after a value. */
int
httpmsg_add_field(struct httpmsg *m, const char *at, size_t len)
{
	if (m->nhdr == 0 || m->in_value) {
		if (m->nhdr == HTTPMSG_MAX_HEADERS) {
			m->overflow = 1;
			return -1;
		}
		if (m->nhdr == m->cap) {
			size_t ncap = m->cap ? m->cap * 2 : 16;
			struct httpmsg_hdr *h;

			if ((h = realloc(m->hdr, ncap * sizeof(*h))) == NULL)
				return -1;
			m->hdr = h;
			m->cap = ncap;
		}
		m->hdr[m->nhdr].name = NULL;
		m->hdr[m->nhdr].value = NULL;
		m->nhdr++;
		m->in_value = 0;
	}
	return append(m, &m->hdr[m->nhdr - 1].name, at, len);
}

/* Take a header-value fragment for the last name. */
int
httpmsg_add_value(struct httpmsg *m, const char *at, size_t len)
{
	if (m->nhdr == 0)
		return -1;
	m->in_value = 1;
	return append(m, &m->hdr[m->nhdr - 1].value, at, len);
}

/* Free every header and start over. */
void
httpmsg_clear(struct httpmsg *m)
{
	free(m->buf);
	free(m->hdr);
	memset(m, 0, sizeof(*m));
}

/* First value of a header (case-insensitive name); *count gets how many. */
const char *
httpmsg_get(const struct httpmsg *m, const char *name, int *count)
{
	const char	*v = NULL;
	size_t		 i;
	int		 n = 0;

	for (i = 0; i < m->nhdr; i++) {
		if (m->hdr[i].name == NULL ||
		    strcasecmp(m->hdr[i].name, name) != 0)
			continue;
		if (n++ == 0)
			v = m->hdr[i].value ? m->hdr[i].value : "";
	}
	if (count != NULL)
		*count = n;
	return v;
}

/* Does a comma-separated header value contain token (case-insensitive)? */
int
httpmsg_token_list_has(const char *list, const char *token)
{
	size_t		 tl = strlen(token), n;
	const char	*p = list;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* Headers dockgate rebuilds itself and never copies. */
int
httpmsg_is_hop(const char *name)
{
	static const struct {
		const char	*name;
		size_t		 len;
	} hop[] = {
		{ "Content-Length", 14 }, { "Transfer-Encoding", 17 },
		{ "Connection", 10 }, { "Upgrade", 7 }, { "Expect", 6 },
		{ "Keep-Alive", 10 }, { "Proxy-Connection", 16 }, { "TE", 2 },
		{ "Trailer", 7 }, { "Proxy-Authorization", 19 },
		{ "Proxy-Authenticate", 18 },
	};
	size_t	 i, len = strlen(name);

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (hop[i].len == len && strcasecmp(name, hop[i].name) == 0)
			return 1;
	return 0;
}

/* Is ch an RFC 9110 token character (what a header name is made of)? */
static int
httpmsg_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '-')
		return 1;
	return ch != '\0' && strchr("!#$%&'*+.^_`|~", ch) != NULL;
}

/*
 * Validate a request's framing headers: one Content-Length of digits, or
 * Transfer-Encoding exactly "chunked", never both; one Host; known Expect.
 */
int
httpmsg_framing(const struct httpmsg *m, struct httpmsg_framing *f,
    const char **why)
{
	/* The headers framing reads, found in one pass over the message. */
	static const struct {
		const char	*name;
		size_t		 len;
	} known[] = {
		{ "Content-Length", 14 }, { "Transfer-Encoding", 17 },
		{ "Connection", 10 }, { "Upgrade", 7 }, { "Expect", 6 },
		{ "Host", 4 }, { "Content-Type", 12 },
	};
	const char	*val[7] = { NULL };
	int		 cnt[7] = { 0 };
	const char	*cl, *te, *conn, *up, *ex, *host, *ct;
	int		 ncl, nte, nconn, nup, nex, nhost, nct;
	size_t		 i, k, len;
	char		*end;

	memset(f, 0, sizeof(*f));
	if (m->overflow) {
		*why = "too many header fields";
		return -1;
	}
	for (i = 0; i < m->nhdr; i++) {
		const char *n = m->hdr[i].name;

		if (n == NULL || n[0] == '\0') {
			*why = "empty header name";
			return -1;
		}
		/* RFC 9110 token characters only: no spaces before colons. */
		for (len = 0; httpmsg_tchar((unsigned char)n[len]); len++)
			;
		if (n[len] != '\0') {
			*why = "bad header name";
			return -1;
		}
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (known[k].len == len &&
			    strcasecmp(n, known[k].name) == 0) {
				if (cnt[k]++ == 0)
					val[k] = m->hdr[i].value ?
					    m->hdr[i].value : "";
				break;
			}
	}
	cl = val[0], ncl = cnt[0];
	te = val[1], nte = cnt[1];
	conn = val[2], nconn = cnt[2];
	up = val[3], nup = cnt[3];
	ex = val[4], nex = cnt[4];
	host = val[5], nhost = cnt[5];
	ct = val[6], nct = cnt[6];

	if (ncl > 1) {
		*why = "Content-Length given more than once";
		return -1;
	}
	if (nte > 1) {
		*why = "Transfer-Encoding given more than once";
		return -1;
	}
	if (ncl && nte) {
		*why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	if (nhost > 1) {
		*why = "Host given more than once";
		return -1;
	}
	if (nct > 1) {
		*why = "Content-Type given more than once";
		return -1;
	}
	if (nup > 1 || nconn > 1 || nex > 1) {
		*why = "a connection header given more than once";
		return -1;
	}
	if (ncl) {
		if (cl[0] < '0' || cl[0] > '9' || strlen(cl) > 18) {
			*why = "bad Content-Length";
			return -1;
		}
		for (i = 0; cl[i] != '\0'; i++)
			if (!isdigit((unsigned char)cl[i])) {
				*why = "bad Content-Length";
				return -1;
			}
		f->has_length = 1;
		f->length = strtoull(cl, &end, 10);
	}
	if (nte) {
		if (strcasecmp(te, "chunked") != 0) {
			*why = "unsupported Transfer-Encoding";
			return -1;
		}
		f->chunked = 1;
	}
	if (nconn) {
		if (httpmsg_token_list_has(conn, "close"))
			f->conn_close = 1;
		if (httpmsg_token_list_has(conn, "upgrade") && nup) {
			if (strlen(up) == 0 || strlen(up) >= sizeof(f->upgrade_proto)) {
				*why = "bad Upgrade";
				return -1;
			}
			f->upgrade = 1;
			for (i = 0; up[i] != '\0'; i++)
				f->upgrade_proto[i] =
				    (char)tolower((unsigned char)up[i]);
		}
	}
	if (nex) {
		if (strcasecmp(ex, "100-continue") != 0) {
			*why = "unsupported Expect";
			return -1;
		}
		f->expect_continue = 1;
	}
	f->host = host;
	f->content_type = ct;
	f->connection = conn;
	return 0;
}

/*
 * Scan request-head bytes as they are parsed, for what http-parser
 * tolerates but a careful proxy must not: obs-fold continuation lines and
 * control bytes. *prev carries the last byte across calls (0 at the start).
 */
int
httpmsg_head_scan(char *prev, const char *p, size_t n, const char **why)
{
	size_t	 i;
	char	 last = *prev;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		/* Printable, not after a CR: nothing to check. */
		if (c > 0x20 && c != 0x7f && last != '\r') {
			last = (char)c;
			continue;
		}
		if (last == '\n' && (c == ' ' || c == '\t')) {
			*why = "obsolete header line folding";
			*prev = last;
			return -1;
		}
		/* http-parser (non-strict) ends a line at a bare CR. */
		if (last == '\r' && c != '\n') {
			*why = "bare CR in request head";
			*prev = last;
			return -1;
		}
		if (c == 0 || c == 0x7f ||
		    (c < 0x20 && c != '\r' && c != '\n' && c != '\t')) {
			*why = "control character in request head";
			*prev = last;
			return -1;
		}
		last = (char)c;
	}
	*prev = last;
	return 0;
}

/* Where the chunk framing scan is. */
enum {
	CH_HEAD_LF = 0,	/* the head's last LF, given again after the pause */
	CH_SIZE,	/* a size line's first hex digit */
	CH_DIGITS,	/* more digits, ';' or ' ' (extension) or CR */
	CH_EXT,		/* extension bytes up to CR */
	CH_SIZE_LF,	/* LF ending a size line */
	CH_DATA,	/* chunk data (skipped by _data()) */
	CH_DATA_CR,	/* CR after data */
	CH_DATA_LF,	/* LF after data */
	CH_TRAILER,	/* a trailer line's first byte, or the last CR */
	CH_FIELD,	/* trailer line bytes up to CR */
	CH_FIELD_LF,	/* LF ending a trailer line */
	CH_END_LF,	/* LF ending the body */
	CH_DONE,	/* nothing more belongs to this body */
};

/* Forget the chunk framing state: a new request. */
void
httpmsg_chunks_reset(struct httpmsg_chunks *s)
{
	memset(s, 0, sizeof(*s));
	s->state = CH_HEAD_LF;
}

/* The parser is about to read buf (NULL: not a chunked body now). */
void
httpmsg_chunks_begin(struct httpmsg_chunks *s, const char *buf)
{
	s->from = buf;
}

/* A hex digit's value, or -1. */
static int
httpmsg_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read framing bytes p[0..n); -1 at the first one out of place. */
static int
httpmsg_chunks_scan(struct httpmsg_chunks *s, const char *p, size_t n)
{
	size_t		 i;
	unsigned char	 c;
	int		 d;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		switch (s->state) {
		case CH_HEAD_LF:
			s->state = CH_SIZE;
			if (c == '\n')
				break;
			/* FALLTHROUGH */
		case CH_SIZE:
			if ((d = httpmsg_hex(c)) < 0)
				return -1;
			s->left = (unsigned long long)d;
			s->state = CH_DIGITS;
			break;
		case CH_DIGITS:
			if ((d = httpmsg_hex(c)) >= 0) {
				if (s->left > (~0ULL >> 4))
					return -1;
				s->left = s->left * 16 + (unsigned)d;
			} else if (c == ';' || c == ' ')
				s->state = CH_EXT;
			else if (c == '\r')
				s->state = CH_SIZE_LF;
			else
				return -1;
			break;
		case CH_EXT:
			if (c == '\r')
				s->state = CH_SIZE_LF;
			else if (c == '\n' || c == 0 || c == 0x7f)
				return -1;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return -1;
			s->last = s->left == 0;
			s->state = s->last ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA_CR:
			if (c != '\r')
				return -1;
			s->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return -1;
			s->state = CH_SIZE;
			break;
		case CH_TRAILER:
			s->state = c == '\r' ? CH_END_LF : CH_FIELD;
			if (c == '\n')
				return -1;
			break;
		case CH_FIELD:
			if (c == '\r')
				s->state = CH_FIELD_LF;
			else if (c == '\n')
				return -1;
			break;
		case CH_FIELD_LF:
			if (c != '\n')
				return -1;
			s->state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (c != '\n')
				return -1;
			s->state = CH_DONE;
			break;
		default:	/* CH_DATA: data the parser did not give */
			return -1;
		}
	}
	return 0;
}

/* on_body: the framing before this data is read, then the data must be
 * where the last size line put it and no longer; -1 when not. */
int
httpmsg_chunks_data(struct httpmsg_chunks *s, const char *at, size_t len)
{
	if (s->from == NULL)
		return 0;
	if (at < s->from || httpmsg_chunks_scan(s, s->from,
	    (size_t)(at - s->from)) == -1)
		return -1;
	s->from = at + len;
	if (len == 0)
		return 0;
	if (s->state != CH_DATA || len > s->left)
		return -1;
	s->left -= len;
	if (s->left == 0)
		s->state = CH_DATA_CR;
	return 0;
}

/* The parser stopped at end: read the framing after the last data;
 * -1 when it is bad. Scanning is off until the next begin. */
int
httpmsg_chunks_end(struct httpmsg_chunks *s, const char *end)
{
	const char	*from = s->from;

	s->from = NULL;
	if (from == NULL || from >= end)
		return 0;
	return httpmsg_chunks_scan(s, from, (size_t)(end - from));
}

/* Reason phrase for the statuses dockgate answers with itself. */
const char *
httpmsg_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Error";
}

/* Copy s into dst as JSON string content (no quotes), truncating safely. */
static void
json_escape(char *dst, size_t size, const char *s)
{
	size_t	 o = 0;

	for (; *s != '\0' && o + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, size - o, "\\u%04x", c);
		} else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

/*
 * A complete refusal: status line, JSON content type, exact length, and the
 * body {"message":"dockgate: <reason> (rule <rule>)"}; closing adds
 * Connection: close, and a 429 says when to retry (seconds). Returns a new string; *len gets its length.
 */
char *
httpmsg_refusal(int status, const char *reason, const char *rule,
    int closing, int retry_after, size_t *len)
{
	char	 body[1400], esc[1200], msg[1100], retry[48], *out;
	int	 n, bl;

	if (rule != NULL && rule[0] != '\0')
		snprintf(msg, sizeof(msg), "dockgate: %s (rule %s)", reason,
		    rule);
	else
		snprintf(msg, sizeof(msg), "dockgate: %s", reason);
	json_escape(esc, sizeof(esc), msg);
	bl = snprintf(body, sizeof(body), "{\"message\":\"%s\"}\n", esc);
	retry[0] = '\0';
	if (status == 429)
		snprintf(retry, sizeof(retry), "Retry-After: %d\r\n",
		    retry_after > 0 ? retry_after : 1);
	if ((out = malloc(bl + 256)) == NULL)
		return NULL;
	n = snprintf(out, bl + 256,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %d\r\n"
	    "%s%s"
	    "\r\n%s", status, httpmsg_status_text(status), bl,
	    retry,
	    closing ? "Connection: close\r\n" : "", body);
	*len = (size_t)n;
	return out;
}
