/*
 * Hijacked connections (attach, exec start): after the engine itself
 * switched protocols, bytes flow both ways unparsed. The client's half-close
 * is passed on as a half-close, so `echo hi | docker exec -i ID cat` still
 * gets its output after stdin ended; the engine's end of output reaches the
 * client as a half-close too.
 */
#include "config.h"


#include "proxy.h"

static void	 tunnel_move(struct conn *, struct bufferevent *,
		    struct bufferevent *, int);

/* The engine switched protocols: relay what each side already sent. */
void
tunnel_start(struct conn *c)
{
	c->state = CONN_TUNNEL;
	log_debug("conn %llu: tunnel", (unsigned long long)c->id);
	metrics_tunnel(1);
	c->tunnel_counted = 1;
	bufferevent_enable(c->client, EV_READ);
	bufferevent_enable(c->up, EV_READ);
	tunnel_engine_read(c);
	if (c->dead)
		return;
	tunnel_client_read(c);
	if (c->dead)
		return;
	/* The client may have ended its input before the switch. */
	if (c->client_eof_seen)
		tunnel_client_eof(c);
}

/* Move src's input to dst's output; pause src when dst backs up. */
static void
tunnel_move(struct conn *c, struct bufferevent *src, struct bufferevent *dst,
    int to_client)
{
	struct evbuffer	*in = bufferevent_get_input(src);
	struct evbuffer	*out = bufferevent_get_output(dst);
	size_t		 n;
	int		 rounds = 0;

	do {
		if ((n = evbuffer_get_length(in)) == 0)
			break;
		evbuffer_remove_buffer(in, out, n);
		if (to_client)
			c->bytes_out += n;
		else
			c->bytes_in += n;
	} while (++rounds < 8 &&
	    evbuffer_get_length(out) <= DOCKGATE_HIGH_WATER &&
	    io_pull(src, to_client ? c->up_tls : c->tls) > 0);
	if (evbuffer_get_length(out) > DOCKGATE_HIGH_WATER) {
		bufferevent_disable(src, EV_READ);
		if (to_client)
			c->up_paused = 1;
		else
			c->client_paused = 1;
		bufferevent_setwatermark(dst, EV_WRITE, DOCKGATE_HIGH_WATER / 2,
		    0);
	}
}

/* Client bytes (stdin) go to the engine as they are. */
void
tunnel_client_read(struct conn *c)
{
	if (c->up == NULL) {
		struct evbuffer *in = bufferevent_get_input(c->client);

		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	tunnel_move(c, c->client, c->up, 0);
}

/* Engine bytes (output) go to the client as they are. */
void
tunnel_engine_read(struct conn *c)
{
	tunnel_move(c, c->up, c->client, 1);
}

/* The client ended its input: half-close towards the engine. */
void
tunnel_client_eof(struct conn *c)
{
	tunnel_client_read(c);
	if (c->up == NULL) {
		conn_drain(c);
		return;
	}
	c->state = CONN_TUNNEL_CLIENT_EOF;
	/* Over TLS the client's EOF stopped our writes to it as well. */
	tls_keep_writing(c->client, c->tls);
	if (evbuffer_get_length(bufferevent_get_output(c->up)) == 0)
		tls_shutdown_write(c->up, c->up_tls);
	else {
		c->up_shut_pending = 1;
		bufferevent_setwatermark(c->up, EV_WRITE, 0, 0);
	}
}

/*
 * The engine ended its output. It keeps its end open and takes (and drops)
 * whatever the client still sends until the client closes; so does
 * dockgate, without pinning an engine connection: the client gets the rest
 * of the output and a half-close, its input is read and dropped.
 */
void
tunnel_engine_eof(struct conn *c)
{
	tunnel_engine_read(c);
	if (c->state == CONN_TUNNEL_CLIENT_EOF) {
		conn_drain(c);
		return;
	}
	upstream_close(c);
	c->state = CONN_TUNNEL_ENGINE_EOF;
	tls_keep_writing(c->client, c->tls);
	bufferevent_enable(c->client, EV_READ);
	conn_timer_idle(c);
	if (evbuffer_get_length(bufferevent_get_output(c->client)) == 0)
		tls_shutdown_write(c->client, c->tls);
	else {
		c->client_shut_pending = 1;
		bufferevent_setwatermark(c->client, EV_WRITE, 0, 0);
	}
}
