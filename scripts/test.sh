#!/bin/sh
# scripts/test.sh - install dependencies, then build and run the whole suite
# twice: a normal -Werror build and an ASan+UBSan build. Ends with the line
# "N passed, N failed" summed over both runs; exits non-zero on any failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "${GOVGATE_SKIP_DEPS:-0}" != 1 ]; then
	sh scripts/deps.sh
fi
jobs=$(nproc 2>/dev/null || echo 2)
autoreconf -fi >/dev/null
rc=0
pass=0
fail=0
run() { # name configure-args...
	name=$1; shift
	dir="$top/_build/$name"
	rm -rf "$dir"; mkdir -p "$dir"
	echo "== $name: configure $*"
	if ! (cd "$dir" && "$top/configure" -q "$@" >configure.out 2>&1); then
		cat "$dir/configure.out"; rc=1; fail=$((fail + 1)); return
	fi
	echo "== $name: build"
	if ! make -C "$dir" -s -j"$jobs" >"$dir/build.out" 2>&1; then
		cat "$dir/build.out"; rc=1; fail=$((fail + 1)); return
	fi
	echo "== $name: make check"
	# A small quarantine keeps RSS checks meaningful under ASan; any
	# report ends the program that made it.
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    make -C "$dir" -s -j"$jobs" check >"$dir/check.out" 2>&1; then
		rc=1
		cat "$dir/check.out"
		for f in $(find "$dir/tests" -name '*.log' ! -name test-suite.log); do
			if grep -q '^FAIL\|^ERROR\|^not ok' "$f" 2>/dev/null; then
				echo "--- $f"; tail -n 60 "$f"
			fi
		done
	fi
	p=$(grep -a '^# PASS:' "$dir/test-suite.log" 2>/dev/null | awk '{print $3}')
	f=$(grep -a '^# FAIL:' "$dir/test-suite.log" 2>/dev/null | awk '{print $3}')
	e=$(grep -a '^# ERROR:' "$dir/test-suite.log" 2>/dev/null | awk '{print $3}')
	# Count TAP results inside the logs: each 'ok'/'not ok' line is a test.
	tp=$(cat $(find "$dir/tests" -name '*.log' ! -name test-suite.log) 2>/dev/null | grep -ac '^ok ' || true)
	tf=$(cat $(find "$dir/tests" -name '*.log' ! -name test-suite.log) 2>/dev/null | grep -ac '^not ok ' || true)
	echo "== $name: programs ${p:-0} pass, ${f:-0} fail, ${e:-0} error; cases $tp ok, $tf not ok"
	pass=$((pass + tp))
	fail=$((fail + tf + ${e:-0}))
	if [ "${f:-0}" != 0 ] || [ "${e:-0}" != 0 ]; then rc=1; fi
}
run normal --enable-werror
run sanitizers CC=clang-14 --enable-werror --enable-sanitizers
echo "$pass passed, $fail failed"
exit $rc
