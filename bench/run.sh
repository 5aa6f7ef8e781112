#!/bin/bash
# dockgate benchmark: the fake engine (nginx, unix socket) directly, a socat
# fork relay, HAProxy with Tecnativa's docker-socket-proxy config, and
# dockgate with an inspecting policy; one scenario at a time, every
# contender back to back. See bench/README.md.
#
#   bench/run.sh [full]        the whole run (~6 minutes), writes
#                              bench/RESULTS.md (RESULTS=path to change)
#   bench/run.sh validate      loadgen against wrk on nginx over TCP
#
# Env: DURATION (s per cell, default 3), ROUNDS (rounds of every cell,
#      contenders interleaved, the median round kept; default 3),
#      WARMUP (s, default 0.5),
#      CONTENDERS (default "direct socat haproxy dockgate"),
#      SCENARIOS (default all), BENCH_KEEP=1 keeps the work dir.
set -u
source "$(dirname "$0")/lib.sh"

MODE=${1:-full}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-0.5}
CONTENDERS=${CONTENDERS:-direct socat haproxy dockgate}
SCENARIOS=${SCENARIOS:-ping1 ping16 ping256 json64 create16 newconn16 stream}
RESULTS=${RESULTS:-$BENCH_DIR/RESULTS.md}
export LOGS_SIZE=${LOGS_SIZE:-1G}

# A missing tool is installed from Debian's packages when we are root.
APT_UPDATED=0
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing ${2:-$1} for $1"
		if [ $APT_UPDATED = 0 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
			APT_UPDATED=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		    --no-install-recommends "${2:-$1}" >&2
		command -v "$1" >/dev/null 2>&1 && return 0
	fi
	log "missing $1 (apt-get install -y ${2:-$1})"
	exit 2
}
need cc gcc
need nginx
need taskset util-linux
[ "$MODE" = validate ] && need wrk
if [ "$MODE" = full ]; then
	case " $CONTENDERS " in *" socat "*) need socat ;; esac
	case " $CONTENDERS " in *" haproxy "*) need haproxy ;; esac
	need python3
	if [ ! -x "$DOCKGATE" ]; then
		log "no $DOCKGATE yet: building it (bootstrap.sh build)"
		"$TOP/bootstrap.sh" build >&2 || exit 2
	fi
fi

bench_mkdir
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
build_loadgen
gen_containers_json
gen_requests
write_policy

# ------------------------------------------------------------ validation
if [ "$MODE" = validate ]; then
	PORT=${PORT:-18089}
	start_engine "$PORT"
	printf 'GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >"$BD/req/tping.req"
	printf 'GET /v1.41/containers/json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' \
	    >"$BD/req/tjson.req"
	for s in "_ping tping 16" "v1.41/containers/json tjson 64"; do
		set -- $s
		for i in 1 2; do
			echo "== $1, $3 connections, try $i"
			taskset -c "$CLIENT_CPU" wrk -t1 -c"$3" -d"${DURATION}s" \
			    --latency "http://127.0.0.1:$PORT/$1" |
			    grep -E 'Requests/sec|50%|99%|Socket errors|Non-2xx' |
			    sed 's/^/   wrk:     /'
			taskset -c "$CLIENT_CPU" "$LOADGEN" --tcp "127.0.0.1:$PORT" \
			    --req "$BD/req/$2.req" -c "$3" -d "$DURATION" --expect 200 |
			    sed 's/^/   loadgen: /'
		done
	done
	exit 0
fi

