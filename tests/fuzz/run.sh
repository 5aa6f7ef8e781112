#!/bin/sh
# Bounded fuzz run: build the libFuzzer targets in a private copy of the
# tree (never in the source tree), run each one for SECONDS_PER_TARGET
# (default 20) on its seed corpus, fail on any crash, leak or invariant
# violation. The five targets at 20 s, plus the build, stay under three
# minutes.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]
#
# Environment: CC (default clang), FUZZ_TARGETS (default: all five),
# FUZZ_WORK (default tests/fuzz/run: the build copy, the working corpora
# and any crash files), DOCKGATE_FUZZ_LENIENT (skip known findings, see
# README.md), FUZZ_JOBS (make -j, default 8).
set -u
secs=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${FUZZ_WORK:-$here/run}
cc=${CC:-clang}
targets=${FUZZ_TARGETS:-"fuzz_http fuzz_eval fuzz_policy fuzz_reqnorm fuzz_imageref"}
jobs=${FUZZ_JOBS:-8}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
command -v "$cc" >/dev/null 2>&1 || { echo "run.sh: $cc not found" >&2; exit 2; }

src=$work/src
build=$work/build
mkdir -p "$work"
# A fresh copy of the sources (tracked and untracked, not ignored files).
rm -rf "$src"
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -co --exclude-standard -z |
	    grep -zv '^tests/fuzz/run/' | xargs -0 cp --parents -t "$src")
else
	(cd "$top" && find . -path ./tests/fuzz/run -prune -o -type f \
	    ! -name '*.o' ! -name '*.a' -print0 |
	    xargs -0 cp --parents -t "$src")
fi
echo "run.sh: building in $build"
(cd "$src" && autoreconf -fi) >"$work/build.log" 2>&1 || {
	echo "run.sh: autoreconf failed, see $work/build.log" >&2; exit 1; }
rm -rf "$build"
mkdir -p "$build"
(cd "$build" && "$src/configure" --enable-fuzzing CC="$cc" &&
    make -j"$jobs" -C policy && make -j"$jobs" -C tests/fuzz) \
    >>"$work/build.log" 2>&1 || {
	echo "run.sh: build failed, see $work/build.log" >&2; exit 1; }

rc=0
for t in $targets; do
	corpus=$work/corpus/$t
	art=$work/artifacts/$t
	rm -rf "$art"	# findings of an earlier run are not this run's
	mkdir -p "$corpus" "$art"
	# New finds accumulate in the working corpus; the seeds stay read-only.
	printf 'run.sh: %-14s %3ss ... ' "$t" "$secs"
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 \
	    ${DOCKGATE_FUZZ_SEED:+-seed=$DOCKGATE_FUZZ_SEED} \
	    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
	    -artifact_prefix="$art/" "$corpus" "$here/corpus/$t" \
	    >"$work/$t.log" 2>&1
	st=$?
	n=$(ls "$art" 2>/dev/null | wc -l)
	if [ $st -ne 0 ] || [ "$n" -ne 0 ]; then
		echo "FAILED (exit $st), see $work/$t.log"
		ls "$art" | sed "s|^|    $art/|"
		grep -a -m3 -E 'invariant failed|ERROR: (Address|Leak|Undefined)|runtime error' \
		    "$work/$t.log" | cut -c1-300 | sed 's/^/    /'
		rc=1
	else
		grep -a 'stat::number_of_executed_units' "$work/$t.log" |
		    awk '{printf "ok, %s runs\n", $2}'
	fi
done
exit $rc
