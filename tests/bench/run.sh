#!/bin/bash
# tests/bench/run.sh - govgate against nginx and HAProxy as mTLS proxies, on
# loopback, one worker each, pinned to the same CPU; prints one markdown
# table. Measures and reports; it never fails because a number is bad.
#
# Usage: tests/bench/run.sh [--quick] [--proxies LIST] [--reps N]
#            [--seconds S] [--keep] [--out FILE] [--validate-loadgen]
#
#   --proxies LIST  comma-separated, from govgate-fsync, govgate-write,
#                   haproxy, nginx (default: all four)
#   --reps N        runs of each timed measurement, interleaved across the
#                   proxies; the table shows the median (default 3)
#   --seconds S     measured seconds of each keep-alive and latency run
#                   (default 5; handshake runs take 4/5 of it)
#   --quick         1 run of 2 s, 1,000 idle connections, 20 MiB transfers
#   --keep          keep the work folder (configs, logs, audit files)
#   --out FILE      also write the markdown report to FILE
#   --validate-loadgen   only compare loadgen with wrk on the plain backend
#
# Environment: GOVGATE (default $top_builddir/src/govgate), LOADGEN
# (default $top_builddir/tests/bench/loadgen), top_srcdir, top_builddir.
# Needs nginx and haproxy (Debian packages; installed with apt-get when
# missing and run as root), openssl and python3. tests/bench/README.md
# describes what each number means and how it is taken.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
GOVGATE=${GOVGATE:-$top_builddir/src/govgate}
LOADGEN=${LOADGEN:-$top_builddir/tests/bench/loadgen}

reps=3
secs=5
quick=0
keep=0
out=
validate=0
proxies=govgate-fsync,govgate-write,haproxy,nginx
idle_conns=5000
bulk_size=100m
bulk_label="100 MiB"

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--keep) keep=1 ;;
	--reps) reps=$2; shift ;;
	--seconds) secs=$2; shift ;;
	--proxies) proxies=$2; shift ;;
	--out) out=$2; shift ;;
	--validate-loadgen) validate=1 ;;
	-h | --help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	reps=1
	secs=2
	idle_conns=1000
	bulk_size=20m
	bulk_label="20 MiB"
fi

say() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------

