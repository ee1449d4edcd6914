"""A18 (testing.md, fault injection): 64 clients at once, on two worker
threads, with records of very different sizes (paths up to 4 KiB) and a
mix of allowed requests and denials (whose records nobody waits for).

The audit file must hold whole lines only: no two records interleaved,
none cut, one JSON object per line, seq 1..n in file order (one total
order), one decision record per answered request and one complete record
per served one, and both verifiers accept it.
"""
import threading

import pytest

import gwtest

CLIENTS = 64
PER_CLIENT = 16


class Run:
    def __init__(self, workdir, pki):
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend, workers=2)
        self.answers = []  # (path kind, status, request id)
        self.errors = []
        self.lock = threading.Lock()

    def client(self, i, ctx, start):
        start.wait(30)
        c = None
        try:
            c = gwtest.Conn.open(self.gw.port, ctx, timeout=30)
            for j in range(PER_CLIENT):
                if (i + j) % 5 == 4:
                    kind, path = "deny", "/secret/%d-%d" % (i, j)
                else:
                    kind, path = "allow", "/api/%d/%d/%s" % (i, j, "x" * ((i * 131 + j * 977) % 4096))
                c.send(gwtest.build_request("GET", path))
                r = c.read_response(timeout=30)
                with self.lock:
                    self.answers.append((kind, r.status, r.header("X-Govgate-Request-Id")))
        except Exception as e:  # noqa: BLE001 - every failure counts
            with self.lock:
                self.errors.append("client %d: %r" % (i, e))
        finally:
            if c is not None:
                c.close()

    def run(self):
        self.gw.start()
        ctx = self.gw.context("renshe")
        start = threading.Barrier(CLIENTS)
        threads = [threading.Thread(target=self.client, args=(i, ctx, start), daemon=True)
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.rc = self.gw.stop(check=False)
        return self

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module")
def a18(tmp_path_factory, pki):
    run = Run(tmp_path_factory.mktemp("a18"), pki)
    try:
        yield run.run()
    finally:
        run.cleanup()


def test_a18_every_client_got_its_answers(a18):
    err = a18.gw.stderr_text()
    assert a18.rc == 0, err[-3000:]
    assert not gwtest.SANITIZER_RE.search(err), err
    assert not a18.errors, a18.errors[:5]
    assert len(a18.answers) == CLIENTS * PER_CLIENT
    bad = [a for a in a18.answers if a[1] != {"allow": 200, "deny": 403}[a[0]]]
    assert not bad, bad[:5]


def test_a18_whole_lines_only_in_one_total_order(a18):
    with open(a18.gw.audit_path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    for n, line in enumerate(lines, 1):
        assert line.startswith(b'{"seq":%d,"ts":"' % n) and line.endswith(b'"}'), \
            "line %d is not one whole record: %r" % (n, line[:200])
        assert line.count(b'"seq":') == 1 + line.count(b'\\"seq\\":'), \
            "line %d holds more than one record" % n
    trail = gwtest.Trail([a18.gw.audit_path])
    assert trail.seqs() == list(range(1, len(lines) + 1))


def test_a18_one_decision_per_request_one_complete_per_served_one(a18):
    trail = gwtest.Trail([a18.gw.audit_path])
    dec, comp = trail.ids("decision"), trail.ids("complete")
    assert len(dec) == len(set(dec)) and len(comp) == len(set(comp)), "a record written twice"
    assert sorted(dec) == sorted(a[2] for a in a18.answers)
    assert sorted(comp) == sorted(a[2] for a in a18.answers if a[1] == 200)
    verdict = {r["request_id"]: r["decision"] for r in trail.events("decision")}
    for kind, _, rid in a18.answers:
        assert verdict[rid] == kind, (rid, kind, verdict[rid])


def test_a18_every_forwarded_request_has_both_records(a18):
    trail = gwtest.Trail([a18.gw.audit_path])
    forwarded = gwtest.backend_ids(a18.backend)
    assert len(forwarded) == sum(1 for a in a18.answers if a[0] == "allow")
    bad = gwtest.unaudited(forwarded, trail, complete=True)
    assert not bad, "; ".join(bad[:10])


def test_a18_both_verifiers_accept_the_trail(a18):
    gwtest.assert_verifies(gwtest.audit_pubkey(a18.gw), [a18.gw.audit_path], "--require-sealed")
