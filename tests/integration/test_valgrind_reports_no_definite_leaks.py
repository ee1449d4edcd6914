"""A short gateway run under valgrind (testing.md S02): allowed, denied and
malformed requests, a reload, then SIGTERM; valgrind must report no
definite leak and no memory error. Skipped for sanitizer builds, which
valgrind cannot run."""
import shutil
import signal

import pytest

import gwtest

pytestmark = pytest.mark.skipif(
    gwtest.SANITIZED or shutil.which("valgrind") is None,
    reason="needs a plain build and valgrind")


def test_short_run_has_no_definite_leaks(make_gateway, backend):
    gw = make_gateway(start=False, workers=1)
    gw.start(prefix=("valgrind", "--quiet", "--leak-check=full",
                     "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                     "--show-leak-kinds=definite"), timeout=60)
    for _ in range(10):
        r = gw.request(path="/api/echo", timeout=30)
        assert r.status == 200, r
    r = gw.request(path="/nowhere", timeout=30)
    assert r.status == 403
    c = gw.connect(timeout=30)
    try:
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
        assert c.read_response(timeout=30).status == 400
    finally:
        c.close()
    gw.reload()
    r = gw.request(path="/api/echo", timeout=30)
    assert r.status == 200
    gw.signal(signal.SIGTERM)
    rc = gw.proc.wait(timeout=60)
    gw.proc = None
    err = gw.stderr_text()
    assert rc != 99, "valgrind found errors:\n" + err[-4000:]
    assert rc == 0, "exit %d:\n%s" % (rc, err[-4000:])
    assert "definitely lost" not in err, err[-4000:]
    assert len(backend.requests) == 11
