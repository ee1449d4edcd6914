"""TLS behaviour of the listener (testing.md T01-T12): no client
certificate, old protocol versions, client renegotiation, post-handshake
auth, session resumption keeping the identity (and losing it after a CRL
reload), SNI against Host (421), ALPN, AEAD-only TLS 1.2 suites and an
absolute handshake deadline.
"""
import os
import re
import shutil
import socket
import ssl
import threading
import time
import warnings

import pytest

import gwtest

HANDSHAKE_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def tgw(tmp_path_factory, pki):
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("tls")), pki, backend=b,
                       limits={"handshake_timeout": "%ds" % HANDSHAKE_TIMEOUT})
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def served(gw, backend, ctx=None, dept="renshe", **kw):
    backend.clear()
    r = gw.request("GET", "/api/echo", ctx=ctx, **kw)
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header_all("X-Govgate-Department") == [dept]
    return r


def refused(gw, backend, ctx, **kw):
    backend.clear()
    how = gwtest.handshake_fails_or_no_response(gw.port, ctx, **kw)
    assert backend.received_nothing()
    return how


def test_t01_no_client_certificate_gets_no_response(tgw):
    gw, b = tgw
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = gw.context(None, min_version=version, max_version=version)
        refused(gw, b, ctx)
        served(gw, b, gw.context("renshe", min_version=version, max_version=version))


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_t02_old_protocol_versions_are_refused(tgw, version):
    gw, b = tgw
    b.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        v = getattr(ssl.TLSVersion, version)
        ctx = gw.context("renshe", seclevel0=True, min_version=v, max_version=v)
    with pytest.raises(ssl.SSLError) as e:
        gwtest.Conn.open(gw.port, ctx).close()
    assert not isinstance(e.value, ssl.SSLCertVerificationError)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value), "the client could not offer %s" % version
    assert b.received_nothing()
    served(gw, b, gw.context("renshe", seclevel0=True))


