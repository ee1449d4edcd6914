/* fwd.c - the heads that cross the gateway and its own answers (pure). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fwd.h"
#include "http.h"

#define FWD_LIT(o, s) fwd_out_add((o), (s), sizeof(s) - 1)
#define FWD_MAX_DEFAULT_HOST 255 /* bytes of default_host used */

void
fwd_out_init(struct fwd_out *o, char *mem, size_t cap)
{
	o->p = mem;
	o->len = 0;
	o->cap = cap;
	o->overflow = 0;
}

/* Append n bytes of s, or mark the buffer overflowed. */
void
fwd_out_add(struct fwd_out *o, const char *s, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
fwd_out_str(struct fwd_out *o, const char *s)
{
	fwd_out_add(o, s, strlen(s));
}

static void
fwd_out_span(struct fwd_out *o, struct http_span s)
{
	fwd_out_add(o, s.ptr, s.len);
}

static void
fwd_out_u64(struct fwd_out *o, uint64_t v)
{
	char buf[24];
	int n;

	n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	fwd_out_add(o, buf, (size_t)n);
}

/*
 * Append a header value the gateway states. Control bytes become '?', so
 * no value, whatever its origin, can end the line or start another.
 */
static void
fwd_out_value(struct fwd_out *o, const char *s, size_t n)
{
	char *d;
	size_t i;
	unsigned char ch;

	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	/* Into a local pointer: no store of o->len per byte. */
	d = o->p + o->len;
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		d[i] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
	}
	o->len += n;
}

/* name: value CRLF, the value sanitised; nothing when value is NULL. */
static void
fwd_out_header(struct fwd_out *o, const char *name, const char *value,
    size_t len)
{
	if (value == NULL)
		return;
	fwd_out_str(o, name);
	FWD_LIT(o, ": ");
	fwd_out_value(o, value, len);
	FWD_LIT(o, "\r\n");
}

static void
fwd_out_headerz(struct fwd_out *o, const char *name, const char *value)
{
	if (value != NULL)
		fwd_out_header(o, name, value, strlen(value));
}

/* Whether span s starts with the lower-case ASCII prefix, in any case. */
static int
fwd_has_prefix(struct http_span s, const char *prefix)
{
	size_t i, n = strlen(prefix);
	int ch;

	if (s.len < n)
		return 0;
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s.ptr[i];
		if (ch >= 'A' && ch <= 'Z')
			ch += 'a' - 'A';
		if (ch != prefix[i])
			return 0;
	}
	return 1;
}

/*
 * Request headers the backend never sees from the client: the gateway's
 * own namespace, address claims only the gateway may make, and what it
 * handles itself.
 */
static int
fwd_request_drop(const struct http_header *h, int masked)
{
	if (h->hop)
		return 1;
	if (fwd_has_prefix(h->name, "x-govgate-") ||
	    fwd_has_prefix(h->name, "x-forwarded-") ||
	    http_span_eq(h->name, "forwarded") ||
	    http_span_eq(h->name, "x-real-ip") ||
	    http_span_eq(h->name, "expect"))
		return 1;
	/* A masked body must come whole and unencoded to be masked. */
	if (masked &&
	    (http_span_eq(h->name, "accept-encoding") ||
	        http_span_eq(h->name, "range") ||
	        http_span_eq(h->name, "if-range")))
		return 1;
	return 0;
}

static size_t
fwd_strlen(const char *s)
{
	return s == NULL ? 0 : strlen(s);
}

size_t
fwd_request_bound(size_t head_len, size_t path_len,
    const struct fwd_identity *id)
{
	size_t n = head_len + path_len + FWD_EXTRA;

	n += fwd_strlen(id->request_id) + fwd_strlen(id->department) +
	    fwd_strlen(id->subject_dn) + fwd_strlen(id->serial) +
	    fwd_strlen(id->resource) + fwd_strlen(id->grant) +
	    fwd_strlen(id->client_ip);
	if (id->purpose != NULL)
		n += id->purpose_len;
	if (id->case_id != NULL)
		n += id->case_len;
	return n;
}

