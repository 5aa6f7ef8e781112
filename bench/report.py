#!/usr/bin/env python3
"""Turn bench/run.sh's TSV files into bench/RESULTS.md.

usage: report.py RESULTS.tsv MEMORY.tsv OUT.md DATE NPROC MODEL COMMIT
                 DURATION ELAPSED HAPROXY_VERSION NGINX_VERSION
"""
import os
import sys

(tsv, memtsv, out, date, nproc, model, commit, duration, elapsed,
 hapver, ngxver) = sys.argv[1:12]

NAMES = {
    "ping1": "`_ping`, 1 keep-alive conn",
    "ping16": "`_ping`, 16 keep-alive conns",
    "ping256": "`_ping`, 256 keep-alive conns",
    "json64": "`containers/json` ~30 KB, 64 conns",
    "create16": "create (docker CLI body), 16 conns",
    "newconn16": "new connection per request, 16 concurrent",
    "stream": "1 GiB logs stream, 1 conn",
}
KEEPALIVE = ["ping1", "ping16", "ping256", "json64", "create16"]
CONTENDERS = ["direct", "socat", "haproxy", "dockgate"]

res = {}
order = []
for line in open(tsv):
    sc, ct, kvs = line.rstrip("\n").split("\t")
    d = dict(kv.split("=", 1) for kv in kvs.split())
    res[(sc, ct)] = {k: float(v) for k, v in d.items() if k != "all"}
    # every round's CPU per request (the stream: MB/s), the kept one median
    res[(sc, ct)]["all_s"] = d.get("all", "").replace(",", ", ")
    if sc not in order:
        order.append(sc)

mem = []
for line in open(memtsv):
    f = line.rstrip("\n").split("\t")
    mem.append((int(f[0]), int(f[1]), int(f[2]), int(f[3]), f[4]))


def g(sc, ct, k):
    r = res.get((sc, ct))
    return None if r is None else r.get(k)


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


L = []
L.append("# dockgate benchmark results\n")
L.append(f"- date: {date}")
L.append(f"- machine: {nproc} CPUs, {model}")
L.append(f"- commit: {commit}; dockgate binary "
         f"{os.environ.get('DOCKGATE_ID', '?')} (proxy/ changes under "
         "concurrent work: `+dirty` means the tree had uncommitted edits)")
L.append(f"- contenders: nginx {ngxver} as the fake engine (\"direct\"), "
         f"socat fork relay, HAProxy {hapver} with Tecnativa "
         "docker-socket-proxy's haproxy.cfg (unix bind, `option "
         "http-server-close`, LOG_LEVEL=info to /dev/null), dockgate with "
         "the inspecting policy (`trusted_registries: "
         "[\"docker.io/library\"]`)")
insp = os.environ.get("POLICY_INSPECTS", "?")
L.append(f"- policy really inspects the create body (an untrusted image is "
         f"refused 403): {insp}")
secs, _, rounds = duration.partition(" x ")
L.append(f"- method: servers pinned to CPU 0, loadgen on CPU 1; {secs} s "
         "per cell after a 0.5 s warm-up, contenders back to back per "
         f"scenario, {rounds or 1} rounds of each scenario with the "
         "contenders interleaved, the round with the median CPU per "
         "request kept (the stream: the median MB/s); CPU = utime+stime "
         "of the server's process tree (+ reaped children) from /proc, "
         f"divided by requests; whole run {elapsed} s.")
L.append(f"- load average (1/5/15 min): {os.environ.get('LOADAVG', '?')}; "
         "anything above ~1 means other work shared the 2 CPUs")
L.append("- the machine is shared: throughput swings run to run, CPU per "
         "request is the stabler number (see /work/shared/BENCH.md).\n")

L.append("## Server CPU per request (µs)\n")
L.append("| scenario | " + " | ".join(CONTENDERS) + " |")
L.append("|---|" + "---:|" * len(CONTENDERS))
for sc in order:
    if sc == "stream":
        continue
    L.append(f"| {NAMES[sc]} | " + " | ".join(
        fmt(g(sc, ct, "cpu_us_per_req"), 1) for ct in CONTENDERS) + " |")
L.append("")
L.append("Every round (µs): " + "; ".join(
    f"{sc} " + ", ".join(f"{ct} {res[(sc, ct)]['all_s']}" for ct in CONTENDERS
                         if (sc, ct) in res and res[(sc, ct)]["all_s"])
    for sc in order if sc != "stream") + "\n")

L.append("## Throughput and latency (req/s; p50 / p99 / max ms; errors)\n")
L.append("| scenario | " + " | ".join(CONTENDERS) + " |")
L.append("|---|" + "---:|" * len(CONTENDERS))
for sc in order:
    if sc == "stream":
        continue
    cells = []
    for ct in CONTENDERS:
        r = res.get((sc, ct))
        if r is None:
            cells.append("-")
            continue
        err = int(r["errors"] + r["non_expected"])
        cells.append(f"{r['rps']:,.0f} ({r['p50_us']/1000:.2f} / "
                     f"{r['p99_us']/1000:.2f} / {r['max_us']/1000:.1f})"
                     + (f" **{err} err**" if err else ""))
    L.append(f"| {NAMES[sc]} | " + " | ".join(cells) + " |")
