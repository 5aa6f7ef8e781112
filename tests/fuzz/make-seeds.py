#!/usr/bin/env python3
"""Generate the fuzz seed corpora from tests/cases.

    tests/fuzz/make-seeds.py [CASES_DIR] [OUT_DIR]

Defaults: tests/cases and tests/fuzz/corpus (relative to the source tree).
Writes one directory per target; file names are content hashes, so runs
are reproducible and re-running only adds what changed. Each target's
input layout is described at the top of its fuzz_*.c; the tables below
mirror those layouts (keep ENDPOINTS in step with fuzz_eval.c).
"""
import glob
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# fuzz_eval.c: endpoints[] (index, method, route regex, kind)
ENDPOINTS = [
    (0, "POST", r"/containers/create", "body"),
    (2, "POST", r"/containers/[^/]+/update", "body"),
    (3, "POST", r"/containers/[^/]+/exec", "body"),
    (4, "POST", r"/containers/[^/]+/start", "body"),
    (5, "POST", r"/exec/[^/]+/start", "body"),
    (6, "POST", r"/volumes/create", "body"),
    (7, "POST", r"/networks/create", "body"),
    (9, "POST", r"/images/create", "query"),
    (10, "POST", r"/commit", "query"),
    (11, "POST", r"/images/.+/tag", "query"),
    (12, "POST", r"/build", "query"),
    (13, "GET", r"/containers/json", "query"),
    (14, "POST", r"/containers/prune", "query"),
]
DOCKERFILE_ENDPOINT = 15
# fuzz_eval.c: profiles[] by low 3 bits of byte 1
PROFILES = ["baseline", "strict", "ci", "shared", "power"]
# fuzz_reqnorm.c: methods[]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH",
           "CONNECT"]
MAX_PER_TARGET = 400


def strip_version(path):
    return re.sub(r"^/v[0-9.]+(?=/)", "", path)


class Corpus:
    def __init__(self, out):
        self.out = out
        self.seen = {}

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode()
        n = self.seen.setdefault(target, set())
        h = hashlib.sha1(data).hexdigest()
        if h in n or len(n) >= MAX_PER_TARGET or len(data) > 8192:
            return
        n.add(h)
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)


def case_body(c):
    if "body_raw" in c:
        return c["body_raw"].encode()
    if "body_hex" in c:
        return bytes.fromhex(c["body_hex"])
    if "body" in c:
        return json.dumps(c["body"], separators=(",", ":")).encode()
    return b""


def case_policy(c, g, cases_dir):
    src = None
    for k in ("policy_file", "policy", "profile"):
        if k in c:
            src = (k, c[k])
            break
    if src is None:
        for k in ("policy_file", "policy", "profile"):
            if k in g:
                src = (k, g[k])
                break
    if src is None:
        return None
    k, v = src
    if k == "policy_file":
        with open(os.path.join(cases_dir, v), "rb") as f:
            return f.read()
    if k == "policy":
        return json.dumps(v, indent=1).encode()
    return json.dumps({"version": 1, "default_profile": "t",
                       "profiles": {"t": v}}, indent=1).encode()


def images_in(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            if k.lower() in ("image", "fromimage", "repo") and \
                    isinstance(x, str):
                out.add(x)
            elif k.lower() == "binds" and isinstance(x, list):
                for b in x:
                    if isinstance(b, str):
                        out.add("\x01" + b.split(":")[0])
            elif k.lower() == "source" and isinstance(x, str):
                out.add("\x01" + x)
            else:
                images_in(x, out)
    elif isinstance(v, list):
        for x in v:
            images_in(x, out)


def http_request(method, target, body, chunked=False, extra=b""):
    head = "%s %s HTTP/1.1\r\nHost: docker\r\n" % (method, target)
    head = head.encode() + extra
    if body:
        head += b"Content-Type: application/json\r\n"
        if chunked:
            head += b"Transfer-Encoding: chunked\r\n\r\n"
            mid = len(body) // 2
            parts = [body[:mid], body[mid:]]
            out = head
            for p in parts:
                if p:
                    out += b"%x\r\n" % len(p) + p + b"\r\n"
            return out + b"0\r\n\r\n"
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def main():
    cases_dir = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(TOP, "tests", "cases")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus")
    corp = Corpus(out)
    strings = set()
    for path in sorted(glob.glob(os.path.join(cases_dir, "*.json"))):
        with open(path) as f:
            g = json.load(f)
        for i, c in enumerate(g.get("cases", [])):
            method, target = c.get("method"), c.get("target")
            if not method or not target:
                continue
            body = case_body(c)
            pol = case_policy(c, g, cases_dir)
            if pol is not None:
                corp.add("fuzz_policy", pol)
            # fuzz_reqnorm: method byte + target
            mi = METHODS.index(method) if method in METHODS else 0
            corp.add("fuzz_reqnorm", bytes([mi]) + target.encode())
            # fuzz_http: a request, alone, split, chunked, pipelined
            req = http_request(method, target, body)
            corp.add("fuzz_http", b"\x00\x00\x00" + req)
            corp.add("fuzz_http", bytes([7, i & 255, 0]) + req)
            if body:
                corp.add("fuzz_http", bytes([13, i & 255, 1]) +
                         http_request(method, target, body, chunked=True))
            if i % 4 == 0:
                corp.add("fuzz_http", b"\x05\x11\x00" + req +
                         http_request("GET", "/v1.41/_ping", b"") +
                         http_request(method, target, body, chunked=True))
            # fuzz_eval
            route = strip_version(target.split("?")[0])
            query = target.split("?", 1)[1] if "?" in target else ""
            for pi in range(len(PROFILES)):
                world = (i * 7 + pi) & 31
                pb = pi | (world << 3)
                if "dockerfile" in c:
                    if pi < 2:
                        corp.add("fuzz_eval", bytes([DOCKERFILE_ENDPOINT,
                                                     pb]) +
                                 c["dockerfile"].encode())
                    continue
                for idx, m, rx, kind in ENDPOINTS:
                    if m != method or not re.fullmatch(rx, route):
                        continue
                    payload = body if kind == "body" else query.encode()
                    if pi < 3 or i % 3 == 0:
                        corp.add("fuzz_eval", bytes([idx, pb]) + payload)
                    break
            # fuzz_imageref
            images_in(c.get("body"), strings)
            m = re.search(r"fromImage=([^&]*)", target)
            if m:
                strings.add(m.group(1))
    for pf in sorted(glob.glob(os.path.join(TOP, "policy", "*.json")) +
                     glob.glob(os.path.join(TOP, "policy", "examples",
                                            "*.json"))):
        with open(pf, "rb") as f:
            corp.add("fuzz_policy", f.read())
    for s in sorted(strings):
        if s.startswith("\x01"):
            corp.add("fuzz_imageref", b"\x01" + s[1:].encode())
        else:
            corp.add("fuzz_imageref", b"\x00" + s.encode())
    for s in ("busybox", "docker.io/library/busybox:1.36",
              "localhost:5000/a/b@sha256:" + "a" * 64,
              "[::1]:5000/x:y", "Index.Docker.io/library/x",
              "sha256:" + "0" * 64):
        corp.add("fuzz_imageref", b"\x00" + s.encode())
    for s in ("/srv/ci/../x", "//var//run/docker.sock/", "/", "/a/./b"):
        corp.add("fuzz_imageref", b"\x01" + s.encode())
    for t, n in sorted(corp.seen.items()):
        print("%s: %d seeds" % (t, len(n)))


if __name__ == "__main__":
    main()
