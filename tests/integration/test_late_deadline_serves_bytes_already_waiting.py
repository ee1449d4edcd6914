"""A deadline the gateway notices late must not outrun bytes that arrived
in time. When the gateway is not scheduled for a while (a busy host, a
paused VM, here SIGSTOP) the peer's data and an expired deadline are due
in the same turn of the event loop; libevent then runs the timeout and
drops the read. The gateway must serve what is already waiting (nginx
runs a turn's I/O handlers before it expires timers) and cut off only a
peer that really is late.

Each case stops the gateway, lets the peer finish in time while it is
stopped, waits past the deadline, and continues the gateway. Before the
fix the answers were 504, two closed connections and 408.
"""
import os
import signal
import time

import pytest

import gwtest

DEADLINE_MS = 1000  # every deadline the cases run past
PAST = DEADLINE_MS / 1000 + 1.0  # seconds the gateway stays stopped


@pytest.fixture
def gw(make_gateway, backend):
    # At debug level the log names each state change, so a case can wait
    # until the gateway is where the case needs it before stopping it.
    deadline = "%dms" % DEADLINE_MS
    return make_gateway(limits={"header_timeout": deadline, "idle_timeout": deadline},
                        upstream_opts={"read_timeout": deadline},
                        extra="log:\n  level: debug\n")


def wait_state(g, change):
    """Wait until the log shows the state change `change`, e.g. "-> idle"."""
    assert gwtest.wait_until(lambda: change in g.stderr_text(), 10), \
        "no %r in the log" % change


class Stopped:
    """The gateway stopped (SIGSTOP) for the block, then PAST seconds
    after the block's end, then continued."""

    def __init__(self, g):
        self.g = g

    def __enter__(self):
        os.kill(self.g.proc.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        try:
            time.sleep(PAST)
        finally:
            os.kill(self.g.proc.pid, signal.SIGCONT)
        return False


def test_answer_that_came_while_stopped_is_not_an_upstream_timeout(gw, backend):
    backend.mode = "gated"
    c = gw.connect("renshe")
    try:
        c.send(gwtest.build_request())
        assert backend.wait_for(1), "the request did not reach the backend"
        with Stopped(gw):
            backend.gate.set()
            assert gwtest.wait_until(lambda: backend.answered == 1, 5)
        r = c.read_response(timeout=10)
    finally:
        c.close()
    assert r.status == 200, (r, gw.stderr_text()[-1500:])
    assert "no response within" not in gw.stderr_text()


def test_head_finished_while_stopped_is_not_a_header_timeout(gw, backend):
    req = gwtest.build_request()
    c = gw.connect("renshe")
    try:
        c.send(req[:12])
        wait_state(gw, "-> read_head")
        with Stopped(gw):
            c.send(req[12:])
        r = c.read_response(timeout=10)
    finally:
        c.close()
    assert r.status == 200, (r, gw.stderr_text()[-1500:])
    assert "request head not complete" not in gw.stderr_text()


def test_request_sent_while_stopped_on_an_idle_connection_is_served(gw, backend):
    c = gw.connect("renshe")
    try:
        c.send(gwtest.build_request())
        assert c.read_response(timeout=10).status == 200
        wait_state(gw, "-> idle")
        with Stopped(gw):
            c.send(gwtest.build_request())
        r = c.read_response(timeout=10)
    finally:
        c.close()
    assert r.status == 200, (r, gw.stderr_text()[-1500:])
    assert len(backend.wait_for(2)) == 2


def test_body_finished_while_stopped_is_not_a_body_timeout(gw, backend):
    head = gwtest.build_request("POST", headers=[("Content-Length", "10")])
    c = gw.connect("renshe")
    try:
        c.send(head + b"01234")
        # The head and the first bytes are on their way upstream.
        assert gwtest.wait_until(lambda: backend.bytes_received >= len(head), 5)
        with Stopped(gw):
            c.send(b"56789")
        r = c.read_response(timeout=10)
    finally:
        c.close()
    assert r.status == 200, (r, gw.stderr_text()[-1500:])
    reqs = backend.wait_for(1)
    assert reqs[0].body == b"0123456789"


def test_a_client_that_really_is_late_is_still_cut_off(gw, backend):
    """The control: stopped past the deadline with nothing more waiting
    than half a head, the head timeout still ends the connection (a
    deadline that kept waiting for unparsed bytes would never end it)."""
    c = gw.connect("renshe")
    try:
        c.send(b"GET /api/echo HTTP/1.1\r\n")
        wait_state(gw, "-> read_head")
        with Stopped(gw):
            pass
        c.expect_closed(timeout=10)
    finally:
        c.close()
    assert "request head not complete after %d ms" % DEADLINE_MS in gw.stderr_text()
    assert backend.received_nothing()
