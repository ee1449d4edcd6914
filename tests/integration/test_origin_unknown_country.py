"""`unknown` in `defaults.countries`: an address the country database
does not cover (here loopback ranges left out of the test list, as the
intranet's private ranges are left out of GeoLite2) is admitted only when
`unknown` is listed; the audit record then carries no country. A zone
never stands in for a country.
"""
import pytest

from origintest import (CN_LAB, UNKNOWN_NOWHERE, UNKNOWN_RENSHE, US_RENSHE, denied,
                        forwarded_for, get, origin_gateway, origin_geodb,  # noqa: F401
                        origin_policy)


@pytest.mark.parametrize("cert,source", [
    ("minzheng", UNKNOWN_NOWHERE),
    ("renshe", UNKNOWN_RENSHE),   # in renshe's zone, but in no country
])
def test_unknown_is_blocked_when_not_listed(origin_gateway, backend, cert, source):
    gw = origin_gateway(policy=origin_policy(countries=("CN",)))
    body = denied(get(gw, cert=cert, source=source), 403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    rec = gw.decision(body["request_id"])
    assert rec["reason"] == "country_blocked", rec
    assert rec["client"]["ip"] == source, rec
    assert rec["client"]["country"] is None, rec


@pytest.mark.parametrize("cert,source,zone", [
    ("minzheng", UNKNOWN_NOWHERE, None),
    ("renshe", UNKNOWN_RENSHE, "renshe-net"),
])
def test_unknown_is_allowed_when_listed(origin_gateway, backend, cert, source, zone):
    gw = origin_gateway(policy=origin_policy(countries=("CN", "unknown")))
    r = get(gw, cert=cert, source=source)
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert forwarded_for(req) == source
    assert req.header("X-Govgate-Department") == cert
    rec = gw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["decision"] == "allow", rec
    assert rec["client"]["country"] is None, rec
    assert rec["client"]["zone"] == zone, rec


def test_unknown_does_not_admit_a_known_country(origin_gateway, backend):
    gw = origin_gateway(policy=origin_policy(countries=("CN", "unknown")))
    denied(get(gw, cert="minzheng", source=US_RENSHE), 403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    assert get(gw, cert="minzheng", source=CN_LAB).status == 200


def test_only_unknown_admits_the_intranet_alone(origin_gateway, backend):
    """countries: [unknown]: uncovered (private) sources only."""
    gw = origin_gateway(policy=origin_policy(countries=("unknown",)))
    assert get(gw, cert="minzheng", source=UNKNOWN_NOWHERE).status == 200
    denied(get(gw, cert="minzheng", source=CN_LAB), 403, "country_blocked")
    assert len(backend.wait_for(1)) == 1
