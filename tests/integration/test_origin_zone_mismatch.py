"""Department zones (contract 4.1 `zone_mismatch`): renshe may call only
from renshe-net. From another zone, or from an address in no zone, its
verified certificate is refused with 403 `zone_mismatch` and nothing
reaches the backend; a department without `zones` may call from
anywhere. The audit record carries the zone that was found.
"""
import pytest

from origintest import (CN_LAB, CN_NOZONE, CN_RENSHE, denied, forwarded_for, get,
                        origin_gateway, origin_geodb, origin_policy)  # noqa: F401


def test_department_inside_its_zone_is_allowed(origin_gateway, backend):
    gw = origin_gateway()
    r = get(gw, cert="renshe", source=CN_RENSHE)
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header("X-Govgate-Department") == "renshe"
    assert forwarded_for(req) == CN_RENSHE
    rec = gw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["client"]["zone"] == "renshe-net", rec


@pytest.mark.parametrize("source,zone", [
    (CN_LAB, "lab-net"),      # another department's zone
    (CN_NOZONE, None),        # in no zone at all
    ("127.30.5.1", None),     # next to renshe-net (127.30.4.0/24), not in it
])
def test_department_outside_its_zones_is_zone_mismatch(origin_gateway, backend, source, zone):
    gw = origin_gateway()
    body = denied(get(gw, cert="renshe", source=source), 403, "zone_mismatch")
    assert body["error"] == "forbidden"
    assert backend.received_nothing(settle=0.2)
    rec = gw.decision(body["request_id"])
    assert rec["decision"] == "deny" and rec["reason"] == "zone_mismatch", rec
    assert rec["client"]["ip"] == source, rec
    assert rec["client"]["country"] == "CN", rec
    assert rec["client"]["zone"] == zone, rec
    assert rec["subject"]["department"] == "renshe", rec


@pytest.mark.parametrize("source", [CN_LAB, CN_NOZONE, CN_RENSHE])
def test_department_without_zones_calls_from_anywhere(origin_gateway, backend, source):
    gw = origin_gateway()
    r = get(gw, cert="minzheng", source=source)
    assert r.status == 200, r
    assert forwarded_for(backend.wait_for(1)[0]) == source


def test_any_of_several_zones_will_do(origin_gateway, backend):
    gw = origin_gateway(policy=origin_policy(renshe_zones=("renshe-net", "lab-net")))
    assert get(gw, cert="renshe", source=CN_LAB).status == 200
    assert get(gw, cert="renshe", source=CN_RENSHE).status == 200
    denied(get(gw, cert="renshe", source=CN_NOZONE), 403, "zone_mismatch")
    assert len(backend.wait_for(2)) == 2
