#!/bin/sh
# bulk.sh - testing.md V11: 100,000 records over three files verify with
# both verifiers; the times are printed, not asserted (a 1,000,000-record
# run is `AUDIT_BULK_RECORDS=1000000 sh tests/audit/bulk.sh`).
. "$top_srcdir/tests/audit/lib.sh"

n=${AUDIT_BULK_RECORDS:-100000}
"$GOVGATE" audit keygen --out k >/dev/null || exit 1
t0=$(date +%s.%N)
"$MKLOG" --key k.key --records "$n" --checkpoint-every 1000 --unsealed 7 \
    a.jsonl b.jsonl c.jsonl
ok $? "wrote $n records"
t1=$(date +%s.%N)
out=$("$GOVGATE" audit verify --pubkey k.pub a.jsonl b.jsonl c.jsonl 2>&1)
rc=$?
t2=$(date +%s.%N)
[ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "^ok: $n records in 3 files"
ok $? "govgate audit verify: $n records intact"
diag "$out"
out=$("$PYTHON" "$PYVERIFY" --pubkey k.pub a.jsonl b.jsonl c.jsonl 2>&1)
rc=$?
t3=$(date +%s.%N)
[ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "^ok: $n records in 3 files"
ok $? "verify-audit.py: $n records intact"
printf '%s\n' "$out" | grep -q "note: 7 records after the last checkpoint"
ok $? "the last 7 records are reported unsealed"
bytes=$(cat a.jsonl b.jsonl c.jsonl | wc -c)
diag "$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$n" \
    -v s="$bytes" 'BEGIN {
	printf "%d records, %.1f MB: written in %.2f s; verified by govgate " \
	    "in %.2f s (%.0f records/s), by verify-audit.py in %.2f s\n",
	    n, s / 1e6, b - a, c - b, n / (c - b), d - c }')"
done_testing
