"""The admin listener of the real `govgate serve` (contract section 7):
`admin: { address: 127.0.0.1:PORT }` serves GET /healthz and GET /metrics
in Prometheus text format 0.0.4 over plain HTTP/1.1, Connection: close.

Scenarios: /healthz and its method rules; allowed and denied mTLS
requests (and refused handshakes) move the counters by exactly those
requests, on two workers whose shards are summed; the connections each
department holds follow its open connections; certificate times match
the files; /healthz says 503 draining while SIGTERM drains, and 503
audit trail degraded while the audit file refuses writes (strace).

Skipped while serve does not link the admin listener (src/admin.c).
"""
import calendar
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import gwtest

pytestmark = pytest.mark.skipif(
    not os.path.exists(gwtest.GOVGATE) or
    b"admin listener on" not in open(gwtest.GOVGATE, "rb").read(),
    reason="govgate serve does not start the admin listener yet")

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
LABEL_NAME_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')


# ---------------------------------------------------------------------------
# Exposition format 0.0.4, read strictly

def parse_labels(s):
    """'{a="x",b="y\\"z"}' -> (("a", "x"), ("b", 'y"z')), escapes undone."""
    assert s[0] == "{" and s[-1] == "}", s
    out = []
    i, body = 0, s[1:-1]
    while i < len(body):
        m = LABEL_NAME_RE.match(body, i)
        assert m, "bad label name in %r" % s
        name = m.group(0)
        i = m.end()
        assert body[i:i + 2] == '="', "bad label in %r" % s
        i += 2
        value = []
        while body[i] != '"':
            if body[i] == "\\":
                esc = body[i + 1]
                assert esc in '\\"n', "bad escape in %r" % s
                value.append("\n" if esc == "n" else esc)
                i += 2
            else:
                value.append(body[i])
                i += 1
        i += 1
        out.append((name, "".join(value)))
        if i < len(body):
            assert body[i] == ",", "bad separator in %r" % s
            i += 1
    return tuple(out)


