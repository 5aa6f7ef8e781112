/*
 * The engine side of a connection: connect (kept for keep-alive), send the
 * decided request with rebuilt framing, relay the answer byte for byte while
 * http-parser finds where it ends.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy.h"

static void	 upstream_writecb(struct bufferevent *, void *);
static void	 upstream_eventcb(struct bufferevent *, short, void *);
static int	 upstream_connect(struct conn *);
static void	 upstream_response_init(struct conn *);
static void	 upstream_relay(struct conn *);
static void	 upstream_failed(struct conn *, const char *);
static void	 head_add(struct evbuffer *, const char *, const char *,
		    const char *, const char *);
static void	 head_add_length(struct evbuffer *, unsigned long long);
static int	 upstream_redact(struct conn *);

static int	 resp_on_headers_complete(http_parser *);
static int	 resp_on_message_complete(http_parser *);

static int	 resp_on_body(http_parser *, const char *, size_t);

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_on_headers_complete,
	.on_body = resp_on_body,
	.on_message_complete = resp_on_message_complete,
};

#define UPSTREAM_POOL_MAX	32

/* Idle engine connections kept for the next client (plain sockets). */
static struct bufferevent	*pool[UPSTREAM_POOL_MAX];
static size_t			 npool;

static void	 pool_readcb(struct bufferevent *, void *);
static void	 pool_eventcb(struct bufferevent *, short, void *);
static void	 pool_drop(struct bufferevent *);

/* Take a pooled connection out and free it. */
static void
pool_drop(struct bufferevent *bev)
{
	size_t	 i;

	for (i = 0; i < npool; i++)
		if (pool[i] == bev) {
			pool[i] = pool[--npool];
			break;
		}
	bufferevent_free(bev);
}

/* An idle engine connection spoke: it is no longer fit for reuse. */
static void
pool_readcb(struct bufferevent *bev, void *arg)
{
	pool_drop(bev);
}

/* An idle engine connection closed. */
static void
pool_eventcb(struct bufferevent *bev, short what, void *arg)
{
	pool_drop(bev);
}

/*
 * The client is done with its engine connection: keep it for the next
 * client when it is idle after a complete keep-alive answer, else close it.
 */
void
upstream_release(struct conn *c)
{
	struct bufferevent	*bev = c->up;

	if (bev == NULL)
		return;
	io_unqueue(c);
	if (!c->up_idle || !c->up_ready || c->up_tls || proxy->stopping ||
	    npool == UPSTREAM_POOL_MAX ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		upstream_close(c);
		return;
	}
	bufferevent_setcb(bev, pool_readcb, NULL, pool_eventcb, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_READ);
	pool[npool++] = bev;
	c->up = NULL;
	c->up_ready = c->up_idle = c->up_paused = 0;
}

/* Close every pooled connection (exit). */
void
upstream_pool_free(void)
{
	while (npool > 0)
		bufferevent_free(pool[--npool]);
}

/* Open the engine connection if there is none (or reuse a pooled one). */
static int
upstream_connect(struct conn *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (c->up != NULL)
		return 0;
	if (npool > 0) {
		c->up = pool[--npool];
		bufferevent_setcb(c->up, upstream_readcb, upstream_writecb,
		    upstream_eventcb, c);
		c->up_ready = 1;
		c->up_tls = 0;
		c->up_idle = 0;
		return 0;
	}
	if (addr_sockaddr(&proxy->upstream, &ss, &len) == -1)
		return -1;
	c->up = tls_upstream_bev(&c->up_tls);
	if (c->up == NULL)
		return -1;
	c->up_ready = 0;
	bufferevent_setcb(c->up, upstream_readcb, upstream_writecb,
	    upstream_eventcb, c);
	bufferevent_set_max_single_write(c->up, 1024 * 1024);
	if (bufferevent_socket_connect(c->up, (struct sockaddr *)&ss,
	    (int)len) == -1) {
		bufferevent_free(c->up);
		c->up = NULL;
		return -1;
	}
	if (!c->up_tls)
		io_own_reads(c->up);
	bufferevent_enable(c->up, EV_READ | EV_WRITE);
	return 0;
}

/* Forget the engine connection (the next request opens a new one). */
void
upstream_close(struct conn *c)
{
	if (c->up == NULL)
		return;
	io_unqueue(c);
	bufferevent_free(c->up);
	c->up = NULL;
	c->up_ready = 0;
	c->up_idle = 0;
	c->up_paused = 0;
}

