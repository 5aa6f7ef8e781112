"""Fault and load tests: descriptor exhaustion, a client that never reads a
large response, 100 parallel `docker run`, 2,000 idle connections.

Every wait is a poll with a generous deadline (the machine is shared); the
bounds asserted are about leaks and unbounded growth, never about speed.
"""

import concurrent.futures
import errno
import os
import re
import select
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (docker_cli, fd_count, fd_list, http_req, needs_dockgate, parse_responses,
                      ping_ok, raw, read_all, uniq)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return -1


def wait_for(pred, timeout, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


# dockgate keeps up to 32 idle engine connections for reuse (upstream.c,
# UPSTREAM_POOL_MAX): after a burst the fd count may legitimately stay up to
# that many above the baseline. Client-side descriptors must all be gone.
UPSTREAM_POOL_MAX = 32


def client_fds(dg):
    """How many accepted client connections the daemon holds: its sockets whose
    /proc/net/unix entry is bound to the listener path and connected."""
    inodes = set()
    for link in fd_list(dg.pid):
        m = re.search(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    n = 0
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for ln in f:
                parts = ln.split()
                # Num RefCount Protocol Flags Type St Inode [Path]
                if len(parts) >= 8 and parts[7] == dg.sock and parts[5] == "03" \
                        and parts[6] in inodes:
                    n += 1
    except OSError:
        pass
    return n


def wait_fds_back(dg, baseline, timeout=30, slack=2):
    """Poll until no client connection is left and the fd count is back to
    baseline (+ slack, + at most the idle engine-connection pool)."""
    ok = wait_for(lambda: client_fds(dg) == 0 and
                  0 <= fd_count(dg.pid) <= baseline + UPSTREAM_POOL_MAX + slack, timeout)
    assert ok, ("descriptors did not return to baseline %d (+%d pooled): now %d, %d client "
                "connections:\n%s" % (baseline, UPSTREAM_POOL_MAX, fd_count(dg.pid),
                                      client_fds(dg), "\n".join(fd_list(dg.pid))))


def settled_fd_baseline(dg):
    """The fd count once a first request has been served (lazily opened
    descriptors, e.g. a pooled upstream connection, are then in place)."""
    assert wait_for(lambda: ping_ok(dg.sock, timeout=10), 30), "dockgate does not answer _ping"
    time.sleep(0.5)
    return fd_count(dg.pid)


def unix_connect(path, timeout=10.0):
    """Connect, waiting (bounded) while the listen backlog is full (EAGAIN)."""
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(max(0.5, deadline - time.time()))
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK) or time.time() > deadline:
                raise
            time.sleep(0.02)


def peer_closed(s):
    """Non-blocking: True if the peer closed (EOF/reset) or sent something."""
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(p.poll(0))


# ---------------------------------------------------------------- fd exhaustion

@needs_dockgate
@pytest.mark.timeout(90)
def test_fd_exhaustion_pauses_accept_and_recovers(dockgate):
    if not shutil.which("prlimit"):
        pytest.fail("prlimit missing: apt-get install util-linux")
    dg = dockgate()
    base = settled_fd_baseline(dg)
    assert base < 40, "unexpectedly many fds at start (%d): %s" % (base, fd_list(dg.pid))
    subprocess.run(["prlimit", "--pid", str(dg.pid), "--nofile=64:64"], check=True)

    clients = []
    try:
        # more clients than the daemon has descriptors for; the excess waits in
        # the listen backlog (connect still succeeds there)
        for _ in range(100):
            try:
                clients.append(unix_connect(dg.sock, timeout=5))
            except OSError:
                break
        assert len(clients) > 64 - base, "could only connect %d clients" % len(clients)
        assert wait_for(lambda: "pausing accept" in dg.log_text(), 30), \
            "no 'pausing accept' in the log:\n" + dg.log_text()[-3000:]
        assert dg.alive(), "dockgate died on EMFILE:\n" + dg.log_text()[-3000:]
        # stays at (or below) its limit; keeps running through several pauses
        time.sleep(2.5)
        assert dg.alive()
        assert fd_count(dg.pid) <= 64
    finally:
        for s in clients:
            s.close()
    # after the extra clients are gone, new clients are served again
    assert wait_for(lambda: ping_ok(dg.sock, timeout=10), 45), \
        "not served after the clients closed:\n" + dg.log_text()[-3000:]
    for _ in range(5):
        assert ping_ok(dg.sock, timeout=10)
    wait_fds_back(dg, base, timeout=45)
    assert dg.alive()


# ---------------------------------------------------------------- slow reader

@pytest.mark.timeout(170)
def test_client_that_never_reads_a_large_response(engine, dockgate, cleanup):
    dg = dockgate()
    name = uniq("bigexport")
    cleanup.containers.append(name)
    p = docker_cli(engine.host, "run", "--name", name, "--network", "none", "tiny",
                   "dd", "if=/dev/zero", "of=/big", "bs=1048576", "count=200", timeout=120)
    assert p.returncode == 0, p.stderr
    base_fds = settled_fd_baseline(dg)
    base_rss = rss_kb(dg.pid)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(dg.sock)
    try:
        s.sendall(http_req("GET", "/v1.41/containers/%s/export" % name))
        # the engine starts streaming; the daemon must stop reading it once the
        # client's buffers are full
        samples = []
        t_end = time.time() + 8
        while time.time() < t_end:
            samples.append(rss_kb(dg.pid))
            time.sleep(0.25)
        # a few more seconds: still no growth
        peak = max(samples)
        growth_mb = (peak - base_rss) / 1024.0
        assert growth_mb < 64, "RSS grew %.1f MB with a non-reading client (samples kB: %s)" % (
            growth_mb, samples)
        print("non-reading client: RSS base %d kB, peak %d kB" % (base_rss, peak))
        assert dg.alive()
        # the response really is flowing (not refused): there is data to read
        s.settimeout(10)
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
    finally:
        s.close()
    assert wait_for(lambda: ping_ok(dg.sock, timeout=10), 30)
    wait_fds_back(dg, base_fds, timeout=45)
    assert dg.alive()


# ---------------------------------------------------------------- 100 parallel runs

@pytest.mark.timeout(170)
def test_100_parallel_docker_run(engine, dockgate):
    dg = dockgate()
    base = settled_fd_baseline(dg)

    def one(i):
        t0 = time.time()
        try:
            p = docker_cli(dg.host, "run", "--rm", "--network", "none", "tiny", "true",
                           timeout=120)
            return i, p.returncode, p.stderr.decode(errors="replace")[-500:], time.time() - t0
        except subprocess.TimeoutExpired as e:
            return i, "timeout", str(e), time.time() - t0

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
        results = list(ex.map(one, range(100)))
    elapsed = time.time() - t0
    errors = [r for r in results if r[1] != 0]
    assert not errors, "%d of 100 runs failed (%.0f s): %s" % (len(errors), elapsed, errors[:5])
    assert dg.alive()
    print("100 runs in %.1f s (slowest %.1f s)" % (elapsed, max(r[3] for r in results)))
    # every container removed, no fd left behind
    wait_fds_back(dg, base, timeout=45)
    assert ping_ok(dg.sock, timeout=10)


# ---------------------------------------------------------------- 2,000 idle connections

@pytest.mark.timeout(120)
def test_2000_idle_connections(dockgate):
    n = 2000
    dg = dockgate()   # default --max-connections 4096; default header timeout 30 s
    base = settled_fd_baseline(dg)
    conns = []
    try:
        t0 = time.time()
        for _ in range(n):
            conns.append(unix_connect(dg.sock, timeout=20))
        # every one accepted by the daemon (not left in the backlog, not refused)
        ok = wait_for(lambda: client_fds(dg) >= n, 20, interval=0.5)
        assert ok, "only %d of %d connections accepted (fds %d, base %d)" % (
            client_fds(dg), n, fd_count(dg.pid), base)
        # none was answered or closed (a refusal would be a 503 + close)
        closed = [i for i, s in enumerate(conns) if peer_closed(s)]
        assert not closed, "%d idle connections were answered/closed, e.g. #%d: %r" % (
            len(closed), closed[0], conns[closed[0]].recv(300))
        assert time.time() - t0 < 25, "too slow to stay under the 30 s header timeout"
        # the daemon still serves new clients while holding them
        assert ping_ok(dg.sock, timeout=10)
        # and the held ones are usable: a request on a sample of them
        for s in conns[::200]:
            s.sendall(http_req("GET", "/_ping", {"Connection": "close"}))
        for s in conns[::200]:
            rs = parse_responses(read_all(s, read_timeout=10, total_timeout=20))
            assert rs and rs[0].status == 200 and rs[0].body == b"OK", rs
    finally:
        for s in conns:
            s.close()
    wait_fds_back(dg, base, timeout=45)
    assert dg.alive()
