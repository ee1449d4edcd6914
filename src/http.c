/* SPDX-License-Identifier: ISC */
/* http.c - strict incremental HTTP/1.1 head parsing and chunked decoding. */
#include "config.h"

#include <arpa/inet.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"

/*
 * Character classes, one table lookup per byte (RFC 9110 section 5.6 and
 * RFC 9112). TARGET is what we accept in a request-target: visible ASCII
 * without '#'. VALUE is field-vchar plus SP and HTAB, obs-text included
 * so that UTF-8 header values pass. HOST is our reg-name: letters, digits
 * and "-._~" (no sub-delims, no percent-encoding). QDTEXT is quoted-string
 * text without '"' and '\'.
 */
#define HTTP_CC_TCHAR 0x01
#define HTTP_CC_TARGET 0x02
#define HTTP_CC_VALUE 0x04
#define HTTP_CC_HEX 0x08
#define HTTP_CC_DIGIT 0x10
#define HTTP_CC_HOST 0x20
#define HTTP_CC_QDTEXT 0x40

static const uint8_t http_cc[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00-07 */
	0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 08-0f */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10-17 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 18-1f */
	0x44, 0x47, 0x06, 0x45, 0x47, 0x47, 0x47, 0x47, /* 20-27 */
	0x46, 0x46, 0x47, 0x47, 0x46, 0x67, 0x67, 0x46, /* 28-2f */
	0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, /* 30-37 */
	0x7f, 0x7f, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 38-3f */
	0x46, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x67, /* 40-47 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 48-4f */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 50-57 */
	0x67, 0x67, 0x67, 0x46, 0x06, 0x46, 0x47, 0x67, /* 58-5f */
	0x47, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x67, /* 60-67 */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 68-6f */
	0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, 0x67, /* 70-77 */
	0x67, 0x67, 0x67, 0x46, 0x47, 0x46, 0x67, 0x00, /* 78-7f */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 80-87 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 88-8f */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 90-97 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* 98-9f */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* a0-a7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* a8-af */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* b0-b7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* b8-bf */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* c0-c7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* c8-cf */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* d0-d7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* d8-df */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* e0-e7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* e8-ef */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* f0-f7 */
	0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* f8-ff */
};

#define HTTP_IS(c, cls) (http_cc[(unsigned char)(c)] & (cls))
#define HTTP_IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* Headers the parser interprets while it stores them. */
enum http_hdr {
	HTTP_HDR_OTHER = 0,
	HTTP_HDR_HOST,
	HTTP_HDR_CONTENT_LENGTH,
	HTTP_HDR_TRANSFER_ENCODING,
	HTTP_HDR_CONNECTION,
	HTTP_HDR_UPGRADE,
	HTTP_HDR_EXPECT,
	HTTP_HDR_HOP, /* other hop-by-hop names (RFC 9110 section 7.6.1) */
};

/* What a header block tells the request or response parser. */
struct http_scan {
	struct http_span host;
	size_t nhost;
	struct http_span expect;
	size_t nexpect;
	int has_te;
	int conn_close;
	int conn_keep_alive;
};

static int
http_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive comparison of p/len with a lower-case literal. */
static int
http_mem_eq(const char *p, size_t len, const char *lit, size_t litlen)
{
	size_t i;

	if (len != litlen)
		return 0;
	for (i = 0; i < len; i++)
		if (http_lower((unsigned char)p[i]) != lit[i])
			return 0;
	return 1;
}

/* Compare two spans case-insensitively. */
static int
http_span_caseeq(struct http_span a, struct http_span b)
{
	size_t i;

	if (a.len != b.len)
		return 0;
	for (i = 0; i < a.len; i++)
		if (http_lower((unsigned char)a.ptr[i]) !=
		    http_lower((unsigned char)b.ptr[i]))
			return 0;
	return 1;
}

/*
 * Compare a span with a NUL-terminated literal, ignoring ASCII case.
 * Returns 1 when they are equal.
 */
int
http_span_eq(struct http_span s, const char *lit)
{
	size_t i;

	for (i = 0; i < s.len; i++) {
		if (lit[i] == '\0')
			return 0;
		if (http_lower((unsigned char)s.ptr[i]) !=
		    http_lower((unsigned char)lit[i]))
			return 0;
	}
	return lit[i] == '\0';
}

