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
