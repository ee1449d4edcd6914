"""Large answers from a plain-HTTP backend arrive byte for byte.

The gateway reads a large upstream body in bigger pieces than libevent
gives it (up to 64 KiB per loop turn, straight from the socket, for
bodies framed by Content-Length or chunked). These tests check what
that must never change: every byte, in order, on a keep-alive connection
that carries several such answers, and chunk framing split anywhere.
"""
import hashlib
import random

import gwtest

SIZE = 6 * 1024 * 1024 + 12345


def payload(seed, n):
    return random.Random(seed).randbytes(n)


def test_content_length_answers_are_byte_exact_on_one_connection(make_gateway, backend):
    gw = make_gateway()
    c = gw.connect("renshe")
    try:
        for i in range(3):
            body = payload(i, SIZE - i * 4099)
            backend.body = body
            c.send(gwtest.build_request("GET", "/api/echo"))
            r = c.read_response(timeout=30)
            assert r.status == 200, r
            assert r.header("Content-Length") == str(len(body))
            assert len(r.body) == len(body)
            assert hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest(), \
                "answer %d differs from what the backend sent" % i
    finally:
        c.close()
    # The same upstream connection carried them all: nothing of one answer
    # was read into the next.
    assert len(backend.snapshot()) == 3


def test_chunked_answer_split_anywhere_is_byte_exact(make_gateway, backend):
    gw = make_gateway()
    body = payload(42, SIZE)
    sizes = [1, 7, 4095, 4096, 4097, 65535, 65536, 65537, 300001]
    raw = [b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"]
    off = i = 0
    while off < len(body):
        n = min(sizes[i % len(sizes)], len(body) - off)
        raw.append(b"%x\r\n" % n + body[off:off + n] + b"\r\n")
        off += n
        i += 1
    raw.append(b"0\r\n\r\n")
    backend.mode = "raw"
    backend.raw_response = b"".join(raw)
    r = gw.request("GET", "/api/echo", timeout=30)
    assert r.status == 200, r
    assert len(r.body) == len(body)
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest()
