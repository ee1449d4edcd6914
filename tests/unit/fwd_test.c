/* fwd_test.c - forwarded heads and the gateway's own answers (contract 5). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "fwd.h"
#include "http.h"
#include "tap.h"

#define RID "0123456789abcdef0123456789abcdef"
#define FWD4 "Forwarded: for=10.30.4.21;proto=https\r\n"

/* The identity rows use: a department's grant, or an open resource. */
static const struct fwd_identity id_grant = {
	.request_id = RID,
	.department = "renshe",
	.subject_dn = "CN=pension-app,O=Nanning HRSS",
	.serial = "3F8A21",
	.resource = "household-registry",
	.grant = "NNZW-2026-0113",
	.purpose = "pension-eligibility",
	.purpose_len = 19,
	.client_ip = "10.30.4.21",
};

#define IDS_GRANT                                                              \
	"X-Govgate-Request-Id: " RID "\r\n"                                    \
	"X-Govgate-Department: renshe\r\n"                                     \
	"X-Govgate-Client-Subject: CN=pension-app,O=Nanning HRSS\r\n"          \
	"X-Govgate-Client-Serial: 3F8A21\r\n"                                  \
	"X-Govgate-Resource: household-registry\r\n"                           \
	"X-Govgate-Grant: NNZW-2026-0113\r\n"                                  \
	"X-Govgate-Purpose: pension-eligibility\r\n" FWD4

static const struct fwd_identity id_open = {
	.request_id = RID,
	.resource = "open-data",
	.client_ip = "2001:db8::7",
	.client_v6 = 1,
};

#define IDS_OPEN                                                               \
	"X-Govgate-Request-Id: " RID "\r\n"                                    \
	"X-Govgate-Resource: open-data\r\n"                                    \
	"Forwarded: for=\"[2001:db8::7]\";proto=https\r\n"

static const struct fwd_identity id_case = {
	.request_id = RID,
	.department = "gongan",
	.subject_dn = "CN=x\r\nX-Evil: 1",
	.serial = "01",
	.resource = "r",
	.case_id = "AJ-2026-77",
	.case_len = 10,
	.client_ip = "10.10.0.5",
};

static const struct fwd_identity id_masked = {
	.request_id = RID,
	.department = "minzheng",
	.resource = "household-registry",
	.client_ip = "10.40.0.9",
	.masked = 1,
};

/*
 * Request rows: the client's request as sent, the canonical path the
 * policy judged (NULL: the parsed path as is), and the exact head the
 * backend receives.
 */
