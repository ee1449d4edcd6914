# lib.sh - shared helpers for the audit TAP tests (sourced, not run).
#
# Environment from `make check`: GOVGATE, top_srcdir, top_builddir. Each
# test works in a fresh temporary folder (cd'ed into, so that the file
# names in messages are short) and removes it on exit.

: "${GOVGATE:?GOVGATE is not set}" "${top_srcdir:?}" "${top_builddir:?}"
MKLOG=$top_builddir/tests/unit/audit_mklog
PYVERIFY=$top_srcdir/contrib/verify-audit.py
PYTHON=/usr/bin/python3

tap_n=0
tap_failed=0
D=$(mktemp -d /tmp/govgate-audit.XXXXXX) || exit 1
trap 'rm -rf "$D"' EXIT
cd "$D" || exit 1

ok() { # status name
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
}

diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
	exit $?
}

# verify_both NAME WANT_RC PATTERN ARGS...: run `govgate audit verify` and
# contrib/verify-audit.py with ARGS; each must exit WANT_RC and print a
# line holding PATTERN (a fixed string, e.g. "a.jsonl:37: ").
verify_both() {
	name=$1 want=$2 pat=$3
	shift 3
	for tool in govgate python; do
		if [ $tool = govgate ]; then
			out=$("$GOVGATE" audit verify "$@" 2>&1)
		else
			out=$("$PYTHON" "$PYVERIFY" "$@" 2>&1)
		fi
		rc=$?
		if [ "$rc" -eq "$want" ] &&
		    printf '%s\n' "$out" | grep -qF -- "$pat"; then
			ok 0 "$tool: $name"
		else
			ok 1 "$tool: $name"
			diag "$out"
			diag "exit $rc, wanted $want and a line with: $pat"
		fi
	done
}

# line FILE N: print line N of FILE.
line() {
	sed -n "${2}p" "$1"
}

# rechain [--sign KEY.pem] [--drop-checkpoints] FILE...: what an attacker
# without the signing key can do: renumber seq from the first record,
# set each checkpoint's count, and recompute every prev and hash in
# place, so the unkeyed chain is consistent again. With --sign, the
# checkpoints are re-signed with another key (and its key_id).
rechain() {
	"$PYTHON" - "$@" <<'EOF'
import base64, hashlib, re, sys
from cryptography.hazmat.primitives import serialization

args = sys.argv[1:]
key = None
drop = False
while args and args[0].startswith("--"):
    if args[0] == "--sign":
        key = serialization.load_pem_private_key(open(args[1], "rb").read(),
                                                 None)
        args = args[2:]
    elif args[0] == "--drop-checkpoints":
        drop = True
        args = args[1:]
pub = key.public_key().public_bytes(
    serialization.Encoding.DER,
    serialization.PublicFormat.SubjectPublicKeyInfo) if key else None
prev = None
seq = None
for path in args:
    out = []
    for raw in open(path, "rb").read().split(b"\n")[:-1]:
        if drop and b'"event":"checkpoint"' in raw:
            continue
        m = re.match(rb'\{"seq":(\d+),', raw)
        seq = int(m.group(1)) if seq is None else seq + 1
        if prev is None:
            prev = re.search(rb'"prev":"([0-9a-f]{64})"', raw).group(1)
        body = re.sub(rb'^\{"seq":\d+,', b'{"seq":%d,' % seq, raw)
        body = body[:body.rindex(b',"prev":')]
        if b'"event":"checkpoint"' in body:
            body = re.sub(rb'"count":\d+', b'"count":%d' % seq, body)
            if key is not None:
                gw = re.search(rb'"gateway":"([^"]*)"', body).group(1)
                ts = re.search(rb'"ts":"([^"]*)"', body).group(1)
                msg = b"govgate-checkpoint-v1\n%s\n%d\n%s\n%s\n" % (
                    gw, seq, ts, prev)
                sig = base64.b64encode(key.sign(msg))
                kid = hashlib.sha256(pub).hexdigest()[:16].encode()
                body = re.sub(rb'"key_id":"[0-9a-f]*"',
                              b'"key_id":"' + kid + b'"', body)
                body = re.sub(rb'"sig":"[^"]*"', b'"sig":"' + sig + b'"',
                              body)
        p = body + b',"prev":"' + prev + b'"'
        h = hashlib.sha256(b"govgate-audit-v1\n" + p).hexdigest().encode()
        out.append(p + b',"hash":"' + h + b'"}')
        prev = h
    open(path, "wb").write(b"".join(x + b"\n" for x in out))
EOF
}

# edit FILE N PYEXPR: replace line N (bytes, no newline, as `l`) of FILE
# by the value of PYEXPR.
edit() {
	"$PYTHON" - "$@" <<'EOF'
import sys
path, n, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, "rb").read().split(b"\n")
l = lines[n - 1]
lines[n - 1] = eval(expr)
open(path, "wb").write(b"\n".join(lines))
EOF
}
