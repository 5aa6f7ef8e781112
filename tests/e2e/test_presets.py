"""Built-in presets (`"extends": "preset:NAME"`) replayed against a real engine.

Each file in tests/e2e/presets/ is the request sequence one well-known tool
sends to the engine API, transcribed from the tool's source (the file names
it), in the tool's own order, API version prefixes, query strings and body
shapes:

  "preset":   the preset under test
  "profile":  keys added to the profile that extends the preset (what a
              user would set, e.g. the trusted registry)
  "fixtures": objects made straight on the engine first (containers,
              networks, a disposable image); placeholders ${name.id},
              ${name.name}, ${name.image} refer to them
  "session":  the tool's calls; each must get the expected status THROUGH
              dockgate. "save" keeps a field of the JSON answer as ${var}
              (${made_*} are removed afterwards); "keep" keeps the whole
              answer for a later "recreate" (watchtower's create body: the
              old container's Config, HostConfig and one network);
              "stream" reads the head of an endless answer only; "hijack"
              expects 101 and keeps the session open under a name until a
              later {"close": name} step reads it to EOF ({"send": name}
              writes to it first, as stdin); "retry" repeats
              a poll (seconds) until its checks hold; "tar" sends a
              build context; "json" checks fields of the answer (dotted
              paths); "absent" lists strings the answer must not contain
  "refused":  calls just outside the preset, each refused by dockgate
              (JSON refusal, status as given) and with nothing changed

The session must pass with zero refusals logged, so a preset that is too
narrow fails here; the refused list shows it is not too wide.
"""

import io
import json
import os
import re
import socket
import tarfile
import time

import pytest

from conftest import (assert_refusal, http_req, needs_dockgate, parse_one,
                      uniq)

pytestmark = needs_dockgate

HERE = os.path.dirname(os.path.abspath(__file__))
SESSIONS = sorted(f[:-5] for f in os.listdir(os.path.join(HERE, "presets"))
                  if f.endswith(".json"))


def load_session(name):
    with open(os.path.join(HERE, "presets", name + ".json")) as f:
        return json.load(f)


def subst(v, env):
    """Replace ${x} in every string of v (strings, lists, dicts)."""
    if isinstance(v, str):
        def rep(m):
            if m.group(1) not in env:
                raise KeyError("session uses ${%s} before it is set" % m.group(1))
            return str(env[m.group(1)])
        return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", rep, v)
    if isinstance(v, list):
        return [subst(x, env) for x in v]
    if isinstance(v, dict):
        return {subst(k, env): subst(x, env) for k, x in v.items()}
    return v


def dotted(doc, path):
    cur = doc
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise AssertionError("answer has no %s: %s" % (path, json.dumps(doc)[:400]))
    return cur


def read_head(s, timeout=15.0):
    """Read until the end of a response head; return (head bytes, rest)."""
    buf = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.1, deadline - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def read_to_eof(s, rest=b"", timeout=20.0):
    buf = rest
    deadline = time.time() + timeout
    while time.time() < deadline:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def tar_of(files):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w") as t:
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