static const struct {
	const char *name;
	const char *in;
	const char *norm;
	const struct fwd_identity *id;
	const char *want;
} reqs[] = {
	{ "simple GET with the identity headers",
	    "GET /psb/v1/persons/1 HTTP/1.1\r\nHost: gw.test\r\n"
	    "X-Purpose: pension-eligibility\r\n\r\n",
	    NULL, &id_grant,
	    "GET /psb/v1/persons/1 HTTP/1.1\r\nHost: gw.test\r\n"
	    "X-Purpose: pension-eligibility\r\n" IDS_GRANT "\r\n" },
	{ "canonical path replaces the spelling, query kept as sent",
	    "GET /psb//v1/./x/../persons/%31?a=%2F&b=..;c HTTP/1.1\r\n"
	    "Host: gw.test\r\n\r\n",
	    "/psb/v1/persons/1", &id_open,
	    "GET /psb/v1/persons/1?a=%2F&b=..;c HTTP/1.1\r\nHost: "
	    "gw.test\r\n" IDS_OPEN "\r\n" },
	{ "empty query keeps its question mark",
	    "GET /a? HTTP/1.1\r\nHost: gw.test\r\n\r\n", NULL, &id_open,
	    "GET /a? HTTP/1.1\r\nHost: gw.test\r\n" IDS_OPEN "\r\n" },
	{ "hop-by-hop headers removed",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nConnection: keep-alive, "
	    "Foo\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X\r\n"
	    "Proxy-Connection: keep-alive\r\nFoo: bar\r\nAccept: */*\r\n\r\n",
	    NULL, &id_open,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nAccept: */*\r\n" IDS_OPEN
	    "\r\n" },
	{ "Upgrade and HTTP2-Settings removed",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\n"
	    "HTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: Upgrade, "
	    "HTTP2-Settings\r\n\r\n",
	    NULL, &id_open,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n" IDS_OPEN "\r\n" },
	{ "Connection naming an identity header cannot strip it",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nConnection: "
	    "X-Govgate-Department, X-Govgate-Request-Id, Forwarded\r\n"
	    "X-Purpose: pension-eligibility\r\n\r\n",
	    NULL, &id_grant,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n"
	    "X-Purpose: pension-eligibility\r\n" IDS_GRANT "\r\n" },
	{ "client X-Govgate-* stripped in any case",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nX-Govgate-Department: "
	    "gongan\r\nx-govgate-grant: FAKE\r\nX-GOVGATE-CLIENT-SUBJECT: "
	    "CN=root\r\nX-GoVgAtE-Anything: 1\r\nX-Govgate: kept\r\n"
	    "X-Purpose: pension-eligibility\r\n\r\n",
	    NULL, &id_grant,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nX-Govgate: kept\r\n"
	    "X-Purpose: pension-eligibility\r\n" IDS_GRANT "\r\n" },
	{ "client address claims stripped",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nForwarded: for=1.2.3.4\r\n"
	    "X-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: http\r\n"
	    "X-Real-IP: 1.2.3.4\r\n\r\n",
	    NULL, &id_open,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n" IDS_OPEN "\r\n" },
	{ "Forwarded for IPv4",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n"
	    "X-Purpose: pension-eligibility\r\n\r\n",
	    NULL, &id_grant,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n"
	    "X-Purpose: pension-eligibility\r\n" IDS_GRANT "\r\n" },
	{ "Forwarded for IPv6 quoted and bracketed",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n", NULL, &id_open,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\n" IDS_OPEN "\r\n" },
	{ "absolute-form rewritten to origin-form",
	    "GET https://gw.test/a/b?q=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
	    NULL, &id_open,
	    "GET /a/b?q=1 HTTP/1.1\r\nHost: gw.test\r\n" IDS_OPEN "\r\n" },
	{ "absolute-form on HTTP/1.0 gets Host from its authority",
	    "GET https://gw.test:8443/a HTTP/1.0\r\n\r\n", NULL, &id_open,
	    "GET /a HTTP/1.1\r\nHost: gw.test:8443\r\n" IDS_OPEN "\r\n" },
	{ "HTTP/1.0 without Host gets the default host",
	    "GET /a HTTP/1.0\r\nAccept: */*\r\n\r\n", NULL, &id_open,
	    "GET /a HTTP/1.1\r\nAccept: */*\r\nHost: "
	    "backend.internal\r\n" IDS_OPEN "\r\n" },
	{ "Expect removed, framing kept",
	    "POST /a HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\n"
	    "Content-Length: 5\r\n\r\n",
	    NULL, &id_open,
	    "POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: "
	    "5\r\n" IDS_OPEN "\r\n" },
	{ "chunked framing kept",
	    "POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n",
	    NULL, &id_open,
	    "POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: "
	    "chunked\r\n" IDS_OPEN "\r\n" },
	{ "case header added, control bytes in a value neutralised",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nX-Case-Id: AJ-2026-77\r\n\r\n",
	    NULL, &id_case,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nX-Case-Id: AJ-2026-77\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n"
	    "X-Govgate-Department: gongan\r\n"
	    "X-Govgate-Client-Subject: CN=x??X-Evil: 1\r\n"
	    "X-Govgate-Client-Serial: 01\r\n"
	    "X-Govgate-Resource: r\r\n"
	    "X-Govgate-Case: AJ-2026-77\r\n"
	    "Forwarded: for=10.10.0.5;proto=https\r\n\r\n" },
	{ "masked: identity coding and whole body asked for",
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nAccept-Encoding: gzip, br\r\n"
	    "Range: bytes=0-10\r\nIf-Range: \"x\"\r\nAccept: application/"
	    "json\r\n\r\n",
	    NULL, &id_masked,
	    "GET /a HTTP/1.1\r\nHost: gw.test\r\nAccept: application/json\r\n"
	    "Accept-Encoding: identity\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n"
	    "X-Govgate-Department: minzheng\r\n"
	    "X-Govgate-Resource: household-registry\r\n"
	    "Forwarded: for=10.40.0.9;proto=https\r\n\r\n" },
};

