/* conn.c - one client connection: TLS, strict HTTP, decide, audit, relay. */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "cfgset.h"
#include "conf.h"
#include "compat.h"
#include "conn.h"
#include "connlim.h"
#include "fwd.h"
#include "geo.h"
#include "http.h"
#include "log.h"
#include "mask.h"
#include "metrics.h"
#include "peer.h"
#include "policy.h"
#include "proxyproto.h"
#include "tlsctx.h"
#include "upstream.h"
#include "worker.h"

#define CONN_MAX_SNI 255
#define CONN_HBUF_MIN 1024
#define CONN_HBUF_KEEP 8192   /* a pooled head buffer larger is freed */
#define CONN_REQ_POOL_MAX 128 /* request buffers a worker keeps */

/* How a failed upstream attempt may be retried. */
#define CONN_RETRY_NONE 0
#define CONN_RETRY_OTHER 1 /* connect failed: mark it, try another server */
#define CONN_RETRY_FRESH 2 /* a pooled connection was stale: a new one */

/* Where the response from the upstream is. */
enum conn_resp {
	CONN_RESP_HEAD = 0,
	CONN_RESP_BODY,
	CONN_RESP_DONE,
};

/*
 * What only a request in progress needs: the parsed head and the copy
 * its spans point into. An idle keep-alive connection holds none; they
 * come from a per-worker pool (conn_req_take, conn_req_put).
 */
struct conn_req {
	union {
		struct http_request req;
		struct http_response res; /* once the request head went up */
	} u;
	char *hbuf; /* copy of the head being parsed; spans point here */
	size_t hcap;
	char *norm; /* canonical path, hcap + 1 bytes */
	size_t normcap;
	/* The request's judgement and its bodies' chunk framing. */
	struct policy_input in;
	struct policy_decision d;
	struct http_chunked req_ch, resp_ch;
	struct conn_req *next; /* in the pool */
};

struct conn {
	uint64_t id;
	enum conn_state state;
	struct worker *w;
	struct worker_set *set;
	const struct conf_listener *lconf;
	const struct conf_limits *lim;
	TAILQ_ENTRY(conn) entry;
	struct bufferevent *bev; /* the client, TLS */
	SSL *ssl;                /* borrowed from bev */
	struct event *timer;     /* the absolute deadline of the state */
	unsigned overdue;        /* passes the deadline gave bytes waiting */
	size_t in_seen;          /* head bytes conn_head has looked at */
	struct event *pev;       /* reading a PROXY header */
	unsigned char *pbuf;     /* its bytes so far */
	size_t plen;
	size_t li; /* listener index */
	int fd;
	unsigned nrecs; /* audit records that will call back */
	char ip[FWD_IP_MAX];
	uint16_t port;
	int v6;
	struct geo_info geo;
	char *sni;   /* the TLS server name, NULL: none */
	int sni_bad; /* SNI too long to compare: every request is 421 */
	int tls_up;  /* handshake done and no TLS error since */
	int hs_err;
	struct peer *peer; /* trimmed heap copy; NULL: no certificate */
	/* The certificate's department, mapped once (the set is fixed). */
	const struct policy_department *dept;
	struct connlim_slot *dslot; /* counted against dept while open */
	uint64_t nreq;
	int lingering;
	size_t lingered;

	/* A request's buffers, from its first byte until the line idles. */
	struct conn_req *rq;
	struct evbuffer *mbuf; /* a body collected for masking */
	struct evbuffer *held; /* head held until a chunked body starts well */
	struct http_limits hlim, rlim;

	/* The current request. */
	size_t hlen; /* request head bytes; 0 when it did not parse */
	size_t rhlen;
	char rid[FWD_REQUEST_ID_LEN + 1];
	int64_t t0, t_up, t_resp; /* monotonic microseconds */
	int refuse;               /* the gateway's own status before policy */
	const char *refuse_reason;
	int keep_alive;
	int v10;
	int is_head;
	int expect;
	int allowed; /* a complete record is owed */
	size_t ui;
	const struct upstream_def *ud;
	struct upstream_conn *up;
	size_t avoid;
	int tries;
	enum http_body req_body;
	uint64_t req_left;
	int req_done;
	int req_cut; /* the upstream answered first: the rest stays unread */
	uint64_t bytes_in;
	enum conn_resp resp;
	int resp_seen; /* a byte of response arrived */
	enum http_body resp_body;
	uint64_t resp_left;
	enum fwd_framing fr;
	int masking;
	int status;
	int up_keep;
	int head_sent;
	int incomplete;
	uint64_t bytes_out;
	uint64_t masked;
	int holding; /* upstream bytes go to held, not yet upstream */
	int cpaused; /* client reads paused: upstream output is full */
	int upaused; /* upstream reads paused: client output is full */
};

static atomic_uint_fast64_t conn_next_id;

static void conn_client_read_cb(struct bufferevent *, void *);
static void conn_req_put(struct conn *c);
static void conn_client_write_cb(struct bufferevent *, void *);
static void conn_client_event_cb(struct bufferevent *, short, void *);
static void conn_up_read_cb(struct bufferevent *, void *);
static void conn_up_write_cb(struct bufferevent *, void *);
static void conn_up_event_cb(struct bufferevent *, short, void *);
static void conn_timer_cb(evutil_socket_t, short, void *);
static void conn_connect(struct conn *);
static void conn_answer(struct conn *, int, const char *);
static int conn_body_up(struct conn *);
static int conn_resp_body(struct conn *);
static void conn_resp_done(struct conn *);
static void conn_complete(struct conn *);
static void conn_finish(struct conn *);
static void conn_decision_done_cb(void *, int);
static void conn_up_ready(struct conn *);
static void conn_up_sent(struct conn *);

static const char *const conn_states[] = {
	"handshake",
	"proxy",
	"idle",
	"read_head",
	"audit",
	"connect",
	"relay",
	"flush",
	"drain",
	"closed",
};

const char *
conn_state_str(enum conn_state s)
{
	return (size_t)s < nitems(conn_states) ? conn_states[s] : "?";
}

static int64_t
conn_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
conn_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* Arm the state's absolute deadline, or clear it with ms = 0. */
static void
conn_timer(struct conn *c, uint64_t ms)
{
	struct timeval tv;

	c->overdue = 0;
	if (ms == 0) {
		evtimer_del(c->timer);
		return;
	}
	conn_tv(ms, &tv);
	evtimer_add(c->timer, &tv);
}

/* Timeouts of the client's bufferevent (inactivity); 0 is none. */
static void
conn_client_timeouts(struct conn *c, uint64_t rd_ms, uint64_t wr_ms)
{
	struct timeval rd, wr;

	conn_tv(rd_ms, &rd);
	conn_tv(wr_ms, &wr);
	bufferevent_set_timeouts(c->bev, rd_ms ? &rd : NULL,
	    wr_ms ? &wr : NULL);
}

/* Whether fd is ready for events (POLLIN, POLLOUT) right now. */
static int
conn_fd_ready(evutil_socket_t fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & ~POLLNVAL) != 0;
}

/*
 * A deadline noticed late must not outrun bytes that are already here.
 * When the gateway was not scheduled for a while (a busy host, a paused
 * VM) and both the peer's data and a timeout are due in one turn of the
 * loop, libevent runs the timeout and drops the read. So before a
 * deadline ends anything it asks whether something waits: in the socket,
 * in OpenSSL, in the input not yet parsed, or a handshake or connect
 * that finished with its callback still queued. If so, the deadline
 * gives the loop a few more passes, at most CONN_OVERDUE_PASSES; a peer
 * that really is late is cut off as before.
 */
#define CONN_OVERDUE_PASSES 4

static int
conn_overdue_waits(struct conn *c)
{
	if (c->overdue >= CONN_OVERDUE_PASSES)
		return 0;
	switch (c->state) {
	case CONN_HANDSHAKE:
		if (c->ssl != NULL && SSL_is_init_finished(c->ssl))
			return 1;
		break;
	case CONN_IDLE:
	case CONN_READ_HEAD:
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) >
		    c->in_seen)
			return 1;
		break;
	case CONN_PROXY:
		break;
	case CONN_CONNECT:
		return c->up != NULL &&
		    conn_fd_ready(bufferevent_getfd(c->up->bev),
		        POLLIN | POLLOUT);
	default:
		return 0;
	}
	return (c->ssl != NULL && SSL_pending(c->ssl) > 0) ||
	    conn_fd_ready(c->fd, POLLIN);
}

/*
 * The same for a bufferevent's own inactivity timeout, which replaced
 * a read or write that was ready and turned that direction off. If the
 * socket is ready now, the direction goes back on (with a fresh
 * timeout, as if the bytes had come a moment sooner) and the timeout
 * is forgotten: the next turn of the loop makes progress.
 */
static int
conn_bev_overdue(struct bufferevent *bev, short what)
{
	short dir = (what & BEV_EVENT_READING) ? EV_READ : EV_WRITE;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (!(what & BEV_EVENT_TIMEOUT))
		return 0;
	if (!(dir == EV_READ && ssl != NULL && SSL_pending(ssl) > 0) &&
	    !conn_fd_ready(bufferevent_getfd(bev),
	        dir == EV_READ ? POLLIN : POLLOUT))
		return 0;
	bufferevent_enable(bev, dir);
	return 1;
}

static void
conn_up_timeouts(struct conn *c, int reading)
{
	struct timeval tv;
	uint64_t ms = c->ud->conf->read_timeout_ms;

	conn_tv(ms, &tv);
	bufferevent_set_timeouts(c->up->bev, reading ? &tv : NULL, &tv);
}

/*
 * The only writer of c->state. It installs what the state reads and
 * writes, its watermarks and its deadline.
 */
