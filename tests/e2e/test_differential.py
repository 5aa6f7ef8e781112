"""Differential tests: what the ENGINE makes of some bytes vs what dockgate's
policy decided about the same bytes.

1. Container-create bodies with awkward key spellings (case variants, the
   Unicode folds Go's encoding/json applies: U+017F LATIN SMALL LETTER LONG S
   for `s`, U+212A KELVIN SIGN for `k`), the create wrapper's deprecated
   top-level host-config fields (no HostConfig, HostConfig null, HostConfig
   present), nulls, wrong types and duplicates.  For each body:
     E_raw  = inspect of a container the engine created from the raw bytes
     V      = `dockgate --eval` verdict and forwarded `body`
     E_fwd  = inspect of a container the engine created from V's body
     E_gate = inspect of a container created from the raw bytes THROUGH dockgate
   The policy allows everything the bodies ask for, so dockgate's canonical
   view must be the engine's view: E_raw == E_fwd == E_gate == V.body for the
   tested fields (apart from the defaults the profile injects: Memory,
   PidsLimit and the CPU limit, which must then show up as mutations).  Keys
   the engine folds together given twice must be refused with 400.  CPU
   limits are compared as the engine programs them (_eff_cpus).
2. Request-path forms sent straight to the engine and through dockgate: the
   same status class where the engine routes; 400 from dockgate where the
   engine would redirect (301).
3. The same as 1 for exec create (GET /exec/{id}/json, and the process's pwd
   and env), container update (HostConfig after updating containers made
   from one base: the engine merges an update into what is there),
   volume create (GET /volumes/{name}) and network create
   (GET /networks/{id}).  Refusals the profile owes (403) and duplicate
   spellings (400) are shown to matter: the engine honoured that spelling
   (for host paths, a container mounting the raw bytes' volume reads what
   host_paths keeps out).
"""

import atexit
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import (DOCKGATE_BIN, http_req, needs_dockgate, parse_responses, raw, uniq)

pytestmark = needs_dockgate

LONG_S = "\u017f"     # folds to s/S in Go's encoding/json
KELVIN = "\u212a"     # folds to k/K

POLICY = {
    "version": 1,
    "default_profile": "p",
    "profiles": {
        "p": {
            "privileged": True,
            "host_namespaces": True,
            "host_paths": ["/tmp"],
            "trusted_registries": ["docker.io/library"],
            "capabilities": ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"],
            "no_new_privileges": False,
            "published_ports": "any",
            "memory": {"default": "1g", "max": "8g"},
            "pids": {"default": 1024, "max": 8192},
            "cpus": {"max": 0.5},
        }
    },
}
MEM_DEFAULT = 1 << 30
PIDS_DEFAULT = 1024
CPU_MAX = 0.5           # CPUs: also the injected default (cpus.max without a default)

# HostConfig fields compared, and Config fields
HC_FIELDS = ("Privileged", "Binds", "Memory", "PidMode", "CapAdd", "NetworkMode",
             "PidsLimit", "CpusetCpus", "ReadonlyRootfs", "IpcMode", "SecurityOpt",
             "NanoCpus", "CpuQuota", "CpuPeriod")
CFG_FIELDS = ("Image", "User")

MB64 = 64 << 20
# a bind source of our own: /tmp itself holds the engine socket (never allowed)
BIND_DIR = tempfile.mkdtemp(prefix="dg-diff-bind.", dir="/tmp")
atexit.register(shutil.rmtree, BIND_DIR, True)
POLICY["profiles"]["p"]["host_paths"] = [BIND_DIR]
MB96 = 96 << 20


def j(obj):
    return json.dumps(obj, ensure_ascii=False)


def _eff_cpus(hc):
    """The CPU limit the engine programs for a host config, in CPUs (daemon
    getCPUResources: NanoCpus gives a quota over a 100 ms period, then a
    non-zero CpuPeriod or CpuQuota replaces its part): None = no limit,
    inf = unlimited (a negative quota)."""
    nano = hc.get("NanoCpus") or 0
    quota = hc.get("CpuQuota") or 0
    period = hc.get("CpuPeriod") or 0
    p, q = 0, 0
    if nano > 0:
        p, q = 100000, nano * 100000 // 10**9
    if period:
        p = period
    if quota:
        q = quota
    if q < 0:
        return float("inf")
    if q == 0:
        return None
    return q / (p or 100000)


def _s(word):
    """Replace every s/S by U+017F."""
    return word.replace("s", LONG_S).replace("S", LONG_S)


def _k(word):
    return word.replace("k", KELVIN).replace("K", KELVIN)


