"""Raw HTTP on the unix socket: framing, keep-alive, pipelining, limits,
timeouts, disconnects, upstream failures, a 1 GiB stream."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import (RawConn, assert_refusal, docker_cli, fd_count, fd_list, http_req, needs_dockgate,
                      parse_one, parse_responses, ping_ok, raw, read_all, uniq,
                      wait_unix_accepts, is_standin, _cli_env, DOCKER)

CREATE_BODY = {"Image": "tiny", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}


def container_exists(engine, name):
    return docker_cli(engine.host, "inspect", "--type", "container", name).returncode == 0


# ---------------------------------------------------------------- keep-alive, pipelining

def test_pipelined_two_requests_one_send(gate):
    data = http_req("GET", "/_ping") + http_req("GET", "/v1.41/version",
                                                {"Connection": "close"})
    out = raw(gate.sock, data, read_timeout=10)
    rs = parse_responses(out)
    assert len(rs) == 2, out
    assert rs[0].status == 200 and rs[0].body == b"OK"
    assert rs[1].status == 200
    assert rs[1].json()["ApiVersion"] == "1.41"


def test_pipelined_head_and_get(gate):
    data = (http_req("HEAD", "/_ping") + http_req("GET", "/_ping") +
            http_req("GET", "/containers/json", {"Connection": "close"}))
    out = raw(gate.sock, data, read_timeout=10)
    rs = parse_responses(out, methods=["HEAD", "GET", "GET"])
    assert [r.status for r in rs] == [200, 200, 200], out
    assert rs[0].body == b"" and rs[1].body == b"OK"
    assert isinstance(rs[2].json(), list)


def test_keepalive_three_sequential(gate):
    with RawConn(gate.sock) as c:
        for path, check in (("/_ping", lambda r: r.body == b"OK"),
                            ("/v1.41/version", lambda r: "ApiVersion" in r.json()),
                            ("/v1.41/containers/json?all=1", lambda r: isinstance(r.json(), list))):
            c.send(http_req("GET", path))
            r = c.read_response()
            assert r is not None and r.status == 200, (path, r)
            assert check(r), (path, r)
        assert not c.is_closed(wait=0.5)


def test_chunked_request_body_create(engine, gate, cleanup):
    name = uniq("chunk")
    body = json.dumps(CREATE_BODY).encode()
    # several chunks, one with an extension
    chunks = [body[:10], body[10:25], body[25:]]
    payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks[:2])
    payload += b"%x;ext=1\r\n%s\r\n" % (len(chunks[2]), chunks[2]) + b"0\r\n\r\n"
    req = ("POST /v1.41/containers/create?name=%s HTTP/1.1\r\nHost: docker\r\n"
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
           "Connection: close\r\n\r\n" % name).encode() + payload
    cleanup.containers.append(name)
    rs = parse_responses(raw(gate.sock, req, read_timeout=15))
    assert rs and rs[0].status == 201, rs
    cid = rs[0].json()["Id"]
    assert engine.ok("inspect", "-f", "{{.Id}}", name) == cid
    assert engine.ok("inspect", "-f", "{{.HostConfig.NetworkMode}}", name) == "none"


def test_fake_upgrade_is_not_tunneled(gate):
    """Upgrade: tcp on a non-hijack endpoint: the next request is parsed as HTTP."""
    with RawConn(gate.sock) as c:
        c.send(http_req("GET", "/_ping", {"Connection": "Upgrade", "Upgrade": "tcp"}))
        r = c.read_response()
        assert r.status == 200 and r.body == b"OK", r
        c.send(http_req("GET", "/v1.41/version"))
        r2 = c.read_response()
        assert r2 is not None and r2.status == 200, r2
        assert "ApiVersion" in r2.json()


READONLY = {"version": 1, "default_profile": "ro",
            "profiles": {"ro": {"endpoints": {"allow": ["GET /_ping", "HEAD /_ping",
                                                        "GET /version"]}}}}


@needs_dockgate
def test_smuggled_request_after_fake_upgrade_is_decided(engine, dockgate, cleanup):
    """A denied request behind a fake Upgrade, or pipelined behind an allowed
    one, is decided on its own: 403, and the engine never sees it."""
    gate = dockgate(READONLY)
    name = uniq("smug")
    cleanup.containers.append(name)
    body = json.dumps(CREATE_BODY)
    with RawConn(gate.sock) as c:
        c.send(http_req("GET", "/_ping", {"Connection": "Upgrade", "Upgrade": "tcp"}))
        assert c.read_response().status == 200
        c.send(http_req("POST", "/v1.41/containers/create?name=" + name,
                        {"Content-Type": "application/json"}, body))
        r = c.read_response("POST")
        msg = assert_refusal(r, 403)
    # pipelined in one send
    data = (http_req("GET", "/_ping") +
            http_req("POST", "/containers/create?name=" + name,
                     {"Content-Type": "application/json"}, body) +
            http_req("GET", "/version", {"Connection": "close"}))
    rs = parse_responses(raw(gate.sock, data, read_timeout=10))
    assert rs[0].status == 200
    assert_refusal(rs[1], 403)
    if len(rs) > 2:
        assert rs[2].status == 200
    assert not container_exists(engine, name)


@needs_dockgate
def test_policy_refusal_json_and_cli_message(dockgate):
    gate = dockgate(READONLY)
    p = gate.cli("ps")
    assert p.returncode != 0
    assert b"Error response from daemon: dockgate: " in p.stderr, p.stderr
    with RawConn(gate.sock) as c:
        c.send(http_req("GET", "/containers/json"))
        msg = assert_refusal(c.read_response(), 403)
        assert "(rule " in msg, msg
        assert "endpoints" in msg, "reason should name the profile key: " + msg


@needs_dockgate
def test_keepalive_after_denial(dockgate):
    """DESIGN.md: 'DENY / malformed --> 403 / 400 / 413 JSON reply, audit line,
    keep-alive goes on'. A denied body-less request must not end the connection."""
    gate = dockgate(READONLY)
    with RawConn(gate.sock) as c:
        c.send(http_req("GET", "/containers/json"))
        r = c.read_response()
        assert_refusal(r, 403)
        assert (r.header("Connection") or "").lower() != "close", \
            "403 on a body-less GET closes the connection: %r" % r
        c.send(http_req("GET", "/_ping"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"OK"


# ---------------------------------------------------------------- timeouts

@needs_dockgate
def test_slow_loris_header_timeout(dockgate):
    gate = dockgate(extra_args=["--timeout-header", "2"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(gate.sock)
    try:
        t0 = time.time()
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: ")
        time.sleep(0.5)
        s.sendall(b"a")   # a trickle does not reset the header timer
        out = read_all(s, read_timeout=8, total_timeout=8)
        elapsed = time.time() - t0
    finally:
        s.close()
    assert elapsed < 6, "no reply or close within 6 s (elapsed %.1f)" % elapsed
    if out:
        r, _ = parse_one(out, eof=True)
        assert_refusal(r, 408)
    assert ping_ok(gate.sock)


@needs_dockgate
def test_slow_body_timeout(engine, dockgate, cleanup):
    gate = dockgate(extra_args=["--timeout-body", "2"])
    name = uniq("slowbody")
    cleanup.containers.append(name)
    body = json.dumps(CREATE_BODY).encode()
    head = ("POST /containers/create?name=%s HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                name, len(body))).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(gate.sock)
    try:
        t0 = time.time()
        s.sendall(head + body[:5])
        out = read_all(s, read_timeout=8, total_timeout=8)
        elapsed = time.time() - t0
    finally:
        s.close()
    assert elapsed < 6, "no reply or close within 6 s"
    if out:
        r, _ = parse_one(out, eof=True)
        assert_refusal(r, 408)
    assert not container_exists(engine, name)
    assert ping_ok(gate.sock)


@needs_dockgate
def test_idle_keepalive_timeout_closes(dockgate):
    gate = dockgate(extra_args=["--timeout-idle", "1"])
    with RawConn(gate.sock) as c:
        c.send(http_req("GET", "/_ping"))
        assert c.read_response().status == 200
        t0 = time.time()
        assert c.is_closed(wait=5), "idle keep-alive connection not closed"
        assert time.time() - t0 < 4.5


def test_streams_survive_short_timeouts(engine, dockgate, cleanup):
    """logs -f / events have no idle timeout even with tiny timeouts set."""
    gate = dockgate(extra_args=([] if is_standin() else
                                ["--timeout-idle", "1", "--timeout-header", "1",
                                 "--timeout-body", "1"]))
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sh", "-c",
                    "sleep 3; echo late; sleep 600")
    cleanup.containers.append(cid)
    with RawConn(gate.sock, timeout=10) as c:
        c.send(http_req("GET", "/containers/%s/logs?follow=1&stdout=1" % cid))
        data = b""
        deadline = time.time() + 10
        while b"late" not in data and time.time() < deadline:
            b = c.s.recv(4096)
            if not b:
                break
            data += b
        assert b"late" in data, data


# ---------------------------------------------------------------- limits

@needs_dockgate
def test_oversized_header(dockgate):
    gate = dockgate(extra_args=["--max-header-bytes", "8192"])
    # under the limit: fine
    ok = raw(gate.sock, http_req("GET", "/_ping", {"X-Pad": "a" * 4000, "Connection": "close"}))
    assert parse_responses(ok)[0].status == 200
    out = raw(gate.sock, http_req("GET", "/_ping", {"X-Pad": "a" * 16000}), read_timeout=5)
    r, _ = parse_one(out, eof=True)
    assert_refusal(r, 431, allowed={400})
    # many small headers
    many = {"X-H%d" % i: "v" * 50 for i in range(300)}
    out = raw(gate.sock, http_req("GET", "/_ping", many), read_timeout=5)
    r, _ = parse_one(out, eof=True)
    assert_refusal(r, 431, allowed={400})
    # an endless request line
    out = raw(gate.sock, b"GET /" + b"a" * 20000, read_timeout=5)
    r, _ = parse_one(out, eof=True)
    assert_refusal(r, 431, allowed={400, 414})
    assert ping_ok(gate.sock)


@needs_dockgate
def test_oversized_body_on_create(engine, dockgate, cleanup):
    gate = dockgate(extra_args=["--max-body-bytes", "4096"])
    name = uniq("big")
    cleanup.containers.append(name)
    body = dict(CREATE_BODY, Labels={"pad": "x" * 8000})
    out = raw(gate.sock, http_req("POST", "/containers/create?name=" + name,
                                  {"Content-Type": "application/json"}, json.dumps(body)))
    r, _ = parse_one(out, eof=True)
    assert_refusal(r, 413)
    # the same chunked
    out = raw(gate.sock, http_req("POST", "/containers/create?name=" + name,
                                  {"Content-Type": "application/json"}, json.dumps(body),
                                  chunked=True))
    r, _ = parse_one(out, eof=True)
    assert_refusal(r, 413)
    assert not container_exists(engine, name)
    # under the limit: created
    small = dict(CREATE_BODY, Labels={"pad": "x" * 1000})
    out = raw(gate.sock, http_req("POST", "/containers/create?name=" + name,
                                  {"Content-Type": "application/json", "Connection": "close"},
                                  json.dumps(small)))
    r, _ = parse_one(out, eof=True)
    assert r.status == 201, r
    assert container_exists(engine, name)


@needs_dockgate
def test_streamed_body_not_limited(engine, dockgate, cleanup, tmp_path):
    """--max-body-bytes bounds inspected JSON only; cp (PUT archive) streams."""
    gate = dockgate(extra_args=["--max-body-bytes", "4096"])
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(300000))
    gate.ok("cp", str(f), cid + ":/tmp/f.bin")
    assert engine.ok("exec", cid, "wc", "-c", "/tmp/f.bin").split()[0] == "300000"


@needs_dockgate
def test_conflicting_framing(engine, dockgate, cleanup):
    gate = dockgate()
    name = uniq("frame")
    cleanup.containers.append(name)
    body = json.dumps(CREATE_BODY).encode()
    base = ("POST /containers/create?name=%s HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\n" % name).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    cases = {
        "cl+te": base + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(
            chunked) + chunked,
        "te+cl": base + b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(
            body) + chunked,
        "two-cl": base + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (
            len(body), len(body) + 5) + body + b"xxxxx",
        "cl-list": base + b"Content-Length: %d, %d\r\n\r\n" % (len(body), len(body) + 1) + body,
        "te-gzip-chunked": base + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked,
        "te-identity": base + b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n\r\n" % len(
            body) + body,
        "cl-negative": base + b"Content-Length: -1\r\n\r\n" + body,
    }
    for label, data in cases.items():
        out = raw(gate.sock, data, read_timeout=5)
        assert out, "%s: no answer" % label
        r, _ = parse_one(out, eof=True)
        assert r.status != 201, "%s: forwarded: %r" % (label, r)
        assert_refusal(r, 400, allowed={501} if label.startswith("te-") else None)
        assert not container_exists(engine, name), label
    assert ping_ok(gate.sock)


@needs_dockgate
def test_bad_chunk_framing(engine, dockgate, cleanup):
    """A non-strict http-parser reads chunk framing leniently (any two bytes
    after chunk data, a bare CR as a line end); dockgate refuses those forms
    and accepts good framing split at every byte."""
    gate = dockgate()
    head = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    good = head + b'5\r\n{"Ima\r\nb;x=1\r\nge":"tiny"}\r\n0\r\nX-T: 1\r\n\r\n'
    with RawConn(gate.sock) as c:
        for i in range(len(good)):
            c.send(good[i:i + 1])
        r = c.read_response("POST")
        assert r.status == 201, r
        cleanup.containers.append(r.json()["Id"])
    for bad in (head + b'5\r\n{"ImaXXb\r\nge":"tiny"}\r\n0\r\n\r\n',
                head + b'5\r\n{"Ima\r\nb\rXge":"tiny"}\r\n0\r\n\r\n',
                head + b'5\r\n{"Ima\rXb\r\nge":"tiny"}\r\n0\r\n\r\n',
                head + b'5\r\n{"Ima\r\nb\r\nge":"tiny"}\r\n0\r\n\rX'):
        r, _ = parse_one(raw(gate.sock, bad, read_timeout=5), eof=True)
        assert_refusal(r, 400)


@needs_dockgate
def test_bad_request_line(dockgate):
    gate = dockgate()
    for data in (b"GARBAGE\r\n\r\n",
                 b"GET\r\n\r\n",
                 b"GET /_ping HTTP/1.1 extra\r\nHost: x\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\nBad Header Line\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
                 # bare CRs, which a non-strict http-parser takes as line
                 # ends (fuzz_http found the one that ends the head)
                 b"GET /_ping HTTP/1.1\rHost: x\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\nHost: x\r\n\rdocker\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r!",
                 b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40):
        out = raw(gate.sock, data, read_timeout=5)
        assert out, "no answer to %r" % data
        r, _ = parse_one(out, eof=True)
        assert_refusal(r, 400)
    # unclean paths (the engine would only redirect them)
    for path in ("//containers/json", "/v1.41/containers/../info", "/./_ping",
                 "/containers/%2e%2e/json"):
        out = raw(gate.sock, http_req("GET", path, {"Connection": "close"}), read_timeout=5)
        r, _ = parse_one(out, eof=True)
        assert_refusal(r, 400)
    assert ping_ok(gate.sock)


# ---------------------------------------------------------------- disconnects

def _settle_fds(pid, baseline, timeout=8):
    deadline = time.time() + timeout
    n = fd_count(pid)
    while n > baseline + 2 and time.time() < deadline:
        time.sleep(0.2)
        n = fd_count(pid)
    return n


def test_client_disconnect_mid_upload_and_mid_stream(engine, gate, cleanup):
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sh", "-c",
                    "while true; do echo chatter; sleep 0.05; done")
    cleanup.containers.append(cid)
    assert ping_ok(gate.sock)
    time.sleep(0.3)
    baseline = fd_count(gate.pid)
    for i in range(10):
        # mid-upload: promise 10 MB of archive, send 1 MB, vanish
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(gate.sock)
        s.sendall(("PUT /containers/%s/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\n"
                   "Content-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n" % (
                       cid, 10 << 20)).encode())
        try:
            s.sendall(b"\0" * (1 << 20))
        except OSError:
            pass
        s.close()
        # mid-upload, chunked
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(gate.sock)
        s.sendall(("PUT /containers/%s/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\n"
                   "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "10000\r\n" % cid).encode() + b"\0" * 30000)
        s.close()
        # mid-stream: logs follow
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(gate.sock)
        s.settimeout(10)
        s.sendall(http_req("GET", "/containers/%s/logs?follow=1&stdout=1&tail=all" % cid))
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got
        s.close()
        # mid-request-head
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(gate.sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHo")
        s.close()
    assert ping_ok(gate.sock)
    n = _settle_fds(gate.pid, baseline)
    assert n <= baseline + 2, "fd leak: %d open fds, baseline %d: %s\n%s" % (
        n, baseline, fd_list(gate.pid), gate.log_text()[-3000:])
    assert gate.alive()
    # the container is unharmed; a following exec works
    assert engine.ok("exec", cid, "echo", "ok") == "ok"


def test_client_close_during_quiet_stream(engine, gate):
    """A client that closes an endless stream on which nothing is being sent
    (/events with no events, logs -f of a silent container) must be noticed:
    the client and engine connections are released at once, not when the
    engine next writes. Otherwise open-and-close loops exhaust fds and
    --max-connections."""
    assert ping_ok(gate.sock)
    time.sleep(0.3)
    baseline = fd_count(gate.pid)
    for i in range(10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(gate.sock)
        s.settimeout(10)
        s.sendall(http_req("GET", "/events?filters=%7B%22type%22%3A%5B%22volume%22%5D%7D"))
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got
        s.close()
    n = _settle_fds(gate.pid, baseline, timeout=5)
    if n > baseline + 2:
        # diagnose: does the next event release them?
        name = uniq("evtrigger")
        engine.ok("volume", "create", name)
        engine.ok("volume", "rm", name)
        after = _settle_fds(gate.pid, baseline, timeout=3)
        raise AssertionError(
            "closed /events clients not noticed: %d fds open, baseline %d; after an event: %d"
            % (n, baseline, after))


def test_client_disconnect_mid_hijack(engine, gate, cleanup):
    """Close the client side of an exec hijack; the daemon goes on serving."""
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    baseline = fd_count(gate.pid)
    for i in range(5):
        p = subprocess.Popen([DOCKER, "exec", "-i", cid, "cat"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_cli_env(gate.host))
        p.stdin.write(b"x\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"x\n"
        p.kill()
        p.wait()
    assert ping_ok(gate.sock)
    n = _settle_fds(gate.pid, baseline)
    assert n <= baseline + 2, "fd leak: %d open fds, baseline %d: %s\n%s" % (
        n, baseline, fd_list(gate.pid), gate.log_text()[-3000:])


# ---------------------------------------------------------------- upstream failures

@needs_dockgate
def test_engine_unreachable_then_back(engine, dockgate, tmp_path):
    up = str(tmp_path / "up.sock")
    gate = dockgate(upstream=up)
    # nothing at the path
    for data in (http_req("GET", "/_ping", {"Connection": "close"}),
                 http_req("GET", "/containers/json", {"Connection": "close"})):
        r, _ = parse_one(raw(gate.sock, data, read_timeout=10), eof=True)
        assert_refusal(r, 502)
    p = gate.cli("version")
    assert p.returncode != 0
    # the relay appears
    relay = subprocess.Popen(["socat", "-t", "30", "UNIX-LISTEN:%s,fork,unlink-early" % up,
                              "UNIX-CONNECT:%s" % engine.sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        assert wait_unix_accepts(up, 10) is None
        assert ping_ok(gate.sock)
        assert gate.ok("run", "--rm", "--network", "none", "tiny", "echo", "back") == "back"
    finally:
        # The "engine" goes away for good: the relay and every connection
        # its children hold (dockgate may keep idle ones for reuse).
        try:
            os.killpg(relay.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        relay.wait(10)
        time.sleep(0.5)
    # a stale socket file with no listener: refused -> 502 again
    if not os.path.exists(up):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(up)
        s.close()
    r, _ = parse_one(raw(gate.sock, http_req("GET", "/_ping", {"Connection": "close"}),
                         read_timeout=10), eof=True)
    assert_refusal(r, 502)


@needs_dockgate
def test_engine_dies_mid_stream(engine, dockgate, tmp_path, cleanup):
    """The engine connection drops during a stream: the client sees the end
    (close), the daemon keeps serving."""
    up = str(tmp_path / "up.sock")
    relay = subprocess.Popen(["socat", "-t", "30", "UNIX-LISTEN:%s,fork,unlink-early" % up,
                              "UNIX-CONNECT:%s" % engine.sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        assert wait_unix_accepts(up, 10) is None
        gate = dockgate(upstream=up)
        with RawConn(gate.sock, timeout=10) as c:
            c.send(http_req("GET", "/events"))
            c._fill()
            assert c.buf.startswith(b"HTTP/1.1 200"), c.buf
            os.killpg(relay.pid, signal.SIGKILL)   # relay and its children
            relay.wait(10)
            assert c.is_closed(wait=10)
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGKILL)
            relay.wait(10)
    r, _ = parse_one(raw(gate.sock, http_req("GET", "/_ping", {"Connection": "close"}),
                         read_timeout=10), eof=True)
    assert_refusal(r, 502)


# ---------------------------------------------------------------- big streams

@pytest.mark.timeout(240)
def test_1gib_streamed_response(engine, gate, cleanup):
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sh", "-c",
                    "dd if=/dev/zero of=/big bs=1M count=1024 2>/dev/null && touch /done; "
                    "sleep 600")
    cleanup.containers.append(cid)
    deadline = time.time() + 60
    while engine.cli("exec", cid, "ls", "/done").returncode != 0:
        assert time.time() < deadline, "dd did not finish"
        time.sleep(0.5)

    def count(sock):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(sock)
        s.sendall(http_req("GET", "/containers/%s/archive?path=/big" % cid,
                           {"Connection": "close"}))
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            assert b, buf
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        chunked = b"chunked" in head.lower()
        n = len(rest)
        tailbuf = rest[-16:]
        view = bytearray(1 << 20)
        t0 = time.time()
        while True:
            k = s.recv_into(view)
            if not k:
                break
            n += k
            tailbuf = (tailbuf + bytes(view[max(0, k - 16):k]))[-16:]
        s.close()
        return n, chunked, tailbuf, time.time() - t0

    dn, dchunked, dtail, dt = count(engine.sock)
    vn, vchunked, vtail, vt = count(gate.sock)
    assert dn > 1 << 30
    assert vn == dn, "through the gate %d bytes, direct %d" % (vn, dn)
    assert vtail == dtail
    assert vt < 90, "1 GiB through the gate took %.1f s (direct %.1f s)" % (vt, dt)

    # and 1 GiB through an exec hijack (the tunnel)
    t0 = time.time()
    p = subprocess.run("docker exec %s cat /big | wc -c" % cid, shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=_cli_env(gate.host), timeout=150)
    assert p.stdout.strip() == str(1 << 30).encode(), p.stderr
    assert time.time() - t0 < 120


# ---------------------------------------------------------------- lifecycle

@needs_dockgate
def test_sigterm_clean_exit(dockgate):
    gate = dockgate()
    assert ping_ok(gate.sock)
    t0 = time.time()
    rc = gate.stop(timeout=15)
    assert rc == 0, "exit status %r after SIGTERM" % rc
    assert time.time() - t0 < 10
    assert not os.path.exists(gate.sock), "socket file left behind"


@needs_dockgate
def test_stale_socket_replaced(dockgate, tmp_path):
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    gate = dockgate(listen=path)
    assert ping_ok(path)


@needs_dockgate
def test_sigterm_with_idle_keepalive_connection(dockgate):
    """An idle keep-alive connection has nothing in flight: SIGTERM exits promptly."""
    gate = dockgate()
    c = RawConn(gate.sock)
    try:
        c.send(http_req("GET", "/_ping"))
        assert c.read_response().status == 200
        t0 = time.time()
        rc = gate.stop(timeout=15)
        took = time.time() - t0
    finally:
        c.close()
    assert rc == 0
    assert took < 3, "SIGTERM with one idle keep-alive connection took %.1f s" % took


@needs_dockgate
def test_sigterm_with_open_stream_is_bounded(dockgate):
    """An endless stream (/events) is in flight: the exit wait is bounded."""
    gate = dockgate()
    c = RawConn(gate.sock)
    try:
        c.send(http_req("GET", "/events"))
        c._fill()
        assert c.buf.startswith(b"HTTP/1.1 200")
        t0 = time.time()
        rc = gate.stop(timeout=20)
        took = time.time() - t0
        assert c.is_closed(wait=2)
    finally:
        c.close()
    assert rc == 0
    assert took < 15, "SIGTERM with an open /events stream took %.1f s" % took


def _exec_hijack_then_linger(engine, sock, cid):
    """exec start over a raw hijack; read to EOF; return whether the
    connection still accepts writes afterwards (half-open) plus the output."""
    body = json.dumps({"AttachStdout": True, "AttachStderr": True, "Cmd": ["echo", "hijacked"]})
    with RawConn(sock) as c:
        c.send(http_req("POST", "/v1.41/containers/%s/exec" % cid,
                        {"Content-Type": "application/json"}, body))
        r = c.read_response("POST")
        assert r.status == 201, r
        eid = r.json()["Id"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    try:
        s.sendall(http_req("POST", "/v1.41/exec/%s/start" % eid,
                           {"Content-Type": "application/json", "Connection": "Upgrade",
                            "Upgrade": "tcp"}, json.dumps({"Detach": False, "Tty": False})))
        data = read_all(s, read_timeout=10, total_timeout=15)
        time.sleep(0.5)
        writable = True
        try:
            for _ in range(3):
                s.send(b"x")
                time.sleep(0.1)
        except OSError:
            writable = False
        return data, writable, s
    except BaseException:
        s.close()
        raise


def test_hijack_closed_by_engine_releases_connection(engine, gate, cleanup):
    """When the engine ends an exec hijack it closes the connection: a client
    that keeps its end open (SDK 5.0 exec_run does) must not pin the daemon's
    connection, and sees the same as straight at the engine."""
    cid = engine.ok("run", "-d", "--network", "none", "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    ddata, dwritable, ds = _exec_hijack_then_linger(engine, engine.sock, cid)
    ds.close()
    assert b"hijacked" in ddata
    assert ping_ok(gate.sock)
    time.sleep(0.3)
    baseline = fd_count(gate.pid)
    vdata, vwritable, vs = _exec_hijack_then_linger(engine, gate.sock, cid)
    try:
        assert b"hijacked" in vdata and vdata.split(b"\r\n\r\n", 1)[1] == \
            ddata.split(b"\r\n\r\n", 1)[1]
        n = _settle_fds(gate.pid, baseline, timeout=3)
        assert n <= baseline + 1, (
            "engine closed the exec hijack but the daemon still holds the connection "
            "(%d fds, baseline %d) while the client keeps its end open" % (n, baseline))
        assert vwritable == dwritable, "client can still write after the engine closed " \
            "(direct: %s, via: %s)" % (dwritable, vwritable)
    finally:
        vs.close()
