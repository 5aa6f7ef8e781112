"""Operations (issue 6): the audit log field by field, credentials never
logged, audit log reopen on SIGHUP, --dry-run, --eval and --check over a
table of cases, Prometheus metrics and /healthz, the privilege drop with
--user, and --max-connections."""

import base64
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import (DOCKER, DOCKGATE_BIN, REPO, assert_refusal, docker_cli, free_port, http_req,
                      needs_dockgate, parse_responses, ping_ok, raw, uniq, wait_unix_accepts,
                      _cli_env)

pytestmark = needs_dockgate

MEM_DEFAULT = 64 * 1024 * 1024
CERTS_BIN = os.environ.get("DG_CERTS_BIN", os.path.join(REPO, "certs", "dockgate-certs"))

AUDIT_FIELDS = ("time", "conn", "listener", "peer", "profile", "method", "path", "endpoint",
                "verdict", "rule", "reason", "mutations", "dry_run", "status", "bytes_in",
                "bytes_out", "duration_ms")

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def policy_p(engine=None, **extra):
    prof = {"trusted_registries": ["docker.io/library"] + ([engine.trusted] if engine else []),
            "memory": {"default": "64m", "max": "1g"}}
    prof.update(extra)
    return {"version": 1, "default_profile": "p", "profiles": {"p": prof}}