/* Which interpreted header the name n is; one length switch, then compare. */
static enum http_hdr
http_hdr_classify(struct http_span n)
{
#define HTTP_NAME_IS(lit) http_mem_eq(n.ptr, n.len, lit, sizeof(lit) - 1)
	switch (n.len) {
	case 2:
		if (HTTP_NAME_IS("te"))
			return HTTP_HDR_HOP;
		break;
	case 4:
		if (HTTP_NAME_IS("host"))
			return HTTP_HDR_HOST;
		break;
	case 6:
		if (HTTP_NAME_IS("expect"))
			return HTTP_HDR_EXPECT;
		break;
	case 7:
		if (HTTP_NAME_IS("upgrade"))
			return HTTP_HDR_UPGRADE;
		if (HTTP_NAME_IS("trailer"))
			return HTTP_HDR_HOP;
		break;
	case 10:
		if (HTTP_NAME_IS("connection"))
			return HTTP_HDR_CONNECTION;
		if (HTTP_NAME_IS("keep-alive"))
			return HTTP_HDR_HOP;
		break;
	case 14:
		if (HTTP_NAME_IS("content-length"))
			return HTTP_HDR_CONTENT_LENGTH;
		if (HTTP_NAME_IS("http2-settings"))
			return HTTP_HDR_HOP;
		break;
	case 16:
		if (HTTP_NAME_IS("proxy-connection"))
			return HTTP_HDR_HOP;
		break;
	case 17:
		if (HTTP_NAME_IS("transfer-encoding"))
			return HTTP_HDR_TRANSFER_ENCODING;
		break;
	default:
		break;
	}
	return HTTP_HDR_OTHER;
#undef HTTP_NAME_IS
}

/*
 * Find the end of a head in the first max bytes of buf without parsing it:
 * the first empty line. Every LF must follow a CR. Returns the head length,
 * HTTP_PARTIAL, HTTP_TOO_LARGE (head or line count over the limit) or
 * HTTP_ERROR (bare LF). This is the cheap test run on every read.
 */
static int
http_head_end(const char *buf, size_t len, size_t max, size_t maxlines,
    const char **why)
{
	const char *p = buf, *lf, *end;
	size_t lines = 0;

	end = buf + (len < max ? len : max);
	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (lf == buf || lf[-1] != '\r') {
			*why = "bare LF in head";
			return HTTP_ERROR;
		}
		if (lf - 1 == p)
			return (int)(lf + 1 - buf);
		if (++lines > maxlines) {
			*why = "too many header lines";
			return HTTP_TOO_LARGE;
		}
		p = lf + 1;
	}
	if (len >= max) {
		*why = "head too large";
		return HTTP_TOO_LARGE;
	}
	return HTTP_PARTIAL;
}

/* RFC 9112 section 6.3: one Content-Length, digits only, bounded. */
static int
http_parse_cl(struct http_span v, uint64_t *out, const char **why)
{
	uint64_t n = 0;
	size_t i;

	if (v.len == 0) {
		*why = "empty Content-Length";
		return -1;
	}
	for (i = 0; i < v.len; i++) {
		if (!HTTP_IS(v.ptr[i], HTTP_CC_DIGIT)) {
			*why = v.ptr[i] == ','
			    ? "Content-Length list"
			    : "Content-Length is not a number";
			return -1;
		}
		n = n * 10 + (uint64_t)(v.ptr[i] - '0');
		if (n > HTTP_MAX_CONTENT_LENGTH) {
			*why = "Content-Length too large";
			return -1;
		}
	}
	*out = n;
	return 0;
}

/* Record the tokens of a Connection value; empty list elements are skipped. */
static int
http_parse_connection(struct http_span v, struct http_fields *f,
    struct http_scan *s, const char **why)
{
	const char *p = v.ptr, *end = v.ptr + v.len, *q;
	struct http_span tok;

	while (p < end) {
		if (*p == ',' || HTTP_IS_OWS(*p)) {
			p++;
			continue;
		}
		q = p;
		while (p < end && HTTP_IS(*p, HTTP_CC_TCHAR))
			p++;
		if (p == q) {
			*why = "Connection is not a token list";
			return -1;
		}
		tok.ptr = q;
		tok.len = (size_t)(p - q);
		while (p < end && HTTP_IS_OWS(*p))
			p++;
		if (p < end && *p != ',') {
			*why = "Connection is not a token list";
			return -1;
		}
		if (f->nconn_tokens == HTTP_MAX_CONN_TOKENS) {
			*why = "too many Connection tokens";
			return -1;
		}
		f->conn_tokens[f->nconn_tokens++] = tok;
		if (http_mem_eq(tok.ptr, tok.len, "close", 5))
			s->conn_close = 1;
		else if (http_mem_eq(tok.ptr, tok.len, "keep-alive", 10))
			s->conn_keep_alive = 1;
	}
	return 0;
}

/*
 * Parse header lines from p up to the final empty line at end - 2, storing
 * them in f and interpreting the framing headers. Returns 0, or HTTP_ERROR
 * or HTTP_TOO_LARGE with *why set.
 */
