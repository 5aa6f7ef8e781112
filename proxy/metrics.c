/*
 * Metrics: counters kept by the daemon, served as Prometheus text at
 * /metrics on --metrics ADDR, with /healthz answering from a background
 * _ping of the engine (every 2 s) so a scrape never waits on the engine.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>

#include "proxy.h"

#define METRICS_MAX_SERIES	512
#define METRICS_PING_EVERY	2

static const double buckets[] = {
	0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 30, 60,
};
#define NBUCKETS	(sizeof(buckets) / sizeof(buckets[0]))

struct series {
	char		 a[16];		/* verdict (or rule) */
	char		 b[128];	/* endpoint */
	uint64_t	 n;
};

struct histogram {
	uint64_t	 count[NBUCKETS];
	uint64_t	 total;
	double		 sum;
};

static struct {
	struct series	 req[METRICS_MAX_SERIES];
	size_t		 nreq;
	struct series	 deny[METRICS_MAX_SERIES];
	size_t		 ndeny;
	uint64_t	 tunnels;
	uint64_t	 upstream_errors;
	uint64_t	 reloads_ok;
	uint64_t	 reloads_failed;
	int		 last_reload_ok;
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	struct histogram decision;
	struct histogram request;

	struct evhttp	*http;
	char		 unix_path[108];
	int		 healthy;
	struct event	*ping_timer;
	struct bufferevent *ping;
} m = { .last_reload_ok = 1 };

static void	 metrics_count(struct series *, size_t *, const char *,
		    const char *);
static void	 metrics_observe(struct histogram *, double);
static void	 metrics_serve(struct evhttp_request *, void *);
static void	 metrics_print_hist(struct evbuffer *, const char *,
		    const char *, const struct histogram *);
static void	 metrics_label(struct evbuffer *, const char *);
static void	 ping_start(evutil_socket_t, short, void *);
static void	 ping_read(struct bufferevent *, void *);
static void	 ping_event(struct bufferevent *, short, void *);
static void	 ping_done(int);

/* Add one to the series (a, b), creating it if there is room. */
static void
metrics_count(struct series *s, size_t *n, const char *a, const char *b)
{
	size_t	 i;

	for (i = 0; i < *n; i++)
		if (strcmp(s[i].a, a) == 0 && strcmp(s[i].b, b) == 0) {
			s[i].n++;
			return;
		}
	if (*n == METRICS_MAX_SERIES)
		i = *n - 1;	/* the last series absorbs the overflow */
	else {
		i = (*n)++;
		snprintf(s[i].a, sizeof(s[i].a), "%s", a);
		snprintf(s[i].b, sizeof(s[i].b), "%s", b);
	}
	s[i].n++;
}

/* Record one observation in a histogram. */
static void
metrics_observe(struct histogram *h, double v)
{
	size_t	 i;

	for (i = 0; i < NBUCKETS; i++)
		if (v <= buckets[i])
			h->count[i]++;
	h->total++;
	h->sum += v;
}

/* Count one finished request. */
void
metrics_request(struct conn *c, const char *verdict, int status)
{
	struct timeval	 now;
	double		 secs;

	metrics_count(m.req, &m.nreq, verdict,
	    c->rq->res.endpoint[0] ? c->rq->res.endpoint : "other");
	if (strcmp(verdict, "deny") == 0 || strcmp(verdict, "malformed") == 0)
		metrics_count(m.deny, &m.ndeny, "",
		    c->rq->res.rule[0] ? c->rq->res.rule : "unknown");
	if (status == 502 || status == 504)
		m.upstream_errors++;
	m.bytes_in += c->bytes_in;
	m.bytes_out += c->bytes_out;
	if (c->t_start.tv_sec != 0 || c->t_start.tv_usec != 0) {
		io_now(&now);
		secs = (double)(now.tv_sec - c->t_start.tv_sec) +
		    (double)(now.tv_usec - c->t_start.tv_usec) / 1e6;
		metrics_observe(&m.request, secs < 0 ? 0 : secs);
	}
}

/* Time spent in one policy evaluation. */
void
metrics_decision(double secs)
{
	metrics_observe(&m.decision, secs);
}

/* A tunnel opened (+1) or closed (-1). */
void
metrics_tunnel(int delta)
{
	m.tunnels += (uint64_t)(int64_t)delta;
}

