/* SPDX-License-Identifier: ISC */
/* http.h - strict HTTP/1.1 head parsing and chunked decoding (pure). */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Results of http_parse_request() and http_parse_response(); a positive
 * result is the length of the complete head. HTTP_TOO_LARGE means the
 * head (or header count) passed its limit: 431 for a request, 502 for a
 * response. HTTP_ERROR is a malformed or ambiguous message: 400 for a
 * request, 502 for a response. The chunked decoder uses the same codes.
 */
/*
 * What is refused, and the decisions taken where RFC 9112 leaves room
 * (contract section 4.2a):
 * - line endings are CRLF only; a leading empty line is refused;
 * - targets are origin-form or http(s) absolute-form with a path; no
 *   asterisk- or authority-form, no CONNECT, only bytes 0x21-0x7E, no '#';
 * - Host is reg-name (letters, digits, "-._~"), IPv4 or [IPv6], with an
 *   optional port 1-65535; no percent-encoding, sub-delims or zone ids;
 * - Content-Length is digits only (leading zeros allowed), at most 2^53;
 *   one header, no list; Transfer-Encoding is exactly "chunked", once;
 * - Connection may not name Host, Content-Length or Transfer-Encoding;
 * - Expect may only be "100-continue";
 * - chunk extensions are accepted only as ;token[=token|quoted-string]
 *   without whitespace, and the size line is bounded.
 */
#define HTTP_PARTIAL (-1)
#define HTTP_ERROR (-2)
#define HTTP_TOO_LARGE (-3)

#define HTTP_MAX_HEADERS 100    /* hard bound on header lines in a head */
#define HTTP_MAX_CONN_TOKENS 16 /* tokens over all Connection headers */
#define HTTP_MAX_CONTENT_LENGTH (UINT64_C(1) << 53) /* CL and chunk size */
#define HTTP_MAX_CHUNK_HEX 16 /* hex digits of a chunk size */

/* Defaults for a zero field of struct http_limits (or a NULL limits). */
#define HTTP_DEFAULT_MAX_HEAD_BYTES (16 * 1024)
#define HTTP_DEFAULT_MAX_HEADERS HTTP_MAX_HEADERS
#define HTTP_DEFAULT_MAX_CHUNK_LINE 1024
#define HTTP_DEFAULT_MAX_TRAILER_BYTES 4096

struct http_limits {
	size_t max_head_bytes;    /* whole head, final CRLF CRLF included */
	size_t max_headers;       /* clamped to HTTP_MAX_HEADERS */
	uint64_t max_body_bytes;  /* chunked data in total; 0: unlimited */
	size_t max_chunk_line;    /* chunk-size line, extensions included */
	size_t max_trailer_bytes; /* all trailer lines with their CRLFs */
};

/* A view into the caller's buffer: never NUL-terminated, never owned. */
struct http_span {
	const char *ptr;
	size_t len;
};

/*
 * hop is set for Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Upgrade, HTTP2-Settings and every header named in Connection. The
 * framing headers (Content-Length, Transfer-Encoding) are the caller's.
 */
struct http_header {
	struct http_span name;  /* a token, as sent */
	struct http_span value; /* leading and trailing OWS trimmed */
	int hop;                /* hop-by-hop: the proxy must not forward it */
};

/* How the message body is delimited (RFC 9112 section 6.3). */
enum http_body {
	HTTP_BODY_NONE = 0, /* no body */
	HTTP_BODY_LENGTH,   /* content_length bytes */
	HTTP_BODY_CHUNKED,  /* use struct http_chunked */
	HTTP_BODY_CLOSE,    /* response only: until the server closes */
};

enum http_target_form {
	HTTP_TARGET_ORIGIN = 0, /* "/path?query" */
	HTTP_TARGET_ABSOLUTE,   /* "http://authority/path?query" */
};

/*
 * What the parser found in a head. Every span points into the buffer that
 * was parsed and is valid only while that buffer is unchanged.
 */
struct http_fields {
	uint64_t content_length; /* valid when has_cl */
	int has_cl;
	int chunked;    /* Transfer-Encoding: chunked */
	int keep_alive; /* per version, Connection and body framing */
	int upgrade;    /* an Upgrade header was present */
	enum http_body body;
	size_t nconn_tokens;
	size_t nheaders;
	/* The arrays stay last: the parser clears only what comes before. */
	struct http_span conn_tokens[HTTP_MAX_CONN_TOKENS]; /* Connection */
	struct http_header headers[HTTP_MAX_HEADERS];
};

