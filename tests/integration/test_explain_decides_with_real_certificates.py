"""govgate explain decides a request from a real PEM certificate exactly as
serve would, and shows the steps, the deciding grant and the candidates."""
import json
import os

from conftest import govgate

AT = "2026-11-25T10:00:00+08:00"
PERSON = "/psb/v1/persons/450102199001011234"


def explain(gw, *args):
    cfg = gw.config()
    return govgate("explain", "-c", cfg, "--at", AT, "--json", *args)


def test_pension_office_reads_a_person_under_its_grant(gwdir):
    r = explain(gwdir, "--cert", os.path.join(gwdir.pki_dir, "renshe.crt"),
                "--from", "10.30.4.21", "-H", "X-Purpose: pension-eligibility",
                "GET", PERSON)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["decision"] == "allow"
    assert d["reason"] == "grant"
    assert d["grant"] == "NNZW-2026-0113"
    assert d["department"] == "renshe"
    assert d["resource"] == "household-registry"
    assert d["status"] == 200
    assert [s["step"] for s in d["steps"]][:3] == ["parse", "client_cert", "department"]
    assert any(c["grant"] == "NNZW-2026-0113" and c["reason"] == "grant"
               for c in d["candidates"])


def test_missing_purpose_is_denied_with_candidates(gwdir):
    r = explain(gwdir, "--cert", os.path.join(gwdir.pki_dir, "renshe.crt"),
                "--from", "10.30.4.21", "GET", PERSON)
    assert r.returncode == 1, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["decision"] == "deny"
    assert d["reason"] == "purpose_required"
    assert d["status"] == 403
    assert d["candidates"], "a denial lists the grants it tried"


def test_no_certificate_is_no_client_cert(gwdir):
    r = explain(gwdir, "GET", PERSON)
    assert r.returncode == 1
    assert json.loads(r.stdout)["reason"] == "no_client_cert"


def test_traversal_is_bad_request(gwdir):
    r = explain(gwdir, "--cert", os.path.join(gwdir.pki_dir, "renshe.crt"),
                "GET", "/psb/v1/persons/..%2f..%2fadmin")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["reason"] == "bad_request" and d["status"] == 400


def test_text_output_names_each_step(gwdir):
    cfg = gwdir.config()
    r = govgate("explain", "-c", cfg, "--at", AT, "--cert",
                os.path.join(gwdir.pki_dir, "renshe.crt"), "--from", "10.30.4.21",
                "-H", "X-Purpose: pension-eligibility", "GET", PERSON)
    assert r.returncode == 0, r.stderr
    for word in ("parse", "client_cert", "department", "resource", "grant",
                 "NNZW-2026-0113"):
        assert word in r.stdout


def test_usage_errors_exit_2(gwdir):
    r = govgate("explain", "-c", gwdir.config(), "GET")
    assert r.returncode == 2
    r = govgate("explain", "--help")
    assert r.returncode == 0 and "usage: govgate explain" in r.stdout
