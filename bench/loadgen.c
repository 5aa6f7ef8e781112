/*
 * loadgen: a small HTTP/1.1 load generator for the dockgate benchmark.
 *
 * One thread, one epoll loop, N connections over a unix socket or TCP.
 * Each connection sends the raw request template (request line, headers and
 * body exactly as in the file), reads one response (Content-Length, chunked,
 * or until EOF when neither is given), records its latency and goes again:
 * on the same connection (keep-alive) or on a new one (--new-conn).
 *
 *   loadgen (--unix PATH | --tcp HOST:PORT) --req FILE [-c N] [-d SECONDS]
 *           [-n MAX_REQUESTS] [--new-conn] [--expect STATUS]
 *   loadgen (--unix PATH | --tcp HOST:PORT) --idle N [--hold SECONDS]
 *
 * Output: one line of key=value pairs (req, rps, p50_us, p99_us, max_us,
 * errors, non_expected, bytes, mbps, elapsed), parsed by run.sh.
 *
 * --idle N opens N connections, sends nothing, prints "ready N" on stdout,
 * holds them for --hold seconds (or until stdin reaches EOF when --hold is
 * 0), then reports how many the server closed or answered meanwhile.
 *
 * Build: cc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE	(256 * 1024)

enum rstate { R_HEAD, R_BODY_LEN, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF,
    R_TRAILER, R_BODY_EOF };

struct lconn {
	int		 fd;
	int		 idx;
	int		 connecting;	/* TCP connect in progress */
	size_t		 woff;		/* bytes of the template sent */
	uint64_t	 t0;		/* request start, ns */
	enum rstate	 rs;
	char		 head[8192];	/* response head collected so far */
	size_t		 hlen;
	int		 status;
	int		 close_after;
	unsigned long long remain;	/* body or chunk bytes left */
	int		 active;	/* a request is in flight */
};

static struct sockaddr_storage	 g_ss;
static socklen_t		 g_sslen;
static int			 g_unix;
static char			*g_req;
static size_t			 g_reqlen;
static int			 g_newconn;
static int			 g_expect = -1;
static uint64_t			 g_deadline;
static uint64_t			 g_maxreq;
static uint64_t			 g_started, g_done, g_errors, g_nonexp;
static uint64_t			 g_bytes;
static uint32_t			*g_lat;
static size_t			 g_latn, g_latcap;
static int			 g_ep;
static char			*g_rbuf;
static volatile sig_atomic_t	 g_stop;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen (--unix PATH | --tcp HOST:PORT) --req FILE [-c N] "
	    "[-d SECONDS] [-n MAX] [--new-conn] [--expect STATUS]\n"
	    "       loadgen (--unix PATH | --tcp HOST:PORT) --idle N "
	    "[--hold SECONDS]\n");
	exit(2);
}

static void
onsig(int s)
{
	(void)s;
	g_stop = 1;
}

