"""python docker SDK and docker-compose 1.29 through dockgate."""

import os
import subprocess
import time

import docker
import pytest

from conftest import _cli_env, uniq


@pytest.fixture
def sdk(gate):
    c = docker.DockerClient(base_url=gate.host, timeout=60)
    yield c
    c.close()


def test_sdk_basics(engine, sdk):
    assert sdk.ping() is True
    direct = docker.DockerClient(base_url=engine.host, timeout=60)
    try:
        assert sdk.version()["ApiVersion"] == direct.version()["ApiVersion"]
        assert sdk.images.get("tiny:latest").id == direct.images.get("tiny:latest").id
        assert sorted(n.name for n in sdk.networks.list()) == \
            sorted(n.name for n in direct.networks.list())
    finally:
        direct.close()


def test_sdk_run_detached_stream_logs(sdk, cleanup):
    c = sdk.containers.run("tiny", ["sh", "-c", "for i in 1 2 3 4 5; do echo n$i; sleep 0.3; done"],
                           detach=True, network_mode="none", labels={"dge2e": "1"})
    cleanup.containers.append(c.id)
    t0 = time.time()
    stream = c.logs(stream=True, follow=True)
    got = b""
    first_at = None
    for chunk in stream:
        if first_at is None:
            first_at = time.time()
            c.reload()
            assert c.status == "running", "first log line should arrive while running"
        got += chunk
    assert got == b"".join(b"n%d\n" % i for i in range(1, 6))
    assert first_at - t0 < 5
    res = c.wait(timeout=30)
    assert res["StatusCode"] == 0
    assert c.logs() == got


def test_sdk_run_foreground_and_exec(sdk, cleanup):
    out = sdk.containers.run("tiny", ["echo", "from-sdk"], remove=True, network_mode="none")
    assert out == b"from-sdk\n"
    c = sdk.containers.run("tiny", ["sleep", "600"], detach=True, network_mode="none")
    cleanup.containers.append(c.id)
    rc, output = c.exec_run(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"])
    assert rc == 4
    assert b"exec-out" in output and b"exec-err" in output
    rc, output = c.exec_run(["sh", "-c", "echo demux; echo e >&2"], demux=True)
    assert output == (b"demux\n", b"e\n")
    # put_archive / get_archive
    import io, tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(300000)
        ti = tarfile.TarInfo("payload")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    assert c.put_archive("/tmp", buf.getvalue())
    bits, st = c.get_archive("/tmp/payload")
    tarbytes = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(tarbytes)) as t:
        assert t.extractfile("payload").read() == data
    c.remove(force=True)


def test_sdk_attach_socket(sdk, cleanup):
    """attach_socket: the hijacked stream via the low-level API."""
    api = sdk.api
    cont = api.create_container("tiny", ["cat"], stdin_open=True,
                                host_config=api.create_host_config(network_mode="none"))
    cid = cont["Id"]
    cleanup.containers.append(cid)
    s = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stream": 1})
    api.start(cid)
    sock = s._sock
    sock.sendall(b"ping-attach\n")
    sock.shutdown(1)  # half-close: the engine closes cat's stdin (stdin_once)
    data = b""
    sock.settimeout(20)
    while True:
        b = sock.recv(4096)
        if not b:
            break
        data += b
    s.close()
    # multiplexed stream: 8-byte header + payload
    assert data[8:] == b"ping-attach\n", data
    assert api.wait(cid, timeout=20)["StatusCode"] == 0


COMPOSE = """version: "2.4"
services:
  web:
    image: tiny
    command: ["sh", "-c", "echo web-started; exec sleep 600"]
    network_mode: none
    labels: [dge2e=1]
  worker:
    image: tiny
    command: ["sh", "-c", "echo worker-started; exec sleep 600"]
    network_mode: none
    volumes: ["data:/data"]
volumes:
  data: {}
"""


def compose(host, project, f, *args, timeout=120):
    return subprocess.run(["docker-compose", "-p", project, "-f", f] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=_cli_env(host), timeout=timeout)


def test_compose_up_ps_logs_down(engine, gate, tmp_path):
    f = str(tmp_path / "docker-compose.yml")
    with open(f, "w") as fh:
        fh.write(COMPOSE)
    project = uniq("cmp").replace("-", "")
    try:
        up = compose(gate.host, project, f, "up", "-d")
        assert up.returncode == 0, up.stderr
        ps = compose(gate.host, project, f, "ps")
        assert ps.returncode == 0, ps.stderr
        text = ps.stdout.decode()
        assert "%s_web_1" % project in text and "%s_worker_1" % project in text
        assert text.count(" Up") >= 2, text
        # direct at the engine: the same containers
        ids = engine.ok("ps", "-q", "--filter", "label=com.docker.compose.project=" + project)
        assert len(ids.split()) == 2
        deadline = time.time() + 15
        while True:
            logs = compose(gate.host, project, f, "logs", "--no-color")
            assert logs.returncode == 0, logs.stderr
            if b"web-started" in logs.stdout and b"worker-started" in logs.stdout:
                break
            assert time.time() < deadline, logs.stdout
            time.sleep(0.5)
        down = compose(gate.host, project, f, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr
        assert engine.ok("ps", "-aq", "--filter",
                         "label=com.docker.compose.project=" + project) == ""
        assert project + "_data" not in engine.ok("volume", "ls", "-q")
    finally:
        compose(engine.host, project, f, "down", "-v", "-t", "1")
