#!/bin/sh
# cli.sh - `govgate audit keygen` and `govgate audit query`, and --help and
# usage errors of every audit command.
. "$top_srcdir/tests/audit/lib.sh"

# --help and usage errors.
for c in "" keygen verify query; do
	out=$("$GOVGATE" audit $c --help 2>&1)
	rc=$?
	[ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^usage: govgate audit'
	ok $? "audit $c --help prints usage, exit 0"
done
"$GOVGATE" --help | grep -q '^  audit '
ok $? "govgate --help lists audit"
"$GOVGATE" audit frobnicate >/dev/null 2>&1
ok $(($? != 2)) "unknown audit command: exit 2"
"$GOVGATE" audit verify >/dev/null 2>&1
ok $(($? != 2)) "verify without FILE: exit 2"
"$GOVGATE" audit verify --frob x >/dev/null 2>&1
ok $(($? != 2)) "verify with an unknown option: exit 2"
"$GOVGATE" audit query --decision maybe x >/dev/null 2>&1
ok $(($? != 2)) "query --decision maybe: exit 2"
"$GOVGATE" audit query --subject x x >/dev/null 2>&1
ok $(($? != 2)) "query --subject without --subject-key: exit 2"
"$GOVGATE" audit query --since yesterday x >/dev/null 2>&1
ok $(($? != 2)) "query --since with a bad time: exit 2"
"$GOVGATE" audit keygen >/dev/null 2>&1
ok $(($? != 2)) "keygen without --out: exit 2"
"$GOVGATE" audit verify missing.jsonl 2>err
rc=$?
[ $rc -eq 1 ] && grep -q '^missing.jsonl: No such file' err
ok $? "verify of a missing file: exit 1, named"

# keygen.
out=$("$GOVGATE" audit keygen --out k)
ok $? "keygen writes a key pair"
kid=$(printf '%s\n' "$out" | sed -n 's/^key_id: //p')
[ "$(stat -c %a k.key)" = 600 ] && [ "$(stat -c %a k.pub)" = 644 ]
ok $? "k.key is mode 0600, k.pub 0644"
grep -q '^-----BEGIN PRIVATE KEY-----' k.key &&
    grep -q '^-----BEGIN PUBLIC KEY-----' k.pub
ok $? "PEM PKCS#8 private key and SubjectPublicKeyInfo public key"
want=$(openssl pkey -pubin -in k.pub -outform DER | sha256sum | cut -c1-16)
[ -n "$kid" ] && [ "$kid" = "$want" ]
ok $? "printed key_id is SHA-256 of the public key's DER ($kid)"
cp k.key k.key.orig
"$GOVGATE" audit keygen --out k >/dev/null 2>err
rc=$?
[ $rc -eq 1 ] && cmp -s k.key k.key.orig && grep -q 'refusing to overwrite' err
ok $? "keygen refuses to overwrite, key unchanged"
touch only.pub
"$GOVGATE" audit keygen --out only >/dev/null 2>&1
[ $? -eq 1 ] && [ ! -e only.key ]
ok $? "keygen refuses when PREFIX.pub exists, leaves no PREFIX.key"

"$MKLOG" --key k.key --records 100 --checkpoint-every 10 a.jsonl b.jsonl ||
    exit 1
grep -q "\"key_id\":\"$kid\"" a.jsonl
ok $? "checkpoints carry the key_id keygen printed"
chmod 644 k.key
"$MKLOG" --key k.key a2.jsonl >/dev/null 2>err
[ $? -ne 0 ] && grep -q 'group or others may read' err
ok $? "a signing key readable by others is refused"
chmod 600 k.key

# query: the mklog records cycle through three departments; decisions
# at odd positions, each followed by its complete record.
rows() { # count table rows (without the header)
	"$GOVGATE" audit query "$@" | tail -n +2 | wc -l
}
"$GOVGATE" audit query a.jsonl b.jsonl >q.out
ok $? "query with no filter"
head -1 q.out | grep -q '^TS  *REQUEST_ID  *DEPARTMENT  *RESOURCE  *DECISION  *REASON  *GRANT  *STATUS/PATH$'
ok $? "table header"
n=$(grep -c '"event":"decision"' a.jsonl b.jsonl | awk -F: '{s += $2} END {print s}')
c=$(grep -c '"event":"complete"' a.jsonl b.jsonl | awk -F: '{s += $2} END {print s}')
[ "$(tail -n +2 q.out | wc -l)" -eq $((n + c)) ]
ok $? "no filter: every decision and complete record ($n + $c)"

"$GOVGATE" audit query --json --decision deny a.jsonl b.jsonl >deny.json
ok $? "query --decision deny --json"
bad=0
while IFS= read -r l; do
	grep -qxF -- "$l" a.jsonl b.jsonl || bad=1
done <deny.json
[ -s deny.json ] && [ $bad -eq 0 ]
ok $? "--json prints the matching lines exactly as written"
d=$(grep -c '"event":"decision"' deny.json)
j=$(grep -c '"event":"complete"' deny.json)
[ "$d" -gt 0 ] && [ "$j" -gt 0 ] &&
    [ "$(grep '"event":"decision"' deny.json | grep -vc '"decision":"deny"')" -eq 0 ]
ok $? "denials only, with their complete records joined ($d + $j)"
for id in $(grep '"event":"complete"' deny.json | sed 's/.*"request_id":"\([^"]*\)".*/\1/'); do
	grep '"event":"decision"' deny.json | grep -q "\"request_id\":\"$id\"" ||
	    bad=1
done
ok $bad "each complete record's decision matched too"

[ "$(rows --department renshe --decision allow a.jsonl b.jsonl)" -eq \
    "$("$GOVGATE" audit query --json --department renshe --decision allow \
    a.jsonl b.jsonl | wc -l)" ]
ok $? "table and --json list the same records"
out=$("$GOVGATE" audit query --json --department renshe a.jsonl b.jsonl |
    grep '"event":"decision"' | grep -vc '"department":"renshe"')
[ "$out" -eq 0 ]
ok $? "--department filters on subject.department"
[ "$(rows --resource open-data a.jsonl b.jsonl)" -gt 0 ] &&
    [ "$(rows --resource nothing-here a.jsonl b.jsonl)" -eq 0 ]
ok $? "--resource"
[ "$(rows --grant NNZW-2026-0113 a.jsonl b.jsonl)" -gt 0 ] &&
    [ "$(rows --reason purpose_mismatch a.jsonl b.jsonl)" -gt 0 ] &&
    [ "$(rows --reason no_grant a.jsonl b.jsonl)" -eq 0 ]
ok $? "--grant and --reason"
[ "$(rows --request-id r-00000003 a.jsonl)" -eq 2 ]
ok $? "--request-id: the decision and its complete record"
[ "$(rows --since 2026-11-28T02:15:07.021Z --until 2026-11-28T10:15:07.025+08:00 a.jsonl)" -eq 4 ]
ok $? "--since inclusive, --until exclusive, offsets honoured"
[ "$(rows --event checkpoint a.jsonl b.jsonl)" -eq 10 ]
ok $? "--event checkpoint"

# Data subjects: mklog pseudonymises with this key; record 3's subject.
printf 'audit-mklog-key-0\n' >subject.key
chmod 600 subject.key
out=$("$GOVGATE" audit query --subject 450102199000000003 \
    --subject-key subject.key a.jsonl b.jsonl)
[ "$(printf '%s\n' "$out" | tail -n +2 | wc -l)" -eq 2 ] &&
    printf '%s\n' "$out" | grep -q 'r-00000003 .*/psb/v1/persons/{id}'
ok $? "--subject finds the citizen's records by HMAC"
! grep -q 450102199000000003 a.jsonl b.jsonl
ok $? "the citizen's id itself is not in the log"
[ "$(rows --subject 450102199000000004 --subject-key subject.key a.jsonl)" -eq 0 ]
ok $? "--subject of another citizen: no match here"
chmod 644 subject.key
"$GOVGATE" audit query --subject x --subject-key subject.key a.jsonl \
    >/dev/null 2>&1
ok $(($? != 1)) "a subject key readable by others is refused"

# Bad lines are reported and skipped; output stays sane.
cp a.jsonl bad.jsonl
printf 'not json\n{"seq":1,"ts":"x"}\n' >>bad.jsonl
"$GOVGATE" audit query bad.jsonl >out 2>err
rc=$?
bad=$(($(wc -l <a.jsonl) + 1))
[ $rc -eq 0 ] && grep -q "^bad.jsonl:$bad: not a record, skipped" err &&
    grep -q 'lines skipped' err
ok $? "query skips and names lines that are not records"
"$GOVGATE" audit query missing.jsonl >/dev/null 2>&1
ok $(($? != 1)) "query of a missing file: exit 1"

done_testing
