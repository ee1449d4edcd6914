"""The example policy (policies/) through `govgate serve`, with clients
binding 127.x source addresses to pick their zone and country
(tests/policy/zones.txt, countries.txt): what the backend receives on an
allowed request (contract 5), the JSON denials of contract 4.1, and the
response mask of the consumer.
"""
import json
import os

import pytest

import gwtest

PERSON = "/psb/v1/persons/450102199001011234"
RENSHE_NET = "127.30.0.5"
UPSTREAMS = ["psb-api", "hrss-api", "civil-api", "health-api", "market-api", "estate-api",
             "bigdata-api"]


@pytest.fixture(scope="module")
def egw(tmp_path_factory, pki, geodb):
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("example")), pki, backend=b,
                       policy_path=os.path.join(gwtest.TOP_SRCDIR, "policies"),
                       upstreams={u: b.address for u in UPSTREAMS}, geodb=geodb)
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def call(gw, backend, path=PERSON, headers=None, cert="renshe", source=RENSHE_NET,
         method="GET", body=b""):
    backend.clear()
    return gw.request(method, path, headers=headers, cert=cert, source=source, body=body)


def denied(r, status, reason):
    assert r.status == status, r
    body = r.json()
    assert body["reason"] == reason, body
    assert body["request_id"] == r.header("X-Govgate-Request-Id")
    return body


def test_pension_office_reads_a_person_with_every_identity_header(egw):
    gw, b = egw
    b.body = json.dumps({"id_number": "450102199001011234", "name": "张三丰",
                         "phone": "13800138000", "photo": "base64..."},
                        ensure_ascii=False).encode()
    try:
        r = call(gw, b, headers={"X-Purpose": "pension-eligibility", "X-Operator-Id": "u1043"})
    finally:
        b.body = None
    assert r.status == 200, r
    req = b.wait_for(1)[0]
    assert req.target == PERSON
    assert req.header("X-Govgate-Department") == "renshe"
    assert req.header("X-Govgate-Resource") == "household-registry"
    assert req.header("X-Govgate-Grant") == "NNZW-2026-0113"
    assert req.header("X-Govgate-Purpose") == "pension-eligibility"
    assert req.header("X-Govgate-Request-Id") == r.header("X-Govgate-Request-Id")
    assert req.header_all("X-Govgate-Case") == []
    fwd = req.header("Forwarded")
    assert fwd is not None and "for=" in fwd and RENSHE_NET in fwd and "proto=https" in fwd
    # household-basic mask for a consumer other than the owner
    out = r.json()
    assert out["id_number"] == "450102********1234", out
    assert out["phone"] == "138****8000", out
    assert out["name"] == "张**", out
    assert "photo" not in out


def test_outside_the_department_zone_is_zone_mismatch(egw):
    gw, b = egw
    r = call(gw, b, headers={"X-Purpose": "pension-eligibility"}, source="127.0.0.1")
    denied(r, 403, "zone_mismatch")
    assert b.received_nothing(settle=0.1)


def test_blocked_country_is_country_blocked(egw):
    gw, b = egw
    r = call(gw, b, headers={"X-Purpose": "pension-eligibility"}, source="127.20.0.5")
    body = denied(r, 403, "country_blocked")
    assert body["error"] == "forbidden"
    assert b.received_nothing(settle=0.1)


def test_missing_purpose_is_purpose_required(egw):
    gw, b = egw
    denied(call(gw, b), 403, "purpose_required")
    assert b.received_nothing(settle=0.1)


def test_case_header_required_by_the_grant_and_passed_on(egw):
    gw, b = egw
    h = {"X-Purpose": "work-injury-determination"}
    denied(call(gw, b, headers=h), 403, "case_required")
    assert b.received_nothing(settle=0.1)
    h["X-Case-Id"] = "GS-2026-0042"
    r = call(gw, b, headers=h)
    assert r.status == 200, r
    req = b.wait_for(1)[0]
    assert req.header("X-Govgate-Grant") == "NNZW-2026-0114"
    assert req.header("X-Govgate-Case") == "GS-2026-0042"


def test_not_shared_resource_is_denied_even_with_a_purpose(egw):
    gw, b = egw
    r = call(gw, b, path=PERSON + "/photo", headers={"X-Purpose": "pension-eligibility"})
    denied(r, 403, "not_shared")
    assert b.received_nothing(settle=0.1)


def test_open_resource_needs_no_grant(egw):
    gw, b = egw
    r = call(gw, b, path="/open/v1/stats/population/2025", cert="shichang", source="127.60.0.9")
    assert r.status == 200, r
    req = b.wait_for(1)[0]
    assert req.header("X-Govgate-Department") == "shichang"
    assert req.header_all("X-Govgate-Grant") == []


def test_grant_rate_is_enforced_with_429(egw):
    gw, b = egw
    h = {"X-Purpose": "enterprise-identity-check", "Content-Type": "application/json"}
    statuses = []
    c = gw.connect("shichang", source="127.60.0.9")
    try:
        for _ in range(12):
            c.send(gwtest.build_request("POST", "/bigdata/v1/population/verify", h,
                                        b'{"name":"x","id_number":"1"}'))
            r = c.read_response()
            statuses.append(r.status)
            if r.status == 429:
                denied(r, 429, "rate_limited")
                break
    finally:
        c.close()
    assert 429 in statuses, statuses
    assert statuses[0] == 200, statuses
