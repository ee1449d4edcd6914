# faults_lib.sh - shared by the audit fault scripts (sourced): TAP
# output, a work folder, the driver (tests/unit/auditlog_test drive) and
# both verifiers.
: "${top_builddir:=.}"
: "${top_srcdir:=.}"
DRIVE="$top_builddir/tests/unit/auditlog_test"
T_N=0
T_FAIL=0

# t_ok STATUS NAME: one TAP line, ok when STATUS is 0.
t_ok() {
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAIL=$((T_FAIL + 1))
	fi
}

# t_check NAME COMMAND...: ok when the command succeeds.
t_check() {
	t_name=$1
	shift
	if "$@" >/dev/null 2>&1; then t_ok 0 "$t_name"; else t_ok 1 "$t_name"; fi
}

t_skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP $2"
}

t_done() {
	echo "1..$T_N"
	[ "$T_FAIL" -eq 0 ]
}

# t_verify NAME KEY PUB FILE...: the driver's verifier (audit.c), and
# govgate audit verify when the binary has it.
t_verify() {
	t_name=$1 t_key=$2 t_pub=$3
	shift 3
	t_out=$("$DRIVE" drive verify "$t_key" "$@" 2>&1)
	t_ok $? "$t_name: $t_out"
	if [ -n "${GOVGATE:-}" ] && [ -x "$GOVGATE" ] &&
	    "$GOVGATE" audit verify --help >/dev/null 2>&1; then
		t_out=$("$GOVGATE" audit verify --pubkey "$t_pub" "$@" 2>&1)
		t_ok $? "$t_name (govgate audit verify): $(echo "$t_out" | tail -1)"
	fi
}

# t_has FILE ID: the file holds a record with this request id.
t_has() {
	grep -q "\"request_id\":\"$2\"" "$1"
}

# t_missing AUDIT ACKED: how many ids in ACKED have no record in AUDIT.
t_missing() {
	awk 'NR == FNR {
		if (match($0, /"request_id":"[^"]*"/))
			seen[substr($0, RSTART + 14, RLENGTH - 15)] = 1
		next
	}
	!($0 in seen) { miss++ }
	END { print miss + 0 }' "$1" "$2"
}
