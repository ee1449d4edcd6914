/* fwd.h - the heads that cross the gateway and its own answers (pure). */
#ifndef FWD_H
#define FWD_H

#include <stddef.h>
#include <stdint.h>

struct http_request;
struct http_response;

#define FWD_REQUEST_ID_LEN 32 /* hex digits of a request id (128 bits) */
#define FWD_ERROR_MAX 512     /* bytes of a whole error response */
#define FWD_IP_MAX 46         /* INET6_ADDRSTRLEN */
#define FWD_EXTRA 1024        /* bound on fixed text added to a head */

/*
 * An output buffer over caller storage (typically space reserved at the
 * end of an evbuffer). Appends never write past cap; one that does not
 * fit sets overflow and every later append is a no-op.
 */
struct fwd_out {
	char *p;
	size_t len, cap;
	int overflow;
};

void fwd_out_init(struct fwd_out *o, char *mem, size_t cap);
void fwd_out_add(struct fwd_out *o, const char *s, size_t n);

/*
 * What the gateway states about a request it forwards (contract 5). NULL
 * strings are left out; every value is written with control bytes
 * replaced by '?', so no value can end a header line.
 */
struct fwd_identity {
	const char *request_id;
	const char *department;
	const char *subject_dn; /* RFC 4514, escaped by peer.c */
	const char *serial;     /* upper-case hex */
	const char *resource;
	const char *grant;
	const char *purpose; /* the purpose header's value */
	size_t purpose_len;
	const char *case_id; /* the case header's value */
	size_t case_len;
	const char *client_ip; /* textual address, for Forwarded */
	int client_v6;         /* quote and bracket it (RFC 7239 section 6) */
	int masked; /* a mask obligation applies: ask for an identity,
	               whole body (no Accept-Encoding, no Range) */
};

/*
 * Bytes fwd_request_head can write at most for a head of head_len bytes
 * whose canonical path is path_len bytes.
 */
size_t fwd_request_bound(size_t head_len, size_t path_len,
    const struct fwd_identity *id);

/*
 * Write the request head the backend receives: origin-form target made
 * of the canonical path and the original query, HTTP/1.1; the client's
 * headers without hop-by-hop ones (Connection and what it names,
 * Keep-Alive, TE, Trailer, Upgrade, HTTP2-Settings, Proxy-Connection),
 * Expect (the gateway answers 100-continue itself), every X-Govgate-*
 * and client address claims (Forwarded, X-Forwarded-*, X-Real-IP); then
 * Host when the client sent none (the target's authority, else
 * default_host), and the identity headers and Forwarded, added last so
 * that nothing the client sent can remove them. Framing headers
 * (Content-Length, Transfer-Encoding: chunked) are kept: the body is
 * forwarded in the framing it came in. Returns 0, or -1 when o is too
 * small (never with fwd_request_bound bytes).
 */
int fwd_request_head(struct fwd_out *o, const struct http_request *req,
    const char *path, size_t path_len, const struct fwd_identity *id,
    const char *default_host);

/* The Connection header of an answer to the client. */
#define FWD_CONN_DEFAULT 0    /* none: the version's default applies */
#define FWD_CONN_CLOSE 1      /* Connection: close */
#define FWD_CONN_KEEP_ALIVE 2 /* Connection: keep-alive (HTTP/1.0 client) */

/* How the gateway delimits a response body towards its client. */
enum fwd_framing {
	FWD_FRAME_NONE = 0, /* no body (HEAD, 1xx, 204, 304): keep CL */
	FWD_FRAME_LENGTH,   /* the upstream's Content-Length, kept */
	FWD_FRAME_CHUNKED,  /* re-chunked by the gateway */
	FWD_FRAME_CLOSE,    /* until the gateway closes: no CL, no TE */
	FWD_FRAME_REPLACE,  /* a rewritten (masked) body of length bytes */
};

/*
 * Write the response head the client receives: status line as HTTP/1.1
 * with the upstream's status and reason, its headers without hop-by-hop
 * ones, framing headers and any X-Govgate-Request-Id, then framing per
 * fr, X-Govgate-Request-Id, and the Connection header conn asks for.
 * A replaced body also drops validators and digests of the original
 * (ETag, Content-MD5, Digest, Repr-Digest, Content-Digest). Returns 0, or
 * -1 when o is too small (never when cap is at least the upstream head's
 * length + FWD_EXTRA).
 */
int fwd_response_head(struct fwd_out *o, const struct http_response *res,
    const char *request_id, enum fwd_framing fr, uint64_t length, int conn);

/*
 * Write a whole answer of the gateway's own (contract 4.1):
 * status line, Content-Type: application/json, Content-Length,
 * Cache-Control: no-store, X-Govgate-Request-Id, Retry-After for 503,
 * the Connection header conn asks for, and the body
 * {"error":"<name>","reason":"<reason>","request_id":"<id>"}. reason and
 * request_id must be JSON-safe identifiers (they are checked: anything
 * else is written as "invalid"). Returns 0, or -1 when o is too small
 * (never with FWD_ERROR_MAX bytes).
 */
int fwd_error_response(struct fwd_out *o, int status, const char *reason,
    const char *request_id, int conn);

/*
 * The error name of a status in a denial body: "bad_request",
 * "forbidden", "too_many_requests", "unavailable", ... ("error" for
 * others).
 */
const char *fwd_error_name(int status);

/* The interim answer to Expect: 100-continue. */
#define FWD_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/*
 * Format a request id: FWD_REQUEST_ID_LEN lower-case hex digits of the
 * 16 bytes at rnd, NUL-terminated, into out.
 */
void fwd_request_id(const unsigned char rnd[16], char *out);

#endif /* FWD_H */
