"""Install tree, systemd units, manual pages and --help texts.

Run from the repository top with the tree already built in place:

    /usr/bin/python3 -m pytest -q tests/ops

What it does:

* `make install DESTDIR=$tmp prefix=/usr sysconfdir=/etc` into a temporary
  directory, then checks every installed file and its mode: the daemon in
  /usr/sbin, dockgate-certs in /usr/bin, policy/default.json as
  /etc/dockgate/policy.json and policy.json.default, policy/examples/*.json
  under /etc/dockgate/examples/, the three manual pages, the systemd units
  in /usr/lib/systemd/system (dockgate.service with /usr/sbin and
  /etc/dockgate paths filled in), and the documentation in
  /usr/share/doc/dockgate. A second install keeps a changed policy.json;
  `make uninstall` removes everything else and keeps that changed policy.
* The unit files are always checked by a small parser here (sections,
  known keys, absolute ExecStart paths that exist in the install tree).
  When systemd-analyze exists they are also run through
  `systemd-analyze verify`, with ExecStart pointed at the installed binary
  and MANPATH at the installed manual pages (so Documentation=man:... is
  checked too); without it, that test is skipped with the reason.
* Every manual page renders with `groff -mandoc -ww` and `man -l` without
  a warning (and `mandoc -T lint -W warning`, when mandoc is installed);
  dockgate(8) documents every option and dockgate-policy(5) every policy
  key of the contract.
* `dockgate --help` mentions every long option of the contract's command
  line; `dockgate-certs --help` exits 0.

Environment: DOCKGATE_BUILDDIR (default: the repository top) is where
`make install` runs; DOCKGATE_CONTRACT (default /work/shared/CONTRACT.md, if
present) is cross-checked against the option and key lists below.
"""

import configparser
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILDDIR = os.environ.get("DOCKGATE_BUILDDIR", REPO)
CONTRACT = os.environ.get("DOCKGATE_CONTRACT", "/work/shared/CONTRACT.md")

MAN_PAGES = {
    "man8/dockgate.8": "dockgate.8",
    "man5/dockgate-policy.5": "dockgate-policy.5",
    "man1/dockgate-certs.1": "dockgate-certs.1",
}

# The contract's command line (CONTRACT.md, "Command line").
LONG_OPTIONS = """
listen upstream policy tls-cert tls-key tls-ca insecure-tcp socket-mode
socket-group audit dry-run metrics user upstream-tls-ca upstream-tls-cert
upstream-tls-key max-connections max-header-bytes max-body-bytes
timeout-header timeout-body timeout-connect timeout-idle check eval
foreground version help
""".split()
SHORT_OPTIONS = "l u p n d v".split()

# The contract's policy keys (CONTRACT.md, "The policy file").
POLICY_KEYS = """
version default_profile identities profiles match listener uid gid cert_cn
extends unrestricted trusted_registries local_images privileged
capabilities drop_all_capabilities host_namespaces host_paths devices
unconfined sysctls cgroup_parent runtimes network_drivers run_as_non_root
no_new_privileges read_only_rootfs memory pids cpus published_ports build
buildkit image_import image_load plugins swarm ownership read_others redact
rate endpoints
""".split()

METRICS = """
dockgate_requests_total dockgate_denials_total dockgate_upstream_errors_total
dockgate_connections dockgate_bytes_total dockgate_decision_seconds
dockgate_request_seconds dockgate_policy_reloads_total
""".split()

AUDIT_FIELDS = """
time conn listener peer profile method path endpoint verdict rule reason
mutations dry_run status bytes_in bytes_out duration_ms
""".split()

STATUSES = "400 403 404 408 413 429 431 502 503 504".split()


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, **kw)


def contract_text():
    try:
        with open(CONTRACT) as f:
            return f.read()
    except OSError:
        return None