static int
http_parse_fields(const char *p, const char *end, struct http_fields *f,
    size_t maxh, struct http_scan *s, const char **why)
{
	const char *q, *r, *last = end - 2;
	struct http_header *h;
	size_t i, j;

	while (p < last) {
		q = p;
		while (HTTP_IS(*p, HTTP_CC_TCHAR))
			p++;
		if (*p != ':' || p == q) {
			if (p == q && HTTP_IS_OWS(*p))
				*why = "obs-fold line";
			else if (p == q && *p == ':')
				*why = "empty header name";
			else if (HTTP_IS_OWS(*p))
				*why = "whitespace before colon";
			else if (*p == '\r' && p[1] == '\n')
				*why = "header line without colon";
			else
				*why = "header name is not a token";
			return HTTP_ERROR;
		}
		if (f->nheaders == maxh) {
			*why = "too many headers";
			return HTTP_TOO_LARGE;
		}
		h = &f->headers[f->nheaders++];
		h->name.ptr = q;
		h->name.len = (size_t)(p - q);
		h->hop = 0;
		p++;
		while (HTTP_IS_OWS(*p))
			p++;
		q = p;
		/* Four at a time: the head's final CRLF stops every run. */
		while (HTTP_IS(p[0], HTTP_CC_VALUE) &&
		    HTTP_IS(p[1], HTTP_CC_VALUE) &&
		    HTTP_IS(p[2], HTTP_CC_VALUE) &&
		    HTTP_IS(p[3], HTTP_CC_VALUE))
			p += 4;
		while (HTTP_IS(*p, HTTP_CC_VALUE))
			p++;
		if (*p != '\r') {
			*why = "control character in header value";
			return HTTP_ERROR;
		}
		if (p[1] != '\n') {
			*why = "bare CR in head";
			return HTTP_ERROR;
		}
		for (r = p; r > q && HTTP_IS_OWS(r[-1]); r--)
			;
		h->value.ptr = q;
		h->value.len = (size_t)(r - q);
		p += 2;

		switch (http_hdr_classify(h->name)) {
		case HTTP_HDR_HOST:
			if (s->nhost++ == 0)
				s->host = h->value;
			break;
		case HTTP_HDR_CONTENT_LENGTH:
			/* Several, even equal, are a smuggling vector. */
			if (f->has_cl) {
				*why = "repeated Content-Length";
				return HTTP_ERROR;
			}
			if (http_parse_cl(h->value, &f->content_length, why) ==
			    -1)
				return HTTP_ERROR;
			f->has_cl = 1;
			break;
		case HTTP_HDR_TRANSFER_ENCODING:
			if (s->has_te) {
				*why = "repeated Transfer-Encoding";
				return HTTP_ERROR;
			}
			s->has_te = 1;
			/* Exactly one coding, and it is chunked. */
			if (!http_mem_eq(h->value.ptr, h->value.len, "chunked",
			        7)) {
				*why = "unsupported Transfer-Encoding";
				return HTTP_ERROR;
			}
			f->chunked = 1;
			break;
		case HTTP_HDR_CONNECTION:
			h->hop = 1;
			if (http_parse_connection(h->value, f, s, why) == -1)
				return HTTP_ERROR;
			break;
		case HTTP_HDR_UPGRADE:
			h->hop = 1;
			f->upgrade = 1;
			break;
		case HTTP_HDR_EXPECT:
			if (s->nexpect++ == 0)
				s->expect = h->value;
			break;
		case HTTP_HDR_HOP:
			h->hop = 1;
			break;
		case HTTP_HDR_OTHER:
			break;
		}
	}

	/*
	 * Headers named in Connection are hop-by-hop too. Naming a framing
	 * header there would let a proxy strip it: refuse.
	 */
	for (i = 0; i < f->nconn_tokens; i++) {
		switch (http_hdr_classify(f->conn_tokens[i])) {
		case HTTP_HDR_HOST:
		case HTTP_HDR_CONTENT_LENGTH:
		case HTTP_HDR_TRANSFER_ENCODING:
			*why = "Connection names a framing header";
			return HTTP_ERROR;
		default:
			break;
		}
		for (j = 0; j < f->nheaders; j++)
			if (http_span_caseeq(f->headers[j].name,
			        f->conn_tokens[i]))
				f->headers[j].hop = 1;
	}

	/* RFC 9112 section 6.1: both is a smuggling attempt. */
	if (f->has_cl && f->chunked) {
		*why = "both Content-Length and Transfer-Encoding";
		return HTTP_ERROR;
	}
	return 0;
}

/*
 * Validate a host[:port] (RFC 3986 section 3.2.2, narrowed): a reg-name of
 * letters, digits and "-._~", or an IPv6 literal in brackets, then an
 * optional port of one to five digits up to 65535.
 */
