"""Source countries (contract 4.1 `country_blocked`): clients bind
distinct loopback source addresses that the test country database
(contrib/mkcountries) puts in CN, US and VN. With `defaults.countries:
[CN]` a CN source reaches the backend, a US or VN source is refused with
403 `country_blocked` and nothing reaches the backend, whatever the
certificate or the zone; the audit record names the country.
"""
import pytest

import gwtest
from origintest import (CN_LAB, CN_NOZONE, CN_RENSHE, US_RENSHE, VN_ADDR, denied,
                        forwarded_for, get, origin_gateway, origin_geodb)  # noqa: F401


@pytest.mark.parametrize("cert,source,zone", [
    ("renshe", CN_RENSHE, "renshe-net"),
    ("minzheng", CN_LAB, "lab-net"),
    ("minzheng", CN_NOZONE, None),
])
def test_allowed_country_reaches_the_backend(origin_gateway, backend, cert, source, zone):
    gw = origin_gateway()
    r = get(gw, cert=cert, source=source)
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header("X-Govgate-Department") == cert
    assert forwarded_for(req) == source
    rec = gw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["decision"] == "allow", rec
    assert rec["client"]["ip"] == source, rec
    assert rec["client"]["country"] == "CN", rec
    assert rec["client"]["zone"] == zone, rec


@pytest.mark.parametrize("cert,source,country", [
    ("renshe", US_RENSHE, "US"),      # its zone is renshe-net: the country decides first
    ("minzheng", US_RENSHE, "US"),
    ("minzheng", VN_ADDR, "VN"),
    ("gongan", VN_ADDR, "VN"),        # even the owner of the resource
])
def test_blocked_country_is_403_and_reaches_nothing(origin_gateway, backend, cert, source,
                                                     country):
    gw = origin_gateway()
    r = get(gw, cert=cert, source=source)
    body = denied(r, 403, "country_blocked")
    assert body["error"] == "forbidden"
    assert backend.received_nothing(settle=0.2)
    rec = gw.decision(body["request_id"])
    assert rec["decision"] == "deny" and rec["reason"] == "country_blocked", rec
    assert rec["client"]["ip"] == source, rec
    assert rec["client"]["country"] == country, rec
    assert rec["subject"]["department"] == cert, rec


def test_country_list_is_enforced_per_request_on_one_gateway(origin_gateway, backend):
    """Allowed and blocked sources interleaved on the same gateway and
    keep-alive connections: each decision uses its own source."""
    gw = origin_gateway()
    for _ in range(3):
        assert get(gw, cert="minzheng", source=CN_LAB).status == 200
        denied(get(gw, cert="minzheng", source=VN_ADDR), 403, "country_blocked")
    reqs = backend.wait_for(3)
    assert len(reqs) == 3
    assert all(forwarded_for(q) == CN_LAB for q in reqs)
    gwtest.wait_until(lambda: len(gw.decisions()) >= 6, 5)
    seen = [(d["client"]["ip"], d["client"]["country"], d["decision"]) for d in gw.decisions()]
    assert seen == [(CN_LAB, "CN", "allow"), (VN_ADDR, "VN", "deny")] * 3, seen
