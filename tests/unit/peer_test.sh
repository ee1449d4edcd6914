#!/bin/sh
# peer_test.sh - build the test PKI and the special certificates in a
# temporary directory, write what the openssl CLI says about each one into
# expect.txt, then run peer_test on them. TAP passes through.
set -eu

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
bin=$top_builddir/tests/unit/peer_test
# Debian's python3-cryptography, whatever python3 is first in PATH.
py=${PYTHON3:-/usr/bin/python3}
command -v "$py" >/dev/null 2>&1 || py=python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/peer_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

bail() {
	echo "Bail out! $*"
	[ -f "$tmp/setup.log" ] && sed 's/^/# /' "$tmp/setup.log"
	exit 1
}

[ -x "$bin" ] || bail "$bin not built"
sh "$top_srcdir/certs/mkpki.sh" "$tmp/pki" >"$tmp/setup.log" 2>&1 ||
	bail "certs/mkpki.sh failed"
"$py" "$top_srcdir/tests/unit/mkcerts_special.py" "$tmp/pki" \
	>>"$tmp/setup.log" 2>&1 || bail "mkcerts_special.py failed"

# path serial sha256 notAfter subject issuer, as the CLI renders them.
export OPENSSL_CONF=/dev/null
cd "$tmp/pki"
for f in *.crt special/*.crt; do
	if ! o=$(openssl x509 -in "$f" -noout -serial -fingerprint -sha256 \
	    -enddate -dateopt iso_8601 -subject -issuer \
	    -nameopt RFC2253,-esc_msb 2>/dev/null); then
		printf '%s\t!\n' "$f"
		continue
	fi
	serial=$(printf '%s\n' "$o" | sed -n 's/^serial=//p' |
	    sed 's/^\(-\{0,1\}\)0*\(.\)/\1\2/')
	sha=$(printf '%s\n' "$o" | sed -n 's/^sha256 Fingerprint=//p' |
	    tr -d : | tr A-F a-f)
	end=$(printf '%s\n' "$o" | sed -n 's/^notAfter=//p')
	subj=$(printf '%s\n' "$o" | sed -n 's/^subject=//p')
	iss=$(printf '%s\n' "$o" | sed -n 's/^issuer=//p')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$f" "$serial" "$sha" "$end" \
	    "$subj" "$iss"
done >expect.txt || bail "openssl x509 failed"
cd - >/dev/null

PEER_CERTS=$tmp/pki "$bin"