def read_audit(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for ln in f:
            if ln.strip():
                out.append(json.loads(ln))
    return out


def wait_audit(path, pred, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        lines = [x for x in read_audit(path) if pred(x)]
        if lines or time.time() > deadline:
            return lines
        time.sleep(0.05)


def wait_log(dg, needle, since=0, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = dg.log_text()[since:]
        if needle in t:
            return t
        time.sleep(0.05)
    return None


def container_exists(engine, name):
    return docker_cli(engine.host, "inspect", "--type", "container", name).returncode == 0


def create_req(name, body, extra_headers=None):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    h = {"Content-Type": "application/json", "Connection": "close"}
    h.update(extra_headers or {})
    return http_req("POST", "/v1.41/containers/create?name=" + name, h, body)


def one(sock, req, timeout=15):
    data = raw(sock, req, read_timeout=timeout)
    rs = parse_responses(data)
    assert rs, "no response to %r" % req[:200]
    return rs[0], data


# --------------------------------------------------------------------------
# audit log
# --------------------------------------------------------------------------

def _check_common(x, dg, profile="p"):
    for k in AUDIT_FIELDS:
        assert k in x, "audit line lacks %r: %r" % (k, x)
    assert TIME_RE.match(x["time"]), x["time"]
    assert isinstance(x["conn"], int) and not isinstance(x["conn"], bool), x
    assert x["listener"] == "unix:" + dg.sock, x
    assert x["peer"] == {"uid": os.geteuid(), "gid": os.getegid(), "pid": os.getpid()}, x
    assert x["profile"] == profile, x
    assert isinstance(x["reason"], str) and isinstance(x["rule"], str), x
    assert isinstance(x["mutations"], list) and all(isinstance(m, str) for m in x["mutations"]), x
    assert x["dry_run"] is False, x
    # the sign is checked by test_audit_duration_never_negative
    assert isinstance(x["duration_ms"], (int, float)) and x["duration_ms"] < 20000, x
    assert not isinstance(x["duration_ms"], bool)


@pytest.mark.timeout(120)
def test_audit_lines_field_by_field(engine, dockgate, cleanup, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit])
    t0 = time.time()

    # allowed
    req_a = http_req("GET", "/v1.41/containers/json?all=1", {"Connection": "close"})
    ra, data_a = one(dg.sock, req_a)
    assert ra.status == 200
    # denied (403)
    nd = uniq("auddeny")
    cleanup.containers.append(nd)
    req_d = create_req(nd, {"Image": "tiny", "HostConfig": {"Privileged": True}})
    rd, data_d = one(dg.sock, req_d)
    msg = assert_refusal(rd, 403)
    assert "privileged" in msg
    # malformed (400): a key given twice
    nm = uniq("audbad")
    cleanup.containers.append(nm)
    req_m = create_req(nm, '{"Image":"tiny","Image":"tiny"}')
    rm, data_m = one(dg.sock, req_m)
    assert_refusal(rm, 400)
    # mutated: memory default injected
    nc = uniq("audmut")
    cleanup.containers.append(nc)
    req_c = create_req(nc, {"Image": "tiny", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
    rc, data_c = one(dg.sock, req_c)
    assert rc.status == 201, rc
    assert engine.ok("inspect", "-f", "{{.HostConfig.Memory}}", nc) == str(MEM_DEFAULT)

    lines = wait_audit(audit, lambda x: nc in x.get("path", ""))
    assert lines, read_audit(audit)
    all_lines = read_audit(audit)
    by_path = {x["path"]: x for x in all_lines}
    t1 = time.time()

    xa = by_path["/v1.41/containers/json?all=1"]
    _check_common(xa, dg)
    assert (xa["method"], xa["endpoint"], xa["verdict"]) == ("GET", "GET /containers/json", "allow")
    assert xa["rule"] == "endpoints" and xa["mutations"] == [] and xa["status"] == 200, xa
    assert xa["bytes_in"] == len(req_a) and xa["bytes_out"] == len(data_a), (xa, len(data_a))

    xd = by_path["/v1.41/containers/create?name=" + nd]
    _check_common(xd, dg)
    assert (xd["method"], xd["endpoint"], xd["verdict"]) == (
        "POST", "POST /containers/create", "deny"), xd
    assert xd["rule"] == "privileged" and "privileged" in xd["reason"] and xd["status"] == 403, xd
    assert xd["bytes_in"] == len(req_d) and xd["bytes_out"] == len(data_d), xd

    xm = by_path["/v1.41/containers/create?name=" + nm]
    _check_common(xm, dg)
    assert xm["verdict"] == "malformed" and xm["status"] == 400 and xm["method"] == "POST", xm
    assert xm["reason"], xm
    assert xm["bytes_out"] == len(data_m), xm

    xc = by_path["/v1.41/containers/create?name=" + nc]
    _check_common(xc, dg)
    assert (xc["method"], xc["endpoint"], xc["verdict"], xc["status"]) == (
        "POST", "POST /containers/create", "mutate", 201), xc
    assert any("Memory" in m for m in xc["mutations"]), xc
    assert xc["bytes_in"] == len(req_c) and xc["bytes_out"] == len(data_c), xc

    # four connections, four ids; times within the test's window
    assert len({x["conn"] for x in (xa, xd, xm, xc)}) == 4
    for x in (xa, xd, xm, xc):
        ts = datetime.datetime.strptime(x["time"][:23], "%Y-%m-%dT%H:%M:%S.%f")
        off = x["time"][23:]
        if off != "Z":
            sign = 1 if off[0] == "+" else -1
            ts -= sign * datetime.timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
        ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
        assert t0 - 2 <= ts <= t1 + 2, (x["time"], t0, t1)
    # dockgate(8): "created with mode 0640" (this suite runs with umask 022 or stricter)
    mode = os.stat(audit).st_mode & 0o777
    assert mode & ~0o640 == 0 and mode & 0o600 == 0o600, "audit log mode %o" % mode
    assert t1 - t0 < 60


@pytest.mark.timeout(90)
def test_audit_duration_never_negative(engine, dockgate, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit])
    n = 0
    deadline = time.time() + 12     # spans two of libevent's 5 s clock resyncs
    while time.time() < deadline:
        raw(dg.sock, create_req(uniq("durneg"), {"Image": "tiny",
                                                 "HostConfig": {"Privileged": True}}))
        raw(dg.sock, create_req(uniq("durneg"), '{"Image":"tiny","Image":"tiny"}'))
        raw(dg.sock, http_req("GET", "/_ping", {"Connection": "close"}))
        n += 3
    wait_audit(audit, lambda x: False, timeout=0.5)
    lines = read_audit(audit)
    assert len(lines) == n, (len(lines), n)
    neg = [(x["verdict"], x["duration_ms"]) for x in lines if x["duration_ms"] < 0]
    assert not neg, "%d of %d audit lines have a negative duration_ms: %r" % (
        len(neg), n, neg[:10])


@pytest.mark.timeout(90)
def test_audit_covers_exec_and_attach(engine, dockgate, cleanup, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit])
    name = uniq("audexec")
    cleanup.containers.append(name)
    assert dg.ok("run", "--name", name, "--network", "none", "tiny", "echo", "hi") == "hi"
    engine.ok("rm", name)
    dg.ok("run", "-d", "--name", name, "--network", "none", "tiny", "sleep", "60")
    p = dg.cli("exec", "-i", name, "cat", input=b"hi\n", timeout=30)
    assert p.stdout == b"hi\n", p
    time.sleep(1)
    eps = [x["endpoint"] for x in read_audit(audit)]
    assert "POST /containers/*/attach" in eps, eps
    assert "POST /exec/*/start" in eps, eps


@pytest.mark.timeout(120)
def test_registry_credentials_never_logged(engine, dockgate, cleanup, tmp_path):
    audit = str(tmp_path / "audit.log")
    secret = "s3cr3t-" + uniq("pw")
    auth = base64.urlsafe_b64encode(json.dumps(
        {"username": "dguser", "password": secret, "serveraddress": engine.trusted}).encode()).decode()
    cfg = base64.urlsafe_b64encode(json.dumps(
        {engine.trusted: {"username": "dguser", "password": secret}}).encode()).decode()
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit, "-v", "-v"])
    ref = "%s/library/tiny" % engine.trusted
    cleanup.images.append(ref + ":latest")
    # pull with X-Registry-Auth (the registry ignores it)
    rq = http_req("POST", "/v1.41/images/create?fromImage=%s&tag=latest" % ref,
                  {"X-Registry-Auth": auth, "Connection": "close"})
    r, _ = one(dg.sock, rq, timeout=30)
    assert r.status == 200, r
    # denied pull (untrusted) with the same header
    rq = http_req("POST", "/v1.41/images/create?fromImage=%s/evil/tiny&tag=latest" %
                  engine.untrusted, {"X-Registry-Auth": auth, "Connection": "close"})
    r, _ = one(dg.sock, rq)
    assert_refusal(r, 403)
    # a build-style X-Registry-Config and an Authorization header on an allowed GET
    rq = http_req("GET", "/v1.41/version", {"X-Registry-Config": cfg,
                                            "Authorization": "Bearer " + secret,
                                            "Connection": "close"})
    r, _ = one(dg.sock, rq)
    assert r.status == 200
    # a malformed request carrying the header
    rq = http_req("POST", "/v1.41/containers/create", {"X-Registry-Auth": auth,
                                                       "Content-Type": "application/json",
                                                       "Connection": "close"}, "{bad json")
    r, _ = one(dg.sock, rq)
    assert_refusal(r, 400)
    # the docker CLI's own login-less push path: docker pull through the gate
    dg.ok("pull", ref + ":latest", timeout=60)
    lines = wait_audit(audit, lambda x: x.get("path", "").startswith("/v1.41/version"))
    assert lines
    time.sleep(0.3)
    with open(audit) as f:
        a = f.read()
    log = dg.log_text()
    assert "images/create" in a
    for text, what in ((a, "audit file"), (log, "daemon log")):
        for needle in (secret, auth, cfg, auth[:40], cfg[:40]):
            assert needle not in text, "registry credential in the %s: %r" % (what, needle)


