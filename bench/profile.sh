#!/bin/bash
# Where does dockgate spend its time? Runs the fake engine and a snapshot of
# proxy/dockgate under a profiler for a few scenarios and prints the top of
# each profile.
#
#   bench/profile.sh perf        perf record -e cpu-clock (user + kernel),
#                                5 s per scenario
#   bench/profile.sh callgrind   valgrind --tool=callgrind, a fixed request
#                                count per scenario (user space only)
#   bench/profile.sh strace      strace -c: system calls per request
#   bench/profile.sh cpu         user and system CPU per request, apart
#                                (/proc/PID/stat), 5 s per scenario
#
# Env: PROFILE_SCENARIOS (default "ping16 create16 stream"), OUTDIR (where
# the raw profiles are kept; default a temp dir that is removed).
set -u
source "$(dirname "$0")/lib.sh"
TOOL=${1:-perf}
PROFILE_SCENARIOS=${PROFILE_SCENARIOS:-ping16 create16 stream}

bench_mkdir
trap bench_cleanup EXIT
OUTDIR=${OUTDIR:-$BD/prof}
mkdir -p "$OUTDIR"
build_loadgen
gen_containers_json
gen_requests
write_policy
LOGS_SIZE=${LOGS_SIZE:-1G} gen_logs_file
cp "$DOCKGATE" "$BD/dockgate.bin"
start_engine
# Warm the sparse logs file into the page cache through the engine itself.
"$LOADGEN" --unix "$BD/engine.sock" --req "$BD/req/logs.req" -n 1 -d 60 >/dev/null

args() {
	case $1 in
	ping16)   echo "ping 16 --expect 200" ;;
	ping1)    echo "ping 1 --expect 200" ;;
	json64)   echo "json 64 --expect 200" ;;
	create16) echo "create 16 --expect 201" ;;
	newconn16) echo "ping 16 --new-conn --expect 200" ;;
	stream)   echo "logs 1 -n 1 --expect 200" ;;
	esac
}

for sc in $PROFILE_SCENARIOS; do
	set -- $(args "$sc")
	req=$1 conns=$2
	shift 2
	rm -f "$BD/prof.sock"
	case $TOOL in
	perf)
		taskset -c "$SERVER_CPU" perf record -q -e cpu-clock -F 4999 \
		    -o "$OUTDIR/$sc.perf" -- "$BD/dockgate.bin" \
		    --listen "unix:$BD/prof.sock" --upstream "unix:$BD/engine.sock" \
		    --policy "$BD/policy.json" --max-connections 15000 \
		    >"$BD/prof.log" 2>&1 &
		ppid=$!
		;;
	callgrind)
		taskset -c "$SERVER_CPU" valgrind --tool=callgrind \
		    --callgrind-out-file="$OUTDIR/$sc.callgrind" \
		    "$BD/dockgate.bin" --listen "unix:$BD/prof.sock" \
		    --upstream "unix:$BD/engine.sock" --policy "$BD/policy.json" \
		    --max-connections 15000 >"$BD/prof.log" 2>&1 &
		ppid=$!
		;;
	cpu)
		taskset -c "$SERVER_CPU" "$BD/dockgate.bin" \
		    --listen "unix:$BD/prof.sock" --upstream "unix:$BD/engine.sock" \
		    --policy "$BD/policy.json" --max-connections 15000 \
		    >"$BD/prof.log" 2>&1 &
		ppid=$!
		;;
	strace)
		taskset -c "$SERVER_CPU" strace -c -f -o "$OUTDIR/$sc.strace" \
		    "$BD/dockgate.bin" --listen "unix:$BD/prof.sock" \
		    --upstream "unix:$BD/engine.sock" --policy "$BD/policy.json" \
		    --max-connections 15000 >"$BD/prof.log" 2>&1 &
		ppid=$!
		;;
	*) log "unknown tool $TOOL"; exit 2 ;;
	esac
	BENCH_PIDS+=("$ppid")
	wait_sock "$BD/prof.sock" || { cat "$BD/prof.log"; exit 1; }
	if [ "$TOOL" = perf ] || [ "$TOOL" = cpu ]; then
		d=5 n=5000000
	elif [ "$TOOL" = strace ]; then
		d=60 n=${STRACE_REQUESTS:-20000}
	else
		d=60 n=${CALLGRIND_REQUESTS:-20000}
	fi
	[ "$sc" = stream ] && n=1
	echo "== $sc ($TOOL)"
	# utime and stime (fields 14, 15; the name in field 2 has no spaces)
	if [ "$TOOL" = cpu ]; then
		cpu0=$(awk '{ print $14, $15 }' "/proc/$ppid/stat")
		sw0=$(awk '/ctxt_switches/ { printf "%s ", $2 }' \
		    "/proc/$ppid/status")
	fi
	out=$(taskset -c "$CLIENT_CPU" "$LOADGEN" --unix "$BD/prof.sock" \
	    --req "$BD/req/$req.req" -c "$conns" -d "$d" -n "$n" "$@")
	echo "$out"
	done_req=$(kv req "$out")
	if [ "$TOOL" = cpu ]; then
		cpu1=$(awk '{ print $14, $15 }' "/proc/$ppid/stat")
		sw1=$(awk '/ctxt_switches/ { printf "%s ", $2 }' \
		    "/proc/$ppid/status")
		awk -v a="$cpu0" -v b="$cpu1" -v c="$sw0" -v d="$sw1" \
		    -v n="$done_req" -v hz="$(getconf CLK_TCK)" 'BEGIN {
			split(a, x, " "); split(b, y, " ");
			split(c, v, " "); split(d, w, " ");
			u = (y[1] - x[1]) / hz * 1e6 / n;
			s = (y[2] - x[2]) / hz * 1e6 / n;
			printf "cpu per request: user %.1f us, system %.1f us," \
			    " total %.1f us; context switches per request:" \
			    " %.2f voluntary, %.2f involuntary\n", u, s, u + s,
			    (w[1] - v[1]) / n, (w[2] - v[2]) / n }'
	fi
	# perf: signal perf, which forwards nothing; stop the proxy under it.
	if [ "$TOOL" = cpu ]; then
		kill -TERM "$ppid" 2>/dev/null
	elif [ "$TOOL" = perf ] || [ "$TOOL" = strace ]; then
		dg=$(pgrep -P "$ppid" | head -1)
		kill -TERM "$dg" 2>/dev/null
	else
		kill -TERM "$ppid" 2>/dev/null
	fi
	wait "$ppid" 2>/dev/null
	if [ "$TOOL" = perf ]; then
		perf report -i "$OUTDIR/$sc.perf" --stdio --no-children \
		    --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' |
		    head -${TOP_N:-40}
	elif [ "$TOOL" = cpu ]; then
		:
	elif [ "$TOOL" = strace ]; then
		awk -v n="$done_req" 'NR <= 2 || /^-/ { next }
		    $4 ~ /^[0-9]+$/ && NF >= 5 { printf "%-16s %10d calls %8.2f per request\n", $NF, $4, $4 / n }
		    $4 !~ /^[0-9]+$/ && NF >= 4 && $1 != "total" { printf "%-16s %10d calls %8.2f per request\n", $NF, $4, $4 / n }' \
		    "$OUTDIR/$sc.strace" | sort -k2 -n -r | head -${TOP_N:-40}
	else
		callgrind_annotate --inclusive=no "$OUTDIR/$sc.callgrind" \
		    2>/dev/null | sed -n '1,/^$/d;p' | head -${TOP_N:-40}
	fi
done
