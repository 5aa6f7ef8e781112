/*
 * Listeners: unix sockets (stale files replaced, mode and group set), tcp,
 * and sockets passed by systemd. Accept pauses for a second when the
 * process runs out of descriptors.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "proxy.h"

static int	 listener_bind_unix(struct listener *, char *, size_t);
static int	 listener_bind_tcp(struct listener *, char *, size_t);
static int	 listener_systemd(struct listener *, char *, size_t);
static void	 listener_acceptcb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	 listener_errorcb(struct evconnlistener *, void *);
static void	 listener_resume(evutil_socket_t, short, void *);

/* Remember a listener address from the command line. */
int
listener_add(const char *spec, char *err, size_t errlen)
{
	struct listener	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->fd = -1;
	if (addr_parse(spec, &l->addr, err, errlen) == -1) {
		free(l);
		return -1;
	}
	TAILQ_INSERT_TAIL(&proxy->listeners, l, entry);
	return 0;
}

/*
 * Bind a unix socket. A file at the path that is a socket nobody answers on
 * is stale and replaced; a live socket or any other file is an error.
 */
static int
listener_bind_unix(struct listener *l, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	int			 fd, probe;
	mode_t			 old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, l->addr.path, strlen(l->addr.path) + 1);
	if (lstat(l->addr.path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			    l->addr.path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, errlen, "%s: another process is listening",
			    l->addr.path);
			return -1;
		}
		if (probe != -1)
			close(probe);
		if (unlink(l->addr.path) == -1) {
			snprintf(err, errlen, "%s: cannot remove stale socket: %s",
			    l->addr.path, strerror(errno));
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		snprintf(err, errlen, "%s: bind: %s", l->addr.path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	l->owns_path = 1;
	if (proxy->socket_gid_set &&
	    chown(l->addr.path, (uid_t)-1, proxy->socket_gid) == -1) {
		snprintf(err, errlen, "%s: chown: %s", l->addr.path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(l->addr.path, (mode_t)proxy->socket_mode) == -1) {
		snprintf(err, errlen, "%s: chmod: %s", l->addr.path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	l->fd = fd;
	return 0;
}

/* Bind a tcp socket. */
static int
listener_bind_tcp(struct listener *l, char *err, size_t errlen)
{
	int	 fd, one = 1;

	if ((fd = socket(l->addr.ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&l->addr.ss, l->addr.sslen) == -1) {
		snprintf(err, errlen, "%s: bind: %s", l->addr.spec,
		    strerror(errno));
		close(fd);
		return -1;
	}
	l->fd = fd;
	return 0;
}

/* Take the sockets systemd passed (LISTEN_PID, LISTEN_FDS from fd 3). */
static int
listener_systemd(struct listener *l, char *err, size_t errlen)
{
	const char	*pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	int		 n, i, flags;
	struct listener	*extra;

	if (pid == NULL || nfds == NULL || atoi(pid) != (int)getpid() ||
	    (n = atoi(nfds)) < 1) {
		snprintf(err, errlen, "systemd: no sockets passed (LISTEN_FDS)");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (i == 0)
			extra = l;
		else {
			if ((extra = calloc(1, sizeof(*extra))) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			extra->addr = l->addr;
			TAILQ_INSERT_AFTER(&proxy->listeners, l, extra, entry);
		}
		extra->fd = 3 + i;
		flags = fcntl(extra->fd, F_GETFL);
		fcntl(extra->fd, F_SETFL, flags | O_NONBLOCK);
		fcntl(extra->fd, F_SETFD, FD_CLOEXEC);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

/* Bind every listener and hand it to libevent (disabled until enabled). */
int
listener_bind_all(char *err, size_t errlen)
{
	struct listener	*l;
	int		 rv;

	TAILQ_FOREACH(l, &proxy->listeners, entry) {
		if (l->fd != -1)
			continue;	/* a systemd sibling */
		switch (l->addr.kind) {
		case ADDR_UNIX:
			rv = listener_bind_unix(l, err, errlen);
			break;
		case ADDR_TCP:
			rv = listener_bind_tcp(l, err, errlen);
			break;
		default:
			rv = listener_systemd(l, err, errlen);
			break;
		}
		if (rv == -1)
			return -1;
	}
	TAILQ_FOREACH(l, &proxy->listeners, entry) {
		l->evl = evconnlistener_new(proxy->base, listener_acceptcb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		    LEV_OPT_DISABLED, 1024, l->fd);
		if (l->evl == NULL) {
			snprintf(err, errlen, "%s: listen: %s", l->addr.spec,
			    strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(l->evl, listener_errorcb);
	}
	return 0;
}

/* Start (or resume) accepting on every listener. */
void
listener_enable_all(void)
{
	struct listener	*l;

	if (proxy->stopping)
		return;
	TAILQ_FOREACH(l, &proxy->listeners, entry)
		if (l->evl != NULL)
			evconnlistener_enable(l->evl);
}

/* Stop accepting, close the sockets and remove the socket files. */
void
listener_close_all(void)
{
	struct listener	*l;

	while ((l = TAILQ_FIRST(&proxy->listeners)) != NULL) {
		TAILQ_REMOVE(&proxy->listeners, l, entry);
		if (l->evl != NULL)
			evconnlistener_free(l->evl);
		else if (l->fd != -1)
			close(l->fd);
		if (l->owns_path && unlink(l->addr.path) == -1 &&
		    errno != ENOENT)
			log_warn("%s: unlink", l->addr.path);
		free(l);
	}
}

/* A new client: hand it to the connection layer. */
static void
listener_acceptcb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	conn_accept(arg, fd, sa, salen);
}

/* accept() failed: on descriptor exhaustion pause all listeners a second. */
static void
listener_errorcb(struct evconnlistener *evl, void *arg)
{
	struct listener	*l;
	struct timeval	 tv = { 1, 0 };
	int		 e = EVUTIL_SOCKET_ERROR();

	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		log_warnx("accept: %s; pausing accept for 1s",
		    evutil_socket_error_to_string(e));
		TAILQ_FOREACH(l, &proxy->listeners, entry)
			if (l->evl != NULL)
				evconnlistener_disable(l->evl);
		evtimer_add(proxy->ev_accept_resume, &tv);
		return;
	}
	log_warnx("accept: %s", evutil_socket_error_to_string(e));
}

/* The accept pause is over. */
static void
listener_resume(evutil_socket_t fd, short ev, void *arg)
{
	listener_enable_all();
}

/* The timer event that ends an accept pause. */
struct event *
listener_resume_event(struct event_base *base)
{
	return evtimer_new(base, listener_resume, NULL);
}
