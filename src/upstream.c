/* upstream.c - backends: resolved servers, per-worker pools, keep-alive. */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "diag.h"
#include "log.h"
#include "tlsctx.h"
#include "upstream.h"
#include "worker.h"
#include "xmalloc.h"

int64_t
upstream_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Where a client SSL points back to its upstream_conn (session keeping). */
static CRYPTO_ONCE upstream_once = CRYPTO_ONCE_STATIC_INIT;
static int upstream_ex_index = -1;

static void
upstream_init_once(void)
{
	upstream_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The pool uc belongs to, or NULL when its pools were replaced. */
static struct upstream_pool *
upstream_pool_of(struct worker *w, uint64_t gen, size_t ui)
{
	if (w->pools == NULL || w->pools->gen != gen || ui >= w->pools->n)
		return NULL;
	return &w->pools->v[ui];
}

/* Forget the session kept for server i of pool (a no-op without one). */
static void
upstream_session_drop(struct upstream_pool *pool, size_t i)
{
	if (pool->sessions == NULL)
		return;
	SSL_SESSION_free(pool->sessions[i]);
	pool->sessions[i] = NULL;
}

/*
 * OpenSSL has a session for a connection: at the end of a TLS 1.2
 * handshake, or for each TLS 1.3 ticket, which comes after it. Keep a copy
 * of the latest per server, for the worker's next new connection there.
 * A copy, because OpenSSL marks a connection's own session not resumable
 * when the connection is freed without close_notify, as backends close.
 * Runs in the worker thread that owns the connection. Returns 0: OpenSSL
 * keeps its reference.
 */
static int
upstream_session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct upstream_conn *uc;
	struct upstream_pool *pool;
	SSL_SESSION *copy;

	if (upstream_ex_index < 0 ||
	    (uc = SSL_get_ex_data(ssl, upstream_ex_index)) == NULL ||
	    (pool = upstream_pool_of(uc->w, uc->gen, uc->ui)) == NULL ||
	    pool->sessions == NULL)
		return 0;
	/* Only a backend that passed verification may skip it next time. */
	if (SSL_get_verify_result(ssl) != X509_V_OK ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	if ((copy = SSL_SESSION_dup(sess)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	SSL_SESSION_free(pool->sessions[uc->server]);
	pool->sessions[uc->server] = copy;
	log_debug("upstream %s: TLS session kept for resumption",
	    uc->srv->text);
	return 0;
}

/*
 * Offer a copy of the session kept for uc's server on ssl, unless it
 * expired; the kept one never belongs to a connection (see above). A
 * backend that declines it makes a full handshake, verified as usual.
 */
static void
upstream_session_offer(struct upstream_pool *pool, struct upstream_conn *uc,
    SSL *ssl)
{
	SSL_SESSION *sess, *copy = NULL;

	if (pool == NULL || pool->sessions == NULL ||
	    (sess = pool->sessions[uc->server]) == NULL)
		return;
	if (SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) <=
	        (long)time(NULL) ||
	    (copy = SSL_SESSION_dup(sess)) == NULL ||
	    !SSL_set_session(ssl, copy)) {
		ERR_clear_error();
		upstream_session_drop(pool, uc->server);
	}
	/* ssl holds its own reference now. */
	SSL_SESSION_free(copy);
}

/* Resolve one configured server into s. Returns 0, or -1 after dg. */
static int
upstream_resolve(const struct conf *c, const struct conf_upstream *u,
    const struct conf_addr *a, struct upstream_server *s, struct diag *dg)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)a->port);
	if ((rc = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		diag_error(dg, c->file, a->line, a->col,
		    "upstream %s: server \"%s\": %s", u->name, a->text,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	if (res->ai_addrlen > sizeof(s->ss)) {
		diag_error(dg, c->file, a->line, a->col,
		    "upstream %s: server \"%s\": address too long", u->name,
		    a->text);
		freeaddrinfo(res);
		return -1;
	}
	memcpy(&s->ss, res->ai_addr, res->ai_addrlen);
	s->sslen = res->ai_addrlen;
	s->text = xstrdup(a->text);
	s->host = xstrdup(a->host);
	freeaddrinfo(res);
	return 0;
}

struct upstream_table *
upstream_table_new(const struct conf *c, int64_t now, struct diag *dg)
{
	const struct conf_upstream *u;
	struct upstream_table *t;
	struct upstream_def *d;
	size_t i, j, nerrors = dg->nerrors;

	t = xcalloc(1, sizeof(*t));
	t->n = c->nupstreams;
	t->v = xcalloc(t->n == 0 ? 1 : t->n, sizeof(*t->v));
	for (i = 0; i < c->nupstreams; i++) {
		u = &c->upstreams[i];
		d = &t->v[i];
		d->conf = u;
		if (u->nservers == 0) {
			diag_error(dg, c->file, u->line, u->col,
			    "upstream %s: no servers", u->name);
			continue;
		}
		d->servers = xcalloc(u->nservers, sizeof(*d->servers));
		d->nservers = u->nservers;
		for (j = 0; j < u->nservers; j++)
			(void)upstream_resolve(c, u, &u->servers[j],
			    &d->servers[j], dg);
		if (!u->has_tls)
			continue;
		if ((d->tls = tlsctx_upstream_new(u, now, dg)) == NULL)
			continue;
		if (!CRYPTO_THREAD_run_once(&upstream_once,
		        upstream_init_once) ||
		    upstream_ex_index < 0 ||
		    tlsctx_upstream_id(d->tls, u, d->tls_id) == -1) {
			diag_error(dg, c->file, u->line, u->col,
			    "upstream %s: cannot set up TLS session reuse",
			    u->name);
			continue;
		}
		SSL_CTX_sess_set_new_cb(d->tls, upstream_session_new_cb);
	}
	if (dg->nerrors > nerrors) {
		upstream_table_free(t);
		return NULL;
	}
	return t;
}

void
upstream_table_free(struct upstream_table *t)
{
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		for (j = 0; j < t->v[i].nservers; j++) {
			free(t->v[i].servers[j].text);
			free(t->v[i].servers[j].host);
		}
		free(t->v[i].servers);
		SSL_CTX_free(t->v[i].tls);
	}
	free(t->v);
	free(t);
}

struct upstream_pools *
upstream_pools_new(const struct upstream_table *t, uint64_t gen)
{
	struct upstream_pools *p;
	size_t i;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->t = t;
	p->gen = gen;
	p->n = t->n;
	if ((p->v = calloc(t->n == 0 ? 1 : t->n, sizeof(*p->v))) == NULL)
		goto fail;
	for (i = 0; i < t->n; i++) {
		TAILQ_INIT(&p->v[i].idle);
		p->v[i].failed_until =
		    calloc(t->v[i].nservers == 0 ? 1 : t->v[i].nservers,
		        sizeof(*p->v[i].failed_until));
		if (p->v[i].failed_until == NULL)
			goto fail;
		if (t->v[i].tls != NULL &&
		    (p->v[i].sessions = calloc(t->v[i].nservers,
		         sizeof(*p->v[i].sessions))) == NULL)
			goto fail;
		if (p->v[i].sessions != NULL)
			p->v[i].nsessions = t->v[i].nservers;
	}
	return p;
fail:
	upstream_pools_free(p);
	return NULL;
}

static void
upstream_conn_free(struct upstream_conn *uc)
{
	SSL *ssl;

	if (uc->bev != NULL) {
		/* The SSL may outlive uc (deferred callbacks): unlink it. */
		if ((ssl = bufferevent_openssl_get_ssl(uc->bev)) != NULL)
			SSL_set_ex_data(ssl, upstream_ex_index, NULL);
		bufferevent_free(uc->bev);
	}
	free(uc);
}

void
upstream_pools_free(struct upstream_pools *p)
{
	struct upstream_conn *uc;
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; p->v != NULL && i < p->n; i++) {
		while ((uc = TAILQ_FIRST(&p->v[i].idle)) != NULL) {
			TAILQ_REMOVE(&p->v[i].idle, uc, entry);
			upstream_conn_free(uc);
		}
		for (j = 0; j < p->v[i].nsessions; j++)
			SSL_SESSION_free(p->v[i].sessions[j]);
		free(p->v[i].sessions);
		free(p->v[i].failed_until);
	}
	free(p->v);
	free(p);
}

