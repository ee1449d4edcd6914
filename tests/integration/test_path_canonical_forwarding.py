"""The policy judges one canonical path and the backend receives exactly
that path, plus `?` and the original query (contract 4.2): never another
spelling of it. Traversal, encoded separators, `..;`, double encoding,
overlong UTF-8 and the like are 400 and reach nothing.

For every allowed row the path the backend received must equal the row's
expected canonical path, the path `govgate explain --json` reports for the
same request, and (when the audit trail is written) the path in the
request's decision record.
"""
import json
import os

import pytest

import gwtest

# (id, request target, canonical path, query or None)
ALLOWED = [
    ("plain", "/api/echo", "/api/echo", None),
    ("trailing_slash_kept", "/api/a/b/", "/api/a/b/", None),
    ("double_slash", "/api//a", "/api/a", None),
    ("leading_double_slash", "//api/a", "/api/a", None),
    ("runs_of_slashes", "/api///a///b///", "/api/a/b/", None),
    ("dot_segment", "/api/./a", "/api/a", None),
    ("trailing_dot", "/api/a/.", "/api/a/", None),
    ("dotdot", "/api/a/../b", "/api/b", None),
    ("two_dotdots", "/api/a/b/../../c", "/api/c", None),
    ("dotdot_into_api", "/x/../api/a", "/api/a", None),
    ("dotdot_across_slashes", "/api/a//..//b", "/api/b", None),
    ("encoded_dot", "/api/a/%2e/b", "/api/a/b", None),
    ("encoded_dotdot", "/api/a/%2e%2e/b", "/api/b", None),
    ("half_encoded_dotdot", "/api/a/.%2E/b", "/api/b", None),
    ("unreserved_decoded", "/api/%61bc", "/api/abc", None),
    ("tilde_decoded", "/api/%7euser", "/api/~user", None),
    ("unreserved_mix", "/api/%41%62%7E%2D%5F%30", "/api/Ab~-_0", None),
    ("encoded_dot_in_name", "/api/a%2eb", "/api/a.b", None),
    ("encoded_first_segment", "/%61pi/x", "/api/x", None),
    ("semicolon_escape_upper", "/api/a%3b", "/api/a%3B", None),
    ("space_escape_kept", "/api/a%20b", "/api/a%20b", None),
    ("question_escape_upper", "/api/%3f", "/api/%3F", None),
    ("hash_escape_kept", "/api/%23x", "/api/%23x", None),
    ("cjk_hex_upper", "/api/%e5%8d%97%e5%ae%81", "/api/%E5%8D%97%E5%AE%81", None),
    ("two_byte_utf8", "/api/caf%C3%a9", "/api/caf%C3%A9", None),
    ("four_byte_utf8", "/api/%F0%9F%98%80", "/api/%F0%9F%98%80", None),
    ("sub_delims_raw", "/api/a!$&'()*+,=b", "/api/a!$&'()*+,=b", None),
    ("colon_at_raw", "/api/u:x@y", "/api/u:x@y", None),
    ("dot_prefix_name", "/api/.hidden", "/api/.hidden", None),
    ("three_dots_name", "/api/a/.../b", "/api/a/.../b", None),
    ("dotdot_prefix_name", "/api/a/..a/b", "/api/a/..a/b", None),
    ("bare_resource_root", "/api", "/api", None),
    ("query_unchanged", "/api/a?x=1&y=%2F..%2f", "/api/a", "x=1&y=%2F..%2f"),
    ("query_not_normalised", "/api/a/../b?q=a/../b", "/api/b", "q=a/../b"),
    ("query_lower_hex_kept", "/api/%7ex?q=%e5%8d%97", "/api/~x", "q=%e5%8d%97"),
    ("query_with_question_marks", "/api/a?b?c=d", "/api/a", "b?c=d"),
]

# (id, request target): 400 bad_request, nothing forwarded.
BAD = [
    ("encoded_slash_traversal", "/api/..%2f..%2fsecret"),
    ("encoded_slash_upper", "/api/a%2Fb"),
    ("encoded_slash_lower", "/api/a%2fb"),
    ("encoded_backslash", "/api/a%5cb"),
    ("encoded_backslash_traversal", "/api/..%5csecret"),
    ("double_encoded_dotdot", "/api/%252e%252e/secret"),
    ("encoded_percent", "/api/100%25"),
    ("dotdot_semicolon", "/api/..;/secret"),
    ("path_parameter", "/api/a;jsessionid=1"),
    ("overlong_dots", "/api/%C0%AE%C0%AE/secret"),
    ("overlong_three_byte_dot", "/api/%E0%80%AE"),
    ("overlong_slash", "/api/a%E0%80%AFb"),
    ("overlong_c1", "/api/%C1%BF"),
    ("utf8_surrogate", "/api/%ED%A0%80"),
    ("utf8_above_max", "/api/%F4%90%80%80"),
    ("stray_continuation", "/api/%80"),
    ("truncated_utf8", "/api/%E5%8D"),
    ("encoded_nul", "/api/a%00b"),
    ("encoded_crlf", "/api/a%0d%0aX-Evil:1"),
    ("encoded_del", "/api/%7F"),
    ("lone_percent", "/api/%"),
    ("bad_hex", "/api/%zz"),
    ("one_hex_digit", "/api/%4"),
    ("dotdot_at_root", "/.."),
    ("dotdot_above_root", "/../api/x"),
    ("deeper_above_root", "/api/../../x"),
    ("encoded_dotdot_above_root", "/%2E%2E/api/x"),
    ("raw_backslash", "/api/a\\b"),
    ("raw_backslash_traversal", "/api\\..\\secret"),
    ("raw_double_quote", "/api/a\"b"),
]

