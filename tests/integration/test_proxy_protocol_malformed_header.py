"""Malformed PROXY headers from a trusted balancer are refused at once:
the connection is closed before TLS without a byte in answer, nothing is
forwarded, no decision is recorded, and the log says what was wrong. The
parser is strict (no leniency for case, spaces, leading zeros, address
families) and bounded (107 bytes for v1, 1024 for v2).
"""
import pytest

from origintest import (CN_RENSHE, V2_SIG, get, origin_gateway, origin_geodb,  # noqa: F401
                        origin_policy, proxy_v2, raw_connect, tls_refused, wait_closed)

BAD = [
    # v1
    ("v1-port-too-big", b"PROXY TCP4 127.30.4.21 127.0.0.1 70000 443\r\n"),
    ("v1-port-leading-zero", b"PROXY TCP4 127.30.4.21 127.0.0.1 040000 443\r\n"),
    ("v1-port-not-a-number", b"PROXY TCP4 127.30.4.21 127.0.0.1 4x000 443\r\n"),
    ("v1-port-negative", b"PROXY TCP4 127.30.4.21 127.0.0.1 -1 443\r\n"),
    ("v1-port-missing", b"PROXY TCP4 127.30.4.21 127.0.0.1 40000\r\n"),
    ("v1-extra-field", b"PROXY TCP4 127.30.4.21 127.0.0.1 40000 443 1\r\n"),
    ("v1-tcp4-with-ipv6", b"PROXY TCP4 2001:db8:30::5 ::1 40000 443\r\n"),
    ("v1-tcp6-with-ipv4", b"PROXY TCP6 127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-udp4", b"PROXY UDP4 127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-tcp5", b"PROXY TCP5 127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-lower-case", b"proxy TCP4 127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-lower-case-proto", b"PROXY tcp4 127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-double-space", b"PROXY TCP4  127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-trailing-space", b"PROXY TCP4 127.30.4.21 127.0.0.1 40000 443 \r\n"),
    ("v1-bare-lf", b"PROXY TCP4 127.30.4.21 127.0.0.1 40000 443\n"),
    ("v1-address-leading-zero", b"PROXY TCP4 127.030.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-address-short-form", b"PROXY TCP4 127.1 127.0.0.1 40000 443\r\n"),
    ("v1-hostname", b"PROXY TCP4 localhost 127.0.0.1 40000 443\r\n"),
    ("v1-nul-byte", b"PROXY TCP4 127.30.4.21\0127.0.0.1 40000 443\r\n"),
    ("v1-tab", b"PROXY TCP4\t127.30.4.21 127.0.0.1 40000 443\r\n"),
    ("v1-oversized", b"PROXY TCP6 " + b"a" * 120 + b"\r\n"),
    ("v1-no-crlf-in-107-bytes", b"PROXY UNKNOWN " + b"x" * 100),
    # v2
    ("v2-version-1", proxy_v2(CN_RENSHE, 40000, version=1)),
    ("v2-version-3", proxy_v2(CN_RENSHE, 40000, version=3)),
    ("v2-command-2", proxy_v2(CN_RENSHE, 40000, command=2)),
    ("v2-command-15", proxy_v2(CN_RENSHE, 40000, command=15)),
    ("v2-udp-over-ipv4", proxy_v2(CN_RENSHE, 40000, fam=0x12)),
    ("v2-udp-over-ipv6", proxy_v2("2001:db8:30::5", 40000, fam=0x22)),
    ("v2-unix-stream", proxy_v2(CN_RENSHE, 40000, fam=0x31)),
    ("v2-unspec-with-proxy-command", proxy_v2(None, command=1, fam=0x00)),
    ("v2-family-3", proxy_v2(CN_RENSHE, 40000, fam=0x41)),
    ("v2-ipv4-length-too-short", proxy_v2(CN_RENSHE, 40000, length=8)[:16 + 8]),
    ("v2-ipv6-length-for-ipv4", proxy_v2(CN_RENSHE, 40000, fam=0x21)),
    ("v2-oversized-65535", proxy_v2(CN_RENSHE, 40000, length=0xFFFF)),
    ("v2-oversized-1009", proxy_v2(CN_RENSHE, 40000, length=1009)),
    ("v2-bad-signature", b"\r\n\r\n\x00\r\nQUIX\n" + proxy_v2(CN_RENSHE, 40000)[12:]),
    # neither
    ("http-request", b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("binary-garbage", bytes(range(1, 64))),
]


@pytest.fixture
def pgw(origin_gateway):
    return origin_gateway(trusted=["127.0.0.1/32"],
                          policy=origin_policy(countries=("CN", "unknown")))


@pytest.mark.parametrize("data", [d for _, d in BAD], ids=[n for n, _ in BAD])
def test_malformed_header_is_closed_at_once(pgw, backend, data):
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        try:
            raw.sendall(data)
        except OSError:
            pass
        got, waited = wait_closed(raw, 4)
    finally:
        raw.close()
    assert got == b"", got
    # The handshake deadline is 2s: this must be the parser, not a timer.
    assert waited < 1.5, "closed only after %.2fs" % waited
    lines = pgw.wait_log("PROXY header from 127.0.0.1: ")
    assert lines, pgw.stderr_text()[-2000:]
    assert backend.received_nothing(settle=0.1)
    assert pgw.decisions() == []


@pytest.mark.parametrize("name", ["v1-port-too-big", "v1-tcp4-with-ipv6", "v2-version-1",
                                  "v2-oversized-65535", "v2-udp-over-ipv4"])
def test_malformed_header_then_tls_gets_no_response(pgw, backend, name):
    how, waited = tls_refused(pgw, preamble=dict(BAD)[name], source="127.0.0.1")
    assert waited < 1.5, (how, waited)
    assert backend.received_nothing(settle=0.1)


@pytest.mark.parametrize("data,why", [
    (b"PROXY TCP4 127.30.4.21 127.0.0.1 70000 443\r\n", "port"),
    (b"PROXY TCP4 2001:db8:30::5 ::1 40000 443\r\n", "address"),
    (proxy_v2(CN_RENSHE, 40000, version=1), "version"),
    (proxy_v2(CN_RENSHE, 40000, length=0xFFFF), "long"),
    (proxy_v2(CN_RENSHE, 40000, fam=0x12), "family"),
])
def test_the_log_says_what_was_wrong(pgw, backend, data, why):
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        raw.sendall(data)
        wait_closed(raw, 4)
    finally:
        raw.close()
    lines = pgw.wait_log("PROXY header from 127.0.0.1: ")
    assert lines and why in lines[-1], lines


def test_largest_v2_header_is_accepted(pgw, backend):
    """1024 bytes in all (16 + 1008), TLVs after the addresses: the
    bound is exact, and a refused neighbour leaves the listener fine."""
    pad = 1008 - 12
    h = proxy_v2(CN_RENSHE, 40030, tlvs=bytes([0x04]) + (pad - 3).to_bytes(2, "big") +
                 b"\0" * (pad - 3))
    assert len(h) == 1024 and h.startswith(V2_SIG)
    r = get(pgw, cert="renshe", source="127.0.0.1", preamble=h)
    assert r.status == 200, r
    assert len(backend.wait_for(1)) == 1
