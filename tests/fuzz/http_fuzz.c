/* SPDX-License-Identifier: ISC */
/*
 * http_fuzz.c - fuzz the request parser, the response parser and the
 * chunked decoder with one input, and check their invariants.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define HTTP_FUZZ_MAX 65536

/* Abort unless the span lies inside buf[0, len). */
static void
http_fuzz_inside(struct http_span s, const char *buf, size_t len)
{
	if (s.ptr == NULL) {
		if (s.len != 0)
			abort();
		return;
	}
	if (s.ptr < buf || s.ptr > buf + len ||
	    s.len > (size_t)(buf + len - s.ptr))
		abort();
}

/* Abort unless a field value holds only HTAB, SP, VCHAR or obs-text. */
static void
http_fuzz_clean(struct http_span s)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < s.len; i++) {
		c = (unsigned char)s.ptr[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			abort();
	}
	if (s.len > 0 &&
	    (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[s.len - 1] == ' ' ||
	        s.ptr[s.len - 1] == '\t'))
		abort();
}

static void
http_fuzz_fields(const struct http_fields *f, const char *buf, size_t hl)
{
	size_t i;

	if (f->nheaders > HTTP_MAX_HEADERS ||
	    f->nconn_tokens > HTTP_MAX_CONN_TOKENS)
		abort();
	if (f->has_cl && f->chunked)
		abort();
	if (f->has_cl && f->content_length > HTTP_MAX_CONTENT_LENGTH)
		abort();
	if (f->body == HTTP_BODY_LENGTH && !f->has_cl)
		abort();
	for (i = 0; i < f->nheaders; i++) {
		http_fuzz_inside(f->headers[i].name, buf, hl);
		http_fuzz_inside(f->headers[i].value, buf, hl);
		if (f->headers[i].name.len == 0)
			abort();
		http_fuzz_clean(f->headers[i].value);
	}
	for (i = 0; i < f->nconn_tokens; i++)
		http_fuzz_inside(f->conn_tokens[i], buf, hl);
}

/*
 * Decode buf/len with the chunked decoder, in one piece or in pieces of
 * step bytes. Returns the final result; *out gets the decoded data, *end
 * where decoding stopped.
 */
static int
http_fuzz_chunked(const char *buf, size_t len, size_t step, char *out,
    size_t *outlen, size_t *end)
{
	struct http_limits lim;
	struct http_chunked c;
	size_t off = 0, n, used, doff, dl;
	int rc = HTTP_CHUNKED_MORE;

	memset(&lim, 0, sizeof(lim));
	lim.max_body_bytes = HTTP_FUZZ_MAX / 2;
	http_chunked_init(&c, &lim);
	*outlen = 0;
	while (off < len) {
		n = step == 0 || step > len - off ? len - off : step;
		rc = http_chunked_feed(&c, buf + off, n, &used, &doff, &dl);
		if (used > n || doff + dl > used)
			abort();
		if (rc == HTTP_CHUNKED_MORE && used == 0)
			abort();
		memcpy(out + *outlen, buf + off + doff, dl);
		*outlen += dl;
		off += used;
		if (rc != HTTP_CHUNKED_MORE)
			break;
	}
	if (rc == HTTP_ERROR && c.error == NULL)
		abort();
	if (c.total != *outlen)
		abort();
	*end = off;
	return rc;
}

/* The same result whether the input arrives whole or byte by byte. */
static void
http_fuzz_chunked_both(const char *buf, size_t len)
{
	char *a = NULL, *b = NULL;
	size_t alen, blen, aend, bend;
	int ra, rb;

	if ((a = malloc(len + 1)) == NULL || (b = malloc(len + 1)) == NULL)
		goto out;
	ra = http_fuzz_chunked(buf, len, 0, a, &alen, &aend);
	rb = http_fuzz_chunked(buf, len, 1 + len % 7, b, &blen, &bend);
	if (ra != rb || alen != blen || memcmp(a, b, alen) != 0)
		abort();
	if (ra == HTTP_CHUNKED_DONE && aend != bend)
		abort();
out:
	free(a);
	free(b);
}

static void
http_fuzz_request(const char *buf, size_t len)
{
	struct http_request *req = NULL;
	int rc;

	if ((req = malloc(sizeof(*req))) == NULL)
		return;
	rc = http_parse_request(buf, len, req, NULL);
	if (rc <= 0) {
		if (rc != HTTP_PARTIAL && req->error == NULL)
			abort();
		goto out;
	}
	if ((size_t)rc > len || memcmp(buf + rc - 4, "\r\n\r\n", 4) != 0)
		abort();
	http_fuzz_inside(req->method, buf, (size_t)rc);
	http_fuzz_inside(req->target, buf, (size_t)rc);
	http_fuzz_inside(req->path, buf, (size_t)rc);
	http_fuzz_inside(req->query, buf, (size_t)rc);
	http_fuzz_inside(req->host_name, buf, (size_t)rc);
	if (req->path.len == 0 || req->path.ptr[0] != '/')
		abort();
	if (req->version_minor == 1 && req->host.len == 0)
		abort();
	if (memchr(req->target.ptr, '#', req->target.len) != NULL)
		abort();
	http_fuzz_fields(&req->f, buf, (size_t)rc);
	if (req->f.chunked && req->version_minor == 0)
		abort();
	/* The head ends where it ends, whatever follows. */
	if (http_parse_request(buf, (size_t)rc, req, NULL) != rc)
		abort();
	if (http_parse_request(buf, (size_t)rc - 1, req, NULL) != HTTP_PARTIAL)
		abort();
	if (http_parse_request(buf, len, req, NULL) != rc)
		abort();
	if (req->f.body == HTTP_BODY_CHUNKED)
		http_fuzz_chunked_both(buf + rc, len - (size_t)rc);
out:
	free(req);
}

static void
http_fuzz_response(const char *buf, size_t len, int head)
{
	struct http_response *res = NULL;
	int rc;

	if ((res = malloc(sizeof(*res))) == NULL)
		return;
	rc = http_parse_response(buf, len, res, NULL, head);
	if (rc <= 0) {
		if (rc != HTTP_PARTIAL && res->error == NULL)
			abort();
		goto out;
	}
	if ((size_t)rc > len || res->status < 100 || res->status > 599)
		abort();
	http_fuzz_inside(res->reason, buf, (size_t)rc);
	http_fuzz_fields(&res->f, buf, (size_t)rc);
	if (head && res->f.body != HTTP_BODY_NONE)
		abort();
	if (res->f.body == HTTP_BODY_CLOSE && res->f.keep_alive)
		abort();
out:
	free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	if (size > HTTP_FUZZ_MAX)
		return 0;
	http_fuzz_request(buf, size);
	http_fuzz_response(buf, size, 0);
	http_fuzz_response(buf, size, 1);
	http_fuzz_chunked_both(buf, size);
	return 0;
}