def example_policies():
    d = os.path.join(REPO, "policy", "examples")
    return sorted(f for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def dest():
    """One install into a temporary DESTDIR, shared by the tests here."""
    top = os.path.join(BUILDDIR, "Makefile")
    if not os.path.exists(top):
        pytest.fail("%s missing: configure and build the tree first" % top)
    d = tempfile.mkdtemp(prefix="dockgate-install-")
    r = run(["make", "-s", "-C", BUILDDIR, "install", "DESTDIR=" + d,
             "prefix=/usr", "sysconfdir=/etc"], timeout=50)
    assert r.returncode == 0, "make install failed:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    yield d
    shutil.rmtree(d, ignore_errors=True)


def p(dest, rel):
    return os.path.join(dest, rel.lstrip("/"))


# --------------------------------------------------------------------------
# The install tree
# --------------------------------------------------------------------------

def test_programs(dest):
    for rel in ("/usr/sbin/dockgate", "/usr/bin/dockgate-certs"):
        f = p(dest, rel)
        assert os.path.isfile(f), rel + " not installed"
        assert mode(f) == 0o755, "%s mode %o" % (rel, mode(f))
    # (Its compiled-in default policy path comes from configure's
    # --sysconfdir, not from `make install sysconfdir=`; the unit passes
    # --policy explicitly.)
    r = run([p(dest, "/usr/sbin/dockgate"), "--help"])
    assert r.returncode == 0


def test_policy_files(dest):
    with open(os.path.join(REPO, "policy", "default.json")) as f:
        default = f.read()
    for name in ("policy.json", "policy.json.default"):
        f = p(dest, "/etc/dockgate/" + name)
        assert os.path.isfile(f), "/etc/dockgate/%s not installed" % name
        assert mode(f) == 0o644
        with open(f) as fh:
            assert fh.read() == default, name + " differs from policy/default.json"
    examples = example_policies()
    assert examples, "policy/examples/*.json: none in the source tree"
    for name in examples:
        f = p(dest, "/etc/dockgate/examples/" + name)
        assert os.path.isfile(f), "/etc/dockgate/examples/%s not installed" % name
        assert mode(f) == 0o644
    for name in ("ci-runner.json", "gateway.json"):
        assert name in examples, "policy/examples/%s missing" % name


def test_man_pages_installed(dest):
    for rel in MAN_PAGES:
        f = p(dest, "/usr/share/man/" + rel)
        assert os.path.isfile(f), rel + " not installed"
        assert mode(f) == 0o644


def test_units_installed(dest):
    unitdir = p(dest, "/usr/lib/systemd/system")
    for name in ("dockgate.service", "dockgate.socket"):
        f = os.path.join(unitdir, name)
        assert os.path.isfile(f), name + " not installed in /usr/lib/systemd/system"
        assert mode(f) == 0o644
    with open(os.path.join(unitdir, "dockgate.service")) as f:
        svc = f.read()
    assert "@" + "sbindir@" not in svc and "@" + "sysconfdir@" not in svc
    execs = [l.split("=", 1)[1] for l in svc.splitlines() if l.startswith("ExecStart=")]
    assert len(execs) == 1, execs
    argv = execs[0].split()
    assert argv[0] == "/usr/sbin/dockgate", argv
    assert "--listen" in argv and argv[argv.index("--listen") + 1] == "systemd"
    assert "--policy" in argv and argv[argv.index("--policy") + 1] == "/etc/dockgate/policy.json"
    for l in svc.splitlines():
        if l.startswith("ExecReload=") and "dockgate" in l:
            assert l.split("=", 1)[1].split()[0] == "/usr/sbin/dockgate", l
    with open(os.path.join(unitdir, "dockgate.socket")) as f:
        sock = f.read()
    assert "ListenStream=/run/dockgate.sock" in sock


def test_docs_installed(dest):
    docdir = p(dest, "/usr/share/doc/dockgate")
    for name in ("README.md", "docker-compose.example.yml", "dockgate.logrotate"):
        f = os.path.join(docdir, name)
        assert os.path.isfile(f), name + " not installed in /usr/share/doc/dockgate"
        assert mode(f) == 0o644


# --------------------------------------------------------------------------
# systemd units
# --------------------------------------------------------------------------

# Keys the units may use, by section (a subset of systemd's; extend as the
# units grow). A typo in a key is what this parser is for.
UNIT_KEYS = {
    "Unit": "Description Documentation Requires Wants After Before PartOf BindsTo Conflicts",
    "Service": """Type ExecStart ExecStartPre ExecReload ExecStop Restart RestartSec
        User Group NoNewPrivileges CapabilityBoundingSet AmbientCapabilities
        ProtectSystem ProtectHome PrivateTmp PrivateDevices ProtectKernelTunables
        ProtectKernelModules ProtectControlGroups RestrictNamespaces RestrictRealtime
        LockPersonality MemoryDenyWriteExecute SystemCallArchitectures LogsDirectory
        LogsDirectoryMode RuntimeDirectory RuntimeDirectoryMode ReadWritePaths
        RestrictAddressFamilies Environment EnvironmentFile""",
    "Socket": "ListenStream SocketMode SocketUser SocketGroup Accept RemoveOnStop Service",
    "Install": "WantedBy RequiredBy Also Alias",
}


def parse_unit(path):
    """Parse a unit file strictly enough to catch typos: [Section] headers,
    Key=Value lines, comments; return {section: [(key, value)]}."""
    sections = {}
    cur = None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            m = re.match(r"^\[([A-Za-z]+)\]$", s)
            if m:
                cur = m.group(1)
                assert cur in UNIT_KEYS, "%s:%d: unknown section [%s]" % (path, n, cur)
                sections.setdefault(cur, [])
                continue
            assert cur is not None, "%s:%d: key outside a section" % (path, n)
            m = re.match(r"^([A-Za-z]+)=(.*)$", s)
            assert m, "%s:%d: not Key=Value: %r" % (path, n, s)
            assert m.group(1) in UNIT_KEYS[cur].split(), \
                "%s:%d: unknown key %s in [%s]" % (path, n, m.group(1), cur)
            sections[cur].append((m.group(1), m.group(2)))
    return sections


def test_unit_syntax(dest):
    unitdir = p(dest, "/usr/lib/systemd/system")
    svc = parse_unit(os.path.join(unitdir, "dockgate.service"))
    sock = parse_unit(os.path.join(unitdir, "dockgate.socket"))
    assert set(svc) == {"Unit", "Service", "Install"}
    assert set(sock) == {"Unit", "Socket", "Install"}
    for key, val in svc["Service"]:
        if key.startswith("Exec"):
            exe = val.lstrip("-@:+!").split()[0]
            assert exe.startswith("/"), "%s=%s: not an absolute path" % (key, val)
            if exe.startswith("/usr/sbin/dockgate"):
                assert os.access(p(dest, exe), os.X_OK), exe + " not in the install tree"
    assert ("Requires", "dockgate.socket") in svc["Unit"]
    listens = [v for k, v in sock["Socket"] if k == "ListenStream"]
    assert listens == ["/run/dockgate.sock"]
    # configparser agrees that the files are well-formed INI.
    for name in ("dockgate.service", "dockgate.socket"):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        cp.read(os.path.join(unitdir, name))


def test_systemd_analyze_verify(dest, tmp_path):
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze not installed; the units were checked by "
                    "test_unit_syntax's parser only")
    unitdir = p(dest, "/usr/lib/systemd/system")
    # Point the installed units at the installed binary (systemd-analyze
    # checks that ExecStart is executable) and at the installed manuals.
    for name in ("dockgate.service", "dockgate.socket"):
        with open(os.path.join(unitdir, name)) as f:
            text = f.read()
        text = text.replace("/usr/sbin/dockgate", p(dest, "/usr/sbin/dockgate"))
        (tmp_path / name).write_text(text)
    env = dict(os.environ, MANPATH=p(dest, "/usr/share/man"), SYSTEMD_LOG_LEVEL="notice")
    r = run([sa, "verify", str(tmp_path / "dockgate.service"),
             str(tmp_path / "dockgate.socket")], env=env, cwd=str(tmp_path))
    assert r.returncode == 0, "systemd-analyze verify:\n" + r.stdout + r.stderr
    noise = [l for l in (r.stdout + r.stderr).splitlines()
             if "dockgate" in l and l.strip()]
    assert not noise, "systemd-analyze verify warnings:\n" + "\n".join(noise)