static void
conn_set_state(struct conn *c, enum conn_state next)
{
	if (c->state != next)
		log_debug("conn %llu: %s -> %s", (unsigned long long)c->id,
		    conn_state_str(c->state), conn_state_str(next));
	c->state = next;
	switch (next) {
	case CONN_PROXY:
		/* The handshake's deadline covers the PROXY header too. */
		conn_timer(c, c->lim->handshake_timeout_ms);
		break;
	case CONN_HANDSHAKE:
		bufferevent_setcb(c->bev, NULL, NULL, conn_client_event_cb, c);
		if (!evtimer_pending(c->timer, NULL))
			conn_timer(c, c->lim->handshake_timeout_ms);
		break;
	case CONN_IDLE:
		/* Between requests: the buffers go back to the pool. */
		conn_req_put(c);
		FALLTHROUGH;
	case CONN_READ_HEAD:
		c->in_seen = 0;
		bufferevent_setcb(c->bev, conn_client_read_cb,
		    conn_client_write_cb, conn_client_event_cb, c);
		bufferevent_setwatermark(c->bev, EV_READ, 0,
		    c->lim->max_header_bytes);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		conn_client_timeouts(c, 0, 0);
		/*
		 * EV_READ only: writing is enabled from the start, and
		 * enabling it on an SSL bufferevent adds a write interest
		 * (two epoll_ctl and a wake-up) even with nothing to write.
		 */
		bufferevent_enable(c->bev, EV_READ);
		conn_timer(c,
		    next == CONN_IDLE ? c->lim->idle_timeout_ms
		                      : c->lim->header_timeout_ms);
		break;
	case CONN_AUDIT:
		/*
		 * Reading stays on (no epoll churn per request): the read
		 * watermark bounds what a pipelining client can queue, and
		 * an abort is seen at once.
		 */
		conn_timer(c, 0);
		break;
	case CONN_CONNECT:
		conn_timer(c, c->ud->conf->connect_timeout_ms);
		break;
	case CONN_RELAY:
		conn_timer(c, 0);
		bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_RELAY_HIGH);
		bufferevent_setwatermark(c->bev, EV_WRITE, CONN_RELAY_LOW, 0);
		/* A request body may pause at most a head timeout. */
		conn_client_timeouts(c,
		    c->req_done ? 0 : c->lim->header_timeout_ms,
		    c->lim->idle_timeout_ms);
		break;
	case CONN_FLUSH:
		bufferevent_setwatermark(c->bev, EV_WRITE, CONN_RELAY_LOW, 0);
		conn_client_timeouts(c, 0, c->lim->idle_timeout_ms);
		conn_timer(c, 0);
		break;
	case CONN_DRAIN:
		/* Read and drop: unread bytes would make close send RST. */
		bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_RELAY_HIGH);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		conn_client_timeouts(c, 0, c->lim->idle_timeout_ms);
		bufferevent_enable(c->bev, EV_READ);
		conn_timer(c, 0);
		break;
	case CONN_CLOSED:
		break;
	}
}

/* The request buffers for c, from the pool. 0, or -1: out of memory. */
static int
conn_req_take(struct conn *c)
{
	struct worker *w = c->w;

	if (c->rq != NULL)
		return 0;
	if ((c->rq = w->free_reqs) != NULL) {
		w->free_reqs = c->rq->next;
		w->nfree_reqs--;
	} else if ((c->rq = calloc(1, sizeof(*c->rq))) == NULL)
		return -1;
	c->rq->next = NULL;
	return 0;
}

static void
conn_req_free(struct conn_req *rq)
{
	free(rq->hbuf);
	free(rq->norm);
	free(rq);
}

/* Back to the pool (keeping buffers of the usual size), or freed. */
static void
conn_req_put(struct conn *c)
{
	struct worker *w = c->w;
	struct conn_req *rq = c->rq;

	if (rq == NULL)
		return;
	c->rq = NULL;
	if (w->nfree_reqs >= CONN_REQ_POOL_MAX) {
		conn_req_free(rq);
		return;
	}
	if (rq->hcap > CONN_HBUF_KEEP) {
		free(rq->hbuf);
		free(rq->norm);
		rq->hbuf = rq->norm = NULL;
		rq->hcap = rq->normcap = 0;
	}
	rq->next = w->free_reqs;
	w->free_reqs = rq;
	w->nfree_reqs++;
}

void
conn_pool_free(struct worker *w)
{
	struct conn_req *rq;

	while ((rq = w->free_reqs) != NULL) {
		w->free_reqs = rq->next;
		conn_req_free(rq);
	}
	w->nfree_reqs = 0;
}

/* Make room for a head of n bytes and its canonical path. */
static int
conn_reserve(struct conn *c, size_t n)
{
	char *h, *p;
	size_t cap;

	if (conn_req_take(c) == -1)
		return -1;
	cap = c->rq->hcap ? c->rq->hcap : CONN_HBUF_MIN;
	if (n <= c->rq->hcap)
		return 0;
	while (cap < n)
		cap *= 2;
	if ((h = realloc(c->rq->hbuf, cap)) == NULL)
		return -1;
	c->rq->hbuf = h;
	if ((p = realloc(c->rq->norm, cap + 1)) == NULL)
		return -1;
	c->rq->norm = p;
	c->rq->hcap = cap;
	c->rq->normcap = cap + 1;
	return 0;
}

/* "No certificate": a zero-filled identity (peer.h). */
static const struct peer conn_no_peer;

static const struct peer *
conn_peer(const struct conn *c)
{
	return c->peer != NULL ? c->peer : &conn_no_peer;
}

static void
conn_free(struct conn *c)
{
	free(c->peer);
	free(c->sni);
	conn_req_put(c);
	free(c);
}

/*
 * Submit the `complete` record of an allowed request: status, upstream,
 * timings, bytes, masking and whether the backend's answer was cut.
 */
static void
conn_complete(struct conn *c)
{
	struct audit_complete ac;
	struct audit_buf *b;

	if (!c->allowed)
		return;
	c->allowed = 0;
	memset(&ac, 0, sizeof(ac));
	ac.request_id = c->rid;
	/* 499: the client went away before there was an answer. */
	ac.status = c->status != 0 ? c->status : 499;
	ac.upstream = c->t_up != 0 ? c->ud->conf->name : NULL;
	ac.upstream_us = c->t_resp != 0 ? c->t_resp - c->t_up : -1;
	ac.bytes_in = c->bytes_in;
	ac.bytes_out = c->bytes_out;
	ac.duration_us = conn_now_us() - c->t0;
	ac.masked = c->masked;
	ac.upstream_incomplete = c->incomplete;
	if (c->w->ms != NULL) {
		if (c->status != 0)
			metrics_response(c->w->ms, c->status);
		metrics_request_time(c->w->ms, ac.duration_us);
		if (c->t_resp != 0)
			metrics_upstream_time(c->w->ms, c->t_resp - c->t_up);
	}
	log_debug("conn %llu: %s: %d %s, %llu bytes, %.3f ms%s",
	    (unsigned long long)c->id, c->rid, ac.status,
	    ac.upstream != NULL ? ac.upstream : "-",
	    (unsigned long long)ac.bytes_out, (double)ac.duration_us / 1000,
	    c->incomplete ? ", upstream incomplete" : "");
	b = worker_audit_buf(c->w);
	if (audit_fmt_complete(b, &ac) == -1 ||
	    worker_audit(c->w, "complete", 1, NULL, NULL) == -1)
		log_error("conn %llu: %s: audit: complete record refused",
		    (unsigned long long)c->id, c->rid);
}

/*
 * The connection ends with the answer unfinished: body bytes still queued
 * for the client (its output buffer, then the worker's stage), or
 * collected for masking, never reach it. The body is the tail of what is
 * queued, so the unsent tail is its share.
 */
static void
conn_count_unsent(struct conn *c)
{
	size_t unsent;

	if (!c->allowed || c->bev == NULL)
		return;
	if (c->masking) {
		c->bytes_out = 0;
		return;
	}
	if (!c->head_sent)
		return;
	unsent = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (c->w->stage_conn == c)
		unsent += evbuffer_get_length(c->w->stage);
	c->bytes_out -= unsent < c->bytes_out ? unsent : c->bytes_out;
}