# (id, raw body text, expect_400_from_dockgate)
# Bodies are TEXT so duplicates and exact escapes survive.
def _cases():
    c = []
    add = lambda cid, text, expect=None: c.append((cid, text, expect))
    full_hc = {"Privileged": True, "Binds": [BIND_DIR + ":/mnt/t:ro"], "Memory": MB64,
               "PidMode": "host", "CapAdd": ["NET_ADMIN"], "NetworkMode": "none",
               "PidsLimit": 100, "IpcMode": "host", "ReadonlyRootfs": True}
    # -- plain, as the CLI sends it
    add("plain", j({"Image": "tiny", "Cmd": ["true"], "HostConfig": full_hc}))
    # -- case variants of HostConfig field names
    add("hc-lower", j({"Image": "tiny", "HostConfig": {k.lower(): v for k, v in full_hc.items()}}))
    add("hc-upper", j({"Image": "tiny", "HostConfig": {k.upper(): v for k, v in full_hc.items()}}))
    add("hc-mixed", j({"Image": "tiny", "HostConfig": {
        "pRiViLeGeD": True, "bINDS": [BIND_DIR + ":/mnt/x"], "MEMory": MB96, "pidmode": "host",
        "capadd": ["SYS_PTRACE"], "networkmode": "host"}}))
    # -- Unicode folds in field names that contain s / k
    add("fold-binds-longs", j({"Image": "tiny", "HostConfig": {
        _s("Binds"): [BIND_DIR + ":/mnt/u"], "NetworkMode": "none"}}))
    add("fold-networkmode-kelvin", j({"Image": "tiny", "HostConfig": {
        _k("NetworkMode"): "host"}}))
    add("fold-networkmode-kelvin-lower", j({"Image": "tiny", "HostConfig": {
        _k("networkmode"): "host"}}))
    add("fold-pidslimit-longs", j({"Image": "tiny", "HostConfig": {
        _s("PidsLimit"): 77, "NetworkMode": "none"}}))
    add("fold-readonlyrootfs-longs", j({"Image": "tiny", "HostConfig": {
        _s("ReadonlyRootfs"): True, "NetworkMode": "none"}}))
    add("fold-securityopt-longs", j({"Image": "tiny", "HostConfig": {
        _s("SecurityOpt"): ["no-new-privileges:true"], "NetworkMode": "none"}}))
    add("fold-cpusetcpus-longs", j({"Image": "tiny", "HostConfig": {
        _s("CpusetCpus"): "0", "NetworkMode": "none"}}))
    add("fold-hostconfig-longs", j({"Image": "tiny", _s("HostConfig"): {
        "Privileged": True, "PidMode": "host", "NetworkMode": "none"}}))
    add("fold-hostconfig-longs-escaped",
        '{"Image":"tiny","Ho\\u017ftConfig":{"Privileged":true,"NetworkMode":"none"}}')
    add("fold-user-longs", j({"Image": "tiny", _s("User"): "1000",
                              "HostConfig": {"NetworkMode": "none"}}))
    add("escaped-key-letters",
        '{"\\u0049mage":"tiny","HostConfig":{"\\u0050rivileged":true,"Pid\\u004dode":"host"}}')
    # -- the wrapper's deprecated top-level host-config fields
    add("toplevel-no-hostconfig", j(dict({"Image": "tiny"}, **full_hc)))
    add("toplevel-hostconfig-null", j(dict({"Image": "tiny", "HostConfig": None}, **full_hc)))
    add("toplevel-hostconfig-empty", j(dict({"Image": "tiny", "HostConfig": {}}, **full_hc)))
    add("toplevel-memory-merged", j({"Image": "tiny", "Memory": MB96,
                                     "HostConfig": {"NetworkMode": "none"}}))
    add("toplevel-memory-inner-wins", j({"Image": "tiny", "Memory": MB96,
                                         "HostConfig": {"Memory": MB64, "NetworkMode": "none"}}))
    add("toplevel-privileged-inner-false", j({"Image": "tiny", "Privileged": True,
                                              "HostConfig": {"NetworkMode": "none"}}))
    add("toplevel-cpuset", j({"Image": "tiny", "Cpuset": "0",
                              "HostConfig": {"NetworkMode": "none"}}))
    add("toplevel-lower-no-hostconfig", j({"Image": "tiny", "privileged": True,
                                           "pidmode": "host", "networkmode": "none"}))
    add("toplevel-kelvin-no-hostconfig", j({"Image": "tiny", _k("NetworkMode"): "host",
                                            _s("Binds"): [BIND_DIR + ":/mnt/v"]}))
    add("toplevel-hostconfig-lower-null", j(dict({"Image": "tiny", "hostconfig": None},
                                                 Privileged=True, NetworkMode="none")))
    # -- nulls
    add("nulls-inner", j({"Image": "tiny", "HostConfig": {
        "Privileged": None, "Binds": None, "CapAdd": None, "Memory": None, "PidMode": None,
        "PidsLimit": None, "NetworkMode": "none"}}))
    add("nulls-toplevel", j({"Image": "tiny", "Privileged": None, "Binds": None,
                             "HostConfig": {"NetworkMode": "none"}}))
    add("user-null", j({"Image": "tiny", "User": None, "HostConfig": {"NetworkMode": "none"}}))
    # -- duplicates: exact and folded spellings -> 400 from dockgate
    add("dup-exact", '{"Image":"tiny","HostConfig":{"Privileged":false,"Privileged":true}}', '400')
    add("dup-case", '{"Image":"tiny","HostConfig":{"Privileged":false,"privileged":true}}', '400')
    add("dup-longs", '{"Image":"tiny","HostConfig":{"Binds":[],"Bind\u017f":["%s:/mnt/d"]}}' % BIND_DIR,
        "400")
    add("dup-kelvin",
        '{"Image":"tiny","HostConfig":{"NetworkMode":"none","Networ\u212aMode":"host"}}', '400')
    add("dup-hostconfig",
        '{"Image":"tiny","HostConfig":{"Privileged":false},"hostconfig":{"Privileged":true}}',
        "400")
    add("dup-hostconfig-longs",
        '{"Image":"tiny","HostConfig":{"Privileged":false},"Ho\u017ftConfig":{"Privileged":true}}',
        "400")
    add("dup-toplevel-image", '{"Image":"tiny","image":"tiny-user"}', '400')
    add("dup-toplevel-fields-no-hostconfig",
        '{"Image":"tiny","Privileged":false,"PRIVILEGED":true}', '400')
    add("dup-escaped",
        '{"Image":"tiny","HostConfig":{"Privileged":false,"\\u0050rivileged":true}}', "400")
    # -- wrong types / number spellings: what the engine refuses must not become acceptable
    add("type-privileged-string", '{"Image":"tiny","HostConfig":{"Privileged":"true"}}')
    add("type-privileged-number", '{"Image":"tiny","HostConfig":{"Privileged":1}}')
    add("type-memory-exponent", '{"Image":"tiny","HostConfig":{"Memory":1e8}}')
    add("type-memory-float", '{"Image":"tiny","HostConfig":{"Memory":67108864.0}}')
    add("type-memory-overflow", '{"Image":"tiny","HostConfig":{"Memory":9223372036854775808}}')
    add("type-pidslimit-float", '{"Image":"tiny","HostConfig":{"PidsLimit":100.0}}')
    add("type-hostconfig-array", '{"Image":"tiny","HostConfig":[]}')
    add("type-hostconfig-string", '{"Image":"tiny","HostConfig":"x"}')
    add("type-binds-string", '{"Image":"tiny","HostConfig":{"Binds":"%s:/mnt/s"}}' % BIND_DIR)
    add("type-capadd-string", '{"Image":"tiny","HostConfig":{"CapAdd":"NET_ADMIN"}}')
    # keys the engine ignores (no fold): dockgate fails closed on unknown fields (403)
    add("key-trailing-space", '{"Image":"tiny","HostConfig":{"Privileged ":true,'
        '"NetworkMode":"none"}}', "403")
    add("key-other-unicode", '{"Image":"tiny","HostConfig":{"Pr\u0131vileged":true,'
        '"NetworkMode":"none"}}', "403")   # dotless i: Go does NOT fold it
    # -- folded spellings of keys the profile does NOT allow: must still be decided (403)
    add("deny-capadd-string", '{"Image":"tiny","HostConfig":{"CapAdd":"SYS_MODULE"}}', "403")
    add("deny-capadd-longs-lower", j({"Image": "tiny", "HostConfig": {
        "capadd": ["SYS_MODULE"]}}), "403")
    add("deny-devices-longs", j({"Image": "tiny", "HostConfig": {_s("Devices"): [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x",
         "CgroupPermissions": "rwm"}]}}), "403")
    add("deny-sysctls-longs", j({"Image": "tiny", "HostConfig": {
        _s("Sysctls"): {"kernel.msgmax": "65536"}}}), "403")
    add("deny-securityopt-longs", j({"Image": "tiny", "HostConfig": {
        _s("SecurityOpt"): ["seccomp=unconfined"]}}), "403")
    add("deny-cgroupparent-toplevel", j({"Image": "tiny", "CgroupParent": "/evil"}), "403")
    add("deny-cgroupparent-toplevel-null-hc", j({"Image": "tiny", "HostConfig": None,
                                                  "cgroupparent": "/evil"}), "403")
    add("deny-untrusted-image-folded", j({"Image": "tiny", "HostConfig": {
        "NetworkMode": "none"}}).replace('"Image"', '"IMAGE"').replace(
        '"tiny"', '"127.0.0.1:1/evil/tiny"', 1), "403")
    add("deny-devices-toplevel-kelvin-hc-null", '{"Image":"tiny","HostConfig":null,'
        '"Device\u017f":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x",'
        '"CgroupPermissions":"rwm"}]}', "403")
    # -- CPU limits (cpus.max 0.5): the engine's effective limit, not one field
    add("cpu-nano", j({"Image": "tiny", "HostConfig": {"NanoCpus": 250000000,
                                                      "NetworkMode": "none"}}))
    add("cpu-nano-longs", j({"Image": "tiny", "HostConfig": {_s("nanocpus"): 400000000,
                                                            "NetworkMode": "none"}}))
    add("cpu-quota-period", j({"Image": "tiny", "HostConfig": {
        "CpuQuota": 20000, "CpuPeriod": 50000, "NetworkMode": "none"}}))
    add("cpu-quota-toplevel", j({"Image": "tiny", "cpuquota": 30000, "NetworkMode": "none"}))
    # the default goes in as a quota over the period given (NanoCpus beside a
    # CpuPeriod is refused by the engine)
    add("cpu-period-only", j({"Image": "tiny", "HostConfig": {"cpuperiod": 50000,
                                                             "NetworkMode": "none"}}))
    add("cpu-nulls", j({"Image": "tiny", "HostConfig": {"NanoCpus": None, "CpuQuota": None,
                                                       "CpuPeriod": None,
                                                       "NetworkMode": "none"}}))
    # a negative quota beside NanoCpus wins in the engine: unlimited
    add("deny-cpu-nano-quota-negative", j({"Image": "tiny", "HostConfig": {
        "NanoCpus": 250000000, "CpuQuota": -1, "NetworkMode": "none"}}), "403")
    add("deny-cpu-nano-longs-quota-negative-lower", j({"Image": "tiny", "HostConfig": {
        _s("NanoCpus"): 250000000, "cpuquota": -1, "NetworkMode": "none"}}), "403")
    add("deny-cpu-quota-short-period", j({"Image": "tiny", "HostConfig": {
        "CPUQUOTA": 30000, "cpuPeriod": 10000, "NetworkMode": "none"}}), "403")
    return c


CASES = _cases()

# refusals that must be shown to matter: what the engine made of the raw bytes
CREATE_HONOURED = {
    "deny-cpu-nano-quota-negative": lambda e: _eff_cpus(e) == float("inf"),
    "deny-cpu-nano-longs-quota-negative-lower": lambda e: _eff_cpus(e) == float("inf"),
    "deny-cpu-quota-short-period": lambda e: (_eff_cpus(e) or 0) > CPU_MAX,
}

# where the engine gives back a default / normalised value that the body did not carry
def _norm(field, value):
    # defaults the engine fills in by itself (same for every way of sending)
    if field == "IpcMode" and value in (None, "", "private", "shareable"):
        return ""
    if field == "SecurityOpt" and isinstance(value, list):
        value = [x for x in value if x != "label=disable"] or None
    if field in ("Binds", "CapAdd", "SecurityOpt") and value in (None, []):
        return None
    if field in ("PidMode", "IpcMode", "CpusetCpus", "User") and value is None:
        return ""
    if field == "NetworkMode" and value in (None, "", "default"):
        return "default"
    if field in ("Privileged", "ReadonlyRootfs") and value is None:
        return False
    if field in ("Memory", "NanoCpus", "CpuQuota", "CpuPeriod") and value is None:
        return 0
    return value