/* Get ready to parse the engine's next answer. */
static void
upstream_response_init(struct conn *c)
{
	http_parser_init(&c->rq->resp, HTTP_RESPONSE);
	c->rq->resp.data = c;
	c->resp_head_done = c->resp_done = c->resp_tunnel = 0;
	c->resp_started = 0;
}

/* The engine is unusable for the current request. */
static void
upstream_failed(struct conn *c, const char *why)
{
	upstream_close(c);
	if (c->resp_started || c->state == CONN_TUNNEL ||
	    c->state == CONN_TUNNEL_CLIENT_EOF) {
		conn_drain(c);
		return;
	}
	c->must_close = c->must_close || !c->req_done;
	conn_refuse(c, 502, why, "engine-unreachable");
}

/* Append a, b, c and d to a request head, as one piece when they are short. */
static void
head_add(struct evbuffer *out, const char *a, const char *b, const char *c,
    const char *d)
{
	const char	*p[4] = { a, b, c, d };
	size_t		 len[4], n = 0, i;
	char		 buf[512], *w = buf;

	for (i = 0; i < 4; i++)
		n += len[i] = strlen(p[i]);
	if (n > sizeof(buf)) {
		for (i = 0; i < 4; i++)
			evbuffer_add(out, p[i], len[i]);
		return;
	}
	for (i = 0; i < 4; i++) {
		memcpy(w, p[i], len[i]);
		w += len[i];
	}
	evbuffer_add(out, buf, n);
}

/* Append the Content-Length line and the end of the head. */
static void
head_add_length(struct evbuffer *out, unsigned long long n)
{
	char	 digits[24], *d = digits + sizeof(digits);

	*--d = '\0';
	do {
		*--d = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	head_add(out, "Content-Length: ", d, "\r\n\r\n", "");
}

/* Forward the decided request: rebuilt head, then the decided body. */
int
upstream_start(struct conn *c)
{
	struct evbuffer		*out;
	const struct httpmsg	*h = &c->rq->reqh;
	char			*target = NULL;
	const char		*conn_hdr;
	size_t			 i;
	int			 fresh = c->up == NULL;

	if (upstream_connect(c) == -1) {
		log_warn("conn %llu: engine %s", (unsigned long long)c->id,
		    proxy->upstream.spec);
		upstream_failed(c, "the engine is unreachable");
		return -1;
	}
	if (c->rq->res.target == NULL &&
	    (target = policy_req_target(&c->rq->req)) == NULL) {
		c->must_close = 1;
		conn_refuse(c, 500, "out of memory", "internal");
		return -1;
	}
	out = proxy->scratch;
	conn_hdr = c->rq->framing.connection;
	head_add(out, c->rq->req.method, " ",
	    c->rq->res.target ? c->rq->res.target : target, " HTTP/1.1\r\n");
	free(target);
	for (i = 0; i < h->nhdr; i++) {
		if (httpmsg_is_hop(h->hdr[i].name) ||
		    strcasecmp(h->hdr[i].name, "Host") == 0 ||
		    (conn_hdr != NULL &&
		    httpmsg_token_list_has(conn_hdr, h->hdr[i].name)))
			continue;
		head_add(out, h->hdr[i].name, ": ",
		    h->hdr[i].value ? h->hdr[i].value : "", "\r\n");
	}
	head_add(out, "Host: ", c->rq->framing.host && c->rq->framing.host[0] ?
	    c->rq->framing.host : "docker", "\r\n", "");
	if (c->hijack_route && c->rq->framing.upgrade)
		head_add(out, "Connection: Upgrade\r\nUpgrade: ",
		    c->rq->framing.upgrade_proto, "\r\n", "");
	if (c->rq->res.body != NULL) {
		head_add_length(out, c->rq->res.body_len);
		evbuffer_add(out, c->rq->res.body, c->rq->res.body_len);
	} else if (c->body != NULL) {
		head_add_length(out, evbuffer_get_length(c->body));
		evbuffer_add_buffer(out, c->body);
	} else if (c->rq->req.has_body && (c->rq->framing.chunked ||
	    c->rq->bs != NULL)) {
		c->forward_chunked = 1;
		head_add(out, "Transfer-Encoding: chunked\r\n\r\n", "", "", "");
	} else if (c->rq->req.has_body) {
		head_add_length(out, c->rq->framing.length);
	} else if (c->rq->framing.has_length || c->rq->reqp.method == HTTP_POST ||
	    c->rq->reqp.method == HTTP_PUT) {
		head_add_length(out, 0);
	} else
		evbuffer_add(out, "\r\n", 2);
	c->forwarded = 1;
	c->up_idle = 0;
	io_send_engine(c, out);
	upstream_response_init(c);
	if (fresh)
		conn_timer_connect(c);
	io_enable_read(c->up, c->up_tls);
	return 0;
}

/* Engine bytes arrived. */
void
upstream_readcb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state == CONN_FORWARD && c->forwarded)
		upstream_relay(c);
	else if (c->state == CONN_TUNNEL ||
	    c->state == CONN_TUNNEL_CLIENT_EOF)
		tunnel_engine_read(c);
	else {
		/* Nothing was asked: the engine has no business talking. */
		log_info("conn %llu: unexpected bytes from the engine",
		    (unsigned long long)c->id);
		upstream_close(c);
	}
}

