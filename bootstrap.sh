#!/bin/sh
# dockgate bootstrap for a fresh Debian 12 machine, run as root.
#
#   ./bootstrap.sh run     install what is missing, build, and run dockgate
#                          with policy/default.json in front of the local
#                          engine (a private one is started if none answers)
#   ./bootstrap.sh check   the same set-up, then the whole test suite against
#                          a private real engine; ends with "N passed, N failed"
#   ./bootstrap.sh build   install and build only
set -eu

TOP=$(cd "$(dirname "$0")" && pwd)
cd "$TOP"
RUN="$TOP/run"

PKGS="docker.io docker-registry docker-compose busybox-static socat \
libevent-dev libjansson-dev libhttp-parser-dev libssl-dev check libseccomp-dev \
pkg-config autoconf automake libtool make gcc clang libclang-rt-14-dev \
python3-docker python3-pytest iproute2 procps nginx haproxy \
man-db groff-base"

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Install the Debian packages that are missing (one apt-get run at most).
deps() {
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	if [ "$(id -u)" != 0 ]; then
		say "not root: cannot install packages; install them and retry"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >&2
}

# Configure (once) and build with warnings as errors.
build() {
	if [ ! -x configure ] || [ configure.ac -nt configure ]; then
		say "autoreconf"
		autoreconf -fi >&2
	fi
	if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
		say "configure"
		./configure --enable-werror ${DOCKGATE_CONFIGURE_FLAGS:-} >&2
	fi
	say "make"
	make -j"$(nproc)" >&2
}

# Does an engine answer at this DOCKER_HOST value?
engine_answers() {
	DOCKER_HOST="$1" timeout 10 docker version >/dev/null 2>&1
}

# Start a private engine under run/engine (TESTING.md recipe).
private_engine() {
	E="$RUN/engine"
	mkdir -p "$E"
	if engine_answers "unix://$E/docker.sock"; then
		return 0
	fi
	say "starting a private engine in $E"
	dockerd --host "unix://$E/docker.sock" --data-root "$E/data" \
	    --exec-root "$E/exec" --pidfile "$E/docker.pid" --bridge=none \
	    --iptables=false --ip-masq=false >"$E/dockerd.log" 2>&1 &
	i=0
	until engine_answers "unix://$E/docker.sock"; do
		i=$((i + 1))
		if [ $i -gt 60 ]; then
			say "the private engine did not start; see $E/dockerd.log"
			exit 1
		fi
		sleep 1
	done
	STARTED_ENGINE=1
}

stop_private_engine() {
	[ "${STARTED_ENGINE:-0}" = 1 ] || return 0
	E="$RUN/engine"
	pid=$(cat "$E/docker.pid" 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do
		sleep 1
		i=$((i + 1))
	done
}

# Pick the engine for `run`: $DOCKER_HOST, /var/run/docker.sock, or private.
pick_engine() {
	if [ -n "${DOCKER_HOST:-}" ] && engine_answers "$DOCKER_HOST"; then
		case "$DOCKER_HOST" in
		unix://*) UPSTREAM="unix:${DOCKER_HOST#unix://}" ;;
		tcp://*) UPSTREAM="tcp:${DOCKER_HOST#tcp://}" ;;
		*) say "DOCKER_HOST=$DOCKER_HOST: unsupported scheme"; exit 1 ;;
		esac
		return 0
	fi
	if [ -S /var/run/docker.sock ] && engine_answers unix:///var/run/docker.sock; then
		UPSTREAM="unix:/var/run/docker.sock"
		return 0
	fi
	private_engine
	UPSTREAM="unix:$RUN/engine/docker.sock"
}

cmd_run() {
	deps
	build
	mkdir -p "$RUN"
	pick_engine
	SOCK="$RUN/dockgate.sock"
	./proxy/dockgate --listen "unix:$SOCK" --upstream "$UPSTREAM" \
	    --policy policy/default.json "$@" &
	DG=$!
	trap 'kill -TERM $DG 2>/dev/null || true' INT TERM
	i=0
	until [ -S "$SOCK" ] || ! kill -0 $DG 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && break
		sleep 0.1
	done
	if kill -0 $DG 2>/dev/null; then
		say "dockgate is serving $SOCK in front of $UPSTREAM (Ctrl-C stops it)"
		echo "export DOCKER_HOST=unix://$SOCK"
	fi
	rc=0
	wait $DG || rc=$?
	# wait returns early when a trapped signal arrives: wait again.
	while kill -0 $DG 2>/dev/null; do wait $DG || rc=$?; done
	stop_private_engine
	exit $rc
}

cmd_check() {
	deps
	build
	exec tests/run-all.sh
}

case "${1:-}" in
run) shift; cmd_run "$@" ;;
check) shift; cmd_check "$@" ;;
build) deps; build ;;
*)
	echo "usage: ./bootstrap.sh run [dockgate options] | check | build" >&2
	exit 2
	;;
esac
