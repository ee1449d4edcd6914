/* tlsctx.h - OpenSSL contexts for listeners and upstreams, and their checks. */
#ifndef TLSCTX_H
#define TLSCTX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct conf_listener;
struct conf_upstream;
struct diag;

#define TLSCTX_VERIFY_DEPTH 4		/* intermediates below a trusted CA */
#define TLSCTX_MAX_CERT_LIST (64 * 1024) /* bytes of a peer's Certificate */
#define TLSCTX_EXPIRY_WARN_DAYS 30

/*
 * Build the server context of a listener exactly as serve uses it: chain and
 * key (which must match), TLS 1.2+ (min_version), ECDHE+AEAD suites only,
 * security level 2, renegotiation refused, ALPN http/1.1 only, session id
 * context set, client verification against client_ca with CRL checks for
 * every CA in the chain when a CRL is given, and the contract 4.2b leaf
 * checks (clientAuth EKU, not a CA). Problems (and expiry warnings) go to
 * dg naming the file. Returns an owned SSL_CTX, or NULL.
 */
SSL_CTX *tlsctx_server_new(const struct conf_listener *l, int64_t now,
    struct diag *dg);

/* The client context for an upstream with tls (CA, optional client cert). */
SSL_CTX *tlsctx_upstream_new(const struct conf_upstream *u, int64_t now,
    struct diag *dg);

/*
 * The verify result of the last handshake on ssl as a short reason
 * ("certificate has expired", "certificate lacks clientAuth usage").
 */
const char *tlsctx_verify_reason(SSL *ssl);

#endif /* TLSCTX_H */
