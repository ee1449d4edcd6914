/* proxyproto.h - strict PROXY protocol v1/v2 header parsing (pure). */
#ifndef PROXYPROTO_H
#define PROXYPROTO_H

#include <stddef.h>

#include <sys/socket.h>

#define PROXYPROTO_V1_MAX 107  /* bytes of a v1 line, CRLF included */
#define PROXYPROTO_V2_MAX 1024 /* bytes of a v2 header we accept */

#define PROXYPROTO_PARTIAL (-1) /* a valid prefix: read more */
#define PROXYPROTO_ERROR (-2)   /* not a valid header: close */

/* What a balancer says about the connection it forwards. */
struct proxyproto_addr {
	int local; /* LOCAL (v2) or UNKNOWN (v1): keep the socket's own */
	struct sockaddr_storage src, dst;
	socklen_t srclen, dstlen;
	int version; /* 1 or 2 */
};

/*
 * Parse a PROXY protocol header (v1 text or v2 binary) at the start of
 * buf. Returns the bytes it takes (> 0) with out filled, PROXYPROTO_PARTIAL
 * when buf is a proper prefix of a header, or PROXYPROTO_ERROR with a
 * static reason in *why. Anything that is not exactly a header of the
 * spec is an error: no leniency for spaces, case, leading zeros or
 * address families. Needs no more than PROXYPROTO_V2_MAX bytes.
 */
int proxyproto_parse(const unsigned char *buf, size_t len,
    struct proxyproto_addr *out, const char **why);

#endif /* PROXYPROTO_H */
