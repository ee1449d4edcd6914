/* tlsctx.c - OpenSSL contexts for listeners and upstreams, and their checks. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "diag.h"
#include "tlsctx.h"

#define TLSCTX_DAY 86400
#define TLSCTX_ERRBUF 256
#define TLSCTX_NAMEBUF 512
#define TLSCTX_HOST_MAX 253 /* longest DNS name */

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 keeps its defaults. */
static const char tlsctx_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* ALPN wire format: we speak HTTP/1.1 and nothing else. */
static const unsigned char tlsctx_alpn_http11[] = "\x08http/1.1";

/*
 * Why our verify callback refused a leaf (contract 4.2b). Stored in the
 * SSL's ex_data so tlsctx_verify_reason can name it; OpenSSL's verify
 * result only holds a generic X509_V_ERR code.
 */
enum tlsctx_reason {
	TLSCTX_REASON_NONE = 0,
	TLSCTX_REASON_NO_EKU,
	TLSCTX_REASON_NO_CLIENTAUTH,
	TLSCTX_REASON_CA_LEAF,
	TLSCTX_REASON_NO_DIGSIG,
};

static const char *const tlsctx_reasons[] = {
	[TLSCTX_REASON_NONE] = "ok",
	[TLSCTX_REASON_NO_EKU] =
	    "certificate has no extended key usage (clientAuth required)",
	[TLSCTX_REASON_NO_CLIENTAUTH] = "certificate lacks clientAuth usage",
	[TLSCTX_REASON_CA_LEAF] =
	    "certificate is a CA, not a client certificate",
	[TLSCTX_REASON_NO_DIGSIG] =
	    "certificate key usage lacks digitalSignature",
};

static CRYPTO_ONCE tlsctx_once = CRYPTO_ONCE_STATIC_INIT;
static int tlsctx_ex_index = -1;

