"""A01 (testing.md, fault injection): the audit folder lies on a 64 KiB
tmpfs that is already full. `govgate serve` must refuse to start: exit
status not 0, a message naming the audit file and the cause, nothing
listening and nothing forwarded.
"""
import os
import subprocess

import pytest

import gwtest


@pytest.fixture
def full_disk(tmp_path):
    fs = gwtest.Tmpfs(tmp_path / "auditfs", 64 * 1024)
    try:
        fs.mount()
    except gwtest.Unavailable as e:
        pytest.skip(str(e))
    yield fs
    fs.umount()


def test_a01_serve_refuses_to_start_on_a_full_audit_disk(make_gateway, backend, full_disk):
    assert full_disk.fill("filler") > 0
    gw = make_gateway(start=False)
    gw.audit_path = os.path.join(full_disk.path, "audit.jsonl")
    gw.start(wait=False, prefix=full_disk.prefix())
    try:
        rc = gw.proc.wait(30)
    except subprocess.TimeoutExpired:
        gw.kill()
        raise AssertionError("govgate serve kept running with a full audit disk:\n%s"
                             % gw.stderr_text()[-3000:])
    gw.rc = rc
    gw.errf.close()
    err = gw.stderr_text()
    assert rc > 0, "exit %s; stderr:\n%s" % (rc, err)
    assert not gwtest.SANITIZER_RE.search(err), err
    assert gw.audit_path in err and "No space left on device" in err, \
        "no clear message naming the audit file and the cause:\n" + err
    assert "not started" in err, err
    assert backend.snapshot() == []
    # Nothing committed: the file holds no record (at most an empty file).
    view = full_disk.view(gw.audit_path)
    size = os.path.getsize(view) if os.path.exists(view) else 0
    assert size == 0, "a start record went to a full disk: %d bytes" % size
