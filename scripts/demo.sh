#!/bin/sh
# shellcheck disable=SC2317 # cleanup and interrupted run from traps
# scripts/demo.sh - the quick start: install the Debian packages, build
# govgate, make a demo PKI, audit key and GeoIP databases in demo/, then run
# the gateway with the example policy (policies/) in front of canned
# department backends (contrib/demo-backend.py) and print curl lines to try.
# It stays in the foreground; Ctrl-C stops the gateway and the backends.
#
# Environment:
#   GOVGATE_SKIP_DEPS=1        skip scripts/deps.sh (apt-get)
#   GOVGATE_DEMO_PORT=N        the gateway's port (default 8443); the seven
#                              backends listen on N+1 .. N+7
#   GOVGATE_DEMO_ADMIN_PORT=N  the admin listener (default 9190)
#   GOVGATE_DEMO_BINARY=PATH   run this govgate instead of building one
#                              in _build/demo (the test suite uses it)
#
# demo/ belongs to this script: it is emptied and rebuilt on every run.
# Never use its keys and certificates for anything but the demo.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

port=${GOVGATE_DEMO_PORT:-8443}
admin_port=${GOVGATE_DEMO_ADMIN_PORT:-9190}
demo=$top/demo
python=/usr/bin/python3
gw_pid=
be_pid=

say() { printf '== %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

for p in "$port" "$admin_port"; do
	case $p in
	'' | *[!0-9]*) die "not a port number: '$p'" ;;
	esac
done
if [ "$port" -lt 1 ] || [ "$port" -gt 65528 ] || [ "$admin_port" -lt 1 ] ||
	[ "$admin_port" -gt 65535 ]; then
	die "port out of range (GOVGATE_DEMO_PORT at most 65528: the backends use the next 7)"
fi

# alive PID: the process exists and is not a zombie waiting to be reaped
# (kill -0 cannot tell: a child stays a zombie until the shell waits).
alive() {
	st=
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	case ${st##*) } in
	Z* | X*) return 1 ;;
	esac
	return 0
}

# stop_proc PID NAME: SIGTERM, wait up to 15 s (then SIGKILL), reap; sets
# stop_rc to its exit status.
stop_proc() {
	stop_rc=0
	if alive "$1"; then
		kill -TERM "$1" 2>/dev/null || true
		n=0
		while alive "$1"; do
			n=$((n + 1))
			if [ "$n" -eq 150 ]; then
				printf 'demo: %s (pid %s) ignored SIGTERM for 15 s; killing it\n' \
				    "$2" "$1" >&2
				kill -KILL "$1" 2>/dev/null || true
			fi
			sleep 0.1
		done
	fi
	wait "$1" 2>/dev/null || stop_rc=$?
}

# Stop the gateway first (it drains in-flight requests, which still need
# their backends), then the backends. Runs once, on any way out.
cleanup() {
	trap '' INT TERM
	trap - EXIT
	rc=0
	if [ -n "$gw_pid" ]; then
		stop_proc "$gw_pid" "govgate serve"
		gw_pid=
		if [ "$stop_rc" -ne 0 ]; then
			printf 'demo: govgate serve exited with status %s\n' "$stop_rc" >&2
			rc=1
		fi
	fi
	if [ -n "$be_pid" ]; then
		stop_proc "$be_pid" "demo-backend.py"
		be_pid=
	fi
	return "$rc"
}
interrupted() {
	printf '\n'
	say "stopping govgate and the demo backends"
	if cleanup; then
		say "stopped; the audit trail stays in demo/audit/audit.jsonl"
		exit 0
	fi
	exit 1
}
trap cleanup EXIT
trap interrupted INT TERM

# --- 1. Debian packages ---------------------------------------------------
if [ "${GOVGATE_SKIP_DEPS:-0}" != 1 ]; then
	say "installing the Debian packages (scripts/deps.sh)"
	sh scripts/deps.sh
fi

