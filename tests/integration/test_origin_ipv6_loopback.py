"""IPv6 loopback: a listener on [::1] and a client from ::1. The zone and
country databases keep IPv4 at ::/96, so contrib/mkzones refuses to map
::1 (it lies in the IPv4-compatible range) and the gateway looks ::/96
sources up as `unknown` and in no zone: ::1 passes the country step only
when `unknown` is listed, never matches a department's zones, and is
recorded and forwarded as an IPv6 address (RFC 7239 quoting).
"""
import os
import subprocess

import pytest

import gwtest
from origintest import (denied, forwarded_for, get, origin_gateway, origin_geodb,  # noqa: F401
                        origin_policy)


@pytest.fixture
def v6gw(origin_gateway):
    def make(**kw):
        try:
            return origin_gateway(host="::1", **kw)
        except OSError as e:  # no IPv6 loopback in this sandbox
            pytest.skip("no ::1: %s" % e)
    return make


@pytest.mark.parametrize("tool", ["mkzones", "mkcountries"])
@pytest.mark.parametrize("net", ["::1/128", "::1"])
def test_mkzones_refuses_to_map_ipv6_loopback(tmp_path, tool, net):
    out = str(tmp_path / "x.mmdb")
    value = "lo6" if tool == "mkzones" else "CN"
    r = subprocess.run(["perl", os.path.join(gwtest.TOP_SRCDIR, "contrib", tool), out, "-"],
                       input="%s %s\n" % (net, value), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, r
    assert "<stdin>:1:" in r.stderr and "IPv4-compatible" in r.stderr, r.stderr
    assert not os.path.exists(out)


def test_ipv6_loopback_is_unknown_and_blocked_without_unknown(v6gw, backend):
    gw = v6gw(policy=origin_policy(countries=("CN",)))
    body = denied(get(gw, cert="minzheng"), 403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    rec = gw.decision(body["request_id"])
    assert rec["client"]["ip"] == "::1", rec
    assert rec["client"]["country"] is None and rec["client"]["zone"] is None, rec


def test_ipv6_loopback_allowed_with_unknown_and_forwarded_quoted(v6gw, backend):
    gw = v6gw(policy=origin_policy(countries=("CN", "unknown")))
    r = get(gw, cert="minzheng")
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header("Forwarded") == 'for="[::1]";proto=https', req
    assert forwarded_for(req) == "::1"
    rec = gw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["decision"] == "allow", rec
    assert rec["client"]["ip"] == "::1", rec
    assert rec["client"]["country"] is None and rec["client"]["zone"] is None, rec


def test_ipv6_loopback_is_in_no_zone(v6gw, backend):
    gw = v6gw(policy=origin_policy(countries=("CN", "unknown")))
    body = denied(get(gw, cert="renshe"), 403, "zone_mismatch")
    assert backend.received_nothing(settle=0.2)
    assert gw.decision(body["request_id"])["client"]["zone"] is None