/* A policy reload succeeded (1) or failed (0). */
void
metrics_reload(int ok)
{
	if (ok)
		m.reloads_ok++;
	else
		m.reloads_failed++;
	m.last_reload_ok = ok;
}

/* Write a label value with Prometheus escaping. */
static void
metrics_label(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
}

/* Write one histogram family. */
static void
metrics_print_hist(struct evbuffer *b, const char *name, const char *help,
    const struct histogram *h)
{
	size_t	 i;

	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name,
	    help, name);
	for (i = 0; i < NBUCKETS; i++)
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    buckets[i], (unsigned long long)h->count[i]);
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n"
	    "%s_count %llu\n", name, (unsigned long long)h->total, name,
	    h->sum, name, (unsigned long long)h->total);
}

/* Serve /metrics and /healthz. */
static void
metrics_serve(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*b = evbuffer_new();
	const char	*uri = evhttp_request_get_uri(req);
	size_t		 i;

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, NULL);
		evbuffer_free(b);
		return;
	}
	if (strcmp(uri, "/healthz") == 0) {
		evbuffer_add_printf(b, "%s\n", m.healthy ? "ok" :
		    "engine not answering _ping");
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain");
		evhttp_send_reply(req, m.healthy ? 200 : 503,
		    m.healthy ? "OK" : "Service Unavailable", b);
		evbuffer_free(b);
		return;
	}
	if (strcmp(uri, "/metrics") != 0) {
		evhttp_send_error(req, 404, NULL);
		evbuffer_free(b);
		return;
	}
	evbuffer_add_printf(b, "# HELP dockgate_requests_total Requests decided, "
	    "by verdict and endpoint pattern.\n"
	    "# TYPE dockgate_requests_total counter\n");
	for (i = 0; i < m.nreq; i++) {
		evbuffer_add_printf(b, "dockgate_requests_total{verdict=\"");
		metrics_label(b, m.req[i].a);
		evbuffer_add_printf(b, "\",endpoint=\"");
		metrics_label(b, m.req[i].b);
		evbuffer_add_printf(b, "\"} %llu\n",
		    (unsigned long long)m.req[i].n);
	}
	evbuffer_add_printf(b, "# HELP dockgate_denials_total Refusals, by rule.\n"
	    "# TYPE dockgate_denials_total counter\n");
	for (i = 0; i < m.ndeny; i++) {
		evbuffer_add_printf(b, "dockgate_denials_total{rule=\"");
		metrics_label(b, m.deny[i].b);
		evbuffer_add_printf(b, "\"} %llu\n",
		    (unsigned long long)m.deny[i].n);
	}
	evbuffer_add_printf(b,
	    "# HELP dockgate_upstream_errors_total Engine unreachable or unusable.\n"
	    "# TYPE dockgate_upstream_errors_total counter\n"
	    "dockgate_upstream_errors_total %llu\n"
	    "# HELP dockgate_connections Open connections, by state.\n"
	    "# TYPE dockgate_connections gauge\n"
	    "dockgate_connections{state=\"client\"} %u\n"
	    "dockgate_connections{state=\"tunnel\"} %llu\n"
	    "# HELP dockgate_bytes_total Bytes relayed, by direction.\n"
	    "# TYPE dockgate_bytes_total counter\n"
	    "dockgate_bytes_total{direction=\"in\"} %llu\n"
	    "dockgate_bytes_total{direction=\"out\"} %llu\n"
	    "# HELP dockgate_policy_reloads_total Policy reloads, by result.\n"
	    "# TYPE dockgate_policy_reloads_total counter\n"
	    "dockgate_policy_reloads_total{result=\"ok\"} %llu\n"
	    "dockgate_policy_reloads_total{result=\"failed\"} %llu\n"
	    "# HELP dockgate_policy_last_reload_success 1 if the last reload worked.\n"
	    "# TYPE dockgate_policy_last_reload_success gauge\n"
	    "dockgate_policy_last_reload_success %d\n"
	    "# HELP dockgate_engine_up 1 if the engine answered the last _ping.\n"
	    "# TYPE dockgate_engine_up gauge\n"
	    "dockgate_engine_up %d\n",
	    (unsigned long long)m.upstream_errors, proxy->nconns,
	    (unsigned long long)m.tunnels, (unsigned long long)m.bytes_in,
	    (unsigned long long)m.bytes_out, (unsigned long long)m.reloads_ok,
	    (unsigned long long)m.reloads_failed, m.last_reload_ok, m.healthy);
	metrics_print_hist(b, "dockgate_decision_seconds",
	    "Time spent in policy evaluation.", &m.decision);
	metrics_print_hist(b, "dockgate_request_seconds",
	    "Time from the first request byte to its end.", &m.request);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* Serve metrics on ADDR (unix or tcp) and start the engine pinger. */
