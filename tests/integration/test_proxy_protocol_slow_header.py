"""A PROXY header is bounded in time by the handshake deadline
(`limits.handshake_timeout`, here 1s), which also covers the TLS
handshake after it: a header never completed, one dribbled a byte at a
time past the deadline, or a complete header followed by no ClientHello,
is closed at the deadline and nothing is forwarded. Progress does not
extend it. A header sent in pieces well within it is fine.
"""
import socket
import time

import pytest

import gwtest
from origintest import (CN_RENSHE, origin_gateway, origin_geodb, origin_policy,  # noqa: F401
                        proxy_v1, proxy_v2, raw_connect)

DEADLINE = 1.0


@pytest.fixture
def pgw(origin_gateway):
    return origin_gateway(trusted=["127.0.0.1/32"], limits={"handshake_timeout": "1s"},
                          policy=origin_policy(countries=("CN", "unknown")))


def dribble_until_closed(sock, data, step, limit):
    """Send data one byte every step seconds, then wait; returns the
    seconds from the first byte until the gateway closed."""
    t0 = time.monotonic()
    sock.settimeout(0.01)
    i = 0
    while time.monotonic() - t0 < limit:
        if i < len(data):
            try:
                sock.send(data[i:i + 1])
            except OSError:
                return time.monotonic() - t0
            i += 1
        try:
            got = sock.recv(4096)
        except socket.timeout:
            time.sleep(step)
            continue
        except OSError:
            return time.monotonic() - t0
        assert got == b"", "the gateway answered %r" % got
        return time.monotonic() - t0
    raise AssertionError("still open after %ss (%d of %d bytes sent)" % (limit, i, len(data)))


def check_closed_at_deadline(gw, backend, waited, what):
    assert DEADLINE - 0.2 <= waited <= DEADLINE + 1.5, "%s: closed after %.2fs" % (what, waited)
    assert backend.received_nothing(settle=0.1)
    assert gw.decisions() == []


@pytest.mark.parametrize("partial", [
    b"PROXY TCP4 127.30.4.21 ",
    proxy_v1(CN_RENSHE, 40040)[:-1],           # all but the final LF
    proxy_v2(CN_RENSHE, 40040)[:10],          # in the signature
    proxy_v2(CN_RENSHE, 40040)[:20],          # in the addresses
    b"",                                      # nothing at all
], ids=["v1-half", "v1-no-lf", "v2-signature", "v2-addresses", "silent"])
def test_incomplete_header_is_closed_at_the_deadline(pgw, backend, partial):
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        if partial:
            raw.sendall(partial)
        waited = dribble_until_closed(raw, b"", 0.02, 6)
    finally:
        raw.close()
    check_closed_at_deadline(pgw, backend, waited, "incomplete header")
    assert pgw.wait_log("PROXY header: not complete after 1000 ms"), pgw.stderr_text()[-2000:]


@pytest.mark.parametrize("version", [1, 2])
def test_header_dribbled_past_the_deadline_is_closed(pgw, backend, version):
    h = proxy_v1(CN_RENSHE, 40041) if version == 1 else proxy_v2(CN_RENSHE, 40041)
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        # One byte every 0.1s: 1.6s to 4.7s for the whole header.
        waited = dribble_until_closed(raw, h, 0.1, 8)
    finally:
        raw.close()
    check_closed_at_deadline(pgw, backend, waited, "dribbled header")


def test_complete_header_without_client_hello_is_closed_at_the_deadline(pgw, backend):
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        raw.sendall(proxy_v1(CN_RENSHE, 40042))
        waited = dribble_until_closed(raw, b"", 0.02, 6)
    finally:
        raw.close()
    check_closed_at_deadline(pgw, backend, waited, "no ClientHello")
    assert pgw.wait_log("handshake: not complete after 1000 ms"), pgw.stderr_text()[-2000:]


def test_header_late_in_the_deadline_leaves_only_the_rest_for_tls(pgw, backend):
    """The deadline runs from accept: a header at 0.7s leaves 0.3s, and a
    ClientHello sent after 1.2s finds the connection closed."""
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        time.sleep(0.7)
        raw.sendall(proxy_v2(CN_RENSHE, 40043))
        time.sleep(0.5)
        s = pgw.context("renshe").wrap_socket(raw, server_hostname="localhost")
        c = gwtest.Conn(s, raw)
        c.send(gwtest.build_request("GET", "/api/echo"))
        with pytest.raises(gwtest.NoResponse):
            c.read_response(timeout=3)
    except (OSError, ValueError):
        pass   # refused during the handshake: as good
    finally:
        raw.close()
    assert backend.received_nothing(settle=0.1)


def test_header_in_pieces_within_the_deadline_is_fine(pgw, backend):
    h = proxy_v1(CN_RENSHE, 40044)
    raw = raw_connect(pgw.port, source="127.0.0.1")
    for i in range(0, len(h), 4):
        raw.sendall(h[i:i + 4])
        time.sleep(0.02)
    s = pgw.context("renshe").wrap_socket(raw, server_hostname="localhost")
    c = gwtest.Conn(s, raw)
    try:
        c.send(gwtest.build_request("GET", "/api/echo"))
        r = c.read_response()
    finally:
        c.close()
    assert r.status == 200, r
    assert backend.wait_for(1)[0].header("Forwarded") == "for=%s;proto=https" % CN_RENSHE