def parse_metrics(text):
    """{(name, labels): value}; every sample after its family's TYPE,
    no family typed twice, no series twice, UTF-8, final newline."""
    assert text.endswith("\n")
    typed = {}
    samples = {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            assert line.split(" ")[2].startswith("govgate_"), line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in typed, "typed twice: " + line
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE_RE.match(line)
        assert m, "malformed sample line %r" % line
        name, labels, value = m.group(1), m.group(2), m.group(3)
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or typed.get(fam) == "histogram", \
            "sample before its TYPE: %r" % line
        key = (name, parse_labels(labels) if labels else ())
        assert key not in samples, "series twice: %r" % line
        samples[key] = float(value)
    return samples


def series(samples, metric, /, **labels):
    """The value of one series (labels as given, any order), or None."""
    want = set(labels.items())
    for (n, ls), v in samples.items():
        if n == metric and set(ls) == want:
            return v
    return None


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


# ---------------------------------------------------------------------------
# Talking to the admin listener

def admin_get(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def scrape(port):
    status, headers, body = admin_get(port, "/metrics")
    assert status == 200, (status, body[:300])
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["connection"] == "close"
    return parse_metrics(body.decode("utf-8"))


def admin_gateway(make_gateway, **kw):
    port = gwtest.free_port()
    gw = make_gateway(extra='admin:\n  address: "127.0.0.1:%d"\n' % port, **kw)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    assert gwtest.wait_until(up, 10), "admin port %d never accepted:\n%s" % (
        port, gw.stderr_text()[-2000:])
    return gw, port


def epoch(dt):
    return calendar.timegm(dt.utctimetuple())


def pem_blocks(path, kind):
    with open(path, encoding="ascii") as f:
        text = f.read()
    begin = "-----BEGIN %s-----" % kind
    end = "-----END %s-----" % kind
    out = []
    for part in text.split(begin)[1:]:
        out.append((begin + part.split(end)[0] + end + "\n").encode())
    return out


# ---------------------------------------------------------------------------

def test_healthz_is_ok_and_only_get_and_head_are_answered(make_gateway):
    gw, port = admin_gateway(make_gateway)
    status, headers, body = admin_get(port, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["connection"] == "close"
    assert headers["content-type"].startswith("text/plain")
    status, headers, body = admin_get(port, "/healthz", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "3"
    status, headers, _ = admin_get(port, "/metrics", method="POST", body=b"x")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert admin_get(port, "/")[0] == 404
    assert admin_get(port, "/metrics/")[0] == 404
    # Not HTTP at all: 400, and the listener carries on.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    assert admin_get(port, "/healthz")[0] == 200


def test_counters_move_by_exactly_the_requests_made(make_gateway, backend, pki):
    gw, port = admin_gateway(make_gateway, workers=2)
    # The start-up probe of the listener has come and gone.
    assert gwtest.wait_until(
        lambda: series(scrape(port), "govgate_connections_open") == 0, 5)
    before = scrape(port)
    seen_before = len(backend.snapshot())

    allowed = [("renshe", "/api/echo"), ("renshe", "/api/a/b"),
               ("renshe", "/api/echo?x=1"), ("gongan", "/api/echo")]
    denied = [("renshe", "/secret/1", "not_shared"),
              ("renshe", "/secret/2", "not_shared"),
              ("renshe", "/cond/1", "purpose_required"),
              ("renshe", "/nothing/here", "no_resource")]
    for cert, path in allowed:
        r = gw.request("GET", path, cert=cert)
        assert r.status == 200, r
    for cert, path, reason in denied:
        r = gw.request("GET", path, cert=cert)
        assert r.status == 403 and r.json()["reason"] == reason, r
    for bad in ("revoked", "expired"):
        gwtest.handshake_fails_or_no_response(gw.port, gw.context(bad))

    def delta(after, metric, /, **labels):
        return ((series(after, metric, **labels) or 0) -
                (series(before, metric, **labels) or 0))

    def settled():
        s = scrape(port)
        done = (total(s, "govgate_requests_total") - total(before, "govgate_requests_total") >= 8
                and delta(s, "govgate_connections_accepted_total") >= 10
                and series(s, "govgate_connections_open") == 0
                and delta(s, "govgate_tls_handshake_failures_total", listener="egov",
                          reason="certificate_expired") >= 1)
        return s if done else None
    after = gwtest.wait_until(settled, 10) or scrape(port)
    time.sleep(0.3)  # nothing more may trickle in
    again = scrape(port)
    assert total(again, "govgate_requests_total") == total(after, "govgate_requests_total")

    req = "govgate_requests_total"
    assert delta(after, req, department="renshe", resource="echo", decision="allow",
                 reason="unconditional") == 3
    assert delta(after, req, department="gongan", resource="echo", decision="allow",
                 reason="owner") == 1
    assert delta(after, req, department="renshe", resource="secret", decision="deny",
                 reason="not_shared") == 2
    assert delta(after, req, department="renshe", resource="conditional", decision="deny",
                 reason="purpose_required") == 1
    assert delta(after, req, department="renshe", resource="", decision="deny",
                 reason="no_resource") == 1
    assert total(after, req) - total(before, req) == 8, "other requests were counted"

    assert delta(after, "govgate_responses_total", code="200") == 4
    assert delta(after, "govgate_responses_total", code="403") == 4
    assert total(after, "govgate_responses_total") - total(before, "govgate_responses_total") == 8
    assert delta(after, "govgate_request_duration_seconds_count") == 8
    assert delta(after, "govgate_request_duration_seconds_bucket", le="+Inf") == 8
    assert delta(after, "govgate_upstream_response_seconds_count") == 4
    assert len(backend.snapshot()) - seen_before == 4

    tls = "govgate_tls_handshake_failures_total"
    assert delta(after, tls, listener="egov", reason="certificate_revoked") == 1
    assert delta(after, tls, listener="egov", reason="certificate_expired") == 1
    assert total(after, tls) - total(before, tls) == 2
    assert delta(after, "govgate_connections_accepted_total") == 10
    assert total(after, "govgate_upstream_errors_total") == 0
    assert series(after, "govgate_upstream_errors_total", upstream="echo-api",
                  kind="connect") == 0

    # The state the gateway reports, and what it knows of its policy.
    assert series(after, "govgate_audit_degraded") == 0
    assert series(after, "govgate_draining") == 0
    assert delta(after, "govgate_audit_records_total") >= 8
    assert delta(after, "govgate_audit_write_lag_seconds_count") >= 1
    assert series(after, "govgate_policy_reloads_total", result="failed") == 0
    info = [ls for (n, ls), v in after.items() if n == "govgate_policy_info" and v == 1]
    assert len(info) == 1 and dict(info[0])["revision"] == "itest-1", info
    assert len(dict(info[0])["sha256"]) == 64
    assert series(after, "govgate_department_info", department="caizheng",
                  name="caizheng") == 1
    assert series(after, "govgate_resource_info", resource="echo", name="echo",
                  owner="gongan", sharing="unconditional", classification="internal") == 1


def test_department_connections_follow_open_connections(make_gateway):
    """govgate_department_connections counts a department's open client
    connections (what limits.max_connections_per_department holds it to),
    across two workers, and falls back when they close."""
    gw, port = admin_gateway(make_gateway, workers=2,
                             limits={"max_connections_per_department": 5})
    conns = []
    try:
        for cert in ("renshe", "renshe", "renshe", "gongan"):
            c = gw.connect(cert)
            conns.append(c)
            c.send(gwtest.build_request("GET", "/api/echo"))
            assert c.read_response().status == 200
        s = scrape(port)
        assert series(s, "govgate_department_connections", department="renshe") == 3
        assert series(s, "govgate_department_connections", department="gongan") == 1
        assert series(s, "govgate_department_connections", department="caizheng") == 0
    finally:
        for c in conns:
            c.close()

    def drained():
        s = scrape(port)
        return all(series(s, "govgate_department_connections", department=d) == 0
                   for d in ("renshe", "gongan"))
    assert gwtest.wait_until(drained, 5), scrape(port)


def test_certificate_times_match_the_files(make_gateway, pki):
    from cryptography import x509

    gw, port = admin_gateway(make_gateway)
    s = scrape(port)
    leaf = x509.load_pem_x509_certificate(pem_blocks(gw.tls["certificate"], "CERTIFICATE")[0])
    cas = [x509.load_pem_x509_certificate(b)
           for b in pem_blocks(gw.tls["client_ca"], "CERTIFICATE")]
    crls = [x509.load_pem_x509_crl(b) for b in pem_blocks(gw.tls["crl"], "X509 CRL")]
    assert series(s, "govgate_certificate_not_after_seconds", listener="egov") == \
        epoch(leaf.not_valid_after)
    assert series(s, "govgate_client_ca_not_after_seconds", listener="egov") == \
        min(epoch(c.not_valid_after) for c in cas)
    assert series(s, "govgate_crl_next_update_seconds", listener="egov") == \
        min(epoch(c.next_update) for c in crls)


def test_healthz_says_draining_while_sigterm_drains(make_gateway, backend):
    backend.mode = "slow"
    backend.delay = 2.0
    gw, port = admin_gateway(make_gateway)
    result = {}

    def slow():
        result["r"] = gw.request("GET", "/api/echo", timeout=15)
    t = threading.Thread(target=slow)
    t.start()
    backend.wait_for(1)
    gw.signal(signal.SIGTERM)

    def draining():
        try:
            status, _, body = admin_get(port, "/healthz")
        except OSError:
            return None
        return (status, body) if status == 503 else None
    got = gwtest.wait_until(draining, 1.5)
    assert got == (503, b"draining\n"), got
    s = scrape(port)
    assert series(s, "govgate_draining") == 1
    t.join(15)
    assert result["r"].status == 200, result
    gw.proc.wait(15)
    gw.stop()
    with pytest.raises(OSError):
        admin_get(port, "/healthz")


@pytest.mark.skipif(not gwtest.strace_usable(), reason="strace missing or ptrace refused")
def test_healthz_says_degraded_while_the_audit_trail_refuses_writes(make_gateway, backend):
    """Every audit write after each thread's first fails with ENOSPC: the
    start and policy_loaded records get through, the first request's
    decision does not, and the trail stays degraded."""
    gw = make_gateway(start=False)
    port = gwtest.free_port()
    gw.extra = 'admin:\n  address: "127.0.0.1:%d"\n' % port
    prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-P", gw.audit_path,
              "-e", "trace=write", "-e", "inject=write:error=ENOSPC:when=2+"]
    gw.start(prefix=prefix, env=gwtest.TRACED_ENV, timeout=60)
    pid = gwtest.traced_pid(gw)
    try:
        assert gwtest.wait_until(lambda: admin_get(port, "/healthz")[0] == 200, 10)
        before = scrape(port)
        r = gw.request("GET", "/api/echo", timeout=15)
        assert r.status == 503 and r.json()["reason"] == "audit_unavailable", r

        def degraded():
            status, _, body = admin_get(port, "/healthz")
            return (status, body) if status == 503 else None
        got = gwtest.wait_until(degraded, 5)
        assert got == (503, b"audit trail degraded\n"), got
        s = scrape(port)
        assert series(s, "govgate_audit_degraded") == 1
        assert (series(s, "govgate_requests_total", department="renshe", resource="echo",
                       decision="deny", reason="audit_unavailable") or 0) - \
            (series(before, "govgate_requests_total", department="renshe", resource="echo",
                    decision="deny", reason="audit_unavailable") or 0) == 1
        assert backend.received_nothing()
    finally:
        os.kill(pid, signal.SIGTERM)
        try:
            gw.proc.wait(60)
        except subprocess.TimeoutExpired:
            gw.kill()
        gw.stop(check=False)
