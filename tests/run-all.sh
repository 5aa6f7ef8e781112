#!/bin/sh
# The whole suite: Check unit suites (make check), then the end-to-end
# suite (pytest, real engine started by the suite itself). Ends with one
# line "N passed, N failed" and a non-zero exit on any failure.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
PY=/usr/bin/python3
OUT="$TOP/tests/.results"
rm -rf "$OUT"
mkdir -p "$OUT"
passed=0
failed=0

# Unit suites: count Check's "Checks: N, Failures: F, Errors: E" lines.
echo "== unit suites (make check) =="
make -j2 check >"$OUT/make-check.log" 2>&1
mc=$?
for log in tests/check_*.log; do
	[ -f "$log" ] || continue
	line=$(grep -E 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -1)
	name=$(basename "$log" .log)
	if [ -z "$line" ]; then
		# A suite that printed no Check summary did not run properly.
		echo "$name: no Check summary"
		failed=$((failed + 1))
		continue
	fi
	n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
	f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
	e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
	echo "$name: $line"
	passed=$((passed + n - f - e))
	failed=$((failed + f + e))
done
if [ $mc -ne 0 ]; then
	echo "make check failed (exit $mc); its log:"
	tail -50 "$OUT/make-check.log"
	grep -h -B2 -A10 -E 'FAIL|Failure|Error' tests/check_*.log 2>/dev/null | head -80
	[ $failed -eq 0 ] && failed=1
fi

# End-to-end suite against a real engine.
echo "== end-to-end suite (pytest, real engine) =="
DOCKGATE_BIN="$TOP/proxy/dockgate" $PY -m pytest -q -rfE -p no:cacheprovider \
    --junitxml="$OUT/e2e.xml" tests/e2e $(test -d tests/ops && echo tests/ops) 2>&1 | tee "$OUT/e2e.log"
if [ -f "$OUT/e2e.xml" ]; then
	counts=$($PY - "$OUT/e2e.xml" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else r.findall("testsuite")
t = f = s = 0
for x in suites:
    t += int(x.get("tests", 0)); s += int(x.get("skipped", 0))
    f += int(x.get("failures", 0)) + int(x.get("errors", 0))
print(t - f - s, f, s)
PYEOF
)
	set -- $counts
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$3
else
	echo "the end-to-end suite produced no results"
	failed=$((failed + 1))
	skipped=0
fi

# The benchmark harness still works (a short smoke run, no timing asserted).
echo "== benchmark smoke run =="
if bench/smoke.sh >"$OUT/bench-smoke.log" 2>&1; then
	echo "bench smoke: ok"
	passed=$((passed + 1))
else
	rc=$?
	tail -20 "$OUT/bench-smoke.log"
	if [ $rc -eq 77 ]; then
		echo "bench smoke: skipped (a tool is missing)"
		skipped=$((skipped + 1))
	else
		echo "bench smoke: FAILED"
		failed=$((failed + 1))
	fi
fi

echo
if [ "${skipped:-0}" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
