"""A09 (testing.md, fault injection): `rm` of the audit file while 8
client threads keep the gateway busy.

src/auditlog.c: after each commit the writer checks the descriptor;
st_nlink 0 means the batch went only to a nameless inode, so it is
reported failed (503 audit_unavailable, nothing forwarded) and a new file
is created at the path, starting with a `reopen` record that continues
the chain from the last record written to the removed inode and names
the records lost with it.

The test keeps a descriptor on the old file, so it can still read what
the removed inode holds (as an operator restoring the file from a backup
would have it up to the removal). "The files that exist" are then: the
removed file up to its last committed record, and the new file; every
request the backend received must be audited there, and records that
went only to the removed inode must not count: their requests were
refused. Both verifiers accept the new file alone (--partial: it starts
mid-chain) and the removed inode + the new file as one chain.
"""
import os
import re
import time

import pytest

import gwtest


class Run:
    def __init__(self, workdir, pki):
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend, workers=2)
        self.removed = os.path.join(self.gw.dir, "audit-removed.jsonl")

    def run(self):
        gw = self.gw
        gw.start()
        load = gwtest.Load(gw, 8).start()
        try:
            assert gwtest.wait_until(lambda: load.ok >= 100, 30), "no load: %r" % load.failures[:3]
            with open(gw.audit_path, "rb") as held:
                os.unlink(gw.audit_path)
                # Whatever lies wholly beyond this was written after the rm.
                self.size_at_rm = os.fstat(held.fileno()).st_size
                assert gwtest.wait_until(
                    lambda: os.path.exists(gw.audit_path) and os.path.getsize(gw.audit_path), 10), \
                    "no new audit file after the rm:\n" + gw.stderr_text()[-2000:]
                time.sleep(0.5)
                load.stop()
                self.rc = gw.stop(check=False)
                old = held.read()
        finally:
            load.stop()
        with open(self.removed, "wb") as f:
            f.write(old)
        self.load = load
        return self

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module")
def a09(tmp_path_factory, pki):
    run = Run(tmp_path_factory.mktemp("a09"), pki)
    try:
        yield run.run()
    finally:
        run.cleanup()


def lost_range(new):
    """(first, last) seq that the reopen record says went to the void."""
    m = re.search(r"records (\d+) to (\d+) went only to the removed file", new["reason"])
    assert m, new
    return int(m.group(1)), int(m.group(2))


def test_a09_removal_is_detected_and_a_reopen_record_continues_the_chain(a09):
    err = a09.gw.stderr_text()
    assert a09.rc == 0, err[-3000:]
    assert not gwtest.SANITIZER_RE.search(err), err
    assert "file removed" in err, err
    old = gwtest.Trail([a09.removed]).records
    new = gwtest.Trail([a09.gw.audit_path]).records
    assert new[0]["event"] == "reopen", new[0]
    assert "file removed" in new[0]["reason"], new[0]
    assert new[0]["prev"] == old[-1]["hash"] and new[0]["seq"] == old[-1]["seq"] + 1, \
        (old[-1], new[0])
    first, last = lost_range(new[0])
    assert first <= last <= old[-1]["seq"], (first, last, old[-1]["seq"])


def test_a09_records_only_in_the_removed_inode_were_refused(a09):
    old = gwtest.Trail([a09.removed]).records
    first, last = lost_range(gwtest.Trail([a09.gw.audit_path]).records[0])
    lost = [r for r in old if first <= r["seq"] <= last]
    assert lost
    forwarded = set(gwtest.backend_ids(a09.backend))
    status = {rid: st for st, rid, _ in a09.load.responses}
    for r in lost:
        if r["event"] == "decision":
            assert r["request_id"] not in forwarded, r["request_id"]
            assert status.get(r["request_id"]) in (503, None), (r["request_id"], status.get(r["request_id"]))
    # A request record written wholly after the rm is never counted
    # as committed.
    with open(a09.removed, "rb") as f:
        data = f.read()
    end = 0
    for line, r in zip(data.split(b"\n"), old):
        start, end = end, end + len(line) + 1
        if start >= a09.size_at_rm and r["event"] in ("decision", "complete"):
            assert first <= r["seq"] <= last, \
                "seq %d written after the rm, yet not among the lost %d..%d" % (r["seq"], first, last)


def test_a09_refusals_are_503_audit_unavailable(a09):
    bad = [r for r in a09.load.responses if r[0] != 200 and (r[0], r[2]) != (503, "audit_unavailable")]
    assert not bad, bad[:5]
    others = [f for f in a09.load.failures if not f.startswith("status 503")]
    assert not others, others[:5]


def existing(a09):
    """The removed file up to its last committed record, and the new file."""
    first, _ = lost_range(gwtest.Trail([a09.gw.audit_path]).records[0])
    old = gwtest.Trail([a09.removed])
    old.records = [r for r in old.records if r["seq"] < first]
    new = gwtest.Trail([a09.gw.audit_path])
    new.records = old.records + new.records
    return new


def test_a09_every_forwarded_request_has_a_decision_record_in_the_files_that_exist(a09):
    forwarded = gwtest.backend_ids(a09.backend)
    assert len(forwarded) >= 100
    bad = gwtest.unaudited(forwarded, existing(a09), complete=False)
    assert not bad, "; ".join(bad[:10])
    served = {rid for st, rid, _ in a09.load.responses if st == 200}
    assert served <= set(forwarded)


def test_a09_every_forwarded_request_has_a_complete_record_in_the_files_that_exist(a09):
    bad = gwtest.unaudited(gwtest.backend_ids(a09.backend), existing(a09), complete=True)
    assert not bad, "%d of %d: %s" % (len(bad), len(a09.backend.snapshot()), "; ".join(bad[:5]))


def test_a09_no_complete_record_without_its_decision(a09):
    # A request refused for want of a decision record has no complete
    # record either: the trail holds no outcome of an undecided request.
    orphans = gwtest.orphan_completes(existing(a09))
    assert not orphans, "%d complete records without a decision, e.g. %r" % (
        len(orphans), orphans[:2])


def test_a09_both_verifiers_accept_the_new_file_and_the_whole_chain(a09):
    pub = gwtest.audit_pubkey(a09.gw)
    gwtest.assert_verifies(pub, [a09.gw.audit_path], "--partial", "--require-sealed")
    gwtest.assert_verifies(pub, [a09.removed, a09.gw.audit_path], "--require-sealed")
    # Without --partial the new file alone does not start the chain.
    for name, (rc, out) in gwtest.audit_verify(pub, [a09.gw.audit_path]).items():
        assert rc == 1 and ":1:" in out, (name, rc, out)
