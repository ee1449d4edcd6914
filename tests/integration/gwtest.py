"""gwtest.py - shared helpers for the `govgate serve` integration tests.

- Gateway: writes govgate.yaml (and, by default, a small test policy) into
  a folder, runs the real binary `govgate serve -c FILE`, waits until the
  listener accepts, reloads it with SIGHUP and stops it with SIGTERM,
  checking the exit status and that stderr holds no sanitizer report.
- RecordingBackend: a threaded HTTP/1.1 server on 127.0.0.1 that records
  every request it receives (method, target, headers, body, raw bytes) and
  answers canned JSON; its mode makes it slow, silent, abrupt, malformed or
  oversized.
- TlsBackend: an HTTPS backend with a given server context, one request
  per connection, recording whether each session was resumed.
- Conn and friends: mTLS clients with Python's ssl module that send exact
  bytes (in one write or byte by byte) and read one response strictly.

Nothing here imports conftest, so conftest may import this module.
"""
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import textwrap
import threading
import time
import weakref

TOP_SRCDIR = os.environ.get(
    "top_srcdir", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOP_BUILDDIR = os.environ.get("top_builddir", TOP_SRCDIR)
GOVGATE = os.environ.get("GOVGATE", os.path.join(TOP_BUILDDIR, "src", "govgate"))

# Lines that only a sanitizer or a crash handler writes.
SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"UndefinedBehaviorSanitizer|ThreadSanitizer|MemorySanitizer|"
    r"==\d+==ERROR|Segmentation fault|Aborted \(core dumped\)")

RENSHE_O = "Nanning Human Resources and Social Security Bureau"
GONGAN_O = "Nanning Public Security Bureau"
DEPT_CA_CN = "Nanning E-Gov Department CA"


