#!/bin/sh
# run.sh - run the example policy's test cases (tests/policy/*.yaml) with
# `govgate policy test --coverage` against policies/, and check that a file
# of deliberately wrong expectations fails as it should. Prints TAP.
#
# It builds the test GeoIP databases from zones.txt and countries.txt with
# contrib/mkzones and contrib/mkcountries, and writes a govgate.yaml into a
# temporary folder; the listener, upstream and audit files it names are
# never opened by `policy test`.
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
GOVGATE=${GOVGATE:-$top_builddir/src/govgate}
here=$top_srcdir/tests/policy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/policy_cases.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

bail() {
	echo "Bail out! $*"
	exit 1
}

if ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
	echo "1..0 # SKIP libmaxmind-db-writer-perl is not installed"
	exit 0
fi
[ -x "$GOVGATE" ] || bail "no govgate binary at $GOVGATE"

perl "$top_srcdir/contrib/mkzones" "$tmp/zones.mmdb" "$here/zones.txt" ||
	bail "mkzones $here/zones.txt failed"
perl "$top_srcdir/contrib/mkcountries" "$tmp/countries.mmdb" \
	"$here/countries.txt" || bail "mkcountries $here/countries.txt failed"

# Upstream names are those of the example catalogue; nothing connects.
cat > "$tmp/govgate.yaml" <<CONF
name: policy-cases
policy: $top_srcdir/policies
listeners:
  - name: egov
    address: "127.0.0.1:8443"
    tls:
      certificate: gateway.crt
      key: gateway.key
      client_ca: departments-ca.pem
      client_auth: require
  - name: public
    address: "127.0.0.1:8444"
    tls:
      certificate: gateway.crt
      key: gateway.key
      client_ca: departments-ca.pem
      client_auth: optional
upstreams:
  psb-api: { servers: ["127.0.0.1:18001"] }
  hrss-api: { servers: ["127.0.0.1:18002"] }
  civil-api: { servers: ["127.0.0.1:18003"] }
  health-api: { servers: ["127.0.0.1:18004"] }
  market-api: { servers: ["127.0.0.1:18005"] }
  estate-api: { servers: ["127.0.0.1:18006"] }
  bigdata-api: { servers: ["127.0.0.1:18007"] }
audit:
  path: audit.jsonl
  signing_key: audit.key
geoip:
  country_db: countries.mmdb
  zone_db: zones.mmdb
timezone: Asia/Shanghai
CONF

n=0
fails=0
ok() { # status description [output file]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		fails=$((fails + 1))
		echo "not ok $n - $2"
		if [ -n "${3:-}" ] && [ -f "$3" ]; then
			sed 's/^/# /' "$3"
		fi
	fi
}

echo "1..7"

# 1-3: the example policy passes all of its cases, and they leave nothing
# unexercised.
"$GOVGATE" policy test -c "$tmp/govgate.yaml" "$here"/*.yaml --coverage \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err" >"$tmp/all"
ok $([ $rc -eq 0 ]; echo $?) "policy test exits 0 (got $rc)" "$tmp/all"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -n 1)
ok $(echo "$summary" | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; echo $?) \
	"summary: ${summary:-none}" "$tmp/all"
ok $(! grep -q '^unexercised ' "$tmp/out"; echo $?) \
	"coverage: nothing unexercised" "$tmp/all"

# 4-7: wrong expectations fail, one line each, and the right one passes.
"$GOVGATE" policy test -c "$tmp/govgate.yaml" \
	"$here"/fail/wrong-expectations.yaml >"$tmp/fout" 2>"$tmp/ferr"
rc=$?
cat "$tmp/fout" "$tmp/ferr" >"$tmp/fall"
ok $([ $rc -eq 1 ]; echo $?) "wrong expectations: exit 1 (got $rc)" \
	"$tmp/fall"
ok $(grep -Eq '^1 passed, 3 failed$' "$tmp/fout"; echo $?) \
	"wrong expectations: summary 1 passed, 3 failed" "$tmp/fall"
lines=$(grep -Evc '^$|^[0-9]+ passed, [0-9]+ failed$' "$tmp/fout")
named=$(grep -c 'wrong: ' "$tmp/fout")
ok $([ "$lines" -eq 3 ] && [ "$named" -eq 3 ]; echo $?) \
	"wrong expectations: one line per failure ($lines lines, $named named)" \
	"$tmp/fall"
ok $(! grep -q 'right: ' "$tmp/fout"; echo $?) \
	"wrong expectations: the passing case is not reported" "$tmp/fall"

[ $fails -eq 0 ]
