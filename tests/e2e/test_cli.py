"""docker CLI through dockgate (unrestricted policy), compared with the same
command run straight at the engine."""

import json
import os
import random
import shutil
import subprocess
import tarfile
import io
import time

import pytest

from conftest import DOCKER, docker_cli, docker_ok, uniq, _cli_env

CLIS = [DOCKER]
if os.path.exists("/usr/bin/docker") and os.path.realpath("/usr/bin/docker") != \
        os.path.realpath(DOCKER):
    CLIS.append("/usr/bin/docker")


@pytest.fixture(params=CLIS, ids=lambda c: "cli-" + c.replace("/", "_").strip("_"))
def cli(request):
    return request.param


def out(p):
    return p.stdout.decode(errors="replace")


def run_sleeper(engine, cleanup, *extra):
    """A long-running container created straight at the engine."""
    cid = engine.ok("run", "-d", "--network", "none", *extra, "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    return cid


# ---------------------------------------------------------------- run

def test_run_rm_echo(engine, gate, cli):
    direct = docker_cli(engine.host, "run", "--rm", "--network", "none", "tiny", "echo", "hi",
                        cli=cli)
    via = docker_cli(gate.host, "run", "--rm", "--network", "none", "tiny", "echo", "hi",
                     cli=cli)
    assert direct.returncode == 0, direct.stderr
    assert via.returncode == 0, via.stderr
    assert via.stdout == direct.stdout == b"hi\n"


def test_run_exit_code_and_stderr(engine, gate, cli):
    args = ("run", "--rm", "--network", "none", "tiny", "sh", "-c", "echo out; echo err >&2; exit 7")
    direct = docker_cli(engine.host, *args, cli=cli)
    via = docker_cli(gate.host, *args, cli=cli)
    assert direct.returncode == 7
    assert via.returncode == 7, via.stderr
    assert via.stdout == direct.stdout == b"out\n"
    assert b"err" in via.stderr


def test_run_stdin_pipe(engine, gate, cli):
    """docker run -i --rm tiny cat: stdin through the attach hijack, half-close."""
    data = b"hello through the gate\n" * 1000
    direct = docker_cli(engine.host, "run", "-i", "--rm", "--network", "none", "tiny", "cat",
                        input=data, cli=cli, timeout=60)
    via = docker_cli(gate.host, "run", "-i", "--rm", "--network", "none", "tiny", "cat",
                     input=data, cli=cli, timeout=60)
    assert direct.returncode == 0 and direct.stdout == data
    assert via.returncode == 0, via.stderr
    assert via.stdout == data


# ---------------------------------------------------------------- logs -f

def test_run_detached_logs_follow_stop(engine, gate, cleanup, cli):
    cid = gate.ok("run", "-d", "--network", "none", "tiny", "sh", "-c",
                  "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.3; done", cli=cli)
    cleanup.containers.append(cid)
    p = subprocess.Popen([cli, "logs", "-f", cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=_cli_env(gate.host))
    try:
        t0 = time.time()
        first = p.stdout.readline()
        second = p.stdout.readline()
        assert first == b"line0\n", (first, p.stderr.read() if p.poll() is not None else "")
        assert second == b"line1\n"
        assert time.time() - t0 < 10
        # the container is still running while lines arrive
        st = engine.ok("inspect", "-f", "{{.State.Running}}", cid)
        assert st == "true"
        assert p.poll() is None, "logs -f ended while the container runs"
        stop = docker_cli(gate.host, "stop", "-t", "1", cid, cli=cli, timeout=30)
        assert stop.returncode == 0, stop.stderr
        rest, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        assert rest.startswith(b"line2\n")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # the full log via the gate equals the direct one
    assert docker_cli(gate.host, "logs", cid).stdout == docker_cli(engine.host, "logs", cid).stdout


# ---------------------------------------------------------------- exec

def test_exec_stdin_halfclose(engine, gate, cleanup, cli):
    cid = run_sleeper(engine, cleanup)
    via = docker_cli(gate.host, "exec", "-i", cid, "cat", input=b"hi\n", cli=cli, timeout=30)
    assert via.returncode == 0, via.stderr
    assert via.stdout == b"hi\n"
    # larger input, both directions at once
    data = os.urandom(1 << 20)
    via = docker_cli(gate.host, "exec", "-i", cid, "cat", input=data, cli=cli, timeout=60)
    assert via.returncode == 0, via.stderr
    assert via.stdout == data
    # the count the process saw
    via = docker_cli(gate.host, "exec", "-i", cid, "wc", "-c", input=data, cli=cli, timeout=60)
    assert via.stdout.split()[0] == str(len(data)).encode()


def test_exec_exit_code(engine, gate, cleanup, cli):
    cid = run_sleeper(engine, cleanup)
    via = docker_cli(gate.host, "exec", cid, "sh", "-c", "echo a; exit 3", cli=cli)
    assert via.returncode == 3
    assert via.stdout == b"a\n"


def test_exec_tty(engine, gate, cleanup, cli):
    """docker exec -t under a pseudo-terminal (script -qc)."""
    cid = run_sleeper(engine, cleanup)
    results = {}
    for name, host in (("direct", engine.host), ("via", gate.host)):
        p = subprocess.run(["script", "-qec", "%s exec -t %s echo xyzzy" % (cli, cid),
                            "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=_cli_env(host), timeout=30)
        results[name] = p
        assert p.returncode == 0, (name, p.stdout, p.stderr)
        assert b"xyzzy" in p.stdout, (name, p.stdout)
    assert results["via"].stdout == results["direct"].stdout


def test_exec_tty_interactive(engine, gate, cleanup):
    """exec -it sh with input through a pty: tty mode, resize, typed commands."""
    cid = run_sleeper(engine, cleanup)
    p = subprocess.run(["script", "-qec", "%s exec -it %s sh" % (DOCKER, cid), "/dev/null"],
                       input=b"echo $((6*7))\nexit 5\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=_cli_env(gate.host), timeout=30)
    assert b"42" in p.stdout, p.stdout
    assert p.returncode == 5, (p.returncode, p.stdout, p.stderr)


# ---------------------------------------------------------------- attach

def test_attach(engine, gate, cleanup, cli):
    cid = engine.ok("run", "-d", "-i", "--network", "none", "tiny", "cat")
    cleanup.containers.append(cid)
    p = subprocess.Popen([cli, "attach", cid], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_cli_env(gate.host))
    try:
        time.sleep(1.0)  # let attach connect before the input is sent
        p.stdin.write(b"hello attach\n")
        p.stdin.flush()
        line = p.stdout.readline()
        assert line == b"hello attach\n", (line, p.poll())
        p.stdin.write(b"second\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"second\n"
        # ending the container ends the attach
        engine.ok("kill", cid)
        p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- cp

def test_cp_both_ways(engine, gate, cleanup, tmp_path, cli):
    cid = run_sleeper(engine, cleanup)
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(7).randbytes(5 * 1024 * 1024 + 123)
                    if hasattr(random.Random, "randbytes") else os.urandom(5 * 1024 * 1024 + 123))
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file\n")
    gate.ok("cp", str(big), "%s:/tmp/big.bin" % cid, cli=cli, timeout=60)
    gate.ok("cp", str(small), "%s:/tmp/small.txt" % cid, cli=cli)
    # contents inside the container
    assert engine.ok("exec", cid, "wc", "-c", "/tmp/big.bin").split()[0] == str(big.stat().st_size)
    back = tmp_path / "back"
    back.mkdir()
    gate.ok("cp", "%s:/tmp/big.bin" % cid, str(back / "big.bin"), cli=cli, timeout=60)
    gate.ok("cp", "%s:/tmp/small.txt" % cid, str(back / "small.txt"), cli=cli)
    assert (back / "big.bin").read_bytes() == big.read_bytes()
    assert (back / "small.txt").read_bytes() == b"small file\n"
    # the tar stream itself is byte-identical to the engine's
    via = docker_cli(gate.host, "cp", "%s:/tmp/big.bin" % cid, "-", cli=cli, timeout=60)
    direct = docker_cli(engine.host, "cp", "%s:/tmp/big.bin" % cid, "-", cli=cli, timeout=60)
    assert via.returncode == 0, via.stderr
    assert len(via.stdout) == len(direct.stdout)
    assert via.stdout == direct.stdout
    # a directory copied in from a tar on stdin
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for i in range(20):
            data = b"file %d\n" % i
            ti = tarfile.TarInfo("dir/f%d" % i)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    gate.ok("cp", "-", "%s:/tmp" % cid, input=buf.getvalue(), cli=cli)
    assert engine.ok("exec", cid, "cat", "/tmp/dir/f19") == "file 19"


# ---------------------------------------------------------------- events

def test_events_since_until(engine, gate, cleanup, cli):
    t0 = int(time.time()) - 1
    name = uniq("ev")
    engine.ok("run", "--name", name, "--network", "none", "tiny", "true")
    cleanup.containers.append(name)
    engine.ok("rm", name)
    cleanup.containers.remove(name)
    time.sleep(1.2)
    t1 = int(time.time())
    time.sleep(1.1)
    args = ("events", "--since", str(t0), "--until", str(t1), "--format", "{{json .}}")
    direct = docker_cli(engine.host, *args, cli=cli, timeout=30)
    via = docker_cli(gate.host, *args, cli=cli, timeout=30)
    assert direct.returncode == 0 and via.returncode == 0, via.stderr
    assert via.stdout == direct.stdout
    assert name.encode() in via.stdout
    kinds = [json.loads(l).get("status") for l in via.stdout.splitlines()
             if name.encode() in l]
    assert "create" in kinds and "destroy" in kinds, kinds


def test_events_stream_live(engine, gate, cleanup):
    """docker events without --until is endless: events arrive while it runs."""
    name = uniq("evlive")
    p = subprocess.Popen([DOCKER, "events", "--filter", "container=" + name, "--format",
                          "{{.Status}}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=_cli_env(gate.host))
    try:
        time.sleep(1.0)
        engine.ok("create", "--name", name, "--network", "none", "tiny", "true")
        cleanup.containers.append(name)
        line = p.stdout.readline()
        assert line == b"create\n", (line, p.poll())
        engine.ok("rm", name)
        assert p.stdout.readline() == b"destroy\n"
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


# ---------------------------------------------------------------- listings

def test_ps_inspect_images(engine, gate, cleanup, cli):
    cid = run_sleeper(engine, cleanup, "--label", "dge2e=1")
    for args in (("ps", "-a", "--no-trunc"),
                 ("ps", "-a", "--no-trunc", "--filter", "label=dge2e=1", "--format", "{{json .}}"),
                 ("inspect", cid),
                 ("container", "inspect", "--size", cid),
                 ("images", "--no-trunc", "--digests", "--format",
                  "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}} {{.Size}}"),
                 ("image", "inspect", "tiny:latest"),
                 ("top", cid),
                 ("diff", cid),
                 ("port", cid)):
        direct = docker_cli(engine.host, *args, cli=cli)
        via = docker_cli(gate.host, *args, cli=cli)
        assert via.returncode == direct.returncode, (args, via.stderr)
        if args[0] in ("ps", "top"):
            # "Up N seconds" and CPU TIME can tick between the two calls
            assert len(via.stdout.splitlines()) == len(direct.stdout.splitlines()), args
            assert (b"sleep 600" if args[0] == "top" else cid.encode()) in via.stdout
        elif args[0] == "images":
            # images created in the same second come in either order
            assert sorted(via.stdout.splitlines()) == sorted(direct.stdout.splitlines())
        else:
            assert via.stdout == direct.stdout, args


def test_version_info(engine, gate):
    v = json.loads(gate.ok("version", "--format", "{{json .Server}}"))
    d = json.loads(engine.ok("version", "--format", "{{json .Server}}"))
    assert v == d
    assert gate.ok("info", "--format", "{{.ID}}") == engine.ok("info", "--format", "{{.ID}}")


def test_volume_create_ls_rm(engine, gate, cleanup, cli):
    name = uniq("vol")
    cleanup.volumes.append(name)
    assert gate.ok("volume", "create", "--label", "dge2e=1", name, cli=cli) == name
    assert name in gate.ok("volume", "ls", "-q", cli=cli)
    assert docker_cli(gate.host, "volume", "ls", cli=cli).stdout == \
        docker_cli(engine.host, "volume", "ls", cli=cli).stdout
    assert docker_cli(gate.host, "volume", "inspect", name, cli=cli).stdout == \
        docker_cli(engine.host, "volume", "inspect", name, cli=cli).stdout
    # use it
    gate.ok("run", "--rm", "--network", "none", "-v", name + ":/data", "tiny", "sh", "-c",
            "echo persisted > /data/f", cli=cli)
    assert gate.ok("run", "--rm", "--network", "none", "-v", name + ":/data", "tiny", "cat",
                   "/data/f", cli=cli) == "persisted"
    gate.ok("volume", "rm", name, cli=cli)
    assert name not in engine.ok("volume", "ls", "-q")


def test_network_ls(engine, gate, cli):
    for args in (("network", "ls"), ("network", "ls", "--no-trunc", "--format", "{{json .}}"),
                 ("network", "inspect", "none")):
        direct = docker_cli(engine.host, *args, cli=cli)
        via = docker_cli(gate.host, *args, cli=cli)
        assert via.returncode == 0, via.stderr
        assert via.stdout == direct.stdout, args


# ---------------------------------------------------------------- registry

def test_pull_push_local_registry(engine, gate, cleanup):
    # pull what the session pushed to the trusted registry
    ref = "%s/library/tiny:latest" % engine.trusted
    cleanup.images.append(ref)
    p = docker_cli(gate.host, "pull", ref, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"Digest: sha256:" in p.stdout
    assert gate.ok("run", "--rm", "--network", "none", ref, "echo", "pulled") == "pulled"
    # push a new tag through the gate, remove it locally, pull it back
    tag = uniq("t")
    ref2 = "%s/e2e/pushed:%s" % (engine.trusted, tag)
    cleanup.images.append(ref2)
    gate.ok("tag", "tiny:latest", ref2)
    push = docker_cli(gate.host, "push", ref2, timeout=60)
    assert push.returncode == 0, push.stderr
    assert b"digest: sha256:" in push.stdout
    gate.ok("rmi", ref2)
    assert docker_cli(engine.host, "image", "inspect", ref2).returncode != 0
    pull = docker_cli(gate.host, "pull", ref2, timeout=60)
    assert pull.returncode == 0, pull.stderr
    d1 = engine.ok("image", "inspect", "-f", "{{.Id}}", ref2)
    assert d1 == engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny:latest")
    # an error from the registry comes through as the engine's own error
    missing = "%s/e2e/nothere:nope" % engine.trusted
    via = docker_cli(gate.host, "pull", missing, timeout=60)
    direct = docker_cli(engine.host, "pull", missing, timeout=60)
    assert via.returncode != 0 and direct.returncode != 0
    assert via.stderr == direct.stderr


# ---------------------------------------------------------------- build

def test_build_legacy(engine, gate, cleanup, tmp_path, cli):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM tiny\nRUN echo built > /built\n"
                                    "COPY hello.txt /hello.txt\nCOPY blob /blob\n")
    (ctx / "hello.txt").write_text("hello from context\n")
    (ctx / "blob").write_bytes(os.urandom(2 * 1024 * 1024))
    tag = "e2e-built:" + uniq("b")
    cleanup.images.append(tag)
    p = docker_cli(gate.host, "build", "-t", tag, str(ctx), cli=cli, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"Successfully tagged " + tag.encode() in p.stdout
    assert gate.ok("run", "--rm", "--network", "none", tag, "cat", "/built", "/hello.txt") == \
        "built\nhello from context"
    assert gate.ok("run", "--rm", "--network", "none", tag, "wc", "-c", "/blob").split()[0] == \
        str(2 * 1024 * 1024)
    # a failing RUN step reports the engine's error
    (ctx / "Dockerfile").write_text("FROM tiny\nRUN exit 9\n")
    p = docker_cli(gate.host, "build", "--force-rm", str(ctx), cli=cli, timeout=120)
    assert p.returncode != 0
    assert b"returned a non-zero code: 9" in p.stderr + p.stdout
