#!/bin/sh
# certs/mkpki.sh - build govgate's demo/test PKI. NOT FOR PRODUCTION.
#
# Usage: sh certs/mkpki.sh [OUTDIR]        (default: certs/out)
#
# POSIX sh and the openssl CLI only; EC P-256 keys unless a certificate is
# meant to be weak. Every openssl command reads a config this script writes
# (OPENSSL_CONF points at an empty file), so no system defaults leak in.
# OUTDIR belongs to this script: a previous run's OUTDIR (marked by
# .govgate-pki) is emptied first, any other non-empty directory is refused.
# What each file is: OUTDIR/manifest.txt and certs/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}

umask 077
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
	if [ ! -f "$out/.govgate-pki" ]; then
		echo "mkpki: $out is not empty and not a govgate PKI; refusing" >&2
		exit 1
	fi
	# Marked as ours: empty it, subdirectories (ca/, special/) included.
	(cd "$out" && rm -rf -- ./* ./.[!.]* ./..?*)
fi
mkdir -p "$out/ca"
out=$(cd "$out" && pwd)
: >"$out/.govgate-pki"
ca=$out/ca
log=$ca/openssl.log
cnf=$ca/openssl.cnf
: >"$log"
: >"$ca/empty.cnf"
OPENSSL_CONF=$ca/empty.cnf
PKI_SAN=DNS:unused.invalid
export OPENSSL_CONF PKI_SAN
: >"$out/manifest.txt"

org_root='/C=CN/O=Nanning E-Gov'
org_dept='/C=CN/ST=Guangxi/L=Nanning'
renshe_o='Nanning Human Resources and Social Security Bureau'

# run CMD...: run an openssl command quietly; on failure show its output.
run() {
	if ! "$@" >>"$log" 2>&1; then
		echo "mkpki: failed: $*" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
}

# note FILE TEXT: one manifest line.
note() {
	printf '%-32s %s\n' "$1" "$2" >>"$out/manifest.txt"
}

# key NAME [rsa1024]: a private key NAME.key, mode 0600 by the umask.
key() {
	if [ "${2:-}" = rsa1024 ]; then
		run openssl genpkey -algorithm RSA \
		    -pkeyopt rsa_keygen_bits:1024 -out "$out/$1.key"
	else
		run openssl genpkey -algorithm EC \
		    -pkeyopt ec_paramgen_curve:P-256 -out "$out/$1.key"
	fi
}

# cadb NAME CERT KEY: an `openssl ca` section ca_NAME with its database.
cadb() {
	mkdir -p "$ca/$1/newcerts"
	: >"$ca/$1/index.txt"
	echo 1000 >"$ca/$1/crlnumber"
	cat >>"$cnf" <<EOF

[ca_$1]
dir = $ca/$1
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
crlnumber = \$dir/crlnumber
certificate = $out/$2
private_key = $out/$3
rand_serial = yes
unique_subject = no
default_md = sha256
default_days = 365
default_crl_days = 365
policy = policy_any
email_in_dn = no
copy_extensions = none
crl_extensions = crl_ext
EOF
}

# issue CA NAME EXT SUBJECT [openssl ca options...]: NAME.key, NAME.crt.
issue() {
	_ca=$1 _name=$2 _ext=$3 _subj=$4
	shift 4
	if [ ! -f "$out/$_name.key" ]; then
		key "$_name"
	fi
	run openssl req -new -config "$ca/empty.cnf" -key "$out/$_name.key" \
	    -subj "$_subj" -out "$ca/$_name.csr"
	run openssl ca -batch -config "$cnf" -name "ca_$_ca" -notext \
	    -preserveDN -extensions "$_ext" -in "$ca/$_name.csr" \
	    -out "$out/$_name.crt" "$@"
}

# chain NAME CA-FILE: NAME.chain.pem = leaf + intermediate.
chain() {
	cat "$out/$1.crt" "$out/$2" >"$out/$1.chain.pem"
}

cat >"$cnf" <<'EOF'
# openssl.cnf - written by certs/mkpki.sh for the demo/test PKI only.
# Used as: openssl ca -config THIS -name ca_dept ...  ($ENV::PKI_SAN falls
# back to the value below when the variable is not set).
PKI_SAN = DNS:unused.invalid

[policy_any]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[crl_ext]
authorityKeyIdentifier = keyid:always

[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[v3_ica]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $ENV::PKI_SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = $ENV::PKI_SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client_serverauth]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client_noeku]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client_nodigsig]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

# Self-signed roots: the real one and an untrusted look-alike.
selfsigned_ca() { # NAME SUBJECT
	key "$1"
	run openssl req -x509 -new -config "$cnf" -extensions v3_root \
	    -key "$out/$1.key" -subj "$2" -sha256 -days 7300 \
	    -out "$out/$1.pem"
}
selfsigned_ca root-ca "$org_root/CN=Nanning E-Gov Root CA"
note root-ca.pem "trust anchor: root CA (clients trust it for gateway.crt)"
note root-ca.key "root CA private key"
selfsigned_ca wrong-root-ca "/C=CN/O=Untrusted Test/CN=Untrusted Test Root CA"
note wrong-root-ca.pem "an unrelated root CA nobody trusts (issues wrong-root)"
note wrong-root-ca.key "its private key"
selfsigned_ca backend-ca "/C=CN/O=Nanning E-Gov Backends/CN=Backend Test CA"
note backend-ca.pem "CA of the backends' servers and of gateway-client"
note backend-ca.key "backend CA private key"
cadb root root-ca.pem root-ca.key
cadb wrong wrong-root-ca.pem wrong-root-ca.key
cadb backend backend-ca.pem backend-ca.key

# Intermediates under the root: departments (clients) and servers.
issue root dept-ca v3_ica "$org_root/CN=Nanning E-Gov Department CA" \
    -days 3650
mv "$out/dept-ca.crt" "$out/dept-ca.pem"
note dept-ca.pem "department CA (pathlen:0): issues every client certificate"
note dept-ca.key "department CA private key"
issue root server-ca v3_ica "$org_root/CN=Nanning E-Gov Server CA" -days 3650
mv "$out/server-ca.crt" "$out/server-ca.pem"
note server-ca.pem "server CA (pathlen:0): issues the gateway's certificate"
note server-ca.key "server CA private key"
cadb dept dept-ca.pem dept-ca.key
cadb server server-ca.pem server-ca.key
cat "$out/root-ca.pem" "$out/dept-ca.pem" >"$out/departments-ca.pem"
note departments-ca.pem "client_ca bundle: root CA + department CA"

# The gateway: server certificate (sent with its intermediate) and the
# client certificate it shows to backends.
PKI_SAN='DNS:gateway.test,DNS:localhost,IP:127.0.0.1,IP:::1'
issue server gateway-leaf v3_server "$org_root/CN=gateway.test"
mv "$out/gateway-leaf.key" "$out/gateway.key"
cat "$out/gateway-leaf.crt" "$out/server-ca.pem" >"$out/gateway.crt"
rm -f "$out/gateway-leaf.crt"
note gateway.crt "gateway server certificate chain: leaf + server CA"
note gateway.key "gateway server private key"
PKI_SAN='DNS:gateway-client.test'
issue backend gateway-client v3_client "$org_root/CN=gateway-client"
note gateway-client.crt "gateway's client certificate for mTLS to backends"
note gateway-client.key "its private key"
PKI_SAN='IP:127.0.0.1,DNS:localhost,DNS:backend.test'
issue backend backend v3_server "/C=CN/O=Nanning E-Gov Backends/CN=backend.test"
note backend.crt "backend server certificate (127.0.0.1, localhost)"
note backend.key "backend server private key"

# One client per example department.
for d in \
    "gongan|Nanning Public Security Bureau|gongan-household-app" \
    "renshe|$renshe_o|renshe-pension-app" \
    "minzheng|Nanning Civil Affairs Bureau|minzheng-marriage-app" \
    "weijian|Nanning Health Commission|weijian-vaccination-app" \
    "shichang|Nanning Market Regulation Administration|shichang-license-app" \
    "budongchan|Nanning Real Estate Registration Center|budongchan-title-app" \
    "dashuju|Nanning Big Data Development Bureau|dashuju-exchange-app"; do
	id=${d%%|*}
	rest=${d#*|}
	o=${rest%%|*}
	cn=${rest#*|}
	PKI_SAN="URI:urn:nanning-egov:dept:$id:$cn,DNS:$cn.egov.test"
	issue dept "$id" v3_client \
	    "$org_dept/O=$o/OU=Information Center/CN=$cn"
	chain "$id" dept-ca.pem
	note "$id.crt" "client $cn (O=$o)"
	note "$id.chain.pem" "the same + department CA"
	note "$id.key" "its private key"
done

# Certificates the gateway must refuse. All name the renshe department, so
# only the TLS checks can stop them.
bad() { # NAME WHAT ISSUER-SECTION EXT [openssl ca options...]
	_bn=$1 _what=$2 _bca=$3 _bext=$4
	shift 4
	PKI_SAN="URI:urn:nanning-egov:dept:renshe:bad-$_bn"
	issue "$_bca" "$_bn" "$_bext" \
	    "$org_dept/O=$renshe_o/OU=Information Center/CN=bad-$_bn" "$@"
	if [ "$_bca" = dept ]; then
		chain "$_bn" dept-ca.pem
	else
		cp "$out/$_bn.crt" "$out/$_bn.chain.pem"
	fi
	note "$_bn.crt" "BAD: $_what"
	note "$_bn.chain.pem" "the same + its intermediate, if any"
	note "$_bn.key" "its private key"
}
bad expired "expired (2020-01-01 .. 2021-01-01)" dept v3_client \
    -startdate 20200101000000Z -enddate 20210101000000Z
bad not-yet-valid "not yet valid (from 2040-01-01)" dept v3_client \
    -startdate 20400101000000Z -enddate 20410101000000Z
bad revoked "revoked in dept-ca.crl" dept v3_client
bad wrong-root "signed by wrong-root-ca" wrong v3_client
bad serverauth-only "EKU serverAuth only" dept v3_client_serverauth
bad no-eku "no extendedKeyUsage" dept v3_client_noeku
bad ca-as-leaf "CA:TRUE leaf with clientAuth" dept v3_client_ca
bad sha1 "signed with ecdsa-with-SHA1" dept v3_client -md sha1
key rsa1024 rsa1024
bad rsa1024 "RSA 1024-bit key" dept v3_client
bad no-digitalsignature "keyUsage keyEncipherment only" dept \
    v3_client_nodigsig
PKI_SAN="URI:urn:nanning-egov:dept:renshe:bad-self-signed"
key self-signed
run openssl req -x509 -new -config "$cnf" -extensions v3_client \
    -key "$out/self-signed.key" -sha256 -days 365 \
    -subj "$org_dept/O=$renshe_o/OU=Information Center/CN=bad-self-signed" \
    -out "$out/self-signed.crt"
note self-signed.crt "BAD: self-signed leaf (clientAuth)"
note self-signed.key "its private key"

# Revocation lists.
run openssl ca -batch -config "$cnf" -name ca_dept \
    -revoke "$out/revoked.crt" -crl_reason keyCompromise
run openssl ca -batch -config "$cnf" -name ca_dept -gencrl \
    -out "$out/dept-ca.crl"
run openssl ca -batch -config "$cnf" -name ca_root -gencrl \
    -out "$out/root.crl"
cat "$out/root.crl" "$out/dept-ca.crl" >"$out/departments.crl"
note root.crl "CRL of the root CA (revokes nothing)"
note dept-ca.crl "CRL of the department CA (revokes revoked.crt)"
note departments.crl "root.crl + dept-ca.crl: the listener's crl file"
note ca/ "openssl ca databases and openssl.cnf (revoke more here)"
note manifest.txt "this list"

rm -f "$ca"/*.csr
# Certificates and CRLs are public; keys stay 0600.
chmod 644 "$out"/*.pem "$out"/*.crt "$out"/*.crl "$out/manifest.txt"
chmod 600 "$out"/*.key
