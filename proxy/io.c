/*
 * Socket I/O around libevent's bufferevents, for plain (non-TLS) sockets.
 *
 * Reads: libevent 2.1 reads at most 4096 bytes per readable event
 * (EVBUFFER_MAX_READ), each read preceded by an ioctl(FIONREAD).
 * io_own_reads() gives a socket bufferevent a read handler of our own on the
 * same persistent read event: one read() of up to IO_READ_CHUNK, no ioctl,
 * then the bufferevent's callbacks as libevent would call them (the read
 * callback; EOF and errors disable reading and go to the event callback),
 * with the input bounded without libevent's read watermark (whose callback
 * re-armed the read event at every change of the input). Enabling,
 * disabling and deferred freeing stay libevent's. io_pull() reads more
 * straight into a bufferevent's input while relaying; EOF and errors are
 * left for the read event to find.
 *
 * Writes: io_send() writes straight to the socket when nothing is queued;
 * io_enable_write_idle() lets a new connection write without first arming
 * (and, on the first wakeup, disarming) a write event for an empty buffer.
 *
 * Engine writes wait for the end of the event loop's turn (io_send_engine(),
 * io_flush()): writing wakes the engine, which on a shared CPU takes the CPU
 * from us at once; holding the writes lets one turn decide every request
 * that came in before the engine runs, instead of one request per switch.
 */
#include "config.h"

#include <sys/uio.h>

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

#include <event2/bufferevent_struct.h>

#define IO_PULL_CHUNK	(128 * 1024)
#define IO_READ_CHUNK	(16 * 1024)

static char	 io_rbuf[IO_READ_CHUNK];	/* io_readcb()'s landing place */

static void	 io_readcb(evutil_socket_t, short, void *);

/*
 * The read event of a bufferevent under io_own_reads(): what libevent's
 * bufferevent_readcb does, minus the ioctl and the 4 KiB cap. At most
 * DOCKGATE_HIGH_WATER bytes wait unread in the input (a client's pipelined
 * requests, say): at the bound the read event is taken off until reading
 * is enabled again (bufferevent_enable(), io_enable_read()), which every
 * path that goes on consuming the input does first.
 */
static void
io_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent	*bev = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	bufferevent_data_cb	 readcb;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;
	size_t			 len, want = IO_READ_CHUNK;
	ssize_t			 r;
	int			 e;

	if ((len = evbuffer_get_length(in)) >= DOCKGATE_HIGH_WATER) {
		event_del(&bev->ev_read);
		return;
	}
	if (DOCKGATE_HIGH_WATER - len < want)
		want = DOCKGATE_HIGH_WATER - len;
	/* Into a shared buffer, then appended: the input gets a chain sized
	 * to what came (a small request stays in malloc's fast caches). */
	if ((r = read(fd, io_rbuf, want)) > 0) {
		evbuffer_unfreeze(in, 0);
		e = evbuffer_add(in, io_rbuf, (size_t)r);
		evbuffer_freeze(in, 0);
		if (e == -1) {
			r = -1;
			errno = ENOMEM;
		}
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	bufferevent_getcb(bev, &readcb, NULL, &eventcb, &cbarg);
	if (r > 0) {
		/* Last: the callback may free bev (libevent defers that
		 * while this event's callback runs). */
		if (readcb != NULL)
			readcb(bev, cbarg);
		return;
	}
	e = errno;
	bufferevent_disable(bev, EV_READ);
	errno = e;
	if (eventcb != NULL)
		eventcb(bev, BEV_EVENT_READING |
		    (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), cbarg);
}

/* Make sure bev reads (again after the input bound); cheap when it does. */
void
io_enable_read(struct bufferevent *bev, int is_tls)
{
	if (is_tls || !(bufferevent_get_enabled(bev) & EV_READ) ||
	    !event_pending(&bev->ev_read, EV_READ, NULL))
		bufferevent_enable(bev, EV_READ);
}

/*
 * Take over the reads of a plain socket bufferevent (see above). Call it
 * once the bufferevent has its socket and before reading is enabled (after
 * bufferevent_socket_connect() for an outgoing one).
 */
void
io_own_reads(struct bufferevent *bev)
{
	evutil_socket_t	 fd = bufferevent_getfd(bev);
	int		 pending;

	if (fd == -1)
		return;
	if ((pending = event_pending(&bev->ev_read, EV_READ, NULL)))
		event_del(&bev->ev_read);
	event_assign(&bev->ev_read, bufferevent_get_base(bev), fd,
	    EV_READ | EV_PERSIST | EV_FINALIZE, io_readcb, bev);
	if (pending)
		event_add(&bev->ev_read, NULL);
}

/*
 * Allow writes on a new socket bufferevent whose output is empty without
 * arming its write event: libevent arms it as soon as data is queued, and
 * disarms an armed one the first time it fires with nothing to write, so
 * this is the state it would reach after one useless wakeup and two
 * epoll_ctl calls.
 */
void
io_enable_write_idle(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		bufferevent_enable(bev, EV_WRITE);
	else
		bev->enabled |= EV_WRITE;
}

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

/*
 * Send a decided request's bytes (emptied) to the engine at the end of this
 * loop turn. They wait in the output with writing held (nothing is armed:
 * the output was empty), so later body bytes of the same turn join them;
 * a connection libevent is already writing to, or that is not connected or
 * is TLS, takes the usual io_send() path.
 */
void
io_send_engine(struct conn *c, struct evbuffer *data)
{
	struct bufferevent	*bev = c->up;
	struct evbuffer		*out = bufferevent_get_output(bev);

	if (!c->flush_queued && (c->up_tls || !c->up_ready ||
	    evbuffer_get_length(out) > 0 ||
	    event_pending(&bev->ev_write, EV_WRITE, NULL))) {
		io_send(bev, c->up_tls || !c->up_ready, data);
		return;
	}
	if (!c->flush_queued) {
		bev->enabled &= ~EV_WRITE;
		TAILQ_INSERT_TAIL(&proxy->flushq, c, flush_entry);
		c->flush_queued = 1;
	}
	evbuffer_add_buffer(out, data);
}

/* The engine connection goes away: forget its held write. */
void
io_unqueue(struct conn *c)
{
	if (!c->flush_queued)
		return;
	TAILQ_REMOVE(&proxy->flushq, c, flush_entry);
	c->flush_queued = 0;
}

/*
 * The loop's turn is over: write what io_send_engine() held. What the
 * socket does not take is left to libevent; a drained output calls the
 * write callback as libevent's own write would (a paused upload resumes).
 */
void
io_flush(void)
{
	struct conn		*c;
	struct bufferevent	*bev;
	struct evbuffer		*out;
	bufferevent_data_cb	 writecb;
	void			*cbarg;

	while ((c = TAILQ_FIRST(&proxy->flushq)) != NULL) {
		io_unqueue(c);
		bev = c->up;
		out = bufferevent_get_output(bev);
		evbuffer_unfreeze(out, 1);
		(void)evbuffer_write(out, bufferevent_getfd(bev));
		evbuffer_freeze(out, 1);	/* errors: the bev sees them */
		if (evbuffer_get_length(out) > 0) {
			bufferevent_enable(bev, EV_WRITE);
			continue;
		}
		io_enable_write_idle(bev);
		bufferevent_getcb(bev, NULL, &writecb, NULL, &cbarg);
		if (writecb != NULL)
			writecb(bev, cbarg);
	}
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
