#!/bin/sh
# faults_strace.sh - A03 (ENOSPC on the Nth audit write) and A05 (EIO on
# fdatasync from the Kth on), injected by strace on the audit file only.
# strace counts per thread: the start record is the main thread's first
# write and fdatasync, each later record one write and one fdatasync of
# the writer thread (the driver submits them one at a time).
set -u
. "$top_srcdir/tests/audit/faults_lib.sh"

if ! command -v strace >/dev/null 2>&1 ||
    ! strace -f -qq -o /dev/null true >/dev/null 2>&1; then
	t_skip "A03/A05 fault injection" "strace missing or ptrace refused"
	t_done
	exit
fi
D=$(mktemp -d "${TMPDIR:-/tmp}/faults_strace.XXXXXX") || exit 1
trap 'rm -rf "$D"' EXIT
KEY=$D/audit.key
PUB=$D/audit.pub
"$DRIVE" drive keygen "$KEY" "$PUB" || exit 1
# LeakSanitizer cannot stop the world under ptrace.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS

# A03: ENOSPC on write number N to the audit file.
for N in 1 2 5 50; do
	LOG=$D/a03-$N.jsonl
	strace -f -qq -o /dev/null -P "$LOG" -e trace=write \
	    -e inject=write:error=ENOSPC:when=$N \
	    "$DRIVE" drive run "$KEY" "$LOG" fsync $((N + 3)) 3000 \
	    >"$D/out" 2>"$D/err"
	rc=$?
	if [ "$N" -eq 1 ]; then
		# The first write is the start record: refuse to start.
		grep -q "No space left on device" "$D/err"
		t_ok $((rc != 2 || $? != 0)) \
		    "A03 N=1: refuses to start: $(head -1 "$D/err")"
		t_check "A03 N=1: no record in the file" \
		    sh -c "! grep -q seq '$LOG' 2>/dev/null"
		continue
	fi
	F=$N
	t_ok "$rc" "A03 N=$N: driver ran"
	ok=$(grep -c '^rec [0-9]* ok' "$D/out")
	first_bad=$(awk '$1 == "rec" && $3 != "ok" { print $2; exit }' "$D/out")
	t_ok $((first_bad != F || ok < F - 1)) \
	    "A03 N=$N: records 1..$((F - 1)) committed, record $F reported failed"
	t_check "A03 N=$N: degraded at once, next submits refused" \
	    sh -c "grep -qx 'degraded 1' '$D/out' &&
	        [ \$(grep -c '^extra [0-9] refused' '$D/out') -eq 3 ]"
	t_check "A03 N=$N: recovered, later records committed" \
	    sh -c "grep -q '^recovered' '$D/out' &&
	        grep -qx 'rec $((F + 1)) ok [0-9]*' '$D/out'"
	t_check "A03 N=$N: the failed and refused records are not in the file" \
	    sh -c "! grep -q '\"request_id\":\"d-$F\"' '$LOG' &&
	        ! grep -q '\"request_id\":\"x-' '$LOG'"
	# Nothing between the last committed record and audit_degraded.
	dl=$(grep -n '"event":"audit_degraded"' "$LOG" | head -1 | cut -d: -f1)
	if [ "$F" -eq 1 ]; then
		want='"event":"start"'
	else
		want="\"request_id\":\"d-$((F - 1))\""
	fi
	sed -n "$((${dl:-1} - 1))p" "$LOG" | grep -qF "$want"
	t_ok $? "A03 N=$N: audit_degraded right after the last committed record"
	t_check "A03 N=$N: audit_recovered follows" \
	    grep -q '"event":"audit_recovered"' "$LOG"
	t_verify "A03 N=$N: verifies" "$KEY" "$PUB" "$LOG"
done

# A05: fdatasync fails with EIO from the writer's Kth call on, for good.
for K in 2 3; do
	LOG=$D/a05-$K.jsonl
	strace -f -qq -o /dev/null -P "$LOG" -e trace=fdatasync \
	    -e inject=fdatasync:error=EIO:when=$K+ \
	    "$DRIVE" drive run "$KEY" "$LOG" fsync $((K + 3)) 2500 \
	    >"$D/out" 2>"$D/err"
	t_ok $? "A05 K=$K: driver ran"
	first_bad=$(awk '$1 == "rec" && $3 != "ok" { print $2; exit }' "$D/out")
	t_ok $((first_bad != K)) \
	    "A05 K=$K: records 1..$((K - 1)) committed, record $K failed"
	t_check "A05 K=$K: degraded, stays degraded (no retry-and-continue)" \
	    sh -c "grep -qx 'degraded 1' '$D/out' &&
	        grep -qx still-degraded '$D/out'"
	after=$(awk -v k="$K" '$1 == "rec" && $2 > k && $3 == "ok"' "$D/out" |
	    wc -l)
	t_ok $((after != 0)) "A05 K=$K: nothing reported committed after it ($after)"
	t_check "A05 K=$K: the alert names fdatasync" \
	    grep -q 'fdatasync: Input/output error' "$D/err"
	t_check "A05 K=$K: uncommitted records are not in the file" \
	    sh -c "! grep -q '\"request_id\":\"d-$K\"' '$LOG' &&
	        grep -q '\"request_id\":\"d-$((K - 1))\"' '$LOG'"
	t_verify "A05 K=$K: verifies" "$KEY" "$PUB" "$LOG"
done

t_done
