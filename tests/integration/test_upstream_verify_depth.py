"""upstreams.NAME.tls.verify_depth: how many intermediate CAs a backend's
chain may have below the upstream's tls.ca, as listeners[].tls.verify_depth
is for clients. Default 4.

A backend presents root -> CA1 -> CA2 -> CA3 -> its certificate (three
intermediates, sent in its chain); the gateway trusts the root only.
"""
import os
import ssl

import pytest

import gwtest
from cryptography.x509.oid import NameOID

O, CN = NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME


@pytest.fixture(scope="module")
def chain(tmp_path_factory, pki):
    """The root's file, and the backend's chain with three intermediates."""
    m = gwtest.CertMaker(pki, tmp_path_factory.mktemp("updepth"))
    m.issue("up-root", [(O, "Test Backends"), (CN, "Depth Root")], None, ca=True)
    prev, names = "up-root", []
    for i in range(1, 4):
        name = "up-ca%d" % i
        m.issue(name, [(O, "Test Backends"), (CN, "Depth CA %d" % i)], prev, ca=True)
        names.insert(0, name)
        prev = name
    leaf = m.issue("up-three", [(O, "Test Backends"), (CN, "localhost")], prev,
                   chain=names, server=True)
    return os.path.join(m.out, "up-root.pem"), leaf


@pytest.fixture
def chain_backend(chain):
    """A backend that sends its certificate with the three intermediates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain[1] + ".chain.pem", chain[1] + ".key")
    b = gwtest.TlsBackend(ctx).start()
    yield b
    b.stop()


def depth_gateway(make_gateway, root, b, depth=None):
    tls = "{ ca: %s%s }" % (root, "" if depth is None else ", verify_depth: %d" % depth)
    return make_gateway(upstreams={"echo-api": b.address}, upstream_opts={"tls": tls})


def set_depth(gw, root, depth, n):
    gw.upstream_opts["tls"] = "{ ca: %s, verify_depth: %d }" % (root, depth)
    gw.write_config()
    gw.reload()
    line = "reload %d: " % n
    assert gwtest.wait_until(lambda: any(line in ln and ("in force" in ln or "failed" in ln)
                                         for ln in gw.stderr_text().splitlines()), 5), \
        gw.stderr_text()[-2000:]
    assert "reload %d: failed" % n not in gw.stderr_text()


def test_three_intermediates_pass_the_default_depth(make_gateway, chain, chain_backend):
    gw = depth_gateway(make_gateway, chain[0], chain_backend)
    r = gw.request("GET", "/api/echo", timeout=5)
    assert r.status == 200 and r.json() == {"backend": "tls"}, r
    assert chain_backend.served() == 1


def test_chain_longer_than_verify_depth_is_502_and_sighup_applies_a_new_depth(
        make_gateway, chain, chain_backend):
    root = chain[0]
    gw = depth_gateway(make_gateway, root, chain_backend, depth=2)
    r = gw.request("GET", "/api/echo", timeout=5)
    assert r.status == 502, r
    assert chain_backend.served() == 0
    assert "certificate chain too long" in gw.stderr_text(), gw.stderr_text()[-2000:]

    set_depth(gw, root, 3, 1)
    statuses = [gw.request("GET", "/api/echo", timeout=5).status for _ in range(2)]
    assert statuses == [200, 200]
    assert chain_backend.served() == 2

    # Lowered again: a session resumed from depth 3 must not carry the
    # chain past the new check.
    set_depth(gw, root, 2, 2)
    r = gw.request("GET", "/api/echo", timeout=5)
    assert r.status == 502, r
    assert chain_backend.served() == 2
