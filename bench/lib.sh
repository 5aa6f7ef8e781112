# Shared pieces of bench/run.sh and bench/smoke.sh (sourced, bash).
#
# Everything lives under one mkdtemp directory $BD: the fake engine (a
# private nginx), the contenders' sockets, request templates, logs.
# Processes started here are remembered in BENCH_PIDS and stopped by
# bench_cleanup (by pid, never by name).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
BENCH_PIDS=()
CLK_TCK=$(getconf CLK_TCK)
# Where the servers and the load generator run (2-core machine: 0 and 1).
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

log() { printf '%s\n' "$*" >&2; }

bench_mkdir() {
	BD=$(mktemp -d /tmp/dg-bench.XXXXXX)
	mkdir -p "$BD/www" "$BD/tmp" "$BD/req"
}

bench_cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${BENCH_PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
	done
	BENCH_PIDS=()
	if [ -n "${BD:-}" ] && [ -z "${BENCH_KEEP:-}" ]; then
		rm -rf "$BD"
	fi
}

# Build the load generator (outside the autotools build).
build_loadgen() {
	LOADGEN=$BD/loadgen
	cc -O2 -Wall -o "$LOADGEN" "$BENCH_DIR/loadgen.c"
}

# Wait until a unix socket accepts (up to ~5 s).
wait_sock() {
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && "$LOADGEN" --unix "$1" --idle 1 --hold 0 \
		    </dev/null >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "socket $1 never came up"
	return 1
}

# ---------------------------------------------------------------- fixtures

