"""End-to-end harness for dockgate: a private dockerd, a tiny image, two local
registries, and a factory that starts dockgate (or a socat stand-in) in front
of the engine.

Environment:
  DG_ENGINE_SOCK   use this engine socket instead of starting a private dockerd
  DOCKGATE_BIN     the daemon (default <repo>/proxy/dockgate)
  DG_STANDIN=socat start `socat UNIX-LISTEN,fork UNIX-CONNECT` instead of dockgate
                   (dockgate-specific tests are then skipped, unless DG_STANDIN_ALL=1)
  DG_DOCKER_CLI    docker CLI binary (default: `docker` on PATH)
  DG_TEST_TIMEOUT  default per-test hard timeout in seconds (default 120)

Run with Debian's interpreter: /usr/bin/python3 -m pytest -v tests/e2e
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DOCKGATE_BIN = os.environ.get("DOCKGATE_BIN", os.path.join(REPO, "proxy", "dockgate"))
STANDIN = os.environ.get("DG_STANDIN", "")
DOCKER = os.environ.get("DG_DOCKER_CLI") or shutil.which("docker") or "/usr/bin/docker"
DEFAULT_TIMEOUT = int(os.environ.get("DG_TEST_TIMEOUT", "120"))

UNRESTRICTED = {"version": 1, "default_profile": "all",
                "profiles": {"all": {"unrestricted": True}}}

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                      "ERROR: ThreadSanitizer", "ERROR: MemorySanitizer")

BUSYBOX_APPLETS = ("sh ls cat echo sleep id true env ps mount head "
                   "dd wc seq touch rm mkdir tr printf date kill test").split()


def is_standin():
    return STANDIN == "socat"


needs_dockgate = pytest.mark.skipif(
    is_standin() and not os.environ.get("DG_STANDIN_ALL"),
    reason="dockgate-specific behaviour (statuses, limits, timeouts, SIGTERM); the socat "
           "stand-in cannot provide it (DG_STANDIN_ALL=1 runs them anyway)")


# --------------------------------------------------------------------------
# pytest configuration: markers, hard per-test timeout
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): hard per-test timeout (SIGALRM)")
    config.addinivalue_line("markers", "dockgate_only: needs dockgate behaviour, not a plain relay")


class HardTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _hard_timeout(request):
    """SIGALRM-based timeout: pytest-timeout is not installed. Being the first
    function fixture set up, it is the last torn down, so it also bounds the
    other fixtures' teardown."""
    m = request.node.get_closest_marker("timeout")
    secs = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise HardTimeout("test exceeded its hard timeout of %d s" % secs)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(secs + 30)   # + budget for teardown
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_unix_accepts(path, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return "process exited with %r" % proc.returncode
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(1)
                s.connect(path)
                return None
            except OSError as e:
                last = e
            finally:
                s.close()
        time.sleep(0.05)
    return "socket %s did not accept within %ss (%r)" % (path, timeout, last)


def _cli_env(host, env=None):
    e = dict(os.environ)
    e["DOCKER_HOST"] = host
    e["DOCKER_BUILDKIT"] = "0"
    e["DOCKER_CLI_HINTS"] = "false"
    e.setdefault("DOCKER_CONFIG", _CLI_CONFIG_DIR)
    for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        e.pop(k, None)
    if env:
        e.update(env)
    return e


_CLI_CONFIG_DIR = tempfile.mkdtemp(prefix="dg-e2e-cliconf.", dir="/tmp")
atexit.register(shutil.rmtree, _CLI_CONFIG_DIR, True)


def docker_cli(host, *args, input=None, timeout=60, env=None, cli=None, check=False):
    """Run the docker CLI against `host` ("unix:///..."). Returns CompletedProcess
    with bytes stdout/stderr. On timeout the CLI is SIGKILLed (it forwards
    SIGTERM to containers in attach mode) and TimeoutExpired propagates."""
    if isinstance(input, str):
        input = input.encode()
    cmd = [cli or DOCKER] + [str(a) for a in args]
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       timeout=timeout, env=_cli_env(host, env))
    if check and p.returncode != 0:
        raise AssertionError("%s failed (rc %d):\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def docker_ok(host, *args, **kw):
    """docker_cli with check=True, returns stripped stdout text."""
    kw["check"] = True
    return docker_cli(host, *args, **kw).stdout.decode(errors="replace").strip()


def raw(sock, data, read_timeout=5.0, total_timeout=None, shut_wr=False):
    """Send raw bytes on a unix socket, return everything read until the peer
    closes or nothing arrives for read_timeout seconds (or total_timeout)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    try:
        if data:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
        if shut_wr:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return read_all(s, read_timeout, total_timeout)
    finally:
        s.close()


def read_all(s, read_timeout=5.0, total_timeout=None):
    out = bytearray()
    deadline = time.time() + (total_timeout or 3600)
    while time.time() < deadline:
        s.settimeout(max(0.01, min(read_timeout, deadline - time.time())))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not b:
            break
        out += b
    return bytes(out)


class RawConn:
    """A raw unix-socket HTTP connection that reads responses one at a time."""

    def __init__(self, sock, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(sock)
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("connection closed")
        self.buf += b

    def read_response(self, method="GET"):
        while True:
            try:
                resp, rest = parse_one(self.buf, method)
                self.buf = rest
                return resp
            except IncompleteResponse:
                pass
            try:
                self._fill()
            except EOFError:
                resp, rest = parse_one(self.buf, method, eof=True)
                self.buf = rest
                return resp

    def is_closed(self, wait=2.0):
        """True if the peer closed (EOF/reset) within `wait` seconds with no data."""
        self.s.settimeout(wait)
        try:
            b = self.s.recv(1)
            if b:
                self.buf += b
                return False
            return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.s.settimeout(self.timeout)

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------
# minimal HTTP/1.1 response parser
# --------------------------------------------------------------------------

class IncompleteResponse(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, headers, body, complete, until_close=False):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.body = body
        self.complete = complete
        self.until_close = until_close

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<Response %s %s %r body=%r>" % (self.status, self.reason, self.headers,
                                                 self.body[:300])


def parse_one(buf, method="GET", eof=False):
    """Parse one response from buf. Returns (Response, rest). Raises
    IncompleteResponse when more bytes are needed (and not eof)."""
    idx = buf.find(b"\r\n\r\n")
    if idx < 0:
        if eof:
            if buf:
                raise AssertionError("truncated response head: %r" % buf[:500])
            return None, b""
        raise IncompleteResponse()
    head = buf[:idx].decode("latin-1")
    rest = buf[idx + 4:]
    lines = head.split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError("bad status line: %r" % lines[0])
    version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip(), v.strip()))
    r = Response(version, status, reason, headers, b"", True)
    hdr = {k.lower(): v for k, v in headers}
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return r, rest
    te = hdr.get("transfer-encoding", "").lower()
    if "chunked" in te:
        body = bytearray()
        pos = 0
        while True:
            nl = rest.find(b"\r\n", pos)
            if nl < 0:
                if eof:
                    r.body, r.complete = bytes(body), False
                    return r, b""
                raise IncompleteResponse()
            size = int(rest[pos:nl].split(b";")[0].strip() or b"0", 16)
            pos = nl + 2
            if size == 0:
                # trailers until empty line
                end = rest.find(b"\r\n", pos)
                while end >= 0 and end != pos:
                    pos = end + 2
                    end = rest.find(b"\r\n", pos)
                if end < 0:
                    if eof:
                        r.body = bytes(body)
                        return r, b""
                    raise IncompleteResponse()
                r.body = bytes(body)
                return r, rest[end + 2:]
            if len(rest) < pos + size + 2:
                if eof:
                    body += rest[pos:pos + size]
                    r.body, r.complete = bytes(body), False
                    return r, b""
                raise IncompleteResponse()
            body += rest[pos:pos + size]
            pos += size + 2
    if "content-length" in hdr:
        n = int(hdr["content-length"])
        if len(rest) < n:
            if eof:
                r.body, r.complete = rest, False
                return r, b""
            raise IncompleteResponse()
        r.body = rest[:n]
        return r, rest[n:]
    # no framing: body runs until close
    if not eof:
        raise IncompleteResponse()
    r.body = rest
    r.until_close = True
    return r, b""


def parse_responses(data, methods=None):
    """Parse every response in data (read until close). methods: list of
    request methods in order (for HEAD)."""
    out = []
    buf = data
    i = 0
    while buf:
        method = methods[i] if methods and i < len(methods) else "GET"
        r, buf = parse_one(buf, method, eof=True)
        if r is None:
            break
        out.append(r)
        i += 1
    return out


def assert_refusal(resp, status, allowed=None):
    """A dockgate refusal: status, Content-Type application/json, body
    {"message":"dockgate: ..."}. `allowed` is an alternative set of statuses."""
    assert resp is not None, "no response (connection closed without an answer)"
    statuses = set(allowed or ()) | {status}
    assert resp.status in statuses, "expected %s, got %r" % (sorted(statuses), resp)
    ct = (resp.header("Content-Type") or "").lower()
    assert ct.split(";")[0].strip() == "application/json", "refusal Content-Type: %r" % resp
    try:
        body = resp.json()
    except Exception as e:
        raise AssertionError("refusal body is not JSON: %r (%s)" % (resp.body, e))
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    assert body["message"].startswith("dockgate: "), body
    return body["message"]


def http_req(method, path, headers=None, body=b"", host="docker", chunked=False):
    """Build request bytes."""
    h = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    for k, v in (headers or {}).items():
        h.append("%s: %s" % (k, v))
    if isinstance(body, str):
        body = body.encode()
    if chunked:
        h.append("Transfer-Encoding: chunked")
        parts = b""
        if body:
            parts += b"%x\r\n%s\r\n" % (len(body), body)
        body = parts + b"0\r\n\r\n"
    elif body or method in ("POST", "PUT"):
        h.append("Content-Length: %d" % len(body))
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def ping_ok(sock, timeout=5.0):
    data = raw(sock, http_req("GET", "/_ping", {"Connection": "close"}), read_timeout=timeout)
    rs = parse_responses(data)
    return bool(rs) and rs[0].status == 200 and rs[0].body == b"OK"


def fd_list(pid):
    out = []
    try:
        for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
            try:
                out.append("%s->%s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
            except OSError:
                pass
    except OSError:
        pass
    return out


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------

class Engine:
    def __init__(self):
        self.dir = None
        self.sock = None
        self.proc = None
        self.owned = False
        self.registries = []     # (proc, dir)
        self.trusted = None      # "127.0.0.1:PORT"
        self.untrusted = None

    @property
    def host(self):
        return "unix://" + self.sock

    def cli(self, *args, **kw):
        return docker_cli(self.host, *args, **kw)

    def ok(self, *args, **kw):
        return docker_ok(self.host, *args, **kw)


def _start_dockerd(d):
    log = open(os.path.join(d, "dockerd.log"), "wb")
    sock = os.path.join(d, "docker.sock")
    proc = subprocess.Popen(
        ["dockerd", "--host", "unix://" + sock, "--data-root", os.path.join(d, "data"),
         "--exec-root", os.path.join(d, "exec"), "--pidfile", os.path.join(d, "docker.pid"),
         "--bridge=none", "--iptables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    log.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("dockerd exited (%r):\n%s" % (proc.returncode, _tail(
                os.path.join(d, "dockerd.log"))))
        if os.path.exists(sock):
            p = docker_cli("unix://" + sock, "version", timeout=10)
            if p.returncode == 0:
                return sock, proc
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("dockerd did not answer within 60 s:\n" + _tail(
        os.path.join(d, "dockerd.log")))


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError as e:
        return str(e)


def _stop_dockerd(d, proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
    _unmount_under(d)


def _unmount_under(d):
    d = os.path.realpath(d)
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.split()[4] for ln in f]
    except OSError:
        return
    under = [m for m in mounts if m == d or m.startswith(d + "/")]
    for m in sorted(under, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def _build_tiny(eng, workdir):
    root = os.path.join(workdir, "tiny-root")
    for sub in ("bin", "etc", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    bb = "/bin/busybox"
    if not os.path.exists(bb):
        raise RuntimeError("/bin/busybox missing: apt-get install busybox-static")
    shutil.copy(bb, os.path.join(root, "bin", "busybox"))
    for a in BUSYBOX_APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    tar = subprocess.run(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE,
                         check=True).stdout
    eng.ok("import", "-c", 'CMD ["/bin/sh"]', "-", "tiny:latest", input=tar)
    eng.ok("import", "-c", 'CMD ["/bin/sh"]', "-c", "USER 1000", "-", "tiny-user:latest",
           input=tar)


def _start_registry(workdir, name):
    port = None
    rdir = os.path.join(workdir, "reg-" + name)
    os.makedirs(os.path.join(rdir, "store"))
    for _attempt in range(5):
        port = free_port()
        cfg = os.path.join(rdir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog: { level: warn }\n"
                    "storage: { filesystem: { rootdirectory: %s } }\n"
                    "http: { addr: 127.0.0.1:%d }\n" % (os.path.join(rdir, "store"), port))
        log = open(os.path.join(rdir, "registry.log"), "wb")
        proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=2).read()
                return proc, "127.0.0.1:%d" % port
            except Exception:
                time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    raise RuntimeError("docker-registry did not start:\n" + _tail(
        os.path.join(rdir, "registry.log")))


@pytest.fixture(scope="session")
def engine():
    eng = Engine()
    eng.dir = tempfile.mkdtemp(prefix="dg-e2e-engine.", dir="/tmp")
    ext = os.environ.get("DG_ENGINE_SOCK")
    try:
        if ext:
            eng.sock = ext
            p = docker_cli(eng.host, "version", timeout=20)
            if p.returncode != 0:
                raise RuntimeError("DG_ENGINE_SOCK=%s does not answer: %s" % (ext, p.stderr))
        else:
            if not shutil.which("dockerd"):
                raise RuntimeError("dockerd missing: apt-get install docker.io")
            eng.owned = True
            eng.sock, eng.proc = _start_dockerd(eng.dir)
        _build_tiny(eng, eng.dir)
        for name in ("trusted", "untrusted"):
            proc, addr = _start_registry(eng.dir, name)
            eng.registries.append(proc)
            setattr(eng, name, addr)
        for addr, repo in ((eng.trusted, "library/tiny"), (eng.untrusted, "evil/tiny")):
            ref = "%s/%s:latest" % (addr, repo)
            eng.ok("tag", "tiny:latest", ref)
            eng.ok("push", ref, timeout=60)
            eng.ok("rmi", ref)
    except BaseException:
        _engine_teardown(eng)
        raise
    yield eng
    _engine_teardown(eng)


def _engine_teardown(eng):
    if eng.owned and eng.proc is not None and eng.proc.poll() is None:
        try:
            ids = docker_cli(eng.host, "ps", "-aq", timeout=20).stdout.split()
            if ids:
                docker_cli(eng.host, "rm", "-f", *ids, timeout=60)
        except Exception:
            pass
    for proc in eng.registries:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if eng.owned and eng.proc is not None:
        _stop_dockerd(eng.dir, eng.proc)
    _unmount_under(eng.dir)
    shutil.rmtree(eng.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# dockgate (or the socat stand-in)
# --------------------------------------------------------------------------

class Dockgate:
    def __init__(self, tmpdir, sock, proc, logpath, policy_path, args):
        self.tmpdir = tmpdir
        self.sock = sock
        self.proc = proc
        self.logpath = logpath
        self.policy_path = policy_path
        self.args = args
        self.stopped = False
        self.exit_checked = False

    @property
    def host(self):
        return "unix://" + self.sock

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def cli(self, *args, **kw):
        return docker_cli(self.host, *args, **kw)

    def ok(self, *args, **kw):
        return docker_ok(self.host, *args, **kw)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, wait; returns the exit status. SIGKILL after timeout."""
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.killed_after_timeout = True
        return self.proc.returncode

    def problems(self):
        """What teardown must fail on: crashes, signals, sanitizer reports."""
        out = []
        rc = self.proc.returncode
        if getattr(self, "killed_after_timeout", False):
            out.append("did not exit within 15 s of SIGTERM (SIGKILLed)")
        elif rc is not None and rc < 0 and not is_standin():
            out.append("died with signal %d" % -rc)
        elif rc is not None and rc != 0 and not is_standin():
            out.append("exit status %d after SIGTERM" % rc)
        if getattr(self, "died_early", None) is not None:
            out.append("exited before teardown with %r" % self.died_early)
        text = self.log_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                out.append("sanitizer report in log (%r)" % pat)
        return out


def write_policy(tmpdir, policy):
    if policy is None:
        policy = UNRESTRICTED
    if isinstance(policy, dict):
        path = os.path.join(tmpdir, "policy-%d.json" % len(os.listdir(tmpdir)))
        with open(path, "w") as f:
            json.dump(policy, f, indent=1)
        return path
    return str(policy)


@pytest.fixture
def dockgate(engine, request):
    """Factory: dockgate(policy=None, extra_args=(), upstream=None, wait=True)."""
    started = []

    def start(policy=None, extra_args=(), upstream=None, wait=True, listen=None):
        tmpdir = tempfile.mkdtemp(prefix="dg-e2e-gate.", dir="/tmp")
        sock = listen or os.path.join(tmpdir, "dg.sock")
        logpath = os.path.join(tmpdir, "dockgate.log")
        up = upstream or engine.sock
        policy_path = write_policy(tmpdir, policy)
        if is_standin():
            args = ["socat", "-t", "30", "UNIX-LISTEN:%s,fork,unlink-early" % sock,
                    "UNIX-CONNECT:%s" % up]
        else:
            if not os.access(DOCKGATE_BIN, os.X_OK):
                pytest.fail("dockgate binary missing: %s (build it, set DOCKGATE_BIN, "
                            "or DG_STANDIN=socat)" % DOCKGATE_BIN)
            args = [DOCKGATE_BIN, "--listen", "unix:" + sock, "--upstream", "unix:" + up,
                    "--policy", policy_path, "-v"] + [str(a) for a in extra_args]
        log = open(logpath, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        dg = Dockgate(tmpdir, sock, proc, logpath, policy_path, args)
        started.append(dg)
        if wait:
            err = wait_unix_accepts(sock, 10, proc)
            if err:
                pytest.fail("dockgate did not start: %s\ncmd: %s\nlog:\n%s" % (
                    err, " ".join(args), dg.log_text()[-4000:]))
        return dg

    yield start

    failures = []
    for dg in started:
        if not dg.stopped and dg.proc.poll() is not None:
            dg.died_early = dg.proc.returncode
        dg.stop()
        probs = dg.problems()
        if probs:
            failures.append("dockgate %s: %s\n--- log tail ---\n%s" % (
                " ".join(dg.args), "; ".join(probs), dg.log_text()[-6000:]))
        shutil.rmtree(dg.tmpdir, ignore_errors=True)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def gate(dockgate):
    """One dockgate with the unrestricted policy."""
    return dockgate()


# --------------------------------------------------------------------------
# per-test cleanup of engine objects
# --------------------------------------------------------------------------

class Cleanup:
    def __init__(self, eng):
        self.eng = eng
        self.containers = []
        self.images = []
        self.volumes = []
        self.networks = []

    def run(self):
        if self.containers:
            docker_cli(self.eng.host, "rm", "-f", "-v", *self.containers, timeout=60)
        if self.images:
            docker_cli(self.eng.host, "rmi", "-f", *self.images, timeout=60)
        if self.volumes:
            docker_cli(self.eng.host, "volume", "rm", "-f", *self.volumes, timeout=60)
        for n in self.networks:
            docker_cli(self.eng.host, "network", "rm", n, timeout=60)


@pytest.fixture
def cleanup(engine):
    c = Cleanup(engine)
    yield c
    c.run()


_UNIQ = [0]


def uniq(prefix="dge2e"):
    _UNIQ[0] += 1
    return "%s-%d-%d-%d" % (prefix, os.getpid(), int(time.time()) % 10**6, _UNIQ[0])
