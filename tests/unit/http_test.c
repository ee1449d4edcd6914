/* SPDX-License-Identifier: ISC */
/*
 * http_test.c - table-driven tests of the strict HTTP/1.1 parser: request
 * heads, response heads and the chunked decoder. Every input is placed so
 * that it ends right at an unreadable page, so any overread faults.
 */
#include "config.h"

#include <sys/mman.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "http.h"
#include "tap.h"

#define EDGE_PAGES 32

static char *edge_base; /* EDGE_PAGES readable pages, then a PROT_NONE one */
static size_t edge_room;

static void
edge_init(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	m = mmap(NULL, (EDGE_PAGES + 1) * pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	edge_base = m;
	edge_room = EDGE_PAGES * pg;
	if (mprotect(edge_base + edge_room, pg, PROT_NONE) == -1) {
		perror("mprotect");
		exit(1);
	}
}

/* Copy in/len so that its last byte is the last readable one. */
static const char *
edge_put(const char *in, size_t len)
{
	char *p;

	if (len > edge_room) {
		fprintf(stderr, "edge_put: %zu bytes do not fit\n", len);
		exit(1);
	}
	p = edge_base + edge_room - len;
	memcpy(p, in, len);
	return p;
}

static int
span_is(struct http_span s, const char *want)
{
	size_t n = strlen(want);

	return s.ptr != NULL && s.len == n && memcmp(s.ptr, want, n) == 0;
}

static const char *
body_name(enum http_body b)
{
	switch (b) {
	case HTTP_BODY_NONE:
		return "none";
	case HTTP_BODY_LENGTH:
		return "len";
	case HTTP_BODY_CHUNKED:
		return "chunked";
	case HTTP_BODY_CLOSE:
		return "close";
	}
	return "?";
}

static int
int_is(long long got, const char *want)
{
	return got == strtoll(want, NULL, 10);
}

/*
 * Check one "key=value" expectation against the fields every head has.
 * Returns 1 (matched), 0 (mismatch) or -1 (not a fields key).
 */
static int
want_fields(const struct http_fields *f, const char *key, const char *val)
{
	const struct http_header *h;
	char name[64];
	const char *colon;

	if (strcmp(key, "ka") == 0)
		return int_is(f->keep_alive, val);
	if (strcmp(key, "body") == 0)
		return strcmp(body_name(f->body), val) == 0;
	if (strcmp(key, "cl") == 0)
		return f->has_cl &&
		    f->content_length == strtoull(val, NULL, 10);
	if (strcmp(key, "nocl") == 0)
		return !f->has_cl;
	if (strcmp(key, "te") == 0)
		return int_is(f->chunked, val);
	if (strcmp(key, "up") == 0)
		return int_is(f->upgrade, val);
	if (strcmp(key, "n") == 0)
		return int_is((long long)f->nheaders, val);
	if (strcmp(key, "ct") == 0)
		return int_is((long long)f->nconn_tokens, val);
	if (strcmp(key, "hop") == 0 || strcmp(key, "nohop") == 0) {
		h = http_fields_find(f, val);
		return h != NULL && h->hop == (key[0] == 'h');
	}
	if (strcmp(key, "hv") == 0) {
		if ((colon = strchr(val, ':')) == NULL ||
		    (size_t)(colon - val) >= sizeof(name))
			return 0;
		memcpy(name, val, (size_t)(colon - val));
		name[colon - val] = '\0';
		h = http_fields_find(f, name);
		return h != NULL && span_is(h->value, colon + 1);
	}
	return -1;
}

static int
want_request(const struct http_request *r, const char *key, const char *val)
{
	if (strcmp(key, "m") == 0)
		return span_is(r->method, val);
	if (strcmp(key, "t") == 0)
		return span_is(r->target, val);
	if (strcmp(key, "origin") == 0)
		return span_is(r->origin, val);
	if (strcmp(key, "p") == 0)
		return span_is(r->path, val);
	if (strcmp(key, "q") == 0) {
		if (strcmp(val, "-") == 0)
			return !r->has_query && r->query.len == 0;
		return r->has_query && span_is(r->query, val);
	}
	if (strcmp(key, "h") == 0) {
		if (strcmp(val, "-") == 0)
			return r->host.ptr == NULL && r->host_name.len == 0;
		return span_is(r->host_name, val);
	}
	if (strcmp(key, "host") == 0)
		return span_is(r->host, val);
	if (strcmp(key, "port") == 0)
		return int_is(r->port, val);
	if (strcmp(key, "v") == 0)
		return int_is(r->version_minor, val);
	if (strcmp(key, "exp") == 0)
		return int_is(r->expect_continue, val);
	if (strcmp(key, "form") == 0)
		return strcmp(val,
		           r->form == HTTP_TARGET_ORIGIN ? "origin"
		                                         : "absolute") == 0;
	if (strcmp(key, "auth") == 0)
		return span_is(r->authority, val);
	if (strcmp(key, "scheme") == 0)
		return span_is(r->scheme, val);
	return want_fields(&r->f, key, val);
}

static int
want_response(const struct http_response *r, const char *key, const char *val)
{
	char reason[64];
	size_t i;

	if (strcmp(key, "status") == 0)
		return int_is(r->status, val);
	if (strcmp(key, "v") == 0)
		return int_is(r->version_minor, val);
	if (strcmp(key, "reason") == 0) {
		/* '_' stands for a space in the table. */
		snprintf(reason, sizeof(reason), "%s", val);
		for (i = 0; reason[i] != '\0'; i++)
			if (reason[i] == '_')
				reason[i] = ' ';
		return span_is(r->reason, reason);
	}
	return want_fields(&r->f, key, val);
}

/*
 * Check every space-separated "key=value" of want; on a mismatch print the
 * key and return 0.
 */
static int
want_all(const void *obj, int is_request, const char *want)
{
	char buf[512], *tok, *save = NULL, *eq;
	int rc;

	snprintf(buf, sizeof(buf), "%s", want);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(tok, '=')) == NULL) {
			tap_diag("bad expectation \"%s\"", tok);
			return 0;
		}
		*eq = '\0';
		rc = is_request ? want_request(obj, tok, eq + 1)
		                : want_response(obj, tok, eq + 1);
		if (rc != 1) {
			tap_diag("%s %s=%s",
			    rc == -1 ? "unknown key" : "failed", tok, eq + 1);
			return 0;
		}
	}
	return 1;
}

/* Expected result: OK means the head ends at the first empty line. */
#define OK 1

struct req_row {
	const char *name;
	const char *in;
	int rc;           /* OK, HTTP_PARTIAL, HTTP_ERROR, HTTP_TOO_LARGE */
	const char *want; /* OK: expectations; otherwise the reason */
	size_t len;       /* 0: strlen(in) */
};

#define REQ(n, i, r, w)                                                        \
	{                                                                      \
		.name = n, .in = i, .rc = r, .want = w                         \
	}
#define REQ_BIN(n, i, r, w)                                                    \
	{                                                                      \
		.name = n, .in = i, .rc = r, .want = w, .len = sizeof(i) - 1   \
	}