def _api(sock, method, path, body=None, timeout=60):
    h = {"Connection": "close"}
    if body is not None:
        h["Content-Type"] = "application/json"
    data = raw(sock, http_req(method, path, h, body=body or b""), read_timeout=timeout,
               total_timeout=timeout)
    rs = parse_responses(data)
    assert rs, "no response to %s %s" % (method, path)
    return rs[0]


def _create(sock, body_bytes, name):
    return _api(sock, "POST", "/v1.41/containers/create?name=" + name, body_bytes)


def _inspect(engine, cid):
    r = _api(engine.sock, "GET", "/v1.41/containers/%s/json" % cid)
    assert r.status == 200, r
    d = r.json()
    out = {f: _norm(f, d["HostConfig"].get(f)) for f in HC_FIELDS}
    out.update({"Config." + f: _norm(f, d["Config"].get(f)) for f in CFG_FIELDS})
    # inspect keeps Image as given; normalise the reference
    return out


def _body_view(body):
    """The forwarded body's values the way the engine reads a CANONICAL body
    (exact key names, HostConfig object)."""
    hc = body.get("HostConfig") or {}
    out = {f: _norm(f, hc.get(f)) for f in HC_FIELDS}
    if out["CpusetCpus"] == "" and body.get("Cpuset"):
        out["CpusetCpus"] = body["Cpuset"]
    out.update({"Config." + f: _norm(f, body.get(f)) for f in CFG_FIELDS})
    return out


def _eval(tmpdir, body_text):
    pol = os.path.join(tmpdir, "policy.json")
    if not os.path.exists(pol):
        with open(pol, "w") as f:
            json.dump(POLICY, f)
    bf = os.path.join(tmpdir, "body.json")
    with open(bf, "wb") as f:
        f.write(body_text.encode())
    p = subprocess.run([DOCKGATE_BIN, "--eval", "--policy", pol, "--as", "uid=0",
                        "POST", "/v1.41/containers/create", bf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        v = json.loads(p.stdout.decode())
    except ValueError:
        raise AssertionError("--eval printed no JSON (rc %d): %r %r" % (
            p.returncode, p.stdout, p.stderr))
    return p.returncode, v


def _diff(a, b, skip=()):
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b)
            if k not in skip and a.get(k) != b.get(k)}


@pytest.mark.timeout(150)
def test_create_body_differential(engine, dockgate, cleanup):
    gate = dockgate(policy=POLICY)
    tmpdir = tempfile.mkdtemp(prefix="dg-diff.", dir="/tmp")
    problems = []
    report = []
    for cid, text, expect in CASES:
        body_bytes = text.encode()
        rc, v = _eval(tmpdir, text)
        verdict = v.get("verdict")
        # the engine, straight
        n_raw = uniq("diffraw")
        r_raw = _create(engine.sock, body_bytes, n_raw)
        e_raw = None
        if r_raw.status == 201:
            cleanup.containers.append(n_raw)
            e_raw = _inspect(engine, n_raw)
        # through dockgate, raw bytes
        n_gate = uniq("diffgate")
        r_gate = _create(gate.sock, body_bytes, n_gate)
        if r_gate.status == 201:
            cleanup.containers.append(n_gate)
        report.append("%s: engine %d, eval %s (rc %d), gate %d" % (
            cid, r_raw.status, verdict, rc, r_gate.status))

        if expect == "403":
            if verdict != "deny" or rc != 1:
                problems.append("%s: a folded/alternative spelling of a key the profile does "
                                "not allow was not denied by --eval: %r (engine took it: %d "
                                "%r)" % (cid, v, r_raw.status, e_raw))
            if r_gate.status != 403:
                problems.append("%s: dockgate answered %d %r, not 403 (engine view: %r)" % (
                    cid, r_gate.status, r_gate.body[:300], e_raw))
            honoured = CREATE_HONOURED.get(cid)
            if honoured is not None and (e_raw is None or not honoured(e_raw)):
                problems.append("%s: refusal not shown to matter: the engine made %d %r of "
                                "the raw bytes" % (cid, r_raw.status, e_raw))
            continue
        if expect == "400":
            if verdict != "malformed" or rc != 1:
                problems.append("%s: duplicate/folded key not refused by --eval: %r (engine "
                                "took it: %d %r)" % (cid, v, r_raw.status, e_raw))
            if r_gate.status != 400:
                problems.append("%s: duplicate/folded key: dockgate answered %d, not 400 "
                                "(engine view: %r)" % (cid, r_gate.status, e_raw))
            continue

        if r_raw.status != 201:
            # the engine refuses these bytes: dockgate must not make them acceptable
            if r_gate.status == 201:
                problems.append("%s: engine refuses the raw body (%d %r) but dockgate's "
                                "forwarded version was created" % (cid, r_raw.status, r_raw.body))
            continue

        if verdict not in ("allow", "mutate") or rc != 0:
            problems.append("%s: the engine accepts the body and the profile allows all of "
                            "it, but --eval says %r" % (cid, v))
            continue
        fwd = v["body"]
        muts = v.get("mutations") or []
        allowed_diff = set()
        # injected defaults: only where the engine's own view was "unset"
        if e_raw["Memory"] == 0:
            allowed_diff.add("Memory")
            if _body_view(fwd)["Memory"] != MEM_DEFAULT:
                problems.append("%s: engine Memory 0 but forwarded Memory %r (mutations %r)" % (
                    cid, _body_view(fwd)["Memory"], muts))
        if e_raw["PidsLimit"] in (None, 0, -1):
            allowed_diff.add("PidsLimit")
            if _body_view(fwd)["PidsLimit"] != PIDS_DEFAULT:
                problems.append("%s: engine PidsLimit %r but forwarded PidsLimit %r" % (
                    cid, e_raw["PidsLimit"], _body_view(fwd)["PidsLimit"]))
        if _eff_cpus(e_raw) is None:
            allowed_diff.update(("NanoCpus", "CpuQuota"))
            if _eff_cpus(_body_view(fwd)) != CPU_MAX:
                problems.append("%s: no CPU limit, but the forwarded one is %r CPUs, not the "
                                "default %r" % (cid, _eff_cpus(_body_view(fwd)), CPU_MAX))

        # V.body (policy's canonical view) vs the engine's view of the raw bytes
        bv = _body_view(fwd)
        d = _diff(e_raw, bv, skip=allowed_diff)
        if d:
            problems.append("%s: engine's view of the raw bytes != dockgate's forwarded body: "
                            "%s\n   raw body: %s\n   forwarded: %s" % (cid, d, text, j(fwd)))

        # the forwarded body, created straight on the engine
        n_fwd = uniq("difffwd")
        r_fwd = _create(engine.sock, j(fwd).encode(), n_fwd)
        if r_fwd.status != 201:
            problems.append("%s: engine refuses dockgate's forwarded body: %d %r" % (
                cid, r_fwd.status, r_fwd.body))
        else:
            cleanup.containers.append(n_fwd)
            e_fwd = _inspect(engine, n_fwd)
            d = _diff(e_raw, e_fwd, skip=allowed_diff)
            if d:
                problems.append("%s: engine(raw) != engine(forwarded): %s\n   raw body: %s\n"
                                "   forwarded: %s" % (cid, d, text, j(fwd)))
        # the raw bytes through dockgate
        if r_gate.status != 201:
            problems.append("%s: dockgate refused or failed: %d %r" % (
                cid, r_gate.status, r_gate.body))
        else:
            e_gate = _inspect(engine, n_gate)
            d = _diff(e_raw, e_gate, skip=allowed_diff)
            if d:
                problems.append("%s: engine(raw) != engine(through dockgate): %s\n   raw "
                                "body: %s" % (cid, d, text))
            d = _diff(e_gate, bv)
            if d:
                problems.append("%s: created through dockgate != --eval's forwarded body: %s" % (
                    cid, d))
            eff = _eff_cpus(e_gate)
            if eff is None or eff > CPU_MAX:
                problems.append("%s: created through dockgate with a CPU limit of %r CPUs "
                                "(cpus.max %r): %r" % (cid, eff, CPU_MAX, e_gate))
    shutil.rmtree(tmpdir, ignore_errors=True)
    print("\n".join(report))
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- path forms

