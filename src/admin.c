/* SPDX-License-Identifier: ISC */
/* admin.c - the admin listener: GET /healthz and GET /metrics, plain HTTP. */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "admin.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

/* One admin connection: read one head, answer, close. */
enum admin_conn_state {
	ADMIN_C_HEAD = 0, /* reading the request head */
	ADMIN_C_SEND,     /* writing the answer */
	ADMIN_C_LINGER,   /* answer written, write side shut: drain, close */
};

struct admin_conn {
	struct admin *a;
	enum admin_conn_state state;
	struct bufferevent *bev;
	struct event *timer; /* the state's absolute deadline */
	size_t discarded;
	TAILQ_ENTRY(admin_conn) entry;
};

TAILQ_HEAD(admin_conn_list, admin_conn);

struct admin {
	char *text; /* the address as configured, for logs */
	uint16_t port;
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *stop_ev; /* the read end of wake: leave the loop */
	struct event *retry;   /* resumes accepting after an accept error */
	int wake[2];
	pthread_t thread;
	int started;
	int paused; /* ADMIN_MAX_CONNS reached: listener off */
	struct metrics *m;
	void (*state)(void *, struct metrics_state *);
	void *arg;
	struct admin_conn_list conns;
	size_t nconns;
};

static void admin_read_cb(struct bufferevent *, void *);
static void admin_write_cb(struct bufferevent *, void *);
static void admin_event_cb(struct bufferevent *, short, void *);

static void
admin_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* The one way out of a connection; resumes accepting below the limit. */
static void
admin_conn_close(struct admin_conn *ac, const char *reason)
{
	struct admin *a = ac->a;

	log_debug("admin: connection closed: %s", reason);
	TAILQ_REMOVE(&a->conns, ac, entry);
	a->nconns--;
	if (ac->timer != NULL)
		event_free(ac->timer);
	if (ac->bev != NULL)
		bufferevent_free(ac->bev);
	free(ac);
	if (a->paused && a->nconns < ADMIN_MAX_CONNS) {
		a->paused = 0;
		if (evconnlistener_enable(a->lev) == -1)
			log_warnx("admin: cannot resume accepting");
	}
}

static void
admin_conn_deadline(struct admin_conn *ac, uint64_t ms)
{
	struct timeval tv;

	admin_tv(ms, &tv);
	if (evtimer_add(ac->timer, &tv) == -1)
		admin_conn_close(ac, "cannot arm the timer");
}

static void
admin_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn *ac = arg;

	admin_conn_close(ac,
	    ac->state == ADMIN_C_HEAD       ? "head timeout"
	        : ac->state == ADMIN_C_SEND ? "send timeout"
	                                    : "linger over");
}

/* evbuffer cleanup of a rendered body. */
static void
admin_body_free_cb(const void *data, size_t len, void *extra)
{
	free((void *)(uintptr_t)data);
}

/*
 * Queue one complete answer and move to ADMIN_C_SEND. body is len bytes;
 * owned, when not NULL, is body as malloc'd, and is now this function's
 * to free. A HEAD request gets the headers only.
 */
static void
admin_reply(struct admin_conn *ac, int status, const char *ctype,
    const char *extra, const char *body, size_t len, char *owned, int head_only)
{
	struct evbuffer *in = bufferevent_get_input(ac->bev);
	struct evbuffer *out = bufferevent_get_output(ac->bev);
	struct timeval tv;
	int rc;

	rc = evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s"
	    "Connection: close\r\n"
	    "\r\n",
	    status, http_status_text(status), ctype, len,
	    extra != NULL ? extra : "");
	if (rc != -1 && !head_only && len > 0) {
		if (owned != NULL) {
			rc = evbuffer_add_reference(out, owned, len,
			    admin_body_free_cb, NULL);
			if (rc != -1)
				owned = NULL;
		} else
			rc = evbuffer_add(out, body, len);
	}
	free(owned);
	if (rc == -1) {
		admin_conn_close(ac, "out of memory");
		return;
	}
	ac->state = ADMIN_C_SEND;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(ac->bev, EV_READ, 0, 0);
	bufferevent_setcb(ac->bev, admin_read_cb, admin_write_cb,
	    admin_event_cb, ac);
	admin_tv(ADMIN_SEND_TIMEOUT_MS, &tv);
	bufferevent_set_timeouts(ac->bev, NULL, &tv);
	if (bufferevent_enable(ac->bev, EV_READ | EV_WRITE) == -1) {
		admin_conn_close(ac, "cannot write");
		return;
	}
	admin_conn_deadline(ac, ADMIN_SEND_MAX_MS);
}

