"""govgate serve, end to end in a few strokes: the real binary with the
demo PKI and the example policy in front of a loopback backend that
records what it receives. An allowed request reaches the backend with the
canonical path and the identity headers; a denial is JSON and reaches
nothing; SIGTERM drains and exits 0 with a sealed audit trail."""
import http.client
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import GOVGATE, govgate

RENSHE_NET = "127.30.0.1"  # a loopback twin of renshe-net (zones.txt)


class Backend(http.server.ThreadingHTTPServer):
    """Answers every request with a small JSON body and records it."""

    daemon_threads = True

    def __init__(self):
        self.seen = []
        super().__init__(("127.0.0.1", 0), BackendHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


class BackendHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.seen.append({"method": self.command, "target": self.path,
                                 "headers": list(self.headers.items()),
                                 "body": body})
        out = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = handle_one

    def log_message(self, *args):
        pass


class Gateway:
    """`govgate serve` on gwdir's config, upstreams pointed at backend."""

    def __init__(self, gw, backend):
        cfg = gw.config()
        with open(cfg, encoding="utf-8") as f:
            text = f.read().replace("127.0.0.1:1\"", "127.0.0.1:%d\"" % backend.port)
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        self.gw = gw
        self.cfg = cfg
        self.stopped = None
        self.stderr = open(os.path.join(gw.dir, "serve.log"), "w+", encoding="utf-8")
        self.proc = subprocess.Popen([GOVGATE, "serve", "-c", cfg], stdout=self.stderr,
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < end, "gateway did not listen:\n" + self.log()
                time.sleep(0.05)

    def log(self):
        self.stderr.flush()
        with open(self.stderr.name, encoding="utf-8") as f:
            return f.read()

    def stop(self):
        if self.stopped is not None:
            return self.stopped
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        log = self.log()
        self.stderr.close()
        assert "Sanitizer" not in log and "runtime error" not in log, log
        self.stopped = (rc, log)
        return self.stopped

    def request(self, method, target, dept="renshe", source=RENSHE_NET, headers=None,
                body=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.gw.pki_dir, "root-ca.pem"))
        ctx.check_hostname = False
        if dept is not None:
            ctx.load_cert_chain(os.path.join(self.gw.pki_dir, dept + ".crt"),
                                os.path.join(self.gw.pki_dir, dept + ".key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.gw.port, context=ctx,
                                           source_address=(source, 0), timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()


@pytest.fixture
def served(gwdir):
    backend = Backend()
    gw = Gateway(gwdir, backend)
    yield gw, backend
    gw.stop()
    backend.shutdown()
    backend.server_close()


def test_allowed_request_reaches_backend_with_canonical_path_and_identity(served):
    gw, backend = served
    status, headers, body = gw.request(
        "GET", "/hrss//v1/./insured/%34%35/status?q=%2F&x",
        headers={"X-Govgate-Department": "gongan", "Connection": "X-Govgate-Resource"})
    assert status == 200, body
    assert json.loads(body) == {"ok": True}
    rid = headers["X-Govgate-Request-Id"]
    assert len(rid) == 32
    assert len(backend.seen) == 1
    seen = backend.seen[0]
    assert seen["target"] == "/hrss/v1/insured/45/status?q=%2F&x"
    got = {}
    for name, value in seen["headers"]:
        got.setdefault(name.lower(), []).append(value)
    assert got["x-govgate-request-id"] == [rid]
    assert got["x-govgate-department"] == ["renshe"]
    assert got["x-govgate-resource"] == ["insurance-status"]
    assert got["x-govgate-client-subject"][0].startswith("CN=renshe-pension-app,")
    assert got["x-govgate-client-serial"][0].isalnum()
    assert got["forwarded"] == ["for=%s;proto=https" % RENSHE_NET]
    assert "connection" not in got


def test_denied_request_is_json_and_reaches_nothing(served):
    gw, backend = served
    status, headers, body = gw.request("GET", "/psb/v1/persons/450102199001011234")
    assert status == 403
    assert headers["Content-Type"] == "application/json"
    d = json.loads(body)
    assert d == {"error": "forbidden", "reason": "purpose_required",
                 "request_id": headers["X-Govgate-Request-Id"]}
    assert backend.seen == []


def test_bad_path_is_400_and_reaches_nothing(served):
    gw, backend = served
    status, headers, body = gw.request("GET", "/hrss/v1/insured/..%2f..%2fadmin/status")
    assert status == 400
    assert json.loads(body)["reason"] == "bad_request"
    assert headers.get("Connection") == "close"
    assert backend.seen == []


def test_sigterm_exits_0_and_the_trail_verifies(served, tmp_path):
    gw, backend = served
    status, _, _ = gw.request("GET", "/hrss/v1/insured/1/status")
    assert status == 200
    rc, log = gw.stop()
    assert rc == 0, log
    audit = os.path.join(gw.gw.dir, "audit.jsonl")
    events = [json.loads(line)["event"] for line in open(audit, encoding="utf-8")]
    assert events[0] == "start" and "policy_loaded" in events
    assert events.count("decision") == 1 and events.count("complete") == 1
    assert events[-1] == "checkpoint" and "stop" in events
    pub = tmp_path / "audit.pub"
    r = subprocess.run(["openssl", "pkey", "-in", os.path.join(gw.gw.dir, "audit.key"),
                        "-pubout", "-out", str(pub)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = govgate("audit", "verify", "--pubkey", str(pub), audit)
    assert r.returncode == 0, r.stdout + r.stderr
