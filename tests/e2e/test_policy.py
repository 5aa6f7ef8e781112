"""Policy end to end, as an attacker would try it: each denial is seen by the
real docker CLI (or a raw client) as a dockgate refusal, and, asked straight
at the engine, nothing was created, started, changed or pulled. Injected
defaults are checked in `docker inspect` and inside the container;
run_as_non_root, trusted registries, SIGHUP reload and the shipped
policy/default.json are exercised against the real engine."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (REPO, _cli_env, DOCKER, RawConn, docker_cli, http_req, is_standin,
                      parse_responses, uniq)
from policy_util import (api, assert_unchanged, check_cli_denial, check_refusal,
                         exec_creates, image_present, inspect_container, raw_one, snapshot)

pytestmark = pytest.mark.skipif(
    is_standin() and not os.environ.get("DG_STANDIN_ALL"),
    reason="policy decisions are dockgate's; the socat stand-in forwards everything")

DEFAULT_POLICY = os.path.join(REPO, "policy", "default.json")


def strict_policy(engine, **extra):
    """Safe values everywhere; official images and the trusted local registry;
    no published ports at all."""
    prof = {"trusted_registries": ["docker.io/library", engine.trusted],
            "local_images": ["local/"],
            "published_ports": "none"}
    prof.update(extra)
    return {"version": 1, "default_profile": "p", "profiles": {"p": prof}}


@pytest.fixture
def strict(engine, dockgate):
    return dockgate(strict_policy(engine))


@pytest.fixture
def sleeper(engine, cleanup):
    """A running root container made straight at the engine."""
    name = uniq("pol-sleep")
    cid = engine.ok("run", "-d", "--network", "none", "--name", name, "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    return cid


def denied_cli(engine, gate, args, rule, input=None, timeout=60):
    """Run the CLI through dockgate; it must print a dockgate refusal with
    `rule`, and the engine must be exactly as before."""
    before = snapshot(engine)
    p = gate.cli(*args, input=input, timeout=timeout)
    reason, _ = check_cli_denial(p, rule)
    assert_unchanged(before, snapshot(engine), " ".join(str(a) for a in args))
    return reason


# =========================================================================
# 1. the docker CLI, refused, nothing created
# =========================================================================

RUN_DENIALS = [
    ("privileged", ["--privileged"], "privileged"),
    ("cap-add-sys-admin", ["--cap-add", "SYS_ADMIN"], "capabilities"),
    ("cap-add-all", ["--cap-add", "ALL"], "capabilities"),
    ("cap-add-lower-prefixed", ["--cap-add", "cap_sys_ptrace"], "capabilities"),
    ("pid-host", ["--pid", "host"], "host_namespaces"),
    ("ipc-host", ["--ipc", "host"], "host_namespaces"),
    ("uts-host", ["--uts", "host"], "host_namespaces"),
    ("userns-host", ["--userns", "host"], "host_namespaces"),
    ("bind-root", ["-v", "/:/host"], "host_paths"),
    ("bind-etc", ["-v", "/etc:/x:ro"], "host_paths"),
    ("bind-docker-sock", ["-v", "/var/run/docker.sock:/x"], "host_paths"),
    ("bind-dotdot", ["-v", "/tmp/../etc:/x"], "host_paths"),
    ("mount-bind-etc", ["--mount", "type=bind,src=/etc,dst=/x"], "host_paths"),
    ("mount-volume-inline-bind", ["--mount", "type=volume,src=polinline,dst=/x,"
                                  "volume-opt=type=none,volume-opt=o=bind,"
                                  "volume-opt=device=/etc"], "host_paths"),
    ("device-sda", ["--device", "/dev/sda"], "devices"),
    ("device-null", ["--device", "/dev/null"], "devices"),
    ("device-cgroup-rule", ["--device-cgroup-rule", "a *:* rwm"], "devices"),
    ("seccomp-unconfined", ["--security-opt", "seccomp=unconfined"], "unconfined"),
    ("apparmor-unconfined", ["--security-opt", "apparmor=unconfined"], "unconfined"),
    ("label-disable", ["--security-opt", "label=disable"], "unconfined"),
    ("systempaths-unconfined", ["--security-opt", "systempaths=unconfined"], "unconfined"),
    ("nnp-false", ["--security-opt", "no-new-privileges=false"], "unconfined"),
    ("nnp-colon-0", ["--security-opt", "no-new-privileges:0"], "unconfined"),
    ("sysctl-shmmax", ["--sysctl", "kernel.shmmax=1"], "sysctls"),
    ("sysctl-msgmax", ["--sysctl", "kernel.msgmax=65536"], "sysctls"),
    ("sysctl-ip-forward", ["--sysctl", "net.ipv4.ip_forward=1"], "sysctls"),
    ("cgroup-parent", ["--cgroup-parent", "/"], "cgroup_parent"),
    ("runtime", ["--runtime", "io.containerd.runc.v2"], "runtimes"),
    ("publish-any-ip", ["-p", "0.0.0.0:8080:80"], "published_ports"),
    ("publish-loopback-under-none", ["-p", "127.0.0.1:8080:80"], "published_ports"),
    ("publish-all", ["-P"], "published_ports"),
    ("memory-100g", ["-m", "100g"], "memory"),
    ("pids-100000", ["--pids-limit", "100000"], "pids"),
]


CLIS = [c for c in dict.fromkeys([DOCKER, "/usr/bin/docker"]) if os.access(c, os.X_OK)]


@pytest.mark.parametrize("cli", CLIS, ids=[c.replace("/", "_").strip("_") for c in CLIS])
@pytest.mark.parametrize("args,rule", [d[1:] for d in RUN_DENIALS],
                         ids=[d[0] for d in RUN_DENIALS])
def test_cli_run_denied(engine, strict, args, rule, cli):
    existed = os.path.lexists("/var/run/docker.sock")
    before = snapshot(engine)
    p = docker_cli(strict.host, *(["run", "--rm", "--network", "none"] + args + ["tiny", "true"]),
                   cli=cli)
    check_cli_denial(p, rule)
    assert_unchanged(before, snapshot(engine))
    # a Binds source that does not exist would have been made a directory by the engine
    assert os.path.lexists("/var/run/docker.sock") == existed


def test_cli_run_network_host_denied(engine, strict):
    denied_cli(engine, strict, ["run", "--rm", "--network", "host", "tiny", "true"],
               "host_namespaces")


def test_cli_run_network_container_denied(engine, strict, sleeper):
    denied_cli(engine, strict, ["run", "--rm", "--network", "container:" + sleeper, "tiny",
                                "true"], "host_namespaces")
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", "--pid",
                                "container:" + sleeper, "tiny", "true"], "host_namespaces")


def test_cli_run_pids_unlimited_gets_default(engine, strict, cleanup):
    """--pids-limit -1 (unlimited) on create is replaced by the default."""
    name = uniq("pol-pids")
    cleanup.containers.append(name)
    strict.ok("create", "--name", name, "--network", "none", "--pids-limit", "-1", "tiny", "true")
    assert inspect_container(engine, name)["HostConfig"]["PidsLimit"] == 1024


@pytest.fixture
def hostdir(engine):
    """A directory next to the engine's socket, with an ordinary subdirectory
    and symlinks to /etc and to the engine socket."""
    import shutil
    d = tempfile.mkdtemp(prefix="pol-hp.", dir=os.path.dirname(engine.sock))
    os.mkdir(os.path.join(d, "ok"))
    os.symlink("/etc", os.path.join(d, "etc-link"))
    os.symlink(engine.sock, os.path.join(d, "sock-link"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_cli_host_paths_symlinks_and_propagation(engine, dockgate, hostdir):
    """host_paths allows the engine's directory: an ordinary directory there
    is bindable; a symlink out of it (to /etc), rshared propagation and the
    directory holding the socket are not."""
    gate = dockgate(strict_policy(engine, host_paths=[os.path.dirname(engine.sock)]))
    d = hostdir
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              d + "/etc-link:/x", "tiny", "true"], "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "--mount",
                              "type=bind,src=%s/etc-link,dst=/x" % d, "tiny", "true"], "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "--mount",
                              "type=bind,src=%s/ok,dst=/x,bind-propagation=rshared" % d,
                              "tiny", "true"], "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              d + "/ok:/x:shared", "tiny", "true"], "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v", d + "/../..:/x",
                              "tiny", "true"], "host_paths")
    # not there yet, below a symlink out: the engine would mkdir it in /etc
    target = "/etc/pol-e2e-%d" % os.getpid()
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              d + "/etc-link/pol-e2e-%d:/x" % os.getpid(), "tiny", "true"],
               "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              d + "/ok/../etc-link:/x", "tiny", "true"], "host_paths")
    assert not os.path.lexists(target)
    out = gate.ok("run", "--rm", "--network", "none", "-v", d + "/ok:/x", "tiny",
                  "sh", "-c", "echo in > /x/f && cat /x/f")
    assert out == "in"
    with open(os.path.join(d, "ok", "f")) as f:
        assert f.read() == "in\n"


def test_cli_upstream_engine_socket_never_bindable(engine, dockgate, hostdir):
    """CONTRACT: 'The engine socket is never allowed' -- the engine socket is
    the one dockgate forwards to, wherever it lives."""
    gate = dockgate(strict_policy(engine, host_paths=[os.path.dirname(engine.sock)]))
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "--mount",
                              "type=bind,src=%s/sock-link,dst=/x" % hostdir, "tiny", "true"],
               "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              os.path.dirname(engine.sock) + ":/x", "tiny", "true"], "host_paths")
    denied_cli(engine, gate, ["run", "--rm", "--network", "none", "-v",
                              engine.sock + ":/x", "tiny", "true"], "host_paths")


def test_cli_volume_bind_options(engine, strict, cleanup):
    """A local volume with bind options: refused at create; one made straight
    at the engine is refused when mounted (dockgate looks it up)."""
    name = uniq("pol-bindvol")
    denied_cli(engine, strict, ["volume", "create", "--driver", "local", "--opt", "type=none",
                                "--opt", "o=bind", "--opt", "device=/etc", name], "host_paths")
    denied_cli(engine, strict, ["volume", "create", "--opt", "o=bind", "--opt",
                                "device=/etc", name], "host_paths")
    denied_cli(engine, strict, ["volume", "create", "--driver", "evilplugin", name],
               None)
    engine.ok("volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
              "--opt", "device=/etc", name)
    cleanup.volumes.append(name)
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", "-v", name + ":/x", "tiny",
                                "true"], "host_paths")
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", "--mount",
                                "type=volume,src=%s,dst=/x" % name, "tiny", "true"], "host_paths")
    for opt in ("ro", "nocopy"):
        denied_cli(engine, strict, ["run", "--rm", "--network", "none", "-v",
                                    "%s:/x:%s" % (name, opt), "tiny", "true"], "host_paths")
    # through another container's mounts
    src = uniq("pol-vsrc")
    engine.ok("create", "--name", src, "--network", "none", "-v", name + ":/hostetc", "tiny",
              "true")
    cleanup.containers.insert(0, src)
    for vf in (src, src + ":ro"):
        denied_cli(engine, strict, ["run", "--rm", "--network", "none", "--volumes-from", vf,
                                    "tiny", "true"], "host_paths")
    # a plain named volume, new or existing, is fine
    plain = uniq("pol-plainvol")
    cleanup.volumes.append(plain)
    assert strict.ok("run", "--rm", "--network", "none", "-v", plain + ":/x", "tiny",
                     "sh", "-c", "echo ok > /x/f && cat /x/f") == "ok"


def test_cli_volumes_from_bind_container_denied(engine, strict, cleanup):
    name = uniq("pol-vfrom")
    engine.ok("create", "--name", name, "--network", "none", "-v", "/etc:/hostetc", "tiny", "true")
    cleanup.containers.append(name)
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", "--volumes-from", name,
                                "tiny", "true"], "host_paths")


def test_cli_network_create_macvlan_denied(engine, strict):
    name = uniq("pol-net")
    denied_cli(engine, strict, ["network", "create", "-d", "macvlan", name], "network_drivers")
    denied_cli(engine, strict, ["network", "create", "-d", "ipvlan", "-o", "parent=lo", name],
               "network_drivers")


def test_cli_exec_privileged_denied(engine, strict, sleeper):
    t0 = time.time()
    denied_cli(engine, strict, ["exec", "--privileged", sleeper, "id"], "privileged")
    assert exec_creates(engine, sleeper, t0) == 0
    # an ordinary exec goes through (and the event check sees it)
    assert strict.ok("exec", sleeper, "echo", "fine") == "fine"
    assert exec_creates(engine, sleeper, t0) == 1


def test_cli_update_denied(engine, strict, sleeper):
    before = inspect_container(engine, sleeper)["HostConfig"]
    denied_cli(engine, strict, ["update", "-m", "100g", "--memory-swap", "-1", sleeper],
               "memory")
    denied_cli(engine, strict, ["update", "--pids-limit", "-1", sleeper], "pids")
    denied_cli(engine, strict, ["update", "--pids-limit", "100000", sleeper], "pids")
    after = inspect_container(engine, sleeper)["HostConfig"]
    for k in ("Memory", "MemorySwap", "PidsLimit"):
        assert after[k] == before[k], k
    # within the max is fine (update injects nothing)
    strict.ok("update", "-m", "512m", "--memory-swap", "-1", sleeper)
    assert inspect_container(engine, sleeper)["HostConfig"]["Memory"] == 512 * 2**20


def test_cli_pull_and_run_untrusted_denied(engine, strict, cleanup):
    ref = "%s/evil/tiny:latest" % engine.untrusted
    denied_cli(engine, strict, ["pull", ref], "trusted_registries")
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", ref, "true"],
               "trusted_registries")
    assert not image_present(engine, ref)
    # present locally (tagged straight at the engine) is not trusted either
    engine.ok("tag", "tiny:latest", ref)
    cleanup.images.append(ref)
    denied_cli(engine, strict, ["run", "--rm", "--network", "none", ref, "true"],
               "trusted_registries")
    denied_cli(engine, strict, ["create", "--network", "none", "docker.io/evil/tiny", "true"],
               "trusted_registries")


def test_cli_load_import_build_denied(engine, strict, tmp_path):
    name = "pol-loadme:%d" % os.getpid()
    engine.ok("tag", "tiny:latest", name)
    tar = engine.cli("save", name, timeout=60).stdout
    engine.ok("rmi", name)
    assert len(tar) > 100000
    denied_cli(engine, strict, ["load"], "image_load", input=tar)
    assert not image_present(engine, name)
    denied_cli(engine, strict, ["import", "-", "local/imported:1"], "image_import", input=tar)
    assert not image_present(engine, "local/imported:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM tiny\nRUN echo built > /built\n")
    denied_cli(engine, strict, ["build", "-t", "local/built:1", str(ctx)], "build")
    assert not image_present(engine, "local/built:1")


# =========================================================================
# 2. raw JSON and HTTP that no CLI sends
# =========================================================================

CREATE = "/v1.41/containers/create"
PRIV = json.dumps({"Image": "tiny", "Cmd": ["true"], "HostConfig": {"Privileged": True}})

RAW_CREATE = [
    # (id, body (dict or raw str), status, rule)
    ("hc-privileged-lower", {"Image": "tiny", "HostConfig": {"privileged": True}}, 403, "privileged"),
    ("hc-privileged-upper", {"Image": "tiny", "HostConfig": {"PRIVILEGED": True}}, 403, "privileged"),
    ("hostconfig-long-s", {"Image": "tiny", "Ho\u017ftConfig": {"Privileged": True}}, 403, "privileged"),
    ("hostconfig-lower", {"Image": "tiny", "hostconfig": {"Privileged": True}}, 403, "privileged"),
    ("binds-long-s", {"Image": "tiny", "HostConfig": {"Bind\u017f": ["/etc:/x"]}}, 403, "host_paths"),
    ("securityopt-long-s", {"Image": "tiny", "HostConfig": {"\u017fecurityOpt": ["seccomp=unconfined"]}}, 403, "unconfined"),
    ("maskedpaths-kelvin", {"Image": "tiny", "HostConfig": {"Mas\u212aedPaths": []}}, 403, "unconfined"),
    ("sysctls-long-s", {"Image": "tiny", "HostConfig": {"Sy\u017fctls": {"net.ipv4.ip_forward": "1"}}}, 403, "sysctls"),
    ("devices-long-s", {"Image": "tiny", "HostConfig": {"Device\u017f": [
        {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]}}, 403, "devices"),
    ("mounts-long-s", {"Image": "tiny", "HostConfig": {"Mount\u017f": [
        {"Type": "bind", "Source": "/etc", "Target": "/x"}]}}, 403, "host_paths"),
    ("publishall-long-s", {"Image": "tiny", "HostConfig": {"PublishAllPort\u017f": True}}, 403, "published_ports"),
    ("usernsmode-long-s", {"Image": "tiny", "HostConfig": {"Usern\u017fMode": "host"}}, 403, "host_namespaces"),
    ("top-binds-long-s", {"Image": "tiny", "Bind\u017f": ["/etc:/x"]}, 403, "host_paths"),
    ("dup-kelvin-networkmode", '{"Image":"tiny","HostConfig":{"NetworkMode":"none","Networ\u212aMode":"host"}}', 400, None),
    ("networkmode-kelvin", {"Image": "tiny", "HostConfig": {"Networ\u212aMode": "host"}}, 403, "host_namespaces"),
    ("pidmode-lower", {"Image": "tiny", "HostConfig": {"pidmode": "host"}}, 403, "host_namespaces"),
    ("usernsmode-upper", {"Image": "tiny", "HostConfig": {"USERNSMODE": "host"}}, 403, "host_namespaces"),
    ("capadd-string-lower", {"Image": "tiny", "HostConfig": {"capadd": "sys_admin"}}, 403, "capabilities"),
    ("capadd-cap-prefix", {"Image": "tiny", "HostConfig": {"CapAdd": ["cap_sys_module"]}}, 403, "capabilities"),
    ("capadd-all-lower", {"Image": "tiny", "HostConfig": {"CapAdd": ["all"]}}, 403, "capabilities"),
    ("devices-lower", {"Image": "tiny", "HostConfig": {"devices": [
        {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]}}, 403, "devices"),
    ("device-requests", {"Image": "tiny", "HostConfig": {"DeviceRequests": [
        {"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]}}, 403, "devices"),
    ("masked-paths-emptied", {"Image": "tiny", "HostConfig": {"MaskedPaths": []}}, 403, "unconfined"),
    ("readonly-paths-emptied", {"Image": "tiny", "HostConfig": {"ReadonlyPaths": []}}, 403, "unconfined"),
    ("nnp-eq-0", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["no-new-privileges=0"]}}, 403, "unconfined"),
    ("nnp-colon-F", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["no-new-privileges:F"]}}, 403, "unconfined"),
    ("seccomp-custom", {"Image": "tiny", "HostConfig": {"SecurityOpt": ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']}}, 403, "unconfined"),
    ("label-override", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["label=type:spc_t"]}}, 403, "unconfined"),
    ("secopt-bare-disable", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["disable"]}}, 403, "unconfined"),
    ("secopt-label-colon-disable", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["label:disable"]}}, 403, "unconfined"),
    ("secopt-seccomp-colon", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["seccomp:unconfined"]}}, 403, "unconfined"),
    ("secopt-apparmor-colon", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["apparmor:unconfined"]}}, 403, "unconfined"),
    ("secopt-nnp-true-then-false", {"Image": "tiny", "HostConfig": {"SecurityOpt": [
        "no-new-privileges:true", "no-new-privileges:false"]}}, 403, "unconfined"),
    ("secopt-label-level", {"Image": "tiny", "HostConfig": {"SecurityOpt": ["label=level:s0:c1"]}}, 403, "unconfined"),
    ("sysctl-unsafe", {"Image": "tiny", "HostConfig": {"Sysctls": {"kernel.core_pattern": "|/x"}}}, 403, "sysctls"),
    ("mounts-lower-bind", {"Image": "tiny", "HostConfig": {"mounts": [
        {"type": "bind", "source": "/etc", "target": "/x"}]}}, 403, "host_paths"),
    ("mounts-inline-local-bind", {"Image": "tiny", "HostConfig": {"Mounts": [
        {"Type": "volume", "Source": "polrawinline", "Target": "/x", "VolumeOptions": {
            "DriverConfig": {"Name": "", "Options": {"type": "none", "o": "bind", "device": "/"}}}}]}},
     403, "host_paths"),
    ("volume-driver", {"Image": "tiny", "HostConfig": {"Binds": ["polv:/x"], "VolumeDriver": "evilplugin"}}, 403, None),
    ("unknown-hostconfig-field", {"Image": "tiny", "HostConfig": {"Evil": True}}, 403, "unknown_field"),
    ("networkingconfig-host", {"Image": "tiny", "HostConfig": {"NetworkMode": "none"},
                               "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}, 403, "host_namespaces"),
    ("image-lower-untrusted", {"image": "evil/tiny"}, 403, "trusted_registries"),
    ("image-upper-untrusted", {"IMAGE": "quay.io/evil/tiny:1"}, 403, "trusted_registries"),
    ("binds-trailing-slash", {"Image": "tiny", "HostConfig": {"Binds": ["/etc/:/x"]}}, 403, "host_paths"),
    ("binds-double-slash", {"Image": "tiny", "HostConfig": {"Binds": ["//etc:/x"]}}, 403, "host_paths"),
    ("binds-dot", {"Image": "tiny", "HostConfig": {"Binds": ["/./etc:/x:ro,z"]}}, 403, "host_paths"),
    ("binds-dotdot", {"Image": "tiny", "HostConfig": {"Binds": ["/nonexistent/../etc:/x"]}}, 403, "host_paths"),
    ("binds-proc", {"Image": "tiny", "HostConfig": {"Binds": ["/proc/1/root:/x"]}}, 403, "host_paths"),
    ("mounts-anonymous-volume-bind-opts", {"Image": "tiny", "HostConfig": {"Mounts": [
        {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
            "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}}, 403, "host_paths"),
    ("mounts-volume-opts-lower-keys", {"Image": "tiny", "HostConfig": {"Mounts": [
        {"Type": "volume", "Target": "/x", "volumeoptions": {"driverconfig": {
            "name": "local", "options": {"o": "bind", "device": "/etc"}}}}]}}, 403, "host_paths"),
    ("mount-type-upper", {"Image": "tiny", "HostConfig": {"Mounts": [
        {"Type": "BIND", "Source": "/etc", "Target": "/x"}]}}, 403, None),
    ("mount-bind-kelvin-fields", {"Image": "tiny", "HostConfig": {"Mounts": [
        {"type": "bind", "\u017fource": "/etc", "Target": "/x"}]}}, 403, "host_paths"),
    ("ipcmode-container", {"Image": "tiny", "HostConfig": {"IpcMode": "container:x"}}, 403, "host_namespaces"),
    ("utsmode-lower", {"Image": "tiny", "HostConfig": {"utsmode": "host"}}, 403, "host_namespaces"),
    ("cgroupnsmode-host-upper", {"Image": "tiny", "HostConfig": {"CgroupnsMode": "HOST"}}, 403,
     "host_namespaces"),
    ("runtime-lower", {"Image": "tiny", "HostConfig": {"runtime": "evil"}}, 403, "runtimes"),
    ("publishall-lower", {"Image": "tiny", "HostConfig": {"publishallports": True}}, 403, "published_ports"),
    ("portbindings-lower", {"Image": "tiny", "HostConfig": {"portbindings": {
        "80/tcp": [{"hostip": "127.0.0.1", "hostport": "18080"}]}}}, 403, "published_ports"),
    ("escaped-key", '{"Image":"tiny","HostConfig":{"Privil\\u0065ged":true}}', 403, "privileged"),
    ("memory-negative", {"Image": "tiny", "HostConfig": {"Memory": -1}}, 403, "memory"),
    ("memory-int64-max", {"Image": "tiny", "HostConfig": {"Memory": 2**63 - 1}}, 403, "memory"),
    ("pidslimit-huge", {"Image": "tiny", "HostConfig": {"PidsLimit": 100000}}, 403, "pids"),
    ("memory-huge-lower", {"Image": "tiny", "HostConfig": {"memory": 100 * 2**30}}, 403, "memory"),
    # the wrapper: deprecated host-config fields at the top level
    ("top-privileged", {"Image": "tiny", "Privileged": True}, 403, "privileged"),
    ("top-privileged-lower", {"Image": "tiny", "privileged": True}, 403, "privileged"),
    ("top-binds", {"Image": "tiny", "Binds": ["/etc:/x"]}, 403, "host_paths"),
    ("top-pidmode", {"Image": "tiny", "PidMode": "host"}, 403, "host_namespaces"),
    ("top-capadd", {"Image": "tiny", "CapAdd": ["SYS_ADMIN"]}, 403, "capabilities"),
    ("null-hostconfig-top-privileged", {"Image": "tiny", "HostConfig": None, "Privileged": True}, 403, "privileged"),
    ("null-hostconfig-top-binds", {"Image": "tiny", "HostConfig": None, "Binds": ["/:/h"]}, 403, "host_paths"),
    ("hostconfig-plus-top-memory", {"Image": "tiny", "HostConfig": {"NetworkMode": "none"},
                                    "Memory": 100 * 2**30}, 403, "memory"),
    ("hostconfig-plus-top-memory-lower", {"Image": "tiny", "HostConfig": {},
                                          "memory": 100 * 2**30}, 403, "memory"),
    ("hostconfig-plus-top-volumedriver", {"Image": "tiny", "HostConfig": {"Binds": ["polv:/x"]},
                                          "VolumeDriver": "evilplugin"}, 403, None),
    ("hostconfig-plus-top-volumedriver-lower", {"Image": "tiny", "HostConfig": {"Binds": ["polv:/x"]},
                                                "volumedriver": "evilplugin"}, 403, None),
    ("top-cgroupparent-lower", {"Image": "tiny", "cgroupparent": "/"}, 403, "cgroup_parent"),
    # ambiguity and malformed JSON: 400
    ("dup-key-exact", '{"Image":"tiny","HostConfig":{"Privileged":false,"Privileged":true}}', 400, None),
    ("dup-key-two-spellings", '{"Image":"tiny","HostConfig":{"Privileged":false,"privileged":true}}', 400, None),
    ("dup-key-long-s", '{"Image":"tiny","HostConfig":{"SecurityOpt":[],"\u017fecurityopt":["seccomp=unconfined"]}}', 400, None),
    ("dup-hostconfig-spellings", '{"Image":"tiny","HostConfig":{},"hostconfig":{"Privileged":true}}', 400, None),
    ("dup-image-spellings", '{"Image":"tiny","image":"docker.io/evil/tiny"}', 400, None),
    ("top-and-inner-privileged-null-hc", '{"Image":"tiny","HostConfig":null,"Privileged":false,"privileged":true}', 400, None),
    ("trailing-json", '{"Image":"tiny"}{"HostConfig":{"Privileged":true}}', 400, None),
    ("lone-surrogate-key", '{"Image":"tiny","HostConfig":{"Privileged\\udc00":true}}', 400, None),
    ("bool-as-string", '{"Image":"tiny","HostConfig":{"Privileged":"true"}}', 400, None),
    ("escaped-key-dup", '{"Image":"tiny","HostConfig":{"Privileged":false,"Privil\\u0065ged":true}}', 400, None),
    ("nul-escape-in-bind", '{"Image":"tiny","HostConfig":{"Binds":["/tmp\\u0000/../etc:/x"]}}', 400, None),
    ("nul-raw-in-bind", '{"Image":"tiny","HostConfig":{"Binds":["/tmp\x00/../etc:/x"]}}', 400, None),
    ("nul-escape-in-user", '{"Image":"tiny","User":"1000\\u0000:0"}', 400, None),
    ("memory-overflow", '{"Image":"tiny","HostConfig":{"Memory":18446744073709551616}}', 400, None),
    ("memory-as-float", '{"Image":"tiny","HostConfig":{"Memory":1e11}}', 400, None),
    ("memory-as-string", '{"Image":"tiny","HostConfig":{"Memory":"100g"}}', 400, None),
    ("not-json", '{"Image":"tiny",', 400, None),
]


@pytest.mark.parametrize("body,status,rule", [c[1:] for c in RAW_CREATE],
                         ids=[c[0] for c in RAW_CREATE])
def test_raw_create_denied(engine, strict, body, status, rule):
    before = snapshot(engine)
    data = body if isinstance(body, str) else json.dumps(body)
    r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                data.encode())
    check_refusal(r, status, rule)
    assert_unchanged(before, snapshot(engine))


def test_cgroupns_host_follows_engine_default(engine, strict, cleanup):
    """CgroupnsMode "host" is refused unless it is the engine's own default
    (cgroup v1, where an empty mode gets host and inspect shows "host", so
    tools that recreate containers from inspect send it back)."""
    v1 = json.loads(engine.ok("info", "--format", "{{json .CgroupVersion}}")) == "1"
    plain = engine.ok("create", "--network", "none", "tiny", "true").strip()
    cleanup.containers.append(plain)
    default_mode = inspect_container(engine, plain)["HostConfig"]["CgroupnsMode"]
    body = {"Image": "tiny", "HostConfig": {"CgroupnsMode": "host", "NetworkMode": "none"}}
    r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                json.dumps(body).encode())
    p = docker_cli(strict.host, "create", "--network", "none", "--cgroupns", "host", "tiny", "true")
    if v1:
        assert default_mode == "host"
        assert r is not None and r.status == 201, r
        cleanup.containers.append(r.json()["Id"])
        assert p.returncode == 0, p.stderr
        cli_id = p.stdout.decode().strip()
        cleanup.containers.append(cli_id)
        for cid in (r.json()["Id"], cli_id):
            assert inspect_container(engine, cid)["HostConfig"]["CgroupnsMode"] == default_mode
    else:
        check_refusal(r, 403, "host_namespaces")
        check_cli_denial(p, "host_namespaces")


def test_raw_create_control_allowed(engine, strict, cleanup):
    """The same shapes with harmless values are created: the refusals above are
    about the values, not the spelling."""
    for body in ({"Image": "tiny", "HostConfig": {"privileged": False, "NetworkMode": "none"}},
                 {"Image": "tiny", "Ho\u017ftConfig": {"NetworkMode": "none"}},
                 {"Image": "tiny", "NetworkMode": "none", "HostConfig": None}):
        r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                    json.dumps(body).encode())
        assert r is not None and r.status == 201, (body, r)
        cid = r.json()["Id"]
        cleanup.containers.append(cid)
        hc = inspect_container(engine, cid)["HostConfig"]
        assert hc["Privileged"] is False and hc["NetworkMode"] == "none", hc


def test_raw_top_level_host_field_with_hostconfig_not_honoured(engine, strict, cleanup):
    """With HostConfig present, a top-level Privileged is ignored by the engine;
    dockgate may refuse it, but if it forwards, the container must not be
    privileged (the canonical body has no top-level host fields)."""
    body = {"Image": "tiny", "HostConfig": {"NetworkMode": "none"}, "Privileged": True,
            "PidMode": "host", "Binds": ["/:/host"]}
    r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                json.dumps(body).encode())
    if r is not None and r.status == 201:
        cid = r.json()["Id"]
        cleanup.containers.append(cid)
        hc = inspect_container(engine, cid)["HostConfig"]
        assert not hc["Privileged"] and hc["PidMode"] != "host" and not hc["Binds"], hc
    else:
        check_refusal(r, r.status if r is not None and r.status in (400, 403) else 403)


RAW_PATHS = [
    # (id, path, status, rule)
    ("percent-slash", "/v1.41/containers%2Fcreate", 403, "privileged"),
    ("percent-letter", "/v1.41/%63ontainers/create", 403, "privileged"),
    ("percent-version", "/%761.41/containers/create", 403, "privileged"),
    ("versionless", "/containers/create", 403, "privileged"),
    ("old-version", "/v1.24/containers/create", 403, "privileged"),
    ("ancient-version", "/v1.12/containers/create", 403, "privileged"),
    ("with-query", "/v1.41/containers/create?name=polpriv", 403, "privileged"),
    ("upper-V", "/V1.41/containers/create", 403, None),
    ("double-slash", "/v1.41//containers/create", 400, None),
    ("dot-segment", "/v1.41/containers/./create", 400, None),
    ("dotdot-segment", "/v1.41/images/../containers/create", 400, None),
    ("encoded-dotdot", "/v1.41/images/%2e%2e/containers/create", 400, None),
    ("encoded-double-slash", "/v1.41/%2Fcontainers/create", 400, None),
    ("encoded-question-mark", "/v1.41/containers/create%3Fname=x", 403, "endpoints"),
]


@pytest.mark.parametrize("path,status,rule", [c[1:] for c in RAW_PATHS],
                         ids=[c[0] for c in RAW_PATHS])
def test_raw_path_variants(engine, strict, path, status, rule):
    before = snapshot(engine)
    r = raw_one(strict.sock, "POST", path, {"Content-Type": "application/json"}, PRIV.encode())
    check_refusal(r, status, rule)
    assert_unchanged(before, snapshot(engine))


def test_raw_path_trailing_slash_not_forwarded(engine, strict):
    before = snapshot(engine)
    for path in (CREATE + "/", CREATE + "%2F", CREATE + "%00", CREATE + "/."):
        r = raw_one(strict.sock, "POST", path, {"Content-Type": "application/json"},
                    PRIV.encode())
        assert r is not None and r.status in (400, 403), (path, r)
        check_refusal(r, r.status)
    assert_unchanged(before, snapshot(engine))


def test_raw_content_type_variants_still_inspected(engine, strict):
    """Whatever the Content-Type says, a create body is decided (the engine
    reads a body without Content-Type, and any application/json spelling)."""
    before = snapshot(engine)
    for ct in ("Application/JSON", "application/json; charset=latin1", "text/plain",
               "application/octet-stream", None):
        h = {"Content-Type": ct} if ct else {}
        r = raw_one(strict.sock, "POST", CREATE, h, PRIV.encode())
        assert r is not None and r.status in (400, 403), (ct, r)
        check_refusal(r, r.status)
    assert_unchanged(before, snapshot(engine))


ENDPOINT_DENIALS = [
    ("POST", "/v1.41/plugins/pull?remote=evil/plugin", b""),
    ("POST", "/v1.41/plugins/evil/enable", b""),
    ("POST", "/v1.41/swarm/init", b'{"ListenAddr":"127.0.0.1:2377"}'),
    ("POST", "/v1.41/services/create", b'{"Name":"x"}'),
    ("POST", "/v1.41/secrets/create", b'{"Name":"x","Data":""}'),
    ("POST", "/v1.41/session", b""),
    ("POST", "/v1.41/grpc", b""),
    ("POST", "/v1.41/build?version=2&t=local/x", b""),
    ("POST", "/v1.41/build?remote=http://127.0.0.1/x.tar&t=local/x", b""),
    ("POST", "/v1.41/containers/x/copy", b'{"Resource":"/etc"}'),
    ("GET", "/v1.41/nodes", b""),
]


def test_raw_endpoints_not_allowed(engine, strict):
    before = snapshot(engine)
    for method, path, body in ENDPOINT_DENIALS:
        r = raw_one(strict.sock, method, path, {"Content-Type": "application/json"}, body)
        assert r is not None and r.status == 403, (method, path, r)
        check_refusal(r, 403)
    assert_unchanged(before, snapshot(engine))
    assert api(engine.sock, "GET", "/swarm").status == 503   # still not a swarm manager


def test_raw_chunked_privileged_create(engine, strict):
    before = snapshot(engine)
    b = PRIV.encode()
    i = b.index(b"Privi") + 5
    r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                chunks=[b[:7], b[7:i], b[i:]])
    check_refusal(r, 403, "privileged")
    dup = b'{"Image":"tiny","HostConfig":{"Privileged":false,"privileged":true}}'
    r = raw_one(strict.sock, "POST", CREATE, {"Content-Type": "application/json"},
                chunks=[dup[:40], dup[40:50], dup[50:]])
    check_refusal(r, 400)
    assert_unchanged(before, snapshot(engine))


def test_raw_form_urlencoded_refused(engine, strict):
    before = snapshot(engine)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = raw_one(strict.sock, "POST", CREATE, form, b"HostConfig=x")
    check_refusal(r, 400)
    # the engine would read the form ahead of the query string
    q = "/v1.41/images/create?fromImage=%s/library/tiny&tag=latest" % engine.trusted
    r = raw_one(strict.sock, "POST", q, form,
                ("fromImage=%s/evil/tiny&tag=latest" % engine.untrusted).encode())
    check_refusal(r, 400)
    r = raw_one(strict.sock, "POST", "/v1.41/volumes/create", form,
                b"Name=x&Driver=local")
    check_refusal(r, 400)
    assert_unchanged(before, snapshot(engine))


def test_raw_duplicate_query_params(engine, strict):
    before = snapshot(engine)
    t = "%s/library/tiny" % engine.trusted
    u = "%s/evil/tiny" % engine.untrusted
    for q in ("fromImage=%s&fromImage=%s&tag=latest" % (t, u),
              "fromImage=%s&fromImage=%s&tag=latest" % (u, t),
              "fromImage=%s&from%%49mage=%s&tag=latest" % (t, u),
              "fromImage=%s&tag=latest&tag=latest" % t):
        r = raw_one(strict.sock, "POST", "/v1.41/images/create?" + q)
        check_refusal(r, 400)
    r = raw_one(strict.sock, "POST", "/v1.41/images/create?fromImage=%s%%00/../x&tag=latest" % t)
    check_refusal(r, 400)
    # a percent-encoded parameter name is still read
    r = raw_one(strict.sock, "POST", "/v1.41/images/create?from%%49mage=%s&tag=latest" % u)
    check_refusal(r, 403, "trusted_registries")
    r = raw_one(strict.sock, "POST", "/v1.41/images/create?fromImage=%s&tag=latest" %
                u.replace("/", "%2F").replace(":", "%3A"))
    check_refusal(r, 403, "trusted_registries")
    assert_unchanged(before, snapshot(engine))


def test_raw_start_body_refused(engine, strict, cleanup):
    name = uniq("pol-startbody")
    cid = engine.ok("create", "--name", name, "--network", "none", "tiny", "sleep", "600")
    cleanup.containers.append(cid)
    before = snapshot(engine)
    for body in ('{"Privileged":true}', '{"Binds":["/:/host"]}', '{"privileged":true}',
                 '{"NetworkMode":"none"}'):
        r = raw_one(strict.sock, "POST", "/v1.23/containers/%s/start" % cid,
                    {"Content-Type": "application/json"}, body.encode())
        check_refusal(r, 403, "start_body")
        r = raw_one(strict.sock, "POST", "/containers/%s/start" % cid,
                    {"Content-Type": "application/json"}, body.encode())
        check_refusal(r, 403, "start_body")
    assert_unchanged(before, snapshot(engine))
    st = inspect_container(engine, cid)["State"]
    assert not st["Running"] and not st["StartedAt"].startswith("20"), st
    # `{}` is what old clients send: allowed
    r = raw_one(strict.sock, "POST", "/v1.23/containers/%s/start" % cid,
                {"Content-Type": "application/json"}, b"{}")
    assert r is not None and r.status == 204, r
    hc = inspect_container(engine, cid)["HostConfig"]
    assert not hc["Privileged"] and not hc["Binds"], hc


def test_raw_exec_and_update(engine, strict, sleeper):
    before = snapshot(engine)
    t0 = time.time()
    hc0 = inspect_container(engine, sleeper)["HostConfig"]
    base = "/v1.41/containers/%s" % sleeper
    js = {"Content-Type": "application/json"}
    for body, status, rule in (
            ('{"Cmd":["id"],"privileged":true}', 403, "privileged"),
            ('{"Cmd":["id"],"PRIVILEGED":true}', 403, "privileged"),
            ('{"Cmd":["id"],"Privileged":false,"privileged":true}', 400, None),
            ('{"Cmd":["id"],"Privileged":false,"Privileged":true}', 400, None)):
        check_refusal(raw_one(strict.sock, "POST", base + "/exec", js, body.encode()),
                      status, rule)
    assert exec_creates(engine, sleeper, t0) == 0
    for body, status, rule in (
            ('{"memory":107374182400,"MemorySwap":-1}', 403, "memory"),
            ('{"MEMORY":107374182400,"MemorySwap":-1}', 403, "memory"),
            ('{"PidsLimit":0}', 403, "pids"),
            ('{"pidslimit":-1}', 403, "pids"),
            ('{"PidsLimit":-2}', 403, "pids"),
            ('{"Pid\u017fLimit":-1}', 403, "pids"),
            ('{"PidsLimit":-9223372036854775808}', 403, "pids"),
            ('{"Memory":1,"memory":107374182400}', 400, None),
            ('{"DeviceCgroupRules":["a *:* rwm"]}', 403, "devices"),
            ('{"devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda",'
             '"CgroupPermissions":"rwm"}]}', 403, "devices"),
            ('{"CgroupParent":"/"}', 403, "cgroup_parent"),
            ('{"Privileged":true}', 403, "unknown_field"),
            ('{"Binds":["/:/h"]}', 403, "unknown_field")):
        check_refusal(raw_one(strict.sock, "POST", base + "/update", js, body.encode()),
                      status, rule)
    hc1 = inspect_container(engine, sleeper)["HostConfig"]
    for k in ("Memory", "PidsLimit", "MemorySwap"):
        assert hc0[k] == hc1[k], k
    assert_unchanged(before, snapshot(engine))


def test_raw_network_and_volume_create(engine, strict):
    before = snapshot(engine)
    js = {"Content-Type": "application/json"}
    n = uniq("pol-rawnet")
    for body, status, rule in (
            ({"Name": n, "driver": "macvlan"}, 403, "network_drivers"),
            ({"Name": n, "DRIVER": "ipvlan", "Options": {"parent": "lo"}}, 403, "network_drivers"),
            ({"Name": n, "Driver": "MACVLAN"}, 403, "network_drivers"),
            ('{"Name":"%s","Driver":"bridge","driver":"macvlan"}' % n, 400, None)):
        data = body if isinstance(body, str) else json.dumps(body)
        check_refusal(raw_one(strict.sock, "POST", "/v1.41/networks/create", js, data.encode()),
                      status, rule)
    v = uniq("pol-rawvol")
    for body, status, rule in (
            ({"Name": v, "DriverOpts": {"o": "bind", "device": "/etc"}}, 403, "host_paths"),
            ({"Name": v, "driver": "local", "driveropts": {"type": "none", "o": "ro,rbind",
                                                           "device": "/"}}, 403, "host_paths"),
            ({"Name": v, "Driver": "local", "DriverOpts": {"type": "none", "o": "bind",
                                                           "device": "/tmp/../etc"}}, 403, "host_paths"),
            ({"Name": v, "Driver": "evilplugin"}, 403, None),
            ({"Name": v, "DriverOpt\u017f": {"o": "bind", "device": "/etc"}}, 403, "host_paths"),
            ('{"Name":"%s","DriverOpts":{},"driveropts":{"o":"bind","device":"/"}}' % v, 400, None)):
        data = body if isinstance(body, str) else json.dumps(body)
        check_refusal(raw_one(strict.sock, "POST", "/v1.41/volumes/create", js, data.encode()),
                      status, rule)
    assert_unchanged(before, snapshot(engine))


# =========================================================================
# 3. injected defaults, seen by `docker inspect` and inside the container
# =========================================================================

def safe_policy(engine, **extra):
    prof = {"trusted_registries": ["docker.io/library"],
            "drop_all_capabilities": True,
            "capabilities": ["NET_BIND_SERVICE"],
            "read_only_rootfs": True,
            "published_ports": "loopback"}
    prof.update(extra)
    return {"version": 1, "default_profile": "safe", "profiles": {"safe": prof}}


def test_injected_defaults_in_inspect(engine, dockgate, cleanup):
    gate = dockgate(safe_policy(engine))
    name = uniq("pol-defaults")
    cleanup.containers.append(name)
    # publishing needs no working network to be recorded: create only
    gate.ok("create", "--name", name, "-p", "18080:80", "-p", "0.0.0.0:18081:81",
            "-p", "[::]:18082:82", "-p", "127.0.0.1:18083:83/udp",
            "--cap-add", "NET_BIND_SERVICE",
            "--security-opt", "no-new-privileges=true", "tiny", "true")
    hc = inspect_container(engine, name)["HostConfig"]
    assert hc["Memory"] == 2**30, hc["Memory"]
    assert hc["PidsLimit"] == 1024, hc["PidsLimit"]
    assert hc["SecurityOpt"] == ["no-new-privileges:true"], hc["SecurityOpt"]
    assert hc["CapDrop"] == ["ALL"], hc["CapDrop"]
    assert [c.upper().replace("CAP_", "") for c in hc["CapAdd"]] == ["NET_BIND_SERVICE"]
    assert hc["ReadonlyRootfs"] is True
    pb = hc["PortBindings"]
    assert set(pb) == {"80/tcp", "81/tcp", "82/tcp", "83/udp"}, pb
    for port, binds in pb.items():
        assert [b["HostIp"] for b in binds] == ["127.0.0.1"], (port, pb)
    assert pb["80/tcp"][0]["HostPort"] == "18080"
    assert not hc["PublishAllPorts"]
    # explicit values within the max are kept
    name2 = uniq("pol-defaults2")
    cleanup.containers.append(name2)
    gate.ok("create", "--name", name2, "--network", "none", "-m", "2g", "--pids-limit", "50",
            "tiny", "true")
    hc = inspect_container(engine, name2)["HostConfig"]
    assert hc["Memory"] == 2 * 2**30 and hc["PidsLimit"] == 50, hc


def test_injected_defaults_inside_container(engine, dockgate):
    gate = dockgate(safe_policy(engine))
    out = gate.ok("run", "--rm", "--network", "none", "--cap-add", "NET_BIND_SERVICE", "tiny",
                  "sh", "-c", "cat /proc/self/status; touch /probe && echo WROTE || echo RO")
    fields = dict(ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
    assert int(fields["CapEff"].strip(), 16) == 1 << 10, fields["CapEff"]   # NET_BIND_SERVICE only
    assert int(fields["CapBnd"].strip(), 16) == 1 << 10, fields["CapBnd"]
    assert fields["NoNewPrivs"].strip() == "1"
    assert out.splitlines()[-1] == "RO"


def test_published_ports_loopback_denials(engine, dockgate):
    gate = dockgate(safe_policy(engine))
    for args in (["-p", "10.1.2.3:18090:80"], ["-p", "192.168.0.1:18091:80/udp"], ["-P"],
                 ["--publish-all", "-p", "18092:80"]):
        denied_cli(engine, gate, ["create"] + args + ["tiny", "true"], "published_ports")
    # a raw wildcard spelled differently is still rewritten, never forwarded as is
    body = {"Image": "tiny", "HostConfig": {"PortBindings": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18093"}, {"hostip": "", "hostport": "18094"}]}}}
    r = api(gate.sock, "POST", CREATE, body)
    if r.status == 201:
        cid = r.json()["Id"]
        try:
            pb = inspect_container(engine, cid)["HostConfig"]["PortBindings"]["80/tcp"]
            assert [b["HostIp"] for b in pb] == ["127.0.0.1", "127.0.0.1"], pb
        finally:
            engine.cli("rm", "-f", cid)
    else:
        check_refusal(r, r.status)


OVERRIDE_ATTEMPTS = [
    {"CapDrop": []}, {"capdrop": []}, {"CapDrop": ["NET_RAW"]}, {"ReadonlyRootfs": False},
    {"readonlyrootfs": False}, {"ReadonlyRootf\u017f": False}, {"PidsLimit": None}, {"pidslimit": 0}, {"PidsLimit": -1},
    {"PidsLimit": -2}, {"PidsLimit": -9223372036854775808},
    {"Memory": 0}, {"SecurityOpt": ["no-new-privileges"]}, {"SecurityOpt": ["no-new-privileges:t"]},
    {"SecurityOpt": []}, {"securityopt": None},
]


def test_injected_defaults_override_attempts_raw(engine, dockgate, cleanup):
    """Whatever spelling asks for less, the engine keeps the injected values."""
    gate = dockgate(safe_policy(engine))
    for hc in OVERRIDE_ATTEMPTS:
        for body in ({"Image": "tiny", "HostConfig": dict(hc, NetworkMode="none")},
                     dict({"Image": "tiny", "NetworkMode": "none"}, **hc)):
            r = api(gate.sock, "POST", CREATE, body)
            assert r.status == 201, (body, r)
            cid = r.json()["Id"]
            cleanup.containers.append(cid)
            h = inspect_container(engine, cid)["HostConfig"]
            got = {k: h[k] for k in ("CapDrop", "ReadonlyRootfs", "PidsLimit", "Memory",
                                     "SecurityOpt", "NetworkMode")}
            assert got == {"CapDrop": ["ALL"], "ReadonlyRootfs": True, "PidsLimit": 1024,
                           "Memory": 2**30, "SecurityOpt": ["no-new-privileges:true"],
                           "NetworkMode": "none"}, (body, got)
    for hc in ({"CapAdd": ["ALL"]}, {"capadd": "sys_admin"}, {"CapAdd": ["NET_BIND_SERVICE", "SYS_PTRACE"]}):
        before = snapshot(engine)
        r = api(gate.sock, "POST", CREATE, {"Image": "tiny", "HostConfig": hc})
        if r.status == 201:
            cleanup.containers.append(r.json()["Id"])
        assert r.status == 403, (hc, r)
        check_refusal(r, 403, "capabilities")
        assert_unchanged(before, snapshot(engine))


def test_no_new_privileges_and_defaults_raw_wrapper(engine, dockgate, cleanup):
    """Top-level host fields (no HostConfig) are decided and canonicalised, and
    the injected values land in the HostConfig the engine keeps."""
    gate = dockgate(safe_policy(engine))
    body = {"Image": "tiny", "Cmd": ["true"], "NetworkMode": "none",
            "SecurityOpt": ["no-new-privileges:true", "no-new-privileges=true"],
            "capadd": ["net_bind_service"]}
    r = api(gate.sock, "POST", CREATE, body)
    assert r.status == 201, r
    cid = r.json()["Id"]
    cleanup.containers.append(cid)
    hc = inspect_container(engine, cid)["HostConfig"]
    assert hc["NetworkMode"] == "none"
    assert hc["SecurityOpt"] == ["no-new-privileges:true"], hc["SecurityOpt"]
    assert hc["CapDrop"] == ["ALL"] and hc["ReadonlyRootfs"] is True, hc
    assert hc["Memory"] == 2**30 and hc["PidsLimit"] == 1024, hc


# =========================================================================
# 4. run_as_non_root
# =========================================================================

@pytest.fixture
def nonroot(engine, dockgate):
    return dockgate({"version": 1, "default_profile": "nr", "profiles": {"nr": {
        "trusted_registries": ["docker.io/library"], "run_as_non_root": True}}})


def test_non_root_create(engine, nonroot):
    run = ["run", "--rm", "--network", "none"]
    denied_cli(engine, nonroot, run + ["tiny", "id", "-u"], "run_as_non_root")
    for u in ("0", "00", "0:0", "0:1000", "root", "root:root", "+0", "-0", "nobody", ":0",
              ":1000", "-1", "4294967296", "99999999999999999999"):
        denied_cli(engine, nonroot, run + ["--user", u, "tiny-user", "id", "-u"],
                   "run_as_non_root")
    assert nonroot.ok(*(run + ["tiny-user", "id", "-u"])) == "1000"
    assert nonroot.ok(*(run + ["--user", "1000", "tiny", "id", "-u"])) == "1000"
    assert nonroot.ok(*(run + ["--user", "1000:0", "tiny", "id", "-u"])) == "1000"
    # by image ID (dockgate asks the engine for the image's user)
    iid = engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny-user")
    assert nonroot.ok(*(run + [iid, "id", "-u"])) == "1000"
    rid = engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny")
    denied_cli(engine, nonroot, run + [rid, "id", "-u"], "run_as_non_root")
    denied_cli(engine, nonroot, run + [rid.split(":")[1][:12], "id", "-u"], "run_as_non_root")


def test_non_root_raw_user_spellings(engine, nonroot):
    before = snapshot(engine)
    for body, status in (({"Image": "tiny-user", "user": "0"}, 403),
                         ({"Image": "tiny-user", "USER": "000"}, 403),
                         ({"Image": "tiny-user", "User": " 0"}, 403),
                         ({"Image": "tiny-user", "U\u017fer": "0"}, 403),
                         ({"Image": "tiny-user", "HostConfig": None, "U\u017fER": "root"}, 403),
                         ({"Image": "tiny-user", "User": "0x0"}, 403),
                         ('{"Image":"tiny-user","User":"1000","user":"0"}', 400)):
        data = body if isinstance(body, str) else json.dumps(body)
        r = raw_one(nonroot.sock, "POST", CREATE, {"Content-Type": "application/json"},
                    data.encode())
        check_refusal(r, status, "run_as_non_root" if status == 403 else None)
    assert_unchanged(before, snapshot(engine))


def test_non_root_exec(engine, nonroot, cleanup):
    name = uniq("pol-nr")
    cid = nonroot.ok("run", "-d", "--network", "none", "--name", name, "tiny-user", "sleep", "600")
    cleanup.containers.append(cid)
    assert nonroot.ok("exec", name, "id", "-u") == "1000"
    t0 = time.time()
    for u in ("0", "00", "root", "0:1000", ":0", "4294967296"):
        denied_cli(engine, nonroot, ["exec", "-u", u, name, "id", "-u"], "run_as_non_root")
    assert nonroot.ok("exec", "-u", "1000", name, "id", "-u") == "1000"
    assert exec_creates(engine, cid, t0) == 1
    # a root container made elsewhere: an exec with no user runs as root, refused
    root = uniq("pol-root")
    rid = engine.ok("run", "-d", "--network", "none", "--name", root, "tiny", "sleep", "600")
    cleanup.containers.append(rid)
    t1 = time.time()
    denied_cli(engine, nonroot, ["exec", root, "id", "-u"], "run_as_non_root")
    assert exec_creates(engine, rid, t1) == 0
    assert nonroot.ok("exec", "-u", "1000", root, "id", "-u") == "1000"


# =========================================================================
# 5. trusted_registries
# =========================================================================

def test_trusted_registry_pull(engine, strict, cleanup):
    ok_ref = "%s/library/tiny:latest" % engine.trusted
    cleanup.images.append(ok_ref)
    assert not image_present(engine, ok_ref)
    strict.ok("pull", ok_ref, timeout=60)
    assert image_present(engine, ok_ref)
    digest = engine.ok("image", "inspect", "-f", "{{index .RepoDigests 0}}", ok_ref)
    assert "@sha256:" in digest
    engine.ok("rmi", ok_ref)
    # by digest: a digest reference counts as its repository
    strict.ok("pull", digest, timeout=60)
    cleanup.images.append(digest)
    assert image_present(engine, digest)
    strict.ok("run", "--rm", "--network", "none", digest, "true")


def test_untrusted_registry_digest_and_prefix_tricks(engine, dockgate, cleanup):
    u = engine.untrusted
    bad = "%s/evil/tiny:latest" % u
    # learn the untrusted digest straight at the engine, then forget the image
    engine.ok("pull", bad, timeout=60)
    digest = engine.ok("image", "inspect", "-f", "{{index .RepoDigests 0}}", bad)
    engine.ok("rmi", bad)
    host, port = u.rsplit(":", 1)
    trusted = ["docker.io/library", "%s/library" % engine.trusted,
               "%s/ev" % u]      # textual prefix of the untrusted name, not on a boundary
    if "%s:%s" % (host, port[:-1]) != engine.trusted:
        trusted.append("%s:%s" % (host, port[:-1]))   # the same, on the port
    gate = dockgate({"version": 1, "default_profile": "p", "profiles": {"p": {
        "trusted_registries": trusted}}})
    for ref in (bad, digest, "%s/evil/tiny" % u, "%s/evil/tiny:latest@%s" % (u, digest.split("@")[1])):
        denied_cli(engine, gate, ["pull", ref], "trusted_registries")
        denied_cli(engine, gate, ["create", "--network", "none", ref, "true"],
                   "trusted_registries")
    # a trusted repository prefix stops at its path component
    denied_cli(engine, gate, ["pull", "%s/libraryx/tiny" % engine.trusted], "trusted_registries")
    assert not image_present(engine, bad)


def test_image_by_id_and_prefix(engine, strict, cleanup):
    """An image named by ID or ID prefix is allowed only if the engine lists a
    trusted or local name for it."""
    run = ["run", "--rm", "--network", "none"]
    tid = engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny")
    assert strict.ok(*(run + [tid, "echo", "id"])) == "id"
    assert strict.ok(*(run + [tid.split(":")[1][:12], "echo", "prefix"])) == "prefix"
    # a distinct image with only an untrusted name, and one with no name at all
    tar = subprocess.run(["tar", "-C", "/bin", "-c", "busybox"], stdout=subprocess.PIPE,
                         check=True).stdout
    evil = "%s/evil/other:1" % engine.untrusted
    engine.ok("import", "-c", 'CMD ["/busybox","true"]', "-", evil, input=tar)
    cleanup.images.append(evil)
    eid = engine.ok("image", "inspect", "-f", "{{.Id}}", evil)
    anon = engine.ok("import", "-c", 'CMD ["/busybox","false"]', "-", input=tar)
    cleanup.images.append(anon)
    eh, ah = eid.split(":")[1], anon.split(":")[1]
    for ref in (eid, eh, eh[:12], eh[:5], "sha256:" + eh[:12], "sha256:" + eh[:5],
                anon, ah[:10], "sha256:" + ah[:8]):
        denied_cli(engine, strict, run + [ref], "trusted_registries")
    # nor may it take a trusted name (it would then pass as pulled)
    denied_cli(engine, strict, ["tag", evil, "tiny:evil"], None)
    denied_cli(engine, strict, ["tag", eid, "tiny:evil"], None)
    assert not image_present(engine, "tiny:evil")


# =========================================================================
# 6. SIGHUP reload
# =========================================================================

def _wait_log(gate, text, since, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in gate.log_text()[since:]:
            return True
        time.sleep(0.05)
    return False


def test_sighup_reload_changes_verdict_keeps_streams(engine, dockgate, cleanup):
    pol = strict_policy(engine, capabilities=["NET_ADMIN"])
    gate = dockgate(pol)
    name = uniq("pol-hup")
    cid = gate.ok("run", "-d", "--network", "none", "--name", name, "tiny", "sh", "-c",
                  "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done")
    cleanup.containers.append(cid)
    logs = subprocess.Popen([DOCKER, "logs", "-f", name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=_cli_env(gate.host))
    lines = []
    t = threading.Thread(target=lambda: [lines.append(ln) for ln in logs.stdout], daemon=True)
    t.start()
    try:
        deadline = time.time() + 10
        while len(lines) < 3 and time.time() < deadline:
            time.sleep(0.05)
        assert len(lines) >= 3, "logs -f delivered nothing: %r" % logs.stderr
        probe = ["create", "--network", "none", "--cap-add", "NET_ADMIN", "tiny", "true"]
        c1 = gate.ok(*probe)
        cleanup.containers.append(c1)
        # a kept-alive connection opened under the old policy
        keep = RawConn(gate.sock)
        netadmin = json.dumps({"Image": "tiny", "HostConfig": {"NetworkMode": "none",
                                                               "CapAdd": ["NET_ADMIN"]}})
        keep.send(http_req("POST", CREATE, {"Content-Type": "application/json"}, netadmin))
        r = keep.read_response("POST")
        assert r.status == 201, r
        cleanup.containers.append(r.json()["Id"])

        # reload: NET_ADMIN no longer allowed
        pol2 = strict_policy(engine)
        with open(gate.policy_path, "w") as f:
            json.dump(pol2, f)
        mark = len(gate.log_text())
        os.kill(gate.pid, signal.SIGHUP)
        assert _wait_log(gate, "reloaded", mark), gate.log_text()[mark:]
        denied_cli(engine, gate, probe, "capabilities")
        # the same kept-alive connection is decided under the new policy
        before = snapshot(engine)
        keep.send(http_req("POST", CREATE, {"Content-Type": "application/json"}, netadmin))
        check_refusal(keep.read_response("POST"), 403, "capabilities")
        keep.close()
        assert_unchanged(before, snapshot(engine))

        n = len(lines)
        time.sleep(1.0)
        assert logs.poll() is None, "logs -f ended on reload: %r" % logs.stderr.read()
        assert len(lines) > n + 3, "the logs stream stalled after the reload"

        # a bad policy on reload keeps the old one (NET_ADMIN still refused,
        # privileged still refused, ordinary create still fine)
        for bad in ('{"version":1,"profiles":{"p":{"privileged":true,"bogus_key":1}}}',
                    '{"version":1,"default_profile":"p","profiles":{"p":{"privileged":true}}',
                    '{"version":1,"default_profile":"p","profiles":{"p":{"privileged":true,'
                    '"privileged":true}}}',
                    '{"version":1,"default_profile":"p","profiles":{"p":{"privileged":"yes"}}}',
                    '{"version":1,"default_profile":"p","identities":[{"match":{"uid":0},'
                    '"profile":"nope"}],"profiles":{"p":{"privileged":true}}}',
                    '{"version":1,"default_profile":"p","profiles":{"p":{"extends":"q",'
                    '"privileged":true},"q":{"extends":"p"}}}',
                    ""):   # "" = the file is gone
            with open(gate.policy_path, "w") as f:
                f.write(bad)
            if bad == "":
                os.unlink(gate.policy_path)
            mark = len(gate.log_text())
            os.kill(gate.pid, signal.SIGHUP)
            assert _wait_log(gate, "old policy stays", mark), gate.log_text()[mark:]
            denied_cli(engine, gate, ["run", "--rm", "--network", "none", "--privileged", "tiny",
                                      "true"], "privileged")
            denied_cli(engine, gate, probe, "capabilities")
        assert gate.alive()
        c2 = gate.ok("create", "--network", "none", "tiny", "true")
        cleanup.containers.append(c2)
        n = len(lines)
        time.sleep(0.6)
        assert logs.poll() is None and len(lines) > n, "logs stream stopped"
        assert lines[0].startswith(b"line0") and lines[5].startswith(b"line5")
    finally:
        logs.kill()
        logs.wait()


# =========================================================================
# 7. the shipped policy/default.json
# =========================================================================

def test_default_policy_ordinary_workloads(engine, dockgate, cleanup):
    gate = dockgate(DEFAULT_POLICY)
    # official images are trusted (docker.io/library), so `tiny` runs as it is
    assert gate.ok("run", "--rm", "--network", "none", "tiny", "echo", "hi") == "hi"
    # tag into the locally-made namespace and run that
    local = "local/tiny:%d" % os.getpid()
    cleanup.images.append(local)
    gate.ok("tag", "tiny", local)
    assert gate.ok("run", "--rm", "--network", "none", local, "echo", "hi") == "hi"
    # a local name under a trusted prefix is refused (local content never passes as pulled)
    denied_cli(engine, gate, ["tag", "tiny", "evil/tiny:1"], "local_images")
    name = uniq("pol-default")
    cid = gate.ok("run", "-d", "--network", "none", "--name", name, "tiny", "sh", "-c",
                  "echo started; sleep 600")
    cleanup.containers.append(cid)
    assert name in gate.ok("ps", "--format", "{{.Names}}").split()
    deadline = time.time() + 5
    while "started" not in gate.ok("logs", name) and time.time() < deadline:
        time.sleep(0.1)
    assert gate.ok("logs", name) == "started"
    assert gate.ok("exec", name, "id", "-u") == "0"
    hc = inspect_container(engine, cid)["HostConfig"]
    assert hc["Memory"] == 2**30 and hc["PidsLimit"] == 1024, hc
    assert hc["SecurityOpt"] == ["no-new-privileges:true"], hc
    vol = uniq("pol-defvol")
    cleanup.volumes.append(vol)
    gate.ok("volume", "create", vol)
    assert gate.ok("run", "--rm", "--network", "none", "-v", vol + ":/d", "tiny", "sh", "-c",
                   "echo v > /d/f; cat /d/f") == "v"
    pname = uniq("pol-defport")
    cleanup.containers.append(pname)
    gate.ok("create", "--name", pname, "-p", "18085:80", "tiny", "true")
    pb = inspect_container(engine, pname)["HostConfig"]["PortBindings"]
    assert pb["80/tcp"][0]["HostIp"] == "127.0.0.1", pb
    gate.ok("stop", "-t", "0", name)
    gate.ok("rm", name)


DEFAULT_DENIALS = [
    (["run", "--rm", "--network", "none", "--privileged", "tiny", "true"], "privileged"),
    (["run", "--rm", "--network", "none", "-v", "/:/host", "tiny", "true"], "host_paths"),
    (["run", "--rm", "--network", "none", "-v", "/srv:/srv", "tiny", "true"], "host_paths"),
    (["run", "--rm", "--network", "none", "--pid", "host", "tiny", "true"], "host_namespaces"),
    (["run", "--rm", "--network", "host", "tiny", "true"], "host_namespaces"),
    (["run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN", "tiny", "true"],
     "capabilities"),
    (["run", "--rm", "--network", "none", "--device", "/dev/null", "tiny", "true"], "devices"),
    (["run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "tiny",
      "true"], "unconfined"),
    (["run", "--rm", "--network", "none", "-p", "0.0.0.0:18086:80", "-p", "10.0.0.1:18087:80",
      "tiny", "true"], "published_ports"),
    (["run", "--rm", "--network", "none", "-m", "9g", "tiny", "true"], "memory"),
    (["build", "-t", "local/b:1", "-"], "build"),
    (["network", "create", "-d", "macvlan", "polmacvlan"], "network_drivers"),
]


def test_default_policy_dangerous_denied(engine, dockgate):
    gate = dockgate(DEFAULT_POLICY)
    for args, rule in DEFAULT_DENIALS:
        inp = b"FROM tiny\n" if args[0] == "build" else None
        denied_cli(engine, gate, args, rule, input=inp)
    for ref in ("%s/evil/tiny" % engine.untrusted, "%s/library/tiny" % engine.trusted,
                "docker.io/someone/tiny"):
        denied_cli(engine, gate, ["pull", ref], "trusted_registries")
        assert not image_present(engine, ref)


def test_published_ports_loopback_host_ip_spellings(engine, dockgate):
    """HostIp strings Go's net.ParseIP does not read as an address would bind
    every interface: they are refused, or rewritten to a loopback literal."""
    gate = dockgate(safe_policy(engine))
    loopback = re.compile(r"^(127\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|"
                          r"[1-9]?\d)){2}|::1)$")
    before = snapshot(engine)
    for ip in ("localhost", "0", "127.1", "0177.0.0.1", "0x7f000001", "2130706433",
               "127.0.0.1 ", " 127.0.0.1", "127.000.000.001", "[::1]", "127.0.0.1%lo",
               "::ffff:0.0.0.0", "0:0:0:0:0:0:0:0", "::", "0.0.0.0", "", "10.0.0.1", "::1",
               "127.0.0.2"):
        body = {"Image": "tiny", "HostConfig": {"PortBindings": {
            "80/tcp": [{"HostIp": ip, "HostPort": "18080"}]}}}
        r = api(gate.sock, "POST", CREATE, body)
        if r.status == 201:
            cid = r.json()["Id"]
            try:
                pb = inspect_container(engine, cid)["HostConfig"]["PortBindings"]["80/tcp"]
            finally:
                engine.cli("rm", "-f", cid)
            assert len(pb) == 1 and loopback.match(pb[0]["HostIp"]), (ip, pb)
        else:
            assert r.status == 403, (ip, r)
            check_refusal(r, 403, "published_ports")
    assert_unchanged(before, snapshot(engine))


def test_commit_and_tag_cannot_take_trusted_names(engine, strict, cleanup):
    """Locally made content never passes as pulled: no commit or tag into a
    trusted name (overwriting `tiny:latest` for the next user), local/ is fine."""
    name = uniq("pol-commit")
    cid = engine.ok("create", "--name", name, "--network", "none", "tiny", "true")
    cleanup.containers.append(cid)
    tiny_id = engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny:latest")
    for ref in ("tiny:latest", "tiny:evil", "docker.io/library/busybox:latest",
                "%s/library/tiny:latest" % engine.trusted, "evil/tiny:1"):
        denied_cli(engine, strict, ["commit", name, ref], None)
    untrusted_src = "%s/evil/tiny:src" % engine.untrusted
    engine.ok("import", "-", untrusted_src,
              input=subprocess.run(["tar", "-C", "/bin", "-c", "busybox"], stdout=subprocess.PIPE,
                                   check=True).stdout)
    cleanup.images.append(untrusted_src)
    denied_cli(engine, strict, ["tag", untrusted_src, "tiny:latest"], None)
    denied_cli(engine, strict, ["tag", untrusted_src, "%s/library/tiny:x" % engine.trusted], None)
    assert engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny:latest") == tiny_id
    local = "local/committed:%d" % os.getpid()
    cleanup.images.append(local)
    strict.ok("commit", name, local)
    assert image_present(engine, local)
    assert engine.ok("image", "inspect", "-f", "{{.Id}}", "tiny:latest") == tiny_id


# =========================================================================
# 8. identities: listener and peer uid pick the profile
# =========================================================================

def test_identity_by_listener_read_only(engine, dockgate, cleanup):
    """The shipped default.json's read-only profile, on its own listener."""
    ro = "/run/dockgate-ro.sock"
    if os.path.exists(ro):
        pytest.skip("%s exists (another dockgate may be using it); the shipped policy "
                    "names that exact listener" % ro)
    gate = dockgate(DEFAULT_POLICY, extra_args=["--listen", "unix:" + ro])
    name = uniq("pol-ro")
    cid = gate.ok("create", "--name", name, "--network", "none", "tiny", "true")
    cleanup.containers.append(cid)
    host = "unix://" + ro
    assert name in docker_cli(host, "ps", "-a", "--format", "{{.Names}}", check=True
                              ).stdout.decode().split()
    assert docker_cli(host, "inspect", "-f", "{{.Id}}", name, check=True).stdout.decode().strip() == cid
    before = snapshot(engine)
    for args in (["create", "--network", "none", "tiny", "true"], ["start", name],
                 ["rm", "-f", name], ["logs", name], ["volume", "create", "x"],
                 ["pull", "%s/library/tiny" % engine.trusted], ["network", "create", "x"]):
        check_cli_denial(docker_cli(host, *args), "endpoints")
    assert_unchanged(before, snapshot(engine))


