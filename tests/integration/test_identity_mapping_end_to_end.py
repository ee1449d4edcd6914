"""Certificate identity -> department, end to end (testing.md I01-I13):
what the backend sees in X-Govgate-Department and X-Govgate-Client-Subject,
or 403 unknown_department with nothing forwarded.

The test policy's finance department matches O=Test Gov, OU=Finance with
the Department CA as issuer; admin matches O=Test Gov, OU=Admin (what a
spoofed DN would map to); caizheng matches a CJK O (BMPString case).
"""
import os

import pytest
from cryptography import x509

import gwtest


@pytest.fixture(scope="module")
def idgw(tmp_path_factory, pki):
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("identity")), pki, backend=b)
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def special(name):
    return "special/" + name


def serial_of(pki, name):
    with open(os.path.join(pki, name + ".crt"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def parse_rfc4514(dn):
    """[(type, value)] of an RFC 4514 string (multi-valued RDNs
    flattened), unescaping `\\c` and `\\XX`; raises ValueError on a
    malformed string."""
    out = []
    i = 0
    n = len(dn)
    while i < n:
        eq = dn.find("=", i)
        if eq < 0:
            raise ValueError("no = in %r" % dn[i:])
        typ = dn[i:eq]
        i = eq + 1
        raw = bytearray()
        while i < n and dn[i] not in ",+":
            ch = dn[i]
            if ch == "\\":
                nxt = dn[i + 1:i + 3]
                if len(nxt) == 2 and all(c in "0123456789abcdefABCDEF" for c in nxt):
                    raw.append(int(nxt, 16))
                    i += 3
                    continue
                if i + 1 >= n:
                    raise ValueError("dangling escape")
                raw += dn[i + 1].encode("utf-8")
                i += 2
                continue
            if ch in "\"<>;" or ch == "\x00":
                raise ValueError("unescaped special %r in %r" % (ch, dn))
            raw += ch.encode("utf-8")
            i += 1
        out.append((typ, raw.decode("utf-8")))
        if i < n:
            i += 1
    return out


def fetch(gw, backend, cert, headers=None, path="/api/echo"):
    """(response, [recorded]) for one GET, or (None, how) when the
    connection was refused without an HTTP response."""
    backend.clear()
    try:
        r = gw.request("GET", path, headers=headers, cert=cert)
    except gwtest.NoResponse as e:
        assert e.kind != "timeout", "neither a response nor a close"
        assert backend.received_nothing()
        return None, e.kind
    except OSError as e:
        assert not isinstance(e, ConnectionRefusedError)
        assert backend.received_nothing()
        return None, repr(e)
    if r.status == 200:
        return r, backend.wait_for(1)
    assert backend.received_nothing(settle=0.1), backend.snapshot()
    return r, []


def assert_maps_to(gw, backend, cert, dept):
    r, reqs = fetch(gw, backend, cert)
    assert r is not None and r.status == 200, (r, reqs)
    assert len(reqs) == 1
    assert reqs[0].header_all("X-Govgate-Department") == [dept]
    return reqs[0]


def assert_unknown_department(gw, backend, cert, allow_tls_refusal=False):
    r, how = fetch(gw, backend, cert)
    if r is None:
        assert allow_tls_refusal, "refused at TLS (%s); expected 403 unknown_department" % how
        return None
    assert r.status == 403, r
    assert r.json()["reason"] == "unknown_department", r.body
    return r


def decision(gw, request_id):
    """The decision record of request_id (the config always has audit)."""
    return gwtest.wait_until(lambda: next(
        (x for x in gw.audit_records()
         if x.get("event") == "decision" and x.get("request_id") == request_id), None), 3)


def test_i01_baseline_maps_with_subject_and_serial(idgw, pki):
    gw, b = idgw
    req = assert_maps_to(gw, b, special("i01-baseline"), "finance")
    dn = parse_rfc4514(req.header("X-Govgate-Client-Subject"))
    assert ("CN", "ledger-app") in dn and ("OU", "Finance") in dn and ("O", "Test Gov") in dn
    assert int(req.header("X-Govgate-Client-Serial"), 16) == serial_of(pki, special("i01-baseline"))
    assert req.header("X-Govgate-Request-Id")
    assert req.header("X-Govgate-Resource") == "echo"
    fwd = req.header("Forwarded")
    assert fwd and "for=" in fwd and "proto=https" in fwd


@pytest.mark.parametrize("name,cn", [
    ("i02-slash", "x/OU=Admin"),
    ("i03-comma", "x,OU=Admin"),
], ids=["I02_slash_in_cn", "I03_comma_in_cn"])
def test_dn_spoof_in_cn_never_maps_to_admin(idgw, name, cn):
    gw, b = idgw
    req = assert_maps_to(gw, b, special(name), "finance")
    dn = parse_rfc4514(req.header("X-Govgate-Client-Subject"))
    assert [v for t, v in dn if t == "OU"] == ["Finance"], dn
    assert ("CN", cn) in dn


@pytest.mark.parametrize("name", [
    "i04-two-ou", "i04-mv-ou", "i05-nul",
    "i06-lower", "i06-upper", "i06-trailing-space", "i06-leading-space", "i06-fullwidth",
    "i08-no-ou", "i13-quote",
], ids=["I04_two_ou", "I04_multivalued_ou", "I05_nul_in_ou", "I06_lower", "I06_upper",
        "I06_trailing_space", "I06_leading_space", "I06_fullwidth", "I08_no_ou",
        "I13_quote_in_ou"])
def test_ambiguous_or_inexact_subject_is_unknown_department(idgw, name):
    gw, b = idgw
    r = assert_unknown_department(gw, b, special(name))
    assert r.json()["request_id"] == r.header("X-Govgate-Request-Id")


def test_i08_unmapped_certificate_is_audited_with_serial_and_issuer(idgw, pki):
    gw, b = idgw
    r = assert_unknown_department(gw, b, special("i08-no-ou"))
    rec = decision(gw, r.header("X-Govgate-Request-Id"))
    assert rec is not None, "no decision record for the denied request"
    assert rec["decision"] == "deny" and rec["reason"] == "unknown_department"
    assert int(rec["subject"]["serial"], 16) == serial_of(pki, special("i08-no-ou"))
    assert "Nanning E-Gov Department CA" in rec["subject"]["issuer"]


def test_i08_empty_subject_is_not_mapped(idgw):
    gw, b = idgw
    assert_unknown_department(gw, b, special("i08-empty-subject"), allow_tls_refusal=True)


@pytest.mark.parametrize("name,dept", [
    ("i07-bmp", "finance"),
    ("i07-teletex", "finance"),
    ("i07-universal", "finance"),
    ("i07-bmp-cjk", "caizheng"),
], ids=["I07_bmpstring", "I07_teletexstring", "I07_universalstring", "I07_bmpstring_cjk"])
def test_i07_string_types_compare_after_utf8_conversion(idgw, name, dept):
    gw, b = idgw
    assert_maps_to(gw, b, special(name), dept)


def test_i09_finance_subject_from_police_ca_is_not_finance(idgw):
    """The police sub-CA chains to the trusted root but has no CRL here
    (fail closed at TLS) and is not the issuer finance names (403)."""
    gw, b = idgw
    assert_unknown_department(gw, b, special("i09-police-issued"), allow_tls_refusal=True)


def test_i10_reissued_certificates_both_map_and_revocation_is_per_serial(tmp_path, pki, backend,
                                                                        make_gateway):
    m = gwtest.CertMaker(pki, tmp_path / "crl")
    m.crl("dept-i10", "dept-ca", revoked=[os.path.join(pki, "special", "i10-a.crt")])
    crl = m.bundle("i10.crl", "root.crl", "dept-i10.crl")
    plain = make_gateway()
    assert_maps_to(plain, backend, special("i10-a"), "finance")
    assert_maps_to(plain, backend, special("i10-b"), "finance")
    revoked = make_gateway(tls={"crl": crl})
    backend.clear()
    gwtest.handshake_fails_or_no_response(revoked.port, revoked.context(special("i10-a")))
    assert backend.received_nothing()
    assert_maps_to(revoked, backend, special("i10-b"), "finance")


def test_i11_client_sent_identity_headers_are_replaced(idgw):
    gw, b = idgw
    r, reqs = fetch(gw, b, "renshe", headers=[
        ("X-Govgate-Department", "admin"),
        ("X-Govgate-Client-Subject", "CN=evil,OU=Admin,O=Test Gov"),
        ("X-Govgate-Client-Serial", "01"),
        ("x-govgate-request-id", "forged-id"),
        ("X-GOVGATE-GRANT", "G-1"),
        ("X-Govgate-Anything", "x"),
    ])
    assert r.status == 200, r
    req = reqs[0]
    assert req.header_all("X-Govgate-Department") == ["renshe"]
    subj = req.header_all("X-Govgate-Client-Subject")
    assert len(subj) == 1 and "evil" not in subj[0] and "renshe-pension-app" in subj[0]
    assert req.header_all("X-Govgate-Client-Serial") != ["01"]
    assert len(req.header_all("X-Govgate-Request-Id")) == 1
    assert req.header("X-Govgate-Request-Id") != "forged-id"
    assert req.header("X-Govgate-Request-Id") == r.header("X-Govgate-Request-Id")
    assert req.header_all("X-Govgate-Grant") == []  # unconditional: no grant applied
    assert req.header_all("X-Govgate-Anything") == []


def test_i12_very_long_cn_is_bounded(idgw):
    gw, b = idgw
    r, reqs = fetch(gw, b, special("i12-long-cn"))
    if r is not None and r.status == 200:
        subj = reqs[0].header("X-Govgate-Client-Subject")
        assert reqs[0].header_all("X-Govgate-Department") == ["finance"]
        assert len(subj) <= 2048, "subject header not bounded: %d bytes" % len(subj)
    for line in open(gw.audit_path, "rb").read().split(b"\n") if os.path.exists(
            gw.audit_path) else []:
        assert len(line) <= 64 * 1024
    gw.audit_records()  # every line still parses
    assert gw.alive()
    assert_maps_to(gw, b, special("i01-baseline"), "finance")


def test_i13_crlf_in_dn_never_splits_a_header(idgw):
    gw, b = idgw
    req = assert_maps_to(gw, b, special("i13-crlf"), "finance")
    assert b"\r\nX-Govgate-Department: gongan" not in req.raw_head
    subj = req.header_all("X-Govgate-Client-Subject")
    assert len(subj) == 1
    assert "\r" not in subj[0] and "\n" not in subj[0]
    assert ("CN", "evil\r\nX-Govgate-Department: gongan") in parse_rfc4514(subj[0])
    for line in req.raw_head[:-4].split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line
    gw.audit_records()  # one JSON object per line: no split record


def test_i13_rfc4514_specials_are_escaped(idgw):
    gw, b = idgw
    req = assert_maps_to(gw, b, special("i13-specials"), "finance")
    dn = parse_rfc4514(req.header("X-Govgate-Client-Subject"))
    assert ("CN", " #a+b;c<d>e\\f=g ") in dn, dn
    assert [t for t, _ in dn] == ["CN", "OU", "O"], dn
