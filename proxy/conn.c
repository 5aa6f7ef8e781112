/*
 * Client connections: the one place a struct conn is allocated and the one
 * place it is freed, the request parser glue, per-phase timers, refusals and
 * the keep-alive loop. Every request passes decide_request() before a byte of
 * it reaches the engine.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

static void	 conn_readcb(struct bufferevent *, void *);
static void	 conn_writecb(struct bufferevent *, void *);
static void	 conn_eventcb(struct bufferevent *, short, void *);
static void	 conn_timercb(evutil_socket_t, short, void *);
static void	 conn_freecb(struct conn *);
static void	 conn_timer(struct conn *, enum conn_timer, int);
static void	 conn_request_reset(struct conn *);
static int	 conn_request_alloc(struct conn *);
static void	 conn_request_free(struct conn *);
static void	 conn_linger(struct conn *);
static void	 conn_parse(struct conn *);
static void	 conn_request_head(struct conn *);
static void	 conn_request_complete(struct conn *);
static void	 conn_accept_refuse(evutil_socket_t, int, const char *);
static int	 conn_is_hijack(const char *);

static int	 req_on_url(http_parser *, const char *, size_t);
static int	 req_on_header_field(http_parser *, const char *, size_t);
static int	 req_on_header_value(http_parser *, const char *, size_t);
static int	 req_on_headers_complete(http_parser *);
static int	 req_on_body(http_parser *, const char *, size_t);
static int	 req_on_message_complete(http_parser *);

static const http_parser_settings req_settings = {
	.on_url = req_on_url,
	.on_header_field = req_on_header_field,
	.on_header_value = req_on_header_value,
	.on_headers_complete = req_on_headers_complete,
	.on_body = req_on_body,
	.on_message_complete = req_on_message_complete,
};

/* A new client socket: allocate its connection, or refuse it with 503. */
void
conn_accept(struct listener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen)
{
	struct conn	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	int		 over_cap = 0;

	if (proxy->stopping) {
		conn_accept_refuse(fd, 503, "shutting down");
		return;
	}
	if (proxy->nconns >= proxy->max_connections) {
		/* A TLS client can only read a refusal after a handshake: a
		 * few may come in to get theirs; the rest are closed. */
		if (l->addr.kind == ADDR_UNIX || !tls_server_enabled() ||
		    proxy->nconns >= proxy->max_connections + 64) {
			log_warnx("%s: connection cap (%u) reached, refusing",
			    l->addr.spec, proxy->max_connections);
			conn_accept_refuse(fd, l->addr.kind == ADDR_UNIX ||
			    !tls_server_enabled() ? 503 : 0,
			    "connection limit reached");
			return;
		}
		over_cap = 1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("conn_accept");
		close(fd);
		return;
	}
	c->id = ++proxy->next_conn_id;
	c->listener = l;
	if (sa->sa_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			c->has_cred = 1;
			c->uid = cred.uid;
			c->gid = cred.gid;
			c->pid = cred.pid;
		}
	} else if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s:%u", a,
		    ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(c->peer_addr, sizeof(c->peer_addr), "[%s]:%u", a,
		    ntohs(sin6->sin6_port));
	}
	if (l->addr.kind == ADDR_UNIX)
		c->client = bufferevent_socket_new(proxy->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	else
		c->client = tls_client_bev(fd, &c->tls);
	c->timer = evtimer_new(proxy->base, conn_timercb, c);
	if (c->client == NULL || c->timer == NULL) {
		log_warnx("conn %llu: out of memory", (unsigned long long)c->id);
		if (c->client != NULL)
			bufferevent_free(c->client);
		else
			close(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return;
	}
	proxy->nconns++;
	TAILQ_INSERT_TAIL(&proxy->conns, c, entry);
	bufferevent_setcb(c->client, conn_readcb, conn_writecb, conn_eventcb, c);
	bufferevent_set_max_single_write(c->client, 1024 * 1024);
	if (c->tls) {
		/* Bound what waits unread from the client (pipelined bytes;
		 * io_own_reads() bounds a plain client's input itself). */
		bufferevent_setwatermark(c->client, EV_READ, 0,
		    DOCKGATE_HIGH_WATER);
		bufferevent_enable(c->client, EV_READ | EV_WRITE);
	} else {
		io_own_reads(c->client);
		bufferevent_enable(c->client, EV_READ);
		io_enable_write_idle(c->client);
	}
	conn_request_reset(c);
	c->refuse_on_handshake = over_cap;
	if (c->tls) {
		c->handshaking = 1;
		conn_timer(c, TIMER_HANDSHAKE, proxy->timeout_header);
	}
	if (c->has_cred)
		log_debug("conn %llu: accepted on %s (uid %u gid %u pid %d)",
		    (unsigned long long)c->id, l->addr.spec, (unsigned)c->uid,
		    (unsigned)c->gid, (int)c->pid);
	else
		log_debug("conn %llu: accepted on %s from %s",
		    (unsigned long long)c->id, l->addr.spec, c->peer_addr);
}

/* Answer a client we will not serve, without allocating anything for it. */
static void
conn_accept_refuse(evutil_socket_t fd, int status, const char *why)
{
	char	*msg;
	size_t	 len;
	ssize_t	 n;

	if (status != 0 &&
	    (msg = httpmsg_refusal(status, why, NULL, 1, 0, &len)) != NULL) {
		n = send(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
		free(msg);
	}
	shutdown(fd, SHUT_WR);
	close(fd);
}

/*
 * Tear a connection down: free its sockets now, and the struct once the
 * callbacks running now have returned, so callers up the stack may still
 * test c->dead.
 */
void
conn_close(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	/* A request that ends with its connection (a tunnel, a stream the
	 * client left) still gets its audit line. */
	if (c->rq != NULL && c->decided && c->forwarded && !c->audited)
		decide_finish(c, 0);
	c->dead = 1;
	TAILQ_REMOVE(&proxy->conns, c, entry);
	if (why != NULL)
		log_info("conn %llu: closed: %s", (unsigned long long)c->id, why);
	upstream_release(c);
	lookup_cancel(c);
	if (c->tunnel_counted)
		metrics_tunnel(-1);
	if (c->client != NULL) {
		if (c->tls && !c->handshaking)
			tls_shutdown_write(c->client, 1);
		bufferevent_free(c->client);
		c->client = NULL;
	}
	proxy->nconns--;
	/* The connection's own timer, made active, frees it once the
	 * callbacks running now have returned. */
	evtimer_del(c->timer);
	c->timer_kind = TIMER_FREE;
	event_active(c->timer, EV_TIMEOUT, 1);
}

/* The deferred half of conn_close(): release everything the struct holds. */
static void
conn_freecb(struct conn *c)
{
	conn_request_free(c);
	if (c->lookup_body != NULL)
		evbuffer_free(c->lookup_body);
	free(c->cert_cn);
	free(c->cert_san);
	event_free(c->timer);
	free(c);
	if (proxy->stopping && proxy->nconns == 0)
		event_base_loopexit(proxy->base, NULL);
}

/*
 * Freed request states kept for the next request: at 2.5 KiB one is past
 * malloc's per-thread cache, and allocating it made malloc consolidate its
 * free lists on every request. A few, shared by all connections.
 */
#define CONN_RQ_SPARE	16
static struct request	*rq_spare[CONN_RQ_SPARE];
static size_t		 nrq_spare;

/* Give the connection the state a request in progress needs. */
static int
conn_request_alloc(struct conn *c)
{
	if (c->rq != NULL)
		return 0;
	if (nrq_spare > 0) {
		c->rq = rq_spare[--nrq_spare];
		memset(c->rq, 0, sizeof(*c->rq));
	} else if ((c->rq = calloc(1, sizeof(*c->rq))) == NULL)
		return -1;
	http_parser_init(&c->rq->reqp, HTTP_REQUEST);
	c->rq->reqp.data = c;
	return 0;
}

/* Release everything the current request holds. */
static void
conn_request_free(struct conn *c)
{
	ratelimit_end(c);
	decide_clear(c);
	free(c->url);
	c->url = NULL;
	c->url_len = 0;
	if (c->body != NULL) {
		evbuffer_free(c->body);
		c->body = NULL;
	}
	if (c->rq == NULL)
		return;
	httpmsg_clear(&c->rq->reqh);
	if (c->req_parsed)
		policy_req_clear(&c->rq->req);
	c->req_parsed = 0;
	if (c->rq->bs != NULL) {
		buildscan_free(c->rq->bs);
		free(c->rq->bs);
	}
	if (c->rq->held != NULL)
		evbuffer_free(c->rq->held);
	if (c->rq->resp_raw != NULL)
		evbuffer_free(c->rq->resp_raw);
	if (c->rq->resp_body != NULL)
		evbuffer_free(c->rq->resp_body);
	if (nrq_spare < CONN_RQ_SPARE)
		rq_spare[nrq_spare++] = c->rq;
	else
		free(c->rq);
	c->rq = NULL;
}

/* Exit: free the spare request states. */
void
conn_spare_free(void)
{
	while (nrq_spare > 0)
		free(rq_spare[--nrq_spare]);
}

/* Milliseconds on the clock libevent's timers run on. */
static uint64_t
conn_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Arm the connection's one timer to fire in ms milliseconds. */
static void
conn_timer_arm(struct conn *c, uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	c->timer_at = c->timer_due;
}

/*
 * Set the deadline of a phase (0 seconds: none). The timer is moved only
 * when the deadline comes before the armed expiry: a keep-alive connection
 * changes phase three times a request, and a timer that fires early just
 * re-arms for the rest (a phase without deadline lets it lapse).
 */
static void
conn_timer(struct conn *c, enum conn_timer kind, int seconds)
{
	if (c->dead)
		return;		/* the timer frees the struct now */
	c->timer_kind = TIMER_NONE;
	if (kind == TIMER_NONE || seconds <= 0)
		return;
	c->timer_kind = kind;
	c->timer_due = conn_now_ms() + (uint64_t)seconds * 1000;
	if (c->timer_at == 0 || c->timer_at > c->timer_due)
		conn_timer_arm(c, (uint64_t)seconds * 1000);
}

/* Bound the engine connect. */
void
conn_timer_connect(struct conn *c)
{
	conn_timer(c, TIMER_CONNECT, proxy->timeout_connect);
}

/* Bound an engine lookup (it may include the connect). */
void
conn_timer_lookup(struct conn *c, int fresh)
{
	conn_timer(c, TIMER_LOOKUP, proxy->timeout_connect);
}

/* Idle: nothing is in flight; close after --timeout-idle. */
void
conn_timer_idle(struct conn *c)
{
	conn_timer(c, TIMER_IDLE, proxy->timeout_idle);
}

/* No phase deadline now (streams and tunnels have none). */
void
conn_timer_clear(struct conn *c)
{
	conn_timer(c, TIMER_NONE, 0);
}

/* A phase took too long. */
static void
conn_timercb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;
	uint64_t	 now;

	c->timer_at = 0;
	if (c->timer_kind == TIMER_FREE) {
		conn_freecb(c);
		return;
	}
	if (c->timer_kind == TIMER_NONE)
		return;
	if ((now = conn_now_ms()) < c->timer_due) {
		conn_timer_arm(c, c->timer_due - now);
		return;
	}
	switch (c->timer_kind) {
	case TIMER_HANDSHAKE:
		log_warnx("conn %llu: TLS handshake from %s timed out",
		    (unsigned long long)c->id, c->peer_addr);
		conn_close(c, NULL);
		break;
	case TIMER_IDLE:
		conn_close(c, "idle timeout");
		break;
	case TIMER_HEADER:
		c->must_close = 1;
		conn_refuse(c, 408, "timed out reading the request head",
		    "timeout-header");
		break;
	case TIMER_BODY:
		c->must_close = 1;
		conn_refuse(c, 408, "timed out reading the request body",
		    "timeout-body");
		break;
	case TIMER_CONNECT:
		c->must_close = 1;
		upstream_close(c);
		conn_refuse(c, 504, "timed out connecting to the engine",
		    "timeout-connect");
		break;
	case TIMER_LOOKUP:
		c->must_close = 1;
		lookup_cancel(c);
		conn_refuse(c, 504, "timed out asking the engine for a fact "
		    "the decision needs", "timeout-connect");
		break;
	case TIMER_LINGER:
		conn_close(c, NULL);
		break;
	case TIMER_FREE:
		break;
	case TIMER_NONE:
		break;
	}
}

/* Forget the finished request and wait for the next one. */
static void
conn_request_reset(struct conn *c)
{
	conn_request_free(c);
	c->body_bytes = 0;
	c->head_bytes = 0;
	c->req_started = c->head_done = c->req_done = 0;
	c->head_handled = c->req_finished = 0;
	c->bytes_in = c->bytes_out = 0;
	c->t_start.tv_sec = c->t_start.tv_usec = 0;
	c->audited = 0;
	c->dry_run_deny = 0;
	c->retry_after = 0;
	c->req_keepalive = 0;
	c->hijack_route = c->forward_chunked = c->forwarded = 0;
	c->resp_head_done = c->resp_done = c->resp_tunnel = 0;
	c->resp_started = c->resp_keepalive = 0;
	c->head_prev = 0;
	httpmsg_chunks_reset(&c->chunks);
	c->err_status = 0;
	c->err_reason = NULL;
	c->state = CONN_HEAD;
	conn_timer(c, TIMER_IDLE, proxy->timeout_idle);
}

/* Continue with the client's input after a pause (decision, backpressure). */
void
conn_client_resume(struct conn *c)
{
	if (c->dead)
		return;
	c->client_paused = 0;
	io_enable_read(c->client, c->tls);
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
		conn_parse(c);
}

/* Client bytes arrived. */
static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
		conn_parse(c);
		break;
	case CONN_FORWARD:
		if (!c->req_done)
			conn_parse(c);
		break;
	case CONN_TUNNEL:
		tunnel_client_read(c);
		break;
	case CONN_TUNNEL_ENGINE_EOF:
	case CONN_DRAIN:
	case CONN_LINGER:
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		break;
	default:
		break;	/* LOOKUP: the bytes wait, bounded by the watermark */
	}
}