# --------------------------------------------------------------------------
# Manual pages
# --------------------------------------------------------------------------

def source(name):
    with open(os.path.join(REPO, "man", name)) as f:
        return f.read()


def render(path, width=250):
    """Render a page with groff (wide, so nothing is wrapped or hyphenated)."""
    r = run(["groff", "-mandoc", "-Tutf8", "-ww", "-rLL=%dn" % width, "-P-cbou", path])
    assert r.returncode == 0, r.stderr
    return r.stdout.replace("\u2212", "-").replace("\u2010", "-"), r.stderr


@pytest.mark.parametrize("rel", sorted(MAN_PAGES))
def test_man_renders_without_warnings(dest, rel):
    if shutil.which("groff") is None:
        pytest.skip("groff not installed (it comes with man-db)")
    page = p(dest, "/usr/share/man/" + rel)
    r = run(["groff", "-mandoc", "-Tutf8", "-ww", "-z", page])
    assert r.returncode == 0 and r.stderr == "", "groff -ww: " + r.stderr
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", MAN_DISABLE_SECCOMP="1")
        r = run(["man", "--warnings", "-l", page], env=env)
        assert r.returncode == 0, "man -l: " + r.stderr
        assert r.stderr == "", "man -l warnings: " + r.stderr
        assert "NAME" in r.stdout and "SEE ALSO" in r.stdout
    if shutil.which("mandoc"):
        r = run(["mandoc", "-T", "lint", "-W", "warning", page])
        assert r.returncode == 0 and r.stdout + r.stderr == "", \
            "mandoc -T lint: " + r.stdout + r.stderr