/* Relay the engine's answer, parsing only to find its end. */
static void
upstream_relay(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->up);
	struct evbuffer		*out = bufferevent_get_output(c->client);
	struct evbuffer		*stage = proxy->scratch;
	struct evbuffer_iovec	 v;
	size_t			 n;
	enum http_errno		 err;
	int			 rounds = 0;

 again:
	while (!c->dead && !c->resp_done && !c->resp_tunnel &&
	    evbuffer_peek(in, -1, NULL, &v, 1) == 1 && v.iov_len > 0) {
		n = http_parser_execute(&c->rq->resp, &resp_settings, v.iov_base,
		    v.iov_len);
		err = HTTP_PARSER_ERRNO(&c->rq->resp);
		if (n > 0 && c->rq->redacting) {
			evbuffer_remove_buffer(in, c->rq->resp_raw, n);
		} else if (n > 0) {
			evbuffer_remove_buffer(in, stage, n);
			c->bytes_out += n;
			c->resp_started = 1;
		}
		if (err == HPE_PAUSED)
			http_parser_pause(&c->rq->resp, 0);
		else if (err != HPE_OK) {
			log_warnx("conn %llu: engine answer unusable: %s",
			    (unsigned long long)c->id,
			    http_errno_description(err));
			io_send(c->client, c->tls, stage);
			upstream_failed(c, "the engine's answer is unusable");
			return;
		}
		if (n == 0 && err == HPE_OK)
			break;
	}
	if (c->dead)
		return;
	if (evbuffer_get_length(stage) > 0)
		io_send(c->client, c->tls, stage);
	if (c->resp_tunnel) {
		tunnel_start(c);
		return;
	}
	if (c->resp_done) {
		if (c->rq->redacting && upstream_redact(c) == -1)
			return;
		conn_response_complete(c);
		return;
	}
	/* A long body: read on in large pieces while the client keeps up. */
	if (++rounds < 8 && evbuffer_get_length(out) <= DOCKGATE_HIGH_WATER &&
	    io_pull(c->up, c->up_tls) > 0)
		goto again;
	/* Backpressure: stop reading the engine while the client is slow. */
	if (evbuffer_get_length(out) > DOCKGATE_HIGH_WATER) {
		bufferevent_disable(c->up, EV_READ);
		c->up_paused = 1;
		bufferevent_setwatermark(c->client, EV_WRITE,
		    DOCKGATE_HIGH_WATER / 2, 0);
	}
}

/* The engine's output drained: resume a paused client upload. */
static void
upstream_writecb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->up_shut_pending &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		c->up_shut_pending = 0;
		tls_shutdown_write(bev, c->up_tls);
		return;
	}
	if (c->client_paused) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (c->state == CONN_TUNNEL) {
			c->client_paused = 0;
			bufferevent_enable(c->client, EV_READ);
			tunnel_client_read(c);
		} else
			conn_client_resume(c);
	}
}

/* Connected, EOF or an error on the engine side. */
static void
upstream_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->up_ready = 1;
		if (c->timer_kind == TIMER_CONNECT)
			conn_timer_clear(c);
		return;
	}
	switch (c->state) {
	case CONN_FORWARD:
		if (!c->up_ready) {
			log_warn("conn %llu: engine %s",
			    (unsigned long long)c->id, proxy->upstream.spec);
			conn_timer_clear(c);
			upstream_failed(c, "the engine is unreachable");
			return;
		}
		/* Let the parser see the end: a body that ran to EOF. */
		if ((what & BEV_EVENT_EOF) && c->forwarded) {
			upstream_relay(c);
			if (c->dead || c->state != CONN_FORWARD)
				return;
			http_parser_execute(&c->rq->resp, &resp_settings, NULL, 0);
			if (c->resp_done) {
				c->must_close = 1;
				upstream_close(c);
				conn_response_complete(c);
				return;
			}
		}
		upstream_failed(c, "the engine closed the connection");
		break;
	case CONN_TUNNEL:
	case CONN_TUNNEL_CLIENT_EOF:
		if (what & BEV_EVENT_EOF)
			tunnel_engine_eof(c);
		else
			conn_drain(c);
		break;
	default:
		upstream_close(c);	/* an idle engine connection ended */
		break;
	}
}

