"""A03 (testing.md, fault injection): ENOSPC on the Nth write(2) to the
audit file, injected by strace on that file only, under `govgate serve`.

strace counts per thread: write 1 of the main thread is the `start`
record (N=1: serve must refuse to start). The writer thread's write 1 is
`policy_loaded`; then the test sends requests one at a time and waits
for each `complete` record before the next request, so every record is
one write: request k's decision is write 2k, its complete write 2k+1.
The strace log (which shows the bytes of each write) says which record
write N carried.

Expected, as src/auditlog.c documents: the failed record is never
reported committed; a request whose decision failed gets 503
audit_unavailable and is not forwarded; the trail is degraded (503 at
once) until the writer reopens the file (every second) and commits
`audit_degraded` + `audit_recovered`; then requests are served again;
both verifiers accept the trail.
"""
import os
import re
import signal
import subprocess

import pytest

import gwtest

pytestmark = pytest.mark.skipif(not gwtest.strace_usable(),
                                reason="strace missing or ptrace refused")

WRITE_RE = re.compile(r'^(\d+) +write\(\d+, "(.*)"(?:\.\.\.)?, \d+\) += (.*)$')


class Run:
    """One gateway run with write N failing; what happened."""

    def __init__(self, n, workdir, pki):
        self.n = n
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend,
                                 audit_opts={"checkpoint_interval": "60s"})
        self.strace_log = os.path.join(self.gw.dir, "strace.log")
        self.responses = []  # (status, request id, reason, Retry-After)
        self.after_failure = None
        self.after_recovery = []
        self.rc = None

    def prefix(self):
        return ["strace", "-f", "-qq", "-s", "256", "-o", self.strace_log,
                "-P", self.gw.audit_path, "-e", "trace=write",
                "-e", "inject=write:error=ENOSPC:when=%d" % self.n]

    def request(self, c):
        c.send(gwtest.build_request("GET", "/api/echo"))
        r = c.read_response(timeout=15)
        reason = None
        if r.status != 200:
            reason = r.json().get("reason")
            assert r.json().get("request_id") == r.header("X-Govgate-Request-Id"), r
        return (r.status, r.header("X-Govgate-Request-Id"), reason, r.header("Retry-After"))

    def audit_text(self):
        try:
            with open(self.gw.audit_path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def failing(self):
        return "refusing requests" in self.gw.stderr_text()

    def run(self):
        gw = self.gw
        if self.n == 1:
            gw.start(wait=False, prefix=self.prefix(), env=gwtest.TRACED_ENV)
            try:
                self.rc = gw.proc.wait(60)
            finally:
                gw.kill()
            gw.rc = self.rc
            gw.errf.close()
            return self
        gw.start(prefix=self.prefix(), env=gwtest.TRACED_ENV, timeout=60)
        self.pid = gwtest.traced_pid(gw)
        c = gw.connect(timeout=15)
        try:
            # Until write N has happened: one record per write.
            for _ in range(self.n):
                resp = self.request(c)
                self.responses.append(resp)
                if resp[0] != 200:
                    break
                rid = resp[1]
                gwtest.wait_until(lambda: ('"complete","request_id":"%s"' % rid)
                                  in self.audit_text() or self.failing(), 10)
                if self.failing():
                    break
            # Degraded: the next request is refused at once.
            self.after_failure = self.request(c)
            # The writer retries every second and records the outage.
            gwtest.wait_until(lambda: '"audit_recovered"' in self.audit_text(), 15)
            for _ in range(3):
                self.after_recovery.append(self.request(c))
        finally:
            c.close()
        os.kill(self.pid, signal.SIGTERM)
        try:
            gw.proc.wait(60)
        except subprocess.TimeoutExpired:
            gw.kill()
        self.rc = gw.stop(check=False)
        return self

    def writes(self):
        """[(pid, seq, event, request id, result)] of the strace log."""
        out = []
        with open(self.strace_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = WRITE_RE.match(line.rstrip("\n"))
                if not m:
                    continue
                text = m.group(2).replace('\\"', '"')
                seq = re.search(r'"seq":(\d+)', text)
                ev = re.search(r'"event":"(\w+)"', text)
                rid = re.search(r'"request_id":"(\w+)"', text)
                out.append((int(m.group(1)), int(seq.group(1)) if seq else None,
                            ev.group(1) if ev else None, rid.group(1) if rid else None,
                            m.group(3)))
        return out

    def injected(self):
        return [w for w in self.writes() if "INJECTED" in w[4]]

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module", params=[2, 5, 20], ids=lambda n: "N=%d" % n)
def a03(request, tmp_path_factory, pki):
    run = Run(request.param, tmp_path_factory.mktemp("a03-n%d" % request.param), pki)
    try:
        yield run.run()
    finally:
        run.cleanup()


def failed_record(run):
    inj = run.injected()
    assert len(inj) == 1, "expected one injected failure, got %r" % inj
    return inj[0]


def test_a03_n1_the_start_record_fails_and_serve_refuses_to_start(tmp_path, pki):
    run = Run(1, tmp_path / "gw", pki)
    try:
        run.run()
        err = run.gw.stderr_text()
        assert run.rc not in (0, None), "exit %s:\n%s" % (run.rc, err)
        assert "No space left on device" in err and "not started" in err, err
        assert not gwtest.SANITIZER_RE.search(err), err
        assert run.audit_text() == "", "a record is in the file: %r" % run.audit_text()[:300]
        assert run.backend.snapshot() == []
    finally:
        run.cleanup()


def test_a03_the_nth_write_of_the_writer_is_the_one_that_failed(a03):
    pid, seq, event, rid, _ = failed_record(a03)
    mine = [w for w in a03.writes() if w[0] == pid]
    assert mine.index(failed_record(a03)) + 1 == a03.n, mine
    assert event == ("decision" if a03.n % 2 == 0 else "complete"), (event, a03.n)
    assert a03.rc == 0, a03.gw.stderr_text()[-3000:]
    err = a03.gw.stderr_text()
    assert not gwtest.SANITIZER_RE.search(err), err
    assert "write: No space left on device; refusing requests" in err, err


def failed_index(run, rid):
    """Where the request whose record failed is among the responses."""
    ids = [r[1] for r in run.responses]
    assert rid in ids, (rid, run.responses)
    return ids.index(rid)


def test_a03_the_failed_decision_gets_503_and_is_not_forwarded(a03):
    pid, seq, event, rid, _ = failed_record(a03)
    forwarded = set(gwtest.backend_ids(a03.backend))
    i = failed_index(a03, rid)
    if event == "decision":
        assert a03.responses[i][:3] == (503, rid, "audit_unavailable"), a03.responses[i]
        assert a03.responses[i][3] is not None, "503 without Retry-After"
        assert rid not in forwarded
    else:
        # A complete record failed: its request was already answered.
        assert a03.responses[i][0] == 200, a03.responses[i]
    # Degraded from then on: later requests are refused, not forwarded.
    later = a03.responses[i + 1:] + [a03.after_failure]
    assert [(r[0], r[2]) for r in later] == [(503, "audit_unavailable")] * len(later), later
    assert not {r[1] for r in later} & forwarded


def test_a03_earlier_requests_were_forwarded_with_both_records(a03):
    pid, seq, event, rid, _ = failed_record(a03)
    i = failed_index(a03, rid)
    before = a03.responses[:i] if event == "decision" else a03.responses[:i + 1]
    trail = gwtest.Trail([a03.gw.audit_path])
    forwarded = set(gwtest.backend_ids(a03.backend))
    want = (a03.n - 2) // 2 + (0 if event == "decision" else 1)
    assert len(before) == want and all(r[0] == 200 for r in before), before
    for r in before:
        assert r[1] in forwarded
        assert r[1] in trail.ids("decision")
        if r[1] != rid:
            assert r[1] in trail.ids("complete")


def test_a03_every_forwarded_request_has_a_decision_record(a03):
    trail = gwtest.Trail([a03.gw.audit_path])
    forwarded = gwtest.backend_ids(a03.backend)
    assert forwarded
    assert not gwtest.unaudited(forwarded, trail, complete=False)
    refused = [r[1] for r in a03.responses + [a03.after_failure] if r[0] != 200]
    assert not set(refused) & set(trail.ids("decision")), "a refused request has a decision record"


def test_a03_every_forwarded_request_has_a_complete_record(a03):
    trail = gwtest.Trail([a03.gw.audit_path])
    bad = gwtest.unaudited(gwtest.backend_ids(a03.backend), trail, complete=True)
    assert not bad, "; ".join(bad)


def test_a03_the_outage_is_recorded_and_requests_are_served_again(a03):
    pid, seq, event, rid, _ = failed_record(a03)
    trail = gwtest.Trail([a03.gw.audit_path])
    recs = trail.records
    deg = trail.events("audit_degraded")
    assert len(deg) == 1 and len(trail.events("audit_recovered")) == 1, \
        [r["event"] for r in recs]
    i = recs.index(deg[0])
    assert recs[i]["seq"] == seq, "audit_degraded is not where the failed record was"
    assert "write: No space left on device" in deg[0]["reason"], deg[0]
    assert "from seq %d" % seq in deg[0]["reason"], deg[0]
    assert recs[i + 1]["event"] == "audit_recovered", recs[i + 1]
    assert [r[0] for r in a03.after_recovery] == [200, 200, 200], a03.after_recovery
    forwarded = set(gwtest.backend_ids(a03.backend))
    for r in a03.after_recovery:
        assert r[1] in forwarded
    assert recs[-1]["event"] == "checkpoint" and recs[-2]["event"] == "stop"
    if event == "decision":
        assert rid not in trail.ids("decision")


def test_a03_no_complete_record_without_its_decision(a03):
    # A request refused for want of a decision record has no complete
    # record either: the trail holds no outcome of an undecided request.
    orphans = gwtest.orphan_completes(gwtest.Trail([a03.gw.audit_path]))
    assert not orphans, "%d complete records without a decision, e.g. %r" % (
        len(orphans), orphans[:2])


def test_a03_both_verifiers_accept_the_trail(a03):
    pub = gwtest.audit_pubkey(a03.gw)
    gwtest.assert_verifies(pub, [a03.gw.audit_path], "--require-sealed")