/* The server of d with the same address as s, or (size_t)-1. */
static size_t
upstream_server_find(const struct upstream_def *d,
    const struct upstream_server *s)
{
	size_t i;

	for (i = 0; i < d->nservers; i++)
		if (d->servers[i].sslen == s->sslen &&
		    memcmp(&d->servers[i].ss, &s->ss, s->sslen) == 0 &&
		    strcmp(d->servers[i].text, s->text) == 0)
			return i;
	return (size_t)-1;
}

void
upstream_pools_adopt(struct upstream_pools *to, struct upstream_pools *from)
{
	const struct upstream_def *dt, *df;
	size_t i, j, k, s;

	if (to == NULL || from == NULL)
		return;
	for (i = 0; i < to->n; i++) {
		dt = &to->t->v[i];
		if (to->v[i].sessions == NULL)
			continue;
		for (j = 0; j < from->n; j++) {
			df = &from->t->v[j];
			if (strcmp(dt->conf->name, df->conf->name) == 0)
				break;
		}
		/* Another CA, client certificate or name: verify anew. */
		if (j == from->n || from->v[j].sessions == NULL ||
		    memcmp(dt->tls_id, df->tls_id, sizeof(dt->tls_id)) != 0)
			continue;
		for (k = 0; k < df->nservers; k++) {
			if (from->v[j].sessions[k] == NULL ||
			    (s = upstream_server_find(dt, &df->servers[k])) ==
			        (size_t)-1 ||
			    to->v[i].sessions[s] != NULL)
				continue;
			to->v[i].sessions[s] = from->v[j].sessions[k];
			from->v[j].sessions[k] = NULL;
		}
	}
}

