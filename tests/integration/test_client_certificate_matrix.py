"""Client certificates, testing.md M01-M24 as far as this PKI can make
them: good ones reach the backend with their department, every bad one
gets no HTTP response at all (a TLS alert or EOF: with TLS 1.3 the
refusal shows only at the client's first read, so each negative case
sends a request and reads) and the backend receives nothing.

Every refused case is paired with a control on the same gateway and the
same client settings, so a refusal cannot come from a dead gateway or from
the client itself.
"""
import os
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

import gwtest

O, OU, CN = NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME
RENSHE = [(O, gwtest.RENSHE_O), (OU, "Information Center")]


@pytest.fixture(scope="module")
def made(tmp_path_factory, pki):
    """Certificates mkpki.sh does not make (M13, M15, M18-M23) and the CRL
    files the gateways below use."""
    m = gwtest.CertMaker(pki, tmp_path_factory.mktemp("matrix-certs"))
    # M13: unknown critical extension, otherwise a good renshe client.
    m.issue("m13-unknown-critical", RENSHE + [(CN, "m13")], "dept-ca", chain=["dept-ca"],
            extensions=[(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"),
                                                    b"\x05\x00"), True)])
    # M18: a Finance sub-CA under the root, name-constrained to
    # O=Test Gov, OU=Finance; it issues one leaf inside and one outside.
    nc = x509.NameConstraints(permitted_subtrees=[x509.DirectoryName(x509.Name([
        x509.NameAttribute(O, "Test Gov"), x509.NameAttribute(OU, "Finance")]))],
        excluded_subtrees=None)
    m.issue("nc-ca", [(O, "Test Gov"), (OU, "Finance"), (CN, "Finance Sub-CA")], "root-ca",
            ca=True, pathlen=0, extensions=[(nc, True)])
    m.issue("nc-inside", [(O, "Test Gov"), (OU, "Finance"), (CN, "nc-inside")], "nc-ca",
            chain=["nc-ca"])
    m.issue("m18-outside", [(O, "Test Gov"), (OU, "Police"), (CN, "m18-outside")], "nc-ca",
            chain=["nc-ca"])
    m.crl("nc-ca", "nc-ca")
    # M19: an "intermediate" without the CA bit issues a leaf.
    m.issue("not-a-ca", [(O, "Test Gov"), (CN, "Not A CA")], "root-ca", ca=False, eku=False)
    m.issue("m19-leaf", RENSHE + [(CN, "m19")], "not-a-ca", chain=["not-a-ca"])
    # M20: the Department CA has pathlen:0; a CA under it issues a leaf.
    m.issue("deep-ca", [(O, "Test Gov"), (CN, "Too Deep CA")], "dept-ca", ca=True)
    m.issue("m20-leaf", RENSHE + [(CN, "m20")], "deep-ca", chain=["deep-ca", "dept-ca"])
    m.crl("deep-ca", "deep-ca")
    # M22: 100 intermediates with 1.5 KiB of filler each: a Certificate
    # message of about 200 KiB.
    filler = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.6"), b"\x04\x82\x05\xdc"
                                        + b"f" * 1500)
    prev = "root-ca"
    names = []
    for i in range(100):
        name = "long-%03d" % i
        m.issue(name, [(O, "Test Gov"), (CN, "Long Chain %d" % i)], prev, ca=True,
                extensions=[(filler, False)])
        names.insert(0, name)
        prev = name
    m.issue("m22-leaf", RENSHE + [(CN, "m22")], prev, chain=names)
    # M23: explicit EC parameters (the openssl CLI makes these).
    ext = os.path.join(m.out, "leaf.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    base = os.path.join(m.out, "m23-explicit")
    for cmd in (
            ["openssl", "ecparam", "-name", "prime256v1", "-param_enc", "explicit",
             "-genkey", "-noout", "-out", base + ".key"],
            ["openssl", "req", "-new", "-key", base + ".key", "-subj",
             "/O=%s/CN=m23" % gwtest.RENSHE_O, "-out", base + ".csr"],
            ["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
             os.path.join(pki, "dept-ca.pem"), "-CAkey", os.path.join(pki, "dept-ca.key"),
             "-set_serial", "0x7a23", "-days", "30", "-extfile", ext, "-out", base + ".crt"]):
        r = gwtest.subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    m.bundle("m23-explicit.chain.pem", base + ".crt", "dept-ca.pem")
    # M21: a line of five CAs under the root; renshe leaves below the
    # second, third and fifth, so with 2, 3 and 5 intermediates.
    prev, names = "root-ca", []
    for i in range(1, 6):
        name = "m21-ca%d" % i
        m.issue(name, [(O, "Test Gov"), (CN, "Depth CA %d" % i)], prev, ca=True)
        m.crl(name, name)
        names.insert(0, name)
        prev = name
    m.issue("m21-two", RENSHE + [(CN, "m21-two")], "m21-ca2", chain=names[-2:])
    m.issue("m21-three", RENSHE + [(CN, "m21-three")], "m21-ca3", chain=names[-3:])
    m.issue("m21-five", RENSHE + [(CN, "m21-five")], "m21-ca5", chain=names)
    # M15: an RSA-2048 CA under the root signs two renshe leaves with the
    # openssl CLI (python-cryptography may refuse MD5), with the same
    # extensions and command but for the digest: MD5 and SHA-256.
    m.issue("rsa-ca", [(O, "Test Gov"), (CN, "RSA Sub-CA")], "root-ca", ca=True,
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    m.crl("rsa-ca", "rsa-ca")
    for name, md, serial in (("m15-md5", "-md5", "0x7a15"), ("m15-sha256", "-sha256", "0x7a16")):
        base = os.path.join(m.out, name)
        for cmd in (
                ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", base + ".key"],
                ["openssl", "req", "-new", "-key", base + ".key", "-subj",
                 "/O=%s/CN=%s" % (gwtest.RENSHE_O, name), "-out", base + ".csr"],
                ["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
                 os.path.join(m.out, "rsa-ca.pem"), "-CAkey", os.path.join(m.out, "rsa-ca.key"),
                 "-set_serial", serial, "-days", "30", md, "-extfile", ext,
                 "-out", base + ".crt"]):
            r = gwtest.subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        m.bundle(name + ".chain.pem", base + ".crt", "rsa-ca.pem")
    # CRLs: the usual bundle plus the generated CAs'; a stale one (M09).
    m.bundle("all.crl", "departments.crl", "nc-ca.crl", "deep-ca.crl", "rsa-ca.crl",
             *["m21-ca%d.crl" % i for i in range(1, 6)])
    m.crl("dept-stale", "dept-ca", last=-30, next_=-1)
    m.bundle("stale.crl", "root.crl", "dept-stale.crl")
    return m


def module_gateway(tmp_path_factory, pki, name, **kw):
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp(name)), pki, backend=b, **kw)
    g.start()
    return g, b


