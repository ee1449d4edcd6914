"""The README's quick start, scripts/demo.sh, as an administrator runs it:
it prepares demo/ (PKI, audit key, GeoIP databases, a config that passes
govgate check), starts the demo backends and the gateway, prints curl
lines, and every printed line answers what its comment promises. Ctrl-C
(SIGINT to the whole process group, as a terminal sends it) stops
everything: exit 0, no process left, an audit trail that verifies.

Also: contrib/govgate.yaml, the annotated production example, passes
govgate check once its /etc, /var/log and /var/lib paths point at real
files.

The demo runs in a copy of the parts of the source tree it uses (the
source tree may be read-only under distcheck), with GOVGATE_DEMO_BINARY
set to the binary under test so nothing is rebuilt, GOVGATE_SKIP_DEPS=1,
and a free block of ports.
"""
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import GOVGATE, TOP_SRCDIR, govgate, run
from gwtest import SANITIZER_RE

READY = "govgate demo: ready"
CASE_RE = re.compile(r"^# (\d{3}) ([a-z_]+): (.*)$")
PERSON_ID = "450103195803120017"
PERSON_MASKED = "450103********0017"
# Every kind of answer the demo promises to show (the brief of the quick
# start, contract 4.1).
REQUIRED = {"grant", "owner", "open", "no_client_cert", "no_grant",
            "purpose_required", "not_shared", "zone_mismatch", "no_resource",
            "bad_request"}
STARTUP_TIMEOUT = 25
STOP_TIMEOUT = 20


def _port_block(n):
    """A first port p with p .. p+n-1 all free on 127.0.0.1 right now."""
    for _ in range(200):
        p = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p + i))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of %d ports" % n)