static int
http_parse_host(struct http_span v, struct http_span *name, unsigned *port,
    const char **why)
{
	const char *p = v.ptr, *end = v.ptr + v.len, *q;
	char addr[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	size_t n;
	unsigned pn = 0;

	if (v.len == 0) {
		*why = "empty host";
		return -1;
	}
	if (*p == '[') {
		q = ++p;
		while (p < end && *p != ']')
			p++;
		n = (size_t)(p - q);
		if (p == end || n == 0 || n >= sizeof(addr)) {
			*why = "malformed IPv6 host";
			return -1;
		}
		memcpy(addr, q, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			*why = "malformed IPv6 host";
			return -1;
		}
		name->ptr = q;
		name->len = n;
		p++;
	} else {
		q = p;
		while (p < end && HTTP_IS(*p, HTTP_CC_HOST))
			p++;
		if (p == q || p - q > 255) {
			*why = "malformed host";
			return -1;
		}
		name->ptr = q;
		name->len = (size_t)(p - q);
	}
	*port = 0;
	if (p == end)
		return 0;
	if (*p != ':') {
		*why = "malformed host";
		return -1;
	}
	q = ++p;
	while (p < end && HTTP_IS(*p, HTTP_CC_DIGIT) && p - q < 5)
		pn = pn * 10 + (unsigned)(*p++ - '0');
	if (p != end || p == q || pn == 0 || pn > 65535) {
		*why = "malformed port";
		return -1;
	}
	*port = pn;
	return 0;
}

/* Split a request-target into form, authority, path and query. */
static int
http_parse_target(struct http_request *req, const char **why)
{
	const char *p = req->target.ptr, *end = p + req->target.len, *q;
	size_t len = req->target.len;

	req->form = HTTP_TARGET_ORIGIN;
	if (*p != '/') {
		if (len >= 7 && http_mem_eq(p, 7, "http://", 7))
			req->scheme.len = 4;
		else if (len >= 8 && http_mem_eq(p, 8, "https://", 8))
			req->scheme.len = 5;
		else {
			if (len == 1 && *p == '*')
				*why = "asterisk-form target";
			else
				*why = "target is not origin-form";
			return -1;
		}
		req->form = HTTP_TARGET_ABSOLUTE;
		req->scheme.ptr = p;
		p += req->scheme.len + 3;
		q = p;
		while (p < end && *p != '/' && *p != '?')
			p++;
		req->authority.ptr = q;
		req->authority.len = (size_t)(p - q);
		if (memchr(q, '@', req->authority.len) != NULL) {
			*why = "userinfo in target";
			return -1;
		}
		if (p == end || *p != '/') {
			*why = "absolute-form target without path";
			return -1;
		}
	}
	req->origin.ptr = p;
	req->origin.len = (size_t)(end - p);
	q = memchr(p, '?', req->origin.len);
	req->path.ptr = p;
	if (q == NULL) {
		req->path.len = req->origin.len;
		req->query.ptr = end;
	} else {
		req->path.len = (size_t)(q - p);
		req->has_query = 1;
		req->query.ptr = q + 1;
		req->query.len = (size_t)(end - q - 1);
	}
	return 0;
}

/* Parse "HTTP/1.0" or "HTTP/1.1" at p, with n bytes of head left. */
static int
http_parse_version(const char *p, size_t n, int *minor, const char **why)
{
	if (n < 10 || memcmp(p, "HTTP/", 5) != 0) {
		*why = "malformed HTTP version";
		return -1;
	}
	if (p[5] != '1' || p[6] != '.' || (p[7] != '0' && p[7] != '1')) {
		*why = "unsupported HTTP version";
		return -1;
	}
	*minor = p[7] - '0';
	return 0;
}

static void
http_limits_get(const struct http_limits *lim, size_t *maxhead, size_t *maxh)
{
	*maxhead = HTTP_DEFAULT_MAX_HEAD_BYTES;
	*maxh = HTTP_DEFAULT_MAX_HEADERS;
	if (lim != NULL && lim->max_head_bytes != 0)
		*maxhead = lim->max_head_bytes;
	if (lim != NULL && lim->max_headers != 0 &&
	    lim->max_headers < HTTP_MAX_HEADERS)
		*maxh = lim->max_headers;
	if (*maxhead > INT_MAX)
		*maxhead = INT_MAX;
}

/*
 * Parse a request head at the start of buf (RFC 9112, strictly: contract
 * section 4.2a). Returns the head length, HTTP_PARTIAL, HTTP_TOO_LARGE or
 * HTTP_ERROR with a static reason in req->error. Spans in req point into
 * buf. Nothing is allocated; lim may be NULL for the defaults.
 */
int
http_parse_request(const char *buf, size_t len, struct http_request *req,
    const struct http_limits *lim)
{
	struct http_scan s;
	const char *p, *q, *end, *why = NULL;
	size_t maxhead, maxh;
	int rc, hl;

	memset(req, 0, offsetof(struct http_request, f.conn_tokens));
	http_limits_get(lim, &maxhead, &maxh);
	/* The request line is the one extra line the scan counts. */
	if ((hl = http_head_end(buf, len, maxhead, maxh + 1, &why)) < 0) {
		req->error = why;
		return hl;
	}
	memset(&s, 0, sizeof(s));
	p = buf;
	end = buf + hl;
	rc = HTTP_ERROR;

	q = p;
	while (HTTP_IS(*p, HTTP_CC_TCHAR))
		p++;
	if (p == q || *p != ' ') {
		why = "malformed method";
		goto out;
	}
	req->method.ptr = q;
	req->method.len = (size_t)(p - q);
	/* Authority-form and tunnels have no place behind the gateway. */
	if (http_mem_eq(q, req->method.len, "connect", 7)) {
		why = "CONNECT refused";
		goto out;
	}
	q = ++p;
	while (HTTP_IS(*p, HTTP_CC_TARGET))
		p++;
	if (*p != ' ' || p == q) {
		if (*p == '#')
			why = "fragment in target";
		else if (p == q)
			why = "empty target";
		else
			why = "invalid byte in target";
		goto out;
	}
	req->target.ptr = q;
	req->target.len = (size_t)(p - q);
	p++;
	if (http_parse_version(p, (size_t)(end - p), &req->version_minor,
	        &why) == -1)
		goto out;
	p += 8;
	if (p[0] != '\r' || p[1] != '\n') {
		why = "malformed request line";
		goto out;
	}
	p += 2;
	if (http_parse_target(req, &why) == -1)
		goto out;

	if ((rc = http_parse_fields(p, end, &req->f, maxh, &s, &why)) != 0)
		goto out;
	rc = HTTP_ERROR;

	if (s.has_te && req->version_minor == 0) {
		why = "Transfer-Encoding on HTTP/1.0";
		goto out;
	}
	if (s.nhost > 1) {
		why = "repeated Host";
		goto out;
	}
	if (s.nhost == 0 && req->version_minor == 1) {
		why = "missing Host";
		goto out;
	}
	if (s.nhost == 1) {
		req->host = s.host;
		if (req->form == HTTP_TARGET_ABSOLUTE &&
		    !http_span_caseeq(req->host, req->authority)) {
			why = "Host differs from target authority";
			goto out;
		}
	} else if (req->form == HTTP_TARGET_ABSOLUTE)
		req->host = req->authority;
	if (req->host.ptr != NULL &&
	    http_parse_host(req->host, &req->host_name, &req->port, &why) == -1)
		goto out;
	if (s.nexpect > 1) {
		why = "repeated Expect";
		goto out;
	}
	if (s.nexpect == 1) {
		if (!http_mem_eq(s.expect.ptr, s.expect.len, "100-continue",
		        12)) {
			why = "unsupported Expect";
			goto out;
		}
		/* RFC 9110 section 10.1.1: ignored on HTTP/1.0. */
		req->expect_continue = req->version_minor == 1;
	}

	if (req->f.chunked)
		req->f.body = HTTP_BODY_CHUNKED;
	else if (req->f.has_cl && req->f.content_length > 0)
		req->f.body = HTTP_BODY_LENGTH;
	else
		req->f.body = HTTP_BODY_NONE;
	if (req->version_minor == 1)
		req->f.keep_alive = !s.conn_close;
	else
		req->f.keep_alive = s.conn_keep_alive && !s.conn_close;
	rc = hl;
out:
	if (rc < 0)
		req->error = why;
	return rc;
}

/*
 * Parse a response head as http_parse_request() does, and decide how its
 * body is delimited (RFC 9112 section 6.3). request_was_head says the
 * response answers a HEAD request, so it has no body whatever it says.
 */
int
http_parse_response(const char *buf, size_t len, struct http_response *res,
    const struct http_limits *lim, int request_was_head)
{
	struct http_scan s;
	const char *p, *q, *end, *why = NULL;
	size_t maxhead, maxh;
	int rc, hl, st;

	memset(res, 0, offsetof(struct http_response, f.conn_tokens));
	http_limits_get(lim, &maxhead, &maxh);
	if ((hl = http_head_end(buf, len, maxhead, maxh + 1, &why)) < 0) {
		res->error = why;
		return hl;
	}
	memset(&s, 0, sizeof(s));
	p = buf;
	end = buf + hl;
	rc = HTTP_ERROR;

	if (http_parse_version(p, (size_t)(end - p), &res->version_minor,
	        &why) == -1)
		goto out;
	p += 8;
	if (p[0] != ' ' || !HTTP_IS(p[1], HTTP_CC_DIGIT) ||
	    !HTTP_IS(p[2], HTTP_CC_DIGIT) || !HTTP_IS(p[3], HTTP_CC_DIGIT)) {
		why = "malformed status code";
		goto out;
	}
	st = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
	if (st < 100 || st > 599) {
		why = "status code out of range";
		goto out;
	}
	res->status = st;
	p += 4;
	/* The SP before an empty reason is often left out; accept both. */
	if (*p == ' ') {
		q = ++p;
		while (HTTP_IS(*p, HTTP_CC_VALUE))
			p++;
		res->reason.ptr = q;
		res->reason.len = (size_t)(p - q);
	} else
		res->reason.ptr = p;
	if (p[0] != '\r' || p[1] != '\n') {
		why = "malformed status line";
		goto out;
	}
	p += 2;

	if ((rc = http_parse_fields(p, end, &res->f, maxh, &s, &why)) != 0)
		goto out;
	rc = HTTP_ERROR;

	if (s.has_te && res->version_minor == 0) {
		why = "Transfer-Encoding on HTTP/1.0";
		goto out;
	}
	/* RFC 9110 sections 8.6 and 6.4.1: no framing on 1xx and 204. */
	if ((st < 200 || st == 204) &&
	    (s.has_te || (res->f.has_cl && res->f.content_length != 0))) {
		why = "framing header on a response without body";
		goto out;
	}

	if (res->version_minor == 1)
		res->f.keep_alive = !s.conn_close;
	else
		res->f.keep_alive = s.conn_keep_alive && !s.conn_close;
	if (st < 200 || st == 204 || st == 304 || request_was_head)
		res->f.body = HTTP_BODY_NONE;
	else if (res->f.chunked)
		res->f.body = HTTP_BODY_CHUNKED;
	else if (res->f.has_cl)
		res->f.body = res->f.content_length > 0 ? HTTP_BODY_LENGTH
		                                        : HTTP_BODY_NONE;
	else {
		res->f.body = HTTP_BODY_CLOSE;
		res->f.keep_alive = 0;
	}
	rc = hl;
out:
	if (rc < 0)
		res->error = why;
	return rc;
}

/*
 * Prepare a chunked decoder. Limits come from lim (NULL or zero fields:
 * the defaults; max_body_bytes 0 is unlimited).
 */
void
http_chunked_init(struct http_chunked *c, const struct http_limits *lim)
{
	memset(c, 0, sizeof(*c));
	c->state = HTTP_CHUNKED_SIZE;
	c->max_line = HTTP_DEFAULT_MAX_CHUNK_LINE;
	c->max_trailer = HTTP_DEFAULT_MAX_TRAILER_BYTES;
	if (lim == NULL)
		return;
	c->max_body = lim->max_body_bytes;
	if (lim->max_chunk_line != 0)
		c->max_line = lim->max_chunk_line;
	if (lim->max_trailer_bytes != 0)
		c->max_trailer = lim->max_trailer_bytes;
}

/* Sub-states of a chunk extension: ;name[=token|quoted-string]. */
enum http_ext {
	HTTP_EXT_NAME0 = 0, /* first byte of a name */
	HTTP_EXT_NAME,
	HTTP_EXT_VAL0, /* first byte after '=' */
	HTTP_EXT_TOKEN,
	HTTP_EXT_QUOTED,
	HTTP_EXT_QPAIR, /* after a backslash */
	HTTP_EXT_QEND,  /* after the closing quote */
};

/* Sub-states of a trailer line. */
enum http_tline {
	HTTP_TLINE_START = 0,
	HTTP_TLINE_NAME,
	HTTP_TLINE_VALUE,
	HTTP_TLINE_EMPTY, /* the CR of the final empty line was seen */
};

static int
http_hexval(int ch)
{
	if (ch <= '9')
		return ch - '0';
	return (ch | 0x20) - 'a' + 10;
}

/*
 * One byte of a chunk extension. Returns 1 when it ended the size line (a
 * CR), 0 to go on, -1 on a syntax error. Whitespace is not allowed.
 */
static int
http_chunked_ext(struct http_chunked *c, int ch)
{
	switch (c->ext) {
	case HTTP_EXT_NAME0:
		if (!HTTP_IS(ch, HTTP_CC_TCHAR))
			return -1;
		c->ext = HTTP_EXT_NAME;
		return 0;
	case HTTP_EXT_NAME:
	case HTTP_EXT_TOKEN:
		if (HTTP_IS(ch, HTTP_CC_TCHAR))
			return 0;
		if (ch == '=' && c->ext == HTTP_EXT_NAME) {
			c->ext = HTTP_EXT_VAL0;
			return 0;
		}
		break;
	case HTTP_EXT_VAL0:
		if (ch == '"')
			c->ext = HTTP_EXT_QUOTED;
		else if (HTTP_IS(ch, HTTP_CC_TCHAR))
			c->ext = HTTP_EXT_TOKEN;
		else
			return -1;
		return 0;
	case HTTP_EXT_QUOTED:
		if (ch == '"')
			c->ext = HTTP_EXT_QEND;
		else if (ch == '\\')
			c->ext = HTTP_EXT_QPAIR;
		else if (!HTTP_IS(ch, HTTP_CC_QDTEXT))
			return -1;
		return 0;
	case HTTP_EXT_QPAIR:
		if (!HTTP_IS(ch, HTTP_CC_VALUE))
			return -1;
		c->ext = HTTP_EXT_QUOTED;
		return 0;
	case HTTP_EXT_QEND:
		break;
	}
	if (ch == ';') {
		c->ext = HTTP_EXT_NAME0;
		return 0;
	}
	return ch == '\r' ? 1 : -1;
}

/*
 * One byte of a trailer section. Returns 1 when the line ended with a CR,
 * 0 to go on, -1 on a syntax error. Trailer lines follow header syntax.
 */
static int
http_chunked_tline(struct http_chunked *c, int ch, const char **why)
{
	switch (c->tline) {
	case HTTP_TLINE_START:
		if (ch == '\r') {
			c->tline = HTTP_TLINE_EMPTY;
			return 1;
		}
		if (HTTP_IS_OWS(ch)) {
			*why = "obs-fold in trailer";
			return -1;
		}
		if (!HTTP_IS(ch, HTTP_CC_TCHAR)) {
			*why = "trailer name is not a token";
			return -1;
		}
		c->tline = HTTP_TLINE_NAME;
		return 0;
	case HTTP_TLINE_NAME:
		if (HTTP_IS(ch, HTTP_CC_TCHAR))
			return 0;
		if (ch == ':') {
			c->tline = HTTP_TLINE_VALUE;
			return 0;
		}
		*why = HTTP_IS_OWS(ch) ? "whitespace before colon in trailer"
		                       : "malformed trailer line";
		return -1;
	case HTTP_TLINE_VALUE:
		if (HTTP_IS(ch, HTTP_CC_VALUE))
			return 0;
		if (ch == '\r')
			return 1;
		*why = "control character in trailer";
		return -1;
	default:
		*why = "malformed trailer line";
		return -1;
	}
}

/*
 * Decode chunked framing (RFC 9112 section 7.1) from buf, stopping after
 * the first run of chunk data, at the end of the message or at the end of
 * buf. *consumed says how far it got; call again with the rest. The data
 * run, if any, is buf[*data_off, *data_off + *data_len). Returns
 * HTTP_CHUNKED_MORE, HTTP_CHUNKED_DONE, HTTP_TOO_LARGE or HTTP_ERROR with
 * a static reason in c->error; after an error every call fails.
 */
int
http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
    size_t *consumed, size_t *data_off, size_t *data_len)
{
	const char *p = buf, *end = buf + len, *why = NULL;
	size_t n;
	int ch, r;

	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	if (c->state == HTTP_CHUNKED_END)
		return HTTP_CHUNKED_DONE;
	if (c->state == HTTP_CHUNKED_FAILED)
		return HTTP_ERROR;
	while (p < end) {
		ch = (unsigned char)*p;
		switch (c->state) {
		case HTTP_CHUNKED_SIZE:
			if (++c->line > c->max_line) {
				why = "chunk size line too long";
				goto fail;
			}
			if (HTTP_IS(ch, HTTP_CC_HEX)) {
				if (++c->ndigits > HTTP_MAX_CHUNK_HEX) {
					why = "chunk size has too many digits";
					goto fail;
				}
				c->size =
				    c->size * 16 + (uint64_t)http_hexval(ch);
				if (c->size > HTTP_MAX_CONTENT_LENGTH) {
					why = "chunk size too large";
					goto fail;
				}
			} else if (c->ndigits == 0) {
				why = "chunk size is not hex";
				goto fail;
			} else if (ch == ';') {
				c->state = HTTP_CHUNKED_EXT;
				c->ext = HTTP_EXT_NAME0;
			} else if (ch == '\r')
				c->state = HTTP_CHUNKED_SIZE_LF;
			else {
				why = "malformed chunk size line";
				goto fail;
			}
			p++;
			break;
		case HTTP_CHUNKED_EXT:
			if (++c->line > c->max_line) {
				why = "chunk size line too long";
				goto fail;
			}
			if ((r = http_chunked_ext(c, ch)) == -1) {
				why = "malformed chunk extension";
				goto fail;
			}
			if (r == 1)
				c->state = HTTP_CHUNKED_SIZE_LF;
			p++;
			break;
		case HTTP_CHUNKED_SIZE_LF:
			if (ch != '\n') {
				why = "bare CR in chunk size line";
				goto fail;
			}
			p++;
			c->line = 0;
			c->ndigits = 0;
			if (c->size == 0) {
				c->state = HTTP_CHUNKED_TRAILER;
				c->tline = HTTP_TLINE_START;
				break;
			}
			if (c->max_body != 0 &&
			    c->size > c->max_body - c->total) {
				c->error = "chunked body too large";
				c->state = HTTP_CHUNKED_FAILED;
				*consumed = (size_t)(p - buf);
				return HTTP_TOO_LARGE;
			}
			c->remaining = c->size;
			c->state = HTTP_CHUNKED_DATA;
			break;
		case HTTP_CHUNKED_DATA:
			n = (size_t)(end - p);
			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			*data_off = (size_t)(p - buf);
			*data_len = n;
			c->remaining -= n;
			c->total += n;
			p += n;
			if (c->remaining == 0) {
				c->state = HTTP_CHUNKED_DATA_CR;
				c->size = 0;
			}
			*consumed = (size_t)(p - buf);
			return HTTP_CHUNKED_MORE;
		case HTTP_CHUNKED_DATA_CR:
			if (ch != '\r') {
				why = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = HTTP_CHUNKED_DATA_LF;
			p++;
			break;
		case HTTP_CHUNKED_DATA_LF:
			if (ch != '\n') {
				why = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = HTTP_CHUNKED_SIZE;
			p++;
			break;
		case HTTP_CHUNKED_TRAILER:
			if (++c->trailer > c->max_trailer) {
				why = "trailer section too large";
				goto fail;
			}
			if ((r = http_chunked_tline(c, ch, &why)) == -1)
				goto fail;
			if (r == 1)
				c->state = HTTP_CHUNKED_TRAILER_LF;
			p++;
			break;
		case HTTP_CHUNKED_TRAILER_LF:
			if (++c->trailer > c->max_trailer) {
				why = "trailer section too large";
				goto fail;
			}
			if (ch != '\n') {
				why = "bare CR in trailer";
				goto fail;
			}
			p++;
			if (c->tline == HTTP_TLINE_EMPTY) {
				c->state = HTTP_CHUNKED_END;
				*consumed = (size_t)(p - buf);
				return HTTP_CHUNKED_DONE;
			}
			c->state = HTTP_CHUNKED_TRAILER;
			c->tline = HTTP_TLINE_START;
			break;
		case HTTP_CHUNKED_END:
		case HTTP_CHUNKED_FAILED:
			why = "decoder misuse";
			goto fail;
		}
	}
	*consumed = len;
	return HTTP_CHUNKED_MORE;
fail:
	c->state = HTTP_CHUNKED_FAILED;
	c->error = why;
	*consumed = (size_t)(p - buf);
	return HTTP_ERROR;
}

static const struct http_header *
http_find(const struct http_fields *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->nheaders; i++)
		if (http_span_eq(f->headers[i].name, name))
			return &f->headers[i];
	return NULL;
}

/* The first header of f called name (any case), or NULL. Borrowed. */
const struct http_header *
http_fields_find(const struct http_fields *f, const char *name)
{
	return http_find(f, name);
}

/* The first request header called name (any case), or NULL. Borrowed. */
const struct http_header *
http_header_find(const struct http_request *req, const char *name)
{
	return http_find(&req->f, name);
}

/* The first response header called name (any case), or NULL. Borrowed. */
const struct http_header *
http_response_header_find(const struct http_response *res, const char *name)
{
	return http_find(&res->f, name);
}

/*
 * Whether the comma-separated list value/len holds token, ignoring case
 * and optional whitespace around elements. Returns 1 or 0.
 */
int
http_token_list_has(const char *value, size_t len, const char *token)
{
	const char *p = value, *end = value + len, *q, *r;
	struct http_span el;

	while (p < end) {
		q = memchr(p, ',', (size_t)(end - p));
		r = q == NULL ? end : q;
		while (p < r && HTTP_IS_OWS(*p))
			p++;
		el.ptr = p;
		while (r > p && HTTP_IS_OWS(r[-1]))
			r--;
		el.len = (size_t)(r - p);
		if (http_span_eq(el, token))
			return 1;
		if (q == NULL)
			break;
		p = q + 1;
	}
	return 0;
}

/* The standard reason phrase for status, or a generic one for its class. */
const char *
http_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 421:
		return "Misdirected Request";
	case 426:
		return "Upgrade Required";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		break;
	}
	if (status >= 100 && status < 200)
		return "Informational";
	if (status >= 200 && status < 300)
		return "Success";
	if (status >= 300 && status < 400)
		return "Redirection";
	if (status >= 400 && status < 500)
		return "Client Error";
	return "Server Error";
}
