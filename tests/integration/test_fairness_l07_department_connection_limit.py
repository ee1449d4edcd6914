"""L07 per-identity fairness (testing.md): with
limits.max_connections_per_department, a department that opens many
connections gets at most its share of them served. Its excess requests are
refused 429 connection_limit: the refusal is audited, nothing is forwarded
and the connection is closed. Meanwhile another department is served within
its latency budget. The count is released as connections close, is shared
by every worker thread, and survives a SIGHUP reload.
"""
import json
import subprocess
import threading
import time

import gwtest

LIMIT = 20


def start(make_gateway, limit=LIMIT):
    # Two workers: the kernel spreads the connections, the count is one.
    return make_gateway(workers=2, limits={
        "max_connections_per_department": limit,
        "idle_timeout": "30s",
        "handshake_timeout": "3s",
    })


def ask(gw, cert, path="/api/echo"):
    """A new connection with one request on it: (Conn, Response)."""
    c = gw.connect(cert, timeout=5)
    c.send(gwtest.build_request("GET", path))
    return c, c.read_response(timeout=5)


def assert_refused_for_limit(c, r):
    """429 connection_limit as contract 4.1's JSON, then closed."""
    assert r.status == 429, r
    rid = r.header("X-Govgate-Request-Id")
    assert rid, r.headers
    assert r.json() == {"error": "too_many_requests",
                        "reason": "connection_limit",
                        "request_id": rid}, r.body
    assert (r.header("Connection") or "").lower() == "close", r.headers
    c.expect_closed(5)
    return rid


def forwarded_for(backend, dept):
    return [q for q in backend.snapshot()
            if q.header("X-Govgate-Department") == dept]


def forwarded_ids(backend):
    return {q.header("X-Govgate-Request-Id") for q in backend.snapshot()}


def close_all(conns):
    for c in conns:
        c.close()


def served_again(gw, n):
    """n new connections of renshe at once are all served (the count of
    closed connections is released); they are closed again."""
    conns = []
    try:
        for _ in range(n):
            c, r = ask(gw, "renshe")
            conns.append(c)
            if r.status != 200:
                return False
        return True
    finally:
        close_all(conns)


def test_l07_one_department_over_its_limit_does_not_slow_another(make_gateway, backend):
    gw = start(make_gateway)
    b_times, b_bad = [], []
    a_done = threading.Event()

    def department_b():
        # gongan asks on fresh connections all the while renshe floods.
        while len(b_times) < 200 and (not a_done.is_set() or len(b_times) < 20):
            t0 = time.monotonic()
            try:
                r = gw.request("GET", "/api/echo", cert="gongan", timeout=5)
                if r.status != 200:
                    b_bad.append(r)
            except (AssertionError, OSError) as e:
                b_bad.append(e)
            b_times.append(time.monotonic() - t0)

    tb = threading.Thread(target=department_b)
    tb.start()
    served, refused, held = [], [], []
    try:
        for _ in range(3 * LIMIT):
            c, r = ask(gw, "renshe")
            held.append(c)
            (served if r.status == 200 else refused).append((c, r))
    finally:
        a_done.set()
        tb.join(60)

    assert len(served) == LIMIT, "%d of renshe's connections served, limit %d" % (
        len(served), LIMIT)
    rids = {assert_refused_for_limit(c, r) for c, r in refused}
    assert len(rids) == 2 * LIMIT
    assert len(forwarded_for(backend, "renshe")) == LIMIT and \
        not rids & forwarded_ids(backend), \
        "a request refused for the connection limit reached the backend"

    assert not b_bad, "gongan was not served during the flood: %r" % b_bad[:3]
    assert len(b_times) >= 20
    assert max(b_times) < 1.0, "gongan waited %.2fs (latencies %r)" % (
        max(b_times), sorted(b_times)[-5:])

    # The connections within the limit are still served.
    for c, _ in served[:5]:
        c.send(gwtest.build_request("GET", "/api/echo"))
        assert c.read_response(timeout=5).status == 200

    # Every refusal is a decision record: deny connection_limit.
    def limit_records():
        return [x for x in gw.audit_records()
                if x.get("event") == "decision" and x.get("reason") == "connection_limit"]
    recs = gwtest.wait_until(lambda: len(limit_records()) >= 2 * LIMIT and limit_records(), 10)
    assert recs, "no connection_limit records in the trail"
    assert {x["request_id"] for x in recs} == rids
    for x in recs:
        assert x["decision"] == "deny" and x["grant"] is None, x
        assert x["subject"]["department"] == "renshe", x
        assert x["resource"]["id"] == "echo", x
        assert x["request"]["path"] == "/api/echo", x

    # Once renshe's connections close, it is served again, the full limit.
    close_all(held)
    assert gwtest.wait_until(lambda: served_again(gw, LIMIT), 10, 0.2), \
        "renshe not served up to its limit after closing its connections"

    # The trail with the new reason verifies and can be queried by it.
    gw.stop()
    pub = gwtest.audit_pubkey(gw)
    gwtest.assert_verifies(pub, [gw.audit_path])
    r = subprocess.run([gwtest.GOVGATE, "audit", "query", "--reason", "connection_limit",
                        "--json", gw.audit_path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert {x["request_id"] for x in lines} == rids, r.stdout[:2000]


def test_l07_the_count_survives_a_reload_and_old_connections_release_it(make_gateway, backend):
    gw = start(make_gateway)
    held, refused_ids = [], set()
    for _ in range(LIMIT):
        c, r = ask(gw, "renshe")
        assert r.status == 200, r
        held.append(c)
    c, r = ask(gw, "renshe")
    refused_ids.add(assert_refused_for_limit(c, r))

    # A new policy revision and one more connection allowed: renshe
    # keeps its count of 20 across the reload, so exactly one more fits.
    gw.write_policy(gwtest.make_policy(revision="itest-2"))
    gw.limits["max_connections_per_department"] = LIMIT + 1
    gw.write_config()
    gw.reload()
    assert gwtest.wait_until(
        lambda: "reload 1: policy revision itest-2" in gw.stderr_text(), 10), \
        gw.stderr_text()[-3000:]
    c, r = ask(gw, "renshe")
    assert r.status == 200, "the reload lost renshe's count: %r" % r
    held.append(c)
    c, r = ask(gw, "renshe")
    refused_ids.add(assert_refused_for_limit(c, r))
    c, r = ask(gw, "gongan")
    c.close()
    assert r.status == 200, r

    # A connection of the old policy closes: its place goes to a new one.
    held.pop(0).close()

    def one_more():
        c, r = ask(gw, "renshe")
        if r.status == 200:
            held.append(c)
            return True
        refused_ids.add(assert_refused_for_limit(c, r))
        return False
    assert gwtest.wait_until(one_more, 10, 0.1), "an old connection's close was not counted"
    c, r = ask(gw, "renshe")
    refused_ids.add(assert_refused_for_limit(c, r))

    close_all(held)
    assert gwtest.wait_until(lambda: served_again(gw, LIMIT + 1), 10, 0.2), \
        "renshe not served up to its limit after closing its connections"
    assert not refused_ids & forwarded_ids(backend), \
        "a request refused for the connection limit reached the backend"
