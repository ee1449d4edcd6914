#!/bin/sh
# tamper.sh - tamper evidence (testing.md V01-V09): each change to a sealed
# two-file log is caught, at the right file:line, by both
# `govgate audit verify` and contrib/verify-audit.py.
. "$top_srcdir/tests/audit/lib.sh"

"$GOVGATE" audit keygen --out k >/dev/null || exit 1
"$GOVGATE" audit keygen --out evil >/dev/null || exit 1
# Records 1..200, a checkpoint every 10 (the last at 200), files of 100.
mkdir orig
"$MKLOG" --key k.key --records 200 --checkpoint-every 10 \
    orig/a.jsonl orig/b.jsonl || exit 1

fresh() {
	rm -rf t
	mkdir t
	cp orig/a.jsonl orig/b.jsonl t/
}

# A monitoring system's copies of checkpoints: seq 100 and seq 200.
line orig/a.jsonl 100 >known100
line orig/b.jsonl 100 >known200

fresh
verify_both "intact log verifies, all sealed" 0 \
    "ok: 200 records in 2 files, 20 checkpoints, last sealed at seq 200" \
    --pubkey k.pub --require-sealed --known-checkpoint known200 \
    t/a.jsonl t/b.jsonl
verify_both "another public key is named at the first checkpoint" 1 \
    "t/a.jsonl:10: checkpoint made with another key" \
    --pubkey evil.pub t/a.jsonl t/b.jsonl

# V01: one changed byte, in the payload and in the hash field.
fresh
edit t/a.jsonl 37 "l.replace(b'nn-egov', b'nn-egow', 1)"
verify_both "V01 byte flipped in the payload of record 37" 1 \
    "t/a.jsonl:37: hash mismatch" t/a.jsonl t/b.jsonl
fresh
edit t/a.jsonl 37 "l[:-5] + (b'0' if l[-5:-4] != b'0' else b'1') + l[-4:]"
verify_both "V01 byte flipped in the hash field of record 37" 1 \
    "t/a.jsonl:37: hash mismatch" t/a.jsonl t/b.jsonl
fresh
edit t/b.jsonl 50 "l.replace(b'nn-egov', b'nn-egow', 1)"
verify_both "V01 byte flipped in the second file" 1 \
    "t/b.jsonl:50: hash mismatch" t/a.jsonl t/b.jsonl
fresh
edit t/a.jsonl 37 "l.replace(b'\"seq\":37', b'\"seq\":3\\\\u0037', 1)"
verify_both "V01 seq spelled with an escape" 1 "t/a.jsonl:37: " \
    t/a.jsonl t/b.jsonl

# V02: a record deleted.
fresh
sed -i '37d' t/a.jsonl
verify_both "V02 record 37 deleted" 1 \
    "t/a.jsonl:37: seq 38 where 37 expected" t/a.jsonl t/b.jsonl
fresh
sed -i '1d' t/a.jsonl
verify_both "V02 first record deleted" 1 \
    "t/a.jsonl:1: first record has seq 2" t/a.jsonl t/b.jsonl

# V03: two records swapped.
fresh
sed -i '37{h;d};38{G}' t/a.jsonl
verify_both "V03 records 37 and 38 swapped" 1 \
    "t/a.jsonl:37: seq 38 where 37 expected" t/a.jsonl t/b.jsonl
verify_both "V03 files given in the wrong order" 1 \
    "t/b.jsonl:1: first record has seq 101" t/b.jsonl t/a.jsonl

# V04: a forged record inserted, the unkeyed chain recomputed after it.
fresh
sed -i '36{p}' t/a.jsonl
edit t/a.jsonl 37 "l.replace(b'\"ts\":\"2026', b'\"ts\":\"2025', 1)"
rechain t/a.jsonl t/b.jsonl
verify_both "V04 inserted record: the next checkpoint's signature fails" 1 \
    "t/a.jsonl:41: checkpoint signature does not verify" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V04 inserted record: a known checkpoint no longer matches" 1 \
    "t/a.jsonl:100: differs from the known checkpoint for seq 100" \
    --known-checkpoint known100 t/a.jsonl t/b.jsonl
verify_both "V04 without key or known checkpoint it goes unnoticed" 0 \
    "note: checkpoint signatures not checked (no --pubkey)" \
    t/a.jsonl t/b.jsonl
fresh
sed -i '36{p}' t/a.jsonl
verify_both "V04 inserted record without renumbering" 1 \
    "t/a.jsonl:37: seq 36 where 37 expected" t/a.jsonl t/b.jsonl

# V05: the tail truncated.
fresh
sed -i '86,$d' t/b.jsonl
verify_both "V05 truncated tail: fewer sealed records" 0 \
    "ok: 185 records in 2 files, 18 checkpoints, last sealed at seq 180" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V05 truncated tail: unsealed records named" 0 \
    "note: 5 records after the last checkpoint at t/b.jsonl:80 are unsealed" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V05 truncated tail: caught by a newer known checkpoint" 1 \
    "t/b.jsonl:85: the log ends at seq 185, before the known checkpoint at seq 200" \
    --pubkey k.pub --known-checkpoint known100 --known-checkpoint known200 \
    t/a.jsonl t/b.jsonl
