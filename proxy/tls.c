/*
 * TLS glue: the server context for tcp listeners (mutual TLS with
 * --tls-ca), reloaded on SIGHUP with the old one kept on error, the client
 * context for a TLS engine, and the bufferevent_openssl quirks a proxy that
 * keeps half-closes must work around.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "certs.h"
#include "proxy.h"

static SSL_CTX	*server_ctx;
static SSL_CTX	*upstream_ctx;

/* Build (or rebuild, on reload) the contexts from the configured files. */
int
tls_load(char *err, size_t errlen)
{
	SSL_CTX	*s = NULL, *u = NULL;

	if (proxy->tls_cert != NULL) {
		s = certs_server_ctx(proxy->tls_cert, proxy->tls_key,
		    proxy->tls_ca, err, errlen);
		if (s == NULL)
			return -1;
	}
	if (proxy->up_tls) {
		u = certs_client_ctx(proxy->up_tls_ca, proxy->up_tls_cert,
		    proxy->up_tls_key, err, errlen);
		if (u == NULL) {
			SSL_CTX_free(s);
			return -1;
		}
	}
	/* Connections in flight keep their own reference to the old ones. */
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(upstream_ctx);
	server_ctx = s;
	upstream_ctx = u;
	return 0;
}

/* Release the contexts at exit. */
void
tls_free(void)
{
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(upstream_ctx);
	server_ctx = upstream_ctx = NULL;
}

/* Is TLS configured for listeners? */
int
tls_server_enabled(void)
{
	return server_ctx != NULL;
}

/* A bufferevent for an accepted tcp client: TLS when configured. */
struct bufferevent *
tls_client_bev(evutil_socket_t fd, int *is_tls)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	*is_tls = 0;
	if (server_ctx == NULL)
		return bufferevent_socket_new(proxy->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(server_ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(proxy->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	*is_tls = 1;
	return bev;
}

/* A bufferevent for the engine connection: TLS for a TLS engine. */
struct bufferevent *
tls_upstream_bev(int *is_tls)
{
	struct bufferevent	*bev;
	SSL			*ssl;
	char			 host[256], err[256];
	const char		*p;
	size_t			 n;

	*is_tls = 0;
	if (upstream_ctx == NULL || proxy->upstream.kind != ADDR_TCP)
		return bufferevent_socket_new(proxy->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(upstream_ctx)) == NULL)
		return NULL;
	/* The host part of tcp:HOST:PORT, checked against the certificate. */
	p = proxy->upstream.spec + 4;
	if (strncmp(p, "//", 2) == 0)
		p += 2;
	n = strlen(p);
	while (n > 0 && p[n - 1] != ':')
		n--;
	if (n == 0 || n > sizeof(host))
		n = 1;
	snprintf(host, sizeof(host), "%.*s", (int)(n - 1), p);
	if (certs_client_set_host(ssl, host, err, sizeof(err)) == -1) {
		log_warnx("engine %s: %s", proxy->upstream.spec, err);
		SSL_free(ssl);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(proxy->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	*is_tls = 1;
	return bev;
}

/* The verified client certificate's CN (and SANs for the audit line). */
void
tls_peer_identity(struct conn *c)
{
	struct certs_identity	 id;
	SSL			*ssl = bufferevent_openssl_get_ssl(c->client);
	char			 san[1024];
	size_t			 i, o = 0;

	if (ssl == NULL || certs_peer_identity(ssl, &id) == -1)
		return;
	san[0] = '\0';
	for (i = 0; i < id.nsan && o < sizeof(san) - 1; i++)
		o += (size_t)snprintf(san + o, sizeof(san) - o, "%s%s",
		    i ? "," : "", id.san[i].value);
	free(c->cert_cn);
	free(c->cert_san);
	c->cert_cn = strdup(id.cn);
	c->cert_san = strdup(san);
}

/* The TLS error libevent recorded for bev (or the oldest queued one). */
const char *
tls_error(struct bufferevent *bev)
{
	static char	 buf[256];
	unsigned long	 e = bev ? bufferevent_get_openssl_error(bev) : 0;

	if (e == 0)
		e = ERR_get_error();

	if (e == 0)
		return "connection closed during the handshake";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/*
 * Half-close the write direction of bev: close_notify first over TLS, then
 * a FIN. The caller makes sure the output buffer is empty.
 */
void
tls_shutdown_write(struct bufferevent *bev, int is_tls)
{
	SSL	*ssl;

	if (is_tls && (ssl = bufferevent_openssl_get_ssl(bev)) != NULL) {
		SSL_shutdown(ssl);
		ERR_clear_error();
	}
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}

/*
 * bufferevent_openssl stops writing as well as reading when the peer ends
 * its input; a half-closed tunnel must keep writing: re-arm the write side.
 */
void
tls_keep_writing(struct bufferevent *bev, int is_tls)
{
	if (!is_tls)
		return;
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_WRITE);
}
