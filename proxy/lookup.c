/*
 * Engine lookups: a GET for a fact the decision needs (an image's user, a
 * volume's driver, a container's mounts), on a connection of its own so it
 * never mixes with the request being decided (a build may be mid-upload).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static void	 lookup_readcb(struct bufferevent *, void *);
static void	 lookup_eventcb(struct bufferevent *, short, void *);
static void	 lookup_done(struct conn *, int);
static int	 lk_on_body(http_parser *, const char *, size_t);
static int	 lk_on_complete(http_parser *);

static const http_parser_settings lk_settings = {
	.on_body = lk_on_body,
	.on_message_complete = lk_on_complete,
};

/* Ask the engine GET path; decide_fact() gets the answer. */
void
lookup_start(struct conn *c, const char *path)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const char		*p;
	int			 is_tls;

	lookup_cancel(c);
	if (c->lookup_body == NULL && (c->lookup_body = evbuffer_new()) == NULL)
		goto fail;
	evbuffer_drain(c->lookup_body, evbuffer_get_length(c->lookup_body));
	if (addr_sockaddr(&proxy->upstream, &ss, &len) == -1 ||
	    (c->lk = tls_upstream_bev(&is_tls)) == NULL)
		goto fail;
	bufferevent_setcb(c->lk, lookup_readcb, NULL, lookup_eventcb, c);
	if (bufferevent_socket_connect(c->lk, (struct sockaddr *)&ss,
	    (int)len) == -1) {
		log_warn("conn %llu: lookup: engine %s",
		    (unsigned long long)c->id, proxy->upstream.spec);
		goto fail;
	}
	if (!is_tls)
		io_own_reads(c->lk);
	/* The policy percent-encodes what it asks; refuse anything that
	 * could break the request line. */
	for (p = path; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f)
			goto fail;
	evbuffer_add_printf(bufferevent_get_output(c->lk),
	    "GET %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
	    path);
	http_parser_init(&c->rq->lkp, HTTP_RESPONSE);
	c->rq->lkp.data = c;
	c->lookup_done = 0;
	bufferevent_enable(c->lk, EV_READ | EV_WRITE);
	conn_timer_lookup(c, 1);
	return;
 fail:
	lookup_cancel(c);
	decide_fact(c, 0, NULL);
}

/* Drop a lookup in progress (timeout, close). */
void
lookup_cancel(struct conn *c)
{
	if (c->lk != NULL) {
		bufferevent_free(c->lk);
		c->lk = NULL;
	}
}

/* The answer is complete (status), or the engine failed (0). */
static void
lookup_done(struct conn *c, int status)
{
	lookup_cancel(c);
	conn_timer_clear(c);
	decide_fact(c, status, c->lookup_body);
}

/* Answer bytes arrived. */
static void
lookup_readcb(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v;
	size_t			 n;

	while (!c->lookup_done && evbuffer_peek(in, -1, NULL, &v, 1) == 1 &&
	    v.iov_len > 0) {
		n = http_parser_execute(&c->rq->lkp, &lk_settings, v.iov_base,
		    v.iov_len);
		evbuffer_drain(in, n);
		if (HTTP_PARSER_ERRNO(&c->rq->lkp) != HPE_OK) {
			lookup_done(c, 0);
			return;
		}
		if (n == 0)
			break;
	}
	if (c->lookup_done)
		lookup_done(c, c->rq->lkp.status_code);
}

/* EOF (an answer that runs to the end) or an error. */
static void
lookup_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		http_parser_execute(&c->rq->lkp, &lk_settings, NULL, 0);
		if (c->lookup_done) {
			lookup_done(c, c->rq->lkp.status_code);
			return;
		}
	}
	log_warnx("conn %llu: lookup: the engine did not answer",
	    (unsigned long long)c->id);
	lookup_done(c, 0);
}

/* http-parser: collect the answer (bounded). */
static int
lk_on_body(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;

	if (evbuffer_get_length(c->lookup_body) + len > DOCKGATE_LOOKUP_MAX)
		return -1;
	return evbuffer_add(c->lookup_body, at, len);
}

/* http-parser: the answer is complete. */
static int
lk_on_complete(http_parser *p)
{
	struct conn	*c = p->data;

	c->lookup_done = 1;
	return 0;
}