L.append("")

if "stream" in order:
    L.append("## 1 GiB streamed response (MB/s, median of the rounds; server "
             "CPU s)\n")
    L.append("| " + " | ".join(CONTENDERS) + " |")
    L.append("|" + "---:|" * len(CONTENDERS))
    cells = []
    for ct in CONTENDERS:
        r = res.get(("stream", ct))
        if r is None:
            cells.append("-")
        else:
            ok = r["bytes"] == int(os.environ.get("LOGS_BYTES", 1073741824)) and r["errors"] == 0
            cells.append(f"{r['mbps']:,.0f} ({r['cpu_us_per_req']/1e6:.2f} s)"
                         + ("" if ok else " **incomplete**"))
    L.append("| " + " | ".join(cells) + " |\n")
    L.append("Every round (MB/s): " + "; ".join(
        f"{ct} {res[('stream', ct)].get('all_s', '')}"
        for ct in CONTENDERS if ("stream", ct) in res) + "\n")

if mem:
    L.append("## dockgate memory with idle client connections (PSS)\n")
    L.append("| idle conns | accepted | PSS before (KiB) | PSS with them "
             "(KiB) | per connection | loadgen |")
    L.append("|---:|---:|---:|---:|---:|---|")
    for n, base, w, acc, idle in mem:
        per = (w - base) * 1024 / n
        L.append(f"| {n:,} | {acc:,} | {base:,} | {w:,} | {per:,.0f} B | "
                 f"{idle.strip()} |")
    L.append("")

# ----------------------------------------------------------------- targets
T = []


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def target(n, text, value, limit, le, unit="x"):
    if value is None:
        T.append(f"| {n} | {text} | not measured | - |")
        return
    met = value <= limit if le else value >= limit
    if met:
        verdict = "**met**"
    elif le:
        verdict = f"**missed** by {value / limit:.2f}x ({value:.2f} > {limit})"
    else:
        verdict = f"**missed** by {limit / value:.2f}x ({value:.2f} < {limit})"
    T.append(f"| {n} | {text} | {value:.2f}{unit} | {verdict} |")


target(1, "dockgate CPU/req, keep-alive `_ping` 16 conns, <= 0.5x HAProxy",
       ratio(g("ping16", "dockgate", "cpu_us_per_req"),
             g("ping16", "haproxy", "cpu_us_per_req")), 0.5, True)
target("2a", "create with inspection CPU/req <= 0.6x HAProxy",
       ratio(g("create16", "dockgate", "cpu_us_per_req"),
             g("create16", "haproxy", "cpu_us_per_req")), 0.6, True)
pb = os.environ.get("POLICY_BENCH", "").split()
# The best round: on a shared machine other work only adds time.
target("2b", "the policy decision alone for the create body < 15 µs "
       "(bench/policy-bench.c, best of 5 rounds of 20,000; median "
       f"{int(pb[1]) / 1000 if len(pb) == 2 else 0:.1f} µs)",
       int(pb[0]) / 1000 if len(pb) == 2 else None, 15, True, unit=" µs")
target(3, "one request per connection: req/s >= 1.2x HAProxy",
       ratio(g("newconn16", "dockgate", "rps"),
             g("newconn16", "haproxy", "rps")), 1.2, False)
worst = None
worst_sc = None
for sc in KEEPALIVE:
    r = ratio(g(sc, "dockgate", "p99_us"), g(sc, "haproxy", "p99_us"))
    if r is not None and (worst is None or r > worst):
        worst, worst_sc = r, sc
target("4", "p99 <= 1.0x HAProxy in every keep-alive cell (worst cell: "
       f"{NAMES.get(worst_sc, '-')})", worst, 1.0, True)
target("5a", "1 GiB stream >= 1.0x HAProxy",
       ratio(g("stream", "dockgate", "mbps"), g("stream", "haproxy", "mbps")),
       1.0, False)
target("5b", "1 GiB stream >= 0.8x direct",
       ratio(g("stream", "dockgate", "mbps"), g("stream", "direct", "mbps")),
       0.8, False)
if mem:
    n, base, w, acc, idle = max(mem)
    per = (w - base) * 1024 / n
    target("6a", f"idle client connection <= 2 KiB each (at {n:,})",
           per, 2048, True, unit=" B")
    target("6b", "10,000 idle connections accepted",
           float(acc), 10000, False, unit="")

L.append("## Targets (ratios from this run)\n")
L.append("| # | target | dockgate / reference | verdict |")
L.append("|---|---|---:|---|")
L.extend(T)
L.append("")
L.append("p99 ratio per keep-alive cell (dockgate / HAProxy): " + ", ".join(
    f"{sc} {fmt(ratio(g(sc, 'dockgate', 'p99_us'), g(sc, 'haproxy', 'p99_us')), 2)}"
    for sc in KEEPALIVE if (sc, "dockgate") in res))
L.append("")

# Hand-written analysis kept across runs (what bounds each miss, the policy
# micro-benchmark), appended as it is.
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "RESULTS-notes.md")
if os.path.exists(notes):
    L.append(open(notes).read())

with open(out, "w") as f:
    f.write("\n".join(L) + "\n")