def test_daemon_log_not_forgeable(engine, dockgate, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit])
    for path in ("/v1.41/plugins%0Adockgate:%20warning:%20FORGED%20line",
                 "/v1.41/plugins%0D%0Adockgate:%20info:%20FORGED%20crlf",
                 "/v1.41/plugins/x%1b[31mESCAPE"):
        r, _ = one(dg.sock, http_req("GET", path, {"Connection": "close"}))
        assert_refusal(r, 403, allowed=(400, 404))
    time.sleep(0.3)
    # the audit file: one JSON object per line whatever the path holds
    lines = read_audit(audit)
    assert len(lines) == 3, lines
    log = dg.log_text()
    forged = [ln for ln in log.splitlines() if ln.startswith("dockgate: warning: FORGED") or
              ln.startswith("dockgate: info: FORGED")]
    assert not forged, "a client forged daemon log lines: %r" % forged
    assert "\x1b" not in log and "\r" not in log, "raw control bytes in the daemon log: %r" % [
        ln for ln in log.splitlines() if "\x1b" in ln or "\r" in ln]


def test_audit_to_stdout(engine, tmp_path):
    """--audit - : the JSON lines go to standard output, the log stays on
    standard error."""
    sock = str(tmp_path / "dg.sock")
    pol = str(tmp_path / "policy.json")
    with open(pol, "w") as f:
        json.dump(policy_p(engine), f)
    out, err = open(str(tmp_path / "out"), "wb"), open(str(tmp_path / "err"), "wb")
    p = subprocess.Popen([DOCKGATE_BIN, "--listen", "unix:" + sock, "--upstream",
                          "unix:" + engine.sock, "--policy", pol, "--audit", "-", "-v"],
                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    out.close()
    err.close()
    try:
        assert wait_unix_accepts(sock, 10, p) is None
        assert ping_ok(sock)
        r, _ = one(sock, http_req("GET", "/v1.41/plugins", {"Connection": "close"}))
        assert_refusal(r, 403)
        time.sleep(0.3)
    finally:
        p.terminate()
        rc = p.wait(15)
    assert rc == 0, rc
    lines = [json.loads(ln) for ln in open(str(tmp_path / "out")) if ln.strip()]
    assert [(x["path"], x["status"]) for x in lines] == [
        ("/_ping", 200), ("/v1.41/plugins", 403)], lines
    errtext = open(str(tmp_path / "err")).read()
    assert '"verdict"' not in errtext, errtext


def test_audit_reopen_on_sighup(engine, dockgate, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit])
    r, _ = one(dg.sock, http_req("GET", "/v1.41/version?before", {"Connection": "close"}))
    assert r.status == 200
    assert wait_audit(audit, lambda x: x["path"] == "/v1.41/version?before")
    os.rename(audit, audit + ".1")
    since = len(dg.log_text())
    os.kill(dg.pid, signal.SIGHUP)
    assert wait_log(dg, "reloaded", since) is not None, dg.log_text()[since:]
    r, _ = one(dg.sock, http_req("GET", "/v1.41/version?after", {"Connection": "close"}))
    assert r.status == 200
    new = wait_audit(audit, lambda x: x["path"] == "/v1.41/version?after")
    assert new, "no new line in a new file after SIGHUP (%r)" % os.listdir(str(tmp_path))
    old = [x["path"] for x in read_audit(audit + ".1")]
    assert "/v1.41/version?before" in old and "/v1.41/version?after" not in old, old
    assert "/v1.41/version?before" not in [x["path"] for x in read_audit(audit)]


# --------------------------------------------------------------------------
# --dry-run
# --------------------------------------------------------------------------

