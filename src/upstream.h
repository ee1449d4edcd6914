/* upstream.h - backends: resolved servers, per-worker pools, keep-alive. */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "tlsctx.h"

struct conf;
struct conf_upstream;
struct diag;
struct worker;

/* A server that refused a connection is skipped for this long. */
#define UPSTREAM_FAIL_MS 3000
/* Idle keep-alive connections kept per worker and upstream. */
#define UPSTREAM_MAX_IDLE 64
/* An idle keep-alive connection is closed after this long. */
#define UPSTREAM_IDLE_TIMEOUT_MS 30000
/* A request with a body reuses only a connection idle at most this long. */
#define UPSTREAM_FRESH_MS 2000

struct upstream_server {
	char *text; /* "10.20.1.10:8080", as configured */
	char *host; /* "10.20.1.10": name check, SNI, default Host */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

/* One upstream of the config, resolved, with its TLS client context. */
struct upstream_def {
	const struct conf_upstream *conf;
	SSL_CTX *tls;                        /* NULL: plain HTTP */
	unsigned char tls_id[TLSCTX_ID_LEN]; /* tlsctx_upstream_id of tls */
	struct upstream_server *servers;
	size_t nservers;
};

/* Every upstream of a config, in config order (index = conf index). */
struct upstream_table {
	struct upstream_def *v;
	size_t n;
};

/*
 * Resolve every server of every upstream in c (numeric or through the
 * resolver, at load time only) and build their TLS contexts. Returns an
 * owned table, or NULL with every problem in dg.
 */
struct upstream_table *upstream_table_new(const struct conf *c, int64_t now,
    struct diag *dg);
void upstream_table_free(struct upstream_table *t);

/* One connection to a backend server, owned by a worker. */
struct upstream_conn {
	struct bufferevent *bev;
	struct worker *w;
	uint64_t gen; /* the table generation it belongs to */
	size_t ui;    /* upstream index in its table */
	size_t server;
	const struct upstream_server *srv; /* lives as long as its table */
	int reused;                        /* came from the idle pool */
	int64_t idle_since; /* monotonic ms when it went back to the pool */
	uint64_t nrequests;
	TAILQ_ENTRY(upstream_conn) entry;
};

TAILQ_HEAD(upstream_conn_list, upstream_conn);

/*
 * A worker's state for one upstream: round robin, failures, idle set, and
 * per server the last TLS session its handshakes gave, offered to resume.
 */
struct upstream_pool {
	size_t next;            /* round robin */
	int64_t *failed_until;  /* per server, monotonic ms; 0: healthy */
	SSL_SESSION **sessions; /* per server; NULL: none (or plain HTTP) */
	size_t nsessions;       /* servers in sessions */
	struct upstream_conn_list idle;
	size_t nidle;
};

/* A worker's pools for one table; replaced when the config is. */
struct upstream_pools {
	const struct upstream_table *t;
	uint64_t gen;
	struct upstream_pool *v;
	size_t n;
};

struct upstream_pools *upstream_pools_new(const struct upstream_table *t,
    uint64_t gen);
/* Close every idle connection and free the pools (NULL is a no-op). */
void upstream_pools_free(struct upstream_pools *p);

/*
 * After a reload: move each TLS session kept in from to the same server
 * (same address) of the same upstream (same name and tlsctx_upstream_id)
 * in to. Sessions left behind are freed with from.
 */
void upstream_pools_adopt(struct upstream_pools *to,
    struct upstream_pools *from);

/*
 * A connection to upstream ui of table t (generation gen): an idle
 * keep-alive one from w's pools (reused = 1, ready to write) idle at
 * most max_idle_ms (0: any; older ones are closed), or a new
 * one being connected to the next healthy server in round robin order,
 * skipping avoid (a server that just failed this request; (size_t)-1 for
 * none). When t is not the table of w's current pools (the connection
 * started under a config since reloaded) nothing is pooled. The
 * callbacks are installed before anything can be reported: the event
 * callback sees BEV_EVENT_CONNECTED once a new connection (and its TLS
 * handshake) is up. Returns NULL with a reason in err.
 */
struct upstream_conn *upstream_get(struct worker *w,
    const struct upstream_table *t, uint64_t gen, size_t ui, size_t avoid,
    int64_t max_idle_ms, bufferevent_data_cb readcb,
    bufferevent_data_cb writecb, bufferevent_event_cb eventcb, void *arg,
    char *err, size_t errlen);

/*
 * Give a connection back: to the idle pool when reusable (a complete
 * exchange, both sides keep-alive, nothing buffered) and its pools are
 * still current, else closed. NULL is a no-op.
 */
void upstream_release(struct upstream_conn *uc, int reusable);

/*
 * Skip uc's server for UPSTREAM_FAIL_MS (connect or handshake failed) and
 * forget its TLS session: the next connection makes a full handshake.
 */
void upstream_mark_failed(struct upstream_conn *uc);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t upstream_now_ms(void);

#endif /* UPSTREAM_H */
