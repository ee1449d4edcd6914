"""Reload, lifecycle and upstream failures (testing.md RL01-RL11, scaled
for CI): reloads under load lose nothing and take effect, broken policies
never fall open, SIGTERM drains and exits 0, bad startup refuses to run,
and backend failures become aborted responses, 504s or quick recovery
with bounded memory.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import gwtest

TOGGLE = """\
  toggle:
    name: toggle
    owner: gongan
    upstream: echo-api
    methods: [GET]
    paths: ["/toggle/**"]
    classification: internal
    sharing: {sharing}
{legal}"""


def policy_with_toggle(open_, revision):
    """The test policy plus /toggle/**: unconditional when open_, else
    sharing none (denied)."""
    res = TOGGLE.format(sharing="unconditional" if open_ else "none",
                        legal="" if open_ else "    legal_basis: \"test\"\n")
    text = gwtest.make_policy(revision=revision)
    return text.replace("resources:\n", "resources:\n" + res, 1)


def status_of(gw, path):
    try:
        return gw.request("GET", path, timeout=5).status
    except (AssertionError, OSError):
        return None


def test_rl01_reloads_under_keep_alive_load_lose_nothing_and_take_effect(make_gateway, backend):
    # The load's connections live through every reload on the config they
    # were accepted under; at the default max_requests_per_connection they
    # would reconnect every 1000 requests, and the upstream connections
    # pooled for the newest config would stay open (idle) past the fd check.
    gw = make_gateway(policy=policy_with_toggle(False, "rl01-0"),
                      limits={"max_requests_per_connection": 1000000000})
    assert status_of(gw, "/toggle/x") == 403
    fd0 = gw.fd_count()
    rss0 = gw.rss_kb()
    load = gwtest.Load(gw, 4).start()
    try:
        for i in range(1, 9):
            t0 = time.monotonic()
            want = 200 if i % 2 else 403
            gw.write_policy(policy_with_toggle(want == 200, "rl01-%d" % i))
            gw.reload()
            assert gwtest.wait_until(lambda: status_of(gw, "/toggle/x") == want, 2.0, 0.05), \
                "reload %d: /toggle/x is not %d" % (i, want)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
    finally:
        load.stop()
    assert not load.failures, "%d failures, e.g. %r" % (len(load.failures), load.failures[:5])
    assert load.ok > 100, "only %d requests in ~8 s" % load.ok
    assert gw.alive()
    assert gwtest.wait_until(lambda: gw.fd_count() <= fd0 + 3, 5), (fd0, gw.fd_count())
    if not gwtest.SANITIZED:
        assert gw.rss_kb() < rss0 * 1.5 + 8 * 1024, (rss0, gw.rss_kb())


BROKEN = {
    # each: the broken policy text; all of them would open /secret/** and
    # /toggle/** if any part of them were applied.
    "syntax_error": lambda: policy_with_toggle(True, "broken").replace(
        "sharing: none", "sharing: unconditional") + "grants: [ {id: X\n",
    "unknown_department": lambda: policy_with_toggle(True, "broken").replace(
        "consumer: renshe", "consumer: nosuchdept"),
    "duplicate_resource_pattern": lambda: policy_with_toggle(True, "broken").replace(
        'paths: ["/toggle/**"]', 'paths: ["/api/**"]'),
    "empty_file": lambda: "",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_rl02_invalid_policy_on_reload_keeps_the_old_one(make_gateway, backend, kind):
    gw = make_gateway(policy=policy_with_toggle(False, "rl02-good"))
    assert status_of(gw, "/secret/x") == 403
    assert status_of(gw, "/toggle/x") == 403
    load = gwtest.Load(gw, 2).start()
    try:
        gw.write_policy(BROKEN[kind]())
        gw.reload()
        time.sleep(1.0)
        assert status_of(gw, "/secret/x") == 403, "fell open: /secret/x allowed"
        assert status_of(gw, "/toggle/x") == 403, "part of a broken policy was applied"
        assert status_of(gw, "/api/echo") == 200
    finally:
        load.stop()
    assert not load.failures, load.failures[:5]
    err = gw.stderr_text()
    if kind == "empty_file":
        assert "policy.yaml" in err, err[-2000:]
    else:
        assert re.search(r"policy\.yaml:\d+:\d+:", err), "no file:line:col in:\n" + err[-2000:]
    # A good policy afterwards is taken.
    gw.write_policy(policy_with_toggle(True, "rl02-fixed"))
    gw.reload()
    assert gwtest.wait_until(lambda: status_of(gw, "/toggle/x") == 200, 3, 0.1)


def test_rl04_a_hundred_quick_sighups_leave_it_serving(make_gateway, backend):
    gw = make_gateway(policy=policy_with_toggle(False, "rl04-0"))
    fd0 = gw.fd_count()
    load = gwtest.Load(gw, 2).start()
    try:
        gw.write_policy(policy_with_toggle(True, "rl04-final"))
        for _ in range(100):
            gw.reload()
            time.sleep(0.01)
        assert gwtest.wait_until(lambda: status_of(gw, "/toggle/x") == 200, 5, 0.1)
    finally:
        load.stop()
    assert gw.alive()
    assert not load.failures, load.failures[:5]
    assert gwtest.wait_until(lambda: gw.fd_count() <= fd0 + 3, 5), (fd0, gw.fd_count())


def test_rl05_sigterm_under_load_drains_and_exits_0(make_gateway, backend):
    gw = make_gateway()
    backend.mode = "slow"
    backend.delay = 1.0
    results = []

    def one():
        try:
            results.append(gw.request("GET", "/api/echo", timeout=10).status)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    assert gwtest.wait_until(lambda: len(backend.snapshot()) == 4, 3)
    gw.signal(signal.SIGTERM)
    for t in threads:
        t.join(15)
    assert results == [200] * 4, "in-flight requests were not drained: %r" % results
    gw.proc.wait(15)
    gw.stop()  # exit 0, no sanitizer report
    forwarded = {r.header("X-Govgate-Request-Id") for r in backend.snapshot()}
    recs = gw.audit_records()
    decided = {r.get("request_id") for r in recs if r.get("event") == "decision"}
    assert forwarded <= decided, "forwarded without a decision record: %r" % (forwarded - decided)
    last_request = max(i for i, r in enumerate(recs) if r.get("event") in ("decision", "complete"))
    assert any(r.get("event") == "checkpoint" for r in recs[last_request:]), \
        "no checkpoint after the last request record"


def test_rl05_new_connections_are_refused_after_sigterm(make_gateway, backend):
    gw = make_gateway()
    backend.mode = "slow"
    backend.delay = 1.5
    t = threading.Thread(target=lambda: gw.request("GET", "/api/echo", timeout=10))
    t.start()
    assert gwtest.wait_until(lambda: len(backend.snapshot()) == 1, 3)
    gw.signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises((OSError, gwtest.NoResponse)):
        r = gw.request("GET", "/api/echo", timeout=3)
        raise AssertionError("served after SIGTERM: %r" % r)
    t.join(10)
    gw.proc.wait(15)
    gw.stop()


def refuses_to_start(gw, *needles):
    gw.start(wait=False)
    try:
        rc = gw.proc.wait(15)
    except subprocess.TimeoutExpired:
        gw.kill()
        raise AssertionError("govgate serve kept running with a broken setup")
    err = gw.stderr_text()
    assert rc not in (0, None) and rc > 0, "exit %s; stderr:\n%s" % (rc, err)
    for n in needles:
        assert n in err, "%r not in:\n%s" % (n, err)
    assert not gwtest.SANITIZER_RE.search(err), err
    gw.rc = rc


def test_rl07_missing_config_refuses_to_start(make_gateway):
    gw = make_gateway(start=False)
    missing = os.path.join(gw.dir, "no-such.yaml")
    gw.config_path = missing
    gw.write_config = lambda: missing
    refuses_to_start(gw, "no-such.yaml")


def test_rl07_unreadable_config_refuses_to_start(make_gateway):
    gw = make_gateway(start=False)
    folder = os.path.join(gw.dir, "config-is-a-folder.yaml")
    os.mkdir(folder)
    gw.config_path = folder
    gw.write_config = lambda: folder
    refuses_to_start(gw, "config-is-a-folder.yaml")


def test_rl07_missing_certificate_refuses_to_start(make_gateway):
    gw = make_gateway(start=False, tls={"certificate": "/nonexistent/gateway.crt"})
    refuses_to_start(gw, "/nonexistent/gateway.crt")


def test_rl07_unwritable_audit_dir_refuses_to_start(make_gateway):
    gw = make_gateway(start=False)
    blocker = os.path.join(gw.dir, "not-a-dir")
    with open(blocker, "w") as f:
        f.write("a file where the audit folder should be\n")
    gw.audit_path = os.path.join(blocker, "audit.jsonl")
    refuses_to_start(gw, "not-a-dir")


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
def test_rl08_backend_dying_mid_response_aborts_the_client_response(make_gateway, backend,
                                                                   chunked):
    gw = make_gateway()
    backend.mode = "close_mid_body"
    backend.big = 4 * 1024 * 1024
    backend.chunked = chunked
    c = gw.connect("renshe")
    try:
        c.send(gwtest.build_request("GET", "/api/echo"))
        with pytest.raises(gwtest.NoResponse) as e:
            r = c.read_response(timeout=10)
            raise AssertionError("a complete response came back: %r" % r)
        assert e.value.kind != "timeout", "the client was left hanging"
    finally:
        c.close()
    backend.mode = "normal"
    assert gw.request("GET", "/api/echo").status == 200


def test_rl08_backend_sigkilled_mid_response(make_gateway, tmp_path):
    """A backend process killed with SIGKILL while the client reads
    slowly: the client gets a short response and a close, never a clean
    end; the next request reaches the restarted backend."""
    port = gwtest.free_port()
    code = ("import sys, time; sys.path.insert(0, %r); import gwtest; "
            "b = gwtest.RecordingBackend(mode='big', big=64 * 1024 * 1024).start(%d); "
            "time.sleep(60)" % (os.path.dirname(os.path.abspath(__file__)), port))
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert gwtest.wait_until(lambda: _listening(port), 10)
        gw = make_gateway(upstreams={"echo-api": "127.0.0.1:%d" % port})
        c = gw.connect("renshe")
        c.send(gwtest.build_request("GET", "/api/echo"))
        c.settimeout(5)
        got = c.sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        time.sleep(0.3)
        proc.kill()
        proc.wait()
        with pytest.raises(gwtest.NoResponse) as e:
            c.buf = got
            c.read_response(timeout=10)
        assert e.value.kind != "timeout"
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    b2 = gwtest.RecordingBackend().start(port)
    try:
        assert gwtest.wait_until(lambda: status_of(gw, "/api/echo") == 200, 5, 0.1)
    finally:
        b2.stop()


def _listening(port):
    try:
        gwtest.socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_rl09_silent_backend_gives_504_after_read_timeout(make_gateway, backend):
    gw = make_gateway(upstream_opts={"read_timeout": "1s"})
    backend.mode = "hang"
    t0 = time.monotonic()
    r = gw.request("GET", "/api/echo", timeout=10)
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.8 <= took <= 3.0, "504 after %.2fs with read_timeout 1s" % took
    fd0 = gw.fd_count()
    statuses = []

    def one():
        try:
            statuses.append(gw.request("GET", "/api/echo", timeout=10).status)
        except Exception as e:  # noqa: BLE001
            statuses.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert statuses == [504] * 30, statuses
    backend.mode = "normal"
    assert gw.request("GET", "/api/echo").status == 200
    assert gwtest.wait_until(lambda: gw.fd_count() <= fd0 + 3, 5), (fd0, gw.fd_count())


def test_rl10_backend_restart_recovers_quickly(make_gateway, backend):
    gw = make_gateway(upstream_opts={"connect_timeout": "500ms"})
    load = gwtest.Load(gw, 2).start()
    time.sleep(0.5)
    backend.stop()
    time.sleep(0.5)
    down_failures = len(load.failures)
    backend.start(backend.port)
    t0 = time.monotonic()
    assert gwtest.wait_until(lambda: status_of(gw, "/api/echo") == 200, 3, 0.02)
    recovery = time.monotonic() - t0
    time.sleep(0.5)
    with load.lock:
        n_before = len(load.failures)
    time.sleep(1.0)
    load.stop()
    assert recovery < 1.0, "recovered only after %.2fs" % recovery
    assert len(load.failures) == n_before, "failures after recovery: %r" % load.failures[n_before:]
    assert all("status 502" in f or "status 503" in f or "status 504" in f
               for f in load.failures), "a failure other than a 5xx: %r" % load.failures[:5]
    assert down_failures > 0 or load.ok > 0


def test_rl11_slow_reading_backend_keeps_gateway_memory_bounded(make_gateway, backend):
    """32 MiB uploaded while the backend reads nothing for 3 s: the
    gateway must stop reading the client (backpressure) rather than hold
    the body. (testing.md says 5 MiB; loopback socket buffers alone can
    absorb that much, so the body is larger here to make the check bite.)"""
    size = 32 * 1024 * 1024
    backend.stop()
    slow = gwtest.RecordingBackend(mode="slow_reader", delay=3.0, rcvbuf=64 * 1024).start(
        backend.port)
    try:
        gw = make_gateway(limits={"max_body_bytes": "64m"},
                          upstream_opts={"read_timeout": "20s"})
        rss0 = gw.rss_kb()
        out = {}

        def upload():
            try:
                out["r"] = gw.request("POST", "/api/echo", body=b"u" * size, timeout=30)
            except Exception as e:  # noqa: BLE001
                out["e"] = e
        t = threading.Thread(target=upload)
        t.start()
        peak = rss0
        while t.is_alive():
            peak = max(peak, gw.rss_kb())
            time.sleep(0.05)
        assert "e" not in out, out.get("e")
        assert out["r"].status == 200, out["r"]
        reqs = slow.snapshot()
        assert len(reqs) == 1 and len(reqs[0].body) == size
        if not gwtest.SANITIZED:
            assert peak - rss0 < 16 * 1024, "gateway RSS grew by %d KiB for a %d MiB upload" % (
                peak - rss0, size >> 20)
    finally:
        slow.stop()


def test_rl03_reload_while_slow_upload_and_download_are_in_flight(make_gateway, backend):
    gw = make_gateway(policy=policy_with_toggle(False, "rl03-0"),
                      upstream_opts={"read_timeout": "10s"}, limits={"header_timeout": "5s"})
    backend.mode = "slow"
    backend.delay = 2.0
    out = {}
    body = bytes(range(256)) * 80  # 20 KiB

    def download():
        try:
            out["down"] = gw.request("GET", "/api/download", timeout=15)
        except Exception as e:  # noqa: BLE001
            out["down"] = e

    def upload():
        try:
            c = gw.connect("renshe", timeout=15)
            head = gwtest.build_request("POST", "/api/upload",
                                        [("Content-Length", str(len(body)))])
            c.send(head)
            for i in range(0, len(body), 1024):
                c.send(body[i:i + 1024])
                time.sleep(0.1)
            out["up"] = c.read_response(timeout=15)
            c.close()
        except Exception as e:  # noqa: BLE001
            out["up"] = e
    threads = [threading.Thread(target=download), threading.Thread(target=upload)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    gw.write_policy(policy_with_toggle(True, "rl03-1"))
    gw.reload()
    for t in threads:
        t.join(20)
    assert getattr(out.get("down"), "status", out.get("down")) == 200, out.get("down")
    assert getattr(out.get("up"), "status", out.get("up")) == 200, out.get("up")
    ups = [r for r in backend.snapshot() if r.path == "/api/upload"]
    assert len(ups) == 1 and ups[0].body == body
    backend.mode = "normal"
    assert status_of(gw, "/toggle/x") == 200


def _server_serial(gw):
    from cryptography import x509
    c = gw.connect("renshe")
    try:
        der = c.sock.getpeercert(binary_form=True)
        c.send(gwtest.build_request("GET", "/api/echo"))
        assert c.read_response().status == 200
    finally:
        c.close()
    return x509.load_der_x509_certificate(der).serial_number


def test_rl06_server_certificate_rotation_by_reload(tmp_path, pki, make_gateway, backend):
    from cryptography.x509.oid import NameOID
    m = gwtest.CertMaker(pki, tmp_path / "certs")
    subj = [(NameOID.ORGANIZATION_NAME, "Nanning E-Gov"), (NameOID.COMMON_NAME, "gateway.test")]
    m.issue("rotated", subj, "server-ca", chain=["server-ca"], server=True)
    m.issue("another", subj, "server-ca", chain=["server-ca"], server=True)
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(os.path.join(pki, "gateway.crt"), crt)
    shutil.copy(os.path.join(pki, "gateway.key"), key)
    gw = make_gateway(tls={"certificate": crt, "key": key})
    first = _server_serial(gw)
    held = gw.connect("renshe")
    try:
        shutil.copy(os.path.join(m.out, "rotated.chain.pem"), crt)
        shutil.copy(os.path.join(m.out, "rotated.key"), key)
        gw.reload()
        assert gwtest.wait_until(lambda: _server_serial(gw) != first, 3, 0.1), \
            "new handshakes still use the old certificate"
        rotated = _server_serial(gw)
        held.send(gwtest.build_request("GET", "/api/echo"))
        assert held.read_response().status == 200, "an existing connection was dropped"
        # A certificate without its key: the reload is refused, the
        # rotated pair stays in force.
        errlen = len(gw.stderr_text())
        shutil.copy(os.path.join(m.out, "another.chain.pem"), crt)
        gw.reload()
        time.sleep(1.0)
        assert _server_serial(gw) == rotated
        assert gw.stderr_text()[errlen:].strip(), "no error logged for a cert/key mismatch"
    finally:
        held.close()