static void
tlsctx_init_once(void)
{
	tlsctx_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Allocate the ex_data slot once, whichever thread builds a context first. */
static int
tlsctx_init(void)
{
	if (!CRYPTO_THREAD_run_once(&tlsctx_once, tlsctx_init_once))
		return -1;
	return tlsctx_ex_index >= 0 ? 0 : -1;
}

/* The first queued OpenSSL error as text; the queue is cleared. */
static const char *
tlsctx_ssl_error(char *buf, size_t len)
{
	unsigned long e;

	if ((e = ERR_get_error()) == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static const char *
tlsctx_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "(invalid time)");
	return buf;
}

/* An RFC 4514 rendering of name, UTF-8 kept as is, for messages. */
static const char *
tlsctx_name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b;
	int n = 0;

	buf[0] = '\0';
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return buf;
	if (name != NULL &&
	    X509_NAME_print_ex(b, name, 0,
	        XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	ERR_clear_error();
	return buf;
}

/* ASN1_TIME_cmp_time_t with our int64_t clock. */
static int
tlsctx_time_cmp(const ASN1_TIME *t, int64_t when)
{
	return ASN1_TIME_cmp_time_t(t, (time_t)when);
}

/*
 * Check the validity window of x at now: expired is an error when
 * expired_is_error, otherwise a warning; expiring within warn_days and not
 * yet valid are warnings. what names x in the message.
 */
static void
tlsctx_check_validity(X509 *x, const char *file, const char *what, int64_t now,
    int warn_days, int expired_is_error, struct diag *dg)
{
	const ASN1_TIME *na = X509_get0_notAfter(x);
	const ASN1_TIME *nb = X509_get0_notBefore(x);
	char name[TLSCTX_NAMEBUF], when[64];

	tlsctx_name_str(X509_get_subject_name(x), name, sizeof(name));
	if (tlsctx_time_cmp(na, now) < 0) {
		if (expired_is_error)
			diag_error(dg, file, 0, 0, "%s \"%s\" expired on %s",
			    what, name,
			    tlsctx_time_str(na, when, sizeof(when)));
		else
			diag_warn(dg, file, 0, 0, "%s \"%s\" expired on %s",
			    what, name,
			    tlsctx_time_str(na, when, sizeof(when)));
	} else if (tlsctx_time_cmp(na, now + (int64_t)warn_days * TLSCTX_DAY) <
	    0)
		diag_warn(dg, file, 0, 0,
		    "%s \"%s\" expires on %s (within %d days)", what, name,
		    tlsctx_time_str(na, when, sizeof(when)), warn_days);
	if (tlsctx_time_cmp(nb, now) > 0)
		diag_warn(dg, file, 0, 0, "%s \"%s\" is not valid before %s",
		    what, name, tlsctx_time_str(nb, when, sizeof(when)));
}

/* Open path for reading as a BIO, or report why not. */
static BIO *
tlsctx_bio_open(const char *path, struct diag *dg)
{
	BIO *b;

	if ((b = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		diag_error(dg, path, 0, 0, "cannot open: %s", strerror(errno));
	}
	return b;
}

/* 1 when the last queued error is PEM's "no start line": clean EOF. */
static int
tlsctx_pem_eof(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/*
 * Read every certificate of the PEM file path. Returns an owned stack with
 * at least one certificate, or NULL with the problem in dg. CA certificates
 * are checked for expiry (warnings) and for the CA bit.
 */
static STACK_OF(X509) *
    tlsctx_read_cas(const char *path, int64_t now, struct diag *dg)
{
	STACK_OF(X509) *sk = NULL;
	BIO *b = NULL;
	X509 *x = NULL;
	char ebuf[TLSCTX_ERRBUF], name[TLSCTX_NAMEBUF];
	int n = 0;

	if ((b = tlsctx_bio_open(path, dg)) == NULL)
		goto fail;
	if ((sk = sk_X509_new_null()) == NULL) {
		diag_error(dg, path, 0, 0, "%s",
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		goto fail;
	}
	for (;;) {
		if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
			if (tlsctx_pem_eof()) {
				ERR_clear_error();
				break;
			}
			diag_error(dg, path, 0, 0,
			    "cannot read certificate %d: %s", n + 1,
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			goto fail;
		}
		n++;
		if (X509_check_ca(x) == 0)
			diag_warn(dg, path, 0, 0,
			    "certificate %d (\"%s\") is not a CA certificate",
			    n,
			    tlsctx_name_str(X509_get_subject_name(x), name,
			        sizeof(name)));
		tlsctx_check_validity(x, path, "CA certificate", now,
		    TLSCTX_EXPIRY_WARN_DAYS, 0, dg);
		if (!sk_X509_push(sk, x)) {
			diag_error(dg, path, 0, 0, "%s",
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			goto fail;
		}
		x = NULL;
	}
	if (n == 0) {
		diag_error(dg, path, 0, 0, "no PEM certificate found");
		goto fail;
	}
	BIO_free(b);
	return sk;
fail:
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	return NULL;
}

/* Add the certificates of cas to the verify store of ctx. */
static int
tlsctx_add_cas(SSL_CTX *ctx, STACK_OF(X509) * cas, const char *path,
    struct diag *dg)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	char ebuf[TLSCTX_ERRBUF];
	int i;

	for (i = 0; i < sk_X509_num(cas); i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
			diag_error(dg, path, 0, 0,
			    "cannot add certificate %d: %s", i + 1,
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			return -1;
		}
	}
	return 0;
}

/*
 * Load every CRL of the PEM file path into the store of ctx. A CRL past
 * its nextUpdate, not yet valid, or not signed by the client_ca
 * certificate naming its issuer is an error: with CRL checking on, it
 * would refuse every client. A CA of cas without a CRL is a warning.
 */
static int
tlsctx_load_crls(SSL_CTX *ctx, STACK_OF(X509) * cas, const char *path,
    int64_t now, struct diag *dg)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_CRL) *crls = NULL;
	const ASN1_TIME *next, *last;
	X509_CRL *crl = NULL;
	X509 *ca;
	BIO *b = NULL;
	char ebuf[TLSCTX_ERRBUF], name[TLSCTX_NAMEBUF], when[64];
	int i, j, found, ret = -1;

	if ((b = tlsctx_bio_open(path, dg)) == NULL)
		goto out;
	if ((crls = sk_X509_CRL_new_null()) == NULL) {
		diag_error(dg, path, 0, 0, "%s",
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	for (;;) {
		if ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) ==
		    NULL) {
			if (tlsctx_pem_eof()) {
				ERR_clear_error();
				break;
			}
			diag_error(dg, path, 0, 0, "cannot read CRL %d: %s",
			    sk_X509_CRL_num(crls) + 1,
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			goto out;
		}
		if (!sk_X509_CRL_push(crls, crl)) {
			diag_error(dg, path, 0, 0, "%s",
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			goto out;
		}
		crl = NULL;
	}
	if (sk_X509_CRL_num(crls) == 0) {
		diag_error(dg, path, 0, 0, "no PEM CRL found");
		goto out;
	}

	ret = 0;
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		crl = sk_X509_CRL_value(crls, i);
		tlsctx_name_str(X509_CRL_get_issuer(crl), name, sizeof(name));
		next = X509_CRL_get0_nextUpdate(crl);
		last = X509_CRL_get0_lastUpdate(crl);
		if (next != NULL && tlsctx_time_cmp(next, now) < 0) {
			diag_error(dg, path, 0, 0,
			    "CRL of \"%s\" expired on %s (nextUpdate): "
			    "publish a fresh CRL",
			    name, tlsctx_time_str(next, when, sizeof(when)));
			ret = -1;
		} else if (next != NULL &&
		    tlsctx_time_cmp(next,
		        now + (int64_t)TLSCTX_CRL_WARN_DAYS * TLSCTX_DAY) < 0)
			diag_warn(dg, path, 0, 0,
			    "CRL of \"%s\" expires on %s (within %d days)",
			    name, tlsctx_time_str(next, when, sizeof(when)),
			    TLSCTX_CRL_WARN_DAYS);
		if (last != NULL && tlsctx_time_cmp(last, now) > 0) {
			diag_error(dg, path, 0, 0,
			    "CRL of \"%s\" is not valid before %s", name,
			    tlsctx_time_str(last, when, sizeof(when)));
			ret = -1;
		}
		/* Intermediates' CRLs have no issuer here; the chain checks. */
		for (j = 0; j < sk_X509_num(cas); j++) {
			ca = sk_X509_value(cas, j);
			if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
			        X509_get_subject_name(ca)) != 0)
				continue;
			if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) <= 0) {
				ERR_clear_error();
				diag_error(dg, path, 0, 0,
				    "CRL of \"%s\" is not signed by that CA's "
				    "key in the client_ca file",
				    name);
				ret = -1;
			}
			break;
		}
		if (!X509_STORE_add_crl(store, crl)) {
			diag_error(dg, path, 0, 0,
			    "cannot add CRL of \"%s\": %s", name,
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
			ret = -1;
		}
	}
	crl = NULL;

	/* CRL_CHECK_ALL fails closed: name the CAs that would refuse all. */
	for (j = 0; j < sk_X509_num(cas); j++) {
		ca = sk_X509_value(cas, j);
		found = 0;
		for (i = 0; i < sk_X509_CRL_num(crls) && !found; i++)
			found = X509_NAME_cmp(X509_get_subject_name(ca),
			            X509_CRL_get_issuer(
			                sk_X509_CRL_value(crls, i))) == 0;
		if (!found)
			diag_warn(dg, path, 0, 0,
			    "no CRL for CA \"%s\": every client it issued will "
			    "be refused",
			    tlsctx_name_str(X509_get_subject_name(ca), name,
			        sizeof(name)));
	}
out:
	X509_CRL_free(crl);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	BIO_free(b);
	return ret;
}

/* Never prompt for a passphrase: encrypted keys are refused. */
static int
tlsctx_no_passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/*
 * Read the private key at path. Like OpenSMTPD, refuse a key file that is
 * not a regular file or that group or others may access; the key bytes are
 * wiped after parsing. Returns an owned key, or NULL with the reason in dg.
 */
static EVP_PKEY *
tlsctx_load_key(const char *path, struct diag *dg)
{
	struct stat st;
	EVP_PKEY *pkey = NULL;
	BIO *b = NULL;
	char *buf = NULL;
	char ebuf[TLSCTX_ERRBUF];
	size_t len = 0, cap = TLSCTX_MAX_KEY_FILE + 1;
	ssize_t n;
	int fd = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		diag_error(dg, path, 0, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		diag_error(dg, path, 0, 0, "fstat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(dg, path, 0, 0, "private key is not a regular file");
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		diag_error(dg, path, 0, 0,
		    "private key is accessible by group or others "
		    "(mode %04o); chmod 600 it",
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((buf = calloc(1, cap)) == NULL) {
		diag_error(dg, path, 0, 0, "out of memory");
		goto out;
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			diag_error(dg, path, 0, 0, "read: %s", strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if (len > TLSCTX_MAX_KEY_FILE) {
		diag_error(dg, path, 0, 0,
		    "private key file is larger than %d bytes",
		    TLSCTX_MAX_KEY_FILE);
		goto out;
	}
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		diag_error(dg, path, 0, 0, "%s",
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(b, NULL, tlsctx_no_passphrase_cb, NULL);
	if (pkey == NULL) {
		if (memmem(buf, len, "ENCRYPTED", 9) != NULL) {
			ERR_clear_error();
			diag_error(dg, path, 0, 0,
			    "private key is encrypted; govgate needs an "
			    "unencrypted key (mode 600)");
		} else
			diag_error(dg, path, 0, 0,
			    "cannot read private key: %s",
			    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
	}
out:
	BIO_free(b);
	if (buf != NULL) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	if (fd != -1)
		close(fd);
	return pkey;
}

/*
 * Load the certificate chain and the matching key into ctx and check the
 * validity of every certificate of the chain. what names the certificate
 * in messages ("server certificate", "client certificate").
 */
static int
tlsctx_load_identity(SSL_CTX *ctx, const char *certfile, const char *keyfile,
    const char *what, int64_t now, struct diag *dg)
{
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *leaf;
	BIO *b;
	char ebuf[TLSCTX_ERRBUF];
	int i, ret = -1;

	/* For a clean "No such file" message before OpenSSL's own. */
	if ((b = tlsctx_bio_open(certfile, dg)) == NULL) {
		pkey = tlsctx_load_key(keyfile, dg);
		goto out;
	}
	BIO_free(b);
	if (!SSL_CTX_use_certificate_chain_file(ctx, certfile)) {
		diag_error(dg, certfile, 0, 0,
		    "cannot load certificate chain: %s",
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		pkey = tlsctx_load_key(keyfile, dg);
		goto out;
	}
	leaf = SSL_CTX_get0_certificate(ctx);
	tlsctx_check_validity(leaf, certfile, what, now,
	    TLSCTX_EXPIRY_WARN_DAYS, 1, dg);
	if (SSL_CTX_get0_chain_certs(ctx, &chain) && chain != NULL)
		for (i = 0; i < sk_X509_num(chain); i++)
			tlsctx_check_validity(sk_X509_value(chain, i), certfile,
			    "chain certificate", now, TLSCTX_EXPIRY_WARN_DAYS,
			    1, dg);

	if ((pkey = tlsctx_load_key(keyfile, dg)) == NULL)
		goto out;
	if (!X509_check_private_key(leaf, pkey)) {
		ERR_clear_error();
		diag_error(dg, keyfile, 0, 0,
		    "private key does not match the certificate in %s",
		    certfile);
		goto out;
	}
	if (!SSL_CTX_use_PrivateKey(ctx, pkey) ||
	    !SSL_CTX_check_private_key(ctx)) {
		diag_error(dg, keyfile, 0, 0,
		    "cannot use private key with %s: %s", certfile,
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_free(pkey);
	return ret;
}

/* The settings every govgate context shares, server or client. */
static int
tlsctx_common(SSL_CTX *ctx, int min_version, char *ebuf, size_t elen)
{
	SSL_CTX_set_security_level(ctx, 2);
	if (!SSL_CTX_set_min_proto_version(ctx, min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, tlsctx_ciphers)) {
		tlsctx_ssl_error(ebuf, elen);
		return -1;
	}
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Idle keep-alive connections then hold no read/write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/*
 * Name why a leaf that chain-verified is still refused (contract 4.2b), or
 * TLSCTX_REASON_NONE. OpenSSL accepts a leaf without any EKU and a CA as a
 * leaf; its sslclient purpose also accepts keyAgreement alone.
 */
static enum tlsctx_reason
tlsctx_leaf_reason(X509 *x)
{
	uint32_t flags = X509_get_extension_flags(x);

	if (!(flags & EXFLAG_XKUSAGE))
		return TLSCTX_REASON_NO_EKU;
	if (!(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT))
		return TLSCTX_REASON_NO_CLIENTAUTH;
	if (X509_check_ca(x) > 0)
		return TLSCTX_REASON_CA_LEAF;
	if ((flags & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE))
		return TLSCTX_REASON_NO_DIGSIG;
	return TLSCTX_REASON_NONE;
}

/* The X509_V_ERR code the handshake records for a reason of ours. */
static int
tlsctx_reason_code(enum tlsctx_reason reason)
{
	switch (reason) {
	case TLSCTX_REASON_NO_EKU:
	case TLSCTX_REASON_NO_CLIENTAUTH:
		return X509_V_ERR_INVALID_PURPOSE;
	case TLSCTX_REASON_NO_DIGSIG:
		return X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE;
	default:
		return X509_V_ERR_APPLICATION_VERIFICATION;
	}
}

/*
 * Verify callback of listeners: after OpenSSL's chain checks, refuse a leaf
 * that fails tlsctx_leaf_reason, and remember why in the SSL's ex_data.
 * OpenSSL's own purpose failure at the leaf gets our more precise reason.
 */
static int
tlsctx_verify_cb(int ok, X509_STORE_CTX *xs)
{
	enum tlsctx_reason reason;
	SSL *ssl;
	X509 *x;

	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return ok;
	if ((x = X509_STORE_CTX_get_current_cert(xs)) == NULL)
		return 0;
	reason = tlsctx_leaf_reason(x);
	if (ok) {
		if (reason == TLSCTX_REASON_NONE)
			return 1;
		X509_STORE_CTX_set_error(xs, tlsctx_reason_code(reason));
	} else if (X509_STORE_CTX_get_error(xs) != X509_V_ERR_INVALID_PURPOSE)
		reason = TLSCTX_REASON_NONE; /* OpenSSL's own code says it */
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL && reason != TLSCTX_REASON_NONE)
		SSL_set_ex_data(ssl, tlsctx_ex_index,
		    (void *)(uintptr_t)reason);
	return 0;
}

/* Select http/1.1 or refuse (no_application_protocol): never h2. */
static int
tlsctx_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int i = 0, n;

	while (i < inlen) {
		n = in[i++];
		if (n == 0 || n > inlen - i)
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		if (n == tlsctx_alpn_http11[0] &&
		    memcmp(in + i, tlsctx_alpn_http11 + 1, n) == 0) {
			*out = in + i;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * Sessions resume only on the listener that created them: the session id
 * context is SHA-256 of the listener's name.
 */
static int
tlsctx_set_sid_ctx(SSL_CTX *ctx, const char *name)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *mc;
	int ok;

	if ((mc = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(mc, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(mc, "govgate listener ", 17) &&
	    EVP_DigestUpdate(mc, name, strlen(name)) &&
	    EVP_DigestFinal_ex(mc, md, &mdlen) &&
	    mdlen >= SSL_MAX_SID_CTX_LENGTH &&
	    SSL_CTX_set_session_id_context(ctx, md, SSL_MAX_SID_CTX_LENGTH);
	EVP_MD_CTX_free(mc);
	return ok ? 0 : -1;
}

/*
 * Build the server context of listener l (see tlsctx.h). Every problem is
 * reported to dg, naming the file; now is the clock for expiry checks.
 * Returns an owned SSL_CTX, or NULL when dg got an error.
 */
SSL_CTX *
tlsctx_server_new(const struct conf_listener *l, int64_t now, struct diag *dg)
{
	const struct conf_listener_tls *t = &l->tls;
	const char *lname = l->name != NULL ? l->name : "";
	STACK_OF(X509_NAME) *names = NULL;
	STACK_OF(X509) *cas = NULL;
	X509_NAME *nm;
	SSL_CTX *ctx = NULL;
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	size_t nerrors = dg->nerrors;
	char ebuf[TLSCTX_ERRBUF] = "";
	int i, minv = t->min_version != 0 ? t->min_version : TLS1_2_VERSION;

	if (t->certificate == NULL || t->key == NULL || t->client_ca == NULL) {
		diag_error(dg, NULL, 0, 0,
		    "listener %s: tls needs certificate, key and client_ca",
		    lname);
		goto fail;
	}
	if (minv != TLS1_2_VERSION && minv != TLS1_3_VERSION) {
		diag_error(dg, NULL, 0, 0,
		    "listener %s: min_version must be TLSv1.2 or TLSv1.3",
		    lname);
		goto fail;
	}
	if (t->verify_depth < 0 || t->verify_depth > CONF_MAX_VERIFY_DEPTH) {
		diag_error(dg, NULL, 0, 0,
		    "listener %s: verify_depth must be from 0 to %d", lname,
		    CONF_MAX_VERIFY_DEPTH);
		goto fail;
	}
	if (tlsctx_init() == -1 ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    tlsctx_common(ctx, minv, ebuf, sizeof(ebuf)) == -1 ||
	    tlsctx_set_sid_ctx(ctx, lname) == -1) {
		if (ebuf[0] == '\0')
			tlsctx_ssl_error(ebuf, sizeof(ebuf));
		diag_error(dg, NULL, 0, 0,
		    "listener %s: cannot set up TLS context: %s", lname, ebuf);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

	(void)tlsctx_load_identity(ctx, t->certificate, t->key,
	    "server certificate", now, dg);

	if ((cas = tlsctx_read_cas(t->client_ca, now, dg)) != NULL) {
		if (tlsctx_add_cas(ctx, cas, t->client_ca, dg) == -1)
			goto fail;
		/* The CertificateRequest lists these as acceptable issuers. */
		if ((names = sk_X509_NAME_new_null()) == NULL)
			goto fail_ssl;
		for (i = 0; i < sk_X509_num(cas); i++) {
			nm = X509_NAME_dup(
			    X509_get_subject_name(sk_X509_value(cas, i)));
			if (nm == NULL || !sk_X509_NAME_push(names, nm)) {
				X509_NAME_free(nm);
				goto fail_ssl;
			}
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		names = NULL;
	}

	if (t->crl != NULL) {
		if (cas != NULL)
			(void)tlsctx_load_crls(ctx, cas, t->crl, now, dg);
		/* Every CA in the chain needs a CRL, or the client fails. */
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	}
	if (!X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), flags))
		goto fail_ssl;

	SSL_CTX_set_verify(ctx,
	    SSL_VERIFY_PEER |
	        (t->client_auth == CONF_CLIENT_AUTH_REQUIRE
	                ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
	                : 0),
	    tlsctx_verify_cb);
	/* OpenSSL >= 1.1.0 counts the intermediates between leaf and root. */
	SSL_CTX_set_verify_depth(ctx, t->verify_depth);
	SSL_CTX_set_max_cert_list(ctx, TLSCTX_MAX_CERT_LIST);
	SSL_CTX_set_alpn_select_cb(ctx, tlsctx_alpn_cb, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLSCTX_SESSION_CACHE_SIZE);

	if (dg->nerrors > nerrors)
		goto fail;
	sk_X509_pop_free(cas, X509_free);
	return ctx;
fail_ssl:
	diag_error(dg, NULL, 0, 0, "listener %s: %s", lname,
	    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
fail:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	sk_X509_pop_free(cas, X509_free);
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * Build the client context for upstream u (tls.ca to verify the backend,
 * optional client certificate and key). Returns an owned SSL_CTX, or NULL
 * with the problems in dg. Name checks are set per connection by
 * tlsctx_upstream_prepare.
 */
SSL_CTX *
tlsctx_upstream_new(const struct conf_upstream *u, int64_t now, struct diag *dg)
{
	const struct conf_upstream_tls *t = &u->tls;
	const char *uname = u->name != NULL ? u->name : "";
	STACK_OF(X509) *cas = NULL;
	SSL_CTX *ctx = NULL;
	size_t nerrors = dg->nerrors;
	char ebuf[TLSCTX_ERRBUF] = "";

	if (!u->has_tls || t->ca == NULL) {
		diag_error(dg, NULL, 0, 0, "upstream %s: tls needs ca", uname);
		goto fail;
	}
	if ((t->certificate == NULL) != (t->key == NULL)) {
		diag_error(dg, NULL, 0, 0,
		    "upstream %s: tls certificate and key go together", uname);
		goto fail;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    tlsctx_common(ctx, TLS1_2_VERSION, ebuf, sizeof(ebuf)) == -1) {
		if (ebuf[0] == '\0')
			tlsctx_ssl_error(ebuf, sizeof(ebuf));
		diag_error(dg, NULL, 0, 0,
		    "upstream %s: cannot set up TLS context: %s", uname, ebuf);
		goto fail;
	}
	/* SSL_CTX_set_alpn_protos returns 0 on success. */
	if (SSL_CTX_set_alpn_protos(ctx, tlsctx_alpn_http11,
	        sizeof(tlsctx_alpn_http11) - 1) != 0) {
		diag_error(dg, NULL, 0, 0, "upstream %s: %s", uname,
		    tlsctx_ssl_error(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if ((cas = tlsctx_read_cas(t->ca, now, dg)) != NULL &&
	    tlsctx_add_cas(ctx, cas, t->ca, dg) == -1)
		goto fail;
	if (t->certificate != NULL)
		(void)tlsctx_load_identity(ctx, t->certificate, t->key,
		    "client certificate", now, dg);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, t->verify_depth);
	SSL_CTX_set_max_cert_list(ctx, TLSCTX_MAX_CERT_LIST);
	/*
	 * The owner keeps each server's last session itself (new-session
	 * callback): OpenSSL's cache is keyed by session id, not by server.
	 */
	SSL_CTX_set_session_cache_mode(ctx,
	    SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);

	if (dg->nerrors > nerrors)
		goto fail;
	sk_X509_pop_free(cas, X509_free);
	return ctx;
fail:
	sk_X509_pop_free(cas, X509_free);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Hash one certificate's DER into md, or the marker "-" for none. */
static int
tlsctx_id_add_cert(EVP_MD_CTX *md, const X509 *x)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (x == NULL)
		return EVP_DigestUpdate(md, "-", 1) ? 0 : -1;
	if (!X509_digest(x, EVP_sha256(), d, &dlen) ||
	    !EVP_DigestUpdate(md, "x", 1) || !EVP_DigestUpdate(md, d, dlen))
		return -1;
	return 0;
}

/*
 * Fill id with a digest of what a resumed upstream session skips checking:
 * the trust store (CAs and CRLs) of ctx, its client certificate and chain,
 * and u's tls.server_name and tls.verify_depth. Two contexts with the same
 * id verify a backend and present the gateway alike, so their sessions are
 * interchangeable.
 * Returns 0, or -1 (OpenSSL error, queue cleared).
 */
int
tlsctx_upstream_id(SSL_CTX *ctx, const struct conf_upstream *u,
    unsigned char id[TLSCTX_ID_LEN])
{
	STACK_OF(X509_OBJECT) * objs;
	STACK_OF(X509) *chain = NULL;
	const X509_CRL *crl;
	EVP_MD_CTX *md = NULL;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	const char *sn = u->tls.server_name;
	unsigned char depth = (unsigned char)u->tls.verify_depth;
	int i, ret = -1;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, &depth, 1))
		goto out;
	/* A name and its absence must not hash alike. */
	if (!EVP_DigestUpdate(md, sn != NULL ? "n" : "-", 1) ||
	    (sn != NULL && !EVP_DigestUpdate(md, sn, strlen(sn) + 1)))
		goto out;
	objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);

		if (X509_OBJECT_get_type(o) == X509_LU_X509) {
			if (tlsctx_id_add_cert(md, X509_OBJECT_get0_X509(o)) ==
			    -1)
				goto out;
		} else if ((crl = X509_OBJECT_get0_X509_CRL(o)) != NULL) {
			if (!X509_CRL_digest(crl, EVP_sha256(), d, &dlen) ||
			    !EVP_DigestUpdate(md, "c", 1) ||
			    !EVP_DigestUpdate(md, d, dlen))
				goto out;
		}
	}
	if (!EVP_DigestUpdate(md, "|", 1) ||
	    tlsctx_id_add_cert(md, SSL_CTX_get0_certificate(ctx)) == -1 ||
	    !SSL_CTX_get0_chain_certs(ctx, &chain))
		goto out;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (tlsctx_id_add_cert(md, sk_X509_value(chain, i)) == -1)
			goto out;
	if (!EVP_DigestFinal_ex(md, d, &dlen) || dlen != TLSCTX_ID_LEN)
		goto out;
	memcpy(id, d, TLSCTX_ID_LEN);
	ret = 0;
out:
	if (ret == -1)
		ERR_clear_error();
	EVP_MD_CTX_free(md);
	return ret;
}

/*
 * Set SNI and the name check of one upstream connection: tls.server_name,
 * or else host. An IP address is matched against the IP SANs and sends no
 * SNI (RFC 6066 allows DNS names only). Returns 0, or -1.
 */
int
tlsctx_upstream_prepare(SSL *ssl, const struct conf_upstream *u,
    const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char name[TLSCTX_HOST_MAX + 1];
	const char *src;

	src = u->tls.server_name != NULL ? u->tls.server_name : host;
	if (src == NULL || *src == '\0' ||
	    strlcpy(name, src, sizeof(name)) >= sizeof(name))
		return -1;
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name))
			goto fail;
		return 0;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (!SSL_set_tlsext_host_name(ssl, name) || !SSL_set1_host(ssl, name))
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	return -1;
}

/* Flush the whole session cache of ctx (t = 0 matches every session). */
void
tlsctx_flush_sessions(SSL_CTX *ctx)
{
	SSL_CTX_flush_sessions(ctx, 0);
}

/*
 * The verify result of the last handshake on ssl as a short reason: ours
 * for the contract 4.2b leaf checks, OpenSSL's for the rest, "no client
 * certificate" when none was sent, "ok" otherwise.
 */
const char *
tlsctx_verify_reason(SSL *ssl)
{
	uintptr_t r = 0;
	long v;

	if (tlsctx_ex_index >= 0)
		r = (uintptr_t)SSL_get_ex_data(ssl, tlsctx_ex_index);
	if (r != TLSCTX_REASON_NONE && r < nitems(tlsctx_reasons))
		return tlsctx_reasons[r];
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		return X509_verify_cert_error_string(v);
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return "no client certificate";
	return tlsctx_reasons[TLSCTX_REASON_NONE];
}
