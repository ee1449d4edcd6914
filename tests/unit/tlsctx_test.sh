#!/bin/sh
# tlsctx_test.sh - build the test PKI with certs/mkpki.sh plus the broken
# files tlsctx must refuse (stale CRL, expired server certificate, open key
# modes...), then run tests/unit/tlsctx_test on them (TAP).
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsctx_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
pki=$tmp/pki

bail() {
	echo "Bail out! $*"
	exit 1
}

sh "$top_srcdir/certs/mkpki.sh" "$pki" >"$tmp/mkpki.log" 2>&1 ||
	bail "certs/mkpki.sh failed: $(tail -n 5 "$tmp/mkpki.log")"

# The extras are made with mkpki's own CA databases.
cd "$pki" || bail "no $pki"
OPENSSL_CONF=$pki/ca/empty.cnf
PKI_SAN=DNS:gateway.test
export OPENSSL_CONF PKI_SAN
cnf=$pki/ca/openssl.cnf
log=$tmp/extras.log
run() {
	"$@" >>"$log" 2>&1 || bail "failed: $* ($(tail -n 3 "$log"))"
}

# CRLs: one past nextUpdate (M09), one about to expire, one of a CA the
# listener does not trust.
if command -v faketime >/dev/null 2>&1; then
	run faketime -f '-30d' openssl ca -batch -config "$cnf" -name ca_dept \
	    -gencrl -crldays 1 -out dept-stale.crl
	cat root.crl dept-stale.crl >stale.crl
fi
run openssl ca -batch -config "$cnf" -name ca_dept -gencrl -crldays 3 \
    -out dept-soon.crl
cat root.crl dept-soon.crl >soon.crl
run openssl ca -batch -config "$cnf" -name ca_wrong -gencrl -out wrong.crl

# Server certificates for the gateway key: expired, and expiring soon.
run openssl req -new -config ca/empty.cnf -key gateway.key \
    -subj "/CN=gateway.test" -out ca/gw.csr
run openssl ca -batch -config "$cnf" -name ca_server -notext \
    -extensions v3_server -in ca/gw.csr -startdate 20200101000000Z \
    -enddate 20210101000000Z -out gateway-expired.crt
run openssl ca -batch -config "$cnf" -name ca_server -notext \
    -extensions v3_server -in ca/gw.csr -days 10 -out gateway-soon.crt

# Keys with modes or forms the gateway refuses.
cp gateway.key gateway-0640.key && chmod 640 gateway-0640.key
cp gateway.key gateway-0604.key && chmod 604 gateway-0604.key
run openssl pkey -in gateway.key -aes256 -passout pass:secret \
    -out gateway-enc.key
chmod 600 gateway-enc.key
: >empty.pem
echo "not a PEM file" >garbage.pem

"$top_builddir/tests/unit/tlsctx_test" "$pki"