def test_dry_run_forwards_denied_and_audits(engine, dockgate, cleanup, tmp_path):
    audit = str(tmp_path / "audit.log")
    dg = dockgate(policy=policy_p(engine), extra_args=["--audit", audit, "--dry-run"])
    name = uniq("dryrun")
    cleanup.containers.append(name)
    out = dg.ok("create", "--privileged", "--network", "none", "--name", name, "tiny", "true")
    assert out, out
    assert engine.ok("inspect", "-f", "{{.HostConfig.Privileged}}", name) == "true"
    lines = wait_audit(audit, lambda x: x.get("path", "").endswith("name=" + name))
    assert len(lines) == 1, read_audit(audit)
    x = lines[0]
    assert x["verdict"] == "deny" and x["dry_run"] is True, x
    assert x["rule"] == "privileged" and x["status"] == 201, x
    # allowed requests are audited with dry_run false
    ok = [y for y in read_audit(audit) if y["verdict"] in ("allow", "mutate")]
    assert ok and all(y["dry_run"] is False for y in ok), ok
    # malformed requests are still refused in dry-run mode
    bad = uniq("drybad")
    cleanup.containers.append(bad)
    r, _ = one(dg.sock, create_req(bad, '{"Image":"tiny","Image":"tiny"}'))
    assert_refusal(r, 400)
    assert not container_exists(engine, bad)


# --------------------------------------------------------------------------
# --eval and --check
# --------------------------------------------------------------------------

EVAL_POLICY = {
    "version": 1, "default_profile": "p",
    "identities": [{"match": {"cert_cn": "admin"}, "profile": "admin"},
                   {"match": {"uid": 1001}, "profile": "nonroot"}],
    "profiles": {
        "p": {"trusted_registries": ["docker.io/library"],
              "memory": {"default": "64m", "max": "1g"}},
        "admin": {"extends": "p", "privileged": True},
        "nonroot": {"extends": "p", "run_as_non_root": True},
    }}