/* The client's output drained below its low watermark. */
static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->state == CONN_DRAIN) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_linger(c);
		return;
	}
	if (c->state == CONN_LINGER)
		return;
	if (c->state == CONN_TUNNEL_ENGINE_EOF) {
		if (c->client_shut_pending &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			c->client_shut_pending = 0;
			tls_shutdown_write(bev, c->tls);
		}
		return;
	}
	/* Backpressure released: read the engine again. */
	if (c->up != NULL && c->up_paused) {
		c->up_paused = 0;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->up, EV_READ);
		if (evbuffer_get_length(bufferevent_get_input(c->up)) > 0)
			upstream_readcb(c->up, c);
	}
}

/* EOF or an error on the client side. */
static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done: who is it? */
		c->handshaking = 0;
		tls_peer_identity(c);
		log_debug("conn %llu: TLS from %s, cn \"%s\"",
		    (unsigned long long)c->id, c->peer_addr,
		    c->cert_cn ? c->cert_cn : "");
		if (c->timer_kind == TIMER_HANDSHAKE)
			conn_timer(c, TIMER_IDLE, proxy->timeout_idle);
		if (c->refuse_on_handshake) {
			log_warnx("%s: connection cap (%u) reached, refusing",
			    c->listener->addr.spec, proxy->max_connections);
			c->must_close = 1;
			conn_refuse(c, 503, "connection limit reached",
			    "max-connections");
		}
		return;
	}
	if (c->handshaking) {
		log_warnx("conn %llu: TLS handshake from %s failed: %s",
		    (unsigned long long)c->id, c->peer_addr, tls_error(bev));
		conn_close(c, NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		conn_close(c, c->tls ? tls_error(bev) :
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	c->client_eof_seen = 1;
	switch (c->state) {
	case CONN_HEAD:
		if (c->req_started)
			log_info("conn %llu: client closed mid-request",
			    (unsigned long long)c->id);
		conn_close(c, NULL);
		break;
	case CONN_FORWARD:
		if (!c->req_done) {
			/* Never let the engine see a body that did not end. */
			conn_close(c, "client closed mid-upload");
			break;
		}
		/*
		 * Gone while its answer streams (events, logs -f): like the
		 * engine, stop. Before the answer starts, a client that only
		 * half-closed still gets it; then the connection closes.
		 */
		if (c->resp_started && !c->hijack_route) {
			conn_close(c, "client closed during the response");
			break;
		}
		c->must_close = 1;
		break;
	case CONN_TUNNEL:
		tunnel_client_eof(c);
		break;
	case CONN_DRAIN:
		break;
	case CONN_TUNNEL_ENGINE_EOF:
	case CONN_LINGER:
		conn_close(c, NULL);
		break;
	default:
		conn_close(c, "client closed mid-request");
		break;
	}
}

/* Run the request parser over what the client sent, one request at a time. */
static void
conn_parse(struct conn *c)
{
	struct evbuffer		*in;
	struct evbuffer_iovec	 v;
	size_t			 n, nparsed;
	enum http_errno		 err;
	int			 rounds = 0, bad_end, chunked;

 again:
	while (!c->dead && (c->state == CONN_HEAD || c->state == CONN_BODY ||
	    (c->state == CONN_FORWARD && !c->req_done))) {
		in = bufferevent_get_input(c->client);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		if (!c->req_started) {
			if (conn_request_alloc(c) == -1) {
				conn_close(c, "out of memory");
				return;
			}
			c->req_started = 1;
			io_now(&c->t_start);
			conn_timer(c, TIMER_HEADER, proxy->timeout_header);
		}
		n = v.iov_len;
		if (!c->head_done && n > proxy->max_header_bytes + 1 -
		    c->head_bytes)
			n = proxy->max_header_bytes + 1 - c->head_bytes;
		chunked = c->head_handled && c->rq->framing.chunked &&
		    !c->req_done;
		httpmsg_chunks_begin(&c->chunks, chunked ? v.iov_base : NULL);
		nparsed = http_parser_execute(&c->rq->reqp, &req_settings,
		    v.iov_base, n);
		err = HTTP_PARSER_ERRNO(&c->rq->reqp);
		/* The chunk framing after the last data of this read. */
		if (httpmsg_chunks_end(&c->chunks, (const char *)v.iov_base +
		    nparsed) == -1 && c->err_status == 0) {
			c->must_close = 1;
			conn_refuse(c, 400, "bad chunk framing", "malformed");
			return;
		}
		/* The parser paused on the head's last line end: a non-strict
		 * http-parser takes any byte after a CR there (found by
		 * fuzzing); the head must end in a real LF. */
		bad_end = c->head_done && !c->head_handled &&
		    err == HPE_PAUSED && (nparsed >= n ||
		    ((const char *)v.iov_base)[nparsed] != '\n');
		if (!c->head_done || (err == HPE_PAUSED && c->head_done &&
		    !c->head_handled)) {
			if (httpmsg_head_scan(&c->head_prev, v.iov_base,
			    nparsed, &c->err_reason) == -1) {
				c->must_close = 1;
				conn_refuse(c, 400, c->err_reason, "malformed");
				return;
			}
			c->head_bytes += nparsed;
		}
		evbuffer_drain(in, nparsed);
		c->bytes_in += nparsed;
		if (c->dead)
			return;
		if (bad_end) {
			c->must_close = 1;
			conn_refuse(c, 400, "bare CR in request head",
			    "malformed");
			return;
		}
		if (err == HPE_PAUSED) {
			http_parser_pause(&c->rq->reqp, 0);
		} else if (err != HPE_OK) {
			c->must_close = 1;
			if (c->err_status != 0)
				conn_refuse(c, c->err_status, c->err_reason,
				    c->err_status == 413 ? "max-body-bytes" :
				    c->err_status == 403 ? "build" :
				    "malformed");
			else
				conn_refuse(c, 400, http_errno_description(err),
				    "malformed");
			return;
		}
		if (!c->head_done && c->head_bytes > proxy->max_header_bytes) {
			c->must_close = 1;
			conn_refuse(c, 431, "request line and headers exceed "
			    "--max-header-bytes", "max-header-bytes");
			return;
		}
		if (c->head_done && !c->head_handled) {
			c->head_handled = 1;
			conn_request_head(c);
			continue;
		}
		if (c->req_done && !c->req_finished) {
			c->req_finished = 1;
			conn_request_complete(c);
			break;
		}
		if (nparsed == 0)
			break;
	}
	/* A streamed upload: read on in large pieces while the engine keeps up. */
	if (!c->dead && c->state == CONN_FORWARD && !c->req_done &&
	    c->up != NULL && ++rounds < 8 && evbuffer_get_length(
	    bufferevent_get_output(c->up)) <= DOCKGATE_HIGH_WATER &&
	    io_pull(c->client, c->tls) > 0)
		goto again;
	/* Backpressure: a streamed body waits while the engine is slow. */
	if (!c->dead && c->state == CONN_FORWARD && !c->req_done &&
	    c->up != NULL && evbuffer_get_length(
	    bufferevent_get_output(c->up)) > DOCKGATE_HIGH_WATER) {
		bufferevent_disable(c->client, EV_READ);
		c->client_paused = 1;
		bufferevent_setwatermark(c->up, EV_WRITE,
		    DOCKGATE_HIGH_WATER / 2, 0);
	}
}

/* Does a route hijack the connection (attach, exec start)? */
static int
conn_is_hijack(const char *route)
{
	const char	*p;

	if (strncmp(route, "/containers/", 12) == 0) {
		p = strchr(route + 12, '/');
		return p != NULL && p > route + 12 &&
		    strcmp(p, "/attach") == 0;
	}
	if (strncmp(route, "/exec/", 6) == 0) {
		p = strchr(route + 6, '/');
		return p != NULL && p > route + 6 && strcmp(p, "/start") == 0;
	}
	return strcmp(route, "/session") == 0 || strcmp(route, "/grpc") == 0;
}

/* The request head is complete: validate, normalise, start deciding. */
static void
conn_request_head(struct conn *c)
{
	const char	*why, *ct;
	int		 has_body;

	if (httpmsg_framing(&c->rq->reqh, &c->rq->framing, &why) == -1) {
		c->must_close = 1;
		conn_refuse(c, 400, why, "malformed");
		return;
	}
	if (c->url == NULL || policy_req_parse(&c->rq->req,
	    http_method_str((enum http_method)c->rq->reqp.method), c->url,
	    c->url_len, &why) == -1) {
		c->must_close = 1;
		conn_refuse(c, 400, c->url == NULL ? "no request target" : why,
		    "malformed");
		return;
	}
	c->req_parsed = 1;
	has_body = c->rq->framing.chunked ||
	    (c->rq->framing.has_length && c->rq->framing.length > 0);
	ct = c->rq->framing.content_type;
	if (has_body && ct != NULL && strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) == 0) {
		c->must_close = 1;
		conn_refuse(c, 400, "form-encoded request bodies are refused "
		    "(the engine reads them as parameters)", "form-body");
		return;
	}
	c->rq->req.content_type = ct;
	c->rq->req.has_body = has_body;
	c->hijack_route = conn_is_hijack(c->rq->req.route);
	c->body_mode = policy_body_mode(&c->rq->req);
	log_debug("conn %llu: %s %s", (unsigned long long)c->id,
	    c->rq->req.method, c->rq->req.path);
	if (has_body && c->body_mode == POLICY_BODY_BUFFER) {
		if (c->rq->framing.has_length &&
		    c->rq->framing.length > proxy->max_body_bytes) {
			c->must_close = 1;
			conn_refuse(c, 413, "request body exceeds "
			    "--max-body-bytes", "max-body-bytes");
			return;
		}
		if ((c->body = evbuffer_new()) == NULL) {
			c->must_close = 1;
			conn_refuse(c, 500, "out of memory", "internal");
			return;
		}
		c->state = CONN_BODY;
		conn_timer(c, TIMER_BODY, proxy->timeout_body);
		if (c->rq->framing.expect_continue)
			bufferevent_write(c->client,
			    "HTTP/1.1 100 Continue\r\n\r\n", 25);
		return;
	}
	if (!has_body) {
		/*
		 * Nothing follows the head: let the parser see the message end
		 * first, so a refusal can keep the connection alive.
		 */
		c->state = CONN_BODY;
		return;
	}
	/* A streamed body: decide on the head, then relay the body. */
	conn_timer(c, TIMER_NONE, 0);
	decide_request(c);
}

/* The whole request has been read. */
static void
conn_request_complete(struct conn *c)
{
	if (c->state == CONN_BODY) {
		conn_timer(c, TIMER_NONE, 0);
		decide_request(c);
		return;
	}
	if (c->state == CONN_FORWARD && c->rq->bs != NULL) {
		decide_build(c);
		return;
	}
	if (c->state == CONN_FORWARD && c->forward_chunked && c->up != NULL)
		bufferevent_write(c->up, "0\r\n\r\n", 5);
}

/*
 * The engine's answer has been relayed in full: finish the request, then
 * either wait for the next one or close.
 */
void
conn_response_complete(struct conn *c)
{
	decide_finish(c, 0);
	if (!c->req_done)
		c->must_close = 1;
	if (!c->resp_keepalive)
		upstream_close(c);
	else
		c->up_idle = 1;
	if (c->must_close || !c->req_keepalive || proxy->stopping) {
		conn_drain(c);
		return;
	}
	conn_request_reset(c);
	conn_client_resume(c);
}

/* Send what is left for the client, then close. */
void
conn_drain(struct conn *c)
{
	if (c->dead)
		return;
	upstream_release(c);
	c->state = CONN_DRAIN;
	bufferevent_disable(c->client, EV_READ);
	bufferevent_setwatermark(c->client, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(c->client)) == 0)
		conn_linger(c);
}

