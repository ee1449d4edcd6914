#!/bin/sh
# man_lint.sh - every man page renders without a warning (TAP).
#
# With mandoc: `mandoc -T lint` (all levels, style included). Only the
# "referenced manual not found" notes are ignored, and mandoc.db notices:
# they say what this machine has installed, not what is in the page.
# Without mandoc: groff's -mdoc with every warning on (-ww), which must
# print nothing. Without either: SKIP. GOVGATE_MAN_LINT=mandoc|groff
# picks one.
set -u

top_srcdir=${top_srcdir:-.}
pages="govgate.8 govgate.yaml.5 govgate-policy.5 govgate-audit.5"

tool=${GOVGATE_MAN_LINT:-}
if [ -z "$tool" ]; then
	if command -v mandoc >/dev/null 2>&1; then
		tool=mandoc
	elif command -v groff >/dev/null 2>&1; then
		tool=groff
	fi
fi
if [ -z "$tool" ]; then
	echo "1..0 # SKIP neither mandoc nor groff is installed"
	exit 0
fi

n=0
for p in $pages; do
	n=$((n + 1))
done
echo "1..$n"

i=0
for p in $pages; do
	i=$((i + 1))
	f=$top_srcdir/man/$p
	if [ ! -r "$f" ]; then
		echo "not ok $i - $p: cannot read $f"
		continue
	fi
	case $tool in
	mandoc)
		out=$(mandoc -T lint -W all "$f" 2>&1 |
		    grep -v -e 'referenced manual not found' -e 'mandoc\.db')
		what="mandoc -T lint"
		;;
	groff)
		out=$(groff -k -mdoc -ww -z -Tutf8 "$f" 2>&1)
		what="groff -mdoc -ww"
		;;
	*)
		echo "Bail out! GOVGATE_MAN_LINT=$tool: use mandoc or groff"
		exit 1
		;;
	esac
	if [ -z "$out" ]; then
		echo "ok $i - $p: $what is silent"
	else
		echo "not ok $i - $p: $what complains"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
done
exit 0
