"""Limits and timeouts (testing.md L01-L10, scaled for CI with 2 s
deadlines): idle TCP connections, slow headers, the connection cap, fd
exhaustion, head and body limits, the keep-alive idle timeout. Throughout,
an authenticated client keeps being served and the gateway does not spin.
"""
import socket
import ssl
import threading
import time

import gwtest


def served(gw, backend, **kw):
    t0 = time.monotonic()
    r = gw.request("GET", "/api/echo", **kw)
    assert r.status == 200, r
    return time.monotonic() - t0


def wait_closed(sock, limit):
    """Seconds until the peer closes sock (EOF or reset), None if it is
    still open after limit seconds."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


def test_l01_idle_tcp_connections_are_closed_at_the_handshake_deadline(make_gateway, backend):
    gw = make_gateway(limits={"handshake_timeout": "2s"})
    socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(50)]
    t0 = time.monotonic()
    results = [None] * len(socks)

    def watch(i):
        results[i] = wait_closed(socks[i], 6)
    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert served(gw, backend) < 1.0, "an authenticated client waited behind idle sockets"
    for t in threads:
        t.join(10)
    for s in socks:
        s.close()
    late = [r for r in results if r is None or r > 2.0 + 1.5 - 0.0]
    assert not late, "not closed at the 2 s deadline: %r" % results
    assert min(results) >= 1.0, "closed too early: %r" % results
    assert time.monotonic() - t0 < 8
    served(gw, backend)


def test_l03_slow_headers_end_at_the_header_deadline(make_gateway, backend):
    """An authenticated client sends one header byte every 0.25 s: the
    header timeout is absolute, so activity does not extend it."""
    gw = make_gateway(limits={"header_timeout": "2s"})
    c = gw.connect("renshe")
    t0 = time.monotonic()
    c.send(b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n")
    trickle = b"X-Slow: " + b"a" * 100
    got = None
    for i in range(len(trickle)):
        if time.monotonic() - t0 > 6:
            break
        if c._peek_readable():
            got = time.monotonic() - t0
            break
        if c.send(trickle[i:i + 1]) != 1:
            got = time.monotonic() - t0
            break
        time.sleep(0.25)
    assert got is not None, "still reading headers after %.1fs" % (time.monotonic() - t0)
    assert got <= 2.0 + 1.5, "closed only after %.2fs" % got
    assert got >= 1.5, "closed after %.2fs, before the header timeout" % got
    try:
        r = c.read_response(timeout=3)
        assert r.status == 408, r
    except gwtest.NoResponse as e:
        assert e.kind != "timeout"
    c.close()
    assert backend.received_nothing()
    served(gw, backend)


def test_l06_connection_cap_refuses_the_excess_and_recovers(make_gateway, backend):
    cap = 20
    gw = make_gateway(limits={"max_connections": cap, "idle_timeout": "30s",
                              "handshake_timeout": "3s"})
    held = []
    for _ in range(cap):
        c = gw.connect("renshe")
        c.send(gwtest.build_request("GET", "/api/echo"))
        assert c.read_response().status == 200
        held.append(c)
    cpu0 = gw.cpu_seconds()
    excess_served = 0
    excess = []
    t0 = time.monotonic()
    for _ in range(10):
        try:
            c = gw.connect("renshe", timeout=1.0)
        except (ssl.SSLError, OSError):
            continue
        excess.append(c)
        try:
            c.send(gwtest.build_request("GET", "/api/echo"))
            if c.read_response(timeout=1.0).status == 200:
                excess_served += 1
        except gwtest.NoResponse:
            pass
    assert excess_served == 0, "%d connections beyond max_connections were served" % excess_served
    assert time.monotonic() - t0 < 25
    time.sleep(1.0)
    assert gw.cpu_seconds() - cpu0 < 1.0, "the gateway spins at the connection cap"
    # The held connections are still served.
    for c in held[:5]:
        c.send(gwtest.build_request("GET", "/api/echo"))
        assert c.read_response().status == 200
    for c in held + excess:
        c.close()

    def recovered():
        try:
            return served(gw, backend) < 2
        except (AssertionError, OSError, ssl.SSLError):
            return False
    assert gwtest.wait_until(recovered, 10, 0.2), "not serving again after the release"


def test_l08_fd_exhaustion_does_not_spin_and_recovers(make_gateway, backend):
    gw = make_gateway(start=False, limits={"handshake_timeout": "10s",
                                           "max_connections": 10000})
    gw.start(prefix=["prlimit", "--nofile=64", "--"])
    socks = []
    for _ in range(100):
        try:
            socks.append(socket.create_connection(("127.0.0.1", gw.port), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    cpu0 = gw.cpu_seconds()
    time.sleep(2.0)
    used = gw.cpu_seconds() - cpu0
    assert used < 0.5, "%.2fs of CPU in 2s at EMFILE: an accept loop spins" % used
    assert gw.alive()
    for s in socks:
        s.close()

    def recovered():
        try:
            return served(gw, backend) < 3
        except (AssertionError, OSError, ssl.SSLError):
            return False
    assert gwtest.wait_until(recovered, 15, 0.25), "not serving after the fds came back"


def test_l09_head_and_body_limits(make_gateway, backend):
    gw = make_gateway(limits={"max_header_bytes": "8k", "max_body_bytes": "64k"})
    for data, status in [
            (gwtest.build_request("GET", "/api/echo", [("X-Big", "a" * 9000)]), 431),
            (gwtest.build_request("POST", "/api/echo", body=b"a" * (64 * 1024 + 1)), 413),
            (gwtest.build_request("POST", "/api/echo", [("Expect", "100-continue"),
                                                        ("Content-Length", str(1 << 20))]), 413)]:
        c = gw.connect("renshe")
        c.send(data)
        r = c.read_response(interim=True)
        assert r.status == status, r
        c.close()
    assert backend.received_nothing()
    r = gw.request("POST", "/api/echo", body=b"a" * (64 * 1024))
    assert r.status == 200, r


def test_l09_memory_stays_bounded_while_clients_trickle_huge_heads(make_gateway, backend):
    gw = make_gateway(limits={"max_header_bytes": "16k"})
    rss0 = gw.rss_kb()
    statuses = []

    def client():
        c = gw.connect("renshe")
        try:
            c.send(b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n")
            for _ in range(64):  # up to 1 MiB of header lines
                if c.send(b"X-Pad: " + b"a" * 16000 + b"\r\n") < 0 or c._peek_readable():
                    break
            try:
                statuses.append(c.read_response(timeout=5).status)
            except gwtest.NoResponse as e:
                statuses.append(e.kind)
        finally:
            c.close()
    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    peak = rss0
    while any(t.is_alive() for t in threads):
        peak = max(peak, gw.rss_kb())
        time.sleep(0.05)
    # 431, or a close when the refusal raced our writes; never a hang.
    assert len(statuses) == 20 and all(x in (431, "eof", "reset", "alert") for x in statuses), \
        statuses
    assert 431 in statuses, statuses
    if not gwtest.SANITIZED:
        assert peak - rss0 < 24 * 1024, "RSS grew by %d KiB" % (peak - rss0)
    assert backend.received_nothing()
    served(gw, backend)


def test_l10_keep_alive_idle_timeout_closes_and_activity_extends_it(make_gateway, backend):
    gw = make_gateway(limits={"idle_timeout": "2s"})
    c = gw.connect("renshe")
    try:
        for _ in range(3):  # requests 1.2 s apart keep the connection
            c.send(gwtest.build_request("GET", "/api/echo"))
            assert c.read_response().status == 200
            time.sleep(1.2)
        t0 = time.monotonic()
        c.expect_closed(timeout=4)
        waited = time.monotonic() - t0
        assert waited <= 2.0 + 1.0, "closed %.2fs after the last request's idle start" % waited
    finally:
        c.close()