/*
 * Everything is sent: close. A tcp client first gets our FIN (TLS:
 * close_notify) and two seconds to stop sending, so that closing on input
 * it has not read yet cannot reset the connection before it read ours; a
 * client refused mid-upload gets up to --timeout-body to finish sending.
 */
static void
conn_linger(struct conn *c)
{
	/* A client refused mid-upload (unix too) reads our answer only once
	 * it has sent everything: take and drop the rest of its body. */
	int	 uploading = c->req_started && !c->req_done;

	if (c->handshaking || c->client_eof_seen ||
	    (c->listener->addr.kind == ADDR_UNIX && !uploading)) {
		conn_close(c, NULL);
		return;
	}
	c->state = CONN_LINGER;
	tls_shutdown_write(c->client, c->tls);
	c->tls = 0;	/* close_notify is sent; nothing more over TLS */
	bufferevent_enable(c->client, EV_READ);
	conn_timer(c, TIMER_LINGER, uploading ? proxy->timeout_body : 2);
}

/*
 * Answer the current request with a JSON refusal. The connection goes on
 * only when the whole request has been read and nothing forced a close.
 */
void
conn_refuse(struct conn *c, int status, const char *reason, const char *rule)
{
	char	*msg;
	size_t	 len;
	int	 closing;

	if (c->dead)
		return;
	if (conn_request_alloc(c) == -1) {
		conn_close(c, "out of memory");
		return;
	}
	if (c->resp_started) {
		/* Too late for a refusal: the client already has a head. */
		conn_close(c, reason);
		return;
	}
	closing = c->must_close || !c->req_done || !c->req_keepalive ||
	    proxy->stopping;
	log_warnx("conn %llu: %d %s %s: %s (rule %s)",
	    (unsigned long long)c->id, status,
	    c->req_parsed ? c->rq->req.method : "-",
	    c->req_parsed ? c->rq->req.path : "-", reason, rule);
	if ((msg = httpmsg_refusal(status, reason, rule, closing,
	    c->retry_after, &len)) ==
	    NULL) {
		conn_close(c, "out of memory");
		return;
	}
	/* A HEAD answer has no body, whatever its Content-Length says. */
	if (c->req_parsed && strcmp(c->rq->req.method, "HEAD") == 0)
		len = (size_t)(strstr(msg, "\r\n\r\n") + 4 - msg);
	bufferevent_write(c->client, msg, len);
	c->bytes_out += len;
	free(msg);
	decide_refused(c, status, reason, rule);
	if (closing) {
		conn_drain(c);
		return;
	}
	conn_request_reset(c);
	conn_client_resume(c);
}