verify_both "V05 truncated tail: --require-sealed refuses" 1 \
    "t/b.jsonl:85: 5 records after the last checkpoint at t/b.jsonl:80 are unsealed" \
    --pubkey k.pub --require-sealed t/a.jsonl t/b.jsonl
# Residual window: a cut right after a checkpoint looks like a shorter
# log unless a newer checkpoint is known elsewhere.
fresh
sed -i '81,$d' t/b.jsonl
verify_both "V05 cut at a checkpoint (residual window, documented)" 0 \
    "ok: 180 records in 2 files, 18 checkpoints, last sealed at seq 180" \
    --pubkey k.pub --require-sealed t/a.jsonl t/b.jsonl

# V06: the whole log rewritten into a consistent new chain.
fresh
edit t/a.jsonl 5 "l.replace(b'renshe', b'gongan', 1)"
rechain t/a.jsonl t/b.jsonl
verify_both "V06 rewritten chain: the first checkpoint's signature fails" 1 \
    "t/a.jsonl:10: checkpoint signature does not verify" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
fresh
edit t/a.jsonl 5 "l.replace(b'renshe', b'gongan', 1)"
rechain --sign evil.key t/a.jsonl t/b.jsonl
verify_both "V06 rewritten and re-signed with another key" 1 \
    "t/a.jsonl:10: checkpoint made with another key" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V06 re-signed log is self-consistent under the forger's key" 0 \
    "ok: 200 records in 2 files, 20 checkpoints" \
    --pubkey evil.pub t/a.jsonl t/b.jsonl
fresh
rechain --drop-checkpoints t/a.jsonl t/b.jsonl
verify_both "V06 checkpoints stripped: all records unsealed" 0 \
    "note: no checkpoint: all 180 records are unsealed" \
    --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V06 checkpoints stripped: --require-sealed refuses" 1 \
    "t/b.jsonl:90: no checkpoint: all 180 records are unsealed" \
    --pubkey k.pub --require-sealed t/a.jsonl t/b.jsonl
verify_both "V06 checkpoints stripped: a known checkpoint catches it" 1 \
    "t/b.jsonl:10: differs from the known checkpoint for seq 100" \
    --known-checkpoint known100 t/a.jsonl t/b.jsonl

# V07: rolled back to an older copy (the second file as it was at 120).
fresh
sed -i '21,$d' t/b.jsonl
verify_both "V07 rollback: the older copy alone looks intact" 0 \
    "ok: 120 records in 2 files, 12 checkpoints, last sealed at seq 120" \
    --pubkey k.pub --require-sealed t/a.jsonl t/b.jsonl
verify_both "V07 rollback: caught by the newest known checkpoint" 1 \
    "t/b.jsonl:20: the log ends at seq 120, before the known checkpoint at seq 200" \
    --pubkey k.pub --known-checkpoint known200 t/a.jsonl t/b.jsonl

# V08: a torn final line (crash mid-write).
fresh
head -c -40 orig/b.jsonl >t/b.jsonl
verify_both "V08 torn tail reported as such" 1 \
    "t/b.jsonl:100: torn tail (crash?)" --pubkey k.pub t/a.jsonl t/b.jsonl
verify_both "V08 torn tail accepted with --allow-torn-tail" 0 \
    "note: torn tail (crash?) at t/b.jsonl:100" \
    --pubkey k.pub --allow-torn-tail t/a.jsonl t/b.jsonl
fresh
head -c -40 orig/a.jsonl >t/a.jsonl
verify_both "V08 a torn line in a file that is not the last is an error" 1 \
    "t/a.jsonl:100: the file does not end with a newline" \
    --allow-torn-tail t/a.jsonl t/b.jsonl
fresh
printf '\n' >>t/b.jsonl
verify_both "V08 an empty last line is corruption, not a torn tail" 1 \
    "t/b.jsonl:101: empty line" t/a.jsonl t/b.jsonl

# V09: a missing middle file in a rotated series.
mkdir three
"$MKLOG" --key k.key --records 200 --checkpoint-every 10 \
    three/a.jsonl three/b.jsonl three/c.jsonl || exit 1
verify_both "V09 three rotated files verify" 0 \
    "ok: 200 records in 3 files" --pubkey k.pub three/a.jsonl \
    three/b.jsonl three/c.jsonl
verify_both "V09 missing middle file: the gap is named" 1 \
    "three/c.jsonl:1: seq 134 where 67 expected: gap after three/a.jsonl:66" \
    --pubkey k.pub three/a.jsonl three/c.jsonl
verify_both "V09 --partial starts later but still sees the gap" 1 \
    "three/c.jsonl:1: seq 134 where 67 expected" --partial \
    three/a.jsonl three/c.jsonl
verify_both "V09 --partial verifies the newer files alone" 0 \
    "note: the chain starts at seq 67" --partial --pubkey k.pub \
    three/b.jsonl three/c.jsonl
verify_both "V09 without --partial the newer files alone are refused" 1 \
    "three/b.jsonl:1: first record has seq 67" three/b.jsonl three/c.jsonl

done_testing
