#!/bin/bash
# A short (<10 s) end-to-end run of the benchmark harness: builds loadgen,
# starts the fake engine and every contender that is installed, runs a
# reduced set of scenarios for 0.15 s each (a 64 MiB stream, 200 idle
# connections), generates a RESULTS.md into a temporary file, and checks
# that every cell completed requests with no error or unexpected status.
#
# Exit 0: the harness works. Exit 1: it does not (the reason is printed).
# Exit 77: a needed tool (cc, nginx, python3, taskset, proxy/dockgate) is
# missing, so nothing was tested (automake's SKIP code).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
DOCKGATE=${DOCKGATE:-$TOP/proxy/dockgate}
export DOCKGATE

for t in cc nginx python3 taskset; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "bench smoke: SKIP: $t is not installed"
		exit 77
	fi
done
if [ ! -x "$DOCKGATE" ]; then
	echo "bench smoke: SKIP: $DOCKGATE is not built"
	exit 77
fi
# Two CPUs: servers on 0, loadgen on 1; one CPU: both on 0.
if [ "$(nproc)" -lt 2 ]; then
	export CLIENT_CPU=0
fi

contenders="direct"
for t in socat haproxy; do
	if command -v "$t" >/dev/null 2>&1; then
		contenders="$contenders $t"
	else
		echo "bench smoke: $t not installed, left out"
	fi
done
contenders="$contenders dockgate"

OUT=$(mktemp -d /tmp/dg-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
start=$(date +%s.%N)
echo "bench smoke: contenders: $contenders"
echo "bench smoke: scenarios: ping16 json64 create16 newconn16 stream (64 MiB), idle 200"
CONTENDERS=$contenders \
SCENARIOS="ping16 json64 create16 newconn16 stream" \
DURATION=0.15 WARMUP=0 IDLE_SETTLE=0.1 STREAM_REPEAT=1 LOGS_SIZE=64M IDLE_SIZES=200 \
RESULTS=$OUT/RESULTS.md TSV_OUT=$OUT/run \
    timeout 60 bash "$HERE/run.sh" full >"$OUT/run.log" 2>&1
rc=$?
end=$(date +%s.%N)
if [ $rc -ne 0 ]; then
	echo "bench smoke: run.sh failed (exit $rc):"
	tail -30 "$OUT/run.log"
	exit 1
fi

fail=0
ncells=0
while IFS=$'\t' read -r sc ct line; do
	ncells=$((ncells + 1))
	req=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "req" { print $2 }')
	err=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "errors" { print $2 }')
	nonexp=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "non_expected" { print $2 }')
	cpu=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "cpu_us_per_req" { print $2 }')
	bytes=$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= '$1 == "bytes" { print $2 }')
	printf 'bench smoke: %-10s %-9s req=%s errors=%s non_expected=%s cpu_us_per_req=%s\n' \
	    "$sc" "$ct" "$req" "$err" "$nonexp" "$cpu"
	if [ "${req:-0}" -lt 1 ] || [ "${err:-1}" != 0 ] || [ "${nonexp:-1}" != 0 ]; then
		echo "bench smoke: FAIL: $sc/$ct: $line"
		fail=1
	fi
	if [ "$sc" = stream ] && [ "$bytes" != $((64 * 1024 * 1024)) ]; then
		echo "bench smoke: FAIL: stream/$ct got $bytes bytes"
		fail=1
	fi
done <"$OUT/run.results.tsv"
want=$((5 * $(echo $contenders | wc -w)))
if [ "$ncells" -ne "$want" ]; then
	echo "bench smoke: FAIL: $ncells cells, expected $want"
	fail=1
fi
while IFS=$'\t' read -r n base with acc idle; do
	echo "bench smoke: idle $n: dockgate accepted $acc, PSS $base -> $with KiB; $idle"
	if [ "$acc" -lt "$n" ] || ! printf '%s' "$idle" | grep -q 'closed_by_server=0 '; then
		echo "bench smoke: FAIL: idle connections were not all held"
		fail=1
	fi
done <"$OUT/run.memory.tsv"
if ! grep -q '^## Targets' "$OUT/RESULTS.md"; then
	echo "bench smoke: FAIL: no report generated"
	fail=1
fi
if grep -q 'policy really inspects.*: no' "$OUT/RESULTS.md"; then
	echo "bench smoke: note: the policy let an untrusted image through"
fi
el=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
if [ $fail -ne 0 ]; then
	echo "bench smoke: FAILED after $el s; run.sh log:"
	tail -40 "$OUT/run.log"
	exit 1
fi
echo "bench smoke: OK ($ncells cells, report generated) in $el s"
exit 0