class Replay:
    def __init__(self, sock, env):
        self.sock = sock
        self.env = env
        self.held = {}

    def close(self):
        for s, _ in self.held.values():
            s.close()
        self.held.clear()

    def request_bytes(self, step):
        headers = dict(subst(step.get("headers", {}), self.env))
        body = b""
        if "tar" in step:
            body = tar_of(subst(step["tar"], self.env))
            headers.setdefault("Content-Type", "application/x-tar")
        elif "recreate" in step:
            # What watchtower sends: the old container's Config and
            # HostConfig from its inspect, one of its networks.
            doc = self.env["doc:" + step["recreate"]]
            b = dict(doc["Config"])
            b["HostConfig"] = doc["HostConfig"]
            nets = doc["NetworkSettings"]["Networks"] or {}
            first = sorted(nets)[:1]
            b["NetworkingConfig"] = {"EndpointsConfig": {k: nets[k] for k in first}}
            body = json.dumps(b).encode()
            headers.setdefault("Content-Type", "application/json")
        elif "body" in step:
            body = json.dumps(subst(step["body"], self.env)).encode()
            headers.setdefault("Content-Type", "application/json")
        if step.get("hijack"):
            headers.setdefault("Connection", "Upgrade")
            headers.setdefault("Upgrade", "tcp")
        else:
            headers.setdefault("Connection", "close")
        return http_req(step["method"], subst(step["path"], self.env), headers, body)

    def run(self, step):
        """One call; returns (status, headers dict, body bytes, json or None)."""
        if "send" in step:
            s, rest = self.held[step["send"]]
            s.sendall(subst(step["data"], self.env).encode())
            if step.get("shut_wr"):
                s.shutdown(socket.SHUT_WR)
            return None
        if "close" in step:
            s, rest = self.held.pop(step["close"])
            out = read_to_eof(s, rest)
            s.close()
            for want in step.get("output", []):
                assert want.encode() in out, "%s: %r lacks %r" % (step["close"], out[-400:], want)
            return None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(self.sock)
        s.sendall(self.request_bytes(step))
        if step.get("hijack") or step.get("stream"):
            head, rest = read_head(s)
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
            if step.get("hijack") and status == 101:
                if "hold" in step:
                    self.held[step["hold"]] = (s, rest)
                else:
                    read_to_eof(s, rest)
                    s.close()
            else:
                s.close()
            return status, head, b"", None
        data = read_to_eof(s, timeout=60)
        s.close()
        r, _ = parse_one(data, method=step["method"], eof=True)
        doc = None
        if r is not None and r.body and (r.header("Content-Type") or "").startswith("application/json"):
            try:
                doc = json.loads(r.body)
            except ValueError:
                doc = None
        return r.status if r else None, r, r.body if r else b"", doc


