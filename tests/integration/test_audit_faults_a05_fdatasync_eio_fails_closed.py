"""A05 (testing.md, fault injection): fdatasync(2) of the audit file
fails with EIO from the writer thread's Kth call on, for good (strace
`inject=fdatasync:error=EIO:when=K+` on that file only).

Invariant I3: the first failure is fatal for the descriptor, nothing is
retried-and-ignored. So: 503 audit_unavailable at once for the request
whose record was in the failed commit (or, when that was a `complete`
record, for the next one); nothing forwarded after the failure, even
after several of the writer's one-second recovery attempts (each one
needs an fdatasync, which keeps failing); no record of that commit or a
later one is left in the trail as if committed; both verifiers accept
the trail, whose end is reported unsealed (the gateway could not write
its stop record and checkpoint).

Requests go one at a time and the test waits for each `complete` record,
so each commit holds one record: the writer's fdatasync 1 is
`policy_loaded`, request k's decision is fdatasync 2k, its complete 2k+1.
"""
import os
import re
import signal
import subprocess
import time

import pytest

import gwtest

pytestmark = pytest.mark.skipif(not gwtest.strace_usable(),
                                reason="strace missing or ptrace refused")

CALL_RE = re.compile(r'^(\d+) +(write|fdatasync)\((\d+)(?:, "(.*)"(?:\.\.\.)?, \d+)?\) += (.*)$')


