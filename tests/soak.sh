#!/bin/sh
# Soak test for dockgate (NOT run in CI): tests/soak.sh [MINUTES]
#
# Starts a private dockerd (TESTING.md recipe) and dockgate in front of it,
# runs a steady, bounded mix of docker CLI workloads through dockgate (run --rm,
# exec -i, logs, ps, inspect, cp), samples dockgate's RSS and fd count every
# SAMPLE seconds into a CSV, and at the end fails if RSS grew more than
# RSS_GROWTH_PCT percent (last sample against the first sample taken after a
# warm-up minute) or the fd count grew beyond the idle engine-connection pool.
# Stops and removes everything it started.
#
# Environment: DOCKGATE_BIN (default <repo>/proxy/dockgate), DOCKER (CLI,
# default `docker`), SAMPLE (seconds, default 60), RSS_GROWTH_PCT (default 20),
# FD_SLACK (default 34: up to 32 pooled engine connections + 2),
# SOAK_KEEP=1 keeps the work directory (CSV, logs) for inspection.
# Exit: 0 pass, 1 a bound was exceeded or a workload step failed, 2 setup error.
set -u

MINUTES=${1:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCKGATE_BIN=${DOCKGATE_BIN:-$REPO/proxy/dockgate}
DOCKER=${DOCKER:-docker}
SAMPLE=${SAMPLE:-60}
RSS_GROWTH_PCT=${RSS_GROWTH_PCT:-20}
FD_SLACK=${FD_SLACK:-34}

case $MINUTES in ''|*[!0-9]*) echo "usage: $0 [MINUTES]" >&2; exit 2;; esac
[ -x "$DOCKGATE_BIN" ] || { echo "soak: no dockgate at $DOCKGATE_BIN" >&2; exit 2; }
command -v dockerd >/dev/null || { echo "soak: dockerd missing" >&2; exit 2; }

W=$(mktemp -d /tmp/dg-soak.XXXXXX)
D=$W/engine
mkdir -p "$D"
ESOCK=$D/docker.sock
GSOCK=$W/dg.sock
CSV=$W/samples.csv
ENGINE_PID= GATE_PID= LOAD_PID=
FAIL=0

log() { echo "soak: $(date +%H:%M:%S) $*"; }

