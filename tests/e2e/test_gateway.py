"""Shared gateway end to end: two unix identities (uid 0 and uid 65534, the
latter through `setpriv`) on one dockgate whose profile has "ownership".
Each manages its own containers, volumes, networks and execs; every attempt
on the other's objects (full id, id prefix, name, exec id, volume name,
network name) is a 404 JSON refusal that changes nothing on the engine
(checked straight at the engine socket); lists and events show only owned
objects; forged owner labels never stick; read_others lets reads through
and redact blanks what it should; rate limits answer 429 with Retry-After.
"""

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse

import pytest

from conftest import DOCKER, _cli_env, is_standin, uniq
from policy_util import Resp, api, check_refusal

pytestmark = pytest.mark.skipif(
    is_standin() and not os.environ.get("DG_STANDIN_ALL"),
    reason="ownership, redaction and rate limits are dockgate's; the socat stand-in "
           "forwards everything")

NOBODY = 65534
V = "/v1.41"
OWNER_KEY = "dockgate.owner"


# --------------------------------------------------------------------------
# identities: the docker CLI and raw HTTP as a given uid
# --------------------------------------------------------------------------

# Runs as the identity (under setpriv): a JSON list of requests on stdin, a
# JSON list of answers on stdout. One connection per request.
REQ_SCRIPT = r"""
import base64, http.client, json, socket, sys
path = sys.argv[1]
reqs = json.load(sys.stdin)

class C(http.client.HTTPConnection):
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(path)
        self.sock = s

out = []
for r in reqs:
    c = C("localhost", timeout=r.get("timeout", 20))
    try:
        data = base64.b64decode(r["body"]) if r.get("body") is not None else None
        if data is None and r["method"] in ("POST", "PUT"):
            data = b""
        c.request(r["method"], r["path"], body=data, headers=r.get("headers") or {})
        resp = c.getresponse()
        b = resp.read()
        out.append({"status": resp.status,
                    "headers": dict((k.lower(), v) for k, v in resp.getheaders()),
                    "body": base64.b64encode(b).decode()})
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
    finally:
        c.close()
json.dump(out, sys.stdout)
"""


class ReqError(Resp):
    """A request that got no HTTP answer (timeout, reset)."""

    def __init__(self, err):
        super().__init__(-1, {}, err.encode())


def req(method, path, body=None, headers=None, timeout=20):
    """A request description for Ident.batch. body: dict/list (JSON) or bytes."""
    hdrs = dict(headers or {})
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body
    return {"method": method, "path": path, "headers": hdrs, "timeout": timeout,
            "body": base64.b64encode(data).decode() if data is not None else None}


