"""A02 (testing.md, fault injection): the audit disk (a 256 KiB tmpfs)
fills up under load from 8 client threads; then a filler file is deleted.

As src/auditlog.c documents: from the first failed write, requests get
503 audit_unavailable (the gateway's JSON body) and nothing is forwarded
without a committed decision record; the writer retries every second,
cuts what was not committed, and once a commit works again writes
`audit_degraded` + `audit_recovered` and accepts requests again (with
the disk still nearly full it may fail and recover more than once).
After the filler is gone requests are served; a clean stop seals the
trail and both verifiers accept it.
"""
import os
import shutil
import time

import pytest

import gwtest

FS_SIZE = 256 * 1024
FILLER = 96 * 1024


class Run:
    def __init__(self, workdir, pki, fs):
        self.fs = fs
        self.backend = gwtest.RecordingBackend().start()
        self.gw = gwtest.Gateway(workdir, pki, backend=self.backend, workers=2)
        self.gw.audit_path = os.path.join(fs.path, "audit.jsonl")
        self.copy = os.path.join(self.gw.dir, "audit-copy.jsonl")

    def audit_text(self):
        try:
            with open(self.fs.view(self.gw.audit_path), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def run(self):
        gw, fs = self.gw, self.fs
        assert fs.fill("filler", FILLER) == FILLER
        gw.start(prefix=fs.prefix(), timeout=60)
        load = gwtest.Load(gw, 8).start()
        try:
            full = gwtest.wait_until(lambda: any(r[0] != 200 for r in load.responses), 60)
            assert full, "the disk never filled: %d responses" % len(load.responses)
            self.t_full = time.monotonic()
            # Keep the load on over a few of the writer's retries.
            time.sleep(2.5)
        finally:
            load.stop()
        self.load = load
        self.forwarded_while_full = len(self.backend.snapshot())
        self.stuck = [gw.request("GET", "/api/echo", timeout=15) for _ in range(3)]
        recovered = self.audit_text().count('"audit_recovered"')
        os.unlink(fs.view(os.path.join(fs.path, "filler")))
        gwtest.wait_until(lambda: self.audit_text().count('"audit_recovered"') > recovered, 15)
        time.sleep(0.1)
        self.after = [gw.request("GET", "/api/echo", timeout=15) for _ in range(5)]
        self.rc = gw.stop(check=False)
        shutil.copyfile(fs.view(gw.audit_path), self.copy)
        return self

    def cleanup(self):
        self.gw.kill()
        self.backend.stop()


@pytest.fixture(scope="module")
def a02(tmp_path_factory, pki):
    base = tmp_path_factory.mktemp("a02")
    fs = gwtest.Tmpfs(base / "auditfs", FS_SIZE)
    try:
        fs.mount()
    except gwtest.Unavailable as e:
        pytest.skip(str(e))
    run = Run(base / "gw", pki, fs)
    try:
        yield run.run()
    finally:
        run.cleanup()
        fs.umount()


def test_a02_gateway_ran_and_stopped_cleanly(a02):
    err = a02.gw.stderr_text()
    assert a02.rc == 0, err[-3000:]
    assert not gwtest.SANITIZER_RE.search(err), err
    assert "No space left on device; refusing requests (503 audit_unavailable)" in err, err


def test_a02_refusals_are_503_audit_unavailable_and_never_forwarded(a02):
    refused = [r for r in a02.load.responses if r[0] != 200]
    assert refused
    assert {(r[0], r[2]) for r in refused} == {(503, "audit_unavailable")}, set(refused)
    assert not {r[1] for r in refused} & set(gwtest.backend_ids(a02.backend))
    assert not [f for f in a02.load.failures if not f.startswith("status 503")], \
        a02.load.failures[:5]


def test_a02_still_full_means_still_refused(a02):
    # The writer's retries while the disk stays full fail; the trail is
    # still degraded or fails again at once.
    assert any(r.status == 503 for r in a02.stuck), a02.stuck
    for r in a02.stuck:
        assert r.status in (200, 503), r
        if r.status == 503:
            assert r.json()["reason"] == "audit_unavailable"
            assert r.header("Retry-After") is not None


def test_a02_served_again_once_space_returns(a02):
    assert [r.status for r in a02.after] == [200] * 5, a02.after
    forwarded = set(gwtest.backend_ids(a02.backend))
    for r in a02.after:
        assert r.header("X-Govgate-Request-Id") in forwarded


def test_a02_every_forwarded_request_has_a_decision_record(a02):
    trail = gwtest.Trail([a02.copy])
    forwarded = gwtest.backend_ids(a02.backend)
    assert len(forwarded) > 20
    bad = gwtest.unaudited(forwarded, trail, complete=False)
    assert not bad, "; ".join(bad[:10])
    assert len(trail.ids("decision")) == len(set(trail.ids("decision")))


def test_a02_every_forwarded_request_has_a_complete_record(a02):
    trail = gwtest.Trail([a02.copy])
    bad = gwtest.unaudited(gwtest.backend_ids(a02.backend), trail, complete=True)
    assert not bad, "%d of %d: %s" % (len(bad), len(a02.backend.snapshot()), "; ".join(bad[:5]))


def test_a02_each_outage_is_recorded_degraded_then_recovered(a02):
    trail = gwtest.Trail([a02.copy])
    recs = trail.records
    deg = [i for i, r in enumerate(recs) if r["event"] == "audit_degraded"]
    assert deg, [r["event"] for r in recs][-20:]
    for i in deg:
        assert "No space left on device" in recs[i]["reason"], recs[i]
        assert "from seq %d" % recs[i]["seq"] in recs[i]["reason"], recs[i]
        assert recs[i + 1]["event"] == "audit_recovered", recs[i + 1]
    assert len(trail.events("audit_recovered")) == len(deg)
    assert sum(r["refused"] for r in trail.events("audit_recovered")) >= 1


def test_a02_no_complete_record_without_its_decision(a02):
    # A request refused for want of a decision record has no complete
    # record either: the trail holds no outcome of an undecided request.
    orphans = gwtest.orphan_completes(gwtest.Trail([a02.copy]))
    assert not orphans, "%d complete records without a decision, e.g. %r" % (
        len(orphans), orphans[:2])


def test_a02_both_verifiers_accept_the_trail(a02):
    gwtest.assert_verifies(gwtest.audit_pubkey(a02.gw), [a02.copy], "--require-sealed")
