#!/bin/sh
# faults_tmpfs.sh - A01 (disk already full: refuse to start) and A02 (disk
# fills under load: fail closed, then resume with audit_degraded and
# audit_recovered once space returns) on small tmpfs mounts. Needs root
# or an unprivileged user+mount namespace (unshare -rm); else SKIP.
set -u
. "$top_srcdir/tests/audit/faults_lib.sh"

if [ "${1:-}" != --in-namespace ]; then
	P=$(mktemp -d "${TMPDIR:-/tmp}/faults_probe.XXXXXX") || exit 1
	if mount -t tmpfs -o size=16k tmpfs "$P" 2>/dev/null; then
		umount "$P"
		rmdir "$P"
	elif unshare -rm sh -c "mount -t tmpfs -o size=16k tmpfs '$P'" \
	    2>/dev/null; then
		rmdir "$P"
		exec unshare -rm sh "$0" --in-namespace
	else
		rmdir "$P"
		t_skip "A01/A02 small tmpfs" "cannot mount tmpfs (no root, no unshare -rm)"
		t_done
		exit
	fi
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/faults_tmpfs.XXXXXX") || exit 1
M1=$D/full
M2=$D/fills
LOADPID=
cleanup() {
	[ -n "$LOADPID" ] && kill "$LOADPID" 2>/dev/null
	umount "$M1" 2>/dev/null
	umount "$M2" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
KEY=$D/audit.key
PUB=$D/audit.pub
"$DRIVE" drive keygen "$KEY" "$PUB" || exit 1
mkdir "$M1" "$M2"

# A01: the disk is full before the gateway starts.
mount -t tmpfs -o size=64k tmpfs "$M1" || exit 1
dd if=/dev/zero of="$M1/filler" bs=4k count=64 2>/dev/null
"$DRIVE" drive run "$KEY" "$M1/audit.jsonl" fsync 1 0 >"$D/out" 2>"$D/err"
rc=$?
grep -q "No space left on device" "$D/err"
t_ok $((rc != 2 || $? != 0)) "A01: refuses to start: $(head -1 "$D/err")"
t_check "A01: no record was committed" \
    sh -c "! grep -q seq '$M1/audit.jsonl' 2>/dev/null"

# A02: 256 KiB, half taken by a filler; eight loaders fill the rest.
mount -t tmpfs -o size=256k tmpfs "$M2" || exit 1
dd if=/dev/zero of="$M2/filler" bs=1k count=128 2>/dev/null
LOG=$M2/audit.jsonl
"$DRIVE" drive load "$KEY" "$LOG" "$D/acked" "$D/go" "$D/degraded" \
    >"$D/load.out" 2>"$D/load.err" &
LOADPID=$!
i=0
while [ ! -e "$D/degraded" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
t_check "A02: the log degrades when the disk is full" \
    grep -qx 'degraded 1 after [0-9]* ms' "$D/load.out"
rm -f "$M2/filler"
touch "$D/go"
wait "$LOADPID"
rc=$?
LOADPID=
t_ok $rc "A02: driver ran: $(tail -1 "$D/load.out")"
t_check "A02: the alert names ENOSPC" \
    grep -q 'No space left on device; refusing requests' "$D/load.err"
t_check "A02: writing resumes once space returns" \
    grep -q '^recovered 1 after' "$D/load.out"
t_check "A02: records were refused while full, and ten written after" \
    sh -c "grep -q ' refused [1-9][0-9]* after 10 ' '$D/load.out'"
t_check "A02: audit_degraded and audit_recovered are in the trail" \
    sh -c "grep -q '\"event\":\"audit_degraded\",\"reason\":\"write: No space left on device' '$LOG' &&
        grep -q '\"event\":\"audit_recovered\"' '$LOG'"
miss=$(t_missing "$LOG" "$D/acked")
t_ok $((miss != 0)) \
    "A02: every record reported ok is in the trail ($(wc -l <"$D/acked") acked, $miss missing)"
t_verify "A02: verifies" "$KEY" "$PUB" "$LOG"

t_done
