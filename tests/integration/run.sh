#!/bin/sh
# tests/integration/run.sh - run the pytest integration suite as one TAP
# test program: each pytest case becomes one TAP line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
PYTHONDONTWRITEBYTECODE=1 GOVGATE_TAP=$tap /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -o console_output_style=classic "$here" >"$tap.out" 2>&1
rc=$?
n=$(grep -c '^' "$tap" || true)
echo "1..$n"
cat "$tap"
sed 's/^/# /' "$tap.out"
rm -f "$tap.out"
# pytest exit 5 is "no tests collected": that is a failure here.
if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
	echo "not ok 1 - pytest exited $rc without running a test"
fi
exit 0
