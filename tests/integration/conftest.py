"""Shared fixtures for govgate's integration tests.

Every test drives the real `govgate` binary. The session builds the demo
PKI once with the project's own certs/mkpki.sh and the GeoIP test
databases with contrib/mkzones and contrib/mkcountries.

When GOVGATE_TAP names a file, each test's outcome is appended to it as a
TAP line, so `make check` (through run.sh) counts individual cases.
"""
import os
import socket
import subprocess
import textwrap

import pytest

TOP_SRCDIR = os.environ.get(
    "top_srcdir", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOP_BUILDDIR = os.environ.get("top_builddir", TOP_SRCDIR)
GOVGATE = os.environ.get("GOVGATE", os.path.join(TOP_BUILDDIR, "src", "govgate"))

_tap_count = 0


def pytest_runtest_logreport(report):
    """Write one TAP line per test (its call phase, or a setup failure)."""
    global _tap_count
    path = os.environ.get("GOVGATE_TAP")
    if not path:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _tap_count += 1
        name = report.nodeid.replace("#", "")
        if report.passed:
            line = "ok %d - %s" % (_tap_count, name)
        elif report.skipped:
            line = "ok %d - %s # SKIP" % (_tap_count, name)
        else:
            line = "not ok %d - %s" % (_tap_count, name)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def run(args, **kw):
    """Run a command; returns CompletedProcess with text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(args, **kw)


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def govgate(*args, **kw):
    return run([GOVGATE] + list(args), **kw)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The demo PKI made by certs/mkpki.sh, plus the special test certs."""
    out = tmp_path_factory.mktemp("pki")
    r = run(["sh", os.path.join(TOP_SRCDIR, "certs", "mkpki.sh"), str(out)])
    assert r.returncode == 0, r.stderr
    special = os.path.join(TOP_SRCDIR, "tests", "unit", "mkcerts_special.py")
    if os.path.exists(special):
        r = run(["/usr/bin/python3", special, str(out)])
        assert r.returncode == 0, r.stderr
    return str(out)


@pytest.fixture(scope="session")
def geodb(tmp_path_factory):
    """Zone and country databases from the policy tests' CIDR lists."""
    out = tmp_path_factory.mktemp("geo")
    zones = os.path.join(str(out), "zones.mmdb")
    countries = os.path.join(str(out), "countries.mmdb")
    r = run(["perl", os.path.join(TOP_SRCDIR, "contrib", "mkzones"), zones,
             os.path.join(TOP_SRCDIR, "tests", "policy", "zones.txt")])
    assert r.returncode == 0, r.stderr
    r = run(["perl", os.path.join(TOP_SRCDIR, "contrib", "mkcountries"), countries,
             os.path.join(TOP_SRCDIR, "tests", "policy", "countries.txt")])
    assert r.returncode == 0, r.stderr
    return {"zones": zones, "countries": countries}


@pytest.fixture
def gwdir(tmp_path, pki, geodb):
    """A folder with an audit key and a config writer for the example policy."""
    key = tmp_path / "audit.key"
    r = run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)])
    assert r.returncode == 0, r.stderr
    os.chmod(str(key), 0o600)

    class GW:
        dir = str(tmp_path)
        pki_dir = pki

        port = free_port()

        def config(self, policy=None, extra=""):
            """Write govgate.yaml; returns its path."""
            text = textwrap.dedent("""\
                name: test-gw
                policy: {policy}
                listeners:
                  - name: egov
                    address: "127.0.0.1:{port}"
                    tls:
                      certificate: {pki}/gateway.crt
                      key: {pki}/gateway.key
                      client_ca: {pki}/departments-ca.pem
                      crl: {pki}/departments.crl
                upstreams:
                  psb-api: {{ servers: ["127.0.0.1:1"] }}
                  hrss-api: {{ servers: ["127.0.0.1:1"] }}
                  civil-api: {{ servers: ["127.0.0.1:1"] }}
                  health-api: {{ servers: ["127.0.0.1:1"] }}
                  market-api: {{ servers: ["127.0.0.1:1"] }}
                  estate-api: {{ servers: ["127.0.0.1:1"] }}
                  bigdata-api: {{ servers: ["127.0.0.1:1"] }}
                audit:
                  path: {dir}/audit.jsonl
                  signing_key: {dir}/audit.key
                geoip:
                  country_db: {countries}
                  zone_db: {zones}
                timezone: Asia/Shanghai
                """).format(port=self.port, policy=policy or os.path.join(TOP_SRCDIR, "policies"),
                            pki=pki, dir=str(tmp_path), countries=geodb["countries"],
                            zones=geodb["zones"]) + extra
            path = tmp_path / "govgate.yaml"
            path.write_text(text, encoding="utf-8")
            return str(path)

    return GW()


# --- govgate serve: recording backend and gateways (see gwtest.py) --------

import gwtest  # noqa: E402


def pytest_configure(config):
    """Also count a failed teardown (a gateway that crashed, left a
    sanitizer report or did not exit 0 on SIGTERM) as a TAP failure."""
    config.pluginmanager.register(_TeardownTap(), "govgate-teardown-tap")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the last lines each gateway it ran logged (its
    stderr: connection closes, handshake failures, audit errors), since
    the folders holding them are gone once the run ends."""
    outcome = yield
    report = outcome.get_result()
    if report.passed or report.skipped:
        return
    for g in list(gwtest.STARTED):
        if not g.alive() and report.when != "teardown":
            continue
        lines = g.stderr_text().splitlines()[-GATEWAY_LOG_TAIL:]
        if lines:
            report.sections.append(("govgate on port %d (last %d lines of stderr)"
                                    % (g.port, len(lines)), "\n".join(lines)))


GATEWAY_LOG_TAIL = 40


class _TeardownTap:
    def pytest_runtest_logreport(self, report):
        global _tap_count
        path = os.environ.get("GOVGATE_TAP")
        if not path or report.when != "teardown" or not report.failed:
            return
        _tap_count += 1
        with open(path, "a", encoding="utf-8") as f:
            f.write("not ok %d - %s (teardown)\n"
                    % (_tap_count, report.nodeid.replace("#", "")))


@pytest.fixture
def backend():
    """A recording backend on 127.0.0.1 (mode normal), stopped afterwards."""
    b = gwtest.RecordingBackend().start()
    yield b
    b.stop()


@pytest.fixture
def make_gateway(tmp_path, pki, backend):
    """Factory: make_gateway(**Gateway options) -> a started gateway whose
    echo-api upstream is `backend`. Pass start=False to start it yourself.
    At teardown every gateway still running gets SIGTERM and must exit 0
    without a sanitizer report."""
    made = []

    def make(start=True, **kw):
        kw.setdefault("backend", backend)
        g = gwtest.Gateway(str(tmp_path / ("gw%d" % len(made))), pki, **kw)
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
