"""TLS listeners (issue 5): mutual TLS with certificates made by the project's
own certs/dockgate-certs, real docker CLIs and the python SDK over TLS,
handshake rejections, start-up refusals, identities by certificate CN, a TLS
upstream engine, and certificate reload on SIGHUP."""

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import (DOCKER, DOCKGATE_BIN, REPO, assert_refusal, docker_cli, free_port,
                      needs_dockgate, parse_one, parse_responses, http_req, raw, uniq, _cli_env, _unmount_under, _tail)

pytestmark = needs_dockgate

CERTS_BIN = os.environ.get("DG_CERTS_BIN", os.path.join(REPO, "certs", "dockgate-certs"))
CLIS = [c for c in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(c, os.X_OK)]

UNRESTRICTED = {"version": 1, "default_profile": "all",
                "profiles": {"all": {"unrestricted": True}}}


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------

def certs(*args):
    p = subprocess.run([CERTS_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "dockgate-certs %s failed (%d): %s %s" % (
        " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
    return p


class PKI:
    pass


def _expired_client(cadir, out, cn="expired", expired=True):
    """A client certificate signed by the CA in cadir that expired yesterday
    (expired=False: the same recipe, valid for a day: the control).
    dockgate-certs refuses --days below 1, so: python cryptography when it
    is there, else `openssl x509 -req -days -1` (notAfter before notBefore)."""
    os.makedirs(out)
    shutil.copy(os.path.join(cadir, "ca.pem"), os.path.join(out, "ca.pem"))
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    except ImportError:
        x509 = None
    if x509 is not None:
        with open(os.path.join(cadir, "ca-key.pem"), "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(cadir, "ca.pem"), "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=10))
                .not_valid_after(now + datetime.timedelta(days=-1 if expired else 1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
                .sign(ca_key, hashes.SHA256()))
        with open(os.path.join(out, "cert.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(out, "key.pem"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.chmod(os.path.join(out, "key.pem"), 0o600)
        return
    ext = os.path.join(out, "ext.cnf")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(out, "key.pem"),
                    "-subj", "/CN=" + cn, "-out", os.path.join(out, "req.csr")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(out, "req.csr"),
                    "-CA", os.path.join(cadir, "ca.pem"), "-CAkey",
                    os.path.join(cadir, "ca-key.pem"), "-CAcreateserial", "-days", "-1" if expired else "1",
                    "-extfile", ext, "-out", os.path.join(out, "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def pki():
    if not os.access(CERTS_BIN, os.X_OK):
        pytest.fail("certificate tool missing: %s (make -C certs)" % CERTS_BIN)
    d = tempfile.mkdtemp(prefix="dg-e2e-pki.", dir="/tmp")
    os.chmod(d, 0o755)
    k = PKI()
    k.dir = d
    k.ca = os.path.join(d, "ca")
    k.ca2 = os.path.join(d, "ca2")
    certs("ca", "--out", k.ca)
    certs("ca", "--out", k.ca2, "--cn", "some other CA")
    for name in ("srv", "srv2", "srv3"):
        certs("server", "--ca", k.ca, "--out", os.path.join(d, name),
              "--name", "localhost", "--ip", "127.0.0.1")
        setattr(k, name, os.path.join(d, name))
    for cn in ("admin", "user", "dockgate"):
        certs("client", "--ca", k.ca, "--out", os.path.join(d, "cl-" + cn), "--cn", cn)
    k.admin = os.path.join(d, "cl-admin")
    k.user = os.path.join(d, "cl-user")
    k.upclient = os.path.join(d, "cl-dockgate")
    # a client certificate from another CA, but with the trusted CA's ca.pem
    # next to it so the client itself verifies the server
    k.foreign = os.path.join(d, "cl-foreign")
    certs("client", "--ca", k.ca2, "--out", k.foreign, "--cn", "admin")
    shutil.copy(os.path.join(k.ca, "ca.pem"), os.path.join(k.foreign, "ca.pem"))
    k.expired = os.path.join(d, "cl-expired")
    _expired_client(k.ca, k.expired, cn="admin")
    k.twin = os.path.join(d, "cl-twin")
    _expired_client(k.ca, k.twin, cn="admin", expired=False)
    # sanity: the expired certificate really is expired, the others are not
    chk = subprocess.run(["openssl", "x509", "-in", os.path.join(k.expired, "cert.pem"),
                          "-noout", "-checkend", "0"], stdout=subprocess.PIPE)
    assert chk.returncode == 1, "the 'expired' certificate is not expired: %s" % chk.stdout
    chk = subprocess.run(["openssl", "x509", "-in", os.path.join(k.admin, "cert.pem"),
                          "-noout", "-checkend", "3600"], stdout=subprocess.PIPE)
    assert chk.returncode == 0, chk.stdout
    yield k
    shutil.rmtree(d, ignore_errors=True)


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_tcp(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_log(dg, needle, timeout=5.0, since=0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = dg.log_text()[since:]
        if needle in text:
            return text
        time.sleep(0.05)
    return None


def tls_gate(dockgate, pki, policy=None, extra=(), cert=None, key=None, ca=True):
    port = free_port()
    args = ["--listen", "tcp:127.0.0.1:%d" % port,
            "--tls-cert", cert or os.path.join(pki.srv, "cert.pem"),
            "--tls-key", key or os.path.join(pki.srv, "key.pem")]
    if ca:
        args += ["--tls-ca", os.path.join(pki.ca, "ca.pem")]
    dg = dockgate(policy=policy or UNRESTRICTED, extra_args=args + list(extra))
    assert wait_tcp(port), "tcp listener on %d not accepting:\n%s" % (port, dg.log_text())
    dg.port = port
    dg.tcp_host = "tcp://127.0.0.1:%d" % port
    return dg


def tls_env(certdir):
    return {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certdir}


def tcli(dg, certdir, *args, **kw):
    kw.setdefault("env", tls_env(certdir))
    return docker_cli(dg.tcp_host, *args, **kw)


def tok(dg, certdir, *args, **kw):
    p = tcli(dg, certdir, *args, **kw)
    assert p.returncode == 0, "docker %s over TLS failed (%d):\n%s\n%s" % (
        " ".join(map(str, args)), p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p.stdout.decode(errors="replace").strip()


def client_ctx(pki, certdir=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki.ca, "ca.pem"))
    ctx.check_hostname = True
    if certdir:
        ctx.load_cert_chain(os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem"))
    return ctx


def tls_attempt(port, ctx, data, read_timeout=5.0):
    """Connect, handshake, send data, read until close. Returns (local port,
    bytes read, exception or None). With TLS 1.3 a client certificate the
    server rejects shows up after the client's handshake as an alert."""
    raw_sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = raw_sock.getsockname()[1]
    got = bytearray()
    err = None
    s = raw_sock
    try:
        s = ctx.wrap_socket(raw_sock, server_hostname="localhost")
        s.sendall(data)
        deadline = time.time() + read_timeout
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            b = s.recv(65536)
            if not b:
                break
            got += b
    except (ssl.SSLError, OSError, socket.timeout) as e:
        err = e
    finally:
        s.close()
    return local, bytes(got), err


def peer_cert_der(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(http_req("GET", "/_ping", {"Connection": "close"}))
            data = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    r, _ = parse_one(bytes(data), "GET", eof=True)
    assert r is not None and r.status == 200 and r.body == b"OK", data
    return der


def container_exists(engine, name):
    return docker_cli(engine.host, "inspect", "--type", "container", name).returncode == 0


def read_audit(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln:
                out.append(json.loads(ln))
    return out


# --------------------------------------------------------------------------
# real clients over mutual TLS
# --------------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_docker_cli_over_mtls(engine, dockgate, pki, cleanup):
    dg = tls_gate(dockgate, pki)
    for cli in CLIS:
        out = tok(dg, pki.admin, "ps", "-a", cli=cli)
        assert out.startswith("CONTAINER ID"), (cli, out)
        out = tok(dg, pki.admin, "run", "--rm", "tiny", "echo", "hi", cli=cli)
        assert out == "hi", (cli, out)
    # exec -i with piped stdin: the CLI half-closes its write side over TLS
    name = uniq("tlsexec")
    cleanup.containers.append(name)
    tok(dg, pki.admin, "run", "-d", "--name", name, "tiny", "sleep", "120")
    for cli in CLIS:
        p = tcli(dg, pki.admin, "exec", "-i", name, "cat", input=b"hi\n", timeout=30, cli=cli)
        assert p.returncode == 0 and p.stdout == b"hi\n", (cli, p)
        blob = os.urandom(48 * 1024).hex().encode()   # 96 KiB over TLS, then EOF
        p = tcli(dg, pki.admin, "exec", "-i", name, "wc", "-c", input=blob, timeout=30, cli=cli)
        assert p.returncode == 0 and p.stdout.split()[0] == str(len(blob)).encode(), (cli, p)
    # logs -f: the first line arrives while the container still runs
    lname = uniq("tlslogs")
    cleanup.containers.append(lname)
    tok(dg, pki.admin, "run", "-d", "--name", lname, "tiny", "sh", "-c",
        "echo one; sleep 4; echo two")
    env = _cli_env(dg.tcp_host, tls_env(pki.admin))
    proc = subprocess.Popen([DOCKER, "logs", "-f", lname], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        first = proc.stdout.readline()
        assert first == b"one\n", (first, proc.stderr.read() if proc.poll() is not None else "")
        running = engine.ok("inspect", "-f", "{{.State.Running}}", lname)
        assert running == "true", "first log line only arrived after the container ended"
        rest, err = proc.communicate(timeout=30)
        assert rest == b"two\n", (rest, err)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_python_sdk_over_mtls(engine, dockgate, pki, cleanup, monkeypatch):
    import docker
    # requests lets these override the session's CA bundle (a requests quirk)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    dg = tls_gate(dockgate, pki)
    tls = docker.tls.TLSConfig(client_cert=(os.path.join(pki.admin, "cert.pem"),
                                            os.path.join(pki.admin, "key.pem")),
                               ca_cert=os.path.join(pki.ca, "ca.pem"), verify=True)
    c = docker.DockerClient(base_url="https://127.0.0.1:%d" % dg.port, tls=tls, version="1.41")
    try:
        assert c.ping() is True
        assert c.version()["ApiVersion"] == "1.41"
        name = uniq("tlssdk")
        cleanup.containers.append(name)
        out = c.containers.run("tiny", ["sh", "-c", "echo sdk-over-tls"], name=name,
                               network_mode="none")
        assert out == b"sdk-over-tls\n"
        ctr = c.containers.get(name)
        assert ctr.name == name
        ctr.remove()
    finally:
        c.close()


# --------------------------------------------------------------------------
# handshake rejections
# --------------------------------------------------------------------------

def _create_req(name):
    body = json.dumps({"Image": "tiny", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
    return http_req("POST", "/v1.41/containers/create?name=" + name,
                    {"Content-Type": "application/json"}, body)


@pytest.mark.parametrize("case", ["no-client-cert", "other-ca", "expired", "server-cert"])
def test_bad_client_certificate_rejected(engine, dockgate, pki, case):
    dg = tls_gate(dockgate, pki)
    certdir = {"no-client-cert": None, "other-ca": pki.foreign, "expired": pki.expired,
               "server-cert": pki.srv}[case]
    # positive controls on the same listener: a good certificate gets
    # through, and so does one made like the expired one but still valid
    for good in (pki.admin, pki.twin):
        local, got, err = tls_attempt(dg.port, client_ctx(pki, good),
                                      http_req("GET", "/_ping", {"Connection": "close"}))
        assert err is None and got.startswith(b"HTTP/1.1 200") and got.endswith(b"OK"), \
            (good, got, err)

    name = uniq("tlsrej")
    local, got, err = tls_attempt(dg.port, client_ctx(pki, certdir), _create_req(name))
    assert b"HTTP/" not in got, "a rejected TLS client got an HTTP answer: %r" % got
    # the handshake failed (alert) or the connection was closed
    assert err is not None or got == b"", (got, err)
    # when the client got the server's alert (not just a close), it says why
    # (OpenSSL alert names); the twin control above pins "expired" anyway
    alert = {"no-client-cert": "certificate required", "other-ca": "unknown ca",
             "expired": "expired", "server-cert": "unsupported certificate"}[case]
    if "alert" in str(err).lower():
        assert alert in str(err).lower().replace("_", " "), (case, err)
    assert not container_exists(engine, name), "the request reached the engine"
    # the daemon logs the peer and the reason
    peer = "127.0.0.1:%d" % local
    text = wait_log(dg, peer, timeout=5)
    assert text is not None, "no log line names the peer %s:\n%s" % (peer, dg.log_text()[-3000:])
    line = [ln for ln in text.splitlines() if peer in ln][0]
    low = line.lower()
    assert any(w in low for w in ("certificate", "verify", "expired", "handshake", "tls")), line
    assert len(line.split(peer, 1)[1].strip(" :")) > 5, "no reason after the peer: %r" % line


def test_plaintext_http_on_tls_port(engine, dockgate, pki):
    dg = tls_gate(dockgate, pki)
    name = uniq("tlsplain")
    s = socket.create_connection(("127.0.0.1", dg.port), timeout=5)
    local = s.getsockname()[1]
    try:
        s.sendall(_create_req(name))
        got = bytearray()
        closed = False
        deadline = time.time() + 5
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            got += b
    finally:
        s.close()
    assert closed, "the plaintext connection was not closed within 5 s (got %r)" % bytes(got)
    assert b"HTTP/1.1 2" not in got, got
    assert not container_exists(engine, name), "plaintext request was forwarded"
    peer = "127.0.0.1:%d" % local
    assert wait_log(dg, peer, timeout=5) is not None, \
        "plaintext connection not logged with its peer:\n" + dg.log_text()[-3000:]
    assert dg.alive()


def _run_dockgate(args, timeout=15):
    return subprocess.run([DOCKGATE_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)


def _startup_args(tmp, engine, *extra):
    pol = os.path.join(tmp, "policy.json")
    with open(pol, "w") as f:
        json.dump(UNRESTRICTED, f)
    return ["--listen", "unix:" + os.path.join(tmp, "dg.sock"),
            "--upstream", "unix:" + engine.sock, "--policy", pol] + list(extra)


def test_server_key_mismatch_refused(engine, pki, tmp_path):
    cert = os.path.join(pki.srv, "cert.pem")
    key = os.path.join(pki.srv2, "key.pem")     # another key: does not match
    port = free_port()
    p = _run_dockgate(_startup_args(str(tmp_path), engine, "--listen", "tcp:127.0.0.1:%d" % port,
                                    "--tls-cert", cert, "--tls-key", key,
                                    "--tls-ca", os.path.join(pki.ca, "ca.pem")))
    err = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 1, "daemon with a mismatched key: rc %d\n%s" % (p.returncode, err)
    assert cert in err or key in err, "the error does not name the file: %r" % err
    assert not os.path.exists(os.path.join(str(tmp_path), "dg.sock")) or not wait_tcp(port, 0.5)

    pol = os.path.join(str(tmp_path), "policy.json")
    p = _run_dockgate(["--check", "--policy", pol, "--tls-cert", cert, "--tls-key", key])
    err = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 1, "--check with a mismatched key: rc %d\n%s" % (p.returncode, err)
    assert cert in err or key in err, err
    # control: the matching pair passes --check
    p = _run_dockgate(["--check", "--policy", pol, "--tls-cert", cert,
                       "--tls-key", os.path.join(pki.srv, "key.pem"),
                       "--tls-ca", os.path.join(pki.ca, "ca.pem")])
    assert p.returncode == 0, p


def test_tcp_listener_without_tls_refused(engine, tmp_path):
    port = free_port()
    p = _run_dockgate(_startup_args(str(tmp_path), engine, "--listen",
                                    "tcp:127.0.0.1:%d" % port))
    err = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, "tcp listener without TLS started (rc 0): %s" % err
    assert p.returncode in (1, 2), p.returncode
    assert "insecure-tcp" in err or "tls" in err.lower(), err
    assert not wait_tcp(port, 0.3)


def test_insecure_tcp_allowed_when_asked(engine, dockgate):
    """Control for the refusal above: with --insecure-tcp the listener works."""
    port = free_port()
    dg = dockgate(extra_args=["--listen", "tcp:127.0.0.1:%d" % port, "--insecure-tcp"])
    assert wait_tcp(port)
    out = docker_cli("tcp://127.0.0.1:%d" % port, "version", "--format",
                     "{{.Server.APIVersion}}", check=True).stdout.strip()
    assert out == b"1.41"
    assert dg.alive()


# --------------------------------------------------------------------------
# identity from the certificate CN
# --------------------------------------------------------------------------

def test_identity_by_cert_cn(engine, dockgate, pki, cleanup, tmp_path):
    audit = str(tmp_path / "audit.log")
    policy = {
        "version": 1, "default_profile": "nobody",
        "identities": [{"match": {"cert_cn": "admin"}, "profile": "admin"},
                       {"match": {"cert_cn": "user"}, "profile": "user"}],
        "profiles": {
            "user": {"trusted_registries": ["docker.io/library"]},
            "admin": {"extends": "user", "privileged": True},
            "nobody": {"endpoints": {"allow": ["GET /_ping"]}},
        }}
    dg = tls_gate(dockgate, pki, policy=policy, extra=["--audit", audit])
    a, u = uniq("tlsadmin"), uniq("tlsuser")
    cleanup.containers += [a, u]
    tok(dg, pki.admin, "create", "--privileged", "--network", "none", "--name", a, "tiny", "true")
    assert engine.ok("inspect", "-f", "{{.HostConfig.Privileged}}", a) == "true"
    p = tcli(dg, pki.user, "create", "--privileged", "--network", "none", "--name", u,
             "tiny", "true")
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "user's privileged create passed"
    assert "Error response from daemon: dockgate:" in err and "privileged" in err, err
    assert not container_exists(engine, u)
    # an unprivileged create works for the user (the profile is not 'nobody')
    tok(dg, pki.user, "create", "--network", "none", "--name", u, "tiny", "true")
    time.sleep(0.3)
    lines = [x for x in read_audit(audit) if x.get("endpoint") == "POST /containers/create"]
    by = {}
    for x in lines:
        by.setdefault(x["peer"].get("cn"), []).append(x)
    assert set(by) >= {"admin", "user"}, lines
    for cn, xs in by.items():
        for x in xs:
            assert x["profile"] == cn, x
            assert x["listener"] == "tcp:127.0.0.1:%d" % dg.port, x
            assert x["peer"]["addr"].startswith("127.0.0.1:"), x
            assert "uid" not in x["peer"], x
    assert [x["status"] for x in by["admin"]] == [201], by["admin"]
    assert [x["status"] for x in by["user"]] == [403, 201], by["user"]
    assert by["user"][0]["verdict"] == "deny" and by["user"][0]["rule"] == "privileged"


# --------------------------------------------------------------------------
# a TLS upstream engine
# --------------------------------------------------------------------------

@pytest.fixture
def tls_engine(engine, pki):
    """A second private dockerd that listens on tcp with --tlsverify (and on
    a unix socket, for setting it up), holding the tiny image."""
    d = tempfile.mkdtemp(prefix="dg-e2e-eng2.", dir="/tmp")
    port = free_port()
    sock = os.path.join(d, "docker.sock")
    log = open(os.path.join(d, "dockerd.log"), "wb")
    proc = subprocess.Popen(
        ["dockerd", "--host", "unix://" + sock, "--host", "tcp://127.0.0.1:%d" % port,
         "--tlsverify", "--tlscacert", os.path.join(pki.ca, "ca.pem"),
         "--tlscert", os.path.join(pki.srv, "cert.pem"),
         "--tlskey", os.path.join(pki.srv, "key.pem"),
         "--data-root", os.path.join(d, "data"), "--exec-root", os.path.join(d, "exec"),
         "--pidfile", os.path.join(d, "docker.pid"),
         "--bridge=none", "--iptables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    host = "unix://" + sock
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("second dockerd exited:\n" + _tail(
                    os.path.join(d, "dockerd.log")))
            if os.path.exists(sock) and docker_cli(host, "version", timeout=10).returncode == 0:
                break
            if time.time() > deadline:
                raise RuntimeError("second dockerd not ready:\n" + _tail(
                    os.path.join(d, "dockerd.log")))
            time.sleep(0.3)
        tar = docker_cli(engine.host, "save", "tiny:latest", check=True, timeout=60).stdout
        docker_cli(host, "load", input=tar, check=True, timeout=60)
        yield {"host": host, "port": port, "dir": d}
    finally:
        if proc.poll() is None:
            try:
                ids = docker_cli(host, "ps", "-aq", timeout=20).stdout.split()
                if ids:
                    docker_cli(host, "rm", "-f", *ids, timeout=60)
            except Exception:
                pass
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
        _unmount_under(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(180)
def test_tls_upstream_engine(tls_engine, dockgate, pki, cleanup):
    port = tls_engine["port"]
    # the engine really requires a client certificate
    p = docker_cli("tcp://127.0.0.1:%d" % port, "version", timeout=20)
    assert p.returncode != 0
    dg = dockgate(extra_args=[
        "--upstream", "tcp:127.0.0.1:%d" % port,
        "--upstream-tls-ca", os.path.join(pki.ca, "ca.pem"),
        "--upstream-tls-cert", os.path.join(pki.upclient, "cert.pem"),
        "--upstream-tls-key", os.path.join(pki.upclient, "key.pem")])
    out = dg.ok("ps", "-a")
    assert out.startswith("CONTAINER ID"), out
    assert dg.ok("run", "--rm", "tiny", "echo", "hi", timeout=60) == "hi"
    # it is the second engine that ran it: only that one knows this name
    name = uniq("eng2")
    dg.ok("create", "--name", name, "--network", "none", "tiny", "true")
    assert docker_cli(tls_engine["host"], "inspect", name).returncode == 0
    dg.ok("rm", name)
    # exec -i with half-close over the TLS upstream
    name = uniq("eng2exec")
    dg.ok("run", "-d", "--name", name, "--network", "none", "tiny", "sleep", "60")
    p = dg.cli("exec", "-i", name, "cat", input=b"hi\n", timeout=30)
    assert p.returncode == 0 and p.stdout == b"hi\n", p
    dg.ok("rm", "-f", name)

    # dockgate verifies the engine: an engine certificate from a CA it was
    # not given is an unusable engine (502), and so is an engine that
    # refuses dockgate for lack of a client certificate
    for bad in (["--upstream-tls-ca", os.path.join(pki.ca2, "ca.pem"),
                 "--upstream-tls-cert", os.path.join(pki.upclient, "cert.pem"),
                 "--upstream-tls-key", os.path.join(pki.upclient, "key.pem")],
                ["--upstream-tls-ca", os.path.join(pki.ca, "ca.pem")]):
        dgb = dockgate(extra_args=["--upstream", "tcp:127.0.0.1:%d" % port] + bad)
        data = raw(dgb.sock, http_req("GET", "/v1.41/containers/json",
                                      {"Connection": "close"}), read_timeout=15)
        rs = parse_responses(data)
        assert rs, (bad, data)
        assert_refusal(rs[0], 502)
        dgb.stop()


# --------------------------------------------------------------------------
# SIGHUP reloads the certificates
# --------------------------------------------------------------------------

def _metric(port, name_and_labels):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    for ln in text.splitlines():
        if ln.startswith(name_and_labels + " "):
            return float(ln.split()[-1])
    return None


def _hup_and_wait(dg, needle):
    since = len(dg.log_text())
    os.kill(dg.pid, signal.SIGHUP)
    text = wait_log(dg, needle, timeout=5, since=since)
    assert text is not None, "no %r in the log after SIGHUP:\n%s" % (needle, dg.log_text()[since:])
    return text


def test_sighup_reloads_certificates(dockgate, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    cert, key = str(live / "cert.pem"), str(live / "key.pem")
    shutil.copy(os.path.join(pki.srv, "cert.pem"), cert)
    shutil.copy(os.path.join(pki.srv, "key.pem"), key)
    mport = free_port()
    dg = tls_gate(dockgate, pki, cert=cert, key=key,
                  extra=["--metrics", "tcp:127.0.0.1:%d" % mport])
    ctx = client_ctx(pki, pki.admin)
    assert peer_cert_der(dg.port, ctx) == pem_der(os.path.join(pki.srv, "cert.pem"))

    # a kept-alive TLS connection open across the reload keeps working
    raw_sock = socket.create_connection(("127.0.0.1", dg.port), timeout=5)
    keep = ctx.wrap_socket(raw_sock, server_hostname="localhost")
    try:
        keep.sendall(http_req("GET", "/_ping"))
        assert keep.recv(4096).startswith(b"HTTP/1.1 200")

        # new files, HUP: new handshakes see the new certificate
        shutil.copy(os.path.join(pki.srv2, "cert.pem"), cert)
        shutil.copy(os.path.join(pki.srv2, "key.pem"), key)
        _hup_and_wait(dg, "reloaded")
        assert peer_cert_der(dg.port, ctx) == pem_der(os.path.join(pki.srv2, "cert.pem"))

        keep.sendall(http_req("GET", "/_ping"))
        assert keep.recv(4096).startswith(b"HTTP/1.1 200"), "connection dropped by the reload"
    finally:
        keep.close()

    # a broken certificate: the old one stays in force and the log says why
    for broken in ("garbage", "mismatch", "missing"):
        if broken == "garbage":
            with open(cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                        "-----END CERTIFICATE-----\n")
            names = (cert,)
        elif broken == "mismatch":
            shutil.copy(os.path.join(pki.srv3, "cert.pem"), cert)   # key is still srv2's
            names = (cert, key)
        else:
            os.unlink(cert)
            names = (cert,)
        since = len(dg.log_text())
        os.kill(dg.pid, signal.SIGHUP)
        text = wait_log(dg, "reloaded", timeout=5, since=since)
        assert text is not None, dg.log_text()[since:]
        lines = [ln for ln in text.splitlines() if "TLS" in ln or "cert" in ln.lower()]
        assert lines, "the log does not say why the certificate reload failed:\n" + text
        assert any(n in ln for ln in lines for n in names), (broken, lines)
        # the old (srv2) certificate is still served, handshakes work
        assert peer_cert_der(dg.port, ctx) == pem_der(os.path.join(pki.srv2, "cert.pem")), broken
        assert dg.alive()


def test_failed_certificate_reload_counted_as_failed(dockgate, pki, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    shutil.copy(os.path.join(pki.srv, "cert.pem"), cert)
    shutil.copy(os.path.join(pki.srv, "key.pem"), key)
    mport = free_port()
    dg = tls_gate(dockgate, pki, cert=cert, key=key,
                  extra=["--metrics", "tcp:127.0.0.1:%d" % mport])
    assert wait_tcp(mport)
    failed0 = _metric(mport, 'dockgate_policy_reloads_total{result="failed"}')
    assert failed0 == 0, failed0
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    since = len(dg.log_text())
    os.kill(dg.pid, signal.SIGHUP)
    assert wait_log(dg, "TLS reload failed", timeout=5, since=since) is not None, \
        dg.log_text()[since:]
    time.sleep(0.3)
    assert _metric(mport, 'dockgate_policy_reloads_total{result="failed"}') == 1


def test_sighup_reloads_client_ca(dockgate, pki, tmp_path):
    """--tls-ca is a certificate file too: a new CA bundle after SIGHUP
    decides which client certificates are accepted."""
    live_ca = str(tmp_path / "ca.pem")
    shutil.copy(os.path.join(pki.ca, "ca.pem"), live_ca)
    port = free_port()
    dg = dockgate(extra_args=["--listen", "tcp:127.0.0.1:%d" % port,
                              "--tls-cert", os.path.join(pki.srv, "cert.pem"),
                              "--tls-key", os.path.join(pki.srv, "key.pem"),
                              "--tls-ca", live_ca])
    assert wait_tcp(port)
    dg.port, dg.tcp_host = port, "tcp://127.0.0.1:%d" % port
    ping = http_req("GET", "/_ping", {"Connection": "close"})

    def accepted(certdir):
        _, got, err = tls_attempt(port, client_ctx(pki, certdir), ping)
        return got.startswith(b"HTTP/1.1 200")

    assert accepted(pki.admin) and not accepted(pki.foreign)
    shutil.copy(os.path.join(pki.ca2, "ca.pem"), live_ca)
    _hup_and_wait(dg, "reloaded")
    assert accepted(pki.foreign), "a client of the new CA is refused after the reload"
    assert not accepted(pki.admin), "a client of the old CA is still accepted after the reload"
    assert tcli(dg, pki.foreign, "version").returncode == 0


def test_tls_handshake_timeout(dockgate, pki):
    """A tcp client that never sends its TLS hello is not kept forever."""
    dg = tls_gate(dockgate, pki, extra=["--timeout-header", "2"])
    s = socket.create_connection(("127.0.0.1", dg.port), timeout=15)
    local = s.getsockname()[1]
    t0 = time.time()
    try:
        try:
            b = s.recv(100)
        except socket.timeout:
            b = None
        except ConnectionResetError:
            b = b""
    finally:
        s.close()
    assert b == b"", "silent client not closed within 15 s (%r)" % b
    assert time.time() - t0 < 8, time.time() - t0
    assert wait_log(dg, "127.0.0.1:%d" % local) is not None, dg.log_text()[-2000:]
    assert dg.alive()


def test_listener_and_cn_both_must_match(engine, dockgate, pki, cleanup, tmp_path):
    """An identity with listener (spelled tcp://, as on the command line) and
    cert_cn matches only when both fit; the audit line carries the listener
    string as given."""
    port = free_port()
    listener = "tcp://127.0.0.1:%d" % port
    audit = str(tmp_path / "audit.log")
    policy = {
        "version": 1, "default_profile": "user",
        "identities": [{"match": {"listener": listener, "cert_cn": "user"}, "profile": "admin"}],
        "profiles": {"user": {"trusted_registries": ["docker.io/library"]},
                     "admin": {"extends": "user", "privileged": True}}}
    dg = dockgate(policy=policy, extra_args=[
        "--listen", listener, "--tls-cert", os.path.join(pki.srv, "cert.pem"),
        "--tls-key", os.path.join(pki.srv, "key.pem"),
        "--tls-ca", os.path.join(pki.ca, "ca.pem"), "--audit", audit])
    assert wait_tcp(port)
    dg.port, dg.tcp_host = port, "tcp://127.0.0.1:%d" % port
    n1, n2, n3 = uniq("lcn"), uniq("lcn"), uniq("lcn")
    cleanup.containers += [n1, n2, n3]
    tok(dg, pki.user, "create", "--privileged", "--network", "none", "--name", n1, "tiny", "true")
    p = tcli(dg, pki.admin, "create", "--privileged", "--network", "none", "--name", n2,
             "tiny", "true")
    assert p.returncode != 0 and b"dockgate:" in p.stderr, p
    p = dg.cli("create", "--privileged", "--network", "none", "--name", n3, "tiny", "true")
    assert p.returncode != 0 and b"dockgate:" in p.stderr, p
    time.sleep(0.3)
    creates = [x for x in read_audit(audit) if x.get("endpoint") == "POST /containers/create"]
    assert [(x["profile"], x["status"]) for x in creates] == [
        ("admin", 201), ("user", 403), ("user", 403)], creates
    assert creates[0]["listener"] == listener and creates[1]["listener"] == listener, creates
    assert creates[2]["listener"] == "unix:" + dg.sock, creates[2]
    assert isinstance(creates[0]["peer"].get("san"), list), creates[0]


def test_connection_cap_refusal_over_tls(dockgate, pki):
    dg = tls_gate(dockgate, pki, extra=["--max-connections", "2"])
    from conftest import ping_ok
    deadline = time.time() + 5
    while time.time() < deadline and not ping_ok(dg.sock):   # start-up probe released
        time.sleep(0.1)
    time.sleep(0.3)
    held = []
    try:
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(dg.sock)
            s.sendall(http_req("GET", "/_ping"))
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            held.append(s)
        _, got, err = tls_attempt(dg.port, client_ctx(pki, pki.admin),
                                  http_req("GET", "/_ping", {"Connection": "close"}))
        r, _ = parse_one(got, "GET", eof=True) if got else (None, b"")
        assert r is not None, "TLS client at the cap got no HTTP answer (%r)" % err
        assert_refusal(r, 503)
    finally:
        for s in held:
            s.close()
