/*
 * dockgate daemon: one header, one prototype section per .c file.
 */
#ifndef DOCKGATE_PROXY_H
#define DOCKGATE_PROXY_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <openssl/ssl.h>

#include "buildscan.h"
#include "httpmsg.h"
#include "policy.h"

#define DOCKGATE_HIGH_WATER	(256 * 1024)	/* stop reading the other side */
#define DOCKGATE_LOOKUP_MAX	(8 * 1024 * 1024)	/* engine fact answer cap */
#define DOCKGATE_SHUTDOWN_GRACE	10	/* seconds for in-flight requests */
#define DOCKGATE_TRIM_INTERVAL	30	/* seconds between malloc_trim() */

/* Where a listener or the upstream lives. */
struct address {
	char			 spec[512];	/* as given on the command line */
	enum { ADDR_UNIX, ADDR_TCP, ADDR_SYSTEMD } kind;
	char			 path[108];	/* unix */
	struct sockaddr_storage	 ss;		/* tcp */
	socklen_t		 sslen;
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	struct address		 addr;
	struct evconnlistener	*evl;
	int			 fd;
	int			 owns_path;	/* unlink the socket at exit */
};
TAILQ_HEAD(listenerlist, listener);

/* Daemon-wide settings and state. */
TAILQ_HEAD(connlist, conn);

struct proxy {
	struct event_base	*base;
	struct evbuffer		*scratch;	/* staging for io_send() */
	const char		*protected_paths[16];	/* never bind sources */
	char			 protected_buf[8][4096];
	struct connlist		 conns;
	struct connlist		 flushq;	/* engine writes held (io.c) */
	struct listenerlist	 listeners;
	struct address		 upstream;
	int			 upstream_given;
	char			*policy_file;
	struct policy		*policy;	/* current; requests hold refs */
	int			 verbose;
	int			 dry_run;
	int			 insecure_tcp;
	const char		*tls_cert;
	const char		*tls_key;
	const char		*tls_ca;
	int			 up_tls;	/* any --upstream-tls-* given */
	const char		*up_tls_ca;
	const char		*up_tls_cert;
	const char		*up_tls_key;
	int			 socket_mode;
	gid_t			 socket_gid;
	int			 socket_gid_set;

	unsigned		 max_connections;
	size_t			 max_header_bytes;
	size_t			 max_body_bytes;
	int			 timeout_header;
	int			 timeout_body;
	int			 timeout_connect;
	int			 timeout_idle;

	unsigned		 nconns;
	uint64_t		 next_conn_id;
	int			 stopping;
	struct event		*ev_sigterm;
	struct event		*ev_sigint;
	struct event		*ev_sighup;
	struct event		*ev_accept_resume;
	struct event		*ev_grace;
	struct event		*ev_trim;	/* periodic malloc_trim() */
};

extern struct proxy *proxy;

/*
 * Connection states. A connection starts in CONN_HEAD and walks
 * HEAD -> [BODY] -> [LOOKUP] -> FORWARD -> HEAD for each request; a hijack
 * moves FORWARD -> TUNNEL, and a half-close in the tunnel moves on to
 * TUNNEL_CLIENT_EOF or TUNNEL_ENGINE_EOF. CONN_DRAIN flushes what is left for the client;
 * a tcp client then gets our FIN and CONN_LINGER reads what it still sends
 * (closing on unread input would reset the connection and lose the answer).
 */
enum conn_state {
	CONN_HEAD,		/* reading a request head, or idle */
	CONN_BODY,		/* buffering a body for inspection */
	CONN_LOOKUP,		/* asking the engine a fact for the decision */
	CONN_FORWARD,		/* request going up, response coming down */
	CONN_TUNNEL,		/* hijacked: raw bytes both ways */
	CONN_TUNNEL_CLIENT_EOF,	/* client is done sending; engine -> client */
	CONN_TUNNEL_ENGINE_EOF,	/* engine is done: client half-closed, its
				   input read and dropped until it closes */
	CONN_DRAIN,		/* last bytes to the client, then close */
	CONN_LINGER,		/* our FIN sent (tcp): read and drop, then free */
};

enum conn_timer {
	TIMER_NONE,
	TIMER_HANDSHAKE,
	TIMER_IDLE,
	TIMER_HEADER,
	TIMER_BODY,
	TIMER_CONNECT,
	TIMER_LOOKUP,
	TIMER_LINGER,		/* bound on CONN_LINGER */
	TIMER_FREE,		/* closed: free the struct (next turn) */
};