PATHS = [
    "/v1.41/containers/json",
    "/v1.41/containers%2Fjson",
    "/v1.41/containers%2fjson",
    "/v1.41/%69nfo",
    "/v1.41.0/info",
    "/v01.41/info",
    "/V1.41/info",
    "/v1.41/info",
    "/info",
    "/_ping",
    "/v1.41/_ping",
    "/containers/json/",
    "/v1.41/containers/json/",
    "/v1.41/containers//json",
    "//v1.41/info",
    "/v1.41//info",
    "/v1.41/./info",
    "/v1.41/../info",
    "/v1.41/containers/../info",
    "/v1.41/%2e/info",
    "/v1.41/%2E%2E/info",
    "/v1.41%2Finfo",
    "/v1.41/containers/json?all=1",
    "/v1.41/containers/json%3Fall=1",
    "/v1.99/info",
    "/v1.41/info/",
    "/v1.41/nonexistent",
]

# unclean after percent-decoding: the contract says dockgate refuses with 400
def _unclean(path):
    import urllib.parse
    p = urllib.parse.unquote(path.split("?")[0])
    return "//" in p or "/./" in p or "/../" in p or p.endswith("/.") or p.endswith("/..")


def _status(sock, path):
    data = raw(sock, http_req("GET", path, {"Connection": "close"}), read_timeout=20,
               total_timeout=30)
    rs = parse_responses(data)
    return rs[0].status if rs else None


@pytest.mark.timeout(90)
def test_path_forms_differential(engine, dockgate):
    gates = {
        "unrestricted": dockgate(),
        "default-profile": dockgate(policy={"version": 1, "default_profile": "p",
                                            "profiles": {"p": {}}}),
    }
    problems = []
    table = []
    for path in PATHS:
        se = _status(engine.sock, path)
        row = [path, se]
        for gname, g in gates.items():
            sg = _status(g.sock, path)
            row.append(sg)
            if sg is None:
                problems.append("%s via %s: no response" % (path, gname))
                continue
            if se in (301, 307, 308) or _unclean(path):
                if sg != 400:
                    problems.append("%s via %s: engine %s (redirect/unclean), dockgate %s, "
                                    "expected 400" % (path, gname, se, sg))
            elif gname == "unrestricted":
                if se // 100 != sg // 100:
                    problems.append("%s via %s: engine %s, dockgate %s (status class differs)"
                                    % (path, gname, se, sg))
            else:
                # restricted profile: routed & allowed reads pass; otherwise a refusal
                if se // 100 == 2 and sg // 100 != 2:
                    problems.append("%s via %s: engine %s, dockgate %s (routed GET of an "
                                    "allowed endpoint refused)" % (path, gname, se, sg))
                if se // 100 != 2 and sg // 100 == 2:
                    problems.append("%s via %s: engine %s, dockgate %s (dockgate succeeded "
                                    "where the engine fails)" % (path, gname, se, sg))
        table.append(row)
    print("\npath | engine | " + " | ".join(gates))
    for row in table:
        print(" | ".join(str(x) for x in row))
    assert not problems, "\n".join(problems)


# ------------------------------------------- exec, update, volume, network bodies
#
# The same comparison for the other bodies the policy canonicalises.  For each
# body:  E_raw  = the engine's object made from the raw bytes,
#        V      = `dockgate --eval` (with --upstream: the engine answers lookups)
#        E_fwd  = the engine's object made from V's forwarded body,
#        E_gate = the object made from the raw bytes through dockgate,
# and E_raw == E_fwd == E_gate == view(V.body) on the compared fields.  Keys
# the engine folds together given twice are refused (400); a refusal the
# profile owes (403) is shown to matter: the engine honoured that spelling.

class Raw(str):
    """JSON text to embed as it is."""


def _esc(key):
    """The key's JSON text with its first letter as a \\u escape."""
    t = j(key)
    return '"\\u%04x%s' % (ord(key[0]), t[2:])


def _mixed(k):
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(k))


# How a struct key may be spelt: each lands on the same Go field.
FORMS = {
    "exact": lambda k: k,
    "lower": str.lower,
    "upper": str.upper,
    "mixed": _mixed,
    "longs": _s,
    "kelvin": _k,
    "longs-kelvin": lambda k: _k(_s(k)),
}


def obj(pairs, form="exact", esc=False):
    """A JSON object as text from (key, value) pairs (duplicates kept); struct
    keys spelt per form, or with an escaped first letter."""
    f = FORMS[form]
    out = []
    for k, v in pairs:
        kt = f(k)
        out.append((_esc(kt) if esc else j(kt)) + ":" + (v if isinstance(v, Raw) else j(v)))
    return Raw("{" + ",".join(out) + "}")