int
fwd_request_head(struct fwd_out *o, const struct http_request *req,
    const char *path, size_t path_len, const struct fwd_identity *id,
    const char *default_host)
{
	const struct http_header *h;
	size_t i, n;
	int have_host = 0;

	fwd_out_span(o, req->method);
	FWD_LIT(o, " ");
	fwd_out_add(o, path, path_len);
	if (req->has_query) {
		FWD_LIT(o, "?");
		fwd_out_span(o, req->query);
	}
	FWD_LIT(o, " HTTP/1.1\r\n");

	for (i = 0; i < req->f.nheaders; i++) {
		h = &req->f.headers[i];
		if (fwd_request_drop(h, id->masked))
			continue;
		if (http_span_eq(h->name, "host"))
			have_host = 1;
		fwd_out_span(o, h->name);
		FWD_LIT(o, ": ");
		fwd_out_span(o, h->value);
		FWD_LIT(o, "\r\n");
	}
	if (!have_host) {
		if (req->host.len > 0)
			fwd_out_header(o, "Host", req->host.ptr, req->host.len);
		else if (default_host != NULL) {
			n = strlen(default_host);
			if (n > FWD_MAX_DEFAULT_HOST)
				n = FWD_MAX_DEFAULT_HOST;
			fwd_out_header(o, "Host", default_host, n);
		}
	}
	if (id->masked)
		FWD_LIT(o, "Accept-Encoding: identity\r\n");

	/* After the client's headers: Connection cannot have named these. */
	fwd_out_headerz(o, "X-Govgate-Request-Id", id->request_id);
	fwd_out_headerz(o, "X-Govgate-Department", id->department);
	fwd_out_headerz(o, "X-Govgate-Client-Subject", id->subject_dn);
	fwd_out_headerz(o, "X-Govgate-Client-Serial", id->serial);
	fwd_out_headerz(o, "X-Govgate-Resource", id->resource);
	fwd_out_headerz(o, "X-Govgate-Grant", id->grant);
	if (id->purpose != NULL)
		fwd_out_header(o, "X-Govgate-Purpose", id->purpose,
		    id->purpose_len);
	if (id->case_id != NULL)
		fwd_out_header(o, "X-Govgate-Case", id->case_id, id->case_len);
	if (id->client_ip != NULL) {
		/* RFC 7239 section 6: an IPv6 node is a quoted-string. */
		FWD_LIT(o, "Forwarded: for=");
		if (id->client_v6)
			FWD_LIT(o, "\"[");
		fwd_out_value(o, id->client_ip, strlen(id->client_ip));
		if (id->client_v6)
			FWD_LIT(o, "]\"");
		FWD_LIT(o, ";proto=https\r\n");
	}
	FWD_LIT(o, "\r\n");
	return o->overflow ? -1 : 0;
}

/* Response headers the client never sees as the upstream sent them. */
static int
fwd_response_drop(const struct http_header *h, enum fwd_framing fr)
{
	if (h->hop)
		return 1;
	if (http_span_eq(h->name, "transfer-encoding") ||
	    http_span_eq(h->name, "x-govgate-request-id"))
		return 1;
	if (http_span_eq(h->name, "content-length"))
		return fr != FWD_FRAME_NONE && fr != FWD_FRAME_LENGTH;
	/* Validators and digests describe the body before masking. */
	if (fr == FWD_FRAME_REPLACE &&
	    (http_span_eq(h->name, "etag") ||
	        http_span_eq(h->name, "content-md5") ||
	        http_span_eq(h->name, "digest") ||
	        http_span_eq(h->name, "repr-digest") ||
	        http_span_eq(h->name, "content-digest")))
		return 1;
	return 0;
}

