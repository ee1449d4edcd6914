"""Upstream failures (testing.md "Upstream failure"): a backend that
refuses, resets, or answers with a malformed, ambiguous or oversized head
yields 502 to the client, and nothing of the bad head is passed on; the
next request gets a fresh upstream connection. Responses lose their
hop-by-hop headers and always carry the gateway's own request id.
"""
import time

import pytest

import gwtest

BAD_HEADS = [
    ("cl_and_te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n"),
    ("two_content_lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                            b"hello!"),
    ("bare_lf_head", b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}"),
    ("obs_fold", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"),
    ("nul_in_value", b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}"),
    ("space_before_colon", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}"),
    ("switching_protocols", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                            b"Connection: Upgrade\r\n\r\n"),
    ("http2_status_line", b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
    ("status_four_digits", b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}"),
    ("not_http", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
    ("cl_plus", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}"),
]


def expect_502_then_recovery(gw, backend):
    r = gw.request("GET", "/api/echo", timeout=10)
    assert r.status == 502, r
    assert r.header("X-Govgate-Request-Id")
    backend.mode = "normal"
    r2 = gw.request("GET", "/api/echo", timeout=10)
    assert r2.status == 200, r2
    return r


@pytest.mark.parametrize("name,raw", BAD_HEADS, ids=[b[0] for b in BAD_HEADS])
def test_malformed_upstream_head_is_502(make_gateway, backend, name, raw):
    gw = make_gateway()
    backend.mode = "raw"
    backend.raw_response = raw
    r = expect_502_then_recovery(gw, backend)
    assert b"hello" not in r.body and b"h2c" not in r.raw.lower()


def test_broken_header_line_is_502(make_gateway, backend):
    gw = make_gateway()
    backend.mode = "malformed_head"
    r = expect_502_then_recovery(gw, backend)
    assert b"Broken header line" not in r.raw + r.body


def test_oversized_upstream_head_is_502(make_gateway, backend):
    gw = make_gateway()
    backend.mode = "huge_head"
    backend.huge = 256 * 1024
    r = expect_502_then_recovery(gw, backend)
    assert b"X-Huge" not in r.raw


def test_upstream_reset_on_request_is_502(make_gateway, backend):
    gw = make_gateway()
    backend.mode = "reset"
    expect_502_then_recovery(gw, backend)


def test_refused_upstream_connection_is_502_quickly(make_gateway, backend):
    port = gwtest.free_port()  # nothing listens there
    gw = make_gateway(upstreams={"echo-api": "127.0.0.1:%d" % port})
    t0 = time.monotonic()
    r = gw.request("GET", "/api/echo", timeout=10)
    assert r.status == 502, r
    assert time.monotonic() - t0 < 2.0


def test_bad_chunk_after_a_good_head_never_ends_cleanly(make_gateway, backend):
    """A streamed response whose chunked body goes bad: the client gets a
    502, or the head and an aborted body, never a complete message."""
    gw = make_gateway()
    backend.mode = "raw"
    backend.raw_response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n")
    c = gw.connect("renshe")
    try:
        c.send(gwtest.build_request("GET", "/api/echo"))
        try:
            r = c.read_response(timeout=10)
        except gwtest.NoResponse as e:
            assert e.kind != "timeout"
        else:
            assert r.status == 502, r
    finally:
        c.close()
    backend.mode = "normal"
    assert gw.request("GET", "/api/echo").status == 200


def test_hop_by_hop_response_headers_are_removed_and_request_id_is_the_gateways(
        make_gateway, backend):
    gw = make_gateway()
    backend.mode = "raw"
    backend.raw_response = (b"HTTP/1.1 200 OK\r\nConnection: X-Internal, close\r\n"
                            b"X-Internal: secret\r\nKeep-Alive: timeout=5\r\n"
                            b"Proxy-Connection: keep-alive\r\nX-Govgate-Request-Id: forged\r\n"
                            b"X-Kept: yes\r\nContent-Length: 2\r\n\r\n{}")
    r = gw.request("GET", "/api/echo")
    assert r.status == 200, r
    names = {n.lower() for n, _ in r.headers}
    assert "x-internal" not in names and "keep-alive" not in names
    assert "proxy-connection" not in names
    assert r.header("X-Kept") == "yes"
    ids = r.header_all("X-Govgate-Request-Id")
    assert len(ids) == 1 and ids[0] != "forged"
    assert ids[0] == backend.snapshot()[0].header("X-Govgate-Request-Id")