# ---------------------------------------------------------------- full run
log "work dir $BD"
gen_logs_file
# A snapshot of the binary: proxy/ may be rebuilt while this runs.
cp "$DOCKGATE" "$BD/dockgate.bin"
export DOCKGATE_ID="sha256 $(sha256sum "$DOCKGATE" | cut -c1-12), built $(date -u -r "$DOCKGATE" '+%Y-%m-%d %H:%M UTC')"
DOCKGATE=$BD/dockgate.bin
declare -A PID SOCK KIDS
start_engine
PID[direct]=$ENGINE_PID;   SOCK[direct]=$BD/engine.sock;   KIDS[direct]=1
# Bring the sparse logs file into the page cache through nginx itself (the
# first sendfile of a hole is several times slower than the next ones).
"$LOADGEN" --unix "$BD/engine.sock" --req "$BD/req/logs.req" -n 1 -d 60 >/dev/null
for ct in $CONTENDERS; do
	case $ct in
	direct) ;;
	socat)    start_socat
		  PID[socat]=$SOCAT_PID;     SOCK[socat]=$BD/socat.sock;     KIDS[socat]=0 ;;
	haproxy)  start_haproxy
		  PID[haproxy]=$HAPROXY_PID; SOCK[haproxy]=$BD/haproxy.sock; KIDS[haproxy]=0 ;;
	dockgate) start_dockgate
		  PID[dockgate]=$DOCKGATE_PID; SOCK[dockgate]=$BD/dockgate.sock; KIDS[dockgate]=0 ;;
	*) log "unknown contender $ct"; exit 2 ;;
	esac
done

# Make sure every contender answers each scenario correctly before timing.
case " $CONTENDERS " in *" dockgate "*) ;; *) IDLE_SIZES=none ;; esac
for ct in $CONTENDERS; do
	for r in ping:200 json:200 create:201; do
		out=$("$LOADGEN" --unix "${SOCK[$ct]}" --req "$BD/req/${r%%:*}.req" \
		    -n 1 -d 5 --expect "${r##*:}")
		if [ "$(kv req "$out")" != 1 ] || [ "$(kv non_expected "$out")" != 0 ]; then
			log "$ct: ${r%%:*} answered wrongly: $out"
			exit 1
		fi
	done
done

POLICY_INSPECTS=n/a
if [ -n "${SOCK[dockgate]:-}" ]; then
# Does the policy really inspect the create body? An untrusted image must
# be refused (403) while the benchmark's create (image "tiny") passes.
EVIL_BODY=${CREATE_BODY/'"Image":"tiny"'/'"Image":"evil.example/x"'}
printf 'POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n%s' \
    "${#EVIL_BODY}" "$EVIL_BODY" >"$BD/req/evil.req"
out=$("$LOADGEN" --unix "${SOCK[dockgate]}" --req "$BD/req/evil.req" -n 1 \
    -d 5 --expect 403)
if [ "$(kv non_expected "$out")" = 0 ]; then
	POLICY_INSPECTS=yes
else
	POLICY_INSPECTS=no
	log "WARNING: dockgate let an untrusted image through: the policy" \
	    "library still allows everything"
fi
fi
export POLICY_INSPECTS

TSV=$BD/results.tsv
: >"$TSV"
scenario_args() {
	case $1 in
	ping1)     echo "ping 1 --expect 200" ;;
	ping16)    echo "ping 16 --expect 200" ;;
	ping256)   echo "ping 256 --expect 200" ;;
	json64)    echo "json 64 --expect 200" ;;
	create16)  echo "create 16 --expect 201" ;;
	newconn16) echo "ping 16 --new-conn --expect 200" ;;
	stream)    echo "logs 1 -n 1 --expect 200" ;;
	esac
}
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for sc in $SCENARIOS; do
	set -- $(scenario_args "$sc")
	req=$1 conns=$2
	shift 2
	# A cell is noisy on a shared machine: ROUNDS rounds, contenders
	# interleaved; the round with the median CPU per request is kept
	# (the stream: the median MB/s), every round's figure beside it.
	key=cpu_us_per_req
	[ "$sc" = stream ] && key=mbps
	declare -A LINES=()
	for rep in $(seq "$ROUNDS"); do
		for ct in $CONTENDERS; do
			if [ "$sc" != stream ] && [ "$WARMUP" != 0 ]; then
				taskset -c "$CLIENT_CPU" "$LOADGEN" \
				    --unix "${SOCK[$ct]}" --req "$BD/req/$req.req" \
				    -c "$conns" -d "$WARMUP" "$@" >/dev/null
			fi
			d=$DURATION
			[ "$sc" = stream ] && d=60
			line=$(KEEP_CHILDREN=${KIDS[$ct]} run_cell "${PID[$ct]}" \
			    "${SOCK[$ct]}" "$BD/req/$req.req" "$conns" "$d" "$@")
			LINES[$ct]+="$line"$'\n'
			printf '%-10s %-9s %s\n' "$sc#$rep" "$ct" "$line" >&2
		done
	done
	for ct in $CONTENDERS; do
		line=$(printf '%s' "${LINES[$ct]}" | awk -v key="$key=" '{
			for (i = 1; i <= NF; i++) if (index($i, key) == 1) {
				v = substr($i, length(key) + 1)
				all = all (NR > 1 ? "," : "") v }
			m[NR] = v; l[NR] = $0 }
		END {
			# the median line by key
			for (i = 1; i <= NR; i++) { below = 0
				for (j = 1; j <= NR; j++)
					if (m[j] + 0 < m[i] + 0 || (m[j] + 0 == m[i] + 0 && j < i)) below++
				if (below == int((NR - 1) / 2)) { print l[i] " all=" all; exit } }
		}')
		printf '%s\t%s\t%s\n' "$sc" "$ct" "$line" >>"$TSV"
	done
	unset LINES
