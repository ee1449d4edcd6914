"""L05: a slow reader (slowhttptest -X). A client that asks for a large
response and then reads nothing is closed once no byte could be written to
it for limits.idle_timeout; meanwhile the gateway stops reading from the
backend (backpressure), so its memory stays far below the response size;
the backend connection is closed with it, and the audit record counts only
the bytes that left for the client.
"""
import socket
import ssl
import time

import gwtest

BIG = 64 * 1024 * 1024


def open_small_window(gw, cert="renshe"):
    """An mTLS connection whose receive buffer is small, so that the
    kernel cannot soak up much of what the gateway writes."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", gw.port))
    s = gw.context(cert).wrap_socket(raw, server_hostname="localhost")
    return gwtest.Conn(s, raw)


def read_to_end(c, limit):
    """Every byte until the gateway's close; raises if it stays open."""
    data = b""
    c.sock.settimeout(limit)
    while True:
        try:
            got = c.sock.recv(1 << 20)
        except (ssl.SSLEOFError, ConnectionResetError):
            return data
        except (socket.timeout, TimeoutError):
            raise AssertionError("still open after %ss of reading" % limit)
        if not got:
            return data
        data += got


def test_l05_client_that_stops_reading_is_closed_and_memory_stays_bounded(make_gateway):
    backend = gwtest.RecordingBackend(big=BIG).start()
    try:
        gw = make_gateway(backend=backend,
                          limits={"idle_timeout": "1s", "header_timeout": "5s"},
                          upstream_opts={"read_timeout": "5s"})
        warm = gwtest.ok_request(gw).header("X-Govgate-Request-Id")  # buffers exist

        def completes():
            return [r for r in gw.audit_records()
                    if r.get("event") == "complete" and r.get("request_id") != warm]
        assert gwtest.wait_until(lambda: any(
            r.get("request_id") == warm and r.get("event") == "complete"
            for r in gw.audit_records()), 3)
        backend.mode = "big"
        rss0 = gw.rss_kb()
        c = open_small_window(gw)
        try:
            c.send(gwtest.build_request("GET", "/api/big"))
            t0 = time.monotonic()
            peak = rss0
            done = None
            while time.monotonic() - t0 < 6:
                peak = max(peak, gw.rss_kb())
                if completes():
                    done = time.monotonic() - t0
                    break
                time.sleep(0.05)
            sent = backend.bytes_sent
            assert done is not None, "the gateway kept a client that reads nothing"
            assert 0.9 <= done <= 1.0 + 1.5, "closed %.2fs after the request" % done
            # Backpressure: the backend could hand over only what fits in
            # the buffers on the way, not the whole answer.
            assert sent < BIG // 4, "the gateway read %d bytes of the backend's answer" % sent
            if not gwtest.SANITIZED:
                assert peak - rss0 < 8 * 1024, "RSS grew by %d KiB" % (peak - rss0)
            assert gwtest.wait_until(lambda: not backend.active, 2), \
                "the upstream connection is still open"
            assert "client write timeout" in gw.stderr_text()

            # What the client gets now is what had left the gateway: a
            # cut answer, then the close.
            data = read_to_end(c, 10)
        finally:
            c.close()
        head, sep, body = data.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 200 "), data[:200]
        assert b"Content-Length: %d" % BIG in head
        assert 0 < len(body) < BIG // 4, len(body)
        comp = completes()
        assert len(comp) == 1, comp
        comp = comp[0]
        assert comp["status"] == 200 and comp["upstream"] == "echo-api", comp
        # bytes_out is what was handed to the client's socket: at most one
        # TLS record more than the client could decrypt.
        assert len(body) <= comp["bytes_out"] <= len(body) + 16 * 1024, \
            (comp["bytes_out"], len(body))

        # Everyone else is still served.
        backend.mode = "normal"
        gwtest.ok_request(gw)
    finally:
        backend.stop()