static void
admin_reply_text(struct admin_conn *ac, int status, const char *extra,
    const char *text, int head_only)
{
	admin_reply(ac, status, "text/plain; charset=utf-8", extra, text,
	    strlen(text), NULL, head_only);
}

static void
admin_state(struct admin *a, struct metrics_state *st)
{
	memset(st, 0, sizeof(*st));
	if (a->state != NULL)
		a->state(a->arg, st);
}

/* GET /healthz: 200 "ok", or 503 naming every reason. */
static void
admin_healthz(struct admin_conn *ac, int head_only)
{
	struct metrics_state st;
	char body[128];

	admin_state(ac->a, &st);
	body[0] = '\0';
	if (st.draining)
		strlcat(body, "draining\n", sizeof(body));
	if (st.have_audit && st.audit.degraded)
		strlcat(body, "audit trail degraded\n", sizeof(body));
	if (body[0] != '\0')
		admin_reply_text(ac, 503, NULL, body, head_only);
	else
		admin_reply_text(ac, 200, NULL, "ok\n", head_only);
}

static void
admin_metrics(struct admin_conn *ac, int head_only)
{
	struct metrics_state st;
	size_t len = 0;
	char *text;

	admin_state(ac->a, &st);
	if ((text = metrics_render(ac->a->m, &st, &len)) == NULL) {
		log_warnx("admin: /metrics: out of memory");
		admin_reply_text(ac, 500, NULL, "metrics unavailable\n",
		    head_only);
		return;
	}
	admin_reply(ac, 200, METRICS_CONTENT_TYPE, NULL, text, len, text,
	    head_only);
}

/* Answer a complete request head. */
static void
admin_route(struct admin_conn *ac, const struct http_request *req)
{
	int get = http_span_eq(req->method, "GET");
	int head = http_span_eq(req->method, "HEAD");
	int healthz = http_span_eq(req->path, "/healthz");
	int metrics = http_span_eq(req->path, "/metrics");

	if (!healthz && !metrics)
		admin_reply_text(ac, 404, NULL, "not found\n", head);
	else if (!get && !head)
		admin_reply_text(ac, 405, "Allow: GET, HEAD\r\n",
		    "method not allowed\n", 0);
	else if (healthz)
		admin_healthz(ac, head);
	else
		admin_metrics(ac, head);
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct http_request req;
	struct http_limits lim;
	size_t len = evbuffer_get_length(in);
	const char *buf;
	int rc;

	if (ac->state != ADMIN_C_HEAD) {
		/* A body or a pipelined request: read and dropped, bounded. */
		ac->discarded += len;
		evbuffer_drain(in, len);
		if (ac->discarded > ADMIN_MAX_DISCARD)
			admin_conn_close(ac, "too much data after the head");
		return;
	}
	if (len == 0)
		return;
	memset(&lim, 0, sizeof(lim));
	lim.max_head_bytes = ADMIN_MAX_HEAD;
	lim.max_headers = ADMIN_MAX_HEADERS;
	if ((buf = (const char *)evbuffer_pullup(in, -1)) == NULL) {
		admin_conn_close(ac, "out of memory");
		return;
	}
	rc = http_parse_request(buf, len, &req, &lim);
	if (rc == HTTP_PARTIAL && len < ADMIN_MAX_HEAD)
		return;
	if (rc == HTTP_PARTIAL || rc == HTTP_TOO_LARGE)
		admin_reply_text(ac, 431, NULL,
		    "request header fields too large\n", 0);
	else if (rc == HTTP_ERROR)
		admin_reply_text(ac, 400, NULL, "bad request\n", 0);
	else
		admin_route(ac, &req);
}