done

# ------------------------------------------------- idle connection memory
# A fresh dockgate per size: PSS before, PSS with N idle clients held open.
MEMTSV=$BD/memory.tsv
: >"$MEMTSV"
for n in ${IDLE_SIZES:-1000 10000}; do
	[ "$n" = none ] && continue
	start_dockgate dgmem
	mp=$DOCKGATE_PID
	sleep "${IDLE_SETTLE:-0.3}"
	base=$(pss_kib "$mp")
	fd0=$(nfds "$mp")
	fifo=$BD/idle.fifo
	rm -f "$fifo"
	mkfifo "$fifo"
	(ulimit -n 20000; taskset -c "$CLIENT_CPU" "$LOADGEN" \
	    --unix "$BD/dgmem.sock" --idle "$n" --hold 0 <"$fifo" \
	    >"$BD/idle.out" 2>&1) &
	ip=$!
	exec 9>"$fifo"
	for i in $(seq 200); do
		[ "$(nfds "$mp")" -ge $((fd0 + n)) ] && break
		sleep 0.05
	done
	sleep "${IDLE_SETTLE:-0.5}"
	with=$(pss_kib "$mp")
	accepted=$(( $(nfds "$mp") - fd0 ))
	exec 9>&-
	wait "$ip"
	idle=$(cat "$BD/idle.out" | tr '\n' ' ')
	printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$base" "$with" "$accepted" "$idle" \
	    >>"$MEMTSV"
	log "idle $n: PSS $base -> $with KiB, accepted $accepted; $idle"
	stop_pid "$mp"
done

# ------------------------------------- the policy decision alone (target 2)
# bench/policy-bench.c against the built policy library: the create body's
# decision in a loop, best and median of five rounds.
export POLICY_BENCH=""
if [ -f "$TOP/policy/libpolicy.a" ] && [ -f "$TOP/config.h" ] &&
    cc -O2 -I"$TOP/policy" -I"$TOP" "$BENCH_DIR/policy-bench.c" \
    "$TOP/policy/libpolicy.a" -ljansson -o "$BD/policy-bench" 2>"$BD/pb.log"
then
	pb=$(taskset -c "$SERVER_CPU" "$BD/policy-bench" -r 5 create | tail -1)
	log "policy decision: $pb"
	POLICY_BENCH=$(echo "$pb" | sed -n \
	    's/.*best \([0-9]*\) ns, median \([0-9]*\) ns.*/\1 \2/p')
else
	log "policy decision: not measured (policy/libpolicy.a not built)"
fi
T_END=$(date +%s)
export LOADAVG="$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"

# ------------------------------------------------------------- the report
if [ -n "${TSV_OUT:-}" ]; then
	cp "$TSV" "$TSV_OUT.results.tsv"
	cp "$MEMTSV" "$TSV_OUT.memory.tsv"
fi
export LOGS_BYTES=$(stat -c %s "$BD/www/logs.bin")
python3 "$BENCH_DIR/report.py" "$TSV" "$MEMTSV" "$RESULTS" \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$TOP" diff --quiet HEAD -- proxy policy 2>/dev/null || echo '+dirty')" \
    "$DURATION x $ROUNDS" "$((T_END - T_START))" \
    "$(haproxy -v 2>/dev/null | head -1 | awk '{ print $3 }')" \
    "$(nginx -v 2>&1 | sed 's/.*nginx\///')"
log "wrote $RESULTS"
