/*
 * Large reads. libevent 2.1 reads at most 4096 bytes per readable event
 * (EVBUFFER_MAX_READ); a proxy relaying gigabytes wants fewer system calls.
 * io_pull() reads more straight into a bufferevent's input; EOF and errors
 * are left for the bufferevent to find on its next read.
 */
#include "config.h"

#include <sys/uio.h>

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

#define IO_PULL_CHUNK	(128 * 1024)

/* Read up to IO_PULL_CHUNK more bytes into bev's input; bytes read, or 0. */
size_t
io_pull(struct bufferevent *bev, int is_tls)
{
	struct evbuffer		*in;
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	evutil_socket_t		 fd;
	ssize_t			 r;
	int			 n, i;

	if (is_tls || bev == NULL ||
	    !(bufferevent_get_enabled(bev) & EV_READ) ||
	    (fd = bufferevent_getfd(bev)) == -1)
		return 0;
	in = bufferevent_get_input(bev);
	/* Inside its read callback libevent keeps the input's end frozen;
	 * lift that for our read and put it back as it was. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, IO_PULL_CHUNK, v, 2);
	if (n < 1) {
		evbuffer_freeze(in, 0);
		return 0;
	}
	for (i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	r = readv(fd, iov, n);
	if (r <= 0) {
		evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		return 0;	/* EAGAIN, EOF or error: libevent will see it */
	}
	for (i = 0; i < n; i++) {
		if ((size_t)r < v[i].iov_len)
			v[i].iov_len = (size_t)r;
		r -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(in, v, n);
	evbuffer_freeze(in, 0);
	return v[0].iov_len + (n > 1 ? v[1].iov_len : 0);
}

/*
 * Send data (emptied) on bev: straight to the socket when nothing is
 * queued before it, so a whole answer usually costs one write and no change
 * of the event mask; whatever the socket does not take is queued as usual.
 */
void
io_send(struct bufferevent *bev, int is_tls, struct evbuffer *data)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	evutil_socket_t	 fd;

	if (!is_tls && evbuffer_get_length(out) == 0 &&
	    (fd = bufferevent_getfd(bev)) != -1)
		(void)evbuffer_write(data, fd);	/* errors: the bev sees them */
	if (evbuffer_get_length(data) > 0)
		evbuffer_add_buffer(out, data);
}

/* A monotonic timestamp (durations never run backwards). */
void
io_now(struct timeval *tv)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	if (tv->tv_sec == 0 && tv->tv_usec == 0)
		tv->tv_usec = 1;	/* 0 means "not started" */
}
