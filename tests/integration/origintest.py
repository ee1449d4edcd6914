"""origintest.py - helpers for the tests of where a request comes from:
GeoIP countries, intranet zones and the PROXY protocol.

- Test databases built with contrib/mkzones and contrib/mkcountries from
  the CIDR lists below, which map distinct loopback source addresses
  (Linux answers on all of 127.0.0.0/8, so a client can bind 127.30.4.21)
  and documentation IPv6 networks to countries and zones.
- OriginGateway: gwtest.Gateway with a listener on another address
  ("::1") and with proxy_protocol/proxy_trusted.
- Clients that bind a source address, speak IPv6, and send bytes (a
  PROXY header) before the TLS ClientHello.
- PROXY protocol v1 and v2 header builders.

No database file is committed: every test run builds its own.
"""
import ipaddress
import os
import socket
import ssl
import struct
import subprocess
import textwrap
import time

import pytest

import gwtest

# Source addresses and what the test databases say about them.
CN_RENSHE = "127.30.4.21"     # CN, zone renshe-net
CN_LAB = "127.31.0.7"         # CN, zone lab-net
CN_NOZONE = "127.33.0.9"      # CN, in no zone
US_RENSHE = "127.40.0.9"      # US, zone renshe-net (a zone does not make a country)
VN_ADDR = "127.41.0.3"        # VN, no zone
UNKNOWN_RENSHE = "127.50.2.2"  # in no country, zone renshe-net
UNKNOWN_NOWHERE = "127.51.0.4"  # in no country and no zone
V6_RENSHE = "2001:db8:30::5"  # CN, zone renshe-net (reached through PROXY TCP6)
V6_US = "2001:db8:99::77"     # US, no zone
TEREDO = "2001:0:7f1e:415::1"  # Teredo; embeds no intranet zone by design
SIXTOFOUR = "2002:7f1e:415::1"  # 6to4 of 127.30.4.21: never aliased

ZONES = """\
# CIDR              zone
127.30.4.0/24       renshe-net
127.40.0.0/16       renshe-net
127.50.2.0/24       renshe-net
127.31.0.0/16       lab-net
2001:db8:30::/48    renshe-net
"""

COUNTRIES = """\
# CIDR              country
127.30.0.0/16       CN
127.31.0.0/16       CN
127.33.0.0/16       CN
127.40.0.0/16       US
127.41.0.0/16       VN
2001:db8:30::/48    CN
2001:db8:99::/48    US
"""

GONGAN_O = gwtest.GONGAN_O
RENSHE_O = gwtest.RENSHE_O
MINZHENG_O = "Nanning Civil Affairs Bureau"


