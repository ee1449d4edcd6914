"""Upstream TLS sessions are resumed: each worker keeps the last session a
backend server gave (TLS 1.2 at the end of the handshake, TLS 1.3 in its
tickets, which come after it) and offers it on its next new connection
there, so only the first connection makes a full handshake. What resuming
would skip is still enforced: a session is not offered after a reload that
changed the upstream's TLS settings (here tls.server_name, which then fails
verification), nor after a failed handshake; a reload that keeps the TLS
settings keeps the sessions.

The backend is a Python TLS server that requires the gateway's client
certificate, answers every request with `Connection: close` and records
per connection whether the session was resumed.
"""
import os
import re
import ssl

import pytest

import gwtest


class ResumeBackend(gwtest.TlsBackend):
    """gwtest.TlsBackend with the backend certificate of the PKI, one TLS
    version, and the gateway's client certificate required."""

    def __init__(self, pki, version):
        self.pki = pki
        self.version = version
        gwtest.TlsBackend.__init__(self, self.context("backend"))

    def context(self, cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = self.version
        ctx.maximum_version = self.version
        ctx.load_cert_chain(os.path.join(self.pki, cert + ".crt"),
                            os.path.join(self.pki, cert + ".key"))
        ctx.load_verify_locations(os.path.join(self.pki, "backend-ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.fixture
def tls_backend(pki, request):
    b = ResumeBackend(pki, request.param).start()
    yield b
    b.stop()


def tls_gateway(make_gateway, pki, b, server_name="backend.test", policy=None):
    opts = {"tls": "{ ca: %s, certificate: %s, key: %s, server_name: %s }" % (
        os.path.join(pki, "backend-ca.pem"), os.path.join(pki, "gateway-client.crt"),
        os.path.join(pki, "gateway-client.key"), server_name)}
    return make_gateway(upstreams={"echo-api": b.address}, upstream_opts=opts,
                        policy=policy)


def set_server_name(gw, name):
    gw.upstream_opts["tls"] = re.sub(r"server_name: [^ ]+", "server_name: " + name,
                                     gw.upstream_opts["tls"])
    gw.write_config()


def get(gw, n=1):
    """n requests one after the other, each on a new upstream connection."""
    return [gw.request("GET", "/api/echo", timeout=5).status for _ in range(n)]


def reloaded(gw, n):
    line = "reload %d: " % n
    assert gwtest.wait_until(lambda: any(line in ln and ("in force" in ln or "failed" in ln)
                                         for ln in gw.stderr_text().splitlines()), 5), \
        gw.stderr_text()[-2000:]
    return "reload %d: failed" % n not in gw.stderr_text()


@pytest.mark.parametrize("tls_backend", VERSIONS, indirect=True, ids=["tls1.2", "tls1.3"])
def test_new_upstream_connections_resume_the_last_session(make_gateway, pki, tls_backend):
    gw = tls_gateway(make_gateway, pki, tls_backend)
    assert get(gw, 4) == [200] * 4
    assert tls_backend.resumed() == [False, True, True, True]

    # A reload that leaves the upstream's TLS settings as they were keeps
    # the sessions: the next connection still resumes.
    gw.write_policy(gwtest.make_policy(revision="resume-2"))
    gw.reload()
    assert reloaded(gw, 1)
    assert get(gw, 2) == [200] * 2
    assert tls_backend.resumed()[4:] == [True, True]


@pytest.mark.parametrize("tls_backend", VERSIONS[1:], indirect=True, ids=["tls1.3"])
def test_reload_with_another_server_name_verifies_anew(make_gateway, pki, tls_backend):
    gw = tls_gateway(make_gateway, pki, tls_backend)
    assert get(gw, 2) == [200] * 2
    assert tls_backend.resumed() == [False, True]

    # backend.crt does not name other.test: with the session kept the
    # handshake would resume and skip the check; it must fail instead.
    set_server_name(gw, "other.test")
    gw.reload()
    assert reloaded(gw, 1)
    assert get(gw, 1) == [502]
    assert gwtest.wait_until(lambda: "hostname mismatch" in gw.stderr_text(), 5), \
        gw.stderr_text()[-2000:]
    assert len(tls_backend.resumed()) == 2, "a request reached the backend"

    set_server_name(gw, "backend.test")
    gw.reload()
    assert reloaded(gw, 2)
    assert get(gw, 2) == [200] * 2
    assert tls_backend.resumed()[2:] == [False, True]


@pytest.mark.parametrize("tls_backend", VERSIONS, indirect=True, ids=["tls1.2", "tls1.3"])
def test_failed_handshake_forgets_the_session(make_gateway, pki, tls_backend):
    gw = tls_gateway(make_gateway, pki, tls_backend)
    assert get(gw, 2) == [200] * 2
    assert tls_backend.resumed() == [False, True]

    # A backend that shows a certificate of another CA (and cannot read
    # the old tickets): the handshake fails verification.
    good = tls_backend.ctx
    tls_backend.ctx = tls_backend.context("gateway")
    assert get(gw, 1) == [502]
    assert gwtest.wait_until(lambda: "backend certificate" in gw.stderr_text(), 5), \
        gw.stderr_text()[-2000:]

    # The original server again: it could resume the old session, but the
    # gateway no longer offers it.
    tls_backend.ctx = good
    assert get(gw, 2) == [200] * 2
    assert tls_backend.resumed()[2:] == [False, True]
