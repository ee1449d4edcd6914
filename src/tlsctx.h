/* tlsctx.h - OpenSSL contexts for listeners and upstreams, and their checks. */
#ifndef TLSCTX_H
#define TLSCTX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct conf_listener;
struct conf_upstream;
struct diag;

#define TLSCTX_MAX_CERT_LIST (64 * 1024) /* bytes of a peer's Certificate */
#define TLSCTX_EXPIRY_WARN_DAYS 30
#define TLSCTX_CRL_WARN_DAYS 7          /* CRL nextUpdate this close: warn */
#define TLSCTX_SESSION_CACHE_SIZE 20480 /* sessions per server context */
#define TLSCTX_MAX_KEY_FILE (64 * 1024) /* bytes of a private key file */

/*
 * Build the server context of a listener exactly as serve uses it: chain and
 * key (which must match), TLS 1.2+ (min_version), ECDHE+AEAD suites only,
 * security level 2, renegotiation refused, ALPN http/1.1 only, session id
 * context set, client verification against client_ca with CRL checks for
 * every CA in the chain when a CRL is given, at most verify_depth
 * intermediates, and the contract 4.2b leaf checks (clientAuth EKU, not a
 * CA). Problems (and expiry warnings) go to
 * dg naming the file. Returns an owned SSL_CTX, or NULL.
 */
SSL_CTX *tlsctx_server_new(const struct conf_listener *l, int64_t now,
    struct diag *dg);

/*
 * The client context for an upstream with tls (CA, optional client cert).
 * OpenSSL caches none of its sessions: install a new-session callback
 * (SSL_CTX_sess_set_new_cb) to keep them for resumption.
 */
SSL_CTX *tlsctx_upstream_new(const struct conf_upstream *u, int64_t now,
    struct diag *dg);

/* Bytes of an upstream context's identity (SHA-256). */
#define TLSCTX_ID_LEN 32

/*
 * A digest of what a resumed session of an upstream context skips: trust
 * store, client certificate and chain, tls.server_name. Returns 0 or -1.
 */
int tlsctx_upstream_id(SSL_CTX *ctx, const struct conf_upstream *u,
    unsigned char id[TLSCTX_ID_LEN]);

/*
 * Drop every cached session of a server context. A reload (new CRL, new
 * certificates) builds a new SSL_CTX instead, whose empty cache and fresh
 * ticket keys already stop old sessions and tickets from resuming; this
 * is for dropping sessions while keeping the context. Thread-safe.
 */
void tlsctx_flush_sessions(SSL_CTX *ctx);

/*
 * Prepare a client SSL of an upstream context for one connection: SNI and
 * certificate name check against tls.server_name, or else host (an IP
 * address is checked against the IP SANs and sends no SNI). Returns 0 or -1.
 */
int tlsctx_upstream_prepare(SSL *ssl, const struct conf_upstream *u,
    const char *host);

/*
 * The verify result of the last handshake on ssl as a short reason
 * ("certificate has expired", "certificate lacks clientAuth usage").
 */
const char *tlsctx_verify_reason(SSL *ssl);

#endif /* TLSCTX_H */