/* The answer is out: shut the write side, then drain until EOF. */
static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *ac = arg;

	if (ac->state != ADMIN_C_SEND ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	ac->state = ADMIN_C_LINGER;
	bufferevent_setcb(bev, admin_read_cb, NULL, admin_event_cb, ac);
	bufferevent_disable(bev, EV_WRITE);
	/*
	 * Closing with unread bytes would reset the connection and could
	 * destroy the answer in the client's receive buffer.
	 */
	if (shutdown(bufferevent_getfd(bev), SHUT_WR) == -1) {
		admin_conn_close(ac, "shutdown failed");
		return;
	}
	admin_conn_deadline(ac, ADMIN_LINGER_MS);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *ac = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		admin_conn_close(ac, "write timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		admin_conn_close(ac, "connection error");
		return;
	}
	/* A client may half-close once its request is sent. */
	if ((what & BEV_EVENT_EOF) && ac->state == ADMIN_C_SEND) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	admin_conn_close(ac,
	    ac->state == ADMIN_C_HEAD ? "closed before a complete head"
	                              : "closed");
}

static void
admin_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct admin *a = arg;
	struct admin_conn *ac;

	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		log_warnx("admin: out of memory: connection refused");
		close(fd);
		return;
	}
	ac->a = a;
	TAILQ_INSERT_TAIL(&a->conns, ac, entry);
	a->nconns++;
	if (a->nconns >= ADMIN_MAX_CONNS) {
		/* The rest wait in the backlog; one closing resumes. */
		a->paused = 1;
		evconnlistener_disable(lev);
	}
	ac->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (ac->bev == NULL) {
		close(fd);
		admin_conn_close(ac, "out of memory");
		return;
	}
	if ((ac->timer = evtimer_new(a->base, admin_timer_cb, ac)) == NULL) {
		admin_conn_close(ac, "out of memory");
		return;
	}
	bufferevent_setwatermark(ac->bev, EV_READ, 0, ADMIN_MAX_HEAD);
	bufferevent_setcb(ac->bev, admin_read_cb, NULL, admin_event_cb, ac);
	if (bufferevent_enable(ac->bev, EV_READ) == -1) {
		admin_conn_close(ac, "cannot read");
		return;
	}
	admin_conn_deadline(ac, ADMIN_HEAD_TIMEOUT_MS);
}

static void
admin_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;

	if (!a->paused && evconnlistener_enable(a->lev) == -1)
		log_warnx("admin: cannot resume accepting");
}

/* accept(2) failed (EMFILE and the like): pause instead of spinning. */
static void
admin_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct admin *a = arg;
	struct timeval tv;

	log_warnx("admin: accept: %s", strerror(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(lev);
	admin_tv(ADMIN_ACCEPT_PAUSE_MS, &tv);
	if (evtimer_add(a->retry, &tv) == -1)
		log_warnx("admin: cannot arm the accept timer");
}

static void
admin_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;

	event_base_loopbreak(a->base);
}

static void *
admin_main(void *arg)
{
	struct admin *a = arg;

	if (event_base_dispatch(a->base) == -1)
		log_error("admin: event loop failed");
	return NULL;
}

/* A listening socket on addr; returns the fd, or -1 with err. */
static int
admin_bind(const struct conf_addr *addr, uint16_t *port, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)addr->port);
	if ((rc = getaddrinfo(addr->host, portstr, &hints, &res)) != 0) {
		snprintf(err, errlen, "admin.address %s: %s", addr->text,
		    gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, ADMIN_BACKLOG) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		goto fail;
	*port = ss.ss_family == AF_INET6
	    ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(res);
	return fd;
fail:
	snprintf(err, errlen, "admin.address %s: %s", addr->text,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

struct admin *
admin_new(const struct conf_addr *addr, char *err, size_t errlen)
{
	struct admin *a;
	int fd;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "admin: out of memory");
		return NULL;
	}
	a->wake[0] = a->wake[1] = -1;
	TAILQ_INIT(&a->conns);
	if ((fd = admin_bind(addr, &a->port, err, errlen)) == -1) {
		admin_free(a);
		return NULL;
	}
	/* The port bound, not 0, when the address asked for any port. */
	if (asprintf(&a->text,
	        strchr(addr->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
	        addr->host, (unsigned)a->port) == -1) {
		a->text = NULL;
		close(fd);
		goto fail;
	}
	if ((a->base = event_base_new()) == NULL) {
		close(fd);
		goto fail;
	}
	a->lev = evconnlistener_new(a->base, admin_accept_cb, a,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (a->lev == NULL) {
		close(fd);
		goto fail;
	}
	evconnlistener_set_error_cb(a->lev, admin_accept_error_cb);
	if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) == -1)
		goto fail;
	a->stop_ev = event_new(a->base, a->wake[0], EV_READ, admin_stop_cb, a);
	a->retry = evtimer_new(a->base, admin_retry_cb, a);
	if (a->stop_ev == NULL || a->retry == NULL ||
	    event_add(a->stop_ev, NULL) == -1)
		goto fail;
	return a;
fail:
	snprintf(err, errlen, "admin.address %s: cannot set up: %s",
	    addr->text != NULL ? addr->text : "", strerror(errno));
	admin_free(a);
	return NULL;
}

