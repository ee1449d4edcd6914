"""SIGHUP reloads the zone database: a new zones.mmdb, built with
contrib/mkzones over the old file (it renames atomically), changes the
zone of a source at once; a broken file put in its place on reload is
refused with an error naming it, and the zones in force stay as they
were until a good file comes back.
"""
import os
import shutil
import subprocess

import pytest

import gwtest
from origintest import (CN_RENSHE, build_geodb, get, mkdb, origin_gateway,  # noqa: F401
                        origin_geodb, origin_policy)

MOVED = "127.34.0.5"   # in no zone at first, then in renshe-net
NEW_ZONES = """\
127.34.0.0/16       renshe-net
127.31.0.0/16       lab-net
"""


def reloaded(gw, n, ok=True, timeout=10):
    """Send SIGHUP and wait for reload n's outcome line in the log. The
    first waits for "listening on": the port accepts before the signal
    handlers are in place (a startup race this test is not about)."""
    assert gw.wait_log("listening on", timeout=timeout), gw.stderr_text()[-3000:]
    gw.reload()
    want = ("reload %d: policy revision" % n) if ok else ("reload %d: failed" % n)
    lines = gw.wait_log(want, timeout=timeout)
    assert lines, "no %r in the log:\n%s" % (want, gw.stderr_text()[-3000:])
    return lines


def zone_of(gw, source, cert="renshe"):
    """(status, recorded zone) of one request from source."""
    r = get(gw, cert=cert, source=source)
    rid = r.header("X-Govgate-Request-Id")
    return r.status, gw.decision(rid)["client"]["zone"]


def replace_with(path, data):
    """Put data at path by rename, as an operator's tools should."""
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@pytest.fixture
def geo(tmp_path):
    return build_geodb(tmp_path / "geo")


@pytest.fixture
def gw(origin_gateway, geo):
    return origin_gateway(geodb=geo, policy=origin_policy(countries=("CN", "unknown")))


def test_new_zone_database_takes_effect_on_sighup(gw, geo, backend):
    assert zone_of(gw, MOVED) == (403, None)
    assert zone_of(gw, CN_RENSHE) == (200, "renshe-net")
    mkdb("mkzones", geo["zones"], NEW_ZONES)
    # Nothing changes before the signal: the old file stays mapped.
    assert zone_of(gw, MOVED) == (403, None)
    reloaded(gw, 1)
    assert zone_of(gw, MOVED) == (200, "renshe-net")
    assert zone_of(gw, CN_RENSHE) == (403, None)
    fwd = [q.header("Forwarded") for q in backend.snapshot()]
    assert fwd == ["for=%s;proto=https" % CN_RENSHE, "for=%s;proto=https" % MOVED], fwd


def _garbage(geo):
    return b"this is not a MaxMind database\n" * 40


def _truncated(geo):
    with open(geo["zones"], "rb") as f:
        data = f.read()
    return data[:len(data) // 3]


def _empty(geo):
    return b""


def _country_db(geo):
    with open(geo["countries"], "rb") as f:
        return f.read()


@pytest.mark.parametrize("broken", [_garbage, _truncated, _empty, _country_db],
                         ids=["garbage", "truncated", "empty", "country-db-as-zone-db"])
def test_broken_zone_database_on_reload_keeps_the_old_one(gw, geo, backend, broken):
    mkdb("mkzones", geo["zones"], NEW_ZONES)
    reloaded(gw, 1)
    assert zone_of(gw, MOVED) == (200, "renshe-net")
    good = geo["zones"] + ".good"
    shutil.copyfile(geo["zones"], good)

    replace_with(geo["zones"], broken(geo))
    reloaded(gw, 2, ok=False)
    errors = gw.log_lines("error", "reload: ", geo["zones"])
    assert errors, "the reload error does not name %s:\n%s" % (
        geo["zones"], gw.stderr_text()[-3000:])
    # The zones in force are those of reload 1, for new connections too.
    assert zone_of(gw, MOVED) == (200, "renshe-net")
    assert zone_of(gw, CN_RENSHE) == (403, None)
    # govgate check says the same about the file.
    r = subprocess.run([gwtest.GOVGATE, "check", "-c", gw.config_path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert geo["zones"] in r.stdout + r.stderr, r

    os.replace(good, geo["zones"])
    reloaded(gw, 3)
    assert zone_of(gw, MOVED) == (200, "renshe-net")


def test_missing_zone_database_on_reload_keeps_the_old_one(gw, geo, backend):
    os.unlink(geo["zones"])
    reloaded(gw, 1, ok=False)
    assert gw.log_lines("error", "reload: ", geo["zones"]), gw.stderr_text()[-3000:]
    assert zone_of(gw, CN_RENSHE) == (200, "renshe-net")
    assert zone_of(gw, MOVED) == (403, None)