/*
 * What only a request in progress needs: allocated at its first byte and
 * freed at its end, so an idle keep-alive connection stays small.
 */
struct request {
	http_parser		 reqp;		/* request parser */
	http_parser		 resp;		/* response parser */
	http_parser		 lkp;		/* lookup answer parser */
	struct httpmsg		 reqh;
	struct httpmsg_framing	 framing;
	struct policy_req	 req;
	struct policy_result	 res;
	struct policy_facts	 facts;
	char			*fact_path[POLICY_MAX_FACTS];
	char			*fact_body[POLICY_MAX_FACTS];
	char			 owner[272];	/* "uid:N" or "cn:NAME" */
	const struct policy_profile *profile;	/* borrowed from conn->pol */
	struct buildscan	*bs;		/* /build: the context scan */
	struct evbuffer		*held;		/* /build: withheld tail */
	int			 build_deciding;	/* facts go to decide_build */
	int			 redacting;	/* answer rewritten: not owned */
	int			 filtering;	/* redacting a list: owner_sees */
	struct evbuffer		*resp_raw;	/* redacting: the raw answer */
	struct evbuffer		*resp_body;	/* redacting: its body */
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 flush_entry;	/* on proxy->flushq */
	int			 flush_queued;
	uint64_t		 id;
	int			 dead;		/* closed; freed soon after */
	enum conn_state		 state;
	struct listener		*listener;
	struct bufferevent	*client;
	struct bufferevent	*up;		/* engine connection, or NULL */
	int			 up_ready;	/* connected */
	int			 up_idle;	/* between keep-alive answers */
	struct event		*timer;
	enum conn_timer		 timer_kind;
	uint64_t		 timer_due;	/* ms: the phase's deadline */
	uint64_t		 timer_at;	/* ms: armed expiry, or 0 */

	/* Peer identity. */
	int			 has_cred;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	char			 peer_addr[64];
	char			*cert_cn;	/* verified TLS client CN, or NULL */
	char			*cert_san;	/* its SANs, comma-separated */
	int			 tls;		/* client side is TLS */
	int			 handshaking;	/* TLS handshake not done */
	int			 up_tls;	/* engine side is TLS */

	/* The request being read; rq exists from its first byte to its end. */
	struct request		*rq;
	char			*url;
	size_t			 url_len;
	size_t			 head_bytes;	/* request line + headers so far */
	int			 req_started;	/* a byte of this request came */
	int			 head_done;	/* headers complete (parser paused) */
	int			 head_handled;	/* conn_request_head() ran */
	char			 head_prev;	/* last head byte scanned */
	int			 req_finished;	/* conn_request_complete() ran */
	int			 err_status;	/* set by a parser callback */
	struct httpmsg_chunks	 chunks;	/* chunked: the framing scan */
	const char		*err_reason;
	int			 req_done;	/* message complete */
	int			 req_keepalive;
	int			 req_parsed;	/* req holds allocations */
	enum policy_body_mode	 body_mode;
	struct evbuffer		*body;		/* inspected body */
	size_t			 body_bytes;
	int			 hijack_route;	/* attach / exec start */
	int			 forward_chunked;	/* body re-chunked upward */
	int			 forwarded;	/* head sent to the engine */

	/* The decision. */
	struct policy		*pol;		/* reference held per request */
	int			 decided;	/* res holds a final verdict */

	/* The response. */
	int			 resp_head_done;
	int			 resp_done;
	int			 resp_tunnel;
	int			 resp_started;	/* bytes went to the client */
	int			 resp_keepalive;
	struct bufferevent	*lk;		/* engine lookup in progress */
	int			 lookup_done;
	struct evbuffer		*lookup_body;

	int			 must_close;	/* close after this response */
	int			 client_paused;	/* client reads off: engine slow */
	int			 up_paused;	/* engine reads off: client slow */
	int			 up_shut_pending;
	int			 client_shut_pending;	/* SHUT_WR once drained */
	int			 dry_run_deny;
	int			 client_eof_seen;	/* client sent EOF */
	int			 tunnel_counted;
	struct rl_entry		*rl;		/* counted as in flight */
	int			 retry_after;	/* for a 429 */	/* a deny forwarded by --dry-run */
	struct timeval		 t_start;	/* request start (monotonic) */
	int			 audited;	/* the request's line is written */
	int			 refuse_on_handshake;	/* 503 once TLS is up */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
};