def test_man_dockgate_complete():
    if shutil.which("groff") is None:
        pytest.skip("groff not installed (it comes with man-db)")
    text, _ = render(os.path.join(REPO, "man", "dockgate.8"))
    missing = [o for o in LONG_OPTIONS + ["as", "verbose"] if "--" + o not in text]
    missing += ["-" + o for o in SHORT_OPTIONS if not re.search(r"(^|\s)-%s\b" % o, text)]
    missing += [m for m in METRICS if m not in text]
    missing += ["audit field " + a for a in AUDIT_FIELDS
                if not re.search(r"(^|\s|,)%s(\s|,|$)" % a, text, re.M)]
    missing += ["status " + s for s in STATUSES if not re.search(r"^\s*%s\b" % s, text, re.M)]
    for word in ("SIGHUP", "SIGTERM", "unix:", "tcp:", "systemd", "/healthz",
                 "DOCKER_HOST", "dockgate-certs", "--tls-ca", "LISTEN_FDS"):
        if word not in text:
            missing.append(word)
    assert not missing, "dockgate(8) does not mention: %s" % missing


def test_man_policy_complete():
    if shutil.which("groff") is None:
        pytest.skip("groff not installed (it comes with man-db)")
    text, _ = render(os.path.join(REPO, "man", "dockgate-policy.5"))
    missing = [k for k in POLICY_KEYS if not re.search(r"(^|[\s(\"'])%s\b" % k, text, re.M)]
    assert not missing, "dockgate-policy(5) does not document: %s" % missing
    # Every default endpoint of the contract is listed.
    c = contract_text()
    if c is not None and "Default `endpoints.allow`" in c:
        a = c.index("Default `endpoints.allow`")
        b = c.index("```", a) + 3
        e = c.index("```", b)
        eps = [x for x in re.split(r"\s{2,}|\n", c[b:e]) if x.strip()]
        flat = re.sub(r"\s+", " ", text)
        gone = [x for x in eps if x.strip() not in flat]
        assert not gone, "default endpoints missing from dockgate-policy(5): %s" % gone


def test_man_certs_complete():
    if shutil.which("groff") is None:
        pytest.skip("groff not installed (it comes with man-db)")
    text, _ = render(os.path.join(REPO, "man", "dockgate-certs.1"))
    for word in ("--out", "--ca", "--name", "--ip", "--cn", "--days", "--rsa",
                 "--force", "ca.pem", "ca-key.pem", "cert.pem", "key.pem",
                 "DOCKER_CERT_PATH", "0600"):
        assert word in text, "dockgate-certs(1) does not mention " + word


# --------------------------------------------------------------------------
# --help texts, and the lists above against the contract
# --------------------------------------------------------------------------

def test_dockgate_help_lists_contract_options():
    r = run([os.path.join(BUILDDIR, "proxy", "dockgate"), "--help"])
    assert r.returncode == 0, r.stderr
    missing = [o for o in LONG_OPTIONS if "--" + o not in r.stdout]
    assert not missing, "dockgate --help does not mention: %s" % missing


def test_dockgate_certs_help():
    r = run([os.path.join(BUILDDIR, "certs", "dockgate-certs"), "--help"])
    assert r.returncode == 0, r.stderr
    for cmd in ("ca", "server", "client"):
        assert "dockgate-certs " + cmd in r.stdout


def test_lists_match_contract():
    c = contract_text()
    if c is None:
        pytest.skip("%s not present; the hard-coded lists were used" % CONTRACT)
    a = c.index("dockgate [options]")
    block = c[a:c.index("```", a)]
    opts = set(re.findall(r"--([a-z][a-z-]+)", block))
    assert opts <= set(LONG_OPTIONS), "contract options not in this test: %s" % (opts - set(LONG_OPTIONS))
    keys = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", c, re.M))
    flat = {k for pair in keys for k in pair if k}
    assert flat <= set(POLICY_KEYS), "contract keys not in this test: %s" % (flat - set(POLICY_KEYS))


def test_reinstall_keeps_policy_and_uninstall(tmp_path):
    """A changed policy.json survives a reinstall and `make uninstall`;
    everything else is removed (a DESTDIR of its own)."""
    dest = str(tmp_path / "root")
    r = run(["make", "-s", "-C", BUILDDIR, "install", "DESTDIR=" + dest,
             "prefix=/usr", "sysconfdir=/etc"], timeout=50)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pol = p(dest, "/etc/dockgate/policy.json")
    with open(pol, "w") as f:
        f.write('{"version": 1, "default_profile": "mine", "profiles": {"mine": {}}}\n')
    r = run(["make", "-s", "-C", BUILDDIR, "install-data-local", "DESTDIR=" + dest,
             "prefix=/usr", "sysconfdir=/etc"], timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(pol) as f:
        assert '"mine"' in f.read(), "reinstall replaced a changed policy.json"
    r = run(["make", "-s", "-C", BUILDDIR, "uninstall", "DESTDIR=" + dest,
             "prefix=/usr", "sysconfdir=/etc"], timeout=50)
    assert r.returncode == 0, r.stdout + r.stderr
    left = []
    for root, _dirs, files in os.walk(dest):
        left += [os.path.join(root, f)[len(dest):] for f in files]
    assert left == ["/etc/dockgate/policy.json"], "left after uninstall: %s" % left