for c in curl perl openssl; do
	command -v "$c" >/dev/null 2>&1 ||
		die "$c is missing; run sh scripts/deps.sh (or this script without GOVGATE_SKIP_DEPS=1)"
done
[ -x "$python" ] ||
	die "$python is missing; run sh scripts/deps.sh (or this script without GOVGATE_SKIP_DEPS=1)"

# Refuse to wipe demo/ under a demo that is still running (curl: exit 7 is
# "connection refused").
rc=0
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" || rc=$?
if [ "$rc" -ne 7 ]; then
	die "something already listens on 127.0.0.1:$port (another demo?); stop it or set GOVGATE_DEMO_PORT"
fi

# --- 2. build ---------------------------------------------------------------
if [ -n "${GOVGATE_DEMO_BINARY:-}" ]; then
	govgate=$GOVGATE_DEMO_BINARY
	[ -x "$govgate" ] || die "GOVGATE_DEMO_BINARY: $govgate is not an executable"
else
	build=$top/_build/demo
	log=$build/build.log
	say "building govgate in _build/demo (log: _build/demo/build.log)"
	mkdir -p "$build"
	: >"$log"
	jobs=$(nproc 2>/dev/null || echo 2)
	if ! { autoreconf -fi &&
		{ [ -f "$build/config.status" ] ||
			(cd "$build" && "$top/configure" -q); } &&
		make -C "$build" -s -j"$jobs"; } >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "the build failed; the whole log is in _build/demo/build.log"
	fi
	govgate=$build/src/govgate
fi

# --- 3. demo/: PKI, audit key, GeoIP databases, govgate.yaml ---------------
if [ -e "$demo" ] && [ ! -f "$demo/.govgate-demo" ]; then
	die "$demo exists and was not made by this script; move it away first"
fi
rm -rf "$demo"
mkdir -p "$demo/audit"
echo "made by scripts/demo.sh; emptied on every run" >"$demo/.govgate-demo"

say "making the demo PKI (certs/mkpki.sh demo/pki)"
sh certs/mkpki.sh "$demo/pki" >/dev/null

say "making the audit signing key (govgate audit keygen --out demo/audit)"
"$govgate" audit keygen --out "$demo/audit" >/dev/null

say "building the zone and country databases from contrib/demo-*.txt"
perl contrib/mkzones "$demo/zones.mmdb" contrib/demo-zones.txt
perl contrib/mkcountries "$demo/countries.mmdb" contrib/demo-countries.txt

b=$((port + 1))
cat >"$demo/govgate.yaml" <<EOF
# demo/govgate.yaml - written by scripts/demo.sh for the quick start; it is
# rewritten on every run. contrib/govgate.yaml is the annotated example for
# a real deployment. Relative paths are relative to this file's folder;
# the policy is the example one in the source tree, used read-only.
name: demo-gw
workers: 1
policy: "$top/policies/"

listeners:
  - name: egov
    address: "127.0.0.1:$port"
    tls:
      certificate: pki/gateway.crt     # gateway.test, localhost, 127.0.0.1
      key: pki/gateway.key
      client_ca: pki/departments-ca.pem
      crl: pki/departments.crl
      # optional, so the demo can show what a caller without a certificate
      # gets: open resources, and 403 no_client_cert for everything else.
      # A real extranet listener says "require" (no certificate, no TLS).
      client_auth: optional
      min_version: TLSv1.2

# The seven departments' backends: contrib/demo-backend.py, one process.
upstreams:
  psb-api:     { servers: ["127.0.0.1:$b"],         connect_timeout: 1s, read_timeout: 5s }
  hrss-api:    { servers: ["127.0.0.1:$((b + 1))"], connect_timeout: 1s, read_timeout: 5s }
  civil-api:   { servers: ["127.0.0.1:$((b + 2))"], connect_timeout: 1s, read_timeout: 5s }
  health-api:  { servers: ["127.0.0.1:$((b + 3))"], connect_timeout: 1s, read_timeout: 5s }
  market-api:  { servers: ["127.0.0.1:$((b + 4))"], connect_timeout: 1s, read_timeout: 5s }
  estate-api:  { servers: ["127.0.0.1:$((b + 5))"], connect_timeout: 1s, read_timeout: 5s }
  bigdata-api: { servers: ["127.0.0.1:$((b + 6))"], connect_timeout: 1s, read_timeout: 5s }

