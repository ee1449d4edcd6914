"""SIGHUP applies a changed `log.file`: the new file is opened before the
new set is swapped in, the log moves there at once (the old file gets a
last line naming the new one and grows no more), and SIGUSR1 then reopens
the new file. A log file that cannot be opened refuses the whole reload,
as nginx does: the old log and the old set (policy) stay in force, and the
error is logged in the old file and in the `policy_loaded` audit record.
"""
import os
import signal

import gwtest


def log_cfg(path):
    return "log:\n  file: %s\n" % path


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_in(path, needle, timeout=5):
    ok = gwtest.wait_until(lambda: needle in read(path), timeout)
    assert ok, "%r never appeared in %s:\n%s" % (needle, path, read(path)[-3000:])


def deny(gw, tag):
    """One denied request whose log line holds tag."""
    r = gw.request("GET", "/secret/" + tag, timeout=5)
    assert r.status == 403, r


def loaded_records(gw):
    return [r for r in gw.audit_records() if r.get("event") == "policy_loaded"]


def test_reload_moves_the_log_to_the_new_file_and_usr1_reopens_it(make_gateway, tmp_path):
    a = str(tmp_path / "a.log")
    b = str(tmp_path / "b.log")
    gw = make_gateway(extra=log_cfg(a))
    wait_in(a, "listening on")
    deny(gw, "before-switch")
    wait_in(a, "/secret/before-switch")

    gw.extra = log_cfg(b)
    gw.write_config()
    gw.reload()
    wait_in(b, "reload 1: log continued from %s" % a)
    wait_in(b, "reload 1: policy revision")
    wait_in(a, "reload 1: log continues in %s" % b)
    size_a = os.path.getsize(a)

    deny(gw, "after-switch")
    wait_in(b, "/secret/after-switch")
    gw.reload()  # an unchanged log.file: the log stays where it is
    wait_in(b, "reload 2: policy revision")
    assert "/secret/after-switch" not in read(a)
    assert "reload 2" not in read(a)
    assert os.path.getsize(a) == size_a, "the old log file still grows:\n" + read(a)[size_a:]

    # Rotation: SIGUSR1 reopens the file now configured, not the first one.
    os.rename(b, b + ".1")
    gw.signal(signal.SIGUSR1)
    wait_in(b + ".1", "reopening the log")
    deny(gw, "after-rotation")
    wait_in(b, "/secret/after-rotation")
    assert os.path.getsize(a) == size_a
    assert "/secret/after-rotation" not in read(b + ".1")

    # Without log.file the log goes back to standard error.
    gw.extra = ""
    gw.write_config()
    gw.reload()
    wait_in(gw.stderr_path, "reload 3: log continued from %s" % b)
    deny(gw, "on-stderr")
    wait_in(gw.stderr_path, "/secret/on-stderr")
    assert "/secret/on-stderr" not in read(b)
    assert os.path.getsize(a) == size_a


def test_reload_to_a_log_file_that_cannot_be_opened_is_refused(make_gateway, tmp_path):
    a = str(tmp_path / "a.log")
    bad = str(tmp_path / "missing-folder" / "b.log")
    gw = make_gateway(extra=log_cfg(a), policy=gwtest.make_policy(revision="log-1"))
    wait_in(a, "listening on")

    # The same reload also brings a new policy: refused with the log.
    gw.write_policy(gwtest.make_policy(revision="log-2"))
    gw.extra = log_cfg(bad)
    gw.write_config()
    gw.reload()
    wait_in(a, "reload 1: failed; policy revision log-1 stays in force")
    assert "log.file: %s: No such file or directory" % bad in read(a)
    assert not os.path.exists(os.path.dirname(bad))
    rec = gwtest.wait_until(lambda: [r for r in loaded_records(gw)
                                     if r.get("result") != "ok"], 5)
    assert rec, loaded_records(gw)
    assert any("log.file: %s" % bad in e for e in rec[-1].get("errors", [])), rec[-1]

    deny(gw, "after-refusal")
    wait_in(a, "/secret/after-refusal")

    # Fixed, the next reload applies both.
    gw.extra = log_cfg(str(tmp_path / "c.log"))
    gw.write_config()
    gw.reload()
    wait_in(str(tmp_path / "c.log"), "reload 2: policy revision log-2")