def _eval_req(tmpdir, policy, path, body_text, upstream):
    pol = os.path.join(tmpdir, "policy-%d.json" % id(policy))
    if not os.path.exists(pol):
        with open(pol, "w") as f:
            json.dump(policy, f)
    bf = os.path.join(tmpdir, "body.json")
    with open(bf, "wb") as f:
        f.write(body_text.encode())
    p = subprocess.run([DOCKGATE_BIN, "--eval", "--policy", pol, "--as", "uid=0",
                        "--upstream", "unix:" + upstream, "POST", path, bf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        return p.returncode, json.loads(p.stdout.decode())
    except ValueError:
        raise AssertionError("--eval printed no JSON (rc %d): %r %r" % (
            p.returncode, p.stdout, p.stderr))


class Case:
    def __init__(self, cid, text, expect=None, honoured=None, **meta):
        self.cid = cid
        self.text = text            # raw body text; "@N@" is the object's name
        self.expect = expect        # None, "400" or "403"
        self.honoured = honoured    # refusals: predicate on E_raw (it matters)
        self.meta = meta


class Kind:
    """What differs between bodies: where they go, how the engine's object is
    read back, and how dockgate's forwarded body reads."""
    name = ""
    ok = 201
    policy = None

    def target(self, engine, case, role):
        """A fresh object the request applies to; returns (path, ctx)."""
        raise NotImplementedError

    def observe(self, engine, resp, ctx, case):
        raise NotImplementedError

    def view(self, body, ctx, case):
        raise NotImplementedError

    def check(self, case, e_raw, e_gate):
        """Kind-specific checks on the effective result; a list of problems."""
        return []

    def drop(self, engine, ctx):
        pass


def _kdiff(a, b):
    """_diff() without the private keys (an observation's "_" keys)."""
    return {k: v for k, v in _diff(a, b).items() if not k.startswith("_")}


def _run_kind(kind, cases, engine, gate, tmpdir):
    problems, report = [], []
    for case in cases:
        p_raw, c_raw = kind.target(engine, case, "raw")
        p_gate, c_gate = kind.target(engine, case, "gate")
        t_raw = case.text.replace("@N@", c_raw.get("name", ""))
        t_gate = case.text.replace("@N@", c_gate.get("name", ""))
        rc, v = _eval_req(tmpdir, kind.policy, p_raw, t_raw, engine.sock)
        verdict = v.get("verdict")
        r_raw = _api(engine.sock, "POST", p_raw, t_raw.encode())
        e_raw = kind.observe(engine, r_raw, c_raw, case) if r_raw.status == kind.ok else None
        r_gate = _api(gate.sock, "POST", p_gate, t_gate.encode())
        e_gate = kind.observe(engine, r_gate, c_gate, case) if r_gate.status == kind.ok else None
        report.append("%s %s: engine %d, eval %s (rc %d), gate %d" % (
            kind.name, case.cid, r_raw.status, verdict, rc, r_gate.status))
        where = "%s %s" % (kind.name, case.cid)
        try:
            if case.expect is not None:
                want = {"403": "deny", "400": "malformed"}[case.expect]
                if verdict != want or rc != 1:
                    problems.append("%s: --eval says %r, not %s (engine took it: %d %r)" % (
                        where, v, want, r_raw.status, e_raw))
                if str(r_gate.status) != case.expect:
                    problems.append("%s: dockgate answered %d %r, not %s (engine view: %r)" % (
                        where, r_gate.status, r_gate.body[:300], case.expect, e_raw))
                if case.honoured is not None and (e_raw is None or not case.honoured(e_raw)):
                    problems.append("%s: refusal not shown to matter: the engine made %d %r "
                                    "of the raw bytes %s" % (where, r_raw.status, e_raw,
                                                             r_raw.body[:200]))
                continue
            if r_raw.status != kind.ok:
                # the engine refuses these bytes: dockgate must not make them acceptable
                if r_gate.status == kind.ok:
                    problems.append("%s: engine refuses the raw body (%d %r) but it went "
                                    "through dockgate: %r" % (where, r_raw.status,
                                                              r_raw.body[:200], e_gate))
                continue
            if verdict not in ("allow", "mutate") or rc != 0:
                problems.append("%s: the engine accepts the body and the profile allows all "
                                "of it, but --eval says %r" % (where, v))
                continue
            fwd = v.get("body")
            if fwd is None:
                fwd = json.loads(t_raw)
            bv = kind.view(fwd, c_raw, case)
            d = _kdiff(e_raw, bv)
            if d:
                problems.append("%s: engine's view of the raw bytes != dockgate's forwarded "
                                "body: %s\n   raw body: %s\n   forwarded: %s" % (
                                    where, d, t_raw, j(fwd)))
            p_fwd, c_fwd = kind.target(engine, case, "fwd")
            fwd_text = j(fwd).replace(c_raw.get("name", "\0"), c_fwd.get("name", ""))
            r_fwd = _api(engine.sock, "POST", p_fwd, fwd_text.encode())
            if r_fwd.status != kind.ok:
                problems.append("%s: engine refuses dockgate's forwarded body: %d %r" % (
                    where, r_fwd.status, r_fwd.body[:300]))
            else:
                d = _kdiff(e_raw, kind.observe(engine, r_fwd, c_fwd, case))
                if d:
                    problems.append("%s: engine(raw) != engine(forwarded): %s\n   raw body: "
                                    "%s\n   forwarded: %s" % (where, d, t_raw, fwd_text))
            kind.drop(engine, c_fwd)
            if e_gate is None:
                problems.append("%s: dockgate refused or failed: %d %r" % (
                    where, r_gate.status, r_gate.body[:300]))
                continue
            d = _kdiff(e_raw, e_gate)
            if d:
                problems.append("%s: engine(raw) != engine(through dockgate): %s\n   raw "
                                "body: %s" % (where, d, t_raw))
            problems.extend("%s: %s" % (where, x) for x in kind.check(case, e_raw, e_gate))
        finally:
            kind.drop(engine, c_raw)
            kind.drop(engine, c_gate)
    return problems, report


# --- exec create: GET /exec/{id}/json, and what the process saw (pwd, env)

EXEC_BASE_USER = "1000"
EXEC_BASE_DIR = "/tmp"
EXEC_POLICY = {"version": 1, "default_profile": "p", "profiles": {"p": {
    "privileged": True, "run_as_non_root": True,
    "trusted_registries": ["docker.io/library"]}}}
PROBE = ["sh", "-c", "pwd; env"]


def _detach_bytes(spec):
    """term.ToBytes: the engine's parse of DetachKeys, base64 as inspect shows."""
    import base64
    out = bytearray()
    for k in spec.split(",") if spec else ():
        if len(k) == 1:
            out.append(ord(k))
        elif k.startswith("ctrl-") and len(k) == 6:
            c = k[5]
            out.append(ord(c) - ord("a") + 1 if "a" <= c <= "z" else
                       {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
        else:
            return None
    return base64.b64encode(bytes(out)).decode()


def _exec_output(sock, eid, tty):
    body = j({"Detach": False, "Tty": tty}).encode()
    data = raw(sock, http_req("POST", "/v1.41/exec/%s/start" % eid,
                              {"Content-Type": "application/json"}, body=body),
               read_timeout=10, total_timeout=20)
    head, _, rest = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0] and b" 101 " not in head.split(b"\r\n")[0]:
        return "start failed: %r" % data[:200]
    if not tty:
        out = bytearray()
        while len(rest) >= 8:
            n = int.from_bytes(rest[4:8], "big")
            if rest[0] == 1:
                out += rest[8:8 + n]
            rest = rest[8 + n:]
        rest = bytes(out)
    return rest.decode(errors="replace").replace("\r\n", "\n")


class ExecKind(Kind):
    name = "exec"
    policy = EXEC_POLICY

    def __init__(self, base):
        self.base = base

    def target(self, engine, case, role):
        return "/v1.41/containers/%s/exec" % self.base, {}

    def observe(self, engine, resp, ctx, case):
        eid = resp.json()["Id"]
        r = _api(engine.sock, "GET", "/v1.41/exec/%s/json" % eid)
        assert r.status == 200, r
        d = r.json()
        pc = d["ProcessConfig"]
        out = {"user": pc.get("user", ""), "privileged": pc.get("privileged"),
               "tty": pc.get("tty"), "entrypoint": pc.get("entrypoint"),
               "arguments": pc.get("arguments") or [], "OpenStdin": d["OpenStdin"],
               "OpenStdout": d["OpenStdout"], "OpenStderr": d["OpenStderr"],
               "DetachKeys": d.get("DetachKeys") or ""}
        if case.meta.get("probe"):
            text = _exec_output(engine.sock, eid, bool(pc.get("tty")))
            lines = text.split("\n")
            out["pwd"] = lines[0]
            out["env"] = sorted(x for x in lines if x.startswith("DG_"))
        return out

    def view(self, b, ctx, case):
        cmd = b.get("Cmd") or []
        out = {"user": b.get("User") or EXEC_BASE_USER, "privileged": bool(b.get("Privileged")),
               "tty": bool(b.get("Tty")), "entrypoint": cmd[0] if cmd else None,
               "arguments": cmd[1:], "OpenStdin": bool(b.get("AttachStdin")),
               "OpenStdout": bool(b.get("AttachStdout")),
               "OpenStderr": bool(b.get("AttachStderr")),
               "DetachKeys": _detach_bytes(b.get("DetachKeys") or "")}
        if case.meta.get("probe"):
            out["pwd"] = b.get("WorkingDir") or EXEC_BASE_DIR
            env = {}
            for e in b.get("Env") or []:
                env[e.split("=", 1)[0]] = e
            out["env"] = sorted(x for x in env.values() if x.startswith("DG_"))
        return out


def _exec_cases():
    c = []
    # (a privileged exec as a non-root user cannot start in every sandbox: the
    # full bodies leave Privileged false, its own cases set it)
    full = [("User", "1000:1000"), ("Privileged", False), ("Tty", False),
            ("AttachStdin", False), ("AttachStdout", True), ("AttachStderr", True),
            ("Detach", False), ("DetachKeys", "ctrl-x,ctrl-y"),
            ("Env", ["DG_A=1", "DG_B=two words"]), ("WorkingDir", "/etc"), ("Cmd", PROBE)]
    for form in FORMS:
        c.append(Case("full-" + form, obj(full, form), probe=True))
    c.append(Case("full-escaped", obj(full, esc=True), probe=True))
    c.append(Case("full-tty", obj([(k, True if k == "Tty" else v) for k, v in full], "mixed"),
                  probe=True))
    one = [("Tty", True, "lower"), ("AttachStdin", True, "longs"),
           ("DetachKeys", "ctrl-a", "kelvin"), ("DetachKeys", "q,ctrl-@", "longs-kelvin"),
           ("Privileged", True, "upper"), ("User", "2000", "longs"),
           ("Cmd", ["echo", "a", "b"], "lower"), ("AttachStderr", True, "longs"),
           ("Detach", True, "mixed")]
    for k, val, form in one:
        c.append(Case("field-%s-%s" % (k.lower(), form),
                      obj([("Cmd", ["id"])] * (k != "Cmd") + [(k, val)], form)))
    c.append(Case("field-env-upper", obj([("Cmd", PROBE), ("AttachStdout", True),
                                          ("Env", ["DG_C=3", "DG_C=4"])], "upper"), probe=True))
    c.append(Case("field-workingdir-mixed", obj([("Cmd", PROBE), ("AttachStdout", True),
                                                 ("WorkingDir", "/bin")], "mixed"), probe=True))
    # nulls leave the field unset (the container's user and directory)
    c.append(Case("nulls", obj([(k, None) for k, _ in full if k not in ("Cmd", "AttachStdout")]
                               + [("Cmd", PROBE), ("AttachStdout", True)]), probe=True))
    c.append(Case("user-null-lower", obj([("cmd", ["id"]), ("user", None)])))
    # wrong types: the engine refuses them; dockgate must not make them acceptable
    for cid, text in (("type-cmd-string", '{"Cmd":"id"}'),
                      ("type-cmd-string-lower", '{"cmd":"sh"}'),
                      ("type-cmd-number", '{"Cmd":[1]}'),
                      ("type-cmd-empty", '{"Cmd":[]}'),
                      ("type-cmd-null", '{"Cmd":null}'),
                      ("type-privileged-string", '{"Cmd":["id"],"Privileged":"true"}'),
                      ("type-tty-number", '{"Cmd":["id"],"Tty":1}'),
                      ("type-env-string", '{"Cmd":["id"],"Env":"DG_A=1"}'),
                      ("type-user-number", '{"Cmd":["id"],"User":1000}'),
                      ("type-workingdir-list", '{"Cmd":["id"],"WorkingDir":["/"]}'),
                      ("type-detachkeys-bool", '{"Cmd":["id"],"DetachKeys":false}'),
                      ("type-body-list", '[{"Cmd":["id"]}]')):
        c.append(Case(cid, text))
    # one field, two spellings: 400; the engine takes the last one
    last = lambda f, val: (lambda e: e[f] == val)
    for cid, pairs, f, val in (
            ("dup-exact", [("User", "1000"), ("User", "0")], "user", "0"),
            ("dup-case", [("User", "1000"), ("user", "0")], "user", "0"),
            ("dup-longs", [("User", "1000"), (_s("User"), "0")], "user", "0"),
            ("dup-kelvin", [("DetachKeys", "ctrl-a"), (_k("DetachKeys"), "ctrl-b")],
             "DetachKeys", _detach_bytes("ctrl-b")),
            ("dup-privileged-upper", [("Privileged", False), ("PRIVILEGED", True)],
             "privileged", True),
            ("dup-cmd", [("Cmd", ["id"]), ("cmd", ["true"])], "entrypoint", "true")):
        c.append(Case(cid, obj([("Cmd", ["id"])] * (f != "entrypoint") + pairs), "400",
                      last(f, val)))
    c.append(Case("dup-escaped", Raw('{"Cmd":["id"],"User":"1000","\\u0055ser":"0"}'), "400",
                  last("user", "0")))
    # run_as_non_root under folded keys: 403, and the engine would run as root
    for cid, key, user in (("deny-user-longs", _s("User"), "0"),
                           ("deny-user-upper", "USER", "root"),
                           ("deny-user-lower-uidgid", "user", "0:0"),
                           ("deny-user-escaped-longs", None, "00")):
        text = (obj([("Cmd", ["id"]), (key, user)]) if key else
                Raw('{"Cmd":["id"],"\\u0055\u017fer":"00"}'))
        c.append(Case(cid, text, "403", last("user", user)))
    # keys the engine does not fold are unknown to dockgate: fail closed
    c.append(Case("unknown-trailing-space", '{"Cmd":["id"],"User ":"0"}', "403",
                  last("user", EXEC_BASE_USER)))
    c.append(Case("unknown-dotless-i", '{"Cmd":["id"],"Pr\u0131vileged":true}', "403",
                  last("privileged", False)))
    return c


@pytest.mark.timeout(150)
def test_exec_body_differential(engine, dockgate, cleanup):
    base = uniq("diffexec")
    r = _create(engine.sock, j({"Image": "tiny", "User": EXEC_BASE_USER,
                                "WorkingDir": EXEC_BASE_DIR, "Cmd": ["sleep", "3600"],
                                "HostConfig": {"NetworkMode": "none"}}).encode(), base)
    assert r.status == 201, r
    cleanup.containers.append(base)
    r = _api(engine.sock, "POST", "/v1.41/containers/%s/start" % base)
    assert r.status == 204, r
    gate = dockgate(policy=EXEC_POLICY)
    tmpdir = tempfile.mkdtemp(prefix="dg-diff.", dir="/tmp")
    try:
        problems, report = _run_kind(ExecKind(base), _exec_cases(), engine, gate, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("\n".join(report))
    assert not problems, "\n".join(problems)


# --- container update: HostConfig after the update, from the same base

UPD_CPU_MAX = 0.5
UPDATE_POLICY = {"version": 1, "default_profile": "p", "profiles": {"p": {
    "trusted_registries": ["docker.io/library"],
    "memory": {"default": "1g", "max": "8g"}, "pids": {"default": 1024, "max": 8192},
    "cpus": {"max": UPD_CPU_MAX}}}}
UPD_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "PidsLimit", "NanoCpus",
              "CpuQuota", "CpuPeriod", "CpuShares", "CpusetCpus", "RestartPolicy")
# the containers updated: memory 64m (swap 128m), 100 pids, and a CPU limit
UPD_BASES = {
    "quota": {"CpuQuota": 20000},                           # 0.2 CPU, default period
    "quota-period": {"CpuQuota": 5000, "CpuPeriod": 10000},  # 0.5 CPU, short period
    "nano": {"NanoCpus": 250000000},                        # 0.25 CPU
    "none": {},
}


class UpdateKind(Kind):
    name = "update"
    ok = 200
    policy = UPDATE_POLICY

    def __init__(self, cleanup):
        self.cleanup = cleanup

    def target(self, engine, case, role):
        name = uniq("diffupd")
        hc = dict({"NetworkMode": "none", "Memory": MB64, "MemorySwap": 2 * MB64,
                   "PidsLimit": 100}, **UPD_BASES[case.meta.get("base", "quota")])
        r = _create(engine.sock, j({"Image": "tiny", "Cmd": ["true"],
                                    "HostConfig": hc}).encode(), name)
        assert r.status == 201, r
        self.cleanup.containers.append(name)
        return "/v1.41/containers/%s/update" % name, {"name": name,
                                                     "before": self._hc(engine, name)}

    def _hc(self, engine, name):
        r = _api(engine.sock, "GET", "/v1.41/containers/%s/json" % name)
        assert r.status == 200, r
        hc = r.json()["HostConfig"]
        out = {f: hc.get(f) for f in UPD_FIELDS}
        out["PidsLimit"] = out["PidsLimit"] or 0
        return out

    def observe(self, engine, resp, ctx, case):
        return self._hc(engine, ctx["name"])

    def view(self, b, ctx, case):
        """The update merged the way the engine merges it (UpdateContainer):
        non-zero values replace, PidsLimit when given (<= 0: unlimited, 0),
        RestartPolicy when it names one."""
        out = dict(ctx["before"])
        for f in UPD_FIELDS:
            v = b.get(f)
            if f == "PidsLimit":
                if v is not None:
                    out[f] = v if v > 0 else 0
            elif f == "RestartPolicy":
                if v and v.get("Name"):
                    out[f] = {"Name": v["Name"], "MaximumRetryCount": v.get(
                        "MaximumRetryCount") or 0}
            elif v:
                out[f] = v
        return out

    def check(self, case, e_raw, e_gate):
        eff = _eff_cpus(e_gate)
        if eff is not None and eff > UPD_CPU_MAX:
            return ["updated through dockgate to a CPU limit of %r CPUs (cpus.max %r): %r" % (
                eff, UPD_CPU_MAX, e_gate)]
        return []

    def drop(self, engine, ctx):
        if ctx.get("name"):
            _api(engine.sock, "DELETE", "/v1.41/containers/%s?force=1" % ctx["name"])


def _update_cases():
    c = []
    rp = lambda form: obj([("Name", "on-failure"), ("MaximumRetryCount", 3)], form)
    full = lambda form: [("Memory", MB96), ("MemorySwap", 2 * MB96),
                         ("MemoryReservation", 32 << 20), ("PidsLimit", 200),
                         ("CpuQuota", 30000), ("CpuPeriod", 100000), ("CpuShares", 512),
                         ("CpusetCpus", "0"), ("RestartPolicy", rp(form))]
    for form in ("exact", "lower", "upper", "mixed", "longs"):
        c.append(Case("full-" + form, obj(full(form), form)))
    c.append(Case("full-escaped", obj(full("exact"), esc=True)))
    for cid, pairs, form, base in (
            ("nano-on-nano", [("NanoCpus", 400000000)], "longs", "nano"),
            ("nano-on-none", [("NanoCpus", 500000000)], "lower", "none"),
            ("quota-on-quota", [("CpuQuota", 40000)], "lower", "quota"),
            ("quota-on-short-period", [("CpuQuota", 4000)], "upper", "quota-period"),
            ("period-on-none", [("CpuPeriod", 50000)], "mixed", "none"),
            ("period-on-quota", [("CpuPeriod", 50000)], "exact", "quota"),
            ("pids", [("PidsLimit", 300)], "longs", "quota"),
            ("pids-null", [("PidsLimit", None), ("Memory", MB96)], "longs", "quota"),
            ("memory", [("Memory", 80 << 20)], "upper", "quota"),
            ("memoryswap-unlimited", [("MemorySwap", -1)], "longs", "quota"),
            ("restart-always", [("RestartPolicy", obj([("Name", "always")], "lower"))],
             "lower", "quota"),
            ("restart-unless-stopped", [("RestartPolicy", obj([("Name", "unless-stopped")],
                                                              "longs"))], "mixed", "quota"),
            ("cpushares", [("CpuShares", 1024)], "longs", "quota"),
            ("cpusetcpus", [("CpusetCpus", "0")], "longs", "quota")):
        c.append(Case(cid, obj(pairs, form), base=base))
    c.append(Case("nulls", obj([(f, None) for f in UPD_FIELDS])))
    c.append(Case("empty", "{}"))
    for cid, text in (("type-memory-string", '{"Memory":"96m"}'),
                      ("type-memory-exponent", '{"Memory":1e8}'),
                      ("type-memory-float", '{"Memory":67108864.0}'),
                      ("type-pids-bool", '{"PidsLimit":true}'),
                      ("type-restart-string", '{"RestartPolicy":"always"}'),
                      ("type-cpuset-number", '{"CpusetCpus":0}'),
                      ("type-body-list", '[]')):
        c.append(Case(cid, text))
    # one field, two spellings: 400; the engine takes the last one
    hc_is = lambda f, val: (lambda e: e[f] == val)
    for cid, text, f, val in (
            ("dup-exact", '{"Memory":%d,"Memory":%d}' % (MB96, 80 << 20), "Memory", 80 << 20),
            ("dup-case", '{"Memory":%d,"memory":%d}' % (MB96, 80 << 20), "Memory", 80 << 20),
            ("dup-longs", '{"PidsLimit":200,"Pid\u017fLimit":300}', "PidsLimit", 300),
            ("dup-upper", '{"CpuQuota":30000,"CPUQUOTA":40000}', "CpuQuota", 40000),
            ("dup-restart", '{"RestartPolicy":{"Name":"no"},"restartpolicy":{"Name":"always"}}',
             "RestartPolicy", {"Name": "always", "MaximumRetryCount": 0}),
            ("dup-restart-inner", '{"RestartPolicy":{"Name":"no","name":"always"}}',
             "RestartPolicy", {"Name": "always", "MaximumRetryCount": 0}),
            ("dup-escaped", '{"CpuShares":512,"\\u0043puShares":1024}', "CpuShares", 1024)):
        c.append(Case(cid, text, "400", hc_is(f, val)))
    # limits the profile owes, under folded keys: 403, and the engine took them
    over = lambda e: _eff_cpus(e) is not None and _eff_cpus(e) > UPD_CPU_MAX
    for cid, text, base, honoured in (
            ("deny-pids-longs-unlimited", '{"Pid\u017fLimit":0}', "quota",
             hc_is("PidsLimit", 0)),
            ("deny-pids-lower-minus-one", '{"pidslimit":-1}', "quota", hc_is("PidsLimit", 0)),
            ("deny-pids-upper-over", '{"PIDSLIMIT":10000}', "quota", hc_is("PidsLimit", 10000)),
            ("deny-memory-lower-over", '{"memory":%d,"memoryswap":-1}' % (16 << 30), "quota",
             hc_is("Memory", 16 << 30)),
            ("deny-nano-longs-over", '{"NanoCpu\u017f":800000000}', "none", over),
            ("deny-quota-lower-unlimited", '{"cpuquota":-1}', "quota", over),
            ("deny-nano-quota-negative", '{"NanoCpus":250000000,"CpuQuota":-1}', "none", over),
            # the engine keeps the quota an update leaves 0: a short period alone
            # multiplies the limit (0.2 CPU becomes 2, then 20)
            ("deny-period-under-quota", '{"CpuPeriod":10000}', "quota", over),
            ("deny-period-lower-under-quota", '{"cpuperiod":1000}', "quota", over),
            ("deny-quota-over-short-period", '{"CpuQuota":9000}', "quota-period", over)):
        c.append(Case(cid, text, "403", honoured, base=base))
    # keys the engine ignores (not an update field): dockgate fails closed
    c.append(Case("unknown-privileged", '{"Privileged":true}', "403",
                  hc_is("Memory", MB64)))
    return c


@pytest.mark.timeout(150)
def test_update_body_differential(engine, dockgate, cleanup):
    gate = dockgate(policy=UPDATE_POLICY)
    tmpdir = tempfile.mkdtemp(prefix="dg-diff.", dir="/tmp")
    try:
        problems, report = _run_kind(UpdateKind(cleanup), _update_cases(), engine, gate,
                                     tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("\n".join(report))
    assert not problems, "\n".join(problems)


# --- volume create: GET /volumes/{name}; the exposure a refused one would give

# a directory outside host_paths with a marker: what a refused volume would show
OUTSIDE_DIR = tempfile.mkdtemp(prefix="dg-diff-outside.", dir="/tmp")
atexit.register(shutil.rmtree, OUTSIDE_DIR, True)
MARKER = "dg-diff-outside-marker"
with open(os.path.join(OUTSIDE_DIR, "marker"), "w") as _f:
    _f.write(MARKER + "\n")
VOLUME_POLICY = {"version": 1, "default_profile": "p", "profiles": {"p": {
    "host_paths": [BIND_DIR]}}}


def _host_init():
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError:
        return None


class VolumeKind(Kind):
    name = "volume"
    policy = VOLUME_POLICY

    def __init__(self, cleanup):
        self.cleanup = cleanup

    def target(self, engine, case, role):
        return "/v1.41/volumes/create", {"name": uniq("diffvol")}

    def observe(self, engine, resp, ctx, case):
        name = resp.json()["Name"]
        self.cleanup.volumes.append(name)
        ctx.setdefault("made", []).append(name)
        r = _api(engine.sock, "GET", "/v1.41/volumes/" + name)
        assert r.status == 200, r
        d = r.json()
        return {"Name": "@N@" if name == ctx["name"] else "(generated)",
                "Driver": d["Driver"], "Options": d.get("Options") or {},
                "Labels": d.get("Labels") or {}, "Scope": d["Scope"],
                "_name": name}

    def view(self, b, ctx, case):
        return {"Name": "@N@" if b.get("Name") == ctx["name"] else "(generated)",
                "Driver": b.get("Driver") or "local", "Options": b.get("DriverOpts") or {},
                "Labels": b.get("Labels") or {}, "Scope": "local"}

    def drop(self, engine, ctx):
        for name in ctx.get("made", ()):
            _api(engine.sock, "DELETE", "/v1.41/volumes/" + name)


def _sees(cleanup, cmd, want):
    """A predicate on E_raw: a container mounting the raw bytes' volume at /v
    runs cmd and its output contains want (the exposure is real)."""
    def pred(e):
        name = uniq("diffvolrun")
        cleanup.containers.append(name)
        p = cleanup.eng.cli("run", "--name", name, "--network", "none",
                            "-v", e["_name"] + ":/v", "tiny", "sh", "-c", cmd, timeout=60)
        cleanup.eng.cli("rm", "-f", name, timeout=30)
        return bool(want) and want in p.stdout.decode(errors="replace")
    return pred


def _volume_cases(cleanup):
    c = []
    inside = os.path.join(BIND_DIR, "vol")
    os.makedirs(inside, exist_ok=True)
    bind_in = {"type": "none", "o": "bind", "device": inside}
    full = [("Name", "@N@"), ("Driver", "local"), ("DriverOpts", bind_in),
            ("Labels", {"dg.a": "1", "DG.B": "two"})]
    for form in ("exact", "lower", "upper", "mixed", "longs", "kelvin"):
        c.append(Case("full-" + form, obj(full, form)))
    c.append(Case("full-escaped", obj(full, esc=True)))
    for cid, pairs, form in (
            ("name-only", [("Name", "@N@")], "lower"),
            ("no-name", [("Labels", {"x": "y"})], "longs"),
            ("empty-driver", [("Name", "@N@"), ("Driver", "")], "upper"),
            ("rbind-ro", [("Name", "@N@"), ("DriverOpts", {"type": "none",
                                                          "o": "rbind,ro",
                                                          "device": inside})], "longs"),
            ("bind-no-type", [("Name", "@N@"), ("DriverOpts", {"o": "bind",
                                                              "device": inside})], "mixed"),
            ("tmpfs", [("Name", "@N@"), ("DriverOpts", {"type": "tmpfs", "device": "tmpfs",
                                                       "o": "size=1m"})], "longs"),
            ("nfs", [("Name", "@N@"), ("DriverOpts", {"type": "nfs", "device": ":/export",
                                                     "o": "addr=127.0.0.1"})], "upper")):
        c.append(Case(cid, obj(pairs, form)))
    c.append(Case("nulls", obj([("Name", "@N@"), ("Driver", None), ("DriverOpts", None),
                                ("Labels", None)])))
    # map keys are literal in Go: the local driver refuses "Device" (engine 400/500)
    c.append(Case("map-key-case", obj([("Name", "@N@"), ("DriverOpts", {
        "type": "none", "o": "bind", "Device": OUTSIDE_DIR})])))
    for cid, text in (("type-driveropts-list", '{"Name":"@N@","DriverOpts":["o=bind"]}'),
                      ("type-option-number", '{"Name":"@N@","DriverOpts":{"size":1}}'),
                      ("type-labels-string", '{"Name":"@N@","Labels":"a=b"}'),
                      ("type-name-number", '{"Name":1}')):
        c.append(Case(cid, text))
    # one field, two spellings: 400; the engine takes the last one
    out = {"type": "none", "o": "bind", "device": OUTSIDE_DIR}
    took = lambda e: e["Options"].get("device") == OUTSIDE_DIR
    for cid, text in (
            ("dup-case", '{"Name":"@N@","DriverOpts":%s,"driveropts":%s}' % (j(bind_in), j(out))),
            ("dup-longs", '{"Name":"@N@","DriverOpts":%s,"DriverOpt\u017f":%s}' % (
                j(bind_in), j(out))),
            ("dup-escaped", '{"Name":"@N@","DriverOpts":%s,"\\u0044riverOpts":%s}' % (
                j(bind_in), j(out)))):
        c.append(Case(cid, text, "400", took))
    c.append(Case("dup-exact-inner", '{"Name":"@N@","DriverOpts":{"type":"none","o":"bind",'
                  '"device":"%s","device":"%s"}}' % (inside, OUTSIDE_DIR), "400", took))
    # host paths the profile does not allow, under any spelling: 403, and a
    # container mounting the raw bytes' volume sees them
    sees_out = _sees(cleanup, "cat /v/marker", MARKER)
    for cid, key in (("deny-bind-outside-lower", "driveropts"),
                     ("deny-bind-outside-longs", _s("DriverOpts")),
                     ("deny-bind-outside-upper", "DRIVEROPTS")):
        c.append(Case(cid, obj([("Name", "@N@"), (key, out)]), "403",
                      sees_out if cid.endswith("lower") else took))
    c.append(Case("deny-bind-outside-escaped", '{"Name":"@N@","\\u0064riverOpt\u017f":%s}' % j(
        out), "403", took))
    # filesystem types that ignore device: the host's procfs, an overlay of a
    # host directory
    init = _host_init()
    c.append(Case("deny-proc-longs", obj([("Name", "@N@"), (_s("DriverOpts"), {
        "type": "proc", "device": inside})]), "403", _sees(cleanup, "cat /v/1/comm", init)))
    c.append(Case("deny-overlay-lowerdir", obj([("Name", "@N@"), ("driveropts", {
        "type": "overlay", "device": inside, "o": "lowerdir=%s:%s" % (OUTSIDE_DIR, inside)})]),
        "403", _sees(cleanup, "cat /v/marker", MARKER)))
    c.append(Case("deny-sysfs", obj([("Name", "@N@"), ("DriverOpts", {
        "type": "sysfs", "device": inside})]), "403",
        lambda e: e["Options"].get("type") == "sysfs"))
    return c


@pytest.mark.timeout(150)
def test_volume_body_differential(engine, dockgate, cleanup):
    gate = dockgate(policy=VOLUME_POLICY)
    tmpdir = tempfile.mkdtemp(prefix="dg-diff.", dir="/tmp")
    kind = VolumeKind(cleanup)
    try:
        problems, report = _run_kind(kind, _volume_cases(cleanup), engine, gate, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("\n".join(report))
    assert not problems, "\n".join(problems)


# --- network create: GET /networks/{id}

NETWORK_POLICY = {"version": 1, "default_profile": "p", "profiles": {"p": {
    "network_drivers": ["bridge"]}}}


class NetworkKind(Kind):
    name = "network"
    policy = NETWORK_POLICY

    def target(self, engine, case, role):
        return "/v1.41/networks/create", {"name": uniq("diffnet")}

    def observe(self, engine, resp, ctx, case):
        nid = resp.json()["Id"]
        ctx.setdefault("made", []).append(nid)
        r = _api(engine.sock, "GET", "/v1.41/networks/" + nid)
        assert r.status == 200, r
        d = r.json()
        return {"Name": "@N@" if d["Name"] == ctx["name"] else d["Name"],
                "Driver": d["Driver"], "Internal": d["Internal"],
                "Attachable": d["Attachable"], "Ingress": d["Ingress"],
                "EnableIPv6": d["EnableIPv6"], "Scope": d["Scope"],
                "Options": d.get("Options") or {}, "Labels": d.get("Labels") or {},
                "IPAM.Driver": (d.get("IPAM") or {}).get("Driver")}

    def view(self, b, ctx, case):
        return {"Name": "@N@" if b.get("Name") == ctx["name"] else b.get("Name"),
                "Driver": b.get("Driver") or "bridge", "Internal": bool(b.get("Internal")),
                "Attachable": bool(b.get("Attachable")), "Ingress": bool(b.get("Ingress")),
                "EnableIPv6": bool(b.get("EnableIPv6")), "Scope": "local",
                "Options": b.get("Options") or {}, "Labels": b.get("Labels") or {},
                "IPAM.Driver": (b.get("IPAM") or {}).get("Driver") or "default"}

    def drop(self, engine, ctx):
        # drop at once: the engine has a few dozen default address pools only
        for nid in ctx.get("made", ()):
            _api(engine.sock, "DELETE", "/v1.41/networks/" + nid)


def _network_cases():
    c = []
    full = [("Name", "@N@"), ("CheckDuplicate", True), ("Driver", "bridge"),
            ("Internal", True), ("Attachable", True),
            ("Options", {"com.docker.network.bridge.enable_icc": "false"}),
            ("Labels", {"dg.a": "1"}), ("IPAM", {"Driver": "default"})]
    for form in FORMS:
        c.append(Case("full-" + form, obj(full, form)))
    c.append(Case("full-escaped", obj(full, esc=True)))
    c.append(Case("name-only", obj([("Name", "@N@")], "upper")))
    c.append(Case("nulls", obj([("Name", "@N@"), ("Driver", None), ("Internal", None),
                                ("Options", None), ("Labels", None), ("IPAM", None)])))
    for cid, text in (("type-internal-string", '{"Name":"@N@","Internal":"true"}'),
                      ("type-options-list", '{"Name":"@N@","Options":["a"]}'),
                      ("type-driver-bool", '{"Name":"@N@","Driver":true}')):
        c.append(Case(cid, text))
    is_ = lambda f, val: (lambda e: e[f] == val)
    c.append(Case("dup-case", '{"Name":"@N@","Internal":false,"internal":true}', "400",
                  is_("Internal", True)))
    # (Go decodes a map given twice into one: the engine merges them)
    c.append(Case("dup-longs", '{"Name":"@N@","Labels":{"a":"1"},"Label\u017f":{"b":"2"}}',
                  "400", is_("Labels", {"a": "1", "b": "2"})))
    c.append(Case("dup-kelvin", '{"Name":"@N@","CheckDuplicate":false,'
                  '"Chec\u212aDuplicate":true}', "400", is_("Driver", "bridge")))
    # a driver the profile does not allow, under any spelling: 403; the engine
    # tries that driver (it may lack the kernel support, but it is no bridge)
    c.append(Case("deny-driver-mixed", '{"Name":"@N@","dRiVeR":"macvlan"}', "403"))
    c.append(Case("deny-driver-escaped", '{"Name":"@N@","\\u0044RIVER":"ipvlan"}', "403"))
    c.append(Case("dup-driver", '{"Name":"@N@","Driver":"bridge","driver":"macvlan"}', "400"))
    for x in c[-3:]:
        x.meta["engine_not_bridge"] = True
    return c


@pytest.mark.timeout(150)
def test_network_body_differential(engine, dockgate, cleanup):
    gate = dockgate(policy=NETWORK_POLICY)
    tmpdir = tempfile.mkdtemp(prefix="dg-diff.", dir="/tmp")
    cases = _network_cases()
    try:
        problems, report = _run_kind(NetworkKind(), cases, engine, gate, tmpdir)
        # the refused drivers matter: the engine did not make a bridge of them
        for case in cases:
            if not case.meta.get("engine_not_bridge"):
                continue
            name = uniq("diffnet")
            r = _api(engine.sock, "POST", "/v1.41/networks/create",
                     case.text.replace("@N@", name).encode())
            if r.status == 201:
                nid = r.json()["Id"]
                d = _api(engine.sock, "GET", "/v1.41/networks/" + nid).json()
                _api(engine.sock, "DELETE", "/v1.41/networks/" + nid)
                if d["Driver"] == "bridge":
                    problems.append("network %s: refusal not shown to matter: the engine "
                                    "made a bridge network of it" % case.cid)
            elif b"bridge" in r.body:
                problems.append("network %s: refusal not shown to matter: %r" % (
                    case.cid, r.body))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("\n".join(report))
    assert not problems, "\n".join(problems)