void
conn_close(struct conn *c, const char *reason)
{
	struct worker *w = c->w;

	if (c->state == CONN_CLOSED)
		return;
	log_debug("conn %llu: closed in %s: %s", (unsigned long long)c->id,
	    conn_state_str(c->state), reason);
	conn_count_unsent(c);
	conn_complete(c);
	upstream_release(c->up, 0);
	c->up = NULL;
	if (c->dslot != NULL)
		connlim_put(c->dslot);
	c->dslot = NULL;
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
	if (c->pev != NULL)
		event_free(c->pev);
	c->pev = NULL;
	free(c->pbuf);
	c->pbuf = NULL;
	/*
	 * OpenSSL drops a session from the cache when its connection ends
	 * without close_notify sent; one that ended well stays resumable.
	 */
	if (c->ssl != NULL && c->tls_up)
		SSL_set_shutdown(c->ssl,
		    SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* frees the SSL, closes the fd */
	else if (c->fd != -1)
		close(c->fd);
	c->bev = NULL;
	c->fd = -1;
	if (c->mbuf != NULL)
		evbuffer_free(c->mbuf);
	c->mbuf = NULL;
	if (c->held != NULL)
		evbuffer_free(c->held);
	c->held = NULL;
	if (w->stage_conn == c) {
		/* Like the output buffer freed above: never sent. */
		evbuffer_drain(w->stage, evbuffer_get_length(w->stage));
		w->stage_conn = NULL;
	}
	TAILQ_REMOVE(&w->conns, c, entry);
	w->nconns--;
	if (w->ms != NULL)
		metrics_conn_closed(w->ms);
	worker_set_unref(c->set);
	c->set = NULL;
	c->state = CONN_CLOSED;
	worker_conn_gone(w);
	if (c->nrecs == 0)
		conn_free(c);
}

/* The client's address, from the socket or a trusted PROXY header. */
static void
conn_set_addr(struct conn *c, const struct sockaddr *sa, socklen_t salen)
{
	if (getnameinfo(sa, salen, c->ip, sizeof(c->ip), NULL, 0,
	        NI_NUMERICHOST) != 0)
		strlcpy(c->ip, "?", sizeof(c->ip));
	c->v6 = 0;
	c->port = 0;
	if (sa->sa_family == AF_INET6) {
		c->v6 = 1;
		c->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else if (sa->sa_family == AF_INET)
		c->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	geo_lookup(c->set->cs->geo, sa, &c->geo);
}

/* Whether sa lies in the listener's proxy_trusted CIDRs. */
static int
conn_proxy_trusted(const struct conn *c, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6;
	const uint8_t *a;

	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)
		        ->sin_addr;
		return conf_cidr_match(c->lconf->proxy_trusted,
		    c->lconf->nproxy_trusted, AF_INET, a);
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return conf_cidr_match(c->lconf->proxy_trusted,
		    c->lconf->nproxy_trusted, AF_INET,
		    s6->sin6_addr.s6_addr + 12);
	return conf_cidr_match(c->lconf->proxy_trusted,
	    c->lconf->nproxy_trusted, AF_INET6, s6->sin6_addr.s6_addr);
}

/* Start the TLS handshake on the socket. */
static void
conn_start_tls(struct conn *c)
{
	SSL *ssl;

	if ((ssl = SSL_new(c->set->server_ctx[c->li])) == NULL) {
		ERR_clear_error();
		log_warnx("conn %llu: cannot set up TLS: out of memory",
		    (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	/*
	 * A client that closes without close_notify ends its connection,
	 * not its session (HTTP framing shows truncation): as nginx does.
	 */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	c->bev = bufferevent_openssl_socket_new(c->w->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		SSL_free(ssl);
		log_warnx("conn %llu: cannot set up TLS: out of memory",
		    (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	c->ssl = ssl;
	conn_set_state(c, CONN_HANDSHAKE);
}

/*
 * Read the PROXY header byte-exactly: peek, and take only what belongs
 * to it, so the TLS ClientHello behind it stays in the socket. A prefix
 * of a header is all header, so a partial one is taken whole.
 */
static void
conn_proxy_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct proxyproto_addr pa;
	char via[FWD_IP_MAX];
	const char *why = "malformed";
	ssize_t n;
	int rc;

	n = recv(fd, c->pbuf + c->plen, PROXYPROTO_V2_MAX - c->plen, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_info("conn %llu: PROXY header: %s",
		    (unsigned long long)c->id,
		    n == 0 ? "closed by the peer" : strerror(errno));
		conn_close(c, "no PROXY header");
		return;
	}
	rc = proxyproto_parse(c->pbuf, c->plen + (size_t)n, &pa, &why);
	if (rc == PROXYPROTO_PARTIAL &&
	    c->plen + (size_t)n < PROXYPROTO_V2_MAX) {
		if (recv(fd, c->pbuf + c->plen, (size_t)n, 0) != n) {
			conn_close(c, "PROXY header read failed");
			return;
		}
		c->plen += (size_t)n;
		return;
	}
	if (rc < 0) {
		log_info("conn %llu: PROXY header from %s: %s",
		    (unsigned long long)c->id, c->ip,
		    rc == PROXYPROTO_PARTIAL ? "too long" : why);
		conn_close(c, "bad PROXY header");
		return;
	}
	if (recv(fd, c->pbuf + c->plen, (size_t)rc - c->plen, 0) !=
	    (ssize_t)((size_t)rc - c->plen)) {
		conn_close(c, "PROXY header read failed");
		return;
	}
	event_free(c->pev);
	c->pev = NULL;
	free(c->pbuf);
	c->pbuf = NULL;
	if (!pa.local) {
		strlcpy(via, c->ip, sizeof(via));
		conn_set_addr(c, (const struct sockaddr *)&pa.src, pa.srclen);
		log_debug("conn %llu: PROXY v%d from %s: client %s port %u",
		    (unsigned long long)c->id, pa.version, via, c->ip,
		    (unsigned)c->port);
	}
	conn_start_tls(c);
}

void
conn_accept(struct worker *w, size_t li, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct worker_set *set = w->set;
	struct conn *c;
	int one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("accept: out of memory");
		close(fd);
		worker_conn_gone(w);
		return;
	}
	c->id = atomic_fetch_add(&conn_next_id, 1) + 1;
	c->w = w;
	c->fd = fd;
	c->li = li;
	c->set = set;
	worker_set_ref(set);
	c->lconf = &set->cs->conf->listeners[li];
	c->lim = &set->cs->conf->limits;
	c->hlim.max_head_bytes = c->lim->max_header_bytes;
	c->hlim.max_body_bytes = c->lim->max_body_bytes;
	c->rlim.max_head_bytes = c->lim->max_header_bytes;
	c->avoid = (size_t)-1;
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	w->nconns++;
	if (w->ms != NULL)
		metrics_conn_opened(w->ms);
	conn_set_addr(c, sa, salen);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	log_debug("conn %llu: accepted from %s port %u on %s",
	    (unsigned long long)c->id, c->ip, (unsigned)c->port,
	    c->lconf->name);
	if ((c->timer = evtimer_new(w->base, conn_timer_cb, c)) == NULL) {
		log_warnx("conn %llu: cannot set up: out of memory",
		    (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	if (!c->lconf->proxy_protocol) {
		conn_start_tls(c);
		return;
	}
	/* Only the balancers may say who the client is. */
	if (!conn_proxy_trusted(c, sa)) {
		log_info("conn %llu: %s is not in proxy_trusted of listener %s",
		    (unsigned long long)c->id, c->ip, c->lconf->name);
		conn_close(c, "untrusted PROXY source");
		return;
	}
	c->pev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_proxy_cb, c);
	c->pbuf = malloc(PROXYPROTO_V2_MAX);
	if (c->pev == NULL || c->pbuf == NULL ||
	    event_add(c->pev, NULL) == -1) {
		log_warnx("conn %llu: cannot set up: out of memory",
		    (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	conn_set_state(c, CONN_PROXY);
}

/* Why the handshake failed, for `conn N: handshake: <reason>`. */
static const char *
conn_handshake_reason(struct conn *c, short what, char *buf, size_t len)
{
	unsigned long e, first = 0;
	const char *r;
	int reason;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	c->hs_err = first != 0 ? ERR_GET_REASON(first) : 0;
	if (first != 0) {
		reason = ERR_GET_REASON(first);
		if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
		    reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			return tlsctx_verify_reason(c->ssl);
		if ((r = ERR_reason_error_string(first)) != NULL)
			return r;
		snprintf(buf, len, "TLS error %lx", first);
		return buf;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		return tlsctx_verify_reason(c->ssl);
	if (what & BEV_EVENT_EOF)
		return "closed by the client";
	snprintf(buf, len, "%s", strerror(EVUTIL_SOCKET_ERROR()));
	return buf;
}

/*
 * The handshake is done: the identity is read once, here, into plain
 * data that policy, audit and headers use from now on.
 */
static void
conn_handshake_done(struct conn *c)
{
	const char *name;
	X509 *cert;
	char err[256];

	conn_timer(c, 0);
	if ((cert = SSL_get0_peer_certificate(c->ssl)) != NULL) {
		if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
			log_info("conn %llu: handshake: %s",
			    (unsigned long long)c->id,
			    tlsctx_verify_reason(c->ssl));
			conn_close(c, "certificate not verified");
			return;
		}
		if (peer_from_cert(cert, &c->w->peer, err, sizeof(err)) == -1) {
			log_info(
			    "conn %llu: handshake: certificate unusable: %s",
			    (unsigned long long)c->id, err);
			conn_close(c, "certificate unusable");
			return;
		}
		/*
		 * Kept for the connection's life: only the arena's used
		 * bytes, not all PEER_ARENA of them (memory per idle
		 * connection).
		 */
		if ((c->peer = peer_dup(&c->w->peer)) == NULL) {
			conn_close(c, "out of memory");
			return;
		}
	}
	/* Its own length, not CONN_MAX_SNI + 1 bytes per connection. */
	name = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	if (name != NULL && strlen(name) > CONN_MAX_SNI)
		c->sni_bad = 1;
	else if (name != NULL && (c->sni = strdup(name)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	log_debug("conn %llu: %s %s%s, %s", (unsigned long long)c->id,
	    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
	    SSL_session_reused(c->ssl) ? " (resumed)" : "",
	    c->peer != NULL ? peer_str(c->peer, c->peer->dn)
	                    : "no client certificate");
	c->tls_up = 1;
	conn_set_state(c, CONN_READ_HEAD);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* A fresh request: id, clock and every per-request field reset. */
static void
conn_request_begin(struct conn *c)
{
	c->nreq++;
	worker_request_id(c->w, c->rid);
	c->t0 = conn_now_us();
	c->t_up = c->t_resp = 0;
	c->hlen = c->rhlen = 0;
	c->refuse = 0;
	c->refuse_reason = NULL;
	c->keep_alive = 0;
	c->v10 = c->is_head = c->expect = 0;
	c->allowed = 0;
	c->ud = NULL;
	c->avoid = (size_t)-1;
	c->tries = 0;
	c->req_body = HTTP_BODY_NONE;
	c->req_left = 0;
	c->req_done = c->req_cut = 0;
	c->bytes_in = c->bytes_out = 0;
	c->resp = CONN_RESP_HEAD;
	c->resp_seen = 0;
	c->masking = 0;
	c->status = 0;
	c->up_keep = 0;
	c->head_sent = 0;
	c->incomplete = 0;
	c->masked = 0;
	c->cpaused = c->upaused = 0;
	c->holding = 0;
	if (c->held != NULL)
		evbuffer_drain(c->held, evbuffer_get_length(c->held));
}

static void
conn_refuse(struct conn *c, int status, const char *reason, const char *why)
{
	if (c->refuse != 0)
		return;
	c->refuse = status;
	c->refuse_reason = reason;
	c->keep_alive = 0;
	log_info("conn %llu: %s: %d: %s", (unsigned long long)c->id, c->rid,
	    status, why);
}

static int
conn_span_caseeq(struct http_span s, const char *z)
{
	return http_span_eq(s, z);
}

/*
 * Absolute-form is taken only for the gateway itself (contract 4.2):
 * https, and an authority its own certificate names.
 */
static int
conn_authority_ours(struct conn *c)
{
	const struct http_request *req = &c->rq->u.req;
	char host[CONN_MAX_SNI + 1];
	X509 *own;
	int ok;

	if (req->scheme.len != 5 || req->host_name.len == 0 ||
	    req->host_name.len >= sizeof(host))
		return 0;
	memcpy(host, req->host_name.ptr, req->host_name.len);
	host[req->host_name.len] = '\0';
	if ((own = SSL_get_certificate(c->ssl)) == NULL)
		return 0;
	ok = X509_check_host(own, host, req->host_name.len, 0, NULL) == 1 ||
	    X509_check_ip_asc(own, host, 0) == 1;
	ERR_clear_error();
	return ok;
}

/* The gateway's own checks of a parsed head, before the policy's. */
static void
conn_check_request(struct conn *c)
{
	const struct http_request *req = &c->rq->u.req;

	c->v10 = req->version_minor == 0;
	c->is_head = http_span_eq(req->method, "HEAD");
	/*
	 * The last request a connection may carry is answered with
	 * Connection: close; anything pipelined behind it is dropped unread.
	 */
	c->keep_alive = req->f.keep_alive && !c->w->draining &&
	    c->nreq < c->lim->max_requests_per_connection;
	c->req_body = req->f.body;
	c->expect = req->expect_continue && req->f.body != HTTP_BODY_NONE;
	if (req->form == HTTP_TARGET_ABSOLUTE && !conn_authority_ours(c))
		conn_refuse(c, 400, "bad_request",
		    "absolute-form target names another authority");
	if ((c->sni != NULL || c->sni_bad) && req->host_name.len > 0 &&
	    (c->sni_bad || !conn_span_caseeq(req->host_name, c->sni)))
		conn_refuse(c, 421, "misdirected_request",
		    "Host differs from the TLS server name");
	if (req->f.has_cl && req->f.content_length > c->lim->max_body_bytes)
		conn_refuse(c, 413, "bad_request", "body larger than limit");
}

/*
 * Write the decision record. For an allowed request its done callback
 * forwards; for a denial nobody waits. Returns 0, or -1 when the trail
 * refused it.
 */
static int
conn_record_decision(struct conn *c, int forward)
{
	const struct policy *p = c->set->cs->policy;
	const struct http_request *req = &c->rq->u.req;
	const struct http_header *h;
	struct audit_client cl;
	struct audit_request rq;
	struct audit_decision ad;
	struct audit_buf *b;

	memset(&cl, 0, sizeof(cl));
	cl.ip = c->ip;
	cl.port = c->port;
	cl.country = c->geo.country[0] != '\0' ? c->geo.country : NULL;
	cl.zone = c->geo.zone[0] != '\0' ? c->geo.zone : NULL;

	memset(&rq, 0, sizeof(rq));
	rq.method = req->method.ptr;
	rq.method_len = req->method.len;
	rq.host = req->host.ptr;
	rq.host_len = req->host.len;
	if (c->rq->d.norm_len > 0) {
		rq.path = c->rq->norm;
		rq.path_len = c->rq->d.norm_len;
	} else {
		rq.path = req->path.ptr;
		rq.path_len = req->path.len;
	}
	if (req->has_query) {
		rq.query = req->query.ptr;
		rq.query_len = req->query.len;
	}
	rq.purpose = c->rq->in.purpose;
	rq.purpose_len = c->rq->in.purpose_len;
	rq.case_id = c->rq->in.case_id;
	rq.case_len = c->rq->in.case_len;
	if (c->hlen > 0 &&
	    (h = http_header_find(req, policy_operator_header(p))) != NULL) {
		rq.operator_id = h->value.ptr;
		rq.operator_len = h->value.len;
	}

	memset(&ad, 0, sizeof(ad));
	ad.request_id = c->rid;
	ad.policy_revision = policy_revision(p);
	ad.policy_sha256 = policy_sha256(p);
	ad.classification = c->rq->d.resource != NULL
	    ? policy_level_str(p, c->rq->d.resource->classification)
	    : NULL;
	ad.client = &cl;
	ad.peer = conn_peer(c);
	ad.req = &rq;
	ad.d = &c->rq->d;
	ad.subject_key = c->set->have_subject_key ? &c->set->subject_key : NULL;
	ad.md = c->w->md;
	b = worker_audit_buf(c->w);
	if (audit_fmt_decision(b, &ad) == -1)
		return -1;
	if (!forward)
		return worker_audit(c->w, "decision", 1, NULL, NULL);
	if (worker_audit(c->w, "decision", 0, conn_decision_done_cb, c) == -1)
		return -1;
	c->nrecs++;
	return 0;
}

/*
 * Map the certificate to its department once per connection, and count
 * the connection against the department from then until it closes.
 * Returns 0, or -1 when the department already has
 * limits.max_connections_per_department connections.
 */
static int
conn_department(struct conn *c)
{
	const struct policy_department *dept;
	struct connlim_slot *slot;

	if (c->dept != NULL || c->refuse != 0 || c->peer == NULL)
		return 0;
	/* None or several: the policy denies it (unknown_department). */
	if ((dept = policy_department_match(c->set->cs->policy, c->peer)) ==
	    NULL)
		return 0;
	slot = c->set->dept_conns[dept->index];
	if (connlim_take(slot, c->lim->max_connections_per_department) == -1) {
		log_debug("conn %llu: department %s has %llu connections: "
		          "limits.max_connections_per_department reached",
		    (unsigned long long)c->id, dept->id,
		    (unsigned long long)connlim_count(slot));
		return -1;
	}
	c->dept = dept;
	c->dslot = slot;
	return 0;
}

/*
 * Decide the request in c->rq->u.req, once: policy_decide is the only judge.
 * A denial is recorded and answered at once; an allowed request waits
 * for its record to be durable before anything is forwarded.
 */
static void
conn_decide(struct conn *c)
{
	const struct policy *p = c->set->cs->policy;
	const struct http_request *req = &c->rq->u.req;
	const struct http_header *h;
	struct policy_input *in = &c->rq->in;
	struct timespec ts;
	const char *reason;
	int status, over;

	over = conn_department(c) == -1;
	memset(in, 0, sizeof(*in));
	if (req->method.ptr != NULL) {
		in->method = req->method.ptr;
		in->method_len = req->method.len;
	} else
		in->method = "";
	if (req->path.ptr != NULL) {
		in->path = req->path.ptr;
		in->path_len = req->path.len;
	} else
		in->path = "";
	in->malformed = c->refuse != 0;
	in->peer = conn_peer(c);
	in->cert_optional =
	    c->lconf->tls.client_auth == CONF_CLIENT_AUTH_OPTIONAL;
	in->country = c->geo.country[0] != '\0' ? c->geo.country : NULL;
	in->zone = c->geo.zone[0] != '\0' ? c->geo.zone : NULL;
	if (c->hlen > 0) {
		if ((h = http_header_find(req, policy_purpose_header(p))) !=
		    NULL) {
			in->purpose = h->value.ptr;
			in->purpose_len = h->value.len;
		}
		if ((h = http_header_find(req, policy_case_header(p))) !=
		    NULL) {
			in->case_id = h->value.ptr;
			in->case_len = h->value.len;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	in->now_sec = ts.tv_sec;
	in->now_nsec = (int32_t)ts.tv_nsec;
	in->norm = c->rq->norm;
	in->normsz = c->rq->normcap;
	in->department = c->dept;
	/*
	 * Over its department's connection limit, the request is still
	 * judged for its record (resource, path), but takes no rate token.
	 * A request that fails before the department step keeps its reason.
	 */
	in->dry_run = over;
	policy_decide(p, in, &c->rq->d);
	if (over && c->rq->d.department != NULL) {
		policy_refuse(&c->rq->d, POLICY_R_CONNECTION_LIMIT);
		c->keep_alive = 0;
	}

	if (c->rq->d.allow && c->refuse == 0) {
		c->ui = c->set->res_upstream[c->rq->d.resource->index];
		c->ud = &c->set->ups->v[c->ui];
		if (conn_record_decision(c, 1) == -1) {
			log_error("conn %llu: %s: audit: decision record "
			          "refused: answering 503",
			    (unsigned long long)c->id, c->rid);
			if (c->w->ms != NULL)
				metrics_request(c->w->ms, c->set->mg,
				    c->rq->d.department, c->rq->d.resource, 0,
				    POLICY_R_AUDIT_UNAVAILABLE);
			conn_answer(c, 503,
			    policy_reason_str(POLICY_R_AUDIT_UNAVAILABLE));
			return;
		}
		c->allowed = 1;
		conn_set_state(c, CONN_AUDIT);
		return;
	}
	status = c->refuse != 0 ? c->refuse : c->rq->d.status;
	reason = c->refuse_reason != NULL ? c->refuse_reason
	                                  : policy_reason_str(c->rq->d.reason);
	log_info("conn %llu: %s: deny %s %d: %s %.*s %.*s from %s country %s "
	         "zone %s",
	    (unsigned long long)c->id, c->rid,
	    policy_reason_str(c->rq->d.reason), status,
	    c->rq->d.department != NULL ? c->rq->d.department->id : "-",
	    (int)(req->method.len < 16 ? req->method.len : 16),
	    req->method.ptr != NULL ? req->method.ptr : "",
	    (int)(c->rq->d.norm_len > 0   ? c->rq->d.norm_len
	            : req->path.len < 256 ? req->path.len
	                                  : 256),
	    c->rq->d.norm_len > 0       ? c->rq->norm
	        : req->path.ptr != NULL ? req->path.ptr
	                                : "",
	    c->ip, c->geo.country[0] != '\0' ? c->geo.country : "-",
	    c->geo.zone[0] != '\0' ? c->geo.zone : "-");
	if (c->w->ms != NULL)
		metrics_request(c->w->ms, c->set->mg, c->rq->d.department,
		    c->rq->d.resource, 0, c->rq->d.reason);
	/* A denial is answered at once; its record follows it to disk. */
	if (conn_record_decision(c, 0) == -1)
		log_error("conn %llu: %s: audit: decision record refused",
		    (unsigned long long)c->id, c->rid);
	conn_answer(c, status, reason);
}

/* Parse what the client sent towards a request head. */
static void
conn_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), n;
	int rc;

	if (len == 0)
		return;
	if (c->state == CONN_IDLE)
		conn_set_state(c, CONN_READ_HEAD);
	c->in_seen = len;
	n = len < c->lim->max_header_bytes ? len : c->lim->max_header_bytes;
	if (conn_reserve(c, n) == -1) {
		log_warnx("conn %llu: out of memory",
		    (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	/* A copy, so the spans survive while the evbuffer moves on. */
	if (evbuffer_copyout(in, c->rq->hbuf, n) != (ev_ssize_t)n) {
		conn_close(c, "evbuffer_copyout failed");
		return;
	}
	rc = http_parse_request(c->rq->hbuf, n, &c->rq->u.req, &c->hlim);
	if (rc == HTTP_PARTIAL)
		return;
	conn_request_begin(c);
	if (rc < 0) {
		conn_refuse(c, rc == HTTP_TOO_LARGE ? 431 : 400, "bad_request",
		    c->rq->u.req.error != NULL ? c->rq->u.req.error
		                               : "malformed");
	} else {
		c->hlen = (size_t)rc;
		evbuffer_drain(in, (size_t)rc);
		conn_check_request(c);
	}
	conn_decide(c);
}

static void
conn_decision_done_cb(void *arg, int ok)
{
	struct conn *c = arg;

	c->nrecs--;
	if (c->state == CONN_CLOSED) {
		if (c->nrecs == 0)
			conn_free(c);
		return;
	}
	if (c->state != CONN_AUDIT)
		return;
	if (c->w->ms != NULL)
		metrics_request(c->w->ms, c->set->mg, c->rq->d.department,
		    c->rq->d.resource, ok,
		    ok ? c->rq->d.reason : POLICY_R_AUDIT_UNAVAILABLE);
	if (!ok) {
		log_error("conn %llu: %s: audit: decision record not written: "
		          "answering 503",
		    (unsigned long long)c->id, c->rid);
		/* Undecided in the trail: so no outcome record either. */
		c->allowed = 0;
		conn_answer(c, 503,
		    policy_reason_str(POLICY_R_AUDIT_UNAVAILABLE));
		return;
	}
	conn_connect(c);
}

/*
 * An attempt at the upstream failed. Retry when nothing of the request can
 * have reached a backend; else answer 502.
 */
static void
conn_up_failed(struct conn *c, const char *why, int retry)
{
	struct upstream_conn *uc = c->up;

	if (c->w->ms != NULL)
		metrics_upstream_error(c->w->ms, c->set->mg, c->ui,
		    retry == CONN_RETRY_OTHER ? METRICS_UP_CONNECT
		                              : METRICS_UP_RESET);
	log_warnx("conn %llu: %s: upstream %s%s%s: %s",
	    (unsigned long long)c->id, c->rid, c->ud->conf->name,
	    uc != NULL ? " " : "", uc != NULL ? uc->srv->text : "", why);
	if (uc != NULL) {
		if (retry == CONN_RETRY_OTHER)
			upstream_mark_failed(uc);
		c->avoid = retry == CONN_RETRY_OTHER ? uc->server : (size_t)-1;
		upstream_release(uc, 0);
		c->up = NULL;
	}
	if (retry != CONN_RETRY_NONE && c->tries < CONN_MAX_RETRIES &&
	    (retry == CONN_RETRY_FRESH || c->ud->nservers > 1)) {
		c->tries++;
		conn_connect(c);
		return;
	}
	conn_answer(c, 502, "upstream_unavailable");
}

static void
conn_connect(struct conn *c)
{
	char err[256];

	c->up = upstream_get(c->w, c->set->ups, c->set->gen, c->ui, c->avoid,
	    c->req_body != HTTP_BODY_NONE ? UPSTREAM_FRESH_MS : 0,
	    conn_up_read_cb, conn_up_write_cb, conn_up_event_cb, c, err,
	    sizeof(err));
	if (c->up == NULL) {
		conn_up_failed(c, err, CONN_RETRY_OTHER);
		return;
	}
	if (c->up->reused) {
		conn_up_ready(c);
		return;
	}
	conn_set_state(c, CONN_CONNECT);
}

/*
 * The upstream connection is ready (connected, or reused from the pool):
 * write the rewritten head, then stream the body as it comes.
 */
static void
conn_up_ready(struct conn *c)
{
	const struct upstream_server *srv = c->up->srv;
	struct evbuffer *out = bufferevent_get_output(c->up->bev);
	struct fwd_identity id;
	struct fwd_out o;
	size_t bound, sent;
	ssize_t n;
	char *head;
	int fd;

	conn_timer(c, 0);
	memset(&id, 0, sizeof(id));
	id.request_id = c->rid;
	if (c->rq->d.department != NULL)
		id.department = c->rq->d.department->id;
	if (c->peer != NULL) {
		id.subject_dn = peer_str(c->peer, c->peer->dn);
		id.serial = peer_str(c->peer, c->peer->serial);
	}
	id.resource = c->rq->d.resource->id;
	if (c->rq->d.grant != NULL && c->rq->d.reason == POLICY_R_GRANT)
		id.grant = c->rq->d.grant->id;
	id.purpose = c->rq->in.purpose;
	id.purpose_len = c->rq->in.purpose_len;
	id.case_id = c->rq->in.case_id;
	id.case_len = c->rq->in.case_len;
	id.client_ip = c->ip;
	id.client_v6 = c->v6;
	id.masked = c->rq->d.mask != NULL;

	bound = fwd_request_bound(c->hlen, c->rq->d.norm_len, &id);
	if ((head = worker_scratch(c->w, bound)) == NULL) {
		conn_up_failed(c, "out of memory", CONN_RETRY_NONE);
		return;
	}
	fwd_out_init(&o, head, bound);
	if (fwd_request_head(&o, &c->rq->u.req, c->rq->norm, c->rq->d.norm_len,
	        &id, srv->text) == -1) {
		conn_up_failed(c, "request head does not fit", CONN_RETRY_NONE);
		return;
	}
	/*
	 * A bodyless request to a plain backend with nothing queued goes
	 * out at once: waiting for writability would cost two epoll_ctl
	 * and a loop turn per request. A chunked body's head is held until
	 * its first chunk-size line is valid, so a request refused for its
	 * framing there leaves nothing at the backend; and whatever the
	 * client already sent is checked before this callback returns,
	 * that is before the loop writes any of it.
	 */
	sent = 0;
	c->holding = 0;
	if (c->req_body == HTTP_BODY_NONE && c->ud->tls == NULL &&
	    evbuffer_get_length(out) == 0 &&
	    (fd = bufferevent_getfd(c->up->bev)) != -1) {
		n = send(fd, head, o.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			sent = (size_t)n;
	} else if (c->req_body == HTTP_BODY_CHUNKED) {
		if (c->held == NULL && (c->held = evbuffer_new()) == NULL) {
			conn_up_failed(c, "out of memory", CONN_RETRY_NONE);
			return;
		}
		c->holding = 1;
		out = c->held;
	}
	if (sent < o.len &&
	    evbuffer_add(out, head + sent, o.len - sent) == -1) {
		conn_up_failed(c, "out of memory", CONN_RETRY_NONE);
		return;
	}
	c->t_up = conn_now_us();

	switch (c->req_body) {
	case HTTP_BODY_LENGTH:
		c->req_left = c->rq->u.req.f.content_length;
		break;
	case HTTP_BODY_CHUNKED:
		http_chunked_init(&c->rq->req_ch, &c->hlim);
		break;
	default:
		c->req_done = 1;
		break;
	}
	/* Only now, with the record durable, may the client send its body. */
	if (c->expect)
		bufferevent_write(c->bev, FWD_CONTINUE,
		    sizeof(FWD_CONTINUE) - 1);
	conn_set_state(c, CONN_RELAY);
	bufferevent_setwatermark(c->up->bev, EV_READ, 0,
	    c->lim->max_header_bytes);
	bufferevent_setwatermark(c->up->bev, EV_WRITE, CONN_RELAY_LOW, 0);
	conn_up_timeouts(c, 0);
	/* EV_WRITE is on from the start: enabling it again adds interest. */
	bufferevent_enable(c->up->bev, EV_READ);
	if (c->req_done)
		conn_up_sent(c);
	else
		(void)conn_body_up(c);
}

/*
 * The whole request is queued for the upstream. Its read timeout starts
 * once the last byte has left (a slow reader is the write timeout's).
 */
static void
conn_up_sent(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->up->bev)) == 0) {
		conn_up_timeouts(c, 1);
		return;
	}
	bufferevent_setwatermark(c->up->bev, EV_WRITE, 0, 0);
}

/*
 * The request body failed its framing or limit after its head went up:
 * the upstream connection cannot be used again.
 */
static void
conn_body_error(struct conn *c, int status, const char *why)
{
	log_info("conn %llu: %s: request body: %s", (unsigned long long)c->id,
	    c->rid, why);
	upstream_release(c->up, 0);
	c->up = NULL;
	c->keep_alive = 0;
	c->req_cut = 1;
	if (!c->head_sent && !c->masking) {
		conn_answer(c, status, "bad_request");
		return;
	}
	c->status = c->status != 0 ? c->status : status;
	conn_close(c, "bad request body");
}

/*
 * Move request body bytes from the client to the upstream: whole evbuffer
 * chains, no copy. Content-Length bodies go as they are; chunked bodies
 * are checked by the decoder and re-framed (extensions and trailers
 * dropped). Returns 0, or -1 when c left the relay (closed or answered).
 */
static int
conn_body_up(struct conn *c)
{
	struct evbuffer *in, *out;
	struct evbuffer_iovec v;
	size_t avail, n, consumed, doff, dlen;
	char line[24];
	int rc, len;

	if (c->req_done || c->req_cut || c->up == NULL)
		return 0;
	in = bufferevent_get_input(c->bev);
	out = c->holding ? c->held : bufferevent_get_output(c->up->bev);
	while (!c->req_done && evbuffer_get_length(out) < CONN_RELAY_HIGH &&
	    (avail = evbuffer_get_length(in)) > 0) {
		if (c->req_body == HTTP_BODY_LENGTH) {
			n = avail < c->req_left ? avail : (size_t)c->req_left;
			evbuffer_remove_buffer(in, out, n);
			c->req_left -= n;
			c->bytes_in += n;
			c->req_done = c->req_left == 0;
			continue;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		doff = dlen = 0;
		rc = http_chunked_feed(&c->rq->req_ch, v.iov_base, v.iov_len,
		    &consumed, &doff, &dlen);
		if (rc == HTTP_ERROR || rc == HTTP_TOO_LARGE) {
			conn_body_error(c, rc == HTTP_TOO_LARGE ? 413 : 400,
			    c->rq->req_ch.error != NULL
			        ? c->rq->req_ch.error
			        : "bad chunked framing");
			return -1;
		}
		if (dlen > 0) {
			len = snprintf(line, sizeof(line), "%zx\r\n", dlen);
			evbuffer_add(out, line, (size_t)len);
			evbuffer_drain(in, doff);
			evbuffer_remove_buffer(in, out, dlen);
			evbuffer_add(out, "\r\n", 2);
			evbuffer_drain(in, consumed - doff - dlen);
			c->bytes_in += dlen;
		} else
			evbuffer_drain(in, consumed);
		if (rc == HTTP_CHUNKED_DONE) {
			evbuffer_add(out, "0\r\n\r\n", 5);
			c->req_done = 1;
		}
		/* The first chunk-size line is good: let the head go. */
		if (c->holding && c->rq->req_ch.state != HTTP_CHUNKED_SIZE &&
		    c->rq->req_ch.state != HTTP_CHUNKED_EXT &&
		    c->rq->req_ch.state != HTTP_CHUNKED_SIZE_LF) {
			c->holding = 0;
			evbuffer_add_buffer(bufferevent_get_output(c->up->bev),
			    c->held);
			out = bufferevent_get_output(c->up->bev);
		}
	}
	if (c->req_done) {
		/* What follows is the next request: it waits in the buffer. */
		if (c->cpaused)
			bufferevent_enable(c->bev, EV_READ);
		c->cpaused = 0;
		conn_client_timeouts(c, 0, c->lim->idle_timeout_ms);
		conn_up_sent(c);
	} else if (evbuffer_get_length(out) >= CONN_RELAY_HIGH) {
		bufferevent_disable(c->bev, EV_READ);
		c->cpaused = 1;
	} else if (c->cpaused) {
		bufferevent_enable(c->bev, EV_READ);
		c->cpaused = 0;
	}
	return 0;
}

/*
 * Where response bytes for the client go: the worker's stage while an
 * upstream callback gathers c's response (conn_stage_begin), else the
 * client's output buffer.
 */
static struct evbuffer *
conn_client_out(struct conn *c)
{
	if (c->w->stage_conn == c)
		return c->w->stage;
	return bufferevent_get_output(c->bev);
}

/* Gather what this callback answers c, if nothing is queued before it. */
static void
conn_stage_begin(struct conn *c)
{
	if (c->w->stage_conn == NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		c->w->stage_conn = c;
}

/*
 * Send what was gathered for c. With the client's output buffer empty
 * it goes straight to SSL_write: libevent's TLS bufferevent would only
 * arm a write event and write on the next loop turn, which costs two
 * epoll_ctl and an epoll_wait per response. What the socket does not
 * take (or all of it, on any error) goes through the bufferevent, which
 * retries the write with the same bytes first, as OpenSSL requires,
 * and reports errors as usual.
 */
static void
conn_stage_end(struct conn *c)
{
	struct worker *w = c->w;
	struct evbuffer *out;
	unsigned char *p;
	size_t n;
	int rc;

	if (w->stage_conn != c)
		return;
	w->stage_conn = NULL;
	if ((n = evbuffer_get_length(w->stage)) == 0)
		return;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0 && n <= CONN_DIRECT_MAX &&
	    (bufferevent_get_enabled(c->bev) & EV_WRITE) != 0 &&
	    (p = evbuffer_pullup(w->stage, (ev_ssize_t)n)) != NULL) {
		ERR_clear_error();
		rc = SSL_write(c->ssl, p, (int)n);
		if (rc > 0)
			evbuffer_drain(w->stage, (size_t)rc);
		else
			ERR_clear_error();
	}
	if (evbuffer_get_length(w->stage) > 0)
		evbuffer_add_buffer(out, w->stage);
}

/* Write the client's response head; fr says how the body goes. */
static int
conn_resp_write_head(struct conn *c, enum fwd_framing fr, uint64_t length)
{
	struct evbuffer *out = conn_client_out(c);
	struct evbuffer_iovec vec;
	struct fwd_out o;
	size_t bound = c->rhlen + FWD_EXTRA;
	int conn;

	conn = !c->keep_alive ? FWD_CONN_CLOSE
	    : c->v10          ? FWD_CONN_KEEP_ALIVE
	                      : FWD_CONN_DEFAULT;
	if (evbuffer_reserve_space(out, (ev_ssize_t)bound, &vec, 1) < 1 ||
	    vec.iov_len < bound)
		return -1;
	fwd_out_init(&o, vec.iov_base, bound);
	if (fwd_response_head(&o, &c->rq->u.res, c->rid, fr, length, conn) ==
	    -1) {
		vec.iov_len = 0;
		evbuffer_commit_space(out, &vec, 1);
		return -1;
	}
	vec.iov_len = o.len;
	evbuffer_commit_space(out, &vec, 1);
	c->head_sent = 1;
	return 0;
}

/* The upstream's answer cannot be passed on: 502, nothing of it sent. */
static void
conn_resp_bad(struct conn *c, const char *what, const char *why)
{
	log_warnx("conn %llu: %s: upstream %s %s: %s: %s",
	    (unsigned long long)c->id, c->rid, c->ud->conf->name,
	    c->up != NULL ? c->up->srv->text : "", what, why);
	upstream_release(c->up, 0);
	c->up = NULL;
	conn_answer(c, 502, "bad_upstream_response");
}

/*
 * Parse the upstream's response head, strictly: a malformed or oversized
 * head is a 502 and nothing of it reaches the client.
 */
static void
conn_resp_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->up->bev);
	const struct http_response *res = &c->rq->u.res;
	size_t len, n;
	int rc;

again:
	if ((len = evbuffer_get_length(in)) == 0)
		return;
	c->resp_seen = 1;
	n = len < c->lim->max_header_bytes ? len : c->lim->max_header_bytes;
	if (conn_reserve(c, n) == -1 ||
	    evbuffer_copyout(in, c->rq->hbuf, n) != (ev_ssize_t)n) {
		conn_resp_bad(c, "response head", "out of memory");
		return;
	}
	rc = http_parse_response(c->rq->hbuf, n, &c->rq->u.res, &c->rlim,
	    c->is_head);
	if (rc == HTTP_PARTIAL)
		return;
	if (rc < 0) {
		conn_resp_bad(c,
		    rc == HTTP_TOO_LARGE ? "oversized response head"
		                         : "malformed response head",
		    res->error != NULL ? res->error : "?");
		return;
	}
	evbuffer_drain(in, (size_t)rc);
	if (res->status < 200) {
		/* Interim answers were not asked for (no Expect, no Upgrade).
		 */
		if (res->status == 101) {
			conn_resp_bad(c, "response", "101 without Upgrade");
			return;
		}
		goto again;
	}
	c->rhlen = (size_t)rc;
	c->t_resp = conn_now_us();
	c->status = res->status;
	c->resp_body = res->f.body;
	c->up_keep = res->f.keep_alive;
	if (!c->req_done) {
		/* Answered early: the rest of the body stays unread. */
		c->req_cut = 1;
		c->keep_alive = 0;
		c->up_keep = 0;
		bufferevent_disable(c->bev, EV_READ);
	}
	switch (c->resp_body) {
	case HTTP_BODY_NONE:
		c->fr = FWD_FRAME_NONE;
		break;
	case HTTP_BODY_LENGTH:
		c->resp_left = res->f.content_length;
		c->fr = FWD_FRAME_LENGTH;
		break;
	case HTTP_BODY_CHUNKED:
		http_chunked_init(&c->rq->resp_ch, &c->rlim);
		/* An HTTP/1.0 client cannot take chunks: until close. */
		c->fr = c->v10 ? FWD_FRAME_CLOSE : FWD_FRAME_CHUNKED;
		break;
	case HTTP_BODY_CLOSE:
		c->fr = FWD_FRAME_CLOSE;
		break;
	}
	if (c->fr == FWD_FRAME_CLOSE)
		c->keep_alive = 0;
	c->masking = c->rq->d.mask != NULL && c->resp_body != HTTP_BODY_NONE;
	if (c->masking) {
		if (c->mbuf == NULL && (c->mbuf = evbuffer_new()) == NULL) {
			conn_resp_bad(c, "response", "out of memory");
			return;
		}
	} else if (conn_resp_write_head(c, c->fr, 0) == -1) {
		conn_resp_bad(c, "response head", "does not fit");
		return;
	}
	c->resp = CONN_RESP_BODY;
	bufferevent_setwatermark(c->up->bev, EV_READ, 0, CONN_RELAY_HIGH);
	if (c->resp_body == HTTP_BODY_NONE)
		conn_resp_done(c);
}

/* The backend's answer broke off after its head went to the client. */
static void
conn_resp_incomplete(struct conn *c, const char *why)
{
	log_warnx("conn %llu: %s: upstream %s %s: %s: response incomplete",
	    (unsigned long long)c->id, c->rid, c->ud->conf->name,
	    c->up != NULL ? c->up->srv->text : "", why);
	c->incomplete = 1;
	upstream_release(c->up, 0);
	c->up = NULL;
	if (c->masking) {
		conn_answer(c, 502, "bad_upstream_response");
		return;
	}
	/* No final chunk, no full length: the client sees it was cut. */
	conn_close(c, "upstream incomplete");
}

/*
 * Move n bytes from in to out. Small runs are copied behind what out
 * holds (a response head), so head and body leave in one TLS record and
 * one write(2); larger ones move as whole chains, without a copy.
 */
static void
conn_move(struct evbuffer *in, struct evbuffer *out, size_t n)
{
	struct evbuffer_iovec vec;

	if (n <= CONN_COALESCE &&
	    evbuffer_reserve_space(out, (ev_ssize_t)n, &vec, 1) == 1 &&
	    vec.iov_len >= n) {
		vec.iov_len = (size_t)evbuffer_remove(in, vec.iov_base, n);
		evbuffer_commit_space(out, &vec, 1);
		return;
	}
	evbuffer_remove_buffer(in, out, n);
}

/*
 * Move response body bytes to the client (or into the mask buffer), with
 * backpressure. Returns 0, or -1 when c left the relay.
 */
static int
conn_resp_body(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->up->bev);
	struct evbuffer *out = conn_client_out(c);
	struct evbuffer *dst = c->masking ? c->mbuf : out;
	struct evbuffer_iovec v;
	size_t avail, n, consumed, doff, dlen;
	char line[24];
	int rc, len, done = 0, rechunk = c->fr == FWD_FRAME_CHUNKED;

	while (!done && (avail = evbuffer_get_length(in)) > 0) {
		if (!c->masking &&
		    evbuffer_get_length(out) >= CONN_RELAY_HIGH) {
			bufferevent_disable(c->up->bev, EV_READ);
			c->upaused = 1;
			return 0;
		}
		switch (c->resp_body) {
		case HTTP_BODY_LENGTH:
			n = avail < c->resp_left ? avail : (size_t)c->resp_left;
			conn_move(in, dst, n);
			c->resp_left -= n;
			c->bytes_out += n;
			done = c->resp_left == 0;
			break;
		case HTTP_BODY_CLOSE:
			conn_move(in, dst, avail);
			c->bytes_out += avail;
			break;
		case HTTP_BODY_CHUNKED:
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				return 0;
			doff = dlen = 0;
			rc = http_chunked_feed(&c->rq->resp_ch, v.iov_base,
			    v.iov_len, &consumed, &doff, &dlen);
			if (rc == HTTP_ERROR || rc == HTTP_TOO_LARGE) {
				conn_resp_incomplete(c,
				    c->rq->resp_ch.error != NULL
				        ? c->rq->resp_ch.error
				        : "bad chunk");
				return -1;
			}
			if (dlen > 0) {
				if (rechunk) {
					len = snprintf(line, sizeof(line),
					    "%zx\r\n", dlen);
					evbuffer_add(dst, line, (size_t)len);
				}
				evbuffer_drain(in, doff);
				evbuffer_remove_buffer(in, dst, dlen);
				if (rechunk)
					evbuffer_add(dst, "\r\n", 2);
				evbuffer_drain(in, consumed - doff - dlen);
				c->bytes_out += dlen;
			} else
				evbuffer_drain(in, consumed);
			if (rc == HTTP_CHUNKED_DONE) {
				if (rechunk)
					evbuffer_add(dst, "0\r\n\r\n", 5);
				done = 1;
			}
			break;
		case HTTP_BODY_NONE:
			done = 1;
			break;
		}
		if (c->masking &&
		    evbuffer_get_length(c->mbuf) > MASK_MAX_BODY) {
			log_warnx("conn %llu: %s: mask %s: body larger than %d "
			          "bytes",
			    (unsigned long long)c->id, c->rid,
			    c->rq->d.mask->id, MASK_MAX_BODY);
			upstream_release(c->up, 0);
			c->up = NULL;
			conn_answer(c, 502, "obligation_failed");
			return -1;
		}
	}
	if (done) {
		conn_resp_done(c);
		return -1;
	}
	return 0;
}

static void
conn_free_cb(const void *data, size_t len, void *arg)
{
	free(arg);
}

/* The response is complete: mask if owed, record, and go on. */
static void
conn_resp_done(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *why = NULL;
	unsigned char *body;
	char *masked = NULL;
	size_t len, mlen = 0, changed = 0;
	int reusable;

	conn_stage_end(c);
	c->resp = CONN_RESP_DONE;
	reusable = c->up_keep && c->req_done && !c->req_cut;
	upstream_release(c->up, reusable);
	c->up = NULL;
	if (c->masking) {
		len = evbuffer_get_length(c->mbuf);
		body = evbuffer_pullup(c->mbuf, -1);
		if (mask_apply(c->rq->d.mask, body != NULL ? (char *)body : "",
		        len, &masked, &mlen, &changed, &why) == -1) {
			evbuffer_drain(c->mbuf, len);
			log_warnx("conn %llu: %s: mask %s: %s",
			    (unsigned long long)c->id, c->rid,
			    c->rq->d.mask->id, why != NULL ? why : "failed");
			c->masking = 0;
			conn_answer(c, 502, "obligation_failed");
			return;
		}
		evbuffer_drain(c->mbuf, len);
		if (conn_resp_write_head(c, FWD_FRAME_REPLACE, mlen) == -1) {
			free(masked);
			c->masking = 0;
			conn_answer(c, 502, "obligation_failed");
			return;
		}
		if (mlen == 0 ||
		    evbuffer_add_reference(out, masked, mlen, conn_free_cb,
		        masked) == -1)
			free(masked);
		c->bytes_out = mlen;
		c->masked = changed;
	}
	conn_complete(c);
	conn_finish(c);
}

/*
 * Answer the current request with the gateway's own JSON (contract 4.1),
 * never after a response head went out. Closes after it when the
 * request's body is unread, the request was refused as malformed, or
 * either side said close.
 */
static void
conn_answer(struct conn *c, int status, const char *reason)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec vec;
	struct fwd_out o;
	int conn;

	upstream_release(c->up, 0);
	c->up = NULL;
	/* After a 400 the stream may be out of step with the client. */
	if ((c->req_body != HTTP_BODY_NONE && !c->req_done) || c->req_cut ||
	    c->refuse != 0 || status == 400 || c->w->draining)
		c->keep_alive = 0;
	conn = !c->keep_alive ? FWD_CONN_CLOSE
	    : c->v10          ? FWD_CONN_KEEP_ALIVE
	                      : FWD_CONN_DEFAULT;
	if (evbuffer_reserve_space(out, FWD_ERROR_MAX, &vec, 1) < 1 ||
	    vec.iov_len < FWD_ERROR_MAX) {
		conn_close(c, "out of memory");
		return;
	}
	fwd_out_init(&o, vec.iov_base, FWD_ERROR_MAX);
	(void)fwd_error_response(&o, status, reason, c->rid, conn);
	vec.iov_len = o.len;
	evbuffer_commit_space(out, &vec, 1);
	c->status = status;
	c->head_sent = 1;
	c->resp = CONN_RESP_DONE;
	if (!c->allowed && c->w->ms != NULL) {
		metrics_response(c->w->ms, status);
		metrics_request_time(c->w->ms, conn_now_us() - c->t0);
	}
	conn_complete(c);
	conn_finish(c);
}

/* The answer is queued: read the next request, or drain and close. */
static void
conn_finish(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (!c->keep_alive || c->w->draining) {
		conn_set_state(c, CONN_DRAIN);
		if (evbuffer_get_length(out) == 0)
			bufferevent_trigger(c->bev, EV_WRITE,
			    BEV_TRIG_IGNORE_WATERMARKS |
			        BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	/* Pipelined requests wait until most of this answer is read. */
	if (evbuffer_get_length(out) > CONN_RELAY_LOW) {
		conn_set_state(c, CONN_FLUSH);
		return;
	}
	conn_set_state(c, CONN_IDLE);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * The last answer is written. Send close_notify and FIN, then read and
 * drop what the client still sends for a while: closing with unread
 * bytes would reset the connection and could destroy that answer.
 */
static void
conn_linger(struct conn *c)
{
	if (c->lingering)
		return;
	c->lingering = 1;
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	(void)shutdown(c->fd, SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	conn_timer(c, CONN_LINGER_MS);
}

static void
conn_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;

	switch (c->state) {
	case CONN_IDLE:
	case CONN_READ_HEAD:
		conn_head(c);
		break;
	case CONN_RELAY:
		(void)conn_body_up(c);
		break;
	case CONN_DRAIN:
		n = evbuffer_get_length(in);
		evbuffer_drain(in, n);
		c->lingered += n;
		if (c->lingered > CONN_LINGER_MAX)
			conn_close(c, "too much data after the last answer");
		break;
	default:
		break;
	}
}

static void
conn_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	switch (c->state) {
	case CONN_RELAY:
		if (c->upaused && c->up != NULL) {
			c->upaused = 0;
			bufferevent_enable(c->up->bev, EV_READ);
			(void)conn_resp_body(c);
		}
		break;
	case CONN_FLUSH:
		conn_set_state(c, CONN_IDLE);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			conn_head(c);
		break;
	case CONN_DRAIN:
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_linger(c);
		break;
	default:
		break;
	}
}

static void
conn_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[128];
	const char *why;

	if (c->state == CONN_HANDSHAKE) {
		if (what & BEV_EVENT_CONNECTED) {
			conn_handshake_done(c);
			return;
		}
		log_info("conn %llu: handshake: %s", (unsigned long long)c->id,
		    conn_handshake_reason(c, what, buf, sizeof(buf)));
		if (c->w->ms != NULL)
			metrics_tls_failure(c->w->ms, c->set->mg, c->li,
			    SSL_get_verify_result(c->ssl) != X509_V_OK ||
			            (c->hs_err ==
			                    SSL_R_CERTIFICATE_VERIFY_FAILED ||
			                c->hs_err ==
			                    SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			        ? metrics_tls_fail_from_verify(
			              SSL_get_verify_result(c->ssl))
			        : (what & BEV_EVENT_EOF) && c->hs_err == 0
			        ? METRICS_TLS_CLOSED
			        : METRICS_TLS_PROTOCOL);
		conn_close(c, "handshake failed");
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) || conn_bev_overdue(bev, what))
		return;
	if (what & BEV_EVENT_TIMEOUT)
		why = what & BEV_EVENT_READING ? "client read timeout"
		                               : "client write timeout";
	else if (what & BEV_EVENT_EOF)
		why = "closed by the client";
	else {
		why = "client connection error";
		c->tls_up = 0;
	}
	while (bufferevent_get_openssl_error(bev) != 0)
		;
	ERR_clear_error();
	/*
	 * A request body paused too long while no answer has begun: tell
	 * the client (RFC 9110 408) and the trail why, and drop the upstream
	 * connection that was streaming it.
	 */
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    c->state == CONN_RELAY && !c->req_done && !c->head_sent) {
		log_info("conn %llu: %s: request body paused longer than %llu "
		         "ms after %llu bytes",
		    (unsigned long long)c->id, c->rid,
		    (unsigned long long)c->lim->header_timeout_ms,
		    (unsigned long long)c->bytes_in);
		conn_answer(c, 408, "body_timeout");
		return;
	}
	if (c->state != CONN_IDLE && c->state != CONN_DRAIN)
		log_info("conn %llu: %s: %s", (unsigned long long)c->id,
		    conn_state_str(c->state), why);
	conn_close(c, why);
}

/*
 * libevent 2.1 reads a plain socket at most 4 KiB per loop turn
 * (EVBUFFER_MAX_READ), so a large answer crossed the event loop, and
 * went out as a TLS record of its own, every 4 KiB. conn_up_fill tops
 * the input up from the socket to CONN_UP_FILL bytes, reading only what
 * FIONREAD says is there: queued data comes before an error or EOF,
 * which stay for libevent's next read to report. Only for bodies whose
 * end is framed (length, chunked): for a body that ends at close, EOF
 * is the end, and it must come from libevent, in order.
 */
static void
conn_up_fill_from(struct evbuffer *in, int fd)
{
	struct evbuffer_iovec v[2];
	size_t have, want;
	ssize_t n;
	int nv, avail, i;

	while ((have = evbuffer_get_length(in)) < CONN_UP_FILL) {
		if (ioctl(fd, FIONREAD, &avail) == -1 || avail <= 0)
			return;
		want = CONN_UP_FILL - have;
		if ((size_t)avail < want)
			want = (size_t)avail;
		if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) <
		    1)
			return;
		for (i = 0; i < nv && want > 0; i++) {
			if (v[i].iov_len > want)
				v[i].iov_len = want;
			want -= v[i].iov_len;
		}
		nv = i;
		if ((n = readv(fd, v, nv)) <= 0) {
			evbuffer_commit_space(in, v, 0);
			return;
		}
		for (i = 0; i < nv; i++) {
			if ((size_t)n < v[i].iov_len)
				v[i].iov_len = (size_t)n;
			n -= (ssize_t)v[i].iov_len;
		}
		if (evbuffer_commit_space(in, v, nv) == -1)
			return;
	}
}

static void
conn_up_fill(struct conn *c, struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int fd;

	if (c->resp_body != HTTP_BODY_LENGTH &&
	    c->resp_body != HTTP_BODY_CHUNKED)
		return;
	/* The whole (small) body is here: no syscall for nothing. */
	if (c->resp_body == HTTP_BODY_LENGTH &&
	    evbuffer_get_length(in) >= c->resp_left)
		return;
	if (bufferevent_openssl_get_ssl(bev) != NULL ||
	    (fd = bufferevent_getfd(bev)) == -1)
		return;
	/* A bufferevent keeps its input's end frozen between its reads. */
	evbuffer_unfreeze(in, 0);
	conn_up_fill_from(in, fd);
	evbuffer_freeze(in, 0);
}

static void
conn_up_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;

	if (c->state != CONN_RELAY)
		return;
	conn_stage_begin(c);
	if (c->resp == CONN_RESP_HEAD)
		conn_resp_head(c);
	if (c->state == CONN_RELAY && c->resp == CONN_RESP_BODY) {
		if (!c->masking && !c->upaused)
			conn_up_fill(c, bev);
		(void)conn_resp_body(c);
	}
	/* c may be closed (and freed) by now: conn_close unstages it. */
	if (w->stage_conn == c)
		conn_stage_end(c);
}

static void
conn_up_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state != CONN_RELAY || c->up == NULL)
		return;
	if (!c->req_done)
		(void)conn_body_up(c);
	else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_up_timeouts(c, 1);
}

/* What went wrong on an upstream connection, for the log. */
static const char *
conn_up_error(struct bufferevent *bev, short what, char *buf, size_t len)
{
	unsigned long e, first = 0;
	int err = EVUTIL_SOCKET_ERROR();
	SSL *ssl;
	long v;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (what & BEV_EVENT_TIMEOUT)
		return "timed out";
	if (first != 0) {
		ssl = bufferevent_openssl_get_ssl(bev);
		v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
		if (v != X509_V_OK)
			snprintf(buf, len, "TLS: backend certificate: %s",
			    X509_verify_cert_error_string(v));
		else
			snprintf(buf, len, "TLS: %s",
			    ERR_reason_error_string(first) != NULL
			        ? ERR_reason_error_string(first)
			        : "error");
		return buf;
	}
	if (what & BEV_EVENT_EOF)
		return "connection closed";
	snprintf(buf, len, "%s", err != 0 ? strerror(err) : "error");
	return buf;
}

static void
conn_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char buf[128];
	const char *why;

	if (conn_bev_overdue(bev, what))
		return;
	if (c->state == CONN_CONNECT) {
		if (what & BEV_EVENT_CONNECTED) {
			conn_up_ready(c);
			return;
		}
		conn_up_failed(c, conn_up_error(bev, what, buf, sizeof(buf)),
		    CONN_RETRY_OTHER);
		return;
	}
	if (c->state != CONN_RELAY || (what & BEV_EVENT_CONNECTED))
		return;
	/* Bytes that came with the EOF go first. */
	if (what & BEV_EVENT_EOF) {
		conn_up_read_cb(bev, c);
		if (c->state != CONN_RELAY || c->up == NULL)
			return;
		if (c->resp == CONN_RESP_BODY &&
		    c->resp_body == HTTP_BODY_CLOSE) {
			conn_resp_done(c);
			return;
		}
	}
	why = conn_up_error(bev, what, buf, sizeof(buf));
	if (c->resp == CONN_RESP_HEAD) {
		if (!c->resp_seen && c->up->reused && c->bytes_in == 0 &&
		    c->req_body == HTTP_BODY_NONE &&
		    !(what & BEV_EVENT_TIMEOUT)) {
			/* A pooled connection the backend had closed. */
			conn_up_failed(c, "pooled connection was closed",
			    CONN_RETRY_FRESH);
			return;
		}
		if (what & BEV_EVENT_TIMEOUT) {
			log_warnx("conn %llu: %s: upstream %s %s: no response "
			          "within %llu ms",
			    (unsigned long long)c->id, c->rid,
			    c->ud->conf->name, c->up->srv->text,
			    (unsigned long long)c->ud->conf->read_timeout_ms);
			upstream_release(c->up, 0);
			c->up = NULL;
			conn_answer(c, 504, "upstream_timeout");
			return;
		}
		conn_resp_bad(c, "before a response", why);
		return;
	}
	conn_resp_incomplete(c, why);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval now = { 0, 0 };

	if (conn_overdue_waits(c)) {
		c->overdue++;
		evtimer_add(c->timer, &now);
		return;
	}
	switch (c->state) {
	case CONN_PROXY:
		log_info("conn %llu: PROXY header: not complete after %llu ms",
		    (unsigned long long)c->id,
		    (unsigned long long)c->lim->handshake_timeout_ms);
		conn_close(c, "PROXY header timeout");
		break;
	case CONN_HANDSHAKE:
		log_info("conn %llu: handshake: not complete after %llu ms",
		    (unsigned long long)c->id,
		    (unsigned long long)c->lim->handshake_timeout_ms);
		if (c->w->ms != NULL)
			metrics_tls_failure(c->w->ms, c->set->mg, c->li,
			    METRICS_TLS_TIMEOUT);
		conn_close(c, "handshake timeout");
		break;
	case CONN_IDLE:
		conn_close(c, "idle timeout");
		break;
	case CONN_READ_HEAD:
		log_info("conn %llu: request head not complete after %llu ms",
		    (unsigned long long)c->id,
		    (unsigned long long)c->lim->header_timeout_ms);
		conn_close(c, "header timeout");
		break;
	case CONN_CONNECT:
		conn_up_failed(c, "connect timed out", CONN_RETRY_OTHER);
		break;
	case CONN_DRAIN:
		conn_close(c, "linger time over");
		break;
	default:
		conn_close(c, "timeout");
		break;
	}
}

void
conn_shutdown_all(struct worker *w, int force)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (force) {
			conn_close(c, "shutdown");
			continue;
		}
		c->keep_alive = 0;
		switch (c->state) {
		case CONN_PROXY:
		case CONN_HANDSHAKE:
		case CONN_IDLE:
			conn_close(c, "shutdown");
			break;
		case CONN_READ_HEAD:
			/* Not a byte of a request yet: as good as idle. */
			if (evbuffer_get_length(
			        bufferevent_get_input(c->bev)) == 0)
				conn_close(c, "shutdown");
			break;
		case CONN_FLUSH:
			conn_set_state(c, CONN_DRAIN);
			break;
		default:
			break;
		}
	}
}
