"""PROXY protocol from a trusted balancer: the listener has
`proxy_protocol: true` and `proxy_trusted: [127.0.0.1/32]`; the test
client connects from 127.0.0.1 and sends a v1 or v2 header before its TLS
ClientHello. The source address in the header, not the balancer's, then
decides the country and zone steps and is what the audit record
(`client.ip`, `client.port`) and the backend's `Forwarded` show: IPv4,
IPv6, IPv4-mapped IPv6 (looked up as IPv4), and never the IPv4 inside a
6to4 or Teredo address. LOCAL (v2) and UNKNOWN (v1) keep the balancer's
own address.
"""
import socket
import time

import pytest

import gwtest
from origintest import (CN_LAB, CN_RENSHE, SIXTOFOUR, TEREDO, US_RENSHE, V6_RENSHE, V6_US,
                        denied, forwarded_for, get, open_tls, origin_gateway,  # noqa: F401
                        origin_geodb, origin_policy, proxy_v1, proxy_v2, same_ip, tlv)

BALANCER = "127.0.0.1"


def header(version, src, sport):
    return proxy_v1(src, sport) if version == 1 else proxy_v2(src, sport)


@pytest.fixture
def pgw(origin_gateway):
    return origin_gateway(trusted=["127.0.0.1/32"],
                          policy=origin_policy(countries=("CN", "unknown")))


def check_allowed(gw, backend, r, src, sport, country, zone, dept="renshe"):
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header("X-Govgate-Department") == dept
    assert same_ip(forwarded_for(req), src), req.header("Forwarded")
    rec = gw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["decision"] == "allow", rec
    assert same_ip(rec["client"]["ip"], src), rec
    assert rec["client"]["port"] == sport, rec
    assert rec["client"]["country"] == country, rec
    assert rec["client"]["zone"] == zone, rec
    return rec, req


@pytest.mark.parametrize("version", [1, 2])
def test_header_source_drives_zone_audit_and_forwarded(pgw, backend, version):
    r = get(pgw, cert="renshe", source=BALANCER, preamble=header(version, CN_RENSHE, 40001))
    rec, req = check_allowed(pgw, backend, r, CN_RENSHE, 40001, "CN", "renshe-net")
    assert rec["client"]["ip"] == CN_RENSHE
    assert req.header("Forwarded") == "for=%s;proto=https" % CN_RENSHE