# (id, request target): the canonical path is outside /api/, so the policy
# denies it (secret is sharing: none) and nothing is forwarded.
DENIED = [
    ("dotdot_out_of_api", "/api/../secret/x"),
    ("encoded_dotdot_out_of_api", "/api/%2e%2e/secret/x"),
    ("dot_dotdot_out_of_api", "/api/./../secret/x"),
    ("double_slash_secret", "//secret/x"),
    ("encoded_secret_segment", "/%73ecret/x"),
]


@pytest.fixture(scope="module")
def pathgw(tmp_path_factory, pki):
    b = gwtest.RecordingBackend().start()
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("paths")), pki, backend=b)
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def explain_path(gw, target):
    r = gwtest.subprocess.run(
        [gwtest.GOVGATE, "explain", "-c", gw.config_path, "--cert",
         os.path.join(gw.pki, "renshe.crt"), "--json", "GET", target],
        capture_output=True, text=True, timeout=30)
    assert r.stdout, r.stderr
    return json.loads(r.stdout)


def decision_record(gw, request_id):
    """The audit decision record of request_id, waiting briefly for it."""
    def find():
        for rec in gw.audit_records():
            if rec.get("event") == "decision" and rec.get("request_id") == request_id:
                return rec
        return None
    return gwtest.wait_until(find, 3)


def send(gw, target, host="localhost"):
    c = gw.connect("renshe")
    try:
        c.send(gwtest.build_request("GET", target, host=host))
        return c.read_response(timeout=8), c
    except BaseException:
        c.close()
        raise


@pytest.mark.parametrize("name,target,canonical,query", ALLOWED, ids=[r[0] for r in ALLOWED])
def test_backend_receives_the_path_the_policy_judged(pathgw, name, target, canonical, query):
    gw, backend = pathgw
    backend.clear()
    r, c = send(gw, target)
    c.close()
    assert r.status == 200, r
    reqs = backend.wait_for(1)
    assert len(reqs) == 1
    want = canonical + ("?" + query if query is not None else "")
    assert reqs[0].target == want, "sent %r, backend got %r, expected %r" % (
        target, reqs[0].target, want)
    d = explain_path(gw, target)
    assert d["decision"] == "allow"
    assert d["path"] == canonical == reqs[0].path


def test_own_absolute_form_is_rewritten_to_origin_form(pathgw):
    gw, backend = pathgw
    backend.clear()
    host = "localhost:%d" % gw.port
    r, c = send(gw, "https://%s/api/x/./y?z=1" % host, host=host)
    c.close()
    assert r.status == 200, r
    reqs = backend.wait_for(1)
    assert [q.target for q in reqs] == ["/api/x/y?z=1"]


@pytest.mark.parametrize("name,target", BAD, ids=[r[0] for r in BAD])
def test_unsafe_path_is_bad_request_and_not_forwarded(pathgw, name, target):
    gw, backend = pathgw
    backend.clear()
    r, c = send(gw, target)
    try:
        assert r.status == 400, r
        assert r.json()["reason"] == "bad_request"
        c.expect_closed(timeout=5)
    finally:
        c.close()
    assert backend.received_nothing(settle=0.1), backend.snapshot()
    assert explain_path(gw, target)["reason"] == "bad_request"


@pytest.mark.parametrize("name,target", DENIED, ids=[r[0] for r in DENIED])
def test_canonical_path_outside_the_grant_is_denied(pathgw, name, target):
    gw, backend = pathgw
    backend.clear()
    r, c = send(gw, target)
    c.close()
    assert r.status == 403, r
    body = r.json()
    assert body["error"] == "forbidden" and body["reason"] == "not_shared"
    assert body["request_id"] == r.header("X-Govgate-Request-Id")
    assert backend.received_nothing(settle=0.1), backend.snapshot()
    d = explain_path(gw, target)
    assert d["reason"] == "not_shared" and d["path"].startswith("/secret/")


def test_decision_records_carry_the_canonical_path(pathgw):
    """The audit trail records the path the policy judged (no subject_key
    here, so as is), for allowed and denied requests alike."""
    gw, backend = pathgw
    for target, canonical, status in [("/api/a/./b/../c?q=1", "/api/a/c", 200),
                                      ("//api//%7ex", "/api/~x", 200),
                                      ("/api/%2e%2e/secret/x", "/secret/x", 403)]:
        r, c = send(gw, target)
        c.close()
        assert r.status == status, r
        rec = decision_record(gw, r.header("X-Govgate-Request-Id"))
        assert rec is not None, "no decision record for %s" % target
        assert rec["request"]["path"] == canonical
        assert "q=1" not in gwtest.json.dumps(rec), "the query is kept only as a hash"
