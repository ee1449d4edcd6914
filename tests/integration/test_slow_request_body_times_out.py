"""L04: a slow request body (slowhttptest -B). A body may pause at most
limits.header_timeout between reads: a client that announces a large body,
sends some of it and then stalls gets 408 and its connection is closed, the
backend connection that was streaming that body is closed too, the audit
trail records the request as ended by 408, and other clients stay served.
"""
import time

import gwtest

HEAD = (b"POST /api/echo HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n")


def test_l04_paused_request_body_gets_408_and_frees_the_upstream(make_gateway, backend):
    # header_timeout (the pause limit) differs from idle_timeout and the
    # upstream read_timeout, so the test shows which one governs.
    gw = make_gateway(limits={"header_timeout": "1s", "idle_timeout": "6s"},
                      upstream_opts={"read_timeout": "6s"})
    c = gw.connect("renshe")
    try:
        c.send(HEAD)
        # Three pieces 0.6 s apart: 1.2 s in all, longer than the limit,
        # but no pause reaches it, so the body is still being taken.
        for _ in range(3):
            assert c.send(b"a" * 10) == 10
            t_last = time.monotonic()
            time.sleep(0.6)
            assert not c._peek_readable(), "answered while the body kept coming: %r" % c.buf
        assert gwtest.wait_until(lambda: backend.bytes_received >= len(HEAD) + 20, 2), \
            "the body was not streamed to the backend"
        assert len(backend.active) == 1
        # Then the client stalls.
        r = c.read_response(timeout=4)
        waited = time.monotonic() - t_last
        assert r.status == 408, r
        assert r.json().get("reason") == "body_timeout", r.body
        assert (r.header("Connection") or "").lower() == "close", r
        assert 0.8 <= waited <= 1.0 + 1.0, "408 %.2fs after the last body byte" % waited
        c.expect_closed(timeout=3)
        rid = r.header("X-Govgate-Request-Id")
    finally:
        c.close()

    # The backend saw its connection end and never got a whole request.
    assert gwtest.wait_until(lambda: not backend.active, 1.0), \
        "the upstream connection is still open"
    assert backend.snapshot() == []

    # Someone else is served at once.
    t1 = time.monotonic()
    assert gw.request("GET", "/api/echo", cert="gongan").status == 200
    assert time.monotonic() - t1 < 1.0

    def records():
        recs = [x for x in gw.audit_records() if x.get("request_id") == rid]
        return recs if len(recs) == 2 else None
    recs = gwtest.wait_until(records, 3)
    assert recs, "no decision and complete record for %s" % rid
    dec, comp = recs
    assert dec["event"] == "decision" and dec["decision"] == "allow", dec
    assert comp["event"] == "complete", comp
    assert comp["status"] == 408 and comp["bytes_in"] == 30, comp
    assert comp["upstream"] == "echo-api" and comp["upstream_ms"] is None, comp
    assert "body paused longer than 1000 ms" in gw.stderr_text()
