/* admin_test.c - the admin listener over real sockets: routes, limits, state.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "admin.h"
#include "compat.h"
#include "conf.h"
#include "metrics.h"
#include "tap.h"

static atomic_int t_draining, t_degraded, t_calls;

static void
state_cb(void *arg, struct metrics_state *st)
{
	atomic_fetch_add(&t_calls, 1);
	st->draining = atomic_load(&t_draining);
	st->have_audit = 1;
	st->audit.degraded = atomic_load(&t_degraded);
	st->audit.records = 7;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
connect_to(uint16_t port)
{
	struct sockaddr_in sin;
	struct timeval tv = { 5, 0 };
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		abort();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		abort();
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, buf, len, MSG_NOSIGNAL)) <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Read until EOF, error or timeout; a NUL-terminated malloc'd string. */
static char *
read_all(int fd, int *eof)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);
	ssize_t n;

	*eof = 0;
	if (buf == NULL)
		abort();
	for (;;) {
		if (len == cap) {
			cap *= 2;
			if ((buf = realloc(buf, cap + 1)) == NULL)
				abort();
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n == 0)
			*eof = 1;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* One request on a new connection; the whole answer up to EOF. */
static char *
exchange(uint16_t port, const char *req, size_t len, int half_close)
{
	char *out;
	int fd, eof;

	fd = connect_to(port);
	send_all(fd, req, len);
	if (half_close)
		shutdown(fd, SHUT_WR);
	out = read_all(fd, &eof);
	close(fd);
	return out;
}

static const struct {
	const char *name;
	const char *req;
	const char *status; /* the status line's start */
	const char *want;   /* in the answer, or NULL */
	const char *unwanted;
} rows[] = {
	{ "GET /healthz is ok", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n", "\r\n\r\nok\n", NULL },
	{ "answers say Connection: close",
	    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "\r\nConnection: close\r\n", "keep-alive" },
	{ "HEAD /healthz has headers only",
	    "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "Content-Length: 3\r\n", "ok\n" },
	{ "GET /metrics is exposition format 0.0.4",
	    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
	    NULL },
	{ "GET /metrics has the counters",
	    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "\ngovgate_requests_total{department=\"\",resource=\"\","
	    "decision=\"deny\",reason=\"bad_request\"} 2\n",
	    NULL },
	{ "GET /metrics reads the state callback",
	    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "\ngovgate_audit_records_total 7\n", NULL },
	{ "a query string is ignored",
	    "GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
	    "govgate_build_info", NULL },
	{ "HTTP/1.0", "GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200", "ok\n",
	    NULL },
	{ "absolute form",
	    "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: "
	    "127.0.0.1\r\n\r\n",
	    "HTTP/1.1 200", "ok\n", NULL },
	{ "unknown path is 404", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
	    "HTTP/1.1 404 Not Found\r\n", NULL, NULL },
	{ "a path is matched exactly",
	    "GET /healthz/ HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404", NULL,
	    NULL },
	{ "POST is 405 with Allow",
	    "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
	    "abc",
	    "HTTP/1.1 405 Method Not Allowed\r\n", "\r\nAllow: GET, HEAD\r\n",
	    NULL },
	{ "DELETE /healthz is 405",
	    "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405", NULL,
	    NULL },
	{ "garbage is 400", "HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n",
	    NULL, NULL },
	{ "bare LF is 400", "GET /healthz HTTP/1.1\nHost: x\n\n",
	    "HTTP/1.1 400", NULL, NULL },
	{ "no Host on 1.1 is 400", "GET /healthz HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 400", NULL, NULL },
	{ "bytes after the head are dropped",
	    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics "
	    "HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 200", "ok\n", "govgate_" },
};

static void
test_rows(uint16_t port)
{
	char *out;
	size_t i;

	for (i = 0; i < nitems(rows); i++) {
		out = exchange(port, rows[i].req, strlen(rows[i].req), 0);
		if (!tap_ok(strncmp(out, rows[i].status,
		                strlen(rows[i].status)) == 0 &&
		            (rows[i].want == NULL ||
		                strstr(out, rows[i].want) != NULL) &&
		            (rows[i].unwanted == NULL ||
		                strstr(out, rows[i].unwanted) == NULL),
		        "%s", rows[i].name))
			tap_diag("got: %.300s", out);
		free(out);
	}
}

static void
test_health_states(uint16_t port)
{
	const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	const char mreq[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	char *out;

	atomic_store(&t_degraded, 1);
	out = exchange(port, req, sizeof(req) - 1, 0);
	tap_ok(strncmp(out, "HTTP/1.1 503 ", 13) == 0 &&
	        strstr(out, "\r\n\r\naudit trail degraded\n") != NULL,
	    "healthz: 503 while the audit trail is degraded");
	free(out);
	out = exchange(port, mreq, sizeof(mreq) - 1, 0);
	tap_ok(strstr(out, "\ngovgate_audit_degraded 1\n") != NULL,
	    "metrics: audit_degraded 1");
	free(out);
	atomic_store(&t_draining, 1);
	out = exchange(port, req, sizeof(req) - 1, 0);
	tap_ok(strncmp(out, "HTTP/1.1 503 ", 13) == 0 &&
	        strstr(out, "\r\n\r\ndraining\naudit trail degraded\n") != NULL,
	    "healthz: 503 names both reasons");
	free(out);
	atomic_store(&t_degraded, 0);
	out = exchange(port, req, sizeof(req) - 1, 0);
	tap_ok(strncmp(out, "HTTP/1.1 503 ", 13) == 0 &&
	        strstr(out, "\r\n\r\ndraining\n") != NULL &&
	        strstr(out, "Content-Length: 9\r\n") != NULL,
	    "healthz: 503 while draining");
	free(out);
	out = exchange(port, mreq, sizeof(mreq) - 1, 0);
	tap_ok(strstr(out, "\ngovgate_draining 1\n") != NULL,
	    "metrics: draining 1");
	free(out);
	atomic_store(&t_draining, 0);
	out = exchange(port, req, sizeof(req) - 1, 0);
	tap_ok(strncmp(out, "HTTP/1.1 200 ", 13) == 0,
	    "healthz: 200 again once both clear");
	free(out);
}

static void
test_limits(uint16_t port)
{
	const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	char big[ADMIN_MAX_HEAD + 200], *out;
	int fds[ADMIN_MAX_CONNS], fd, eof;
	struct pollfd pfd;
	double t0, dt;
	size_t i;

	/* A head past 8 KiB, with or without its end. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", 39);
	out = exchange(port, big, sizeof(big), 0);
	tap_ok(strncmp(out, "HTTP/1.1 431 ", 13) == 0,
	    "a head over 8 KiB without its end is 431");
	free(out);
	memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
	out = exchange(port, big, sizeof(big), 0);
	tap_ok(strncmp(out, "HTTP/1.1 431 ", 13) == 0,
	    "a complete head over 8 KiB is 431");
	free(out);

	/* A client that half-closes after its request still gets it all. */
	out = exchange(port, req, sizeof(req) - 1, 1);
	tap_ok(strncmp(out, "HTTP/1.1 200 ", 13) == 0 &&
	        strstr(out, "\r\n\r\nok\n") != NULL,
	    "half-closed client gets the whole answer");
	free(out);

	/* A head split in two writes. */
	fd = connect_to(port);
	send_all(fd, req, 10);
	usleep(100000);
	send_all(fd, req + 10, sizeof(req) - 11);
	out = read_all(fd, &eof);
	close(fd);
	tap_ok(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "a head in two writes");
	free(out);

	/* An incomplete head is cut after about a second. */
	fd = connect_to(port);
	send_all(fd, "GET /heal", 9);
	t0 = now_s();
	out = read_all(fd, &eof);
	dt = now_s() - t0;
	close(fd);
	tap_ok(eof && out[0] == '\0' && dt > 0.8 && dt < 3.0,
	    "slow head closed after the 1 s deadline (%.2f s)", dt);
	free(out);

	/* Sixteen idle connections: the seventeenth waits its turn. */
	for (i = 0; i < ADMIN_MAX_CONNS; i++)
		fds[i] = connect_to(port);
	usleep(100000);
	fd = connect_to(port);
	t0 = now_s();
	send_all(fd, req, sizeof(req) - 1);
	pfd.fd = fd;
	pfd.events = POLLIN;
	tap_ok(poll(&pfd, 1, 300) == 0,
	    "with 16 connections open, a 17th is not served");
	close(fds[0]);
	out = read_all(fd, &eof);
	dt = now_s() - t0;
	close(fd);
	tap_ok(strncmp(out, "HTTP/1.1 200 ", 13) == 0 && dt < 1.0,
	    "served once one of the 16 closes (%.2f s)", dt);
	free(out);
	for (i = 1; i < ADMIN_MAX_CONNS; i++) {
		out = read_all(fds[i], &eof);
		if (!eof)
			break;
		free(out);
		out = NULL;
		close(fds[i]);
	}
	tap_ok(i == ADMIN_MAX_CONNS, "the idle ones are closed by the server");
	free(out);
	for (; i < ADMIN_MAX_CONNS; i++)
		close(fds[i]);
}

/* A throwaway certificate with the given notAfter, self-signed by key. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, time_t not_after)
{
	X509_NAME *name;
	X509 *x;

	if ((x = X509_new()) == NULL || !X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), 1600000000) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	        (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) ||
	    X509_sign(x, key, NULL) == 0)
		abort();
	return x;
}

static X509_CRL *
make_crl(EVP_PKEY *key, X509 *issuer, time_t next)
{
	ASN1_TIME *t = ASN1_TIME_new();
	X509_CRL *crl;

	if ((crl = X509_CRL_new()) == NULL || t == NULL ||
	    !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    ASN1_TIME_set(t, 1600000000) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, t) ||
	    ASN1_TIME_set(t, next) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t) ||
	    X509_CRL_sign(crl, key, NULL) == 0)
		abort();
	ASN1_TIME_free(t);
	return crl;
}

static void
test_certs(void)
{
	static char lname[] = "egov", lname2[] = "spare";
	struct conf_listener lis[2];
	struct metrics *m;
	struct conf c;
	SSL_CTX *ctx[2];
	EVP_PKEY *key;
	X509 *leaf, *ca1, *ca2;
	X509_CRL *crl1, *crl2;
	char err[128], *t;

	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		abort();
	/* 2033-05-18, 2030-01-01 and 2027-01-15 (UTC). */
	leaf = make_cert(key, "gateway", 2000000000);
	ca1 = make_cert(key, "ca one", 1893456000);
	ca2 = make_cert(key, "ca two", 1950000000);
	crl1 = make_crl(key, ca1, 1800000000);
	crl2 = make_crl(key, ca2, 1900000000);
	if ((ctx[0] = SSL_CTX_new(TLS_server_method())) == NULL ||
	    (ctx[1] = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(ctx[0], leaf) != 1 ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx[0]), ca1) ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx[0]), ca2) ||
	    !X509_STORE_add_crl(SSL_CTX_get_cert_store(ctx[0]), crl2) ||
	    !X509_STORE_add_crl(SSL_CTX_get_cert_store(ctx[0]), crl1))
		abort();
	memset(lis, 0, sizeof(lis));
	lis[0].name = lname;
	lis[1].name = lname2;
	memset(&c, 0, sizeof(c));
	c.listeners = lis;
	c.nlisteners = 2;
	if ((m = metrics_new(1, err, sizeof(err))) == NULL)
		abort();
	admin_observe_certs(m, &c, ctx, 2);
	t = metrics_render(m, NULL, NULL);
	tap_ok(t != NULL &&
	        strstr(t,
	            "\ngovgate_certificate_not_after_seconds{listener="
	            "\"egov\"} 2000000000\n") != NULL,
	    "certs: the listener certificate's notAfter");
	tap_ok(t != NULL &&
	        strstr(t,
	            "\ngovgate_client_ca_not_after_seconds{listener="
	            "\"egov\"} 1893456000\n") != NULL,
	    "certs: the soonest client CA notAfter");
	tap_ok(t != NULL &&
	        strstr(t,
	            "\ngovgate_crl_next_update_seconds{listener="
	            "\"egov\"} 1800000000\n") != NULL,
	    "certs: the soonest CRL nextUpdate");
	tap_ok(t != NULL && strstr(t, "listener=\"spare\"") == NULL,
	    "certs: a context without them shows none");
	free(t);
	/* A reload without the CRL forgets its time. */
	SSL_CTX_free(ctx[0]);
	if ((ctx[0] = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(ctx[0], leaf) != 1)
		abort();
	admin_observe_certs(m, &c, ctx, 2);
	t = metrics_render(m, NULL, NULL);
	tap_ok(t != NULL &&
	        strstr(t, "govgate_crl_next_update_seconds{") == NULL &&
	        strstr(t,
	            "govgate_certificate_not_after_seconds{listener="
	            "\"egov\"} 2000000000") != NULL,
	    "certs: times that went away are forgotten");
	free(t);
	metrics_free(m);
	SSL_CTX_free(ctx[0]);
	SSL_CTX_free(ctx[1]);
	X509_free(leaf);
	X509_free(ca1);
	X509_free(ca2);
	X509_CRL_free(crl1);
	X509_CRL_free(crl2);
	EVP_PKEY_free(key);
}

int
main(void)
{
	struct conf_addr addr, bad;
	struct metrics *m;
	struct admin *a, *b;
	char err[256], host[] = "127.0.0.1", text[] = "127.0.0.1:0";
	char badhost[] = "localhost", badtext[] = "localhost:0";
	char taken[32];
	int fd;

	memset(&addr, 0, sizeof(addr));
	addr.host = host;
	addr.text = text;
	if ((m = metrics_new(1, err, sizeof(err))) == NULL)
		abort();
	metrics_request(metrics_shard_at(m, 0), NULL, NULL, NULL, 0,
	    POLICY_R_BAD_REQUEST);
	metrics_request(metrics_shard_at(m, 0), NULL, NULL, NULL, 0,
	    POLICY_R_BAD_REQUEST);

	a = admin_new(&addr, err, sizeof(err));
	if (!tap_ok(a != NULL && admin_port(a) != 0,
	        "binds 127.0.0.1 on a free port")) {
		tap_diag("%s", err);
		tap_done();
		tap_exit();
	}
	addr.port = admin_port(a);
	snprintf(taken, sizeof(taken), "127.0.0.1:%u", (unsigned)addr.port);
	addr.text = taken;
	b = admin_new(&addr, err, sizeof(err));
	tap_ok(b == NULL && strstr(err, "127.0.0.1:") != NULL &&
	        strstr(err, "in use") != NULL,
	    "a port in use is refused, naming the address (%s)", err);
	memset(&bad, 0, sizeof(bad));
	bad.host = badhost;
	bad.text = badtext;
	tap_ok(admin_new(&bad, err, sizeof(err)) == NULL,
	    "a host name is refused (IP literals only)");

	/* Before start, a connection waits in the backlog. */
	fd = connect_to(admin_port(a));
	tap_ok(admin_start(a, m, state_cb, NULL, err, sizeof(err)) == 0,
	    "starts its thread");
	tap_ok(admin_start(a, m, state_cb, NULL, err, sizeof(err)) == -1,
	    "a second start is refused");
	send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
	{
		int eof;
		char *out = read_all(fd, &eof);

		tap_ok(strncmp(out, "HTTP/1.1 200 ", 13) == 0,
		    "a connection made before start is served");
		free(out);
	}
	close(fd);

	test_rows(admin_port(a));
	test_health_states(admin_port(a));
	test_limits(admin_port(a));
	tap_ok(atomic_load(&t_calls) > 0, "the state callback was used");

	/* Stopping with connections open frees them (LeakSanitizer). */
	fd = connect_to(admin_port(a));
	usleep(50000);
	admin_free(a);
	close(fd);
	tap_ok(1, "stopped with a connection open");
	admin_free(NULL);
	metrics_free(m);

	test_certs();
	tap_done();
	tap_exit();
}
