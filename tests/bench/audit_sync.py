#!/usr/bin/python3
"""audit_sync.py - what `audit.sync: fsync` costs next to `write`.

Runs `govgate serve` twice under the same closed-loop load (8 keep-alive
mTLS connections by default, 5 s each after a 1 s warm-up), once with
audit.sync fsync (each request is forwarded only after the group
fdatasync that covers its decision record) and once with write, and
prints one markdown table: requests per second and latency percentiles.
It measures; it never judges a number, and it is not part of make check.

The load comes from tests/bench/loadgen (built by make check; LOADGEN
names another) and the backend is nginx answering a small JSON body; when
either is missing, Python stand-ins from tests/integration/gwtest.py are
used, which are much slower, and the table says so. Use a build without
sanitizers (GOVGATE, or $top_builddir/src/govgate). The audit file goes
to --dir (default: a new folder under $TMPDIR), so the disk under test is
the one that folder lies on.

  audit_sync.py [--seconds S] [--connections N] [--workers N] [--dir D]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir", os.path.abspath(os.path.join(HERE, "..", "..")))
TOP_BUILDDIR = os.environ.get("top_builddir", TOP_SRCDIR)
os.environ.setdefault("GOVGATE", os.path.join(TOP_BUILDDIR, "src", "govgate"))
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "integration"))

import gwtest  # noqa: E402


class Nginx:
    """nginx on 127.0.0.1, one worker, answering every request with JSON."""

    def __init__(self, workdir):
        self.dir = workdir
        self.port = gwtest.free_port()
        self.proc = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                    "error_log %s/nginx.err warn;\nevents { worker_connections 1024; }\n"
                    "http {\n access_log off;\n keepalive_requests 1000000000;\n"
                    " client_body_temp_path %s;\n proxy_temp_path %s;\n"
                    " fastcgi_temp_path %s;\n uwsgi_temp_path %s;\n scgi_temp_path %s;\n"
                    " server {\n  listen 127.0.0.1:%d;\n"
                    "  location / { default_type application/json;"
                    " return 200 '{\"ok\":true}\\n'; }\n }\n}\n"
                    % ((self.dir,) * 7 + (self.port,)))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not gwtest.wait_until(lambda: self._up(), 10):
            raise RuntimeError("nginx did not start (see %s/nginx.err)" % self.dir)
        return self

    def _up(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def run_loadgen(loadgen, gw, conns, seconds):
    crt, key = gwtest.cert_files(gw.pki, "renshe")
    cmd = [loadgen, "-m", "max", "-c", str(conns), "-t", "2", "-d", str(seconds), "-w", "1",
           "--tls", "--cert", crt, "--key", key, "--ca", os.path.join(gw.pki, "root-ca.pem"),
           "--sni", "localhost", "--host", "localhost", "-u", "/api/echo", "-q", "127.0.0.1:%d" % gw.port]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"^RESULT (.*)$", r.stdout, re.M)
    if not m:
        raise RuntimeError("loadgen: %s%s" % (r.stdout, r.stderr))
    kv = dict(x.split("=", 1) for x in m.group(1).split())
    return {"rps": float(kv["rps"]), "p50_ms": float(kv["p50_us"]) / 1000,
            "p99_ms": float(kv["p99_us"]) / 1000, "requests": int(kv["requests"]),
            "errors": int(kv["errors"]) + int(kv["unexpected"])}


def run_python(gw, conns, seconds):
    """Closed loop from Python threads: the stand-in for loadgen."""
    lat, errors, lock = [], [0], threading.Lock()
    ctx = gw.context("renshe")
    req = gwtest.build_request("GET", "/api/echo")
    t_begin = time.monotonic() + 1.0
    t_end = t_begin + seconds

    def client():
        c = gwtest.Conn.open(gw.port, ctx)
        mine, bad = [], 0
        while True:
            t0 = time.monotonic()
            if t0 >= t_end:
                break
            c.send(req)
            r = c.read_response()
            t1 = time.monotonic()
            if t0 >= t_begin:
                if r.status == 200:
                    mine.append(t1 - t0)
                else:
                    bad += 1
        c.close()
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000) if lat else (lambda p: 0.0)
    return {"rps": len(lat) / seconds, "p50_ms": q(0.50), "p99_ms": q(0.99),
            "requests": len(lat), "errors": errors[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", help="where the audit files go")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="audit_sync.")
    pki = os.path.join(work, "pki")
    r = subprocess.run(["sh", os.path.join(TOP_SRCDIR, "certs", "mkpki.sh"), pki],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("mkpki.sh: " + r.stderr)
    loadgen = os.environ.get("LOADGEN", os.path.join(TOP_BUILDDIR, "tests", "bench", "loadgen"))
    if not os.access(loadgen, os.X_OK):
        loadgen = None
    backend = Nginx(work).start() if shutil.which("nginx") else gwtest.RecordingBackend().start()
    rows = []
    try:
        for mode in ("fsync", "write"):
            gw = gwtest.Gateway(os.path.join(work, mode), pki, backend=backend,
                                workers=args.workers, audit_opts={"sync": mode},
                                limits={"idle_timeout": "60s"})
            if args.dir:
                os.makedirs(args.dir, exist_ok=True)
                gw.audit_path = os.path.join(args.dir, "audit-%s.jsonl" % mode)
                if os.path.exists(gw.audit_path):
                    os.unlink(gw.audit_path)
            gw.start()
            try:
                res = (run_loadgen(loadgen, gw, args.connections, args.seconds) if loadgen
                       else run_python(gw, args.connections, args.seconds))
            finally:
                gw.stop(check=False)
            with open(gw.audit_path, "rb") as f:
                res["records"] = sum(1 for _ in f)
            rows.append((mode, res))
    finally:
        backend.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("govgate serve, %d keep-alive mTLS connections, %g s each, %d worker(s); load: %s; "
          "backend: %s" % (args.connections, args.seconds, args.workers,
                           "loadgen" if loadgen else "Python threads (slow stand-in)",
                           "nginx" if shutil.which("nginx") else "Python (slow stand-in)"))
    print()
    print("| audit.sync | requests/s | p50 ms | p99 ms | errors | audit records |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, r in rows:
        print("| %s | %.0f | %.2f | %.2f | %d | %d |" % (mode, r["rps"], r["p50_ms"], r["p99_ms"],
                                                      r["errors"], r["records"]))


if __name__ == "__main__":
    main()
