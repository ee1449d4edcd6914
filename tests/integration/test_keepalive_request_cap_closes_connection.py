"""L10, second half: limits.max_requests_per_connection. The answer to the
last request a connection may carry says `Connection: close`, the gateway
then closes, and a request pipelined behind it never reaches the backend.
"""
import gwtest


def conn_header(r):
    return (r.header("Connection") or "").lower()


def test_l10_last_allowed_request_gets_connection_close_and_no_more_are_served(
        make_gateway, backend):
    gw = make_gateway(limits={"max_requests_per_connection": 3, "idle_timeout": "5s"})
    c = gw.connect("renshe")
    try:
        # Four requests in one write: the fourth is past the cap.
        c.send(b"".join(gwtest.build_request("GET", "/api/echo/%d" % i)
                        for i in range(1, 5)))
        rs = [c.read_response(timeout=5) for _ in range(3)]
        assert [r.status for r in rs] == [200, 200, 200], rs
        assert conn_header(rs[0]) != "close" and conn_header(rs[1]) != "close", rs
        assert conn_header(rs[2]) == "close", rs[2]
        extra = c.expect_closed(timeout=3)
        assert extra == b"", "bytes after the last allowed answer: %r" % extra[:200]
    finally:
        c.close()
    seen = backend.wait_for(4, timeout=0.5)
    assert [r.path for r in seen] == ["/api/echo/1", "/api/echo/2", "/api/echo/3"], seen

    # The count is per connection: a new one gets its own three.
    c = gw.connect("renshe")
    try:
        for i in range(3):
            c.send(gwtest.build_request("GET", "/api/echo"))
            r = c.read_response(timeout=5)
            assert r.status == 200, r
            assert (conn_header(r) == "close") == (i == 2), (i, r)
        c.expect_closed(timeout=3)
    finally:
        c.close()
