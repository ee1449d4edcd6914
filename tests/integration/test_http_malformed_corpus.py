"""Malformed and ambiguous requests (contract 4.2a) are refused with the
status the contract names, the connection is closed, and not one byte
reaches the backend -- whether the request arrives in one write or one
byte per TLS record, from an identity the policy would otherwise allow.

Each case is sent over mTLS as renshe, which the test policy allows for
every method on /api/**, so only the HTTP parser can stop it. Controls at
the end show that the well-formed twins are forwarded.
"""
import pytest

import gwtest

MAX_HEADER = 4096
MAX_BODY = 1024
RESPONSE_WAIT = 60  # seconds; only a failing case waits this long
H = b"Host: localhost\r\n"
END = b"\r\n"


def get(extra=b"", target=b"/api/echo", version=b"HTTP/1.1", host=H):
    return b"GET " + target + b" " + version + b"\r\n" + host + extra + END


def post(framing, body, target=b"/api/echo"):
    return b"POST " + target + b" HTTP/1.1\r\n" + H + framing + END + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"

# (id, request bytes, expected status)
CASES = [
    # Content-Length and Transfer-Encoding
    ("cl_and_te", post(b"Content-Length: 5\r\n" + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_and_cl", post(CHUNKED + b"Content-Length: 5\r\n", b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("two_cl_different", post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    ("two_cl_same", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400),
    ("cl_plus_sign", post(b"Content-Length: +5\r\n", b"hello"), 400),
    ("cl_list", post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    ("cl_negative", post(b"Content-Length: -5\r\n", b"hello"), 400),
    ("cl_hex", post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("cl_inner_space", post(b"Content-Length: 5 5\r\n", b"hello"), 400),
    ("cl_empty", post(b"Content-Length: \r\n", b"hello"), 400),
    ("cl_overflow", post(b"Content-Length: 184467440737095516160\r\n", b"hello"), 400),
    ("te_gzip", post(b"Transfer-Encoding: gzip\r\n", b"hello"), 400),
    ("te_gzip_chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_chunked_chunked", post(b"Transfer-Encoding: chunked, chunked\r\n",
                                b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_twice", post(CHUNKED + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_identity", post(b"Transfer-Encoding: identity\r\n", b"hello"), 400),
    ("te_chunked_not_last", post(b"Transfer-Encoding: chunked, gzip\r\n", b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_on_http10", b"POST /api/echo HTTP/1.0\r\n" + H + CHUNKED + END + b"5\r\nhello\r\n0\r\n\r\n", 400),
    # chunked framing
    ("chunk_size_0x", post(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_leading_space", post(CHUNKED, b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_plus", post(CHUNKED, b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_negative", post(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_empty", post(CHUNKED, b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_not_hex", post(CHUNKED, b"g\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_overflow", post(CHUNKED, b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_data_no_crlf", post(CHUNKED, b"5\r\nhelloX0\r\n\r\n"), 400),
    ("chunk_data_too_long", post(CHUNKED, b"3\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_data_bare_lf", post(CHUNKED, b"5\r\nhello\n0\r\n\r\n"), 400),
    ("chunk_size_bare_lf", post(CHUNKED, b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_last_bare_lf", post(CHUNKED, b"5\r\nhello\r\n0\n\r\n"), 400),
    ("chunk_trailer_bad_name", post(CHUNKED, b"5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n"), 400),
    # line endings
    ("bare_lf_request_line", b"GET /api/echo HTTP/1.1\n" + H + END, 400),
    ("bare_lf_header", b"GET /api/echo HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n", 400),
    ("bare_lf_end_of_head", b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\n\nX-A: b\r\n\r\n", 400),
    ("bare_cr_header", get(b"X-A: b\rX-B: c\r\n"), 400),
    ("bare_cr_request_line", b"GET /api/echo\rHTTP/1.1\r\n" + H + END, 400),
    # header syntax
    ("space_before_colon_host", get(host=b"Host : localhost\r\n"), 400),
    ("space_before_colon", get(b"X-Foo : bar\r\n"), 400),
    ("tab_before_colon", get(b"X-Foo\t: bar\r\n"), 400),
    ("obs_fold_space", get(b"X-Foo: a\r\n b\r\n"), 400),
    ("obs_fold_tab", get(b"X-Foo: a\r\n\tb\r\n"), 400),
    ("whitespace_first_header", b"GET /api/echo HTTP/1.1\r\n X-Foo: a\r\n" + H + END, 400),
    ("non_token_name_paren", get(b"X(Foo): bar\r\n"), 400),
    ("non_token_name_slash", get(b"X/Foo: bar\r\n"), 400),
    ("non_token_name_high_byte", get(b"X-F\xe9o: bar\r\n"), 400),
    ("empty_header_name", get(b": bar\r\n"), 400),
    ("header_without_colon", get(b"X-Foo bar\r\n"), 400),
    ("nul_in_value", get(b"X-Foo: a\x00b\r\n"), 400),
    ("nul_in_name", get(b"X-F\x00oo: b\r\n"), 400),
    ("cr_in_value", get(b"X-Foo: a\rb\r\n"), 400),
    # Host
    ("missing_host_http11", get(host=b""), 400),
    ("two_hosts_different", get(host=b"Host: localhost\r\nHost: evil.example\r\n"), 400),
    ("two_hosts_same", get(host=b"Host: localhost\r\nHost: localhost\r\n"), 400),
    ("host_with_space", get(host=b"Host: local host\r\n"), 400),
    ("host_with_slash", get(host=b"Host: localhost/x\r\n"), 400),
    ("host_with_userinfo", get(host=b"Host: user@localhost\r\n"), 400),
    ("host_bad_port", get(host=b"Host: localhost:99999\r\n"), 400),
    # request line and version
    ("http_2_0", get(version=b"HTTP/2.0"), 400),
    ("http_1_2", get(version=b"HTTP/1.2"), 400),
    ("http_0_9_style", b"GET /api/echo\r\n" + H + END, 400),
    ("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("lowercase_version", get(version=b"http/1.1"), 400),
    ("version_without_minor", get(version=b"HTTP/1"), 400),
    ("double_space_request_line", b"GET  /api/echo HTTP/1.1\r\n" + H + END, 400),
    ("trailing_space_request_line", b"GET /api/echo HTTP/1.1 \r\n" + H + END, 400),
    ("method_not_token", b"GE(T /api/echo HTTP/1.1\r\n" + H + END, 400),
    ("absolute_form_foreign", get(target=b"http://evil.example/api/echo"), 400),
    ("connect_method", b"CONNECT localhost:443 HTTP/1.1\r\n" + H + END, 400),
    ("asterisk_get", get(target=b"*"), 400),
    ("asterisk_options", b"OPTIONS * HTTP/1.1\r\n" + H + END, 400),
    # the target
    ("target_space", get(target=b"/api/a b"), 400),
    ("target_tab", get(target=b"/api/a\tb"), 400),
    ("target_control", get(target=b"/api/a\x01b"), 400),
    ("target_del", get(target=b"/api/a\x7fb"), 400),
    ("target_hash", get(target=b"/api/echo#frag"), 400),
    ("target_high_byte", get(target=b"/api/caf\xe9"), 400),
    ("target_raw_utf8", get(target=b"/api/\xe5\x8d\x97"), 400),
    ("target_backslash", get(target=b"/api\\echo"), 400),
    ("target_relative", get(target=b"api/echo"), 400),
    # sizes
    ("head_too_large", get(b"X-Big: " + b"a" * (MAX_HEADER + 1024) + b"\r\n"), 431),
    ("request_line_too_large", get(target=b"/api/" + b"a" * (MAX_HEADER + 1024)), 431),
    ("too_many_headers", get(b"".join(b"X-H%d: 1\r\n" % i for i in range(101))), 431),
    ("body_too_large", post(b"Content-Length: %d\r\n" % (MAX_BODY + 1), b"a" * (MAX_BODY + 1)), 413),
    ("body_too_large_expect_100", post(b"Content-Length: %d\r\nExpect: 100-continue\r\n"
                                       % (MAX_BODY * 4), b""), 413),
    ("chunked_body_too_large", post(CHUNKED, b"%x\r\n" % (MAX_BODY + 1) + b"a" * (MAX_BODY + 1)
                                    + b"\r\n0\r\n\r\n"), 413),
    ("chunked_body_too_large_in_pieces", post(CHUNKED, (b"200\r\n" + b"a" * 0x200 + b"\r\n") * 3
                                              + b"0\r\n\r\n"), 413),
]

# Well-formed twins of the cases above: these must reach the backend.
CONTROLS = [
    ("get", get(), "GET", b""),
    ("post_content_length", post(b"Content-Length: 5\r\n", b"hello"), "POST", b"hello"),
    ("post_chunked", post(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"), "POST", b"hello"),
    ("post_chunked_with_ext_and_trailer", post(CHUNKED, b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
     "POST", b"hello"),
    ("http10", b"GET /api/echo HTTP/1.0\r\n" + H + END, "GET", b""),
    ("body_at_limit", post(b"Content-Length: %d\r\n" % MAX_BODY, b"a" * MAX_BODY), "POST",
     b"a" * MAX_BODY),
]

MODES = ["single_write", "byte_by_byte"]

# Errors that show only after body data has begun. A gateway that streams
# bodies (bounded memory whatever the size) may already have passed the
# head and the first data upstream when they arrive byte by byte; then it
# must abort the upstream request so that the backend never receives a
# complete request. Errors in the head or in the first chunk-size line are
# caught before anything is sent upstream, in every mode.
LATE_BODY_ERRORS = {
    "chunk_data_no_crlf", "chunk_data_too_long", "chunk_data_bare_lf",
    "chunk_last_bare_lf", "chunk_trailer_bad_name", "chunked_body_too_large_in_pieces",
}


@pytest.fixture(scope="module")
def corpus_gw(tmp_path_factory, pki):
    b = gwtest.RecordingBackend().start()
    # The corpus judges the parser, not the clock. CI machines have
    # stalled for tens of seconds in this module (a head deadline and a
    # 3 s upstream read timeout fired there while the bytes were on their
    # way); every deadline here is long, and only a failing case waits.
    g = gwtest.Gateway(str(tmp_path_factory.mktemp("corpus")), pki, backend=b,
                       limits={"max_header_bytes": MAX_HEADER, "max_body_bytes": MAX_BODY,
                               "header_timeout": "120s",
                               "handshake_timeout": "120s"},
                       upstream_opts={"connect_timeout": "120s", "read_timeout": "120s"})
    g.start()
    yield g, b
    try:
        g.stop()
    finally:
        b.stop()


def send_case(gw, data, mode):
    c = gw.connect("renshe")
    c.send(data, bytewise=(mode == "byte_by_byte"))
    return c


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,data,status", CASES, ids=[c[0] for c in CASES])
def test_malformed_request_is_refused_and_not_forwarded(corpus_gw, name, data, status, mode):
    gw, backend = corpus_gw
    backend.clear()
    c = send_case(gw, data, mode)
    try:
        r = c.read_response(timeout=RESPONSE_WAIT)
        assert r.status == status, "%s: expected %d, got %r" % (name, status, r)
        if status == 413 and b"Expect: 100-continue" in data:
            assert b"100 Continue" not in r.raw
        c.expect_closed(timeout=5)
    finally:
        c.close()
    if mode == "byte_by_byte" and name in LATE_BODY_ERRORS:
        gwtest.time.sleep(0.1)
        assert backend.snapshot() == [], "a complete request reached the backend"
    else:
        assert backend.received_nothing(settle=0.1), "backend received %r (%d bytes)" % (
            backend.snapshot(), backend.bytes_received)
    assert gw.alive()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,data,method,body", CONTROLS, ids=[c[0] for c in CONTROLS])
def test_well_formed_twin_is_forwarded(corpus_gw, name, data, method, body, mode):
    gw, backend = corpus_gw
    backend.clear()
    c = send_case(gw, data, mode)
    try:
        r = c.read_response(timeout=RESPONSE_WAIT)
    finally:
        c.close()
    assert r.status == 200, r
    reqs = backend.wait_for(1)
    assert len(reqs) == 1
    assert reqs[0].method == method and reqs[0].path == "/api/echo"
    assert reqs[0].body == body


@pytest.mark.parametrize("mode", MODES)
def test_upgrade_h2c_is_never_passed_on(corpus_gw, mode):
    """Upgrade, HTTP2-Settings and the headers Connection names are
    removed (contract 4.2a): refused outright, or forwarded without them;
    never a 101."""
    gw, backend = corpus_gw
    backend.clear()
    data = get(b"Connection: Upgrade, HTTP2-Settings, X-Hop\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAAQAAP__\r\nX-Hop: 1\r\nX-Keep: 2\r\n")
    c = send_case(gw, data, mode)
    try:
        r = c.read_response(timeout=RESPONSE_WAIT)
    finally:
        c.close()
    assert r.status != 101, r
    reqs = backend.snapshot()
    if r.status == 400:
        assert backend.received_nothing()
        return
    assert r.status == 200, r
    assert len(reqs) == 1
    names = {n.lower() for n, _ in reqs[0].headers}
    assert "upgrade" not in names and "http2-settings" not in names
    assert "x-hop" not in names, "a header named in Connection was forwarded"
    assert reqs[0].header("X-Keep") == "2"
    assert (reqs[0].header("Connection") or "").lower() in ("", "keep-alive", "close")


@pytest.mark.parametrize("mode", MODES)
def test_connection_cannot_strip_identity_headers(corpus_gw, mode):
    """Identity headers are added after hop-by-hop removal, so a client's
    Connection header naming them cannot remove them (contract 4.2a)."""
    gw, backend = corpus_gw
    backend.clear()
    data = get(b"Connection: X-Govgate-Department, X-Govgate-Client-Subject, "
               b"Forwarded, X-Govgate-Request-Id\r\n")
    c = send_case(gw, data, mode)
    try:
        r = c.read_response(timeout=RESPONSE_WAIT)
    finally:
        c.close()
    if r.status == 400:
        assert backend.received_nothing()
        return
    assert r.status == 200, r
    req = backend.wait_for(1)[0]
    assert req.header_all("X-Govgate-Department") == ["renshe"]
    assert req.header("X-Govgate-Client-Subject")
    assert req.header("X-Govgate-Request-Id")
    assert req.header("Forwarded")