cleanup() {
	trap - EXIT INT TERM
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
	if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
		ids=$(DOCKER_HOST=unix://$ESOCK $DOCKER ps -aq 2>/dev/null)
		[ -n "$ids" ] && DOCKER_HOST=unix://$ESOCK $DOCKER rm -f $ids >/dev/null 2>&1
	fi
	if [ -n "$GATE_PID" ] && kill -0 "$GATE_PID" 2>/dev/null; then
		kill -TERM "$GATE_PID"
		i=0; while kill -0 "$GATE_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done
		kill -0 "$GATE_PID" 2>/dev/null && { log "dockgate ignored SIGTERM"; kill -KILL "$GATE_PID"; FAIL=1; }
	fi
	if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then
		kill -TERM "$ENGINE_PID"
		i=0; while kill -0 "$ENGINE_PID" 2>/dev/null && [ $i -lt 450 ]; do sleep 0.1; i=$((i+1)); done
		kill -0 "$ENGINE_PID" 2>/dev/null && kill -KILL "$ENGINE_PID"
	fi
	# unmount leftovers under the engine's directories, deepest first
	awk -v d="$D" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
	    sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		log "kept $W (samples: $CSV)"
		rm -rf "$D/data" "$D/exec" 2>/dev/null
	else
		[ -f "$CSV" ] && { echo "--- $CSV"; cat "$CSV"; }
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- engine
dockerd --host "unix://$ESOCK" --data-root "$D/data" --exec-root "$D/exec" \
    --pidfile "$D/docker.pid" --bridge=none --iptables=false --ip-masq=false \
    >"$D/dockerd.log" 2>&1 &
ENGINE_PID=$!
i=0
until DOCKER_HOST=unix://$ESOCK $DOCKER version >/dev/null 2>&1; do
	i=$((i+1))
	if [ $i -gt 120 ] || ! kill -0 "$ENGINE_PID" 2>/dev/null; then
		log "dockerd did not start"; tail -20 "$D/dockerd.log"; exit 2
	fi
	sleep 0.5
done

R=$W/tiny-root
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp /bin/busybox "$R/bin/" || exit 2
for a in sh ls cat echo sleep id true env ps mount head dd wc seq; do ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n' >"$R/etc/passwd"
tar -C "$R" -c . | DOCKER_HOST=unix://$ESOCK $DOCKER import -c 'CMD ["/bin/sh"]' - tiny:latest >/dev/null || exit 2

# ---------------------------------------------------------------- dockgate
cat >"$W/policy.json" <<EOF
{"version":1,"default_profile":"soak","profiles":{"soak":{
  "trusted_registries":["docker.io/library"],
  "memory":{"default":"256m","max":"1g"}}}}
EOF
"$DOCKGATE_BIN" --check --policy "$W/policy.json" >/dev/null || { log "policy rejected"; exit 2; }
"$DOCKGATE_BIN" --listen "unix:$GSOCK" --upstream "unix:$ESOCK" --policy "$W/policy.json" \
    --audit "$W/audit.log" >"$W/dockgate.log" 2>&1 &
GATE_PID=$!
i=0
until [ -S "$GSOCK" ] && DOCKER_HOST=unix://$GSOCK $DOCKER version >/dev/null 2>&1; do
	i=$((i+1))
	if [ $i -gt 60 ] || ! kill -0 "$GATE_PID" 2>/dev/null; then
		log "dockgate did not start"; cat "$W/dockgate.log"; exit 2
	fi
	sleep 0.5
done
log "engine pid $ENGINE_PID, dockgate pid $GATE_PID, $MINUTES min, work dir $W"

# ---------------------------------------------------------------- workload
# One bounded round: every command has a timeout; errors are counted in
# $W/errors (a line each), never retried.
G="env DOCKER_HOST=unix://$GSOCK DOCKER_CLI_HINTS=false DOCKER_BUILDKIT=0"
step() {	# step NAME CMD...
	name=$1; shift
	if ! timeout 120 "$@" >>"$W/work.out" 2>>"$W/work.err"; then
		echo "$(date +%H:%M:%S) $name failed" >>"$W/errors"
	fi
}
workload() {
	n=0
	dd if=/dev/urandom of="$W/cp-in" bs=65536 count=16 2>/dev/null
	while :; do
		n=$((n+1))
		c=soak-$n
		step run     $G $DOCKER run --rm --network none tiny sh -c 'echo hi; seq 1 2000 | wc -l'
		step create  $G $DOCKER run -d --name "$c" --network none tiny sh -c 'while :; do echo tick; sleep 1; done'
		step exec    sh -c "echo hello | $G $DOCKER exec -i $c cat"
		step logs    $G $DOCKER logs --tail 5 "$c"
		step ps      $G $DOCKER ps -a
		step inspect $G $DOCKER inspect "$c"
		step cp-in   $G $DOCKER cp "$W/cp-in" "$c:/tmp/cp-in"
		step cp-out  $G $DOCKER cp "$c:/tmp/cp-in" "$W/cp-out"
		cmp -s "$W/cp-in" "$W/cp-out" || echo "$(date +%H:%M:%S) cp content differs" >>"$W/errors"
		step rm      $G $DOCKER rm -f "$c"
		: >"$W/work.out"	# keep the output file small
		sleep 1
	done
}
workload &
LOAD_PID=$!

# ---------------------------------------------------------------- sampling
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$GATE_PID/status" 2>/dev/null; }
fds() { ls "/proc/$GATE_PID/fd" 2>/dev/null | wc -l; }
echo "minute,epoch,rss_kb,fds,errors" >"$CSV"
END=$(( $(date +%s) + MINUTES * 60 ))
minute=0
BASE_RSS= BASE_FD=
while [ "$(date +%s)" -lt "$END" ]; do
	sleep "$SAMPLE"
	minute=$((minute+1))
	kill -0 "$GATE_PID" 2>/dev/null || { log "dockgate died"; tail -30 "$W/dockgate.log"; FAIL=1; break; }
	errs=$(cat "$W/errors" 2>/dev/null | wc -l)
	r=$(rss); f=$(fds)
	echo "$minute,$(date +%s),$r,$f,$errs" >>"$CSV"
	log "minute $minute: rss ${r} kB, fds $f, workload errors $errs"
	# the first sample after a warm-up minute is the baseline
	if [ $minute -eq 1 ] || [ -z "$BASE_RSS" ]; then BASE_RSS=$r; BASE_FD=$f; fi
done

kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; LOAD_PID=
# let in-flight connections end, then one final quiet sample
ids=$(DOCKER_HOST=unix://$ESOCK $DOCKER ps -aq 2>/dev/null)
[ -n "$ids" ] && DOCKER_HOST=unix://$ESOCK $DOCKER rm -f $ids >/dev/null 2>&1
sleep 5
if kill -0 "$GATE_PID" 2>/dev/null; then
	r=$(rss); f=$(fds)
	echo "final,$(date +%s),$r,$f,$(cat "$W/errors" 2>/dev/null | wc -l)" >>"$CSV"
	if [ -n "$BASE_RSS" ] && [ "$BASE_RSS" -gt 0 ]; then
		limit=$(( BASE_RSS + BASE_RSS * RSS_GROWTH_PCT / 100 ))
		if [ "$r" -gt "$limit" ]; then
			log "FAIL: RSS grew from $BASE_RSS kB to $r kB (> $RSS_GROWTH_PCT%)"; FAIL=1
		fi
		if [ "$f" -gt $((BASE_FD + FD_SLACK)) ]; then
			log "FAIL: fds grew from $BASE_FD to $f (> +$FD_SLACK)"; FAIL=1
		fi
	else
		log "FAIL: no baseline sample (run at least 2 minutes)"; FAIL=1
	fi
else
	log "FAIL: dockgate is not running at the end"; FAIL=1
fi
if [ -s "$W/errors" ]; then
	log "FAIL: $(wc -l <"$W/errors") workload steps failed; first ones:"
	head -10 "$W/errors"; tail -20 "$W/work.err"
	FAIL=1
fi
if grep -q -e 'AddressSanitizer' -e 'runtime error:' -e 'LeakSanitizer' "$W/dockgate.log"; then
	log "FAIL: sanitizer report in dockgate's log"; FAIL=1
fi
[ $FAIL -eq 0 ] && log "PASS" || log "FAIL"
exit $FAIL
