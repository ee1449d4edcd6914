"""`govgate explain --from IP` looks the address up exactly as `serve`
does: for IPv4, IPv6, IPv4-mapped, 6to4 and uncovered sources (served
through a trusted PROXY v2 header that carries the address), explain's
decision, reason and status, and the country and zone it shows, equal
what the gateway decided and recorded.
"""
import json
import os
import subprocess

import pytest

import gwtest
from origintest import (CN_LAB, CN_NOZONE, CN_RENSHE, SIXTOFOUR, UNKNOWN_NOWHERE,  # noqa: F401
                        UNKNOWN_RENSHE, US_RENSHE, V6_RENSHE, V6_US, VN_ADDR, OriginGateway,
                        get, origin_geodb, origin_policy, proxy_v2)

SOURCES = [CN_RENSHE, CN_LAB, CN_NOZONE, US_RENSHE, VN_ADDR, UNKNOWN_RENSHE, UNKNOWN_NOWHERE,
           V6_RENSHE, V6_US, "::ffff:" + CN_RENSHE, "::ffff:" + US_RENSHE, SIXTOFOUR]


@pytest.fixture(scope="module")
def both(tmp_path_factory, pki, origin_geodb):
    b = gwtest.RecordingBackend().start()
    g = OriginGateway(str(tmp_path_factory.mktemp("explain")), pki, backend=b,
                      geodb=origin_geodb, trusted=["127.0.0.1/32"],
                      policy=origin_policy(countries=("CN", "unknown")))
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def explain(gw, pki, cert, source):
    r = subprocess.run([gwtest.GOVGATE, "explain", "-c", gw.config_path, "--json",
                        "--cert", os.path.join(pki, cert + ".crt"), "--from", source,
                        "GET", "/api/echo"], capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 1), r
    return json.loads(r.stdout)


@pytest.mark.parametrize("cert", ["renshe", "minzheng"])
@pytest.mark.parametrize("source", SOURCES)
def test_explain_from_decides_as_serve(both, pki, cert, source):
    gw, b = both
    r = get(gw, cert=cert, source="127.0.0.1", preamble=proxy_v2(source, 40060))
    rid = r.header("X-Govgate-Request-Id")
    rec = gw.decision(rid)
    ex = explain(gw, pki, cert, source)
    assert (ex["decision"], ex["reason"], ex["status"]) == \
        (rec["decision"], rec["reason"], r.status), (ex, rec)
    notes = {s["step"]: s["note"] for s in ex["steps"]}
    country = rec["client"]["country"] or "unknown"
    zone = rec["client"]["zone"] or "(none)"
    assert notes["country"].split()[-1] == country, (notes, rec["client"])
    if notes.get("zone"):
        assert notes["zone"].split()[-1] == zone, (notes, rec["client"])
