#!/usr/bin/python3
"""mkcerts_special.py - identity test certificates the openssl CLI cannot make.

Usage: mkcerts_special.py PKIDIR

PKIDIR is the output of certs/mkpki.sh. Writes PKIDIR/special/:

  iNN-*.crt (+ .key, .chain.pem)  testing.md I01-I13 subjects, issued by the
                                  department CA: chain-valid, usable over TLS
  police-ca.pem (+ .key)          a second department CA under the root (I09)
  raw-*.crt                       structure-only: re-encoded after signing, so
                                  the signature is wrong; for peer_from_cert,
                                  which reads fields and never verifies

Works with Debian 12's python3-cryptography (38) and newer releases.
"""

import base64
import datetime
import os
import sys
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OU = NameOID.ORGANIZATIONAL_UNIT_NAME
O = NameOID.ORGANIZATION_NAME
CN = NameOID.COMMON_NAME

NOW = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
NOT_BEFORE = NOW - datetime.timedelta(days=1)
NOT_AFTER = NOW + datetime.timedelta(days=365)


def attr(oid, value, asn1_type=None):
    """A name attribute, without the length checks newer releases apply."""
    kwargs = {}
    if asn1_type is not None:
        kwargs["_type"] = asn1_type
    try:
        return x509.NameAttribute(oid, value, _validate=False, **kwargs)
    except TypeError:  # cryptography < 41 has no _validate (and no check)
        return x509.NameAttribute(oid, value, **kwargs)


def name(*attrs):
    """One RDN per attribute; a list inside makes a multi-valued RDN."""
    rdns = []
    for a in attrs:
        if isinstance(a, list):
            rdns.append(x509.RelativeDistinguishedName(a))
        else:
            rdns.append(x509.RelativeDistinguishedName([a]))
    return x509.Name(rdns)


def finance(cn, ou="Finance"):
    return name(attr(O, "Test Gov"), attr(OU, ou), attr(CN, cn))


class Issuer:
    def __init__(self, cert, key, chain_pem):
        self.cert = cert
        self.key = key
        self.chain_pem = chain_pem  # what follows the leaf in .chain.pem


def write(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def build(subject, issuer, serial=None, sans=None, ca=False, key=None):
    """Sign a client leaf (or a CA when ca) for subject. Returns (cert, key)."""
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateBuilder()
    b = b.subject_name(subject)
    b = b.issuer_name(issuer.cert.subject if issuer else subject)
    b = b.public_key(key.public_key())
    b = b.serial_number(serial if serial else x509.random_serial_number())
    b = b.not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0),
                            critical=True)
        b = b.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                            critical=True)
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()), critical=False)
    signer = issuer.key if issuer else key
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.key.public_key()), critical=False)
    return b.sign(signer, hashes.SHA256()), key