class Run:
    def __init__(self, k, workdir, pki):
        self.k = k
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend,
                                 audit_opts={"checkpoint_interval": "60s"})
        self.strace_log = os.path.join(self.gw.dir, "strace.log")
        self.responses = []
        self.later = []

    def request(self, c):
        c.send(gwtest.build_request("GET", "/api/echo"))
        r = c.read_response(timeout=15)
        reason = r.json().get("reason") if r.status != 200 else None
        return (r.status, r.header("X-Govgate-Request-Id"), reason)

    def audit_text(self):
        with open(self.gw.audit_path, encoding="utf-8") as f:
            return f.read()

    def failing(self):
        return "fdatasync: Input/output error; refusing requests" in self.gw.stderr_text()

    def run(self):
        gw = self.gw
        gw.start(prefix=["strace", "-f", "-qq", "-s", "256", "-o", self.strace_log,
                         "-P", gw.audit_path, "-e", "trace=write,fdatasync",
                         "-e", "inject=fdatasync:error=EIO:when=%d+" % self.k],
                 env=gwtest.TRACED_ENV, timeout=60)
        pid = gwtest.traced_pid(gw)
        c = gw.connect(timeout=15)
        try:
            for _ in range(self.k):
                resp = self.request(c)
                self.responses.append(resp)
                if resp[0] != 200:
                    break
                gwtest.wait_until(lambda: ('"complete","request_id":"%s"' % resp[1])
                                  in self.audit_text() or self.failing(), 10)
                if self.failing():
                    break
            # At once, and after two recovery attempts: still refused.
            self.later.append(self.request(c))
            gwtest.wait_until(lambda: self.gw.stderr_text().count("still degraded") >= 2, 15)
            time.sleep(0.2)
            for _ in range(3):
                self.later.append(self.request(c))
        finally:
            c.close()
        os.kill(pid, signal.SIGTERM)
        try:
            gw.proc.wait(60)
        except subprocess.TimeoutExpired:
            gw.kill()
        self.rc = gw.stop(check=False)
        return self

    def calls(self):
        """[(pid, call, text of a write, result)] from the strace log."""
        out = []
        with open(self.strace_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = CALL_RE.match(line.rstrip("\n"))
                if m:
                    out.append((int(m.group(1)), m.group(2),
                                (m.group(4) or "").replace('\\"', '"'), m.group(5)))
        return out

    def first_failure(self):
        """(writer pid, its fdatasync number, request ids and seqs
        written in the failed commit)."""
        calls = self.calls()
        for i, (pid, call, _, res) in enumerate(calls):
            if call == "fdatasync" and "INJECTED" in res:
                nth = sum(1 for c in calls[:i + 1] if c[0] == pid and c[1] == "fdatasync")
                j = i - 1
                while calls[j][0] != pid or calls[j][1] != "write":
                    j -= 1
                text = calls[j][2]
                rids = re.findall(r'"request_id":"(\w+)"', text)
                seqs = [int(s) for s in re.findall(r'"seq":(\d+)', text)]
                events = re.findall(r'"event":"(\w+)"', text)
                return pid, nth, rids, seqs, events
        raise AssertionError("no injected fdatasync failure in the strace log")

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module", params=[2, 5], ids=lambda k: "K=%d" % k)
def a05(request, tmp_path_factory, pki):
    run = Run(request.param, tmp_path_factory.mktemp("a05-k%d" % request.param), pki)
    try:
        yield run.run()
    finally:
        run.cleanup()


def test_a05_the_kth_fdatasync_failed_and_the_gateway_said_so(a05):
    pid, nth, rids, seqs, events = a05.first_failure()
    assert nth == a05.k, (nth, a05.k)
    assert events == ["decision" if a05.k % 2 == 0 else "complete"], events
    err = a05.gw.stderr_text()
    assert "fdatasync: Input/output error; refusing requests (503 audit_unavailable)" in err, err
    assert a05.rc == 0, err[-3000:]
    assert not gwtest.SANITIZER_RE.search(err), err


def test_a05_fails_closed_at_once_and_stays_closed(a05):
    pid, nth, rids, seqs, events = a05.first_failure()
    ids = [r[1] for r in a05.responses]
    assert rids[0] in ids, (rids, a05.responses)
    i = ids.index(rids[0])
    if events == ["decision"]:
        assert a05.responses[i] == (503, rids[0], "audit_unavailable"), a05.responses
    else:
        # A complete record failed: its request was already answered.
        assert a05.responses[i][:2] == (200, rids[0]), a05.responses
    # No retry-and-continue: every later request is refused.
    later = a05.responses[i + 1:] + a05.later
    assert [(r[0], r[2]) for r in later] == [(503, "audit_unavailable")] * len(later), later
    assert "still degraded" in a05.gw.stderr_text()


def test_a05_nothing_forwarded_after_the_failure(a05):
    pid, nth, rids, seqs, events = a05.first_failure()
    forwarded = gwtest.backend_ids(a05.backend)
    served = [r[1] for r in a05.responses if r[0] == 200]
    assert forwarded == served, (forwarded, served)
    refused = {r[1] for r in a05.responses + a05.later if r[0] != 200}
    assert not refused & set(forwarded)


def test_a05_nothing_after_the_last_good_fdatasync_is_in_the_trail(a05):
    pid, nth, rids, seqs, events = a05.first_failure()
    trail = gwtest.Trail([a05.gw.audit_path])
    assert trail.seqs() == list(range(1, min(seqs))), \
        "records from seq %d on were not committed, yet the file holds %r" % (
            min(seqs), trail.seqs())
    refused = {r[1] for r in a05.responses + a05.later if r[0] != 200}
    assert not refused & set(trail.ids("decision"))
    for rid, ev in zip(rids, events):
        assert rid not in trail.ids(ev), "the failed %s record of %s is in the trail" % (ev, rid)


def test_a05_every_forwarded_request_has_a_decision_record(a05):
    trail = gwtest.Trail([a05.gw.audit_path])
    assert not gwtest.unaudited(gwtest.backend_ids(a05.backend), trail, complete=False)


def test_a05_every_forwarded_request_has_a_complete_record_or_its_loss_is_logged(a05):
    """The fdatasync error never clears here, so a forwarded request whose
    outcome came after the failure can never get its complete record; the
    gateway holds it, offers it again, and at shutdown must say it is lost.
    No loss may go unreported."""
    trail = gwtest.Trail([a05.gw.audit_path])
    bad = gwtest.unaudited(gwtest.backend_ids(a05.backend), trail, complete=True)
    lost = a05.gw.stderr_text().count("audit: complete record lost")
    assert len(bad) <= lost, "%d forwarded without a complete record, %d losses " \
        "logged: %s" % (len(bad), lost, "; ".join(bad))


def test_a05_both_verifiers_accept_the_trail_and_report_it_unsealed(a05):
    pub = gwtest.audit_pubkey(a05.gw)
    res = gwtest.audit_verify(pub, [a05.gw.audit_path])
    for name, (rc, out) in res.items():
        assert rc == 0, (name, out)
        assert "unsealed" in out, (name, out)
    res = gwtest.audit_verify(pub, [a05.gw.audit_path], "--require-sealed")
    for name, (rc, out) in res.items():
        assert rc == 1 and "unsealed" in out, (name, rc, out)