/* Shutting down: close every connection that has no request in flight. */
void
conn_shutdown_idle(void)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&proxy->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state == CONN_HEAD && !c->req_started)
			conn_close(c, NULL);
	}
}

/* http-parser: a fragment of the request target. */
static int
req_on_url(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;
	char		*u;

	if ((u = realloc(c->url, c->url_len + len + 1)) == NULL)
		return -1;
	memcpy(u + c->url_len, at, len);
	c->url_len += len;
	u[c->url_len] = '\0';
	c->url = u;
	return 0;
}

/* http-parser: a fragment of a header name (trailers are ignored). */
static int
req_on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;

	if (c->head_done)
		return 0;
	return httpmsg_add_field(&c->rq->reqh, at, len);
}

/* http-parser: a fragment of a header value. */
static int
req_on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;

	if (c->head_done)
		return 0;
	return httpmsg_add_value(&c->rq->reqh, at, len);
}

/* http-parser: the head is complete; pause so it is decided outside. */
static int
req_on_headers_complete(http_parser *p)
{
	struct conn	*c = p->data;

	c->head_done = 1;
	c->req_keepalive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

/* http-parser: decoded body bytes: buffer them, or stream them upward. */
static int
req_on_body(http_parser *p, const char *at, size_t len)
{
	struct conn	*c = p->data;
	char		 hdr[32];
	int		 n;

	/* Chunked: the framing before this data, then the data. */
	if (httpmsg_chunks_data(&c->chunks, at, len) == -1) {
		c->err_status = 400;
		c->err_reason = "bad chunk framing";
		return -1;
	}
	c->body_bytes += len;
	if (c->state == CONN_BODY) {
		if (c->body_bytes > proxy->max_body_bytes) {
			c->err_status = 413;
			c->err_reason = "request body exceeds --max-body-bytes";
			return -1;
		}
		return evbuffer_add(c->body, at, len);
	}
	if (c->state == CONN_FORWARD && c->up != NULL) {
		if (c->rq->bs != NULL) {
			if (decide_build_feed(c, at, len) == -1) {
				c->err_status = 403;
				c->err_reason = c->rq->bs->error;
				return -1;
			}
			return 0;
		}
		if (c->forward_chunked) {
			n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
			bufferevent_write(c->up, hdr, (size_t)n);
			bufferevent_write(c->up, at, len);
			bufferevent_write(c->up, "\r\n", 2);
		} else
			bufferevent_write(c->up, at, len);
		return 0;
	}
	return -1;	/* a body where none is being taken */
}

/* http-parser: the request is complete; pause unless it upgraded. */
static int
req_on_message_complete(http_parser *p)
{
	struct conn	*c = p->data;

	c->req_done = 1;
	if (!p->upgrade)
		http_parser_pause(p, 1);
	return 0;
}