need_pkgs=
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs="$need_pkgs nginx"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_pkgs="$need_pkgs haproxy"
if [ "$validate" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
	need_pkgs="$need_pkgs wrk"
fi
if [ -n "$need_pkgs" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing$need_pkgs (apt-get)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null 2>&1 || true
		apt-get install -y -qq $need_pkgs >/dev/null ||
		    die "apt-get install$need_pkgs failed"
		# The packages start system services where an init runs them;
		# the benchmark starts its own instances.
	else
		die "missing:$need_pkgs (apt-get install -y$need_pkgs)"
	fi
fi
PATH=$PATH:/usr/sbin:/sbin
NGINX=$(command -v nginx)
HAPROXY=$(command -v haproxy)
[ -x "$LOADGEN" ] || die "no load generator at $LOADGEN (make tests/bench/loadgen)"
command -v openssl >/dev/null || die "openssl is needed"
command -v python3 >/dev/null || die "python3 is needed"

# --- CPUs, limits, work folder -------------------------------------------

ncpu=$(nproc)
lg_threads=1
if [ "$ncpu" -ge 4 ]; then
	# Load generator on two CPUs, backend and proxy on one each.
	proxy_cpu=$((ncpu - 1))
	backend_cpu=$((ncpu - 2))
	lg_cpu=0,1
	lg_threads=2
fi
if [ "$ncpu" -ge 2 ]; then
	if [ "$ncpu" -lt 4 ]; then
		proxy_cpu=$((ncpu - 1))
		lg_cpu=0
		if [ "$ncpu" -ge 3 ]; then backend_cpu=1; else backend_cpu=0; fi
	fi
	pin_proxy="taskset -c $proxy_cpu"
	pin_lg="taskset -c $lg_cpu"
	pin_backend="taskset -c $backend_cpu"
else
	proxy_cpu=- lg_cpu=- backend_cpu=-
	pin_proxy= pin_lg= pin_backend=
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[ "$nofile" != unlimited ] || nofile=65536
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((idle_conns + 1000)) ]; then
	idle_conns=$((nofile - 1000))
	say "open-file limit $nofile: holding only $idle_conns idle connections"
fi

# Each proxy may hold idle_conns client connections plus a few upstream
# ones; HAProxy wants two descriptors per connection it may accept.
maxconn=$(((nofile - 200) / 2))
[ "$maxconn" -le 20000 ] || maxconn=20000

W=$(mktemp -d /tmp/govgate-bench.XXXXXX)
chmod 755 "$W"
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$p" 2>/dev/null || true
	done
	if [ "$keep" = 1 ]; then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# RESULT line field: kv LINE KEY
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

lg() { $pin_lg "$LOADGEN" "$@"; }

# --- the backend: nginx serving a 1 KiB JSON file over plain HTTP ---------

mkdir -p "$W/www/bench/bulk" "$W/upload" "$W/backend-tmp"
python3 - "$W/www/data.json" <<'EOF'
import json, sys
d = {"uscc": "52450100MJ0000000X", "name": "Nanning Example Social Organisation",
     "type": "social-organisation", "status": "active", "registered": "2019-06-12",
     "authority": "Nanning Civil Affairs Bureau",
     "address": "No. 1 Minzu Avenue, Qingxiu District, Nanning, Guangxi",
     "scope": ["community services", "education", "culture"],
     "inspections": [{"year": y, "result": "passed", "note": "annual inspection"}
                     for y in range(2019, 2026)]}
s = json.dumps(d, indent=1) + "\n"
s = s[:-2] + ', "pad": "' + "x" * max(0, 1024 - len(s) - 12) + '"}\n'
open(sys.argv[1], "w").write(s)
EOF
truncate -s "$bulk_size" "$W/www/bench/bulk/file.bin"
chmod -R a+rX "$W/www"
chmod 777 "$W/upload" "$W/backend-tmp"
backend_port=$(free_port)
cat >"$W/backend.conf" <<EOF
# The shared backend: plain HTTP, one worker.
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $W/backend.pid;
error_log $W/backend.err warn;
events { worker_connections $maxconn; }
http {
	access_log off;
	default_type application/json;
	keepalive_requests 1000000000;
	keepalive_timeout 300s;
	sendfile on;
	client_body_temp_path $W/backend-tmp;
	server {
		listen 127.0.0.1:$backend_port backlog=4096;
		root $W/www;
		location / { try_files /data.json =404; }
		location /bench/bulk/ { }
		# The upload: WebDAV PUT reads the whole body before it answers.
		location /bench/bulk/upload/ {
			root $W/upload;
			dav_methods PUT;
			create_full_put_path on;
			client_max_body_size 0;
			client_body_buffer_size 1m;
		}
	}
}
EOF
# When loadgen is checked against wrk, the backend is what is measured:
# it gets the proxies' CPU.
[ "$validate" = 0 ] || [ -z "$pin_backend" ] || pin_backend="taskset -c $proxy_cpu"
$pin_backend "$NGINX" -p "$W" -e "$W/backend.err" -c "$W/backend.conf" ||
    die "backend nginx did not start: $(cat "$W/backend.err")"
sleep 0.3
backend_master=$(cat "$W/backend.pid")
pids="$pids $backend_master"

# --- loadgen against wrk -------------------------------------------------

if [ "$validate" = 1 ]; then
	command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
	say "loadgen vs wrk on the plain backend, 1 thread each, $reps x ${secs}s"
	printf '| connections | wrk req/s (median of %s) | loadgen req/s (median) | loadgen / wrk |\n' "$reps"
	printf '|---:|---:|---:|---:|\n'
	for c in 1 16 64; do
		a= b=
		for _ in $(seq "$reps"); do
			a="$a $($pin_lg wrk -t1 -c"$c" -d"${secs}s" \
			    "http://127.0.0.1:$backend_port/x" |
			    awk '/Requests\/sec/ {print $2}')"
			r=$(lg -q -c "$c" -d "$secs" -w 0.5 -u /x \
			    "127.0.0.1:$backend_port" || true)
			b="$b $(kv "$r" rps)"
		done
		ma=$(printf '%s\n' $a | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
		mb=$(printf '%s\n' $b | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
		printf '| %s | %.0f | %.0f | %.2f |\n' "$c" "$ma" "$mb" \
		    "$(echo "$mb $ma" | awk '{print $1 / $2}')"
		say "c=$c wrk:$a loadgen:$b"
	done
	exit 0
fi

# --- PKI, policy, configurations -------------------------------------------

sh "$top_srcdir/certs/mkpki.sh" "$W/pki" >/dev/null || die "mkpki.sh failed"
P=$W/pki
cat "$P/gateway.crt" "$P/gateway.key" >"$W/haproxy.pem"
chmod 600 "$W/haproxy.pem"
# The client: the Health Commission's application (no zone restriction).
CERT=$P/weijian.chain.pem
KEY=$P/weijian.key
DEPT_O="Nanning Health Commission"
# A resource every department may read (unconditional, no response mask).
ALLOWED=/civil/v1/social-orgs/52450100MJ0000000X
DENIED=/psb/v1/persons/450103195803120017

mkdir -p "$W/policy"
cp "$top_srcdir"/policies/*.yaml "$W/policy/"
cat >"$W/policy/60-bench.yaml" <<'EOF'
# 60-bench.yaml - added by tests/bench/run.sh: a resource for the 100 MiB
# upload and download. Everything else is the example policy.
version: 1
resources:
  bench-bulk:
    name: benchmark bulk transfer
    owner: dashuju
    upstream: bench-api
    methods: [GET, PUT]
    paths: ["/bench/bulk/**"]
    classification: internal
    sharing: unconditional
EOF
openssl genpkey -algorithm ed25519 -out "$W/audit.key" 2>/dev/null
# The example policy needs the GeoIP databases: the test ones, in which
# 127.0.0.1 is in no zone and of unknown country (admitted).
perl "$top_srcdir/contrib/mkzones" "$W/zones.mmdb" \
    "$top_srcdir/tests/policy/zones.txt" || die "mkzones failed"
perl "$top_srcdir/contrib/mkcountries" "$W/countries.mmdb" \
    "$top_srcdir/tests/policy/countries.txt" || die "mkcountries failed"
chmod 600 "$W/audit.key"

port_govgate_fsync=$(free_port)
port_govgate_write=$(free_port)
port_haproxy=$(free_port)
port_nginx=$(free_port)

govgate_conf() { # NAME SYNC PORT
	mkdir -p "$W/$1"
	{
		printf 'name: bench-%s\nworkers: 1\npolicy: %s/policy\n' "$1" "$W"
		printf 'listeners:\n  - name: egov\n    address: "127.0.0.1:%s"\n' "$3"
		printf '    tls:\n      certificate: %s/gateway.crt\n' "$P"
		printf '      key: %s/gateway.key\n' "$P"
		printf '      client_ca: %s/departments-ca.pem\n' "$P"
		printf '      crl: %s/departments.crl\n' "$P"
		printf 'upstreams:\n'
		for u in psb-api hrss-api civil-api health-api market-api \
		    estate-api bigdata-api bench-api; do
			printf '  %s: { servers: ["127.0.0.1:%s"], read_timeout: 120s }\n' \
			    "$u" "$backend_port"
		done
		printf 'audit:\n  path: %s/%s/audit.jsonl\n' "$W" "$1"
		printf '  signing_key: %s/audit.key\n  sync: %s\n' "$W" "$2"
		printf 'geoip:\n  country_db: %s/countries.mmdb\n' "$W"
		printf '  zone_db: %s/zones.mmdb\n' "$W"
		printf 'limits:\n  max_connections: %s\n  idle_timeout: 300s\n' \
		    "$maxconn"
		# As nginx's keepalive_requests and HAProxy (no cap): the
		# load generator's connections are never closed by the proxy.
		printf '  max_requests_per_connection: 1000000000\n'
		printf '  header_timeout: 60s\n  max_body_bytes: 1g\n'
		printf 'timezone: Asia/Shanghai\n'
	} >"$W/$1/govgate.yaml"
}

cat >"$W/nginx.conf" <<EOF
# nginx as the same mTLS gateway: verify required, CRL, one path allowed for
# the client's department, the rest denied, identity header, upstream
# keep-alive, an access log.
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections $maxconn; }
http {
	log_format gw '\$remote_addr "\$ssl_client_s_dn" "\$request" \$status '
	    '\$body_bytes_sent \$request_time';
	access_log $W/nginx-access.log gw;
	keepalive_requests 1000000000;
	keepalive_timeout 300s;
	client_body_temp_path $W/nginx-tmp;
	proxy_temp_path $W/nginx-tmp;
	ssl_session_cache shared:SSL:20m;
	ssl_session_timeout 10m;
	map \$ssl_client_s_dn \$gw_allowed {
		default 0;
		"~(^|,)O=$DEPT_O(,|\$)" 1;
	}
	upstream backend {
		server 127.0.0.1:$backend_port;
		keepalive 64;
		keepalive_requests 1000000000;
		keepalive_timeout 300s;
	}
	server {
		listen 127.0.0.1:$port_nginx ssl backlog=4096;
		ssl_certificate $P/gateway.crt;
		ssl_certificate_key $P/gateway.key;
		ssl_client_certificate $P/departments-ca.pem;
		ssl_crl $P/departments.crl;
		ssl_verify_client on;
		ssl_verify_depth 3;
		# nginx 1.22 offers TLS 1.3 only when asked; the others do.
		ssl_protocols TLSv1.2 TLSv1.3;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header X-Client-DN \$ssl_client_s_dn;
		location /civil/v1/social-orgs/ {
			if (\$gw_allowed = 0) { return 403; }
			proxy_pass http://backend;
		}
		location /bench/bulk/ {
			if (\$gw_allowed = 0) { return 403; }
			client_max_body_size 0;
			proxy_request_buffering off;
			proxy_buffering off;
			proxy_pass http://backend;
		}
		location / { return 403; }
	}
}
EOF
mkdir -p "$W/nginx-tmp"
chmod 777 "$W/nginx-tmp"

cat >"$W/haproxy.cfg" <<EOF
# HAProxy as the same mTLS gateway (one process, one thread).
global
	nbthread 1
	maxconn $maxconn
	log stdout format raw local0 info
defaults
	mode http
	log global
	log-format "%ci \"%[ssl_c_s_dn]\" \"%r\" %ST %B %Tt"
	timeout connect 5s
	timeout client 300s
	timeout server 300s
	timeout http-request 60s
	timeout http-keep-alive 300s
	http-reuse always
frontend egov
	bind 127.0.0.1:$port_haproxy ssl crt $W/haproxy.pem ca-file $P/departments-ca.pem crl-file $P/departments.crl verify required
	acl allowed_path path_beg /civil/v1/social-orgs/ /bench/bulk/
	acl allowed_dept ssl_c_s_dn(O) -m str "$DEPT_O"
	http-request deny deny_status 403 if !allowed_path || !allowed_dept
	http-request set-header X-Client-DN %{+Q}[ssl_c_s_dn]
	default_backend api
backend api
	server b1 127.0.0.1:$backend_port
EOF

# --- start the proxies --------------------------------------------------------

declare -A port pid label
label[govgate-fsync]="govgate (audit fsync)"
label[govgate-write]="govgate (audit write)"
label[haproxy]="HAProxy"
label[nginx]="nginx"
active=

# ready NAME: the allowed path answers 200 and another path 403.
ready() {
	local i r
	for i in $(seq 50); do
		if ! kill -0 "${pid[$1]}" 2>/dev/null; then return 1; fi
		if r=$(lg -q -c 1 -d 1 -w 0 -n 1 --tls --cert "$CERT" \
		    --key "$KEY" -u "$ALLOWED" "127.0.0.1:${port[$1]}" 2>/dev/null); then
			lg -q -c 1 -d 1 -w 0 -n 1 --tls --cert "$CERT" \
			    --key "$KEY" --expect 403 -u "$DENIED" \
			    "127.0.0.1:${port[$1]}" >/dev/null 2>&1 ||
			    say "$1: $DENIED was not denied with 403"
			return 0
		fi
		sleep 0.2
	done
	return 1
}

start_proxy() {
	local name=$1 m
	case $name in
	govgate-fsync | govgate-write)
		if [ ! -x "$GOVGATE" ]; then
			say "$name: no binary at $GOVGATE"
			return 1
		fi
		govgate_conf "$name" "${name#govgate-}" "${port[$name]}"
		if ! "$GOVGATE" check -c "$W/$name/govgate.yaml" >"$W/$name/check.log" 2>&1; then
			say "$name: govgate check failed: $(head -n 3 "$W/$name/check.log")"
			return 1
		fi
		$pin_proxy "$GOVGATE" serve -c "$W/$name/govgate.yaml" \
		    >"$W/$name/stderr.log" 2>&1 </dev/null &
		pid[$name]=$!
		pids="$pids ${pid[$name]}"
		;;
	haproxy)
		$pin_proxy "$HAPROXY" -db -f "$W/haproxy.cfg" \
		    >"$W/haproxy-access.log" 2>"$W/haproxy.err" </dev/null &
		pid[$name]=$!
		pids="$pids ${pid[$name]}"
		;;
	nginx)
		$pin_proxy "$NGINX" -p "$W" -e "$W/nginx.err" -c "$W/nginx.conf" ||
		    { say "nginx: $(tail -n 3 "$W/nginx.err")"; return 1; }
		sleep 0.3
		m=$(cat "$W/nginx.pid")
		pids="$pids $m"
		pid[$name]=$(pgrep -P "$m" | head -n 1)
		;;
	esac
	if ! ready "$name"; then
		say "$name: not answering on port ${port[$name]}; its log:"
		case $name in
		govgate*) tail -n 5 "$W/$name/stderr.log" >&2 ;;
		haproxy) tail -n 5 "$W/haproxy.err" >&2 ;;
		nginx) tail -n 5 "$W/nginx.err" >&2 ;;
		esac
		return 1
	fi
	say "$name: pid ${pid[$name]} on 127.0.0.1:${port[$name]}, CPU $proxy_cpu"
}

port[govgate-fsync]=$port_govgate_fsync
port[govgate-write]=$port_govgate_write
port[haproxy]=$port_haproxy
port[nginx]=$port_nginx
for name in ${proxies//,/ }; do
	[ -n "${label[$name]:-}" ] || die "unknown proxy $name"
	if start_proxy "$name"; then active="$active $name"; fi
done
[ -n "$active" ] || die "no proxy started"

# --- measurements ----------------------------------------------------------

declare -A res
# run NAME KEY LOADGEN-ARGS...: one loadgen run against NAME with the
# client certificate; its RESULT line is appended to res[NAME.KEY].
run() {
	local name=$1 key=$2 r
	shift 2
	r=$(lg -q --tls --cert "$CERT" --key "$KEY" --stat-pid "${pid[$name]}" \
	    "$@" "127.0.0.1:${port[$name]}" 2>>"$W/loadgen.err") || true
	[ -n "$r" ] || r="RESULT failed=1"
	printf '%s %s %s\n' "$name" "$key" "$r" >>"$W/results.txt"
	res[$name.$key]="${res[$name.$key]:-}|$r"
}

# med NAME KEY FIELD: the median of FIELD over NAME's KEY runs, or "".
med() {
	local IFS='|' r v=
	for r in ${res[$1.$2]:-}; do
		[ -n "$r" ] || continue
		v="$v $(kv "$r" "$3")"
	done
	unset IFS
	printf '%s\n' $v | grep -v '^$' | sort -g |
	    awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'
}

# vals NAME KEY FIELD: the distinct values of FIELD other than 0.
vals() {
	local IFS='|' r v=
	for r in ${res[$1.$2]:-}; do
		[ -n "$r" ] || continue
		v="$v $(kv "$r" "$3")"
	done
	unset IFS
	printf '%s\n' $v | grep -v '^0*$' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# sum NAME KEY FIELD: FIELD added over all of NAME's KEY runs.
sum() {
	local IFS='|' r s=0
	for r in ${res[$1.$2]:-}; do
		[ -n "$r" ] || continue
		s=$((s + $(kv "$r" "$3" | sed 's/^$/0/')))
	done
	echo "$s"
}

conns=32
# A second keep-alive load with twice the clients in flight: with audit
# fsync every allowed request waits for an fdatasync before it is
# forwarded, so at 32 connections the commit latency, not CPU, bounds
# govgate's rate (Little's law); at 64 each fdatasync is shared by more
# requests. Not more: each proxy keeps 64 idle upstream connections
# (govgate's pool, nginx's `keepalive 64`), and past that the row would
# measure upstream connection churn instead.
conns_hi=64
hs_secs=$(echo "$secs" | awk '{printf "%.1f", $1 * 0.8}')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)

keepalive() { # KEY CONNECTIONS: closed-loop keep-alive runs, interleaved
	local i name
	say "$1: keep-alive, $2 connections, max rate: $reps x ${secs}s each"
	for i in $(seq "$reps"); do
		for name in $active; do
			run "$name" "$1" -m max -c "$2" -t "$lg_threads" \
			    -d "$secs" -w 1 -u "$ALLOWED"
		done
	done
}
say "1/5 keep-alive"
keepalive ka "$conns"
keepalive kahi "$conns_hi"

rate=
for name in $active; do
	r=$(med "$name" ka rps)
	[ -n "$r" ] || continue
	if [ -z "$rate" ] || awk -v a="$r" -v b="$rate" 'BEGIN {exit !(a < b)}'; then
		rate=$r
	fi
done
# Half the slowest proxy's maximum, rounded down to 2 significant digits.
rate=$(echo "${rate:-2000}" | awk '{r = $1 / 2; p = 10 ^ int(log(r) / log(10) - 1); printf "%d", int(r / p) * p}')
[ "$rate" -ge 100 ] || rate=100

say "2/5 latency at a fixed $rate req/s (open loop), $conns connections"
for i in $(seq "$reps"); do
	for name in $active; do
		run "$name" lat -m rate -r "$rate" -c "$conns" -t "$lg_threads" \
		    -d "$secs" -w 1 -u "$ALLOWED"
	done
done

say "3/5 new mTLS handshakes, 16 at a time, ${hs_secs}s each, without and with resumption"
for i in $(seq "$reps"); do
	for name in $active; do
		run "$name" hs -m handshake -c 16 -t "$lg_threads" \
		    -d "$hs_secs" -w 0.5 -u "$ALLOWED"
		run "$name" hsr -m handshake --resume -c 16 -t "$lg_threads" \
		    -d "$hs_secs" -w 0.5 -u "$ALLOWED"
	done
done

# Before the idle connections: RSS that an allocator keeps after 5,000
# connections closed would hide the transfer's own peak.
say "4/5 $bulk_label upload and download: $reps x each"
for i in $(seq "$reps"); do
	for name in $active; do
		run "$name" up -m upload -s "$bulk_size" -d 120 --expect 201 \
		    -u "/bench/bulk/upload/$name-$RANDOM.bin"
		rm -f "$W"/upload/bench/bulk/upload/*.bin
		run "$name" down -m download -d 120 -u /bench/bulk/file.bin
	done
done

say "5/5 memory per idle TLS connection: $idle_conns connections"
for name in $active; do
	run "$name" idle -m idle -k "$idle_conns" -c 100 -d 60 --hold 0.5 \
	    --settle 1 -u "$ALLOWED"
	sleep 1
done
t1=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report ------------------------------------------------------------------

first_gg=
for name in $active; do
	case $name in govgate*) first_gg=${first_gg:-$name} ;; esac
done

# cell NAME KEY FIELD SCALE FORMAT
cell() {
	local v
	v=$(med "$1" "$2" "$3")
	if [ -z "$v" ]; then echo "n/a"; return; fi
	# A scale of -1 means "10^6 / v".
	awk -v v="$v" -v s="$4" -v f="$5" \
	    'BEGIN {if (s == -1) {if (v + 0 == 0) print "n/a"; else printf f, 1e6 / v} else printf f, v * s}'
}

ratio() { # NAME-A NAME-B KEY FIELD [SCALE]: A / B (B / A for scale -1)
	local a b
	a=$(med "$1" "$3" "$4")
	b=$(med "$2" "$3" "$4")
	if [ "${5:-1}" = -1 ]; then
		a=$(med "$2" "$3" "$4")
		b=$(med "$1" "$3" "$4")
	fi
	if [ -z "$a" ] || [ -z "$b" ]; then echo "n/a"; return; fi
	awk -v a="$a" -v b="$b" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b}'
}

row() { # TITLE KEY FIELD SCALE FORMAT [noratio]
	local line="| $1 |" name
	for name in $active; do
		line="$line $(cell "$name" "$2" "$3" "$4" "$5") |"
	done
	if [ -n "$first_gg" ] && [ "${6:-}" = noratio ]; then
		line="$line | |"
	elif [ -n "$first_gg" ]; then
		if [[ " $active " == *" haproxy "* ]]; then
			line="$line $(ratio "$first_gg" haproxy "$2" "$3" "$4") |"
		else line="$line n/a |"; fi
		if [[ " $active " == *" nginx "* ]]; then
			line="$line $(ratio "$first_gg" nginx "$2" "$3" "$4") |"
		else line="$line n/a |"; fi
	fi
	echo "$line"
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
report() {
	local head="| measurement |" sep="|---|" name errs
	for name in $active; do
		head="$head ${label[$name]} |"
		sep="$sep---:|"
	done
	if [ -n "$first_gg" ]; then
		head="$head ${first_gg#govgate-} / haproxy | ${first_gg#govgate-} / nginx |"
		sep="$sep---:|---:|"
	fi
	echo "$head"
	echo "$sep"
	row "keep-alive req/s ($conns conns)" ka rps 1 "%.0f"
	row "proxy CPU µs per request" ka cpu_us_per_req 1 "%.1f"
	row "proxy CPU busy during it" ka cpu_util 100 "%.0f %%" noratio
	row "req/s per proxy CPU (10^6 / CPU µs per request)" ka cpu_us_per_req -1 "%.0f"
	row "keep-alive req/s ($conns_hi conns)" kahi rps 1 "%.0f"
	row "proxy CPU µs per request ($conns_hi conns)" kahi cpu_us_per_req 1 "%.1f"
	row "p50 latency at $rate req/s (µs)" lat p50_us 1 "%.0f"
	row "p99 latency at $rate req/s (µs)" lat p99_us 1 "%.0f"
	row "p99.9 latency at $rate req/s (µs)" lat p999_us 1 "%.0f"
	row "new handshakes/s, full" hs rps 1 "%.0f"
	row "proxy CPU µs per full handshake" hs cpu_us_per_req 1 "%.0f"
	row "new handshakes/s, resumed" hsr rps 1 "%.0f"
	row "proxy CPU µs per resumed handshake" hsr cpu_us_per_req 1 "%.0f"
	row "memory per idle TLS connection (bytes)" idle bytes_per_conn 1 "%.0f"
	row "$bulk_label upload (MiB/s)" up mib_per_s 1 "%.0f"
	row "peak RSS during upload (MiB)" up vmhwm_kb 0.0009765625 "%.1f"
	row "RSS growth to that peak (MiB)" up hwm_growth_kb 0.0009765625 "%.1f" noratio
	row "$bulk_label download (MiB/s)" down mib_per_s 1 "%.0f"
	row "peak RSS during download (MiB)" down vmhwm_kb 0.0009765625 "%.1f"
	row "RSS growth to that peak (MiB)" down hwm_growth_kb 0.0009765625 "%.1f" noratio
	errs="| failed requests / unexpected status |"
	for name in $active; do
		e=0 u=0
		for k in ka kahi lat hs hsr idle up down; do
			e=$((e + $(sum "$name" "$k" errors)))
			u=$((u + $(sum "$name" "$k" unexpected)))
		done
		errs="$errs $e / $u |"
	done
	[ -z "$first_gg" ] || errs="$errs | |"
	echo "$errs"
	tlsrow="| TLS negotiated (keep-alive runs) |"
	for name in $active; do
		r=${res[$name.ka]:-}
		r=${r#|}
		r=${r%%|*}
		tlsrow="$tlsrow $(kv "$r" tls_version) $(kv "$r" cipher) |"
	done
	[ -z "$first_gg" ] || tlsrow="$tlsrow | |"
	echo "$tlsrow"
	echo
	for name in $active; do
		for k in ka kahi lat hs hsr idle up down; do
			e=$(sum "$name" "$k" errors)
			u=$(sum "$name" "$k" unexpected)
			[ "$e" = 0 ] || echo "$name: $e failed requests in the \"$k\" runs (results.txt in the work folder, with --keep, has each run's counters)."
			[ "$u" = 0 ] || echo "$name: $u responses with an unexpected status in the \"$k\" runs (status $(vals "$name" "$k" bad_status))."
		done
	done
	echo
	echo "Medians of $reps interleaved runs; ratios are ${first_gg:-govgate} over the other"
	echo "proxy (for req/s, handshakes/s and MiB/s higher is better; for µs, bytes"
	echo "and MiB lower is better). Resumed handshakes: $(for n in $active; do
		printf '%s %s of %s; ' "$n" "$(sum "$n" hsr resumed)" "$(sum "$n" hsr handshakes)"; done)"
	echo
	echo "Machine: $cpu_model, $ncpu CPUs ($(nproc --all) online), kernel $(uname -r),"
	echo "$(openssl version), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'),"
	echo "HAProxy $("$HAPROXY" -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'),"
	echo "$("$GOVGATE" version 2>/dev/null | head -n 1 || echo 'govgate ?')"
	echo "($(cd "$top_srcdir" && git rev-parse --short HEAD 2>/dev/null || echo 'no git')); proxies on CPU $proxy_cpu, load"
	echo "generator on CPU $lg_cpu, backend on CPU $backend_cpu; $(date -u +%Y-%m-%dT%H:%MZ);"
	echo "load average $load_before before, $load_after after; $((t1 - t0)) s of measuring."
}

report >"$W/report.md"
cat "$W/report.md"
if [ -n "$out" ]; then cp "$W/report.md" "$out"; fi