UID_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
body = sys.argv[2].encode()
s.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
sys.stdout.buffer.write(out)
"""


def test_identity_by_peer_uid(engine, dockgate, cleanup):
    """uid 1000 gets a read-only profile; root (the default) may create. The
    uid is the kernel's (SO_PEERCRED), not anything the client says."""
    gate = dockgate({"version": 1, "default_profile": "p",
                     "identities": [{"match": {"uid": 1000}, "profile": "ro"}],
                     "profiles": {"p": {"trusted_registries": ["docker.io/library"]},
                                  "ro": {"endpoints": {"allow": ["GET /**", "HEAD /**"]}}}},
                    extra_args=["--socket-mode", "0666"])
    os.chmod(gate.tmpdir, 0o711)
    body = json.dumps({"Image": "tiny", "HostConfig": {"NetworkMode": "none"}})

    def create_as(prefix):
        p = subprocess.run(prefix + ["/usr/bin/python3", "-c", UID_CLIENT, gate.sock, body],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        rs = parse_responses(p.stdout)
        assert rs, (p.stdout, p.stderr)
        return rs[0]

    before = snapshot(engine)
    r = create_as(["setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups"])
    check_refusal(r, 403, "endpoints")
    assert_unchanged(before, snapshot(engine))
    r = create_as([])
    assert r.status == 201, r
    cleanup.containers.append(r.json()["Id"])


# =========================================================================
# 9. framing corners around a decided body
# =========================================================================

def test_expect_continue_and_http10_bodies_decided(engine, strict):
    import socket as so
    before = snapshot(engine)
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.settimeout(10)
    s.connect(strict.sock)
    try:
        s.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(PRIV))
        time.sleep(0.3)
        s.sendall(PRIV.encode())
        from conftest import read_all
        out = read_all(s, 5)
    finally:
        s.close()
    rs = [r for r in parse_responses(out) if r.status != 100]
    assert rs, out
    check_refusal(rs[0], 403, "privileged")
    # HTTP/1.0 without Content-Length: the body is not a body (the engine reads none)
    from conftest import raw
    out = raw(strict.sock, b"POST /v1.41/containers/create HTTP/1.0\r\nHost: d\r\n"
              b"Content-Type: application/json\r\n\r\n" + PRIV.encode(), shut_wr=True)
    rs = parse_responses(out)
    assert rs and rs[0].status in (400, 403, 411), out
    check_refusal(rs[0], rs[0].status)
    assert_unchanged(before, snapshot(engine))