int
admin_start(struct admin *a, struct metrics *m,
    void (*state)(void *arg, struct metrics_state *st), void *arg, char *err,
    size_t errlen)
{
	sigset_t all, old;
	int rc;

	if (a->started) {
		snprintf(err, errlen, "admin: already started");
		return -1;
	}
	a->m = m;
	a->state = state;
	a->arg = arg;
	/* Signals stay with the main thread's event loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&a->thread, NULL, admin_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "admin: cannot start a thread: %s",
		    strerror(rc));
		return -1;
	}
	a->started = 1;
	log_info("admin listener on %s: GET /healthz, GET /metrics", a->text);
	return 0;
}

void
admin_free(struct admin *a)
{
	struct admin_conn *ac;

	if (a == NULL)
		return;
	if (a->started) {
		while (write(a->wake[1], "x", 1) == -1 && errno == EINTR)
			;
		pthread_join(a->thread, NULL);
	}
	while ((ac = TAILQ_FIRST(&a->conns)) != NULL)
		admin_conn_close(ac, "admin listener stopped");
	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	if (a->stop_ev != NULL)
		event_free(a->stop_ev);
	if (a->retry != NULL)
		event_free(a->retry);
	if (a->wake[0] != -1)
		close(a->wake[0]);
	if (a->wake[1] != -1)
		close(a->wake[1]);
	if (a->base != NULL)
		event_base_free(a->base);
	free(a->text);
	free(a);
}

uint16_t
admin_port(const struct admin *a)
{
	return a->port;
}

/* ASN1_TIME as epoch seconds; -1 when it cannot be read. */
static int
admin_asn1_epoch(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* The soonest client CA notAfter and CRL nextUpdate of ctx's store. */
static void
admin_store_times(SSL_CTX *ctx, int64_t *ca, int64_t *crl)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_OBJECT) * objs;
	X509_OBJECT *o;
	X509_CRL *c;
	X509 *x;
	int64_t t;
	int i;

	*ca = *crl = METRICS_CERT_UNKNOWN;
	if (store == NULL || !X509_STORE_lock(store))
		return;
	objs = X509_STORE_get0_objects(store);
	for (i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		o = sk_X509_OBJECT_value(objs, i);
		if ((x = X509_OBJECT_get0_X509(o)) != NULL &&
		    admin_asn1_epoch(X509_get0_notAfter(x), &t) == 0 &&
		    (*ca == METRICS_CERT_UNKNOWN || t < *ca))
			*ca = t;
		if ((c = X509_OBJECT_get0_X509_CRL(o)) != NULL &&
		    admin_asn1_epoch(X509_CRL_get0_nextUpdate(c), &t) == 0 &&
		    (*crl == METRICS_CERT_UNKNOWN || t < *crl))
			*crl = t;
	}
	X509_STORE_unlock(store);
}

void
admin_observe_certs(struct metrics *m, const struct conf *c,
    SSL_CTX *const *ctx, size_t n)
{
	const char *name;
	int64_t leaf, ca, crl;
	X509 *x;
	size_t i;

	for (i = 0; i < n && i < c->nlisteners; i++) {
		name = c->listeners[i].name;
		leaf = ca = crl = METRICS_CERT_UNKNOWN;
		if (ctx[i] != NULL) {
			x = SSL_CTX_get0_certificate(ctx[i]);
			if (x == NULL ||
			    admin_asn1_epoch(X509_get0_notAfter(x), &leaf) ==
			        -1)
				leaf = METRICS_CERT_UNKNOWN;
			admin_store_times(ctx[i], &ca, &crl);
		}
		if (metrics_cert_set(m, name, METRICS_CERT_SERVER, leaf) ==
		        -1 ||
		    metrics_cert_set(m, name, METRICS_CERT_CLIENT_CA, ca) ==
		        -1 ||
		    metrics_cert_set(m, name, METRICS_CERT_CRL, crl) == -1)
			log_warnx("listener %s: certificate times not recorded",
			    name);
	}
}