def leaf(outdir, fname, subject, issuer, **kw):
    """A chain-valid client certificate with key and chain files."""
    cert, key = build(subject, issuer, **kw)
    write(os.path.join(outdir, fname + ".crt"), pem(cert))
    write(os.path.join(outdir, fname + ".chain.pem"),
          pem(cert) + issuer.chain_pem)
    write(os.path.join(outdir, fname + ".key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    return cert


# A minimal DER tree, to re-encode what no builder will write.

class Node:
    def __init__(self, tag, content=b"", children=None):
        self.tag = tag
        self.content = content
        self.children = children

    def encode(self):
        body = self.content
        if self.children is not None:
            body = b"".join(c.encode() for c in self.children)
        n = len(body)
        if n < 0x80:
            hdr = bytes([n])
        else:
            nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
            hdr = bytes([0x80 | len(nb)]) + nb
        return bytes([self.tag]) + hdr + body


def der_parse(b):
    nodes = []
    i = 0
    while i < len(b):
        tag = b[i]
        n = b[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[i:i + k], "big")
            i += k
        body = b[i:i + n]
        i += n
        if tag & 0x20:
            nodes.append(Node(tag, children=der_parse(body)))
        else:
            nodes.append(Node(tag, content=body))
    return nodes


def oid_der(oid):
    """The DER content octets of an OBJECT IDENTIFIER."""
    arcs = [int(a) for a in oid.dotted_string.split(".")]
    out = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        enc = [a & 0x7F]
        a >>= 7
        while a:
            enc.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(enc))
    return out


def raw(outdir, fname, cert, edit):
    """Re-encode cert after edit(tbs) and write it (signature now wrong)."""
    root = der_parse(cert.public_bytes(serialization.Encoding.DER))[0]
    edit(root.children[0])
    der = root.encode()
    write(os.path.join(outdir, fname + ".crt"),
          b"-----BEGIN CERTIFICATE-----\n" +
          pem_body(der) + b"-----END CERTIFICATE-----\n")


def pem_body(der):
    s = base64.b64encode(der)
    return b"".join(s[i:i + 64] + b"\n" for i in range(0, len(s), 64))


def tbs_serial(tbs, content):
    tbs.children[1].content = content


def tbs_subject(tbs):
    return tbs.children[5]


def set_value(oid, tag, content):
    """An edit: the subject attribute oid gets this tag and content."""
    want = oid_der(oid)

    def edit(tbs):
        for rdn in tbs_subject(tbs).children:
            for atv in rdn.children:
                if atv.children[0].content == want:
                    atv.children[1] = Node(tag, content=content)
                    return
        raise SystemExit("mkcerts_special: no such attribute to edit")
    return edit


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mkcerts_special.py PKIDIR")
    # Out-of-profile names are the point here; do not warn about them.
    warnings.simplefilter("ignore")
    pki = sys.argv[1]
    out = os.path.join(pki, "special")
    os.makedirs(out, exist_ok=True)

    def load(cert, key):
        with open(os.path.join(pki, cert), "rb") as f:
            c = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(pki, key), "rb") as f:
            k = serialization.load_pem_private_key(f.read(), password=None)
        return c, k

    rc, rk = load("root-ca.pem", "root-ca.key")
    dc, dk = load("dept-ca.pem", "dept-ca.key")
    dept = Issuer(dc, dk, pem(dc))
    root = Issuer(rc, rk, b"")

    police_name = name(attr(O, "Test Gov"), attr(OU, "Police"),
                       attr(CN, "Police Sub-CA"))
    pc, pk = build(police_name, root, ca=True)
    write(os.path.join(out, "police-ca.pem"), pem(pc))
    write(os.path.join(out, "police-ca.key"), pk.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    police = Issuer(pc, pk, pem(pc))

    uri = x509.UniformResourceIdentifier
    dns = x509.DNSName

    # testing.md I01-I13, all chain-valid.
    leaf(out, "i01-baseline", finance("ledger-app"), dept,
         sans=[uri("urn:test-gov:finance:ledger-app"),
               dns("ledger-app.finance.test")])
    leaf(out, "i02-slash", finance("x/OU=Admin"), dept)
    leaf(out, "i03-comma", finance("x,OU=Admin"), dept)
    leaf(out, "i04-two-ou", name(attr(O, "Test Gov"), attr(OU, "Admin"),
                                 attr(OU, "Finance"), attr(CN, "two-ou")),
         dept)
    leaf(out, "i04-mv-ou", name(attr(O, "Test Gov"),
                                [attr(OU, "Admin"), attr(OU, "Finance")],
                                attr(CN, "mv-ou")), dept)
    leaf(out, "i05-nul", finance("nul-ou", "Finance\x00Admin"), dept)
    leaf(out, "i06-lower", finance("lower", "finance"), dept)
    leaf(out, "i06-upper", finance("upper", "FINANCE"), dept)
    leaf(out, "i06-trailing-space", finance("trailing", "Finance "), dept)
    leaf(out, "i06-leading-space", finance("leading", " Finance"), dept)
    leaf(out, "i06-fullwidth", finance("fullwidth", "\uff26inance"), dept)
    leaf(out, "i07-bmp", name(attr(O, "Test Gov"),
                              attr(OU, "Finance", _ASN1Type.BMPString),
                              attr(CN, "bmp")), dept)
    leaf(out, "i07-bmp-cjk", name(attr(O, "\u5357\u5b81\u5e02\u8d22\u653f"
                                          "\u5c40", _ASN1Type.BMPString),
                                  attr(OU, "Finance"), attr(CN, "bmp-cjk")),
         dept)
    leaf(out, "i07-teletex", name(attr(O, "Test Gov"),
                                  attr(OU, "Finance", _ASN1Type.T61String),
                                  attr(CN, "teletex")), dept)
    leaf(out, "i07-universal", name(
        attr(O, "Test Gov"), attr(OU, "Finance", _ASN1Type.UniversalString),
        attr(CN, "universal")), dept)
    leaf(out, "i08-no-ou", name(attr(O, "Test Gov"), attr(CN, "no-ou")),
         dept)
    leaf(out, "i08-empty-subject", x509.Name([]), dept,
         sans=[uri("urn:test-gov:empty-subject")])
    leaf(out, "i09-police-issued", finance("ledger-app"), police)
    leaf(out, "i10-a", finance("reissued-app"), dept)
    leaf(out, "i10-b", finance("reissued-app"), dept)
    leaf(out, "i12-long-cn", finance("A" * 8192), dept)
    leaf(out, "i13-crlf", finance("evil\r\nX-Govgate-Department: gongan"),
         dept)
    leaf(out, "i13-quote", finance('say "hi"', 'Fin"ance'), dept)
    leaf(out, "i13-specials", finance(" #a+b;c<d>e\\f=g "), dept)

    # SANs and serials (chain-valid).
    leaf(out, "san-many", finance("many-sans"), dept,
         sans=[uri("urn:test:%d" % i) for i in range(10)] +
         [dns("h%d.test" % i) for i in range(3)])
    leaf(out, "serial-small", finance("serial-small"), dept, serial=0x0A)
    leaf(out, "serial-high-bit", finance("serial-high-bit"), dept,
         serial=0x80AB)

    # Structure-only: what no CA should sign, read but never verified.
    base = build(finance("raw"), dept, sans=[uri("urn:test:raw")])[0]
    raw(out, "raw-serial-zero", base, lambda t: tbs_serial(t, b"\x00"))
    raw(out, "raw-serial-negative", base,
        lambda t: tbs_serial(t, b"\x80\x01"))
    raw(out, "raw-serial-20-octets", base,
        lambda t: tbs_serial(t, b"\x7f" + b"\xee" * 19))
    raw(out, "raw-serial-33-octets", base,
        lambda t: tbs_serial(t, b"\x7f" + b"\xee" * 32))
    raw(out, "raw-ou-bad-utf8", base,
        set_value(OU, 0x0C, b"Fin\xc3\x28nce"))
    raw(out, "raw-ou-overlong", base,
        set_value(OU, 0x0C, b"Fin\xc0\xafnce"))
    raw(out, "raw-ou-bmp-surrogate", base,
        set_value(OU, 0x1E, b"\x00F\xd8\x00\x00x"))
    raw(out, "raw-ou-bmp-odd", base, set_value(OU, 0x1E, b"\x00F\x00"))
    raw(out, "raw-ou-sequence", base,
        set_value(OU, 0x30, b"\x02\x01\x05"))
    raw(out, "raw-ou-255", base, set_value(OU, 0x0C, b"F" * 255))
    raw(out, "raw-ou-256", base, set_value(OU, 0x0C, b"F" * 256))
    raw(out, "raw-cn-del", base, set_value(CN, 0x0C, b"a\x7fb"))
    raw(out, "raw-cn-invalid-utf8", base,
        set_value(CN, 0x0C, b"\xff\xfe\xe4\xb8"))

    def issuer_two_o(tbs):
        rdns = tbs.children[3].children
        rdns.insert(0, Node(0x31, children=[Node(0x30, children=[
            Node(0x06, content=oid_der(O)),
            Node(0x0C, content=b"Other Gov")])]))
    raw(out, "raw-issuer-two-o", base, issuer_two_o)

    def san_edit(content):
        """Replace the only SAN (a URI) by a URI with these bytes."""
        def edit(tbs):
            exts = tbs.children[-1].children[0]
            for ext in exts.children:
                if ext.children[0].content == oid_der(
                        x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME):
                    gn = Node(0x30, children=[Node(0x86, content=content)])
                    ext.children[-1].content = gn.encode()
                    return
            raise SystemExit("mkcerts_special: no SAN to edit")
        return edit
    raw(out, "raw-san-nul", base, san_edit(b"urn:a\x00b"))
    raw(out, "raw-san-space", base, san_edit(b"urn:a b"))
    raw(out, "raw-san-high", base, san_edit(b"urn:a\xc3\xa9"))

    def dup_san(tbs):
        exts = tbs.children[-1].children[0]
        for ext in exts.children:
            if ext.children[0].content == oid_der(
                    x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME):
                exts.children.append(ext)
                return
    raw(out, "raw-san-duplicate-ext", base, dup_san)

    # Every attribute at the limit, subject and issuer alike, plus 8
    # long URIs: more than the arena holds.
    big = name(*[attr(oid, "x") for oid in (
        NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME,
        NameOID.LOCALITY_NAME, O, OU, CN, NameOID.SERIAL_NUMBER)])
    bigkey = ec.generate_private_key(ec.SECP256R1())
    bigc = build(big, None, key=bigkey, sans=[
        uri("urn:" + chr(ord("a") + i) * 251) for i in range(8)])[0]

    def fill_all(tbs):
        for nm in (tbs.children[3], tbs.children[5]):
            for i, rdn in enumerate(nm.children):
                atv = rdn.children[0]
                atv.children[1] = Node(0x0C, content=bytes(
                    [ord("A") + i]) * 255)
    raw(out, "raw-arena-full", bigc, fill_all)


if __name__ == "__main__":
    main()