static int
open_conn(int *inprogress)
{
	int fd, one = 1;

	*inprogress = 0;
	fd = socket(g_ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (g_unix) {
		/*
		 * A non-blocking connect to a unix socket whose backlog is
		 * full fails with EAGAIN and cannot be waited for: connect
		 * blocking, then switch to non-blocking.
		 */
		if (connect(fd, (struct sockaddr *)&g_ss, g_sslen) == -1) {
			close(fd);
			return -1;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		return fd;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&g_ss, g_sslen) == -1) {
		if (errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
		*inprogress = 1;
	}
	return fd;
}

static void
record(uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (g_latn == g_latcap) {
		g_latcap = g_latcap ? g_latcap * 2 : 1 << 16;
		if ((g_lat = realloc(g_lat, g_latcap * sizeof(*g_lat))) == NULL)
			die("realloc");
	}
	g_lat[g_latn++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int
want_more(void)
{
	if (g_stop)
		return 0;
	if (g_maxreq && g_started >= g_maxreq)
		return 0;
	return now_ns() < g_deadline;
}

static void
ep_set(struct lconn *c, uint32_t ev, int op)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (epoll_ctl(g_ep, op, c->fd, &e) == -1)
		die("epoll_ctl");
}

static void conn_send(struct lconn *);

/* Start a request on c (opening a socket first if it has none). */
static void
conn_start(struct lconn *c)
{
	int inprog;

	if (!want_more()) {
		if (c->fd != -1) {
			close(c->fd);
			c->fd = -1;
		}
		c->active = 0;
		return;
	}
	g_started++;
	c->active = 1;
	c->t0 = now_ns();
	c->woff = 0;
	c->rs = R_HEAD;
	c->hlen = 0;
	c->status = 0;
	c->close_after = 0;
	c->remain = 0;
	if (c->fd == -1) {
		while ((c->fd = open_conn(&inprog)) == -1) {
			g_errors++;
			if (!want_more()) {
				c->active = 0;
				return;
			}
			usleep(1000);
		}
		c->connecting = inprog;
		ep_set(c, inprog ? EPOLLOUT : EPOLLIN, EPOLL_CTL_ADD);
		if (inprog)
			return;
	}
	conn_send(c);
}

static void
conn_fail(struct lconn *c)
{
	g_errors++;
	if (c->fd != -1) {
		close(c->fd);	/* also leaves the epoll set */
		c->fd = -1;
	}
	c->active = 0;
	conn_start(c);
}

static void
conn_send(struct lconn *c)
{
	ssize_t n;

	while (c->woff < g_reqlen) {
		n = send(c->fd, g_req + c->woff, g_reqlen - c->woff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_set(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
				return;
			}
			conn_fail(c);
			return;
		}
		c->woff += (size_t)n;
	}
}

/* The response is complete. */
static void
conn_done(struct lconn *c)
{
	g_done++;
	record(now_ns() - c->t0);
	if (g_expect > 0 && c->status != g_expect)
		g_nonexp++;
	c->active = 0;
	if ((g_newconn || c->close_after) && c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	conn_start(c);
}

/* Parse the response head in c->head; 0 when incomplete, -1 on error. */
static int
parse_head(struct lconn *c, size_t *consumed_from_buf, const char *buf,
    size_t len)
{
	char		*e, *line, *next;
	size_t		 take, old = c->hlen;
	int		 have_len = 0, chunked = 0;
	unsigned long long clen = 0;

	take = len;
	if (take > sizeof(c->head) - 1 - c->hlen)
		take = sizeof(c->head) - 1 - c->hlen;
	memcpy(c->head + c->hlen, buf, take);
	c->hlen += take;
	c->head[c->hlen] = '\0';
	if ((e = strstr(c->head, "\r\n\r\n")) == NULL) {
		if (c->hlen >= sizeof(c->head) - 1)
			return -1;
		*consumed_from_buf = take;
		return 0;
	}
	*consumed_from_buf = (size_t)(e + 4 - c->head) - old;
	*e = '\0';
	if (strncmp(c->head, "HTTP/1.", 7) != 0)
		return -1;
	c->status = atoi(c->head + 9);
	line = strstr(c->head, "\r\n");
	while (line != NULL) {
		line += 2;
		next = strstr(line, "\r\n");
		if (next)
			*next = '\0';
		if (strncasecmp(line, "Content-Length:", 15) == 0) {
			have_len = 1;
			clen = strtoull(line + 15, NULL, 10);
		} else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
		    strcasestr(line, "chunked") != NULL)
			chunked = 1;
		else if (strncasecmp(line, "Connection:", 11) == 0 &&
		    strcasestr(line, "close") != NULL)
			c->close_after = 1;
		line = next;
	}
	if (c->status == 204 || c->status == 304 || c->status / 100 == 1 ||
	    (strncmp(g_req, "HEAD ", 5) == 0)) {
		c->rs = R_BODY_LEN;
		c->remain = 0;
	} else if (chunked) {
		c->rs = R_CHUNK_SIZE;
		c->hlen = 0;
	} else if (have_len) {
		c->rs = R_BODY_LEN;
		c->remain = clen;
	} else {
		c->rs = R_BODY_EOF;
		c->close_after = 1;
	}
	c->hlen = 0;
	return 1;
}

/*
 * Feed received bytes through the response state machine. Returns 1 when
 * the response completed (the rest of buf, if any, is an error: the server
 * sent more than one answer), 0 when more is needed, -1 on error.
 */
static int
feed(struct lconn *c, const char *buf, size_t len)
{
	size_t		 used, k;
	const char	*nl;
	int		 r;

	while (len > 0 || c->rs == R_BODY_LEN) {
		switch (c->rs) {
		case R_HEAD:
			if ((r = parse_head(c, &used, buf, len)) == -1)
				return -1;
			buf += used;
			len -= used;
			if (r == 0)
				return 0;
			break;
		case R_BODY_LEN:
			k = len < c->remain ? len : (size_t)c->remain;
			c->remain -= k;
			g_bytes += k;
			buf += k;
			len -= k;
			if (c->remain == 0)
				return len == 0 ? 1 : -1;
			return 0;
		case R_BODY_EOF:
			g_bytes += len;
			return 0;
		case R_CHUNK_SIZE:
		case R_TRAILER:
			/* collect one line */
			nl = memchr(buf, '\n', len);
			k = nl ? (size_t)(nl - buf) + 1 : len;
			if (c->hlen + k >= sizeof(c->head))
				return -1;
			memcpy(c->head + c->hlen, buf, k);
			c->hlen += k;
			buf += k;
			len -= k;
			if (nl == NULL)
				return 0;
			c->head[c->hlen] = '\0';
			if (c->rs == R_TRAILER) {
				int blank = c->hlen <= 2;

				c->hlen = 0;
				if (blank)
					return len == 0 ? 1 : -1;
				break;
			}
			c->remain = strtoull(c->head, NULL, 16);
			c->hlen = 0;
			c->rs = c->remain == 0 ? R_TRAILER : R_CHUNK_DATA;
			break;
		case R_CHUNK_DATA:
			k = len < c->remain ? len : (size_t)c->remain;
			c->remain -= k;
			g_bytes += k;
			buf += k;
			len -= k;
			if (c->remain == 0) {
				c->rs = R_CHUNK_CRLF;
				c->remain = 2;
			}
			break;
		case R_CHUNK_CRLF:
			k = len < c->remain ? len : (size_t)c->remain;
			c->remain -= k;
			buf += k;
			len -= k;
			if (c->remain == 0)
				c->rs = R_CHUNK_SIZE;
			break;
		}
	}
	return 0;
}

static void
conn_readable(struct lconn *c)
{
	ssize_t n;
	int r;

	for (;;) {
		n = recv(c->fd, g_rbuf, RBUF_SIZE, 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_fail(c);
			return;
		}
		if (n == 0) {
			if (c->active && c->rs == R_BODY_EOF) {
				close(c->fd);
				c->fd = -1;
				c->close_after = 0;
				conn_done(c);
				return;
			}
			if (!c->active) {	/* server closed an idle conn */
				close(c->fd);
				c->fd = -1;
				return;
			}
			conn_fail(c);
			return;
		}
		if (!c->active) {	/* bytes nobody asked for */
			conn_fail(c);
			return;
		}
		r = feed(c, g_rbuf, (size_t)n);
		if (r == -1) {
			conn_fail(c);
			return;
		}
		if (r == 1) {
			conn_done(c);
			return;
		}
		if ((size_t)n < RBUF_SIZE)
			return;
	}
}

static int
idle_mode(int n, int hold)
{
	int		*fds, i, inprog, closed = 0, answered = 0;
	struct rlimit	 rl;
	char		 b[16];
	struct pollfd	*pf;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((fds = calloc((size_t)n, sizeof(int))) == NULL ||
	    (pf = calloc((size_t)n, sizeof(*pf))) == NULL)
		die("calloc");
	for (i = 0; i < n; i++) {
		if ((fds[i] = open_conn(&inprog)) == -1) {
			fprintf(stderr, "loadgen: connection %d: %s\n", i,
			    strerror(errno));
			printf("ready %d\n", i);
			fflush(stdout);
			n = i;
			break;
		}
	}
	if (i == n) {
		printf("ready %d\n", n);
		fflush(stdout);
	}
	if (hold > 0)
		sleep((unsigned)hold);
	else
		while (read(0, b, sizeof(b)) > 0)
			;
	for (i = 0; i < n; i++) {
		pf[i].fd = fds[i];
		pf[i].events = POLLIN;
	}
	poll(pf, (nfds_t)n, 0);
	for (i = 0; i < n; i++) {
		if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (recv(fds[i], b, 1, MSG_DONTWAIT) > 0)
				answered++;
			else
				closed++;
		}
		close(fds[i]);
	}
	printf("idle=%d closed_by_server=%d answered_by_server=%d\n", n,
	    closed, answered);
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	const char		*unixp = NULL, *tcp = NULL, *reqf = NULL;
	int			 nconn = 1, i, n, idle = 0, hold = 0;
	double			 dur = 5.0;
	struct lconn		*cs;
	struct epoll_event	 evs[256];
	struct stat		 st;
	uint64_t		 t_start, t_end;
	FILE			*f;
	double			 el;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--unix") == 0 && v) unixp = v, i++;
		else if (strcmp(a, "--tcp") == 0 && v) tcp = v, i++;
		else if (strcmp(a, "--req") == 0 && v) reqf = v, i++;
		else if (strcmp(a, "-c") == 0 && v) nconn = atoi(v), i++;
		else if (strcmp(a, "-d") == 0 && v) dur = atof(v), i++;
		else if (strcmp(a, "-n") == 0 && v)
			g_maxreq = strtoull(v, NULL, 10), i++;
		else if (strcmp(a, "--expect") == 0 && v) g_expect = atoi(v), i++;
		else if (strcmp(a, "--idle") == 0 && v) idle = atoi(v), i++;
		else if (strcmp(a, "--hold") == 0 && v) hold = atoi(v), i++;
		else if (strcmp(a, "--new-conn") == 0) g_newconn = 1;
		else usage();
	}
	if ((unixp == NULL) == (tcp == NULL))
		usage();
	memset(&g_ss, 0, sizeof(g_ss));
	if (unixp) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&g_ss;

		if (strlen(unixp) >= sizeof(sun->sun_path))
			usage();
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, unixp);
		g_sslen = sizeof(*sun);
		g_unix = 1;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&g_ss;
		char host[64];
		const char *colon = strrchr(tcp, ':');

		if (colon == NULL || (size_t)(colon - tcp) >= sizeof(host))
			usage();
		memcpy(host, tcp, (size_t)(colon - tcp));
		host[colon - tcp] = '\0';
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			usage();
		g_sslen = sizeof(*sin);
	}
	signal(SIGPIPE, SIG_IGN);
	if (idle > 0)
		return idle_mode(idle, hold);
	if (reqf == NULL || nconn < 1 || dur <= 0)
		usage();
	if ((f = fopen(reqf, "rb")) == NULL || fstat(fileno(f), &st) == -1)
		die(reqf);
	g_reqlen = (size_t)st.st_size;
	if ((g_req = malloc(g_reqlen + 1)) == NULL ||
	    fread(g_req, 1, g_reqlen, f) != g_reqlen)
		die("read template");
	fclose(f);
	if ((g_rbuf = malloc(RBUF_SIZE)) == NULL)
		die("malloc");
	if (nconn > 1) {
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < (rlim_t)nconn + 64) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	signal(SIGINT, onsig);
	signal(SIGTERM, onsig);
	if ((g_ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	if ((cs = calloc((size_t)nconn, sizeof(*cs))) == NULL)
		die("calloc");
	t_start = now_ns();
	g_deadline = t_start + (uint64_t)(dur * 1e9);
	for (i = 0; i < nconn; i++) {
		cs[i].fd = -1;
		cs[i].idx = i;
	}
	for (i = 0; i < nconn; i++)
		conn_start(&cs[i]);
	for (;;) {
		int active = 0;

		for (i = 0; i < nconn; i++)
			active += cs[i].active;
		if (active == 0)
			break;
		n = epoll_wait(g_ep, evs, 256, 100);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		/* A hung server must not keep us past the deadline + 5 s. */
		if (now_ns() > g_deadline + 5000000000ull) {
			for (i = 0; i < nconn; i++)
				if (cs[i].active) {
					g_errors++;
					cs[i].active = 0;
				}
			break;
		}
		for (i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;

			if (c->fd == -1)
				continue;
			if (c->connecting) {
				int err = 0;
				socklen_t el2 = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err,
				    &el2);
				if (err != 0) {
					conn_fail(c);
					continue;
				}
				c->connecting = 0;
				ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
				conn_send(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				conn_send(c);
				if (c->fd != -1 && c->woff >= g_reqlen)
					ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
			}
			if (c->fd != -1 &&
			    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c);
		}
	}
	t_end = now_ns();
	for (i = 0; i < nconn; i++)
		if (cs[i].fd != -1)
			close(cs[i].fd);
	el = (double)(t_end - t_start) / 1e9;
	qsort(g_lat, g_latn, sizeof(*g_lat), cmp_u32);
#define PCT(p) (g_latn ? g_lat[(size_t)((double)(g_latn - 1) * (p))] : 0)
	printf("req=%llu rps=%.0f p50_us=%u p99_us=%u max_us=%u errors=%llu "
	    "non_expected=%llu bytes=%llu mbps=%.1f elapsed=%.3f conns=%d "
	    "new_conn=%d\n",
	    (unsigned long long)g_done, g_done / el, PCT(0.50), PCT(0.99),
	    g_latn ? g_lat[g_latn - 1] : 0, (unsigned long long)g_errors,
	    (unsigned long long)g_nonexp, (unsigned long long)g_bytes,
	    (double)g_bytes / el / 1e6, el, nconn, g_newconn);
	return 0;
}
