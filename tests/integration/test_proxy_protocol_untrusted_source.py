"""Only the balancers in `proxy_trusted` may say who the client is. A
PROXY header, v1 or v2, from any other source address is refused: the
connection is closed before TLS, nothing is forwarded, no decision is
recorded, and the log names the untrusted address. A trusted balancer
that sends no header is closed too.
"""
import pytest

from origintest import (CN_RENSHE, client_hello, get, origin_gateway, origin_geodb,  # noqa: F401
                        origin_policy, proxy_v1, proxy_v2, raw_connect, tls_refused,
                        wait_closed)

TRUSTED = ["127.0.0.0/30"]   # 127.0.0.0 - 127.0.0.3


@pytest.fixture
def pgw(origin_gateway):
    return origin_gateway(trusted=TRUSTED, policy=origin_policy(countries=("CN", "unknown")))


def assert_nothing_happened(gw, backend):
    assert backend.received_nothing(settle=0.2)
    assert gw.decisions() == [], gw.decisions()


@pytest.mark.parametrize("source", ["127.0.0.4", "127.30.4.21", "127.1.0.1"])
@pytest.mark.parametrize("version", [1, 2])
def test_header_from_an_untrusted_source_is_closed(pgw, backend, source, version):
    h = proxy_v1(CN_RENSHE, 40020) if version == 1 else proxy_v2(CN_RENSHE, 40020)
    raw = raw_connect(pgw.port, source=source)
    try:
        try:
            raw.sendall(h)
        except OSError:
            pass
        got, waited = wait_closed(raw, 3)
    finally:
        raw.close()
    assert got == b"", got
    assert waited < 1.5, "closed only after %.2fs (at a deadline, not at once)" % waited
    assert pgw.wait_log("%s is not in proxy_trusted" % source), pgw.stderr_text()[-2000:]
    assert_nothing_happened(pgw, backend)


@pytest.mark.parametrize("version", [1, 2])
def test_untrusted_source_cannot_complete_tls_either(pgw, backend, version):
    h = proxy_v1(CN_RENSHE, 40021) if version == 1 else proxy_v2(CN_RENSHE, 40021)
    how, waited = tls_refused(pgw, preamble=h, source="127.0.0.9")
    assert waited < 1.5, (how, waited)
    how, waited = tls_refused(pgw, source="127.0.0.9")   # and without a header
    assert waited < 1.5, (how, waited)
    assert_nothing_happened(pgw, backend)


def test_trusted_cidr_boundary(pgw, backend):
    """127.0.0.3 is inside 127.0.0.0/30 and gets through; 127.0.0.4 is not."""
    r = get(pgw, cert="renshe", source="127.0.0.3", preamble=proxy_v1(CN_RENSHE, 40022))
    assert r.status == 200, r
    assert len(backend.wait_for(1)) == 1
    backend.clear()
    tls_refused(pgw, preamble=proxy_v1(CN_RENSHE, 40023), source="127.0.0.4")
    assert backend.received_nothing(settle=0.2)


def test_trusted_balancer_without_a_header_is_closed(pgw, backend):
    """A ClientHello where the header should be: not a PROXY header."""
    raw = raw_connect(pgw.port, source="127.0.0.1")
    try:
        raw.sendall(client_hello(pgw))
        got, waited = wait_closed(raw, 3)
    finally:
        raw.close()
    assert got == b"" and waited < 1.5, (got, waited)
    assert pgw.wait_log("PROXY header from 127.0.0.1"), pgw.stderr_text()[-2000:]
    assert_nothing_happened(pgw, backend)