/* lookup.c */
void	 lookup_start(struct conn *, const char *);
void	 lookup_cancel(struct conn *);

/* log.c */
void	 log_init(int, int);
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* addr.c */
int	 addr_parse(const char *, struct address *, char *, size_t);
int	 addr_sockaddr(const struct address *, struct sockaddr_storage *,
	    socklen_t *);

/* evalcli.c */
int	 eval_main(const char *, const char *, const struct address *, int,
	    char *[]);

/* io.c */
void	 io_own_reads(struct bufferevent *);
void	 io_enable_write_idle(struct bufferevent *);
void	 io_enable_read(struct bufferevent *, int);
size_t	 io_pull(struct bufferevent *, int);
void	 io_send(struct bufferevent *, int, struct evbuffer *);
void	 io_send_engine(struct conn *, struct evbuffer *);
void	 io_unqueue(struct conn *);
void	 io_flush(void);
void	 io_now(struct timeval *);

/* listener.c */
int	 listener_add(const char *, char *, size_t);
int	 listener_bind_all(char *, size_t);
void	 listener_enable_all(void);
void	 listener_close_all(void);
struct event *listener_resume_event(struct event_base *);

/* conn.c */
void	 conn_accept(struct listener *, evutil_socket_t, struct sockaddr *,
	    int);
void	 conn_close(struct conn *, const char *);
void	 conn_refuse(struct conn *, int, const char *, const char *);
void	 conn_shutdown_idle(void);
void	 conn_spare_free(void);
void	 conn_client_resume(struct conn *);
void	 conn_response_complete(struct conn *);
void	 conn_timer_connect(struct conn *);
void	 conn_timer_lookup(struct conn *, int);
void	 conn_timer_clear(struct conn *);
void	 conn_timer_idle(struct conn *);
void	 conn_drain(struct conn *);

/* upstream.c */
int	 upstream_start(struct conn *);
void	 upstream_close(struct conn *);
void	 upstream_release(struct conn *);
void	 upstream_pool_free(void);
void	 upstream_readcb(struct bufferevent *, void *);

/* privdrop.c */
int	 privdrop_lookup(const char *, uid_t *, gid_t *, char *, size_t);
int	 privdrop_apply(uid_t, gid_t, const char *, char *, size_t);
int	 privdrop_sandbox(char *, size_t);

/* ratelimit.c */
int	 ratelimit_begin(struct conn *, const struct policy_profile *);
void	 ratelimit_end(struct conn *);
void	 ratelimit_free(void);

/* tls.c */
int	 tls_load(char *, size_t);
void	 tls_free(void);
int	 tls_server_enabled(void);
struct bufferevent *tls_client_bev(evutil_socket_t, int *);
struct bufferevent *tls_upstream_bev(int *);
void	 tls_peer_identity(struct conn *);
const char *tls_error(struct bufferevent *);
void	 tls_shutdown_write(struct bufferevent *, int);
void	 tls_keep_writing(struct bufferevent *, int);

/* tunnel.c */
void	 tunnel_start(struct conn *);
void	 tunnel_client_read(struct conn *);
void	 tunnel_client_eof(struct conn *);
void	 tunnel_engine_read(struct conn *);
void	 tunnel_engine_eof(struct conn *);

/* audit.c */
int	 audit_open(const char *, char *, size_t);
void	 audit_reopen(void);
void	 audit_close(void);
void	 audit_request(struct conn *, const char *, int);

/* metrics.c */
int	 metrics_listen(const char *, char *, size_t);
void	 metrics_request(struct conn *, const char *, int);
void	 metrics_tunnel(int);
void	 metrics_decision(double);
void	 metrics_reload(int);
void	 metrics_close(void);

/* decide.c */
void	 decide_request(struct conn *);
void	 decide_fact(struct conn *, int, struct evbuffer *);
void	 decide_clear(struct conn *);
void	 decide_finish(struct conn *, int);
void	 decide_refused(struct conn *, int, const char *, const char *);
void	 decide_build(struct conn *);
int	 decide_build_feed(struct conn *, const char *, size_t);

#endif /* DOCKGATE_PROXY_H */
