"""A10 (testing.md, fault injection): logrotate-style rotation under load
from 8 client threads: `mv audit.jsonl audit.jsonl.1`, then SIGUSR1.

src/auditlog.c: a renamed file keeps what was committed to it (the
writer notices the rename after a commit, or at SIGUSR1), gets a final
checkpoint, and the new file at the path starts with a `reopen` record
that continues the chain. So: no request is refused, nothing is lost or
written twice, every forwarded request has its decision and complete
record in one of the two files, and both verifiers accept
`audit.jsonl.1 audit.jsonl` as one sealed chain.
"""
import os
import signal
import time

import pytest

import gwtest


class Run:
    def __init__(self, workdir, pki):
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend, workers=2)
        self.rotated = self.gw.audit_path + ".1"

    def run(self):
        gw = self.gw
        gw.start()
        load = gwtest.Load(gw, 8).start()
        try:
            assert gwtest.wait_until(lambda: load.ok >= 100, 30), "no load: %r" % load.failures[:3]
            os.rename(gw.audit_path, self.rotated)
            gw.signal(signal.SIGUSR1)
            assert gwtest.wait_until(
                lambda: os.path.exists(gw.audit_path) and os.path.getsize(gw.audit_path), 10), \
                "no new audit file after SIGUSR1:\n" + gw.stderr_text()[-2000:]
            n = load.ok
            assert gwtest.wait_until(lambda: load.ok >= n + 100, 30)
        finally:
            load.stop()
        time.sleep(0.1)
        self.rc = gw.stop(check=False)
        self.load = load
        return self

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module")
def a10(tmp_path_factory, pki):
    run = Run(tmp_path_factory.mktemp("a10"), pki)
    try:
        yield run.run()
    finally:
        run.cleanup()


def test_a10_no_request_is_refused_during_rotation(a10):
    err = a10.gw.stderr_text()
    assert a10.rc == 0, err[-3000:]
    assert not gwtest.SANITIZER_RE.search(err), err
    assert not a10.load.failures, a10.load.failures[:5]
    assert "reopened" in err, err


def test_a10_the_new_file_continues_the_chain_of_the_old_one(a10):
    old = gwtest.Trail([a10.rotated]).records
    new = gwtest.Trail([a10.gw.audit_path]).records
    assert old[-1]["event"] == "checkpoint", "the rotated file is not sealed: %r" % old[-1]
    assert new[0]["event"] == "reopen", new[0]
    assert new[0]["prev"] == old[-1]["hash"] and new[0]["seq"] == old[-1]["seq"] + 1
    assert any(r["event"] in ("decision", "complete") for r in new), "no request went to the new file"


def test_a10_no_loss_or_duplication(a10):
    trail = gwtest.Trail([a10.rotated, a10.gw.audit_path])
    seqs = trail.seqs()
    assert seqs == list(range(1, len(seqs) + 1)), "seq not 1..n across the files"
    dec, comp = trail.ids("decision"), trail.ids("complete")
    assert len(dec) == len(set(dec)) and len(comp) == len(set(comp)), "a record written twice"
    answered = [rid for st, rid, _ in a10.load.responses]
    assert sorted(dec) == sorted(answered), "decision records != requests answered"
    assert sorted(comp) == sorted(answered), "complete records != requests answered"


def test_a10_every_forwarded_request_has_both_records(a10):
    trail = gwtest.Trail([a10.rotated, a10.gw.audit_path])
    forwarded = gwtest.backend_ids(a10.backend)
    assert len(forwarded) >= 200
    bad = gwtest.unaudited(forwarded, trail, complete=True)
    assert not bad, "; ".join(bad[:10])


def test_a10_both_verifiers_accept_the_rotated_series(a10):
    pub = gwtest.audit_pubkey(a10.gw)
    gwtest.assert_verifies(pub, [a10.rotated, a10.gw.audit_path], "--require-sealed")
    gwtest.assert_verifies(pub, [a10.rotated], "--require-sealed")