@pytest.fixture(scope="module")
def mgw(tmp_path_factory, pki, made):
    """The usual listener (client_ca: root + Department CA) with the CRLs
    of every CA, generated ones included."""
    nc = ("  nc-finance:\n    name: nc-finance\n"
          "    match: { subject: { O: \"Test Gov\", OU: Finance }, "
          "issuer: { CN: \"Finance Sub-CA\" } }\n    clearance: restricted\n")
    g, b = module_gateway(tmp_path_factory, pki, "matrix",
                          policy=gwtest.make_policy(extra_departments=nc),
                          tls={"crl": os.path.join(made.out, "all.crl")})
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def assert_accepted(gw, backend, cert, dept, **ctxkw):
    backend.clear()
    r = gw.request("GET", "/api/echo", ctx=gw.context(cert, **ctxkw))
    assert r.status == 200, r
    reqs = backend.wait_for(1)
    assert len(reqs) == 1
    assert reqs[0].header_all("X-Govgate-Department") == [dept]
    return reqs[0]


def assert_refused(gw, backend, cert, **ctxkw):
    backend.clear()
    how = gwtest.handshake_fails_or_no_response(gw.port, gw.context(cert, **ctxkw))
    assert backend.received_nothing(), backend.snapshot()
    assert gw.alive()
    # The control: same gateway, same client settings, a good certificate.
    assert_accepted(gw, backend, "renshe", "renshe", **ctxkw)
    return how


def assert_refused_for(gw, backend, cert, reason, **ctxkw):
    """assert_refused, and the gateway logs the handshake's failure as
    reason (so it is refused for that, not for something else)."""
    mark = len(gw.stderr_text())
    how = assert_refused(gw, backend, cert, **ctxkw)
    assert gwtest.wait_until(lambda: "handshake: " + reason in gw.stderr_text()[mark:], 5), \
        (reason, gw.stderr_text()[mark:][-2000:])
    return how


# -- accepted

def test_m01_valid_client_with_chain_maps_to_its_department(mgw):
    gw, b = mgw
    req = assert_accepted(gw, b, "renshe", "renshe")
    assert "renshe-pension-app" in req.header("X-Govgate-Client-Subject")


def test_m01_leaf_only_is_accepted_when_the_intermediate_is_trusted(mgw):
    """client_ca holds root + Department CA: the leaf alone suffices."""
    gw, b = mgw
    assert_accepted(gw, b, "gongan", "gongan", chain=False)