def test_t02_openssl_s_client_tls1_1_is_refused(tgw):
    gw, b = tgw
    b.clear()
    r = gwtest.openssl_client(gw.port, [
        "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost",
        "-cert", os.path.join(gw.pki, "renshe.chain.pem"),
        "-key", os.path.join(gw.pki, "renshe.key")],
        stdin=b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
    out = (r.stdout + r.stderr).decode("latin-1")
    assert r.returncode != 0, out
    assert "HTTP/1.1 200" not in out
    assert re.search(r"Cipher is \(NONE\)|alert|error", out), out
    assert b.received_nothing()


def test_t03_client_renegotiation_is_refused(tgw):
    gw, b = tgw
    b.clear()
    proc = gwtest.subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % gw.port, "-tls1_2",
         "-servername", "localhost", "-CAfile", os.path.join(gw.pki, "root-ca.pem"),
         "-cert", os.path.join(gw.pki, "renshe.chain.pem"),
         "-key", os.path.join(gw.pki, "renshe.key")],
        stdin=gwtest.subprocess.PIPE, stdout=gwtest.subprocess.PIPE,
        stderr=gwtest.subprocess.STDOUT)
    try:
        time.sleep(0.5)
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        time.sleep(1.0)
        try:
            proc.stdin.write(b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
            proc.stdin.flush()
            time.sleep(0.5)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        out = proc.communicate(timeout=10)[0].decode("latin-1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Protocol  : TLSv1.2" in out or "Protocol: TLSv1.2" in out, out
    assert "RENEGOTIATING" in out, out
    after = out.split("RENEGOTIATING", 1)[1]
    assert "verify return" not in after, "a second handshake completed:\n" + out
    # Whatever happened to the connection, no request under a renegotiated
    # identity reached the backend, and the gateway still serves.
    for req in b.snapshot():
        assert req.header_all("X-Govgate-Department") == ["renshe"]
    served(gw, b)


def test_t05_post_handshake_auth_is_never_requested(tgw):
    """A TLS 1.3 client that offers post-handshake auth is authenticated
    in the main handshake; without a certificate it is refused, not asked
    again later."""
    gw, b = tgw
    ctx = gw.context("renshe", min_version=ssl.TLSVersion.TLSv1_3)
    ctx.post_handshake_auth = True
    c = gw.connect(ctx=ctx)
    try:
        assert c.version() == "TLSv1.3"
        for _ in range(2):
            b.clear()
            c.send(gwtest.build_request("GET", "/api/echo"))
            r = c.read_response()
            assert r.status == 200, r
            assert b.wait_for(1)[0].header("X-Govgate-Department") == "renshe"
    finally:
        c.close()
    ctx = gw.context(None, min_version=ssl.TLSVersion.TLSv1_3)
    ctx.post_handshake_auth = True
    refused(gw, b, ctx)


@pytest.mark.parametrize("version,tickets", [
    ("TLSv1_2", False), ("TLSv1_2", True), ("TLSv1_3", True)],
    ids=["tls12_session_id", "tls12_ticket", "tls13_ticket"])
def test_t06_t08_resumed_session_keeps_the_identity(tgw, version, tickets):
    gw, b = tgw
    v = getattr(ssl.TLSVersion, version)
    ctx = gw.context("gongan", min_version=v, max_version=v, tickets=tickets)
    c = gw.connect(ctx=ctx)
    b.clear()
    c.send(gwtest.build_request("GET", "/api/echo"))
    assert c.read_response().status == 200
    sess = c.session
    first = b.wait_for(1)[0]
    c.close()
    assert sess is not None
    c2 = gw.connect(ctx=ctx, session=sess)
    try:
        assert c2.session_reused, "the gateway did not resume the session"
        b.clear()
        c2.send(gwtest.build_request("GET", "/api/echo"))
        assert c2.read_response().status == 200
        again = b.wait_for(1)[0]
    finally:
        c2.close()
    for h in ("X-Govgate-Department", "X-Govgate-Client-Subject", "X-Govgate-Client-Serial"):
        assert again.header_all(h) == first.header_all(h), h
    assert again.header("X-Govgate-Department") == "gongan"


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_t07_crl_reload_ends_resumption_of_a_revoked_certificate(tmp_path, pki, backend,
                                                                 make_gateway, version):
    m = gwtest.CertMaker(pki, tmp_path / "crl")
    m.issue("victim", [(gwtest_oid("O"), gwtest.RENSHE_O), (gwtest_oid("CN"), "victim")],
            "dept-ca", chain=["dept-ca"])
    m.crl("dept-revoking", "dept-ca", revoked=[os.path.join(m.out, "victim.crt")])
    revoking = m.bundle("revoking.crl", "root.crl", "dept-revoking.crl")
    live = str(tmp_path / "live.crl")
    shutil.copy(os.path.join(pki, "departments.crl"), live)
    gw = make_gateway(tls={"crl": live})
    v = getattr(ssl.TLSVersion, version)
    ctx = gw.context(os.path.join(m.out, "victim"), min_version=v, max_version=v)
    c = gw.connect(ctx=ctx)
    c.send(gwtest.build_request("GET", "/api/echo"))
    assert c.read_response().status == 200
    sess = c.session
    c.close()
    shutil.copy(revoking, live)
    gw.reload()
    time.sleep(1.0)
    backend.clear()
    try:
        c2 = gw.connect(ctx=ctx, session=sess)
    except (ssl.SSLError, OSError) as e:
        assert not isinstance(e, ssl.SSLCertVerificationError)
    else:
        try:
            c2.send(gwtest.build_request("GET", "/api/echo"))
            with pytest.raises(gwtest.NoResponse) as e:
                c2.read_response(timeout=5)
            assert e.value.kind != "timeout"
        finally:
            c2.close()
    assert backend.received_nothing()
    served(gw, backend)  # renshe itself is not revoked


def gwtest_oid(short):
    from cryptography.x509.oid import NameOID
    return {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}[short]


@pytest.mark.parametrize("sni,host,status", [
    ("localhost", "localhost", 200),
    ("localhost", "localhost:{port}", 200),
    ("gateway.test", "gateway.test", 200),
    ("gateway.test", "localhost", 421),
    ("localhost", "gateway.test", 421),
    ("localhost", "other.example", 421),
    (None, "localhost", 200),
], ids=["same", "same_with_port", "other_name_same", "sni_gateway_host_localhost",
        "sni_localhost_host_gateway", "foreign_host", "no_sni"])
def test_t09_host_must_match_sni(tgw, sni, host, status):
    gw, b = tgw
    host = host.format(port=gw.port)
    b.clear()
    if sni is None:
        # An IP address as server_hostname sends no SNI; the certificate
        # names 127.0.0.1, so verification still holds.
        c = gw.connect("renshe", sni="127.0.0.1")
    else:
        c = gw.connect("renshe", sni=sni)
    try:
        c.send(gwtest.build_request("GET", "/api/echo", host=host))
        r = c.read_response()
    finally:
        c.close()
    assert r.status == status, r
    if status == 421:
        assert b.received_nothing()
    else:
        assert len(b.wait_for(1)) == 1


def test_t10_alpn_h2_only_is_refused(tgw):
    gw, b = tgw
    b.clear()
    ctx = gw.context("renshe", alpn=["h2"])
    with pytest.raises(ssl.SSLError) as e:
        gwtest.Conn.open(gw.port, ctx).close()
    assert not isinstance(e.value, ssl.SSLCertVerificationError)
    assert b.received_nothing()


def test_t10_alpn_prefers_http11(tgw):
    gw, b = tgw
    c = gw.connect(ctx=gw.context("renshe", alpn=["h2", "http/1.1"]))
    try:
        assert c.alpn() == "http/1.1"
        c.send(gwtest.build_request("GET", "/api/echo"))
        assert c.read_response().status == 200
    finally:
        c.close()


@pytest.mark.parametrize("cipher", [
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA384"])
def test_t11_tls12_cbc_suites_are_refused(tgw, cipher):
    """The gateway's key is ECDSA, so these are the CBC suites it could
    pick; a client offering only one of them must fail the handshake."""
    gw, b = tgw
    b.clear()
    ctx = gw.context("renshe", max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
    with pytest.raises(ssl.SSLError) as e:
        gwtest.Conn.open(gw.port, ctx).close()
    assert not isinstance(e.value, ssl.SSLCertVerificationError)
    assert "ALERT" in str(e.value).upper() or "EOF" in str(e.value).upper(), e.value
    assert b.received_nothing()


def test_t11_tls12_default_negotiates_ecdhe_aead(tgw):
    gw, b = tgw
    c = gw.connect(ctx=gw.context("renshe", max_version=ssl.TLSVersion.TLSv1_2))
    try:
        name, proto, _ = c.cipher()
        assert proto == "TLSv1.2"
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
    finally:
        c.close()


def client_hello_bytes(pki):
    """The bytes of a real ClientHello (renshe's client context)."""
    ctx = gwtest.client_context(pki, "renshe")
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16" and len(data) > 100
    return data


def test_t12_silent_and_dribbling_handshakes_end_at_an_absolute_deadline(tgw, pki):
    gw, b = tgw
    results = {}

    def silent():
        s = socket.create_connection(("127.0.0.1", gw.port))
        t0 = time.monotonic()
        s.settimeout(HANDSHAKE_TIMEOUT * 4)
        try:
            while s.recv(4096):
                pass
            results["silent"] = time.monotonic() - t0
        except ConnectionResetError:
            results["silent"] = time.monotonic() - t0
        except socket.timeout:
            results["silent"] = None
        finally:
            s.close()

    def dribble():
        hello = client_hello_bytes(pki)
        s = socket.create_connection(("127.0.0.1", gw.port))
        t0 = time.monotonic()
        try:
            for i in range(len(hello)):
                if time.monotonic() - t0 > HANDSHAKE_TIMEOUT * 4:
                    results["dribble"] = None
                    return
                s.sendall(hello[i:i + 1])
                r, _, _ = gwtest.select.select([s], [], [], 0.25)
                if r:
                    try:
                        if not s.recv(4096):
                            break
                    except ConnectionResetError:
                        break
            else:
                results["dribble"] = "completed the ClientHello"
                return
            results["dribble"] = time.monotonic() - t0
        except (BrokenPipeError, ConnectionResetError):
            results["dribble"] = time.monotonic() - t0
        finally:
            s.close()

    threads = [threading.Thread(target=silent), threading.Thread(target=dribble)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    served(gw, b)  # others are served meanwhile
    for t in threads:
        t.join(HANDSHAKE_TIMEOUT * 5)
    for k in ("silent", "dribble"):
        v = results.get(k)
        assert isinstance(v, float), "%s: %r" % (k, v)
        assert HANDSHAKE_TIMEOUT * 0.75 <= v <= HANDSHAKE_TIMEOUT + 1.5, "%s closed after %.2fs" % (k, v)
    served(gw, b)