@pytest.mark.parametrize("version", [1, 2])
def test_header_source_in_a_blocked_country_is_refused(pgw, backend, version):
    r = get(pgw, cert="renshe", source=BALANCER, preamble=header(version, US_RENSHE, 40002))
    body = denied(r, 403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    rec = pgw.decision(body["request_id"])
    assert rec["client"] == {"ip": US_RENSHE, "port": 40002, "country": "US",
                             "zone": "renshe-net"}, rec


@pytest.mark.parametrize("version", [1, 2])
def test_header_source_outside_the_zone_is_zone_mismatch(pgw, backend, version):
    body = denied(get(pgw, cert="renshe", source=BALANCER,
                      preamble=header(version, CN_LAB, 40003)), 403, "zone_mismatch")
    assert backend.received_nothing(settle=0.2)
    assert pgw.decision(body["request_id"])["client"]["zone"] == "lab-net"
    # The balancer's own address (in no zone) was never what decided.
    r = get(pgw, cert="minzheng", source=BALANCER, preamble=header(version, CN_LAB, 40004))
    check_allowed(pgw, backend, r, CN_LAB, 40004, "CN", "lab-net", dept="minzheng")


@pytest.mark.parametrize("version", [1, 2])
def test_ipv6_source_is_looked_up_and_forwarded_quoted(pgw, backend, version):
    r = get(pgw, cert="renshe", source=BALANCER, preamble=header(version, V6_RENSHE, 40005))
    rec, req = check_allowed(pgw, backend, r, V6_RENSHE, 40005, "CN", "renshe-net")
    assert rec["client"]["ip"] == V6_RENSHE
    assert req.header("Forwarded") == 'for="[%s]";proto=https' % V6_RENSHE


@pytest.mark.parametrize("version", [1, 2])
def test_ipv6_source_in_a_blocked_country_is_refused(pgw, backend, version):
    body = denied(get(pgw, cert="minzheng", source=BALANCER,
                      preamble=header(version, V6_US, 40006)), 403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    rec = pgw.decision(body["request_id"])
    assert (rec["client"]["ip"], rec["client"]["country"]) == (V6_US, "US"), rec


@pytest.mark.parametrize("version", [1, 2])
def test_ipv4_mapped_ipv6_source_is_looked_up_as_ipv4(pgw, backend, version):
    mapped = "::ffff:" + CN_RENSHE
    r = get(pgw, cert="renshe", source=BALANCER, preamble=header(version, mapped, 40007))
    check_allowed(pgw, backend, r, CN_RENSHE, 40007, "CN", "renshe-net")
    backend.clear()
    body = denied(get(pgw, cert="minzheng", source=BALANCER,
                      preamble=header(version, "::ffff:" + US_RENSHE, 40008)),
                  403, "country_blocked")
    assert backend.received_nothing(settle=0.2)
    assert pgw.decision(body["request_id"])["client"]["country"] == "US"


@pytest.mark.parametrize("src", [SIXTOFOUR, TEREDO], ids=["6to4", "teredo"])
def test_6to4_and_teredo_sources_are_not_aliased_to_ipv4(pgw, backend, src):
    """2002:7f1e:415::1 embeds 127.30.4.21 (renshe-net, CN): anyone can
    pick such an address, so it must not inherit that zone or country."""
    body = denied(get(pgw, cert="renshe", source=BALANCER, preamble=proxy_v2(src, 40009)),
                  403, "zone_mismatch")
    assert backend.received_nothing(settle=0.2)
    rec = pgw.decision(body["request_id"])
    assert rec["client"]["ip"] == src, rec
    assert rec["client"]["country"] is None and rec["client"]["zone"] is None, rec


@pytest.mark.parametrize("preamble", [proxy_v2(None, command=0), b"PROXY UNKNOWN\r\n",
                                      b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"],
                         ids=["v2-local", "v1-unknown", "v1-unknown-with-addresses"])
def test_local_and_unknown_keep_the_balancer_address(pgw, backend, preamble):
    r = get(pgw, cert="minzheng", source=BALANCER, preamble=preamble)
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert forwarded_for(req) == BALANCER
    rec = pgw.decision(r.header("X-Govgate-Request-Id"))
    assert rec["client"]["ip"] == BALANCER, rec
    assert rec["client"]["country"] is None and rec["client"]["zone"] is None, rec


def test_v2_tlvs_are_skipped(pgw, backend):
    tlvs = (tlv(0x01, b"http/1.1") + tlv(0x02, b"gw.example") + tlv(0x04, b"\0" * 7) +
            tlv(0x05, b"conn-42"))
    r = get(pgw, cert="renshe", source=BALANCER, preamble=proxy_v2(CN_RENSHE, 40010, tlvs=tlvs))
    check_allowed(pgw, backend, r, CN_RENSHE, 40010, "CN", "renshe-net")


@pytest.mark.parametrize("version", [1, 2])
def test_header_and_client_hello_in_one_segment(pgw, backend, version):
    """The header is taken byte-exactly: the ClientHello behind it in the
    same read stays for TLS."""
    r = get(pgw, cert="renshe", source=BALANCER, preamble=header(version, CN_RENSHE, 40011),
            coalesce=True)
    check_allowed(pgw, backend, r, CN_RENSHE, 40011, "CN", "renshe-net")


@pytest.mark.parametrize("version", [1, 2])
def test_header_in_small_pieces_within_the_deadline(pgw, backend, version):
    h = header(version, CN_RENSHE, 40012)
    raw = socket.create_connection((pgw.host, pgw.port), source_address=(BALANCER, 0))
    for i in range(0, len(h), 5):
        raw.sendall(h[i:i + 5])
        time.sleep(0.01)
    s = pgw.context("renshe").wrap_socket(raw, server_hostname="localhost")
    c = gwtest.Conn(s, raw)
    try:
        c.send(gwtest.build_request("GET", "/api/echo"))
        r = c.read_response()
    finally:
        c.close()
    check_allowed(pgw, backend, r, CN_RENSHE, 40012, "CN", "renshe-net")


def test_every_request_on_a_kept_alive_connection_has_the_header_source(pgw, backend):
    c = open_tls(pgw, cert="renshe", source=BALANCER, preamble=proxy_v1(CN_RENSHE, 40013))
    try:
        rids = []
        for _ in range(3):
            c.send(gwtest.build_request("GET", "/api/echo"))
            r = c.read_response()
            assert r.status == 200, r
            rids.append(r.header("X-Govgate-Request-Id"))
    finally:
        c.close()
    assert [forwarded_for(q) for q in backend.wait_for(3)] == [CN_RENSHE] * 3
    for rid in rids:
        assert pgw.decision(rid)["client"]["ip"] == CN_RENSHE


def test_ipv6_balancer_on_an_ipv6_listener(origin_gateway, backend):
    try:
        gw = origin_gateway(host="::1", trusted=["::1/128"],
                            policy=origin_policy(countries=("CN", "unknown")))
    except OSError as e:
        pytest.skip("no ::1: %s" % e)
    r = get(gw, cert="renshe", preamble=proxy_v2(CN_RENSHE, 40014, dst="127.0.0.1"))
    check_allowed(gw, backend, r, CN_RENSHE, 40014, "CN", "renshe-net")