def test_m18_leaf_inside_the_name_constraints_is_accepted(mgw, made):
    gw, b = mgw
    assert_accepted(gw, b, os.path.join(made.out, "nc-inside"), "nc-finance")


# -- refused by the listener with the usual settings

@pytest.mark.parametrize("mid,cert", [pytest.param(*r, id=r[0]) for r in [
    ("M04_other_root", "wrong-root"),
    ("M05_expired", "expired"),
    ("M06_not_yet_valid", "not-yet-valid"),
    ("M07_revoked", "revoked"),
    ("M10_serverauth_only", "serverauth-only"),
    ("M11_no_eku", "no-eku"),
    ("M12_ca_as_leaf", "ca-as-leaf"),
    ("M17_self_signed", "self-signed"),
    ("M24_no_digital_signature", "no-digitalsignature"),
]])
def test_bad_client_certificate_gets_no_response(mgw, mid, cert):
    gw, b = mgw
    assert_refused(gw, b, cert)


@pytest.mark.parametrize("mid,cert", [pytest.param(*r, id=r[0]) for r in [
    ("M14_sha1_signature", "sha1"),
    ("M16_rsa_1024", "rsa1024"),
]])
def test_weak_client_certificate_gets_no_response(mgw, mid, cert):
    """The client lowers its own security level to send it at all; the
    gateway holds level 2."""
    gw, b = mgw
    assert_refused(gw, b, cert, seclevel0=True)


@pytest.mark.parametrize("mid,name", [pytest.param(*r, id=r[0]) for r in [
    ("M13_unknown_critical_extension", "m13-unknown-critical"),
    ("M18_name_constraint_violation", "m18-outside"),
    ("M19_intermediate_without_ca_bit", "m19-leaf"),
    ("M20_path_length_exceeded", "m20-leaf"),
    ("M23_explicit_ec_parameters", "m23-explicit"),
]])
def test_generated_bad_client_certificate_gets_no_response(mgw, made, mid, name):
    gw, b = mgw
    assert_refused(gw, b, os.path.join(made.out, name))


def test_m15_md5_signature_by_an_rsa_ca_is_refused(mgw, made):
    """The leaf really is md5WithRSAEncryption (an ECDSA issuer cannot
    make one), and its SHA-256 twin from the same RSA CA is accepted, so
    the refusal is the digest's (security level 2)."""
    gw, b = mgw
    with open(os.path.join(made.out, "m15-md5.crt"), "rb") as f:
        md5 = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(made.out, "m15-sha256.crt"), "rb") as f:
        sha = x509.load_pem_x509_certificate(f.read())
    assert md5.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_MD5
    assert sha.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert md5.issuer == sha.issuer and md5.subject.get_attributes_for_oid(O) == \
        sha.subject.get_attributes_for_oid(O)
    assert_accepted(gw, b, os.path.join(made.out, "m15-sha256"), "renshe", seclevel0=True)
    assert_refused_for(gw, b, os.path.join(made.out, "m15-md5"),
                       "CA signature digest algorithm too weak", seclevel0=True)


def test_m21_three_intermediates_pass_the_default_depth_five_do_not(mgw, made):
    """Without verify_depth a listener allows 4 intermediate CAs."""
    gw, b = mgw
    assert_accepted(gw, b, os.path.join(made.out, "m21-three"), "renshe")
    assert_refused_for(gw, b, os.path.join(made.out, "m21-five"), "certificate chain too long")


def test_m22_huge_chain_is_refused_with_bounded_cost(mgw, made):
    gw, b = mgw
    cpu0 = gw.cpu_seconds()
    rss0 = gw.rss_kb()
    for _ in range(3):
        assert_refused(gw, b, os.path.join(made.out, "m22-leaf"))
    assert gw.cpu_seconds() - cpu0 < 3.0, "refusing three huge chains cost too much CPU"
    if not gwtest.SANITIZED:
        assert gw.rss_kb() - rss0 < 32 * 1024


# -- other listener settings

def test_m02_chain_via_intermediate_when_only_the_root_is_trusted(tmp_path_factory, pki):
    g, b = module_gateway(tmp_path_factory, pki, "rootonly",
                          tls={"client_ca": os.path.join(pki, "root-ca.pem")})
    try:
        assert_accepted(g, b, "renshe", "renshe")
    finally:
        g.stop()
        b.stop()


