"""A04: every write(2) to the audit file is cut to half its bytes by an
LD_PRELOAD shim. The writer must loop until each record is whole: the
gateway serves normally, every forwarded request has its decision and
complete records, and both verifiers accept the trail. (A sanitizer build
cannot run behind LD_PRELOAD, so the test needs a plain build.)"""
import os
import shutil
import subprocess

import pytest

import gwtest

pytestmark = pytest.mark.skipif(
    gwtest.SANITIZED or shutil.which("cc") is None,
    reason="needs a plain build and a C compiler for the shim")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t (*shim_real_write)(int, const void *, size_t);
static unsigned long shim_cut;

/* Half of every write to the file named by SHORTWRITE_PATH. */
ssize_t
write(int fd, const void *buf, size_t n)
{
	const char *want = getenv("SHORTWRITE_PATH");
	char link[64], target[4096];
	ssize_t len;

	if (shim_real_write == NULL)
		shim_real_write = (ssize_t (*)(int, const void *, size_t))
		    dlsym(RTLD_NEXT, "write");
	if (want != NULL && n > 1) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			if (strcmp(target, want) == 0) {
				n /= 2;
				__atomic_add_fetch(&shim_cut, 1, __ATOMIC_RELAXED);
			}
		}
	}
	return shim_real_write(fd, buf, n);
}

__attribute__((destructor)) static void
shim_report(void)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "shortwrite: %lu writes cut\n",
	    shim_cut);

	if (n > 0 && shim_real_write != NULL)
		shim_real_write(2, line, (size_t)n);
}
"""


def test_a04_short_writes_are_completed(make_gateway, backend, tmp_path):
    src = tmp_path / "shortwrite.c"
    so = tmp_path / "shortwrite.so"
    src.write_text(SHIM)
    r = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(src), "-ldl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    gw = make_gateway(start=False)
    gw.start(env={"LD_PRELOAD": str(so),
                  "SHORTWRITE_PATH": os.path.realpath(gw.audit_path)})
    for i in range(30):
        resp = gw.request(path="/api/echo")
        assert resp.status == 200, resp
    assert gw.request(path="/nowhere").status == 403
    gw.stop()
    err = gw.stderr_text()
    assert "shortwrite: 0 writes cut" not in err and "shortwrite:" in err, \
        "the shim cut no write: " + err[-2000:]
    trail = gwtest.Trail([gw.audit_path])
    assert not trail.torn
    assert not gwtest.unaudited(gwtest.backend_ids(backend), trail, complete=True)
    assert len(trail.events("decision")) == 31
    assert trail.seqs() == list(range(1, len(trail.records) + 1))
    gwtest.assert_verifies(gwtest.audit_pubkey(gw), [gw.audit_path], "--require-sealed")
