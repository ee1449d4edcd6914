#!/bin/sh
# run.sh - config goldens for `govgate check` (TAP).
#
# good/NAME.yaml must pass (exit 0). bad/NAME.yaml must fail (exit 1) with
# the first line of stderr equal to bad/NAME.err. Each file is copied into
# one temp folder beside a test PKI (certs/mkpki.sh), the tiny policy in
# policy/, the example policy in policies/, audit keys and GeoIP databases,
# so its relative paths resolve there. The temp folder's path is removed
# from messages before comparing ("audit.key: ..." rather than
# "/tmp/x/audit.key: ...").
#
# Environment: GOVGATE (the binary), top_srcdir; both have defaults.
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
GOVGATE=${GOVGATE:-${top_builddir:-$top_srcdir}/src/govgate}
here=$top_srcdir/tests/config
tmp=$(mktemp -d "${TMPDIR:-/tmp}/govgate-config.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
tmp=$(cd "$tmp" && pwd -P)

bail() {
	echo "Bail out! $*"
	exit 1
}

[ -x "$GOVGATE" ] || bail "no govgate binary at $GOVGATE"
[ -f "$top_srcdir/certs/mkpki.sh" ] || bail "certs/mkpki.sh is missing"
sh "$top_srcdir/certs/mkpki.sh" "$tmp/certs" >"$tmp/mkpki.log" 2>&1 ||
	bail "certs/mkpki.sh failed: $(tail -n 3 "$tmp/mkpki.log")"
cp -R "$here/policy" "$tmp/policy" || bail "cannot copy the tiny policy"
cp -R "$top_srcdir/policies" "$tmp/policies" ||
	bail "cannot copy policies/"
mkdir "$tmp/audit" "$tmp/log" || bail "mkdir"

# Audit keys: the good ones 0600; a readable one, a non-Ed25519 one and a
# short subject key for the check-phase cases.
(
	umask 077
	openssl genpkey -algorithm ed25519 -out "$tmp/audit.key" &&
	openssl genpkey -algorithm ed25519 -out "$tmp/audit-open.key" &&
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$tmp/audit-ec.key" &&
	head -c 32 /dev/urandom >"$tmp/subject.key" &&
	head -c 16 /dev/urandom >"$tmp/subject-short.key"
) >"$tmp/keys.log" 2>&1 || bail "cannot make audit keys: $(cat "$tmp/keys.log")"
chmod 644 "$tmp/audit-open.key"

# GeoIP databases for good/full.yaml, from the tools in contrib/.
geo=yes
printf '10.20.0.0/16 psb-net\n10.30.0.0/16 renshe-net\n' >"$tmp/zones.txt"
printf '1.0.1.0/24 CN\n' >"$tmp/countries.txt"
if ! perl "$top_srcdir/contrib/mkzones" "$tmp/zones.mmdb" \
    "$tmp/zones.txt" >"$tmp/geo.log" 2>&1 ||
    ! perl "$top_srcdir/contrib/mkcountries" "$tmp/countries.mmdb" \
    "$tmp/countries.txt" >>"$tmp/geo.log" 2>&1; then
	geo="no (contrib/mkzones: $(tail -n 1 "$tmp/geo.log"))"
fi

n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}

# check NAME.yaml: run govgate check in the temp folder; sets rc and
# leaves stderr, with the temp folder's path removed, in $tmp/err.
check() {
	(cd "$tmp" && "$GOVGATE" check -c "$1" >"$tmp/out" 2>"$tmp/err.raw")
	rc=$?
	sed "s|$tmp/||g" "$tmp/err.raw" >"$tmp/err"
}

for f in "$here"/good/*.yaml; do
	name=$(basename "$f" .yaml)
	if grep -q '^geoip:' "$f" && [ "$geo" != yes ]; then
		n=$((n + 1))
		echo "ok $n - good/$name # SKIP GeoIP databases: $geo"
		continue
	fi
	cp "$f" "$tmp/$name.yaml"
	check "$name.yaml"
	if [ "$rc" -eq 0 ]; then
		ok "good/$name"
	else
		not_ok "good/$name: exit $rc, want 0"
		sed 's/^/# /' "$tmp/err"
	fi
done

for f in "$here"/bad/*.yaml; do
	name=$(basename "$f" .yaml)
	if [ ! -f "$here/bad/$name.err" ]; then
		not_ok "bad/$name: no bad/$name.err"
		continue
	fi
	cp "$f" "$tmp/$name.yaml"
	check "$name.yaml"
	want=$(cat "$here/bad/$name.err")
	got=$(head -n 1 "$tmp/err")
	if [ "$rc" -eq 1 ] && [ "$got" = "$want" ]; then
		ok "bad/$name"
	else
		not_ok "bad/$name"
		echo "# exit $rc, want 1"
		echo "# got:  $got"
		echo "# want: $want"
	fi
	rm -f "$tmp/$name.yaml"
done

# The command line itself: usage errors exit 2, --help 0.
(cd "$tmp" && "$GOVGATE" check --bogus >/dev/null 2>&1)
[ $? -eq 2 ] && ok "usage: unknown option exits 2" ||
	not_ok "usage: unknown option exits 2"
(cd "$tmp" && "$GOVGATE" check -c >/dev/null 2>&1)
[ $? -eq 2 ] && ok "usage: -c without a file exits 2" ||
	not_ok "usage: -c without a file exits 2"
(cd "$tmp" && "$GOVGATE" check --help >"$tmp/out" 2>&1)
[ $? -eq 0 ] && grep -q '^usage: govgate check' "$tmp/out" &&
	ok "usage: --help prints usage, exits 0" ||
	not_ok "usage: --help prints usage, exits 0"
cp "$here/good/minimal.yaml" "$tmp/minimal.yaml"
(cd "$tmp" && "$GOVGATE" check --config minimal.yaml >"$tmp/out" 2>&1)
[ $? -eq 0 ] && grep -q '^minimal.yaml: configuration ok' "$tmp/out" &&
	ok "--config FILE; says configuration ok" ||
	not_ok "--config FILE; says configuration ok"
(cd "$tmp" && "$GOVGATE" check -q -c minimal.yaml >"$tmp/out" 2>/dev/null)
[ $? -eq 0 ] && [ ! -s "$tmp/out" ] && ok "-q prints nothing when ok" ||
	not_ok "-q prints nothing when ok"

echo "1..$n"
[ "$failed" -eq 0 ]