class Ident:
    def __init__(self, gate, uid, confdir):
        self.gate = gate
        self.uid = uid
        self.owner = "uid:%d" % uid
        self.confdir = confdir
        self.prefix = [] if uid == 0 else [
            "setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]

    def __repr__(self):
        return "<%s>" % self.owner

    def cmd(self, *args):
        return self.prefix + [DOCKER] + [str(a) for a in args]

    def env(self):
        return _cli_env(self.gate.host, {"DOCKER_CONFIG": self.confdir, "HOME": self.confdir})

    def cli(self, *args, input=None, timeout=60):
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run(self.cmd(*args), input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, env=self.env(),
                              stdin=None if input is not None else subprocess.DEVNULL,
                              cwd="/")

    def ok(self, *args, **kw):
        p = self.cli(*args, **kw)
        assert p.returncode == 0, "%s: docker %s failed (rc %d):\n%s\n%s" % (
            self, " ".join(map(str, args)), p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        return p.stdout.decode(errors="replace").strip()

    def batch(self, reqs, timeout=120):
        p = subprocess.run(self.prefix + ["/usr/bin/python3", "-c", REQ_SCRIPT, self.gate.sock],
                           input=json.dumps(reqs).encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, cwd="/")
        assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
        out = []
        for a in json.loads(p.stdout.decode()):
            if "error" in a:
                out.append(ReqError(a["error"]))
            else:
                out.append(Resp(a["status"], a["headers"], base64.b64decode(a["body"])))
        return out

    def api(self, method, path, body=None, headers=None, timeout=20):
        return self.batch([req(method, path, body, headers, timeout)])[0]


def make_confdir(uid):
    d = tempfile.mkdtemp(prefix="dg-e2e-gwconf.", dir="/tmp")
    os.chown(d, uid, uid)
    return d


@pytest.fixture
def confdirs():
    made = {}

    def get(uid):
        if uid not in made:
            made[uid] = make_confdir(uid)
        return made[uid]

    yield get
    for d in made.values():
        shutil.rmtree(d, ignore_errors=True)


def gw_profile(**extra):
    prof = {"trusted_registries": ["docker.io/library"], "ownership": True}
    prof.update(extra)
    return prof


def start_gate(dockgate, policy):
    """dockgate reachable by any uid: socket 0666 in a traversable directory."""
    gate = dockgate(policy, extra_args=["--socket-mode", "0666"])
    os.chmod(gate.tmpdir, 0o711)
    return gate


@pytest.fixture
def tenants(engine, dockgate, confdirs):
    """One dockgate, profile `tenant` (ownership) for everyone; (root, nobody)."""
    gate = start_gate(dockgate, {"version": 1, "default_profile": "tenant",
                                 "profiles": {"tenant": gw_profile()}})
    return Ident(gate, 0, confdirs(0)), Ident(gate, NOBODY, confdirs(NOBODY))


# --------------------------------------------------------------------------
# engine-side facts (straight at the engine socket, no dockgate)
# --------------------------------------------------------------------------

def eng_json(engine, path):
    r = api(engine.sock, "GET", path)
    assert r.status == 200, (path, r)
    return r.json()


def eng_status(engine, path):
    return api(engine.sock, "GET", path).status


def eng_labels(engine, cid):
    return eng_json(engine, "%s/containers/%s/json" % (V, cid))["Config"]["Labels"] or {}


def container_facts(engine, cid):
    j = eng_json(engine, "%s/containers/%s/json" % (V, cid))
    st = j["State"]
    return {"Name": j["Name"], "Running": st["Running"], "Paused": st["Paused"],
            "StartedAt": st["StartedAt"], "Pid": st["Pid"], "RestartCount": j["RestartCount"],
            "CpuShares": j["HostConfig"]["CpuShares"], "Labels": j["Config"]["Labels"],
            "Networks": sorted((j["NetworkSettings"]["Networks"] or {}).keys()),
            "ExecIDs": j.get("ExecIDs")}


def engine_state(engine, objs_list):
    """What a cross-identity request could change, asked at the engine."""
    out = {"containers": sorted(c["Id"] for c in eng_json(engine, V + "/containers/json?all=1")),
           "volumes": sorted(v["Name"] for v in eng_json(engine, V + "/volumes")["Volumes"] or []),
           "networks": sorted(n["Id"] for n in eng_json(engine, V + "/networks")),
           "images": sorted(i["Id"] for i in eng_json(engine, V + "/images/json?all=1"))}
    for o in objs_list:
        out["ctr " + o.name] = container_facts(engine, o.cid)
        ex = eng_json(engine, "%s/exec/%s/json" % (V, o.exec_id))
        out["exec " + o.name] = (ex["Running"], ex["ExitCode"], ex["Pid"])
        out["file " + o.name] = api(engine.sock, "HEAD", "%s/containers/%s/archive?path=%s" % (
            V, o.cid, urllib.parse.quote("/tmp/pwned"))).status
    return out


def assert_same(before, after):
    diffs = ["%s: %r -> %r" % (k, before.get(k), after.get(k))
             for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    assert not diffs, "the engine changed:\n" + "\n".join(diffs)


# --------------------------------------------------------------------------
# each identity's objects
# --------------------------------------------------------------------------

class Objs:
    pass


def make_objects(engine, ident, cleanup, tag, network=True):
    """A running container (prints hello-TAG, env SECRET), a volume, a
    network, an exec instance (created, never started): all through dockgate."""
    o = Objs()
    o.ident = ident
    o.tag = tag
    o.name = uniq("gw-" + tag)
    o.net_name = o.name + "-net"
    o.net = None
    if network:
        o.net = ident.ok("network", "create", "--label", "team=blue", o.net_name)
        cleanup.networks.append(o.net)
    o.cid = ident.ok("run", "-d", "--name", o.name, "--network",
                     o.net_name if network else "none", "--label", "team=blue",
                     "-e", "SECRET=s3cret-" + tag, "tiny", "sh", "-c",
                     "echo hello-%s; exec sleep 600" % tag)
    cleanup.containers.append(o.cid)
    o.vol = ident.ok("volume", "create", "--label", "team=blue", o.name + "-vol")
    cleanup.volumes.append(o.vol)
    r = ident.api("POST", "%s/containers/%s/exec" % (V, o.cid),
                  {"Cmd": ["touch", "/tmp/pwned"], "AttachStdout": True})
    assert r.status == 201, r
    o.exec_id = r.json()["Id"]
    # Everything carries the creator's owner label, at the engine.
    assert eng_labels(engine, o.cid).get(OWNER_KEY) == ident.owner
    assert eng_json(engine, "%s/volumes/%s" % (V, o.vol))["Labels"].get(OWNER_KEY) == ident.owner
    if network:
        assert eng_json(engine, "%s/networks/%s" % (V, o.net))["Labels"].get(
            OWNER_KEY) == ident.owner
    return o


def wait_logs(ident, ref, text, timeout=20):
    deadline = time.time() + timeout
    out = ""
    while time.time() < deadline:
        p = ident.cli("logs", ref)
        out = (p.stdout + p.stderr).decode(errors="replace")
        if p.returncode == 0 and text in out:
            return out
        time.sleep(0.3)
    raise AssertionError("%s: logs of %s never showed %r: %s" % (ident, ref, text, out[-2000:]))


def cli_refused_404(p, what, args=()):
    """The docker CLI's view of an ownership refusal. `docker rm -f` exits 0
    on a not-found answer (CLI 28 behaviour): there the message must be printed.
    The raw tests check the 404 JSON refusal itself."""
    err = p.stderr.decode(errors="replace")
    rm_force = len(args) >= 2 and args[0] == "rm" and "-f" in args
    assert p.returncode != 0 or rm_force, \
        "%s: expected a refusal, the CLI succeeded:\n%s\n%s" % (what, p.stdout[-1500:], err[-1500:])
    # the 20.10 CLI replaces a 404's message with its own "No such ..." text
    assert ("dockgate: " in err and "(rule ownership)" in err) or (
        DOCKER.startswith("/usr/bin/") and re.search(
            r"No such (container|object|volume|network)", err)), \
        "%s: no dockgate ownership refusal in stderr:\n%s" % (what, err[-2000:])


# --------------------------------------------------------------------------
# 1. own objects: the whole life cycle works for each identity
# --------------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_own_objects_life_cycle(engine, tenants, cleanup):
    for ident in tenants:
        tag = "own%d" % ident.uid
        o = make_objects(engine, ident, cleanup, tag)
        names = ident.ok("ps", "--format", "{{.Names}}").split()
        assert o.name in names
        assert ident.ok("container", "inspect", "-f", "{{.Id}}", o.name) == o.cid
        assert ident.ok("container", "inspect", "-f", "{{.Id}}", o.cid[:12]) == o.cid
        assert ident.ok("exec", o.name, "echo", "hi-from-exec") == "hi-from-exec"
        assert ident.ok("exec", o.cid[:12], "id", "-u") == "0"
        wait_logs(ident, o.name, "hello-" + tag)
        # cp out of the container (tar on stdout)
        tarbytes = ident.cli("cp", o.name + ":/etc/passwd", "-").stdout
        with tarfile.open(fileobj=io.BytesIO(tarbytes)) as t:
            assert b"nobody" in t.extractfile("passwd").read()
        # the exec made in make_objects runs through its id
        r = ident.api("POST", "%s/exec/%s/start" % (V, o.exec_id), {"Detach": True})
        assert r.status == 200, r
        r = ident.api("GET", "%s/exec/%s/json" % (V, o.exec_id))
        assert r.status == 200 and r.json()["ContainerID"] == o.cid, r
        assert o.vol in ident.ok("volume", "ls", "-q").split()
        assert ident.ok("volume", "inspect", "-f", "{{.Name}}", o.vol) == o.vol
        assert o.net_name in ident.ok("network", "ls", "--format", "{{.Name}}").split()
        assert ident.ok("network", "inspect", "-f", "{{.Id}}", o.net_name) == o.net
        # disconnect own container from own network, connect again
        assert o.net_name in container_facts(engine, o.cid)["Networks"]
        ident.ok("network", "disconnect", o.net_name, o.name)
        assert o.net_name not in container_facts(engine, o.cid)["Networks"]
        ident.ok("network", "connect", o.net_name, o.name)
        assert o.net_name in container_facts(engine, o.cid)["Networks"]
        ident.ok("stop", "-t", "0", o.name)
        assert not container_facts(engine, o.cid)["Running"]
        ident.ok("rm", o.name)
        assert eng_status(engine, "%s/containers/%s/json" % (V, o.cid)) == 404
        ident.ok("volume", "rm", o.vol)
        assert eng_status(engine, "%s/volumes/%s" % (V, o.vol)) == 404
        ident.ok("network", "rm", o.net_name)
        assert eng_status(engine, "%s/networks/%s" % (V, o.net)) == 404


# --------------------------------------------------------------------------
# 2. cross-identity: every call on the other's objects is a 404, nothing changes
# --------------------------------------------------------------------------

def cross_requests(victim, mine):
    """(label, request) pairs an attacker sends about the victim's objects."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        data = b"pwned\n"
        ti = tarfile.TarInfo("pwned")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    tar = tar.getvalue()
    out = []
    for how, ref in (("id", victim.cid), ("prefix", victim.cid[:12]), ("name", victim.name)):
        c = "%s/containers/%s" % (V, urllib.parse.quote(ref))
        for label, r in (
                ("inspect", req("GET", c + "/json")),
                ("logs", req("GET", c + "/logs?stdout=1&stderr=1")),
                ("top", req("GET", c + "/top")),
                ("stats", req("GET", c + "/stats?stream=0")),
                ("changes", req("GET", c + "/changes")),
                ("archive get", req("GET", c + "/archive?path=%2Fetc%2Fpasswd")),
                ("archive put", req("PUT", c + "/archive?path=%2Ftmp", tar,
                                    {"Content-Type": "application/x-tar"})),
                ("export", req("GET", c + "/export")),
                ("exec create", req("POST", c + "/exec", {"Cmd": ["touch", "/tmp/pwned"]})),
                ("attach", req("POST", c + "/attach?stream=1&stdout=1&stderr=1", None,
                               {"Connection": "Upgrade", "Upgrade": "tcp"}, timeout=8)),
                ("stop", req("POST", c + "/stop?t=0")),
                ("kill", req("POST", c + "/kill")),
                ("pause", req("POST", c + "/pause")),
                ("restart", req("POST", c + "/restart?t=0")),
                ("start", req("POST", c + "/start")),
                ("resize", req("POST", c + "/resize?h=10&w=10")),
                ("rename", req("POST", c + "/rename?name=" + victim.name + "-hijacked")),
                ("update", req("POST", c + "/update", {"CpuShares": 512})),
                ("wait", req("POST", c + "/wait?condition=next-exit", timeout=8)),
                ("delete", req("DELETE", c + "?force=1&v=1")),
        ):
            out.append(("container %s by %s" % (label, how), r))
        # network connect of the victim's container to the attacker's network
        out.append(("connect victim container (%s) to own network" % how,
                    req("POST", "%s/networks/%s/connect" % (V, mine.net), {"Container": ref})))
    e = "%s/exec/%s" % (V, victim.exec_id)
    out += [("exec inspect", req("GET", e + "/json")),
            ("exec start", req("POST", e + "/start", {"Detach": True})),
            ("exec resize", req("POST", e + "/resize?h=10&w=10"))]
    vol = "%s/volumes/%s" % (V, victim.vol)
    out += [("volume inspect", req("GET", vol)), ("volume delete", req("DELETE", vol + "?force=1"))]
    for how, ref in (("id", victim.net), ("prefix", victim.net[:12]), ("name", victim.net_name)):
        n = "%s/networks/%s" % (V, urllib.parse.quote(ref))
        out += [("network inspect by " + how, req("GET", n)),
                ("network connect own container by " + how,
                 req("POST", n + "/connect", {"Container": mine.cid})),
                ("network disconnect by " + how,
                 req("POST", n + "/disconnect", {"Container": victim.cid, "Force": True})),
                ("network delete by " + how, req("DELETE", n))]
    return out


def create_requests(victim):
    """Creates that would use the victim's container, volume or network."""
    body = lambda **hc: {"Image": "tiny", "Cmd": ["true"],  # noqa: E731
                         "HostConfig": dict({"NetworkMode": "none"}, **hc)}
    return [
        ("create VolumesFrom victim", body(VolumesFrom=[victim.name])),
        ("create VolumesFrom victim id", body(VolumesFrom=[victim.cid + ":ro"])),
        ("create Binds victim volume", body(Binds=[victim.vol + ":/data"])),
        ("create Mounts victim volume",
         body(Mounts=[{"Type": "volume", "Source": victim.vol, "Target": "/data"}])),
        ("create NetworkMode victim network", body(NetworkMode=victim.net_name)),
        ("create EndpointsConfig victim network",
         dict(body(), NetworkingConfig={"EndpointsConfig": {victim.net_name: {}}})),
    ]


@pytest.mark.timeout(200)
def test_cross_identity_refused_and_nothing_changes(engine, tenants, cleanup):
    root, nobody = tenants
    objs = {i.uid: make_objects(engine, i, cleanup, "x%d" % i.uid) for i in tenants}
    for attacker, victim in ((nobody, root), (root, nobody)):
        vo, mo = objs[victim.uid], objs[attacker.uid]
        before = engine_state(engine, objs.values())
        labels = []
        reqs = []
        for label, r in cross_requests(vo, mo):
            labels.append(label)
            reqs.append(r)
        creates = create_requests(vo)
        for label, b in creates:
            labels.append(label)
            reqs.append(req("POST", V + "/containers/create?name=" + uniq("gw-steal"), b))
        answers = attacker.batch(reqs)
        bad = []
        for label, r in zip(labels, answers):
            try:
                if label.startswith("create "):
                    check_refusal(r, r.status if r.status in (403, 404) else 404, "ownership")
                else:
                    check_refusal(r, 404, "ownership")
            except AssertionError as e:
                bad.append("%s -> %r (%s)" % (label, r, str(e).splitlines()[0][:300]))
                if r.status in (200, 201):
                    try:
                        oid = r.json()["Id"]
                    except Exception:
                        continue
                    if label.startswith("create "):
                        cleanup.containers.append(oid)
        after = engine_state(engine, objs.values())
        assert not bad, "%s on %s's objects, not refused with 404 (rule ownership):\n%s" % (
            attacker, victim, "\n".join(bad))
        assert_same(before, after)
        # the victim still manages its objects
        assert victim.ok("container", "inspect", "-f", "{{.State.Running}}", vo.name) == "true"


@pytest.mark.timeout(150)
def test_cross_identity_cli(engine, tenants, cleanup):
    """The docker CLI's view: each refusal is printed as a dockgate message."""
    root, nobody = tenants
    objs = {i.uid: make_objects(engine, i, cleanup, "c%d" % i.uid) for i in tenants}
    for attacker, victim in ((nobody, root), (root, nobody)):
        vo, mo = objs[victim.uid], objs[attacker.uid]
        before = engine_state(engine, objs.values())
        for args in (["container", "inspect", vo.name], ["container", "inspect", vo.cid[:12]],
                     ["logs", vo.name], ["exec", vo.name, "touch", "/tmp/pwned"],
                     ["stop", "-t", "0", vo.cid], ["kill", vo.name], ["rm", "-f", vo.name],
                     ["rename", vo.name, vo.name + "-x"], ["pause", vo.name],
                     ["restart", "-t", "0", vo.name], ["update", "--cpu-shares", "512", vo.name],
                     ["top", vo.name], ["cp", vo.name + ":/etc/passwd", "-"],
                     ["export", vo.name], ["diff", vo.name], ["port", vo.name],
                     ["volume", "inspect", vo.vol], ["volume", "rm", "-f", vo.vol],
                     ["network", "inspect", vo.net_name], ["network", "rm", vo.net_name],
                     ["network", "connect", vo.net_name, mo.name],
                     ["network", "connect", mo.net_name, vo.name],
                     ["network", "disconnect", vo.net_name, vo.name],
                     # --pull never: the CLI reads any 404 on create as "no such
                     # image" and would pull and retry (see the report)
                     ["run", "--rm", "--pull", "never", "--network", "none", "--volumes-from",
                      vo.name, "tiny", "true"],
                     ["run", "--rm", "--pull", "never", "--network", "none", "-v",
                      vo.vol + ":/d", "tiny", "true"],
                     ["run", "--rm", "--pull", "never", "--network", vo.net_name, "tiny",
                      "true"]):
            cli_refused_404(attacker.cli(*args, timeout=30), "%s: docker %s" % (
                attacker, " ".join(args)), args)
        assert_same(before, engine_state(engine, objs.values()))


@pytest.mark.timeout(120)
def test_commit_of_others_container_refused(engine, tenants, cleanup):
    root, nobody = tenants
    objs = {i.uid: make_objects(engine, i, cleanup, "cm%d" % i.uid, network=False)
            for i in tenants}
    failures = []
    for attacker, victim in ((nobody, root), (root, nobody)):
        vo = objs[victim.uid]
        for how, ref in (("id", vo.cid), ("prefix", vo.cid[:12]), ("name", vo.name)):
            before = engine_state(engine, objs.values())
            r = attacker.api("POST", "%s/commit?container=%s" % (V, ref), {})
            if r.status == 201:
                cleanup.images.append(r.json()["Id"])
            try:
                check_refusal(r, 404, "ownership")
                assert_same(before, engine_state(engine, objs.values()))
            except AssertionError as e:
                failures.append("%s commits %s's container by %s: %s" % (
                    attacker, victim, how, str(e).splitlines()[0][:300]))
        p = attacker.cli("commit", vo.name)
        if p.returncode == 0:
            cleanup.images.append(p.stdout.decode().strip())
            failures.append("%s: docker commit %s succeeded" % (attacker, vo.name))
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# 3. lists, filters, events, prunes
# --------------------------------------------------------------------------

@pytest.fixture
def listed(engine, tenants, cleanup):
    """Both identities' objects (all labelled team=blue) and an unlabelled
    container made straight at the engine (nobody owns it)."""
    objs = {i.uid: make_objects(engine, i, cleanup, "l%d" % i.uid) for i in tenants}
    stray = engine.ok("create", "--name", uniq("gw-stray"), "--label", "team=blue",
                      "--network", "none", "tiny", "true")
    cleanup.containers.append(stray)
    return objs, stray


def raw_filters(f):
    return urllib.parse.quote(json.dumps(f))


@pytest.mark.timeout(150)
def test_lists_show_only_owned(engine, tenants, listed):
    objs, stray = listed
    root, nobody = tenants
    for me, other in ((root, nobody), (nobody, root)):
        mo, oo = objs[me.uid], objs[other.uid]
        # containers: every listed one is mine (asked at the engine)
        ids = me.ok("ps", "-a", "-q", "--no-trunc").split()
        assert mo.cid in ids and oo.cid not in ids and stray not in ids, ids
        for cid in ids:
            assert eng_labels(engine, cid).get(OWNER_KEY) == me.owner, (me, cid)
        # label filters (the CLI's map form) still work on top of the owner filter
        assert me.ok("ps", "-a", "-q", "--no-trunc", "--filter", "label=team=blue").split() \
            == [mo.cid]
        assert me.ok("ps", "-a", "-q", "--filter", "label=%s=%s" % (OWNER_KEY, other.owner)) == ""
        assert me.ok("ps", "-q", "--no-trunc", "--filter", "status=running",
                     "--filter", "label=team").split() == [mo.cid]
        # raw: the label filter as a map, and other filters in the list form
        for f, want in (({"label": {"team=blue": True}}, [mo.cid]),
                        ({"name": [mo.name]}, [mo.cid]), ({"name": [oo.name]}, []),
                        ({"id": [oo.cid]}, []), ({"label": ["team=blue"]}, [mo.cid])):
            r = me.api("GET", "%s/containers/json?all=1&filters=%s" % (V, raw_filters(f)))
            assert r.status == 200 and [c["Id"] for c in r.json()] == want, (f, r)
        # volumes
        vols = me.ok("volume", "ls", "-q").split()
        assert mo.vol in vols and oo.vol not in vols, vols
        for v in vols:
            assert eng_json(engine, "%s/volumes/%s" % (V, v))["Labels"].get(OWNER_KEY) == me.owner
        assert me.ok("volume", "ls", "-q", "--filter", "label=team=blue").split() == [mo.vol]
        r = me.api("GET", "%s/volumes?filters=%s" % (V, raw_filters({"name": [oo.vol]})))
        assert r.status == 200 and not r.json()["Volumes"], r
        # networks
        nets = me.ok("network", "ls", "-q", "--no-trunc").split()
        assert mo.net in nets and oo.net not in nets, nets
        for n in nets:
            assert eng_json(engine, "%s/networks/%s" % (V, n))["Labels"].get(OWNER_KEY) == me.owner
        assert me.ok("network", "ls", "-q", "--no-trunc", "--filter", "label=team=blue"
                     ).split() == [mo.net]
        r = me.api("GET", "%s/networks?filters=%s" % (V, raw_filters({"name": [oo.net_name]})))
        assert r.status == 200 and r.json() == [], r


@pytest.mark.timeout(150)
def test_events_show_only_owned(engine, tenants, cleanup):
    since = "%.3f" % (time.time() - 1)
    objs = {i.uid: make_objects(engine, i, cleanup, "e%d" % i.uid) for i in tenants}
    stray = engine.ok("create", "--name", uniq("gw-stray"), "--network", "none", "tiny", "true")
    cleanup.containers.append(stray)
    for i in tenants:
        i.ok("exec", objs[i.uid].name, "true")
    time.sleep(1.1)    # every event of the window is in the past
    until = "%.3f" % time.time()
    # at the engine the window holds everything (so the test means something)
    r = api(engine.sock, "GET", "%s/events?since=%s&until=%s" % (V, since, until))
    assert r.status == 200
    for o in objs.values():
        assert o.cid.encode() in r.body
    assert stray.encode() in r.body
    for me, other in ((tenants[0], tenants[1]), (tenants[1], tenants[0])):
        mo, oo = objs[me.uid], objs[other.uid]
        out = me.ok("events", "--since", since, "--until", until, "--format", "{{json .}}",
                    timeout=30)
        evs = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        actions = {e.get("Action", "").split(":")[0] for e in evs
                   if e.get("Actor", {}).get("ID") == mo.cid}
        assert {"create", "start", "exec_create", "exec_start"} <= actions, (me, actions)
        for secret in (oo.cid, oo.name, oo.vol, oo.net, oo.net_name, stray):
            assert secret not in out, "%s sees %s's object %s in events:\n%s" % (
                me, other, secret, out[-3000:])
        for e in evs:
            assert e.get("Actor", {}).get("Attributes", {}).get(OWNER_KEY) == me.owner, (me, e)


@pytest.mark.timeout(150)
def test_cli_filters_without_label_with_ownership(engine, tenants, listed):
    objs, stray = listed
    root, nobody = tenants
    for me, other in ((root, nobody), (nobody, root)):
        mo, oo = objs[me.uid], objs[other.uid]
        assert me.ok("ps", "-a", "-q", "--no-trunc", "--filter", "name=" + mo.name) == mo.cid
        assert me.ok("ps", "-a", "-q", "--no-trunc", "--filter", "name=" + oo.name) == ""
        assert me.ok("ps", "-q", "--no-trunc", "--filter", "status=running").split() == [mo.cid]
        assert me.ok("volume", "ls", "-q", "--filter", "name=" + mo.vol) == mo.vol
        assert me.ok("network", "ls", "-q", "--no-trunc", "--filter", "name=" + oo.net_name) == ""
        out = me.ok("events", "--since", "0", "--until", "%.3f" % time.time(),
                    "--filter", "type=container", "--format", "{{.Actor.ID}}", timeout=30)
        assert mo.cid in out.split() and oo.cid not in out and stray not in out


@pytest.mark.timeout(150)
def test_prune_confined_to_owned(engine, tenants, cleanup):
    for me in tenants:
        made = {}
        for i in tenants:
            n = uniq("gw-prune%d" % i.uid)
            cid = i.ok("create", "--name", n, "--network", "none", "tiny", "true")
            cleanup.containers.append(cid)
            vol = i.ok("volume", "create", n + "-vol")
            cleanup.volumes.append(vol)
            net = i.ok("network", "create", n + "-net")
            cleanup.networks.append(net)
            made[i.uid] = (cid, vol, net)
        me.ok("container", "prune", "-f")
        me.ok("volume", "prune", "-f")
        me.ok("network", "prune", "-f")
        for uid, (c, v, n) in made.items():
            # mine are gone (the prunes worked), the other's are all still there
            want = 404 if uid == me.uid else 200
            assert eng_status(engine, "%s/containers/%s/json" % (V, c)) == want, (me, uid)
            assert eng_status(engine, "%s/volumes/%s" % (V, v)) == want, (me, uid)
            assert eng_status(engine, "%s/networks/%s" % (V, n)) == want, (me, uid)


# --------------------------------------------------------------------------
# 4. forged owner labels
# --------------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_forged_owner_labels_never_stick(engine, tenants, cleanup):
    root, nobody = tenants
    # the docker CLI's --label
    name = uniq("gw-forge")
    p = nobody.cli("run", "-d", "--name", name, "--network", "none",
                   "--label", "dockgate.owner=uid:0", "tiny", "sleep", "600")
    if p.returncode == 0:
        cid = p.stdout.decode().strip()
        cleanup.containers.append(cid)
        assert eng_labels(engine, cid).get(OWNER_KEY) == nobody.owner
        assert name not in root.ok("ps", "-a", "--format", "{{.Names}}").split()
        cli_refused_404(root.cli("stop", name), "root stops a forged container")
        nobody.ok("stop", "-t", "0", name)    # still the real owner's
    else:
        assert b"dockgate: " in p.stderr, p.stderr
        assert eng_status(engine, "%s/containers/%s/json" % (V, name)) == 404
    for kind in ("volume", "network"):
        n = uniq("gw-forge-" + kind)
        p = nobody.cli(kind, "create", "--label", "dockgate.owner=uid:0", n)
        path = "%s/%ss/%s" % (V, kind, n)
        if p.returncode == 0:
            (cleanup.volumes if kind == "volume" else cleanup.networks).append(n)
            assert eng_json(engine, path)["Labels"].get(OWNER_KEY) == nobody.owner
            assert n not in root.ok(kind, "ls", "--format", "{{.Name}}").split()
        else:
            assert b"dockgate: " in p.stderr, p.stderr
            assert eng_status(engine, path) == 404

    # raw bodies: the label under every key spelling the engine folds together
    forged = {OWNER_KEY: "uid:0", "keep": "me"}
    base = {"Image": "tiny", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
    bodies = [
        ("Labels", dict(base, Labels=forged)),
        ("labels", dict(base, labels=forged)),
        ("LABELS", dict(base, LABELS=forged)),
        ("Label\u017f (long s folds to s)", dict(base, **{"Label\u017f": forged})),
        ("escaped label key", '{"Image":"tiny","Cmd":["true"],"HostConfig":{"NetworkMode":"none"},'
                              '"Labels":{"dockgate.\\u006fwner":"uid:0"}}'),
        ("Labels twice (two spellings)", '{"Image":"tiny","HostConfig":{"NetworkMode":"none"},'
                                         '"Labels":{"a":"b"},"labels":{"dockgate.owner":"uid:0"}}'),
        ("Labels twice (exact)", '{"Image":"tiny","HostConfig":{"NetworkMode":"none"},'
                                 '"Labels":{"a":"b"},"Labels":{"dockgate.owner":"uid:0"}}'),
        ("owner label twice in Labels", '{"Image":"tiny","HostConfig":{"NetworkMode":"none"},'
                                        '"Labels":{"dockgate.owner":"uid:65534",'
                                        '"dockgate.owner":"uid:0"}}'),
        ("Labels as a list", dict(base, Labels=["dockgate.owner=uid:0"])),
        ("Labels in HostConfig", dict(base, HostConfig={"NetworkMode": "none",
                                                        "Labels": forged})),
        ("top-level Config wrapper", dict(base, Config={"Labels": forged})),
    ]
    names = []
    reqs = []
    for _label, b in bodies:
        names.append(uniq("gw-forge-raw"))
        reqs.append(req("POST", "%s/containers/create?name=%s" % (V, names[-1]), b))
    for kind, bs in (("volume", [{"Name": "%s", "Labels": forged},
                                 {"name": "%s", "labels": forged}]),
                     ("network", [{"Name": "%s", "Labels": forged},
                                  {"name": "%s", "labels": forged}])):
        for b in bs:
            n = uniq("gw-forge-raw-" + kind)
            b = json.loads(json.dumps(b).replace("%s", n))
            bodies.append(("%s %s" % (kind, list(b)[1]), b))
            names.append(n)
            reqs.append(req("POST", "%s/%ss/create" % (V, kind), b))
    answers = nobody.batch(reqs)
    problems = []
    for (label, _b), n, r in zip(bodies, names, answers):
        kind = "volume" if "volume" in label else "network" if "network" in label else "container"
        if r.status in (200, 201):
            if kind == "container":
                cid = r.json()["Id"]
                cleanup.containers.append(cid)
                labels = eng_labels(engine, cid)
            elif kind == "volume":
                cleanup.volumes.append(n)
                labels = eng_json(engine, "%s/volumes/%s" % (V, n))["Labels"] or {}
            else:
                cleanup.networks.append(r.json()["Id"])
                labels = eng_json(engine, "%s/networks/%s" % (V, n))["Labels"] or {}
            if labels.get(OWNER_KEY) != nobody.owner:
                problems.append("%s: created with labels %r" % (label, labels))
        else:
            try:
                check_refusal(r, r.status if r.status in (400, 403) else 400)
            except AssertionError as e:
                problems.append("%s: %r (%s)" % (label, r, e))
            path = {"container": "%s/containers/%s/json", "volume": "%s/volumes/%s",
                    "network": "%s/networks/%s"}[kind] % (V, n)
            if eng_status(engine, path) != 404:
                problems.append("%s: refused (%d) but created at the engine" % (label, r.status))
    assert not problems, "\n".join(problems)
    # Every container at the engine with root's owner label was made by root.
    for c in eng_json(engine, V + "/containers/json?all=1"):
        if (c.get("Labels") or {}).get(OWNER_KEY) == "uid:0":
            assert not c["Names"][0].lstrip("/").startswith("gw-forge"), c


@pytest.mark.timeout(150)
def test_image_label_cannot_forge_owner(engine, tenants, cleanup):
    """An image whose config carries LABEL dockgate.owner=uid:0: the container
    gets the creator's label (create labels win over image labels)."""
    root, nobody = tenants
    img = uniq("gwforged").lower() + ":latest"
    engine.ok("build", "-q", "-t", img, "-", input="FROM tiny\nLABEL dockgate.owner=uid:0\n",
              timeout=60)
    cleanup.images.append(img)
    cid = nobody.ok("create", "--network", "none", img, "true")
    cleanup.containers.append(cid)
    assert eng_labels(engine, cid).get(OWNER_KEY) == nobody.owner
    cli_refused_404(root.cli("rm", "-f", cid), "root removes nobody's container", ["rm", "-f"])
    assert eng_status(engine, "%s/containers/%s/json" % (V, cid)) == 200


# --------------------------------------------------------------------------
# 5. read_others and redact
# --------------------------------------------------------------------------

@pytest.fixture
def hostdir():
    d = tempfile.mkdtemp(prefix="dg-e2e-gwhost.", dir="/tmp")
    with open(os.path.join(d, "f"), "w") as f:
        f.write("host file\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


READER = 65534
PLAIN_READER = 1000


@pytest.fixture
def readers(engine, dockgate, confdirs, hostdir):
    """root: ownership (may bind hostdir); 65534: ownership + read_others +
    redact everything; 1000: ownership + read_others, no redaction."""
    gate = start_gate(dockgate, {
        "version": 1, "default_profile": "tenant",
        "identities": [{"match": {"uid": READER}, "profile": "reader"},
                       {"match": {"uid": PLAIN_READER}, "profile": "plain"}],
        "profiles": {"tenant": gw_profile(host_paths=[hostdir]),
                     "reader": gw_profile(read_others=True,
                                          redact=["env", "mounts", "network"]),
                     "plain": gw_profile(read_others=True)}})
    return (Ident(gate, 0, confdirs(0)), Ident(gate, READER, confdirs(READER)),
            Ident(gate, PLAIN_READER, confdirs(PLAIN_READER)))


def make_rich(engine, ident, cleanup, tag, hostdir=None):
    """A running container with a secret env, a bind (if hostdir), a named
    volume and an address on its own bridge network."""
    n = uniq("gw-" + tag)
    net = ident.ok("network", "create", "--label", "team=blue", n + "-net")
    cleanup.networks.append(net)
    vol = ident.ok("volume", "create", n + "-vol")
    cleanup.volumes.append(vol)
    args = ["run", "-d", "--name", n, "--network", n + "-net", "-e", "SECRET=hunter2-" + tag,
            "-e", "PLAIN=visible", "-v", vol + ":/vol"]
    if hostdir:
        args += ["-v", hostdir + ":/hostdir:ro"]
    cid = ident.ok(*(args + ["tiny", "sh", "-c", "echo hello-%s; exec sleep 600" % tag]))
    cleanup.containers.append(cid)
    j = eng_json(engine, "%s/containers/%s/json" % (V, cid))
    ip = j["NetworkSettings"]["Networks"][n + "-net"]["IPAddress"]
    assert ip, "no address on a bridge network: %r" % j["NetworkSettings"]
    o = Objs()
    o.name, o.cid, o.net, o.net_name, o.vol, o.ip, o.tag = n, cid, net, n + "-net", vol, ip, tag
    o.mountpoint = eng_json(engine, "%s/volumes/%s" % (V, vol))["Mountpoint"]
    return o


@pytest.mark.timeout(150)
def test_read_others_redacted_inspect(engine, readers, cleanup, hostdir):
    root, reader, plain = readers
    ro = make_rich(engine, root, cleanup, "rich0", hostdir)
    mine = make_rich(engine, reader, cleanup, "rich%d" % READER)

    # the CLI parses the redacted answer
    out = reader.ok("container", "inspect", ro.name)
    j = json.loads(out)[0]
    assert j["Id"] == ro.cid
    env = j["Config"]["Env"]
    assert "SECRET=" in env and "PLAIN=" in env, env
    assert "hunter2" not in out, "secret env value leaked"
    for m in j["Mounts"]:
        assert m.get("Source", "") == "", m
    assert hostdir not in out and ro.mountpoint not in out, "mount source leaked"
    for netname, ep in j["NetworkSettings"]["Networks"].items():
        assert ep.get("IPAddress", "") == "" and ep.get("Gateway", "") == "", ep
    assert ro.ip not in out, "address leaked"
    assert reader.ok("inspect", "-f", "{{.Name}} {{.State.Running}}", ro.cid[:12]) == \
        "/%s true" % ro.name
    # straight at the engine, the values are there (the test means something)
    raw_eng = api(engine.sock, "GET", "%s/containers/%s/json" % (V, ro.cid)).body.decode()
    assert "hunter2" in raw_eng and hostdir in raw_eng and ro.ip in raw_eng

    # raw: valid JSON with an exact length, same redaction by name
    r = reader.api("GET", "%s/containers/%s/json" % (V, ro.name))
    assert r.status == 200, r
    assert int(r.headers.get("content-length", -1)) == len(r.body), r.headers
    body = r.body.decode()
    assert "hunter2" not in body and hostdir not in body and ro.ip not in body
    assert r.json()["Name"] == "/" + ro.name

    # volume and network inspect of others' objects: mount point and subnets blanked
    vj = json.loads(reader.ok("volume", "inspect", ro.vol))[0]
    assert vj["Name"] == ro.vol and vj.get("Mountpoint", "") == "", vj
    nout = reader.ok("network", "inspect", ro.net_name)
    nj = json.loads(nout)[0]
    assert nj["Id"] == ro.net
    assert ro.ip not in nout, "address leaked in network inspect: %s" % nout
    for cfg in (nj.get("IPAM") or {}).get("Config") or []:
        assert cfg.get("Subnet", "") == "" and cfg.get("Gateway", "") == "", cfg

    # its own container is not redacted
    own = reader.ok("container", "inspect", mine.name)
    oj = json.loads(own)[0]
    assert "SECRET=hunter2-" + mine.tag in oj["Config"]["Env"]
    assert oj["NetworkSettings"]["Networks"][mine.net_name]["IPAddress"] == mine.ip
    assert any(m.get("Source") == mine.mountpoint for m in oj["Mounts"]), oj["Mounts"]
    # root (no redact) sees its own container unredacted too
    assert "hunter2-rich0" in root.ok("container", "inspect", ro.name)

    # read_others is not write_others
    before = container_facts(engine, ro.cid)
    for args in (["stop", "-t", "0", ro.name], ["exec", ro.name, "true"], ["rm", "-f", ro.name],
                 ["volume", "rm", ro.vol], ["network", "rm", ro.net_name]):
        cli_refused_404(reader.cli(*args), "reader: docker %s" % " ".join(args), args)
    assert container_facts(engine, ro.cid) == before


@pytest.mark.timeout(150)
def test_read_others_logs_cp_export(engine, readers, cleanup):
    """read_others without redact: logs, archive, export, attach of another's
    container pass (and writes still do not)."""
    root, _reader, plain = readers
    o = make_objects(engine, root, cleanup, "ro0", network=False)
    assert "hello-ro0" in wait_logs(plain, o.name, "hello-ro0")
    tarbytes = plain.cli("cp", o.name + ":/etc/passwd", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(tarbytes)) as t:
        assert b"nobody" in t.extractfile("passwd").read()
    p = plain.cli("export", o.name, timeout=60)
    assert p.returncode == 0 and len(p.stdout) > 100000, (p.returncode, p.stderr)
    j = json.loads(plain.ok("container", "inspect", o.name))[0]
    assert "SECRET=s3cret-ro0" in j["Config"]["Env"]     # no redact in this profile
    cli_refused_404(plain.cli("exec", o.name, "true"), "plain reader exec")
    cli_refused_404(plain.cli("kill", o.name), "plain reader kill")
    assert container_facts(engine, o.cid)["Running"]


@pytest.mark.parametrize("what", ["logs", "cp", "export", "diff"])
@pytest.mark.timeout(150)
def test_read_others_reads_with_redact(engine, readers, cleanup, what):
    """read_others with redact: redact is about inspect answers; logs,
    archive, export and changes of another's container still work."""
    root, reader, _plain = readers
    o = make_objects(engine, root, cleanup, "rl0", network=False)
    wait_logs(root, o.name, "hello-rl0")
    args = {"logs": ["logs", o.name], "cp": ["cp", o.name + ":/etc/passwd", "-"],
            "export": ["export", o.name], "diff": ["diff", o.name]}[what]
    want = root.cli(*args, timeout=60)          # the owner's view
    assert want.returncode == 0, want.stderr
    p = reader.cli(*args, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    if what == "export":
        assert len(p.stdout) > 100000
    elif what == "diff":
        # the container may have changed nothing yet: same answer as the owner's
        assert p.stdout == want.stdout, (p.stdout[:300], want.stdout[:300])
    else:
        assert p.stdout == want.stdout and p.stdout, (p.stdout[:300], want.stdout[:300])


# --------------------------------------------------------------------------
# 6. without read_others: every read of another's container is a 404
# --------------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_no_read_others_reads_refused(engine, tenants, cleanup):
    root, nobody = tenants
    o = make_objects(engine, root, cleanup, "nr0", network=False)
    wait_logs(root, o.name, "hello-nr0")
    for args in (["cp", o.name + ":/etc/passwd", "-"], ["cp", o.cid[:12] + ":/etc", "-"],
                 ["export", o.name], ["export", o.cid], ["logs", o.name], ["logs", o.cid[:12]],
                 ["logs", "-f", o.name], ["attach", "--no-stdin", o.name]):
        p = nobody.cli(*args, timeout=30)
        cli_refused_404(p, "nobody: docker %s" % " ".join(args))
        assert b"hello-nr0" not in p.stdout and b"root:x:0:0" not in p.stdout
    c = "%s/containers/%s" % (V, o.cid)
    answers = nobody.batch([
        req("GET", c + "/archive?path=%2Fetc%2Fpasswd"),
        req("HEAD", c + "/archive?path=%2Fetc%2Fpasswd"),
        req("GET", c + "/export"),
        req("GET", c + "/logs?stdout=1&stderr=1&follow=1", timeout=8),
        req("POST", c + "/attach?stream=1&logs=1&stdout=1",
            None, {"Connection": "Upgrade", "Upgrade": "tcp"}, timeout=8),
        req("GET", c + "/attach/ws?stream=1&stdout=1", None,
            {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=8),
    ])
    for r, what in zip(answers, ("archive GET", "archive HEAD", "export", "logs -f", "attach",
                                 "attach/ws")):
        if what == "archive HEAD":
            assert r.status == 404, (what, r)
            assert "x-docker-container-path-stat" not in r.headers, r.headers
        else:
            check_refusal(r, 404, "ownership")
            assert b"hello-nr0" not in r.body and b"root:x:0:0" not in r.body


# --------------------------------------------------------------------------
# 7. rate limits
# --------------------------------------------------------------------------

def ping_burst(sock, n):
    """n requests on n connections, all sent before any answer is read.
    Returns (responses, seconds)."""
    from conftest import parse_responses, read_all
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(sock)
        conns.append(s)
    data = b"GET /v1.41/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    t0 = time.time()
    for s in conns:
        s.sendall(data)
    out = []
    for s in conns:
        rs = parse_responses(read_all(s, 10, 15))
        out.append(rs[0] if rs else None)
        s.close()
    return out, time.time() - t0


def rate_gate(engine, dockgate, confdirs, rate):
    gate = start_gate(dockgate, {"version": 1, "default_profile": "p",
                                 "profiles": {"p": {"trusted_registries": ["docker.io/library"],
                                                    "rate": rate}}})
    return Ident(gate, 0, confdirs(0)), Ident(gate, NOBODY, confdirs(NOBODY))


def until_ok(ident_or_sock, timeout=15):
    """Poll GET /_ping until 200; returns the last answer."""
    deadline = time.time() + timeout
    while True:
        if isinstance(ident_or_sock, str):
            r = api(ident_or_sock, "GET", V + "/_ping")
        else:
            r = ident_or_sock.api("GET", V + "/_ping")
        if r.status == 200 or time.time() > deadline:
            return r
        time.sleep(0.5)


@pytest.mark.timeout(120)
def test_rate_requests_per_second(engine, dockgate, confdirs):
    root, nobody = rate_gate(engine, dockgate, confdirs,
                             {"requests_per_second": 5, "burst": 5})
    sock = root.gate.sock
    answers, secs = ping_burst(sock, 20)
    assert all(a is not None for a in answers), answers
    ok = [a for a in answers if a.status == 200]
    limited = [a for a in answers if a.status == 429]
    assert len(ok) + len(limited) == 20, answers
    # at most the burst plus what refilled meanwhile (+1 for rounding)
    assert len(ok) <= 5 + int(5 * secs) + 1, (len(ok), secs)
    assert limited, "no 429 in a burst of 20 within %.2f s" % secs
    for a in limited:
        check_refusal(a, 429, "rate")
        ra = a.header("Retry-After")
        assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, a
    # another identity has its own bucket
    r = nobody.api("GET", V + "/_ping")
    assert r.status == 200, r
    # after waiting, requests succeed again
    time.sleep(int(limited[0].header("Retry-After")) + 1.0)
    r = api(sock, "GET", V + "/_ping")
    assert r.status == 200, r
    assert root.ok("version", "--format", "{{.Server.APIVersion}}")


@pytest.mark.timeout(120)
def test_rate_concurrent_streams(engine, dockgate, confdirs, cleanup):
    root, nobody = rate_gate(engine, dockgate, confdirs, {"concurrent": 1})
    sock = root.gate.sock
    name = uniq("gw-conc")
    cid = engine.ok("run", "-d", "--name", name, "--network", "none", "tiny", "sh", "-c",
                    "echo first-line; exec sleep 600")
    cleanup.containers.append(cid)
    assert until_ok(sock).status == 200

    # (a) docker logs -f holds the only slot
    proc = subprocess.Popen(root.cmd("logs", "-f", name), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=root.env())
    try:
        line = proc.stdout.readline()
        assert b"first-line" in line, (line, proc.poll())
        r = api(sock, "GET", V + "/_ping")
        check_refusal(r, 429, "rate")
        assert (r.headers.get("retry-after") or "").strip().isdigit(), r.headers
        p = root.cli("ps", timeout=30)
        assert p.returncode != 0 and b"dockgate: " in p.stderr and b"(rule rate)" in p.stderr, \
            p.stderr
        # another identity is not affected
        assert nobody.api("GET", V + "/_ping").status == 200
    finally:
        proc.kill()
        proc.wait(10)
    assert until_ok(sock).status == 200
    assert root.ok("ps", "-q", "--no-trunc", "--filter", "name=" + name) == cid

    # (b) a raw GET /events stream
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(sock)
    try:
        s.sendall(b"GET /v1.41/events HTTP/1.1\r\nHost: d\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(4096)
            assert b, "events stream closed: %r" % head
            head += b
        assert head.startswith(b"HTTP/1.1 200"), head
        r = api(sock, "GET", V + "/_ping")
        check_refusal(r, 429, "rate")
        r = api(sock, "GET", V + "/containers/json")
        check_refusal(r, 429, "rate")
    finally:
        s.close()
    assert until_ok(sock).status == 200



# --------------------------------------------------------------------------
# owner_sees: an admin profile sees (reads) a tenant profile's objects
# --------------------------------------------------------------------------

ADMIN_UID = 65533


@pytest.mark.timeout(180)
def test_owner_sees_admin_reads_tenants(engine, dockgate, confdirs, cleanup):
    """Three identities: tenant uid 0 and uid 65534 (profile tenant), admin
    uid 65533 (profile admin: ownership, owner_sees ["tenant"]), and a
    profile `other` no one sees. The admin's ps / volume ls / network ls
    show its own objects and the tenants', not other's; it inspects and
    reads logs of a tenant's container, but stopping, exec and removal are
    404; tenants still see only their own."""
    policy = {"version": 1, "default_profile": "tenant",
              "identities": [{"match": {"uid": ADMIN_UID}, "profile": "admin"},
                             {"match": {"uid": NOBODY}, "profile": "other"}],
              "profiles": {"tenant": gw_profile(), "other": gw_profile(),
                           "admin": gw_profile(owner_sees=["tenant"])}}
    gate = start_gate(dockgate, policy)
    tenant = Ident(gate, 0, confdirs(0))
    other = Ident(gate, NOBODY, confdirs(NOBODY))
    admin = Ident(gate, ADMIN_UID, confdirs(ADMIN_UID))
    t = make_objects(engine, tenant, cleanup, "sees-t")
    o = make_objects(engine, other, cleanup, "sees-o")
    a = make_objects(engine, admin, cleanup, "sees-a")
    for obj, prof in ((t, "tenant"), (o, "other"), (a, "admin")):
        assert eng_labels(engine, obj.cid).get("dockgate.profile") == prof
    # forged profile labels do not stick
    forged = other.ok("create", "--network", "none", "--label", "dockgate.profile=tenant",
                      "--label", "dockgate.owner=uid:0", "tiny", "true")
    cleanup.containers.append(forged)
    assert eng_labels(engine, forged)["dockgate.profile"] == "other"
    before = engine_state(engine, [t, o])

    names = admin.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert t.name in names and a.name in names and o.name not in names, names
    assert admin.ok("ps", "-a", "--filter", "label=team=blue", "--format",
                    "{{.Names}}").split().count(t.name) == 1
    vols = admin.ok("volume", "ls", "-q").split()
    assert t.vol in vols and a.vol in vols and o.vol not in vols, vols
    nets = admin.ok("network", "ls", "--format", "{{.Name}}").split()
    assert t.net_name in nets and a.net_name in nets and o.net_name not in nets, nets
    r = admin.api("GET", V + "/containers/json?all=1")
    assert r.status == 200 and int(r.headers["content-length"]) == len(r.body), r
    assert {c["Id"] for c in r.json()} >= {t.cid, a.cid} and o.cid not in r.body.decode()

    # reads of the tenant's objects pass, unredacted
    j = json.loads(admin.ok("container", "inspect", t.name))[0]
    assert "SECRET=s3cret-sees-t" in j["Config"]["Env"]
    wait_logs(admin, t.cid[:12], "hello-sees-t")
    assert admin.api("GET", "%s/volumes/%s" % (V, t.vol)).status == 200
    # writes do not
    for method, path, body in (("POST", "/containers/%s/stop" % t.cid, None),
                               ("POST", "/containers/%s/exec" % t.cid, {"Cmd": ["id"]}),
                               ("DELETE", "/containers/%s?force=1" % t.cid, None),
                               ("DELETE", "/volumes/%s" % t.vol, None),
                               ("POST", "/exec/%s/start" % t.exec_id, {"Detach": True}),
                               ("GET", "/containers/%s/json" % o.cid, None),
                               ("GET", "/containers/%s/logs?stdout=1" % o.name, None)):
        check_refusal(admin.api(method, V + path, body), 404, "ownership")
    # the tenant still sees only its own
    names = tenant.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert t.name in names and a.name not in names and o.name not in names
    check_refusal(tenant.api("GET", "%s/containers/%s/json" % (V, a.cid)), 404, "ownership")
    assert_same(before, engine_state(engine, [t, o]))


@pytest.mark.timeout(150)
def test_system_df_shows_only_owned(engine, tenants, cleanup):
    """`docker system df -v` (no filters parameter) is filtered in the
    answer: each identity's containers and volumes only, no build cache
    records, and an exact Content-Length."""
    root, nobody = tenants
    a = make_objects(engine, root, cleanup, "df-r", network=False)
    b = make_objects(engine, nobody, cleanup, "df-n", network=False)
    for me, mine, theirs in ((root, a, b), (nobody, b, a)):
        out = me.ok("system", "df", "-v")
        assert mine.name in out and mine.vol in out, out
        assert theirs.name not in out and theirs.vol not in out, out
        r = me.api("GET", V + "/system/df")
        assert r.status == 200 and int(r.headers["content-length"]) == len(r.body), r
        j = r.json()
        assert {c["Id"] for c in j["Containers"]} == {mine.cid}
        assert all((v.get("Labels") or {}).get(OWNER_KEY) == me.owner for v in j["Volumes"] or [])
        assert not j.get("BuildCache")
    # at the engine, both are there
    j = eng_json(engine, V + "/system/df")
    assert {a.cid, b.cid} <= {c["Id"] for c in j["Containers"]}


@pytest.mark.timeout(150)
def test_build_labelled_with_owner(engine, dockgate, confdirs, cleanup):
    """An image built through dockgate under ownership carries the builder's
    owner and profile labels; a forged owner label is overwritten; another
    identity cannot save or push it (404), while pulled images stay shared."""
    gate = start_gate(dockgate, {"version": 1, "default_profile": "builders",
                                 "profiles": {"builders": gw_profile(
                                     build=True, local_images=["local/"])}})
    nobody = Ident(gate, NOBODY, confdirs(NOBODY))
    img = "local/" + uniq("gwbuild").lower() + ":1"
    nobody.ok("build", "-q", "--label", "dockgate.owner=uid:0", "--label", "team=blue",
              "-t", img, "-", input="FROM tiny\nRUN true\n", timeout=120)
    cleanup.images.append(img)
    labels = eng_json(engine, "%s/images/%s/json" % (V, img))["Config"]["Labels"]
    assert labels[OWNER_KEY] == nobody.owner and labels["dockgate.profile"] == "builders", labels
    assert labels["team"] == "blue"
    # Reading the image out (save, push) is the builder's; pulled images stay shared.
    root = Ident(gate, 0, confdirs(0))
    assert nobody.cli("save", img).returncode == 0
    check_refusal(root.api("GET", "%s/images/%s/get" % (V, img)), 404, "ownership")
    check_refusal(root.api("GET", "%s/images/get?names=tiny&names=%s" % (
        V, urllib.parse.quote(img, safe=""))), 404, "ownership")
    check_refusal(root.api("POST", "%s/images/%s/push" % (V, img.split(":")[0]),
                           headers={"X-Registry-Auth": "e30="}), 404, "ownership")
    assert root.cli("save", "tiny").returncode == 0
