"""A SIGHUP (`systemctl reload`) or SIGUSR1 (logrotate) that arrives
while `govgate serve` is starting must not kill it. The listening port
accepts as soon as it is bound, before the audit trail is opened and the
signal handlers are installed; a signal in that window must be handled or
held, never left to its default action, which ends the process. strace
delays every system call on the audit file to hold the window open.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

import gwtest


def port_accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not gwtest.strace_usable(), reason="strace missing or ptrace refused")
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR1], ids=["SIGHUP", "SIGUSR1"])
def test_signal_while_starting_does_not_kill_the_gateway(tmp_path, pki, backend, sig):
    # Not make_gateway: its teardown would report the same death twice.
    gw = gwtest.Gateway(str(tmp_path / "gw"), pki, backend=backend)
    prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-P", gw.audit_path,
              "-e", "inject=all:delay_exit=300000"]
    gw.start(wait=False, prefix=prefix, env=gwtest.TRACED_ENV)
    pid = None
    try:
        assert gwtest.wait_until(lambda: port_accepts(gw.port) or not gw.alive(), 20, 0.005)
        assert gw.alive(), gw.stderr_text()[-2000:]
        pid = gwtest.traced_pid(gw)
        started = "listening on" in gw.stderr_text()
        os.kill(pid, sig)
        time.sleep(0.2)
        ready = gwtest.wait_until(lambda: "listening on" in gw.stderr_text() or not gw.alive(),
                                  30)
        assert ready and gw.alive(), \
            "govgate died of %s sent while it was starting (handlers %s); rc %s; stderr:\n%s" % (
                sig.name, "in place" if started else "not yet in place", gw.proc.poll(),
                gw.stderr_text()[-2000:])
        r = gw.request("GET", "/api/echo", timeout=30)
        assert r.status == 200, r
    finally:
        if pid is not None and gw.alive():
            os.kill(pid, signal.SIGTERM)
            try:
                gw.proc.wait(60)
            except subprocess.TimeoutExpired:
                gw.kill()
        else:
            gw.kill()
        gw.stop(check=False)


@pytest.mark.skipif(not gwtest.strace_usable(), reason="strace missing or ptrace refused")
def test_second_stop_signal_during_teardown_leaves_exit_status_0(tmp_path, pki, backend):
    """Ctrl-C reaches the gateway and the script that started it, and the
    script then sends SIGTERM too (scripts/demo.sh does). A gateway that
    stopped cleanly exits 0 whenever that second signal lands, also after
    its signal handlers are gone. strace slows each rt_sigaction by 50 ms,
    so the moment libevent gives SIGTERM its default action back lasts."""
    gw = gwtest.Gateway(str(tmp_path / "gw"), pki, backend=backend)
    prefix = ["strace", "-f", "-qq", "-o", "/dev/null",
              "-e", "inject=rt_sigaction:delay_exit=50000"]
    gw.start(wait=False, prefix=prefix, env=gwtest.TRACED_ENV)
    try:
        assert gwtest.wait_until(lambda: "listening on" in gw.stderr_text() or not gw.alive(),
                                 60), gw.stderr_text()[-2000:]
        pid = gwtest.traced_pid(gw)
        r = gw.request("GET", "/api/echo", timeout=30)
        assert r.status == 200, r
        os.kill(pid, signal.SIGINT)
        assert gwtest.wait_until(lambda: "stopped" in gw.stderr_text() or not gw.alive(), 30)
        sent = 0
        deadline = time.monotonic() + 30
        while gw.proc.poll() is None and time.monotonic() < deadline:
            try:
                os.kill(pid, signal.SIGTERM)
                sent += 1
            except ProcessLookupError:
                break
            time.sleep(0.005)
        rc = gw.proc.wait(30)
        assert rc == 0, "exit status %s after %d SIGTERMs during teardown; stderr:\n%s" % (
            rc, sent, gw.stderr_text()[-2000:])
        assert sent > 0
    finally:
        gw.kill()
        gw.stop(check=False)