def _session_members(sid):
    """Pids of live (non-zombie) processes in session sid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(d))
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return "?"


def _default_sigint():
    """In the child: SIGINT as a terminal's shell leaves it. A shell that
    starts with SIGINT ignored (make run in the background) could not trap
    it, and Ctrl-C would not be what the test exercises."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """One run of `sh scripts/demo.sh` in its own session."""

    def __init__(self, tree):
        self.tree = tree
        self.port = _port_block(9)          # gateway, 7 backends, admin
        self.lines = []
        self.q = queue.Queue()
        self.errpath = os.path.join(os.path.dirname(tree), "demo.stderr")
        env = dict(os.environ)
        env.update(GOVGATE_SKIP_DEPS="1", GOVGATE_DEMO_PORT=str(self.port),
                   GOVGATE_DEMO_ADMIN_PORT=str(self.port + 8),
                   GOVGATE_DEMO_BINARY=GOVGATE)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.errf = open(self.errpath, "wb")
        self.proc = subprocess.Popen(["sh", "scripts/demo.sh"], cwd=tree, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errf, start_new_session=True,
                                     preexec_fn=_default_sigint)
        self.sid = self.proc.pid
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self._wait_ready()

    def _read(self):
        for raw in self.proc.stdout:
            self.q.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.q.put(None)

    def _wait_ready(self):
        end = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < end:
            try:
                line = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.lines.append(line)
            if line.startswith(READY):
                return True
        return False

    def stderr(self):
        self.errf.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output(self):
        return "\n".join(self.lines)

    def cases(self):
        """(status, reason, comment, command) for every printed curl line."""
        out = []
        for i, line in enumerate(self.lines[:-1]):
            m = CASE_RE.match(line)
            if m and self.lines[i + 1].startswith("curl "):
                out.append((int(m.group(1)), m.group(2), m.group(3), self.lines[i + 1]))
        return out

    def interrupt(self):
        """Ctrl-C: SIGINT to the process group; the script's exit status."""
        if self.proc.poll() is None:
            os.killpg(self.sid, signal.SIGINT)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return "timeout"

    def kill_all(self):
        for pid in _session_members(self.sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        self.errf.close()


def _copy_tree(dst):
    """The parts of the source tree the demo reads, without generated files."""
    ignore = shutil.ignore_patterns("out", "__pycache__", "*.pyc", "*.mmdb", "*.key",
                                    "*.pem", "*.crt", "*.crl")
    for d in ("scripts", "certs", "contrib", "policies"):
        shutil.copytree(os.path.join(TOP_SRCDIR, d), os.path.join(dst, d), ignore=ignore)
    # Under distcheck the source tree is read-only, and so would the copy be.
    for root, dirs, files in os.walk(dst):
        for name in [root] + [os.path.join(root, f) for f in files]:
            os.chmod(name, os.stat(name).st_mode | stat.S_IWUSR)


def _has_serve():
    return run([GOVGATE, "serve", "--help"]).returncode == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tree = str(tmp_path_factory.mktemp("quickstart") / "govgate")
    _copy_tree(tree)
    d = Demo(tree)
    yield d
    try:
        d.interrupt()
    finally:
        d.kill_all()


def test_demo_prepares_pki_keys_databases_and_a_config_that_checks(demo):
    top = demo.tree
    out = demo.output()
    assert os.path.isfile(os.path.join(top, "demo", ".govgate-demo")), \
        out + "\n" + demo.stderr()
    for f in ("root-ca.pem", "gateway.crt", "gateway.key", "departments-ca.pem",
              "departments.crl", "renshe.chain.pem", "renshe.key", "gongan.chain.pem",
              "dashuju.chain.pem", "minzheng.chain.pem", "shichang.chain.pem"):
        assert os.path.isfile(os.path.join(top, "demo", "pki", f)), f
    key = os.path.join(top, "demo", "audit.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in open(os.path.join(top, "demo", "audit.pub")).read()
    for f in ("zones.mmdb", "countries.mmdb"):
        assert os.path.getsize(os.path.join(top, "demo", f)) > 0, f
    assert os.path.isdir(os.path.join(top, "demo", "audit"))
    cfg = os.path.join(top, "demo", "govgate.yaml")
    text = open(cfg, encoding="utf-8").read()
    assert '"127.0.0.1:%d"' % demo.port in text
    for name in ("psb-api", "hrss-api", "civil-api", "health-api", "market-api",
                 "estate-api", "bigdata-api"):
        assert name + ":" in text
    r = govgate("check", "-c", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in r.stderr, r.stderr


def test_demo_prints_ready_and_a_curl_line_for_every_answer(demo):
    if not demo.ready and not _has_serve():
        pytest.skip("govgate has no serve command yet")
    assert demo.ready, "no ready line within %ds:\n%s\n--- stderr:\n%s" % (
        STARTUP_TIMEOUT, demo.output(), demo.stderr()[-4000:])
    reasons = {c[1] for c in demo.cases()}
    assert REQUIRED <= reasons, "missing: %s" % sorted(REQUIRED - reasons)
    assert any("audit verify --pubkey demo/audit.pub demo/audit/audit.jsonl" in line
               for line in demo.lines), demo.output()


def _run_case(tree, cmd):
    """Run one printed curl line in the tree; (status or None, body text)."""
    r = subprocess.run(cmd, shell=True, cwd=tree, capture_output=True, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    m = re.search(r"\nHTTP (\d{3})\n?$", out)
    if r.returncode != 0 or not m:
        return None, "curl exit %d: %s %s" % (r.returncode, out,
                                              r.stderr.decode("utf-8", "replace"))
    return int(m.group(1)), out[:m.start()]


def _received_headers(obj):
    return {k.lower(): v for k, v in obj.get("_received", {}).get("headers", {}).items()}


def test_every_printed_curl_line_answers_as_its_comment_says(demo):
    if not demo.ready:
        pytest.skip("the demo is not running")
    failures = []
    for status, reason, comment, cmd in demo.cases():
        got, body = _run_case(demo.tree, cmd)
        where = "# %d %s: %s\n%s\n" % (status, reason, comment, cmd)
        if got != status:
            failures.append("%s  -> status %s, body %s" % (where, got, body[:600]))
            continue
        try:
            obj = json.loads(body)
        except ValueError:
            failures.append("%s  -> body is not JSON: %r" % (where, body[:600]))
            continue
        if status >= 400:
            if obj.get("reason") != reason or not obj.get("request_id"):
                failures.append("%s  -> body %s" % (where, body[:600]))
            continue
        # An allowed request reached its backend with the identity headers.
        h = _received_headers(obj)
        if not h.get("x-govgate-request-id") or "forwarded" not in h:
            failures.append("%s  -> backend got headers %s" % (where, h))
        if reason in ("grant", "owner", "unconditional") and not h.get("x-govgate-department"):
            failures.append("%s  -> no X-Govgate-Department: %s" % (where, h))
        if reason == "grant":
            family = [m.get("id_number", "") for m in obj.get("family", [])]
            if (obj.get("id_number") != PERSON_MASKED or obj.get("name") != "黃**" or
                    obj.get("phone") != "138****8000" or "photo" in obj or
                    not family or not all("********" in i for i in family) or
                    h.get("x-govgate-grant") != "NNZW-2026-0113"):
                failures.append("%s  -> not masked as promised: %s" % (where, body[:900]))
        if reason == "owner" and obj.get("id_number") != PERSON_ID:
            failures.append("%s  -> the owner should see the full id: %s" % (where, body[:600]))
    # Any other printed curl line (the admin listener's, when it answers)
    # must at least succeed.
    for line in demo.lines:
        if line.startswith("curl ") and line not in [c[3] for c in demo.cases()]:
            r = subprocess.run(line, shell=True, cwd=demo.tree, capture_output=True,
                               timeout=20)
            if r.returncode != 0:
                failures.append("%s\n  -> exit %d: %s" % (line, r.returncode, r.stderr[-300:]))
    assert demo.cases(), demo.output()
    assert not failures, "\n".join(failures)


def test_ctrl_c_stops_gateway_and_backends_and_the_audit_trail_verifies(demo):
    if not demo.ready:
        pytest.skip("the demo is not running")
    members = _session_members(demo.sid)
    names = " | ".join(_cmdline(p) for p in members)
    assert "serve -c" in names and "demo-backend.py" in names, names
    rc = demo.interrupt()
    left = _session_members(demo.sid)
    assert rc == 0, "demo.sh exited %s\n%s\n--- stderr:\n%s" % (
        rc, demo.output()[-2000:], demo.stderr()[-4000:])
    assert not left, "left running: %s" % [_cmdline(p) for p in left]
    err = demo.stderr()
    shell_errors = re.findall(r"(?m)^.*scripts/demo\.sh: \d+: .*$", err)
    assert not shell_errors, "\n".join(shell_errors)
    m = SANITIZER_RE.search(err)
    assert not m, err[max(0, m.start() - 200):m.start() + 3000]
    verify = [line for line in demo.lines if " audit verify --pubkey " in line]
    assert verify, demo.output()
    r = subprocess.run(verify[0], shell=True, cwd=demo.tree, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    records = [json.loads(x) for x in open(os.path.join(demo.tree, "demo", "audit",
                                                        "audit.jsonl"), encoding="utf-8")]
    reasons = {x.get("reason") for x in records if x.get("event") == "decision"}
    assert REQUIRED <= reasons, "audited reasons: %s" % sorted(r for r in reasons if r)


# --- contrib/govgate.yaml ------------------------------------------------------

PROD_PREFIXES = ("/etc/govgate/", "/var/log/govgate/", "/var/lib/GeoIP/")


def test_example_production_config_passes_check_with_its_paths_in_place(tmp_path, pki, geodb):
    src = os.path.join(TOP_SRCDIR, "contrib", "govgate.yaml")
    text = open(src, encoding="utf-8").read()
    # Every absolute path outside comments lives under one of the prefixes.
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for p in re.findall(r"(?<![\w.])(/[\w./-]+)", code):
            assert p.startswith(PROD_PREFIXES), "unexpected path %s in: %s" % (p, line)
    etc, log, geo = tmp_path / "etc", tmp_path / "log", tmp_path / "geoip"
    for d in (etc / "tls", log, geo):
        d.mkdir(parents=True)
    for f in ("gateway.crt", "gateway.key", "departments-ca.pem", "departments.crl",
              "backend-ca.pem", "gateway-client.crt", "gateway-client.key"):
        shutil.copy2(os.path.join(pki, f), str(etc / "tls" / f))
    shutil.copytree(os.path.join(TOP_SRCDIR, "policies"), str(etc / "policies"))
    r = govgate("audit", "keygen", "--out", str(etc / "audit"))
    assert r.returncode == 0, r.stderr
    (etc / "subject.key").write_bytes(os.urandom(32))
    os.chmod(str(etc / "subject.key"), 0o600)
    shutil.copy2(geodb["zones"], str(etc / "zones.mmdb"))
    shutil.copy2(geodb["countries"], str(geo / "GeoLite2-Country.mmdb"))
    for old, new in zip(PROD_PREFIXES, (etc, log, geo)):
        text = text.replace(old, str(new) + "/")
    cfg = tmp_path / "govgate.yaml"
    cfg.write_text(text, encoding="utf-8")
    r = govgate("check", "-c", str(cfg))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in r.stderr, r.stderr
