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
   tested fields (apart from the defaults the profile injects: Memory and
   PidsLimit, which must then show up as mutations).  Keys the engine folds
   together given twice must be refused with 400.
2. Request-path forms sent straight to the engine and through dockgate: the
   same status class where the engine routes; 400 from dockgate where the
   engine would redirect (301).
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
        }
    },
}
MEM_DEFAULT = 1 << 30
PIDS_DEFAULT = 1024

# HostConfig fields compared, and Config fields
HC_FIELDS = ("Privileged", "Binds", "Memory", "PidMode", "CapAdd", "NetworkMode",
             "PidsLimit", "CpusetCpus", "ReadonlyRootfs", "IpcMode", "SecurityOpt")
CFG_FIELDS = ("Image", "User")

MB64 = 64 << 20
# a bind source of our own: /tmp itself holds the engine socket (never allowed)
BIND_DIR = tempfile.mkdtemp(prefix="dg-diff-bind.", dir="/tmp")
atexit.register(shutil.rmtree, BIND_DIR, True)
POLICY["profiles"]["p"]["host_paths"] = [BIND_DIR]
MB96 = 96 << 20


def j(obj):
    return json.dumps(obj, ensure_ascii=False)


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
    return c


CASES = _cases()

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
    if field in ("Memory",) and value is None:
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
