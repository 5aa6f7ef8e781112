/*
 * fuzz_http: the daemon's request parser glue (proxy/conn.c: conn_parse and
 * the req_on_* callbacks) over a client byte stream that arrives in pieces
 * the fuzzer chooses. conn.c needs libevent, so this harness re-creates its
 * logic line for line over a plain buffer: the same http-parser settings,
 * the same pauses (head complete; message complete unless upgrade), the same
 * head scan and limits, httpmsg_framing() and policy_req_parse() at the head,
 * body buffering or streaming by policy_body_mode(), and the keep-alive loop
 * (the next request is parsed from what is left).
 *
 * Input: byte 0 and 1 seed the piece sizes (byte 0 & 63 is the largest
 * piece, 0 = one piece), byte 2 bit 0 picks small limits (max header 256,
 * max body 512) instead of the daemon's defaults; the rest is the stream.
 *
 * Invariants (abort() on violation, so libFuzzer keeps the input):
 *  H1 a request counted complete never consumed a byte past its end: the
 *     bytes consumed when it completes are exactly head + body on the wire
 *     (Content-Length; for chunked, an independent chunked scanner);
 *  H2 framing validation agrees with http-parser: has_length => the parser
 *     read exactly that many body bytes and no chunking; chunked <=>
 *     F_CHUNKED; neither => no body at all;
 *  H3 a buffered body handed to the decision is exactly the decoded body,
 *     and never more than the limit;
 *  H4 the forwarded target is a fixed point: parse(target(parse(x))) has
 *     the same method, path, route, version and parameters, and
 *     target() of it is the same string;
 *  H5 the loop never stalls: it stops only to wait for input, on a
 *     refusal, or at a request's end;
 *  H6 the head scan saw every head byte before the head was handled;
 *  H7 the head the parser accepted has no bare CR;
 *  H8 the chunk framing the daemon's scan (httpmsg_chunks_*, called here
 *     from the same callbacks as in conn.c) accepts is framing the
 *     reference scanner reads the same way (H1 for chunked bodies).
 */
#include "config.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "httpmsg.h"
#include "policy.h"
#include "fuzz_common.h"

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_http: invariant failed: %s: ", #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

enum fstate { S_HEAD, S_BODY, S_FORWARD, S_DONE, S_CLOSED };

struct fconn {
	http_parser		 p;
	struct httpmsg		 reqh;
	struct httpmsg_framing	 framing;
	struct policy_req	 req;
	int			 req_parsed;
	char			*url;
	size_t			 url_len;
	enum fstate		 state;
	int			 req_started, head_done, head_handled;
	int			 req_done, req_finished, req_keepalive;
	int			 body_mode, has_body, forward_chunked;
	size_t			 head_bytes;
	unsigned long long	 body_bytes;
	char			 head_prev;
	struct httpmsg_chunks	 chunks;
	int			 err_status;
	const char		*err_reason;
	unsigned char		*body;		/* buffered (S_BODY) */
	size_t			 body_len, body_cap;
	unsigned long long	 fwd_bytes;	/* streamed (S_FORWARD) */

	/* Bookkeeping for the invariants. */
	size_t			 consumed;	/* stream offset of the parser */
	size_t			 req_start;	/* stream offset of this request */
	size_t			 head_end;	/* offset after the head */
	size_t			 scanned;	/* head bytes the scan saw */
	int			 in_head_cb;
	const unsigned char	*stream;
	size_t			 stream_len;
	size_t			 max_header, max_body;
	unsigned		 nrequests;
};

static struct fconn *cur;

static int
f_on_url(http_parser *p, const char *at, size_t len)
{
	struct fconn	*c = p->data;
	char		*u;

	if ((u = realloc(c->url, c->url_len + len + 1)) == NULL)
		return -1;
	memcpy(u + c->url_len, at, len);
	c->url_len += len;
	u[c->url_len] = '\0';
	c->url = u;
	return 0;
}

static int
f_on_header_field(http_parser *p, const char *at, size_t len)
{
	struct fconn	*c = p->data;

	if (c->head_done)
		return 0;
	return httpmsg_add_field(&c->reqh, at, len);
}

