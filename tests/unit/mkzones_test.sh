#!/bin/sh
# mkzones_test.sh - contrib/mkzones and contrib/mkcountries: what they
# accept, what they refuse (with LIST:LINE messages), exit codes (TAP).
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkzones_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
mkzones="perl $top_srcdir/contrib/mkzones"
mkcountries="perl $top_srcdir/contrib/mkcountries"
n=0
failed=0

ok() { # COND-STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		sed 's/^/# /' "$tmp/err"
	fi
}

# refuse NAME LINE EXPECTED-MESSAGE: mkzones must exit 1, print
# "<stdin>:1: EXPECTED..." and write nothing.
refuse() {
	rm -f "$tmp/out.mmdb"
	printf '%s\n' "$2" | $mkzones "$tmp/out.mmdb" >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc -eq 1 ] && grep -qF "<stdin>:1: $3" "$tmp/err" &&
	    [ ! -e "$tmp/out.mmdb" ]
	ok $? "mkzones refuses $1"
}

printf '10.0.0.0/8 intranet\n10.30.0.0/16 renshe-net # x\n\n# c\n' \
    >"$tmp/list"
$mkzones "$tmp/out.mmdb" "$tmp/list" 2>"$tmp/err"
[ $? -eq 0 ] && [ -s "$tmp/out.mmdb" ] &&
    [ -z "$(ls -A "$tmp" | grep '^\.out')" ]
ok $? "mkzones writes a valid list, no temp file left"
$mkzones "$tmp/out2.mmdb" <"$tmp/list" 2>"$tmp/err"
ok $? "mkzones reads stdin"
$mkzones --help >"$tmp/err" 2>&1 && grep -q '^usage: mkzones' "$tmp/err"
ok $? "mkzones --help"
$mkzones >/dev/null 2>"$tmp/err"
[ $? -eq 2 ]
ok $? "mkzones without arguments exits 2"
$mkzones "$tmp/x.mmdb" "$tmp/nonexistent" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'nonexistent' "$tmp/err"
ok $? "mkzones on a missing list exits 2"

refuse "host bits" "10.0.0.1/8 a" \
    'host bits set in "10.0.0.1/8" (did you mean 10.0.0.0/8?)'
refuse "a /33" "1.2.3.0/33 a" 'prefix length /33 out of range'
refuse "a leading-zero octet" "010.1.1.1 a" 'invalid IPv4 address "010.1.1.1"'
refuse "an octet over 255" "10.256.0.0/16 a" 'invalid IPv4 address'
refuse "a name for an address" "intranet 10.0.0.0/8" \
    'invalid address "intranet"'
refuse "a missing zone" "10.0.0.0/8" 'expected "CIDR zone", found 1 field'
refuse "a third field" "10.0.0.0/8 a b" \
    'expected "CIDR zone", found 3 fields'
refuse "a bad zone name" "10.0.0.0/8 bad*zone" 'invalid zone "bad*zone"'
refuse "a 64-character zone" \
    "10.0.0.0/8 $(printf '%064d' 0)" 'invalid zone'
refuse "IPv4-mapped IPv6" "::ffff:10.0.0.0/104 a" \
    '"::ffff:10.0.0.0/104" overlaps the IPv4-mapped range ::ffff:0:0/96'
refuse "::/0 (would cover IPv4)" "::/0 a" \
    '"::/0" overlaps the IPv4-compatible range ::/96'
refuse "::1" "::1 a" '"::1" overlaps the IPv4-compatible range ::/96'
refuse "IPv6 host bits" "2001:db8::1/64 a" \
    'host bits set in "2001:db8::1/64" (did you mean 2001:db8::/64?)'

rm -f "$tmp/out.mmdb"
printf '10.0.0.0/8 a\n# c\n10.0.0.0/8 b\n' |
    $mkzones "$tmp/out.mmdb" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] &&
    grep -qF '<stdin>:3: network 10.0.0.0/8 already listed at line 1' \
	"$tmp/err" && [ ! -e "$tmp/out.mmdb" ]
ok $? "mkzones refuses a network listed twice, naming both lines"

printf '10.0.0.1/8 a\nfoo\n10.0.0.0/8 ok\n1.2.3.0/33 b\n' |
    $mkzones "$tmp/out.mmdb" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && [ "$(grep -c '^<stdin>:[124]: ' "$tmp/err")" -eq 3 ]
ok $? "mkzones reports every bad line, not only the first"

printf '1.0.1.0/24 CN\n2400:3200::/32 CN\n' |
    $mkcountries "$tmp/c.mmdb" 2>"$tmp/err" && [ -s "$tmp/c.mmdb" ]
ok $? "mkcountries writes a valid list"
printf '1.0.1.0/24 cn\n' | $mkcountries "$tmp/c2.mmdb" 2>"$tmp/err"
[ $? -eq 1 ] && grep -qF '<stdin>:1: invalid country "cn"' "$tmp/err"
ok $? "mkcountries refuses a lower-case code"
$mkcountries --help >"$tmp/err" 2>&1 &&
    grep -q '^usage: mkcountries' "$tmp/err"
ok $? "mkcountries --help"

echo "1..$n"
[ $failed -eq 0 ]