struct http_request {
	const char *error; /* static reason after HTTP_ERROR/HTTP_TOO_LARGE */
	struct http_span method;
	struct http_span target; /* the request-target as sent */
	struct http_span origin; /* its origin-form part: path[?query] */
	struct http_span path;   /* origin up to '?' */
	struct http_span query;  /* after '?', may be empty */
	int has_query;
	enum http_target_form form;
	struct http_span scheme;    /* absolute-form only: "http", "https" */
	struct http_span authority; /* absolute-form only */
	int version_minor;          /* 0 or 1 */
	struct http_span host;      /* Host value, or the authority on 1.0 */
	struct http_span host_name; /* host without port and brackets */
	unsigned port;              /* 0: none given */
	int expect_continue;        /* Expect: 100-continue on HTTP/1.1 */
	struct http_fields f;
};

struct http_response {
	const char *error;
	int version_minor;
	int status; /* 100-599 */
	struct http_span reason;
	struct http_fields f;
};

/*
 * Parse a request head at the start of buf. Returns the head length
 * (> 0), HTTP_PARTIAL when more bytes are needed, HTTP_TOO_LARGE or
 * HTTP_ERROR with a static reason in req->error. lim may be NULL. The
 * caller may re-parse from the start after each read: an incomplete head
 * costs one memchr() pass. The body limit (413) is the caller's check
 * against f.content_length, or the chunked decoder's.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
    const struct http_limits *lim);

/*
 * Parse a response head as http_parse_request() does. request_was_head
 * says the request was HEAD, so the response has no body. A 1xx head is
 * interim: the final response follows it. 101 is reported like any other
 * status; the gateway never forwards Upgrade, so it should treat it as an
 * upstream error.
 */
int http_parse_response(const char *buf, size_t len, struct http_response *res,
    const struct http_limits *lim, int request_was_head);

enum http_chunked_state {
	HTTP_CHUNKED_SIZE = 0,   /* hex digits of a chunk size */
	HTTP_CHUNKED_EXT,        /* after ';' of a chunk extension */
	HTTP_CHUNKED_SIZE_LF,    /* CR seen after the size line */
	HTTP_CHUNKED_DATA,       /* chunk data */
	HTTP_CHUNKED_DATA_CR,    /* CR expected after the data */
	HTTP_CHUNKED_DATA_LF,    /* LF expected after the data */
	HTTP_CHUNKED_TRAILER,    /* trailer line, or the final empty line */
	HTTP_CHUNKED_TRAILER_LF, /* CR seen after a trailer line */
	HTTP_CHUNKED_END,        /* message complete */
	HTTP_CHUNKED_FAILED,     /* an error was reported */
};

/*
 * A chunked body decoder. Zero-filled plus http_chunked_init() is ready;
 * it owns nothing, so there is nothing to free.
 */
struct http_chunked {
	enum http_chunked_state state;
	const char *error;
	uint64_t size;      /* size of the chunk being read */
	uint64_t remaining; /* data bytes left in this chunk */
	uint64_t total;     /* data bytes so far */
	size_t line;        /* bytes of the current size or trailer line */
	size_t ndigits;
	size_t trailer; /* trailer bytes so far */
	int ext;        /* sub-state inside an extension */
	int tline;      /* sub-state inside a trailer line */
	uint64_t max_body;
	size_t max_line;
	size_t max_trailer;
};

#define HTTP_CHUNKED_MORE 0 /* feed more bytes */
#define HTTP_CHUNKED_DONE 1 /* the last chunk and trailers are complete */

void http_chunked_init(struct http_chunked *c, const struct http_limits *lim);

/*
 * Decode framing from buf. Consumes bytes up to the end of the first run
 * of chunk data, the end of the message, or the end of buf, and sets
 * *consumed; that run, if any, is buf[*data_off, *data_off + *data_len).
 * Returns HTTP_CHUNKED_MORE, HTTP_CHUNKED_DONE (bytes after *consumed
 * belong to the next message), HTTP_TOO_LARGE (data above max_body_bytes,
 * reported when the chunk size is read) or HTTP_ERROR with a static
 * reason in c->error. Consumed framing has been validated, so a proxy may
 * forward buf[0, *consumed) as it is, or re-frame the data runs.
 */
int http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
    size_t *consumed, size_t *data_off, size_t *data_len);

const struct http_header *http_header_find(const struct http_request *req,
    const char *name);
const struct http_header *http_response_header_find(
    const struct http_response *res, const char *name);
const struct http_header *http_fields_find(const struct http_fields *f,
    const char *name);
int http_span_eq(struct http_span s, const char *lit);
int http_token_list_has(const char *value, size_t len, const char *token);
const char *http_status_text(int status);

#endif /* HTTP_H */