def make_fixtures(engine, cleanup, fixtures, env):
    for fx in fixtures:
        name = fx["name"]
        kind = fx.get("kind", "container")
        real = uniq("dgp-" + name)
        if kind == "network":
            nid = engine.ok("network", "create", real).strip()
            cleanup.networks.append(real)
            env[name + ".id"], env[name + ".name"] = nid, real
        elif kind == "image":
            # A disposable image with an ID of its own (a commit of tiny).
            c = engine.ok("create", "--label", "dgp=" + real, "tiny:latest", "true").strip()
            cleanup.containers.append(c)
            iid = engine.ok("commit", c, "dgp-stale:" + real).strip()
            cleanup.images.append("dgp-stale:" + real)
            env[name + ".id"], env[name + ".name"] = iid, "dgp-stale:" + real
        else:
            args = ["run", "-d", "--name", real]
            for k, v in fx.get("labels", {}).items():
                args += ["--label", "%s=%s" % (k, v)]
            for e in fx.get("env", []):
                args += ["--env", e]
            if "network" in fx:
                args += ["--network", env[fx["network"] + ".name"]]
            args += [subst(fx.get("image", "tiny:latest"), env)] + fx.get("cmd", ["sleep", "300"])
            cid = engine.ok(*args).strip()
            cleanup.containers.append(cid)
            info = json.loads(engine.ok("inspect", cid))[0]
            env[name + ".id"], env[name + ".name"] = cid, real
            env[name + ".image"] = info["Image"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", SESSIONS)
def test_preset_session(name, engine, dockgate, cleanup):
    sess = load_session(name)
    env = {"trusted": engine.trusted, "untrusted": engine.untrusted, "u": uniq("s")}
    make_fixtures(engine, cleanup, sess.get("fixtures", []), env)
    profile = {"extends": "preset:" + sess["preset"]}
    profile.update(subst(sess.get("profile", {}), env))
    policy = {"version": 1, "default_profile": "tool", "profiles": {"tool": profile}}
    dg = dockgate(policy, extra_args=["--audit", "-"])
    rp = Replay(dg.sock, env)
    try:
        for i, step in enumerate(sess["session"]):
            where = "%s session step %d (%s)" % (name, i, step.get("why", step.get("path", step.get("close"))))
            deadline = time.time() + step.get("retry", 0)
            while True:
                res = rp.run(step)
                if res is None or time.time() >= deadline:
                    break
                if res[0] == step.get("expect", 200) and all(
                        res[3] is not None and dotted(res[3], k) == v
                        for k, v in step.get("json", {}).items()):
                    break
                time.sleep(0.5)     # the tool polls too
            if res is None:
                continue
            status, r, body, doc = res
            want = step.get("expect", 200)
            want = want if isinstance(want, list) else [want]
            assert status in want, "%s: got %r, want %r: %r" % (where, status, want, body[:600])
            if "keep" in step:
                env["doc:" + step["keep"]] = doc
            for k, v in step.get("save", {}).items():
                env[k] = dotted(doc, v)
            for path, v in step.get("json", {}).items():
                got = dotted(doc, path)
                assert got == subst(v, env), "%s: %s is %r, want %r" % (where, path, got, v)
            for s in subst(step.get("absent", []), env):
                assert s.encode() not in body, "%s: answer shows %r" % (where, s)
            for s in subst(step.get("present", []), env):
                assert s.encode() in body, "%s: answer lacks %r" % (where, s)
            if step.get("collect"):
                for obj in (doc if isinstance(doc, list) else []):
                    cleanup.containers.append(obj.get("Id", ""))
        assert not rp.held, "%s: sessions left open: %s" % (name, list(rp.held))
        assert dg.log_text().count('"verdict":') >= len(sess["session"]) // 2, "no audit lines?"
        before = dg.log_text().count('"verdict":"deny"')
        assert before == 0, "%s: the tool's own calls were refused:\n%s" % (
            name, "\n".join(l for l in dg.log_text().splitlines() if '"deny"' in l))
        for i, step in enumerate(sess.get("refused", [])):
            where = "%s refused %d (%s)" % (name, i, step.get("why", step["path"]))
            status, r, body, doc = rp.run(step)
            want = step.get("expect", 403)
            if step["method"] == "HEAD":    # no body to hold the message
                assert status in (want if isinstance(want, list) else [want]), where
            else:
                assert_refusal(r, want if not isinstance(want, list) else want[0],
                               allowed=want if isinstance(want, list) else None)
            for s in subst(step.get("absent", []), env):
                assert s.encode() not in body, "%s: answer shows %r" % (where, s)
        for check in sess.get("unchanged", []):
            args = subst(check["cli"], env)
            p = engine.cli(*args)
            assert (p.returncode == 0) == check.get("ok", True), "%s: %s: %s" % (
                name, " ".join(args), p.stderr)
    finally:
        rp.close()
        # Whatever the session created, by the names it used.
        for k, v in env.items():
            if k.startswith("made_"):
                engine.cli("rm", "-f", "-v", v)
        for n in sess.get("cleanup_volumes", []):
            engine.cli("volume", "rm", "-f", subst(n, env))
        for n in sess.get("cleanup_networks", []):
            engine.cli("network", "rm", subst(n, env))
        for n in sess.get("cleanup_images", []):
            engine.cli("rmi", "-f", subst(n, env))


def test_presets_listed_and_shown():
    """--show-preset prints each preset the sessions use, and lists them all."""
    import subprocess
    from conftest import DOCKGATE_BIN
    out = subprocess.run([DOCKGATE_BIN, "--show-preset", "list"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    for n in ("traefik", "portainer", "watchtower", "ci-runner", "read-only", "cis-baseline"):
        assert "preset:" + n in names
        one = subprocess.run([DOCKGATE_BIN, "--show-preset", n], capture_output=True,
                             text=True, timeout=10)
        assert one.returncode == 0 and isinstance(json.loads(one.stdout), dict)
    covered = {load_session(s)["preset"] for s in SESSIONS}
    assert covered == {n[len("preset:"):] for n in names}, "a preset without a replayed session"
    bad = subprocess.run([DOCKGATE_BIN, "--show-preset", "nginx"], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode == 1 and "preset:traefik" in bad.stderr
