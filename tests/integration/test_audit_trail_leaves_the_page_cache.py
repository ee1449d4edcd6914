"""The audit trail does not fill the page cache.

A busy gateway appends gigabytes of audit records and never reads them
back; kept cached they would push out the cache of everything else on
the machine. Every 100 ms while records come in, the writer drops from
the cache what was written back before. So after megabytes of records,
with both audit.sync modes, only a small tail of the file stays cached,
and the trail still verifies.
"""
import os
import shutil
import subprocess

import pytest

import gwtest

# Records of about 4 KiB (the path is in the decision record): a few
# hundred requests write megabytes.
PATH = "/api/cache/" + "c" * 3000
WRITTEN = 6 * 1024 * 1024


def cached_bytes(path):
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw",
                        "--output", "RES", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[0])


def filesystem_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("sync", ["fsync", "write"])
def test_written_records_leave_the_page_cache(tmp_path, pki, sync):
    if shutil.which("fincore") is None:
        pytest.skip("fincore (util-linux) is not installed")
    if filesystem_type(str(tmp_path)) in ("tmpfs", "ramfs"):
        pytest.skip("the test folder is in memory: its pages are the file")
    backend = gwtest.RecordingBackend().start()
    # No checkpoint during the test: the writer keeps its 100 ms tick.
    gw = gwtest.Gateway(tmp_path, pki, backend=backend,
                        audit_opts={"sync": sync, "checkpoint_interval": "10m"})
    load = None
    try:
        gw.start()
        load = gwtest.Load(gw, n=4, path=PATH).start()
        assert gwtest.wait_until(
            lambda: os.path.getsize(gw.audit_path) >= WRITTEN, 120), \
            "the trail did not grow to %d bytes: %d ok, %r" % (
                WRITTEN, load.ok, load.failures[:3])
        load.stop()
        assert not load.failures, load.failures[:5]
        size = os.path.getsize(gw.audit_path)
        # Written back and dropped within a few ticks; a page still under
        # write-back on a slow disk may stay, so allow an eighth.
        assert gwtest.wait_until(
            lambda: cached_bytes(gw.audit_path) <= size // 8, 10), \
            "%d of %d bytes of the trail still cached" % (
                cached_bytes(gw.audit_path), size)
        gw.stop()
        gwtest.assert_verifies(gwtest.audit_pubkey(gw), [gw.audit_path])
    finally:
        if load is not None:
            load.stop()
        gw.kill()
        backend.stop()