int
metrics_listen(const char *spec, char *err, size_t errlen)
{
	struct address		 a;
	struct sockaddr_un	 sun;
	int			 fd, one = 1;
	struct timeval		 now = { 0, 0 };

	if (addr_parse(spec, &a, err, errlen) == -1)
		return -1;
	if (a.kind == ADDR_SYSTEMD) {
		snprintf(err, errlen, "%s: metrics need unix: or tcp:", spec);
		return -1;
	}
	if ((m.http = evhttp_new(proxy->base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	evhttp_set_gencb(m.http, metrics_serve, NULL);
	evhttp_set_allowed_methods(m.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m.http, 10);
	evhttp_set_max_headers_size(m.http, 8192);
	evhttp_set_max_body_size(m.http, 0);
	if (a.kind == ADDR_UNIX) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, a.path, strlen(a.path) + 1);
		unlink(a.path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1 || bind(fd, (struct sockaddr *)&sun,
		    sizeof(sun)) == -1 || listen(fd, 64) == -1) {
			snprintf(err, errlen, "%s: %s", spec, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		chmod(a.path, 0660);
		snprintf(m.unix_path, sizeof(m.unix_path), "%s", a.path);
	} else {
		fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd != -1)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof(one));
		if (fd == -1 || bind(fd, (struct sockaddr *)&a.ss,
		    a.sslen) == -1 || listen(fd, 64) == -1) {
			snprintf(err, errlen, "%s: %s", spec, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
	}
	if (evhttp_accept_socket(m.http, fd) == -1) {
		snprintf(err, errlen, "%s: cannot accept", spec);
		close(fd);
		return -1;
	}
	m.ping_timer = evtimer_new(proxy->base, ping_start, NULL);
	if (m.ping_timer == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	evtimer_add(m.ping_timer, &now);
	return 0;
}

/* Ask the engine for _ping (one at a time). */
static void
ping_start(evutil_socket_t fd, short ev, void *arg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct timeval		 tv = { METRICS_PING_EVERY, 0 };

	evtimer_add(m.ping_timer, &tv);
	if (m.ping != NULL) {
		ping_done(0);	/* the last one never answered */
		return;
	}
	if (addr_sockaddr(&proxy->upstream, &ss, &len) == -1)
		return;
	if ((m.ping = bufferevent_socket_new(proxy->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return;
	bufferevent_setcb(m.ping, ping_read, NULL, ping_event, NULL);
	if (bufferevent_socket_connect(m.ping, (struct sockaddr *)&ss,
	    (int)len) == -1) {
		ping_done(0);
		return;
	}
	bufferevent_enable(m.ping, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(m.ping),
	    "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
}

/* The _ping answer: healthy on a 200 status line. */
static void
ping_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;

	if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) == NULL) {
		if (evbuffer_get_length(in) > 1024)
			ping_done(0);
		return;
	}
	ping_done(strncmp(line, "HTTP/1.1 200 ", 13) == 0 ||
	    strncmp(line, "HTTP/1.0 200 ", 13) == 0);
	free(line);
}

/* The ping connection failed or closed before an answer. */
static void
ping_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ping_done(0);
}

/* Record the ping result and drop its connection. */
static void
ping_done(int ok)
{
	m.healthy = ok;
	if (m.ping != NULL) {
		bufferevent_free(m.ping);
		m.ping = NULL;
	}
}

/* Stop serving metrics. */
void
metrics_close(void)
{
	if (m.ping != NULL) {
		bufferevent_free(m.ping);
		m.ping = NULL;
	}
	if (m.ping_timer != NULL) {
		event_free(m.ping_timer);
		m.ping_timer = NULL;
	}
	if (m.http != NULL) {
		evhttp_free(m.http);
		m.http = NULL;
	}
	if (m.unix_path[0] != '\0') {
		unlink(m.unix_path);
		m.unix_path[0] = '\0';
	}
}