/* An idle connection said something or went away: drop it. */
static void
upstream_idle_drop(struct upstream_conn *uc, const char *why)
{
	struct upstream_pool *pool = upstream_pool_of(uc->w, uc->gen, uc->ui);

	log_debug("upstream %s: idle connection %s", uc->srv->text, why);
	if (pool != NULL) {
		TAILQ_REMOVE(&pool->idle, uc, entry);
		pool->nidle--;
	}
	upstream_conn_free(uc);
}

static void
upstream_idle_read_cb(struct bufferevent *bev, void *arg)
{
	/* Nothing may arrive unasked between two exchanges. */
	upstream_idle_drop(arg, "sent unsolicited data");
}

static void
upstream_idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	upstream_idle_drop(arg,
	    what & BEV_EVENT_TIMEOUT   ? "timed out"
	        : what & BEV_EVENT_EOF ? "closed by the server"
	                               : "failed");
}

/* The next server in round robin order that is not marked failed. */
static size_t
upstream_pick(struct upstream_pool *pool, size_t n, size_t avoid)
{
	int64_t now = upstream_now_ms();
	size_t k, i, fallback = (size_t)-1;

	for (k = 0; k < n; k++) {
		i = (pool->next + k) % n;
		if (i == avoid && n > 1)
			continue;
		if (fallback == (size_t)-1)
			fallback = i;
		if (pool->failed_until[i] > now)
			continue;
		pool->next = i + 1;
		return i;
	}
	/* Every server is marked: the marks are advice, try one anyway. */
	i = fallback != (size_t)-1 ? fallback : 0;
	pool->next = i + 1;
	return i;
}