def test_m21_chain_longer_than_verify_depth_is_refused_and_sighup_applies_a_new_depth(
        tmp_path_factory, pki, made):
    """verify_depth: 2 takes root -> CA1 -> CA2 -> leaf, refuses one CA
    more; raised to 3 by SIGHUP it takes that chain, lowered back to 2 it
    refuses it again."""
    g, b = module_gateway(tmp_path_factory, pki, "depth2",
                          tls={"crl": os.path.join(made.out, "all.crl"), "verify_depth": 2})
    three = os.path.join(made.out, "m21-three")

    def reload_with(depth, n):
        g.tls["verify_depth"] = depth
        g.write_config()
        g.reload()
        assert gwtest.wait_until(
            lambda: "reload %d: policy revision" % n in g.stderr_text(), 10), \
            g.stderr_text()[-2000:]

    try:
        assert_accepted(g, b, os.path.join(made.out, "m21-two"), "renshe")
        assert_refused_for(g, b, three, "certificate chain too long")
        reload_with(3, 1)
        assert_accepted(g, b, three, "renshe")
        reload_with(2, 2)
        assert_refused_for(g, b, three, "certificate chain too long")
    finally:
        g.stop()
        b.stop()


def test_m03_leaf_only_when_only_the_root_is_trusted(tmp_path_factory, pki):
    g, b = module_gateway(tmp_path_factory, pki, "rootonly-leaf",
                          tls={"client_ca": os.path.join(pki, "root-ca.pem")})
    try:
        b.clear()
        gwtest.handshake_fails_or_no_response(g.port, g.context("renshe", chain=False))
        assert b.received_nothing()
        assert_accepted(g, b, "renshe", "renshe", chain=True)
    finally:
        g.stop()
        b.stop()


def test_m08_no_crl_for_the_issuing_ca_fails_closed(tmp_path_factory, pki):
    """CRL checking is on (a crl file is given) but holds only the root's
    CRL: a Department CA client cannot be checked, so it is refused."""
    g, b = module_gateway(tmp_path_factory, pki, "nodeptcrl",
                          tls={"crl": os.path.join(pki, "root.crl")})
    try:
        b.clear()
        gwtest.handshake_fails_or_no_response(g.port, g.context("renshe"))
        assert b.received_nothing()
        assert g.alive()
    finally:
        g.stop()
        b.stop()


def test_m09_crl_going_stale_while_running_fails_closed_until_reload(tmp_path, pki, backend,
                                                                      make_gateway):
    """The Department CA's CRL passes its nextUpdate while the gateway
    runs: new clients are refused until a fresh CRL is loaded by SIGHUP."""
    m = gwtest.CertMaker(pki, tmp_path / "crl")
    m.crl("dept-short", "dept-ca", revoked=[os.path.join(pki, "revoked.crt")],
          last=-1, next_=4 / 86400.0)
    live = m.bundle("live.crl", "root.crl", "dept-short.crl")
    stale_at = gwtest.time.time() + 4
    g = make_gateway(tls={"crl": live})
    assert_accepted(g, backend, "renshe", "renshe")
    gwtest.time.sleep(max(0.0, stale_at + 1.5 - gwtest.time.time()))
    backend.clear()
    gwtest.handshake_fails_or_no_response(g.port, g.context("renshe"))
    assert backend.received_nothing()
    shutil.copy(os.path.join(pki, "departments.crl"), live)
    g.reload()

    def served():
        try:
            return g.request("GET", "/api/echo").status == 200
        except (AssertionError, OSError):
            return False
    assert gwtest.wait_until(served, 5, 0.2), "fresh CRL not in force after SIGHUP"


def test_m09_stale_crl_at_start_is_refused_or_fails_closed(tmp_path_factory, pki, made):
    """Started with a CRL past its nextUpdate, the gateway either refuses
    to start, naming the CRL, or starts and refuses every client."""
    crl = os.path.join(made.out, "stale.crl")
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("stalecrl")), pki, backend=b,
                       tls={"crl": crl})
    try:
        try:
            g.start()
        except gwtest.GatewayError:
            assert g.proc.poll() not in (None, 0)
            assert "stale.crl" in g.stderr_text(), g.stderr_text()
            return
        gwtest.handshake_fails_or_no_response(g.port, g.context("renshe"))
        assert b.received_nothing()
        g.stop()
    finally:
        g.kill()
        b.stop()


def test_refused_clients_leave_no_sessions_or_fds_behind(mgw):
    """Twenty refusals in a row: the gateway's fd count returns to where
    it was (no connection of a refused client is kept)."""
    gw, b = mgw
    base = gw.fd_count()
    for cert in ["expired", "wrong-root", "no-eku", "ca-as-leaf", "self-signed"] * 4:
        gwtest.handshake_fails_or_no_response(gw.port, gw.context(cert))
    assert gwtest.wait_until(lambda: gw.fd_count() <= base + 2, 5), (base, gw.fd_count())
