/* tlsctx_test.c - TLS contexts: load checks and in-memory handshakes. */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "diag.h"
#include "tap.h"
#include "tlsctx.h"

/*
 * Files come from certs/mkpki.sh plus the extras tlsctx_test.sh makes, in
 * the folder given as argv[1]. A row whose file is missing is skipped.
 */
#define PATHBUF 600
#define HS_ROUNDS 64

#define GW_CRT "gateway.crt"
#define GW_KEY "gateway.key"
#define DEPT_CA "departments-ca.pem"
#define DEPT_CRL "departments.crl"

static char dir[512];

static char *
path(const char *name, char *buf, size_t len)
{
	if (name == NULL)
		return NULL;
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* 1 when every named file exists; else a SKIP line is printed. */
static int
have(const char *what, const char *a, const char *b, const char *c,
    const char *d)
{
	const char *v[4] = { a, b, c, d };
	char buf[PATHBUF];
	size_t i;

	for (i = 0; i < nitems(v); i++) {
		if (v[i] == NULL || *v[i] == '\0' || strcmp(v[i], "-") == 0)
			continue;
		if (strncmp(v[i], "missing", 7) == 0)
			continue;
		if (access(path(v[i], buf, sizeof(buf)), F_OK) != 0) {
			tap_ok(1, "%s # SKIP %s not generated", what, v[i]);
			return 0;
		}
	}
	return 1;
}

/* 1 when a diagnostic of kind contains text. */
static int
diag_has(const struct diag *dg, enum diag_kind kind, const char *text)
{
	size_t i;

	for (i = 0; i < dg->n; i++)
		if (dg->v[i].kind == kind &&
		    strstr(dg->v[i].text, text) != NULL)
			return 1;
	return 0;
}

static void
diag_show(const struct diag *dg)
{
	size_t i;

	for (i = 0; i < dg->n; i++)
		tap_diag("%s", dg->v[i].text);
}

/*
 * A listener built from file names in the PKI folder ("-": none), allowing
 * depth intermediates in client chains.
 */
static SSL_CTX *
server_ctx_depth(const char *cert, const char *key, const char *ca,
    const char *crl, enum conf_client_auth auth, int minv, int depth,
    struct diag *dg)
{
	char name[] = "egov";
	char b1[PATHBUF], b2[PATHBUF], b3[PATHBUF], b4[PATHBUF];
	struct conf_listener l;

	memset(&l, 0, sizeof(l));
	l.name = name;
	l.tls.certificate = path(cert, b1, sizeof(b1));
	l.tls.key = path(key, b2, sizeof(b2));
	l.tls.client_ca = path(ca, b3, sizeof(b3));
	l.tls.crl = crl == NULL || strcmp(crl, "-") == 0
	    ? NULL
	    : path(crl, b4, sizeof(b4));
	l.tls.client_auth = auth;
	l.tls.min_version = minv;
	l.tls.verify_depth = depth;
	return tlsctx_server_new(&l, (int64_t)time(NULL), dg);
}

/* A listener with the default verify_depth. */
static SSL_CTX *
server_ctx(const char *cert, const char *key, const char *ca, const char *crl,
    enum conf_client_auth auth, int minv, struct diag *dg)
{
	return server_ctx_depth(cert, key, ca, crl, auth, minv,
	    CONF_DEFAULT_VERIFY_DEPTH, dg);
}

/* Load-time checks of tlsctx_server_new. */
static const struct {
	const char *name;
	const char *cert, *key, *ca, *crl;
	int minv;
	int ok;           /* a context is built */
	const char *err;  /* substring of an error */
	const char *warn; /* substring of a warning */
} builds[] = {
	{ "good listener with CRLs", GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 1, NULL, NULL },
	{ "good listener without CRL", GW_CRT, GW_KEY, DEPT_CA, "-",
	    TLS1_2_VERSION, 1, NULL, NULL },
	{ "TLS 1.3 only listener", GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
	    TLS1_3_VERSION, 1, NULL, NULL },
	{ "min_version TLS 1.1 refused", GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
	    TLS1_1_VERSION, 0, "min_version must be TLSv1.2 or TLSv1.3", NULL },
	{ "key of another certificate", GW_CRT, "renshe.key", DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0,
	    "renshe.key: private key does not match the certificate in ",
	    NULL },
	{ "group-readable key", GW_CRT, "gateway-0640.key", DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0,
	    "gateway-0640.key: private key is accessible by group or others "
	    "(mode 0640)",
	    NULL },
	{ "world-readable key", GW_CRT, "gateway-0604.key", DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0, "(mode 0604); chmod 600 it", NULL },
	{ "encrypted key", GW_CRT, "gateway-enc.key", DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0, "private key is encrypted", NULL },
	{ "missing key file", GW_CRT, "missing.key", DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0, "missing.key: cannot open: No such file", NULL },
	{ "missing certificate file", "missing.crt", GW_KEY, DEPT_CA, DEPT_CRL,
	    TLS1_2_VERSION, 0, "missing.crt: cannot open: No such file", NULL },
	{ "certificate file without PEM", "garbage.pem", GW_KEY, DEPT_CA,
	    DEPT_CRL, TLS1_2_VERSION, 0,
	    "garbage.pem: cannot load certificate chain: ", NULL },
	{ "RSA-1024 server certificate (level 2)", "rsa1024.crt", "rsa1024.key",
	    DEPT_CA, DEPT_CRL, TLS1_2_VERSION, 0, "key too small", NULL },
	{ "expired server certificate", "gateway-expired.crt", GW_KEY, DEPT_CA,
	    DEPT_CRL, TLS1_2_VERSION, 0,
	    "server certificate \"CN=gateway.test\" expired on 2021-01-01",
	    NULL },
	{ "server certificate expiring soon", "gateway-soon.crt", GW_KEY,
	    DEPT_CA, DEPT_CRL, TLS1_2_VERSION, 1, NULL,
	    "server certificate \"CN=gateway.test\" expires on " },
	{ "missing client_ca", GW_CRT, GW_KEY, "missing.pem", DEPT_CRL,
	    TLS1_2_VERSION, 0, "missing.pem: cannot open: No such file", NULL },
	{ "empty client_ca", GW_CRT, GW_KEY, "empty.pem", "-", TLS1_2_VERSION,
	    0, "empty.pem: no PEM certificate found", NULL },
	{ "client_ca holding a leaf", GW_CRT, GW_KEY, "renshe.crt", "-",
	    TLS1_2_VERSION, 1, NULL, "is not a CA certificate" },
	{ "missing CRL file", GW_CRT, GW_KEY, DEPT_CA, "missing.crl",
	    TLS1_2_VERSION, 0, "missing.crl: cannot open: No such file", NULL },
	{ "CRL file without a CRL", GW_CRT, GW_KEY, DEPT_CA, "root-ca.pem",
	    TLS1_2_VERSION, 0, "root-ca.pem: no PEM CRL found", NULL },
	{ "CRL past nextUpdate (M09)", GW_CRT, GW_KEY, DEPT_CA, "stale.crl",
	    TLS1_2_VERSION, 0,
	    "stale.crl: CRL of \"CN=Nanning E-Gov Department CA,O=Nanning "
	    "E-Gov,C=CN\" expired on ",
	    NULL },
	{ "CRL expiring within 7 days", GW_CRT, GW_KEY, DEPT_CA, "soon.crl",
	    TLS1_2_VERSION, 1, NULL, "(within 7 days)" },
	{ "CRL for the root only: the sub-CA fails closed", GW_CRT, GW_KEY,
	    DEPT_CA, "root.crl", TLS1_2_VERSION, 1, NULL,
	    "no CRL for CA \"CN=Nanning E-Gov Department CA" },
	{ "CRL of an untrusted CA", GW_CRT, GW_KEY, DEPT_CA, "wrong.crl",
	    TLS1_2_VERSION, 1, NULL, "every client it issued will be refused" },
};

static void
test_builds(void)
{
	struct diag dg;
	SSL_CTX *ctx;
	size_t i;
	int ok;

	for (i = 0; i < nitems(builds); i++) {
		if (!have(builds[i].name, builds[i].cert, builds[i].key,
		        builds[i].ca, builds[i].crl))
			continue;
		diag_init(&dg);
		ctx = server_ctx(builds[i].cert, builds[i].key, builds[i].ca,
		    builds[i].crl, CONF_CLIENT_AUTH_REQUIRE, builds[i].minv,
		    &dg);
		ok = (ctx != NULL) == builds[i].ok &&
		    (builds[i].ok ? dg.nerrors == 0 : dg.nerrors > 0) &&
		    (builds[i].err == NULL ||
		        diag_has(&dg, DIAG_ERROR, builds[i].err)) &&
		    (builds[i].warn == NULL
		            ? builds[i].ok == 0 || dg.nwarnings == 0
		            : diag_has(&dg, DIAG_WARNING, builds[i].warn));
		tap_ok(ok, "build: %s", builds[i].name);
		if (!ok || builds[i].err != NULL || builds[i].warn != NULL)
			diag_show(&dg);
		SSL_CTX_free(ctx);
		diag_clear(&dg);
		ERR_clear_error();
	}
}

/* A test client: any protocol and level, verifying the gateway's name. */
static SSL_CTX *
client_ctx(const char *cert, const char *key, int version, const char *ciphers)
{
	char b1[PATHBUF], b2[PATHBUF];
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	/* Low level so that weak certificates can be sent at all. */
	SSL_CTX_set_security_level(ctx, 0);
	if (!SSL_CTX_set_cipher_list(ctx,
	        ciphers != NULL ? ciphers : "DEFAULT:@SECLEVEL=0") ||
	    !SSL_CTX_set_min_proto_version(ctx, version) ||
	    !SSL_CTX_set_max_proto_version(ctx, version) ||
	    !SSL_CTX_load_verify_locations(ctx,
	        path("root-ca.pem", b1, sizeof(b1)), NULL))
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL &&
	    (!SSL_CTX_use_certificate_chain_file(ctx,
	         path(cert, b1, sizeof(b1))) ||
	        !SSL_CTX_use_PrivateKey_file(ctx, path(key, b2, sizeof(b2)),
	            SSL_FILETYPE_PEM)))
		goto fail;
	return ctx;
fail:
	tap_diag("client context: %s",
	    ERR_error_string(ERR_peek_error(), NULL));
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* Both ends of one in-memory connection; st: 0 running, 1 done, -1 failed. */
struct conn {
	SSL *s, *c;
	int sst, cst;
};

static int
conn_new(struct conn *t, SSL_CTX *sctx, SSL_CTX *cctx)
{
	BIO *sb = NULL, *cb = NULL;

	memset(t, 0, sizeof(*t));
	if (sctx == NULL || cctx == NULL)
		return -1;
	if ((t->s = SSL_new(sctx)) == NULL || (t->c = SSL_new(cctx)) == NULL ||
	    !BIO_new_bio_pair(&sb, 0, &cb, 0))
		return -1;
	SSL_set_bio(t->s, sb, sb);
	SSL_set_bio(t->c, cb, cb);
	SSL_set_accept_state(t->s);
	SSL_set_connect_state(t->c);
	return 0;
}

/*
 * Free both ends. After a completed handshake close cleanly first: an
 * SSL_free without a close_notify sent marks the session not resumable.
 */
static void
conn_free(struct conn *t)
{
	if (t->sst == 1 && t->cst == 1) {
		(void)SSL_shutdown(t->c);
		(void)SSL_shutdown(t->s);
	}
	SSL_free(t->s);
	SSL_free(t->c);
	memset(t, 0, sizeof(*t));
	ERR_clear_error();
}

static void
conn_step(SSL *ssl, int *st)
{
	int e, rc;

	if (*st != 0)
		return;
	if ((rc = SSL_do_handshake(ssl)) == 1) {
		*st = 1;
		return;
	}
	e = SSL_get_error(ssl, rc);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		*st = -1;
}

/* Run the handshake until both ends finished or failed. */
static void
conn_handshake(struct conn *t)
{
	int i;

	for (i = 0; i < HS_ROUNDS && (t->sst == 0 || t->cst == 0); i++) {
		conn_step(t->c, &t->cst);
		conn_step(t->s, &t->sst);
	}
}

/*
 * Run one case: a client for gateway.test against the server context.
 * Returns the server's verify reason ("" without a connection).
 */
static const char *
case_run(struct conn *t, SSL_CTX *sctx, SSL_CTX *cctx)
{
	if (conn_new(t, sctx, cctx) == 0) {
		SSL_set1_host(t->c, "gateway.test");
		conn_handshake(t);
	}
	return t->s != NULL ? tlsctx_verify_reason(t->s) : "";
}

/* End one case: on failure say why, then free both ends and contexts. */
static void
case_end(int ok, struct conn *t, const char *reason, SSL_CTX *cctx,
    SSL_CTX *sctx, struct diag *dg)
{
	if (!ok) {
		tap_diag("server %d client %d reason \"%s\"", t->sst, t->cst,
		    reason);
		diag_show(dg);
	}
	conn_free(t);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	diag_clear(dg);
}

/* Let the client read what the server sent after the handshake (tickets). */
static void
conn_client_drain(struct conn *t)
{
	char buf[64];

	(void)SSL_read(t->c, buf, sizeof(buf));
	ERR_clear_error();
}

/* Client certificates against a listener (contract 4.2b, M01-M24). */
static const struct {
	const char *name;
	const char *cert; /* client chain file; NULL: none */
	const char *key;
	enum conf_client_auth auth;
	const char *ca;  /* listener client_ca; NULL: departments-ca.pem */
	const char *crl; /* listener crl; NULL: departments.crl; "-": none */
	int accept;
	const char *reason; /* substring of tlsctx_verify_reason */
} clients[] = {
	{ "M01 valid clientAuth leaf", "renshe.crt", "renshe.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 1, "ok" },
	{ "M02 valid leaf sent with its sub-CA", "renshe.chain.pem",
	    "renshe.key", CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 1, "ok" },
	{ "M02 sub-CA sent, only the root trusted", "renshe.chain.pem",
	    "renshe.key", CONF_CLIENT_AUTH_REQUIRE, "root-ca.pem", NULL, 1,
	    "ok" },
	{ "M03 leaf only, only the root trusted", "renshe.crt", "renshe.key",
	    CONF_CLIENT_AUTH_REQUIRE, "root-ca.pem", NULL, 0,
	    "unable to get local issuer certificate" },
	{ "M04 signed by another root", "wrong-root.crt", "wrong-root.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "unable to get local issuer certificate" },
	{ "M05 expired", "expired.crt", "expired.key", CONF_CLIENT_AUTH_REQUIRE,
	    NULL, NULL, 0, "certificate has expired" },
	{ "M06 not yet valid", "not-yet-valid.crt", "not-yet-valid.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "certificate is not yet valid" },
	{ "M07 revoked", "revoked.crt", "revoked.key", CONF_CLIENT_AUTH_REQUIRE,
	    NULL, NULL, 0, "certificate revoked" },
	{ "M07 revoked, no CRL configured", "revoked.crt", "revoked.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, "-", 1, "ok" },
	{ "M08 no CRL for the sub-CA", "renshe.crt", "renshe.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, "root.crl", 0,
	    "unable to get certificate CRL" },
	{ "M10 serverAuth EKU only", "serverauth-only.crt",
	    "serverauth-only.key", CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "certificate lacks clientAuth usage" },
	{ "M11 no EKU", "no-eku.crt", "no-eku.key", CONF_CLIENT_AUTH_REQUIRE,
	    NULL, NULL, 0, "certificate has no extended key usage" },
	{ "M12 CA certificate as leaf", "ca-as-leaf.crt", "ca-as-leaf.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "certificate is a CA, not a client certificate" },
	{ "M14 SHA-1 signature", "sha1.crt", "sha1.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "CA signature digest algorithm too weak" },
	{ "M16 RSA-1024 key", "rsa1024.crt", "rsa1024.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "EE certificate key too weak" },
	{ "M17 self-signed leaf", "self-signed.crt", "self-signed.key",
	    CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0, "self" },
	{ "M24 keyUsage without digitalSignature", "no-digitalsignature.crt",
	    "no-digitalsignature.key", CONF_CLIENT_AUTH_REQUIRE, NULL, NULL, 0,
	    "certificate key usage lacks digitalSignature" },
	{ "T01 no certificate, require", NULL, NULL, CONF_CLIENT_AUTH_REQUIRE,
	    NULL, NULL, 0, "no client certificate" },
	{ "no certificate, optional", NULL, NULL, CONF_CLIENT_AUTH_OPTIONAL,
	    NULL, NULL, 1, "no client certificate" },
	{ "expired certificate, optional", "expired.crt", "expired.key",
	    CONF_CLIENT_AUTH_OPTIONAL, NULL, NULL, 0,
	    "certificate has expired" },
	{ "no EKU, optional", "no-eku.crt", "no-eku.key",
	    CONF_CLIENT_AUTH_OPTIONAL, NULL, NULL, 0,
	    "certificate has no extended key usage" },
};

static void
test_clients(int version)
{
	const char *vname = version == TLS1_3_VERSION ? "TLS1.3" : "TLS1.2";
	const char *reason;
	struct conn t;
	struct diag dg;
	SSL_CTX *sctx, *cctx;
	size_t i;
	int ok;

	for (i = 0; i < nitems(clients); i++) {
		if (!have(clients[i].name, clients[i].cert, clients[i].key,
		        clients[i].ca, clients[i].crl))
			continue;
		diag_init(&dg);
		sctx = server_ctx(GW_CRT, GW_KEY,
		    clients[i].ca != NULL ? clients[i].ca : DEPT_CA,
		    clients[i].crl != NULL ? clients[i].crl : DEPT_CRL,
		    clients[i].auth, TLS1_2_VERSION, &dg);
		cctx =
		    client_ctx(clients[i].cert, clients[i].key, version, NULL);
		reason = case_run(&t, sctx, cctx);
		ok = t.s != NULL && (t.sst == 1) == clients[i].accept &&
		    strstr(reason, clients[i].reason) != NULL;
		if (ok && clients[i].accept)
			ok = t.cst == 1 &&
			    SSL_get_verify_result(t.s) == X509_V_OK &&
			    (SSL_get0_peer_certificate(t.s) != NULL) ==
			        (clients[i].cert != NULL);
		tap_ok(ok, "%s: %s %s", vname, clients[i].name,
		    clients[i].accept ? "is accepted" : "is refused");
		case_end(ok, &t, reason, cctx, sctx, &dg);
	}
}

/*
 * tls.verify_depth (M21): renshe.chain.pem is leaf + Department CA, one
 * intermediate below the root, whether client_ca holds the root alone or
 * the root and the Department CA (trusted, but not the anchor).
 */
static const struct {
	const char *name;
	const char *ca;
	int depth;
	int build; /* 0: the context is refused */
	int accept;
	const char *reason; /* substring of tlsctx_verify_reason or error */
} depths[] = {
	{ "depth 0, root trusted: one intermediate refused", "root-ca.pem", 0,
	    1, 0, "certificate chain too long" },
	{ "depth 0, root and sub-CA trusted: still refused", DEPT_CA, 0, 1, 0,
	    "certificate chain too long" },
	{ "depth 1, root trusted: accepted", "root-ca.pem", 1, 1, 1, "ok" },
	{ "depth 1, root and sub-CA trusted: accepted", DEPT_CA, 1, 1, 1,
	    "ok" },
	{ "depth 16 accepted", DEPT_CA, CONF_MAX_VERIFY_DEPTH, 1, 1, "ok" },
	{ "depth 17 refused at build", DEPT_CA, CONF_MAX_VERIFY_DEPTH + 1, 0, 0,
	    "verify_depth must be from 0 to 16" },
	{ "depth -1 refused at build", DEPT_CA, -1, 0, 0,
	    "verify_depth must be from 0 to 16" },
};

static void
test_depth(void)
{
	const char *reason;
	struct conn t;
	struct diag dg;
	SSL_CTX *sctx, *cctx;
	size_t i;
	int ok;

	for (i = 0; i < nitems(depths); i++) {
		if (!have(depths[i].name, depths[i].ca, "renshe.chain.pem",
		        NULL, NULL))
			continue;
		diag_init(&dg);
		sctx = server_ctx_depth(GW_CRT, GW_KEY, depths[i].ca, "-",
		    CONF_CLIENT_AUTH_REQUIRE, TLS1_2_VERSION, depths[i].depth,
		    &dg);
		if (!depths[i].build) {
			ok = sctx == NULL &&
			    diag_has(&dg, DIAG_ERROR, depths[i].reason);
			tap_ok(ok, "M21 %s", depths[i].name);
			if (!ok)
				diag_show(&dg);
			SSL_CTX_free(sctx);
			diag_clear(&dg);
			continue;
		}
		cctx = client_ctx("renshe.chain.pem", "renshe.key",
		    TLS1_3_VERSION, NULL);
		reason = case_run(&t, sctx, cctx);
		ok = t.s != NULL && (t.sst == 1) == depths[i].accept &&
		    strstr(reason, depths[i].reason) != NULL;
		tap_ok(ok, "M21 %s", depths[i].name);
		case_end(ok, &t, reason, cctx, sctx, &dg);
	}
}

/* ALPN: http/1.1 or nothing (T10). */
static const struct {
	const char *name;
	const unsigned char *protos; /* wire format; NULL: no ALPN */
	unsigned int len;
	int accept;
	const char *selected; /* NULL: none */
} alpns[] = {
	{ "no ALPN", NULL, 0, 1, NULL },
	{ "http/1.1", (const unsigned char *)"\x08http/1.1", 9, 1, "http/1.1" },
	{ "h2 then http/1.1", (const unsigned char *)"\x02h2\x08http/1.1", 12,
	    1, "http/1.1" },
	{ "h2 only", (const unsigned char *)"\x02h2", 3, 0, NULL },
	{ "http/1.0 only", (const unsigned char *)"\x08http/1.0", 9, 0, NULL },
};

/* Protocol versions and suites (T02, T11). */
static const struct {
	const char *name;
	int version;         /* client's only version */
	const char *ciphers; /* client's TLS 1.2 list; NULL: default */
	int listener_min;
	int accept;
} protos[] = {
	{ "T02 TLS 1.0 client", TLS1_VERSION, NULL, TLS1_2_VERSION, 0 },
	{ "T02 TLS 1.1 client", TLS1_1_VERSION, NULL, TLS1_2_VERSION, 0 },
	{ "TLS 1.2 client", TLS1_2_VERSION, NULL, TLS1_2_VERSION, 1 },
	{ "TLS 1.3 client", TLS1_3_VERSION, NULL, TLS1_2_VERSION, 1 },
	{ "TLS 1.2 client on a TLS 1.3 listener", TLS1_2_VERSION, NULL,
	    TLS1_3_VERSION, 0 },
	{ "TLS 1.3 client on a TLS 1.3 listener", TLS1_3_VERSION, NULL,
	    TLS1_3_VERSION, 1 },
	{ "T11 CBC suite only", TLS1_2_VERSION,
	    "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0", TLS1_2_VERSION, 0 },
	{ "T11 static RSA key exchange only", TLS1_2_VERSION,
	    "AES128-GCM-SHA256:@SECLEVEL=0", TLS1_2_VERSION, 0 },
	{ "T11 ECDHE-ECDSA AES-256-GCM", TLS1_2_VERSION,
	    "ECDHE-ECDSA-AES256-GCM-SHA384", TLS1_2_VERSION, 1 },
	{ "T11 ECDHE-ECDSA ChaCha20", TLS1_2_VERSION,
	    "ECDHE-ECDSA-CHACHA20-POLY1305", TLS1_2_VERSION, 1 },
};

static void
test_protocol(void)
{
	const unsigned char *sel;
	unsigned int sellen;
	struct conn t;
	struct diag dg;
	SSL_CTX *sctx = NULL, *cctx = NULL;
	size_t i;
	int ok;

	for (i = 0; i < nitems(protos); i++) {
		diag_init(&dg);
		sctx = server_ctx(GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
		    CONF_CLIENT_AUTH_REQUIRE, protos[i].listener_min, &dg);
		cctx = client_ctx("renshe.crt", "renshe.key", protos[i].version,
		    protos[i].ciphers);
		if (conn_new(&t, sctx, cctx) == 0)
			conn_handshake(&t);
		ok = t.s != NULL && (t.sst == 1) == protos[i].accept;
		tap_ok(ok, "%s %s", protos[i].name,
		    protos[i].accept ? "is accepted" : "is refused");
		conn_free(&t);
		SSL_CTX_free(cctx);
		SSL_CTX_free(sctx);
		diag_clear(&dg);
	}

	diag_init(&dg);
	sctx = server_ctx(GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
	    CONF_CLIENT_AUTH_REQUIRE, TLS1_2_VERSION, &dg);
	cctx = client_ctx("renshe.crt", "renshe.key", TLS1_3_VERSION, NULL);
	for (i = 0; i < nitems(alpns); i++) {
		if (conn_new(&t, sctx, cctx) == 0) {
			if (alpns[i].protos != NULL)
				SSL_set_alpn_protos(t.c, alpns[i].protos,
				    alpns[i].len);
			conn_handshake(&t);
		}
		sel = NULL;
		sellen = 0;
		if (t.s != NULL)
			SSL_get0_alpn_selected(t.s, &sel, &sellen);
		ok = t.s != NULL && (t.sst == 1) == alpns[i].accept &&
		    (alpns[i].selected == NULL
		            ? sellen == 0
		            : sellen == strlen(alpns[i].selected) &&
		                memcmp(sel, alpns[i].selected, sellen) == 0);
		tap_ok(ok, "T10 ALPN %s %s", alpns[i].name,
		    alpns[i].accept ? "is accepted" : "is refused");
		conn_free(&t);
	}
	SSL_CTX_free(cctx);

	/* T03: client-initiated renegotiation on TLS 1.2. */
	cctx = client_ctx("renshe.crt", "renshe.key", TLS1_2_VERSION, NULL);
	ok = 0;
	if (conn_new(&t, sctx, cctx) == 0) {
		conn_handshake(&t);
		if (t.sst == 1 && t.cst == 1 && SSL_renegotiate(t.c) == 1) {
			char buf[16];

			t.cst = 0;
			for (i = 0; i < HS_ROUNDS && t.cst == 0; i++) {
				conn_step(t.c, &t.cst);
				(void)SSL_read(t.s, buf, sizeof(buf));
			}
			ok = t.cst != 1 || SSL_renegotiate_pending(t.c);
		}
	}
	tap_ok(ok, "T03 client-initiated renegotiation is refused");
	conn_free(&t);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	diag_clear(&dg);
}

/*
 * Resume session sess on sctx and say whether it was resumed; when it
 * was, the server must still see first, the certificate it verified in the
 * full handshake (T06).
 */
static int
resume(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess, X509 *first,
    int *same_identity)
{
	struct conn t;
	X509 *peer;
	int reused = 0;

	*same_identity = 0;
	if (conn_new(&t, sctx, cctx) == 0) {
		SSL_set_session(t.c, sess);
		conn_handshake(&t);
		reused = t.sst == 1 && SSL_session_reused(t.s);
		peer = t.s != NULL ? SSL_get0_peer_certificate(t.s) : NULL;
		*same_identity = peer != NULL && X509_cmp(peer, first) == 0 &&
		    SSL_get_verify_result(t.s) == X509_V_OK &&
		    strcmp(tlsctx_verify_reason(t.s), "ok") == 0;
	}
	conn_free(&t);
	return reused;
}

/*
 * First handshake; returns the client's session (owned) or NULL, and the
 * certificate the server verified (owned) in peer.
 */
static SSL_SESSION *
first_session(SSL_CTX *sctx, SSL_CTX *cctx, X509 **peer)
{
	SSL_SESSION *sess = NULL;
	struct conn t;

	if (conn_new(&t, sctx, cctx) == 0) {
		conn_handshake(&t);
		if (t.sst == 1 && t.cst == 1) {
			conn_client_drain(&t);
			sess = SSL_get1_session(t.c);
			*peer = SSL_get1_peer_certificate(t.s);
		}
	}
	conn_free(&t);
	return sess;
}

/* Session resumption and what stops it (T06, T07, T08). */
static void
test_sessions(void)
{
	static const struct {
		const char *name;
		int version;
		int tickets;
	} kinds[] = {
		{ "TLS1.3 ticket", TLS1_3_VERSION, 1 },
		{ "TLS1.2 ticket", TLS1_2_VERSION, 1 },
		{ "TLS1.2 session id", TLS1_2_VERSION, 0 },
	};
	SSL_SESSION *sess;
	X509 *peer = NULL;
	struct diag dg;
	SSL_CTX *sctx, *sctx2, *cctx;
	size_t i;
	int same, reused;

	for (i = 0; i < nitems(kinds); i++) {
		diag_init(&dg);
		sctx = server_ctx(GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
		    CONF_CLIENT_AUTH_REQUIRE, TLS1_2_VERSION, &dg);
		sctx2 = server_ctx(GW_CRT, GW_KEY, DEPT_CA, DEPT_CRL,
		    CONF_CLIENT_AUTH_REQUIRE, TLS1_2_VERSION, &dg);
		cctx = client_ctx("renshe.crt", "renshe.key", kinds[i].version,
		    NULL);
		if (cctx != NULL && !kinds[i].tickets)
			SSL_CTX_set_options(cctx, SSL_OP_NO_TICKET);
		sess = NULL;
		if (sctx != NULL && cctx != NULL)
			sess = first_session(sctx, cctx, &peer);
		tap_ok(sess != NULL && peer != NULL,
		    "%s: first handshake gives a session", kinds[i].name);
		if (sess == NULL || peer == NULL)
			goto next;
		reused = resume(sctx, cctx, sess, peer, &same);
		tap_ok(reused && same,
		    "T06 %s: resumed with the same verified certificate",
		    kinds[i].name);
		reused = resume(sctx2, cctx, sess, peer, &same);
		tap_ok(!reused,
		    "T07 %s: a new context (reload) does not resume it",
		    kinds[i].name);
		reused = resume(sctx, cctx, sess, peer, &same);
		tap_ok(reused && same, "%s: still resumes on its own context",
		    kinds[i].name);
		if (!kinds[i].tickets) {
			tlsctx_flush_sessions(sctx);
			reused = resume(sctx, cctx, sess, peer, &same);
			tap_ok(!reused,
			    "T07 %s: not resumed after tlsctx_flush_sessions",
			    kinds[i].name);
		}
	next:
		X509_free(peer);
		peer = NULL;
		SSL_SESSION_free(sess);
		SSL_CTX_free(cctx);
		SSL_CTX_free(sctx2);
		SSL_CTX_free(sctx);
		diag_clear(&dg);
	}
}

/* A backend server for the upstream tests: backend.crt, maybe mTLS. */
static SSL_CTX *
backend_ctx(int require_cert)
{
	char b1[PATHBUF], b2[PATHBUF];
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return NULL;
	if (!SSL_CTX_use_certificate_chain_file(ctx,
	        path("backend.crt", b1, sizeof(b1))) ||
	    !SSL_CTX_use_PrivateKey_file(ctx,
	        path("backend.key", b2, sizeof(b2)), SSL_FILETYPE_PEM) ||
	    !SSL_CTX_load_verify_locations(ctx,
	        path("backend-ca.pem", b1, sizeof(b1)), NULL)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Send the leaf alone, not a chain built from the verify store. */
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	if (require_cert)
		SSL_CTX_set_verify(ctx,
		    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

static SSL_CTX *
upstream_ctx(const char *ca, const char *cert, const char *key,
    const char *server_name, int has_tls, struct diag *dg,
    struct conf_upstream *u, char bufs[4][PATHBUF])
{
	static char name[] = "psb-api";

	memset(u, 0, sizeof(*u));
	u->name = name;
	u->has_tls = has_tls;
	u->tls.verify_depth = CONF_DEFAULT_VERIFY_DEPTH;
	u->tls.ca = path(ca, bufs[0], PATHBUF);
	u->tls.certificate = path(cert, bufs[1], PATHBUF);
	u->tls.key = path(key, bufs[2], PATHBUF);
	if (server_name != NULL) {
		snprintf(bufs[3], PATHBUF, "%s", server_name);
		u->tls.server_name = bufs[3];
	}
	return tlsctx_upstream_new(u, (int64_t)time(NULL), dg);
}

static const struct {
	const char *name;
	const char *ca, *cert, *key;
	int has_tls;
	int ok;
	const char *err;
} upstream_builds[] = {
	{ "upstream CA only", "backend-ca.pem", NULL, NULL, 1, 1, NULL },
	{ "upstream with client certificate", "backend-ca.pem",
	    "gateway-client.crt", "gateway-client.key", 1, 1, NULL },
	{ "upstream without tls", "backend-ca.pem", NULL, NULL, 0, 0,
	    "upstream psb-api: tls needs ca" },
	{ "upstream missing CA file", "missing.pem", NULL, NULL, 1, 0,
	    "missing.pem: cannot open" },
	{ "upstream certificate without key", "backend-ca.pem",
	    "gateway-client.crt", NULL, 1, 0,
	    "certificate and key go together" },
	{ "upstream key of another certificate", "backend-ca.pem",
	    "gateway-client.crt", "backend.key", 1, 0,
	    "backend.key: private key does not match the certificate in " },
	{ "upstream group-readable key", "backend-ca.pem", GW_CRT,
	    "gateway-0640.key", 1, 0, "accessible by group or others" },
};

/* Upstream handshakes: name checks, SNI, CA, client certificate. */
static const struct {
	const char *name;
	const char *ca, *cert, *key;
	const char *server_name, *host;
	int backend_mtls;
	int accept;
	const char *sni;    /* expected at the backend; NULL: none */
	const char *reason; /* client verify error when refused */
} upstreams[] = {
	{ "by DNS name", "backend-ca.pem", NULL, NULL, NULL, "backend.test", 0,
	    1, "backend.test", NULL },
	{ "by IP address, no SNI", "backend-ca.pem", NULL, NULL, NULL,
	    "127.0.0.1", 0, 1, NULL, NULL },
	{ "server_name overrides host", "backend-ca.pem", NULL, NULL,
	    "localhost", "10.20.1.10", 0, 1, "localhost", NULL },
	{ "name not in the certificate", "backend-ca.pem", NULL, NULL, NULL,
	    "psb-api.internal", 0, 0, NULL, "hostname mismatch" },
	{ "IP not in the certificate", "backend-ca.pem", NULL, NULL, NULL,
	    "10.20.1.10", 0, 0, NULL, "IP address mismatch" },
	{ "partial wildcard not used", "backend-ca.pem", NULL, NULL, NULL,
	    "backend.test.evil", 0, 0, NULL, "hostname mismatch" },
	{ "backend under another CA", "root-ca.pem", NULL, NULL, NULL,
	    "backend.test", 0, 0, NULL,
	    "unable to get local issuer certificate" },
	{ "mTLS backend with client certificate", "backend-ca.pem",
	    "gateway-client.crt", "gateway-client.key", NULL, "backend.test", 1,
	    1, "backend.test", NULL },
	{ "mTLS backend without client certificate", "backend-ca.pem", NULL,
	    NULL, NULL, "backend.test", 1, 0, "backend.test", NULL },
};

static void
test_upstreams(void)
{
	char bufs[4][PATHBUF], longname[300];
	struct conf_upstream u;
	struct conn t;
	struct diag dg;
	SSL_CTX *uctx, *bctx;
	const char *sni;
	size_t i;
	int ok;

	for (i = 0; i < nitems(upstream_builds); i++) {
		diag_init(&dg);
		uctx = upstream_ctx(upstream_builds[i].ca,
		    upstream_builds[i].cert, upstream_builds[i].key, NULL,
		    upstream_builds[i].has_tls, &dg, &u, bufs);
		ok = (uctx != NULL) == upstream_builds[i].ok &&
		    (upstream_builds[i].err == NULL
		            ? dg.nerrors == 0
		            : diag_has(&dg, DIAG_ERROR,
		                  upstream_builds[i].err));
		tap_ok(ok, "build: %s", upstream_builds[i].name);
		if (!ok || upstream_builds[i].err != NULL)
			diag_show(&dg);
		SSL_CTX_free(uctx);
		diag_clear(&dg);
		ERR_clear_error();
	}

	for (i = 0; i < nitems(upstreams); i++) {
		diag_init(&dg);
		uctx = upstream_ctx(upstreams[i].ca, upstreams[i].cert,
		    upstreams[i].key, upstreams[i].server_name, 1, &dg, &u,
		    bufs);
		bctx = backend_ctx(upstreams[i].backend_mtls);
		ok = 0;
		if (conn_new(&t, bctx, uctx) == 0 &&
		    tlsctx_upstream_prepare(t.c, &u, upstreams[i].host) == 0) {
			conn_handshake(&t);
			sni =
			    SSL_get_servername(t.s, TLSEXT_NAMETYPE_host_name);
			ok = (t.cst == 1 && t.sst == 1) == upstreams[i].accept;
			if (upstreams[i].accept)
				ok = ok &&
				    SSL_get_verify_result(t.c) == X509_V_OK &&
				    (upstreams[i].sni == NULL ? sni == NULL
				                              : sni != NULL &&
				                strcmp(sni, upstreams[i].sni) ==
				                    0);
			if (upstreams[i].reason != NULL)
				ok = ok &&
				    strstr(X509_verify_cert_error_string(
				               SSL_get_verify_result(t.c)),
				        upstreams[i].reason) != NULL;
			if (upstreams[i].backend_mtls && upstreams[i].accept)
				ok = ok &&
				    SSL_get0_peer_certificate(t.s) != NULL;
		}
		tap_ok(ok, "upstream %s %s", upstreams[i].name,
		    upstreams[i].accept ? "is accepted" : "is refused");
		if (!ok)
			diag_show(&dg);
		conn_free(&t);
		SSL_CTX_free(bctx);
		SSL_CTX_free(uctx);
		diag_clear(&dg);
	}

	/* Names tlsctx_upstream_prepare must refuse. */
	diag_init(&dg);
	uctx =
	    upstream_ctx("backend-ca.pem", NULL, NULL, NULL, 1, &dg, &u, bufs);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	if (uctx != NULL && (t.c = SSL_new(uctx)) != NULL) {
		tap_ok(tlsctx_upstream_prepare(t.c, &u, "") == -1,
		    "upstream prepare: empty host is refused");
		tap_ok(tlsctx_upstream_prepare(t.c, &u, longname) == -1,
		    "upstream prepare: 299-byte host is refused");
		tap_ok(tlsctx_upstream_prepare(t.c, &u, NULL) == -1,
		    "upstream prepare: no host, no server_name is refused");
	} else
		tap_ok(0, "upstream prepare: context");
	SSL_free(t.c);
	SSL_CTX_free(uctx);
	diag_clear(&dg);
}

/* Upstream identities: what a resumed session would skip must differ. */
static const struct {
	const char *name;
	const char *ca, *cert, *key, *server_name;
	int depth; /* tls.verify_depth; -1: the default */
	int same;  /* the id equals that of the first row */
} upstream_ids[] = {
	{ "base", "backend-ca.pem", "gateway-client.crt", "gateway-client.key",
	    "backend.test", -1, 1 },
	{ "same settings, another context", "backend-ca.pem",
	    "gateway-client.crt", "gateway-client.key", "backend.test", -1, 1 },
	{ "the default verify_depth given", "backend-ca.pem",
	    "gateway-client.crt", "gateway-client.key", "backend.test",
	    CONF_DEFAULT_VERIFY_DEPTH, 1 },
	{ "another server_name", "backend-ca.pem", "gateway-client.crt",
	    "gateway-client.key", "localhost", -1, 0 },
	{ "no server_name", "backend-ca.pem", "gateway-client.crt",
	    "gateway-client.key", NULL, -1, 0 },
	{ "no client certificate", "backend-ca.pem", NULL, NULL, "backend.test",
	    -1, 0 },
	{ "another CA", "root-ca.pem", "gateway-client.crt",
	    "gateway-client.key", "backend.test", -1, 0 },
	{ "another verify_depth", "backend-ca.pem", "gateway-client.crt",
	    "gateway-client.key", "backend.test", 2, 0 },
};

static void
test_upstream_ids(void)
{
	unsigned char base[TLSCTX_ID_LEN], id[TLSCTX_ID_LEN];
	char bufs[4][PATHBUF];
	struct conf_upstream u;
	struct diag dg;
	SSL_CTX *ctx;
	size_t i;
	int ok;

	for (i = 0; i < nitems(upstream_ids); i++) {
		diag_init(&dg);
		ctx = upstream_ctx(upstream_ids[i].ca, upstream_ids[i].cert,
		    upstream_ids[i].key, upstream_ids[i].server_name, 1, &dg,
		    &u, bufs);
		if (upstream_ids[i].depth != -1) {
			u.tls.verify_depth = upstream_ids[i].depth;
			SSL_CTX_free(ctx);
			ctx = tlsctx_upstream_new(&u, (int64_t)time(NULL), &dg);
		}
		ok = ctx != NULL &&
		    tlsctx_upstream_id(ctx, &u, i == 0 ? base : id) == 0;
		if (ok && i > 0)
			ok = (memcmp(base, id, sizeof(id)) == 0) ==
			    upstream_ids[i].same;
		tap_ok(ok, "upstream id: %s %s", upstream_ids[i].name,
		    i == 0                     ? "is computed"
		        : upstream_ids[i].same ? "is the same"
		                               : "differs");
		if (!ok)
			diag_show(&dg);
		SSL_CTX_free(ctx);
		diag_clear(&dg);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr,
		    "usage: tlsctx_test PKIDIR (run "
		    "tlsctx_test.sh)\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	test_builds();
	test_clients(TLS1_2_VERSION);
	test_clients(TLS1_3_VERSION);
	test_depth();
	test_protocol();
	test_sessions();
	test_upstreams();
	test_upstream_ids();
	tap_done();
	tap_exit();
}