struct upstream_conn *
upstream_get(struct worker *w, const struct upstream_table *t, uint64_t gen,
    size_t ui, size_t avoid, int64_t max_idle_ms, bufferevent_data_cb readcb,
    bufferevent_data_cb writecb, bufferevent_event_cb eventcb, void *arg,
    char *err, size_t errlen)
{
	const struct upstream_def *d;
	struct upstream_pool *pool;
	struct upstream_conn *uc = NULL;
	SSL *ssl = NULL;
	size_t server;
	int fd, one = 1;

	if (ui >= t->n || t->v[ui].nservers == 0) {
		snprintf(err, errlen, "no such upstream");
		return NULL;
	}
	d = &t->v[ui];
	pool = upstream_pool_of(w, gen, ui);
	while (pool != NULL && (uc = TAILQ_FIRST(&pool->idle)) != NULL) {
		TAILQ_REMOVE(&pool->idle, uc, entry);
		pool->nidle--;
		/*
		 * A request whose body is streamed cannot be retried if the
		 * backend closed the connection meanwhile: only fresh ones.
		 */
		if (max_idle_ms > 0 &&
		    upstream_now_ms() - uc->idle_since > max_idle_ms) {
			upstream_conn_free(uc);
			continue;
		}
		uc->reused = 1;
		bufferevent_setcb(uc->bev, readcb, writecb, eventcb, arg);
		bufferevent_set_timeouts(uc->bev, NULL, NULL);
		return uc;
	}
	if (pool != NULL)
		server = upstream_pick(pool, d->nservers, avoid);
	else
		server = avoid == (size_t)-1 ? 0 : (avoid + 1) % d->nservers;

	if ((uc = calloc(1, sizeof(*uc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	uc->w = w;
	uc->gen = gen;
	uc->ui = ui;
	uc->server = server;
	uc->srv = &d->servers[server];
	if (d->tls != NULL) {
		if ((ssl = SSL_new(d->tls)) == NULL ||
		    tlsctx_upstream_prepare(ssl, d->conf, uc->srv->host) ==
		        -1 ||
		    !SSL_set_ex_data(ssl, upstream_ex_index, uc)) {
			snprintf(err, errlen, "cannot set up TLS");
			ERR_clear_error();
			goto fail;
		}
		upstream_session_offer(pool, uc, ssl);
		uc->bev = bufferevent_openssl_socket_new(w->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (uc->bev == NULL)
			goto nomem;
		ssl = NULL; /* the bufferevent owns it now */
		/* Backends often close without close_notify after a body. */
		bufferevent_openssl_set_allow_dirty_shutdown(uc->bev, 1);
	} else {
		uc->bev = bufferevent_socket_new(w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (uc->bev == NULL)
			goto nomem;
	}
	bufferevent_setcb(uc->bev, readcb, writecb, eventcb, arg);
	if (bufferevent_socket_connect(uc->bev,
	        (const struct sockaddr *)&uc->srv->ss,
	        (int)uc->srv->sslen) == -1) {
		snprintf(err, errlen, "connect to %s: %s", uc->srv->text,
		    strerror(errno));
		if (pool != NULL) {
			pool->failed_until[server] =
			    upstream_now_ms() + UPSTREAM_FAIL_MS;
			upstream_session_drop(pool, server);
		}
		goto fail;
	}
	/* Heads and small bodies must not wait for Nagle. */
	if ((fd = bufferevent_getfd(uc->bev)) != -1)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	return uc;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	SSL_free(ssl);
	upstream_conn_free(uc);
	return NULL;
}

void
upstream_release(struct upstream_conn *uc, int reusable)
{
	struct upstream_pool *pool;
	struct timeval tv;

	if (uc == NULL)
		return;
	pool = upstream_pool_of(uc->w, uc->gen, uc->ui);
	if (!reusable || pool == NULL || pool->nidle >= UPSTREAM_MAX_IDLE ||
	    uc->w->draining ||
	    evbuffer_get_length(bufferevent_get_input(uc->bev)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(uc->bev)) != 0) {
		upstream_conn_free(uc);
		return;
	}
	uc->nrequests++;
	uc->reused = 0;
	uc->idle_since = upstream_now_ms();
	tv.tv_sec = UPSTREAM_IDLE_TIMEOUT_MS / 1000;
	tv.tv_usec = (UPSTREAM_IDLE_TIMEOUT_MS % 1000) * 1000;
	bufferevent_setcb(uc->bev, upstream_idle_read_cb, NULL,
	    upstream_idle_event_cb, uc);
	bufferevent_setwatermark(uc->bev, EV_READ, 0, 0);
	bufferevent_setwatermark(uc->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(uc->bev, &tv, NULL);
	/* EV_WRITE stays enabled: with nothing queued it costs nothing. */
	bufferevent_enable(uc->bev, EV_READ);
	TAILQ_INSERT_HEAD(&pool->idle, uc, entry);
	pool->nidle++;
}

void
upstream_mark_failed(struct upstream_conn *uc)
{
	struct upstream_pool *pool = upstream_pool_of(uc->w, uc->gen, uc->ui);

	if (pool == NULL)
		return;
	pool->failed_until[uc->server] = upstream_now_ms() + UPSTREAM_FAIL_MS;
	upstream_session_drop(pool, uc->server);
}