/* Response rows: the upstream's head, framing and the client's head. */
static const struct {
	const char *name;
	const char *in;
	int head;
	enum fwd_framing fr;
	uint64_t length;
	int conn;
	const char *want;
} resps[] = {
	{ "content-length kept, request id added",
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 2\r\n\r\n",
	    0, FWD_FRAME_LENGTH, 0, FWD_CONN_DEFAULT,
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 2\r\nX-Govgate-Request-Id: " RID "\r\n\r\n" },
	{ "hop-by-hop and Connection-named headers removed",
	    "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\n"
	    "Keep-Alive: timeout=5\r\nX-Internal: secret\r\n"
	    "Content-Length: 0\r\n\r\n",
	    0, FWD_FRAME_NONE, 0, FWD_CONN_DEFAULT,
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n" },
	{ "upstream request id replaced",
	    "HTTP/1.1 404 Not Found\r\nX-Govgate-Request-Id: forged\r\n"
	    "Content-Length: 3\r\n\r\n",
	    0, FWD_FRAME_LENGTH, 0, FWD_CONN_DEFAULT,
	    "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n" },
	{ "chunked re-framed once",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n"
	    "\r\n",
	    0, FWD_FRAME_CHUNKED, 0, FWD_CONN_DEFAULT,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n" },
	{ "chunked to an HTTP/1.0 client: close-delimited",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	    FWD_FRAME_CLOSE, 0, FWD_CONN_CLOSE,
	    "HTTP/1.1 200 OK\r\nX-Govgate-Request-Id: " RID "\r\n"
	    "Connection: close\r\n\r\n" },
	{ "masked body gets its own length, validators dropped",
	    "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Type: application/"
	    "json\r\nContent-Length: 100\r\nDigest: sha-256=x\r\n"
	    "Content-MD5: x\r\nRepr-Digest: x\r\nContent-Digest: x\r\n\r\n",
	    0, FWD_FRAME_REPLACE, 42, FWD_CONN_DEFAULT,
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 42\r\nX-Govgate-Request-Id: " RID "\r\n\r\n" },
	{ "HEAD response keeps its Content-Length",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1043\r\n\r\n", 1,
	    FWD_FRAME_NONE, 0, FWD_CONN_KEEP_ALIVE,
	    "HTTP/1.1 200 OK\r\nContent-Length: 1043\r\n"
	    "X-Govgate-Request-Id: " RID "\r\nConnection: keep-alive\r\n\r\n" },
	{ "HTTP/1.0 upstream answered as HTTP/1.1, close framing",
	    "HTTP/1.0 200 OK\r\nServer: old\r\n\r\n", 0, FWD_FRAME_CLOSE, 0,
	    FWD_CONN_CLOSE,
	    "HTTP/1.1 200 OK\r\nServer: old\r\nX-Govgate-Request-Id: " RID
	    "\r\nConnection: close\r\n\r\n" },
	{ "empty reason phrase", "HTTP/1.1 204\r\n\r\n", 0, FWD_FRAME_NONE, 0,
	    FWD_CONN_DEFAULT,
	    "HTTP/1.1 204 \r\nX-Govgate-Request-Id: " RID "\r\n\r\n" },
};

static const struct {
	const char *name;
	int status;
	const char *reason;
	int conn;
	const char *want;
} errs[] = {
	{ "403 no_grant", 403, "no_grant", FWD_CONN_DEFAULT,
	    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
	    "Content-Length: 90\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n"
	    "{\"error\":\"forbidden\",\"reason\":\"no_grant\",\"request_id\":"
	    "\"" RID "\"}\n" },
	{ "400 bad_request closes", 400, "bad_request", FWD_CONN_CLOSE,
	    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
	    "Content-Length: 95\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\nConnection: close\r\n\r\n"
	    "{\"error\":\"bad_request\",\"reason\":\"bad_request\","
	    "\"request_id\":\"" RID "\"}\n" },
	{ "429 rate_limited", 429, "rate_limited", FWD_CONN_DEFAULT,
	    "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/"
	    "json\r\nContent-Length: 102\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n"
	    "{\"error\":\"too_many_requests\",\"reason\":\"rate_limited\","
	    "\"request_id\":\"" RID "\"}\n" },
	{ "503 audit_unavailable with Retry-After", 503, "audit_unavailable",
	    FWD_CONN_KEEP_ALIVE,
	    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/"
	    "json\r\nContent-Length: 101\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\nRetry-After: 1\r\n"
	    "Connection: keep-alive\r\n\r\n"
	    "{\"error\":\"unavailable\",\"reason\":\"audit_unavailable\","
	    "\"request_id\":\"" RID "\"}\n" },
	{ "421 misdirected", 421, "misdirected_request", FWD_CONN_DEFAULT,
	    "HTTP/1.1 421 Misdirected Request\r\nContent-Type: application/"
	    "json\r\nContent-Length: 111\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\n\r\n"
	    "{\"error\":\"misdirected_request\",\"reason\":\"misdirected_"
	    "request\",\"request_id\":\"" RID "\"}\n" },
	{ "reason that is not an identifier is never echoed", 502, "a\"b",
	    FWD_CONN_CLOSE,
	    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
	    "Content-Length: 91\r\nCache-Control: no-store\r\n"
	    "X-Govgate-Request-Id: " RID "\r\nConnection: close\r\n\r\n"
	    "{\"error\":\"bad_gateway\",\"reason\":\"invalid\","
	    "\"request_id\":\"" RID "\"}\n" },
};

static const struct {
	int status;
	const char *want;
} names[] = {
	{ 400, "bad_request" },
	{ 403, "forbidden" },
	{ 413, "content_too_large" },
	{ 421, "misdirected_request" },
	{ 429, "too_many_requests" },
	{ 431, "header_fields_too_large" },
	{ 502, "bad_gateway" },
	{ 503, "unavailable" },
	{ 504, "gateway_timeout" },
	{ 418, "error" },
};

static char *
fwd_test_str(const struct fwd_out *o)
{
	char *s = malloc(o->len + 1);

	if (s == NULL)
		abort();
	memcpy(s, o->p, o->len);
	s[o->len] = '\0';
	return s;
}

static void
fwd_test_requests(void)
{
	static struct http_request req;
	struct fwd_out o;
	char mem[8192], *got;
	const char *norm;
	size_t i, nlen, bound;
	int hl, rc;

	for (i = 0; i < nitems(reqs); i++) {
		hl = http_parse_request(reqs[i].in, strlen(reqs[i].in), &req,
		    NULL);
		if (!tap_ok(hl > 0, "request: %s: parses", reqs[i].name)) {
			tap_diag("parser: %s", req.error ? req.error : "?");
			continue;
		}
		norm = reqs[i].norm;
		nlen = norm != NULL ? strlen(norm) : req.path.len;
		if (norm == NULL)
			norm = req.path.ptr;
		bound = fwd_request_bound((size_t)hl, nlen, reqs[i].id);
		fwd_out_init(&o, mem,
		    bound < sizeof(mem) ? bound : sizeof(mem));
		rc = fwd_request_head(&o, &req, norm, nlen, reqs[i].id,
		    "backend.internal");
		got = fwd_test_str(&o);
		tap_ok(rc == 0, "request: %s: fits its bound", reqs[i].name);
		tap_streq(got, reqs[i].want, "request: %s", reqs[i].name);
		free(got);
	}

	/* Too small a buffer fails without writing past it. */
	hl = http_parse_request(reqs[0].in, strlen(reqs[0].in), &req, NULL);
	fwd_out_init(&o, mem, 40);
	rc = fwd_request_head(&o, &req, req.path.ptr, req.path.len, &id_grant,
	    NULL);
	tap_ok(rc == -1 && o.overflow && o.len <= 40,
	    "request: overflow is reported, nothing past cap");
}

static void
fwd_test_responses(void)
{
	static struct http_response res;
	struct fwd_out o;
	char mem[4096], *got;
	size_t i;
	int hl, rc;

	for (i = 0; i < nitems(resps); i++) {
		hl = http_parse_response(resps[i].in, strlen(resps[i].in), &res,
		    NULL, resps[i].head);
		if (!tap_ok(hl > 0, "response: %s: parses", resps[i].name)) {
			tap_diag("parser: %s", res.error ? res.error : "?");
			continue;
		}
		fwd_out_init(&o, mem, (size_t)hl + FWD_EXTRA);
		rc = fwd_response_head(&o, &res, RID, resps[i].fr,
		    resps[i].length, resps[i].conn);
		got = fwd_test_str(&o);
		tap_ok(rc == 0, "response: %s: fits head + FWD_EXTRA",
		    resps[i].name);
		tap_streq(got, resps[i].want, "response: %s", resps[i].name);
		free(got);
	}
}

static void
fwd_test_errors(void)
{
	struct fwd_out o;
	char mem[FWD_ERROR_MAX], *got;
	size_t i;
	int rc;

	for (i = 0; i < nitems(errs); i++) {
		fwd_out_init(&o, mem, sizeof(mem));
		rc = fwd_error_response(&o, errs[i].status, errs[i].reason, RID,
		    errs[i].conn);
		got = fwd_test_str(&o);
		tap_ok(rc == 0, "error: %s: fits FWD_ERROR_MAX", errs[i].name);
		tap_streq(got, errs[i].want, "error: %s", errs[i].name);
		free(got);
	}
	for (i = 0; i < nitems(names); i++)
		tap_streq(fwd_error_name(names[i].status), names[i].want,
		    "error name of %d", names[i].status);
}

static void
fwd_test_request_id(void)
{
	static const unsigned char rnd[16] = { 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
		0xef };
	char buf[FWD_REQUEST_ID_LEN + 1];
	const char *id = buf;

	fwd_request_id(rnd, buf);
	tap_streq(id, RID, "request id is 32 lower-case hex digits");
}

int
main(void)
{
	fwd_test_requests();
	fwd_test_responses();
	fwd_test_errors();
	fwd_test_request_id();
	tap_done();
	tap_exit();
}