/* http-parser (response): the head is in; spot a hijack. */
static int
resp_on_headers_complete(http_parser *p)
{
	struct conn	*c = p->data;

	c->resp_head_done = 1;
	if (p->status_code == 101 || (c->hijack_route &&
	    p->status_code == 200 && !(p->flags & F_CHUNKED) &&
	    p->content_length == ULLONG_MAX)) {
		if (!c->hijack_route)
			return -1;	/* 101 where no hijack was asked */
		c->resp_tunnel = 1;
		return 2;
	}
	if (c->rq->reqp.method == HTTP_HEAD)
		return 1;
	return 0;
}

/* http-parser (response): the answer is complete. */
static int
resp_on_message_complete(http_parser *p)
{
	struct conn	*c = p->data;

	c->resp_done = 1;
	c->resp_keepalive = http_should_keep_alive(p);
	if (!c->resp_tunnel)
		http_parser_pause(p, 1);
	return 0;
}

/* http-parser (response): keep the body of an answer being redacted. */
static int
resp_on_body(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;

	if (!c->rq->redacting)
		return 0;
	if (evbuffer_get_length(c->rq->resp_body) + len > DOCKGATE_LOOKUP_MAX)
		return -1;
	return evbuffer_add(c->rq->resp_body, at, len);
}

/*
 * The whole answer about an object the caller does not own is in: send it
 * with the profile's "redact" parts blanked (or, for a list under
 * "owner_sees", only what the caller may see) and an exact Content-Length.
 * Anything but a 200 JSON answer goes out as the engine sent it.
 */
static int
upstream_redact(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->client);
	struct evbuffer	*raw = c->rq->resp_raw;
	struct evbuffer_ptr pos;
	char		*head, *line, *save = NULL, *body = NULL;
	size_t		 hlen, blen = 0, before = evbuffer_get_length(out);
	int		 rv;

	c->rq->redacting = 0;
	c->resp_started = 1;
	if (c->rq->resp.status_code != 200) {
		evbuffer_add_buffer(out, raw);
		c->bytes_out += evbuffer_get_length(out) - before;
		return 0;
	}
	if (c->rq->filtering)
		rv = policy_filter_owned(c->rq->profile, c->rq->req.owner,
		    (const char *)evbuffer_pullup(c->rq->resp_body, -1),
		    evbuffer_get_length(c->rq->resp_body), &body, &blen);
	else
		rv = policy_redact(c->rq->profile,
		    (const char *)evbuffer_pullup(c->rq->resp_body, -1),
		    evbuffer_get_length(c->rq->resp_body), &body, &blen);
	if (rv == -1) {
		c->resp_started = 0;
		c->must_close = 1;
		conn_refuse(c, 502, c->rq->filtering ? "the engine's list"
		    " answer could not be filtered" : "the engine's inspect"
		    " answer could not be redacted", c->rq->filtering ?
		    "ownership" : "redact");
		return -1;
	}
	if (body == NULL) {
		evbuffer_add_buffer(out, raw);
		c->bytes_out += evbuffer_get_length(out) - before;
		return 0;
	}
	pos = evbuffer_search(raw, "\r\n\r\n", 4, NULL);
	hlen = pos.pos < 0 ? 0 : (size_t)pos.pos + 2;
	if ((head = malloc(hlen + 1)) == NULL) {
		free(body);
		c->resp_started = 0;
		upstream_failed(c, "out of memory");
		return -1;
	}
	evbuffer_copyout(raw, head, hlen);
	head[hlen] = '\0';
	for (line = strtok_r(head, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (strncasecmp(line, "Content-Length:", 15) == 0 ||
		    strncasecmp(line, "Transfer-Encoding:", 18) == 0)
			continue;
		evbuffer_add_printf(out, "%s\r\n", line);
	}
	evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", blen);
	evbuffer_add(out, body, blen);
	c->bytes_out += evbuffer_get_length(out) - before;
	free(head);
	free(body);
	return 0;
}