audit:
  path: audit/audit.jsonl
  signing_key: audit.key               # public half: audit.pub, for audit verify
  checkpoint_interval: 1s

geoip:
  country_db: countries.mmdb           # from contrib/demo-countries.txt
  zone_db: zones.mmdb                  # from contrib/demo-zones.txt

admin:
  address: "127.0.0.1:$admin_port"

limits:
  max_connections: 256
  header_timeout: 5s
  idle_timeout: 15s
  handshake_timeout: 5s
  max_header_bytes: 16k
  max_body_bytes: 1m

timezone: Asia/Shanghai
EOF

# --- 4. check -----------------------------------------------------------------
say "govgate check -c demo/govgate.yaml"
"$govgate" check -c "$demo/govgate.yaml" ||
	die "govgate check refused demo/govgate.yaml (see above)"

if ! "$govgate" serve --help >/dev/null 2>&1; then
	die "this govgate has no 'serve' command yet: demo/ is ready, but there is no gateway to run"
fi

# --- 5. backends --------------------------------------------------------------
say "starting the demo backends on 127.0.0.1:$b-$((b + 6)) (log: demo/backends.log)"
"$python" "$top/contrib/demo-backend.py" --port "$b" --ready "$demo/backends.ready" \
    >"$demo/backends.log" 2>&1 &
be_pid=$!
n=0
while [ ! -f "$demo/backends.ready" ]; do
	if ! alive "$be_pid"; then
		cat "$demo/backends.log" >&2
		die "the demo backends did not start"
	fi
	n=$((n + 1))
	[ "$n" -lt 100 ] || die "the demo backends did not start within 10 s"
	sleep 0.1
done

# --- 6. the gateway -----------------------------------------------------------
say "starting govgate serve -c demo/govgate.yaml (its log follows on this terminal)"
"$govgate" serve -c "$demo/govgate.yaml" </dev/null &
gw_pid=$!
n=0
while :; do
	if ! alive "$gw_pid"; then
		wait "$gw_pid" || true
		gw_pid=
		die "govgate serve exited during startup (its log is above)"
	fi
	# Any HTTP answer means it accepts; 7 is "connection refused".
	rc=0
	curl -s -o /dev/null --max-time 2 --cacert "$demo/pki/root-ca.pem" \
	    -H 'X-Operator-Id: demo.sh-startup-probe' \
	    "https://localhost:$port/" || rc=$?
	[ "$rc" -eq 7 ] || break
	n=$((n + 1))
	[ "$n" -lt 200 ] || die "govgate serve did not accept connections within 20 s"
	sleep 0.1
done

# --- 7. what to try -------------------------------------------------------------
u="https://localhost:$port"
c="curl -sS -w '\\nHTTP %{http_code}\\n' --cacert demo/pki/root-ca.pem"
id=450103195803120017
cert() { printf -- '--cert demo/pki/%s.chain.pem --key demo/pki/%s.key' "$1" "$1"; }
try() { # comment curl-arguments
	printf '# %s\n%s %s\n' "$1" "$c" "$2"
}

cat <<EOF

govgate is running on $u with the example policy (policies/) in front of
seven demo backends. Every response carries X-Govgate-Request-Id; the demo
backends echo the X-Govgate-* headers they received under "_received".
Each curl line sends from a department's network (--interface picks the
source zone, see contrib/demo-zones.txt). Paste them in another terminal:

cd "$top"

EOF
try "200 grant: renshe (人社局) reads a person under grant NNZW-2026-0113 for pension checks; masked: id 450103********0017, name 黃**, phone 138****8000, no photo" \
    "$(cert renshe) --interface 127.30.0.21 -H 'X-Purpose: pension-eligibility' -H 'X-Operator-Id: u1043' $u/psb/v1/persons/$id"
