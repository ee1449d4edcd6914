"""govgate policy diff re-decides recorded requests under a candidate policy
and lists exactly the decisions that would change."""
import json
import os
import shutil

from conftest import TOP_SRCDIR, govgate


def record(seq, department, path, purpose, decision, reason, grant):
    """A decision record with the fields policy diff reads (contract 6)."""
    rec = {
        "seq": seq, "ts": "2026-11-25T02:00:00.000000Z", "gateway": "gw",
        "event": "decision", "request_id": "req-%d" % seq,
        "policy": {"revision": "x", "sha256": "0" * 64},
        "client": {"ip": "10.30.4.21", "port": 40000, "country": "CN",
                   "zone": "renshe-net"},
        "subject": {"department": department, "dn": "CN=app", "serial": "1A",
                    "issuer": "CN=ca", "sha256": "0" * 64},
        "request": {"method": "GET", "host": "gw", "path": path,
                    "query_sha256": None, "purpose": purpose, "case": None,
                    "operator": None},
        "resource": None, "decision": decision, "reason": reason,
        "grant": grant, "shadow": None, "prev": "0" * 64, "hash": "0" * 64,
    }
    return json.dumps(rec, ensure_ascii=False)


def write_log(tmp_path):
    lines = [
        record(1, "renshe", "/psb/v1/persons/450102199001011234",
               "pension-eligibility", "allow", "grant", "NNZW-2026-0113"),
        # A pseudonymised path: the subject segment is recorded as {id}.
        record(2, "renshe", "/psb/v1/persons/{id}", "pension-eligibility",
               "allow", "grant", "NNZW-2026-0113"),
        record(3, "renshe", "/psb/v1/persons/1", None, "deny",
               "purpose_required", "NNZW-2026-0113"),
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_same_policy_changes_nothing(gwdir, tmp_path):
    log = write_log(tmp_path)
    r = govgate("policy", "diff", "-c", gwdir.config(), "--against",
                os.path.join(TOP_SRCDIR, "policies"), log)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 decisions re-decided, 0 would change" in r.stdout


def test_an_earlier_expiry_is_reported_for_each_affected_record(gwdir, tmp_path):
    log = write_log(tmp_path)
    cand = tmp_path / "candidate"
    shutil.copytree(os.path.join(TOP_SRCDIR, "policies"), str(cand))
    grants = cand / "50-grants.yaml"
    text = grants.read_text(encoding="utf-8")
    marker = "  - id: NNZW-2026-0113\n"
    assert marker in text
    head, tail = text.split(marker, 1)
    tail = tail.replace("expires: 2027-12-31", "expires: 2026-11-01", 1)
    grants.write_text(head + marker + tail, encoding="utf-8")
    r = govgate("policy", "diff", "-c", gwdir.config(), "--against", str(cand), log)
    assert r.returncode == 1, r.stdout + r.stderr
    changed = [l for l in r.stdout.splitlines() if ": req-" in l]
    assert len(changed) == 2, r.stdout
    # The other grant for the pair (NNZW-2026-0114) now gets furthest.
    assert all("allow grant NNZW-2026-0113 -> deny " in l
               for l in changed), r.stdout
    assert changed[0].startswith(log + ":1:") and changed[1].startswith(log + ":2:")


def test_unreadable_record_is_trouble(gwdir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq":1,"event":"decision"\n', encoding="utf-8")
    r = govgate("policy", "diff", "-c", gwdir.config(), "--against",
                os.path.join(TOP_SRCDIR, "policies"), str(bad))
    assert r.returncode == 2
    assert "bad.jsonl:1: not a readable audit record" in r.stdout
