"""A listener without `proxy_protocol` takes no PROXY header: one sent
before the ClientHello makes the TLS handshake fail (it is no TLS record),
nothing is forwarded and no decision is recorded; the log names the
handshake failure. Sent inside TLS as the first line of the request it
is a malformed request line: 400 `bad_request`, nothing forwarded. The
socket's own address stays the client's, and other clients are served.
"""
import pytest

import gwtest
from origintest import (CN_LAB, CN_RENSHE, denied, forwarded_for, get, open_tls,  # noqa: F401
                        origin_gateway, origin_geodb, origin_policy, proxy_v1, proxy_v2,
                        tls_refused)

HEADERS = [proxy_v1(CN_RENSHE, 40050), proxy_v2(CN_RENSHE, 40050),
           proxy_v2(None, command=0), b"PROXY UNKNOWN\r\n"]
IDS = ["v1", "v2", "v2-local", "v1-unknown"]


@pytest.fixture
def gw(origin_gateway):
    return origin_gateway(policy=origin_policy(countries=("CN", "unknown")))


@pytest.mark.parametrize("header", HEADERS, ids=IDS)
def test_proxy_header_before_tls_fails_the_handshake(gw, backend, header):
    how, waited = tls_refused(gw, preamble=header, source=CN_LAB)
    assert how.startswith("handshake:") or "alert" in how or "eof" in how or "reset" in how, how
    assert waited < 1.5, (how, waited)
    assert backend.received_nothing(settle=0.2)
    assert gw.decisions() == []
    assert gw.wait_log("handshake: "), gw.stderr_text()[-2000:]
    # The listener still serves TLS clients, with their socket address.
    r = get(gw, cert="renshe", source=CN_RENSHE)
    assert r.status == 200, r
    assert forwarded_for(backend.wait_for(1)[0]) == CN_RENSHE


@pytest.mark.parametrize("version", [1, 2])
def test_proxy_header_inside_tls_is_a_bad_request(gw, backend, version):
    h = proxy_v1(CN_RENSHE, 40051) if version == 1 else proxy_v2(CN_RENSHE, 40051)
    c = open_tls(gw, cert="renshe", source=CN_LAB)
    try:
        c.send(h + gwtest.build_request("GET", "/api/echo"))
        r = c.read_response(timeout=5)
        assert c.expect_closed(5) == b""
    finally:
        c.close()
    rid = denied(r, 400, "bad_request")["request_id"]
    assert backend.received_nothing(settle=0.2)
    rec = gw.decision(rid)
    assert rec["decision"] == "deny" and rec["reason"] == "bad_request", rec
    assert rec["client"]["ip"] == CN_LAB, rec