def mkdb(tool, out, text):
    """Build out with contrib/<tool> from the list text; returns out."""
    src = out + ".txt"
    with open(src, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run(["perl", os.path.join(gwtest.TOP_SRCDIR, "contrib", tool), out, src],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "%s: %s" % (tool, r.stderr)
    return out


def build_geodb(folder, zones=ZONES, countries=COUNTRIES):
    """zones.mmdb and countries.mmdb in folder, as gwtest.Gateway's geodb."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    return {"zones": mkdb("mkzones", os.path.join(folder, "zones.mmdb"), zones),
            "countries": mkdb("mkcountries", os.path.join(folder, "countries.mmdb"),
                              countries)}


@pytest.fixture(scope="module")
def origin_geodb(tmp_path_factory):
    return build_geodb(tmp_path_factory.mktemp("origin-geo"))


def origin_policy(countries=("CN",), revision="origin-1", renshe_zones=("renshe-net",)):
    """gongan owns /api/** (unconditional, on echo-api); renshe may call
    only from renshe_zones; minzheng from anywhere. countries is
    defaults.countries (None: no country step)."""
    ctry = "  countries: [%s]\n" % ", ".join(countries) if countries else ""
    zones = "    zones: [%s]\n" % ", ".join(renshe_zones) if renshe_zones else ""
    return textwrap.dedent("""\
        version: 1
        revision: "{rev}"
        defaults:
        {ctry}  purpose_header: X-Purpose
        departments:
          gongan:
            name: gongan
            match: {{ subject: {{ O: "{gongan}" }} }}
            clearance: confidential
          renshe:
            name: renshe
            match: {{ subject: {{ O: "{renshe}" }} }}
            clearance: restricted
        {zones}  minzheng:
            name: minzheng
            match: {{ subject: {{ O: "{minzheng}" }} }}
            clearance: restricted
        resources:
          echo:
            name: echo
            owner: gongan
            upstream: echo-api
            methods: [GET, POST]
            paths: ["/api/**"]
            classification: internal
            sharing: unconditional
        """).format(rev=revision, ctry=ctry, zones=zones, gongan=GONGAN_O,
                    renshe=RENSHE_O, minzheng=MINZHENG_O)


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


class OriginGateway(gwtest.Gateway):
    """A gateway whose listener is on host (default 127.0.0.1), with
    proxy_protocol: true and proxy_trusted when trusted is a list."""

    def __init__(self, workdir, pki, host="127.0.0.1", trusted=None, **kw):
        self.host = host
        self.trusted = trusted
        gwtest.Gateway.__init__(self, workdir, pki, **kw)
        if ":" in host:
            self.port = free_port6()
            self.write_config()

    def config_text(self):
        text = gwtest.Gateway.config_text(self)
        old = '    address: "127.0.0.1:%d"\n' % self.port
        assert old in text, text
        addr = "[%s]" % self.host if ":" in self.host else self.host
        new = '    address: "%s:%d"\n' % (addr, self.port)
        if self.trusted is not None:
            new += "    proxy_protocol: true\n    proxy_trusted: [%s]\n" % ", ".join(
                '"%s"' % t for t in self.trusted)
        return text.replace(old, new, 1)

    def wait_ready(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return "up"
            except OSError:
                return None
        state = gwtest.wait_until(up, timeout, 0.05)
        if state != "up":
            if self.proc.poll() is None:
                self.kill()
            raise gwtest.GatewayError("govgate serve did not listen on %s port %d (%s); "
                                      "stderr:\n%s" % (self.host, self.port, state,
                                                       self.stderr_text()[-3000:]))

    def log_lines(self, *needles):
        """stderr lines holding every needle."""
        return [ln for ln in self.stderr_text().splitlines()
                if all(n in ln for n in needles)]

    def wait_log(self, *needles, timeout=5):
        return gwtest.wait_until(lambda: self.log_lines(*needles), timeout)

    def decisions(self):
        return [r for r in self.audit_records() if r.get("event") == "decision"]

    def decision(self, request_id, timeout=5):
        """The decision record of request_id (waits for it to be written)."""
        def find():
            for r in self.decisions():
                if r.get("request_id") == request_id:
                    return r
            return None
        rec = gwtest.wait_until(find, timeout)
        assert rec is not None, "no decision record for %s" % request_id
        return rec


@pytest.fixture
def origin_gateway(tmp_path, pki, backend, origin_geodb):
    """Factory: origin_gateway(policy=..., host=..., trusted=...) -> a
    started OriginGateway in front of backend with the origin test
    databases; stopped (exit 0, no sanitizer report) at teardown."""
    made = []

    def make(start=True, **kw):
        kw.setdefault("backend", backend)
        kw.setdefault("geodb", origin_geodb)
        kw.setdefault("policy", origin_policy())
        g = OriginGateway(str(tmp_path / ("ogw%d" % len(made))), pki, **kw)
        made.append(g)
        if start:
            g.start()
        return g

    yield make
    errors = []
    for g in made:
        try:
            g.finish()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


# ---------------------------------------------------------------------------
# PROXY protocol headers

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, sport, dst=None, dport=443, proto=None):
    """A v1 line: PROXY TCP4|TCP6 src dst sport dport CRLF."""
    if proto is None:
        proto = "TCP6" if ":" in src else "TCP4"
    if dst is None:
        dst = "::1" if ":" in src else "127.0.0.1"
    return ("PROXY %s %s %s %s %s\r\n" % (proto, src, dst, sport, dport)).encode()


def proxy_v2(src=None, sport=0, dst=None, dport=443, command=1, version=2, fam=None,
             tlvs=b"", length=None):
    """A v2 header. src None: no addresses (with command 0, LOCAL).
    fam, version and length override the computed bytes."""
    if src is None:
        addrs = b""
        fam = 0x00 if fam is None else fam
    elif ":" in src:
        dst = dst or "::1"
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport))
        fam = 0x21 if fam is None else fam
    else:
        dst = dst or "127.0.0.1"
        addrs = (socket.inet_pton(socket.AF_INET, src) +
                 socket.inet_pton(socket.AF_INET, dst) + struct.pack("!HH", sport, dport))
        fam = 0x11 if fam is None else fam
    body = addrs + tlvs
    n = len(body) if length is None else length
    return V2_SIG + bytes([(version << 4) | command, fam]) + struct.pack("!H", n) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


# ---------------------------------------------------------------------------
# Clients

def raw_connect(port, host="127.0.0.1", source=None, timeout=10):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        if source:
            raw.bind((source, 0))
        raw.connect((host, port))
    except BaseException:
        raw.close()
        raise
    return raw


def open_tls(gw, cert="renshe", source=None, preamble=b"", coalesce=False, timeout=10):
    """TCP to gw (from source), send preamble, then the TLS handshake.
    coalesce sends the preamble with MSG_MORE so that it leaves in one
    segment with the ClientHello."""
    raw = raw_connect(gw.port, gw.host, source, timeout)
    try:
        if preamble:
            if coalesce:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                raw.send(preamble, socket.MSG_MORE)
            else:
                raw.sendall(preamble)
        s = gw.context(cert).wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise
    s.settimeout(timeout)
    return gwtest.Conn(s, raw)


def get(gw, path="/api/echo", cert="renshe", source=None, preamble=b"", headers=None,
        coalesce=False, timeout=10):
    """One GET on a new connection; returns the gwtest.Response."""
    c = open_tls(gw, cert, source, preamble, coalesce, timeout)
    try:
        c.send(gwtest.build_request("GET", path, headers))
        return c.read_response(timeout=timeout)
    finally:
        c.close()


def denied(r, status, reason):
    """Assert a JSON denial (contract 4.1); returns its body."""
    assert r.status == status, r
    body = r.json()
    assert body["reason"] == reason, body
    assert body["request_id"] == r.header("X-Govgate-Request-Id"), body
    return body


def wait_closed(sock, limit):
    """Read from a raw socket until EOF or reset; returns (bytes read,
    seconds waited). Fails when still open after limit seconds."""
    t0 = time.monotonic()
    got = b""
    sock.settimeout(0.1)
    while time.monotonic() - t0 < limit:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return got, time.monotonic() - t0
        if not data:
            return got, time.monotonic() - t0
        got += data
    raise AssertionError("connection still open after %ss" % limit)


def tls_refused(gw, preamble=b"", source=None, cert="renshe", timeout=8):
    """Send preamble, then try TLS and a request: it must end without any
    HTTP response. Returns (how, seconds)."""
    t0 = time.monotonic()
    raw = raw_connect(gw.port, gw.host, source, timeout)
    try:
        if preamble:
            try:
                raw.sendall(preamble)
            except OSError as e:
                return "send: %r" % (e,), time.monotonic() - t0
        try:
            s = gw.context(cert).wrap_socket(raw, server_hostname="localhost")
        except (socket.timeout, TimeoutError):
            raise AssertionError("handshake neither completed nor failed in %ss" % timeout)
        except (ssl.SSLError, OSError) as e:
            return "handshake: %r" % (e,), time.monotonic() - t0
        c = gwtest.Conn(s, raw)
        c.send(gwtest.build_request("GET", "/api/echo"))
        try:
            r = c.read_response(timeout=timeout)
        except gwtest.NoResponse as e:
            if e.kind == "timeout":
                raise AssertionError("refused client got neither a response nor a close")
            assert not e.partial, "partial response to a refused client: %r" % e.partial
            return "%s %s" % (e.kind, e.detail), time.monotonic() - t0
        raise AssertionError("refused client got an HTTP response: %r" % r)
    finally:
        raw.close()


def forwarded_for(req):
    """The for= node of the backend's Forwarded header, unquoted."""
    fwd = req.header("Forwarded")
    assert fwd is not None, req
    for part in fwd.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "for":
            v = v.strip('"')
            if v.startswith("["):
                v = v[1:v.index("]")]
            return v
    raise AssertionError("no for= in %r" % fwd)


def same_ip(a, b):
    """Equal addresses, an IPv4-mapped IPv6 one being equal to its IPv4."""
    x, y = ipaddress.ip_address(a), ipaddress.ip_address(b)
    x = getattr(x, "ipv4_mapped", None) or x
    y = getattr(y, "ipv4_mapped", None) or y
    return x == y


def client_hello(gw, cert="renshe"):
    """The bytes of a TLS ClientHello to gw (a client that skips PROXY)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = gw.context(cert).wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()
