"""Helpers for test_policy.py: unix-socket HTTP, engine snapshots (what exists
straight at the engine, no dockgate), and the denial checks."""

import http.client
import json
import re
import socket

from conftest import http_req, parse_responses, raw

DENIAL_RE = re.compile(r"Error response from daemon: dockgate: (.*) \(rule ([a-z_-]+)\)")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:600])


def api(sock, method, path, body=None, headers=None, timeout=60):
    """One request with well-formed framing (http.client). `body`: dict/list
    (JSON), str/bytes (sent as is), or None."""
    hdrs = dict(headers or {})
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
    elif body is not None:
        data = body
    if data is None and method in ("POST", "PUT"):
        data = b""
    c = UnixHTTP(sock, timeout)
    try:
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        b = r.read()
        return Resp(r.status, dict((k.lower(), v) for k, v in r.getheaders()), b)
    finally:
        c.close()


def api_json(sock, method, path, body=None):
    r = api(sock, method, path, body)
    assert 200 <= r.status < 300, (method, path, r)
    return r.json()


def raw_one(sock, method, path, headers=None, body=b"", chunks=None, read_timeout=10):
    """A request built byte by byte, `Connection: close`; returns the first
    response (conftest parser) or None. `chunks`: list of bytes sent as
    Transfer-Encoding: chunked, one chunk each."""
    h = {"Connection": "close"}
    h.update(headers or {})
    if chunks is not None:
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: docker"]
        lines += ["%s: %s" % kv for kv in h.items()]
        lines.append("Transfer-Encoding: chunked")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        for c in chunks:
            data += b"%x\r\n%s\r\n" % (len(c), c)
        data += b"0\r\n\r\n"
    else:
        data = http_req(method, path, h, body)
    out = raw(sock, data, read_timeout=read_timeout)
    rs = parse_responses(out)
    return rs[0] if rs else None


# ------------------------------------------------------------------ engine state

def snapshot(engine):
    """Everything a request could have created, asked straight at the engine."""
    s = engine.sock
    cs = {}
    for c in api_json(s, "GET", "/containers/json?all=1"):
        cs[c["Id"]] = c.get("State")
    vols = api_json(s, "GET", "/volumes").get("Volumes") or []
    nets = {n["Id"]: n["Name"] for n in api_json(s, "GET", "/networks")}
    ims = {}
    for i in api_json(s, "GET", "/images/json?all=1"):
        ims[i["Id"]] = tuple(sorted(i.get("RepoTags") or [])) + tuple(
            sorted(i.get("RepoDigests") or []))
    return {"containers": cs, "volumes": sorted(v["Name"] for v in vols),
            "networks": nets, "images": ims}


def assert_unchanged(before, after, what=""):
    diffs = []
    for k in before:
        if before[k] != after[k]:
            if isinstance(before[k], dict):
                added = {x: after[k][x] for x in after[k] if x not in before[k]}
                gone = [x for x in before[k] if x not in after[k]]
                changed = {x: (before[k][x], after[k][x]) for x in before[k]
                           if x in after[k] and before[k][x] != after[k][x]}
                diffs.append("%s: added %r removed %r changed %r" % (k, added, gone, changed))
            else:
                diffs.append("%s: %r -> %r" % (k, before[k], after[k]))
    assert not diffs, "the engine changed%s: %s" % (
        " after " + what if what else "", "; ".join(diffs))


def image_present(engine, ref):
    return api(engine.sock, "GET", "/images/%s/json" % ref).status == 200


def inspect_container(engine, cid):
    return api_json(engine.sock, "GET", "/containers/%s/json" % cid)


def check_cli_denial(proc, rule=None):
    """The docker CLI's view of a dockgate refusal; returns (reason, rule)."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, "expected a refusal, the CLI succeeded:\nstdout: %s\nstderr: %s" % (
        proc.stdout[-2000:], err[-2000:])
    m = DENIAL_RE.search(err)
    assert m, "no dockgate refusal in the CLI's stderr:\n%s" % err[-3000:]
    if rule is not None:
        assert m.group(2) == rule, "rule %r, expected %r: %s" % (m.group(2), rule, m.group(0))
    return m.group(1), m.group(2)


def check_refusal(resp, status, rule=None):
    """A dockgate refusal at the HTTP level; returns (reason, rule)."""
    assert resp is not None, "no response (closed without an answer)"
    assert resp.status == status, "expected %d, got %r" % (status, resp)
    ct = (resp.header("Content-Type") if hasattr(resp, "header")
          else resp.headers.get("content-type")) or ""
    assert ct.split(";")[0].strip().lower() == "application/json", resp
    msg = json.loads(resp.body.decode())["message"]
    assert msg.startswith("dockgate: "), msg
    m = re.search(r"\(rule ([a-z_-]+)\)$", msg)
    assert m, msg
    if rule is not None:
        assert m.group(1) == rule, "rule %r, expected %r: %s" % (m.group(1), rule, msg)
    return msg, m.group(1)


def exec_creates(engine, cid, since):
    """How many execs the engine created in container `cid` since `since`
    (events: finished execs leave no trace in ExecIDs)."""
    import urllib.parse
    until = "%.3f" % (__import__("time").time() + 0.5)
    filters = urllib.parse.quote(json.dumps({"container": [cid], "type": ["container"]}))
    r = api(engine.sock, "GET", "/events?since=%.6f&until=%s&filters=%s" % (since, until,
                                                                          filters))
    assert r.status == 200, r
    n = 0
    for ln in r.body.decode().splitlines():
        if ln.strip():
            ev = json.loads(ln)
            if ev.get("Action", "").startswith("exec_create"):
                n += 1
    return n