try "200 owner: gongan (公安局) reads its own record, unmasked" \
    "$(cert gongan) --interface 127.10.0.11 $u/psb/v1/persons/$id"
try "200 unconditional: renshe reads an enterprise licence (無條件共享: no grant needed)" \
    "$(cert renshe) --interface 127.30.0.21 $u/market/v1/enterprises/91450100MA5L3X2K7Q"
try "200 open: published statistics need no certificate at all" \
    "$u/open/v1/stats/population/2025"
try "403 no_client_cert: no certificate, and the resource is not open" \
    "$u/psb/v1/persons/$id"
try "403 no_grant: dashuju (大數(shù)據(jù)局) holds a valid certificate but no approval for the household registry" \
    "$(cert dashuju) --interface 127.80.0.5 -H 'X-Purpose: pension-eligibility' $u/psb/v1/persons/$id"
try "403 purpose_required: renshe's grants need a purpose (X-Purpose)" \
    "$(cert renshe) --interface 127.30.0.21 $u/psb/v1/persons/$id"
try "403 not_shared: ID photos are 不予共享 (sharing: none); only gongan reads them" \
    "$(cert renshe) --interface 127.30.0.21 -H 'X-Purpose: pension-eligibility' $u/psb/v1/persons/$id/photo"
try "403 zone_mismatch: renshe's certificate calling from civil-net (127.40.x), not renshe-net" \
    "$(cert renshe) --interface 127.40.0.21 -H 'X-Purpose: pension-eligibility' $u/psb/v1/persons/$id"
try "403 country_blocked: a department calling from 127.20.x, \"US\" in contrib/demo-countries.txt" \
    "$(cert minzheng) --interface 127.20.0.5 $u/civil/v1/social-orgs/51450100MJ1234567X"
try "403 insufficient_clearance: shichang's clearance is internal; the registry is restricted" \
    "$(cert shichang) --interface 127.60.0.8 -H 'X-Purpose: enterprise-identity-check' $u/psb/v1/persons/$id"
try "403 suspended: SUSP-2026-014 stops dashuju reading enterprise licences" \
    "$(cert dashuju) --interface 127.80.0.5 $u/market/v1/enterprises/91450100MA5L3X2K7Q"
try "403 no_resource: nothing in the catalogue answers this path" \
    "$(cert renshe) --interface 127.30.0.21 $u/psb/v1/criminal-records/$id"
try "400 bad_request: a path that climbs above the root (--path-as-is keeps curl from tidying it)" \
    "$(cert renshe) --interface 127.30.0.21 --path-as-is $u/psb/v1/../../../etc/passwd"
cat <<EOF

Logs: the gateway's error log is this terminal; the demo backends log to
demo/backends.log. Every decision is in the audit trail, demo/audit/audit.jsonl
(one JSON record per line, chained and signed every second). Check it:

$govgate audit verify --pubkey demo/audit.pub demo/audit/audit.jsonl
$govgate explain -c demo/govgate.yaml --cert demo/pki/renshe.crt --from 127.30.0.21 -H 'X-Purpose: pension-eligibility' GET /psb/v1/persons/$id

Config: demo/govgate.yaml (rewritten on every run; contrib/govgate.yaml is
the annotated example for a real deployment).
EOF
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$admin_port/healthz"; then
	printf '\nHealth and metrics (the admin listener):\n\ncurl -sS http://127.0.0.1:%s/metrics\n' \
	    "$admin_port"
fi
printf '\ngovgate demo: ready on %s; press Ctrl-C to stop\n' "$u"

# Stay in the foreground until Ctrl-C (the trap) or until the gateway exits.
rc=0
wait "$gw_pid" || rc=$?
gw_pid=
if [ "$rc" -ne 0 ]; then
	die "govgate serve exited with status $rc (its log is above)"
fi
say "govgate serve stopped; stopping the demo backends"
exit 0