static int
f_on_header_value(http_parser *p, const char *at, size_t len)
{
	struct fconn	*c = p->data;

	if (c->head_done)
		return 0;
	return httpmsg_add_value(&c->reqh, at, len);
}

static int
f_on_headers_complete(http_parser *p)
{
	struct fconn	*c = p->data;

	c->head_done = 1;
	c->req_keepalive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static int
f_on_body(http_parser *p, const char *at, size_t len)
{
	struct fconn	*c = p->data;

	if (httpmsg_chunks_data(&c->chunks, at, len) == -1) {
		c->err_status = 400;
		c->err_reason = "bad chunk framing";
		return -1;
	}
	c->body_bytes += len;
	if (c->state == S_BODY) {
		if (c->body_bytes > c->max_body) {
			c->err_status = 413;
			c->err_reason = "request body exceeds --max-body-bytes";
			return -1;
		}
		if (c->body_len + len > c->body_cap) {
			size_t ncap = (c->body_len + len) * 2;
			unsigned char *b = realloc(c->body, ncap);

			if (b == NULL)
				return -1;
			c->body = b;
			c->body_cap = ncap;
		}
		memcpy(c->body + c->body_len, at, len);
		c->body_len += len;
		return 0;
	}
	if (c->state == S_FORWARD) {
		c->fwd_bytes += len;
		return 0;
	}
	return -1;	/* a body where none is being taken */
}

static int
f_on_message_complete(http_parser *p)
{
	struct fconn	*c = p->data;

	c->req_done = 1;
	if (!p->upgrade)
		http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings f_settings = {
	.on_url = f_on_url,
	.on_header_field = f_on_header_field,
	.on_header_value = f_on_header_value,
	.on_headers_complete = f_on_headers_complete,
	.on_body = f_on_body,
	.on_message_complete = f_on_message_complete,
};

static void
f_request_free(struct fconn *c)
{
	free(c->url);
	c->url = NULL;
	c->url_len = 0;
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
	httpmsg_clear(&c->reqh);
	if (c->req_parsed)
		policy_req_clear(&c->req);
	c->req_parsed = 0;
}

static void
f_request_reset(struct fconn *c)
{
	f_request_free(c);
	c->req_started = c->head_done = c->head_handled = 0;
	c->req_done = c->req_finished = c->req_keepalive = 0;
	c->body_mode = c->has_body = c->forward_chunked = 0;
	c->head_bytes = 0;
	c->body_bytes = 0;
	c->fwd_bytes = 0;
	c->head_prev = 0;
	httpmsg_chunks_reset(&c->chunks);
	c->err_status = 0;
	c->err_reason = NULL;
	c->scanned = 0;
	c->state = S_HEAD;
}

/* A refusal: the connection goes on only when the request was read whole. */
static void
f_refuse(struct fconn *c, int must_close)
{
	if (must_close || !c->req_done || !c->req_keepalive) {
		c->state = S_CLOSED;
		return;
	}
	f_request_reset(c);
}

static int
hexdig(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * An independent reading of a chunked body from stream offset off:
 * the offset just after it (last chunk, trailers, blank line), with the
 * decoded size in *dec; (size_t)-1 when it is malformed or incomplete.
 * Lenient the way http-parser is: a bare LF ends a line, chunk extensions
 * and trailers are skipped.
 */
static size_t
chunked_end(const unsigned char *s, size_t len, size_t off,
    unsigned long long *dec)
{
	unsigned long long	 sz;
	int			 d, nd;
	size_t			 line;

	*dec = 0;
	for (;;) {
		sz = 0;
		nd = 0;
		while (off < len && (d = hexdig(s[off])) >= 0) {
			if (sz > (ULLONG_MAX >> 4))
				return (size_t)-1;
			sz = sz * 16 + (unsigned)d;
			nd++;
			off++;
		}
		if (nd == 0)
			return (size_t)-1;
		/* extension / whitespace up to the end of the line */
		while (off < len && s[off] != '\n')
			off++;
		if (off >= len)
			return (size_t)-1;
		off++;
		if (sz == 0)
			break;
		if (len - off < sz)
			return (size_t)-1;
		off += sz;
		*dec += sz;
		if (off < len && s[off] == '\r')
			off++;
		if (off >= len || s[off] != '\n')
			return (size_t)-1;
		off++;
	}
	/* trailers: lines up to an empty one */
	for (;;) {
		line = off;
		while (off < len && s[off] != '\n')
			off++;
		if (off >= len)
			return (size_t)-1;
		off++;
		if (off - line == 1 || (off - line == 2 && s[line] == '\r'))
			return off;
	}
}

/* H4: the forwarded target parses back to the same request. */
static void
check_target_fixed_point(const struct policy_req *req)
{
	struct policy_req	 r2;
	const char		*why = NULL;
	char			*t, *t2;
	size_t			 i;

	t = policy_req_target(req);
	if (t == NULL)
		return;		/* out of memory only */
	CHECK(policy_req_parse(&r2, req->method, t, strlen(t), &why) == 0,
	    "forwarded target \"%s\" of path \"%s\" does not parse: %s", t,
	    req->path, why);
	CHECK(strcmp(r2.path, req->path) == 0, "path \"%s\" -> \"%s\" -> "
	    "\"%s\"", req->path, t, r2.path);
	CHECK(strcmp(r2.route, req->route) == 0, "route \"%s\" -> \"%s\"",
	    req->route, r2.route);
	CHECK(strcmp(r2.version, req->version) == 0, "version");
	CHECK(strcmp(r2.method, req->method) == 0, "method");
	CHECK(r2.nparams == req->nparams, "%zu params -> %zu (target %s)",
	    req->nparams, r2.nparams, t);
	for (i = 0; i < r2.nparams; i++) {
		CHECK(strcmp(r2.params[i].name, req->params[i].name) == 0,
		    "param %zu name", i);
		CHECK(strcmp(r2.params[i].value, req->params[i].value) == 0,
		    "param %zu value", i);
	}
	t2 = policy_req_target(&r2);
	if (t2 != NULL)
		CHECK(strcmp(t, t2) == 0, "target \"%s\" -> \"%s\"", t, t2);
	free(t2);
	free(t);
	policy_req_clear(&r2);
}

/* conn_request_head(), without the I/O. */
static void
f_request_head(struct fconn *c)
{
	const char	*why, *ct;
	int		 has_body;

	if (httpmsg_framing(&c->reqh, &c->framing, &why) == -1) {
		f_refuse(c, 1);
		return;
	}
	/* H2: the framing we validated is the framing http-parser uses. */
	if (c->framing.chunked)
		CHECK(c->p.flags & F_CHUNKED, "Transfer-Encoding: chunked "
		    "validated, http-parser not chunked");
	else
		CHECK(!(c->p.flags & F_CHUNKED), "http-parser chunked, "
		    "framing not");
	if (c->framing.has_length)
		CHECK(c->p.content_length == c->framing.length,
		    "Content-Length %llu, http-parser %llu",
		    c->framing.length,
		    (unsigned long long)c->p.content_length);
	else if (!c->framing.chunked)
		CHECK(c->p.content_length == 0 ||
		    c->p.content_length == ULLONG_MAX,
		    "no framing header, http-parser expects %llu bytes",
		    (unsigned long long)c->p.content_length);

	if (c->url == NULL || policy_req_parse(&c->req,
	    http_method_str((enum http_method)c->p.method), c->url,
	    c->url_len, &why) == -1) {
		f_refuse(c, 1);
		return;
	}
	c->req_parsed = 1;
	check_target_fixed_point(&c->req);
	has_body = c->framing.chunked ||
	    (c->framing.has_length && c->framing.length > 0);
	ct = c->framing.content_type;
	if (has_body && ct != NULL && strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) == 0) {
		f_refuse(c, 1);
		return;
	}
	c->req.content_type = ct;
	c->req.has_body = has_body;
	c->has_body = has_body;
	c->body_mode = policy_body_mode(&c->req);
	if (has_body && c->body_mode == POLICY_BODY_BUFFER) {
		if (c->framing.has_length && c->framing.length > c->max_body) {
			f_refuse(c, 1);
			return;
		}
		c->state = S_BODY;
		return;
	}
	if (!has_body) {
		c->state = S_BODY;
		return;
	}
	/* streamed: decided on the head (allowed here), then relayed */
	c->forward_chunked = c->framing.chunked;
	c->state = S_FORWARD;
}

/* The request was read to its end: H1, H2, H3; then the next one. */
static void
f_request_complete(struct fconn *c)
{
	unsigned long long	 dec;
	size_t			 end;

	c->nrequests++;
	if (c->framing.chunked) {
		end = chunked_end(c->stream, c->stream_len, c->head_end, &dec);
		CHECK(end != (size_t)-1, "http-parser completed a chunked body"
		    " at %zu that the reference scanner rejects (head end %zu)",
		    c->consumed, c->head_end);
		CHECK(end == c->consumed, "chunked request ends at %zu, "
		    "parser consumed up to %zu", end, c->consumed);
		CHECK(dec == c->body_bytes, "chunked body %llu bytes, parser "
		    "delivered %llu", dec, c->body_bytes);
	} else {
		dec = c->framing.has_length ? c->framing.length : 0;
		CHECK(c->body_bytes == dec, "body %llu bytes, framing says %llu",
		    c->body_bytes, dec);
		CHECK(c->consumed == c->head_end + dec,
		    "request ends at %zu, parser consumed up to %zu",
		    (size_t)(c->head_end + dec), c->consumed);
	}
	if (c->state == S_BODY) {
		/* decide_request() sees exactly the decoded body */
		CHECK(c->body_len == c->body_bytes, "buffered %zu of %llu",
		    c->body_len, c->body_bytes);
		CHECK(c->body_len <= c->max_body, "buffered body over limit");
		/* decided; forwarded or refused with the request read whole */
		if (!c->req_keepalive || c->p.upgrade) {
			c->state = S_DONE;
			return;
		}
		f_request_reset(c);
		return;
	}
	if (c->state == S_FORWARD) {
		CHECK(c->fwd_bytes == c->body_bytes, "streamed");
		if (!c->req_keepalive || c->p.upgrade) {
			c->state = S_DONE;
			return;
		}
		f_request_reset(c);
	}
}

/*
 * conn_parse() over the bytes in [c->consumed, avail): seg_end is where the
 * first contiguous piece ends (evbuffer_peek's first iovec).
 */
static void
f_parse(struct fconn *c, size_t avail, const size_t *bounds, size_t nb)
{
	size_t		 n, nparsed, seg_end, i;
	enum http_errno	 err;
	const char	*why;
	int		 chunked;

	while (c->state == S_HEAD || c->state == S_BODY ||
	    (c->state == S_FORWARD && !c->req_done)) {
		if (c->consumed >= avail)
			break;
		seg_end = avail;
		for (i = 0; i < nb; i++)
			if (bounds[i] > c->consumed && bounds[i] < seg_end) {
				seg_end = bounds[i];
				break;
			}
		if (!c->req_started) {
			http_parser_init(&c->p, HTTP_REQUEST);
			c->p.data = c;
			c->req_started = 1;
			c->req_start = c->consumed;
		}
		n = seg_end - c->consumed;
		if (!c->head_done && n > c->max_header + 1 - c->head_bytes)
			n = c->max_header + 1 - c->head_bytes;
		/* conn_parse(): the chunk framing is scanned while the
		 * body of a handled chunked head is read */
		chunked = c->head_handled && c->framing.chunked &&
		    !c->req_done;
		httpmsg_chunks_begin(&c->chunks, chunked ?
		    (const char *)c->stream + c->consumed : NULL);
		nparsed = http_parser_execute(&c->p, &f_settings,
		    (const char *)c->stream + c->consumed, n);
		err = HTTP_PARSER_ERRNO(&c->p);
		CHECK(nparsed <= n, "parser consumed %zu of %zu", nparsed, n);
		if (httpmsg_chunks_end(&c->chunks, (const char *)c->stream +
		    c->consumed + nparsed) == -1 && c->err_status == 0) {
			f_refuse(c, 1);
			return;
		}
		if (!c->head_done || (err == HPE_PAUSED && c->head_done &&
		    !c->head_handled)) {
			if (httpmsg_head_scan(&c->head_prev,
			    (const char *)c->stream + c->consumed, nparsed,
			    &why) == -1) {
				f_refuse(c, 1);
				return;
			}
			c->head_bytes += nparsed;
			c->scanned += nparsed;
		}
		if (c->head_done && !c->head_handled) {
			/* the parser stops on the head's last LF; like the
			 * daemon, refuse a head that ends in anything else */
			if (err == HPE_PAUSED && (nparsed >= n ||
			    c->stream[c->consumed + nparsed] != '\n')) {
				f_refuse(c, 1);
				return;
			}
			c->head_end = c->consumed + nparsed + 1;
		}
		c->consumed += nparsed;
		if (err == HPE_PAUSED) {
			http_parser_pause(&c->p, 0);
		} else if (err != HPE_OK) {
			f_refuse(c, 1);
			return;
		}
		if (!c->head_done && c->head_bytes > c->max_header) {
			f_refuse(c, 1);
			return;
		}
		if (c->head_done && !c->head_handled) {
			c->head_handled = 1;
			/* H6 */
			CHECK(c->scanned + 1 == c->head_end - c->req_start,
			    "head scan saw %zu of %zu bytes", c->scanned,
			    c->head_end - c->req_start - 1);
			CHECK(c->head_end <= c->stream_len, "head end past "
			    "the stream");
			/*
			 * H7: every CR of the head is followed by LF: a
			 * non-strict http-parser takes CR + any byte as a
			 * line end, and that byte escapes the head scan when
			 * it ends the head.
			 */
			CHECK(c->stream[c->head_end - 1] == '\n',
			    "head ends with 0x%02x, not LF",
			    c->stream[c->head_end - 1]);
			for (i = c->req_start; i + 1 < c->head_end; i++)
				CHECK(c->stream[i] != '\r' ||
				    c->stream[i + 1] == '\n', "bare CR at %zu "
				    "in a head the parser accepted", i);
			f_request_head(c);
			continue;
		}
		if (c->req_done && !c->req_finished) {
			c->req_finished = 1;
			f_request_complete(c);
			continue;	/* the daemon resumes after the answer */
		}
		if (nparsed == 0) {
			/* H5: no progress with bytes waiting is a stall */
			CHECK(n == 0 || c->p.upgrade, "parser stalled at %zu "
			    "with %zu bytes waiting (state %d, errno %s)",
			    c->consumed, n, c->state,
			    http_errno_name(err));
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fconn	 c;
	size_t		 bounds[4096], nb = 0, off, maxp, sz;
	uint32_t	 x;
	size_t		 i;

	if (size < 3)
		return 0;
	memset(&c, 0, sizeof(c));
	cur = &c;
	maxp = data[0] & 63;
	x = (uint32_t)data[1] * 2654435761u + 1;
	if (data[2] & 1) {
		c.max_header = 256;
		c.max_body = 512;
	} else {
		c.max_header = 65536;
		c.max_body = 1048576;
	}
	c.stream = data + 3;
	c.stream_len = size - 3;
	/* Arrival boundaries. */
	for (off = 0; maxp != 0 && off < c.stream_len && nb < 4096; ) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		sz = 1 + x % maxp;
		off += sz;
		if (off < c.stream_len)
			bounds[nb++] = off;
	}
	f_request_reset(&c);
	/* Each arrival runs the parser over everything received so far. */
	for (i = 0; i <= nb && c.state != S_CLOSED && c.state != S_DONE; i++)
		f_parse(&c, i < nb ? bounds[i] : c.stream_len, bounds, nb);
	f_request_free(&c);
	cur = NULL;
	return 0;
}
