"""A denial by origin names the address and what decided it: the error
log line of a `country_blocked` request holds the source address and its
country, that of a `zone_mismatch` request the source address and the
zone it was found in; the audit record holds `client.ip`, `client.port`,
`client.country` and `client.zone` in the contract's order.
"""
import pytest

from origintest import (CN_LAB, CN_NOZONE, US_RENSHE, VN_ADDR, denied, get,
                        origin_gateway, origin_geodb)  # noqa: F401


def log_about(gw, rid):
    """Every error-log line that names request id rid."""
    lines = gw.wait_log(rid)
    assert lines, "no log line names request %s; log:\n%s" % (rid, gw.stderr_text()[-3000:])
    return lines


@pytest.mark.parametrize("cert,source,country", [
    ("minzheng", US_RENSHE, "US"),
    ("renshe", VN_ADDR, "VN"),
])
def test_country_denial_log_names_address_and_country(origin_gateway, backend, cert, source,
                                                       country):
    gw = origin_gateway()
    rid = denied(get(gw, cert=cert, source=source), 403, "country_blocked")["request_id"]
    assert backend.received_nothing(settle=0.1)
    lines = [ln for ln in log_about(gw, rid) if "country_blocked" in ln]
    assert lines, gw.log_lines(rid)
    assert any(source in ln and country in ln for ln in lines), \
        "the denial's log lines do not name both %s and %s: %r" % (source, country, lines)


@pytest.mark.parametrize("source,zone", [
    (CN_LAB, "lab-net"),
])
def test_zone_denial_log_names_address_and_zone(origin_gateway, backend, source, zone):
    gw = origin_gateway()
    rid = denied(get(gw, cert="renshe", source=source), 403, "zone_mismatch")["request_id"]
    assert backend.received_nothing(settle=0.1)
    lines = [ln for ln in log_about(gw, rid) if "zone_mismatch" in ln]
    assert lines, gw.log_lines(rid)
    assert any(source in ln and zone in ln for ln in lines), \
        "the denial's log lines do not name both %s and %s: %r" % (source, zone, lines)


def test_zone_denial_from_no_zone_log_names_address(origin_gateway, backend):
    gw = origin_gateway()
    rid = denied(get(gw, cert="renshe", source=CN_NOZONE), 403, "zone_mismatch")["request_id"]
    lines = [ln for ln in log_about(gw, rid) if "zone_mismatch" in ln]
    assert any(CN_NOZONE in ln for ln in lines), lines


def test_audit_client_object_carries_country_and_zone_in_order(origin_gateway, backend):
    gw = origin_gateway()
    rid = denied(get(gw, cert="renshe", source=CN_LAB), 403, "zone_mismatch")["request_id"]
    rec = gw.decision(rid)
    assert list(rec["client"].keys()) == ["ip", "port", "country", "zone"], rec["client"]
    assert rec["client"]["ip"] == CN_LAB
    assert isinstance(rec["client"]["port"], int) and rec["client"]["port"] > 0
    assert (rec["client"]["country"], rec["client"]["zone"]) == ("CN", "lab-net"), rec
    # The raw line keeps the contract's key order too.
    with open(gw.audit_path, encoding="utf-8") as f:
        raw = [ln for ln in f if rid in ln and '"event":"decision"' in ln]
    assert len(raw) == 1, raw
    assert ('"client":{"ip":"%s","port":%d,"country":"CN","zone":"lab-net"}'
            % (CN_LAB, rec["client"]["port"])) in raw[0], raw[0]