def run_gate(args, timeout=30):
    p = subprocess.run([DOCKGATE_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def evaldir():
    d = tempfile.mkdtemp(prefix="dg-e2e-eval.", dir="/tmp")
    with open(os.path.join(d, "policy.json"), "w") as f:
        json.dump(EVAL_POLICY, f)
    bodies = {
        "plain": {"Image": "tiny", "Cmd": ["true"]},
        "priv": {"Image": "tiny", "HostConfig": {"Privileged": True}},
        "user1000": {"Image": "tiny", "User": "1000"},
        "userroot": {"Image": "tiny", "User": "0"},
        "noimageuser": {"Image": "tiny-user"},
        "rootimage": {"Image": "tiny"},
        "mem": {"Image": "tiny", "HostConfig": {"Memory": 2 * 1024 ** 3}},
    }
    for k, v in bodies.items():
        with open(os.path.join(d, k + ".json"), "w") as f:
            json.dump(v, f)
    with open(os.path.join(d, "dup.json"), "w") as f:
        f.write('{"Image":"tiny","image":"busybox"}')
    with open(os.path.join(d, "bad.json"), "w") as f:
        f.write('{"Image":')
    yield d
    shutil.rmtree(d, ignore_errors=True)


# (as, method, path, body, exit, verdict, rule, check(body))
EVAL_CASES = [
    ("uid=1000,gid=1000", "GET", "/v1.41/containers/json", None, 0, "allow", "endpoints", None),
    ("uid=1000,gid=1000", "POST", "/v1.41/containers/create", "plain", 0, "mutate", None,
     lambda b: b["HostConfig"]["Memory"] == MEM_DEFAULT and b["Cmd"] == ["true"]
     and "no-new-privileges:true" in b["HostConfig"]["SecurityOpt"]),
    ("uid=1000,gid=1000", "POST", "/v1.41/containers/create", "priv", 1, "deny", "privileged",
     None),
    ("cn=admin", "POST", "/v1.41/containers/create", "priv", 0, "mutate", None,
     lambda b: b["HostConfig"]["Privileged"] is True),
    ("uid=1000,gid=1000", "POST", "/v1.41/containers/create", "mem", 1, "deny", "memory", None),
    ("uid=1000,gid=1000", "GET", "/v1.41/plugins", None, 1, "deny", "endpoints", None),
    ("uid=1000,gid=1000", "POST", "/v1.41/containers/create", "dup", 1, "malformed", None, None),
    ("uid=1000,gid=1000", "POST", "/v1.41/containers/create", "bad", 1, "malformed", None, None),
    ("uid=1000,gid=1000", "GET", "/v1.41//containers/json", None, 1, "malformed", None, None),
    ("uid=1001,gid=1000", "POST", "/v1.41/containers/create", "user1000", 0, "mutate", None,
     lambda b: b["User"] == "1000"),
    ("uid=1001,gid=1000", "POST", "/v1.41/containers/create", "userroot", 1, "deny",
     "run_as_non_root", None),
]


@pytest.mark.parametrize("case", EVAL_CASES, ids=lambda c: "%s-%s-%s-%s" % (
    c[0].split(",")[0], c[1], c[2].rsplit("/", 1)[-1], c[3]))
def test_eval_table(evaldir, case):
    ident, method, path, body, code, verdict, rule, check = case
    args = ["--eval", "--policy", os.path.join(evaldir, "policy.json"), "--as", ident, method, path]
    if body:
        args.append(os.path.join(evaldir, body + ".json"))
    rc, out, err = run_gate(args)
    assert rc == code, (rc, out, err)
    res = json.loads(out)
    for k in ("verdict", "rule", "reason", "profile", "body"):
        assert k in res, res
    assert res["verdict"] == verdict, res
    if rule:
        assert res["rule"] == rule, res
    if verdict == "deny":
        assert rule in res["reason"] or res["reason"], res
    if check:
        assert check(res["body"]), res


@pytest.mark.parametrize("args", [
    [],                                              # no METHOD PATH
    ["GET"],
    ["POST", "/v1.41/containers/create", "/nonexistent/body.json"],
    ["--as", "bogus=1", "GET", "/_ping"],
])
def test_eval_usage_errors(evaldir, args):
    base = ["--eval", "--policy", os.path.join(evaldir, "policy.json")]
    if "--as" not in args:
        base += ["--as", "uid=1000,gid=1000"]
    rc, out, err = run_gate(base + args)
    assert rc == 2, (rc, out, err)


def test_eval_needs_engine(engine, evaldir):
    pol = os.path.join(evaldir, "policy.json")
    # run_as_non_root with an empty User: the image's user is a fact from the engine
    rc, out, err = run_gate(["--eval", "--policy", pol, "--as", "uid=1001,gid=1000",
                             "POST", "/v1.41/containers/create",
                             os.path.join(evaldir, "noimageuser.json")])
    assert rc == 2, (rc, out, err)
    both = out + err
    assert "tiny-user" in both and ("upstream" in both or "engine" in both), both
    # with the engine: a verdict either way
    rc, out, err = run_gate(["--eval", "--policy", pol, "--as", "uid=1001,gid=1000",
                             "--upstream", "unix:" + engine.sock, "POST",
                             "/v1.41/containers/create", os.path.join(evaldir, "noimageuser.json")])
    assert rc == 0, (rc, out, err)
    assert json.loads(out)["verdict"] in ("allow", "mutate"), out
    rc, out, err = run_gate(["--eval", "--policy", pol, "--as", "uid=1001,gid=1000",
                             "--upstream", "unix:" + engine.sock, "POST",
                             "/v1.41/containers/create", os.path.join(evaldir, "rootimage.json")])
    assert rc == 1, (rc, out, err)
    res = json.loads(out)
    assert res["verdict"] == "deny" and res["rule"] == "run_as_non_root", res


# (name, text, key path fragment, "line:col" or None)
CHECK_CASES = [
    ("unknown-key", '{"version":1,"default_profile":"p","profiles":{\n  "p":{"privilegd":true}}}',
     "profiles.p.privilegd", None),
    ("duplicate", '{"version":1,"default_profile":"p","profiles":{\n  "p":{"privileged":true,\n'
     '     "privileged":false}}}', "profiles.p.privileged", "3:"),
    ("wrong-type", '{"version":1,"default_profile":"p","profiles":{\n  "p":{"privileged":"yes"}}}',
     "profiles.p.privileged", None),
    ("bad-size", '{"version":1,"default_profile":"p","profiles":{"p":{"memory":{"max":"lots"}}}}',
     "profiles.p.memory.max", None),
    ("syntax", '{"version":1,"default_profile":"p","profiles":{\n  "p":{"privileged":true,}}}',
     "profiles.p", "2:26"),
    ("cycle", '{"version":1,"profiles":{"p":{"extends":"q"},"q":{"extends":"p"}}}',
     "extends", None),
    ("unknown-default", '{"version":1,"default_profile":"zz","profiles":{"p":{}}}',
     "default_profile", None),
    ("identity-type", '{"version":1,"profiles":{"p":{}},"identities":[{"match":{"uid":"x"},'
     '"profile":"p"}]}', "identities[0].match.uid", None),
    ("unknown-profile-ref", '{"version":1,"profiles":{"p":{}},"identities":[{"match":{"uid":5},'
     '"profile":"nope"}]}', "identities[0]", None),
]


@pytest.mark.parametrize("case", CHECK_CASES, ids=lambda c: c[0])
def test_check_bad_policies(tmp_path, case):
    name, text, keypath, linecol = case
    pol = str(tmp_path / "policy.json")
    with open(pol, "w") as f:
        f.write(text)
    rc, out, err = run_gate(["--check", "--policy", pol])
    both = out + err
    assert rc == 1, (rc, both)
    assert keypath in both, "key path %r not named: %r" % (keypath, both)
    if linecol:
        assert re.search(r"%s:%s" % (re.escape(pol), re.escape(linecol)), both), \
            "line:column %r not given: %r" % (linecol, both)


def test_check_good_policy(evaldir, engine):
    rc, out, err = run_gate(["--check", "--policy", os.path.join(evaldir, "policy.json")])
    assert rc == 0, (rc, out, err)
    for prof in ("p", "admin", "nonroot"):
        assert prof in out
    # a tcp upstream: the summary notes textual host_paths matching
    rc, out, err = run_gate(["--check", "--policy", os.path.join(evaldir, "policy.json"),
                             "--upstream", "tcp:127.0.0.1:1"])
    assert rc == 0, (rc, out, err)
    assert "host_paths" in out + err


# --------------------------------------------------------------------------
# metrics and health
# --------------------------------------------------------------------------

def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        assert r.status == 200
        text = r.read().decode()
    vals = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        k, v = ln.rsplit(" ", 1)
        vals[k] = float(v)
    return text, vals


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_status(port, want, timeout=15):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = healthz(port)
        if st == want:
            return st
        time.sleep(0.2)
    return st


@pytest.mark.timeout(120)
def test_metrics_counters(engine, dockgate, cleanup):
    mport = free_port()
    dg = dockgate(policy=policy_p(engine), extra_args=["--metrics", "tcp:127.0.0.1:%d" % mport])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            text, v0 = scrape(mport)
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("metrics endpoint not up")
    for name in ("dockgate_requests_total", "dockgate_denials_total",
                 "dockgate_upstream_errors_total", "dockgate_connections",
                 "dockgate_bytes_total", "dockgate_decision_seconds",
                 "dockgate_request_seconds", "dockgate_policy_reloads_total"):
        assert ("# TYPE %s " % name) in text, name
    for h in ("dockgate_decision_seconds", "dockgate_request_seconds"):
        assert "# TYPE %s histogram" % h in text
        assert '%s_bucket{le="+Inf"}' % h in v0, h
        assert "%s_sum" % h in v0 and "%s_count" % h in v0, h

    def g(v, k):
        return v.get(k, 0.0)

    allow_k = 'dockgate_requests_total{verdict="allow",endpoint="GET /containers/json"}'
    deny_k = 'dockgate_requests_total{verdict="deny",endpoint="POST /containers/create"}'
    den_k = 'dockgate_denials_total{rule="privileged"}'
    mal_k = 'dockgate_requests_total{verdict="malformed",endpoint="POST /containers/create"}'
    sent = received = 0
    for _ in range(3):
        rq = http_req("GET", "/v1.41/containers/json", {"Connection": "close"})
        r, data = one(dg.sock, rq)
        assert r.status == 200
        sent, received = sent + len(rq), received + len(data)
    for _ in range(2):
        rq = create_req(uniq("metdeny"), {"Image": "tiny", "HostConfig": {"Privileged": True}})
        r, data = one(dg.sock, rq)
        assert r.status == 403
        sent, received = sent + len(rq), received + len(data)
    rq = create_req(uniq("metbad"), '{"Image":"tiny","Image":"tiny"}')
    r, data = one(dg.sock, rq)
    assert r.status == 400
    sent, received = sent + len(rq), received + len(data)
    time.sleep(0.2)
    _, v1 = scrape(mport)
    assert g(v1, allow_k) - g(v0, allow_k) == 3, (v0.get(allow_k), v1.get(allow_k))
    assert g(v1, deny_k) - g(v0, deny_k) == 2
    assert g(v1, den_k) - g(v0, den_k) == 2
    assert g(v1, mal_k) - g(v0, mal_k) == 1, v1
    assert g(v1, 'dockgate_denials_total{rule="malformed"}') - \
        g(v0, 'dockgate_denials_total{rule="malformed"}') == 1, v1
    din = g(v1, 'dockgate_bytes_total{direction="in"}') - g(v0, 'dockgate_bytes_total{direction="in"}')
    dout = g(v1, 'dockgate_bytes_total{direction="out"}') - \
        g(v0, 'dockgate_bytes_total{direction="out"}')
    assert (din, dout) == (sent, received), ((din, dout), (sent, received))
    for h in ("dockgate_decision_seconds", "dockgate_request_seconds"):
        assert g(v1, h + "_count") >= g(v0, h + "_count") + 5, h
        assert g(v1, h + '_bucket{le="+Inf"}') == g(v1, h + "_count"), h

    # the connections gauge follows open client connections
    ck = 'dockgate_connections{state="client"}'
    base = g(v1, ck)
    socks = []
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(dg.sock)
            socks.append(s)
        time.sleep(0.3)
        _, v2 = scrape(mport)
        assert g(v2, ck) == base + 3, (base, v2.get(ck))
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        _, v3 = scrape(mport)
        if g(v3, ck) == base:
            break
        time.sleep(0.1)
    assert g(v3, ck) == base, (base, v3.get(ck))

    # a tunnel while an exec session is open
    name = uniq("mettun")
    cleanup.containers.append(name)
    dg.ok("run", "-d", "--name", name, "--network", "none", "tiny", "sleep", "60")
    p = subprocess.Popen([DOCKER, "exec", "-i", name, "cat"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_cli_env(dg.host))
    try:
        p.stdin.write(b"x\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"x\n"
        _, v4 = scrape(mport)
        assert g(v4, 'dockgate_connections{state="tunnel"}') >= 1, v4
        p.stdin.close()
        p.wait(20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    tk = 'dockgate_connections{state="tunnel"}'
    deadline = time.time() + 5
    while time.time() < deadline:
        _, v4b = scrape(mport)
        if g(v4b, tk) == g(v0, tk):
            break
        time.sleep(0.1)
    assert g(v4b, tk) == g(v0, tk), "tunnel gauge did not return: %r" % v4b.get(tk)

    # a reload is counted
    os.kill(dg.pid, signal.SIGHUP)
    time.sleep(0.5)
    _, v5 = scrape(mport)
    assert g(v5, 'dockgate_policy_reloads_total{result="ok"}') == \
        g(v0, 'dockgate_policy_reloads_total{result="ok"}') + 1


@pytest.mark.timeout(120)
def test_healthz_follows_engine(engine, dockgate, tmp_path):
    relay = str(tmp_path / "relay.sock")

    def start_relay():
        p = subprocess.Popen(["socat", "UNIX-LISTEN:%s,fork,unlink-early" % relay,
                              "UNIX-CONNECT:%s" % engine.sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        err = wait_unix_accepts(relay, 10, p)
        assert err is None, err
        return p

    relay_proc = start_relay()
    try:
        mport = free_port()
        dg = dockgate(upstream=relay, extra_args=["--metrics", "tcp:127.0.0.1:%d" % mport])
        assert wait_status(mport, 200) == 200
        relay_proc.terminate()
        relay_proc.wait(10)
        if os.path.exists(relay):
            os.unlink(relay)
        assert wait_status(mport, 503) == 503, "healthz not 503 with the engine gone"
        r, _ = one(dg.sock, http_req("GET", "/_ping", {"Connection": "close"}))
        assert_refusal(r, 502)
        _, v = scrape(mport)
        assert v.get("dockgate_upstream_errors_total", 0) >= 1
        relay_proc = start_relay()
        assert wait_status(mport, 200) == 200, "healthz not back to 200"
        assert ping_ok(dg.sock)
    finally:
        if relay_proc.poll() is None:
            relay_proc.terminate()
            relay_proc.wait(10)


# --------------------------------------------------------------------------
# privilege drop
# --------------------------------------------------------------------------

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            out[k] = v.split()
    return out


@pytest.mark.timeout(150)
def test_user_nobody_privilege_drop(engine, dockgate, cleanup):
    if os.geteuid() != 0:
        pytest.skip("needs root to start dockgate and drop to nobody")
    import pwd
    nobody = pwd.getpwnam("nobody")
    pd = tempfile.mkdtemp(prefix="dg-e2e-user.", dir="/tmp")
    # the private engine's directory is mkdtemp's 0700: let nobody traverse
    # it to the socket (the socket itself stays root:docker 0660)
    edir = os.path.dirname(engine.sock)
    emode = os.stat(edir).st_mode & 0o7777
    try:
        if engine.owned:
            os.chmod(edir, emode | 0o011)
        os.chmod(pd, 0o755)
        pol = os.path.join(pd, "policy.json")
        with open(pol, "w") as f:
            json.dump(policy_p(engine), f)
        os.chmod(pol, 0o644)
        # a TLS listener too: handshakes run after the drop, under seccomp
        tdir = os.path.join(pd, "tls")
        certs = [CERTS_BIN]
        subprocess.run(certs + ["ca", "--out", os.path.join(pd, "ca")], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(certs + ["server", "--ca", os.path.join(pd, "ca"), "--out", tdir,
                                "--name", "localhost", "--ip", "127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL)
        cdir = os.path.join(pd, "client")
        subprocess.run(certs + ["client", "--ca", os.path.join(pd, "ca"), "--out", cdir,
                                "--cn", "ci"], check=True, stdout=subprocess.DEVNULL)
        os.chmod(tdir, 0o755)
        os.chown(os.path.join(tdir, "key.pem"), 0, nobody.pw_gid)
        os.chmod(os.path.join(tdir, "key.pem"), 0o640)
        tport = free_port()
        dg = dockgate(policy=pol, extra_args=[
            "--user", "nobody", "--listen", "tcp:127.0.0.1:%d" % tport,
            "--tls-cert", os.path.join(tdir, "cert.pem"),
            "--tls-key", os.path.join(tdir, "key.pem"),
            "--tls-ca", os.path.join(tdir, "ca.pem")])
        tls_env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": cdir}
        thost = "tcp://127.0.0.1:%d" % tport
        st = proc_status(dg.pid)
        assert st["Uid"] == [str(nobody.pw_uid)] * 4, st["Uid"]
        assert st["Gid"] == [str(nobody.pw_gid)] * 4, st["Gid"]
        assert st["NoNewPrivs"] == ["1"], st.get("NoNewPrivs")
        # A sanitizer build has no seccomp filter (LeakSanitizer needs
        # ptrace); the binary says which sandbox it has.
        ver = subprocess.run([DOCKGATE_BIN, "--version"], capture_output=True,
                             text=True).stdout
        want = "2" if "sandbox: seccomp" in ver else "0"
        assert st["Seccomp"] == [want], (st.get("Seccomp"), ver)
        eng_gid = os.stat(engine.sock).st_gid
        assert str(eng_gid) in st["Groups"], (eng_gid, st["Groups"])
        assert st["CapEff"] == ["0000000000000000"], st["CapEff"]

        assert dg.ok("run", "--rm", "--network", "none", "tiny", "echo", "hi") == "hi"
        name = uniq("nobody")
        cleanup.containers.append(name)
        dg.ok("run", "-d", "--name", name, "--network", "none", "tiny", "sleep", "60")
        p = dg.cli("exec", "-i", name, "cat", input=b"hi\n", timeout=30)
        assert p.returncode == 0 and p.stdout == b"hi\n", p
        blob = os.urandom(64 * 1024)
        p = dg.cli("exec", "-i", name, "wc", "-c", input=blob, timeout=30)
        assert p.stdout.split()[0] == str(len(blob)).encode(), p
        # attach
        aid = engine.ok("run", "-d", "-i", "--network", "none", "tiny", "cat")
        cleanup.containers.append(aid)
        ap = subprocess.Popen([DOCKER, "attach", aid], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_cli_env(dg.host))
        try:
            time.sleep(1.0)
            ap.stdin.write(b"hello attach\n")
            ap.stdin.flush()
            assert ap.stdout.readline() == b"hello attach\n"
            engine.ok("kill", aid)
            ap.communicate(timeout=20)
        finally:
            if ap.poll() is None:
                ap.kill()
                ap.wait()
        # over TLS: run, and exec -i with half-close
        p = docker_cli(thost, "run", "--rm", "--network", "none", "tiny", "echo", "tls",
                       env=tls_env, timeout=60)
        assert p.returncode == 0 and p.stdout == b"tls\n", p
        p = docker_cli(thost, "exec", "-i", name, "cat", input=b"hi tls\n", env=tls_env,
                       timeout=30)
        assert p.returncode == 0 and p.stdout == b"hi tls\n", p
        # a denial still works, then SIGHUP reloads a policy that allows it
        p = dg.cli("create", "--privileged", "--network", "none", "tiny", "true")
        assert p.returncode != 0 and b"dockgate:" in p.stderr, p
        with open(pol, "w") as f:
            json.dump(policy_p(engine, privileged=True), f)
        since = len(dg.log_text())
        os.kill(dg.pid, signal.SIGHUP)
        assert wait_log(dg, "reloaded", since) is not None, dg.log_text()[since:]
        pname = uniq("nobodypriv")
        cleanup.containers.append(pname)
        dg.ok("create", "--privileged", "--network", "none", "--name", pname, "tiny", "true")
        assert "TLS reload failed" not in dg.log_text()[since:], dg.log_text()[since:]
        p = docker_cli(thost, "version", env=tls_env, timeout=30)
        assert p.returncode == 0, p
        # a policy nobody cannot read: reload fails, the old one stays
        os.chmod(pol, 0o600)
        since = len(dg.log_text())
        os.kill(dg.pid, signal.SIGHUP)
        assert wait_log(dg, "reload failed", since) is not None, dg.log_text()[since:]
        pname2 = uniq("nobodypriv")
        cleanup.containers.append(pname2)
        dg.ok("create", "--privileged", "--network", "none", "--name", pname2, "tiny", "true")
        assert dg.alive()
        assert proc_status(dg.pid)["Uid"] == [str(nobody.pw_uid)] * 4
    finally:
        if engine.owned:
            os.chmod(edir, emode)
        shutil.rmtree(pd, ignore_errors=True)


# --------------------------------------------------------------------------
# --max-connections
# --------------------------------------------------------------------------

def test_max_connections(dockgate):
    dg = dockgate(extra_args=["--max-connections", "5"])
    held = []
    # the harness's start-up probe connection must have been released first
    deadline = time.time() + 5
    while time.time() < deadline and not ping_ok(dg.sock):
        time.sleep(0.1)
    time.sleep(0.3)
    try:
        # five real, served connections, kept open
        for i in range(5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(dg.sock)
            held.append(s)
            s.sendall(http_req("GET", "/_ping"))
            b = s.recv(65536)
            assert b.startswith(b"HTTP/1.1 200"), (i, b)
        data = raw(dg.sock, http_req("GET", "/_ping", {"Connection": "close"}), read_timeout=5)
        rs = parse_responses(data)
        assert rs, "the 6th client got no answer: %r" % data
        assert_refusal(rs[0], 503)
        # the held connections still work
        held[0].sendall(http_req("GET", "/_ping"))
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200")
        # once two close, new clients are served
        held.pop().close()
        held.pop().close()
        deadline = time.time() + 5
        ok = False
        while time.time() < deadline and not ok:
            ok = ping_ok(dg.sock)
            if not ok:
                time.sleep(0.1)
        assert ok, "no new client served after others closed"
        assert ping_ok(dg.sock)
    finally:
        for s in held:
            s.close()