def test_many_named_volumes_never_skip_the_check(engine, strict, cleanup):
    """Past the lookup budget, a bind-options volume is still refused (a
    decision never gives up into an allow)."""
    name = uniq("pol-manyvol")
    engine.ok("volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
              "--opt", "device=/etc", name)
    cleanup.volumes.append(name)
    before = snapshot(engine)
    binds = ["polnv%d-%d:/v%d" % (os.getpid(), i, i) for i in range(12)]
    for b in (binds + [name + ":/e"], [name + ":/e"] + binds):
        r = api(strict.sock, "POST", CREATE, {"Image": "tiny", "HostConfig": {
            "NetworkMode": "none", "Binds": b}})
        assert r.status == 403, r
        _, rule = check_refusal(r, 403)
        assert rule in ("host_paths", "lookup_limit"), rule
    assert_unchanged(before, snapshot(engine))


def test_build_parameters_denied_when_build_allowed(engine, dockgate, tmp_path):
    """`build: true` is not a blank cheque: host network, cgroup parent, memory
    above max, trusted or foreign tags, compressed contexts are refused."""
    gate = dockgate(strict_policy(engine, build=True))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM tiny\nRUN echo built > /built\n")
    for args, rule in ((["--network", "host"], "host_namespaces"),
                       (["--network", "container:abc"], "host_namespaces"),
                       (["--cgroup-parent", "/"], "cgroup_parent"),
                       (["-m", "100g"], "memory"),
                       (["-t", "tiny:latest"], "local_images"),
                       (["-t", "local/ok:1", "-t", "tiny:x"], "local_images"),
                       (["-t", "%s/library/tiny:built" % engine.trusted], "local_images"),
                       (["-t", "%s/evil/built" % engine.untrusted], "local_images"),
                       (["--compress", "-t", "local/c:1"], "build")):
        denied_cli(engine, gate, ["build", "-q"] + args + [str(ctx)], rule)
    before = snapshot(engine)
    r = raw_one(gate.sock, "POST", "/v1.41/build?remote=http://127.0.0.1:1/x.tar&t=local/r:1")
    check_refusal(r, 403)
    r = raw_one(gate.sock, "POST", "/v1.41/build?version=2&t=local/r:1")
    check_refusal(r, 403)
    assert_unchanged(before, snapshot(engine))


def test_import_cannot_pull(engine, dockgate, cleanup):
    """With import allowed, an images/create that also names fromImage is a
    pull (the engine prefers it) and is judged as one."""
    gate = dockgate(strict_policy(engine, image_import=True))
    before = snapshot(engine)
    u = "%s/evil/tiny" % engine.untrusted
    for q in ("fromImage=%s&tag=latest&fromSrc=-&repo=local/x" % u,
              "fromSrc=-&repo=local/x&fromImage=%s&tag=latest" % u,
              "fromSrc=-&repo=tiny&tag=latest",
              "fromSrc=-&repo=%s/library/tiny&tag=imp" % engine.trusted):
        r = raw_one(gate.sock, "POST", "/v1.41/images/create?" + q,
                    {"Content-Type": "application/x-tar"}, b"")
        check_refusal(r, 403)
    assert_unchanged(before, snapshot(engine))