static void
fwd_out_conn(struct fwd_out *o, int conn)
{
	if (conn == FWD_CONN_CLOSE)
		FWD_LIT(o, "Connection: close\r\n");
	else if (conn == FWD_CONN_KEEP_ALIVE)
		FWD_LIT(o, "Connection: keep-alive\r\n");
}

int
fwd_response_head(struct fwd_out *o, const struct http_response *res,
    const char *request_id, enum fwd_framing fr, uint64_t length, int conn)
{
	const struct http_header *h;
	char line[16];
	size_t i;
	int n;

	n = snprintf(line, sizeof(line), "HTTP/1.1 %03d ", res->status);
	fwd_out_add(o, line, (size_t)n);
	fwd_out_span(o, res->reason);
	FWD_LIT(o, "\r\n");
	for (i = 0; i < res->f.nheaders; i++) {
		h = &res->f.headers[i];
		if (fwd_response_drop(h, fr))
			continue;
		fwd_out_span(o, h->name);
		FWD_LIT(o, ": ");
		fwd_out_span(o, h->value);
		FWD_LIT(o, "\r\n");
	}
	if (fr == FWD_FRAME_CHUNKED)
		FWD_LIT(o, "Transfer-Encoding: chunked\r\n");
	else if (fr == FWD_FRAME_REPLACE) {
		FWD_LIT(o, "Content-Length: ");
		fwd_out_u64(o, length);
		FWD_LIT(o, "\r\n");
	}
	fwd_out_headerz(o, "X-Govgate-Request-Id", request_id);
	fwd_out_conn(o, conn);
	FWD_LIT(o, "\r\n");
	return o->overflow ? -1 : 0;
}

const char *
fwd_error_name(int status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 403:
		return "forbidden";
	case 408:
		return "request_timeout";
	case 413:
		return "content_too_large";
	case 421:
		return "misdirected_request";
	case 429:
		return "too_many_requests";
	case 431:
		return "header_fields_too_large";
	case 500:
		return "internal_error";
	case 502:
		return "bad_gateway";
	case 503:
		return "unavailable";
	case 504:
		return "gateway_timeout";
	default:
		return "error";
	}
}

/* Reason codes and request ids are [a-z0-9_-]+: safe inside JSON quotes. */
static const char *
fwd_json_ident(const char *s)
{
	const char *p;

	if (s == NULL || *s == '\0')
		return "invalid";
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '-'))
			return "invalid";
	return s;
}

int
fwd_error_response(struct fwd_out *o, int status, const char *reason,
    const char *request_id, int conn)
{
	char body[FWD_ERROR_MAX / 2], line[64];
	int n, blen;

	reason = fwd_json_ident(reason);
	request_id = fwd_json_ident(request_id);
	blen = snprintf(body, sizeof(body),
	    "{\"error\":\"%s\",\"reason\":\"%s\",\"request_id\":\"%s\"}\n",
	    fwd_error_name(status), reason, request_id);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return -1;
	n = snprintf(line, sizeof(line), "HTTP/1.1 %03d ", status);
	fwd_out_add(o, line, (size_t)n);
	fwd_out_str(o, http_status_text(status));
	FWD_LIT(o,
	    "\r\nContent-Type: application/json\r\n"
	    "Content-Length: ");
	fwd_out_u64(o, (uint64_t)blen);
	FWD_LIT(o, "\r\nCache-Control: no-store\r\n");
	fwd_out_headerz(o, "X-Govgate-Request-Id", request_id);
	if (status == 503)
		FWD_LIT(o, "Retry-After: 1\r\n");
	fwd_out_conn(o, conn);
	FWD_LIT(o, "\r\n");
	fwd_out_add(o, body, (size_t)blen);
	return o->overflow ? -1 : 0;
}

void
fwd_request_id(const unsigned char rnd[16], char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 16; i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 0xF];
	}
	out[FWD_REQUEST_ID_LEN] = '\0';
}