# A ~30 KB /containers/json answer in the engine's 1.41 shape.
gen_containers_json() {
	local i id img name out=$BD/www/containers.json
	local imgs=(nginx:1.25 redis:7 postgres:15 "docker.io/library/busybox:latest" \
	    traefik:v2.10 grafana/grafana:10.1.0 prom/prometheus:v2.47.0)
	{
		printf '['
		for i in $(seq 0 16); do
			id=$(printf '%064x' $((i * 7919 + 1234567)) | tr 0 a | cut -c1-64)
			img=${imgs[$((i % ${#imgs[@]}))]}
			name="svc_$i"
			[ "$i" -gt 0 ] && printf ','
			printf '{"Id":"%s","Names":["/%s"],"Image":"%s",' "$id" "$name" "$img"
			printf '"ImageID":"sha256:%s",' "$(printf '%064x' $((i * 104729 + 99)))"
			printf '"Command":"/docker-entrypoint.sh --config /etc/%s/config.yml --log-level info",' "$name"
			printf '"Created":%d,' $((1700000000 + i * 3600))
			printf '"Ports":[{"IP":"0.0.0.0","PrivatePort":%d,"PublicPort":%d,"Type":"tcp"},{"IP":"::","PrivatePort":%d,"PublicPort":%d,"Type":"tcp"}],' \
			    $((8000 + i)) $((18000 + i)) $((8000 + i)) $((18000 + i))
			printf '"Labels":{"com.docker.compose.config-hash":"%s","com.docker.compose.container-number":"1","com.docker.compose.oneoff":"False","com.docker.compose.project":"stack","com.docker.compose.project.config_files":"/srv/stack/docker-compose.yml","com.docker.compose.project.working_dir":"/srv/stack","com.docker.compose.service":"%s","com.docker.compose.version":"2.21.0","org.opencontainers.image.source":"https://example.invalid/%s"},' \
			    "$(printf '%064x' $((i * 31337 + 7)))" "$name" "$name"
			printf '"State":"running","Status":"Up %d hours (healthy)",' $((i + 2))
			printf '"HostConfig":{"NetworkMode":"stack_default"},'
			printf '"NetworkSettings":{"Networks":{"stack_default":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"%s","EndpointID":"%s","Gateway":"172.18.0.1","IPAddress":"172.18.0.%d","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:12:00:%02x","DriverOpts":null}}},' \
			    "$(printf '%064x' 4242424242)" "$(printf '%064x' $((i * 65537 + 3)))" $((i + 2)) $((i + 2))
			printf '"Mounts":[{"Type":"volume","Name":"stack_%s_data","Source":"/var/lib/docker/volumes/stack_%s_data/_data","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""},{"Type":"bind","Source":"/srv/stack/%s/config.yml","Destination":"/etc/%s/config.yml","Mode":"ro","RW":false,"Propagation":"rprivate"}]}' \
			    "$name" "$name" "$name" "$name"
		done
		printf ']'
	} >"$out"
}

# The create body the docker CLI (API 1.41) sends for
# `docker run --rm -m 512m tiny echo hi`.
CREATE_BODY='{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hi"],"Image":"tiny","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":536870912,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}'

# Raw request templates, as the docker CLI 20.10 would send them.
gen_requests() {
	local ua='User-Agent: Docker-Client/20.10.24+dfsg1 (linux)'
	printf 'GET /_ping HTTP/1.1\r\nHost: docker\r\n%s\r\n\r\n' "$ua" \
	    >"$BD/req/ping.req"
	printf 'GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n%s\r\n\r\n' \
	    "$ua" >"$BD/req/json.req"
	printf 'POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n%s\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n%s' \
	    "$ua" "${#CREATE_BODY}" "$CREATE_BODY" >"$BD/req/create.req"
	printf 'GET /v1.41/containers/3f2a9c1b7e5d/logs?stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n%s\r\n\r\n' \
	    "$ua" >"$BD/req/logs.req"
	printf '%s' "$CREATE_BODY" >"$BD/req/create.json"
}

# A 1 GiB sparse file served as a logs stream.
gen_logs_file() {
	truncate -s "${LOGS_SIZE:-1G}" "$BD/www/logs.bin"
}

# ------------------------------------------------------------- fake engine

# nginx on unix:$BD/engine.sock (and 127.0.0.1:$1 when a port is given).
start_engine() {
	local port=${1:-} tcp_listen="" userline=""
	[ -n "$port" ] && tcp_listen="listen 127.0.0.1:$port;"
	[ "$(id -u)" = 0 ] && userline="user root root;"
	cat >"$BD/nginx.conf" <<EOF
# Fake Docker engine: static answers on a unix socket.
$userline
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $BD/nginx.pid;
error_log $BD/nginx-error.log warn;
events { worker_connections 16000; }
http {
	access_log off;
	client_body_temp_path $BD/tmp/body;
	proxy_temp_path $BD/tmp/proxy;
	fastcgi_temp_path $BD/tmp/fastcgi;
	uwsgi_temp_path $BD/tmp/uwsgi;
	scgi_temp_path $BD/tmp/scgi;
	sendfile on;
	keepalive_requests 10000000;
	keepalive_timeout 600s;
	server_tokens off;
	default_type application/json;

	# The create answer comes from a second tiny server: proxy_pass makes
	# nginx read the whole request body (buffered in memory) first.
	upstream create_backend {
		server unix:$BD/create.sock;
		keepalive 64;
	}
	server {
		listen unix:$BD/create.sock;
		location / {
			return 201 '{"Id":"e90e34656806f2a13e0f4e5ab5c2d2b8f1e0c3c1d5a0b7e4f9d8c6b5a4e3d2c1","Warnings":[]}\n';
		}
	}
	server {
		listen unix:$BD/engine.sock;
		$tcp_listen
		root $BD/www;
		add_header Api-Version 1.41 always;
		add_header Docker-Experimental false always;
		add_header Ostype linux always;

		location ~ ^(/v[0-9.]+)?/_ping\$ {
			default_type "text/plain; charset=utf-8";
			add_header Api-Version 1.41 always;
			add_header Cache-Control "no-cache, no-store, must-revalidate" always;
			add_header Pragma no-cache always;
			return 200 "OK";
		}
		location ~ ^(/v[0-9.]+)?/containers/json\$ {
			rewrite ^ /containers.json break;
		}
		location ~ ^(/v[0-9.]+)?/containers/create\$ {
			client_max_body_size 1m;
			client_body_buffer_size 64k;
			client_body_in_single_buffer on;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://create_backend;
		}
		location ~ ^(/v[0-9.]+)?/containers/[^/]+/logs\$ {
			default_type application/octet-stream;
			rewrite ^ /logs.bin break;
		}
		location / {
			return 404 '{"message":"page not found"}\n';
		}
	}
}
EOF
	rm -f "$BD/engine.sock" "$BD/create.sock"
	taskset -c "$SERVER_CPU" nginx -c "$BD/nginx.conf" -p "$BD" \
	    >"$BD/nginx.out" 2>&1 &
	ENGINE_PID=$!
	BENCH_PIDS+=("$ENGINE_PID")
	wait_sock "$BD/engine.sock"
}

# -------------------------------------------------------------- contenders

start_socat() {
	rm -f "$BD/socat.sock"
	taskset -c "$SERVER_CPU" socat "UNIX-LISTEN:$BD/socat.sock,fork,backlog=1024" \
	    "UNIX-CONNECT:$BD/engine.sock" >"$BD/socat.log" 2>&1 &
	SOCAT_PID=$!
	BENCH_PIDS+=("$SOCAT_PID")
	wait_sock "$BD/socat.sock"
}

# Tecnativa docker-socket-proxy's haproxy.cfg, adapted: unix bind, unix
# server, no errorfiles/server-state files; the same ACLs driven by the same
# environment variables (CONTAINERS=1 POST=1 here, PING/VERSION/... default).
start_haproxy() {
	rm -f "$BD/haproxy.sock"
	cat >"$BD/haproxy.cfg" <<EOF
global
    log stdout format raw daemon "\${LOG_LEVEL}"
    maxconn 4000

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option http-server-close
    option redispatch
    retries 3
    timeout http-request 10s
    timeout queue 1m
    timeout connect 10s
    timeout client 10m
    timeout server 10m
    timeout http-keep-alive 10s
    timeout check 10s
    maxconn 3000

backend dockerbackend
    server dockersocket $BD/engine.sock

frontend dockerfrontend
    bind $BD/haproxy.sock mode 600
    http-request deny unless METH_GET || { env(POST) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/containers/[a-zA-Z0-9_.-]+/((stop)|(restart)|(kill)) } { env(ALLOW_RESTARTS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/auth } { env(AUTH) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/build } { env(BUILD) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/commit } { env(COMMIT) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/configs } { env(CONFIGS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/containers } { env(CONTAINERS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/distribution } { env(DISTRIBUTION) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/events } { env(EVENTS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/exec } { env(EXEC) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/grpc } { env(GRPC) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/images } { env(IMAGES) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/info } { env(INFO) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/networks } { env(NETWORKS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/nodes } { env(NODES) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/_ping } { env(PING) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/plugins } { env(PLUGINS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/secrets } { env(SECRETS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/services } { env(SERVICES) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/session } { env(SESSION) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/swarm } { env(SWARM) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/system } { env(SYSTEM) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/tasks } { env(TASKS) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/version } { env(VERSION) -m bool }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/volumes } { env(VOLUMES) -m bool }
    http-request deny
    default_backend dockerbackend
EOF
	# Tecnativa's defaults (EVENTS PING VERSION on, the rest off) plus
	# CONTAINERS=1 POST=1; LOG_LEVEL info as in its image (one log line
	# per request, written to stdout, here to a file).
	env -i PATH="$PATH" LOG_LEVEL="${HAPROXY_LOG_LEVEL:-info}" \
	    EVENTS=1 PING=1 VERSION=1 CONTAINERS=1 POST=1 \
	    AUTH=0 SECRETS=0 BUILD=0 COMMIT=0 CONFIGS=0 DISTRIBUTION=0 EXEC=0 \
	    GRPC=0 IMAGES=0 INFO=0 NETWORKS=0 NODES=0 PLUGINS=0 SERVICES=0 \
	    SESSION=0 SWARM=0 SYSTEM=0 TASKS=0 VOLUMES=0 ALLOW_RESTARTS=0 \
	    taskset -c "$SERVER_CPU" haproxy -db -f "$BD/haproxy.cfg" \
	    >"${HAPROXY_LOG:-/dev/null}" 2>"$BD/haproxy.err" &
	HAPROXY_PID=$!
	BENCH_PIDS+=("$HAPROXY_PID")
	wait_sock "$BD/haproxy.sock"
}

DOCKGATE=${DOCKGATE:-$TOP/proxy/dockgate}

write_policy() {
	cat >"$BD/policy.json" <<'EOF'
{"version":1,"default_profile":"p","profiles":{"p":{"trusted_registries":["docker.io/library"]}}}
EOF
}

# start_dockgate NAME: listens on $BD/NAME.sock; pid in DOCKGATE_PID.
start_dockgate() {
	local name=${1:-dockgate}
	rm -f "$BD/$name.sock"
	taskset -c "$SERVER_CPU" "$DOCKGATE" --listen "unix:$BD/$name.sock" \
	    --upstream "unix:$BD/engine.sock" --policy "$BD/policy.json" \
	    --max-connections 15000 >"$BD/$name.log" 2>&1 &
	DOCKGATE_PID=$!
	BENCH_PIDS+=("$DOCKGATE_PID")
	wait_sock "$BD/$name.sock"
}

stop_pid() {
	local p=$1 i
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

# --------------------------------------------------------------- measuring

# CPU ticks (utime+stime) of a process tree: the process, every live
# descendant, and the process's cutime+cstime (children it already reaped,
# e.g. socat's forks). One awk pass over /proc/*/stat.
tree_ticks() {
	# cat, not awk over the files: a process may vanish mid-scan.
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{
		pid = $1
		line = $0
		sub(/^.*\) /, "", line)		# drop "pid (comm) "
		split(line, f, " ")
		ppid[pid] = f[2]
		t[pid] = f[12] + f[13]		# utime stime
		ct[pid] = f[14] + f[15]		# cutime cstime
	}
	END {
		in_tree[root] = 1
		changed = 1
		while (changed) {
			changed = 0
			for (q in ppid)
				if (!(q in in_tree) && (ppid[q] in in_tree)) {
					in_tree[q] = 1
					changed = 1
				}
		}
		s = ct[root]
		for (q in in_tree)
			s += t[q]
		print s + 0
	}'
}

# Number of live children of a pid.
nchildren() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{ line = $0;
	    sub(/^.*\) /, "", line); split(line, f, " ");
	    if (f[2] == root) n++ } END { print n + 0 }'
}

# PSS of one process, in KiB.
pss_kib() {
	awk '/^Pss:/ { print $2; exit }' "/proc/$1/smaps_rollup"
}

# Open file descriptors of a process.
nfds() {
	ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# kv KEY "key=value ..." -> value
kv() {
	printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# run_cell SERVER_PID SOCKET REQ CONNS SECONDS [loadgen args...]
# Prints loadgen's line plus cpu_ticks= and cpu_us_per_req=.
run_cell() {
	local spid=$1 sock=$2 req=$3 c=$4 d=$5
	shift 5
	local t0 t1 out nreq i
	t0=$(tree_ticks "$spid")
	out=$(taskset -c "$CLIENT_CPU" "$LOADGEN" --unix "$sock" --req "$req" \
	    -c "$c" -d "$d" -n "${MAX_REQ:-5000000}" "$@")
	# Let forked children (socat) exit and be reaped into cutime/cstime.
	for i in $(seq 40); do
		[ "$(nchildren "$spid")" -eq "${KEEP_CHILDREN:-0}" ] && break
		sleep 0.05
	done
	t1=$(tree_ticks "$spid")
	nreq=$(kv req "$out")
	awk -v o="$out" -v a="$t0" -v b="$t1" -v n="$nreq" -v hz="$CLK_TCK" 'BEGIN {
		us = n > 0 ? (b - a) / hz * 1e6 / n : 0
		printf "%s cpu_ticks=%d cpu_us_per_req=%.1f\n", o, b - a, us }'
}