def _sanitized():
    """True when GOVGATE is an ASan build: its quarantine and shadow
    memory make RSS budgets meaningless, so memory checks apply to the
    normal build only."""
    try:
        with open(GOVGATE, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized()


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, step=0.02):
    """Poll pred() until it is true or timeout seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------------------
# The test policy

def make_policy(revision="itest-1", echo_methods=None, extra="", extra_departments=""):
    """A small policy that fits the tests better than the example one.

    Departments: gongan and renshe (mkpki.sh certificates, matched by O),
    finance (O=Test Gov, OU=Finance, issued by the Department CA: the
    special I-series certificates), admin (O=Test Gov, OU=Admin: what a
    spoofed DN would map to) and caizheng (a CJK O, for BMPString).
    Resources, all on upstream echo-api and owned by gongan: `echo`
    (/api/**, unconditional, every usual method), `secret` (/secret/**,
    sharing none) and `conditional` (/cond/**, needs grant G-1 for renshe
    with purpose `testing`). extra_departments is YAML text inserted
    under `departments:` (indented two spaces); extra is appended.
    """
    methods = echo_methods or ["GET", "HEAD", "POST", "PUT", "DELETE",
                               "OPTIONS", "PATCH"]
    return textwrap.dedent("""\
        version: 1
        revision: "{revision}"
        defaults:
          purpose_header: X-Purpose
          case_header: X-Case-Id
          operator_header: X-Operator-Id
        purposes:
          testing: {{ name: integration test, basis: none }}
        departments:
          gongan:
            name: gongan
            match: {{ subject: {{ O: "{gongan}" }} }}
            clearance: confidential
          renshe:
            name: renshe
            match: {{ subject: {{ O: "{renshe}" }} }}
            clearance: restricted
          finance:
            name: finance
            match:
              subject: {{ O: "Test Gov", OU: "Finance" }}
              issuer: {{ CN: "{deptca}" }}
            clearance: restricted
          admin:
            name: admin
            match: {{ subject: {{ O: "Test Gov", OU: "Admin" }} }}
            clearance: confidential
          caizheng:
            name: caizheng
            match: {{ subject: {{ O: "\u5357\u5b81\u5e02\u8d22\u653f\u5c40", OU: "Finance" }} }}
            clearance: restricted
        {extra_departments}resources:
          echo:
            name: echo
            owner: gongan
            upstream: echo-api
            methods: [{methods}]
            paths: ["/api/**"]
            classification: internal
            sharing: unconditional
          secret:
            name: secret
            owner: gongan
            upstream: echo-api
            methods: [GET]
            paths: ["/secret/**"]
            classification: internal
            sharing: none
            legal_basis: "integration test"
          conditional:
            name: conditional
            owner: gongan
            upstream: echo-api
            methods: [GET]
            paths: ["/cond/**"]
            classification: internal
            sharing: conditional
        grants:
          - id: G-1
            consumer: renshe
            resource: conditional
            purposes: [testing]
            approved_by: gongan
            legal_basis: "integration test"
            expires: 2099-12-31
        """).format(revision=revision, gongan=GONGAN_O, renshe=RENSHE_O,
                    deptca=DEPT_CA_CN, methods=", ".join(methods),
                    extra_departments=extra_departments) + extra


# ---------------------------------------------------------------------------
# The gateway under test

class GatewayError(AssertionError):
    pass


# Every gateway started in this process, so that a failed test can show
# what they logged (conftest.py adds their stderr tails to the report).
STARTED = weakref.WeakSet()


class Gateway:
    """One `govgate serve` process with its own folder, config and policy.

    upstreams maps upstream names to "host:port" strings or lists; the
    default sends echo-api to backend. limits and upstream_opts are merged
    over short CI-friendly defaults. policy is YAML text (written to
    policy.yaml) or, with policy_path, an existing file or folder.
    """

    DEFAULT_LIMITS = {
        "max_connections": 1000,
        "header_timeout": "2s",
        "idle_timeout": "5s",
        "handshake_timeout": "2s",
        "max_header_bytes": "8k",
        "max_body_bytes": "1m",
    }

    def __init__(self, workdir, pki, backend=None, policy=None,
                 policy_path=None, upstreams=None, upstream_opts=None,
                 limits=None, tls=None, audit=True, geodb=None, workers=1,
                 extra="", name="itest-gw", audit_opts=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.pki = pki
        self.backend = backend
        self.port = free_port()
        self.proc = None
        self.rc = None
        self.workers = workers
        self.name = name
        self.extra = extra
        self.audit = audit
        # audit: options besides path and signing_key ("sync", ...)
        self.audit_opts = {"checkpoint_interval": "1s"}
        self.audit_opts.update(audit_opts or {})
        self.geodb = geodb
        self.limits = dict(self.DEFAULT_LIMITS)
        self.limits.update(limits or {})
        self.upstream_opts = {"connect_timeout": "1s", "read_timeout": "3s"}
        self.upstream_opts.update(upstream_opts or {})
        if upstreams is None:
            upstreams = {}
            if backend is not None:
                upstreams["echo-api"] = backend.address
        self.upstreams = upstreams
        self.tls = {
            "certificate": os.path.join(pki, "gateway.crt"),
            "key": os.path.join(pki, "gateway.key"),
            "client_ca": os.path.join(pki, "departments-ca.pem"),
            "crl": os.path.join(pki, "departments.crl"),
        }
        self.tls.update(tls or {})
        self.policy_path = policy_path or os.path.join(self.dir, "policy.yaml")
        if policy_path is None:
            self.write_policy(policy if policy is not None else make_policy())
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        self.audit_key = os.path.join(self.dir, "audit.key")
        if audit and not os.path.exists(self.audit_key):
            r = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519",
                                "-out", self.audit_key], capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            os.chmod(self.audit_key, 0o600)
        self.config_path = os.path.join(self.dir, "govgate.yaml")
        self.write_config()

    # -- files

    def write_policy(self, text):
        """Replace policy.yaml atomically (rename), for reload tests."""
        tmp = self.policy_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.policy_path)

    def config_text(self):
        ups = []
        for name, servers in self.upstreams.items():
            if isinstance(servers, str):
                servers = [servers]
            opts = "".join(", %s: %s" % (k, v) for k, v in self.upstream_opts.items())
            ups.append('  %s: { servers: [%s]%s }' % (
                name, ", ".join('"%s"' % s for s in servers), opts))
        tls = "".join("      %s: %s\n" % (k, v) for k, v in self.tls.items()
                      if v is not None)
        text = "name: %s\nworkers: %d\npolicy: %s\n" % (
            self.name, self.workers, self.policy_path)
        text += "listeners:\n  - name: egov\n    address: \"127.0.0.1:%d\"\n" % self.port
        text += "    tls:\n" + tls
        if ups:
            text += "upstreams:\n" + "\n".join(ups) + "\n"
        if self.audit:
            text += ("audit:\n  path: %s\n  signing_key: %s\n" % (
                self.audit_path, self.audit_key)) + "".join(
                "  %s: %s\n" % (k, v) for k, v in self.audit_opts.items())
        if self.geodb:
            text += "geoip:\n  country_db: %s\n  zone_db: %s\n" % (
                self.geodb["countries"], self.geodb["zones"])
        text += "limits:\n" + "".join(
            "  %s: %s\n" % (k, v) for k, v in self.limits.items())
        text += "timezone: Asia/Shanghai\n"
        return text + self.extra

    def write_config(self):
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config_text())
        return self.config_path

    # -- process

    def start(self, wait=True, prefix=(), env=None, timeout=20):
        """Start `govgate serve -c CONFIG`; wait until the port accepts."""
        assert self.proc is None or self.proc.poll() is not None
        self.write_config()
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        e.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        e.update(env or {})
        self.errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(list(prefix) + [GOVGATE, "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self.errf,
                                     stderr=self.errf, env=e, cwd=self.dir)
        self.rc = None
        STARTED.add(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return "up"
            except OSError:
                return None
        state = wait_until(up, timeout, 0.05)
        if state != "up":
            rc = self.proc.poll()
            if rc is None:
                self.kill()
            raise GatewayError("govgate serve did not start listening on %d (%s, rc=%s); "
                               "stderr:\n%s" % (self.port, state or "timeout", rc,
                                                self.stderr_text()[-3000:]))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=20, check=True):
        """SIGTERM, wait, and (check) require exit 0 and a clean stderr."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = "timeout"
                if check:
                    raise GatewayError("govgate did not exit within %ss of SIGTERM; stderr:\n%s"
                                       % (timeout, self.stderr_text()[-3000:]))
                return self.rc
        self.rc = self.proc.returncode
        self.errf.close()
        if check:
            self.check_clean()
        return self.rc

    def check_clean(self):
        err = self.stderr_text()
        m = SANITIZER_RE.search(err)
        if m:
            raise GatewayError("sanitizer or crash report in stderr:\n%s"
                               % err[max(0, m.start() - 200):m.start() + 3000])
        if self.rc != 0:
            raise GatewayError("govgate exited %s (expected 0); stderr:\n%s"
                               % (self.rc, err[-3000:]))

    def finish(self):
        """Fixture teardown: stop if running; complain about a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.stop(check=True)
        else:
            if self.rc is None:
                self.rc = self.proc.returncode
                self.errf.close()
            m = SANITIZER_RE.search(self.stderr_text())
            if m or (isinstance(self.rc, int) and self.rc < 0 and
                     self.rc not in (-signal.SIGKILL,)):
                raise GatewayError("govgate died (rc=%s); stderr:\n%s"
                                   % (self.rc, self.stderr_text()[-3000:]))

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- /proc

    def proc_status(self, field):
        """A numeric field of /proc/PID/status in kB (VmRSS, FDSize...)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def rss_kb(self):
        return self.proc_status("VmRSS")

    def cpu_seconds(self):
        """utime + stime of the process (all threads), in seconds."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    # -- audit

    def audit_records(self):
        """Every complete line of the audit file parsed as JSON (a bad line
        fails). A last line without its newline is a record still being
        written by the running gateway, not yet one to read."""
        out = []
        try:
            with open(self.audit_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return out
        for line in data.split(b"\n")[:-1]:
            if line:
                out.append(json.loads(line.decode("utf-8")))
        return out

    # -- clients

    def context(self, cert="renshe", **kw):
        return client_context(self.pki, cert, **kw)

    def connect(self, cert="renshe", ctx=None, **kw):
        if ctx is None:
            ctx = self.context(cert)
        return Conn.open(self.port, ctx, **kw)

    def request(self, method="GET", path="/api/echo", headers=None, body=b"",
                cert="renshe", ctx=None, timeout=10, **kw):
        """One request on a new connection; returns the Response."""
        c = self.connect(cert, ctx=ctx, timeout=timeout, **kw)
        try:
            c.send(build_request(method, path, headers, body))
            return c.read_response(timeout=timeout, head=(method == "HEAD"))
        finally:
            c.close()


# ---------------------------------------------------------------------------
# HTTP messages

def build_request(method="GET", path="/api/echo", headers=None, body=b"",
                  host="localhost", version="HTTP/1.1"):
    """Exact request bytes. headers: a list of (name, value) or a dict;
    Host is added first unless host is None; Content-Length is added for a
    body unless a framing header is given."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    names = {n.lower() for n, _ in headers}
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
    if isinstance(body, str):
        body = body.encode()
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Response:
    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.raw = raw

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r %d bytes>" % (self.status, self.headers, len(self.body))


class NoResponse(AssertionError):
    """The connection ended (or stalled) before a complete response.

    kind: "eof" (orderly close), "reset", "alert" (a TLS alert or other
    TLS failure; detail says which), "timeout"; partial holds any bytes."""

    def __init__(self, kind, detail="", partial=b""):
        AssertionError.__init__(self, "no response: %s %s (partial %r)"
                                % (kind, detail, partial[:200]))
        self.kind = kind
        self.detail = detail
        self.partial = partial


def _classify(exc):
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ssl.SSLEOFError):
        return "eof"
    if isinstance(exc, ssl.SSLError):
        return "alert"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return "reset"


# ---------------------------------------------------------------------------
# TLS clients

def cert_files(pki, cert, chain=True):
    """(certfile, keyfile) for a short name: "renshe", "special/i02-slash",
    "expired"... chain=True sends NAME.chain.pem when it exists."""
    base = os.path.join(pki, cert)
    crt = base + ".chain.pem" if chain and os.path.exists(base + ".chain.pem") else base + ".crt"
    return crt, base + ".key"


def client_context(pki, cert="renshe", chain=True, seclevel0=False,
                   min_version=None, max_version=None, alpn=None,
                   ciphers=None, verify=True, tickets=True):
    """An mTLS client context that trusts root-ca.pem for the gateway.

    cert None sends no certificate. seclevel0 lowers the client's own
    OpenSSL security level so that weak certificates can be sent at all.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(os.path.join(pki, "root-ca.pem"))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers(ciphers or "DEFAULT@SECLEVEL=0")
    elif ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if cert:
        crt, key = cert_files(pki, cert, chain)
        ctx.load_cert_chain(crt, key)
    return ctx


class Conn:
    """A client connection (TLS or plain TCP) with a read buffer."""

    def __init__(self, sock, raw=None):
        self.sock = sock
        self.raw = raw or sock
        self.buf = b""
        self.eof = False
        # What ended the connection when a non-blocking peek met a TLS or
        # socket error: reported with the "eof" it leaves behind.
        self.error = ""

    @classmethod
    def open(cls, port, ctx, sni="localhost", source=None, timeout=10,
             session=None, host="127.0.0.1"):
        """TCP connect (optionally from source address), then the TLS
        handshake. Handshake failures propagate as ssl.SSLError/OSError."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        # Without TCP_NODELAY a byte-by-byte send holds each one-byte
        # record until the previous one is acknowledged (Nagle), so its
        # pace is set by the receiver's delayed-ACK timer (40-200 ms per
        # byte once the gateway is slow to read on a loaded machine), not
        # by the gateway: a 250-byte head could not arrive in 10 s.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            raw.bind((source, 0))
        raw.connect((host, port))
        if ctx is None:
            return cls(raw)
        try:
            s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
        except BaseException:
            raw.close()
            raise
        s.settimeout(timeout)
        return cls(s, raw)

    # TLS facts
    @property
    def session(self):
        return self.sock.session

    @property
    def session_reused(self):
        return self.sock.session_reused

    def version(self):
        return self.sock.version()

    def alpn(self):
        return self.sock.selected_alpn_protocol()

    def cipher(self):
        return self.sock.cipher()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def _peek_readable(self):
        """Non-blocking: pull whatever application data has arrived into
        buf. Returns True when data, EOF or an error arrived."""
        r, _, _ = select.select([self.sock], [], [], 0)
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not r and not pending:
            return False
        old = self.sock.gettimeout()
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                return True
            self.buf += data
            return True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except (OSError, ssl.SSLError) as e:
            self.eof = True
            self.error = "%s: %r" % (_classify(e), e)
            return True
        finally:
            self.sock.settimeout(old)

    def send(self, data, bytewise=False, delay=0.0):
        """Send data in one write, or one byte per write (one TLS record
        each). Stops early when the server answered or closed. Returns
        the number of bytes sent."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        try:
            if not bytewise:
                self.sock.sendall(data)
                return len(data)
            for i in range(len(data)):
                if self._peek_readable():
                    return i
                self.sock.sendall(data[i:i + 1])
                if delay:
                    time.sleep(delay)
            return len(data)
        except (OSError, ssl.SSLError):
            return -1

    def recv_more(self, deadline):
        """Read more into buf; False at EOF. Raises NoResponse on error/timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoResponse("timeout", partial=self.buf)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except Exception as e:  # noqa: BLE001 - classified below
            kind = _classify(e)
            if kind != "timeout":
                self.eof = True
            raise NoResponse(kind, repr(e), self.buf)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, pred, deadline):
        while True:
            v = pred()
            if v is not None:
                return v
            if not self.recv_more(deadline):
                v = pred()
                if v is not None:
                    return v
                how = ["closed mid-response"] if self.buf else []
                raise NoResponse("eof", " ".join(how + [self.error]).strip(),
                                 self.buf)

    def read_response(self, timeout=10, head=False, interim=False):
        """Read one response strictly (CRLF only, Content-Length, chunked
        or until close). 1xx responses are skipped unless interim. Raises
        NoResponse when the connection ends before a complete response."""
        deadline = time.monotonic() + timeout
        while True:
            def find_head():
                i = self.buf.find(b"\r\n\r\n")
                return i if i >= 0 else None
            i = self._need(find_head, deadline)
            rawhead = self.buf[:i + 4]
            self.buf = self.buf[i + 4:]
            lines = rawhead[:-4].split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise AssertionError("malformed status line %r" % lines[0])
            version = parts[0].decode("latin-1")
            status = int(parts[1])
            reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
            headers = []
            for ln in lines[1:]:
                n, sep, v = ln.partition(b":")
                assert sep, "malformed response header line %r" % ln
                headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
            resp = Response(version, status, reason, headers, b"", rawhead)
            if 100 <= status < 200:
                if interim:
                    return resp
                continue
            break
        if head or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None:
            assert te.lower() == "chunked", te
            body = b""
            while True:
                def size_line():
                    j = self.buf.find(b"\r\n")
                    return j if j >= 0 else None
                j = self._need(size_line, deadline)
                size = int(self.buf[:j].split(b";")[0], 16)
                self.buf = self.buf[j + 2:]
                if size == 0:
                    # trailers up to the empty line
                    def trailer_end():
                        if self.buf.startswith(b"\r\n"):
                            return 2
                        k = self.buf.find(b"\r\n\r\n")
                        return k + 4 if k >= 0 else None
                    k = self._need(trailer_end, deadline)
                    self.buf = self.buf[k:]
                    break
                self._need(lambda: True if len(self.buf) >= size + 2 else None, deadline)
                body += self.buf[:size]
                assert self.buf[size:size + 2] == b"\r\n", "bad chunk end"
                self.buf = self.buf[size + 2:]
            resp.body = body
        elif cl is not None:
            n = int(cl)
            self._need(lambda: True if len(self.buf) >= n else None, deadline)
            resp.body = self.buf[:n]
            self.buf = self.buf[n:]
        else:
            while self.recv_more(deadline):
                pass
            resp.body = self.buf
            self.buf = b""
        return resp

    def expect_closed(self, timeout=5):
        """Wait until the server closes (EOF, reset or alert). Returns any
        bytes that arrived first; raises AssertionError when the
        connection is still open after timeout."""
        deadline = time.monotonic() + timeout
        extra = self.buf
        self.buf = b""
        while True:
            try:
                if not self.recv_more(deadline):
                    return extra + self.buf
            except NoResponse as e:
                if e.kind == "timeout":
                    raise AssertionError("connection still open after %ss" % timeout)
                return extra + e.partial
            extra += self.buf
            self.buf = b""

    def is_open(self, wait=0.2):
        """True when nothing (no EOF, no error) arrives within wait."""
        try:
            self.expect_closed(wait)
            return False
        except AssertionError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def handshake_fails_or_no_response(port, ctx, request=None, timeout=5, **kw):
    """For a client the gateway must refuse: connect, send a request, read.

    Returns a short description of how it ended ("handshake: ...",
    "eof", "reset", "alert ..."). Raises AssertionError when an HTTP
    response came back or the connection stayed open (timeout)."""
    try:
        c = Conn.open(port, ctx, timeout=timeout, **kw)
    except ssl.SSLCertVerificationError:
        raise  # the client refused the gateway: not what is tested
    except ConnectionRefusedError:
        raise AssertionError("nothing listens on %d" % port)
    except (socket.timeout, TimeoutError):
        raise AssertionError("handshake neither completed nor failed in %ss" % timeout)
    except (ssl.SSLError, OSError) as e:
        return "handshake: %r" % (e,)
    try:
        c.send(request or build_request("GET", "/api/echo"))
        try:
            r = c.read_response(timeout=timeout)
        except NoResponse as e:
            if e.kind == "timeout":
                raise AssertionError("refused client got neither a response nor a close")
            assert not e.partial, "partial response to a refused client: %r" % e.partial
            return "%s %s" % (e.kind, e.detail)
        raise AssertionError("refused client got an HTTP response: %r" % r)
    finally:
        c.close()


# ---------------------------------------------------------------------------
# The recording backend

class Recorded:
    def __init__(self, conn_id, method, target, version, headers, body, raw_head):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name, value)] in order, as received
        self.body = body
        self.raw_head = raw_head
        self.time = time.monotonic()

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    @property
    def query(self):
        return self.target.split("?", 1)[1] if "?" in self.target else None

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<Recorded %s %s %r>" % (self.method, self.target, self.headers)


class TlsBackend:
    """HTTPS on 127.0.0.1 with the server context ctx (which a test may
    swap between requests): one request per connection, answered 200
    {"backend":"tls"} with Connection: close. Records per request whether
    its session was resumed, and counts handshakes that failed on its
    side."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.lock = threading.Lock()
        self.conns = []  # (resumed, request line) per finished handshake
        self.failed = 0  # handshakes that failed on the backend's side
        self.lsock = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.lsock.getsockname()[1]

    def start(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def stop(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()

    def resumed(self):
        with self.lock:
            return [r for r, _ in self.conns]

    def served(self):
        with self.lock:
            return len(self.conns)

    def _loop(self):
        while True:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw, self.ctx), daemon=True).start()

    def _serve(self, raw, ctx):
        raw.settimeout(5)
        try:
            s = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            with self.lock:
                self.failed += 1
            raw.close()
            return
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                if not data:
                    return
                buf += data
            with self.lock:
                self.conns.append((s.session_reused, buf.split(b"\r\n", 1)[0]))
            body = b'{"backend":"tls"}'
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()


class RecordingBackend:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request.

    mode (settable at any time):
      normal          answer 200 with a small JSON body (keep-alive)
      slow            wait `delay` seconds, then answer as normal
      gated           wait until `gate` is set, then answer as normal
      hang            read the request, never answer (until stop)
      close_mid_body  promise `big` bytes, send a part, then close
      malformed_head  answer with a broken header line
      huge_head       answer with a `huge` byte header
      big             answer `big` bytes of JSON-ish data (chunked if chunked)
      slow_reader     wait `delay` seconds before reading the body
      reset           close the connection with RST on receipt of a head
      raw             answer with the bytes in `raw_response`, then close
    """

    def __init__(self, mode="normal", delay=1.0, big=10 * 1024 * 1024,
                 huge=256 * 1024, chunked=False, rcvbuf=None, name="echo"):
        self.mode = mode
        self.delay = delay
        self.big = big
        self.huge = huge
        self.chunked = chunked
        self.rcvbuf = rcvbuf
        self.name = name
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.bytes_received = 0
        self.bytes_sent = 0  # body bytes of big answers handed to the kernel
        self.answered = 0  # normal answers handed to the kernel
        self.gate = threading.Event()  # for mode gated
        self.active = set()
        self.lsock = None
        self.port = None
        self.body = None  # canned body override (bytes) or None
        self.raw_response = b""  # for mode raw
        self._stop = threading.Event()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, port=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.bind(("127.0.0.1", port or self.port or 0))
        s.listen(256)
        self.port = s.getsockname()[1]
        self.lsock = s
        self._stop.clear()
        self.thread = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop listening and close every open connection at once."""
        self._stop.set()
        if self.lsock is not None:
            try:
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        with self.lock:
            conns = list(self.active)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def restart(self):
        self.stop()
        time.sleep(0.05)
        self.start(self.port)

    def clear(self):
        with self.lock:
            self.requests = []
            self.connections = 0
            self.bytes_received = 0
            self.bytes_sent = 0
            self.answered = 0

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def wait_for(self, n, timeout=5):
        wait_until(lambda: len(self.requests) >= n, timeout)
        return self.snapshot()

    def received_nothing(self, settle=0.2):
        """True when no byte reached the backend (after a short settle)."""
        time.sleep(settle)
        with self.lock:
            return self.bytes_received == 0 and not self.requests

    def _accept_loop(self, lsock):
        cid = 0
        while not self._stop.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cid += 1
            with self.lock:
                self.connections += 1
                self.active.add(c)
            threading.Thread(target=self._conn, args=(c, cid), daemon=True).start()

    def _recv(self, c, n=65536):
        data = c.recv(n)
        if data:
            with self.lock:
                self.bytes_received += len(data)
        return data

    def _conn(self, c, cid):
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = self._recv(c)
                    if not data:
                        return
                    buf += data
                i = buf.index(b"\r\n\r\n")
                rawhead, buf = buf[:i + 4], buf[i + 4:]
                lines = rawhead[:-4].split(b"\r\n")
                method, target, version = lines[0].decode("latin-1").split(" ", 2)
                headers = []
                for ln in lines[1:]:
                    n, _, v = ln.partition(b":")
                    headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
                hd = {n.lower(): v for n, v in headers}
                mode = self.mode
                if mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    self._record(cid, method, target, version, headers, b"", rawhead)
                    return
                if hd.get("expect", "").lower() == "100-continue":
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if mode == "slow_reader":
                    time.sleep(self.delay)
                body = b""
                if "transfer-encoding" in hd:
                    body, buf = self._read_chunked(c, buf)
                elif "content-length" in hd:
                    n = int(hd["content-length"])
                    while len(buf) < n:
                        data = self._recv(c, min(65536, n - len(buf)))
                        if not data:
                            return
                        buf += data
                    body, buf = buf[:n], buf[n:]
                self._record(cid, method, target, version, headers, body, rawhead)
                if not self._answer(c, mode, method, target, hd):
                    return
                if hd.get("connection", "").lower() == "close" or version == "HTTP/1.0":
                    return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                self.active.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def _read_chunked(self, c, buf):
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += self._recv(c) or b"\0"
            j = buf.index(b"\r\n")
            size = int(buf[:j].split(b";")[0], 16)
            buf = buf[j + 2:]
            if size == 0:
                while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                    data = self._recv(c)
                    if not data:
                        raise ValueError("eof in trailers")
                    buf += data
                k = 2 if buf.startswith(b"\r\n") else buf.index(b"\r\n\r\n") + 4
                return body, buf[k:]
            while len(buf) < size + 2:
                data = self._recv(c)
                if not data:
                    raise ValueError("eof in chunk")
                buf += data
            body += buf[:size]
            buf = buf[size + 2:]

    def _record(self, cid, method, target, version, headers, body, rawhead):
        with self.lock:
            self.requests.append(Recorded(cid, method, target, version, headers, body, rawhead))
            n = len(self.requests)
        return n

    def _answer(self, c, mode, method, target, hd):
        """Send the response for mode; False to close the connection."""
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "gated":
            while not self.gate.wait(0.1):
                if self._stop.is_set():
                    return False
        if mode == "hang":
            while not self._stop.is_set():
                r, _, _ = select.select([c], [], [], 0.1)
                if r and not c.recv(65536):
                    return False
            return False
        if mode == "raw":
            c.sendall(self.raw_response)
            return False
        if mode == "malformed_head":
            c.sendall(b"HTTP/1.1 200 OK\r\nBroken header line\r\nContent-Length: 2\r\n\r\n{}")
            return False
        if mode == "huge_head":
            c.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * self.huge +
                      b"\r\nContent-Length: 2\r\n\r\n{}")
            return False
        if mode in ("big", "close_mid_body"):
            return self._answer_big(c, mode)
        body = self.body
        if body is None:
            body = json.dumps({"backend": self.name, "method": method, "target": target,
                               "department": hd.get("x-govgate-department")}).encode()
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % len(body)).encode()
        c.sendall(head + (b"" if method == "HEAD" else body))
        with self.lock:
            self.answered += 1
        return True

    def _answer_big(self, c, mode):
        piece = (b'{"filler":"' + b"x" * 65500 + b'"}\n')[:65536]
        total = self.big
        cut = total // 2 if mode == "close_mid_body" else total
        if self.chunked:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % total)
        sent = 0
        while sent < cut:
            n = min(len(piece), cut - sent)
            if self.chunked:
                c.sendall(b"%x\r\n" % n + piece[:n] + b"\r\n")
            else:
                c.sendall(piece[:n])
            sent += n
            with self.lock:
                self.bytes_sent += n
        if mode == "close_mid_body":
            # Abrupt end, as when the backend process is killed.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            return False
        if self.chunked:
            c.sendall(b"0\r\n\r\n")
        return True


# ---------------------------------------------------------------------------
# Small conveniences for tests

def ok_request(gw, path="/api/echo", cert="renshe", **kw):
    """An allowed GET that must come back 200."""
    r = gw.request("GET", path, cert=cert, **kw)
    assert r.status == 200, r
    return r


def openssl_client(port, args, stdin=b"", timeout=15):
    """Run `openssl s_client -connect 127.0.0.1:PORT ARGS`; returns the
    CompletedProcess (bytes output)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)


# ---------------------------------------------------------------------------
# Extra certificates and CRLs for one test (python3-cryptography)

def _load_pair(certfile, keyfile):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(certfile, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(keyfile, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


class CertMaker:
    """Issue certificates and CRLs under the test PKI into outdir.

    Issuers are named by (certfile, keyfile) pairs; issue() returns the
    short name usable with client_context (relative to the PKI folder
    when outdir lies inside it, else an absolute base path)."""

    def __init__(self, pki, outdir):
        self.pki = pki
        self.out = str(outdir)
        os.makedirs(self.out, exist_ok=True)

    def pair(self, name):
        """An issuer from the PKI folder or from outdir, by base name."""
        for d in (self.out, self.pki):
            for ext in (".pem", ".crt"):
                if os.path.exists(os.path.join(d, name + ext)):
                    return _load_pair(os.path.join(d, name + ext), os.path.join(d, name + ".key"))
        raise FileNotFoundError(name)

    def issue(self, name, subject, issuer, ca=False, pathlen=None, eku=True,
              extensions=(), chain=(), days=(-1, 365), key=None, digital_signature=True,
              basic_constraints=True, server=False):
        """Write NAME.crt, NAME.key, NAME.chain.pem (leaf + chain files
        from outdir/PKI, by base name). subject: [(oid, value)]. server
        makes a serverAuth certificate for localhost/127.0.0.1."""
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID
        icert, ikey = self.pair(issuer) if issuer else (None, None)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        subj = x509.Name([x509.NameAttribute(o, v) for o, v in subject])
        b = (x509.CertificateBuilder().subject_name(subj)
             .issuer_name(icert.subject if icert else subj)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now + datetime.timedelta(days=days[0]))
             .not_valid_after(now + datetime.timedelta(days=days[1])))
        if basic_constraints:
            b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen if ca else None),
                                critical=True)
        b = b.add_extension(x509.KeyUsage(
            digital_signature=digital_signature and not ca, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
            critical=True)
        if server:
            import ipaddress
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False)
            b = b.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName("gateway.test"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        elif eku and not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False)
        if icert is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ikey.public_key()), critical=False)
        for ext, critical in extensions:
            b = b.add_extension(ext, critical=critical)
        cert = b.sign(ikey if ikey else key, hashes.SHA256())
        pem = cert.public_bytes(serialization.Encoding.PEM)
        base = os.path.join(self.out, name)
        with open(base + ".crt", "wb") as f:
            f.write(pem)
        fd = os.open(base + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(base + ".chain.pem", "wb") as f:
            f.write(pem)
            for c in chain:
                f.write(self.pem_of(c))
        if ca:
            with open(base + ".pem", "wb") as f:
                f.write(pem)
        return base

    def pem_of(self, name):
        for d in (self.out, self.pki):
            for ext in (".pem", ".crt"):
                p = os.path.join(d, name + ext)
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        return f.read()
        raise FileNotFoundError(name)

    def crl(self, name, issuer, revoked=(), last=-1, next_=30):
        """Write NAME.crl (PEM) signed by issuer, revoking the given
        certificate files or serial numbers; last/next_ in days from now."""
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        icert, ikey = self.pair(issuer)
        now = datetime.datetime.utcnow()
        b = (x509.CertificateRevocationListBuilder().issuer_name(icert.subject)
             .last_update(now + datetime.timedelta(days=last))
             .next_update(now + datetime.timedelta(days=next_)))
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ikey.public_key()), critical=False)
        b = b.add_extension(x509.CRLNumber(int(time.time())), critical=False)
        for r in revoked:
            if isinstance(r, str):
                with open(r, "rb") as f:
                    r = x509.load_pem_x509_certificate(f.read()).serial_number
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(r)
                .revocation_date(now - datetime.timedelta(minutes=1)).build())
        crl = b.sign(ikey, hashes.SHA256())
        path = os.path.join(self.out, name + ".crl")
        with open(path, "wb") as f:
            f.write(crl.public_bytes(serialization.Encoding.PEM))
        return path

    def bundle(self, name, *files):
        """Concatenate files (absolute, or base names in outdir/PKI)."""
        path = os.path.join(self.out, name)
        with open(path, "wb") as out:
            for fn in files:
                if not os.path.isabs(fn):
                    fn = os.path.join(self.pki, fn) if os.path.exists(
                        os.path.join(self.pki, fn)) else os.path.join(self.out, fn)
                with open(fn, "rb") as f:
                    out.write(f.read())
        return path


# ---------------------------------------------------------------------------
# Load

def _reason_of(r):
    """The "reason" of the gateway's own JSON error body, else None."""
    if r.status == 200:
        return None
    try:
        return r.json().get("reason")
    except (ValueError, AttributeError):
        return None


class Load:
    """n client threads sending keep-alive requests as fast as they can.

    Every outcome counts: ok (status 200) or a failure (another status,
    a closed or reset connection, a timeout) with what happened. After a
    failure a thread reconnects and goes on."""

    def __init__(self, gw, n=4, path="/api/echo", cert="renshe", method="GET"):
        self.gw = gw
        self.n = n
        self.path = path
        self.cert = cert
        self.method = method
        self.ok = 0
        self.failures = []
        # every response: (status, X-Govgate-Request-Id, reason or None)
        self.responses = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def start(self):
        ctx = self.gw.context(self.cert)
        for i in range(self.n):
            t = threading.Thread(target=self._run, args=(ctx,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self, ctx):
        req = build_request(self.method, self.path)
        c = None
        while not self.stopping.is_set():
            try:
                if c is None:
                    c = Conn.open(self.gw.port, ctx, timeout=10)
                c.send(req)
                r = c.read_response(timeout=10)
                with self.lock:
                    self.responses.append((r.status, r.header("X-Govgate-Request-Id"),
                                           _reason_of(r)))
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append("status %d %r" % (r.status, r.body[:200]))
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                with self.lock:
                    self.failures.append(repr(e))
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.01)
        if c is not None:
            c.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(20)
        return self


# ---------------------------------------------------------------------------
# The audit trail under faults (test_audit_faults_*.py)

VERIFY_AUDIT_PY = os.path.join(TOP_SRCDIR, "contrib", "verify-audit.py")


class Unavailable(Exception):
    """A fault-injection tool cannot run here (the test skips)."""


def audit_pubkey(gw):
    """The public half of gw's audit signing key, written next to it."""
    pub = os.path.join(gw.dir, "audit.pub")
    if not os.path.exists(pub):
        r = subprocess.run(["openssl", "pkey", "-in", gw.audit_key, "-pubout", "-out", pub],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    return pub


def audit_verify(pub, files, *opts):
    """Both verifiers on files (oldest first): {name: (exit, output)} for
    `govgate audit verify --pubkey PUB` and contrib/verify-audit.py."""
    out = {}
    for name, cmd in (("govgate audit verify", [GOVGATE, "audit", "verify"]),
                      ("verify-audit.py", ["/usr/bin/python3", VERIFY_AUDIT_PY])):
        r = subprocess.run(cmd + ["--pubkey", pub] + list(opts) + list(files),
                           capture_output=True, text=True, timeout=120)
        out[name] = (r.returncode, (r.stdout + r.stderr).strip())
    return out


def assert_verifies(pub, files, *opts):
    """Both verifiers accept files as one chain."""
    bad = {k: v for k, v in audit_verify(pub, files, *opts).items() if v[0] != 0}
    assert not bad, "audit verify %s %s failed: %r" % (" ".join(opts), " ".join(files), bad)


class Trail:
    """The records of audit files read in order (each dict gets "_file"
    and "_line"). A final line without its newline is a torn tail: its
    bytes go to torn[file], and it is no record. Any other line that is
    not one JSON object fails at once."""

    def __init__(self, files):
        self.files = list(files)
        self.records = []
        self.torn = {}
        for fn in self.files:
            with open(fn, "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            if lines and lines[-1]:
                self.torn[fn] = len(lines[-1])
            for i, line in enumerate(lines[:-1], 1):
                try:
                    rec = json.loads(line.decode("utf-8"))
                except ValueError:
                    raise AssertionError("%s:%d: not a JSON record: %r" % (fn, i, line[:300]))
                assert isinstance(rec, dict), "%s:%d: not an object" % (fn, i)
                rec["_file"], rec["_line"] = fn, i
                self.records.append(rec)

    def events(self, name):
        return [r for r in self.records if r.get("event") == name]

    def ids(self, event):
        """Request ids of the event's records, in order (duplicates kept)."""
        return [r.get("request_id") for r in self.events(event)]

    def seqs(self):
        return [r.get("seq") for r in self.records]


def backend_ids(backend):
    """X-Govgate-Request-Id of every request the backend received."""
    return [r.header("X-Govgate-Request-Id") for r in backend.snapshot()]


def unaudited(backend_seen, trail, complete=True):
    """The issue's invariant, as a list of violations (empty: holds):
    every id the backend received has an allowing decision record and,
    with complete, a complete record."""
    dec = {r.get("request_id"): r for r in trail.events("decision")}
    comp = set(trail.ids("complete"))
    bad = []
    for rid in backend_seen:
        if rid not in dec:
            bad.append("%s: forwarded without a decision record" % rid)
        elif dec[rid].get("decision") != "allow":
            bad.append("%s: forwarded, but its record says %r" % (rid, dec[rid].get("decision")))
        elif complete and rid not in comp:
            bad.append("%s: forwarded, no complete record" % rid)
    return bad


def orphan_completes(trail):
    """complete records whose request has no decision record."""
    dec = set(trail.ids("decision"))
    return [r for r in trail.events("complete") if r.get("request_id") not in dec]


def traced_pid(gw, timeout=10):
    """The govgate process under a tracer that gw.proc is (strace): its
    only child."""
    def child():
        try:
            with open("/proc/%d/task/%d/children" % (gw.pid, gw.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None
    pid = wait_until(child, timeout)
    assert pid, "no traced child of %d" % gw.pid
    return pid


def strace_usable():
    try:
        r = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "true"],
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


# Sanitizer options under ptrace: LeakSanitizer cannot stop the world.
TRACED_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}


class Tmpfs:
    """A small tmpfs at path, for disk-full tests.

    As root: mount(8) here. Otherwise a user and mount namespace
    (`unshare -rm`) holds the mount: the gateway must then start with
    prefix() to run inside it, and the test reaches the files through
    view(path) (/proc/HOLDER/root/...). mount() raises Unavailable when
    neither works."""

    def __init__(self, path, size):
        self.path = str(path)
        self.size = size
        self.mode = None
        self.holder = None
        os.makedirs(self.path, exist_ok=True)

    def mount(self):
        opt = "size=%d" % self.size
        if os.geteuid() == 0 and not os.environ.get("GOVGATE_TEST_NO_MOUNT"):
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", opt, "tmpfs", self.path],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                self.mode = "mount"
                return self
        try:
            self.holder = subprocess.Popen(
                ["unshare", "-rm", "sh", "-c",
                 'mount -t tmpfs -o "$1" tmpfs "$2" && echo up && exec sleep 3600',
                 "sh", opt, self.path],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise Unavailable("unshare: %s" % e)
        line = self.holder.stdout.readline()
        if line.strip() != b"up":
            err = self.holder.stderr.read(2000) if self.holder.poll() is not None else b""
            self.umount()
            raise Unavailable("neither mount nor unshare -rm: %r" % err)
        self.mode = "unshare"
        return self

    def prefix(self):
        """What the gateway's command line starts with."""
        if self.mode != "unshare":
            return []
        return ["nsenter", "--preserve-credentials", "-U", "-m", "-t", str(self.holder.pid)]

    def view(self, path):
        """Path as the test process reaches it."""
        if self.mode != "unshare":
            return path
        return "/proc/%d/root%s" % (self.holder.pid, os.path.abspath(path))

    def fill(self, name, limit=None):
        """Write zeros to a new file until the disk is full (or limit
        bytes); returns the bytes written."""
        n = 0
        chunk = b"\0" * 4096
        with open(self.view(os.path.join(self.path, name)), "wb", buffering=0) as f:
            while limit is None or n < limit:
                try:
                    n += f.write(chunk if limit is None else chunk[:min(4096, limit - n)])
                except OSError:
                    break
        return n

    def umount(self):
        if self.holder is not None:
            if self.holder.poll() is None:
                self.holder.kill()
            self.holder.wait()
            self.holder = None
        elif self.mode == "mount":
            subprocess.run(["umount", "-l", self.path], capture_output=True, timeout=30)
        self.mode = None