#define H11 " HTTP/1.1\r\nHost: gw.example\r\n"
#define NUL_TARGET "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"
#define NUL_VALUE "GET /" H11 "X-A: a\0b\r\n\r\n"
#define NUL_VALUE_END "GET /" H11 "X-A: a\0\r\n\r\n"

static const struct req_row req_rows[] = {
	/* Good requests and the facts the parser derives. */
	REQ("simple GET", "GET /" H11 "\r\n", OK,
	    "m=GET t=/ p=/ q=- h=gw.example host=gw.example port=0 v=1 ka=1 "
	    "body=none nocl=0 n=1 form=origin exp=0 up=0 ct=0"),
	REQ("GET with query", "GET /a/b?x=1&y=2" H11 "\r\n", OK,
	    "p=/a/b q=x=1&y=2 origin=/a/b?x=1&y=2"),
	REQ("empty query", "GET /a?" H11 "\r\n", OK, "p=/a q="),
	REQ("query with slashes and question marks", "GET /a?b/c?d" H11 "\r\n",
	    OK, "p=/a q=b/c?d"),
	REQ("HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", OK,
	    "v=0 ka=0 h=- n=0"),
	REQ("HTTP/1.0 keep-alive",
	    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", OK,
	    "v=0 ka=1 ct=1 hop=connection"),
	REQ("HTTP/1.0 keep-alive and close",
	    "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", OK,
	    "ka=0 ct=2"),
	REQ("HTTP/1.1 Connection close",
	    "GET /" H11 "Connection: close\r\n\r\n", OK, "ka=0 ct=1"),
	REQ("Connection names a header that becomes hop-by-hop",
	    "GET /" H11 "Connection: Keep-Alive, X-Trace\r\nX-Trace: 1\r\n"
	    "X-Other: 2\r\n\r\n",
	    OK, "ka=1 ct=2 hop=x-trace nohop=x-other nohop=host"),
	REQ("Connection with empty list elements",
	    "GET /" H11 "Connection: , close ,,\r\n\r\n", OK, "ka=0 ct=1"),
	REQ("empty Connection", "GET /" H11 "Connection:\r\n\r\n", OK,
	    "ka=1 ct=0"),
	REQ("Connection tokens over two headers",
	    "GET /" H11 "Connection: a\r\nConnection: b\r\n\r\n", OK, "ct=2"),
	REQ("POST with Content-Length and body",
	    "POST /f HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 5\r\n\r\n"
	    "hello",
	    OK, "m=POST body=len cl=5 te=0"),
	REQ("POST chunked",
	    "POST /f" H11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	    OK, "body=chunked te=1 nocl=0"),
	REQ("Transfer-Encoding in upper case",
	    "POST /f" H11 "TRANSFER-ENCODING: CHUNKED\r\n\r\n", OK,
	    "body=chunked"),
	REQ("Content-Length zero", "POST /f" H11 "Content-Length: 0\r\n\r\n",
	    OK, "body=none cl=0"),
	REQ("Content-Length with leading zeros",
	    "POST /f" H11 "Content-Length: 007\r\n\r\n", OK, "body=len cl=7"),
	REQ("Content-Length at 2^53",
	    "POST /f" H11 "Content-Length: 9007199254740992\r\n\r\n", OK,
	    "cl=9007199254740992"),
	REQ("Content-Length with surrounding OWS",
	    "POST /f" H11 "Content-Length: \t 12 \t\r\n\r\n", OK, "cl=12"),
	REQ("Host with port", "GET / HTTP/1.1\r\nHost: gw.example:8443\r\n\r\n",
	    OK, "h=gw.example port=8443 host=gw.example:8443"),
	REQ("Host IPv6 literal with port",
	    "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", OK,
	    "h=2001:db8::1 port=8443"),
	REQ("Host IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", OK,
	    "h=::1 port=0"),
	REQ("Host IPv4", "GET / HTTP/1.1\r\nHost: 10.20.1.10:80\r\n\r\n", OK,
	    "h=10.20.1.10 port=80"),
	REQ("Host name in upper case",
	    "GET / HTTP/1.1\r\nHOST: GW.Example\r\n\r\n", OK, "h=GW.Example"),
	REQ("Host with underscore and tilde",
	    "GET / HTTP/1.1\r\nHost: a_b~c-d.e\r\n\r\n", OK, "h=a_b~c-d.e"),
	REQ("Host at the end of the head",
	    "GET / HTTP/1.1\r\nX-A: 1\r\nHost: late\r\n\r\n", OK, "h=late n=2"),
	REQ("value OWS trimmed", "GET /" H11 "X-A: \t spaced \t \r\n\r\n", OK,
	    "hv=x-a:spaced"),
	REQ("inner whitespace kept", "GET /" H11 "X-A: a b\r\n\r\n", OK, "n=2"),
	REQ("empty value", "GET /" H11 "X-Empty:\r\n\r\n", OK, "hv=x-empty:"),
	REQ("whitespace-only value", "GET /" H11 "X-Empty:  \t \r\n\r\n", OK,
	    "hv=x-empty:"),
	REQ("UTF-8 value (obs-text)",
	    "GET /" H11 "X-Purpose: \xe5\xb9\xb4\xe9\x87\x91\r\n\r\n", OK,
	    "hv=x-purpose:\xe5\xb9\xb4\xe9\x87\x91"),
	REQ("all tchar in a name",
	    "GET /" H11 "!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n", OK,
	    "hv=!#$%&'*+-.^_`|~09azaz:v"),
	REQ("visible ASCII target",
	    "GET /a-._~!$&'()*+,;=:@%20[]{}\"<>\\^`| HTTP/1.1\r\nHost: "
	    "x\r\n\r\n",
	    OK, "p=/a-._~!$&'()*+,;=:@%20[]{}\"<>\\^`|"),
	REQ("Expect 100-continue",
	    "PUT /f" H11 "Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
	    OK, "exp=1 cl=3"),
	REQ("Expect ignored on HTTP/1.0",
	    "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", OK, "exp=0"),
	REQ("Upgrade and HTTP2-Settings are hop-by-hop",
	    "GET /" H11
	    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	    "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
	    OK, "up=1 hop=upgrade hop=http2-settings hop=connection"),
	REQ("fixed hop-by-hop names",
	    "GET /" H11
	    "TE: trailers\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n"
	    "Trailer: X\r\n\r\n",
	    OK, "hop=te hop=keep-alive hop=proxy-connection hop=trailer"),
	REQ("absolute-form",
	    "GET http://gw.example/a?b HTTP/1.1\r\nHost: gw.example\r\n\r\n",
	    OK,
	    "form=absolute scheme=http auth=gw.example p=/a q=b origin=/a?b "
	    "t=http://gw.example/a?b"),
	REQ("absolute-form https, port, case",
	    "GET HTTPS://GW.example:8443/x HTTP/1.1\r\nHost: "
	    "gw.EXAMPLE:8443\r\n"
	    "\r\n",
	    OK,
	    "form=absolute scheme=HTTPS auth=GW.example:8443 port=8443 p=/x"),
	REQ("absolute-form on HTTP/1.0 without Host",
	    "GET http://gw.example/ HTTP/1.0\r\n\r\n", OK,
	    "h=gw.example host=gw.example p=/"),
	REQ("extension method", "PROPFIND /d" H11 "\r\n", OK, "m=PROPFIND"),
	REQ("lower-case method is a token", "get /" H11 "\r\n", OK, "m=get"),
	REQ("pipelined second request left alone",
	    "GET /1" H11 "\r\nGET /2" H11 "\r\n", OK, "p=/1"),
	REQ("repeated ordinary header", "GET /" H11 "X-A: 1\r\nX-A: 2\r\n\r\n",
	    OK, "n=3 hv=x-a:1"),

	/* The request line. */
	REQ("bare LF ends the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n",
	    HTTP_ERROR, "bare LF in head"),
	REQ("bare LF line endings", "GET / HTTP/1.1\r\nHost: a\n\n", HTTP_ERROR,
	    "bare LF in head"),
	REQ("bare LF at the very start", "\nGET / HTTP/1.1\r\n\r\n", HTTP_ERROR,
	    "bare LF in head"),
	REQ("bare CR in a value", "GET /" H11 "X: a\rb\r\n\r\n", HTTP_ERROR,
	    "bare CR in head"),
	REQ("bare CR before CRLF", "GET /" H11 "X: a\r\r\n\r\n", HTTP_ERROR,
	    "bare CR in head"),
	REQ("bare CR in the request line",
	    "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "malformed request line"),
	REQ("bare CR in the target", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "invalid byte in target"),
	REQ("leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed method"),
	REQ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "unsupported HTTP version"),
	REQ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "unsupported HTTP version"),
	REQ("HTTP/0.9 request line", "GET /\r\n\r\n", HTTP_ERROR,
	    "invalid byte in target"),
	REQ("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed HTTP version"),
	REQ("version with extra digit", "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed request line"),
	REQ("space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed request line"),
	REQ("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "empty target"),
	REQ("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed HTTP version"),
	REQ("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed method"),
	REQ("method not a token", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed method"),
	REQ("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "malformed method"),
	REQ("missing version", "GET / \r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "malformed HTTP version"),
	REQ("CONNECT authority-form",
	    "CONNECT gw:443 HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "CONNECT refused"),
	REQ("CONNECT with a path", "CONNECT / HTTP/1.1\r\nHost: gw\r\n\r\n",
	    HTTP_ERROR, "CONNECT refused"),
	REQ("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n",
	    HTTP_ERROR, "asterisk-form target"),
	REQ("authority-form with GET",
	    "GET gw:443 HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "target is not origin-form"),
	REQ("relative target", "GET a/b HTTP/1.1\r\nHost: gw\r\n\r\n",
	    HTTP_ERROR, "target is not origin-form"),
	REQ("ftp absolute-form", "GET ftp://gw/ HTTP/1.1\r\nHost: gw\r\n\r\n",
	    HTTP_ERROR, "target is not origin-form"),
	REQ("fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "fragment in target"),
	REQ("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "malformed HTTP version"),
	REQ("control byte in target",
	    "GET /a\x01"
	    "b HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "invalid byte in target"),
	REQ("tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "invalid byte in target"),
	REQ("DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
	    HTTP_ERROR, "invalid byte in target"),
	REQ("byte above 0x7E in target",
	    "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "invalid byte in target"),
	REQ_BIN("NUL in target", NUL_TARGET, HTTP_ERROR,
	    "invalid byte in target"),
	REQ("absolute-form without path",
	    "GET http://gw HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "absolute-form target without path"),
	REQ("absolute-form with query but no path",
	    "GET http://gw?x HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "absolute-form target without path"),
	REQ("absolute-form with userinfo",
	    "GET http://u@gw/ HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "userinfo in target"),
	REQ("absolute-form Host differs",
	    "GET http://gw.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
	    HTTP_ERROR, "Host differs from target authority"),
	REQ("absolute-form Host port differs",
	    "GET http://gw:8443/ HTTP/1.1\r\nHost: gw\r\n\r\n", HTTP_ERROR,
	    "Host differs from target authority"),
	REQ("absolute-form without Host on 1.1",
	    "GET http://gw/ HTTP/1.1\r\n\r\n", HTTP_ERROR, "missing Host"),
	REQ("absolute-form empty authority on 1.0",
	    "GET http:/// HTTP/1.0\r\n\r\n", HTTP_ERROR, "empty host"),

	/* Header syntax. */
	REQ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	    HTTP_ERROR, "whitespace before colon"),
	REQ("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
	    HTTP_ERROR, "whitespace before colon"),
	REQ("obs-fold", "GET /" H11 "X-A: a\r\n b\r\n\r\n", HTTP_ERROR,
	    "obs-fold line"),
	REQ("obs-fold with tab", "GET /" H11 "X-A: a\r\n\tb\r\n\r\n",
	    HTTP_ERROR, "obs-fold line"),
	REQ("first header line folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
	    HTTP_ERROR, "obs-fold line"),
	REQ("empty header name", "GET /" H11 ": x\r\n\r\n", HTTP_ERROR,
	    "empty header name"),
	REQ("header name not a token", "GET /" H11 "X@Y: a\r\n\r\n", HTTP_ERROR,
	    "header name is not a token"),
	REQ("header name with a high byte", "GET /" H11 "X\xc3\xa9: a\r\n\r\n",
	    HTTP_ERROR, "header name is not a token"),
	REQ("header name with a slash", "GET /" H11 "X/Y: a\r\n\r\n",
	    HTTP_ERROR, "header name is not a token"),
	REQ("header line without colon", "GET /" H11 "Hosta\r\n\r\n",
	    HTTP_ERROR, "header line without colon"),
	REQ_BIN("NUL in value", NUL_VALUE, HTTP_ERROR,
	    "control character in header value"),
	REQ_BIN("NUL at the end of a value", NUL_VALUE_END, HTTP_ERROR,
	    "control character in header value"),
	REQ("control byte in value",
	    "GET /" H11 "X-A: a\x01"
	    "b\r\n\r\n",
	    HTTP_ERROR, "control character in header value"),
	REQ("DEL in value", "GET /" H11 "X-A: a\x7f\r\n\r\n", HTTP_ERROR,
	    "control character in header value"),
	REQ("escape byte in value", "GET /" H11 "X-A: \x1b[0m\r\n\r\n",
	    HTTP_ERROR, "control character in header value"),

	/* Framing. */
	REQ("Content-Length and Transfer-Encoding",
	    "POST /f" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n",
	    HTTP_ERROR, "both Content-Length and Transfer-Encoding"),
	REQ("Transfer-Encoding and Content-Length",
	    "POST /f" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
	    "\r\n",
	    HTTP_ERROR, "both Content-Length and Transfer-Encoding"),
	REQ("two equal Content-Length",
	    "POST /f" H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
	    HTTP_ERROR, "repeated Content-Length"),
	REQ("two different Content-Length",
	    "POST /f" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
	    HTTP_ERROR, "repeated Content-Length"),
	REQ("Content-Length list", "POST /f" H11 "Content-Length: 5, 5\r\n\r\n",
	    HTTP_ERROR, "Content-Length list"),
	REQ("Content-Length with plus",
	    "POST /f" H11 "Content-Length: +5\r\n\r\n", HTTP_ERROR,
	    "Content-Length is not a number"),
	REQ("negative Content-Length",
	    "POST /f" H11 "Content-Length: -1\r\n\r\n", HTTP_ERROR,
	    "Content-Length is not a number"),
	REQ("Content-Length with inner space",
	    "POST /f" H11 "Content-Length: 5 5\r\n\r\n", HTTP_ERROR,
	    "Content-Length is not a number"),
	REQ("hex Content-Length", "POST /f" H11 "Content-Length: 0x5\r\n\r\n",
	    HTTP_ERROR, "Content-Length is not a number"),
	REQ("Content-Length with suffix",
	    "POST /f" H11 "Content-Length: 5a\r\n\r\n", HTTP_ERROR,
	    "Content-Length is not a number"),
	REQ("empty Content-Length", "POST /f" H11 "Content-Length:\r\n\r\n",
	    HTTP_ERROR, "empty Content-Length"),
	REQ("Content-Length above 2^53",
	    "POST /f" H11 "Content-Length: 9007199254740993\r\n\r\n",
	    HTTP_ERROR, "Content-Length too large"),
	REQ("Content-Length overflowing uint64",
	    "POST /f" H11 "Content-Length: 99999999999999999999999\r\n\r\n",
	    HTTP_ERROR, "Content-Length too large"),
	REQ("Transfer-Encoding gzip",
	    "POST /f" H11 "Transfer-Encoding: gzip\r\n\r\n", HTTP_ERROR,
	    "unsupported Transfer-Encoding"),
	REQ("Transfer-Encoding gzip, chunked",
	    "POST /f" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    HTTP_ERROR, "unsupported Transfer-Encoding"),
	REQ("Transfer-Encoding chunked, chunked",
	    "POST /f" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
	    HTTP_ERROR, "unsupported Transfer-Encoding"),
	REQ("Transfer-Encoding with parameter",
	    "POST /f" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", HTTP_ERROR,
	    "unsupported Transfer-Encoding"),
	REQ("Transfer-Encoding identity",
	    "POST /f" H11 "Transfer-Encoding: identity\r\n\r\n", HTTP_ERROR,
	    "unsupported Transfer-Encoding"),
	REQ("empty Transfer-Encoding",
	    "POST /f" H11 "Transfer-Encoding:\r\n\r\n", HTTP_ERROR,
	    "unsupported Transfer-Encoding"),
	REQ("Transfer-Encoding xchunked",
	    "POST /f" H11 "Transfer-Encoding: xchunked\r\n\r\n", HTTP_ERROR,
	    "unsupported Transfer-Encoding"),
	REQ("two Transfer-Encoding headers",
	    "POST /f" H11 "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    HTTP_ERROR, "repeated Transfer-Encoding"),
	REQ("Transfer-Encoding on HTTP/1.0",
	    "POST /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTP_ERROR, "Transfer-Encoding on HTTP/1.0"),

	/* Host. */
	REQ("missing Host", "GET / HTTP/1.1\r\n\r\n", HTTP_ERROR,
	    "missing Host"),
	REQ("two equal Host headers",
	    "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_ERROR,
	    "repeated Host"),
	REQ("two different Host headers",
	    "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_ERROR,
	    "repeated Host"),
	REQ("repeated Host on HTTP/1.0",
	    "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERROR,
	    "repeated Host"),
	REQ("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", HTTP_ERROR,
	    "empty host"),
	REQ("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@gw\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host with a path", "GET / HTTP/1.1\r\nHost: gw/x\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host percent-encoded", "GET / HTTP/1.1\r\nHost: g%77\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host with sub-delims", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host non-numeric port", "GET / HTTP/1.1\r\nHost: gw:x\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host empty port", "GET / HTTP/1.1\r\nHost: gw:\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host port zero", "GET / HTTP/1.1\r\nHost: gw:0\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host port 65536", "GET / HTTP/1.1\r\nHost: gw:65536\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host port six digits", "GET / HTTP/1.1\r\nHost: gw:000080\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host two ports", "GET / HTTP/1.1\r\nHost: gw:80:80\r\n\r\n",
	    HTTP_ERROR, "malformed port"),
	REQ("Host IPv6 without brackets", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n",
	    HTTP_ERROR, "malformed host"),
	REQ("Host IPv6 not an address",
	    "GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n", HTTP_ERROR,
	    "malformed IPv6 host"),
	REQ("Host IPv6 unclosed", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
	    HTTP_ERROR, "malformed IPv6 host"),
	REQ("Host IPv6 with zone",
	    "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", HTTP_ERROR,
	    "malformed IPv6 host"),
	REQ("Host IPv6 empty", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", HTTP_ERROR,
	    "malformed IPv6 host"),
	REQ("Host IPv6 junk after bracket",
	    "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", HTTP_ERROR,
	    "malformed host"),

	/* Other interpreted headers. */
	REQ("unknown expectation", "PUT /f" H11 "Expect: 200-ok\r\n\r\n",
	    HTTP_ERROR, "unsupported Expect"),
	REQ("two Expect headers",
	    "PUT /f" H11 "Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
	    HTTP_ERROR, "repeated Expect"),
	REQ("Connection names Content-Length",
	    "POST /f" H11 "Connection: close, Content-Length\r\n"
	    "Content-Length: 5\r\n\r\n",
	    HTTP_ERROR, "Connection names a framing header"),
	REQ("Connection names Transfer-Encoding",
	    "POST /f" H11 "Connection: transfer-encoding\r\n\r\n", HTTP_ERROR,
	    "Connection names a framing header"),
	REQ("Connection names Host", "GET /" H11 "Connection: Host\r\n\r\n",
	    HTTP_ERROR, "Connection names a framing header"),
	REQ("Connection not a token list",
	    "GET /" H11 "Connection: close;x\r\n\r\n", HTTP_ERROR,
	    "Connection is not a token list"),
	REQ("Connection tokens without comma",
	    "GET /" H11 "Connection: close keep-alive\r\n\r\n", HTTP_ERROR,
	    "Connection is not a token list"),
	REQ("too many Connection tokens",
	    "GET /" H11 "Connection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\r\n\r\n",
	    HTTP_ERROR, "too many Connection tokens"),

	/* Incomplete heads. */
	REQ("empty input", "", HTTP_PARTIAL, NULL),
	REQ("request line only", "GET / HTTP/1.1\r\n", HTTP_PARTIAL, NULL),
	REQ("empty line missing", "GET /" H11, HTTP_PARTIAL, NULL),
	REQ("final LF missing", "GET /" H11 "\r", HTTP_PARTIAL, NULL),
	REQ("cut in a header", "GET /" H11 "X-A: b", HTTP_PARTIAL, NULL),
};

static int
check_req_row(const struct req_row *row, const char *in, size_t len)
{
	struct http_request req;
	const char *hend;
	int rc, want;

	rc = http_parse_request(in, len, &req, NULL);
	want = row->rc;
	if (row->rc == OK) {
		hend = strstr(row->in, "\r\n\r\n");
		want = hend == NULL ? -100 : (int)(hend + 4 - row->in);
	}
	if (rc != want) {
		tap_diag("rc %d, want %d (%s)", rc, want,
		    req.error ? req.error : "no reason");
		return 0;
	}
	if (row->rc == OK)
		return want_all(&req, 1, row->want);
	if (row->rc == HTTP_PARTIAL)
		return 1;
	if (req.error == NULL || strcmp(req.error, row->want) != 0) {
		tap_diag("reason \"%s\", want \"%s\"",
		    req.error ? req.error : "(null)", row->want);
		return 0;
	}
	return 1;
}

static void
test_requests(void)
{
	const struct req_row *row;
	size_t i, len;

	for (i = 0; i < nitems(req_rows); i++) {
		row = &req_rows[i];
		len = row->len ? row->len : strlen(row->in);
		tap_ok(check_req_row(row, edge_put(row->in, len), len),
		    "request: %s", row->name);
	}
}

/* Every proper prefix of a good head is HTTP_PARTIAL, never more. */
static void
test_request_prefixes(void)
{
	struct http_request req;
	const struct req_row *row;
	const char *p;
	size_t i, n, hl, bad, rows = 0;
	int rc;

	for (i = 0; i < nitems(req_rows); i++) {
		row = &req_rows[i];
		if (row->rc != OK)
			continue;
		rows++;
		hl = (size_t)(strstr(row->in, "\r\n\r\n") + 4 - row->in);
		bad = 0;
		for (n = 0; n < hl; n++) {
			p = edge_put(row->in, n);
			if ((rc = http_parse_request(p, n, &req, NULL)) !=
			    HTTP_PARTIAL) {
				tap_diag("%zu bytes: rc %d", n, rc);
				bad++;
			}
		}
		tap_ok(bad == 0, "request prefixes: %s (%zu)", row->name, hl);
	}
	tap_ok(rows > 40, "request prefixes: %zu good heads checked", rows);
}

/* Build a request with nextra "X-N: v" headers after Host. */
static size_t
build_many(char *buf, size_t bufsz, size_t nextra, int complete)
{
	size_t i, off;

	off = (size_t)snprintf(buf, bufsz, "GET / HTTP/1.1\r\nHost: gw\r\n");
	for (i = 0; i < nextra && off < bufsz; i++)
		off +=
		    (size_t)snprintf(buf + off, bufsz - off, "X-%zu: v\r\n", i);
	if (complete && off < bufsz)
		off += (size_t)snprintf(buf + off, bufsz - off, "\r\n");
	return off;
}

static void
test_request_limits(void)
{
	static char buf[32 * 1024];
	struct http_request req;
	struct http_limits lim;
	const char *p;
	size_t len;
	int rc;

	len = build_many(buf, sizeof(buf), 99, 1);
	rc = http_parse_request(edge_put(buf, len), len, &req, NULL);
	tap_ok(rc == (int)len && req.f.nheaders == 100,
	    "limits: 100 headers accepted by default");

	len = build_many(buf, sizeof(buf), 100, 1);
	rc = http_parse_request(edge_put(buf, len), len, &req, NULL);
	tap_ok(rc == HTTP_TOO_LARGE, "limits: 101 headers are too many");

	memset(&lim, 0, sizeof(lim));
	lim.max_headers = 3;
	len = build_many(buf, sizeof(buf), 2, 1);
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == (int)len, "limits: max_headers 3, 3 headers");
	len = build_many(buf, sizeof(buf), 3, 1);
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == HTTP_TOO_LARGE, "limits: max_headers 3, 4 headers");
	len = build_many(buf, sizeof(buf), 4, 0);
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == HTTP_TOO_LARGE,
	    "limits: too many header lines seen before the head ends");
	lim.max_headers = 1000;
	len = build_many(buf, sizeof(buf), 100, 1);
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == HTTP_TOO_LARGE,
	    "limits: max_headers is clamped to HTTP_MAX_HEADERS");

	memset(&lim, 0, sizeof(lim));
	len = build_many(buf, sizeof(buf), 5, 1);
	lim.max_head_bytes = len;
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == (int)len, "limits: head of exactly max_head_bytes");
	lim.max_head_bytes = len - 1;
	rc = http_parse_request(edge_put(buf, len), len, &req, &lim);
	tap_ok(rc == HTTP_TOO_LARGE, "limits: head one byte over");
	p = edge_put(buf, len - 2);
	lim.max_head_bytes = len;
	rc = http_parse_request(p, len - 2, &req, &lim);
	tap_ok(rc == HTTP_PARTIAL, "limits: partial under the limit");
	lim.max_head_bytes = len - 2;
	rc = http_parse_request(p, len - 2, &req, &lim);
	tap_ok(rc == HTTP_TOO_LARGE && req.error != NULL,
	    "limits: partial at the limit is too large");

	/* The default 16 KiB: one 20 KiB header, never completed. */
	len = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + len, 'a', 20 * 1024);
	len += 20 * 1024;
	rc = http_parse_request(edge_put(buf, len), len, &req, NULL);
	tap_ok(rc == HTTP_TOO_LARGE, "limits: default head limit 16 KiB");
	rc = http_parse_request(edge_put(buf, 16 * 1024 - 1), 16 * 1024 - 1,
	    &req, NULL);
	tap_ok(rc == HTTP_PARTIAL, "limits: 16 KiB - 1 is still partial");
}

struct res_row {
	const char *name;
	const char *in;
	int head; /* the request was HEAD */
	int rc;
	const char *want;
	size_t len;
};

#define RES(n, i, h, r, w)                                                     \
	{                                                                      \
		.name = n, .in = i, .head = h, .rc = r, .want = w              \
	}
#define RES_BIN(n, i, h, r, w)                                                 \
	{                                                                      \
		.name = n, .in = i, .head = h, .rc = r, .want = w,             \
		.len = sizeof(i) - 1                                           \
	}
#define RES_NUL "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"

static const struct res_row res_rows[] = {
	RES("200 with Content-Length",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, OK,
	    "status=200 reason=OK v=1 body=len cl=5 ka=1 n=1"),
	RES("200 chunked",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, OK,
	    "body=chunked ka=1"),
	RES("200 until close", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", 0, OK,
	    "body=close ka=0"),
	RES("Content-Length zero",
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, OK,
	    "body=none cl=0 ka=1"),
	RES("204", "HTTP/1.1 204 No Content\r\n\r\n", 0, OK,
	    "status=204 reason=No_Content body=none ka=1"),
	RES("204 with Content-Length 0",
	    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0, OK,
	    "body=none"),
	RES("304 with Content-Length",
	    "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, OK,
	    "status=304 body=none cl=100 ka=1"),
	RES("304 with Transfer-Encoding",
	    "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	    0, OK, "body=none"),
	RES("HEAD response with Content-Length",
	    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1, OK,
	    "body=none cl=100 ka=1"),
	RES("HEAD response chunked",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, OK,
	    "body=none te=1"),
	RES("HEAD response without length", "HTTP/1.1 200 OK\r\n\r\n", 1, OK,
	    "body=none ka=1"),
	RES("100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, OK,
	    "status=100 body=none"),
	RES("HTTP/1.0 with Content-Length",
	    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, OK,
	    "v=0 ka=0 body=len"),
	RES("HTTP/1.0 keep-alive",
	    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n"
	    "\r\n",
	    0, OK, "v=0 ka=1"),
	RES("Connection close",
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
	    0, OK, "ka=0 hop=connection"),
	RES("empty reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0, OK,
	    "status=200 reason="),
	RES("no SP and no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
	    0, OK, "status=404 reason="),
	RES("reason with spaces",
	    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, OK,
	    "reason=Not_Found"),
	RES("599", "HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n", 0, OK,
	    "status=599"),
	RES("Connection-named header is hop-by-hop",
	    "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\n"
	    "Content-Length: 0\r\n\r\n",
	    0, OK, "hop=x-internal nohop=content-length"),

	RES("Content-Length and Transfer-Encoding",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n",
	    0, HTTP_ERROR, "both Content-Length and Transfer-Encoding"),
	RES("two Content-Length",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	    0, HTTP_ERROR, "repeated Content-Length"),
	RES("Content-Length with plus",
	    "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", 0, HTTP_ERROR,
	    "Content-Length is not a number"),
	RES("Transfer-Encoding gzip, chunked",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0,
	    HTTP_ERROR, "unsupported Transfer-Encoding"),
	RES("Transfer-Encoding on HTTP/1.0",
	    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	    HTTP_ERROR, "Transfer-Encoding on HTTP/1.0"),
	RES("CL+TE on a HEAD response",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n",
	    1, HTTP_ERROR, "both Content-Length and Transfer-Encoding"),
	RES("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 0,
	    HTTP_ERROR, "bare LF in head"),
	RES("bare CR in a value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0,
	    HTTP_ERROR, "bare CR in head"),
	RES("HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", 0, HTTP_ERROR,
	    "unsupported HTTP version"),
	RES("lower-case version", "http/1.1 200 OK\r\n\r\n", 0, HTTP_ERROR,
	    "malformed HTTP version"),
	RES("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, HTTP_ERROR,
	    "malformed status code"),
	RES("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 0, HTTP_ERROR,
	    "malformed status line"),
	RES("status 600", "HTTP/1.1 600 X\r\n\r\n", 0, HTTP_ERROR,
	    "status code out of range"),
	RES("status 099", "HTTP/1.1 099 X\r\n\r\n", 0, HTTP_ERROR,
	    "status code out of range"),
	RES("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", 0,
	    HTTP_ERROR, "malformed status code"),
	RES("control byte in reason",
	    "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed status line"),
	RES("bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", 0, HTTP_ERROR,
	    "malformed status line"),
	RES("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, HTTP_ERROR,
	    "obs-fold line"),
	RES("whitespace before colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 0,
	    HTTP_ERROR, "whitespace before colon"),
	RES_BIN("NUL in value", RES_NUL, 0, HTTP_ERROR,
	    "control character in header value"),
	RES("204 with Transfer-Encoding",
	    "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	    HTTP_ERROR, "framing header on a response without body"),
	RES("204 with Content-Length 5",
	    "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0,
	    HTTP_ERROR, "framing header on a response without body"),
	RES("100 with Content-Length",
	    "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", 0, HTTP_ERROR,
	    "framing header on a response without body"),
	RES("Connection names Content-Length",
	    "HTTP/1.1 200 OK\r\nConnection: content-length\r\n"
	    "Content-Length: 1\r\n\r\n",
	    0, HTTP_ERROR, "Connection names a framing header"),
	RES("partial", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", 0,
	    HTTP_PARTIAL, NULL),
};

static int
check_res_row(const struct res_row *row, const char *in, size_t len)
{
	struct http_response res;
	const char *hend;
	int rc, want;

	rc = http_parse_response(in, len, &res, NULL, row->head);
	want = row->rc;
	if (row->rc == OK) {
		hend = strstr(row->in, "\r\n\r\n");
		want = hend == NULL ? -100 : (int)(hend + 4 - row->in);
	}
	if (rc != want) {
		tap_diag("rc %d, want %d (%s)", rc, want,
		    res.error ? res.error : "no reason");
		return 0;
	}
	if (row->rc == OK)
		return want_all(&res, 0, row->want);
	if (row->rc == HTTP_PARTIAL)
		return 1;
	if (res.error == NULL || strcmp(res.error, row->want) != 0) {
		tap_diag("reason \"%s\", want \"%s\"",
		    res.error ? res.error : "(null)", row->want);
		return 0;
	}
	return 1;
}

static void
test_responses(void)
{
	struct http_response res;
	const struct res_row *row;
	size_t i, n, len, hl, bad;

	for (i = 0; i < nitems(res_rows); i++) {
		row = &res_rows[i];
		len = row->len ? row->len : strlen(row->in);
		tap_ok(check_res_row(row, edge_put(row->in, len), len),
		    "response: %s", row->name);
		if (row->rc != OK)
			continue;
		hl = (size_t)(strstr(row->in, "\r\n\r\n") + 4 - row->in);
		for (n = 0, bad = 0; n < hl; n++)
			if (http_parse_response(edge_put(row->in, n), n, &res,
			        NULL, row->head) != HTTP_PARTIAL)
				bad++;
		tap_ok(bad == 0, "response prefixes: %s", row->name);
	}
}

struct chunk_row {
	const char *name;
	const char *in;
	size_t len;       /* 0: strlen(in) */
	int rc;           /* final result */
	const char *data; /* decoded data (DONE and MORE) or the reason */
	size_t dlen;      /* 0: strlen(data) */
	size_t end;       /* DONE: where the message ends; 0: len */
	uint64_t max_body;
	size_t max_trailer;
};

#define LONG_EXT                                                               \
	"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* CHUNK(name, input, length or 0, result, data or reason[, .field = x]) */
#define CHUNK(n, i, l, r, ...)                                                 \
	{                                                                      \
		.name = n, .in = i, .len = l, .rc = r, .data = __VA_ARGS__     \
	}
#define CHUNK_BIN "3\r\n\0\xff\n\r\n0\r\n\r\n"
#define CHUNK_TNUL "0\r\nX: a\0b\r\n\r\n"

static const struct chunk_row chunk_rows[] = {
	CHUNK("one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, HTTP_CHUNKED_DONE,
	    "hello"),
	CHUNK("several chunks", "3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n",
	    0, HTTP_CHUNKED_DONE, "abcdefgh"),
	CHUNK("upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "0123456789"),
	CHUNK("lower-case hex", "a\r\n0123456789\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "0123456789"),
	CHUNK("two-digit size",
	    "1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "0123456789012345678901234567890"),
	CHUNK("leading zeros", "0005\r\nhello\r\n0000\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("sixteen digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("empty body", "0\r\n\r\n", 0, HTTP_CHUNKED_DONE, ""),
	CHUNK("extension with token value", "5;name=val\r\nhello\r\n0\r\n\r\n",
	    0, HTTP_CHUNKED_DONE, "hello"),
	CHUNK("extension without value", "5;flag\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("extension with quoted value",
	    "5;n=\"a b\\\"c;\"\r\nhello\r\n0\r\n\r\n", 0, HTTP_CHUNKED_DONE,
	    "hello"),
	CHUNK("several extensions", "5;a=1;b;c=\"\"\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("extension on the last chunk", "5\r\nhello\r\n0;x=y\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("one trailer", "5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello"),
	CHUNK("two trailers", "0\r\nX-A: 1\r\nX-B:\t2 \r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, ""),
	CHUNK("trailer with empty value", "0\r\nX:\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, ""),
	CHUNK("next message follows", "2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
	    0, HTTP_CHUNKED_DONE, "ok", .end = 12),
	CHUNK("data holding CRLFs", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "\r\n\r\n"),
	CHUNK("binary data", CHUNK_BIN, sizeof(CHUNK_BIN) - 1,
	    HTTP_CHUNKED_DONE, "\0\xff\n", .dlen = 3),
	CHUNK("body at max_body", "5\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_CHUNKED_DONE, "hello", .max_body = 5),
	CHUNK("incomplete data", "5\r\nhel", 0, HTTP_CHUNKED_MORE, "hel"),
	CHUNK("incomplete after data", "5\r\nhello\r\n", 0, HTTP_CHUNKED_MORE,
	    "hello"),
	CHUNK("incomplete trailers", "0\r\nX: 1\r\n", 0, HTTP_CHUNKED_MORE, ""),
	CHUNK("incomplete size line", "5;a=\"x", 0, HTTP_CHUNKED_MORE, ""),

	CHUNK("empty size", "\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "chunk size is not hex"),
	CHUNK("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk size line"),
	CHUNK("leading space", " 5\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "chunk size is not hex"),
	CHUNK("plus sign", "+5\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "chunk size is not hex"),
	CHUNK("minus sign", "-5\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "chunk size is not hex"),
	CHUNK("non-hex letter", "g\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "chunk size is not hex"),
	CHUNK("trailing space", "5 \r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk size line"),
	CHUNK("bare LF after size", "5\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk size line"),
	CHUNK("bare CR after size", "5\rhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "bare CR in chunk size line"),
	CHUNK("data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "missing CRLF after chunk data"),
	CHUNK("data then bare LF", "5\r\nhello\n0\r\n\r\n", 0, HTTP_ERROR,
	    "missing CRLF after chunk data"),
	CHUNK("data then CR and junk", "5\r\nhello\rX0\r\n\r\n", 0, HTTP_ERROR,
	    "missing CRLF after chunk data"),
	CHUNK("seventeen digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "chunk size has too many digits"),
	CHUNK("size above 2^53", "20000000000001\r\n", 0, HTTP_ERROR,
	    "chunk size too large"),
	CHUNK("size overflowing uint64", "fffffffffffffffff\r\n", 0, HTTP_ERROR,
	    "chunk size too large"),
	CHUNK("space before extension", "5 ;a\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk size line"),
	CHUNK("space after semicolon", "5; a\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk extension"),
	CHUNK("empty extension name", "5;=x\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk extension"),
	CHUNK("empty extension", "5;\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk extension"),
	CHUNK("empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk extension"),
	CHUNK("control byte in extension", "5;a=\x01\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk extension"),
	CHUNK("unterminated quoted extension", "5;a=\"xx\r\nhello\r\n0\r\n\r\n",
	    0, HTTP_ERROR, "malformed chunk extension"),
	CHUNK("LF inside quoted extension",
	    "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk extension"),
	CHUNK("junk after quoted extension", "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
	    0, HTTP_ERROR, "malformed chunk extension"),
	CHUNK("space inside extension value", "5;a=b c\r\nhello\r\n0\r\n\r\n",
	    0, HTTP_ERROR, "malformed chunk extension"),
	CHUNK("double equals", "5;a==b\r\nhello\r\n0\r\n\r\n", 0, HTTP_ERROR,
	    "malformed chunk extension"),
	CHUNK("bare LF after extension", "5;a\nhello\r\n0\r\n\r\n", 0,
	    HTTP_ERROR, "malformed chunk extension"),
	CHUNK("size line too long",
	    LONG_EXT LONG_EXT LONG_EXT LONG_EXT LONG_EXT LONG_EXT LONG_EXT
	        LONG_EXT "\r\nhello\r\n0\r\n\r\n",
	    0, HTTP_ERROR, "chunk size line too long"),
	CHUNK("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", 0, HTTP_ERROR,
	    "obs-fold in trailer"),
	CHUNK("trailer whitespace before colon", "0\r\nX : a\r\n\r\n", 0,
	    HTTP_ERROR, "whitespace before colon in trailer"),
	CHUNK("trailer without colon", "0\r\nX\r\n\r\n", 0, HTTP_ERROR,
	    "malformed trailer line"),
	CHUNK("trailer empty name", "0\r\n: a\r\n\r\n", 0, HTTP_ERROR,
	    "trailer name is not a token"),
	CHUNK("trailer NUL in value", CHUNK_TNUL, sizeof(CHUNK_TNUL) - 1,
	    HTTP_ERROR, "control character in trailer"),
	CHUNK("trailer bare LF", "0\r\nX: a\n\r\n", 0, HTTP_ERROR,
	    "control character in trailer"),
	CHUNK("trailer bare CR", "0\r\nX: a\rb\r\n\r\n", 0, HTTP_ERROR,
	    "bare CR in trailer"),
	CHUNK("final line bare CR", "0\r\n\rX", 0, HTTP_ERROR,
	    "bare CR in trailer"),
	CHUNK("final line bare LF", "0\r\n\n", 0, HTTP_ERROR,
	    "trailer name is not a token"),
	CHUNK("trailers too large", "0\r\nX-Long: 0123456789\r\n\r\n", 0,
	    HTTP_ERROR, "trailer section too large", .max_trailer = 16),
	CHUNK("body too large in one chunk", "5\r\nhello\r\n0\r\n\r\n", 0,
	    HTTP_TOO_LARGE, "chunked body too large", .max_body = 4),
	CHUNK("body too large over chunks",
	    "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", 0, HTTP_TOO_LARGE,
	    "chunked body too large", .max_body = 6),
};

struct chunk_result {
	int rc;
	char data[256];
	size_t dlen;
	size_t end; /* absolute offset after the last consumed byte */
	const char *error;
	int sane; /* every range inside its piece, progress on every call */
};

/* A small deterministic generator for the random splits. */
static uint32_t
chunk_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Decode in/len in pieces: mode 0 is one piece, 1 is byte by byte, and any
 * other value seeds random piece lengths. Each piece sits at the page edge.
 */
static void
chunk_run(const struct chunk_row *row, const char *in, size_t len,
    uint32_t mode, struct chunk_result *r)
{
	struct http_limits lim;
	struct http_chunked c;
	const char *piece;
	size_t off = 0, plen, pos, used, doff, dl;
	uint32_t seed = mode;
	int rc = HTTP_CHUNKED_MORE;

	memset(&lim, 0, sizeof(lim));
	lim.max_body_bytes = row->max_body;
	lim.max_trailer_bytes = row->max_trailer;
	http_chunked_init(&c, &lim);
	memset(r, 0, sizeof(*r));
	r->sane = 1;
	while (off < len && rc == HTTP_CHUNKED_MORE) {
		if (mode == 0)
			plen = len - off;
		else if (mode == 1)
			plen = 1;
		else
			plen = 1 + chunk_rand(&seed) % 7;
		if (plen > len - off)
			plen = len - off;
		piece = edge_put(in + off, plen);
		pos = 0;
		while (pos < plen) {
			rc = http_chunked_feed(&c, piece + pos, plen - pos,
			    &used, &doff, &dl);
			if (used > plen - pos || doff + dl > used ||
			    (rc == HTTP_CHUNKED_MORE && used == 0)) {
				r->sane = 0;
				rc = HTTP_ERROR;
				break;
			}
			if (dl > 0) {
				if (r->dlen + dl > sizeof(r->data)) {
					r->sane = 0;
					rc = HTTP_ERROR;
					break;
				}
				memcpy(r->data + r->dlen, piece + pos + doff,
				    dl);
				r->dlen += dl;
			}
			pos += used;
			if (rc != HTTP_CHUNKED_MORE)
				break;
		}
		off += pos;
	}
	r->rc = rc;
	r->end = off;
	r->error = c.error;
}

static int
chunk_check(const struct chunk_row *row, size_t len,
    const struct chunk_result *r)
{
	size_t dlen;

	if (!r->sane) {
		tap_diag("decoder reported ranges outside its input");
		return 0;
	}
	if (r->rc != row->rc) {
		tap_diag("rc %d, want %d (%s)", r->rc, row->rc,
		    r->error ? r->error : "no reason");
		return 0;
	}
	if (row->rc == HTTP_ERROR || row->rc == HTTP_TOO_LARGE) {
		if (r->error == NULL || strcmp(r->error, row->data) != 0) {
			tap_diag("reason \"%s\", want \"%s\"",
			    r->error ? r->error : "(null)", row->data);
			return 0;
		}
		return 1;
	}
	dlen = row->dlen ? row->dlen : strlen(row->data);
	if (r->dlen != dlen || memcmp(r->data, row->data, dlen) != 0) {
		tap_diag("decoded %zu bytes, want %zu", r->dlen, dlen);
		return 0;
	}
	if (r->end != (row->end ? row->end : len)) {
		tap_diag("ended at %zu, want %zu", r->end,
		    row->end ? row->end : len);
		return 0;
	}
	return 1;
}

static void
test_chunked(void)
{
	static const uint32_t modes[] = { 0, 1, 0x9e3779b9, 12345, 777 };
	static const char *const mode_names[] = { "whole", "byte by byte",
		"random split 1", "random split 2", "random split 3" };
	const struct chunk_row *row;
	struct chunk_result r;
	size_t i, m, len;

	for (i = 0; i < nitems(chunk_rows); i++) {
		row = &chunk_rows[i];
		len = row->len ? row->len : strlen(row->in);
		for (m = 0; m < nitems(modes); m++) {
			chunk_run(row, row->in, len, modes[m], &r);
			tap_ok(chunk_check(row, len, &r), "chunked: %s (%s)",
			    row->name, mode_names[m]);
		}
	}
}

static void
test_chunked_misc(void)
{
	struct http_chunked c;
	size_t used, doff, dl;
	const char *in = "5\r\nhello\r\n0\r\n\r\nrest";
	const char *p = edge_put(in, strlen(in));
	int rc;

	http_chunked_init(&c, NULL);
	rc = http_chunked_feed(&c, p, strlen(in), &used, &doff, &dl);
	tap_ok(rc == HTTP_CHUNKED_MORE && used == 8 && doff == 3 && dl == 5,
	    "chunked: stops after the first data run");
	rc = http_chunked_feed(&c, p + used, strlen(in) - used, &used, &doff,
	    &dl);
	tap_ok(rc == HTTP_CHUNKED_DONE && used == 7 && dl == 0,
	    "chunked: framing to the end is consumed, the rest left");
	rc = http_chunked_feed(&c, p + 15, 4, &used, &doff, &dl);
	tap_ok(rc == HTTP_CHUNKED_DONE && used == 0,
	    "chunked: a finished decoder consumes nothing");
	tap_ok(c.total == 5, "chunked: total counts data bytes");

	http_chunked_init(&c, NULL);
	rc = http_chunked_feed(&c, edge_put("x", 1), 1, &used, &doff, &dl);
	rc = http_chunked_feed(&c, edge_put("5\r\n", 3), 3, &used, &doff, &dl);
	tap_ok(rc == HTTP_ERROR && c.error != NULL,
	    "chunked: a failed decoder stays failed");
}

static void
test_helpers(void)
{
	static const struct {
		const char *list, *tok;
		int want;
	} lists[] = {
		{ "close", "close", 1 },
		{ "Close", "close", 1 },
		{ "keep-alive, close", "close", 1 },
		{ " a ,\tclose\t, b ", "close", 1 },
		{ "closed", "close", 0 },
		{ "clos", "close", 0 },
		{ "", "close", 0 },
		{ ",,", "close", 0 },
		{ "a, b", "b", 1 },
		{ "a,b,", "c", 0 },
	};
	struct http_request req;
	const struct http_header *h;
	const char *in = "GET / HTTP/1.1\r\nHost: gw\r\nX-Case: 1\r\n\r\n";
	struct http_span s;
	size_t i;
	int rc;

	for (i = 0; i < nitems(lists); i++)
		tap_ok(http_token_list_has(lists[i].list, strlen(lists[i].list),
		           lists[i].tok) == lists[i].want,
		    "token list \"%s\" has \"%s\": %d", lists[i].list,
		    lists[i].tok, lists[i].want);

	rc = http_parse_request(edge_put(in, strlen(in)), strlen(in), &req,
	    NULL);
	h = http_header_find(&req, "x-CASE");
	tap_ok(rc > 0 && h != NULL && span_is(h->value, "1"),
	    "header_find ignores case");
	tap_ok(http_header_find(&req, "x-cas") == NULL &&
	        http_header_find(&req, "x-case-") == NULL,
	    "header_find matches whole names");
	s.ptr = "Chunked";
	s.len = 7;
	tap_ok(http_span_eq(s, "chunked") && !http_span_eq(s, "chunk") &&
	        !http_span_eq(s, "chunkedx"),
	    "span_eq");

	tap_streq(http_status_text(431), "Request Header Fields Too Large",
	    "status text 431");
	tap_streq(http_status_text(421), "Misdirected Request",
	    "status text 421");
	tap_streq(http_status_text(502), "Bad Gateway", "status text 502");
	tap_streq(http_status_text(299), "Success", "status text 299");
}

int
main(void)
{
	edge_init();
	test_requests();
	test_request_prefixes();
	test_request_limits();
	test_responses();
	test_chunked();
	test_chunked_misc();
	test_helpers();
	tap_done();
	tap_exit();
}
